//! The login path as a citizen lives it, on both stores.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use potvrda_e2e::{Backend, TestServer};
use potvrda_mobile_core::phone::VirtualPhone;
use potvrda_proto::ErrorBody;
use potvrda_proto::api::{LoginStatus, PushStatus};
use potvrda_proto::jose::{AccessTokenClaims, Decision};
use potvrda_server::clock::Clock;

use crate::support::*;

crate::on_both_stores!(
    push_approval_issues_a_verifiable_token_once,
    deny_denies,
    number_mismatch_denies_the_login,
    expired_challenge_cannot_be_approved,
    pull_only_device_approves,
    gone_push_subscription_falls_back_to_pull,
    push_is_retried_after_429_and_5xx_without_blocking_the_login,
    push_endpoints_off_the_allow_list_are_refused,
    wrong_password_and_unknown_user_are_indistinguishable,
    account_without_device_gets_no_device,
    activation_code_is_single_use_and_expires,
);

async fn push_approval_issues_a_verifiable_token_once(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mut endpoint = push_endpoint().await;
    let c = citizen(&srv, Some(&endpoint)).await;
    let login = login(&srv, &c).await;
    assert!((10..=99).contains(&login.number));

    let msg = tokio::time::timeout(Duration::from_secs(10), endpoint.recv())
        .await
        .expect("push within 10 s")
        .expect("open");
    assert_eq!(msg.content_encoding.as_deref(), Some("aes128gcm"));
    assert_eq!(msg.urgency.as_deref(), Some("high"));
    assert!(
        msg.ttl.is_some_and(|t| t > 0 && t <= 60),
        "TTL {:?}",
        msg.ttl
    );
    assert_eq!(msg.vapid_key, c.phone.state.device.vapid_public_key);
    let challenge = c.phone.open_push(&msg.body).expect("decrypts and verifies");
    assert_eq!(challenge.claims.sub, c.account.username);
    assert_eq!(challenge.claims.aud, c.phone.state.device.device_id);
    assert_eq!(
        challenge.claims.ctx.service.as_deref(),
        Some("eUprava: porez na imovinu")
    );
    assert_eq!(challenge.claims.ctx.ip.as_deref(), Some("203.0.113.7"));
    let payload = challenge.jws.split('.').nth(1).expect("payload");
    let payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json");
    assert!(
        payload.get("number").is_none(),
        "the push never carries the number"
    );

    // The portal waits; the citizen approves; the wait answers with the token.
    let waiting = long_poll(&srv, &login, 30);
    let answer = c
        .phone
        .answer(&challenge, Decision::Approve, Some(login.number))
        .await
        .expect("approved");
    assert_eq!(answer.status, LoginStatus::Approved);
    let first: potvrda_proto::api::LoginStatusResponse = waiting
        .await
        .expect("joined")
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(first.status, LoginStatus::Approved);
    assert_eq!(first.token_type.as_deref(), Some("Bearer"));
    assert_eq!(first.expires_in, Some(600));
    let token = first.access_token.expect("token with the first answer");

    let jwks = srv.jwks().await;
    let header = jsonwebtoken::decode_header(&token).expect("header");
    assert_eq!(header.alg, Algorithm::ES256);
    let key = jwks
        .find(header.kid.as_deref().expect("kid"))
        .expect("kid published");
    let mut v = Validation::new(Algorithm::ES256);
    v.set_audience(&["potvrda"]);
    v.set_issuer(&[&srv.url]);
    let claims = jsonwebtoken::decode::<AccessTokenClaims>(
        &token,
        &DecodingKey::from_ec_components(
            key.x.as_deref().expect("x"),
            key.y.as_deref().expect("y"),
        )
        .expect("key"),
        &v,
    )
    .expect("token verifies against the JWKS")
    .claims;
    assert_eq!(claims.sub, c.account.user_id);
    assert_eq!(claims.preferred_username, c.account.username);
    assert_eq!(claims.amr, vec!["pwd", "swk", "user", "mfa"]);
    assert_eq!(claims.exp - claims.iat, 600);
    assert!(claims.auth_time <= claims.iat);

    // A retried request (its answer lost on the way) gets the same token,
    // never a second one; after the redelivery minute, the login is consumed.
    let again = srv
        .status(&login.login_id, login.login_secret.expose(), 0)
        .await;
    assert_eq!(again.status, LoginStatus::Approved);
    assert_eq!(
        again.access_token.as_deref(),
        Some(token.as_str()),
        "the same token"
    );
    srv.clock.advance(61);
    let later = srv
        .status(&login.login_id, login.login_secret.expose(), 0)
        .await;
    assert_eq!(later.status, LoginStatus::Consumed);
    assert!(later.access_token.is_none());
}

