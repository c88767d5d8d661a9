//! The configuration's sections, each with its defaults and its checks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::layers::{de_list, duration, ser_secret_opt};
use crate::error::{Error, Result};
use crate::service::OidcClient;

fn bad<T>(message: &str) -> Result<T> {
    Err(Error::Config(message.to_owned()))
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// `[listen]`: where and how the server is reached.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    /// Address to listen on (flat: `listen`).
    pub address: SocketAddr,
    /// The URL clients reach this server at; the `iss` of every token.
    /// Unset: `http://<listen address>`.
    pub public_url: Option<String>,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Serve HTTPS with this certificate chain (PEM); with `tls_key_file`.
    pub tls_cert_file: Option<PathBuf>,
    /// The TLS private key (PEM, mode 0600).
    pub tls_key_file: Option<PathBuf>,
    /// Origins allowed to call the API from a browser (CORS); empty: closed.
    #[serde(deserialize_with = "de_list")]
    pub cors_allowed_origins: Vec<String>,
    /// Peers whose `X-Forwarded-For` is believed (the portal, a load
    /// balancer): addresses or CIDR ranges.
    #[serde(deserialize_with = "de_list")]
    pub trusted_proxies: Vec<String>,
    /// Serve `/metrics` on this address only (not on `listen`); unset: on `listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// The browser companion's files (`web-app/` with its built `pkg/`,
    /// `scripts/web-app.sh`), served at `/app/`; unset: `/app/` answers 404.
    pub app_dir: Option<PathBuf>,
}

impl Default for Listen {
    fn default() -> Self {
        Self {
            address: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            workers: 0,
            tls_cert_file: None,
            tls_key_file: None,
            cors_allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            metrics_listen: None,
            app_dir: None,
        }
    }
}

impl Listen {
    pub(super) fn validate(&self) -> Result<()> {
        crate::proxies::Proxies::parse(&self.trusted_proxies)?;
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return bad("tls_cert_file and tls_key_file go together");
        }
        if self.cors_allowed_origins.iter().any(|o| {
            o == "*" || url::Url::parse(o).map_or(true, |u| u.origin().ascii_serialization() != *o)
        }) {
            return bad(
                "cors_allowed_origins must be exact origins like https://portal.example (no *, no path)",
            );
        }
        if let Some(u) = &self.public_url
            && url::Url::parse(u).is_err()
        {
            return bad("public_url is not a URL");
        }
        Ok(())
    }
}

/// `[store]`: the embedded store's directory, or Redis, or PostgreSQL (the
/// system of record) with Redis (what is fleeting).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Store {
    /// Directory for the embedded store and key files.
    pub data_dir: PathBuf,
    /// Redis URL; unset selects the embedded store. `redis://…` or `redis+unix://…`.
    #[serde(serialize_with = "ser_secret_opt")]
    pub redis_url: Option<SecretString>,
    /// File holding the Redis URL (it may contain a password).
    pub redis_url_file: Option<PathBuf>,
    /// `redis_url` names Redis Cluster seed nodes (comma-separated URLs).
    pub redis_cluster: bool,
    /// Prefix of every Redis key, so several deployments can share a Redis.
    pub redis_key_prefix: String,
    /// PostgreSQL URL (`postgres://user@host/db`): accounts, devices,
    /// lasting records and the audit trail go there, and `redis_url` keeps
    /// what is fleeting. Unset: Redis (or the embedded store) keeps all.
    #[serde(serialize_with = "ser_secret_opt")]
    pub postgres_url: Option<SecretString>,
    /// File holding the PostgreSQL URL (it may contain a password).
    pub postgres_url_file: Option<PathBuf>,
    /// PostgreSQL connections each instance opens at most.
    pub postgres_pool_size: u32,
    /// How long a request waits for a free PostgreSQL connection before it
    /// is refused with 503.
    #[serde(with = "duration")]
    pub postgres_acquire_timeout: Duration,
}

