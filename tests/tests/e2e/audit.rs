//! The audit trail, on every store: every security act of a login is
//! recorded with who, where and which ids, never a secret; refusals, denials,
//! expiries and fatigue pauses are there; pages, filters and the JSON Lines
//! export agree; the admin endpoints refuse everyone but the admin.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use potvrda_e2e::{Backend, Options, TestServer};
use potvrda_proto::api::{AuditEvent, AuditKind, LoginStatus, Severity};
use potvrda_proto::jose::Decision;
use potvrda_server::clock::Clock;

use crate::support::*;

crate::on_both_stores!(
    a_login_is_audited_end_to_end_without_secrets,
    refusals_denials_and_pauses_are_audited,
    an_expired_challenge_is_audited_and_counts_toward_the_pause,
    pages_filters_and_export_agree,
    only_the_admin_reads_the_trail,
    events_past_the_retention_are_gone,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_trail_survives_a_restart() {
    let srv = TestServer::start(Backend::Embedded).await;
    let a = srv.create_citizen(&potvrda_e2e::unique("a")).await;
    let dir = srv.data_dir.clone();
    let _keep = srv.stop().await;
    let srv = TestServer::start_with(Options {
        data_dir: Some(dir),
        ..Options::new(Backend::Embedded)
    })
    .await;
    let b = srv.create_citizen(&potvrda_e2e::unique("b")).await;
    let events = srv.audit("limit=1000").await.events;
    let created: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == AuditKind::CitizenCreated)
        .filter_map(|e| e.user_id.as_deref())
        .collect();
    assert_eq!(created, [a.user_id.as_str(), b.user_id.as_str()]);
    // The chain goes on where it stopped: one chain across the restart.
    let jwks: potvrda_proto::jose::Jwks = srv
        .http
        .get(format!("{}/.well-known/audit-jwks.json", srv.url))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("jwks");
    let mut verifier = potvrda_server::audit::verify::Verifier::new(
        potvrda_server::audit::verify::Scope::National,
        &jwks,
    );
    assert!(events.iter().all(|e| verifier.push(e)));
    let report = verifier.finish();
    assert_eq!(
        (report.broken, report.heads.national.n),
        (None, events.len() as u64)
    );
}

fn kinds(events: &[AuditEvent]) -> Vec<AuditKind> {
    events.iter().map(|e| e.kind).collect()
}

fn one(events: &[AuditEvent], kind: AuditKind) -> &AuditEvent {
    let mut found = events.iter().filter(|e| e.kind == kind);
    let e = found
        .next()
        .unwrap_or_else(|| panic!("no {kind:?} in {events:#?}"));
    assert!(found.next().is_none(), "one {kind:?}");
    e
}

fn detail<'a>(e: &'a AuditEvent, key: &str) -> &'a str {
    e.detail[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {e:?}"))
}

fn claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("JWT payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json")
}

async fn export(srv: &TestServer, query: &str) -> reqwest::Response {
    srv.http
        .get(format!("{}/v1/admin/audit/export?{query}", srv.url))
        .bearer_auth(&srv.token)
        .send()
        .await
        .expect("request")
}

