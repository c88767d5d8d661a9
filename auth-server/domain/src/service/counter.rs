//! The citizen's lifecycle: what the counter does for a citizen (find them,
//! list and revoke their devices, reissue password and activation code when
//! a phone is lost) and what a citizen does for themselves (their devices,
//! their password).

use crate::store::{DeviceId, UserId};
use potvrda_proto::Secret;
use potvrda_proto::api::{
    AuditEvent, AuditKind, CitizenList, CitizenSummary, CreateCitizenResponse, DeviceList,
    DeviceSummary, PendingReset, PushStatus, Role,
};
use potvrda_proto::limits::MAX_PASSWORD_LEN;
use secrecy::SecretString;

use super::{Actor, CODE_ALPHABET, CODE_LEN, PASSWORD_ALPHABET, code_hash, grouped};
use crate::audit::{Caller, Event};
use crate::clock;
use crate::error::{Error, Result};
use crate::settings::secs;
use crate::store::records::{JsonRecord, Kind};
use crate::store::{Activation, AuditFilter, Device, User};

/// A four-eyes reset waits this long for the second official.
const RESET_REQUEST_TTL: i64 = 30 * 60;

impl JsonRecord for PendingReset {
    const KIND: Kind = Kind::ResetRequest;
    type Id = UserId;
}

/// What a reset at the counter did.
#[derive(Debug)]
pub enum ResetOutcome {
    /// Done: the secrets to print.
    Done(CreateCitizenResponse),
    /// Four eyes: asked; a second official must confirm.
    Requested(PendingReset),
}

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

/// Shortest new password a citizen may choose.
const MIN_PASSWORD_LEN: usize = 10;
/// Search results at most.
const SEARCH_LIMIT: usize = 50;

