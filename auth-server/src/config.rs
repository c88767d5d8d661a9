//! Configuration: defaults, then a TOML file (`--config` / `POTVRDA_CONFIG`),
//! then `POTVRDA_<KEY>` environment variables, then command-line flags.
//!
//! Secrets (`bootstrap_token`, `redis_url`) may instead be read from a file
//! named by `<key>_file`; they are held as [`SecretString`], whose `Debug`
//! prints `[REDACTED]`, so a logged `Config` leaks nothing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};
use crate::service::{OidcClient, RiskPolicy};
use crate::settings::{
    LimitSettings, LoginSettings, OidcSettings, Settings, StaffSettings, TokenSettings,
};

/// Push services the server may send to without further configuration.
/// A leading dot allows every subdomain.
pub const DEFAULT_PUSH_HOSTS: &[&str] = &[
    "fcm.googleapis.com",
    "updates.push.services.mozilla.com",
    "web.push.apple.com",
    ".notify.windows.com",
    ".push.apple.com",
];

/// The sections of the configuration file and the keys each holds. A key
/// is written in its section — `[limits] rate_window = 300` in the file,
/// `POTVRDA_LIMITS__RATE_WINDOW=300` in the environment — either by its
/// flat name or without the section's prefix (`[oidc] session_ttl` for
/// `oidc_session_ttl`). The flat names at the top level of the file and
/// `POTVRDA_<KEY>` are documented aliases: every existing deployment keeps
/// working.
pub const SECTIONS: &[(&str, &[&str])] = &[
    (
        "listen",
        &[
            "listen",
            "public_url",
            "workers",
            "tls_cert_file",
            "tls_key_file",
            "cors_allowed_origins",
            "trusted_proxies",
            "metrics_listen",
            "app_dir",
        ],
    ),
    (
        "store",
        &[
            "data_dir",
            "redis_url",
            "redis_url_file",
            "redis_cluster",
            "redis_key_prefix",
        ],
    ),
    (
        "push",
        &[
            "push_allowed_hosts",
            "push_allow_http",
            "vapid_subject",
            "vapid_key_file",
        ],
    ),
    (
        "login",
        &[
            "challenge_ttl",
            "activation_ttl",
            "push_limit",
            "push_window",
            "fatigue_limit",
            "fatigue_pause",
            "risk_weights",
            "risk_escalate_at",
            "risk_suppress_at",
        ],
    ),
    (
        "limits",
        &[
            "rate_window",
            "password_delay_after",
            "password_lock_after",
            "password_lock_after_all",
            "ip_failed_limit",
            "ip_login_limit",
            "ip_enroll_limit",
            "ip_device_limit",
        ],
    ),
    (
        "tokens",
        &[
            "token_ttl",
            "token_audience",
            "admin_audience",
            "token_key_rotation",
            "signing_key_file",
        ],
    ),
    (
        "password",
        &[
            "argon2_memory_kib",
            "argon2_iterations",
            "argon2_parallelism",
            "hash_concurrency",
        ],
    ),
    (
        "oidc",
        &[
            "oidc_clients",
            "oidc_clients_file",
            "oidc_session_ttl",
            "oidc_refresh_ttl",
        ],
    ),
    (
        "staff",
        &[
            "bootstrap_token",
            "bootstrap_token_file",
            "audit_reader_token",
            "audit_reader_token_file",
            "four_eyes_reset",
        ],
    ),
    ("audit", &["audit_retention"]),
    ("log", &["log", "log_format"]),
];

/// The flat key of `key` in `section`, or why there is none.
fn sectioned_key(section: &str, key: &str) -> Result<&'static str> {
    let Some((name, keys)) = SECTIONS.iter().find(|(name, _)| *name == section) else {
        let names: Vec<&str> = SECTIONS.iter().map(|(n, _)| *n).collect();
        return Err(Error::Config(format!(
            "unknown configuration section [{section}] (the sections: {})",
            names.join(", ")
        )));
    };
    let prefixed = format!("{name}_{key}");
    keys.iter()
        .find(|k| **k == key || **k == prefixed)
        .copied()
        .ok_or_else(|| {
            Error::Config(format!(
                "unknown key {key} in [{section}] (its keys: {})",
                keys.join(", ")
            ))
        })
}

