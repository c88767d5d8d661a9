//! Harness for the end-to-end tests: the real server on a free port (in
//! process, so a test can hold its clock), a real Redis, real HTTP.
//!
//! Redis: `POTVRDA_TEST_REDIS_URL` if set; otherwise the harness starts its
//! own `redis-server` on a private unix socket, which dies with the test
//! process. Without `redis-server` the Redis tests fail and say how to
//! install it: they are never skipped.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a test harness: failing loudly is its job

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use potvrda_proto::api::{
    AuditEvent, AuditResponse, CreateCitizenRequest, CreateCitizenResponse, LoginAudience,
    LoginRequest, LoginStatusResponse,
};
use potvrda_proto::jose::{LoginContext, PublicJwks};
use potvrda_server::clock::{Clock, ManualClock, SystemClock};
use potvrda_server::config::Config;
use secrecy::SecretString;

pub mod postgres;

/// Which store a server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// redb file + memory.
    Embedded,
    /// Redis.
    Redis,
    /// A local Redis Cluster of three masters.
    RedisCluster,
    /// PostgreSQL (a database of the test's own) + the shared Redis.
    Postgres,
}

struct OwnRedis {
    url: String,
    _child: Child,
    _dir: tempfile::TempDir,
}

static REDIS: OnceLock<Result<OwnRedis, String>> = OnceLock::new();

/// The Redis URL tests use.
pub fn redis_url() -> String {
    if let Ok(url) = std::env::var("POTVRDA_TEST_REDIS_URL") {
        return url;
    }
    match REDIS.get_or_init(start_redis) {
        Ok(r) => r.url.clone(),
        Err(e) => panic!("{e}"),
    }
}

fn start_redis() -> Result<OwnRedis, String> {
    let missing = "redis-server is not installed: install it (Debian: `apt-get install -y redis-server`) \
                   or point POTVRDA_TEST_REDIS_URL at a Redis; the Redis tests cannot run without one";
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let sock = dir.path().join("redis.sock");
    // The shell keeps redis-server only as long as our stdin pipe is open:
    // when the test process exits, `cat` returns and redis-server is killed.
    let script = format!(
        "redis-server --port 0 --unixsocket '{}' --unixsocketperm 700 --save '' --appendonly no \
         --dir '{}' >'{}/redis.log' 2>&1 & pid=$!; cat >/dev/null; kill $pid",
        sock.display(),
        dir.path().display(),
        dir.path().display()
    );
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        return Err(missing.into());
    }
    let child = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start redis-server: {e}"))?;
    wait_for_socket(&sock)?;
    Ok(OwnRedis {
        url: format!("redis+unix://{}", sock.display()),
        _child: child,
        _dir: dir,
    })
}

fn wait_for_socket(sock: &Path) -> Result<(), String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if std::os::unix::net::UnixStream::connect(sock).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!(
        "redis-server did not open {} within 10 s",
        sock.display()
    ))
}

/// A Redis of a test's own, with an append-only file synced on every write,
/// that the test can kill (SIGKILL) and start again on the same socket and data.
pub struct RedisProcess {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// `redis+unix://…`.
    pub url: String,
}

impl RedisProcess {
    /// Start it.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("redis+unix://{}", dir.path().join("redis.sock").display());
        let mut r = Self {
            dir,
            child: None,
            url,
        };
        r.restart();
        r
    }

    /// Start it again after [`RedisProcess::kill`].
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let sock = self.dir.path().join("redis.sock");
        let _ = std::fs::remove_file(&sock);
        let child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--unixsocket")
            .arg(&sock)
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}); Debian: apt-get install -y redis-server")
            });
        self.child = Some(child);
        wait_for_socket(&sock).expect("redis-server up");
    }

    /// Kill it without warning.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Redis Cluster started here.
pub struct OwnCluster {
    /// Seed node URLs, comma-separated.
    pub nodes: String,
    ports: Vec<u16>,
    _children: Vec<Child>,
    _dir: tempfile::TempDir,
}

