//! The store contract: what every backend promises the domain, one async
//! test per behaviour of each repository, run in-process (no HTTP) against
//! every backend — embedded, Redis, Redis Cluster, PostgreSQL + Redis — by the same macro that
//! runs the end-to-end scenarios. A new backend is done when this suite
//! passes on it: add its `Backend` variant and its opener in [`open`].

use std::sync::Arc;
use std::time::Duration;

use potvrda_e2e::Backend;
use potvrda_proto::api::{AuditEvent, AuditKind, Role, Severity};
use potvrda_proto::jose::{EcJwk, Jwks, LoginContext};
use potvrda_server::audit::verify::{Scope, Verifier};
use potvrda_server::ports::NoMeter;
use potvrda_server::store::embedded::EmbeddedStore;
use potvrda_server::store::postgres::{PgStore, PoolSettings};
use potvrda_server::store::records::{JsonRecord, Kind, Records};
use potvrda_server::store::redis::RedisStore;
use potvrda_server::store::split::SplitStore;
use potvrda_server::store::{
    Activation, Admission, AuditFilter, DecideOutcome, Device, EnrollOutcome, Limits, LoginId,
    LoginRecord, LoginState, RateKey, Store, User, UserId,
};
use secrecy::SecretString;

/// A fresh, empty store of `backend` (a new directory, or a new key prefix
/// on the shared Redis), and what keeps it alive.
async fn open(backend: Backend) -> (Arc<dyn Store>, Option<tempfile::TempDir>) {
    let prefix = format!("contract-{}", uuid::Uuid::new_v4().simple());
    match backend {
        Backend::Embedded => {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = EmbeddedStore::open(dir.path()).expect("embedded store");
            (Arc::new(store), Some(dir))
        }
        Backend::Redis => {
            let url = SecretString::from(potvrda_e2e::redis_url());
            let store = RedisStore::connect(&url, false, &prefix)
                .await
                .expect("redis");
            (Arc::new(store), None)
        }
        Backend::RedisCluster => {
            let nodes = SecretString::from(potvrda_e2e::redis_cluster_nodes());
            let store = RedisStore::connect(&nodes, true, &prefix)
                .await
                .expect("cluster");
            (Arc::new(store), None)
        }
        Backend::Postgres => (Arc::new(split(&prefix).await), None),
    }
}

/// PostgreSQL (a fresh database, migrated from empty) + Redis.
async fn split(prefix: &str) -> SplitStore {
    let pg_url = SecretString::from(potvrda_e2e::postgres::fresh_database());
    let pool = PoolSettings {
        max_connections: 4,
        acquire_timeout: Duration::from_secs(10),
    };
    let pg = PgStore::connect(&pg_url, pool, Arc::new(NoMeter))
        .await
        .expect("postgres");
    let url = SecretString::from(potvrda_e2e::redis_url());
    let redis = RedisStore::connect(&url, false, prefix)
        .await
        .expect("redis");
    SplitStore::new(pg, redis)
}

pub(crate) const NOW: i64 = 1_000_000;

pub(crate) fn user(id: &str, name: &str) -> User {
    User {
        id: id.into(),
        username: name.into(),
        display_name: format!("{name} display"),
        password_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        email: None,
        phone: None,
        role: Role::Citizen,
        municipality: Some("NS".into()),
        pwd_change_required: true,
        locked: false,
        fraud_reported_at: None,
        deactivated: false,
        generation: 0,
        created_by: None,
        created_at: NOW,
    }
}

pub(crate) fn activation(user_id: &str, code_hash: &str) -> Activation {
    Activation {
        code_hash: code_hash.into(),
        user_id: user_id.into(),
        expires_at: NOW + 3600,
    }
}

