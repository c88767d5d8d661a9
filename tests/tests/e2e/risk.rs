//! Risk-adaptive push (security round 2), mounted: every branch of the
//! policy — an ordinary login, a new address said on the phone, the
//! six-digit code typed on the phone, a suppressed notification, each
//! signal, and a configured policy — on every store.

use potvrda_e2e::{Backend, Options, TestServer};
use potvrda_mobile_core::Challenge;
use potvrda_proto::api::{AuditEvent, AuditKind, LoginResponse};
use potvrda_proto::jose::{Decision, RiskLevel, RiskReason};
use serde_json::json;

use crate::support::*;

crate::on_both_stores!(
    an_ordinary_login_is_as_before_and_a_new_address_is_said_on_the_phone,
    a_risky_login_asks_for_the_code_not_the_number,
    a_high_risk_login_sends_no_notification,
    dormancy_velocity_and_a_new_device_are_signals,
);

const HOME: &str = "203.0.113.7";

async fn server(backend: Backend, weights: &str) -> TestServer {
    TestServer::start_with(Options {
        trusted_proxies: vec!["127.0.0.1".into()],
        risk_weights: weights.into(),
        limits: (100, 900, 100, 900),
        metrics_listen: true,
        ..Options::new(backend)
    })
    .await
}

/// A login of `c` from `ip`, for a portal service.
async fn login_from(srv: &TestServer, c: &Citizen, ip: &str) -> LoginResponse {
    let r = srv
        .portal(srv.http.post(format!("{}/v1/logins", srv.url)))
        .header("X-Forwarded-For", ip)
        .json(
            &json!({"username": c.account.username, "password": c.account.initial_password,
                      "context": {"service": "eUprava", "ip": ip}}),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 201, "login accepted");
    r.json().await.expect("json")
}

/// Log in from `ip` and approve with the number: the citizen's baseline.
async fn approved_from(srv: &TestServer, c: &Citizen, ip: &str) {
    let l = login_from(srv, c, ip).await;
    c.phone
        .answer(&pulled(&c.phone).await, Decision::Approve, Some(l.number))
        .await
        .expect("approved");
}

/// The `login_started` event of a login.
async fn started(srv: &TestServer, login_id: &str) -> AuditEvent {
    srv.audit("limit=1000")
        .await
        .events
        .into_iter()
        .find(|e| e.kind == AuditKind::LoginStarted && e.detail["login_id"] == login_id)
        .expect("login_started")
}

fn reasons(ch: &Challenge) -> Vec<RiskReason> {
    ch.claims
        .risk
        .as_ref()
        .map(|r| r.reasons.clone())
        .unwrap_or_default()
}

async fn an_ordinary_login_is_as_before_and_a_new_address_is_said_on_the_phone(backend: Backend) {
    let srv = server(backend, "").await;
    let c = citizen(&srv, None).await;
    // The first login: no baseline yet, nothing is risky.
    let l = login_from(&srv, &c, HOME).await;
    assert!(l.code.is_none() && !l.push_suppressed);
    let ch = pulled(&c.phone).await;
    assert!(
        ch.claims.risk.is_none(),
        "an ordinary challenge is as in version 1"
    );
    c.phone
        .answer(&ch, Decision::Approve, Some(l.number))
        .await
        .expect("approved");
    let e = started(&srv, &l.login_id).await;
    assert_eq!(
        (
            e.detail["risk_score"].clone(),
            e.detail["risk_level"].clone()
        ),
        (json!(0), json!("low"))
    );
    // Again from home: still nothing.
    let l = login_from(&srv, &c, HOME).await;
    assert!(pulled(&c.phone).await.claims.risk.is_none() && l.code.is_none());
    // From a new address: the phone says so, inside the signed challenge;
    // one weak signal stays low (the number still works).
    let l = login_from(&srv, &c, "198.51.100.20").await;
    assert!(l.code.is_none());
    let ch = pulled(&c.phone).await;
    let risk = ch.claims.risk.clone().expect("risk");
    assert_eq!(
        (risk.level, risk.reasons.clone(), risk.code_digits),
        (RiskLevel::Low, vec![RiskReason::NewAddress], None)
    );
    assert_eq!(
        potvrda_mobile_core::protocol::notices(&ch, potvrda_i18n::Locale::Hu),
        vec!["Első bejelentkezés erről a címről".to_owned()]
    );
    c.phone
        .answer(&ch, Decision::Approve, Some(l.number))
        .await
        .expect("approved");
    let e = started(&srv, &l.login_id).await;
    assert_eq!(e.detail["risk_reasons"], json!(["new_address"]));
    // Approved from there: now a known address.
    let _ = login_from(&srv, &c, "198.51.100.20").await;
    assert!(!reasons(&pulled(&c.phone).await).contains(&RiskReason::NewAddress));
}

