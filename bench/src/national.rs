//! The national-size data set (issue 19): the PostgreSQL the `postgres`
//! store runs on (a durable cluster of the benchmark's own, `fsync` and
//! `synchronous_commit` on), citizens bulk-loaded into it with `COPY`
//! beside the benchmark's own, what they cost on disk, and how the
//! counter's search answers among them.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use potvrda_e2e::postgres::PostgresCluster;

static CLUSTER: OnceLock<PostgresCluster> = OnceLock::new();

fn cluster() -> &'static PostgresCluster {
    CLUSTER.get_or_init(|| PostgresCluster::start(true).expect("PostgreSQL for the benchmark"))
}

/// A new database; its name and URL.
pub(crate) fn database() -> (String, String) {
    let name = format!("bench_{}", uuid::Uuid::new_v4().simple());
    cluster()
        .psql("postgres", &format!("CREATE DATABASE {name}"))
        .expect("CREATE DATABASE");
    let url = cluster().url(&name);
    (name, url)
}

/// `COPY`'s text format: backslashes doubled (JSON holds no tabs or newlines).
fn copy_text(json: &serde_json::Value) -> String {
    json.to_string().replace('\\', "\\\\")
}

/// Load `n` citizens, each with one device, modelled on an account and a
/// device the benchmark made through the API (the same password hash and
/// public key; names `n0000000`, `n0000001`, …), then vacuumed, analysed
/// and checkpointed. Returns how long it all took.
pub(crate) fn preload(db: &str, n: usize) -> Duration {
    let c = cluster();
    let one = |sql: &str| -> serde_json::Value {
        serde_json::from_str(&c.psql(db, sql).expect("template")).expect("JSON")
    };
    let user = one("SELECT record FROM users ORDER BY username LIMIT 1");
    let device = one("SELECT record FROM devices LIMIT 1");
    let started = Instant::now();
    let ids = move |i: usize| (format!("{:032x}", 0x7000_0000_0000 + i), format!("n{i:07}"));
    c.copy_in(
        db,
        "COPY users (id, username, municipality, record) FROM STDIN",
        (0..n).map(|i| {
            let (id, name) = ids(i);
            let mut u = user.clone();
            u["id"] = id.clone().into();
            u["username"] = name.clone().into();
            format!("{id}\t{name}\t\\N\t{}", copy_text(&u))
        }),
    )
    .expect("COPY users");
    c.copy_in(
        db,
        "COPY devices (id, user_id, record) FROM STDIN",
        (0..n).map(|i| {
            let (user_id, _) = ids(i);
            let id = format!("d{user_id}");
            let mut d = device.clone();
            d["id"] = id.clone().into();
            d["user_id"] = user_id.clone().into();
            format!("{id}\t{user_id}\t{}", copy_text(&d))
        }),
    )
    .expect("COPY devices");
    // What follows a bulk load: hint bits and the visibility map set, the
    // statistics taken, the dirty pages written out, before serving.
    for step in [
        "VACUUM (FREEZE, ANALYZE) users",
        "VACUUM (FREEZE, ANALYZE) devices",
        "CHECKPOINT",
    ] {
        c.psql(db, step).expect(step);
    }
    started.elapsed()
}

/// Bytes on disk per citizen (accounts and activation codes, with their
/// indexes and TOAST), per device and per audit event, and how many of each.
pub(crate) fn sizes(db: &str) -> [(u64, f64); 3] {
    let row = cluster()
        .psql(
            db,
            "SELECT (SELECT count(*) FROM users), \
                    (pg_total_relation_size('users') + pg_total_relation_size('activations'))::float8 \
                      / greatest((SELECT count(*) FROM users), 1), \
                    (SELECT count(*) FROM devices), \
                    pg_total_relation_size('devices')::float8 / greatest((SELECT count(*) FROM devices), 1), \
                    (SELECT count(*) FROM audit), \
                    (SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits \
                     WHERE inhparent = 'audit'::regclass)::float8 / greatest((SELECT count(*) FROM audit), 1)",
        )
        .expect("sizes");
    let f: Vec<&str> = row.split('|').collect();
    let pair = |n: &str, b: &str| (n.parse().expect("count"), b.parse().expect("bytes"));
    [pair(f[0], f[1]), pair(f[2], f[3]), pair(f[4], f[5])]
}

/// How many audit events the database holds.
pub(crate) fn audit_events(db: &str) -> u64 {
    cluster()
        .psql(db, "SELECT count(*) FROM audit")
        .expect("count")
        .parse()
        .expect("a number")
}

/// The counter's search (`GET /v1/admin/citizens?query=`) `n` times, with
/// prefixes spread over the loaded names; its latencies.
pub(crate) async fn searches(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    loaded: usize,
    n: usize,
) -> Vec<Duration> {
    let mut took = Vec::with_capacity(n);
    for k in 0..n {
        // Six characters of a name: one in a hundred thousand… of the set.
        let i = (k * 7919) % loaded.max(1);
        let prefix = &format!("n{i:07}")[..6];
        let t0 = Instant::now();
        let r = http
            .get(format!("{url}/v1/admin/citizens?query={prefix}"))
            .bearer_auth(token)
            .send()
            .await
            .expect("search");
        assert!(r.status().is_success(), "search: {}", r.status());
        r.bytes().await.expect("body");
        took.push(t0.elapsed());
    }
    took
}

/// An official's token for the counter's search: a superadmin made with the
/// bootstrap token, its phone enrolled, logged in for the admin audience.
pub(crate) async fn official_token(
    http: &reqwest::Client,
    url: &str,
    bootstrap: &str,
    portal: (&str, &str),
) -> String {
    use potvrda_mobile_core::phone::VirtualPhone;
    use potvrda_proto::api::{CreateCitizenResponse, LoginResponse, LoginStatusResponse};
    let account: CreateCitizenResponse = http
        .post(format!("{url}/v1/admin/staff"))
        .bearer_auth(bootstrap)
        .json(&serde_json::json!({"username": "bench-official", "display_name": "Bench", "role": "superadmin"}))
        .send()
        .await
        .expect("staff")
        .json()
        .await
        .expect("json");
    let phone = VirtualPhone::enroll(url, account.activation_code.expose(), "official", None)
        .await
        .expect("enroll");
    let login: LoginResponse = http
        .post(format!("{url}/v1/logins"))
        .basic_auth(portal.0, Some(portal.1))
        .json(&serde_json::json!({"username": account.username, "password": account.initial_password, "audience": "admin"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let challenge = phone.pending().await.expect("pull").pop().expect("pending");
    phone
        .answer(
            &challenge,
            potvrda_proto::jose::Decision::Approve,
            Some(login.number),
        )
        .await
        .expect("approve");
    let status: LoginStatusResponse = http
        .get(format!("{url}/v1/logins/{}", login.login_id))
        .basic_auth(portal.0, Some(portal.1))
        .header("Login-Secret", login.login_secret.expose())
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("json");
    status.access_token.expect("an official's token")
}