fn device(id: &str) -> Device {
    Device {
        id: id.into(),
        user_id: UserId::default(),
        name: "Telefon".into(),
        platform: "android".into(),
        public_key: serde_json::from_value::<EcJwk>(
            serde_json::json!({"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}),
        )
        .expect("jwk"),
        push: None,
        push_gone: false,
        created_at: NOW,
        enrolled_via: Some(potvrda_server::store::Channel::Addition),
    }
}

fn login(id: &str, user_id: &str, expires_at: i64) -> LoginRecord {
    LoginRecord {
        id: id.into(),
        cid: format!("cid-{id}").into(),
        user_id: user_id.into(),
        username: "ana".into(),
        nonce: "n".into(),
        number: 42,
        secret_hash: "h".into(),
        created_at: NOW,
        created_at_ms: NOW * 1000,
        expires_at,
        context: LoginContext::default(),
        challenges: vec![],
        audience: Default::default(),
        client_ip: None,
        code: None,
        portal_client: Some("portal-api".into()),
    }
}

/// Accounts: created with their activation, found by name and id,
/// unique by username, updated, searched by prefix.
async fn accounts_are_unique_by_username_and_found_by_prefix(backend: Backend) {
    let (store, _keep) = open(backend).await;
    store
        .create_user(&user("u1", "ana.petrovic"), &activation("u1", "c1"))
        .await
        .expect("created");
    let taken = store
        .create_user(&user("u2", "ana.petrovic"), &activation("u2", "c2"))
        .await;
    assert!(
        matches!(taken, Err(potvrda_server::error::Error::UsernameTaken)),
        "the same username twice: {taken:?}"
    );
    assert!(
        store.user(&"u2".into()).await.expect("read").is_none(),
        "nothing half-made"
    );
    store
        .create_user(&user("u3", "ana.jovanovic"), &activation("u3", "c3"))
        .await
        .expect("created");
    store
        .create_user(&user("u4", "marko"), &activation("u4", "c4"))
        .await
        .expect("created");
    let found = store.user_by_name("ana.petrovic").await.expect("read");
    assert_eq!(found.map(|u| u.id), Some("u1".into()));
    let mut names: Vec<String> = store
        .search_users("ana.", 10)
        .await
        .expect("search")
        .into_iter()
        .map(|u| u.username)
        .collect();
    names.sort();
    assert_eq!(names, ["ana.jovanovic", "ana.petrovic"]);
    assert_eq!(
        store.search_users("ana.", 1).await.expect("search").len(),
        1
    );
    let mut changed = user("u1", "ana.petrovic");
    changed.locked = true;
    changed.generation = 3;
    store.update_user(&changed).await.expect("updated");
    assert_eq!(store.user(&"u1".into()).await.expect("read"), Some(changed));
}

/// Devices: an activation code enrolls once, devices are listed, renamed,
/// given a new push subscription, marked gone (that subscription only) and
/// revoked only by their own account.
async fn an_activation_code_enrolls_one_device_once(backend: Backend) {
    let (store, _keep) = open(backend).await;
    store
        .create_user(&user("u1", "ana"), &activation("u1", "code-hash"))
        .await
        .expect("created");
    let first = store
        .enroll_device("code-hash", device("d1"), NOW)
        .await
        .expect("enroll");
    assert!(matches!(first, EnrollOutcome::Enrolled(u) if u.id == "u1"));
    let again = store
        .enroll_device("code-hash", device("d2"), NOW)
        .await
        .expect("enroll");
    assert_eq!(again, EnrollOutcome::InvalidCode, "a code is spent once");
    assert_eq!(
        store
            .enroll_device("unknown", device("d3"), NOW)
            .await
            .expect("enroll"),
        EnrollOutcome::InvalidCode
    );
    let devices = store.devices_of(&"u1".into()).await.expect("list");
    assert_eq!(devices.len(), 1);
    assert_eq!(
        devices[0].user_id, "u1",
        "the store binds the device to the code's account"
    );
    assert!(
        !store
            .rename_device(&"u2".into(), &"d1".into(), "x")
            .await
            .expect("rename")
    );
    assert!(
        store
            .rename_device(&"u1".into(), &"d1".into(), "Posao")
            .await
            .expect("rename")
    );
    let target = |endpoint: &str| potvrda_server::store::PushTarget {
        endpoint: endpoint.into(),
        p256dh: "p".into(),
        auth: "a".into(),
        declarative: true,
        locale: Some(potvrda_i18n::Locale::Hu),
    };
    let read = || async {
        store
            .device(&"d1".into())
            .await
            .expect("read")
            .expect("there")
    };
    assert!(
        !store
            .set_push(&"u2".into(), &"d1".into(), Some(target("https://a/1")))
            .await
            .expect("set"),
        "not theirs"
    );
    assert_eq!(read().await.push, None);
    assert!(
        store
            .set_push(&"u1".into(), &"d1".into(), Some(target("https://a/1")))
            .await
            .expect("set")
    );
    store
        .mark_push_gone(&"d1".into(), "https://a/0")
        .await
        .expect("gone");
    assert!(!read().await.push_gone, "another endpoint was gone");
    store
        .mark_push_gone(&"d1".into(), "https://a/1")
        .await
        .expect("gone");
    let d = read().await;
    assert_eq!((d.name.as_str(), d.push_gone), ("Posao", true));
    assert_eq!(
        d.push,
        Some(target("https://a/1")),
        "the subscription is kept whole: its payload and language too"
    );
    // A new subscription is not gone, even if the old one's gone report
    // arrives after it (a delivery in flight).
    assert!(
        store
            .set_push(&"u1".into(), &"d1".into(), Some(target("https://a/2")))
            .await
            .expect("set")
    );
    store
        .mark_push_gone(&"d1".into(), "https://a/1")
        .await
        .expect("gone");
    let d = read().await;
    assert_eq!((d.push, d.push_gone), (Some(target("https://a/2")), false));
    assert!(
        store
            .set_push(&"u1".into(), &"d1".into(), None)
            .await
            .expect("removed")
    );
    assert_eq!(read().await.push, None);
    assert!(
        !store
            .revoke_device(&"u2".into(), &"d1".into())
            .await
            .expect("revoke"),
        "not theirs"
    );
    assert!(
        store
            .revoke_device(&"u1".into(), &"d1".into())
            .await
            .expect("revoke")
    );
    assert!(store.device(&"d1".into()).await.expect("read").is_none());
    assert!(
        store
            .devices_of(&"u1".into())
            .await
            .expect("list")
            .is_empty()
    );
}

/// An expired activation code enrolls nothing.
async fn an_expired_activation_code_enrolls_nothing(backend: Backend) {
    let (store, _keep) = open(backend).await;
    store
        .create_user(&user("u1", "ana"), &activation("u1", "code-hash"))
        .await
        .expect("created");
    let late = store
        .enroll_device("code-hash", device("d1"), NOW + 3600)
        .await
        .expect("enroll");
    assert_eq!(late, EnrollOutcome::InvalidCode);
}

/// Of racing decisions on one login exactly one wins; the loser sees
/// `AlreadyDecided`, and a waiter on the login is woken.
async fn of_racing_decisions_exactly_one_wins(backend: Backend) {
    let (store, _keep) = open(backend).await;
    store
        .create_login(&login("l1", "u1", NOW + 60))
        .await
        .expect("created");
    let mut woken = store.subscribe("l1");
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            let to = if i % 2 == 0 {
                LoginState::Approved
            } else {
                LoginState::Denied
            };
            let jti = format!("jti-{i}");
            let amr = vec![format!("proof-{i}"), "user".to_owned()];
            tokio::spawn(async move {
                store
                    .decide(&"l1".into(), to, NOW, NOW * 1000, Some(&jti), &amr)
                    .await
            })
        })
        .collect();
    let mut decided = 0;
    for r in racers {
        match r.await.expect("joined").expect("decide") {
            DecideOutcome::Decided => decided += 1,
            DecideOutcome::AlreadyDecided => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(decided, 1, "exactly one decision");
    tokio::time::timeout(Duration::from_secs(10), woken.changed())
        .await
        .expect("the waiter is woken");
    let l = store
        .login(&"l1".into())
        .await
        .expect("read")
        .expect("there");
    assert_ne!(l.state, LoginState::Pending);
    assert!(l.approval_jti.is_some() && l.decided_at == Some(NOW));
    // What the winning answer proved is kept with its decision, whole.
    let winner = l
        .approval_jti
        .as_deref()
        .and_then(|j| j.strip_prefix("jti-"))
        .expect("a racer's jti");
    assert_eq!(l.amr, [format!("proof-{winner}"), "user".to_owned()]);
    assert_eq!(
        store
            .decide(&"missing".into(), LoginState::Approved, NOW, 0, None, &[])
            .await
            .expect("decide"),
        DecideOutcome::NotFound
    );
}

/// A login past its expiry cannot be decided; logins are found by their
/// challenge id and listed as pending for their account.
async fn an_expired_login_cannot_be_decided(backend: Backend) {
    let (store, _keep) = open(backend).await;
    store
        .create_login(&login("l1", "u1", NOW + 60))
        .await
        .expect("created");
    store
        .create_login(&login("l2", "u1", NOW + 120))
        .await
        .expect("created");
    let by_cid = store
        .login_by_challenge(&"cid-l1".into())
        .await
        .expect("read");
    assert_eq!(by_cid.map(|l| l.record.id), Some("l1".into()));
    let mut pending: Vec<LoginId> = store
        .pending_logins(&"u1".into(), NOW + 90)
        .await
        .expect("list")
        .into_iter()
        .map(|l| l.record.id)
        .collect();
    pending.sort();
    assert_eq!(pending, ["l2"], "the expired one is not pending");
    assert_eq!(
        store
            .decide(&"l1".into(), LoginState::Approved, NOW + 60, 0, None, &[])
            .await
            .expect("decide"),
        DecideOutcome::Expired
    );
    assert!(store.mark_seen(&"l2".into()).await.expect("seen"));
}

/// The token of an approved login is handed over once: of racing
/// callers, one stores its sealed token and every caller gets that one
/// back (a reply lost in transit is redelivered within the window, and no
/// second token is kept); after the window, nothing; never while pending.
async fn the_token_is_handed_out_once(backend: Backend) {
    let (store, _keep) = open(backend).await;
    store
        .create_login(&login("l1", "u1", NOW + 60))
        .await
        .expect("created");
    assert!(
        store
            .take_token(&"l1".into(), b"sealed", NOW, 60)
            .await
            .expect("take")
            .is_none(),
        "pending: no token"
    );
    store
        .decide(&"l1".into(), LoginState::Approved, NOW, 0, Some("j"), &[])
        .await
        .expect("decide");
    let racers: Vec<_> = (0..6u8)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mine = vec![i; 4];
                let got = store.take_token(&"l1".into(), &mine, NOW, 60).await;
                (mine, got)
            })
        })
        .collect();
    let mut kept = Vec::new();
    let mut own = 0;
    for r in racers {
        let (mine, got) = r.await.expect("joined");
        let got = got.expect("take").expect("redelivered within the window");
        own += usize::from(got == mine);
        kept.push(got);
    }
    assert_eq!(own, 1, "one caller's token is kept");
    kept.dedup();
    assert_eq!(kept.len(), 1, "every caller gets the same token");
    let l = store
        .login(&"l1".into())
        .await
        .expect("read")
        .expect("there");
    assert_eq!(l.state, LoginState::Consumed);
    assert!(
        store
            .take_token(&"l1".into(), b"late", NOW + 61, 60)
            .await
            .expect("take")
            .is_none(),
        "after the window, nothing"
    );
}

