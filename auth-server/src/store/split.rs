//! PostgreSQL + Redis, the production shape (issue 19): each repository goes
//! to the store that suits it. PostgreSQL, the system of record, keeps
//! accounts, devices, activation codes, keys, the audit trail and every
//! lasting typed record ([`super::dump::lasting`]); Redis keeps the logins and
//! challenges with their atomic decisions, the push guard, rate counters,
//! the token escrow, the fleeting records and the wake-ups between instances.

use async_trait::async_trait;
use potvrda_proto::api::AuditEvent;
use zeroize::Zeroizing;

use super::postgres::PgStore;
use super::redis::RedisStore;
use crate::error::Result;
use crate::store::{
    Activation, Admission, AuditFilter, AuditPage, AuditStore, ChallengeId, DecideOutcome, Device,
    DeviceId, DeviceStore, EnrollOutcome, GuardStore, Health, KeyStore, KvStore, Limits, Login,
    LoginId, LoginRecord, LoginState, LoginStore, PoolUsage, PushTarget, RateKey, RateStore,
    Subscription, User, UserId, UserStore,
};

/// PostgreSQL for what lasts, Redis for what is fleeting.
#[derive(Debug, Clone)]
pub struct SplitStore {
    lasting: PgStore,
    fleeting: RedisStore,
}

impl SplitStore {
    /// Pair them.
    pub fn new(lasting: PgStore, fleeting: RedisStore) -> Self {
        Self { lasting, fleeting }
    }

    /// The system of record.
    pub fn lasting(&self) -> &PgStore {
        &self.lasting
    }

    /// Whether a typed record's key goes to PostgreSQL.
    fn is_lasting(key: &str) -> bool {
        super::dump::lasting(key)
    }
}

#[async_trait]
impl UserStore for SplitStore {
    async fn create_user(&self, user: &User, activation: &Activation) -> Result<()> {
        self.lasting.create_user(user, activation).await
    }
    async fn user_by_name(&self, username: &str) -> Result<Option<User>> {
        self.lasting.user_by_name(username).await
    }
    async fn user(&self, id: &UserId) -> Result<Option<User>> {
        self.lasting.user(id).await
    }
    async fn update_user(&self, user: &User) -> Result<()> {
        self.lasting.update_user(user).await
    }
    async fn new_activation(&self, activation: &Activation) -> Result<()> {
        self.lasting.new_activation(activation).await
    }
    async fn search_users(&self, prefix: &str, limit: usize) -> Result<Vec<User>> {
        self.lasting.search_users(prefix, limit).await
    }
}

#[async_trait]
impl DeviceStore for SplitStore {
    async fn enroll_device(
        &self,
        code_hash: &str,
        device: Device,
        now: i64,
    ) -> Result<EnrollOutcome> {
        self.lasting.enroll_device(code_hash, device, now).await
    }
    async fn devices_of(&self, user_id: &UserId) -> Result<Vec<Device>> {
        self.lasting.devices_of(user_id).await
    }
    async fn device(&self, device_id: &DeviceId) -> Result<Option<Device>> {
        self.lasting.device(device_id).await
    }
    async fn mark_push_gone(&self, device_id: &DeviceId, endpoint: &str) -> Result<()> {
        self.lasting.mark_push_gone(device_id, endpoint).await
    }
    async fn set_push(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
        push: Option<PushTarget>,
    ) -> Result<bool> {
        self.lasting.set_push(user_id, device_id, push).await
    }
    async fn revoke_device(&self, user_id: &UserId, device_id: &DeviceId) -> Result<bool> {
        self.lasting.revoke_device(user_id, device_id).await
    }
    async fn rename_device(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
        name: &str,
    ) -> Result<bool> {
        self.lasting.rename_device(user_id, device_id, name).await
    }
}

