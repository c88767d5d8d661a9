//! What the counter does for a citizen: find them, read their record, list
//! and revoke their devices (resets: `resets.rs`; what a citizen does for
//! themselves: `selfservice.rs`).

use crate::store::{DeviceId, UserId};
use potvrda_proto::api::{
    AuditEvent, AuditKind, CitizenList, CitizenSummary, DeviceList, DeviceSummary, PushStatus, Role,
};

use super::Actor;
use crate::audit::Caller;
use crate::error::{Error, Result};
use crate::store::{AuditFilter, Device, User};

/// Security events the counter shows on a citizen's page, at most.
const RECENT_EVENTS: usize = 30;
/// … from this many days back.
const RECENT_EVENTS_DAYS: i64 = 30;
/// What the counter shows of a citizen's trail.
const SECURITY_KINDS: &[AuditKind] = &[
    AuditKind::LoginStarted,
    AuditKind::LoginApproved,
    AuditKind::LoginDenied,
    AuditKind::LoginExpired,
    AuditKind::LoginFailed,
    AuditKind::FraudReported,
    AuditKind::PasswordLocked,
    AuditKind::DeviceEnrolled,
    AuditKind::DeviceRevoked,
    AuditKind::AccountLocked,
    AuditKind::AccountUnlocked,
    AuditKind::AccountReset,
    AuditKind::PasswordChanged,
    AuditKind::RecoveryCodeUsed,
    AuditKind::OfflineCodeUsed,
    AuditKind::FatiguePaused,
];

/// A citizen's page at the counter.
#[derive(Debug, Clone)]
pub struct CitizenRecord {
    /// The account.
    pub summary: CitizenSummary,
    /// Its devices.
    pub devices: Vec<DeviceSummary>,
    /// The latest security events, newest first; `None` for staff of
    /// another municipality.
    pub events: Option<Vec<AuditEvent>>,
}

/// Search results at most.
const SEARCH_LIMIT: usize = 50;

pub(super) fn summary(d: Device) -> DeviceSummary {
    DeviceSummary {
        device_id: d.id,
        name: d.name,
        platform: d.platform,
        push: match (&d.push, d.push_gone) {
            (None, _) => PushStatus::None,
            (Some(_), true) => PushStatus::Gone,
            (Some(_), false) => PushStatus::Active,
        },
        created_at: d.created_at,
    }
}

pub(super) fn citizen_summary(u: User) -> CitizenSummary {
    CitizenSummary {
        user_id: u.id,
        username: u.username,
        display_name: u.display_name,
        email: u.email,
        phone: u.phone,
        locked: u.locked,
        fraud_reported_at: u.fraud_reported_at,
        pending_reset: None,
        created_at: u.created_at,
    }
}

capability! {
    /// The counter's operations on citizens.
    pub Counter
}