/// An approval's `jti` is spent once per device, until it expires.
async fn a_jti_is_spent_once_per_device(backend: Backend) {
    let (store, _keep) = open(backend).await;
    assert!(
        store
            .spend_jti(&"d1".into(), "j1", NOW + 60, NOW)
            .await
            .expect("spend")
    );
    assert!(
        !store
            .spend_jti(&"d1".into(), "j1", NOW + 60, NOW + 1)
            .await
            .expect("spend")
    );
    assert!(
        store
            .spend_jti(&"d2".into(), "j1", NOW + 60, NOW)
            .await
            .expect("spend"),
        "another device's jti is its own"
    );
    let racers: Vec<_> = (0..6)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.spend_jti(&"d1".into(), "j2", NOW + 60, NOW).await })
        })
        .collect();
    let mut spent = 0;
    for r in racers {
        spent += usize::from(r.await.expect("joined").expect("spend"));
    }
    assert_eq!(spent, 1, "of racing spends, one");
}

/// The push window admits `push_limit` logins, and `fatigue_limit`
/// unanswered outcomes in a row pause pushes.
async fn the_push_window_and_fatigue_are_enforced(backend: Backend) {
    let (store, _keep) = open(backend).await;
    let limits = Limits {
        push_limit: 2,
        push_window: 60,
        fatigue_limit: 2,
        fatigue_pause: 300,
    };
    let first = store
        .admit_login(&"u1".into(), &"l1".into(), NOW, &limits)
        .await
        .expect("admit");
    assert_eq!(first, Admission::Admitted { superseded: None });
    let second = store
        .admit_login(&"u1".into(), &"l2".into(), NOW, &limits)
        .await
        .expect("admit");
    assert_eq!(
        second,
        Admission::Admitted {
            superseded: Some("l1".into())
        },
        "a new login supersedes the active one"
    );
    let third = store
        .admit_login(&"u1".into(), &"l3".into(), NOW, &limits)
        .await
        .expect("admit");
    assert!(matches!(third, Admission::TooMany { .. }), "{third:?}");
    assert_eq!(
        store
            .admit_login(&"u1".into(), &"l4".into(), NOW + 61, &limits)
            .await
            .expect("admit"),
        Admission::Admitted {
            superseded: Some("l2".into())
        },
        "the window slides"
    );
    assert_eq!(
        store
            .record_outcome(&"u2".into(), false, NOW, &limits)
            .await
            .expect("outcome"),
        None
    );
    let paused = store
        .record_outcome(&"u2".into(), false, NOW, &limits)
        .await
        .expect("outcome");
    assert_eq!(paused, Some(NOW + 300));
    assert_eq!(
        store
            .admit_login(&"u2".into(), &"l5".into(), NOW + 1, &limits)
            .await
            .expect("admit"),
        Admission::Paused { until: NOW + 300 }
    );
}

