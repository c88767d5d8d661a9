//! A second device, added by the citizen: the request (with their access
//! token) sends a challenge to the devices they already have, with the
//! service "new device" (`OwnService::NewDevice`, named in the phone's
//! language) and a number; once one of them
//! approves with that number, the request hands out an activation code for
//! the new device, once. A stolen access token alone adds no device.

use crate::store::{LoginId, UserId};
use potvrda_proto::Secret;
use potvrda_proto::api::{
    AuditKind, DeviceAdditionStarted, DeviceAdditionStatus, LoginAudience, LoginStatus,
};
use potvrda_proto::jose::{LoginContext, OwnService};
use serde::{Deserialize, Serialize};

use super::{Actor, new_id};
use crate::audit::{Caller, Event};
use crate::error::{Error, Result};
use crate::store::records::{JsonRecord, Kind};

/// How long after the challenge's expiry the request is kept (to say "expired").
const GRACE: i64 = 120;

#[derive(Serialize, Deserialize)]
struct Addition {
    user_id: UserId,
    login_id: LoginId,
    login_secret: Secret,
}

impl JsonRecord for Addition {
    const KIND: Kind = Kind::DeviceAddition;
    type Id = str;
}

capability! {
    /// Adding a device to an account from a device it already has.
    pub Additions
}

impl Additions<'_> {
    /// `POST /v1/me/devices/additions`.
    pub async fn start_device_addition(
        &self,
        by: &Actor,
        caller: &Caller,
    ) -> Result<DeviceAdditionStarted> {
        let id = by.citizen()?;
        let me = self.store.user(id).await?.ok_or(Error::Unauthorized)?;
        let context = super::login::own_context(
            LoginContext {
                ip: caller.ip.map(|ip| ip.to_string()),
                user_agent: caller.user_agent.clone(),
                ..LoginContext::default()
            },
            OwnService::NewDevice,
        );
        let started = self
            .challenges()
            .challenge(
                &me,
                context,
                LoginAudience::Portal,
                caller,
                &Default::default(),
            )
            .await?;
        let request_id: String = new_id(self.rng.as_ref())?;
        let record = Addition {
            user_id: me.id,
            login_id: started.login_id,
            login_secret: started.login_secret,
        };
        self.records()
            .put(request_id.as_str(), &record, started.expires_at + GRACE)
            .await?;
        Ok(DeviceAdditionStarted {
            request_id,
            number: started.number,
            expires_at: started.expires_at,
            code: started.code,
        })
    }

    /// `GET /v1/me/devices/additions/{request_id}`: the decision, and once
    /// approved, the activation code (once).
    pub async fn device_addition_status(
        &self,
        request_id: &str,
        wait: u64,
        by: &Actor,
        caller: &Caller,
    ) -> Result<DeviceAdditionStatus> {
        let id = by.citizen()?;
        if request_id.is_empty() || request_id.len() > 64 {
            return Err(Error::NotFound);
        }
        let now = self.clock.now();
        let Some(record) = self
            .records::<Addition>()
            .get(request_id, now)
            .await?
            .filter(|r| super::ct_eq_str(&r.user_id, id))
        else {
            return Err(Error::NotFound);
        };
        let (answer, login) = self
            .outcomes()
            .wait_for_decision(
                &record.login_id,
                Some(record.login_secret.expose()),
                wait,
                false,
            )
            .await?;
        let status = |status| DeviceAdditionStatus {
            status,
            activation_code: None,
            activation_expires_at: None,
        };
        match answer.status {
            LoginStatus::Pending => Ok(status(LoginStatus::Pending)),
            LoginStatus::Approved => {
                self.approved(request_id, &record, &login.record.id, caller)
                    .await
            }
            other => {
                self.records::<Addition>().delete(request_id).await?;
                Ok(status(other))
            }
        }
    }

    /// The old phone approved: the approval is spent once (an empty escrow:
    /// no token here; a second reader finds the request gone), and the new
    /// device's activation code is issued.
    async fn approved(
        &self,
        request_id: &str,
        record: &Addition,
        login_id: &LoginId,
        caller: &Caller,
    ) -> Result<DeviceAdditionStatus> {
        let now = self.clock.now();
        let first = self
            .records::<Addition>()
            .take(request_id, now)
            .await?
            .is_some()
            && self
                .store
                .take_token(&record.login_id, b"", now, 0)
                .await?
                .is_some_and(|e| e.is_empty());
        if !first {
            return Err(Error::NotFound);
        }
        let (code, activation) = self.resets().new_activation_code(&record.user_id).await?;
        // The device it enrolls is bound by this addition, not at the counter.
        self.records::<crate::store::records::AdditionActivation>()
            .put(
                activation.code_hash.as_str(),
                &crate::store::records::Marker,
                activation.expires_at,
            )
            .await?;
        self.audit
            .record(
                Event::new(AuditKind::DeviceAddApproved, now)
                    .user(&record.user_id)
                    .caller(caller)
                    .with("request_id", request_id)
                    .with("login_id", login_id.as_str()),
            )
            .await;
        Ok(DeviceAdditionStatus {
            status: LoginStatus::Approved,
            activation_code: Some(code.into()),
            activation_expires_at: Some(activation.expires_at),
        })
    }
}
