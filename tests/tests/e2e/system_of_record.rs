//! PostgreSQL as the system of record (issue 19): what the contract suite
//! cannot see from the repository traits alone — the audit trail's retention
//! by whole months (the only deletion, itself audited), and the pool and
//! query metrics ops watch.

use std::sync::Arc;
use std::time::Duration;

use potvrda_e2e::{Backend, TestServer};
use potvrda_proto::api::{AuditEvent, AuditKind, Severity};
use potvrda_server::ports::NoMeter;
use potvrda_server::store::embedded::EmbeddedStore;
use potvrda_server::store::postgres::{PgStore, PoolSettings};
use potvrda_server::store::redis::RedisStore;
use potvrda_server::store::split::SplitStore;
use potvrda_server::store::{AuditFilter, AuditStore};
use secrecy::SecretString;

/// 2026-01-15, 2026-03-10, 2026-04-01 and 2026-06-02 (UTC), Unix seconds.
const JAN_15: i64 = 1_768_435_200;
const MAR_10: i64 = 1_773_100_800;
const APR_1: i64 = 1_775_001_600;
const JUN_2: i64 = 1_780_358_400;

fn event(at: i64, user: &str) -> AuditEvent {
    AuditEvent {
        id: String::new(),
        at,
        kind: AuditKind::CitizenViewed,
        severity: Severity::Info,
        actor_id: Some("official".into()),
        user_id: Some(user.into()),
        municipality: Some("NS".into()),
        ip: None,
        user_agent: None,
        detail: serde_json::Map::new(),
        chain: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_months_past_retention_are_dropped_whole_and_the_drop_is_recorded() {
    let url = SecretString::from(potvrda_e2e::postgres::fresh_database());
    let pool = PoolSettings {
        max_connections: 2,
        acquire_timeout: Duration::from_secs(10),
    };
    let pg = PgStore::connect(&url, pool, Arc::new(NoMeter))
        .await
        .expect("postgres");
    months_are_dropped_whole(&pg).await;
}

/// The embedded store's log keeps the same months, dropped the same way:
/// a segment file deleted, after the drop is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_audit_months_past_retention_are_dropped_whole_and_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(dir.path()).expect("opens");
    months_are_dropped_whole(&store).await;
    let mut left: Vec<_> = std::fs::read_dir(dir.path().join("audit"))
        .expect("audit dir")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    left.sort();
    // The log's months are those of its keys, which never go backwards: the
    // event dated April but written after June's is in June's segment.
    assert_eq!(left, ["2026-06.jsonl"]);
}

async fn months_are_dropped_whole(pg: &(dyn AuditStore + Sync)) {
    pg.append_audit(&event(JAN_15, "jan"), 0)
        .await
        .expect("jan");
    pg.append_audit(&event(MAR_10, "mar"), 0)
        .await
        .expect("mar");
    // April's first second is kept: March ends before it, January too.
    pg.append_audit(&event(JUN_2, "jun"), APR_1 + 1)
        .await
        .expect("jun");
    let page = pg
        .audit_events(&AuditFilter {
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .expect("read");
    let users: Vec<_> = page.events.iter().map(|e| e.user_id.as_deref()).collect();
    assert_eq!(users, [Some("jun"), None, None], "{:?}", page.events);
    let dropped: Vec<_> = page.events[1..]
        .iter()
        .map(|e| {
            assert_eq!((e.kind, e.at), (AuditKind::AuditMonthDropped, JUN_2));
            (e.detail["month"].clone(), e.detail["events"].clone())
        })
        .collect();
    assert_eq!(
        dropped,
        [
            (serde_json::json!("2026-01"), serde_json::json!(1)),
            (serde_json::json!("2026-03"), serde_json::json!(1))
        ]
    );
    // A month is dropped whole or not at all: an event of a month that ends
    // after the cut stays, however old.
    pg.append_audit(&event(APR_1 + 5, "apr"), 0)
        .await
        .expect("apr");
    pg.append_audit(&event(JUN_2 + 7_200, "later"), APR_1 + 10)
        .await
        .expect("later");
    let page = pg
        .audit_events(&AuditFilter {
            user_id: Some("apr".into()),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .expect("read");
    assert_eq!(
        page.events.len(),
        1,
        "April stays while any of it is retained"
    );
}

async fn scrape(srv: &TestServer) -> String {
    let r = srv
        .http
        .get(format!("{}/metrics", srv.url))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    r.text().await.expect("text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_and_the_queries_are_measured() {
    let srv = TestServer::start(Backend::Postgres).await;
    srv.create_citizen_named("milica", "Милица Јовановић").await;
    let text = scrape(&srv).await;
    assert!(
        text.contains("potvrda_postgres_connections{state=\"max\"} 4"),
        "{text}"
    );
    let created = text
        .lines()
        .find_map(|l| l.strip_prefix("potvrda_postgres_query_seconds_count{op=\"create_user\"} "))
        .unwrap_or_else(|| panic!("no create_user timing:\n{text}"));
    assert_eq!(created.trim(), "1");
    let ready = srv
        .http
        .get(format!("{}/readyz", srv.url))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lasting_records_go_to_postgres_and_fleeting_ones_to_redis() {
    use potvrda_server::store::KvStore;
    use potvrda_server::store::records::Kind;
    let prefix = format!("split-{}", uuid::Uuid::new_v4().simple());
    let url = SecretString::from(potvrda_e2e::postgres::fresh_database());
    let pool = PoolSettings {
        max_connections: 2,
        acquire_timeout: Duration::from_secs(10),
    };
    let pg = PgStore::connect(&url, pool, Arc::new(NoMeter))
        .await
        .expect("postgres");
    let redis_url = SecretString::from(potvrda_e2e::redis_url());
    let connect = || RedisStore::connect(&redis_url, false, &prefix);
    let split = SplitStore::new(pg, connect().await.expect("redis"));
    let redis = connect().await.expect("redis");
    for kind in Kind::ALL {
        let key = format!("{}x", kind.prefix());
        split.kv_put(&key, b"v", 0).await.expect("put");
        assert_eq!(
            split.kv_get(&key, 1).await.expect("get").as_deref(),
            Some(&b"v"[..])
        );
        let in_redis = redis.kv_get(&key, 1).await.expect("redis get").is_some();
        assert_eq!(in_redis, !kind.lasting(), "{kind:?}");
    }
    // What must outlive a login's minutes is lasting: the grants, sessions,
    // keys and spent nonces; what belongs with a challenge is not.
    for kind in [
        Kind::OidcGrant,
        Kind::OidcSession,
        Kind::TokenKeyring,
        Kind::DpopJti,
        Kind::RecoveryCodes,
    ] {
        assert!(kind.lasting(), "{kind:?}");
    }
    for kind in [Kind::OidcCode, Kind::OidcRequest, Kind::CibaRequest] {
        assert!(!kind.lasting(), "{kind:?}");
    }
}

/// The restore drill of OPERATIONS.md ("Backups"): a logical dump of the
/// live database, restored into a new one, a new server on it — the citizen
/// logs in with the phone they already had, and the audit trail verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_restored_into_a_new_database_logs_the_citizen_in() {
    use crate::support::{citizen, login, pulled};
    use potvrda_proto::jose::Decision;
    let srv = TestServer::start(Backend::Postgres).await;
    let mut c = citizen(&srv, None).await;
    let before = login(&srv, &c).await;
    c.phone
        .answer(
            &pulled(&c.phone).await,
            Decision::Approve,
            Some(before.number),
        )
        .await
        .expect("approved before the dump");
    let dir = tempfile::tempdir().expect("tempdir");
    let dump = dir.path().join("potvrda.dump");
    let source = srv.postgres_url.clone().expect("postgres");
    pg(std::process::Command::new("pg_dump")
        .args(["--format=custom", "--file"])
        .arg(&dump)
        .arg(&source));
    let target = potvrda_e2e::postgres::fresh_database();
    pg(std::process::Command::new("pg_restore")
        .args(["--no-owner", "--exit-on-error", "--dbname", &target])
        .arg(&dump));
    let _old = srv.stop().await;

    let restored = TestServer::start_with(potvrda_e2e::Options {
        postgres_url: Some(target),
        ..potvrda_e2e::Options::new(Backend::Postgres)
    })
    .await;
    c.phone.state.device.server = restored.url.clone();
    let l = login(&restored, &c).await;
    c.phone
        .answer(&pulled(&c.phone).await, Decision::Approve, Some(l.number))
        .await
        .expect("the restored server knows the phone and its key");
    let status = restored
        .status(&l.login_id, l.login_secret.expose(), 0)
        .await;
    assert!(status.access_token.is_some(), "{status:?}");
    let (report, head) = potvrda_server::audit_check::verify_live(&restored.config)
        .await
        .expect("read");
    let (said, ok) = potvrda_server::audit_check::describe(&report, Some(head));
    assert!(ok, "{said}");
}

fn pg(cmd: &mut std::process::Command) {
    let out = cmd
        .output()
        .expect("PostgreSQL's client programs (scripts/test.sh installs postgresql-client)");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
