//! `auth-server migrate` (issue 19): a populated embedded store and a
//! populated Redis deployment copied into PostgreSQL; a second run changes
//! nothing; a run after the source grew copies only what is new (the audit
//! trail resumes from its committed cursor); a database that served on its
//! own is refused. Afterwards a server on PostgreSQL + Redis logs the
//! citizen in with the phone enrolled before the move, an activation code
//! printed before the move still enrolls, and the trail verifies.

use potvrda_e2e::{Backend, Options, TestServer, postgres::fresh_database, redis_url, unique};
use potvrda_mobile_core::phone::VirtualPhone;
use potvrda_proto::api::CreateCitizenResponse;
use potvrda_proto::jose::Decision;
use potvrda_server::config::Config;
use potvrda_server::migrate::{Source, Summary, migrate};
use potvrda_server::store::postgres::import::Totals;
use secrecy::SecretString;

use crate::support::{Citizen, citizen, login, pulled};

/// Accounts created beside the enrolled citizen.
const MORE: usize = 6;

/// A citizen who logged in with the phone, a few accounts with their codes
/// pending, and one whose sheet is kept to enroll after the move.
async fn populate(srv: &TestServer) -> (Citizen, CreateCitizenResponse) {
    let c = citizen(srv, None).await;
    approve(srv, &c).await;
    for _ in 0..MORE {
        srv.create_citizen(&unique("m")).await;
    }
    let waiting = srv.create_citizen(&unique("w")).await;
    (c, waiting)
}

/// A login approved on the phone, its token handed over.
async fn approve(srv: &TestServer, c: &Citizen) {
    let l = login(srv, c).await;
    c.phone
        .answer(&pulled(&c.phone).await, Decision::Approve, Some(l.number))
        .await
        .expect("the phone approves");
    let status = srv.status(&l.login_id, l.login_secret.expose(), 0).await;
    assert!(status.access_token.is_some(), "{status:?}");
}

/// The configuration the servers will run with: `source`'s, PostgreSQL added.
fn with_postgres(source: &Config, database: &str) -> Config {
    let mut config = source.clone();
    config.store.postgres_url = Some(SecretString::from(database.to_owned()));
    if config.store.redis_url.is_none() {
        config.store.redis_url = Some(SecretString::from(redis_url()));
        config.store.redis_key_prefix = unique("moved");
    }
    config
}

async fn migrated(config: &Config, from: Source) -> Summary {
    migrate(config, from, potvrda_e2e::now())
        .await
        .unwrap_or_else(|e| panic!("migrate --from {from:?}: {e}"))
}

/// What a first run must have found, copied and checked.
fn assert_complete(first: &Summary) {
    assert_eq!(first.target, first.source, "{first}");
    assert_eq!(
        first.written, first.source,
        "a first run writes everything: {first}"
    );
    assert!(first.source.users > MORE as u64 + 1, "{first}");
    assert_eq!(first.source.devices, 1, "{first}");
    assert_eq!(first.source.activations, MORE as u64 + 1, "{first}");
    assert_eq!(
        first.source.keys, 4,
        "signing, VAPID, pepper, audit: {first}"
    );
    assert!(
        first.source.records > 0 && first.source.audit > 0,
        "{first}"
    );
    assert!(first.sampled >= first.source.users, "{first}");
    assert_eq!(first.audit.events, first.source.audit, "{first}");
}