/// Rate counters slide with their window and reset.
async fn rate_counters_slide_and_reset(backend: Backend) {
    let (store, _keep) = open(backend).await;
    let ip = "192.0.2.7".parse().expect("ip");
    let key = RateKey::LoginFrom(ip);
    let other = RateKey::FailedFrom(ip);
    assert_eq!(store.rate_hit(&key, NOW, 60).await.expect("hit"), (1, NOW));
    assert_eq!(store.rate_hit(&key, NOW + 10, 60).await.expect("hit").0, 2);
    assert_eq!(
        store.rate_count(&key, NOW + 10, 60).await.expect("count").0,
        2
    );
    assert_eq!(
        store.rate_count(&other, NOW, 60).await.expect("count").0,
        0,
        "keys apart"
    );
    assert_eq!(
        store.rate_count(&key, NOW + 65, 60).await.expect("count"),
        (1, NOW + 10),
        "the first hit left the window"
    );
    store.rate_reset(&key).await.expect("reset");
    assert_eq!(
        store.rate_count(&key, NOW + 10, 60).await.expect("count").0,
        0
    );
}

/// A key: the first candidate wins and every later caller gets it.
async fn the_first_key_wins(backend: Backend) {
    let (store, _keep) = open(backend).await;
    let a = store
        .get_or_insert_key("signing", b"first")
        .await
        .expect("key");
    let b = store
        .get_or_insert_key("signing", b"second")
        .await
        .expect("key");
    assert_eq!((a.as_slice(), b.as_slice()), (&b"first"[..], &b"first"[..]));
}