impl Store {
    pub(super) fn validate(&self) -> Result<()> {
        let set =
            |s: &Option<SecretString>| s.as_ref().is_some_and(|u| !u.expose_secret().is_empty());
        if set(&self.postgres_url) && !set(&self.redis_url) {
            return Err(Error::Config(
                "[store] postgres_url needs redis_url too: Redis keeps the logins, challenges and rate counters".into(),
            ));
        }
        if self.postgres_pool_size == 0 {
            return Err(Error::Config(
                "[store] postgres_pool_size must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

impl Default for Store {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            redis_url: None,
            redis_url_file: None,
            redis_cluster: false,
            redis_key_prefix: "potvrda".into(),
            postgres_url: None,
            postgres_url_file: None,
            postgres_pool_size: 16,
            postgres_acquire_timeout: secs(5),
        }
    }
}

/// `[push]`: Web Push.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Push {
    /// Extra push service hosts (comma-separated in the environment; flat:
    /// `push_allowed_hosts`).
    #[serde(deserialize_with = "de_list")]
    pub allowed_hosts: Vec<String>,
    /// Allow `http://` push endpoints (development and tests only; flat:
    /// `push_allow_http`).
    pub allow_http: bool,
    /// VAPID `sub` claim: a `mailto:` or `https:` contact for push services.
    pub vapid_subject: String,
    /// VAPID key (PKCS#8 DER); unset: generated and kept in the store.
    pub vapid_key_file: Option<PathBuf>,
}

impl Default for Push {
    fn default() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            allow_http: false,
            vapid_subject: "mailto:potvrda@localhost".into(),
            vapid_key_file: None,
        }
    }
}

impl Push {
    pub(super) fn validate(&self) -> Result<()> {
        if !(self.vapid_subject.starts_with("mailto:") || self.vapid_subject.starts_with("https:"))
        {
            return bad("vapid_subject must be a mailto: or https: URI (RFC 8292 §2.1)");
        }
        Ok(())
    }
}

/// `[login]`: challenges, activation, the push guard and the risk policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Login {
    /// How long a challenge stays answerable.
    #[serde(with = "duration")]
    pub challenge_ttl: Duration,
    /// Activation code lifetime.
    #[serde(with = "duration")]
    pub activation_ttl: Duration,
    /// Pushes (logins) per user per `push_window` before 429.
    pub push_limit: u32,
    /// The sliding window of `push_limit`.
    #[serde(with = "duration")]
    pub push_window: Duration,
    /// Denied or expired challenges in a row before pushes pause.
    pub fatigue_limit: u32,
    /// How long pushes pause.
    #[serde(with = "duration")]
    pub fatigue_pause: Duration,
    /// Risk-adaptive push: weights of the signals, `reason=weight,…`
    /// (`new_address`, `recent_denials`, `recent_fraud_report`, `velocity`,
    /// `dormant`, `new_device`); unnamed ones keep their defaults.
    pub risk_weights: String,
    /// A login scoring this much asks for the six-digit code.
    pub risk_escalate_at: u32,
    /// A login scoring this much also gets no notification.
    pub risk_suppress_at: u32,
}

impl Default for Login {
    fn default() -> Self {
        Self {
            challenge_ttl: secs(60),
            activation_ttl: secs(72 * 3600),
            push_limit: 10,
            push_window: secs(900),
            fatigue_limit: 5,
            fatigue_pause: secs(900),
            risk_weights: String::new(),
            risk_escalate_at: 2,
            risk_suppress_at: 4,
        }
    }
}

impl Login {
    pub(super) fn validate(&self) -> Result<()> {
        if !(secs(10)..=secs(600)).contains(&self.challenge_ttl) {
            return bad("challenge_ttl must be between 10 and 600 seconds");
        }
        if self.push_limit == 0 || self.fatigue_limit == 0 || self.push_window.is_zero() {
            return bad("push_limit, push_window and fatigue_limit must be positive");
        }
        if self.activation_ttl < secs(60) {
            return bad("activation_ttl must be at least 60 seconds");
        }
        Ok(())
    }
}

