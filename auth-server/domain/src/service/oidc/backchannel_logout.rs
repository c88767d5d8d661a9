//! OpenID Connect Back-Channel Logout 1.0: which clients each of a
//! citizen's provider sessions signed in to, and, when a session ends (an
//! RP-initiated logout) or all of them do (a lock, a fraud report, a reset,
//! a new password, a revoked device), a signed `logout+jwt` for each client
//! registered with a `backchannel_logout_uri`. Delivery is the
//! [`LogoutSender`](crate::ports::LogoutSender)'s: in the background, with
//! retries, never in the citizen's way.

use super::*;
use crate::ports::LogoutJob;
use std::collections::{BTreeMap, BTreeSet};

capability! {
    /// Back-channel logout: the sessions' clients and their logout tokens.
    pub LogoutNotices
}

/// A citizen's provider sessions and the clients each signed in to.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct SessionClients {
    sessions: BTreeMap<String, SessionEntry>,
}

/// One session's clients, and when one last signed in (a session older than
/// a session or a grant can live is dropped at the next write, so the record
/// of a citizen who logs in daily for years stays small).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct SessionEntry {
    clients: BTreeSet<ClientId>,
    at: i64,
}

impl SessionClients {
    /// `client` signed in to `sid` at `now`; sessions last seen `ttl` ago
    /// or longer are dropped. Whether the record must be written: something
    /// changed, or this session's time is older than half of `ttl` (so a
    /// session in daily use is not dropped, and not rewritten at every
    /// sign-in either).
    fn signed_in(&mut self, sid: &str, client: &ClientId, now: i64, ttl: i64) -> bool {
        let before = self.sessions.len();
        self.sessions.retain(|_, e| e.at + ttl > now);
        let entry = self.sessions.entry(sid.to_owned()).or_default();
        let fresh = entry.at + ttl / 2 > now;
        entry.at = now;
        entry.clients.insert(client.clone()) || !fresh || self.sessions.len() != before
    }
}

/// Under the citizen's id.
impl JsonRecord for SessionClients {
    const KIND: Kind = Kind::OidcSessionClients;
    type Id = UserId;
}

/// Back-Channel Logout 1.0 §2.6: the event a logout token carries.
const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How long a logout token is valid (§2.4: short).
const LOGOUT_TOKEN_TTL: i64 = 120;

#[derive(Debug, Serialize)]
struct LogoutClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
    sub: String,
    sid: &'a str,
    events: serde_json::Value,
}

