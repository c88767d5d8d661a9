#!/usr/bin/env bash
# Fuzz the HTTP API from its own OpenAPI description (schemathesis, from
# PyPI): every generated request must get an answer that is not a 5xx, and the
# server must log no panic. Rate limits are raised for the run: the fuzzer
# explores inputs, the limits have their own tests.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v schemathesis >/dev/null 2>&1 || python3 -m pip install --quiet "schemathesis>=4.32,<5"
# Every workspace binary with all features, as the test build selects them:
# the same feature unification, so the suite compiles each dependency once.
cargo build --quiet --locked --workspace --all-features --bins

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token="fuzz-$(head -c 12 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
POTVRDA_LISTEN="127.0.0.1:$port" POTVRDA_DATA_DIR="$work/data" POTVRDA_BOOTSTRAP_TOKEN="$token" \
POTVRDA_LOG=warn POTVRDA_ARGON2_MEMORY_KIB=64 POTVRDA_ARGON2_ITERATIONS=1 \
POTVRDA_PASSWORD_DELAY_AFTER=1000000 POTVRDA_PASSWORD_LOCK_AFTER=1000000 \
POTVRDA_IP_FAILED_LIMIT=1000000 POTVRDA_IP_LOGIN_LIMIT=1000000 POTVRDA_IP_ENROLL_LIMIT=1000000 \
POTVRDA_PUSH_LIMIT=1000000 POTVRDA_FATIGUE_LIMIT=1000000 \
  target/debug/auth-server 2>"$work/server.log" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT

for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || { echo "auth-server did not start"; cat "$work/server.log"; exit 1; }

echo "==> schemathesis against http://127.0.0.1:$port/openapi.json"
schemathesis run "http://127.0.0.1:$port/openapi.json" \
  --checks not_a_server_error --max-examples 25 --seed 20261126 \
  -H "Authorization: Bearer $token"
if grep -qi "panicked" "$work/server.log"; then
  echo "the server panicked:"; grep -i -A5 "panicked" "$work/server.log"; exit 1
fi
echo "API fuzz: no server error, no panic"