async fn a_risky_login_asks_for_the_code_not_the_number(backend: Backend) {
    let srv = server(backend, "").await;
    let c = citizen(&srv, None).await;
    approved_from(&srv, &c, HOME).await;
    // A denial makes the next login elevated: a six-digit code instead of the number.
    let _ = login_from(&srv, &c, HOME).await;
    c.phone
        .answer(&pulled(&c.phone).await, Decision::Deny, None)
        .await
        .expect("denied");
    let l = login_from(&srv, &c, HOME).await;
    let code = l.code.clone().expect("a code for the login screen");
    assert!(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        "{code}"
    );
    assert!(!l.push_suppressed);
    let ch = pulled(&c.phone).await;
    let risk = ch.claims.risk.clone().expect("risk");
    assert_eq!(
        (risk.level, risk.code_digits),
        (RiskLevel::Elevated, Some(6))
    );
    assert_eq!(risk.reasons, vec![RiskReason::RecentDenials]);
    // The phone will not sign the two-digit number for it …
    let refused = c.phone.answer(&ch, Decision::Approve, Some(l.number)).await;
    assert!(
        matches!(refused, Err(potvrda_mobile_core::Error::NumberRequired)),
        "{refused:?}"
    );
    // … nor a code of the wrong length.
    let refused = c.phone.answer_code(&ch, "12345").await;
    assert!(
        matches!(refused, Err(potvrda_mobile_core::Error::NumberRequired)),
        "{refused:?}"
    );
    // A device that signs the number anyway (not our core): the server
    // takes it as a wrong answer, and the login is denied.
    let forged = potvrda_mobile_core::jws::sign(
        c.phone.signer(),
        potvrda_proto::jose::TYP_APPROVAL,
        Some(&c.phone.state.device.device_id),
        &potvrda_proto::jose::ApprovalClaims {
            cid: ch.claims.cid.clone(),
            nonce: ch.claims.nonce.clone(),
            decision: Decision::Approve,
            number: Some(l.number),
            iat: potvrda_e2e::now(),
            ctx_hash: Some(potvrda_mobile_core::protocol::ctx_hash(&ch.jws).expect("hash")),
            jti: Some(uuid::Uuid::new_v4().to_string()),
            code: None,
            uv: None,
            key: None,
        },
    )
    .expect("signs");
    let r = c.phone.post_approval(&ch.claims.cid, &forged).await;
    assert!(format!("{r:?}").contains("number_mismatch"), "{r:?}");
    assert_eq!(
        srv.status(&l.login_id, l.login_secret.expose(), 0)
            .await
            .status,
        potvrda_proto::api::LoginStatus::Denied
    );
    // A new login (the code is per login), to try a wrong code.
    let l = login_from(&srv, &c, HOME).await;
    let code = l.code.clone().expect("code");
    let ch = pulled(&c.phone).await;
    // A wrong code denies it (422), as a wrong number does.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = c.phone.answer_code(&ch, wrong).await;
    assert!(format!("{r:?}").contains("number_mismatch"), "{r:?}");
    assert_eq!(
        srv.status(&l.login_id, l.login_secret.expose(), 0)
            .await
            .status,
        potvrda_proto::api::LoginStatus::Denied
    );
    // The right code approves, and the token comes as always.
    let l = login_from(&srv, &c, HOME).await;
    let ch = pulled(&c.phone).await;
    c.phone
        .answer_code(&ch, &l.code.clone().expect("code"))
        .await
        .expect("approved");
    let s = srv.status(&l.login_id, l.login_secret.expose(), 0).await;
    assert!(s.access_token.is_some());
}

