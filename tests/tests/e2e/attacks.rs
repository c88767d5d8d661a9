//! Attacks on the approval path, on both stores: replays, forgeries, races.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use futures_util::future::join_all;
use potvrda_e2e::{Backend, TestServer};
use potvrda_mobile_core::{SoftwareSigner, jws};
use potvrda_proto::ErrorBody;
use potvrda_proto::api::LoginStatus;
use potvrda_proto::jose::{ApprovalClaims, Decision, TYP_APPROVAL};

use crate::support::*;

crate::on_both_stores!(
    replayed_approval_is_refused,
    approval_signed_by_another_key_is_refused,
    forged_headers_and_claims_are_refused,
    another_citizens_device_cannot_answer,
    racing_approvals_exactly_one_wins,
    racing_status_requests_get_the_token_once,
    wrong_login_secret_and_bootstrap_token_are_refused,
    pull_token_must_be_fresh_and_for_this_device,
    only_the_addressed_device_acknowledges,
    the_approval_signs_what_the_phone_saw_once,
);

async fn replayed_approval_is_refused(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let c = citizen(&srv, None).await;
    let login = login(&srv, &c).await;
    let challenge = pulled(&c.phone).await;
    let approval = c
        .phone
        .approval(&challenge, Decision::Approve, Some(login.number))
        .expect("signs");
    c.phone
        .post_approval(&challenge.claims.cid, &approval)
        .await
        .expect("first is accepted");
    let replay = c
        .phone
        .post_approval(&challenge.claims.cid, &approval)
        .await;
    assert_eq!(server_error(replay), (409, "already_decided".into()));
}

fn approval_by(signer: &SoftwareSigner, kid: &str, claims: &ApprovalClaims) -> String {
    jws::sign(signer, TYP_APPROVAL, Some(kid), claims).expect("signs")
}