fn event(kind: AuditKind, at: i64, user: &str, actor: Option<&str>) -> AuditEvent {
    AuditEvent {
        id: String::new(),
        at,
        kind,
        severity: Severity::Info,
        user_id: Some(user.into()),
        actor_id: actor.map(str::to_owned),
        municipality: None,
        ip: None,
        user_agent: None,
        detail: Default::default(),
        chain: None,
    }
}

/// The audit trail keeps order, filters by citizen, actor and time, and
/// pages without losing or repeating an event.
async fn the_audit_trail_filters_and_pages(backend: Backend) {
    let (store, _keep) = open(backend).await;
    for i in 0..5 {
        let actor = (i % 2 == 0).then_some("staff-1");
        store
            .append_audit(&event(AuditKind::LoginApproved, NOW + i, "u1", actor), 0)
            .await
            .expect("append");
    }
    store
        .append_audit(&event(AuditKind::LoginDenied, NOW + 9, "u2", None), 0)
        .await
        .expect("append");
    let filter = |user: Option<&str>, actor: Option<&str>| AuditFilter {
        user_id: user.map(str::to_owned),
        actor_id: actor.map(str::to_owned),
        limit: 100,
        ..AuditFilter::default()
    };
    let all = store.audit_events(&filter(None, None)).await.expect("read");
    assert_eq!(all.events.len(), 6);
    let u1 = store
        .audit_events(&filter(Some("u1"), None))
        .await
        .expect("read");
    assert_eq!(u1.events.len(), 5);
    let by_staff = store
        .audit_events(&filter(None, Some("staff-1")))
        .await
        .expect("read");
    assert_eq!(by_staff.events.len(), 3);
    let window = AuditFilter {
        since: Some(NOW + 1),
        until: Some(NOW + 3),
        ..filter(None, None)
    };
    assert_eq!(
        store
            .audit_events(&window)
            .await
            .expect("read")
            .events
            .len(),
        3
    );
    // Pages of two, following `next_after`, see every event once.
    let mut seen = Vec::new();
    let mut page = AuditFilter {
        limit: 2,
        ..filter(None, None)
    };
    loop {
        let got = store.audit_events(&page).await.expect("page");
        seen.extend(got.events.iter().map(|e| (e.at, e.user_id.clone())));
        let Some(next) = got.next_after else { break };
        let (ms, seq) = next.split_once('-').expect("a stream id");
        page.after = Some((ms.parse().expect("ms"), seq.parse().expect("seq")));
        assert!(seen.len() <= 6, "paging does not loop");
    }
    let mut distinct = seen.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(seen.len(), 6, "{seen:?}");
    assert_eq!(distinct.len(), 6, "no event is seen twice: {seen:?}");
}

