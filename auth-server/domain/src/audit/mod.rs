//! The audit trail: one append-only event per security act, kept in the
//! store (a redb table on the embedded store, Redis Streams on Redis) for
//! `audit_retention` seconds and read back by administrators.
//!
//! Events carry ids, reasons and counts — never a password, an activation
//! code, a login secret or a token (the `jti` of a token is its id, not the
//! token). Writing is awaited, so an act the API confirmed is on disk (or in
//! Redis) before the answer; a failed write is logged at error level and
//! counted, and never undoes the act it describes.

pub mod chain;
pub mod verify;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use jsonwebtoken::{Algorithm, Header};
use potvrda_proto::api::{
    AuditCheckpointClaims, AuditEvent, AuditKind, Severity, TYP_AUDIT_CHECKPOINT,
};
use serde_json::{Map, Value};

use crate::clock::Clock;
use crate::error::Result;
use crate::keys::EsKey;
use crate::ports::Meter;
use crate::store::{AuditFilter, AuditPage, Store};
use chain::ChainName;

/// Longest `User-Agent` kept, in bytes.
const MAX_USER_AGENT: usize = 256;

/// Who sent a request, as far as the audit trail is concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The client address (after trusted proxies).
    pub ip: Option<IpAddr>,
    /// The `User-Agent`, cut to 256 bytes, without control characters.
    pub user_agent: Option<String>,
}

impl Caller {
    /// A caller from its address and raw `User-Agent`.
    pub fn new(ip: Option<IpAddr>, user_agent: Option<&str>) -> Self {
        let user_agent = user_agent
            .map(|ua| {
                let clean: String = ua.chars().filter(|c| !c.is_control()).collect();
                let mut end = clean.len().min(MAX_USER_AGENT);
                while !clean.is_char_boundary(end) {
                    end -= 1;
                }
                clean[..end].to_owned()
            })
            .filter(|ua| !ua.is_empty());
        Self { ip, user_agent }
    }
}

/// An event being built.
#[derive(Debug, Clone)]
pub struct Event(AuditEvent);

impl Event {
    /// An event of `kind` at `at`, with the kind's usual severity.
    pub fn new(kind: AuditKind, at: i64) -> Self {
        Self(AuditEvent {
            id: String::new(),
            at,
            kind,
            severity: severity_of(kind),
            actor_id: None,
            user_id: None,
            municipality: None,
            ip: None,
            user_agent: None,
            detail: Map::new(),
            chain: None,
        })
    }

    /// The citizen concerned.
    pub fn user(mut self, user_id: &str) -> Self {
        self.0.user_id = Some(user_id.to_owned());
        self
    }

    /// Who acted on the citizen's behalf.
    pub fn actor(mut self, actor_id: &str) -> Self {
        self.0.actor_id = Some(actor_id.to_owned());
        self
    }

    /// The actor's municipality.
    pub fn municipality(mut self, code: &str) -> Self {
        self.0.municipality = Some(code.to_owned());
        self
    }

    /// Where the request came from.
    pub fn caller(mut self, caller: &Caller) -> Self {
        self.0.ip = caller.ip.map(|ip| ip.to_string());
        self.0.user_agent.clone_from(&caller.user_agent);
        self
    }

    /// A kind-specific fact.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.detail.insert(key.to_owned(), value.into());
        self
    }

    /// The event as it will be stored.
    pub fn into_inner(self) -> AuditEvent {
        self.0
    }

    /// What a store records when retention drops a month of the trail:
    /// the month (`2026-01`), how many events it held and the national
    /// chain's last link in it (PROTOCOL.md, "Verifying").
    pub fn month_dropped(
        month: &str,
        events: u64,
        last: Option<&potvrda_proto::api::ChainLink>,
        at: i64,
    ) -> AuditEvent {
        let mut e = Self::new(AuditKind::AuditMonthDropped, at)
            .with("month", month)
            .with("events", events);
        if let Some(last) = last {
            e = e
                .with("last_n", last.n)
                .with("last_hash", last.hash.as_str());
        }
        e.into_inner()
    }
}

/// The usual severity of a kind.
pub fn severity_of(kind: AuditKind) -> Severity {
    match kind {
        AuditKind::EnrollmentFailed
        | AuditKind::LoginFailed
        | AuditKind::LoginDenied
        | AuditKind::LoginSuperseded
        | AuditKind::PushFailed
        | AuditKind::FatiguePaused
        | AuditKind::PasswordLocked => Severity::Warning,
        AuditKind::AccountLocked
        | AuditKind::StaffDeactivated
        | AuditKind::RecoveryCodeUsed
        | AuditKind::OfflineCodeUsed
        | AuditKind::DeviceAddApproved
        | AuditKind::ClientSecretRotated
        | AuditKind::ClientRetired
        | AuditKind::LogoutUndelivered
        | AuditKind::SubjectResolved => Severity::Warning,
        AuditKind::GrantRevoked | AuditKind::FraudReported | AuditKind::FourEyesRefused => {
            Severity::High
        }
        _ => Severity::Info,
    }
}

