//! Logins, the push guard and rate counters, in memory.

use super::*;
use crate::error::Result;
use crate::store::{
    Admission, ChallengeId, DecideOutcome, DeviceId, GuardStore, Limits, Login, LoginId,
    LoginRecord, LoginState, LoginStore, RateKey, RateStore, Subscription, UserId,
};
use async_trait::async_trait;

#[async_trait]
impl LoginStore for EmbeddedStore {
    async fn create_login(&self, record: &LoginRecord) -> Result<()> {
        let mut mem = self.mem();
        mem.sweep(record.created_at);
        mem.by_cid.insert(record.cid.clone(), record.id.clone());
        mem.by_user
            .entry(record.user_id.clone())
            .or_default()
            .push(record.id.clone());
        mem.logins.insert(
            record.id.clone(),
            Login {
                record: record.clone(),
                state: LoginState::Pending,
                decided_at: None,
                decided_at_ms: None,
                approval_jti: None,
                amr: Vec::new(),
            },
        );
        Ok(())
    }

    async fn login(&self, login_id: &LoginId) -> Result<Option<Login>> {
        Ok(self.mem().logins.get(login_id).cloned())
    }

    async fn login_by_challenge(&self, cid: &ChallengeId) -> Result<Option<Login>> {
        let mem = self.mem();
        Ok(mem
            .by_cid
            .get(cid)
            .and_then(|id| mem.logins.get(id))
            .cloned())
    }

    async fn pending_logins(&self, user_id: &UserId, now: i64) -> Result<Vec<Login>> {
        let mem = self.mem();
        Ok(mem
            .by_user
            .get(user_id)
            .into_iter()
            .flatten()
            .filter_map(|id| mem.logins.get(id))
            .filter(|l| l.state == LoginState::Pending && l.record.expires_at > now)
            .cloned()
            .collect())
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
        let outcome = {
            let mut mem = self.mem();
            match mem.logins.get_mut(login_id) {
                None => DecideOutcome::NotFound,
                Some(l) if l.state != LoginState::Pending => DecideOutcome::AlreadyDecided,
                Some(l) if l.record.expires_at <= now => DecideOutcome::Expired,
                Some(l) => {
                    l.state = to;
                    l.decided_at = Some(now);
                    l.decided_at_ms = Some(now_ms);
                    l.approval_jti = approval_jti.map(str::to_owned);
                    l.amr = amr.to_vec();
                    DecideOutcome::Decided
                }
            }
        };
        if outcome == DecideOutcome::Decided {
            self.notifier.notify(login_id);
        }
        Ok(outcome)
    }

    async fn mark_seen(&self, login_id: &LoginId) -> Result<bool> {
        let mut mem = self.mem();
        Ok(mem.logins.contains_key(login_id) && mem.seen.insert(login_id.to_owned()))
    }

    async fn take_token(
        &self,
        login_id: &LoginId,
        escrow: &[u8],
        now: i64,
        redeliver: i64,
    ) -> Result<Option<Vec<u8>>> {
        let mut mem = self.mem();
        let state = mem.logins.get(login_id).map(|l| l.state);
        Ok(match state {
            Some(LoginState::Approved) => {
                if let Some(l) = mem.logins.get_mut(login_id) {
                    l.state = LoginState::Consumed;
                }
                mem.escrows
                    .insert(login_id.to_owned(), (escrow.to_vec(), now));
                Some(escrow.to_vec())
            }
            Some(LoginState::Consumed) => mem
                .escrows
                .get(login_id)
                .filter(|(_, at)| now - at <= redeliver)
                .map(|(e, _)| e.clone()),
            _ => None,
        })
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
        let mut mem = self.mem();
        mem.sweep(now);
        let key = format!("{device_id}:{jti}");
        if mem.jtis.get(&key).is_some_and(|until| *until > now) {
            return Ok(false);
        }
        mem.jtis.insert(key, expires_at);
        Ok(true)
    }
}

#[async_trait]
impl GuardStore for EmbeddedStore {
    async fn admit_login(
        &self,
        user_id: &UserId,
        login_id: &LoginId,
        now: i64,
        limits: &Limits,
    ) -> Result<Admission> {
        let mut mem = self.mem();
        let g = mem.guards.entry(user_id.to_owned()).or_default();
        if g.paused_until > now {
            return Ok(Admission::Paused {
                until: g.paused_until,
            });
        }
        while g
            .pushes
            .front()
            .is_some_and(|t| *t <= now - limits.push_window)
        {
            g.pushes.pop_front();
        }
        if g.pushes.len() >= limits.push_limit as usize {
            let oldest = g.pushes.front().copied().unwrap_or(now);
            return Ok(Admission::TooMany {
                retry_at: oldest + limits.push_window,
            });
        }
        g.pushes.push_back(now);
        Ok(Admission::Admitted {
            superseded: g.active.replace(login_id.to_owned()),
        })
    }

    async fn record_outcome(
        &self,
        user_id: &UserId,
        approved: bool,
        now: i64,
        limits: &Limits,
    ) -> Result<Option<i64>> {
        let mut mem = self.mem();
        let g = mem.guards.entry(user_id.to_owned()).or_default();
        if approved {
            g.fails = 0;
            return Ok(None);
        }
        g.fails += 1;
        if g.fails >= limits.fatigue_limit {
            g.fails = 0;
            g.paused_until = now + limits.fatigue_pause;
            return Ok(Some(g.paused_until));
        }
        Ok(None)
    }
}

#[async_trait]
impl RateStore for EmbeddedStore {
    async fn rate_hit(&self, key: &RateKey<'_>, now: i64, window: i64) -> Result<(u32, i64)> {
        let key = &key.key();
        let mut mem = self.mem();
        mem.sweep(now);
        let v = mem.rates.entry(key.to_owned()).or_default();
        while v.front().is_some_and(|t| *t <= now - window) {
            v.pop_front();
        }
        v.push_back(now);
        Ok((v.len() as u32, v.front().copied().unwrap_or(now)))
    }

    async fn rate_count(&self, key: &RateKey<'_>, now: i64, window: i64) -> Result<(u32, i64)> {
        let key = &key.key();
        let mem = self.mem();
        let Some(v) = mem.rates.get(key) else {
            return Ok((0, now));
        };
        let live: Vec<i64> = v.iter().copied().filter(|t| *t > now - window).collect();
        Ok((live.len() as u32, live.first().copied().unwrap_or(now)))
    }

    async fn rate_reset(&self, key: &RateKey<'_>) -> Result<()> {
        let key = &key.key();
        self.mem().rates.remove(key);
        Ok(())
    }
}