/// An event stamped before the last one (the clock stepped back) is kept,
/// after it: the citizen's trail and the national chain hold all three in
/// the order they were appended, and the chain verifies.
async fn a_clock_stepping_back_keeps_the_trail_in_order(backend: Backend) {
    let (store, _keep) = open(backend).await;
    for at in [NOW + 10, NOW, NOW + 5] {
        store
            .append_audit(&event(AuditKind::LoginApproved, at, "u1", None), 0)
            .await
            .expect("appended although earlier");
    }
    let filter = |user: Option<&str>| AuditFilter {
        user_id: user.map(str::to_owned),
        limit: 100,
        ..AuditFilter::default()
    };
    for user in [None, Some("u1")] {
        let page = store.audit_events(&filter(user)).await.expect("read");
        let mut at: Vec<i64> = page.events.iter().map(|e| e.at).collect();
        if at.first() == Some(&(NOW + 5)) {
            at.reverse();
        }
        assert_eq!(at, [NOW + 10, NOW, NOW + 5], "{user:?}");
    }
    let page = store.audit_events(&filter(None)).await.expect("read");
    let mut verifier = Verifier::new(Scope::National, &Jwks::default());
    assert!(page.events.iter().all(|e| verifier.push(e)));
    assert_eq!(verifier.finish().broken, None);
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Note {
    text: String,
}

impl JsonRecord for Note {
    const KIND: Kind = Kind::DeviceAddition;
    type Id = str;
}

fn note(text: &str) -> Note {
    Note { text: text.into() }
}

/// Records: expiry on the caller's clock, put-if-absent, take once under
/// a race, compare-and-swap, delete.
async fn records_expire_swap_and_are_taken_once(backend: Backend) {
    let (store, _keep) = open(backend).await;
    let notes = Records::<Note>::new(store.as_ref());
    notes.put("a", &note("one"), NOW + 60).await.expect("put");
    assert_eq!(
        notes.get("a", NOW + 59).await.expect("get"),
        Some(note("one"))
    );
    assert_eq!(
        notes.get("a", NOW + 60).await.expect("get"),
        None,
        "expired"
    );
    assert!(
        notes
            .put_new("b", &note("first"), 0, NOW)
            .await
            .expect("new")
    );
    assert!(
        !notes
            .put_new("b", &note("second"), 0, NOW)
            .await
            .expect("new")
    );
    notes.put("c", &note("short"), NOW + 5).await.expect("put");
    assert!(
        notes
            .put_new("c", &note("after"), 0, NOW + 10)
            .await
            .expect("new"),
        "an expired record does not block a new one"
    );
    let old = notes.read("b", NOW).await.expect("read").expect("there");
    assert!(
        notes
            .swap("b", &old, &note("swapped"), 0, NOW)
            .await
            .expect("swap")
    );
    assert!(
        !notes
            .swap("b", &old, &note("stale"), 0, NOW)
            .await
            .expect("swap"),
        "a swap from a stale read fails"
    );
    assert_eq!(
        notes.get("b", NOW).await.expect("get"),
        Some(note("swapped"))
    );
    let racers: Vec<_> = (0..6)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { Records::<Note>::new(store.as_ref()).take("b", NOW).await })
        })
        .collect();
    let mut taken = 0;
    for r in racers {
        taken += usize::from(r.await.expect("joined").expect("take").is_some());
    }
    assert_eq!(taken, 1, "one caller takes it");
    notes.delete("c").await.expect("delete");
    assert_eq!(notes.get("c", NOW).await.expect("get"), None);
}