/// Writes and reads the trail.
pub struct Audit {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    metrics: Arc<dyn Meter>,
    retention: i64,
    checkpoints: Option<Checkpoints>,
}

/// Who signs the checkpoints, how often.
struct Checkpoints {
    key: Arc<EsKey>,
    issuer: String,
    every: i64,
    /// When this instance last signed (Unix seconds; 0: not yet).
    last: AtomicI64,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl Audit {
    /// A trail kept for `retention`.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        metrics: Arc<dyn Meter>,
        retention: std::time::Duration,
    ) -> Self {
        Self {
            store,
            clock,
            metrics,
            retention: i64::try_from(retention.as_secs()).unwrap_or(i64::MAX),
            checkpoints: None,
        }
    }

    /// Sign a checkpoint of every chain that moved, at most every `every`
    /// (checked after each event and by [`Audit::checkpoint_if_due`]).
    pub fn with_checkpoints(
        mut self,
        key: Arc<EsKey>,
        issuer: String,
        every: std::time::Duration,
    ) -> Self {
        self.checkpoints = Some(Checkpoints {
            key,
            issuer,
            every: i64::try_from(every.as_secs()).unwrap_or(i64::MAX).max(1),
            last: AtomicI64::new(0),
        });
        self
    }

    /// Append an event (durably, before returning). A failure is logged and
    /// counted: the act it describes has already happened.
    pub async fn record(&self, event: Event) {
        self.append(event.into_inner()).await;
        self.checkpoint_if_due().await;
    }

    async fn append(&self, event: AuditEvent) -> bool {
        let retain_from = self.clock.now().saturating_sub(self.retention);
        match self.store.append_audit(&event, retain_from).await {
            Ok(_) => {
                self.metrics.audit_written(kind_name(event.kind));
                true
            }
            Err(e) => {
                self.metrics.audit_failed();
                tracing::error!(kind = kind_name(event.kind), user_id = event.user_id, error = %e, "audit event could not be written");
                false
            }
        }
    }

    /// Sign the moved chains if the interval has passed since this
    /// instance's last checkpoint; the number of checkpoints written.
    pub async fn checkpoint_if_due(&self) -> usize {
        let Some(cp) = &self.checkpoints else {
            return 0;
        };
        let now = self.clock.now();
        let last = cp.last.load(Ordering::Acquire);
        if now < last.saturating_add(cp.every)
            || cp
                .last
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return 0;
        }
        match self.checkpoint(cp, now).await {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "audit checkpoint could not be signed");
                0
            }
        }
    }

    /// One checkpoint event per chain with events since its last checkpoint:
    /// the municipal ones first, then the national one over them.
    async fn checkpoint(&self, cp: &Checkpoints, now: i64) -> Result<usize> {
        let mut written = 0;
        let municipal = self.store.audit_heads().await?.unanchored();
        for (chain, head) in municipal
            .into_iter()
            .filter(|(c, _)| *c != ChainName::National)
        {
            let event = checkpoint_event(&cp.key, &cp.issuer, &chain, &head, now)?;
            written += usize::from(self.append(event).await);
        }
        let national = self.store.audit_heads().await?.national;
        if national.n > 0 && !national.anchored {
            let event =
                checkpoint_event(&cp.key, &cp.issuer, &ChainName::National, &national, now)?;
            written += usize::from(self.append(event).await);
        }
        Ok(written)
    }

    /// Events matching `filter`, oldest first.
    /// Events past the retention are never shown, whether or not the store
    /// has dropped them yet (Redis trims streams in whole nodes).
    pub async fn read(&self, filter: &AuditFilter) -> Result<AuditPage> {
        let oldest = self.clock.now().saturating_sub(self.retention);
        let mut filter = filter.clone();
        filter.since = Some(filter.since.map_or(oldest, |s| s.max(oldest)));
        self.store.audit_events(&filter).await
    }
}

/// The checkpoint event of `chain` at `head`: its claims signed with `key`.
pub fn checkpoint_event(
    key: &EsKey,
    issuer: &str,
    chain: &ChainName,
    head: &chain::Head,
    now: i64,
) -> Result<AuditEvent> {
    let claims = AuditCheckpointClaims {
        iss: issuer.to_owned(),
        chain: chain.to_string(),
        n: head.n,
        hash: hex::encode(head.hash),
        iat: now,
    };
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some(TYP_AUDIT_CHECKPOINT.into());
    header.kid = Some(key.kid.clone());
    let jws = jsonwebtoken::encode(&header, &claims, &key.encoding)?;
    let mut event = Event::new(AuditKind::AuditCheckpoint, now)
        .with("chain", claims.chain)
        .with("n", claims.n)
        .with("hash", claims.hash)
        .with("jws", jws);
    if let ChainName::Municipality(code) = chain {
        event = event.municipality(code);
    }
    Ok(event.into_inner())
}

