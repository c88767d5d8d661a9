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

async fn spawn(data: &std::path::Path, token: &str) -> Proc {
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
        .stdout(Stdio::null())
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
    let phone = VirtualPhone::enroll(&server.url, &account.activation_code, "p", None)
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
    state.server = server.url.clone();
    let phone = VirtualPhone::from_state(state).expect("keys");
    let login: LoginResponse = http
        .post(format!("{}/v1/logins", server.url))
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
        .bearer_auth(&login.login_secret)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert!(status.access_token.is_some());
    // The used activation code stayed used.
    let again = VirtualPhone::enroll(&server.url, &account.activation_code, "again", None).await;
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
