//! Password guessing, mounted: stuffing one username, spraying from one IP,
//! spoofing the forwarded address, guessing activation codes. On every store,
//! so the counters are shared exactly as instances share them.

use potvrda_e2e::{Backend, Options, TestServer};
use potvrda_proto::ErrorBody;
use potvrda_proto::api::LoginResponse;
use potvrda_proto::jose::Decision;

use crate::support::*;

crate::on_both_stores!(
    a_guessed_username_locks_like_a_wrong_password,
    one_ip_is_limited_and_forwarded_addresses_need_a_trusted_proxy,
    enrollment_guessing_is_limited_per_ip,
    nobody_can_lock_a_citizen_out,
    the_current_password_is_guarded_like_a_login,
    the_right_password_forgets_the_failures_from_its_address,
);

/// The phone's endpoints are limited per address in each instance's memory
/// (the store is not involved), so this runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_endpoints_are_limited_per_address() {
    let srv = TestServer::start_with(Options {
        ip_device_limit: 5,
        trusted_proxies: vec!["127.0.0.1".into()],
        ..Options::new(Backend::Embedded)
    })
    .await;
    let c = citizen(&srv, None).await;
    let device = c.phone.state.device.device_id.clone();
    // An attacker who knows the device id floods it with junk pull tokens.
    let flood = |from: &'static str, path: String| {
        let (http, url) = (srv.http.clone(), srv.url.clone());
        async move {
            http.get(format!("{url}{path}"))
                .header("X-Forwarded-For", from)
                .bearer_auth("not.a.token")
                .send()
                .await
                .expect("request")
        }
    };
    let pending = format!("/v1/devices/{device}/challenges");
    let info = format!("/v1/devices/{device}");
    for path in [&pending, &info, &pending, &info, &pending] {
        assert_eq!(flood("198.51.100.9", path.clone()).await.status(), 401);
    }
    for path in [&pending, &info] {
        let r = flood("198.51.100.9", path.clone()).await;
        assert_eq!(r.status(), 429, "{path}");
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("seconds");
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
        let body: ErrorBody = r.json().await.expect("json");
        assert_eq!(body.error.as_str(), "rate_limited");
    }
    // Approvals from that address are refused before any signature check.
    let r = srv
        .http
        .post(format!("{}/v1/challenges/x/response", srv.url))
        .header("X-Forwarded-For", "198.51.100.9")
        .json(&serde_json::json!({"approval": "a.b.c"}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 429);
    // Another address, and the citizen's own phone, are not affected; nor is
    // the portal's login path from the flooding address.
    assert_eq!(flood("198.51.100.10", pending.clone()).await.status(), 401);
    let l = login(&srv, &c).await;
    c.phone
        .answer(&pulled(&c.phone).await, Decision::Approve, Some(l.number))
        .await
        .expect("the phone still approves");
    let r = srv
        .portal(srv.http.post(format!("{}/v1/logins", srv.url)))
        .header("X-Forwarded-For", "198.51.100.9")
        .json(&serde_json::json!({"username": "nobody", "password": "x"}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 401);
}

async fn attempt(
    srv: &TestServer,
    user: &str,
    password: &str,
    from: Option<&str>,
) -> reqwest::Response {
    let mut r = srv
        .portal(srv.http.post(format!("{}/v1/logins", srv.url)))
        .json(&serde_json::json!({"username": user, "password": password}));
    if let Some(ip) = from {
        r = r.header("X-Forwarded-For", ip);
    }
    r.send().await.expect("request")
}

async fn a_guessed_username_locks_like_a_wrong_password(backend: Backend) {
    // Delays start after the lock, so this test waits only 1 s for them.
    let srv = TestServer::start_with(Options {
        rates: (3, 3, 100, 1000, 30),
        ..Options::new(backend)
    })
    .await;
    let mut c = citizen(&srv, None).await;
    let wrong = attempt(&srv, &c.account.username, "guess-1", None).await;
    assert_eq!(wrong.status(), 401);
    let wrong_body = wrong.bytes().await.expect("body");
    for guess in ["guess-2", "guess-3"] {
        assert_eq!(
            attempt(&srv, &c.account.username, guess, None)
                .await
                .status(),
            401
        );
    }
    // Locked: the right password now answers exactly like a wrong one.
    let locked = attempt(
        &srv,
        &c.account.username,
        c.account.initial_password.expose(),
        None,
    )
    .await;
    assert_eq!(locked.status(), 401);
    assert_eq!(
        locked.bytes().await.expect("body"),
        wrong_body,
        "the lock is not told apart"
    );
    // An unknown username behaves the same way (no enumeration through the lock).
    for _ in 0..4 {
        let r = attempt(&srv, "nobody-at-all", "x", None).await;
        assert_eq!(r.status(), 401);
    }
    // Failures age out of the window; then the right password works, and a
    // success clears the count.
    srv.clock.advance(900);
    c.phone.set_clock_offset(900);
    login(&srv, &c).await;
    assert_eq!(
        attempt(&srv, &c.account.username, "guess-4", None)
            .await
            .status(),
        401
    );
    login(&srv, &c).await;
}

async fn one_ip_is_limited_and_forwarded_addresses_need_a_trusted_proxy(backend: Backend) {
    let srv = TestServer::start_with(Options {
        rates: (100, 100, 3, 1000, 30),
        trusted_proxies: vec!["127.0.0.1".into()],
        ..Options::new(backend)
    })
    .await;
    let c = citizen(&srv, None).await;
    // Spraying: one wrong password each for three usernames from one address.
    for user in ["ana", "bojan", "ceca"] {
        assert_eq!(
            attempt(&srv, user, "Proleće2026!", Some("198.51.100.7"))
                .await
                .status(),
            401
        );
    }
    let r = attempt(
        &srv,
        &c.account.username,
        c.account.initial_password.expose(),
        Some("198.51.100.7"),
    )
    .await;
    assert_eq!(r.status(), 429, "that address is told to wait");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=900).contains(&retry));
    let body: ErrorBody = r.json().await.expect("json");
    assert_eq!(body.error.as_str(), "rate_limited");
    // Another citizen behind the same portal, from another address, is not affected.
    let r = attempt(
        &srv,
        &c.account.username,
        c.account.initial_password.expose(),
        Some("203.0.113.9"),
    )
    .await;
    assert_eq!(r.status(), 201);

    // Without a trusted proxy, X-Forwarded-For is ignored: rotating it does not help.
    let plain = TestServer::start_with(Options {
        rates: (100, 100, 3, 1000, 30),
        ..Options::new(backend)
    })
    .await;
    for (i, user) in ["ana", "bojan", "ceca"].iter().enumerate() {
        let spoof = format!("192.0.2.{i}");
        assert_eq!(attempt(&plain, user, "x", Some(&spoof)).await.status(), 401);
    }
    assert_eq!(
        attempt(&plain, "dana", "x", Some("192.0.2.99"))
            .await
            .status(),
        429
    );
}