/// The snake_case name of a kind (for metrics labels and log fields).
pub fn kind_name(kind: AuditKind) -> &'static str {
    match kind {
        AuditKind::CitizenCreated => "citizen_created",
        AuditKind::DeviceEnrolled => "device_enrolled",
        AuditKind::EnrollmentFailed => "enrollment_failed",
        AuditKind::LoginFailed => "login_failed",
        AuditKind::LoginStarted => "login_started",
        AuditKind::LoginSuperseded => "login_superseded",
        AuditKind::PushSent => "push_sent",
        AuditKind::PushFailed => "push_failed",
        AuditKind::LoginApproved => "login_approved",
        AuditKind::LoginDenied => "login_denied",
        AuditKind::LoginExpired => "login_expired",
        AuditKind::FatiguePaused => "fatigue_paused",
        AuditKind::TokenIssued => "token_issued",
        AuditKind::GrantRevoked => "grant_revoked",
        AuditKind::SessionEnded => "session_ended",
        AuditKind::MunicipalityCreated => "municipality_created",
        AuditKind::StaffCreated => "staff_created",
        AuditKind::StaffDeactivated => "staff_deactivated",
        AuditKind::AccountLocked => "account_locked",
        AuditKind::AccountUnlocked => "account_unlocked",
        AuditKind::FraudReported => "fraud_reported",
        AuditKind::DeviceRevoked => "device_revoked",
        AuditKind::AccountReset => "account_reset",
        AuditKind::PasswordChanged => "password_changed",
        AuditKind::RecoveryCodesIssued => "recovery_codes_issued",
        AuditKind::RecoveryCodeUsed => "recovery_code_used",
        AuditKind::OfflineCodeUsed => "offline_code_used",
        AuditKind::DeviceAddApproved => "device_add_approved",
        AuditKind::ResetRequested => "reset_requested",
        AuditKind::PasswordLocked => "password_locked",
        AuditKind::CitizensSearched => "citizens_searched",
        AuditKind::CitizenViewed => "citizen_viewed",
        AuditKind::FourEyesRefused => "four_eyes_refused",
        AuditKind::ClientRegistered => "client_registered",
        AuditKind::ClientUpdated => "client_updated",
        AuditKind::ClientSecretRotated => "client_secret_rotated",
        AuditKind::ClientRetired => "client_retired",
        AuditKind::TokenRevoked => "token_revoked",
        AuditKind::LogoutUndelivered => "logout_undelivered",
        AuditKind::SubjectResolved => "subject_resolved",
        AuditKind::ConsentGiven => "consent_given",
        AuditKind::AuditMonthDropped => "audit_month_dropped",
        AuditKind::AuditCheckpoint => "audit_checkpoint",
        _ => "other",
    }
}

/// Parse an event id `<ms>-<seq>`.
pub fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_match_the_wire() {
        for kind in [
            AuditKind::CitizenCreated,
            AuditKind::DeviceEnrolled,
            AuditKind::EnrollmentFailed,
            AuditKind::LoginFailed,
            AuditKind::LoginStarted,
            AuditKind::LoginSuperseded,
            AuditKind::PushSent,
            AuditKind::PushFailed,
            AuditKind::LoginApproved,
            AuditKind::LoginDenied,
            AuditKind::LoginExpired,
            AuditKind::FatiguePaused,
            AuditKind::TokenIssued,
            AuditKind::GrantRevoked,
            AuditKind::SessionEnded,
            AuditKind::MunicipalityCreated,
            AuditKind::StaffCreated,
            AuditKind::StaffDeactivated,
            AuditKind::AccountLocked,
            AuditKind::AccountUnlocked,
            AuditKind::FraudReported,
            AuditKind::DeviceRevoked,
            AuditKind::AccountReset,
            AuditKind::PasswordChanged,
            AuditKind::RecoveryCodesIssued,
            AuditKind::RecoveryCodeUsed,
            AuditKind::OfflineCodeUsed,
            AuditKind::DeviceAddApproved,
            AuditKind::ResetRequested,
            AuditKind::PasswordLocked,
            AuditKind::CitizensSearched,
            AuditKind::CitizenViewed,
            AuditKind::FourEyesRefused,
            AuditKind::ClientRegistered,
            AuditKind::ClientUpdated,
            AuditKind::ClientSecretRotated,
            AuditKind::ClientRetired,
            AuditKind::TokenRevoked,
            AuditKind::LogoutUndelivered,
            AuditKind::SubjectResolved,
            AuditKind::ConsentGiven,
            AuditKind::AuditMonthDropped,
            AuditKind::AuditCheckpoint,
        ] {
            let wire = serde_json::to_value(kind).expect("serialises");
            assert_eq!(wire, Value::from(kind_name(kind)));
        }
    }

    #[test]
    fn user_agents_are_cut_and_cleaned() {
        let long = format!("Mozilla\n{}", "ž".repeat(300));
        let c = Caller::new(None, Some(&long));
        let ua = c.user_agent.expect("kept");
        assert!(ua.len() <= MAX_USER_AGENT && ua.starts_with("Mozillaž"));
        assert_eq!(Caller::new(None, Some("\r\n")).user_agent, None);
    }

    #[test]
    fn ids_parse() {
        assert_eq!(parse_id("1700000000000-3"), Some((1_700_000_000_000, 3)));
        assert_eq!(parse_id("17-x"), None);
        assert_eq!(parse_id("17"), None);
    }
}