/// `[limits]`: the password guard and the per-address limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Window of the password and per-address limits.
    #[serde(with = "duration")]
    pub rate_window: Duration,
    /// Failed passwords for one username in the window before each further
    /// attempt is delayed (1 s, doubling, at most 8 s).
    pub password_delay_after: u32,
    /// Failed passwords for one username in the window before the username
    /// is locked (answers as for a wrong password) until failures age out.
    pub password_lock_after: u32,
    /// Failed passwords for one username from all addresses together in the
    /// window before the username is locked for every address the citizen
    /// has not logged in from (known addresses pass). Unset: ten times
    /// `password_lock_after`.
    pub password_lock_after_all: Option<u32>,
    /// Failed passwords from one address in the window before 429.
    pub ip_failed_limit: u32,
    /// Login requests from one address in the window before 429.
    pub ip_login_limit: u32,
    /// Enrollment attempts from one address in the window before 429.
    pub ip_enroll_limit: u32,
    /// Requests per minute from one address to the phone's endpoints
    /// (pending, device, seen, approvals) on each instance before 429; 0: no limit.
    pub ip_device_limit: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            rate_window: secs(900),
            password_delay_after: 5,
            password_lock_after: 10,
            password_lock_after_all: None,
            ip_failed_limit: 100,
            ip_login_limit: 1000,
            ip_enroll_limit: 30,
            ip_device_limit: 600,
        }
    }
}

impl Limits {
    /// The all-address lock threshold in force.
    pub fn lock_after_all(&self) -> u32 {
        self.password_lock_after_all
            .unwrap_or(self.password_lock_after.saturating_mul(10))
    }

    pub(super) fn validate(&self) -> Result<()> {
        if self
            .password_lock_after_all
            .is_some_and(|all| all < self.password_lock_after)
        {
            return bad("password_lock_after_all must be at least password_lock_after");
        }
        Ok(())
    }
}

/// `[tokens]`: access tokens and their keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tokens {
    /// Access token lifetime (flat: `token_ttl`).
    #[serde(with = "duration")]
    pub ttl: Duration,
    /// `aud` of access tokens (flat: `token_audience`).
    pub audience: String,
    /// `aud` of the admin API's access tokens (logins made with
    /// `"audience": "admin"`, staff only); the only tokens `/v1/admin` accepts.
    pub admin_audience: String,
    /// Time between automatic rotations of the token keys; 0: only by
    /// `auth-server keys rotate` (flat: `token_key_rotation`).
    #[serde(with = "duration")]
    pub key_rotation: Duration,
    /// ES256 signing key (PKCS#8 DER); unset: generated and kept in the store.
    pub signing_key_file: Option<PathBuf>,
}

impl Default for Tokens {
    fn default() -> Self {
        Self {
            ttl: secs(600),
            audience: "potvrda".into(),
            admin_audience: "potvrda-admin".into(),
            key_rotation: secs(90 * 86_400),
            signing_key_file: None,
        }
    }
}

impl Tokens {
    pub(super) fn validate(&self) -> Result<()> {
        if !(secs(30)..=secs(86_400)).contains(&self.ttl) {
            return bad("token_ttl must be between 30 and 86400 seconds");
        }
        if self.admin_audience.trim().is_empty() || self.admin_audience == self.audience {
            return bad("admin_audience must be set and differ from token_audience");
        }
        Ok(())
    }
}

/// `[password]`: Argon2id.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Password {
    /// Memory cost in KiB (OWASP: 19456; flat: `argon2_memory_kib`).
    pub memory_kib: u32,
    /// Iterations (OWASP: 2; flat: `argon2_iterations`).
    pub iterations: u32,
    /// Parallelism (OWASP: 1; flat: `argon2_parallelism`).
    pub parallelism: u32,
    /// Password hashes computed at once; 0 means one per CPU core.
    pub hash_concurrency: usize,
}

impl Default for Password {
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
            hash_concurrency: 0,
        }
    }
}

impl Password {
    pub(super) fn validate(&self) -> Result<()> {
        if self.memory_kib < 8 * self.parallelism.max(1) || self.iterations == 0 {
            return bad("argon2 parameters are below the algorithm's minimum");
        }
        Ok(())
    }
}