async fn enrollment_guessing_is_limited_per_ip(backend: Backend) {
    let srv = TestServer::start_with(Options {
        rates: (5, 10, 100, 1000, 2),
        ..Options::new(backend)
    })
    .await;
    for _ in 0..2 {
        let r =
            potvrda_mobile_core::phone::VirtualPhone::enroll(&srv.url, "AAAA-BBBB-CCCC", "x", None)
                .await;
        assert_eq!(server_error(r), (400, "invalid_activation_code".into()));
    }
    let account = srv.create_citizen(&potvrda_e2e::unique("c")).await;
    let r = potvrda_mobile_core::phone::VirtualPhone::enroll(
        &srv.url,
        account.activation_code.expose(),
        "x",
        None,
    )
    .await;
    assert_eq!(
        server_error(r),
        (429, "rate_limited".into()),
        "even a right code waits once the address is limited"
    );
}

/// The `password_locked` events of the trail, by scope.
/// The right password clears the failures counted from its address: a
/// citizen who mistyped twice, then logged in, starts afresh, and two more
/// slips later do not add up to the lock (3 here).
async fn the_right_password_forgets_the_failures_from_its_address(backend: Backend) {
    let srv = TestServer::start_with(Options {
        rates: (100, 3, 1000, 1000, 30),
        lock_after_all: 100,
        ..Options::new(backend)
    })
    .await;
    let c = citizen(&srv, None).await;
    let user = c.account.username.clone();
    for round in 0..2 {
        for guess in ["slip-1", "slip-2"] {
            let r = attempt(&srv, &user, guess, None).await;
            assert_eq!(r.status(), 401, "round {round}");
        }
        login(&srv, &c).await;
    }
    let r = attempt(&srv, &user, c.account.initial_password.expose(), None).await;
    assert_eq!(
        r.status(),
        201,
        "four failures in all, never three in a row"
    );
    assert!(locks(&srv).await.is_empty(), "no lock was reached");
}

async fn locks(srv: &TestServer) -> Vec<String> {
    srv.audit("limit=1000")
        .await
        .events
        .iter()
        .filter(|e| e.kind == potvrda_proto::api::AuditKind::PasswordLocked)
        .map(|e| e.detail["scope"].as_str().expect("scope").to_owned())
        .collect()
}

