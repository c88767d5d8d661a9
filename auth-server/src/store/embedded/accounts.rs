//! Accounts, activations and devices in the embedded store.

use super::*;
use crate::error::{Error, Result};
use crate::store::{
    Activation, Device, DeviceId, DeviceStore, EnrollOutcome, PushTarget, User, UserId, UserStore,
    redb_error,
};
use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable};

#[async_trait]
impl UserStore for EmbeddedStore {
    async fn create_user(&self, user: &User, activation: &Activation) -> Result<()> {
        let user = user.clone();
        let activation = activation.clone();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(redb_error)?;
            {
                let mut names = txn.open_table(USERNAMES).map_err(redb_error)?;
                if names
                    .get(user.username.as_str())
                    .map_err(redb_error)?
                    .is_some()
                {
                    return Err(Error::UsernameTaken);
                }
                names
                    .insert(user.username.as_str(), user.id.as_str())
                    .map_err(redb_error)?;
                txn.open_table(USERS)
                    .map_err(redb_error)?
                    .insert(user.id.as_str(), serde_json::to_vec(&user)?.as_slice())
                    .map_err(redb_error)?;
                txn.open_table(ACTIVATIONS)
                    .map_err(redb_error)?
                    .insert(
                        activation.code_hash.as_str(),
                        serde_json::to_vec(&activation)?.as_slice(),
                    )
                    .map_err(redb_error)?;
            }
            txn.commit().map_err(redb_error)?;
            Ok(())
        })
        .await
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<User>> {
        let username = username.to_owned();
        self.read(|db| {
            let txn = db.begin_read().map_err(redb_error)?;
            let Some(id) = txn
                .open_table(USERNAMES)
                .map_err(redb_error)?
                .get(username.as_str())
                .map_err(redb_error)?
                .map(|v| v.value().to_owned())
            else {
                return Ok(None);
            };
            read_json(&txn.open_table(USERS).map_err(redb_error)?, &id)
        })
    }

    async fn user(&self, id: &UserId) -> Result<Option<User>> {
        let id = id.to_owned();
        self.read(|db| {
            read_json(
                &db.begin_read()
                    .map_err(redb_error)?
                    .open_table(USERS)
                    .map_err(redb_error)?,
                &id,
            )
        })
    }

    async fn new_activation(&self, activation: &Activation) -> Result<()> {
        let activation = activation.clone();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(redb_error)?;
            {
                let mut acts = txn.open_table(ACTIVATIONS).map_err(redb_error)?;
                // Pending codes are few (a code goes once used or expired).
                acts.retain(|_, v| {
                    serde_json::from_slice::<Activation>(v)
                        .map_or(true, |a| a.user_id != activation.user_id)
                })
                .map_err(redb_error)?;
                acts.insert(
                    activation.code_hash.as_str(),
                    serde_json::to_vec(&activation)?.as_slice(),
                )
                .map_err(redb_error)?;
            }
            txn.commit().map_err(redb_error)?;
            Ok(())
        })
        .await
    }

    async fn search_users(&self, prefix: &str, limit: usize) -> Result<Vec<User>> {
        let prefix = prefix.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(redb_error)?;
            let names = txn.open_table(USERNAMES).map_err(redb_error)?;
            let users = txn.open_table(USERS).map_err(redb_error)?;
            let mut out = Vec::new();
            for entry in names.range(prefix.as_str()..).map_err(redb_error)? {
                let (name, id) = entry.map_err(redb_error)?;
                if !name.value().starts_with(prefix.as_str()) || out.len() >= limit {
                    break;
                }
                if let Some(u) = read_json::<User>(&users, id.value())? {
                    out.push(u);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn update_user(&self, user: &User) -> Result<()> {
        let user = user.clone();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(redb_error)?;
            {
                let mut users = txn.open_table(USERS).map_err(redb_error)?;
                if users.get(user.id.as_str()).map_err(redb_error)?.is_none() {
                    return Err(Error::NotFound);
                }
                users
                    .insert(user.id.as_str(), serde_json::to_vec(&user)?.as_slice())
                    .map_err(redb_error)?;
            }
            txn.commit().map_err(redb_error)?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl DeviceStore for EmbeddedStore {
    async fn enroll_device(
        &self,
        code_hash: &str,
        device: Device,
        now: i64,
    ) -> Result<EnrollOutcome> {
        let code_hash = code_hash.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(redb_error)?;
            let user = {
                let mut acts = txn.open_table(ACTIVATIONS).map_err(redb_error)?;
                let Some(act): Option<Activation> = read_json(&acts, &code_hash)? else {
                    return Ok(EnrollOutcome::InvalidCode);
                };
                // Single use: removed whether or not it was still valid.
                acts.remove(code_hash.as_str()).map_err(redb_error)?;
                if act.expires_at <= now {
                    drop(acts);
                    txn.commit().map_err(redb_error)?;
                    return Ok(EnrollOutcome::InvalidCode);
                }
                let Some(user): Option<User> =
                    read_json(&txn.open_table(USERS).map_err(redb_error)?, &act.user_id)?
                else {
                    return Ok(EnrollOutcome::InvalidCode);
                };
                let device = Device {
                    user_id: user.id.clone(),
                    ..device
                };
                txn.open_table(DEVICES)
                    .map_err(redb_error)?
                    .insert(device.id.as_str(), serde_json::to_vec(&device)?.as_slice())
                    .map_err(redb_error)?;
                txn.open_table(USER_DEVICES)
                    .map_err(redb_error)?
                    .insert(format!("{}/{}", user.id, device.id).as_str(), 1)
                    .map_err(redb_error)?;
                user
            };
            txn.commit().map_err(redb_error)?;
            Ok(EnrollOutcome::Enrolled(Box::new(user)))
        })
        .await
    }

    async fn devices_of(&self, user_id: &UserId) -> Result<Vec<Device>> {
        let prefix = format!("{user_id}/");
        self.read(|db| {
            let txn = db.begin_read().map_err(redb_error)?;
            let links = txn.open_table(USER_DEVICES).map_err(redb_error)?;
            let devices = txn.open_table(DEVICES).map_err(redb_error)?;
            let mut out = Vec::new();
            for entry in links.range(prefix.as_str()..).map_err(redb_error)? {
                let (k, _) = entry.map_err(redb_error)?;
                let Some(device_id) = k.value().strip_prefix(prefix.as_str()) else {
                    break;
                };
                if let Some(d) = read_json::<Device>(&devices, device_id)? {
                    out.push(d);
                }
            }
            Ok(out)
        })
    }

    async fn device(&self, device_id: &DeviceId) -> Result<Option<Device>> {
        let device_id = device_id.to_owned();
        self.read(|db| {
            let txn = db.begin_read().map_err(redb_error)?;
            let Some(d): Option<Device> =
                read_json(&txn.open_table(DEVICES).map_err(redb_error)?, &device_id)?
            else {
                return Ok(None);
            };
            let linked = txn
                .open_table(USER_DEVICES)
                .map_err(redb_error)?
                .get(format!("{}/{}", d.user_id, d.id).as_str())
                .map_err(redb_error)?
                .is_some();
            Ok(linked.then_some(d))
        })
    }

    async fn revoke_device(&self, user_id: &UserId, device_id: &DeviceId) -> Result<bool> {
        let link = format!("{user_id}/{device_id}");
        let device_id = device_id.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(redb_error)?;
            let removed = txn
                .open_table(USER_DEVICES)
                .map_err(redb_error)?
                .remove(link.as_str())
                .map_err(redb_error)?
                .is_some();
            if removed {
                txn.open_table(DEVICES)
                    .map_err(redb_error)?
                    .remove(device_id.as_str())
                    .map_err(redb_error)?;
            }
            txn.commit().map_err(redb_error)?;
            Ok(removed)
        })
        .await
    }

    async fn rename_device(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
        name: &str,
    ) -> Result<bool> {
        let name = name.to_owned();
        self.change_device(user_id, device_id, move |d| d.name = name)
            .await
    }

    async fn mark_push_gone(&self, device_id: &DeviceId, endpoint: &str) -> Result<()> {
        let (device_id, endpoint) = (device_id.to_owned(), endpoint.to_owned());
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(redb_error)?;
            {
                let mut devices = txn.open_table(DEVICES).map_err(redb_error)?;
                if let Some(mut d) = read_json::<Device>(&devices, &device_id)?
                    && d.push.as_ref().is_some_and(|p| p.endpoint == endpoint)
                {
                    d.push_gone = true;
                    devices
                        .insert(device_id.as_str(), serde_json::to_vec(&d)?.as_slice())
                        .map_err(redb_error)?;
                }
            }
            txn.commit().map_err(redb_error)?;
            Ok(())
        })
        .await
    }

    async fn set_push(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
        push: Option<PushTarget>,
    ) -> Result<bool> {
        self.change_device(user_id, device_id, move |d| {
            d.push = push;
            d.push_gone = false;
        })
        .await
    }
}

impl EmbeddedStore {
    /// Change the user's active device in one transaction; `true` if it is
    /// theirs.
    async fn change_device(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
        change: impl FnOnce(&mut Device) + Send + 'static,
    ) -> Result<bool> {
        let link = format!("{user_id}/{device_id}");
        let device_id = device_id.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(redb_error)?;
            let changed = {
                let linked = txn
                    .open_table(USER_DEVICES)
                    .map_err(redb_error)?
                    .get(link.as_str())
                    .map_err(redb_error)?
                    .is_some();
                let mut devices = txn.open_table(DEVICES).map_err(redb_error)?;
                match read_json::<Device>(&devices, &device_id)? {
                    Some(mut d) if linked => {
                        change(&mut d);
                        devices
                            .insert(device_id.as_str(), serde_json::to_vec(&d)?.as_slice())
                            .map_err(redb_error)?;
                        true
                    }
                    _ => false,
                }
            };
            txn.commit().map_err(redb_error)?;
            Ok(changed)
        })
        .await
    }
}