/// An announcement wakes every subscriber of its topic.
async fn an_announcement_wakes_subscribers(backend: Backend) {
    let (store, _keep) = open(backend).await;
    let topic = Records::<Note>::topic();
    let mut sub = store.subscribe(&topic);
    Records::<Note>::new(store.as_ref())
        .announce()
        .await
        .expect("announce");
    tokio::time::timeout(Duration::from_secs(10), sub.changed())
        .await
        .expect("woken");
    store.ping().await.expect("the store answers");
}

/// Appends racing from many tasks are linked in one order: the heads count
/// every event, each municipality's too, and the chain read back verifies.
async fn concurrent_appends_form_one_audit_chain(backend: Backend) {
    let (store, _keep) = open(backend).await;
    let appends = (0..48).map(|i| {
        let store = Arc::clone(&store);
        async move {
            let mut e = event(
                AuditKind::CitizenCreated,
                NOW + i / 8,
                &format!("u{i}"),
                None,
            );
            e.municipality = match i % 3 {
                0 => Some("bg".into()),
                1 => Some("ns".into()),
                _ => None,
            };
            store.append_audit(&e, 0).await.expect("appended")
        }
    });
    let ids = futures_util::future::join_all(appends).await;
    assert_eq!(
        ids.iter().collect::<std::collections::BTreeSet<_>>().len(),
        48
    );
    let heads = store.audit_heads().await.expect("heads");
    assert_eq!(
        (
            heads.national.n,
            heads.municipal["bg"].n,
            heads.municipal["ns"].n
        ),
        (48, 16, 16)
    );
    let page = store
        .audit_events(&AuditFilter {
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .expect("read");
    let mut verifier = Verifier::new(Scope::National, &Jwks::default());
    assert!(page.events.iter().all(|e| verifier.push(e)));
    let report = verifier.finish();
    assert_eq!(report.broken, None);
    assert_eq!(
        report.heads, heads,
        "what was read ends at the stored heads"
    );
}

/// A login hash written by a release before the expiry had a field of its
/// own (`expires_at` only inside `data`) is still decided by its expiry:
/// logins pending across an upgrade are neither lost nor decided late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_of_the_earlier_redis_layout_is_decided_by_its_expiry() {
    let prefix = format!("contract-{}", uuid::Uuid::new_v4().simple());
    let url = potvrda_e2e::redis_url();
    let store: Arc<dyn Store> = Arc::new(
        RedisStore::connect(&SecretString::from(url.clone()), false, &prefix)
            .await
            .expect("redis"),
    );
    let target = match url.strip_prefix("redis+unix://") {
        Some(socket) => ["-s", socket].map(str::to_owned),
        None => ["-u".to_owned(), url.clone()],
    };
    for id in ["old-a", "old-b"] {
        store
            .create_login(&login(id, "u1", NOW + 60))
            .await
            .expect("created");
        let out = std::process::Command::new("redis-cli")
            .args(&target)
            .args(["HDEL", &format!("{prefix}:login:{{{id}}}"), "expires_at"])
            .output()
            .expect("redis-cli runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1", "{id}");
    }
    let decide = |id: &'static str, at: i64| {
        let store = Arc::clone(&store);
        async move {
            store
                .decide(&id.into(), LoginState::Approved, at, 0, None, &[])
                .await
                .expect("decide")
        }
    };
    assert_eq!(decide("old-a", NOW + 60).await, DecideOutcome::Expired);
    assert_eq!(decide("old-b", NOW + 59).await, DecideOutcome::Decided);
    let l = store
        .login(&"old-b".into())
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(l.state, LoginState::Approved);
}

crate::on_both_stores!(
    accounts_are_unique_by_username_and_found_by_prefix,
    an_activation_code_enrolls_one_device_once,
    an_expired_activation_code_enrolls_nothing,
    of_racing_decisions_exactly_one_wins,
    an_expired_login_cannot_be_decided,
    the_token_is_handed_out_once,
    a_jti_is_spent_once_per_device,
    the_push_window_and_fatigue_are_enforced,
    rate_counters_slide_and_reset,
    the_first_key_wins,
    the_audit_trail_filters_and_pages,
    a_clock_stepping_back_keeps_the_trail_in_order,
    concurrent_appends_form_one_audit_chain,
    records_expire_swap_and_are_taken_once,
    an_announcement_wakes_subscribers,
);
