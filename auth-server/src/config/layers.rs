//! The layers' keys: the sections, each key's flat alias, and the helpers
//! that read values from the file and the environment.

use std::path::Path;
use std::time::Duration;

use figment::value::{Dict, Value};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serializer};

use crate::error::{Error, Result};

/// The sections of the configuration and their keys, each as
/// `(key, flat alias)`. In the file a key is written in its section —
/// `[limits] rate_window = 300` — by its name or its flat alias
/// (`[oidc] session_ttl` or `[oidc] oidc_session_ttl`); in the environment
/// as `POTVRDA_<SECTION>__<KEY>`. The flat aliases at the top level of the
/// file and `POTVRDA_<FLAT>` are how earlier releases were configured:
/// every existing deployment keeps working.
pub const SECTIONS: &[(&str, &[(&str, &str)])] = &[
    (
        "listen",
        &[
            ("address", "listen"),
            ("public_url", "public_url"),
            ("workers", "workers"),
            ("tls_cert_file", "tls_cert_file"),
            ("tls_key_file", "tls_key_file"),
            ("cors_allowed_origins", "cors_allowed_origins"),
            ("trusted_proxies", "trusted_proxies"),
            ("metrics_listen", "metrics_listen"),
            ("app_dir", "app_dir"),
        ],
    ),
    (
        "store",
        &[
            ("data_dir", "data_dir"),
            ("redis_url", "redis_url"),
            ("redis_url_file", "redis_url_file"),
            ("redis_cluster", "redis_cluster"),
            ("redis_key_prefix", "redis_key_prefix"),
            ("postgres_url", "postgres_url"),
            ("postgres_url_file", "postgres_url_file"),
            ("postgres_pool_size", "postgres_pool_size"),
            ("postgres_acquire_timeout", "postgres_acquire_timeout"),
        ],
    ),
    (
        "push",
        &[
            ("allowed_hosts", "push_allowed_hosts"),
            ("allow_http", "push_allow_http"),
            ("vapid_subject", "vapid_subject"),
            ("vapid_key_file", "vapid_key_file"),
        ],
    ),
    (
        "login",
        &[
            ("challenge_ttl", "challenge_ttl"),
            ("activation_ttl", "activation_ttl"),
            ("push_limit", "push_limit"),
            ("push_window", "push_window"),
            ("fatigue_limit", "fatigue_limit"),
            ("fatigue_pause", "fatigue_pause"),
            ("risk_weights", "risk_weights"),
            ("risk_escalate_at", "risk_escalate_at"),
            ("risk_suppress_at", "risk_suppress_at"),
        ],
    ),
    (
        "limits",
        &[
            ("rate_window", "rate_window"),
            ("password_delay_after", "password_delay_after"),
            ("password_lock_after", "password_lock_after"),
            ("password_lock_after_all", "password_lock_after_all"),
            ("ip_failed_limit", "ip_failed_limit"),
            ("ip_login_limit", "ip_login_limit"),
            ("ip_enroll_limit", "ip_enroll_limit"),
            ("ip_device_limit", "ip_device_limit"),
        ],
    ),
    (
        "tokens",
        &[
            ("ttl", "token_ttl"),
            ("audience", "token_audience"),
            ("admin_audience", "admin_audience"),
            ("key_rotation", "token_key_rotation"),
            ("signing_key_file", "signing_key_file"),
        ],
    ),
    (
        "password",
        &[
            ("memory_kib", "argon2_memory_kib"),
            ("iterations", "argon2_iterations"),
            ("parallelism", "argon2_parallelism"),
            ("hash_concurrency", "hash_concurrency"),
        ],
    ),
    (
        "oidc",
        &[
            ("clients", "oidc_clients"),
            ("clients_file", "oidc_clients_file"),
            ("session_ttl", "oidc_session_ttl"),
            ("refresh_ttl", "oidc_refresh_ttl"),
            ("ciba_interval", "oidc_ciba_interval"),
        ],
    ),
    (
        "staff",
        &[
            ("bootstrap_token", "bootstrap_token"),
            ("bootstrap_token_file", "bootstrap_token_file"),
            ("audit_reader_token", "audit_reader_token"),
            ("audit_reader_token_file", "audit_reader_token_file"),
            ("four_eyes_reset", "four_eyes_reset"),
        ],
    ),
    (
        "audit",
        &[
            ("retention", "audit_retention"),
            ("checkpoint_interval", "audit_checkpoint_interval"),
            ("key_file", "audit_key_file"),
        ],
    ),
    ("log", &[("filter", "log"), ("format", "log_format")]),
];

/// The section and key of a flat alias.
fn home_of(flat: &str) -> Option<(&'static str, &'static str)> {
    SECTIONS.iter().find_map(|(section, keys)| {
        keys.iter()
            .find(|(_, alias)| *alias == flat)
            .map(|(key, _)| (*section, *key))
    })
}

