//! Push bombing, mounted: a stream of logins with the right password must not
//! wear a citizen down. One pending challenge per user, a bounded number of
//! pushes per window, a pause after repeated denials; on every store.

use potvrda_e2e::{Backend, Options, TestServer};
use potvrda_proto::ErrorBody;
use potvrda_proto::api::LoginStatus;
use potvrda_proto::jose::Decision;

use crate::support::*;

crate::on_both_stores!(
    a_new_login_supersedes_the_pending_one,
    pushes_per_window_are_bounded,
    repeated_denials_pause_pushes_and_an_approval_resets_the_count,
);

async fn rate_limited(srv: &TestServer, c: &Citizen) -> u64 {
    let r = srv
        .login_raw(&c.account.username, c.account.initial_password.expose())
        .await;
    assert_eq!(r.status(), 429, "rate limited");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    let body: ErrorBody = r.json().await.expect("json");
    assert_eq!(body.error.as_str(), "rate_limited");
    retry
}

async fn a_new_login_supersedes_the_pending_one(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let c = citizen(&srv, None).await;
    let first = login(&srv, &c).await;
    let stale = pulled(&c.phone).await;
    let second = login(&srv, &c).await;
    assert_eq!(
        srv.status(&first.login_id, first.login_secret.expose(), 0)
            .await
            .status,
        LoginStatus::Denied
    );
    let pending = pulled(&c.phone).await;
    assert_ne!(
        pending.claims.cid, stale.claims.cid,
        "only the newest challenge is pending"
    );
    // The stale challenge cannot be approved, even with its own number.
    let r = c
        .phone
        .answer(&stale, Decision::Approve, Some(first.number))
        .await;
    assert_eq!(server_error(r), (409, "already_decided".into()));
    c.phone
        .answer(&pending, Decision::Approve, Some(second.number))
        .await
        .expect("approved");
    assert!(
        srv.status(&second.login_id, second.login_secret.expose(), 0)
            .await
            .access_token
            .is_some()
    );
}

async fn pushes_per_window_are_bounded(backend: Backend) {
    let srv = TestServer::start_with(Options {
        limits: (3, 900, 5, 900),
        ..Options::new(backend)
    })
    .await;
    let mut c = citizen(&srv, None).await;
    for _ in 0..3 {
        login(&srv, &c).await;
    }
    let retry = rate_limited(&srv, &c).await;
    assert!((1..=900).contains(&retry), "Retry-After {retry}");
    // A wrong password is refused as usual and costs no push.
    assert_eq!(
        srv.login_raw(&c.account.username, "wrong").await.status(),
        401
    );
    srv.clock.advance(retry as i64);
    c.phone.set_clock_offset(retry as i64);
    let l = login(&srv, &c).await;
    let ch = pulled(&c.phone).await;
    c.phone
        .answer(&ch, Decision::Approve, Some(l.number))
        .await
        .expect("approved after the window");
}

async fn repeated_denials_pause_pushes_and_an_approval_resets_the_count(backend: Backend) {
    let srv = TestServer::start_with(Options {
        limits: (100, 900, 2, 600),
        ..Options::new(backend)
    })
    .await;
    let mut c = citizen(&srv, None).await;
    // deny, approve (resets), deny: no pause.
    login(&srv, &c).await;
    c.phone
        .answer(&pulled(&c.phone).await, Decision::Deny, None)
        .await
        .expect("denied");
    let l2 = login(&srv, &c).await;
    // After a denial the login is risky: the screen shows a code to type.
    approve_as_shown(
        &c.phone,
        &pulled(&c.phone).await,
        l2.number,
        l2.code.as_deref(),
    )
    .await
    .expect("approved");
    login(&srv, &c).await;
    c.phone
        .answer(&pulled(&c.phone).await, Decision::Deny, None)
        .await
        .expect("denied");
    // A number mismatch is the second failure in a row: pushes pause.
    let l4 = login(&srv, &c).await;
    let r = approve_wrongly(
        &c.phone,
        &pulled(&c.phone).await,
        l4.number,
        l4.code.as_deref(),
    )
    .await;
    assert_eq!(server_error(r).0, 422);
    let retry = rate_limited(&srv, &c).await;
    assert!((1..=600).contains(&retry), "Retry-After {retry}");
    let metrics = srv
        .http
        .get(format!("{}/metrics", srv.url))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    assert!(
        metrics
            .lines()
            .any(|l| l == "potvrda_fatigue_pauses_total 1"),
        "the pause is counted"
    );
    srv.clock.advance(600);
    c.phone.set_clock_offset(600);
    let l5 = login(&srv, &c).await;
    approve_as_shown(
        &c.phone,
        &pulled(&c.phone).await,
        l5.number,
        l5.code.as_deref(),
    )
    .await
    .expect("after the pause");
}
