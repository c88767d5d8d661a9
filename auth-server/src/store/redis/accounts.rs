//! Accounts, activations and devices in Redis.

use super::*;
use crate::clock::Clock as _;
use crate::error::{Error, Result};
use crate::store::{
    Activation, Device, DeviceId, DeviceStore, EnrollOutcome, PushTarget, User, UserId, UserStore,
};
use async_trait::async_trait;
use redis::AsyncCommands;

#[async_trait]
impl UserStore for RedisStore {
    async fn create_user(&self, user: &User, activation: &Activation) -> Result<()> {
        let user_key = self.key("user", &user.id);
        let ttl = (activation.expires_at - user.created_at).max(1) as u64;
        let mut c = self.conn();
        // The user's own keys first (one slot, one transaction), then the
        // unique name; a crash in between leaves only an unreachable record.
        redis::pipe()
            .atomic()
            .set(&user_key, serde_json::to_string(user)?)
            .set(
                format!("{user_key}:activation"),
                format!("{} {}", activation.code_hash, activation.expires_at),
            )
            .query_async::<()>(&mut c)
            .await
            .map_err(redis_error)?;
        let reserved: bool = redis::cmd("SET")
            .arg(self.key("uname", &user.username))
            .arg(user.id.as_str())
            .arg("NX")
            .query_async::<Option<String>>(&mut c)
            .await
            .map_err(redis_error)?
            .is_some();
        if !reserved {
            let _: () = c
                .del(&[user_key.clone(), format!("{user_key}:activation")])
                .await
                .map_err(redis_error)?;
            return Err(Error::UsernameTaken);
        }
        let _: () = c
            .set_ex(
                self.key("act", &activation.code_hash),
                user.id.as_str(),
                ttl,
            )
            .await
            .map_err(redis_error)?;
        // The name index for the counter's search.
        let _: () = c
            .zadd(format!("{}:unames", self.prefix), &user.username, 0)
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<User>> {
        let id: Option<String> = self
            .conn()
            .get(self.key("uname", username))
            .await
            .map_err(redis_error)?;
        match id {
            Some(id) => self.user(&UserId::from(id)).await,
            None => Ok(None),
        }
    }

    async fn user(&self, id: &UserId) -> Result<Option<User>> {
        self.get_json(&self.key("user", id)).await
    }

    async fn new_activation(&self, activation: &Activation) -> Result<()> {
        let user_key = self.key("user", &activation.user_id);
        let ttl = (activation.expires_at - crate::clock::SystemClock.now()).max(1) as u64;
        let mut c = self.conn();
        // The user's activation record names the one valid code: replacing it
        // makes an earlier code fail at enrollment (its hash no longer matches).
        let _: () = c
            .set(
                format!("{user_key}:activation"),
                format!("{} {}", activation.code_hash, activation.expires_at),
            )
            .await
            .map_err(redis_error)?;
        let _: () = c
            .set_ex(
                self.key("act", &activation.code_hash),
                activation.user_id.as_str(),
                ttl,
            )
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    async fn search_users(&self, prefix: &str, limit: usize) -> Result<Vec<User>> {
        let names = self
            .names_between(&format!("[{prefix}"), &format!("[{prefix}\u{ff}"), limit)
            .await?;
        self.users_named(&names).await
    }

    async fn update_user(&self, user: &User) -> Result<()> {
        // XX: only an existing account is replaced.
        let replaced: Option<String> = redis::cmd("SET")
            .arg(self.key("user", &user.id))
            .arg(serde_json::to_string(user)?)
            .arg("XX")
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        replaced.map(|_| ()).ok_or(Error::NotFound)
    }
}

#[async_trait]
impl DeviceStore for RedisStore {
    async fn enroll_device(
        &self,
        code_hash: &str,
        device: Device,
        now: i64,
    ) -> Result<EnrollOutcome> {
        let mut c = self.conn();
        let act_key = self.key("act", code_hash);
        let Some(user_id): Option<String> = c.get(&act_key).await.map_err(redis_error)? else {
            return Ok(EnrollOutcome::InvalidCode);
        };
        let Some(user) = self.user(&UserId::from(user_id)).await? else {
            return Ok(EnrollOutcome::InvalidCode);
        };
        let device = Device {
            user_id: user.id.clone(),
            ..device
        };
        let dev_key = self.key("dev", &device.id);
        // The device record is written unlinked; the script then consumes the
        // code and links the device in one step on the user's slot.
        let _: () = c
            .set(&dev_key, serde_json::to_string(&device)?)
            .await
            .map_err(redis_error)?;
        let user_key = self.key("user", &user.id);
        let linked: i64 = self
            .consume_activation
            .key(format!("{user_key}:activation"))
            .key(format!("{user_key}:devices"))
            .arg(code_hash)
            .arg(now)
            .arg(device.id.as_str())
            .invoke_async(&mut c)
            .await
            .map_err(redis_error)?;
        let _: () = c.del(&act_key).await.map_err(redis_error)?;
        if linked != 1 {
            let _: () = c.del(&dev_key).await.map_err(redis_error)?;
            return Ok(EnrollOutcome::InvalidCode);
        }
        Ok(EnrollOutcome::Enrolled(Box::new(user)))
    }

    async fn devices_of(&self, user_id: &UserId) -> Result<Vec<Device>> {
        let ids: Vec<String> = self
            .conn()
            .smembers(format!("{}:devices", self.key("user", user_id)))
            .await
            .map_err(redis_error)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(d) = self.device(&DeviceId::from(id)).await? {
                out.push(d);
            }
        }
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    async fn device(&self, device_id: &DeviceId) -> Result<Option<Device>> {
        let dev_key = self.key("dev", device_id);
        let mut c = self.conn();
        let (json, gone): (Option<String>, Option<String>) = redis::pipe()
            .get(&dev_key)
            .get(format!("{dev_key}:gone"))
            .query_async(&mut c)
            .await
            .map_err(redis_error)?;
        let Some(json) = json else { return Ok(None) };
        let mut d: Device = serde_json::from_str(&json)?;
        // Before protocol 3 the flag held `1`: any value counted.
        d.push_gone |=
            gone.is_some_and(|g| g == "1" || d.push.as_ref().is_some_and(|p| p.endpoint == g));
        let linked: bool = c
            .sismember(
                format!("{}:devices", self.key("user", &d.user_id)),
                d.id.as_str(),
            )
            .await
            .map_err(redis_error)?;
        Ok(linked.then_some(d))
    }

    async fn revoke_device(&self, user_id: &UserId, device_id: &DeviceId) -> Result<bool> {
        let removed: i64 = self
            .conn()
            .srem(
                format!("{}:devices", self.key("user", user_id)),
                device_id.as_str(),
            )
            .await
            .map_err(redis_error)?;
        if removed == 1 {
            let dev_key = self.key("dev", device_id);
            let _: () = self
                .conn()
                .del(&[dev_key.clone(), format!("{dev_key}:gone")])
                .await
                .map_err(redis_error)?;
        }
        Ok(removed == 1)
    }

    async fn rename_device(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
        name: &str,
    ) -> Result<bool> {
        let Some(mut d) = self.device(device_id).await? else {
            return Ok(false);
        };
        if d.user_id != *user_id {
            return Ok(false);
        }
        d.name = name.to_owned();
        d.push_gone = false; // kept in its own key
        self.rewrite_device(&d, false).await
    }

    async fn mark_push_gone(&self, device_id: &DeviceId, endpoint: &str) -> Result<()> {
        // The endpoint found gone: a subscription that replaced it since is
        // not (see `device`).
        let _: () = self
            .conn()
            .set(format!("{}:gone", self.key("dev", device_id)), endpoint)
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    async fn set_push(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
        push: Option<PushTarget>,
    ) -> Result<bool> {
        let Some(mut d) = self.device(device_id).await? else {
            return Ok(false);
        };
        if d.user_id != *user_id {
            return Ok(false);
        }
        d.push = push;
        d.push_gone = false;
        self.rewrite_device(&d, true).await
    }
}

impl RedisStore {
    /// Write a device back (`SET XX`: never brings back one revoked in
    /// between); with `clear_gone`, its gone flag goes too.
    async fn rewrite_device(&self, d: &Device, clear_gone: bool) -> Result<bool> {
        let key = self.key("dev", &d.id);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(&key)
            .arg(serde_json::to_string(d)?)
            .arg("XX");
        if clear_gone {
            pipe.del(format!("{key}:gone")).ignore();
        }
        let (set,): (Option<String>,) = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(set.is_some())
    }
}

impl RedisStore {
    /// Up to `limit` usernames of the name index between `min` and `max`
    /// (`ZRANGE … BYLEX` bounds), in bytewise order.
    pub(super) async fn names_between(
        &self,
        min: &str,
        max: &str,
        limit: usize,
    ) -> Result<Vec<String>> {
        redis::cmd("ZRANGE")
            .arg(format!("{}:unames", self.prefix))
            .arg(min)
            .arg(max)
            .arg("BYLEX")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error)
    }

    /// The accounts of `names` (a name whose account is gone is skipped).
    pub(super) async fn users_named(&self, names: &[String]) -> Result<Vec<User>> {
        let mut users = Vec::with_capacity(names.len());
        for name in names {
            if let Some(user) = self.user_by_name(name).await? {
                users.push(user);
            }
        }
        Ok(users)
    }
}
