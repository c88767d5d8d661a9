#!/usr/bin/env bash
# Build the browser companion: potvrda-mobile-web compiled to
# wasm32-unknown-unknown, its JavaScript glue made by the wasm-bindgen CLI of
# exactly the version in Cargo.lock, into web-app/pkg/. Serve web-app/ with
# `app_dir` (POTVRDA_APP_DIR). No front-end build beyond this.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo="${CARGO:-cargo}"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown || {
    echo "web-app: the wasm32-unknown-unknown target cannot be installed here; the browser companion cannot be built (rustup target add wasm32-unknown-unknown)" >&2
    exit 1
  }
fi
version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3 }' Cargo.lock)"
if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $version"; then
  echo "==> installing wasm-bindgen-cli $version (it must match the wasm-bindgen crate)"
  # Not --locked: the CLI's own lock names a webpki-roots the registry no longer has.
  "$cargo" install --quiet wasm-bindgen-cli --version "=$version"
fi
# A target directory of its own: the wasm build runs beside the host build
# (scripts/test.sh) instead of waiting for its lock.
target="${WEB_APP_TARGET_DIR:-${CARGO_TARGET_DIR:-target}/web-app}"
CARGO_TARGET_DIR="$target" "$cargo" build --quiet --locked -p potvrda-mobile-web --target wasm32-unknown-unknown --profile wasm
wasm-bindgen --target web --no-typescript --out-dir web-app/pkg \
  "$target/wasm32-unknown-unknown/wasm/potvrda_mobile_web.wasm"
echo "web-app: built web-app/pkg ($(du -k web-app/pkg/potvrda_mobile_web_bg.wasm | cut -f1) KiB of wasm)"
