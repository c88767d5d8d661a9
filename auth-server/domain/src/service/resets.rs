//! Reissuing a citizen's password and activation code when a phone is lost
//! (with four eyes when the deployment asks for them), and what a reset
//! ends: devices, sessions, grants.

use super::{Actor, CODE_ALPHABET, CODE_LEN, PASSWORD_ALPHABET, code_hash, grouped};
use crate::audit::Caller;
use crate::clock;
use crate::error::{Error, Result};
use crate::settings::secs;
use crate::store::UserId;
use crate::store::records::{JsonRecord, Kind};
use crate::store::{Activation, User};
use potvrda_proto::api::{AuditKind, CreateCitizenResponse, PendingReset, Role};
use secrecy::SecretString;

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

capability! {
    /// Resets of a citizen's credentials at the counter.
    pub Resets
}

impl Resets<'_> {
    /// `POST /v1/admin/citizens/{user_id}/reset`: a new initial password and
    /// a new activation code (the earlier code stops working), shown once;
    /// with four eyes configured, a request that a second official confirms.
    pub async fn reset_citizen(
        &self,
        user_id: &UserId,
        by: &Actor,
        caller: &Caller,
    ) -> Result<ResetOutcome> {
        let user = self.counter().citizen_for_staff(user_id, by).await?;
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
        let user = self.counter().citizen_for_staff(user_id, by).await?;
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
        self.logout_notices().all_ended(&user.id).await?;
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
            self.logout_notices().all_ended(user_id).await?;
        }
        Ok(())
    }
}
