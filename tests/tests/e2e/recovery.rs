//! When the phone is not at hand: recovery codes and the phone's offline
//! code (TOTP), on every store. Issued with
//! the first device only, single use, a wrong one counts as a failed
//! password, every use audited, never a code in the trail.

use potvrda_e2e::{Backend, Options, TestServer};
use potvrda_mobile_core::phone::VirtualPhone;
use potvrda_proto::api::{AuditKind, LoginResponse, LoginStatus};
use serde_json::json;

use crate::support::*;

crate::on_both_stores!(
    a_recovery_code_replaces_the_phone_once,
    wrong_codes_count_as_failed_passwords,
    the_offline_code_replaces_the_phone_once_per_step,
    offline_codes_stop_after_ten_wrong_ones_a_day,
);

async fn offline_codes_stop_after_ten_wrong_ones_a_day(backend: Backend) {
    use potvrda_server::clock::Clock;
    // The password's own lock is out of the way: this is the offline code's.
    let srv = TestServer::start_with(Options {
        rates: (100, 1000, 1000, 1000, 30),
        ..Options::new(backend)
    })
    .await;
    let c = citizen(&srv, None).await;
    let now = srv.clock.now();
    let valid: Vec<String> = [now - 30, now, now + 30]
        .iter()
        .map(|t| offline_code(&c.phone, *t))
        .collect();
    let mut wrong = (0..)
        .map(|i| format!("{:06}", 200_000 + i))
        .filter(|w| !valid.contains(w));
    let l = login(&srv, &c).await;
    for _ in 0..10 {
        let w = wrong.next().expect("a wrong code");
        assert_eq!(use_code(&srv, &l, l.login_secret.expose(), &w).await.0, 401);
    }
    // The eleventh try is refused even with the right code, all day…
    let right = offline_code(&c.phone, now);
    assert_eq!(
        use_code(&srv, &l, l.login_secret.expose(), &right).await.0,
        401
    );
    srv.clock.advance(23 * 3600);
    let l2 = login(&srv, &c).await;
    let later = offline_code(&c.phone, srv.clock.now());
    assert_eq!(
        use_code(&srv, &l2, l2.login_secret.expose(), &later)
            .await
            .0,
        401
    );
    // …while a recovery code still works; a day after, the offline code again.
    let codes = c.phone.recovery_codes.clone().expect("codes");
    assert_eq!(
        use_code(&srv, &l2, l2.login_secret.expose(), &codes[0])
            .await
            .0,
        200
    );
    srv.clock.advance(2 * 3600);
    let l3 = login(&srv, &c).await;
    let next_day = offline_code(&c.phone, srv.clock.now());
    assert_eq!(
        use_code(&srv, &l3, l3.login_secret.expose(), &next_day)
            .await
            .0,
        200
    );
}

/// The phone's offline code at the server's (manual) time.
fn offline_code(phone: &VirtualPhone, at: i64) -> String {
    potvrda_mobile_core::protocol::offline_code(
        phone
            .state
            .device
            .offline_secret
            .as_deref()
            .expect("an offline secret from enrollment"),
        at,
    )
    .expect("a code")
}

async fn the_offline_code_replaces_the_phone_once_per_step(backend: Backend) {
    use potvrda_server::clock::Clock;
    let srv = TestServer::start(backend).await;
    let c = citizen(&srv, None).await;
    // The phone's own clock gives the same code as the server's, within a step.
    let now = srv.clock.now();
    let mine = c.phone.offline_code().expect("code").expect("a secret");
    assert!(
        [now - 30, now, now + 30]
            .iter()
            .any(|t| offline_code(&c.phone, *t) == mine)
    );
    let l = login(&srv, &c).await;
    let code = offline_code(&c.phone, now);
    let (status, body) = use_code(&srv, &l, l.login_secret.expose(), &code).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("approved")));
    let s = srv.status(&l.login_id, l.login_secret.expose(), 0).await;
    assert!(s.access_token.is_some(), "the token, as after the phone");
    // The same step's code is spent: a replay is a wrong code.
    let l2 = login(&srv, &c).await;
    let (status, body) = use_code(&srv, &l2, l2.login_secret.expose(), &code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_credentials"))
    );
    // Two steps away is too far; the next step's code works (a slow clock).
    let far = offline_code(&c.phone, now + 90);
    assert_eq!(
        use_code(&srv, &l2, l2.login_secret.expose(), &far).await.0,
        401
    );
    let next = offline_code(&c.phone, now + 30);
    assert_eq!(
        use_code(&srv, &l2, l2.login_secret.expose(), &next).await.0,
        200
    );

    // A revoked phone's codes stop working; another phone's work.
    let (_, sa) = staff(&srv, &srv.token, "superadmin", None).await;
    let fresh: potvrda_proto::api::CreateCitizenResponse = post(
        &srv,
        &format!("/v1/admin/citizens/{}/reset", c.account.user_id),
        Some(&sa),
        json!({}),
    )
    .await
    .json()
    .await
    .expect("json");
    let second = VirtualPhone::enroll(&srv.url, fresh.activation_code.expose(), "second", None)
        .await
        .expect("enrolls");
    assert_ne!(
        second.state.device.offline_secret,
        c.phone.state.device.offline_secret
    );
    let r = srv
        .http
        .delete(format!(
            "{}/v1/admin/citizens/{}/devices/{}",
            srv.url, c.account.user_id, c.phone.state.device.device_id
        ))
        .bearer_auth(&sa)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 404, "the (lost-phone) reset revoked it already");
    srv.clock.advance(120);
    let now = srv.clock.now();
    let citizen = Citizen {
        account: fresh.clone(),
        phone: second,
    };
    let l3 = login(&srv, &citizen).await;
    let revoked = offline_code(&c.phone, now);
    assert_eq!(
        use_code(&srv, &l3, l3.login_secret.expose(), &revoked)
            .await
            .0,
        401,
        "the revoked phone's code"
    );
    let current = offline_code(&citizen.phone, now);
    assert_eq!(
        use_code(&srv, &l3, l3.login_secret.expose(), &current)
            .await
            .0,
        200
    );

    let events = srv
        .audit(&format!("user_id={}", c.account.user_id))
        .await
        .events;
    let used: Vec<_> = events
        .iter()
        .filter(|e| e.kind == AuditKind::OfflineCodeUsed)
        .collect();
    assert_eq!(used.len(), 3);
    assert_eq!(
        used[2].detail["device_id"].as_str(),
        Some(citizen.phone.state.device.device_id.as_str())
    );
    assert!(events.iter().any(|e| e.kind == AuditKind::LoginFailed
        && e.detail["reason"] == "wrong_offline_code"));
    let trail = serde_json::to_string(&events).expect("json");
    for secret in [
        &c.phone.state.device.offline_secret,
        &citizen.phone.state.device.offline_secret,
    ] {
        assert!(!trail.contains(secret.as_deref().expect("secret")));
    }
    assert!(!trail.contains(&format!("\"{code}\"")));
}