/// The file's values with every section's keys at the top level, where
/// `Config` reads them; a key given both flat and in its section is an
/// error, not a silent choice.
fn flatten_sections(file: figment::value::Dict) -> Result<figment::value::Dict> {
    use figment::value::Value;
    let mut flat = figment::value::Dict::new();
    let put = |key: String, value: Value, flat: &mut figment::value::Dict| {
        if flat.insert(key.clone(), value).is_some() {
            return Err(Error::Config(format!(
                "{key} is set twice (flat and in its section)"
            )));
        }
        Ok(())
    };
    for (name, value) in file {
        match value {
            Value::Dict(_, keys) if SECTIONS.iter().any(|(n, _)| *n == name) => {
                for (key, v) in keys {
                    put(sectioned_key(&name, &key)?.to_owned(), v, &mut flat)?;
                }
            }
            other => put(name, other, &mut flat)?,
        }
    }
    Ok(flat)
}

/// An environment key (after `POTVRDA_`, lower case) as a flat key:
/// `limits__rate_window` is `rate_window`; a flat key is itself.
fn env_key(key: &str) -> Result<String> {
    match key.split_once("__") {
        Some((section, k)) => Ok(sectioned_key(section, k)?.to_owned()),
        None => Ok(key.to_owned()),
    }
}

