//! Configuration: defaults, then a TOML file (`--config` / `POTVRDA_CONFIG`),
//! then `POTVRDA_` environment variables, then command-line flags; by
//! section ([`SECTIONS`]), each section a struct with its own defaults and
//! checks ([`sections`]), durations as durations.
//!
//! Secrets (`bootstrap_token`, `redis_url`, `postgres_url`, `oidc_clients`) may instead be
//! read from a file named by `<key>_file`; they are held as
//! [`SecretString`], whose `Debug` prints `[REDACTED]`, so a logged `Config`
//! leaks nothing.

mod layers;
pub mod sections;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

pub use layers::SECTIONS;
use layers::{env_key, figment_value, flatten_nested, flatten_sections, nest, read_secret};
pub use sections::LogFormat;

use crate::error::{Error, Result};
use crate::service::RiskPolicy;
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

/// The whole configuration, by section; immutable once loaded.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[listen]`.
    pub listen: sections::Listen,
    /// `[store]`.
    pub store: sections::Store,
    /// `[push]`.
    pub push: sections::Push,
    /// `[login]`.
    pub login: sections::Login,
    /// `[limits]`.
    pub limits: sections::Limits,
    /// `[tokens]`.
    pub tokens: sections::Tokens,
    /// `[password]`.
    pub password: sections::Password,
    /// `[oidc]`.
    pub oidc: sections::Oidc,
    /// `[staff]`.
    pub staff: sections::Staff,
    /// `[audit]`.
    pub audit: sections::Audit,
    /// `[log]`.
    pub log: sections::Log,
}

/// Command-line overrides (by flat key); `None` leaves the lower layers alone.
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

fn config_error(e: impl std::fmt::Display) -> Error {
    Error::Config(e.to_string())
}