impl OwnCluster {
    /// Three masters, each with one replica that takes over a second after
    /// its master is gone (`cluster-node-timeout 1000`): Redis Cluster's own
    /// failover, for a test of its own.
    pub fn start_replicated() -> Self {
        let cluster = start_cluster(6, 1, "--cluster-node-timeout 1000")
            .unwrap_or_else(|e| panic!("replicated cluster: {e}"));
        // A replica takes over only once it has its master's data.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !cluster.ports.iter().all(|p| {
            let info = redis_cli(*p, &["info", "replication"]);
            info.contains("role:master") || info.contains("master_link_status:up")
        }) {
            assert!(
                std::time::Instant::now() < deadline,
                "the replicas did not sync within 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        cluster
    }

    /// The ports of the nodes that are masters now, as the node on `asked` sees it.
    pub fn masters(&self, asked: u16) -> Vec<u16> {
        let out = redis_cli(asked, &["cluster", "nodes"]);
        out.lines()
            .filter(|l| l.contains("master") && !l.contains("fail"))
            .filter_map(|l| {
                l.split(' ')
                    .nth(1)?
                    .split('@')
                    .next()?
                    .rsplit(':')
                    .next()?
                    .parse()
                    .ok()
            })
            .collect()
    }

    /// Kill the node on `port` without warning (SIGKILL).
    pub fn kill(&self, port: u16) {
        let info = redis_cli(port, &["info", "server"]);
        let pid = info
            .lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .expect("the node's process id")
            .trim()
            .to_owned();
        let killed = Command::new("kill").args(["-KILL", &pid]).status();
        assert!(killed.is_ok_and(|s| s.success()), "kill {pid}");
    }

    /// Whether the cluster has taken over from the dead node: every other
    /// node sees three masters, the dead one not among them, and says the
    /// cluster is ok.
    pub fn took_over_from(&self, dead: u16) -> bool {
        self.ports.iter().filter(|p| **p != dead).all(|p| {
            let masters = self.masters(*p);
            masters.len() == 3
                && !masters.contains(&dead)
                && redis_cli(*p, &["cluster", "info"]).contains("cluster_state:ok")
        })
    }

    /// Every node's port.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

static CLUSTER: OnceLock<Result<OwnCluster, String>> = OnceLock::new();

/// Seed node URLs (comma-separated) of the tests' Redis Cluster:
/// `POTVRDA_TEST_REDIS_CLUSTER` if set, else three local masters started here.
pub fn redis_cluster_nodes() -> String {
    if let Ok(nodes) = std::env::var("POTVRDA_TEST_REDIS_CLUSTER") {
        return nodes;
    }
    match CLUSTER.get_or_init(|| start_cluster(3, 0, "")) {
        Ok(c) => c.nodes.clone(),
        Err(e) => panic!("{e}"),
    }
}

/// A TCP port that is free, and whose cluster bus port (+10000) is free too.
fn cluster_port(taken: &[u16]) -> Result<u16, String> {
    for _ in 0..200 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = l.local_addr().map_err(|e| e.to_string())?.port();
        let clash = taken.iter().any(|t| {
            [*t, t + 10_000].contains(&port) || [*t, t + 10_000].contains(&(port + 10_000))
        });
        if port < 55_000
            && !clash
            && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok()
        {
            return Ok(port);
        }
    }
    Err("no free port pair for a cluster node".into())
}