async fn use_code(
    srv: &TestServer,
    l: &LoginResponse,
    secret: &str,
    code: &str,
) -> (u16, serde_json::Value) {
    let r = srv
        .for_login(
            srv.http
                .post(format!("{}/v1/logins/{}/code", srv.url, l.login_id)),
            secret,
        )
        .json(&json!({ "code": code }))
        .send()
        .await
        .expect("request");
    (r.status().as_u16(), r.json().await.expect("json"))
}

async fn a_recovery_code_replaces_the_phone_once(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let c = citizen(&srv, None).await;
    let codes = c
        .phone
        .recovery_codes
        .clone()
        .expect("codes with the first device");
    assert_eq!(codes.len(), 10);
    assert!(
        codes
            .iter()
            .all(|c| c.len() == 11 && c.as_bytes()[5] == b'-'),
        "{codes:?}"
    );
    let l = login(&srv, &c).await;
    assert_eq!(
        use_code(&srv, &l, "wrong-secret", &codes[0]).await.0,
        401,
        "the login secret authorises"
    );
    // Typed in lower case with a space: still the code.
    let typed = codes[0].to_lowercase().replace('-', " ");
    let (status, body) = use_code(&srv, &l, l.login_secret.expose(), &typed).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("approved")));
    let s = srv.status(&l.login_id, l.login_secret.expose(), 0).await;
    assert_eq!(s.status, LoginStatus::Approved);
    assert!(
        s.access_token.is_some(),
        "the token, as after a phone approval"
    );
    assert_eq!(
        use_code(&srv, &l, l.login_secret.expose(), &codes[1])
            .await
            .0,
        409,
        "the login is decided"
    );
    // Spent: the same code fails on the next login; another one works.
    let l2 = login(&srv, &c).await;
    let (status, body) = use_code(&srv, &l2, l2.login_secret.expose(), &codes[0]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_credentials"))
    );
    assert_eq!(
        use_code(&srv, &l2, l2.login_secret.expose(), &codes[1])
            .await
            .0,
        200
    );
    // A second device gets no new codes.
    let r = srv
        .http
        .post(format!(
            "{}/v1/admin/citizens/{}/reset",
            srv.url, c.account.user_id
        ))
        .bearer_auth(&srv.token)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 403, "the bootstrap token does not reset");
    let events = srv
        .audit(&format!("user_id={}", c.account.user_id))
        .await
        .events;
    let used: Vec<_> = events
        .iter()
        .filter(|e| e.kind == AuditKind::RecoveryCodeUsed)
        .collect();
    assert_eq!(used.len(), 2);
    assert_eq!(used[0].detail["remaining"], 9);
    assert_eq!(used[1].detail["remaining"], 8);
    assert!(
        events
            .iter()
            .any(|e| e.kind == AuditKind::RecoveryCodesIssued)
    );
    let trail = serde_json::to_string(&events).expect("json");
    for code in &codes {
        assert!(!trail.contains(code.as_str()) && !trail.contains(&code.replace('-', "")));
    }
    let (_, sa) = staff(&srv, &srv.token, "superadmin", None).await;
    let r = post(
        &srv,
        &format!("/v1/admin/citizens/{}/reset", c.account.user_id),
        Some(&sa),
        json!({}),
    )
    .await;
    let fresh: potvrda_proto::api::CreateCitizenResponse = r.json().await.expect("json");
    let second = VirtualPhone::enroll(&srv.url, fresh.activation_code.expose(), "second", None)
        .await
        .expect("enrolls");
    assert!(
        second.recovery_codes.is_none(),
        "codes come once, with the first device"
    );
}

async fn wrong_codes_count_as_failed_passwords(backend: Backend) {
    let srv = TestServer::start_with(Options {
        rates: (100, 3, 100, 1000, 30),
        ..Options::new(backend)
    })
    .await;
    let c = citizen(&srv, None).await;
    let codes = c.phone.recovery_codes.clone().expect("codes");
    let l = login(&srv, &c).await;
    for _ in 0..4 {
        assert_eq!(
            use_code(&srv, &l, l.login_secret.expose(), "AAAAA-AAAAA")
                .await
                .0,
            401
        );
    }
    // Past the lock: even a right code is refused, like a right password.
    assert_eq!(
        use_code(&srv, &l, l.login_secret.expose(), &codes[0])
            .await
            .0,
        401
    );
    assert_eq!(
        srv.login_raw(&c.account.username, c.account.initial_password.expose())
            .await
            .status(),
        401,
        "the same counter locks the password"
    );
}
