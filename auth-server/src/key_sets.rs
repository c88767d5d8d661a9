//! The key sets clients publish at their `jwks_uri` (RFC 7591): fetched
//! with a GET (no redirects, 5 s, at most 64 KiB), cached for five minutes,
//! and fetched again when a JWT names a key id the cached set lacks — at
//! most once every ten seconds per URI, so a stream of unknown key ids
//! cannot make the server a load generator against the client. Times are
//! the injected clock's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::ports::KeySets;

/// How long a fetched set is used (s, on the injected clock).
const TTL: i64 = 300;
/// How soon a set may be fetched again for an unknown key id (s).
const REFRESH_EVERY: i64 = 10;
/// The largest key set taken.
const MAX_BYTES: usize = 64 * 1024;

struct Cached {
    set: JwkSet,
    fetched: i64,
    refreshed: Option<i64>,
}

/// Fetches and caches clients' key sets.
pub struct HttpKeySets {
    http: reqwest::Client,
    cache: Mutex<HashMap<String, Cached>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for HttpKeySets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpKeySets")
    }
}

impl HttpKeySets {
    /// A fetcher with its own client (no redirects, short timeouts).
    pub fn new(clock: Arc<dyn Clock>) -> Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| Error::Internal(format!("http client: {e}")))?;
        Ok(Self {
            http,
            cache: Mutex::new(HashMap::new()),
            clock,
        })
    }

    async fn fetch(&self, uri: &str) -> Result<JwkSet> {
        let unavailable =
            |what: &str| Error::InvalidRequest(format!("the client's jwks_uri {what}"));
        let r = self
            .http
            .get(uri)
            .header("Accept", "application/json, application/jwk-set+json")
            .send()
            .await
            .map_err(|_| unavailable("does not answer"))?;
        if !r.status().is_success() {
            return Err(unavailable("refused"));
        }
        if r.content_length().is_some_and(|n| n > MAX_BYTES as u64) {
            return Err(unavailable("is too large"));
        }
        // Read chunk by chunk, so a body without a length cannot grow past the limit.
        let mut r = r;
        let mut body = Vec::new();
        while let Some(chunk) = r.chunk().await.map_err(|_| unavailable("broke off"))? {
            if body.len() + chunk.len() > MAX_BYTES {
                return Err(unavailable("is too large"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|_| unavailable("is not a JWK set"))
    }
}

#[async_trait::async_trait]
impl KeySets for HttpKeySets {
    async fn key_set(&self, uri: &str, fresh: bool) -> Result<JwkSet> {
        let now = self.clock.now();
        if let Ok(cache) = self.cache.lock()
            && let Some(c) = cache.get(uri)
        {
            let stale = now - c.fetched > TTL;
            let may_refresh = c.refreshed.is_none_or(|r| now - r > REFRESH_EVERY);
            let refetch = stale || (fresh && may_refresh);
            if !refetch {
                return Ok(c.set.clone());
            }
        }
        let set = self.fetch(uri).await?;
        if let Ok(mut cache) = self.cache.lock() {
            let refreshed = if fresh {
                Some(now)
            } else {
                cache.get(uri).and_then(|c| c.refreshed)
            };
            cache.insert(
                uri.to_owned(),
                Cached {
                    set: set.clone(),
                    fetched: now,
                    refreshed,
                },
            );
        }
        tracing::info!(
            keys = set.keys.len(),
            fresh,
            "a client's published key set was fetched"
        );
        Ok(set)
    }
}
