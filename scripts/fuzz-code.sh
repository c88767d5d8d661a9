#!/usr/bin/env bash
# Short coverage-guided fuzz runs (cargo fuzz / libFuzzer) of push decryption,
# JWS parsing and the request types: 10 s each. A crash fails the run and
# leaves the input in fuzz/artifacts/. Longer runs: FUZZ_SECONDS=600.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "cargo fuzz needs a nightly toolchain: rustup toolchain install nightly" >&2
  exit 1
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz

seconds="${FUZZ_SECONDS:-10}"
# No sanitizer: every project crate forbids unsafe code; libFuzzer's coverage
# guidance and Rust's own checks (overflow, bounds) find the panics.
# `--dev` with the fuzz workspace's `opt-level = 1` profile: half the build
# time of the release build, still ~6k executions a second.
features=()
# The server's own checks need the whole server built with nightly: opt in.
[ "${FUZZ_SERVER:-0}" = 1 ] && features=(--features server)
cargo +nightly fuzz build -s none --dev "${features[@]}"
for target in push_decrypt jws_parse requests; do
  echo "==> cargo fuzz run $target (${seconds} s)"
  log=$(mktemp)
  if ! cargo +nightly fuzz run -s none --dev "${features[@]}" "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 >"$log" 2>&1; then
    grep -E -A20 "panicked|ERROR|SUMMARY" "$log" | head -60
    echo "cargo fuzz: $target crashed; the input is in fuzz/artifacts/$target/" >&2
    rm -f "$log"
    exit 1
  fi
  grep -E "^Done" "$log"
  rm -f "$log"
done