impl Config {
    /// Load all layers. `file` is the TOML file, if any; `env` is the process
    /// environment (a parameter so tests need not touch the real one). The
    /// layers are merged by flat key, then put into their sections.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Self> {
        let defaults: figment::value::Dict = Figment::from(Serialized::defaults(Config::default()))
            .extract()
            .map_err(config_error)?;
        let mut fig = Figment::from(Serialized::defaults(flatten_nested(defaults)));
        if let Some(file) = file {
            if !file.exists() {
                return Err(Error::Config(format!(
                    "config file {} not found",
                    file.display()
                )));
            }
            let values: figment::value::Dict = Figment::from(Toml::file(file))
                .extract()
                .map_err(config_error)?;
            fig = fig.merge(Serialized::globals(flatten_sections(values)?));
        }
        for (k, v) in env {
            let Some(key) = k.strip_prefix("POTVRDA_").map(str::to_ascii_lowercase) else {
                continue;
            };
            // Settings of the launcher and the test harness, not of the server.
            if key == "config" || key.starts_with("test_") {
                continue;
            }
            fig = fig.merge((env_key(&key)?.as_str(), figment_value(&v)));
        }
        fig = fig.merge(Serialized::globals(overrides));
        let flat: figment::value::Dict = fig.extract().map_err(config_error)?;
        let mut config: Config = Figment::from(Serialized::globals(nest(flat)?))
            .extract()
            .map_err(config_error)?;
        config.resolve_files()?;
        config.validate()?;
        Ok(config)
    }

    fn resolve_files(&mut self) -> Result<()> {
        let staff = &mut self.staff;
        if let Some(path) = &staff.bootstrap_token_file {
            staff.bootstrap_token = Some(read_secret(path)?);
        }
        if let Some(path) = &staff.audit_reader_token_file {
            staff.audit_reader_token = Some(read_secret(path)?);
        }
        if let Some(path) = &self.store.redis_url_file {
            self.store.redis_url = Some(read_secret(path)?);
        }
        if let Some(path) = &self.store.postgres_url_file {
            self.store.postgres_url = Some(read_secret(path)?);
        }
        if let Some(path) = &self.oidc.clients_file {
            self.oidc.clients = Some(read_secret(path)?);
        }
        self.parse_clients()
    }

    /// Parse `[oidc] clients` into `registered` (done by [`Config::load`];
    /// call it when building a `Config` by hand) and check them.
    pub fn parse_clients(&mut self) -> Result<()> {
        if let Some(json) = &self.oidc.clients {
            // The parser's message names a position, never the secret text.
            self.oidc.registered = serde_json::from_str(json.expose_secret()).map_err(|e| {
                // Names of fields and choices are safe to repeat; values are not.
                let text = e.to_string();
                let named = ["unknown field", "unknown variant", "missing field"]
                    .iter()
                    .any(|p| text.starts_with(p));
                let what = if named {
                    format!(": {}", text.split(" at line").next().unwrap_or_default())
                } else {
                    String::new()
                };
                Error::Config(format!(
                    "oidc_clients is not a JSON array of clients (line {}, column {}){what}",
                    e.line(),
                    e.column()
                ))
            })?;
        }
        if !(1..=60).contains(&self.oidc.ciba_interval.as_secs()) {
            return Err(Error::Config(
                "[oidc] ciba_interval must be 1 s to 1 min".into(),
            ));
        }
        let mut ids = std::collections::HashSet::new();
        let tokens = self.token_settings();
        for c in &self.oidc.registered {
            c.check_registration(&tokens).map_err(Error::Config)?;
            if !ids.insert(c.client_id.as_str()) {
                return Err(Error::Config(format!(
                    "oidc client {} is registered twice",
                    c.client_id
                )));
            }
        }
        Ok(())
    }

    /// Each section's checks, in the order of [`SECTIONS`].
    fn validate(&self) -> Result<()> {
        self.listen.validate()?;
        self.store.validate()?;
        self.push.validate()?;
        self.login.validate()?;
        self.risk_policy()?;
        self.limits.validate()?;
        self.tokens.validate()?;
        self.password.validate()?;
        self.staff.validate()
    }

    /// The public URL, given the address actually bound.
    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        let scheme = if self.listen.tls_cert_file.is_some() {
            "https"
        } else {
            "http"
        };
        self.listen
            .public_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{bound}"))
            .trim_end_matches('/')
            .to_owned()
    }

    /// What the domain reads, by section.
    pub fn settings(&self) -> Settings {
        let (login, limits) = (&self.login, &self.limits);
        Settings {
            login: LoginSettings {
                challenge_ttl: login.challenge_ttl,
                activation_ttl: login.activation_ttl,
                push_limit: login.push_limit,
                push_window: login.push_window,
                fatigue_limit: login.fatigue_limit,
                fatigue_pause: login.fatigue_pause,
            },
            limits: LimitSettings {
                rate_window: limits.rate_window,
                password_delay_after: limits.password_delay_after,
                password_lock_after: limits.password_lock_after,
                password_lock_after_all: limits.lock_after_all(),
                ip_failed_limit: limits.ip_failed_limit,
                ip_login_limit: limits.ip_login_limit,
                ip_enroll_limit: limits.ip_enroll_limit,
                ip_device_limit: limits.ip_device_limit,
            },
            tokens: self.token_settings(),
            oidc: OidcSettings {
                clients: self.oidc.registered.clone(),
                session_ttl: self.oidc.session_ttl,
                refresh_ttl: self.oidc.refresh_ttl,
                ciba_interval: self.oidc.ciba_interval,
            },
            staff: StaffSettings {
                four_eyes_reset: self.staff.four_eyes_reset,
                bootstrap_token: self.staff.bootstrap_token.clone(),
                audit_reader_token: self.staff.audit_reader_token.clone(),
            },
        }
    }

    fn token_settings(&self) -> TokenSettings {
        TokenSettings {
            token_ttl: self.tokens.ttl,
            token_audience: self.tokens.audience.clone(),
            admin_audience: self.tokens.admin_audience.clone(),
        }
    }

    /// The login risk policy (checked when the configuration was loaded).
    pub fn risk_policy(&self) -> Result<RiskPolicy> {
        RiskPolicy::parse(
            &self.login.risk_weights,
            self.login.risk_escalate_at,
            self.login.risk_suppress_at,
        )
    }

    /// All hosts push may go to.
    pub fn push_hosts(&self) -> Vec<String> {
        DEFAULT_PUSH_HOSTS
            .iter()
            .map(|h| (*h).to_owned())
            .chain(
                self.push
                    .allowed_hosts
                    .iter()
                    .map(|h| h.trim().to_ascii_lowercase()),
            )
            .filter(|h| !h.is_empty())
            .collect()
    }
}