/// `nodes` nodes, `replicas` per master, `extra` more redis-server options.
fn start_cluster(nodes: usize, replicas: usize, extra: &str) -> Result<OwnCluster, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut ports = Vec::new();
    let mut children = Vec::new();
    for _ in 0..nodes {
        let port = cluster_port(&ports)?;
        let node_dir = dir.path().join(port.to_string());
        std::fs::create_dir(&node_dir).map_err(|e| e.to_string())?;
        // As for the single Redis: each node lives only as long as this process.
        let script = format!(
            "redis-server --port {port} --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file nodes.conf \
             --save '' --appendonly no {extra} --dir '{}' >'{}/redis.log' 2>&1 & pid=$!; cat >/dev/null; kill $pid",
            node_dir.display(),
            node_dir.display()
        );
        children.push(
            Command::new("sh")
                .args(["-c", &script])
                .stdin(Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot start redis-server: {e}"))?,
        );
        ports.push(port);
    }
    let cli = |args: &[&str]| Command::new("redis-cli").args(args).output();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    for p in &ports {
        while !cli(&["-p", &p.to_string(), "ping"]).is_ok_and(|o| o.stdout.starts_with(b"PONG")) {
            if std::time::Instant::now() > deadline {
                return Err(format!("cluster node {p} did not start"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut args = vec!["--cluster", "create"];
    args.extend(addrs.iter().map(String::as_str));
    let replicas = replicas.to_string();
    args.extend(["--cluster-replicas", replicas.as_str(), "--cluster-yes"]);
    let out = cli(&args)
        .map_err(|e| format!("redis-cli: {e} (Debian: apt-get install -y redis-tools)"))?;
    if !out.status.success() {
        return Err(format!(
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    for p in &ports {
        while !cli(&["-p", &p.to_string(), "cluster", "info"])
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok"))
        {
            if std::time::Instant::now() > deadline {
                return Err(format!("cluster not ok on node {p} within 20 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(OwnCluster {
        nodes: addrs
            .iter()
            .map(|a| format!("redis://{a}"))
            .collect::<Vec<_>>()
            .join(","),
        ports,
        _children: children,
        _dir: dir,
    })
}

/// A unique id for keys, names and prefixes.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// How to start a test server.
#[derive(Clone)]
pub struct Options {
    /// Store.
    pub backend: Backend,
    /// Reuse this data dir (embedded restarts).
    pub data_dir: Option<PathBuf>,
    /// Redis key prefix (two instances share one).
    pub redis_prefix: Option<String>,
    /// Another Redis than the shared test one.
    pub redis_url: Option<String>,
    /// `redis_url` is a cluster's seed nodes (with `Backend::Postgres`:
    /// the PostgreSQL + Redis Cluster shape).
    pub redis_cluster: bool,
    /// A PostgreSQL database (two instances share one); `Backend::Postgres`
    /// makes a fresh one when unset.
    pub postgres_url: Option<String>,
    /// Clock; a manual clock set to now by default.
    pub clock: Option<Arc<ManualClock>>,
    /// Challenge TTL.
    pub challenge_ttl: u64,
    /// Serve `/metrics` on a listener of its own.
    pub metrics_listen: bool,
    /// Push limit per window, window (s), failures before a pause, pause (s).
    pub limits: (u32, u64, u32, u64),
    /// Password delay after, lock after, failed per IP, logins per IP, enrollments per IP.
    pub rates: (u32, u32, u32, u32, u32),
    /// Failed passwords for a username from all addresses before it locks for unknown ones.
    pub lock_after_all: u32,
    /// Peers whose `X-Forwarded-For` the server believes.
    pub trusted_proxies: Vec<String>,
    /// Serve TLS with this certificate and key (PEM files); the harness's
    /// client trusts the certificate.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Browser origins allowed by CORS.
    pub cors_allowed_origins: Vec<String>,
    /// Requests per minute per address to the phone's endpoints (0: off).
    pub ip_device_limit: u32,
    /// Seconds audit events are kept.
    pub audit_retention: u64,
    /// Seconds between the audit chains' checkpoints.
    pub audit_checkpoint_interval: u64,
    /// OpenID Connect clients (the JSON of `POTVRDA_OIDC_CLIENTS`).
    pub oidc_clients: Option<String>,
    /// Counter resets need a second official.
    pub four_eyes_reset: bool,
    /// The audit reader token.
    pub audit_reader_token: Option<String>,
    /// `RISK_WEIGHTS`.
    pub risk_weights: String,
    /// Serve the browser companion from this directory.
    pub app_dir: Option<PathBuf>,
    /// CIBA's poll interval, in seconds.
    pub ciba_interval: u64,
}

impl Options {
    /// Defaults for `backend`.
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            data_dir: None,
            redis_prefix: None,
            redis_url: None,
            redis_cluster: false,
            postgres_url: None,
            clock: None,
            challenge_ttl: 60,
            metrics_listen: false,
            limits: (10, 900, 5, 900),
            rates: (5, 10, 100, 1000, 30),
            lock_after_all: 100,
            trusted_proxies: Vec::new(),
            tls: None,
            cors_allowed_origins: Vec::new(),
            ip_device_limit: 600,
            audit_retention: 400 * 86_400,
            audit_checkpoint_interval: 300,
            oidc_clients: None,
            four_eyes_reset: false,
            audit_reader_token: None,
            risk_weights: String::new(),
            app_dir: None,
            ciba_interval: 5,
        }
    }
}

/// A running server and a client for it.
pub struct TestServer {
    /// Base URL.
    pub url: String,
    /// HTTP client.
    pub http: reqwest::Client,
    /// The server's clock.
    pub clock: Arc<ManualClock>,
    /// Bootstrap token.
    pub token: String,
    /// Data dir (kept alive with the server).
    pub data_dir: PathBuf,
    /// Redis prefix, if on Redis.
    pub redis_prefix: Option<String>,
    /// The PostgreSQL database, if on PostgreSQL + Redis.
    pub postgres_url: Option<String>,
    /// The configuration it was started with.
    pub config: Config,
    running: Option<potvrda_server::Running>,
    _tmp: Option<tempfile::TempDir>,
}

/// The portal client every test server registers (`client_secret_basic`,
/// the portal API, allowed to report the citizen's address and browser).
pub const PORTAL_CLIENT: &str = "portal-api";
/// Its secret.
pub const PORTAL_SECRET: &str = "portal-client-secret-0123456789";
/// Its registered name: what the phone shows as the service.
pub const PORTAL_NAME: &str = "eUprava: porez na imovinu";

/// The clients a test server registers: `extra` (a JSON array) and the
/// portal client, unless `extra` registers one of that id itself.
pub fn with_portal_client(extra: Option<&str>) -> String {
    let mut clients: Vec<serde_json::Value> = extra
        .map(|json| serde_json::from_str(json).expect("oidc_clients is a JSON array"))
        .unwrap_or_default();
    if !clients.iter().any(|c| c["client_id"] == PORTAL_CLIENT) {
        clients.push(serde_json::json!({
            "client_id": PORTAL_CLIENT,
            "client_secret": PORTAL_SECRET,
            "name": PORTAL_NAME,
            "grant_types": [],
            "portal_api": true,
            "reports_user_context": true,
        }));
    }
    serde_json::Value::Array(clients).to_string()
}

/// The current Unix time.
pub fn now() -> i64 {
    SystemClock.now()
}

impl TestServer {
    /// Start on `backend` with defaults.
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(Options::new(backend)).await
    }

    /// Start with options.
    pub async fn start_with(opts: Options) -> Self {
        let (data_dir, tmp) = match opts.data_dir {
            Some(d) => (d, None),
            None => {
                let t = tempfile::tempdir().expect("tempdir");
                (t.path().to_owned(), Some(t))
            }
        };
        let on_redis = opts.backend != Backend::Embedded;
        let redis_prefix =
            on_redis.then(|| opts.redis_prefix.clone().unwrap_or_else(|| unique("t")));
        let redis_target = match opts.backend {
            Backend::Embedded => None,
            Backend::Redis | Backend::Postgres => {
                Some(opts.redis_url.clone().unwrap_or_else(redis_url))
            }
            Backend::RedisCluster => Some(redis_cluster_nodes()),
        };
        let postgres_url = match (&opts.postgres_url, opts.backend) {
            (Some(url), _) => Some(url.clone()),
            (None, Backend::Postgres) => Some(postgres::fresh_database()),
            (None, _) => None,
        };
        let token = unique("bootstrap-");
        let config = Config {
            listen: potvrda_server::config::sections::Listen {
                address: "127.0.0.1:0".parse().expect("addr"),
                trusted_proxies: opts.trusted_proxies.clone(),
                tls_cert_file: opts.tls.as_ref().map(|t| t.0.clone()),
                tls_key_file: opts.tls.as_ref().map(|t| t.1.clone()),
                cors_allowed_origins: opts.cors_allowed_origins.clone(),
                app_dir: opts.app_dir.clone(),
                metrics_listen: opts
                    .metrics_listen
                    .then(|| "127.0.0.1:0".parse().expect("addr")),
                workers: 2,
                ..Default::default()
            },
            store: potvrda_server::config::sections::Store {
                data_dir: data_dir.clone(),
                redis_url: redis_target.map(SecretString::from),
                redis_cluster: opts.backend == Backend::RedisCluster || opts.redis_cluster,
                redis_key_prefix: redis_prefix.clone().unwrap_or_else(|| "potvrda".into()),
                postgres_url: postgres_url.clone().map(SecretString::from),
                postgres_pool_size: 4,
                ..Default::default()
            },
            staff: potvrda_server::config::sections::Staff {
                bootstrap_token: Some(SecretString::from(token.clone())),
                four_eyes_reset: opts.four_eyes_reset,
                audit_reader_token: opts.audit_reader_token.clone().map(SecretString::from),
                ..Default::default()
            },
            push: potvrda_server::config::sections::Push {
                allowed_hosts: vec!["127.0.0.1".into()],
                allow_http: true,
                ..Default::default()
            },
            login: potvrda_server::config::sections::Login {
                challenge_ttl: std::time::Duration::from_secs(opts.challenge_ttl),
                push_limit: opts.limits.0,
                push_window: std::time::Duration::from_secs(opts.limits.1),
                fatigue_limit: opts.limits.2,
                fatigue_pause: std::time::Duration::from_secs(opts.limits.3),
                risk_weights: opts.risk_weights.clone(),
                ..Default::default()
            },
            limits: potvrda_server::config::sections::Limits {
                password_delay_after: opts.rates.0,
                password_lock_after: opts.rates.1,
                password_lock_after_all: Some(opts.lock_after_all.max(opts.rates.1)),
                ip_failed_limit: opts.rates.2,
                ip_login_limit: opts.rates.3,
                ip_enroll_limit: opts.rates.4,
                ip_device_limit: opts.ip_device_limit,
                ..Default::default()
            },
            audit: potvrda_server::config::sections::Audit {
                retention: std::time::Duration::from_secs(opts.audit_retention),
                checkpoint_interval: std::time::Duration::from_secs(opts.audit_checkpoint_interval),
                ..Default::default()
            },
            oidc: potvrda_server::config::sections::Oidc {
                clients: Some(SecretString::from(with_portal_client(
                    opts.oidc_clients.as_deref(),
                ))),
                ciba_interval: std::time::Duration::from_secs(opts.ciba_interval),
                ..Default::default()
            },
            log: potvrda_server::config::sections::Log {
                filter: "warn".into(),
                ..Default::default()
            },
            ..Config::default()
        };
        let clock = opts
            .clock
            .unwrap_or_else(|| Arc::new(ManualClock::new(now())));
        let running = potvrda_server::start(config.clone(), clock.clone())
            .await
            .expect("server starts");
        let url = running.public_url.clone();
        let http = match &opts.tls {
            Some((cert, _)) => {
                let pem = std::fs::read(cert).expect("certificate");
                reqwest::Client::builder()
                    .tls_certs_only([reqwest::Certificate::from_pem(&pem).expect("PEM")])
                    .build()
                    .expect("client")
            }
            None => reqwest::Client::new(),
        };
        let health = http
            .get(format!("{url}/healthz"))
            .send()
            .await
            .expect("healthz answers");
        assert_eq!(health.status(), 200);
        Self {
            url,
            http,
            clock,
            token,
            data_dir,
            redis_prefix,
            postgres_url,
            config,
            running: Some(running),
            _tmp: tmp,
        }
    }

    /// Where `/metrics` is served when it has its own listener.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.running.as_ref().and_then(|r| r.metrics_addr)
    }

    /// How many logins have a long-poll parked on this server.
    pub fn waiting_long_polls(&self) -> usize {
        self.running
            .as_ref()
            .map_or(0, potvrda_server::Running::waiting_long_polls)
    }

    /// Wait until `n` long-polls are parked on this server (at most 10 s).
    pub async fn until_parked(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.waiting_long_polls() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "long-poll not parked within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Stop gracefully, keeping the data dir.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        if let Some(r) = self.running.take() {
            r.stop(true).await.expect("server stops cleanly");
        }
        self._tmp.take()
    }

    /// POST /v1/admin/citizens as the bootstrap admin.
    pub async fn create_citizen(&self, username: &str) -> CreateCitizenResponse {
        self.create_citizen_named(username, &format!("Citizen {username}"))
            .await
    }

    /// POST /v1/admin/citizens as the bootstrap admin, with this name.
    pub async fn create_citizen_named(
        &self,
        username: &str,
        display_name: &str,
    ) -> CreateCitizenResponse {
        let resp = self
            .http
            .post(format!("{}/v1/admin/citizens", self.url))
            .bearer_auth(&self.token)
            .json(&CreateCitizenRequest {
                username: username.into(),
                display_name: display_name.into(),
                email: Some(format!("{username}@example.rs")),
                phone: Some("+381 64 123 4567".into()),
            })
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 201, "create citizen");
        resp.json().await.expect("json")
    }

    /// POST /v1/logins, for a portal service.
    pub async fn login_raw(&self, username: &str, password: &str) -> reqwest::Response {
        self.login_for(username, password, LoginAudience::Portal)
            .await
    }

    /// POST /v1/logins, for the given audience (a portal service or the admin API).
    pub async fn login_for(
        &self,
        username: &str,
        password: &str,
        audience: LoginAudience,
    ) -> reqwest::Response {
        self.portal(self.http.post(format!("{}/v1/logins", self.url)))
            .json(&LoginRequest {
                username: username.into(),
                password: password.into(),
                context: Some(LoginContext {
                    ip: Some("203.0.113.7".into()),
                    user_agent: Some("Firefox on Linux".into()),
                    ..LoginContext::default()
                }),
                audience,
            })
            .send()
            .await
            .expect("request")
    }

    /// `request`, authenticated as the portal client ([`PORTAL_CLIENT`]).
    pub fn portal(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.basic_auth(PORTAL_CLIENT, Some(PORTAL_SECRET))
    }

    /// `request` for a login: the portal client, and the login's secret.
    pub fn for_login(
        &self,
        request: reqwest::RequestBuilder,
        secret: &str,
    ) -> reqwest::RequestBuilder {
        self.portal(request).header("Login-Secret", secret)
    }

    /// GET /v1/logins/{id}?wait=N.
    pub async fn status_raw(&self, login_id: &str, secret: &str, wait: u64) -> reqwest::Response {
        self.for_login(
            self.http
                .get(format!("{}/v1/logins/{login_id}?wait={wait}", self.url)),
            secret,
        )
        .send()
        .await
        .expect("request")
    }

    /// GET /v1/logins/{id}?wait=N, expecting 200.
    pub async fn status(&self, login_id: &str, secret: &str, wait: u64) -> LoginStatusResponse {
        let resp = self.status_raw(login_id, secret, wait).await;
        assert_eq!(resp.status(), 200, "status");
        resp.json().await.expect("json")
    }

    /// GET /v1/admin/audit?{query} as the bootstrap admin, expecting 200.
    pub async fn audit(&self, query: &str) -> AuditResponse {
        let resp = self
            .http
            .get(format!("{}/v1/admin/audit?{query}", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200, "audit");
        resp.json().await.expect("json")
    }

    /// The citizen's audit events once `done` holds for them (at most 10 s:
    /// some events are written by background tasks).
    pub async fn audit_until(
        &self,
        user_id: &str,
        done: impl Fn(&[AuditEvent]) -> bool,
    ) -> Vec<AuditEvent> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let events = self
                .audit(&format!("user_id={user_id}&limit=1000"))
                .await
                .events;
            if done(&events) {
                return events;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "audit trail incomplete after 10 s: {events:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The published JWKS.
    pub async fn jwks(&self) -> PublicJwks {
        self.http
            .get(format!("{}/.well-known/jwks.json", self.url))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json")
    }
}
