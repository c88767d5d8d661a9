//! `potvrda-bench`: drives virtual citizens (mobile-core phones with a real
//! local push endpoint) through the complete login against `auth-server`
//! processes it starts, and reports latencies, throughput, the server's CPU
//! time per login (read from `/proc/<pid>/stat`) and, in the same run, the
//! Argon2id bound of this machine.
//!
//! ```text
//! cargo build --release -p potvrda-server -p potvrda-bench
//! target/release/potvrda-bench --citizens 40 --rounds 5 --concurrency 8
//! ```
#![allow(clippy::expect_used)] // a benchmark: failing loudly is its job

mod national;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _, SaltString};
use clap::{Parser, ValueEnum};
use potvrda_mobile_core::phone::{PushEndpoint, VirtualPhone};
use potvrda_proto::api::{CreateCitizenResponse, LoginResponse, LoginStatus, LoginStatusResponse};
use potvrda_proto::jose::Decision;
use tokio::sync::{Mutex, mpsc};

/// The portal client the benchmarked servers register (protocol 3: the
/// portal API authenticates its caller).
const PORTAL_CLIENT: &str = "bench-portal";
const PORTAL_SECRET: &str = "bench-portal-secret-0123456789";
const PORTAL_CLIENTS: &str = r#"[{"client_id":"bench-portal","client_secret":"bench-portal-secret-0123456789","name":"eUprava","grant_types":[],"portal_api":true}]"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Store {
    Embedded,
    Redis,
    /// Two instances on one Redis: login and long-poll on A, approval on B.
    RedisTwo,
    /// PostgreSQL (durable, a cluster of the benchmark's own) + Redis.
    Postgres,
}

impl Store {
    /// The Redis URL (and key prefix) the server uses, if any, and the
    /// PostgreSQL database (name, URL) made for it.
    fn backing(self) -> (Option<String>, Option<(String, String)>) {
        let redis = (self != Store::Embedded).then(potvrda_e2e::redis_url);
        let postgres = (self == Store::Postgres).then(national::database);
        (redis, postgres)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Hash {
    /// OWASP Argon2id parameters (m=19 MiB, t=2, p=1), as in production.
    Owasp,
    /// m=8 KiB, t=1: the hash costs microseconds, so the server's CPU per
    /// login is everything but the hash.
    Minimal,
}

/// Drive the complete Potvrda login and measure it.
#[derive(Debug, Parser)]
struct Cli {
    /// The auth-server binary.
    #[arg(long, default_value = "target/release/auth-server")]
    server_bin: PathBuf,
    /// Stores to run, in order.
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["embedded", "redis", "redis-two"])]
    store: Vec<Store>,
    /// Password hash parameters.
    #[arg(long, value_enum, default_value = "owasp")]
    hash: Hash,
    /// Virtual citizens (each with an enrolled push phone).
    #[arg(long, default_value_t = 40)]
    citizens: usize,
    /// Logins per citizen.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Concurrent logins.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// HTTP workers per server (0: one per core).
    #[arg(long, default_value_t = 0)]
    workers: usize,
    /// Instead of cycles: hold this many pending logins, each with a parked
    /// long-poll, on one instance, and report its resident memory.
    #[arg(long)]
    hold: Option<usize>,
    /// `postgres` store: before the logins, load this many more citizens
    /// (each with a device) by `COPY`; one run per number given, in order
    /// (`--preload 1000,1000000`: the ratios of one run).
    #[arg(long, value_delimiter = ',')]
    preload: Vec<usize>,
    /// Counter searches measured after the logins (`postgres` store).
    #[arg(long, default_value_t = 200)]
    searches: usize,
}