async fn a_login_is_audited_end_to_end_without_secrets(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mut endpoint = push_endpoint().await;
    let c = citizen(&srv, Some(&endpoint)).await;
    let resp = srv
        .portal(srv.http.post(format!("{}/v1/logins", srv.url)))
        .header("User-Agent", "eUprava-portal/3.1")
        .json(&serde_json::json!({
            "username": c.account.username,
            "password": c.account.initial_password,
        }))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 201);
    let login: potvrda_proto::api::LoginResponse = resp.json().await.expect("json");
    let challenge = next_push(&mut endpoint, &c.phone).await;
    c.phone
        .answer(&challenge, Decision::Approve, Some(login.number))
        .await
        .expect("approved");
    let token = srv
        .status(&login.login_id, login.login_secret.expose(), 5)
        .await
        .access_token
        .expect("token");
    let token_claims = claims(&token);

    let uid = &c.account.user_id;
    let events = srv
        .audit_until(uid, |e| {
            [AuditKind::PushSent, AuditKind::TokenIssued]
                .iter()
                .all(|k| e.iter().any(|x| x.kind == *k))
        })
        .await;
    let order: Vec<AuditKind> = kinds(&events)
        .into_iter()
        .filter(|k| *k != AuditKind::PushSent)
        .collect();
    assert_eq!(
        order,
        [
            AuditKind::CitizenCreated,
            AuditKind::DeviceEnrolled,
            AuditKind::RecoveryCodesIssued,
            AuditKind::LoginStarted,
            AuditKind::LoginApproved,
            AuditKind::TokenIssued,
        ]
    );
    let created = one(&events, AuditKind::CitizenCreated);
    assert_eq!(created.actor_id.as_deref(), Some("bootstrap"));
    let enrolled = one(&events, AuditKind::DeviceEnrolled);
    assert_eq!(
        detail(enrolled, "device_id"),
        c.phone.state.device.device_id
    );
    let started = one(&events, AuditKind::LoginStarted);
    assert_eq!(started.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(started.user_agent.as_deref(), Some("eUprava-portal/3.1"));
    assert_eq!(detail(started, "login_id"), login.login_id);
    let pushed = one(&events, AuditKind::PushSent);
    assert_eq!(detail(pushed, "device_id"), c.phone.state.device.device_id);
    // What the phone signed and what the token says agree, by the approval's jti.
    let approved = one(&events, AuditKind::LoginApproved);
    assert_eq!(
        detail(approved, "device_id"),
        c.phone.state.device.device_id
    );
    assert_eq!(
        detail(approved, "approval_jti"),
        token_claims["approval_jti"].as_str().expect("approval_jti")
    );
    assert_eq!(
        detail(approved, "ctx_hash"),
        potvrda_mobile_core::protocol::ctx_hash(&challenge.jws).expect("hash")
    );
    let issued = one(&events, AuditKind::TokenIssued);
    assert_eq!(
        detail(issued, "jti"),
        token_claims["jti"].as_str().expect("jti")
    );
    assert_eq!(
        detail(issued, "approval_jti"),
        detail(approved, "approval_jti")
    );
    assert!(events.iter().all(|e| e.severity == Severity::Info));

    // Nothing secret anywhere in the trail.
    let r = export(&srv, &format!("user_id={uid}")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let all = r.text().await.expect("body");
    assert_eq!(all.lines().count(), events.len());
    let code = c.account.activation_code.expose().replace('-', "");
    for secret in [
        c.account.initial_password.expose(),
        c.account.activation_code.expose(),
        &code,
        login.login_secret.expose(),
        token.as_str(),
        token.split('.').nth(2).expect("signature"),
        srv.token.as_str(),
    ] {
        assert!(
            !all.contains(secret),
            "a secret leaked into the audit trail"
        );
    }
}

async fn refusals_denials_and_pauses_are_audited(backend: Backend) {
    let srv = TestServer::start_with(Options {
        limits: (100, 900, 2, 600),
        ..Options::new(backend)
    })
    .await;
    let c = citizen(&srv, None).await;
    let uid = &c.account.user_id;
    assert_eq!(
        srv.login_raw(&c.account.username, "wrong password")
            .await
            .status(),
        401
    );
    login(&srv, &c).await;
    c.phone
        .answer(&pulled(&c.phone).await, Decision::Deny, None)
        .await
        .expect("denied");
    let l = login(&srv, &c).await;
    // After the denial the login is risky: a wrong code is the mismatch.
    let ch = pulled(&c.phone).await;
    let r = approve_wrongly(&c.phone, &ch, l.number, l.code.as_deref()).await;
    assert_eq!(server_error(r).0, 422);
    // Paused now: the next login is refused before any push.
    assert_eq!(
        srv.login_raw(&c.account.username, c.account.initial_password.expose())
            .await
            .status(),
        429
    );
    let events = srv.audit(&format!("user_id={uid}")).await.events;
    let failed: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == AuditKind::LoginFailed)
        .map(|e| detail(e, "reason"))
        .collect();
    assert_eq!(failed, ["invalid_credentials", "push_limited"]);
    let denied: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == AuditKind::LoginDenied)
        .map(|e| detail(e, "reason"))
        .collect();
    assert_eq!(denied, ["denied", "number_mismatch"]);
    let paused = one(&events, AuditKind::FatiguePaused);
    assert_eq!(paused.severity, Severity::Warning);
    assert_eq!(paused.detail["until"], srv.clock.now() + 600);
    // A pause comes after the denial that caused it.
    let pos = |k| events.iter().position(|e| e.kind == k).expect("present");
    assert!(pos(AuditKind::FatiguePaused) > pos(AuditKind::LoginDenied));

    // An enrollment with a bad code is audited with its address, without the code.
    let bad_code = "ABCD-EFGH-JKMN";
    let r = potvrda_mobile_core::phone::VirtualPhone::enroll(&srv.url, bad_code, "x", None).await;
    assert_eq!(server_error(r), (400, "invalid_activation_code".into()));
    let since = srv.clock.now();
    let recent = srv.audit(&format!("since={since}&limit=1000")).await.events;
    let failed = recent
        .iter()
        .find(|e| e.kind == AuditKind::EnrollmentFailed)
        .expect("enrollment_failed");
    assert_eq!(detail(failed, "reason"), "invalid_activation_code");
    assert_eq!(failed.ip.as_deref(), Some("127.0.0.1"));
    assert!(
        !serde_json::to_string(failed)
            .expect("json")
            .contains("JKMN")
    );
}

