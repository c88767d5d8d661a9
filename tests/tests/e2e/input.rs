//! Hostile and malformed input: always a 4xx JSON error, never a 5xx or a
//! hang, and nothing changes.

use potvrda_e2e::{Backend, TestServer};
use potvrda_proto::ErrorBody;

crate::on_both_stores!(
    malformed_and_oversized_input_gets_a_json_4xx,
    readiness_reports_the_store
);

/// Name, method, path, content type, body, expected status.
type Case = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    String,
    u16,
);

async fn malformed_and_oversized_input_gets_a_json_4xx(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let big = format!(
        r#"{{"username":"{}","password":"x"}}"#,
        "a".repeat(64 * 1024)
    );
    let deep = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    let json = "application/json";
    let cases: Vec<Case> = vec![
        ("not JSON", "POST", "/v1/logins", Some(json), "{not json".into(), 400),
        ("empty body", "POST", "/v1/logins", Some(json), String::new(), 400),
        ("wrong type", "POST", "/v1/logins", Some(json), r#"{"username":1,"password":"x"}"#.into(), 400),
        ("missing field", "POST", "/v1/logins", Some(json), r#"{"username":"a"}"#.into(), 400),
        ("unknown field", "POST", "/v1/logins", Some(json), r#"{"username":"a","password":"b","admin":true}"#.into(), 400),
        ("oversized", "POST", "/v1/logins", Some(json), big, 413),
        ("deeply nested", "POST", "/v1/enrollments", Some(json), deep, 400),
        ("no content type", "POST", "/v1/logins", None, r#"{"username":"a","password":"b"}"#.into(), 415),
        ("text/plain", "POST", "/v1/enrollments", Some("text/plain"), "{}".into(), 415),
        ("long password", "POST", "/v1/logins", Some(json), format!(r#"{{"username":"a","password":"{}"}}"#, "p".repeat(300)), 400),
        ("bad context", "POST", "/v1/logins", Some(json), r#"{"username":"a","password":"b","context":{"ip":"\u0000"}}"#.into(), 400),
        ("enroll garbage", "POST", "/v1/enrollments", Some(json),
            r#"{"activation_code":"x","public_key":{"kty":"EC","crv":"P-256","x":"!","y":"!"},"name":"n","platform":"p","proof":"a.b.c"}"#.into(), 400),
        ("enroll RSA key", "POST", "/v1/enrollments", Some(json),
            r#"{"activation_code":"x","public_key":{"kty":"RSA","crv":"P-256","x":"AA","y":"AA"},"name":"n","platform":"p","proof":"a.b.c"}"#.into(), 400),
        ("approval garbage", "POST", "/v1/challenges/x/response", Some(json), r#"{"approval":"a.b.c"}"#.into(), 401),
        ("bad wait", "GET", "/v1/logins/x?wait=abc", None, String::new(), 400),
        ("wait too long", "GET", "/v1/logins/x?wait=31", None, String::new(), 400),
        ("unknown query", "GET", "/v1/logins/x?evil=1", None, String::new(), 400),
        ("unknown route", "GET", "/v1/nothing", None, String::new(), 404),
        ("wrong method", "DELETE", "/v1/logins", None, String::new(), 405),
        ("bad username", "POST", "/v1/admin/citizens", Some(json), r#"{"username":"a b","display_name":"x"}"#.into(), 400),
    ];
    for (name, method, path, ctype, body, want) in cases {
        let mut req = srv
            .http
            .request(
                method.parse().expect("method"),
                format!("{}{path}", srv.url),
            )
            .body(body);
        req = if path.starts_with("/v1/logins") {
            srv.portal(req)
        } else {
            req.bearer_auth(&srv.token)
        };
        if let Some(ct) = ctype {
            req = req.header("Content-Type", ct);
        }
        let r = tokio::time::timeout(std::time::Duration::from_secs(10), req.send())
            .await
            .unwrap_or_else(|_| panic!("{name}: hung"))
            .expect("request");
        assert_eq!(r.status().as_u16(), want, "{name}");
        let body: ErrorBody = r
            .json()
            .await
            .unwrap_or_else(|e| panic!("{name}: not a JSON error body: {e}"));
        assert!(!body.message.is_empty(), "{name}");
    }
    // A failed create changed nothing; the server still works.
    assert_eq!(
        srv.http
            .get(format!("{}/healthz", srv.url))
            .send()
            .await
            .expect("up")
            .status(),
        200
    );
    srv.create_citizen("ab.c").await;
}

async fn readiness_reports_the_store(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let r = srv
        .http
        .get(format!("{}/readyz", srv.url))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.expect("json")["status"],
        "ok"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_carry_security_headers() {
    let srv = TestServer::start(Backend::Embedded).await;
    for (path, cache) in [
        ("/healthz", "no-store"),
        ("/v1/nothing", "no-store"),
        ("/.well-known/jwks.json", "public, max-age=300"),
    ] {
        let r = srv
            .http
            .get(format!("{}{path}", srv.url))
            .send()
            .await
            .expect("request");
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(
            h["content-security-policy"], "default-src 'none'; frame-ancestors 'none'",
            "{path}"
        );
        assert_eq!(
            h["cache-control"], cache,
            "{path}: a route's own caching wins"
        );
        assert!(
            !h.contains_key("access-control-allow-origin"),
            "{path}: CORS stays closed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_drains_a_parked_long_poll() {
    let srv = TestServer::start(Backend::Embedded).await;
    let c = crate::support::citizen(&srv, None).await;
    let login = crate::support::login(&srv, &c).await;
    let poll = crate::support::long_poll(&srv, &login, 2);
    srv.until_parked(1).await;
    let url = srv.url.clone();
    // Stopping waits for the parked request: it is answered, not cut.
    srv.stop().await;
    let r = poll.await.expect("joined").expect("answered, not reset");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.expect("json")["status"],
        "pending"
    );
    assert!(
        reqwest::get(format!("{url}/healthz")).await.is_err(),
        "no longer listening"
    );
}

/// Raw HTTP/1.1 on a fresh connection: the status line's code, or `None`
/// when the server closed the connection without answering.
async fn raw_status(srv: &TestServer, request: &[u8]) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = srv.url.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // The server may close before reading everything (that is the point).
    let _ = conn.write_all(request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(15),
        conn.read_to_end(&mut answer),
    )
    .await
    .expect("the server answers or closes within 15 s");
    let head = String::from_utf8_lossy(&answer);
    head.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_slow_request_heads_are_refused() {
    let srv = TestServer::start(Backend::Embedded).await;
    // One header of 200 KiB: 431, and the server carries on.
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Junk: {}\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    assert_eq!(raw_status(&srv, huge.as_bytes()).await, Some(431));
    // 200 small headers: 431.
    let many = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\n{}\r\n",
        (0..200)
            .map(|i| format!("X-H{i}: v\r\n"))
            .collect::<String>()
    );
    assert_eq!(raw_status(&srv, many.as_bytes()).await, Some(431));
    // A head that never ends (slowloris): answered 408 after the request timeout.
    let slow = raw_status(&srv, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await;
    assert_eq!(slow, Some(408));
    // A large credential within the head limit reaches the app: a JSON 401.
    let r = srv
        .http
        .get(format!("{}/v1/admin/audit", srv.url))
        .bearer_auth("t".repeat(64 * 1024))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 401);
    let body: ErrorBody = r.json().await.expect("json");
    assert_eq!(body.error.as_str(), "unauthorized");
    let ok = srv
        .http
        .get(format!("{}/healthz", srv.url))
        .send()
        .await
        .expect("healthy");
    assert_eq!(ok.status(), 200);
}

/// Security round 2, finding 10: a head followed by no body bytes (JSON,
/// form or chunked) kept the connection for over 75 s; the 5 s slowloris
/// limit covered heads only. Now a body must arrive within the deadline
/// (10 s): a 4xx JSON answer, and the server carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_arrives_is_answered_in_time() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let srv = TestServer::start(Backend::Embedded).await;
    let addr = srv.url.trim_start_matches("http://").to_owned();
    let heads = [
        (
            "JSON",
            "POST /v1/logins HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n{\"user",
            408,
        ),
        (
            "chunked",
            "POST /v1/logins HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            408,
        ),
        (
            "form",
            "POST /counter/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 40\r\n\r\n",
            400,
        ),
    ];
    let waits = heads.map(|(what, head, want)| {
        let addr = addr.clone();
        tokio::spawn(async move {
            let mut conn = tokio::net::TcpStream::connect(&addr)
                .await
                .expect("connect");
            conn.write_all(head.as_bytes()).await.expect("head");
            // Read the answer's head (bounded: the deadline is 10 s, this waits 20 s at most).
            let mut answer = Vec::new();
            let mut buf = [0u8; 4096];
            let read = tokio::time::timeout(std::time::Duration::from_secs(20), async {
                while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = conn.read(&mut buf).await.expect("read");
                    if n == 0 {
                        break;
                    }
                    answer.extend_from_slice(&buf[..n]);
                }
            })
            .await;
            assert!(read.is_ok(), "{what}: answered within 20 s");
            let text = String::from_utf8_lossy(&answer).to_string();
            let status: u16 = text
                .strip_prefix("HTTP/1.1 ")
                .and_then(|r| r.get(..3))
                .and_then(|c| c.parse().ok())
                .unwrap_or_else(|| panic!("{what}: no status in {text:?}"));
            assert_eq!(status, want, "{what}: {text}");
            assert!(
                text.to_ascii_lowercase()
                    .contains("content-type: application/json"),
                "{what}: a JSON error: {text}"
            );
        })
    });
    for w in waits {
        w.await.expect("joined");
    }
    let ok = srv
        .http
        .get(format!("{}/healthz", srv.url))
        .send()
        .await
        .expect("healthy");
    assert_eq!(ok.status(), 200);
}
