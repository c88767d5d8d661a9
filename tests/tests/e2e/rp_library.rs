//! A certified relying-party library plays the portal's services:
//! `openid-client` (Node.js, OpenID Certified) drives CIBA in poll mode with
//! `private_key_jwt` and in ping mode with `client_secret_basic`, and the
//! code flow with `acr_values` (met, and one it cannot meet), against the
//! real server; the phone approves with the number the library was given.
//! A pass means interoperability, not agreement with ourselves.

use std::path::PathBuf;
use std::process::Stdio;

use base64::{Engine, engine::general_purpose::STANDARD};
use potvrda_e2e::{Backend, Options, TestServer};
use potvrda_proto::oidc::{LOA_BASIC, LOA_SUBSTANTIAL};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::oidc::{browser, finish, location, open_login, param, post_password};
use crate::support::*;

const RP: &str = "https://rp.example/callback";

fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node")
}

/// `npm ci` from the lock file, once per checkout (and once at a time: the
/// relying party and the accessibility tests share it).
pub(crate) async fn installed() -> PathBuf {
    static ONCE: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();
    ONCE.get_or_init(npm_ci).await.clone()
}

async fn npm_ci() -> PathBuf {
    let dir = node_dir();
    let have = |p: &str| {
        dir.join("node_modules")
            .join(p)
            .join("package.json")
            .exists()
    };
    if !have("openid-client") || !have("axe-core") {
        let out = tokio::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .output()
            .await
            .unwrap_or_else(|e| panic!("npm is needed ({e}): Debian `apt-get install -y nodejs npm` (scripts/test.sh installs it)"));
        assert!(
            out.status.success(),
            "npm ci: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_drives_ciba_and_the_code_flow() {
    let dir = installed().await;
    let key = client_key("rp-key-1");
    let ping_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let clients = json!([
        {"client_id": "rp-jwt", "token_endpoint_auth_method": "private_key_jwt",
         "jwks": {"keys": [key.jwk]}, "name": "Katastar: uvid",
         "grant_types": ["urn:openid:params:grant-type:ciba"], "backchannel_token_delivery_mode": "poll"},
        {"client_id": "rp-ping", "client_secret": "rp-ping-secret-0123456789", "name": "Pozivni centar",
         "grant_types": ["urn:openid:params:grant-type:ciba"], "backchannel_token_delivery_mode": "ping",
         "backchannel_client_notification_endpoint": format!("http://127.0.0.1:{ping_port}/ping")},
        {"client_id": "rp-web", "client_secret": "rp-web-secret-0123456789", "name": "eUprava portal",
         "redirect_uris": [RP]},
        {"client_id": "rp-fapi", "fapi2": true, "token_endpoint_auth_method": "private_key_jwt",
         "jwks": {"keys": [key.jwk]}, "id_token_signed_response_alg": "ES256",
         "name": "eZdravlje: karton", "redirect_uris": [RP]},
    ]);
    let srv = TestServer::start_with(Options {
        oidc_clients: Some(clients.to_string()),
        ciba_interval: 1,
        ..Options::new(Backend::Embedded)
    })
    .await;
    // The library waits in real time; the server's clock follows it.
    let clock = srv.clock.clone();
    let ticker = tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
        every.tick().await;
        loop {
            every.tick().await;
            clock.advance(1);
        }
    });
    let c = citizen(&srv, None).await;
    let mut node = tokio::process::Command::new("node")
        .arg(dir.join("relying_party.mjs"))
        .env("ISSUER", &srv.url)
        .env("USERNAME", &c.account.username)
        .env("RP_KEY_PKCS8", STANDARD.encode(&key.der))
        .env("RP_KEY_KID", &key.kid)
        .env("JWT_CLIENT", "rp-jwt")
        .env("PING_CLIENT", "rp-ping")
        .env("PING_SECRET", "rp-ping-secret-0123456789")
        .env("PING_PORT", ping_port.to_string())
        .env("CODE_CLIENT", "rp-web")
        .env("CODE_SECRET", "rp-web-secret-0123456789")
        .env("CODE_REDIRECT", RP)
        .env("FAPI_CLIENT", "rp-fapi")
        .env("FAPI_REDIRECT", RP)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (scripts/test.sh installs Node.js)");
    let mut stdin = node.stdin.take().expect("stdin");
    let mut lines = BufReader::new(node.stdout.take().expect("stdout")).lines();
    let b = browser();
    let mut seen = Vec::new();
    let step = tokio::time::timeout(std::time::Duration::from_secs(90), async {
        while let Some(line) = lines.next_line().await.expect("reads") {
            let msg: Value =
                serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
            let step = msg["step"].as_str().unwrap_or_default().to_owned();
            match step.as_str() {
                "ciba-poll" | "ciba-ping" => {
                    let shown = pulled(&c.phone).await;
                    let number = u8::try_from(msg["number"].as_u64().expect("a number"))
                        .expect("two digits");
                    approve_as_shown(&c.phone, &shown, number, msg["code"].as_str())
                        .await
                        .expect("approved");
                    if step == "ciba-poll" {
                        assert_eq!(
                            shown.claims.ctx.binding_message.as_deref(),
                            Some("Šalter 3")
                        );
                        assert_eq!(shown.claims.ctx.service.as_deref(), Some("Katastar: uvid"));
                    }
                }
                "ciba-poll-tokens" | "ciba-ping-tokens" => {
                    let claims = &msg["claims"];
                    assert_eq!(claims["sub"], c.account.user_id.as_str());
                    assert_eq!(
                        claims["acr"], LOA_BASIC,
                        "one factor: the key, and no confirmation the phone names"
                    );
                    assert_eq!(
                        claims["amr"],
                        json!(["swk", "user"]),
                        "the virtual phone: a software key, no verification it can name"
                    );
                    let aud = if step == "ciba-poll-tokens" {
                        "rp-jwt"
                    } else {
                        "rp-ping"
                    };
                    assert_eq!(claims["aud"], aud);
                }
                "authorize" | "fapi-authorize" => {
                    // The FAPI service logs in in a browser of its own (no
                    // single sign-on from the portal's login).
                    let b = if step == "authorize" {
                        b.clone()
                    } else {
                        browser()
                    };
                    let request = open_login(&b, msg["url"].as_str().expect("url")).await;
                    let number = post_password(&srv, &b, &request, &c).await;
                    let ch = pulled(&c.phone).await;
                    c.phone
                        .answer(&ch, potvrda_proto::jose::Decision::Approve, Some(number))
                        .await
                        .expect("approved");
                    let back = finish(&srv, &b, &request).await;
                    send(&mut stdin, json!({"url": back.as_str()})).await;
                }
                "code-tokens" => {
                    assert_eq!(msg["claims"]["acr"], LOA_SUBSTANTIAL);
                    assert_eq!(msg["claims"]["amr"], json!(["pwd", "swk", "user", "mfa"]));
                }
                "unmet" => {
                    let r = b
                        .get(msg["url"].as_str().expect("url"))
                        .send()
                        .await
                        .expect("authorize");
                    let back = location(&r);
                    assert_eq!(
                        param(&back, "error").as_deref(),
                        Some("unmet_authentication_requirements")
                    );
                    send(&mut stdin, json!({"url": back.as_str()})).await;
                }
                "unmet-error" => assert_eq!(msg["error"], "unmet_authentication_requirements"),
                "fapi-tokens" => fapi_answers(&msg, &c),
                "done" => {}
                other => panic!("unknown step {other}"),
            }
            seen.push(step);
        }
    })
    .await;
    ticker.abort();
    let status = node.wait_with_output().await.expect("node ends");
    assert!(
        step.is_ok() && status.status.success(),
        "openid-client: {:?}, steps {seen:?}\n{}",
        status.status,
        String::from_utf8_lossy(&status.stderr)
    );
    assert_eq!(
        seen,
        [
            "ciba-poll",
            "ciba-poll-tokens",
            "ciba-ping",
            "ciba-ping-tokens",
            "authorize",
            "code-tokens",
            "unmet",
            "unmet-error",
            "fapi-authorize",
            "fapi-tokens",
            "done"
        ]
    );
}

async fn send(stdin: &mut tokio::process::ChildStdin, msg: Value) {
    stdin
        .write_all(format!("{msg}\n").as_bytes())
        .await
        .expect("writes to node");
}

/// What openid-client saw of the FAPI 2.0 flow: DPoP-bound tokens, a
/// UserInfo answer under the proof, a refresh that keeps its token (no
/// rotation under FAPI 2.0), introspection of the bound token, and the
/// family gone after revocation.
fn fapi_answers(msg: &Value, c: &Citizen) {
    assert_eq!(
        msg["token_type"]
            .as_str()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("dpop")
    );
    assert_eq!(msg["claims"]["aud"], "rp-fapi");
    assert_eq!(msg["claims"]["acr"], LOA_SUBSTANTIAL);
    assert_eq!(msg["userinfo"]["sub"], c.account.user_id.as_str());
    assert_eq!(msg["refresh_kept"], true);
    assert_eq!(msg["introspected"]["active"], true);
    assert_eq!(msg["introspected"]["token_type"], "DPoP");
    assert!(
        msg["introspected"]["cnf"]["jkt"]
            .as_str()
            .is_some_and(|j| j.len() == 43)
    );
    assert_eq!(msg["revoked"]["active"], false);
}
