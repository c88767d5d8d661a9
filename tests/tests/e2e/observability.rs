//! What operators see: metrics with exact counts after a known flow, checked
//! by `promtool` on a live scrape; request ids; the separate metrics listener.

use std::process::Command;

use potvrda_e2e::{Backend, Options, TestServer};
use potvrda_proto::jose::Decision;

use crate::support::*;

crate::on_both_stores!(metrics_count_a_known_flow_exactly);

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .unwrap_or_else(|| panic!("{series} not in scrape:\n{text}"))
        .trim()
        .parse()
        .expect("number")
}

async fn scrape(srv: &TestServer) -> String {
    let r = srv
        .http
        .get(format!("{}/metrics", srv.url))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain; version=0.0.4")
    );
    r.text().await.expect("text")
}

async fn metrics_count_a_known_flow_exactly(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mut endpoint = push_endpoint().await;
    let c = citizen(&srv, Some(&endpoint)).await;
    assert_eq!(
        srv.login_raw(&c.account.username, "wrong").await.status(),
        401
    );
    let login = login(&srv, &c).await;
    let challenge = next_push(&mut endpoint, &c.phone).await;
    c.phone.acknowledge(&challenge).await.expect("acknowledged");
    c.phone
        .acknowledge(&challenge)
        .await
        .expect("a repeat is harmless");
    let parked = long_poll(&srv, &login, 30);
    srv.until_parked(1).await;
    let during = scrape(&srv).await;
    assert_eq!(value(&during, "potvrda_long_polls_waiting"), 1.0);
    assert_eq!(value(&during, "potvrda_challenges_pending"), 1.0);
    c.phone
        .answer(&challenge, Decision::Approve, Some(login.number))
        .await
        .expect("approved");
    assert_eq!(
        parked.await.expect("joined").expect("request").status(),
        200
    );

    let text = scrape(&srv).await;
    for (series, want) in [
        (r#"potvrda_logins_total{result="challenged"}"#, 1.0),
        (r#"potvrda_logins_total{result="invalid_credentials"}"#, 1.0),
        (r#"potvrda_logins_total{result="no_device"}"#, 0.0),
        ("potvrda_tokens_issued_total", 1.0),
        ("potvrda_password_verify_seconds_count", 2.0),
        ("potvrda_approval_to_token_seconds_count", 1.0),
        (
            r#"potvrda_challenge_decision_seconds_count{outcome="approved"}"#,
            1.0,
        ),
        (
            r#"potvrda_push_delivery_seconds_count{result="accepted"}"#,
            1.0,
        ),
        (
            r#"potvrda_challenge_stage_seconds_count{stage="push_accepted"}"#,
            1.0,
        ),
        (
            r#"potvrda_challenge_stage_seconds_count{stage="seen"}"#,
            1.0,
        ),
        (
            r#"potvrda_challenge_stage_seconds_count{stage="decided"}"#,
            1.0,
        ),
        (
            r#"potvrda_challenge_stage_seconds_count{stage="token"}"#,
            1.0,
        ),
        ("potvrda_long_polls_waiting", 0.0),
        ("potvrda_fatigue_pauses_total", 0.0),
        (r#"potvrda_audit_events_total{kind="token_issued"}"#, 1.0),
        (r#"potvrda_audit_events_total{kind="login_approved"}"#, 1.0),
        ("potvrda_audit_write_errors_total", 0.0),
    ] {
        assert_eq!(value(&text, series), want, "{series}");
    }
    assert!(
        text.contains(r#"potvrda_http_request_duration_seconds_count{route="/v1/logins/{login_id}",method="GET",status="2xx"}"#),
        "requests are labelled by route template, not by path:\n{text}"
    );
    assert!(!text.contains(login.login_id.as_str()), "no ids in labels");
    assert!(text.contains(r#"potvrda_approval_to_token_seconds_bucket{le="0.0001"}"#));

    // promtool, the Prometheus project's own linter, accepts the scrape.
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!(
            "promtool is needed ({e}): Debian `apt-get install -y prometheus` (scripts/test.sh installs it)"
        ),
    };
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(text.as_bytes()).expect("write");
    }
    let out = child.wait_with_output().expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_echoed_or_made() {
    let srv = TestServer::start(Backend::Embedded).await;
    let get = |id: Option<&'static str>| {
        let mut r = srv.http.get(format!("{}/healthz", srv.url));
        if let Some(id) = id {
            r = r.header("X-Request-Id", id);
        }
        r.send()
    };
    let r = get(Some("portal-7f3a-0001")).await.expect("request");
    assert_eq!(r.headers()["x-request-id"], "portal-7f3a-0001");
    let r = get(Some("bad id with spaces")).await.expect("request");
    let made = r.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_ne!(made, "bad id with spaces");
    assert_eq!(
        uuid::Uuid::parse_str(&made)
            .expect("a UUID")
            .get_version_num(),
        4
    );
    let r = get(None).await.expect("request");
    assert!(uuid::Uuid::parse_str(r.headers()["x-request-id"].to_str().expect("ascii")).is_ok());
    // Error answers carry it too.
    let r = srv
        .http
        .get(format!("{}/v1/nothing", srv.url))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 404);
    assert!(r.headers().contains_key("x-request-id"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_have_their_own_listener() {
    let srv = TestServer::start_with(Options {
        metrics_listen: true,
        ..Options::new(Backend::Embedded)
    })
    .await;
    let public = srv
        .http
        .get(format!("{}/metrics", srv.url))
        .send()
        .await
        .expect("request");
    assert_eq!(public.status(), 404, "not on the public listener");
    let addr = srv.metrics_addr().expect("metrics listener");
    let private = srv
        .http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("request");
    assert_eq!(private.status(), 200);
    assert!(
        private
            .text()
            .await
            .expect("text")
            .contains("potvrda_logins_total")
    );
}

/// Security round 2, finding 11: without `METRICS_LISTEN`, `/metrics` was on
/// the public listener for anyone. Now it answers only a scraper on this
/// host: a request forwarded by a proxy (from the internet) gets 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_the_public_listener_are_for_this_host_only() {
    let srv = TestServer::start(Backend::Embedded).await;
    let local = srv
        .http
        .get(format!("{}/metrics", srv.url))
        .send()
        .await
        .expect("request");
    assert_eq!(local.status(), 200, "a scraper on this host");
    for (name, value) in [
        ("X-Forwarded-For", "203.0.113.7"),
        ("Forwarded", "for=203.0.113.7"),
    ] {
        let r = srv
            .http
            .get(format!("{}/metrics", srv.url))
            .header(name, value)
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 404, "through a proxy ({name})");
        let body: potvrda_proto::ErrorBody = r.json().await.expect("JSON");
        assert_eq!(body.error.as_str(), "no_such_endpoint");
    }
}