async fn deny_denies(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mut endpoint = push_endpoint().await;
    let c = citizen(&srv, Some(&endpoint)).await;
    let login = login(&srv, &c).await;
    let challenge = next_push(&mut endpoint, &c.phone).await;
    let r = c
        .phone
        .answer(&challenge, Decision::Deny, None)
        .await
        .expect("denied");
    assert_eq!(r.status, LoginStatus::Denied);
    let s = srv
        .status(&login.login_id, login.login_secret.expose(), 5)
        .await;
    assert_eq!(s.status, LoginStatus::Denied);
    assert!(s.access_token.is_none());
}

async fn number_mismatch_denies_the_login(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let c = citizen(&srv, None).await;
    let login = login(&srv, &c).await;
    let challenge = pulled(&c.phone).await;
    let r = c
        .phone
        .answer(&challenge, Decision::Approve, Some(wrong(login.number)))
        .await;
    assert_eq!(server_error(r), (422, "number_mismatch".into()));
    assert_eq!(
        srv.status(&login.login_id, login.login_secret.expose(), 0)
            .await
            .status,
        LoginStatus::Denied
    );
    // The right number afterwards changes nothing.
    let r = c
        .phone
        .answer(&challenge, Decision::Approve, Some(login.number))
        .await;
    assert_eq!(server_error(r), (409, "already_decided".into()));
    assert_eq!(
        srv.status(&login.login_id, login.login_secret.expose(), 0)
            .await
            .status,
        LoginStatus::Denied
    );
}

async fn expired_challenge_cannot_be_approved(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let c = citizen(&srv, None).await;
    let login = login(&srv, &c).await;
    let challenge = pulled(&c.phone).await;
    srv.clock.advance(60);
    let r = c
        .phone
        .answer(&challenge, Decision::Approve, Some(login.number))
        .await;
    assert_eq!(server_error(r), (410, "expired".into()));
    let s = srv
        .status(&login.login_id, login.login_secret.expose(), 0)
        .await;
    assert_eq!(s.status, LoginStatus::Expired);
    assert!(
        c.phone.pending().await.expect("pull").is_empty(),
        "expired challenges are not pending"
    );
}

async fn pull_only_device_approves(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let c = citizen(&srv, None).await;
    assert_eq!(c.phone.info().await.expect("info").push, PushStatus::None);
    let login = login(&srv, &c).await;
    let challenge = pulled(&c.phone).await;
    c.phone
        .answer(&challenge, Decision::Approve, Some(login.number))
        .await
        .expect("approved");
    let s = srv
        .status(&login.login_id, login.login_secret.expose(), 0)
        .await;
    assert_eq!(s.status, LoginStatus::Approved);
    assert!(s.access_token.is_some());
    assert!(
        c.phone.pending().await.expect("pull").is_empty(),
        "decided challenges are not pending"
    );
}