async fn a_high_risk_login_sends_no_notification(backend: Backend) {
    let srv = server(backend, "").await;
    let (_, sa) = staff(&srv, &srv.token, "superadmin", None).await;
    let mut endpoint = push_endpoint().await;
    let c = citizen(&srv, Some(&endpoint)).await;
    approved_from(&srv, &c, HOME).await;
    let _ = next_push(&mut endpoint, &c.phone).await;
    // The citizen reports a login as fraud; the counter unlocks after checking.
    let _ = login_from(&srv, &c, HOME).await;
    let _ = next_push(&mut endpoint, &c.phone).await;
    c.phone
        .answer(&pulled(&c.phone).await, Decision::Fraud, None)
        .await
        .expect("reported");
    let r = post(
        &srv,
        &format!("/v1/admin/citizens/{}/unlock", c.account.user_id),
        Some(&sa),
        json!({}),
    )
    .await;
    assert_eq!(r.status(), 204);
    let pushes = endpoint.attempts();
    // The next login, from an address never seen: high. No notification;
    // the challenge waits in the app with the reasons.
    let l = login_from(&srv, &c, "198.51.100.30").await;
    assert!(
        l.push_suppressed,
        "the login screen tells the citizen to open the app"
    );
    let code = l.code.clone().expect("the code as well");
    let ch = pulled(&c.phone).await;
    let risk = ch.claims.risk.clone().expect("risk");
    assert_eq!(risk.level, RiskLevel::High);
    assert_eq!(
        risk.reasons,
        vec![
            RiskReason::NewAddress,
            RiskReason::RecentDenials,
            RiskReason::RecentFraudReport
        ]
    );
    assert_eq!(
        potvrda_mobile_core::protocol::notices(&ch, potvrda_i18n::Locale::SrCyrl),
        [
            "Прва пријава са ове адресе",
            "Недавно сте одбили пријаву",
            "Недавно сте пријавили злоупотребу"
        ]
    );
    c.phone
        .answer_code(&ch, &code)
        .await
        .expect("approved in the app");
    let e = started(&srv, &l.login_id).await;
    assert_eq!(e.detail["push_suppressed"], true);
    assert_eq!(e.detail["risk_level"], "high");
    assert_eq!(e.detail["risk_score"], 6);
    // Another citizen on the same push service logs in afterwards: theirs
    // is the next push, and the only one since the suppressed login.
    let other = citizen(&srv, Some(&endpoint)).await;
    let _ = login_from(&srv, &other, HOME).await;
    let pushed = next_push(&mut endpoint, &other.phone).await;
    assert_eq!(pushed.claims.aud, other.phone.state.device.device_id);
    assert_eq!(
        endpoint.attempts(),
        pushes + 1,
        "nothing was pushed for the suppressed login"
    );
    // Counted by level.
    let addr = srv.metrics_addr().expect("metrics listener");
    let metrics = srv
        .http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let count = |level: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(&format!("potvrda_login_risk_total{{level=\"{level}\"}}")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert!(count("high") >= 1.0 && count("low") >= 3.0, "{metrics}");
}

async fn dormancy_velocity_and_a_new_device_are_signals(backend: Backend) {
    // Each signal weighs 5 here: alone it is high; the configured policy holds.
    let srv = server(backend, "dormant=5,velocity=5,new_device=5,new_address=0").await;
    let (_, sa) = staff(&srv, &srv.token, "superadmin", None).await;
    let c = citizen(&srv, None).await;
    approved_from(&srv, &c, HOME).await;
    // The phone enrolled at the counter before the first login is no new device.
    let _ = login_from(&srv, &c, HOME).await;
    assert!(reasons(&pulled(&c.phone).await).is_empty());
    // A minute later the phone is lost: a reset, and a new phone enrolls.
    srv.clock.advance(60);
    let r = post(
        &srv,
        &format!("/v1/admin/citizens/{}/reset", c.account.user_id),
        Some(&sa),
        json!({}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let account: potvrda_proto::api::CreateCitizenResponse = r.json().await.expect("json");
    let mut phone = potvrda_mobile_core::phone::VirtualPhone::enroll(
        &srv.url,
        account.activation_code.expose(),
        "new phone",
        None,
    )
    .await
    .expect("enrolls");
    phone.set_clock_offset(60);
    let mut c = Citizen { account, phone };
    let l = login_from(&srv, &c, HOME).await;
    assert_eq!(
        reasons(&pulled(&c.phone).await),
        vec![RiskReason::NewDevice]
    );
    assert!(
        l.push_suppressed,
        "weight 5 reaches the default suppress threshold"
    );
    // 91 days later: dormant (and the device is no longer new).
    srv.clock.advance(91 * 86_400);
    c.phone.set_clock_offset(60 + 91 * 86_400);
    let l = login_from(&srv, &c, HOME).await;
    let ch = pulled(&c.phone).await;
    assert_eq!(reasons(&ch), vec![RiskReason::Dormant]);
    c.phone
        .answer_code(&ch, &l.code.expect("code"))
        .await
        .expect("approved");
    // Several logins in 15 minutes: past the third, a burst.
    let mut seen = Vec::new();
    for _ in 0..5 {
        let _ = login_from(&srv, &c, HOME).await;
        seen.push(reasons(&pulled(&c.phone).await));
    }
    assert_eq!(
        seen[..2],
        [vec![], vec![]],
        "with the dormant one, three logins are ordinary"
    );
    assert_eq!(
        seen[2..],
        [
            vec![RiskReason::Velocity],
            vec![RiskReason::Velocity],
            vec![RiskReason::Velocity]
        ]
    );
    let _ = &mut c;
}