/// The whole configuration; immutable once loaded.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The URL clients reach this server at; the `iss` of every token.
    /// Unset: `http://<listen address>`.
    pub public_url: Option<String>,
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
    /// Extra push service hosts (comma-separated in the environment).
    #[serde(deserialize_with = "de_list")]
    pub push_allowed_hosts: Vec<String>,
    /// Allow `http://` push endpoints (development and tests only).
    pub push_allow_http: bool,
    /// VAPID `sub` claim: a `mailto:` or `https:` contact for push services.
    pub vapid_subject: String,
    /// How long a challenge stays answerable, in seconds.
    pub challenge_ttl: u64,
    /// Access token lifetime, in seconds.
    pub token_ttl: u64,
    /// Activation code lifetime, in seconds.
    pub activation_ttl: u64,
    /// `aud` of access tokens.
    pub token_audience: String,
    /// `aud` of the admin API's access tokens (logins made with
    /// `"audience": "admin"`, staff only); the only tokens `/v1/admin` accepts.
    pub admin_audience: String,
    /// Pushes (logins) per user per `push_window` before 429.
    pub push_limit: u32,
    /// The sliding window of `push_limit`, in seconds.
    pub push_window: u64,
    /// Denied or expired challenges in a row before pushes pause.
    pub fatigue_limit: u32,
    /// How long pushes pause, in seconds.
    pub fatigue_pause: u64,
    /// Window of the password and per-IP limits, in seconds.
    pub rate_window: u64,
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
    /// Risk-adaptive push: weights of the signals, `reason=weight,…`
    /// (`new_address`, `recent_denials`, `recent_fraud_report`, `velocity`,
    /// `dormant`, `new_device`); unnamed ones keep their defaults.
    pub risk_weights: String,
    /// A login scoring this much asks for the six-digit code.
    pub risk_escalate_at: u32,
    /// A login scoring this much also gets no notification.
    pub risk_suppress_at: u32,
    /// Failed passwords from one IP in the window before 429.
    pub ip_failed_limit: u32,
    /// Login requests from one IP in the window before 429.
    pub ip_login_limit: u32,
    /// Enrollment attempts from one IP in the window before 429.
    pub ip_enroll_limit: u32,
    /// Requests per minute from one IP to the phone's endpoints (pending,
    /// device, seen, approvals) on each instance before 429; 0: no limit.
    pub ip_device_limit: u32,
    /// How long audit events are kept, in seconds.
    pub audit_retention: u64,
    /// Four eyes: a reset at the counter (a lost phone's new password and
    /// activation code) takes effect only when a second official confirms it.
    pub four_eyes_reset: bool,
    /// Seconds between automatic rotations of the token keys; 0: only by
    /// `auth-server keys rotate`.
    pub token_key_rotation: u64,
    /// The OpenID Connect clients, a JSON array of `{"client_id",
    /// "client_secret"?, "redirect_uris", "post_logout_redirect_uris"?, "name",
    /// "id_token_signed_response_alg"?}` (it holds secrets).
    #[serde(serialize_with = "ser_secret_opt")]
    pub oidc_clients: Option<SecretString>,
    /// File holding `oidc_clients`.
    pub oidc_clients_file: Option<PathBuf>,
    /// The parsed `oidc_clients`.
    #[serde(skip)]
    pub clients: Vec<OidcClient>,
    /// How long the provider's single sign-on session lasts, in seconds.
    pub oidc_session_ttl: u64,
    /// How long a refresh token family lives without use, in seconds.
    pub oidc_refresh_ttl: u64,
    /// Peers whose `X-Forwarded-For` is believed (the portal, a load
    /// balancer): addresses or CIDR ranges.
    #[serde(deserialize_with = "de_list")]
    pub trusted_proxies: Vec<String>,
    /// Argon2id memory cost in KiB (OWASP: 19456).
    pub argon2_memory_kib: u32,
    /// Argon2id iterations (OWASP: 2).
    pub argon2_iterations: u32,
    /// Argon2id parallelism (OWASP: 1).
    pub argon2_parallelism: u32,
    /// Password hashes computed at once; 0 means one per CPU core.
    pub hash_concurrency: usize,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// ES256 signing key (PKCS#8 DER); unset: generated and kept in the store.
    pub signing_key_file: Option<PathBuf>,
    /// VAPID key (PKCS#8 DER); unset: generated and kept in the store.
    pub vapid_key_file: Option<PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM); with `tls_key_file`.
    pub tls_cert_file: Option<PathBuf>,
    /// The TLS private key (PEM, mode 0600).
    pub tls_key_file: Option<PathBuf>,
    /// Origins allowed to call the API from a browser (CORS); empty: closed.
    #[serde(deserialize_with = "de_list")]
    pub cors_allowed_origins: Vec<String>,
    /// The browser companion's files (`web-app/` with its built `pkg/`,
    /// `scripts/web-app.sh`), served at `/app/`; unset: `/app/` answers 404.
    pub app_dir: Option<PathBuf>,
    /// Serve `/metrics` on this address only (not on `listen`); unset: on `listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// Log filter (`tracing` env-filter syntax).
    pub log: String,
    /// `text` or `json`.
    pub log_format: LogFormat,
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

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            data_dir: PathBuf::from("./data"),
            redis_url: None,
            redis_url_file: None,
            redis_cluster: false,
            redis_key_prefix: "potvrda".into(),
            bootstrap_token: None,
            bootstrap_token_file: None,
            audit_reader_token: None,
            audit_reader_token_file: None,
            push_allowed_hosts: Vec::new(),
            push_allow_http: false,
            vapid_subject: "mailto:potvrda@localhost".into(),
            challenge_ttl: 60,
            token_ttl: 600,
            activation_ttl: 72 * 3600,
            token_audience: "potvrda".into(),
            admin_audience: "potvrda-admin".into(),
            push_limit: 10,
            push_window: 900,
            fatigue_limit: 5,
            fatigue_pause: 900,
            rate_window: 900,
            password_delay_after: 5,
            password_lock_after: 10,
            password_lock_after_all: None,
            risk_weights: String::new(),
            risk_escalate_at: 2,
            risk_suppress_at: 4,
            ip_failed_limit: 100,
            ip_login_limit: 1000,
            ip_enroll_limit: 30,
            ip_device_limit: 600,
            audit_retention: 400 * 86_400,
            four_eyes_reset: false,
            token_key_rotation: 90 * 86_400,
            oidc_clients: None,
            oidc_clients_file: None,
            clients: Vec::new(),
            oidc_session_ttl: 8 * 3600,
            oidc_refresh_ttl: 30 * 86_400,
            trusted_proxies: Vec::new(),
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            hash_concurrency: 0,
            workers: 0,
            signing_key_file: None,
            vapid_key_file: None,
            metrics_listen: None,
            app_dir: None,
            tls_cert_file: None,
            tls_key_file: None,
            cors_allowed_origins: Vec::new(),
            log: "info".into(),
            log_format: LogFormat::Text,
        }
    }
}