impl Counter<'_> {
    /// The citizen `user_id`, for staff who manage citizens.
    pub(super) async fn citizen_for_staff(&self, user_id: &UserId, by: &Actor) -> Result<User> {
        by.require_staff(&[Role::Official, Role::Admin, Role::Superadmin], false)?;
        self.store
            .user(user_id)
            .await?
            .filter(|u| u.role == Role::Citizen)
            .ok_or(Error::NotFound)
    }

    /// The account of a citizen acting for themselves (403 for any other actor).
    pub(super) async fn me(&self, by: &Actor) -> Result<User> {
        let id = by.citizen()?;
        self.store.user(id).await?.ok_or(Error::Unauthorized)
    }

    /// `GET /v1/admin/citizens?query=`: by username prefix; the search is
    /// audited (reading citizens' records is an act to account for).
    pub async fn search_citizens(
        &self,
        query: &str,
        by: &Actor,
        caller: &Caller,
    ) -> Result<CitizenList> {
        let list = self.find_citizens(query, by).await?;
        self.audit
            .record(
                by.event(AuditKind::CitizensSearched, self.clock.now())
                    .caller(caller)
                    .with("query", query.trim())
                    .with("results", list.citizens.len()),
            )
            .await;
        Ok(list)
    }

    async fn find_citizens(&self, query: &str, by: &Actor) -> Result<CitizenList> {
        by.require_staff(&[Role::Official, Role::Admin, Role::Superadmin], false)?;
        let prefix = query.trim().to_ascii_lowercase();
        if prefix.is_empty() || prefix.len() > 64 {
            return Err(Error::InvalidRequest(
                "query must be 1-64 characters".into(),
            ));
        }
        let citizens = self
            .store
            .search_users(&prefix, SEARCH_LIMIT)
            .await?
            .into_iter()
            .filter(|u| u.role == Role::Citizen)
            .map(citizen_summary)
            .collect();
        Ok(CitizenList { citizens })
    }

    /// The citizen's summary, for staff (not audited: for names on pages
    /// the official already opened).
    pub async fn citizen(&self, user_id: &UserId, by: &Actor) -> Result<CitizenSummary> {
        let mut c = citizen_summary(self.citizen_for_staff(user_id, by).await?);
        c.pending_reset = self.resets().pending_reset(user_id).await?;
        Ok(c)
    }

    /// `GET /v1/admin/citizens/{user_id}`: the summary, audited as a read.
    pub async fn read_citizen(
        &self,
        user_id: &UserId,
        by: &Actor,
        caller: &Caller,
    ) -> Result<CitizenSummary> {
        let c = self.citizen(user_id, by).await?;
        self.record_read(user_id, "summary", by, caller).await;
        Ok(c)
    }

    /// `GET /v1/admin/citizens/{user_id}/devices`, audited as a read.
    pub async fn citizen_devices(
        &self,
        user_id: &UserId,
        by: &Actor,
        caller: &Caller,
    ) -> Result<DeviceList> {
        let devices = self.devices_for_staff(user_id, by).await?;
        self.record_read(user_id, "devices", by, caller).await;
        Ok(devices)
    }

    async fn devices_for_staff(&self, user_id: &UserId, by: &Actor) -> Result<DeviceList> {
        let user = self.citizen_for_staff(user_id, by).await?;
        let devices = self.store.devices_of(&user.id).await?;
        Ok(DeviceList {
            devices: devices.into_iter().map(summary).collect(),
        })
    }

    /// `GET /v1/admin/citizens/{user_id}/events`: the citizen's latest
    /// security events (logins with service, address and outcome, the fraud
    /// report with its context, devices, locks) for staff of the citizen's
    /// municipality and superadmins; audited as a read.
    pub async fn citizen_events(
        &self,
        user_id: &UserId,
        by: &Actor,
        caller: &Caller,
    ) -> Result<Vec<AuditEvent>> {
        let events = self
            .events_for_staff(user_id, by)
            .await?
            .ok_or(Error::Forbidden)?;
        self.record_read(user_id, "events", by, caller).await;
        Ok(events)
    }

    /// The counter's page of a citizen: summary, devices, and (for staff of
    /// the citizen's municipality) the latest security events; one audited read.
    pub async fn citizen_record(
        &self,
        user_id: &UserId,
        by: &Actor,
        caller: &Caller,
    ) -> Result<CitizenRecord> {
        let record = CitizenRecord {
            summary: self.citizen(user_id, by).await?,
            devices: self.devices_for_staff(user_id, by).await?.devices,
            events: self.events_for_staff(user_id, by).await?,
        };
        self.record_read(user_id, "record", by, caller).await;
        Ok(record)
    }

    /// The latest security events of a citizen, newest first; `None` when
    /// `by` is staff of another municipality (the fence).
    async fn events_for_staff(
        &self,
        user_id: &UserId,
        by: &Actor,
    ) -> Result<Option<Vec<AuditEvent>>> {
        let user = self.citizen_for_staff(user_id, by).await?;
        let allowed = match by {
            Actor::Staff {
                role: Role::Superadmin,
                ..
            } => true,
            Actor::Staff {
                municipality: Some(m),
                ..
            } => user.municipality.as_deref() == Some(m.as_str()),
            _ => false,
        };
        if !allowed {
            return Ok(None);
        }
        let now = self.clock.now();
        let page = self
            .audit
            .read(&AuditFilter {
                user_id: Some(user.id.into_string()),
                since: Some(now - RECENT_EVENTS_DAYS * 86_400),
                limit: 1000,
                ..AuditFilter::default()
            })
            .await?;
        let mut events: Vec<AuditEvent> = page
            .events
            .into_iter()
            .filter(|e| SECURITY_KINDS.contains(&e.kind))
            .collect();
        events.reverse();
        events.truncate(RECENT_EVENTS);
        Ok(Some(events))
    }

    async fn record_read(&self, user_id: &UserId, what: &str, by: &Actor, caller: &Caller) {
        self.audit
            .record(
                by.event(AuditKind::CitizenViewed, self.clock.now())
                    .user(user_id)
                    .caller(caller)
                    .with("what", what),
            )
            .await;
    }

    /// Revoke one of `user`'s devices; 404 if it is not theirs.
    pub(super) async fn revoke(
        &self,
        user: &User,
        device_id: &DeviceId,
        by: &Actor,
        caller: &Caller,
    ) -> Result<()> {
        if !self.store.revoke_device(&user.id, device_id).await? {
            return Err(Error::NotFound);
        }
        self.resets().end_sessions(&user.id).await?;
        self.audit
            .record(
                by.event(AuditKind::DeviceRevoked, self.clock.now())
                    .user(&user.id)
                    .caller(caller)
                    .with("device_id", device_id.as_str()),
            )
            .await;
        Ok(())
    }

    /// `DELETE /v1/admin/citizens/{user_id}/devices/{device_id}`.
    pub async fn revoke_citizen_device(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
        by: &Actor,
        caller: &Caller,
    ) -> Result<()> {
        let user = self.citizen_for_staff(user_id, by).await?;
        self.revoke(&user, device_id, by, caller).await
    }
}