async fn gone_push_subscription_falls_back_to_pull(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mut endpoint = push_endpoint().await;
    let mut c = citizen(&srv, Some(&endpoint)).await;
    assert_eq!(c.phone.info().await.expect("info").push, PushStatus::Active);
    endpoint.answer_with(410);
    let login = login(&srv, &c).await;
    // The server learns from the 410 that the subscription is gone.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while c.phone.info().await.expect("info").push != PushStatus::Gone {
        assert!(
            tokio::time::Instant::now() < deadline,
            "push subscription not marked gone within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The login still succeeds through pull.
    let challenge = pulled(&c.phone).await;
    c.phone
        .answer(&challenge, Decision::Approve, Some(login.number))
        .await
        .expect("approved through pull");
    let s = srv
        .status(&login.login_id, login.login_secret.expose(), 0)
        .await;
    assert!(s.access_token.is_some());

    // The phone saw `gone` and subscribes again (protocol 3, issue 15): a subscription
    // off the allow-list is refused and changes nothing; a new one on it is
    // active at once and the next login is pushed there, with its new keys.
    let refused = c
        .phone
        .resubscribe(Some("https://push.evil.example/x"))
        .await;
    assert_eq!(
        server_error(refused),
        (400, "invalid_push_subscription".into())
    );
    assert_eq!(c.phone.info().await.expect("info").push, PushStatus::Gone);
    endpoint.answer_with(201);
    let info = c
        .phone
        .resubscribe(Some(&endpoint.new_endpoint()))
        .await
        .expect("resubscribed");
    assert_eq!(info.push, PushStatus::Active);
    assert_eq!(c.phone.info().await.expect("info").push, PushStatus::Active);
    let second = crate::support::login(&srv, &c).await;
    let msg = tokio::time::timeout(Duration::from_secs(10), endpoint.recv())
        .await
        .expect("push within 10 s")
        .expect("open");
    let pushed = c
        .phone
        .open_push(&msg.body)
        .expect("the new keys decrypt it");
    c.phone
        .answer(&pushed, Decision::Approve, Some(second.number))
        .await
        .expect("approved from the push");
    // Removed: the device pulls; both changes are in the audit trail.
    let info = c.phone.resubscribe(None).await.expect("removed");
    assert_eq!(info.push, PushStatus::None);
    let kind = potvrda_proto::api::AuditKind::PushSubscriptionChanged;
    let changes: Vec<_> = srv
        .audit_until(&c.phone.state.device.user_id, |events| {
            events.iter().filter(|e| e.kind == kind).count() >= 2
        })
        .await
        .into_iter()
        .filter(|e| e.kind == kind)
        .collect();
    let mut seen: Vec<_> = changes
        .iter()
        .map(|e| e.detail["change"].as_str().unwrap_or_default().to_owned())
        .collect();
    seen.sort();
    assert_eq!(seen, ["removed", "replaced"]);
    assert!(
        changes
            .iter()
            .all(|e| !serde_json::to_string(&e.detail).is_ok_and(|d| d.contains("/push/"))),
        "the endpoint (a bearer capability) is never in the trail"
    );
}

async fn wrong_password_and_unknown_user_are_indistinguishable(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let c = citizen(&srv, None).await;
    let wrong = srv.login_raw(&c.account.username, "not-the-password").await;
    let unknown = srv.login_raw("nobody-here", "not-the-password").await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(unknown.status(), 401);
    let (wrong, unknown) = (
        wrong.bytes().await.expect("body"),
        unknown.bytes().await.expect("body"),
    );
    assert_eq!(wrong, unknown, "identical bodies");
    let body: ErrorBody = serde_json::from_slice(&wrong).expect("error body");
    assert_eq!(body.error.as_str(), "invalid_credentials");
}

async fn account_without_device_gets_no_device(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let account = srv.create_citizen(&potvrda_e2e::unique("c")).await;
    let r = srv
        .login_raw(&account.username, account.initial_password.expose())
        .await;
    assert_eq!(r.status(), 409);
    let body: ErrorBody = r.json().await.expect("json");
    assert_eq!(body.error.as_str(), "no_device");
}

async fn activation_code_is_single_use_and_expires(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let c = citizen(&srv, None).await;
    let again =
        VirtualPhone::enroll(&srv.url, c.account.activation_code.expose(), "second", None).await;
    assert_eq!(server_error(again), (400, "invalid_activation_code".into()));
    let unknown = VirtualPhone::enroll(&srv.url, "AAAA-BBBB-CCCC", "x", None).await;
    assert_eq!(
        server_error(unknown),
        (400, "invalid_activation_code".into())
    );

    // Past its 72 h, on the server's clock (the proof is signed at that time too).
    let late = srv.create_citizen(&potvrda_e2e::unique("c")).await;
    srv.clock.advance(72 * 3600 + 1);
    let signer = potvrda_mobile_core::SoftwareSigner::generate();
    let req = potvrda_mobile_core::enrollment_request(
        &signer,
        late.activation_code.expose(),
        "late",
        "virtual",
        None,
        srv.clock.now(),
    )
    .expect("request");
    let r = srv
        .http
        .post(format!("{}/v1/enrollments", srv.url))
        .json(&req)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 400);
    let body: ErrorBody = r.json().await.expect("json");
    assert_eq!(body.error.as_str(), "invalid_activation_code");
}