/// A JWS over `payload` (base64url) with this exact protected header, signed by `signer`.
fn signed_with_header(
    signer: &dyn potvrda_mobile_core::signer::Signer,
    header: &str,
    payload: &str,
) -> String {
    let input = format!("{}.{payload}", URL_SAFE_NO_PAD.encode(header));
    let sig = signer.sign(input.as_bytes()).expect("signs");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn claims_for(ch: &potvrda_mobile_core::Challenge, number: u8) -> ApprovalClaims {
    ApprovalClaims {
        cid: ch.claims.cid.clone(),
        nonce: ch.claims.nonce.clone(),
        decision: Decision::Approve,
        number: Some(number),
        iat: potvrda_e2e::now(),
        ctx_hash: Some(potvrda_mobile_core::protocol::ctx_hash(&ch.jws).expect("hash")),
        jti: Some(uuid::Uuid::new_v4().to_string()),
        code: None,
        uv: None,
        key: None,
    }
}

async fn approval_signed_by_another_key_is_refused(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let c = citizen(&srv, None).await;
    let login = login(&srv, &c).await;
    let ch = pulled(&c.phone).await;
    let attacker = SoftwareSigner::generate();
    let forged = approval_by(
        &attacker,
        &c.phone.state.device.device_id,
        &claims_for(&ch, login.number),
    );
    let r = c.phone.post_approval(&ch.claims.cid, &forged).await;
    assert_eq!(server_error(r), (401, "invalid_signature".into()));
    assert_eq!(
        srv.status(&login.login_id, login.login_secret.expose(), 0)
            .await
            .status,
        LoginStatus::Pending
    );
}

async fn forged_headers_and_claims_are_refused(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let c = citizen(&srv, None).await;
    let login = login(&srv, &c).await;
    let ch = pulled(&c.phone).await;
    let dev = c.phone.state.device.device_id.clone();
    let good = claims_for(&ch, login.number);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&good).expect("json"));
    let header = |alg: &str| {
        URL_SAFE_NO_PAD.encode(format!(
            r#"{{"alg":"{alg}","typ":"{TYP_APPROVAL}","kid":"{dev}"}}"#
        ))
    };
    let cases: Vec<(&str, String, u16)> = vec![
        ("alg none", format!("{}.{payload}.", header("none")), 401),
        (
            "alg HS256",
            format!(
                "{}.{payload}.{}",
                header("HS256"),
                URL_SAFE_NO_PAD.encode([7u8; 32])
            ),
            401,
        ),
        (
            "alg RS256",
            format!(
                "{}.{payload}.{}",
                header("RS256"),
                URL_SAFE_NO_PAD.encode([7u8; 256])
            ),
            401,
        ),
        (
            "wrong typ",
            jws::sign(c.phone.signer(), "potvrda-pull+jwt", Some(&dev), &good).expect("signs"),
            401,
        ),
        (
            "unknown kid",
            approval_by(c.phone.signer(), "no-such-device", &good),
            401,
        ),
        (
            "wrong nonce",
            approval_by(
                c.phone.signer(),
                &dev,
                &ApprovalClaims {
                    nonce: "AAAA".into(),
                    ..good.clone()
                },
            ),
            401,
        ),
        (
            "stale iat",
            approval_by(
                c.phone.signer(),
                &dev,
                &ApprovalClaims {
                    iat: good.iat - 3600,
                    jti: Some(uuid::Uuid::new_v4().to_string()),
                    code: None,
                    ..good.clone()
                },
            ),
            401,
        ),
        (
            "future iat",
            approval_by(
                c.phone.signer(),
                &dev,
                &ApprovalClaims {
                    iat: good.iat + 3600,
                    jti: Some(uuid::Uuid::new_v4().to_string()),
                    code: None,
                    ..good.clone()
                },
            ),
            401,
        ),
        ("not a JWS", "garbage".into(), 401),
        // Protocol 2: what the phone saw, and the approval's id, are required.
        (
            "no ctx_hash",
            approval_by(
                c.phone.signer(),
                &dev,
                &ApprovalClaims {
                    ctx_hash: None,
                    ..good.clone()
                },
            ),
            401,
        ),
        (
            "no jti",
            approval_by(
                c.phone.signer(),
                &dev,
                &ApprovalClaims {
                    jti: None,
                    code: None,
                    ..good.clone()
                },
            ),
            401,
        ),
        // Correctly signed by the device, with a header that changes the rules.
        (
            "crit",
            signed_with_header(
                c.phone.signer(),
                &format!(
                    r#"{{"alg":"ES256","typ":"{TYP_APPROVAL}","kid":"{dev}","crit":["exp"],"exp":1}}"#
                ),
                &payload,
            ),
            401,
        ),
        (
            "b64 false",
            signed_with_header(
                c.phone.signer(),
                &format!(
                    r#"{{"alg":"ES256","typ":"{TYP_APPROVAL}","kid":"{dev}","b64":false,"crit":["b64"]}}"#
                ),
                &payload,
            ),
            401,
        ),
        // Last: approving without the number is a mismatch and denies the login.
        (
            "no number",
            approval_by(
                c.phone.signer(),
                &dev,
                &ApprovalClaims {
                    number: None,
                    jti: Some(uuid::Uuid::new_v4().to_string()),
                    code: None,
                    ..good.clone()
                },
            ),
            422,
        ),
    ];
    for (name, approval, want) in cases {
        let r = srv
            .http
            .post(format!(
                "{}/v1/challenges/{}/response",
                srv.url, ch.claims.cid
            ))
            .json(&serde_json::json!({ "approval": approval }))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), want, "{name}");
        let body: ErrorBody = r.json().await.expect("JSON error body");
        assert!(!body.message.is_empty(), "{name}");
        if want == 401 {
            assert_eq!(
                srv.status(&login.login_id, login.login_secret.expose(), 0)
                    .await
                    .status,
                LoginStatus::Pending,
                "{name} changed nothing"
            );
        }
    }
    // The approval of another challenge id is refused too.
    let r = c
        .phone
        .post_approval(
            "00000000-0000-4000-8000-000000000000",
            &approval_by(c.phone.signer(), &dev, &good),
        )
        .await;
    assert_eq!(server_error(r).0, 400);
}