/// Command-line overrides; `None` leaves the lower layers alone.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    /// `--listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// `--public-url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// `--data-dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// `--redis-url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
}

impl Config {
    /// Load all layers. `file` is the TOML file, if any; `env` is the process
    /// environment (a parameter so tests need not touch the real one).
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Self> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(Error::Config(format!(
                    "config file {} not found",
                    file.display()
                )));
            }
            let values: figment::value::Dict = Figment::from(Toml::file(file))
                .extract()
                .map_err(|e| Error::Config(e.to_string()))?;
            fig = fig.merge(Serialized::globals(flatten_sections(values)?));
        }
        let vars: Vec<(String, String)> = env
            .into_iter()
            .filter_map(|(k, v)| {
                let key = k.strip_prefix("POTVRDA_")?.to_ascii_lowercase();
                // Settings of the launcher and the test harness, not of the server.
                (!matches!(key.as_str(), "config") && !key.starts_with("test_")).then_some((key, v))
            })
            .collect();
        for (k, v) in vars {
            fig = fig.merge((env_key(&k)?.as_str(), figment_value(&v)));
        }
        fig = fig.merge(Serialized::globals(overrides));
        let mut config: Config = fig.extract().map_err(|e| Error::Config(e.to_string()))?;
        config.resolve_files()?;
        config.validate()?;
        Ok(config)
    }

    fn resolve_files(&mut self) -> Result<()> {
        if let Some(path) = &self.bootstrap_token_file {
            self.bootstrap_token = Some(read_secret(path)?);
        }
        if let Some(path) = &self.audit_reader_token_file {
            self.audit_reader_token = Some(read_secret(path)?);
        }
        if let Some(path) = &self.redis_url_file {
            self.redis_url = Some(read_secret(path)?);
        }
        if let Some(path) = &self.oidc_clients_file {
            self.oidc_clients = Some(read_secret(path)?);
        }
        self.parse_clients()
    }

    /// Parse `oidc_clients` into `clients` (done by [`Config::load`]; call it
    /// when building a `Config` by hand) and check them.
    pub fn parse_clients(&mut self) -> Result<()> {
        if let Some(json) = &self.oidc_clients {
            // The parser's message names a position, never the secret text.
            self.clients = serde_json::from_str(json.expose_secret()).map_err(|e| {
                Error::Config(format!(
                    "oidc_clients is not a JSON array of clients (line {}, column {})",
                    e.line(),
                    e.column()
                ))
            })?;
        }
        let mut ids = std::collections::HashSet::new();
        for c in &self.clients {
            c.validate().map_err(Error::Config)?;
            // Its tokens' `aud` would otherwise be the portal's own audience.
            if c.client_id == self.token_audience || c.client_id == self.admin_audience {
                return Err(Error::Config(format!(
                    "oidc client id {} must differ from token_audience and admin_audience",
                    c.client_id
                )));
            }
            if !ids.insert(c.client_id.as_str()) {
                return Err(Error::Config(format!(
                    "oidc client {} is registered twice",
                    c.client_id
                )));
            }
        }
        Ok(())
    }

    /// The all-address lock threshold in force.
    pub fn lock_after_all(&self) -> u32 {
        self.password_lock_after_all
            .unwrap_or(self.password_lock_after.saturating_mul(10))
    }

    /// Each section's checks, in the order of [`SECTIONS`].
    fn validate(&self) -> Result<()> {
        self.validate_listen()?;
        self.validate_push()?;
        self.validate_login()?;
        self.validate_limits()?;
        self.validate_tokens()?;
        self.validate_password()?;
        self.validate_staff()
    }

    /// `[listen]`.
    fn validate_listen(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Config(m.to_owned()));
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

    /// `[push]`.
    fn validate_push(&self) -> Result<()> {
        if !(self.vapid_subject.starts_with("mailto:") || self.vapid_subject.starts_with("https:"))
        {
            return Err(Error::Config(
                "vapid_subject must be a mailto: or https: URI (RFC 8292 §2.1)".into(),
            ));
        }
        Ok(())
    }

    /// `[login]`.
    fn validate_login(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Config(m.to_owned()));
        if self.challenge_ttl < 10 || self.challenge_ttl > 600 {
            return bad("challenge_ttl must be between 10 and 600 seconds");
        }
        self.risk_policy()?;
        if self.push_limit == 0 || self.fatigue_limit == 0 || self.push_window == 0 {
            return bad("push_limit, push_window and fatigue_limit must be positive");
        }
        if self.activation_ttl < 60 {
            return bad("activation_ttl must be at least 60 seconds");
        }
        Ok(())
    }

    /// `[limits]`.
    fn validate_limits(&self) -> Result<()> {
        if self
            .password_lock_after_all
            .is_some_and(|all| all < self.password_lock_after)
        {
            return Err(Error::Config(
                "password_lock_after_all must be at least password_lock_after".into(),
            ));
        }
        Ok(())
    }

    /// `[tokens]`.
    fn validate_tokens(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Config(m.to_owned()));
        if self.token_ttl < 30 || self.token_ttl > 86_400 {
            return bad("token_ttl must be between 30 and 86400 seconds");
        }
        if self.admin_audience.trim().is_empty() || self.admin_audience == self.token_audience {
            return bad("admin_audience must be set and differ from token_audience");
        }
        Ok(())
    }

    /// `[password]`.
    fn validate_password(&self) -> Result<()> {
        if self.argon2_memory_kib < 8 * self.argon2_parallelism.max(1)
            || self.argon2_iterations == 0
        {
            return Err(Error::Config(
                "argon2 parameters are below the algorithm's minimum".into(),
            ));
        }
        Ok(())
    }

    /// `[staff]`.
    fn validate_staff(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Config(m.to_owned()));
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

    /// The public URL, given the address actually bound.
    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        let scheme = if self.tls_cert_file.is_some() {
            "https"
        } else {
            "http"
        };
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{bound}"))
            .trim_end_matches('/')
            .to_owned()
    }

    /// What the domain reads, by section.
    pub fn settings(&self) -> Settings {
        let d = std::time::Duration::from_secs;
        Settings {
            login: LoginSettings {
                challenge_ttl: d(self.challenge_ttl),
                activation_ttl: d(self.activation_ttl),
                push_limit: self.push_limit,
                push_window: d(self.push_window),
                fatigue_limit: self.fatigue_limit,
                fatigue_pause: d(self.fatigue_pause),
            },
            limits: LimitSettings {
                rate_window: d(self.rate_window),
                password_delay_after: self.password_delay_after,
                password_lock_after: self.password_lock_after,
                password_lock_after_all: self.lock_after_all(),
                ip_failed_limit: self.ip_failed_limit,
                ip_login_limit: self.ip_login_limit,
                ip_enroll_limit: self.ip_enroll_limit,
                ip_device_limit: self.ip_device_limit,
            },
            tokens: TokenSettings {
                token_ttl: d(self.token_ttl),
                token_audience: self.token_audience.clone(),
                admin_audience: self.admin_audience.clone(),
            },
            oidc: OidcSettings {
                clients: self.clients.clone(),
                session_ttl: d(self.oidc_session_ttl),
                refresh_ttl: d(self.oidc_refresh_ttl),
            },
            staff: StaffSettings {
                four_eyes_reset: self.four_eyes_reset,
                bootstrap_token: self.bootstrap_token.clone(),
                audit_reader_token: self.audit_reader_token.clone(),
            },
        }
    }

    /// The login risk policy (checked when the configuration was loaded).
    pub fn risk_policy(&self) -> Result<RiskPolicy> {
        RiskPolicy::parse(
            &self.risk_weights,
            self.risk_escalate_at,
            self.risk_suppress_at,
        )
    }

    /// All hosts push may go to.
    pub fn push_hosts(&self) -> Vec<String> {
        DEFAULT_PUSH_HOSTS
            .iter()
            .map(|h| (*h).to_owned())
            .chain(
                self.push_allowed_hosts
                    .iter()
                    .map(|h| h.trim().to_ascii_lowercase()),
            )
            .filter(|h| !h.is_empty())
            .collect()
    }
}

