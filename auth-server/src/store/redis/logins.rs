//! Logins, their atomic decisions, the push guard and rate counters in Redis.

use super::*;
use crate::error::{Error, Result};
use crate::store::embedded::LOGIN_GRACE_SECS;
use crate::store::{
    Admission, ChallengeId, DecideOutcome, DeviceId, GuardStore, Limits, Login, LoginId,
    LoginRecord, LoginState, LoginStore, RateKey, RateStore, Subscription, UserId,
};
use async_trait::async_trait;
use redis::AsyncCommands;

#[async_trait]
impl LoginStore for RedisStore {
    async fn create_login(&self, record: &LoginRecord) -> Result<()> {
        let ttl = (record.expires_at - record.created_at + LOGIN_GRACE_SECS).max(1);
        let login_key = self.key("login", &record.id);
        let pending_key = format!("{}:pending", self.key("user", &record.user_id));
        let mut c = self.conn();
        self.create_login
            .key(&login_key)
            .arg(serde_json::to_string(record)?)
            .arg(record.expires_at)
            .arg(ttl)
            .invoke_async::<()>(&mut c)
            .await
            .map_err(redis_error)?;
        let _: () = c
            .set_ex(self.key("cid", &record.cid), record.id.as_str(), ttl as u64)
            .await
            .map_err(redis_error)?;
        self.add_pending
            .key(&pending_key)
            .arg(record.created_at)
            .arg(record.id.as_str())
            .arg(record.expires_at)
            .arg(ttl)
            .invoke_async::<()>(&mut c)
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    async fn login(&self, login_id: &LoginId) -> Result<Option<Login>> {
        let map: std::collections::HashMap<String, String> = self
            .conn()
            .hgetall(self.key("login", login_id))
            .await
            .map_err(redis_error)?;
        parse_login(map)
    }

    async fn login_by_challenge(&self, cid: &ChallengeId) -> Result<Option<Login>> {
        let id: Option<String> = self
            .conn()
            .get(self.key("cid", cid))
            .await
            .map_err(redis_error)?;
        match id {
            Some(id) => self.login(&LoginId::from(id)).await,
            None => Ok(None),
        }
    }

    async fn pending_logins(&self, user_id: &UserId, now: i64) -> Result<Vec<Login>> {
        let ids: Vec<String> = self
            .conn()
            .zrangebyscore(
                format!("{}:pending", self.key("user", user_id)),
                format!("({now}"),
                "+inf",
            )
            .await
            .map_err(redis_error)?;
        let mut out = Vec::new();
        for id in ids {
            if let Some(l) = self.login(&LoginId::from(id)).await?
                && l.state == LoginState::Pending
            {
                out.push(l);
            }
        }
        Ok(out)
    }

    async fn decide(
        &self,
        login_id: &LoginId,
        to: LoginState,
        now: i64,
        now_ms: i64,
        approval_jti: Option<&str>,
        amr: &[String],
    ) -> Result<DecideOutcome> {
        let outcome: String = self
            .decide
            .key(self.key("login", login_id))
            .arg(to.as_str())
            .arg(now)
            .arg(format!("{}:events", self.prefix))
            .arg(login_id.as_str())
            .arg(now_ms)
            .arg(approval_jti.unwrap_or(""))
            .arg(amr.join(" "))
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        let outcome = match outcome.as_str() {
            "ok" => DecideOutcome::Decided,
            "decided" => DecideOutcome::AlreadyDecided,
            "expired" => DecideOutcome::Expired,
            "not_found" => DecideOutcome::NotFound,
            other => return Err(Error::Store(format!("decide script answered {other}"))),
        };
        if outcome == DecideOutcome::Decided {
            // Local waiters need not wait for the round trip through pub/sub.
            self.notifier.notify(login_id);
        }
        Ok(outcome)
    }

    async fn mark_seen(&self, login_id: &LoginId) -> Result<bool> {
        // HSETNX on the login's own hash: first writer wins, and it expires with the login.
        let first: bool = self
            .conn()
            .hset_nx(self.key("login", login_id), "seen", 1)
            .await
            .map_err(redis_error)?;
        Ok(first)
    }

    async fn take_token(
        &self,
        login_id: &LoginId,
        escrow: &[u8],
        now: i64,
        redeliver: i64,
    ) -> Result<Option<Vec<u8>>> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        // Base64 in the hash: its fields are read back as text.
        let stored: Option<String> = self
            .take_token
            .key(self.key("login", login_id))
            .arg(b64.encode(escrow))
            .arg(now)
            .arg(redeliver)
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(stored.and_then(|s| b64.decode(s).ok()))
    }

    fn subscribe(&self, login_id: &str) -> Subscription {
        self.notifier.subscribe(login_id)
    }

    async fn spend_jti(
        &self,
        device_id: &DeviceId,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool> {
        let ttl = u64::try_from((expires_at - now).max(1)).unwrap_or(1);
        let set: Option<String> = redis::cmd("SET")
            .arg(self.key("jti", device_id) + ":" + jti)
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(ttl)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(set.is_some())
    }
}

#[async_trait]
impl GuardStore for RedisStore {
    async fn admit_login(
        &self,
        user_id: &UserId,
        login_id: &LoginId,
        now: i64,
        limits: &Limits,
    ) -> Result<Admission> {
        let user_key = self.key("user", user_id);
        let answer: String = self
            .admit
            .key(format!("{user_key}:guard"))
            .key(format!("{user_key}:pushes"))
            .arg(login_id.as_str())
            .arg(now)
            .arg(limits.push_limit)
            .arg(limits.push_window)
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        let bad = || Error::Store(format!("admit script answered {answer}"));
        Ok(match answer.split_once(':') {
            Some(("ok", "")) => Admission::Admitted { superseded: None },
            Some(("ok", prev)) => Admission::Admitted {
                superseded: Some(LoginId::new(prev)),
            },
            Some(("paused", t)) => Admission::Paused {
                until: t.parse().map_err(|_| bad())?,
            },
            Some(("too_many", t)) => Admission::TooMany {
                retry_at: t.parse().map_err(|_| bad())?,
            },
            _ => return Err(bad()),
        })
    }

    async fn record_outcome(
        &self,
        user_id: &UserId,
        approved: bool,
        now: i64,
        limits: &Limits,
    ) -> Result<Option<i64>> {
        let until: i64 = self
            .outcome
            .key(format!("{}:guard", self.key("user", user_id)))
            .arg(if approved { "ok" } else { "fail" })
            .arg(now)
            .arg(limits.fatigue_limit)
            .arg(limits.fatigue_pause)
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok((until > 0).then_some(until))
    }
}

#[async_trait]
impl RateStore for RedisStore {
    async fn rate_hit(&self, key: &RateKey<'_>, now: i64, window: i64) -> Result<(u32, i64)> {
        self.rate_hit(&key.key(), now, window).await
    }

    async fn rate_count(&self, key: &RateKey<'_>, now: i64, window: i64) -> Result<(u32, i64)> {
        self.rate_look(&key.key(), now, window).await
    }

    async fn rate_reset(&self, key: &RateKey<'_>) -> Result<()> {
        let key = &key.key();
        let _: () = self
            .conn()
            .del(self.key("rl", key))
            .await
            .map_err(redis_error)?;
        Ok(())
    }
}
