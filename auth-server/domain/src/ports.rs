//! What the domain needs from the outside world, as traits the server
//! implements: a [`Meter`] for the ops team's counters and a
//! [`PushGateway`] that delivers challenges to phones. Time and randomness
//! are in [`crate::clock`], storage in [`crate::store`], the audit sink in
//! [`crate::audit`].

use std::time::Duration;

use potvrda_proto::api::PushSubscription;

use crate::error::Result;
use crate::store::{Device, PushTarget};

/// Counters and histograms the domain reports (Prometheus in the server).
/// Times are wall-clock milliseconds from the injected clock.
pub trait Meter: Send + Sync {
    /// Pushes paused for an account (fatigue).
    fn fatigue_paused(&self);
    /// An audit event of `kind` was written.
    fn audit_written(&self, kind: &'static str);
    /// An audit event could not be written.
    fn audit_failed(&self);
    /// A login was assessed at risk `level`.
    fn login_risk(&self, level: &'static str);
    /// A password lock began (`scope`: address or username).
    fn password_locked(&self, scope: &'static str);
    /// A login request ended with `result`.
    fn login(&self, result: &'static str);
    /// A password was verified in `d`.
    fn password_verified(&self, d: Duration);
    /// A challenge was opened by this instance.
    fn challenge_opened(&self);
    /// A challenge opened here is no longer open.
    fn challenge_closed(&self);
    /// A challenge was decided (`outcome`) or found expired.
    fn challenge_decided(&self, outcome: &'static str, user_id: &str, created_ms: i64, at_ms: i64);
    /// A phone acknowledged it has the challenge.
    fn challenge_seen(&self, created_ms: i64, at_ms: i64);
    /// A device pulled the challenge.
    fn challenge_fetched(&self, created_ms: i64, at_ms: i64);
    /// A token was handed to the waiting client.
    fn token_issued(&self, decided_ms: i64, at_ms: i64);
    /// A status request parks (`true`) or leaves (`false`).
    fn long_poll(&self, parked: bool);
    /// The system of record answered a query `op` in `d`.
    fn store_query(&self, op: &'static str, d: Duration);
}

/// Counts one parked long-poll while alive.
pub struct LongPoll<'a>(&'a dyn Meter);

impl<'a> LongPoll<'a> {
    /// Park one long-poll on `meter`.
    pub fn park(meter: &'a dyn Meter) -> Self {
        meter.long_poll(true);
        Self(meter)
    }
}

impl Drop for LongPoll<'_> {
    fn drop(&mut self) {
        self.0.long_poll(false);
    }
}

impl std::fmt::Debug for LongPoll<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LongPoll")
    }
}

/// A meter that counts nothing (unit tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoMeter;

impl Meter for NoMeter {
    fn fatigue_paused(&self) {}
    fn audit_written(&self, _: &'static str) {}
    fn audit_failed(&self) {}
    fn login_risk(&self, _: &'static str) {}
    fn password_locked(&self, _: &'static str) {}
    fn login(&self, _: &'static str) {}
    fn password_verified(&self, _: Duration) {}
    fn challenge_opened(&self) {}
    fn challenge_closed(&self) {}
    fn challenge_decided(&self, _: &'static str, _: &str, _: i64, _: i64) {}
    fn challenge_seen(&self, _: i64, _: i64) {}
    fn challenge_fetched(&self, _: i64, _: i64) {}
    fn token_issued(&self, _: i64, _: i64) {}
    fn long_poll(&self, _: bool) {}
    fn store_query(&self, _: &'static str, _: Duration) {}
}

/// One push to deliver: a challenge, or the withdrawal of one.
#[derive(Debug, Clone)]
pub struct PushJob {
    /// The login it belongs to.
    pub login_id: crate::store::LoginId,
    /// The JWS (the plaintext).
    pub payload: String,
    /// When it expires (clock seconds): no delivery after.
    pub expires_at: i64,
    /// When the login was created (wall-clock ms), for the stage metric.
    pub created_ms: i64,
    /// RFC 8030 §5.4 `Topic`, one per login: a push service keeps only the
    /// newest undelivered message of a topic, so a withdrawal replaces its
    /// challenge on a phone that was offline.
    pub topic: String,
    /// A withdrawal: delivered while it is valid, whatever the login's state.
    pub withdrawal: bool,
}

/// Delivers challenges to phones (RFC 8030/8291/8292 in the server).
pub trait PushGateway: Send + Sync {
    /// Check a subscription a device presents: allowed host and scheme,
    /// valid keys.
    fn validate(&self, sub: &PushSubscription) -> Result<PushTarget>;
    /// Deliver `job` to `device` in the background, retrying while the
    /// login is pending and unexpired.
    fn dispatch(&self, device: Device, job: PushJob);
}

/// Tells a CIBA `ping` client that its request is decided (CIBA Core §10.2).
pub trait ClientNotifier: Send + Sync {
    /// POST `{"auth_req_id": …}` to `endpoint` with `Authorization: Bearer
    /// token`, in the background (a few tries; the client can always poll).
    fn ping(&self, endpoint: String, token: potvrda_proto::Secret, auth_req_id: String);
}

/// Fetches the key sets clients publish at their `jwks_uri` (RFC 7591).
#[async_trait::async_trait]
pub trait KeySets: Send + Sync {
    /// The key set at `uri`, as cached; `fresh`: fetched again (for a key id
    /// the cached set lacks), unless that was just done.
    async fn key_set(
        &self,
        uri: &str,
        fresh: bool,
    ) -> crate::error::Result<jsonwebtoken::jwk::JwkSet>;
}

/// Fetches nothing (domain tests): a `jwks_uri` never yields a key.
#[derive(Debug, Default)]
pub struct NoKeySets;

#[async_trait::async_trait]
impl KeySets for NoKeySets {
    async fn key_set(&self, _: &str, _: bool) -> crate::error::Result<jsonwebtoken::jwk::JwkSet> {
        Err(crate::error::Error::InvalidRequest(
            "no key set source".into(),
        ))
    }
}

/// A back-channel logout token for one client (OpenID Connect Back-Channel
/// Logout 1.0 §2.5).
#[derive(Debug, Clone)]
pub struct LogoutJob {
    /// The client told.
    pub client_id: crate::store::ClientId,
    /// Its `backchannel_logout_uri`.
    pub uri: String,
    /// The signed `logout+jwt`.
    pub logout_token: String,
    /// Whose session ended.
    pub user_id: crate::store::UserId,
    /// The provider session that ended.
    pub sid: String,
}

/// Delivers back-channel logout tokens: in the background, retried with
/// back-off, so an unreachable client never holds up a logout.
pub trait LogoutSender: Send + Sync {
    /// Deliver `job`.
    fn send(&self, job: LogoutJob);
}

/// A logout sender that keeps what it was asked to deliver (domain tests).
#[derive(Debug, Default)]
pub struct MemoryLogouts {
    sent: std::sync::Mutex<Vec<LogoutJob>>,
}

impl MemoryLogouts {
    /// Every job so far, oldest first, and forget them.
    pub fn take(&self) -> Vec<LogoutJob> {
        self.sent
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }
}

impl LogoutSender for MemoryLogouts {
    fn send(&self, job: LogoutJob) {
        if let Ok(mut sent) = self.sent.lock() {
            sent.push(job);
        }
    }
}

/// A notifier that keeps what it was asked to send (domain tests).
#[derive(Debug, Default)]
pub struct MemoryNotifier {
    sent: std::sync::Mutex<Vec<(String, String)>>,
    added: tokio::sync::Notify,
}

impl MemoryNotifier {
    /// `(endpoint, auth_req_id)` of every ping so far, oldest first, and forget them.
    pub fn take(&self) -> Vec<(String, String)> {
        self.sent
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }

    /// Wait until a ping was sent, and take them all.
    pub async fn next(&self) -> Vec<(String, String)> {
        loop {
            let added = self.added.notified();
            let sent = self.take();
            if !sent.is_empty() {
                return sent;
            }
            added.await;
        }
    }
}

impl ClientNotifier for MemoryNotifier {
    fn ping(&self, endpoint: String, _token: potvrda_proto::Secret, auth_req_id: String) {
        if let Ok(mut sent) = self.sent.lock() {
            sent.push((endpoint, auth_req_id));
        }
        self.added.notify_one();
    }
}

/// A push gateway that keeps what it was asked to deliver, for domain tests
/// and tools that read challenges from memory.
#[derive(Debug, Default)]
pub struct MemoryPush {
    sent: std::sync::Mutex<Vec<(Device, PushJob)>>,
}

impl MemoryPush {
    /// Everything dispatched so far, oldest first, and forget it.
    pub fn take(&self) -> Vec<(Device, PushJob)> {
        self.sent
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }
}

impl PushGateway for MemoryPush {
    fn validate(&self, sub: &PushSubscription) -> Result<PushTarget> {
        Ok(PushTarget {
            endpoint: sub.endpoint.clone(),
            p256dh: sub.keys.p256dh.clone(),
            auth: sub.keys.auth.clone(),
            declarative: sub.payload == Some(potvrda_proto::api::PushPayload::Declarative),
            locale: sub.locale,
        })
    }

    fn dispatch(&self, device: Device, job: PushJob) {
        if let Ok(mut sent) = self.sent.lock() {
            sent.push((device, job));
        }
    }
}
