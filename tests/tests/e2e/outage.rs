//! Redis going away and coming back: fast 503s while it is down, automatic
//! reconnect and resubscription afterwards, nothing lost.

use std::time::Duration;

use potvrda_e2e::{Backend, Options, RedisProcess, TestServer};
use potvrda_mobile_core::phone::VirtualPhone;
use potvrda_proto::ErrorBody;
use potvrda_proto::api::{LoginStatus, LoginStatusResponse};
use potvrda_proto::jose::Decision;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_loses_nothing_and_instances_reconnect() {
    let mut redis = RedisProcess::start();
    let opts = Options {
        redis_url: Some(redis.url.clone()),
        ..Options::new(Backend::Redis)
    };
    let a = TestServer::start_with(opts.clone()).await;
    let b = TestServer::start_with(Options {
        redis_prefix: a.redis_prefix.clone(),
        ..opts
    })
    .await;
    let c = citizen(&a, None).await;
    let first = login(&a, &c).await;
    let challenge = pulled(&c.phone).await;

    // The portal's long-poll is parked on A when Redis dies.
    let poll = long_poll(&a, &first, 30);
    a.until_parked(1).await;
    redis.kill();

    // While it is down: 503 store_unavailable, promptly; never a hang or a 500.
    for _ in 0..2 {
        let r = tokio::time::timeout(
            Duration::from_secs(10),
            a.login_raw(&c.account.username, &c.account.initial_password),
        )
        .await
        .expect("answers within 10 s while Redis is down");
        assert_eq!(r.status(), 503);
        let body: ErrorBody = r.json().await.expect("JSON error");
        assert_eq!(body.error.as_str(), "store_unavailable");
    }
    let ready = a
        .http
        .get(format!("{}/readyz", a.url))
        .send()
        .await
        .expect("request");
    assert_eq!(ready.status(), 503);
    assert!(
        !poll.is_finished(),
        "the parked long-poll survives the outage"
    );

    redis.restart();

    // The phone answers through B, retrying while B reconnects.
    let phone_b = {
        let mut state = c.phone.state.clone();
        state.server = b.url.clone();
        VirtualPhone::from_state(state).expect("keys")
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match phone_b
            .answer(&challenge, Decision::Approve, Some(first.number))
            .await
        {
            Ok(r) => {
                assert_eq!(r.status, LoginStatus::Approved);
                break;
            }
            Err(potvrda_mobile_core::Error::Server { status: 503, .. }) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "B did not reconnect within 15 s"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("unexpected answer: {e}"),
        }
    }
    // A's long-poll, parked since before the outage, is woken and gets the token.
    let answer: LoginStatusResponse = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .expect("A's long-poll wakes after the restart")
        .expect("joined")
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert_eq!(answer.status, LoginStatus::Approved);
    assert!(answer.access_token.is_some());
    // The account and device written before the crash are still there.
    let again = login(&a, &c).await;
    assert_eq!(pulled(&phone_b).await.claims.cid.len(), 36);
    assert_eq!(
        a.status(&again.login_id, &again.login_secret, 0)
            .await
            .status,
        LoginStatus::Pending
    );
}
