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
            a.login_raw(&c.account.username, c.account.initial_password.expose()),
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
        state.device.server = b.url.clone();
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
        a.status(&again.login_id, again.login_secret.expose(), 0)
            .await
            .status,
        LoginStatus::Pending
    );
}

/// What one worker of the load saw.
#[derive(Debug, Default)]
struct Tally {
    /// Logins approved and their token received.
    completed: usize,
    /// 503 `store_unavailable` answers (retried).
    unavailable: usize,
    /// Logins whose approval was accepted but whose token never came.
    lost: Vec<String>,
}

/// Retry `call` while it answers 503 `store_unavailable`; any other 5xx, or
/// no answer within 10 s, fails the test.
async fn through_outage<T>(
    tally: &std::sync::Mutex<Tally>,
    mut call: impl AsyncFnMut() -> Result<T, (u16, String)>,
) -> Result<T, (u16, String)> {
    loop {
        let r = tokio::time::timeout(Duration::from_secs(10), call())
            .await
            .expect("every answer within 10 s, Redis down or not");
        match r {
            Err((503, code)) => {
                assert_eq!(code, "store_unavailable");
                tally.lock().unwrap().unavailable += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err((status, code)) if status >= 500 => panic!("{status} {code}"),
            other => return other,
        }
    }
}

/// One citizen logging in again and again, through either instance.
async fn keep_logging_in(
    servers: [&TestServer; 2],
    c: &Citizen,
    phones: [&VirtualPhone; 2],
    stop: &std::sync::atomic::AtomicBool,
    tally: &std::sync::Mutex<Tally>,
) {
    let mut round = 0usize;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let (srv, phone) = (servers[round % 2], phones[(round + 1) % 2]);
        round += 1;
        let l: potvrda_proto::api::LoginResponse = through_outage(tally, async || {
            let r = srv
                .login_raw(&c.account.username, c.account.initial_password.expose())
                .await;
            if r.status() == 201 {
                Ok(r.json().await.expect("json"))
            } else {
                Err(http_error(r).await)
            }
        })
        .await
        .expect("login accepted");
        let ch = through_outage(tally, async || phone.pending().await.map_err(phone_error))
            .await
            .expect("pull")
            .pop()
            .expect("the challenge is pending");
        // A fresh approval (new jti) on every retry; 409 means an earlier try got through.
        match through_outage(tally, async || {
            phone
                .answer(&ch, Decision::Approve, Some(l.number))
                .await
                .map_err(phone_error)
        })
        .await
        {
            Ok(_) | Err((409, _)) => {}
            Err(e) => panic!("approval refused: {e:?}"),
        }
        let answer: LoginStatusResponse = through_outage(tally, async || {
            let r = srv
                .status_raw(&l.login_id, l.login_secret.expose(), 5)
                .await;
            if r.status() == 200 {
                Ok(r.json().await.expect("json"))
            } else {
                Err(http_error(r).await)
            }
        })
        .await
        .expect("status");
        let mut t = tally.lock().unwrap();
        match (answer.status, answer.access_token) {
            (LoginStatus::Approved, Some(_)) => t.completed += 1,
            other => t.lost.push(format!("{}: {other:?}", l.login_id)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_under_load_loses_no_approved_login() {
    let mut redis = RedisProcess::start();
    let opts = Options {
        redis_url: Some(redis.url.clone()),
        limits: (10_000, 900, 5, 900),
        ..Options::new(Backend::Redis)
    };
    let a = TestServer::start_with(opts.clone()).await;
    let b = TestServer::start_with(Options {
        redis_prefix: a.redis_prefix.clone(),
        ..opts
    })
    .await;
    let mut citizens = Vec::new();
    for _ in 0..6 {
        let c = citizen(&a, None).await;
        let mut state = c.phone.state.clone();
        state.device.server = b.url.clone();
        let on_b = VirtualPhone::from_state(state).expect("keys");
        citizens.push((c, on_b));
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    let tally = std::sync::Mutex::new(Tally::default());
    let completed = || tally.lock().unwrap().completed;
    let unavailable = || tally.lock().unwrap().unavailable;
    let load = futures_util::future::join_all(
        citizens
            .iter()
            .map(|(c, on_b)| keep_logging_in([&a, &b], c, [&c.phone, on_b], &stop, &tally)),
    );
    let conductor = async {
        let until = async |what: &str, done: &dyn Fn() -> bool| {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while !done() {
                assert!(tokio::time::Instant::now() < deadline, "{what} within 60 s");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        until("12 logins before the crash", &|| completed() >= 12).await;
        redis.kill();
        until("503s while Redis is down", &|| unavailable() >= 12).await;
        redis.restart();
        let at_restart = completed();
        until("12 logins after the restart", &|| {
            completed() >= at_restart + 12
        })
        .await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    tokio::join!(load, conductor);
    let t = tally.into_inner().unwrap();
    assert!(
        t.lost.is_empty(),
        "approved logins without a token: {:#?}",
        t.lost
    );
    assert!(t.completed >= 24 && t.unavailable >= 12, "{t:?}");
}