/// `[oidc]`: the OpenID Provider.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Oidc {
    /// The OpenID Connect clients, a JSON array of `{"client_id",
    /// "client_secret"?, "redirect_uris", "post_logout_redirect_uris"?, "name",
    /// "id_token_signed_response_alg"?}` (it holds secrets; flat: `oidc_clients`).
    #[serde(serialize_with = "ser_secret_opt")]
    pub clients: Option<SecretString>,
    /// File holding `clients` (flat: `oidc_clients_file`).
    pub clients_file: Option<PathBuf>,
    /// How long the provider's single sign-on session lasts.
    #[serde(with = "duration")]
    pub session_ttl: Duration,
    /// How long a refresh token family lives without use.
    #[serde(with = "duration")]
    pub refresh_ttl: Duration,
    /// CIBA: the `interval` a polling client waits between polls (1 s to
    /// 1 min; `slow_down` adds 5 s for a client that polls sooner).
    #[serde(with = "duration")]
    pub ciba_interval: Duration,
    /// The parsed `clients`.
    #[serde(skip)]
    pub registered: Vec<OidcClient>,
}

impl Default for Oidc {
    fn default() -> Self {
        Self {
            clients: None,
            clients_file: None,
            session_ttl: secs(8 * 3600),
            refresh_ttl: secs(30 * 86_400),
            ciba_interval: secs(5),
            registered: Vec::new(),
        }
    }
}

/// `[staff]`: the bootstrap and audit reader tokens, the four eyes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Staff {
    /// Bearer token for the bootstrap admin endpoint; unset disables it.
    #[serde(serialize_with = "ser_secret_opt")]
    pub bootstrap_token: Option<SecretString>,
    /// File holding the bootstrap token.
    pub bootstrap_token_file: Option<PathBuf>,
    /// Bearer token that may only read the audit trail (`/v1/admin/audit`,
    /// `/audit/export`): for the archive job, instead of the bootstrap token.
    #[serde(serialize_with = "ser_secret_opt")]
    pub audit_reader_token: Option<SecretString>,
    /// File holding the audit reader token.
    pub audit_reader_token_file: Option<PathBuf>,
    /// Four eyes: a reset at the counter (a lost phone's new password and
    /// activation code) takes effect only when a second official confirms it.
    pub four_eyes_reset: bool,
}

impl Staff {
    pub(super) fn validate(&self) -> Result<()> {
        if let Some(t) = &self.bootstrap_token
            && t.expose_secret().len() < 16
        {
            return bad("bootstrap_token must be at least 16 characters");
        }
        if let Some(t) = &self.audit_reader_token {
            if t.expose_secret().len() < 16 {
                return bad("audit_reader_token must be at least 16 characters");
            }
            if self
                .bootstrap_token
                .as_ref()
                .is_some_and(|b| b.expose_secret() == t.expose_secret())
            {
                return bad("audit_reader_token must differ from bootstrap_token");
            }
        }
        Ok(())
    }
}

/// `[audit]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Audit {
    /// How long audit events are kept (flat: `audit_retention`).
    #[serde(with = "duration")]
    pub retention: Duration,
    /// How often the chains that moved get a signed checkpoint (flat:
    /// `audit_checkpoint_interval`).
    #[serde(with = "duration")]
    pub checkpoint_interval: Duration,
    /// PKCS#8 DER P-256 key that signs the checkpoints; unset: made on first
    /// start and kept by the store (flat: `audit_key_file`).
    pub key_file: Option<PathBuf>,
}

impl Default for Audit {
    fn default() -> Self {
        Self {
            retention: secs(400 * 86_400),
            checkpoint_interval: secs(300),
            key_file: None,
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// Log filter (`tracing` env-filter syntax; flat: `log`).
    pub filter: String,
    /// `text` or `json` (flat: `log_format`).
    pub format: LogFormat,
}

impl Default for Log {
    fn default() -> Self {
        Self {
            filter: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}
