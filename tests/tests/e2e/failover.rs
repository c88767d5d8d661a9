//! PostgreSQL failover under load (issue 19): a primary with a synchronous
//! streaming standby behind one service address, counters opening accounts,
//! phones enrolling and citizens logging in without pause; the primary
//! crashes, the standby is promoted and the address moved to it. Every
//! acknowledged account and device survives, the server reconnects by
//! itself, and the gap answers clean 503s. The figures go to stderr
//! (`cargo test … failover -- --nocapture`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use potvrda_e2e::postgres::{PostgresCluster, ServiceAddress};
use potvrda_e2e::{Backend, Options, TestServer, unique};
use potvrda_mobile_core::phone::VirtualPhone;
use potvrda_proto::api::{
    CreateCitizenRequest, CreateCitizenResponse, LoginResponse, LoginStatus, LoginStatusResponse,
};
use potvrda_proto::jose::Decision;

use crate::support::{http_error, phone_error};

/// Workers of the load.
const WORKERS: usize = 3;

/// What the load saw.
#[derive(Debug, Default)]
struct Counts {
    /// Accounts the counter was told were created (201).
    citizens: Vec<(String, Instant)>,
    /// Devices whose enrollment was acknowledged.
    devices: Vec<String>,
    /// Logins approved with their token received.
    logins: usize,
    /// 503 `store_unavailable` answers, retried.
    unavailable: usize,
    /// Writes whose answer was a 503 but which had committed (the retry
    /// found the name taken, or the code spent): not acknowledged, so not
    /// counted either way.
    in_doubt: usize,
}

type Failure = (u16, String);

