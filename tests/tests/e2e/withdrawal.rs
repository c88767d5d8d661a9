//! Withdrawing what was answered (issue 15): a citizen with two phones,
//! both woken by Web Push. When one answers, when a newer login replaces
//! the first, or when nobody answers in time, the other phone gets a signed
//! withdrawal under the login's `Topic` and drops the prompt.

use std::time::Duration;

use potvrda_e2e::{Backend, TestServer};
use potvrda_mobile_core::Inbox;
use potvrda_mobile_core::phone::{PushEndpoint, PushMessage, VirtualPhone};
use potvrda_mobile_core::protocol::Pushed;
use potvrda_proto::jose::{Decision, WithdrawalReason};
use serde_json::json;

use crate::support::*;

crate::on_both_stores!(the_other_phone_drops_a_prompt_that_is_over);

async fn next(endpoint: &mut PushEndpoint) -> PushMessage {
    tokio::time::timeout(Duration::from_secs(10), endpoint.recv())
        .await
        .expect("a push within 10 s")
        .expect("open")
}

/// A second phone for `c`, approved from the first (pushes at `endpoint`).
async fn second_phone(srv: &TestServer, c: &Citizen, endpoint: &str) -> VirtualPhone {
    let l = login(srv, c).await;
    c.phone
        .answer(&pulled(&c.phone).await, Decision::Approve, Some(l.number))
        .await
        .expect("approved");
    let token = srv
        .status(&l.login_id, l.login_secret.expose(), 0)
        .await
        .access_token
        .expect("token");
    let r = post(srv, "/v1/me/devices/additions", Some(&token), json!({})).await;
    assert_eq!(r.status(), 201);
    let asked: potvrda_proto::api::DeviceAdditionStarted = r.json().await.expect("json");
    approve_as_shown(
        &c.phone,
        &pulled(&c.phone).await,
        asked.number,
        asked.code.as_deref(),
    )
    .await
    .expect("approved");
    let body: serde_json::Value = srv
        .http
        .get(format!(
            "{}/v1/me/devices/additions/{}?wait=0",
            srv.url, asked.request_id
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let code = body["activation_code"].as_str().expect("a code");
    VirtualPhone::enroll(&srv.url, code, "tablet", Some(endpoint))
        .await
        .expect("the second phone enrolls")
}

/// What `phone` makes of `msg`, held in its `inbox`.
fn opened(phone: &VirtualPhone, inbox: &mut Inbox, msg: &PushMessage) -> Pushed {
    let pushed = phone.open_pushed(&msg.body).expect("decrypts and verifies");
    inbox.receive(pushed.clone());
    pushed
}

fn withdrawn(pushed: &Pushed) -> (String, WithdrawalReason) {
    match pushed {
        Pushed::Withdrawn(w) => (w.cid.clone(), w.reason),
        Pushed::Challenge(c) => panic!("a challenge, not a withdrawal: {}", c.claims.cid),
    }
}

async fn the_other_phone_drops_a_prompt_that_is_over(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let (mut first_push, mut second_push) = (push_endpoint().await, push_endpoint().await);
    let c = citizen(&srv, Some(&first_push)).await;
    let tablet = second_phone(&srv, &c, &second_push.new_endpoint()).await;
    second_push.expect_vapid_key(&tablet.state.device.vapid_public_key);
    // The first phone's two pushes while the tablet was added: the login
    // that gave the token, and the addition it approved.
    for _ in 0..2 {
        assert!(matches!(
            c.phone.open_pushed(&next(&mut first_push).await.body),
            Ok(Pushed::Challenge(_))
        ));
    }
    let mut inbox = Inbox::new();

    // Answered on the phone: the tablet's prompt goes, under the same Topic.
    let l = login(&srv, &c).await;
    let on_tablet = next(&mut second_push).await;
    let Pushed::Challenge(ch) = opened(&tablet, &mut inbox, &on_tablet) else {
        panic!("a challenge first");
    };
    assert_eq!(inbox.pending(now()).len(), 1);
    let on_phone = next(&mut first_push).await;
    approve_as_shown(
        &c.phone,
        &c.phone.open_push(&on_phone.body).expect("challenge"),
        l.number,
        l.code.as_deref(),
    )
    .await
    .expect("approved on the phone");
    let gone = next(&mut second_push).await;
    assert_eq!(
        withdrawn(&opened(&tablet, &mut inbox, &gone)),
        (ch.claims.cid.to_string(), WithdrawalReason::Answered)
    );
    assert!(
        inbox.pending(now()).is_empty(),
        "the tablet's prompt is gone"
    );
    let topic = on_tablet.topic.clone().expect("a Topic");
    assert_eq!(gone.topic.as_ref(), Some(&topic), "one Topic per login");
    assert!(
        topic.len() <= 32
            && topic
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "RFC 8030 §5.4: {topic}"
    );
    // A withdrawal is not a challenge: it cannot be approved.
    assert!(c.phone.open_push(&gone.body).is_err());

    // Superseded by a newer login: the earlier prompt goes on both.
    let first = login(&srv, &c).await;
    let ch = next(&mut second_push).await;
    let Pushed::Challenge(earlier) = opened(&tablet, &mut inbox, &ch) else {
        panic!("a challenge");
    };
    // The phone that answered the last login got no withdrawal of it: its
    // next push is this login's challenge.
    let on_phone = c
        .phone
        .open_pushed(&next(&mut first_push).await.body)
        .expect("verifies");
    assert!(
        matches!(&on_phone, Pushed::Challenge(c) if c.claims.cid == earlier.claims.cid),
        "the phone that answered gets no withdrawal: {on_phone:?}"
    );
    let newer = login(&srv, &c).await;
    let mut reasons = Vec::new();
    for _ in 0..2 {
        match opened(&tablet, &mut inbox, &next(&mut second_push).await) {
            Pushed::Withdrawn(w) => reasons.push((w.cid, w.reason)),
            Pushed::Challenge(c) => assert_ne!(c.claims.cid, earlier.claims.cid),
        }
    }
    assert_eq!(
        reasons,
        [(earlier.claims.cid.to_string(), WithdrawalReason::Superseded)]
    );
    assert_ne!(first.login_id, newer.login_id);
    let left: Vec<String> = inbox.pending(now()).into_iter().map(|s| s.id).collect();
    assert_eq!(left.len(), 1, "only the newer login is shown");
    assert_ne!(left[0], earlier.claims.cid.to_string());

    // Nobody answers in time: both phones are told when it expires.
    // The first phone's two: the withdrawal of the superseded login and
    // the newer login's challenge.
    for _ in 0..2 {
        next(&mut first_push).await;
    }
    srv.clock.advance(61);
    let expired = withdrawn(&opened(&tablet, &mut inbox, &next(&mut second_push).await));
    assert_eq!(expired, (left[0].clone(), WithdrawalReason::Expired));
    let on_phone = c
        .phone
        .open_pushed(&next(&mut first_push).await.body)
        .expect("verifies");
    assert_eq!(withdrawn(&on_phone).1, WithdrawalReason::Expired);
}

fn now() -> i64 {
    potvrda_e2e::now()
}
