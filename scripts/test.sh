#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine with Rust: installs what it
# needs (redis-server; PostgreSQL; promtool, systemd-analyze and PyYAML to check deploy/;
# Chromium and chromedriver for the browser tests; Firefox ESR and geckodriver
# for the companion's Web Push test; Node.js and npm for the
# certified relying-party library (openid-client, installed by `npm ci`); the wasm32 target and
# wasm-bindgen-cli for the browser companion (scripts/web-app.sh);
# cargo-deny; schemathesis), then licence/ban checks, format check, clippy,
# an API fuzz run from the OpenAPI description, short cargo-fuzz runs, and
# every test (unit, and
# end-to-end over real HTTP against every store shape, with the harness's own
# Redis and PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# PostgreSQL's server programs (initdb, postgres): the harness makes its own
# cluster on a private socket (tests/src/postgres.rs).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
# A JDK and JNA run the Kotlin bindings (scripts/kotlin.sh installs kotlinc from npm).
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
[ -f /usr/share/java/jna.jar ] || missing+=(libjna-java)
# Firefox ESR receives real Web Push from the test's own push service.
command -v firefox-esr >/dev/null 2>&1 || missing+=(firefox-esr)
# poppler-utils reads the printed sheet's PDF (its fonts, its text, its pages).
command -v pdffonts >/dev/null 2>&1 || missing+=(poppler-utils)
# Node.js runs the certified relying-party library (openid-client, tests/node).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing ${missing[*]} from Debian"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet pyyaml 2>/dev/null \
  || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-yaml
for component in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
done

command -v cargo-deny >/dev/null 2>&1 || cargo install --locked cargo-deny
# WebDriver for Firefox (the companion's Web Push test), from crates.io.
command -v geckodriver >/dev/null 2>&1 || cargo install --locked geckodriver

echo "==> cargo deny (licences, bans, sources)"
cargo deny check licenses bans sources
# Advisories need the RustSec database, a GitHub repository. Where it can be
# fetched the check runs and fails the build on a finding; where it cannot
# (this project's build machines reach only the package registries) the run
# says so loudly instead of passing silently.
if timeout 60 cargo deny fetch db >/dev/null 2>&1; then
  echo "==> cargo deny check advisories"
  cargo deny check advisories
else
  echo "==> cargo deny check advisories: NOT RUN — the RustSec database (github.com/rustsec/advisory-db) cannot be fetched from this machine" >&2
fi
echo "==> cargo fmt --check"
cargo fmt --all -- --check
# Clippy runs inside the build (clippy-driver as the workspace's rustc
# wrapper, as `cargo clippy` does it): the dependencies are compiled once for
# the tests instead of once more in check mode, which cost the suite ~4
# minutes. The same wrapper and lint flags apply to every cargo build below
# (API fuzz server, bindings, wasm), so nothing is compiled twice.
export RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver)"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
echo "==> API fuzz from the OpenAPI description (server built with clippy)"
bash scripts/fuzz-api.sh
echo "==> cargo fuzz (short runs)"
# Nightly's compiler: not wrapped by stable's clippy-driver.
env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS bash scripts/fuzz-code.sh
echo "==> build with clippy (every target, all features), and the browser companion beside it"
# The wasm build has a target directory of its own, so it runs beside the
# main build instead of waiting for its lock.
bash scripts/web-app.sh > target/web-app.log 2>&1 & web_app=$!
cargo test --workspace --all-targets --all-features --locked --no-run
if ! wait "$web_app"; then cat target/web-app.log >&2; exit 1; fi
cat target/web-app.log
echo "==> cargo test"
cargo test --workspace --all-features --locked