async fn push_is_retried_after_429_and_5xx_without_blocking_the_login(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mut endpoint = push_endpoint().await;
    let c = citizen(&srv, Some(&endpoint)).await;
    endpoint.answer_next(&[503, 429]);
    let login = login(&srv, &c).await;
    // The login answered while the push service was still failing.
    assert!(
        endpoint.attempts() < 3,
        "the login request did not wait for delivery"
    );
    let challenge = next_push(&mut endpoint, &c.phone).await;
    assert_eq!(
        endpoint.attempts(),
        3,
        "503, then 429 (Retry-After: 1), then accepted"
    );
    c.phone
        .answer(&challenge, Decision::Approve, Some(login.number))
        .await
        .expect("approved");
    assert_eq!(
        c.phone.info().await.expect("info").push,
        PushStatus::Active,
        "a retryable failure is not 'gone'"
    );
}

async fn push_endpoints_off_the_allow_list_are_refused(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let account = srv.create_citizen(&potvrda_e2e::unique("c")).await;
    let keys = potvrda_mobile_core::PushKeyPair::generate();
    let signer = potvrda_mobile_core::SoftwareSigner::generate();
    let enroll = |sub: potvrda_proto::api::PushSubscription| {
        let req = potvrda_mobile_core::enrollment_request(
            &signer,
            account.activation_code.expose(),
            "p",
            "virtual",
            Some(sub),
            srv.clock.now(),
        )
        .expect("request");
        let (http, url) = (srv.http.clone(), srv.url.clone());
        async move {
            http.post(format!("{url}/v1/enrollments"))
                .json(&req)
                .send()
                .await
                .expect("request")
        }
    };
    let mut bad_point = keys.subscription("http://127.0.0.1:9/push/x");
    bad_point.keys.p256dh = URL_SAFE_NO_PAD.encode([4u8; 65]);
    let mut short_auth = keys.subscription("http://127.0.0.1:9/push/x");
    short_auth.keys.auth = URL_SAFE_NO_PAD.encode([1u8; 8]);
    for (name, sub) in [
        (
            "cloud metadata",
            keys.subscription("http://169.254.169.254/latest/meta-data"),
        ),
        (
            "localhost by name",
            keys.subscription("http://localhost:6379/"),
        ),
        (
            "internal host",
            keys.subscription("https://redis.internal/"),
        ),
        (
            "look-alike suffix",
            keys.subscription("https://fcm.googleapis.com.evil.example/x"),
        ),
        (
            "credentials",
            keys.subscription("http://user:pw@127.0.0.1:9/push/x"),
        ),
        ("not a URL", keys.subscription("not a url")),
        ("file scheme", keys.subscription("file:///etc/passwd")),
        ("off-curve p256dh", bad_point),
        ("short auth", short_auth),
    ] {
        let r = enroll(sub).await;
        assert_eq!(r.status(), 400, "{name}");
        let body: ErrorBody = r.json().await.expect("json");
        assert_eq!(body.error.as_str(), "invalid_push_subscription", "{name}");
    }
    // Refusals did not use up the code; a public push service is allowed.
    let r = enroll(keys.subscription("https://fcm.googleapis.com/fcm/send/abc")).await;
    assert_eq!(r.status(), 201);
}