async fn an_expired_challenge_is_audited_and_counts_toward_the_pause(backend: Backend) {
    let srv = TestServer::start_with(Options {
        limits: (100, 900, 1, 300),
        ..Options::new(backend)
    })
    .await;
    let c = citizen(&srv, None).await;
    let l = login(&srv, &c).await;
    // Nobody answers; the server's clock passes the challenge's expiry.
    srv.clock.advance(61);
    let events = srv
        .audit_until(&c.account.user_id, |e| {
            e.iter().any(|x| x.kind == AuditKind::FatiguePaused)
        })
        .await;
    let expired = one(&events, AuditKind::LoginExpired);
    assert_eq!(detail(expired, "login_id"), l.login_id);
    assert_eq!(
        srv.status(&l.login_id, l.login_secret.expose(), 0)
            .await
            .status,
        LoginStatus::Expired
    );
    assert_eq!(
        srv.login_raw(&c.account.username, c.account.initial_password.expose())
            .await
            .status(),
        429,
        "one expired challenge in a row pauses pushes at FATIGUE_LIMIT=1"
    );
}

async fn pages_filters_and_export_agree(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let a = srv.create_citizen(&potvrda_e2e::unique("a")).await;
    srv.clock.advance(100);
    let t_b = srv.clock.now();
    let b = srv.create_citizen(&potvrda_e2e::unique("b")).await;
    let c = srv.create_citizen(&potvrda_e2e::unique("c")).await;
    srv.clock.advance(100);
    let d = srv.create_citizen(&potvrda_e2e::unique("d")).await;
    let ours = [&a, &b, &c, &d].map(|x| x.user_id.clone());

    // Pages of two, followed by `next_after`, give every event once, in order.
    // (Only this test's citizens are counted.)
    let since = t_b - 100;
    let mut paged = Vec::new();
    let mut after = String::new();
    loop {
        let page = srv.audit(&format!("since={since}&limit=2{after}")).await;
        assert!(page.events.len() <= 2);
        paged.extend(page.events);
        match page.next_after {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    let mine = |events: &[AuditEvent]| -> Vec<String> {
        events
            .iter()
            .filter_map(|e| e.user_id.clone())
            .filter(|u| ours.iter().any(|o| o == u))
            .collect()
    };
    assert_eq!(mine(&paged), ours);
    let ids: Vec<&String> = paged.iter().map(|e| &e.id).collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(ids, unique, "no event twice");

    let lines: Vec<AuditEvent> = export(&srv, &format!("since={since}"))
        .await
        .text()
        .await
        .expect("body")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one event per line"))
        .collect();
    assert_eq!(mine(&lines), ours);

    // Time range: only b and c were created in [t_b, t_b + 99].
    let window = srv
        .audit(&format!("since={t_b}&until={}&limit=1000", t_b + 99))
        .await
        .events;
    assert_eq!(mine(&window), [b.user_id.clone(), c.user_id.clone()]);
    // One citizen.
    let only_c = srv.audit(&format!("user_id={}", c.user_id)).await.events;
    assert_eq!(mine(&only_c), std::slice::from_ref(&c.user_id));
    // One actor: the bootstrap admin created all four.
    let by_admin = srv
        .audit(&format!("actor_id=bootstrap&since={since}&limit=1000"))
        .await
        .events;
    assert_eq!(mine(&by_admin), ours);

    // Extreme but well-formed bounds are empty answers, not overflows.
    for extreme in [
        format!("since={}", i64::MAX),
        format!("until={}", i64::MIN),
        format!("since={}&until={}", i64::MIN, i64::MAX),
        format!("after={}-{}", u64::MAX, u64::MAX),
    ] {
        let r = srv.audit(&extreme).await;
        let all = extreme.starts_with("since=-");
        assert_eq!(r.events.is_empty(), !all, "{extreme}");
    }
    // Bad queries are 400s.
    for bad in [
        "after=nonsense",
        "limit=0",
        "limit=1001",
        "since=yesterday",
        "colour=blue",
        &format!("user_id={}", "x".repeat(65)),
    ] {
        let r = srv
            .http
            .get(format!("{}/v1/admin/audit?{bad}", srv.url))
            .bearer_auth(&srv.token)
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 400, "{bad}");
        let body: potvrda_proto::ErrorBody = r.json().await.expect("json error");
        assert_eq!(body.error.as_str(), "invalid_request");
    }
}

async fn events_past_the_retention_are_gone(backend: Backend) {
    let srv = TestServer::start_with(Options {
        audit_retention: 3600,
        ..Options::new(backend)
    })
    .await;
    let old = srv.create_citizen(&potvrda_e2e::unique("old")).await;
    srv.clock.advance(1800);
    let newer = srv.create_citizen(&potvrda_e2e::unique("new")).await;
    let created = |events: &[AuditEvent]| {
        events
            .iter()
            .filter(|e| e.kind == AuditKind::CitizenCreated)
            .count()
    };
    assert_eq!(created(&srv.audit("limit=1000").await.events), 2);
    // An hour and a second after the first, it is past the retention; the second is not.
    srv.clock.advance(1801);
    let left: Vec<String> = srv
        .audit("limit=1000")
        .await
        .events
        .into_iter()
        .filter_map(|e| e.user_id)
        .collect();
    assert_eq!(left, std::slice::from_ref(&newer.user_id));
    let by_old = srv.audit(&format!("user_id={}", old.user_id)).await.events;
    assert!(by_old.is_empty(), "{by_old:#?}");
}

async fn only_the_admin_reads_the_trail(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let c = citizen(&srv, None).await;
    let l = login(&srv, &c).await;
    c.phone
        .answer(&pulled(&c.phone).await, Decision::Approve, Some(l.number))
        .await
        .expect("approved");
    let token = srv
        .status(&l.login_id, l.login_secret.expose(), 0)
        .await
        .access_token
        .expect("token");
    for path in ["/v1/admin/audit", "/v1/admin/audit/export"] {
        // Nobody, a wrong credential, a citizen's valid portal token: 401
        // (a portal token is no admin credential at all).
        for (credential, want) in [
            (None, 401),
            (Some("wrong"), 401),
            (Some(token.as_str()), 401),
        ] {
            let mut req = srv.http.get(format!("{}{path}", srv.url));
            if let Some(cr) = credential {
                req = req.bearer_auth(cr);
            }
            let r = req.send().await.expect("request");
            assert_eq!(r.status(), want, "{path} with {credential:?}");
        }
    }
}

/// Security round 2, finding 11: the archive job held the permanent
/// bootstrap token. The audit reader token reads the trail and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_reader_token_reads_the_trail_and_nothing_else() {
    let reader = "audit-reader-0123456789abcdef";
    let srv = TestServer::start_with(Options {
        audit_reader_token: Some(reader.into()),
        ..Options::new(Backend::Embedded)
    })
    .await;
    let c = srv.create_citizen(&potvrda_e2e::unique("c")).await;
    for path in ["/v1/admin/audit?limit=10", "/v1/admin/audit/export"] {
        let r = srv
            .http
            .get(format!("{}{path}", srv.url))
            .bearer_auth(reader)
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            r.text().await.expect("body").contains("citizen_created"),
            "{path}"
        );
    }
    // Everything else: 403, and nothing changes.
    for (path, body) in [
        (
            "/v1/admin/citizens",
            serde_json::json!({"display_name": "X"}),
        ),
        (
            "/v1/admin/staff",
            serde_json::json!({"username": "s-admin", "display_name": "S", "role": "superadmin"}),
        ),
        (
            "/v1/admin/municipalities",
            serde_json::json!({"code": "x", "name": "X"}),
        ),
        (
            &format!("/v1/admin/citizens/{}/lock", c.user_id),
            serde_json::json!({}),
        ),
        (
            &format!("/v1/admin/citizens/{}/reset", c.user_id),
            serde_json::json!({}),
        ),
    ] {
        let r = post(&srv, path, Some(reader), body).await;
        assert_eq!(r.status(), 403, "{path}");
    }
    let r = srv
        .http
        .get(format!("{}/v1/admin/citizens?query=c", srv.url))
        .bearer_auth(reader)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 403, "no citizen search");
    let r = srv
        .http
        .get(format!("{}/v1/me/devices", srv.url))
        .bearer_auth(reader)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 401, "not a portal token either");
    // The bootstrap token may still make its superadmin: the reader did not.
    let (_, sa) = staff(&srv, &srv.token, "superadmin", None).await;
    assert!(!sa.is_empty());
}