/// Environment values are strings; numbers and booleans are parsed the way
/// TOML would read them, so `POTVRDA_CHALLENGE_TTL=30` is an integer.
fn figment_value(v: &str) -> figment::value::Value {
    use figment::value::Value;
    match v.parse::<Value>() {
        Ok(val @ (Value::Num(..) | Value::Bool(..))) => val,
        _ => Value::from(v.to_owned()),
    }
}

fn read_secret(path: &Path) -> Result<SecretString> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
    Ok(SecretString::from(text.trim().to_owned()))
}

fn ser_secret_opt<S: serde::Serializer>(
    v: &Option<SecretString>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match v {
        Some(secret) => s.serialize_some(secret.expose_secret()),
        None => s.serialize_none(),
    }
}

fn de_list<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        One(String),
        Many(Vec<String>),
    }
    Ok(match List::deserialize(d)? {
        List::One(s) => s
            .split(',')
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .collect(),
        List::Many(v) => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn security_round_2_settings_are_checked_with_their_reasons() {
        let load = |pairs: &[(&str, &str)]| Config::load(None, env(pairs), &Overrides::default());
        // A deployment that raised the per-address lock alone still starts.
        let cfg = load(&[("POTVRDA_PASSWORD_LOCK_AFTER", "1000")]).expect("loads");
        assert_eq!(cfg.lock_after_all(), 10_000);
        assert_eq!(load(&[]).expect("defaults").lock_after_all(), 100);
        for (pairs, message) in [
            (
                vec![("POTVRDA_PASSWORD_LOCK_AFTER_ALL", "5")],
                "password_lock_after_all must be at least password_lock_after",
            ),
            (
                vec![("POTVRDA_ADMIN_AUDIENCE", "potvrda")],
                "admin_audience must be set and differ from token_audience",
            ),
            (
                vec![("POTVRDA_AUDIT_READER_TOKEN", "short")],
                "audit_reader_token must be at least 16 characters",
            ),
            (
                vec![
                    ("POTVRDA_AUDIT_READER_TOKEN", "same-token-0123456789"),
                    ("POTVRDA_BOOTSTRAP_TOKEN", "same-token-0123456789"),
                ],
                "audit_reader_token must differ from bootstrap_token",
            ),
            (
                vec![("POTVRDA_TRUSTED_PROXIES", "10.0.0.0/8,nginx")],
                "trusted_proxies must be IP addresses or CIDR ranges",
            ),
            (
                vec![("POTVRDA_RISK_WEIGHTS", "luck=3")],
                "risk_weights: unknown reason \"luck\"",
            ),
            (
                vec![
                    ("POTVRDA_RISK_ESCALATE_AT", "5"),
                    ("POTVRDA_RISK_SUPPRESS_AT", "3"),
                ],
                "risk_suppress_at at least risk_escalate_at",
            ),
        ] {
            let err = load(&pairs).expect_err(message);
            assert!(err.to_string().contains(message), "{err}");
        }
        let cfg = load(&[("POTVRDA_TRUSTED_PROXIES", "172.30.0.10, 10.0.0.0/8")]).expect("loads");
        assert_eq!(cfg.trusted_proxies.len(), 2);
    }

    #[test]
    fn sections_and_their_flat_aliases_read_alike() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("potvrda.toml");
        std::fs::write(
            &file,
            "[login]\nchallenge_ttl = 45\n[tokens]\ntoken_ttl = 900\n\
             [oidc]\nsession_ttl = 7200\n[listen]\nlisten = \"127.0.0.1:9000\"\n\
             [log]\nformat = \"json\"\n",
        )
        .expect("write");
        let cfg = Config::load(
            Some(&file),
            env(&[
                ("POTVRDA_LIMITS__RATE_WINDOW", "120"),
                ("POTVRDA_PASSWORD_DELAY_AFTER", "3"),
            ]),
            &Overrides::default(),
        )
        .expect("loads");
        assert_eq!(
            (cfg.challenge_ttl, cfg.token_ttl, cfg.oidc_session_ttl),
            (45, 900, 7200)
        );
        assert_eq!(cfg.listen.port(), 9000);
        assert_eq!(cfg.log_format, LogFormat::Json);
        assert_eq!((cfg.rate_window, cfg.password_delay_after), (120, 3));
        for (text, vars, message) in [
            (
                "[limits]\nrate_windows = 5\n",
                vec![],
                "unknown key rate_windows in [limits]",
            ),
            (
                "rate_window = 5\n[limits]\nrate_window = 6\n",
                vec![],
                "rate_window is set twice",
            ),
            (
                "",
                vec![("POTVRDA_LIMIT__RATE_WINDOW", "5")],
                "unknown configuration section [limit]",
            ),
            (
                "",
                vec![("POTVRDA_TOKENS__CHALLENGE_TTL", "30")],
                "unknown key challenge_ttl in [tokens]",
            ),
            (
                "[login]\nchallenge_ttl = 5\n",
                vec![],
                "challenge_ttl must be between 10 and 600",
            ),
        ] {
            std::fs::write(&file, text).expect("write");
            let err =
                Config::load(Some(&file), env(&vars), &Overrides::default()).expect_err(message);
            assert!(err.to_string().contains(message), "{message}: {err}");
        }
    }

    #[test]
    fn every_key_lives_in_exactly_one_section() {
        let defaults = serde_json::to_value(Config::default()).expect("json");
        let keys: Vec<String> = defaults
            .as_object()
            .expect("a table")
            .keys()
            .filter(|k| *k != "clients")
            .cloned()
            .collect();
        for key in &keys {
            let homes = SECTIONS
                .iter()
                .filter(|(_, ks)| ks.contains(&key.as_str()))
                .count();
            assert_eq!(homes, 1, "{key} is in {homes} sections");
        }
        let listed: usize = SECTIONS.iter().map(|(_, ks)| ks.len()).sum();
        assert_eq!(listed, keys.len(), "every listed key is a key");
    }

    #[test]
    fn defaults_then_toml_then_env_then_cli() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("potvrda.toml");
        std::fs::write(
            &file,
            "challenge_ttl = 45\ntoken_ttl = 900\nlisten = \"127.0.0.1:9000\"\n",
        )
        .expect("write");
        let cfg = Config::load(
            Some(&file),
            env(&[
                ("POTVRDA_TOKEN_TTL", "1200"),
                ("POTVRDA_PUSH_ALLOWED_HOSTS", "push.example.org, 127.0.0.1"),
                ("POTVRDA_LISTEN", "127.0.0.1:9001"),
                ("POTVRDA_CONFIG", "ignored"),
                ("POTVRDA_TEST_REDIS_URL", "ignored"),
                ("HOME", "/root"),
            ]),
            &Overrides {
                listen: Some("127.0.0.1:9002".parse().expect("addr")),
                ..Overrides::default()
            },
        )
        .expect("loads");
        assert_eq!(cfg.challenge_ttl, 45, "TOML over default");
        assert_eq!(cfg.token_ttl, 1200, "env over TOML");
        assert_eq!(cfg.listen.port(), 9002, "CLI over env");
        assert_eq!(cfg.activation_ttl, 72 * 3600, "default");
        assert_eq!(
            cfg.push_allowed_hosts,
            vec!["push.example.org", "127.0.0.1"]
        );
        assert!(cfg.push_hosts().contains(&"fcm.googleapis.com".to_owned()));
    }

    #[test]
    fn secrets_come_from_files_and_never_print() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tok = dir.path().join("tok");
        std::fs::write(&tok, "s3cret-bootstrap-token-value\n").expect("write");
        let cfg = Config::load(
            None,
            env(&[("POTVRDA_BOOTSTRAP_TOKEN_FILE", tok.to_str().expect("utf8"))]),
            &Overrides::default(),
        )
        .expect("loads");
        assert_eq!(
            cfg.bootstrap_token
                .as_ref()
                .map(|s| s.expose_secret().to_owned()),
            Some("s3cret-bootstrap-token-value".into())
        );
        assert!(!format!("{cfg:?}").contains("s3cret"));
    }

    #[test]
    fn oidc_clients_come_as_json_from_the_environment_and_are_checked() {
        let ok = r#"[{"client_id":"portal","client_secret":"s3cret-client-secret-value","redirect_uris":["https://portal.example/cb"],"name":"Portal"},
                     {"client_id":"app","redirect_uris":["https://app.example/cb"],"name":"App","id_token_signed_response_alg":"ES256"}]"#;
        let cfg = Config::load(
            None,
            env(&[("POTVRDA_OIDC_CLIENTS", ok)]),
            &Overrides::default(),
        )
        .expect("loads");
        assert_eq!(cfg.clients.len(), 2);
        assert!(!cfg.clients[0].is_public() && cfg.clients[1].is_public());
        assert_eq!(
            cfg.clients[0].id_token_signed_response_alg, "RS256",
            "the default"
        );
        assert!(
            !format!("{cfg:?}").contains("s3cret"),
            "secrets never print"
        );
        let bad = [
            r#"[{"client_id":"a","redirect_uris":["https://a.example/cb#x"],"name":"A"}]"#,
            r#"[{"client_id":"a","redirect_uris":["/relative"],"name":"A"}]"#,
            r#"[{"client_id":"a","redirect_uris":[],"name":"A"}]"#,
            r#"[{"client_id":"a","client_secret":"short","redirect_uris":["https://a.example/cb"],"name":"A"}]"#,
            r#"[{"client_id":"a","redirect_uris":["https://a.example/cb"],"name":"A","id_token_signed_response_alg":"HS256"}]"#,
            r#"[{"client_id":"a","redirect_uris":["https://a.example/cb"],"name":"A"},{"client_id":"a","redirect_uris":["https://a.example/cb"],"name":"B"}]"#,
            r#"[{"client_id":"a","redirect_uris":["https://a.example/cb"],"name":"A","colour":"red"}]"#,
            r#"[{"client_id":"potvrda","redirect_uris":["https://a.example/cb"],"name":"Same as token_audience"}]"#,
            r#"[{"client_id":"potvrda-admin","redirect_uris":["https://a.example/cb"],"name":"Same as admin_audience"}]"#,
        ];
        for b in bad {
            assert!(
                Config::load(
                    None,
                    env(&[("POTVRDA_OIDC_CLIENTS", b)]),
                    &Overrides::default()
                )
                .is_err(),
                "{b}"
            );
        }
        // A JSON error names the position, not the text around it (it may hold a secret).
        let err = Config::load(
            None,
            env(&[(
                "POTVRDA_OIDC_CLIENTS",
                r#"[{"client_secret":"s3cret-in-broken-json" "#,
            )]),
            &Overrides::default(),
        )
        .expect_err("broken JSON");
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    #[test]
    fn invalid_values_are_refused() {
        for (k, v) in [
            ("POTVRDA_CHALLENGE_TTL", "1"),
            ("POTVRDA_BOOTSTRAP_TOKEN", "short"),
            ("POTVRDA_VAPID_SUBJECT", "me"),
            ("POTVRDA_NO_SUCH_KEY", "1"),
            ("POTVRDA_LISTEN", "nowhere"),
            ("POTVRDA_CORS_ALLOWED_ORIGINS", "*"),
            (
                "POTVRDA_CORS_ALLOWED_ORIGINS",
                "https://portal.example/login",
            ),
            ("POTVRDA_TLS_CERT_FILE", "/etc/potvrda/cert.pem"),
            ("POTVRDA_TRUSTED_PROXIES", "portal.example"),
        ] {
            assert!(
                Config::load(None, env(&[(k, v)]), &Overrides::default()).is_err(),
                "{k}={v}"
            );
        }
    }
}
