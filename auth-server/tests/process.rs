//! The `auth-server` binary as a process: configuration from the
//! environment, and a crash (SIGKILL) that loses nothing the embedded store
//! had acknowledged.
#![allow(clippy::expect_used)] // a test: failing loudly is its job

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use potvrda_mobile_core::phone::VirtualPhone;
use potvrda_proto::api::{CreateCitizenResponse, LoginResponse, LoginStatusResponse};
use potvrda_proto::jose::Decision;

struct Proc {
    child: Child,
    url: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The portal client every spawned server registers.
const PORTAL_CLIENTS: &str = r#"[{"client_id":"portal","client_secret":"portal-secret-0123456789","name":"eUprava","grant_types":[],"portal_api":true}]"#;
const PORTAL_SECRET: &str = "portal-secret-0123456789";

async fn spawn(data: &std::path::Path, token: &str) -> Proc {
    spawn_with(data, token, &[], Stdio::null()).await
}

async fn spawn_with(
    data: &std::path::Path,
    token: &str,
    env: &[(&str, &str)],
    stderr: Stdio,
) -> Proc {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_auth-server"))
        .env_clear()
        .env("POTVRDA_LISTEN", format!("127.0.0.1:{port}"))
        .env("POTVRDA_DATA_DIR", data)
        .env("POTVRDA_BOOTSTRAP_TOKEN", token)
        .env("POTVRDA_LOG", "warn")
        .env("POTVRDA_OIDC_CLIENTS", PORTAL_CLIENTS)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("auth-server starts");
    // Owned by `Proc` at once, so a failed start is still killed and reaped.
    let proc = Proc {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = http.get(format!("{}/healthz", proc.url)).send().await
            && r.status().is_success()
        {
            return proc;
        }
        assert!(
            Instant::now() < deadline,
            "auth-server not healthy within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_nothing_that_was_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = "crash-test-bootstrap-token";
    let http = reqwest::Client::new();
    let mut server = spawn(dir.path(), token).await;
    let account: CreateCitizenResponse = http
        .post(format!("{}/v1/admin/citizens", server.url))
        .bearer_auth(token)
        .json(&serde_json::json!({"username": "crash", "display_name": "Crash Test"}))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let phone = VirtualPhone::enroll(&server.url, account.activation_code.expose(), "p", None)
        .await
        .expect("enrolls");
    let jwks_before: serde_json::Value = http
        .get(format!("{}/.well-known/jwks.json", server.url))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");

    // Crash: no graceful shutdown, no destructors.
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reaped");

    let server = spawn(dir.path(), token).await;
    let jwks_after: serde_json::Value = http
        .get(format!("{}/.well-known/jwks.json", server.url))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(jwks_before, jwks_after, "keys survived");
    let mut state = phone.state.clone();
    state.device.server = server.url.clone();
    let phone = VirtualPhone::from_state(state).expect("keys");
    let login: LoginResponse = http
        .post(format!("{}/v1/logins", server.url))
        .basic_auth("portal", Some(PORTAL_SECRET))
        .json(&serde_json::json!({"username": "crash", "password": account.initial_password}))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("the account and its device survived the crash");
    let challenge = phone
        .pending()
        .await
        .expect("pull")
        .pop()
        .expect("challenge");
    phone
        .answer(&challenge, Decision::Approve, Some(login.number))
        .await
        .expect("approved");
    let status: LoginStatusResponse = http
        .get(format!("{}/v1/logins/{}", server.url, login.login_id))
        .basic_auth("portal", Some(PORTAL_SECRET))
        .header("Login-Secret", login.login_secret.expose())
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert!(status.access_token.is_some());
    // The used activation code stayed used.
    let again =
        VirtualPhone::enroll(&server.url, account.activation_code.expose(), "again", None).await;
    assert!(matches!(
        again,
        Err(potvrda_mobile_core::Error::Server { status: 400, .. })
    ));
}

#[test]
fn bad_configuration_exits_with_status_2_and_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_auth-server"))
        .env_clear()
        .env("POTVRDA_CHALLENGE_TTL", "5")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("challenge_ttl"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_of_a_full_flow_hold_no_secret() {
    use potvrda_mobile_core::phone::PushEndpoint;
    let dir = tempfile::tempdir().expect("tempdir");
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let token = "log-test-bootstrap-token-0123";
    let server = spawn_with(
        &dir.path().join("data"),
        token,
        &[
            ("POTVRDA_LOG", "debug"),
            ("POTVRDA_LOG_FORMAT", "json"),
            ("POTVRDA_PUSH_ALLOWED_HOSTS", "127.0.0.1"),
            ("POTVRDA_PUSH_ALLOW_HTTP", "true"),
        ],
        Stdio::from(log),
    )
    .await;
    let http = reqwest::Client::new();
    let account: CreateCitizenResponse = http
        .post(format!("{}/v1/admin/citizens", server.url))
        .bearer_auth(token)
        .json(&serde_json::json!({"username": "logged", "display_name": "Log Test"}))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let mut endpoint = PushEndpoint::start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("endpoint");
    let push_url = endpoint.new_endpoint();
    let phone = VirtualPhone::enroll(
        &server.url,
        account.activation_code.expose(),
        "p",
        Some(&push_url),
    )
    .await
    .expect("enrolls");
    let wrong = http
        .post(format!("{}/v1/logins", server.url))
        .basic_auth("portal", Some(PORTAL_SECRET))
        .json(&serde_json::json!({"username": "logged", "password": "Wrong-Password-Typed-1"}))
        .send()
        .await
        .expect("request");
    assert_eq!(wrong.status(), 401);
    let login: LoginResponse = http
        .post(format!("{}/v1/logins", server.url))
        .basic_auth("portal", Some(PORTAL_SECRET))
        .json(&serde_json::json!({"username": "logged", "password": account.initial_password}))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let msg = tokio::time::timeout(Duration::from_secs(10), endpoint.recv())
        .await
        .expect("push")
        .expect("open");
    let challenge = phone.open_push(&msg.body).expect("verifies");
    let approval = phone
        .approval(&challenge, Decision::Approve, Some(login.number))
        .expect("signs");
    phone
        .post_approval(&challenge.claims.cid, &approval)
        .await
        .expect("approved");
    let status: LoginStatusResponse = http
        .get(format!("{}/v1/logins/{}", server.url, login.login_id))
        .basic_auth("portal", Some(PORTAL_SECRET))
        .header("Login-Secret", login.login_secret.expose())
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let access_token = status.access_token.expect("token");
    drop(server);

    let text = std::fs::read_to_string(&log_path).expect("log");
    let push_token = push_url.rsplit('/').next().expect("token");
    let normalized_code = account.activation_code.expose().replace('-', "");
    let secrets = [
        ("bootstrap token", token),
        ("portal client secret", PORTAL_SECRET),
        ("initial password", account.initial_password.expose()),
        ("wrong password", "Wrong-Password-Typed-1"),
        ("activation code", account.activation_code.expose()),
        ("activation code, normalised", normalized_code.as_str()),
        ("login secret", login.login_secret.expose()),
        ("access token", access_token.as_str()),
        (
            "token signature",
            access_token.rsplit('.').next().expect("sig"),
        ),
        ("challenge nonce", challenge.claims.nonce.as_str()),
        ("approval JWS", approval.as_str()),
        ("push endpoint capability", push_token),
        (
            "push auth secret",
            phone
                .state
                .device
                .push
                .as_ref()
                .expect("push")
                .auth
                .as_str(),
        ),
        ("device private key", phone.state.signing_key.as_str()),
        (
            "recovery code",
            phone.recovery_codes.as_ref().expect("codes")[0].as_str(),
        ),
    ];
    for (what, secret) in secrets {
        assert!(!text.contains(secret), "the log contains the {what}");
    }
    // The lines are JSON, requests carry their id, and the login is traceable.
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() > 10, "a full flow logs something");
    let requests: Vec<_> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "request")
        .collect();
    assert!(requests.len() >= 5);
    assert!(
        requests.iter().all(|l| l["span"]["request_id"].is_string()),
        "every access line has a request id"
    );
    assert!(
        text.contains(login.login_id.as_str()) && text.contains(challenge.claims.cid.as_str()),
        "login and challenge ids are logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_command_makes_a_new_current_generation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let rotate = || {
        let out = Command::new(env!("CARGO_BIN_EXE_auth-server"))
            .env_clear()
            .env("POTVRDA_DATA_DIR", &data)
            .args(["keys", "rotate"])
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let rs = text
            .trim()
            .rsplit("RS256 kid ")
            .next()
            .expect("RS256 kid printed")
            .to_owned();
        assert_eq!(rs.len(), 43, "{text}");
        rs
    };
    let first = rotate();
    let second = rotate();
    assert_ne!(first, second);
    // The server started afterwards publishes the second as current, the first as previous.
    let proc = spawn(&data, "bootstrap-token-0123456789").await;
    let jwks: serde_json::Value = reqwest::get(format!("{}/.well-known/jwks.json", proc.url))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid"))
        .collect();
    assert_eq!(kids.len(), 4);
    assert_eq!(kids[1], second, "current RS256 first generation");
    assert_eq!(kids[3], first, "previous kept");
}

/// `auth-server audit verify`, as an auditor runs it: on an export with the
/// published audit key set, and on the live (stopped) embedded store after
/// a crash; an edited line is named and the exit status is 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_checks_an_export_and_the_store_after_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let token = "audit-verify-bootstrap-token-0123";
    let mut server = spawn(&data, token).await;
    let http = reqwest::Client::new();
    for name in ["prvi", "drugi", "treci"] {
        let r = http
            .post(format!("{}/v1/admin/citizens", server.url))
            .bearer_auth(token)
            .json(&serde_json::json!({"username": name, "display_name": name}))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 201);
    }
    let get = |path: &str| {
        let req = http.get(format!("{}{path}", server.url)).bearer_auth(token);
        async move {
            req.send()
                .await
                .expect("request")
                .text()
                .await
                .expect("body")
        }
    };
    let export = get("/v1/admin/audit/export").await;
    let jwks = get("/.well-known/audit-jwks.json").await;
    server.child.kill().expect("killed");
    server.child.wait().expect("reaped");