async fn another_citizens_device_cannot_answer(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let victim = citizen(&srv, None).await;
    let attacker = citizen(&srv, None).await;
    let login = login(&srv, &victim).await;
    let ch = pulled(&victim.phone).await;
    // The attacker's own, enrolled device signs an approval of the victim's challenge.
    let forged = approval_by(
        attacker.phone.signer(),
        &attacker.phone.state.device.device_id,
        &claims_for(&ch, login.number),
    );
    let r = attacker.phone.post_approval(&ch.claims.cid, &forged).await;
    assert_eq!(server_error(r), (401, "invalid_signature".into()));
    assert!(
        attacker.phone.pending().await.expect("pull").is_empty(),
        "the attacker sees no foreign challenge"
    );
    assert_eq!(
        srv.status(&login.login_id, login.login_secret.expose(), 0)
            .await
            .status,
        LoginStatus::Pending
    );
}

async fn racing_approvals_exactly_one_wins(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let c = citizen(&srv, None).await;
    let login = login(&srv, &c).await;
    let ch = pulled(&c.phone).await;
    let approvals: Vec<String> = (0..12)
        .map(|i| {
            let decision = if i % 3 == 0 {
                Decision::Deny
            } else {
                Decision::Approve
            };
            c.phone
                .approval(&ch, decision, Some(login.number))
                .expect("signs")
        })
        .collect();
    let results = join_all(
        approvals
            .iter()
            .map(|a| c.phone.post_approval(&ch.claims.cid, a)),
    )
    .await;
    let wins: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(wins.len(), 1, "exactly one answer decides: {results:?}");
    for r in results.iter().filter(|r| r.is_err()) {
        match r {
            Err(potvrda_mobile_core::Error::Server { status: 409, .. }) => {}
            other => panic!("losers get 409, got {other:?}"),
        }
    }
    let final_status = srv
        .status(&login.login_id, login.login_secret.expose(), 0)
        .await
        .status;
    let expect = if wins[0].status == LoginStatus::Approved {
        LoginStatus::Approved
    } else {
        LoginStatus::Denied
    };
    assert_eq!(final_status, expect, "the store agrees with the winner");
}

async fn racing_status_requests_get_the_token_once(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let c = citizen(&srv, None).await;
    let login = login(&srv, &c).await;
    let ch = pulled(&c.phone).await;
    let waiters =
        join_all((0..10).map(|_| srv.status(&login.login_id, login.login_secret.expose(), 10)));
    let approve = async {
        c.phone
            .answer(&ch, Decision::Approve, Some(login.number))
            .await
            .expect("approved");
    };
    let (answers, ()) = tokio::join!(waiters, approve);
    // One token is minted: every answer that carries a token carries that one.
    let mut tokens: Vec<&str> = answers
        .iter()
        .filter_map(|a| a.access_token.as_deref())
        .collect();
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "one token among {answers:?}");
    assert!(
        answers
            .iter()
            .all(|a| matches!(a.status, LoginStatus::Approved | LoginStatus::Consumed))
    );
}

async fn wrong_login_secret_and_bootstrap_token_are_refused(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let c = citizen(&srv, None).await;
    let login = login(&srv, &c).await;
    let r = srv.status_raw(&login.login_id, "not-the-secret", 0).await;
    assert_eq!(r.status(), 401);
    let r = srv
        .http
        .get(format!("{}/v1/logins/{}", srv.url, login.login_id))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 401);
    for auth in [
        None,
        Some("Bearer wrong-token-of-some-length"),
        Some("Basic abc"),
    ] {
        let mut req = srv
            .http
            .post(format!("{}/v1/admin/citizens", srv.url))
            .json(&serde_json::json!({"username": "mallory", "display_name": "M"}));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let r = req.send().await.expect("request");
        assert_eq!(r.status(), 401, "{auth:?}");
    }
    // Nothing was created: the name is still free.
    srv.create_citizen("mallory").await;
}