struct Server {
    url: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn start(
        cli: &Cli,
        redis: Option<(&str, &str)>,
        token: &str,
        extra: &[(&str, &str)],
    ) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let (m, t) = match cli.hash {
            Hash::Owasp => ("19456", "2"),
            Hash::Minimal => ("8", "1"),
        };
        let mut cmd = Command::new(&cli.server_bin);
        cmd.env_clear()
            .env("POTVRDA_LISTEN", format!("127.0.0.1:{port}"))
            .env("POTVRDA_DATA_DIR", dir.path())
            .env("POTVRDA_BOOTSTRAP_TOKEN", token)
            .env("POTVRDA_PUSH_ALLOWED_HOSTS", "127.0.0.1")
            .env("POTVRDA_PUSH_ALLOW_HTTP", "true")
            .env("POTVRDA_ARGON2_MEMORY_KIB", m)
            .env("POTVRDA_ARGON2_ITERATIONS", t)
            .env("POTVRDA_WORKERS", cli.workers.to_string())
            // The benchmark is one client address driving many logins per
            // citizen: per-address and per-user limits would stop it. They
            // stay enforced (and cost their store round trips); only the
            // thresholds are out of reach.
            .env("POTVRDA_IP_LOGIN_LIMIT", "100000000")
            .env("POTVRDA_IP_DEVICE_LIMIT", "0")
            .env("POTVRDA_IP_FAILED_LIMIT", "100000000")
            .env("POTVRDA_IP_ENROLL_LIMIT", "100000000")
            .env("POTVRDA_PUSH_LIMIT", "100000000")
            .env("POTVRDA_LOG", "warn")
            .env("POTVRDA_OIDC_CLIENTS", PORTAL_CLIENTS)
            .stdout(Stdio::null());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        // Pass allocator tuning through (e.g. MALLOC_ARENA_MAX), as an operator would set it.
        for (k, v) in std::env::vars().filter(|(k, _)| k.starts_with("MALLOC_")) {
            cmd.env(k, v);
        }
        if let Some((url, prefix)) = redis {
            cmd.env("POTVRDA_REDIS_URL", url)
                .env("POTVRDA_REDIS_KEY_PREFIX", prefix);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", cli.server_bin.display()));
        // Owned by `Server` at once, so a failed start is still killed.
        let server = Server {
            url: format!("http://127.0.0.1:{port}"),
            child,
            _dir: dir,
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(format!("{}/healthz", server.url)).send().await
                && r.status().is_success()
            {
                return server;
            }
            assert!(Instant::now() < deadline, "server did not become healthy");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Resident memory of the server process, in bytes.
    fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmRSS")
            * 1024
    }

    /// One sample of a gauge from `/metrics`.
    async fn gauge(&self, http: &reqwest::Client, name: &str) -> f64 {
        let text = http
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("text");
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// User + system CPU seconds the server process has used.
    fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).expect("proc stat");
        // Fields after the parenthesised command name; utime and stime are 14 and 15.
        let rest = &stat[stat.rfind(')').expect("comm") + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 =
            f[11].parse::<f64>().expect("utime") + f[12].parse::<f64>().expect("stime");
        ticks / clock_ticks()
    }
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

#[derive(Default)]
struct Samples {
    login: Vec<Duration>,
    push: Vec<Duration>,
    approve_to_token: Vec<Duration>,
    cycle: Vec<Duration>,
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    if v.is_empty() {
        return Duration::ZERO;
    }
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn row(name: &str, v: &mut [Duration]) {
    println!(
        "  {name:<18} p50 {:>8.2} ms   p95 {:>8.2} ms   p99 {:>8.2} ms",
        pct(v, 0.50).as_secs_f64() * 1e3,
        pct(v, 0.95).as_secs_f64() * 1e3,
        pct(v, 0.99).as_secs_f64() * 1e3
    );
}

struct Citizen {
    account: CreateCitizenResponse,
    phone: VirtualPhone,
    pushes: Mutex<mpsc::UnboundedReceiver<Vec<u8>>>,
}

async fn run(cli: &Cli, store: Store, preload: usize) -> (f64, f64) {
    let token = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let prefix = format!("bench{}", uuid::Uuid::new_v4().simple());
    let (redis_url, postgres) = store.backing();
    let redis = redis_url.as_deref().map(|u| (u, prefix.as_str()));
    let pg_env: Vec<(&str, &str)> = postgres
        .iter()
        .map(|(_, url)| ("POTVRDA_POSTGRES_URL", url.as_str()))
        .collect();
    let a = Server::start(cli, redis, &token, &pg_env).await;
    let b = match store {
        Store::RedisTwo => Some(Server::start(cli, redis, &token, &[]).await),
        _ => None,
    };
    let approver = b.as_ref().map_or(a.url.clone(), |b| b.url.clone());
    let http = reqwest::Client::new();

    // Citizens with push phones; one local push service routes by path.
    let mut endpoint = PushEndpoint::start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("push endpoint");
    let mut routes = HashMap::new();
    let mut citizens = Vec::new();
    for i in 0..cli.citizens {
        let account: CreateCitizenResponse = http
            .post(format!("{}/v1/admin/citizens", a.url))
            .bearer_auth(&token)
            .json(&serde_json::json!({"username": format!("citizen{i}"), "display_name": "Bench"}))
            .send()
            .await
            .expect("create")
            .json()
            .await
            .expect("json");
        let url = endpoint.new_endpoint();
        let mut phone = VirtualPhone::enroll(
            &a.url,
            account.activation_code.expose(),
            "bench",
            Some(&url),
        )
        .await
        .expect("enroll");
        phone.state.device.server = approver.clone();
        let phone = VirtualPhone::from_state(phone.state.clone()).expect("state");
        endpoint.expect_vapid_key(&phone.state.device.vapid_public_key);
        let (tx, rx) = mpsc::unbounded_channel();
        routes.insert(
            url.rsplit_once('/')
                .map(|(_, t)| format!("/push/{t}"))
                .expect("path"),
            tx,
        );
        citizens.push(Arc::new(Citizen {
            account,
            phone,
            pushes: Mutex::new(rx),
        }));
    }
    tokio::spawn(async move {
        while let Some(msg) = endpoint.recv().await {
            if let Some(tx) = routes.get(&msg.path) {
                let _ = tx.send(msg.body);
            }
        }
    });
    if let (Some((db, _)), 1..) = (&postgres, preload) {
        let took = national::preload(db, preload);
        println!(
            "\nloaded {preload} citizens with a device each by COPY in {:.1} s ({:.0} citizens/s)",
            took.as_secs_f64(),
            preload as f64 / took.as_secs_f64()
        );
    }

    let events_before = postgres
        .as_ref()
        .map_or(0, |(db, _)| national::audit_events(db));
    let samples = Arc::new(Mutex::new(Samples::default()));
    let cpu_before = a.cpu_seconds() + b.as_ref().map_or(0.0, Server::cpu_seconds);
    let commands_before = redis_url.as_deref().map(redis_commands);
    let started = Instant::now();
    let workers = (0..cli.concurrency).map(|w| {
        let mine: Vec<_> = citizens.iter().skip(w).step_by(cli.concurrency).cloned().collect();
        let (samples, http, url, rounds) = (samples.clone(), http.clone(), a.url.clone(), cli.rounds);
        tokio::spawn(async move {
            for _ in 0..rounds {
                for c in &mine {
                    let t0 = Instant::now();
                    let login: LoginResponse = http
                        .post(format!("{url}/v1/logins"))
                        .basic_auth(PORTAL_CLIENT, Some(PORTAL_SECRET))
                        .json(&serde_json::json!({"username": c.account.username, "password": c.account.initial_password}))
                        .send()
                        .await
                        .expect("login")
                        .json()
                        .await
                        .expect("json");
                    let t1 = Instant::now();
                    let poll = {
                        let (http, url) = (http.clone(), url.clone());
                        let (id, secret) = (login.login_id.clone(), login.login_secret.clone());
                        tokio::spawn(async move {
                            let r: LoginStatusResponse = http
                                .get(format!("{url}/v1/logins/{id}?wait=30"))
                                .basic_auth(PORTAL_CLIENT, Some(PORTAL_SECRET))
                                .header("Login-Secret", secret.expose())
                                .send()
                                .await
                                .expect("poll")
                                .json()
                                .await
                                .expect("json");
                            (Instant::now(), r)
                        })
                    };
                    let body = c.pushes.lock().await.recv().await.expect("push");
                    let t2 = Instant::now();
                    let challenge = c.phone.open_push(&body).expect("verifies");
                    let approval = c
                        .phone
                        .approval(&challenge, Decision::Approve, Some(login.number))
                        .expect("signs");
                    // From the approval POST to the waiting long-poll's answer.
                    let t3 = Instant::now();
                    c.phone
                        .post_approval(&challenge.claims.cid, &approval)
                        .await
                        .expect("approve");
                    let (t4, status) = poll.await.expect("joined");
                    assert_eq!(status.status, LoginStatus::Approved);
                    assert!(status.access_token.is_some());
                    let mut s = samples.lock().await;
                    s.login.push(t1 - t0);
                    s.push.push(t2 - t1);
                    s.approve_to_token.push(t4 - t3);
                    s.cycle.push(t4 - t0);
                }
            }
        })
    });
    for w in futures_util::future::join_all(workers).await {
        w.expect("worker");
    }
    let elapsed = started.elapsed();
    let cpu = a.cpu_seconds() + b.as_ref().map_or(0.0, Server::cpu_seconds) - cpu_before;
    // Minus the INFO call that reads it.
    let commands = redis_url
        .as_deref()
        .zip(commands_before)
        .map(|(url, before)| redis_commands(url).saturating_sub(before + 1));
    let n = cli.citizens * cli.rounds;
    let rate = n as f64 / elapsed.as_secs_f64();
    let mut s = samples.lock().await;
    println!(
        "\n{store:?} store, {n} logins, {} concurrent, hash {:?}",
        cli.concurrency, cli.hash
    );
    println!("  throughput         {rate:.1} complete logins/s");
    println!(
        "  server CPU         {:.3} ms per login",
        cpu * 1e3 / n as f64
    );
    if let Some(commands) = commands {
        println!(
            "  Redis commands     {:.1} per login",
            commands as f64 / n as f64
        );
    }
    row("login request", &mut s.login);
    row("push delivery", &mut s.push);
    row("approve -> token", &mut s.approve_to_token);
    row("whole cycle", &mut s.cycle);
    if let Some((db, _)) = &postgres {
        let [(citizens, per), (devices, per_device), (events, per_event)] = national::sizes(db);
        println!(
            "  PostgreSQL         {citizens} accounts, {per:.0} bytes each; {devices} devices, \
             {per_device:.0} bytes each; {events} audit events ({:.1} per login), {per_event:.0} \
             bytes each (all with indexes)",
            events.saturating_sub(events_before) as f64 / n as f64
        );
        let official =
            national::official_token(&http, &a.url, &token, (PORTAL_CLIENT, PORTAL_SECRET)).await;
        let mut took = national::searches(&http, &a.url, &official, preload, cli.searches).await;
        row("counter search", &mut took);
    }
    (rate, cpu * 1e3 / n as f64)
}

/// A field of `redis-cli INFO <section>` of the benchmark's Redis.
fn redis_info(url: &str, section: &str, field: &str) -> u64 {
    let mut cli = Command::new("redis-cli");
    match url.strip_prefix("redis+unix://") {
        Some(socket) => cli.args(["-s", socket]),
        None => cli.args(["-u", url]),
    };
    let out = cli.args(["INFO", section]).output().expect("redis-cli");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("INFO {section}: no {field}"))
}

/// Redis's `used_memory`.
fn redis_used_memory(url: &str) -> u64 {
    redis_info(url, "memory", "used_memory")
}

/// Commands Redis has processed (the benchmark's Redis is its own: only
/// the servers under test use it while a run is measured).
fn redis_commands(url: &str) -> u64 {
    redis_info(url, "stats", "total_commands_processed")
}

/// The challenges' lifetime while holding (the configuration's maximum).
const HOLD_CHALLENGE_TTL: u64 = 600;
/// Seconds after the ramp for the gauges to reach `n`; the ramp must end
/// this long before the first challenges expire.
const HOLD_MARGIN_SECS: u64 = 60;

/// Hold `n` pending logins with parked long-polls on one instance.
async fn hold(cli: &Cli, store: Store, n: usize) {
    let token = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let prefix = format!("bench{}", uuid::Uuid::new_v4().simple());
    let (redis_url, postgres) = store.backing();
    // The challenges must outlive the ramp: with the default 60 s, the
    // first logins expired before the last were parked on a slow day, and
    // the figures described fewer logins than they said.
    let ttl = HOLD_CHALLENGE_TTL.to_string();
    let mut env = vec![("POTVRDA_CHALLENGE_TTL", ttl.as_str())];
    env.extend(
        postgres
            .iter()
            .map(|(_, url)| ("POTVRDA_POSTGRES_URL", url.as_str())),
    );
    let server = Server::start(
        cli,
        redis_url.as_deref().map(|u| (u, prefix.as_str())),
        &token,
        &env,
    )
    .await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");
    let rss_idle = server.rss_bytes();
    // One citizen per login (a citizen has at most one pending challenge once
    // push-bombing limits apply), each with a pull-only phone.
    let limit = Arc::new(tokio::sync::Semaphore::new(64));
    let setup = (0..n).map(|i| {
        let (http, url, token, limit) = (
            http.clone(),
            server.url.clone(),
            token.clone(),
            limit.clone(),
        );
        tokio::spawn(async move {
            let _permit = limit.acquire().await.expect("semaphore");
            let account: CreateCitizenResponse = http
                .post(format!("{url}/v1/admin/citizens"))
                .bearer_auth(&token)
                .json(&serde_json::json!({"username": format!("held{i}"), "display_name": "Held"}))
                .send()
                .await
                .expect("create")
                .json()
                .await
                .expect("json");
            VirtualPhone::enroll(&url, account.activation_code.expose(), "held", None)
                .await
                .expect("enroll");
            account
        })
    });
    let accounts: Vec<CreateCitizenResponse> = futures_util::future::join_all(setup)
        .await
        .into_iter()
        .map(|r| r.expect("setup"))
        .collect();
    let rss_accounts = server.rss_bytes();
    let redis_accounts = redis_url.as_deref().map(redis_used_memory);
    let started = Instant::now();
    let mut polls = Vec::with_capacity(n);
    for chunk in accounts.chunks(64) {
        let logins = futures_util::future::join_all(chunk.iter().map(|a| {
            let (http, url) = (http.clone(), server.url.clone());
            async move {
                http.post(format!("{url}/v1/logins"))
                        .basic_auth(PORTAL_CLIENT, Some(PORTAL_SECRET))
                    .json(&serde_json::json!({"username": a.username, "password": a.initial_password}))
                    .send()
                    .await
                    .expect("login")
                    .json::<LoginResponse>()
                    .await
                    .expect("json")
            }
        }))
        .await;
        for login in logins {
            // A client of its own per long-poll: one connection each, as
            // browsers have; polled again while pending, as a portal does,
            // so each login keeps a parked request however long the ramp.
            let (url, client) = (server.url.clone(), reqwest::Client::new());
            polls.push(tokio::spawn(async move {
                loop {
                    let status: LoginStatusResponse = client
                        .get(format!("{url}/v1/logins/{}?wait=30", login.login_id))
                        .basic_auth(PORTAL_CLIENT, Some(PORTAL_SECRET))
                        .header("Login-Secret", login.login_secret.expose())
                        .send()
                        .await
                        .ok()?
                        .json()
                        .await
                        .ok()?;
                    if status.status != LoginStatus::Pending {
                        return Some(status.status);
                    }
                }
            }));
        }
    }
    let ramp = started.elapsed();
    if ramp.as_secs() + HOLD_MARGIN_SECS >= HOLD_CHALLENGE_TTL {
        fail(&format!(
            "the ramp took {:.1} s, too close to the challenges' {HOLD_CHALLENGE_TTL} s lifetime: \
             the first logins would expire before the last are measured; hold fewer",
            ramp.as_secs_f64()
        ));
    }
    // Measure only once the server's own gauges say all n are held.
    let deadline = Instant::now() + Duration::from_secs(HOLD_MARGIN_SECS);
    let (mut parked, mut pending) = (0.0, 0.0);
    while Instant::now() < deadline {
        parked = server.gauge(&http, "potvrda_long_polls_waiting").await;
        pending = server.gauge(&http, "potvrda_challenges_pending").await;
        if parked >= n as f64 && pending >= n as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if parked < n as f64 || pending < n as f64 {
        fail(&format!(
            "{store:?}: the server holds {parked:.0} parked long-polls and {pending:.0} pending \
             challenges, not {n}, {HOLD_MARGIN_SECS} s after the ramp: nothing measured"
        ));
    }
    let rss_held = server.rss_bytes();
    let redis_grew = redis_url
        .as_deref()
        .zip(redis_accounts)
        .map(|(url, before)| redis_used_memory(url).saturating_sub(before));
    println!("\n{store:?} store, holding {n} pending logins");
    println!(
        "  held (server gauges) {parked:.0} parked long-polls, {pending:.0} pending challenges; \
         ramp {:.1} s, reached in {:.1} s, challenge lifetime {HOLD_CHALLENGE_TTL} s",
        ramp.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "  server RSS         {:.1} MB idle, {:.1} MB with {n} accounts, {:.1} MB holding them",
        rss_idle as f64 / 1e6,
        rss_accounts as f64 / 1e6,
        rss_held as f64 / 1e6
    );
    println!(
        "  per held login     {:.1} KB",
        (rss_held.saturating_sub(rss_accounts)) as f64 / n as f64 / 1e3
    );
    if let Some(grew) = redis_grew {
        println!(
            "  Redis              +{:.1} MB holding them: {:.0} bytes per live login",
            grew as f64 / 1e6,
            grew as f64 / n as f64
        );
    }
    for p in polls {
        p.abort();
    }
}

/// Stop with `message`: a benchmark that cannot hold what it would report
/// reports nothing.
fn fail(message: &str) -> ! {
    eprintln!("potvrda-bench: {message}");
    std::process::exit(1)
}

/// How long each measurement of the Argon2id bound runs.
const BOUND_SECS: f64 = 3.0;

/// The Argon2id bound before and after a run, with their spread.
#[derive(Debug, Clone, Copy)]
struct Bound {
    before: f64,
    after: f64,
}

impl Bound {
    fn mean(self) -> f64 {
        (self.before + self.after) / 2.0
    }

    /// The difference as a share of the mean.
    fn spread(self) -> f64 {
        (self.before - self.after).abs() / self.mean()
    }

    fn report(self, rate: f64) {
        let (low, high) = (self.before.min(self.after), self.before.max(self.after));
        println!(
            "  Argon2id bound     {:.1} before, {:.1} after ({:.0} % apart) verifications/s",
            self.before,
            self.after,
            self.spread() * 100.0
        );
        println!(
            "  ratio to bound     {:.0} % of the mean ({:.0}–{:.0} % of the two)",
            rate / self.mean() * 100.0,
            rate / high * 100.0,
            rate / low * 100.0
        );
    }
}

async fn bound() -> f64 {
    tokio::task::spawn_blocking(argon2_bound)
        .await
        .expect("bound")
}

/// Argon2id verifications per second on all cores with the server's
/// defaults, counted for [`BOUND_SECS`] (one short sample at the start of
/// a run was once 10 % off on a machine whose speed drifts).
fn argon2_bound() -> f64 {
    let params = argon2::Params::new(19_456, 2, 1, None).expect("params");
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let phc = argon
        .hash_password(b"bench password", &salt)
        .expect("hash")
        .to_string();
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let started = Instant::now();
    let done = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..cores {
            s.spawn(|| {
                let parsed = argon2::PasswordHash::new(&phc).expect("phc");
                while started.elapsed().as_secs_f64() < BOUND_SECS {
                    argon
                        .verify_password(b"bench password", &parsed)
                        .expect("verifies");
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    done.into_inner() as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Some(n) = cli.hold {
        for store in cli.store.iter().copied().filter(|s| *s != Store::RedisTwo) {
            hold(&cli, store, n).await;
        }
        return;
    }
    let owasp = cli.hash == Hash::Owasp;
    if owasp {
        println!(
            "Argon2id bound: m=19456 KiB, t=2, p=1, {} cores, {BOUND_SECS} s before and after each store's run",
            std::thread::available_parallelism().map_or(2, usize::from)
        );
    }
    for store in cli.store.clone() {
        let preloads = match (store, cli.preload.as_slice()) {
            (Store::Postgres, [_, ..]) => cli.preload.clone(),
            _ => vec![0],
        };
        for preload in preloads {
            let before = if owasp { bound().await } else { 0.0 };
            let (rate, _) = run(&cli, store, preload).await;
            if owasp {
                let after = bound().await;
                Bound { before, after }.report(rate);
            }
        }
    }
}