fn summary(d: Device) -> DeviceSummary {
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

fn citizen_summary(u: User) -> CitizenSummary {
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
    /// The counter's operations on citizens, and a citizen's own.
    pub Counter
}

impl Counter<'_> {
    /// The citizen `user_id`, for staff who manage citizens.
    async fn citizen_for_staff(&self, user_id: &UserId, by: &Actor) -> Result<User> {
        by.require_staff(&[Role::Official, Role::Admin, Role::Superadmin], false)?;
        self.store
            .user(user_id)
            .await?
            .filter(|u| u.role == Role::Citizen)
            .ok_or(Error::NotFound)
    }

    /// The account of a citizen acting for themselves (403 for any other actor).
    async fn me(&self, by: &Actor) -> Result<User> {
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
        c.pending_reset = self.pending_reset(user_id).await?;
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
    async fn revoke(
        &self,
        user: &User,
        device_id: &DeviceId,
        by: &Actor,
        caller: &Caller,
    ) -> Result<()> {
        if !self.store.revoke_device(&user.id, device_id).await? {
            return Err(Error::NotFound);
        }
        self.end_sessions(&user.id).await?;
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

    /// `POST /v1/admin/citizens/{user_id}/reset`: a new initial password and
    /// a new activation code (the earlier code stops working), shown once;
    /// with four eyes configured, a request that a second official confirms.
    pub async fn reset_citizen(
        &self,
        user_id: &UserId,
        by: &Actor,
        caller: &Caller,
    ) -> Result<ResetOutcome> {
        let user = self.citizen_for_staff(user_id, by).await?;
        if !self.settings.staff.four_eyes_reset {
            return Ok(ResetOutcome::Done(
                self.reset(user, by, caller, None).await?,
            ));
        }
        let Actor::Staff {
            id, municipality, ..
        } = by
        else {
            return Err(Error::Forbidden);
        };
        let me = self.store.user(id).await?.ok_or(Error::Unauthorized)?;
        let now = self.clock.now();
        let pending = PendingReset {
            request_id: super::new_id(self.rng.as_ref())?,
            requested_by: me.id,
            requested_by_name: me.display_name,
            municipality: municipality.clone(),
            requested_at: now,
            expires_at: now + RESET_REQUEST_TTL,
        };
        // One pending reset per citizen: a new request replaces the last.
        self.records()
            .put(&user.id, &pending, pending.expires_at)
            .await?;
        self.audit
            .record(
                by.event(AuditKind::ResetRequested, now)
                    .user(&user.id)
                    .caller(caller)
                    .with("request_id", pending.request_id.as_str()),
            )
            .await;
        Ok(ResetOutcome::Requested(pending))
    }

    /// The reset waiting for a second official, if any.
    pub(super) async fn pending_reset(&self, user_id: &UserId) -> Result<Option<PendingReset>> {
        self.records().get(user_id, self.clock.now()).await
    }

    /// `POST /v1/admin/citizens/{user_id}/reset/confirm`: the second
    /// official (not the one who asked; of the same municipality, or a
    /// superadmin) confirms, and gets the secrets to print.
    pub async fn confirm_reset(
        &self,
        user_id: &UserId,
        request_id: &str,
        by: &Actor,
        caller: &Caller,
    ) -> Result<CreateCitizenResponse> {
        let user = self.citizen_for_staff(user_id, by).await?;
        let pending = self
            .pending_reset(user_id)
            .await?
            .filter(|p| super::ct_eq_str(&p.request_id, request_id))
            .ok_or(Error::NotFound)?;
        let Actor::Staff {
            id,
            role,
            municipality,
        } = by
        else {
            return Err(Error::Forbidden);
        };
        if *id == pending.requested_by
            || (*role != Role::Superadmin && *municipality != pending.municipality)
        {
            return Err(Error::SecondOfficialRequired);
        }
        // A second pair of eyes the requester made for the purpose is none
        // (security round 2, finding 6): the confirmer must predate the
        // request and not have been created by the requester.
        let confirmer = self.store.user(id).await?.ok_or(Error::Unauthorized)?;
        let defeated = if confirmer.created_at > pending.requested_at {
            Some("confirmer_created_after_request")
        } else if confirmer.created_by.as_deref() == Some(pending.requested_by.as_str()) {
            Some("confirmer_created_by_requester")
        } else {
            None
        };
        if let Some(reason) = defeated {
            tracing::warn!(reason, "four-eyes confirmation refused");
            self.audit
                .record(
                    by.event(AuditKind::FourEyesRefused, self.clock.now())
                        .user(&user.id)
                        .caller(caller)
                        .with("reason", reason)
                        .with("requested_by", pending.requested_by.as_str())
                        .with("request_id", pending.request_id.as_str()),
                )
                .await;
            return Err(Error::SecondOfficialRequired);
        }
        // Confirmed once: of two racing confirmations, one takes the request.
        let taken = self
            .records::<PendingReset>()
            .take(user_id, self.clock.now())
            .await?;
        if taken.is_none_or(|t| t.request_id != pending.request_id) {
            return Err(Error::NotFound);
        }
        self.reset(user, by, caller, Some(&pending)).await
    }

    async fn reset(
        &self,
        mut user: User,
        by: &Actor,
        caller: &Caller,
        requested: Option<&PendingReset>,
    ) -> Result<CreateCitizenResponse> {
        let rng = self.rng.as_ref();
        let password = grouped(&clock::string(rng, PASSWORD_ALPHABET, 16)?);
        let now = self.clock.now();
        user.password_hash = self
            .hasher
            .hash(SecretString::from(password.clone()))
            .await?;
        user.pwd_change_required = true;
        // Whoever held the old password or the lost phone is out: every
        // session and grant ends, every device is revoked.
        user.generation += 1;
        self.store.update_user(&user).await?;
        let mut revoked = 0;
        for device in self.store.devices_of(&user.id).await? {
            if self.store.revoke_device(&user.id, &device.id).await? {
                revoked += 1;
                self.audit
                    .record(
                        by.event(AuditKind::DeviceRevoked, now)
                            .user(&user.id)
                            .caller(caller)
                            .with("device_id", device.id.as_str())
                            .with("reason", "reset"),
                    )
                    .await;
            }
        }
        let (code, activation) = self.new_activation_code(&user.id).await?;
        let mut event = by
            .event(AuditKind::AccountReset, now)
            .user(&user.id)
            .caller(caller)
            .with("devices_revoked", revoked)
            .with("sessions_ended", true);
        if let Some(p) = requested {
            event = event
                .with("requested_by", p.requested_by.as_str())
                .with("request_id", p.request_id.as_str());
        }
        self.audit.record(event).await;
        Ok(CreateCitizenResponse {
            user_id: user.id,
            username: user.username,
            initial_password: password.into(),
            activation_code: code.into(),
            activation_expires_at: activation.expires_at,
        })
    }

    /// A new activation code for `user_id` (the earlier one stops working):
    /// the code to show once, and its stored form.
    pub(super) async fn new_activation_code(
        &self,
        user_id: &UserId,
    ) -> Result<(String, Activation)> {
        let code = grouped(&clock::string(self.rng.as_ref(), CODE_ALPHABET, CODE_LEN)?);
        let activation = Activation {
            code_hash: code_hash(&code).ok_or_else(|| Error::Internal("generated code".into()))?,
            user_id: user_id.to_owned(),
            expires_at: self.clock.now() + secs(self.settings.login.activation_ttl),
        };
        self.store.new_activation(&activation).await?;
        Ok((code, activation))
    }

    /// End every single sign-on session and OpenID grant of `user_id`.
    pub(super) async fn end_sessions(&self, user_id: &UserId) -> Result<()> {
        if let Some(mut user) = self.store.user(user_id).await? {
            user.generation += 1;
            self.store.update_user(&user).await?;
        }
        Ok(())
    }

    /// `GET /v1/me/devices`.
    pub async fn my_devices(&self, by: &Actor) -> Result<DeviceList> {
        let me = self.me(by).await?;
        let devices = self.store.devices_of(&me.id).await?;
        Ok(DeviceList {
            devices: devices.into_iter().map(summary).collect(),
        })
    }

    /// `PATCH /v1/me/devices/{device_id}`: a new name for one of my devices.
    pub async fn rename_my_device(
        &self,
        device_id: &DeviceId,
        name: &str,
        by: &Actor,
    ) -> Result<()> {
        let me = self.me(by).await?;
        let name = super::clean_text("name", name, 64)?;
        if self.store.rename_device(&me.id, device_id, &name).await? {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }

    /// `DELETE /v1/me/devices/{device_id}`.
    pub async fn revoke_my_device(
        &self,
        device_id: &DeviceId,
        by: &Actor,
        caller: &Caller,
    ) -> Result<()> {
        let me = self.me(by).await?;
        self.revoke(&me, device_id, by, caller).await
    }

    /// `POST /v1/me/password`: the current password, then the new one.
    pub async fn change_password(
        &self,
        current: Secret,
        new: Secret,
        by: &Actor,
        caller: &Caller,
    ) -> Result<()> {
        let mut me = self.me(by).await?;
        if new.expose().len() < MIN_PASSWORD_LEN || new.expose().len() > MAX_PASSWORD_LEN {
            return Err(Error::InvalidRequest(format!(
                "the new password must be {MIN_PASSWORD_LEN}-{MAX_PASSWORD_LEN} bytes"
            )));
        }
        if current.expose().len() > MAX_PASSWORD_LEN {
            return Err(Error::InvalidCredentials);
        }
        // The current password is guarded as at login: a stolen token is no
        // password oracle (security round 2, finding 7).
        let now = self.clock.now();
        let gate = self
            .guards()
            .password_gate(&me.username, Some(&me.id), caller.ip, now)
            .await?;
        if !gate.delay.is_zero() {
            self.clock.sleep(gate.delay).await;
        }
        let same = current == new;
        let ok = self
            .hasher
            .verify(
                SecretString::from(current.expose().to_owned()),
                Some(me.password_hash.clone()),
            )
            .await?
            && gate.locked.is_none();
        if !ok {
            self.guards()
                .password_failed(&gate, Some(&me.id), caller, now)
                .await?;
            self.audit
                .record(
                    Event::new(AuditKind::LoginFailed, self.clock.now())
                        .user(&me.id)
                        .caller(caller)
                        .with("reason", "wrong_current_password"),
                )
                .await;
            return Err(Error::InvalidCredentials);
        }
        if same {
            return Err(Error::InvalidRequest(
                "the new password must differ from the current one".into(),
            ));
        }
        me.password_hash = self
            .hasher
            .hash(SecretString::from(new.expose().to_owned()))
            .await?;
        me.pwd_change_required = false;
        // Sessions and grants made with the old password end.
        me.generation += 1;
        self.store.update_user(&me).await?;
        self.audit
            .record(
                Event::new(AuditKind::PasswordChanged, self.clock.now())
                    .user(&me.id)
                    .caller(caller),
            )
            .await;
        Ok(())
    }
}