impl LogoutNotices<'_> {
    /// `client` signed in to the session `sid` of `user`.
    pub(crate) async fn remember(&self, user: &UserId, sid: &str, client: &ClientId) -> Result<()> {
        let now = self.clock.now();
        let ttl = secs(
            self.settings
                .oidc
                .refresh_ttl
                .max(self.settings.oidc.session_ttl),
        );
        let records = self.records::<SessionClients>();
        for _ in 0..16 {
            let old = records.read(user, now).await?;
            let mut value = old.as_ref().map(|s| s.value.clone()).unwrap_or_default();
            if !value.signed_in(sid, client, now, ttl) && old.is_some() {
                return Ok(());
            }
            let stored = match &old {
                Some(old) => records.swap(user, old, &value, now + ttl, now).await?,
                None => records.put_new(user, &value, now + ttl, now).await?,
            };
            if stored {
                return Ok(());
            }
        }
        Err(Error::StoreUnavailable(
            "the session's clients are contended".into(),
        ))
    }

    /// The session `sid` ended: tell its clients over the back channel; the
    /// Front-Channel Logout pages the browser loads (with `iss` and `sid`).
    pub(crate) async fn session_ended(&self, user: &UserId, sid: &str) -> Result<Vec<String>> {
        let now = self.clock.now();
        let records = self.records::<SessionClients>();
        for _ in 0..16 {
            let Some(old) = records.read(user, now).await? else {
                return Ok(Vec::new());
            };
            let mut value = old.value.clone();
            let Some(SessionEntry { clients, .. }) = value.sessions.remove(sid) else {
                return Ok(Vec::new());
            };
            let ttl = secs(
                self.settings
                    .oidc
                    .refresh_ttl
                    .max(self.settings.oidc.session_ttl),
            );
            if records.swap(user, &old, &value, now + ttl, now).await? {
                let mut frames = Vec::new();
                for client in clients {
                    frames.extend(self.notify(&client, user, sid).await?);
                }
                return Ok(frames);
            }
        }
        Err(Error::StoreUnavailable(
            "the session's clients are contended".into(),
        ))
    }

    /// Every session of `user` ended (a lock, a fraud report, a reset, a new
    /// password, a revoked device): tell every client of each.
    pub(crate) async fn all_ended(&self, user: &UserId) -> Result<()> {
        let now = self.clock.now();
        let Some(all) = self.records::<SessionClients>().take(user, now).await? else {
            return Ok(());
        };
        // No browser is there to load front-channel pages.
        for (sid, entry) in &all.sessions {
            for client in &entry.clients {
                self.notify(client, user, sid).await?;
            }
        }
        Ok(())
    }

    /// A logout token to `client`, if it registered for them; its
    /// Front-Channel Logout page, if it registered one.
    async fn notify(
        &self,
        client_id: &ClientId,
        user: &UserId,
        sid: &str,
    ) -> Result<Option<String>> {
        let Some(client) = self.provider().client(client_id).await? else {
            return Ok(None);
        };
        let frame = client
            .frontchannel_logout_uri
            .as_deref()
            .map(|uri| redirect_with(uri, &[("iss", self.public_url.as_str()), ("sid", sid)]));
        let Some(uri) = client.backchannel_logout_uri.clone() else {
            return Ok(frame);
        };
        let now = self.clock.now();
        let claims = LogoutClaims {
            iss: &self.public_url,
            aud: client.client_id.as_str(),
            iat: now,
            exp: now + LOGOUT_TOKEN_TTL,
            jti: new_id(self.rng.as_ref())?,
            sub: self.subjects().of(&client, user),
            sid,
            events: serde_json::json!({ LOGOUT_EVENT: {} }),
        };
        let logout_token =
            self.token_endpoint()
                .signed_for(&client, &claims, Some("logout+jwt"))?;
        self.logout_sender.send(LogoutJob {
            client_id: client.client_id.clone(),
            uri,
            logout_token,
            user_id: user.clone(),
            sid: sid.to_owned(),
        });
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(id: &str) -> ClientId {
        serde_json::from_value(serde_json::json!(id)).expect("a client id")
    }

    /// Known answers: what is kept, what is dropped, when it is written.
    #[test]
    fn old_sessions_are_dropped_and_unchanged_ones_not_rewritten() {
        let (a, b) = (client("a"), client("b"));
        let ttl = 100;
        let mut s = SessionClients::default();
        assert!(s.signed_in("s1", &a, 1_000, ttl), "a new session");
        assert!(!s.signed_in("s1", &a, 1_040, ttl), "nothing changed");
        assert!(s.signed_in("s1", &b, 1_041, ttl), "a new client");
        assert!(
            s.signed_in("s1", &b, 1_092, ttl),
            "its time is older than ttl/2"
        );
        assert!(s.signed_in("s2", &a, 1_150, ttl), "a second session");
        assert_eq!(s.sessions.len(), 2, "s1 was seen 58 s ago");
        assert!(s.signed_in("s3", &a, 1_210, ttl), "a third session");
        assert_eq!(
            s.sessions.keys().map(String::as_str).collect::<Vec<_>>(),
            ["s2", "s3"],
            "s1, last seen 100 s ago, is dropped"
        );
        assert!(
            s.signed_in("s3", &a, 1_250, ttl),
            "unchanged and fresh, but s2 (seen 100 s ago) is dropped"
        );
        assert_eq!(s.sessions.len(), 1);
        assert_eq!(s.sessions["s3"].at, 1_250);
        assert!(!s.signed_in("s3", &a, 1_251, ttl), "nothing changed");
    }
}