/// Security round 2, finding 3: 11 wrong passwords locked a username for
/// everyone, and a trickle of guesses kept it locked. Now a lock holds for
/// the address the guesses came from; many addresses together lock only the
/// addresses the citizen's phone never approved a login from; attempts
/// while locked do not count; every lock is an audited alert.
async fn nobody_can_lock_a_citizen_out(backend: Backend) {
    let srv = TestServer::start_with(Options {
        rates: (100, 3, 1000, 1000, 30),
        lock_after_all: 6,
        trusted_proxies: vec!["127.0.0.1".into()],
        ..Options::new(backend)
    })
    .await;
    let mut c = citizen(&srv, None).await;
    let (user, right) = (
        c.account.username.clone(),
        c.account.initial_password.expose().to_owned(),
    );
    let home = "203.0.113.7";
    // The citizen logs in from home once; the phone approves: a known address.
    let r = attempt(&srv, &user, &right, Some(home)).await;
    assert_eq!(r.status(), 201);
    let l: LoginResponse = r.json().await.expect("json");
    c.phone
        .answer(&pulled(&c.phone).await, Decision::Approve, Some(l.number))
        .await
        .expect("approved");
    // One attacker: three wrong passwords lock the username for that address only.
    let attacker = "198.51.100.66";
    let wrong = attempt(&srv, &user, "guess-0", Some(attacker)).await;
    assert_eq!(wrong.status(), 401);
    let wrong_body = wrong.bytes().await.expect("body");
    for guess in ["guess-1", "guess-2"] {
        assert_eq!(
            attempt(&srv, &user, guess, Some(attacker)).await.status(),
            401
        );
    }
    let r = attempt(&srv, &user, &right, Some(attacker)).await;
    assert_eq!(r.status(), 401, "locked for the attacker's address");
    assert_eq!(
        r.bytes().await.expect("body"),
        wrong_body,
        "told apart from nothing"
    );
    // A trickle while locked is not counted (it would reach the username lock otherwise).
    for i in 0..20 {
        assert_eq!(
            attempt(&srv, &user, &format!("t{i}"), Some(attacker))
                .await
                .status(),
            401
        );
    }
    assert_eq!(locks(&srv).await, ["address"], "the lock is an alert, once");
    // The citizen, from an address never seen before, is not locked out.
    assert_eq!(
        attempt(&srv, &user, &right, Some("192.0.2.50"))
            .await
            .status(),
        201
    );
    // Many addresses together: the username locks for unknown addresses …
    for a in ["198.51.100.67", "198.51.100.68"] {
        for i in 0..3 {
            assert_eq!(
                attempt(&srv, &user, &format!("d{i}"), Some(a))
                    .await
                    .status(),
                401
            );
        }
    }
    assert_eq!(locks(&srv).await, ["address", "address", "username"]);
    let r = attempt(&srv, &user, &right, Some("192.0.2.99")).await;
    assert_eq!(r.status(), 401, "an unknown address is locked out");
    assert_eq!(r.bytes().await.expect("body"), wrong_body);
    // … but not the address where the citizen's phone approved a login.
    assert_eq!(attempt(&srv, &user, &right, Some(home)).await.status(), 201);
    // One window after the lock began, it is over, however long the trickle went on.
    srv.clock.advance(901);
    c.phone.set_clock_offset(901);
    assert_eq!(
        attempt(&srv, &user, &right, Some(attacker)).await.status(),
        201
    );
    assert_eq!(
        attempt(&srv, &user, &right, Some("192.0.2.99"))
            .await
            .status(),
        201
    );
}

/// Security round 2, finding 7: `/v1/me/password` answered 30 wrong current
/// passwords with 401 and never touched the lock — an unlimited oracle for
/// a stolen token. Now its failures count with the login's, from the same
/// address, under the same lock.
async fn the_current_password_is_guarded_like_a_login(backend: Backend) {
    let srv = TestServer::start_with(Options {
        rates: (100, 3, 1000, 1000, 30),
        trusted_proxies: vec!["127.0.0.1".into()],
        ..Options::new(backend)
    })
    .await;
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
    let thief = "198.51.100.70";
    let change = |current: String| {
        let (srv, token) = (&srv, token.clone());
        async move {
            srv.http
                .post(format!("{}/v1/me/password", srv.url))
                .bearer_auth(token)
                .header("X-Forwarded-For", thief)
                .json(&serde_json::json!({"current": current, "new": "a-new-long-password"}))
                .send()
                .await
                .expect("request")
                .status()
        }
    };
    for i in 0..3 {
        assert_eq!(change(format!("wrong-{i}")).await, 401);
    }
    assert_eq!(
        change(c.account.initial_password.expose().to_owned()).await,
        401,
        "locked: even the right current password is refused"
    );
    assert_eq!(locks(&srv).await, ["address"]);
    // The same lock stops a login from that address, and no other.
    let r = attempt(
        &srv,
        &c.account.username,
        c.account.initial_password.expose(),
        Some(thief),
    )
    .await;
    assert_eq!(r.status(), 401);
    let r = attempt(
        &srv,
        &c.account.username,
        c.account.initial_password.expose(),
        Some("203.0.113.9"),
    )
    .await;
    assert_eq!(r.status(), 201);
}
