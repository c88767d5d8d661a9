#!/usr/bin/env bash
# Runs Potvrda on this machine with the embedded store and prints what to do
# next. Development settings: the virtual phone's local push endpoint
# (http://127.0.0.1) is allowed; production allows only the public push services.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p potvrda-server -p potvrda-mobile-core --features potvrda-mobile-core/device

data="${POTVRDA_DATA_DIR:-./data}"
listen="${POTVRDA_LISTEN:-127.0.0.1:8080}"
mkdir -p "$data" && chmod 700 "$data"
token_file="$data/bootstrap-token"
if [ ! -s "$token_file" ]; then
  (umask 077 && head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >"$token_file")
fi
# The portal, as a registered client of the portal API (protocol 3: every
# caller of /v1/logins authenticates): its secret in ./data/portal-secret.
portal_file="$data/portal-secret"
if [ ! -s "$portal_file" ]; then
  (umask 077 && head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >"$portal_file")
fi
clients_file="$data/oidc-clients.json"
(umask 077 && printf '[{"client_id":"portal","client_secret":"%s","name":"eUprava","grant_types":[],"portal_api":true,"reports_user_context":true}]\n' \
  "$(cat "$portal_file")" >"$clients_file")
if [ -z "${POTVRDA_OIDC_CLIENTS:-}${POTVRDA_OIDC_CLIENTS_FILE:-}" ]; then
  export POTVRDA_OIDC_CLIENTS_FILE="$clients_file"
fi
export POTVRDA_DATA_DIR="$data" POTVRDA_LISTEN="$listen" POTVRDA_BOOTSTRAP_TOKEN_FILE="$token_file"
export POTVRDA_PUSH_ALLOWED_HOSTS="${POTVRDA_PUSH_ALLOWED_HOSTS:-127.0.0.1}"
export POTVRDA_PUSH_ALLOW_HTTP="${POTVRDA_PUSH_ALLOW_HTTP:-true}"
url="http://$listen"
# The browser companion at /app/ (wasm): built when this machine can.
if bash scripts/web-app.sh; then
  export POTVRDA_APP_DIR="${POTVRDA_APP_DIR:-$PWD/web-app}"
else
  echo "the browser companion could not be built: /app/ stays off (scripts/web-app.sh says why above)" >&2
fi

cat <<NEXT

Potvrda starts on $url (embedded store in $data). In a second terminal:

  export PATH="\$PWD/target/release:\$PATH" TOKEN="\$(cat $token_file)" PORTAL="portal:\$(cat $portal_file)"

  # 1. An official creates a citizen: note initial_password and activation_code.
  curl -s -X POST $url/v1/admin/citizens -H "Authorization: Bearer \$TOKEN" \\
       -H 'Content-Type: application/json' -d '{"username":"jelena","display_name":"Jelena Petrović"}'

  # 2. The citizen's phone enrolls with the activation code and waits for pushes.
  potvrda-device enroll --server $url --code <activation_code> --push-listen 127.0.0.1:8091
  potvrda-device listen

  # 3. The portal logs her in (a third terminal): the phone shows the challenge;
  #    type the "number" from this answer there. Then collect the token:
  curl -s -u "\$PORTAL" -X POST $url/v1/logins -H 'Content-Type: application/json' \\
       -d '{"username":"jelena","password":"<initial_password>","context":{"ip":"203.0.113.7"}}'
  curl -s -u "\$PORTAL" "$url/v1/logins/<login_id>?wait=30" -H "Login-Secret: <login_secret>"

  Or, instead of step 2, open $url/app/ in a browser: the browser companion
  enrolls with the activation code and approves with a PIN.

NEXT
exec target/release/auth-server