#[async_trait]
impl LoginStore for SplitStore {
    async fn create_login(&self, login: &LoginRecord) -> Result<()> {
        self.fleeting.create_login(login).await
    }
    async fn login(&self, login_id: &LoginId) -> Result<Option<Login>> {
        self.fleeting.login(login_id).await
    }
    async fn login_by_challenge(&self, cid: &ChallengeId) -> Result<Option<Login>> {
        self.fleeting.login_by_challenge(cid).await
    }
    async fn pending_logins(&self, user_id: &UserId, now: i64) -> Result<Vec<Login>> {
        self.fleeting.pending_logins(user_id, now).await
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
        self.fleeting
            .decide(login_id, to, now, now_ms, approval_jti, amr)
            .await
    }
    async fn mark_seen(&self, login_id: &LoginId) -> Result<bool> {
        self.fleeting.mark_seen(login_id).await
    }
    async fn take_token(
        &self,
        login_id: &LoginId,
        escrow: &[u8],
        now: i64,
        redeliver: i64,
    ) -> Result<Option<Vec<u8>>> {
        self.fleeting
            .take_token(login_id, escrow, now, redeliver)
            .await
    }
    fn subscribe(&self, topic: &str) -> Subscription {
        self.fleeting.subscribe(topic)
    }
    async fn spend_jti(
        &self,
        device_id: &DeviceId,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool> {
        self.fleeting
            .spend_jti(device_id, jti, expires_at, now)
            .await
    }
}

#[async_trait]
impl GuardStore for SplitStore {
    async fn admit_login(
        &self,
        user_id: &UserId,
        login_id: &LoginId,
        now: i64,
        limits: &Limits,
    ) -> Result<Admission> {
        self.fleeting
            .admit_login(user_id, login_id, now, limits)
            .await
    }
    async fn record_outcome(
        &self,
        user_id: &UserId,
        approved: bool,
        now: i64,
        limits: &Limits,
    ) -> Result<Option<i64>> {
        self.fleeting
            .record_outcome(user_id, approved, now, limits)
            .await
    }
}

#[async_trait]
impl RateStore for SplitStore {
    async fn rate_hit(&self, key: &RateKey<'_>, now: i64, window: i64) -> Result<(u32, i64)> {
        self.fleeting.rate_hit(key, now, window).await
    }
    async fn rate_count(&self, key: &RateKey<'_>, now: i64, window: i64) -> Result<(u32, i64)> {
        self.fleeting.rate_count(key, now, window).await
    }
    async fn rate_reset(&self, key: &RateKey<'_>) -> Result<()> {
        self.fleeting.rate_reset(key).await
    }
}

#[async_trait]
impl KeyStore for SplitStore {
    async fn get_or_insert_key(&self, name: &str, candidate: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.lasting.get_or_insert_key(name, candidate).await
    }
    async fn stored_key(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        self.lasting.stored_key(name).await
    }
}

#[async_trait]
impl AuditStore for SplitStore {
    async fn append_audit(&self, event: &AuditEvent, retain_from: i64) -> Result<String> {
        self.lasting.append_audit(event, retain_from).await
    }
    async fn audit_events(&self, filter: &AuditFilter) -> Result<AuditPage> {
        self.lasting.audit_events(filter).await
    }
    async fn audit_heads(&self) -> Result<potvrda_domain::audit::chain::Heads> {
        self.lasting.audit_heads().await
    }
}

#[async_trait]
impl KvStore for SplitStore {
    async fn kv_put(&self, key: &str, value: &[u8], expires_at: i64) -> Result<()> {
        if Self::is_lasting(key) {
            self.lasting.record_put(key, value, expires_at).await
        } else {
            self.fleeting.kv_put(key, value, expires_at).await
        }
    }
    async fn kv_put_new(&self, key: &str, value: &[u8], expires_at: i64, now: i64) -> Result<bool> {
        if Self::is_lasting(key) {
            self.lasting
                .record_put_new(key, value, expires_at, now)
                .await
        } else {
            self.fleeting.kv_put_new(key, value, expires_at, now).await
        }
    }
    async fn kv_get(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>> {
        if Self::is_lasting(key) {
            self.lasting.record_get(key, now).await
        } else {
            self.fleeting.kv_get(key, now).await
        }
    }
    async fn kv_take(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>> {
        if Self::is_lasting(key) {
            self.lasting.record_take(key, now).await
        } else {
            self.fleeting.kv_take(key, now).await
        }
    }
    async fn kv_swap(
        &self,
        key: &str,
        expected: &[u8],
        value: &[u8],
        expires_at: i64,
        now: i64,
    ) -> Result<bool> {
        if Self::is_lasting(key) {
            self.lasting
                .record_swap(key, expected, value, expires_at, now)
                .await
        } else {
            self.fleeting
                .kv_swap(key, expected, value, expires_at, now)
                .await
        }
    }
    async fn kv_delete(&self, key: &str) -> Result<()> {
        if Self::is_lasting(key) {
            self.lasting.record_delete(key).await
        } else {
            self.fleeting.kv_delete(key).await
        }
    }
    async fn kv_announce(&self, topic: &str) -> Result<()> {
        self.fleeting.kv_announce(topic).await
    }
}

#[async_trait]
impl Health for SplitStore {
    /// Both must answer: a login needs the account (PostgreSQL) and its
    /// challenge (Redis).
    async fn ping(&self) -> Result<()> {
        let (lasting, fleeting) = tokio::join!(self.lasting.ping(), self.fleeting.ping());
        lasting.and(fleeting)
    }
    fn failures(&self) -> u64 {
        self.lasting.failures() + self.fleeting.failures()
    }
    fn pool(&self) -> Option<PoolUsage> {
        self.lasting.pool()
    }
}