/// A server on the migrated database: the phone from before the move logs
/// in, the sheet printed before it still enrolls, and the trail verifies.
async fn serves_after_the_move(
    database: String,
    redis_prefix: Option<String>,
    mut c: Citizen,
    waiting: &CreateCitizenResponse,
) {
    let moved = TestServer::start_with(Options {
        postgres_url: Some(database),
        redis_prefix,
        ..Options::new(Backend::Postgres)
    })
    .await;
    c.phone.state.device.server = moved.url.clone();
    approve(&moved, &c).await;
    VirtualPhone::enroll(
        &moved.url,
        waiting.activation_code.expose(),
        "phone after the move",
        None,
    )
    .await
    .expect("a code printed before the move enrolls after it");
    let (report, head) = potvrda_server::audit_check::verify_live(&moved.config)
        .await
        .expect("read");
    let (said, ok) = potvrda_server::audit_check::describe(&report, Some(head));
    assert!(ok, "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_store_moves_into_postgresql_and_its_phones_log_in() {
    let srv = TestServer::start(Backend::Embedded).await;
    let (c, waiting) = populate(&srv).await;
    let database = fresh_database();
    let config = with_postgres(&srv.config, &database);
    let _data = srv.stop().await;

    let first = migrated(&config, Source::Embedded).await;
    assert_complete(&first);
    let again = migrated(&config, Source::Embedded).await;
    assert_eq!(
        again.written,
        Totals::default(),
        "a second run changes nothing: {again}"
    );
    assert_eq!((again.source, again.target), (first.source, first.target));

    serves_after_the_move(database, None, c, &waiting).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_deployment_moves_into_postgresql_and_its_phones_log_in() {
    let srv = TestServer::start(Backend::Redis).await;
    let (c, waiting) = populate(&srv).await;
    let database = fresh_database();
    let config = with_postgres(&srv.config, &database);
    let prefix = srv.redis_prefix.clone();
    drop(srv.stop().await);

    let first = migrated(&config, Source::Redis).await;
    assert_complete(&first);
    let again = migrated(&config, Source::Redis).await;
    assert_eq!(
        again.written,
        Totals::default(),
        "a second run changes nothing: {again}"
    );

    // The same Redis (and prefix) keeps what is fleeting afterwards.
    serves_after_the_move(database, prefix, c, &waiting).await;
}

/// A run stopped anywhere leaves the batches committed before the stop,
/// each audit batch with its cursor: the state a finished run leaves
/// before the source grows. The next run copies only what came after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_after_the_source_grew_copies_only_what_is_new() {
    let srv = TestServer::start(Backend::Embedded).await;
    let (c, _) = populate(&srv).await;
    let database = fresh_database();
    let config = with_postgres(&srv.config, &database);
    let data = srv.stop().await.expect("the data dir");
    let first = migrated(&config, Source::Embedded).await;

    let again = TestServer::start_with(Options {
        data_dir: Some(data.path().to_owned()),
        ..Options::new(Backend::Embedded)
    })
    .await;
    let mut c = c;
    c.phone.state.device.server = again.url.clone();
    approve(&again, &c).await;
    again.create_citizen(&unique("late")).await;
    drop(again.stop().await);

    let second = migrated(&config, Source::Embedded).await;
    assert_eq!(second.target, second.source, "{second}");
    assert_eq!(second.written.users, 1, "only the new account: {second}");
    assert_eq!(
        second.written.audit,
        second.source.audit - first.source.audit,
        "only the events after the cursor: {second}"
    );
    assert!(second.written.audit > 0, "{second}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_served_on_its_own_is_refused() {
    let served = TestServer::start(Backend::Postgres).await;
    served.create_citizen(&unique("own")).await;
    let database = served.postgres_url.clone().expect("postgres");
    drop(served.stop().await);

    let srv = TestServer::start(Backend::Embedded).await;
    srv.create_citizen(&unique("e")).await;
    let config = with_postgres(&srv.config, &database);
    let _data = srv.stop().await;
    let refused = migrate(&config, Source::Embedded, potvrda_e2e::now())
        .await
        .expect_err("refused");
    assert!(
        refused.to_string().contains("served on its own"),
        "{refused}"
    );
}

/// A source read in pages smaller than what it holds: every account, code
/// and lasting record once (a key `SCAN` repeats is counted once), nothing
/// fleeting or expired, on every store a migration reads from.
async fn a_dump_reads_every_page(backend: Backend) {
    let prefix = unique("dump");
    match backend {
        Backend::Embedded => {
            let dir = tempfile::tempdir().expect("tempdir");
            let s = potvrda_server::store::embedded::EmbeddedStore::open(dir.path()).expect("open");
            read_in_pages(&s).await;
        }
        Backend::Redis | Backend::RedisCluster => {
            let cluster = backend == Backend::RedisCluster;
            let url = if cluster {
                potvrda_e2e::redis_cluster_nodes()
            } else {
                redis_url()
            };
            let s = potvrda_server::store::redis::RedisStore::connect(
                &SecretString::from(url),
                cluster,
                &prefix,
            )
            .await
            .expect("redis");
            read_in_pages(&s).await;
        }
        Backend::Postgres => unreachable!("PostgreSQL is the target, not a source"),
    }
}

/// Every item of a listing, page by page (`page` gives one after a cursor),
/// each page at most `most` long.
async fn all_pages<T>(
    most: usize,
    mut page: impl AsyncFnMut(Option<String>) -> potvrda_server::store::dump::Page<T>,
) -> Vec<T> {
    let mut items = Vec::new();
    let mut after = None;
    loop {
        let p = page(after).await;
        assert!(p.items.len() <= most, "a page of {} items", p.items.len());
        items.extend(p.items);
        match p.next {
            Some(next) => after = Some(next),
            None => return items,
        }
    }
}

async fn read_in_pages<S>(store: &S)
where
    S: potvrda_server::store::dump::Dump + potvrda_server::store::KvStore,
{
    use crate::store_contract::{NOW, activation, user};
    for i in 0..25 {
        let (id, code) = (format!("u{i:02}"), format!("code{i:02}"));
        store
            .create_user(&user(&id, &format!("name{i:02}")), &activation(&id, &code))
            .await
            .expect("created");
    }
    for i in 0..30 {
        store
            .kv_put(&format!("municipality:{i:03}"), b"lasting", 0)
            .await
            .expect("put");
    }
    store
        .kv_put("oidc:req:fleeting", b"fleeting", NOW + 600)
        .await
        .expect("put");
    store
        .kv_put("recovery:gone", b"expired", NOW - 1)
        .await
        .expect("put");

    // Accounts and codes once each: a list, not a set.
    let users: Vec<String> = all_pages(4, async |after| {
        store.users_page(after.as_deref(), 4).await.expect("users")
    })
    .await
    .into_iter()
    .map(|u| u.username)
    .collect();
    let names: Vec<String> = (0..25).map(|i| format!("name{i:02}")).collect();
    assert_eq!(users, names);
    let mut codes: Vec<String> = all_pages(4, async |after| {
        store
            .activations_page(after.as_deref(), 4, NOW)
            .await
            .expect("codes")
    })
    .await
    .into_iter()
    .map(|a| a.code_hash)
    .collect();
    codes.sort();
    let hashes: Vec<String> = (0..25).map(|i| format!("code{i:02}")).collect();
    assert_eq!(codes, hashes);
    // A `SCAN` step may give a few more keys than asked for.
    let keys: std::collections::BTreeSet<String> = all_pages(30, async |after| {
        store
            .records_page(after.as_deref(), 4, NOW)
            .await
            .expect("records")
    })
    .await
    .into_iter()
    .map(|r| r.key)
    .collect();
    assert_eq!(keys.len(), 30, "only the live lasting records: {keys:?}");
    assert!(
        keys.iter().all(|k| k.starts_with("municipality:")),
        "{keys:?}"
    );
}

mod dump_pages {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded() {
        super::a_dump_reads_every_page(potvrda_e2e::Backend::Embedded).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis() {
        super::a_dump_reads_every_page(potvrda_e2e::Backend::Redis).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_cluster() {
        super::a_dump_reads_every_page(potvrda_e2e::Backend::RedisCluster).await
    }
}