/// `call` until it answers something other than 503 `store_unavailable`;
/// any other 5xx, or no answer within 15 s, fails the test.
async fn through_gap<T>(
    counts: &Mutex<Counts>,
    mut call: impl AsyncFnMut() -> Result<T, Failure>,
) -> Result<T, Failure> {
    loop {
        let answer = tokio::time::timeout(Duration::from_secs(15), call())
            .await
            .expect("every answer within 15 s, in the gap or not");
        match answer {
            Err((503, code)) => {
                assert_eq!(code, "store_unavailable");
                counts.lock().unwrap().unavailable += 1;
                // Back off before the next try, as a client does.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err((status, code)) if status >= 500 => panic!("{status} {code}"),
            other => return other,
        }
    }
}

/// The counter opens an account: `None` when the answer was lost but the
/// account committed (in doubt).
async fn open_account(srv: &TestServer, counts: &Mutex<Counts>) -> Option<CreateCitizenResponse> {
    let username = unique("f");
    let created = through_gap(counts, async || {
        let r = srv
            .http
            .post(format!("{}/v1/admin/citizens", srv.url))
            .bearer_auth(&srv.token)
            .json(&CreateCitizenRequest {
                username: username.clone(),
                display_name: "Failover".into(),
                email: None,
                phone: None,
            })
            .send()
            .await
            .expect("request");
        if r.status() == 201 {
            Ok(r.json::<CreateCitizenResponse>().await.expect("json"))
        } else {
            Err(http_error(r).await)
        }
    })
    .await;
    let mut c = counts.lock().unwrap();
    match created {
        Ok(account) => {
            c.citizens.push((account.username.clone(), Instant::now()));
            Some(account)
        }
        Err((409, _)) => {
            c.in_doubt += 1;
            None
        }
        Err(e) => panic!("create: {e:?}"),
    }
}

/// The phone enrolls: `None` when an attempt whose answer was lost spent the code.
async fn enroll(
    srv: &TestServer,
    account: &CreateCitizenResponse,
    counts: &Mutex<Counts>,
) -> Option<VirtualPhone> {
    let code = account.activation_code.expose().to_owned();
    let enrolled = through_gap(counts, async || {
        VirtualPhone::enroll(&srv.url, &code, "failover phone", None)
            .await
            .map_err(phone_error)
    })
    .await;
    let mut c = counts.lock().unwrap();
    match enrolled {
        Ok(phone) => {
            c.devices.push(phone.state.device.device_id.clone());
            Some(phone)
        }
        Err((status, _)) if status < 500 => {
            c.in_doubt += 1;
            None
        }
        Err(e) => panic!("enroll: {e:?}"),
    }
}

/// Log in with the password, approve on the phone, receive the token.
async fn log_in(
    srv: &TestServer,
    account: &CreateCitizenResponse,
    phone: &VirtualPhone,
    counts: &Mutex<Counts>,
) {
    let l: LoginResponse = through_gap(counts, async || {
        let r = srv
            .login_raw(&account.username, account.initial_password.expose())
            .await;
        if r.status() == 201 {
            Ok(r.json().await.expect("json"))
        } else {
            Err(http_error(r).await)
        }
    })
    .await
    .expect("login accepted");
    let challenge = through_gap(counts, async || phone.pending().await.map_err(phone_error))
        .await
        .expect("pull")
        .pop()
        .expect("the challenge is pending");
    match through_gap(counts, async || {
        phone
            .answer(&challenge, Decision::Approve, Some(l.number))
            .await
            .map_err(phone_error)
    })
    .await
    {
        Ok(_) | Err((409, _)) => {}
        Err(e) => panic!("approval refused: {e:?}"),
    }
    let answer: LoginStatusResponse = through_gap(counts, async || {
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
    assert_eq!(answer.status, LoginStatus::Approved);
    assert!(answer.access_token.is_some(), "approved, so a token");
    counts.lock().unwrap().logins += 1;
}

async fn work(srv: &TestServer, stop: &AtomicBool, counts: &Mutex<Counts>) {
    while !stop.load(Ordering::Relaxed) {
        let Some(account) = open_account(srv, counts).await else {
            continue;
        };
        let Some(phone) = enroll(srv, &account, counts).await else {
            continue;
        };
        log_in(srv, &account, &phone, counts).await;
    }
}

/// The server's warnings and errors in the test's output (shown when it
/// fails): what a 500 in the gap was.
fn server_log() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_test_writer()
        .try_init();
}

/// Wait (60 s at most) until `done`, keeping the server's clock on the
/// wall's: the phones sign with the wall's time, and the server refuses
/// proofs from its future.
async fn until(srv: &TestServer, what: &str, done: &dyn Fn() -> bool) {
    use potvrda_server::clock::Clock as _;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what} within 60 s");
        let behind = potvrda_e2e::now() - srv.clock.now();
        if behind > 0 {
            srv.clock.advance(behind);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The rows of one column of the promoted database.
fn column(cluster: &PostgresCluster, sql: &str) -> std::collections::HashSet<String> {
    cluster
        .psql("potvrda", sql)
        .expect("the promoted standby answers")
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_synchronous_standby_holds_every_acknowledged_write() {
    server_log();
    let primary = PostgresCluster::start_primary().expect("primary");
    // Every commit waits for the standby from now on: it comes first.
    let standby = primary.start_standby().expect("standby");
    primary
        .psql("postgres", "CREATE DATABASE potvrda")
        .expect("database");
    let address = ServiceAddress::start(&primary).await;
    let srv = TestServer::start_with(Options {
        postgres_url: Some(address.url("potvrda")),
        limits: (10_000, 900, 5, 900),
        ..Options::new(Backend::Postgres)
    })
    .await;

    let stop = AtomicBool::new(false);
    let counts = Mutex::new(Counts::default());
    let acked = || counts.lock().unwrap().citizens.len();
    let unavailable = || counts.lock().unwrap().unavailable;
    let load = futures_util::future::join_all((0..WORKERS).map(|_| work(&srv, &stop, &counts)));
    let conductor = async {
        let until = async |what: &str, done: &dyn Fn() -> bool| until(&srv, what, done).await;
        until("10 accounts before the crash", &|| acked() >= 10).await;
        // The standby stops hearing the primary; the primary crashes once a
        // commit was made in that window: acknowledged (then lost, with
        // asynchronous replication) or waiting for the standby (held back,
        // as synchronous replication does, so never acknowledged).
        primary.stop_wal_sender().expect("stopped");
        // Each worker may have had one account committed (and sent) before
        // the stop but acknowledged after it: one more is surely from after.
        let before = acked();
        until("a commit while the standby hears nothing", &|| {
            acked() > before + WORKERS
                || primary
                    .commits_waiting_for_standby()
                    .expect("the primary answers")
                    > 0
        })
        .await;
        let crashed = Instant::now();
        primary.crash().expect("the primary crashes");
        until("503s while there is no primary", &|| unavailable() >= 10).await;
        standby.promote().expect("promoted");
        address.move_to(&standby);
        let promoted = Instant::now();
        let at_promotion = acked();
        until("10 accounts after the promotion", &|| {
            acked() >= at_promotion + 10
        })
        .await;
        stop.store(true, Ordering::Relaxed);
        (crashed, promoted)
    };
    let (_, (crashed, promoted)) = tokio::join!(load, conductor);
    let c = counts.into_inner().unwrap();

    let users = column(&standby, "SELECT username FROM users");
    let devices = column(&standby, "SELECT id FROM devices");
    let lost_users: Vec<&String> = c
        .citizens
        .iter()
        .map(|(u, _)| u)
        .filter(|u| !users.contains(*u))
        .collect();
    let lost_devices: Vec<&String> = c.devices.iter().filter(|d| !devices.contains(*d)).collect();
    let first_after = c
        .citizens
        .iter()
        .map(|(_, at)| *at)
        .filter(|at| *at > crashed)
        .min()
        .expect("accounts after the crash");
    eprintln!(
        "failover: accounts acknowledged {} / surviving {}; devices acknowledged {} / surviving {}; \
         logins completed {}; 503s {}; in doubt {}; gap {:.2} s (crash to promotion {:.2} s, \
         promotion to the first write acknowledged {:.2} s)",
        c.citizens.len(),
        c.citizens.len() - lost_users.len(),
        c.devices.len(),
        c.devices.len() - lost_devices.len(),
        c.logins,
        c.unavailable,
        c.in_doubt,
        (first_after - crashed).as_secs_f64(),
        (promoted - crashed).as_secs_f64(),
        first_after
            .saturating_duration_since(promoted)
            .as_secs_f64(),
    );
    assert!(
        lost_users.is_empty(),
        "acknowledged, then lost: {lost_users:?}"
    );
    assert!(
        lost_devices.is_empty(),
        "acknowledged, then lost: {lost_devices:?}"
    );
    assert!(c.logins >= 10 && c.unavailable >= 10, "{c:?}");
}

/// How one login through a Redis failover ended.
enum Ended {
    /// Approved, and its token handed over once.
    Completed,
    /// Refused cleanly (its login or decision was lost with the master):
    /// the citizen starts again.
    Failed,
}

/// A login that may meet the failover: it completes or fails cleanly, and
/// a second look at a completed one never hands out another token.
async fn log_in_through_failover(
    srv: &TestServer,
    c: &crate::support::Citizen,
    counts: &Mutex<Counts>,
) -> Ended {
    let l: LoginResponse = through_gap(counts, async || {
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
    let pending = through_gap(counts, async || {
        c.phone.pending().await.map_err(phone_error)
    })
    .await
    .expect("pull");
    // One login at a time per citizen: a newer one supersedes the older.
    let Some(challenge) = pending.into_iter().max_by_key(|ch| ch.claims.iat) else {
        return Ended::Failed;
    };
    match through_gap(counts, async || {
        c.phone
            .answer(&challenge, Decision::Approve, Some(l.number))
            .await
            .map_err(phone_error)
    })
    .await
    {
        Ok(_) | Err((409, _)) => {}
        Err((status, _)) if status < 500 => return Ended::Failed,
        Err(e) => panic!("approval: {e:?}"),
    }
    let status = async |wait: u64| {
        through_gap(counts, async || {
            let r = srv
                .status_raw(&l.login_id, l.login_secret.expose(), wait)
                .await;
            if r.status() == 200 {
                Ok(r.json::<LoginStatusResponse>().await.expect("json"))
            } else {
                Err(http_error(r).await)
            }
        })
        .await
    };
    let Ok(first) = status(5).await else {
        return Ended::Failed;
    };
    let Some(token) = first.access_token else {
        return Ended::Failed;
    };
    // Asked again: the same token (redelivered) or none, never another.
    if let Ok(again) = status(0).await
        && let Some(other) = again.access_token
    {
        assert!(other == token, "login {} handed two tokens", l.login_id);
    }
    Ended::Completed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cluster_master_killed_under_load_loses_no_account_and_never_gives_two_tokens() {
    server_log();
    let cluster = potvrda_e2e::OwnCluster::start_replicated();
    let srv = TestServer::start_with(Options {
        redis_url: Some(cluster.nodes.clone()),
        redis_cluster: true,
        limits: (10_000, 900, 5, 900),
        ..Options::new(Backend::Postgres)
    })
    .await;
    let mut citizens = Vec::new();
    for _ in 0..WORKERS {
        citizens.push(crate::support::citizen(&srv, None).await);
    }
    let stop = AtomicBool::new(false);
    let counts = Mutex::new(Counts::default());
    let ended = Mutex::new((0usize, 0usize));
    let completed = || ended.lock().unwrap().0;
    let load = futures_util::future::join_all(citizens.iter().map(|c| async {
        while !stop.load(Ordering::Relaxed) {
            open_account(&srv, &counts).await;
            let outcome = log_in_through_failover(&srv, c, &counts).await;
            let mut e = ended.lock().unwrap();
            match outcome {
                Ended::Completed => e.0 += 1,
                Ended::Failed => e.1 += 1,
            }
        }
    }));
    let conductor = async {
        let until = async |what: &str, done: &dyn Fn() -> bool| until(&srv, what, done).await;
        until("10 logins before the kill", &|| completed() >= 10).await;
        let master = cluster.masters(cluster.ports()[0])[0];
        let killed = Instant::now();
        cluster.kill(master);
        until("the replica taking over", &|| {
            cluster.took_over_from(master)
        })
        .await;
        let took_over = Instant::now();
        let at_takeover = completed();
        until("10 logins after the takeover", &|| {
            completed() >= at_takeover + 10
        })
        .await;
        stop.store(true, Ordering::Relaxed);
        (killed, took_over)
    };
    let (_, (killed, took_over)) = tokio::join!(load, conductor);
    let c = counts.into_inner().unwrap();
    let (done, failed) = ended.into_inner().unwrap();

    let url = srv.postgres_url.clone().expect("postgres");
    let out = std::process::Command::new("psql")
        .args([
            url.as_str(),
            "-X",
            "-A",
            "-t",
            "-c",
            "SELECT username FROM users",
        ])
        .output()
        .expect("psql");
    let users: std::collections::HashSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let lost: Vec<&String> = c
        .citizens
        .iter()
        .map(|(u, _)| u)
        .filter(|u| !users.contains(*u))
        .collect();
    eprintln!(
        "redis failover: accounts acknowledged {} / surviving {}; logins completed {}, failed cleanly {}; \
         503s {}; the replica took over {:.2} s after the kill",
        c.citizens.len(),
        c.citizens.len() - lost.len(),
        done,
        failed,
        c.unavailable,
        (took_over - killed).as_secs_f64(),
    );
    assert!(lost.is_empty(), "acknowledged, then lost: {lost:?}");
    assert!(done >= 20, "{done} logins completed");
}