    let verify = |args: &[&std::ffi::OsStr]| {
        let out = Command::new(env!("CARGO_BIN_EXE_auth-server"))
            .env_clear()
            .env("POTVRDA_DATA_DIR", &data)
            .env("POTVRDA_LOG", "warn")
            .arg("audit")
            .arg("verify")
            .args(args)
            .output()
            .expect("runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, said) = verify(&[]);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains("OK") && said.contains("national chain up to n="),
        "{said}"
    );

    let (file, keys) = (dir.path().join("audit.jsonl"), dir.path().join("jwks.json"));
    std::fs::write(&keys, &jwks).expect("written");
    std::fs::write(&file, &export).expect("written");
    let args = [
        "--export".as_ref(),
        file.as_os_str(),
        "--jwks".as_ref(),
        keys.as_os_str(),
    ];
    let (code, said) = verify(&args);
    assert_eq!(code, Some(0), "{said}");

    let second = export.lines().nth(2).expect("a third event");
    let id = serde_json::from_str::<serde_json::Value>(second).expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    std::fs::write(
        &file,
        export.replace(second, &second.replace("\"at\":", "\"at\":1")),
    )
    .expect("written");
    let (code, said) = verify(&args);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains(&format!("BROKEN at event {id} (national")),
        "{said}"
    );
}

/// `audit verify` only reads: pointed at a store that holds no trail (a
/// mistyped data dir), it says so and makes no audit key there.
#[test]
fn audit_verify_of_a_store_without_a_key_makes_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let out = Command::new(env!("CARGO_BIN_EXE_auth-server"))
        .env_clear()
        .env("POTVRDA_DATA_DIR", &data)
        .env("POTVRDA_LOG", "warn")
        .args(["audit", "verify"])
        .output()
        .expect("runs");
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("holds no audit key"), "{said}");
    assert!(!data.join("audit-key.p8").exists(), "no key was made");
}