/// The flat alias of `key` in `section` (by its name or its alias), or why
/// there is none.
fn flat_of(section: &str, key: &str) -> Result<&'static str> {
    let Some((name, keys)) = SECTIONS.iter().find(|(name, _)| *name == section) else {
        let names: Vec<&str> = SECTIONS.iter().map(|(n, _)| *n).collect();
        return Err(Error::Config(format!(
            "unknown configuration section [{section}] (the sections: {})",
            names.join(", ")
        )));
    };
    keys.iter()
        .find(|(k, alias)| *k == key || *alias == key)
        .map(|(_, alias)| *alias)
        .ok_or_else(|| {
            let names: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
            Error::Config(format!(
                "unknown key {key} in [{name}] (its keys: {})",
                names.join(", ")
            ))
        })
}

/// The file's values by flat alias (the layers are merged that way, so a
/// flat key and its sectioned twin are one key); a key given both flat and
/// in its section is an error, not a silent choice.
pub(super) fn flatten_sections(file: Dict) -> Result<Dict> {
    let mut flat = Dict::new();
    let put = |key: String, value: Value, flat: &mut Dict| {
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
                    put(flat_of(&name, &key)?.to_owned(), v, &mut flat)?;
                }
            }
            other => put(name, other, &mut flat)?,
        }
    }
    Ok(flat)
}

/// The merged flat values put into their sections, for [`super::Config`].
pub(super) fn nest(flat: Dict) -> Result<Dict> {
    let mut nested = Dict::new();
    for (alias, value) in flat {
        let (section, key) = home_of(&alias)
            .ok_or_else(|| Error::Config(format!("unknown configuration key {alias}")))?;
        let entry = nested
            .entry(section.to_owned())
            .or_insert_with(|| Value::from(Dict::new()));
        if let Value::Dict(_, keys) = entry {
            keys.insert(key.to_owned(), value);
        }
    }
    Ok(nested)
}

/// A section's values by flat alias (the defaults layer).
pub(super) fn flatten_nested(nested: Dict) -> Dict {
    let mut flat = Dict::new();
    for (section, value) in nested {
        if let Value::Dict(_, keys) = value {
            for (key, v) in keys {
                if let Ok(alias) = flat_of(&section, &key) {
                    flat.insert(alias.to_owned(), v);
                }
            }
        }
    }
    flat
}

/// An environment key (after `POTVRDA_`, lower case) as a flat alias:
/// `limits__rate_window` is `rate_window`; a flat key is itself.
pub(super) fn env_key(key: &str) -> Result<String> {
    match key.split_once("__") {
        Some((section, k)) => Ok(flat_of(section, k)?.to_owned()),
        None => Ok(key.to_owned()),
    }
}

/// Environment values are strings; numbers and booleans are parsed the way
/// TOML would read them, so `POTVRDA_CHALLENGE_TTL=30` is an integer.
pub(super) fn figment_value(v: &str) -> Value {
    match v.parse::<Value>() {
        Ok(val @ (Value::Num(..) | Value::Bool(..))) => val,
        _ => Value::from(v.to_owned()),
    }
}

pub(super) fn read_secret(path: &Path) -> Result<SecretString> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
    Ok(SecretString::from(text.trim().to_owned()))
}

pub(super) fn ser_secret_opt<S: Serializer>(
    v: &Option<SecretString>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match v {
        Some(secret) => s.serialize_some(secret.expose_secret()),
        None => s.serialize_none(),
    }
}

pub(super) fn de_list<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<String>, D::Error> {
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

/// Durations: a number of seconds (as every earlier release read them) or
/// a text with units (`"90s"`, `"15m"`, `"8h"`, `"400d"`, `"1h 30m"`);
/// written as seconds. At most a hundred years: every duration is added to
/// a clock reading, which a longer one would overflow.
pub(super) mod duration {
    use super::*;

    /// The longest duration the configuration takes.
    pub(crate) const MAX: Duration = Duration::from_secs(100 * 366 * 86_400);

    pub(crate) fn serialize<S: Serializer>(
        d: &Duration,
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Given {
            Seconds(u64),
            Text(String),
        }
        let given = match Given::deserialize(d)? {
            Given::Seconds(s) => Duration::from_secs(s),
            Given::Text(t) => humantime::parse_duration(t.trim()).map_err(|e| {
                serde::de::Error::custom(format!(
                    "{t:?} is not a duration (seconds, or a number with a unit: 90s, 15m, 8h, 30d): {e}"
                ))
            })?,
        };
        if given > MAX {
            return Err(serde::de::Error::custom(format!(
                "a duration of {} s is longer than a hundred years",
                given.as_secs()
            )));
        }
        Ok(given)
    }
}
