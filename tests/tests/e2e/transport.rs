//! Transport: native TLS (rustls) with HSTS, a key file others can read
//! refused, and CORS open to exactly the configured origins.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use potvrda_e2e::{Backend, Options, TestServer};
use potvrda_server::clock::ManualClock;

fn self_signed(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("certificate");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).expect("write");
    std::fs::write(&key, ck.signing_key.serialize_pem()).expect("write");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    (cert, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_tls_serves_https_with_hsts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = self_signed(dir.path());
    let srv = TestServer::start_with(Options {
        tls: Some((cert, key)),
        ..Options::new(Backend::Embedded)
    })
    .await;
    assert!(srv.url.starts_with("https://"), "{}", srv.url);
    let r = srv
        .http
        .get(format!("{}/healthz", srv.url))
        .send()
        .await
        .expect("TLS handshake with the trusted certificate");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    // The same port does not speak plain HTTP.
    let plain = srv.url.replacen("https://", "http://", 1);
    let r = reqwest::Client::new()
        .get(format!("{plain}/healthz"))
        .send()
        .await;
    assert!(
        r.map_or(true, |r| !r.status().is_success()),
        "no plain HTTP on the TLS port"
    );
    // A client that does not trust the certificate gets no answer.
    assert!(
        reqwest::Client::new()
            .get(format!("{}/healthz", srv.url))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_key_others_can_read_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = self_signed(dir.path());
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let config = potvrda_server::config::Config {
        listen: potvrda_server::config::sections::Listen {
            address: "127.0.0.1:0".parse().expect("addr"),
            tls_cert_file: Some(cert),
            tls_key_file: Some(key),
            ..Default::default()
        },
        store: potvrda_server::config::sections::Store {
            data_dir: dir.path().join("data"),
            ..Default::default()
        },
        ..potvrda_server::config::Config::default()
    };
    let started =
        potvrda_server::start(config, Arc::new(ManualClock::new(potvrda_e2e::now()))).await;
    let err = started.expect_err("refused");
    assert!(err.to_string().contains("chmod 600"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_open_to_exactly_the_configured_origins() {
    let srv = TestServer::start_with(Options {
        cors_allowed_origins: vec!["https://euprava.gov.rs".into()],
        ..Options::new(Backend::Embedded)
    })
    .await;
    let preflight = |origin: &'static str| {
        srv.http
            .request(reqwest::Method::OPTIONS, format!("{}/v1/logins", srv.url))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "content-type")
            .send()
    };
    let ok = preflight("https://euprava.gov.rs").await.expect("request");
    assert!(ok.status().is_success());
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://euprava.gov.rs"
    );
    let evil = preflight("https://euprava.gov.rs.evil.example")
        .await
        .expect("request");
    assert!(!evil.headers().contains_key("access-control-allow-origin"));
    let r = srv
        .http
        .get(format!("{}/healthz", srv.url))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .expect("request");
    assert!(
        !r.headers().contains_key("access-control-allow-origin"),
        "no grant to other origins"
    );
    let r = srv
        .http
        .get(format!("{}/healthz", srv.url))
        .header("Origin", "https://euprava.gov.rs")
        .send()
        .await
        .expect("request");
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://euprava.gov.rs"
    );
    assert!(
        r.headers()["access-control-expose-headers"]
            .to_str()
            .expect("ascii")
            .to_ascii_lowercase()
            .contains("x-request-id")
    );
}