async fn pull_token_must_be_fresh_and_for_this_device(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let a = citizen(&srv, None).await;
    let b = citizen(&srv, None).await;
    login(&srv, &a).await;
    let now = potvrda_e2e::now();
    let url = |dev: &str| format!("{}/v1/devices/{dev}/challenges", srv.url);
    let cases = [
        (
            "b's token for a",
            potvrda_mobile_core::pull_token(b.phone.signer(), &b.phone.state.device.device_id, now),
            &a.phone.state.device.device_id,
        ),
        (
            "a's id signed by b",
            potvrda_mobile_core::pull_token(b.phone.signer(), &a.phone.state.device.device_id, now),
            &a.phone.state.device.device_id,
        ),
        (
            "stale",
            potvrda_mobile_core::pull_token(
                a.phone.signer(),
                &a.phone.state.device.device_id,
                now - 120,
            ),
            &a.phone.state.device.device_id,
        ),
    ];
    for (name, token, dev) in cases {
        let r = srv
            .http
            .get(url(dev))
            .bearer_auth(token.expect("signs"))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 401, "{name}");
    }
    let r = srv
        .http
        .get(url(&a.phone.state.device.device_id))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 401, "no token");
}

async fn only_the_addressed_device_acknowledges(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let victim = citizen(&srv, None).await;
    let other = citizen(&srv, None).await;
    login(&srv, &victim).await;
    let ch = pulled(&victim.phone).await;
    let r = other.phone.acknowledge(&ch).await;
    assert_eq!(
        server_error(r),
        (404, "not_found".into()),
        "another citizen's device learns nothing"
    );
    let r = srv
        .http
        .post(format!(
            "{}/v1/challenges/{}/seen?device_id={}",
            srv.url, ch.claims.cid, victim.phone.state.device.device_id
        ))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 401, "no pull token");
    victim
        .phone
        .acknowledge(&ch)
        .await
        .expect("the addressed device may");
}

async fn the_approval_signs_what_the_phone_saw_once(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let c = citizen(&srv, None).await;
    let dev = c.phone.state.device.device_id.clone();
    let first = login(&srv, &c).await;
    let ch = pulled(&c.phone).await;
    // A phone that displayed something else (or an attacker's altered context): refused.
    let altered = ApprovalClaims {
        ctx_hash: Some(URL_SAFE_NO_PAD.encode([0u8; 32])),
        ..claims_for(&ch, first.number)
    };
    let r = c
        .phone
        .post_approval(
            &ch.claims.cid,
            &approval_by(c.phone.signer(), &dev, &altered),
        )
        .await;
    assert_eq!(server_error(r), (401, "invalid_signature".into()));
    // The genuine approval carries a jti, and the token says which approval authorised it.
    let good = ApprovalClaims {
        jti: Some("approval-0001".into()),
        code: None,
        ..claims_for(&ch, first.number)
    };
    c.phone
        .post_approval(&ch.claims.cid, &approval_by(c.phone.signer(), &dev, &good))
        .await
        .expect("approved");
    let token = srv
        .status(&first.login_id, first.login_secret.expose(), 0)
        .await
        .access_token
        .expect("token");
    let claims: potvrda_proto::jose::AccessTokenClaims = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).expect("payload"))
            .expect("b64"),
    )
    .expect("claims");
    assert_eq!(claims.approval_jti.as_deref(), Some("approval-0001"));
    // The same jti on another challenge is refused, before any state change.
    let second = login(&srv, &c).await;
    let ch2 = pulled(&c.phone).await;
    let reused = ApprovalClaims {
        jti: Some("approval-0001".into()),
        code: None,
        ..claims_for(&ch2, second.number)
    };
    let r = c
        .phone
        .post_approval(
            &ch2.claims.cid,
            &approval_by(c.phone.signer(), &dev, &reused),
        )
        .await;
    assert_eq!(server_error(r), (409, "already_decided".into()));
    assert_eq!(
        srv.status(&second.login_id, second.login_secret.expose(), 0)
            .await
            .status,
        LoginStatus::Pending
    );
}
