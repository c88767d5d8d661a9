//! What a citizen does for themselves (`/v1/me`): their devices, their
//! password.

use super::Actor;
use super::counter::summary;
use crate::audit::{Caller, Event};
use crate::error::{Error, Result};
use crate::store::DeviceId;
use potvrda_proto::Secret;
use potvrda_proto::api::{AuditKind, DeviceList};
use potvrda_proto::limits::MAX_PASSWORD_LEN;
use secrecy::SecretString;

/// Shortest new password a citizen may choose.
const MIN_PASSWORD_LEN: usize = 10;

capability! {
    /// A citizen's own account (`/v1/me`).
    pub SelfService
}

impl SelfService<'_> {
    /// `GET /v1/me/devices`.
    pub async fn my_devices(&self, by: &Actor) -> Result<DeviceList> {
        let me = self.counter().me(by).await?;
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
        let me = self.counter().me(by).await?;
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
        let me = self.counter().me(by).await?;
        self.counter().revoke(&me, device_id, by, caller).await
    }

    /// `POST /v1/me/password`: the current password, then the new one.
    pub async fn change_password(
        &self,
        current: Secret,
        new: Secret,
        by: &Actor,
        caller: &Caller,
    ) -> Result<()> {
        let mut me = self.counter().me(by).await?;
        if new.expose().len() < MIN_PASSWORD_LEN || new.expose().len() > MAX_PASSWORD_LEN {
            return Err(Error::InvalidRequest(format!(
                "the new password must be {MIN_PASSWORD_LEN}-{MAX_PASSWORD_LEN} bytes"
            )));
        }
        if current.expose().len() > MAX_PASSWORD_LEN {
            return Err(Error::InvalidCredentials);
        }
        let same = current == new;
        self.current_password(&me, current, caller).await?;
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
        self.logout_notices().all_ended(&me.id).await?;
        self.audit
            .record(
                Event::new(AuditKind::PasswordChanged, self.clock.now())
                    .user(&me.id)
                    .caller(caller),
            )
            .await;
        Ok(())
    }

    /// The current password, guarded as at login (the per-address guard,
    /// its back-off and lock): a stolen token is no password oracle
    /// (security round 2, finding 7). A wrong one is counted and audited.
    async fn current_password(
        &self,
        me: &crate::store::User,
        current: Secret,
        caller: &Caller,
    ) -> Result<()> {
        let now = self.clock.now();
        let gate = self
            .guards()
            .password_gate(&me.username, Some(&me.id), caller.ip, now)
            .await?;
        if !gate.delay.is_zero() {
            self.clock.sleep(gate.delay).await;
        }
        let ok = self
            .hasher
            .verify(
                SecretString::from(current.expose().to_owned()),
                Some(me.password_hash.clone()),
            )
            .await?
            && gate.locked.is_none();
        if ok {
            return Ok(());
        }
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
        Err(Error::InvalidCredentials)
    }
}
