//! The embedded store, for one instance: accounts, devices and activation
//! codes in a redb file under the data dir (ACID transactions: a crash leaves
//! no half-written record), challenges in memory, keys in files of mode 0600.

use std::collections::HashMap;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use zeroize::Zeroizing;

use potvrda_proto::api::AuditEvent;

use super::{
    Activation, Admission, AuditFilter, AuditPage, AuditStore, ChallengeId, DecideOutcome, Device,
    DeviceId, DeviceStore, EnrollOutcome, GuardStore, Health, KeyStore, KvStore, Limits, Login,
    LoginId, LoginRecord, LoginState, LoginStore, Notifier, RateKey, RateStore, Subscription, User,
    UserId, UserStore, kv_decode, kv_encode, redb_error,
};
use crate::error::{Error, Result};

const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
const USERNAMES: TableDefinition<&str, &str> = TableDefinition::new("usernames");
const ACTIVATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("activations");
const DEVICES: TableDefinition<&str, &[u8]> = TableDefinition::new("devices");
/// Key `"<user_id>/<device_id>"`: the devices of a user, by prefix scan.
const USER_DEVICES: TableDefinition<&str, u8> = TableDefinition::new("user_devices");
/// Audit events by `(milliseconds, sequence)`: time order is key order.
const AUDIT: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("audit");
/// Small records with an expiry (see [`KvStore`]).
const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
/// Audit events committed in one write transaction, at most.
const AUDIT_BATCH: usize = 512;
/// How often old audit events are dropped, in milliseconds.
const AUDIT_PURGE_EVERY_MS: u64 = 3_600_000;

/// How long a decided or expired login stays answerable.
pub const LOGIN_GRACE_SECS: i64 = 600;

/// The embedded store.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    dir: PathBuf,
    mem: Arc<Mutex<Memory>>,
    notifier: Arc<Notifier>,
    audit: Arc<AuditWriter>,
}

/// The audit writer thread and the way to it. Dropping the last clone of the
/// store stops the thread and waits for it, so the database file is closed
/// (and can be opened again) once the store is gone.
struct AuditWriter {
    jobs: Option<std::sync::mpsc::Sender<AuditJob>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for AuditWriter {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An audit event waiting for the writer thread.
struct AuditJob {
    key_ms: u64,
    json: Vec<u8>,
    retain_from_ms: u64,
    done: tokio::sync::oneshot::Sender<std::result::Result<String, String>>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Guard {
    active: Option<LoginId>,
    pushes: std::collections::VecDeque<i64>,
    fails: u32,
    paused_until: i64,
}

#[derive(Default)]
struct Memory {
    guards: HashMap<UserId, Guard>,
    rates: HashMap<String, std::collections::VecDeque<i64>>,
    logins: HashMap<LoginId, Login>,
    seen: std::collections::HashSet<LoginId>,
    /// Sealed tokens of consumed logins, and when they were handed over.
    escrows: HashMap<LoginId, (Vec<u8>, i64)>,
    by_cid: HashMap<ChallengeId, LoginId>,
    by_user: HashMap<UserId, Vec<LoginId>>,
    /// Spent approval `jti`s (`device:jti`) and until when they are kept.
    jtis: HashMap<String, i64>,
    last_sweep: i64,
    last_kv_sweep: i64,
}

impl Memory {
    fn sweep(&mut self, now: i64) {
        if now - self.last_sweep < 10 {
            return;
        }
        self.last_sweep = now;
        // Counters whose newest event is older than any window in use (a day).
        self.rates
            .retain(|_, v| v.back().is_some_and(|t| *t > now - 86_400));
        self.jtis.retain(|_, until| *until > now);
        let dead: Vec<LoginId> = self
            .logins
            .values()
            .filter(|l| l.record.expires_at + LOGIN_GRACE_SECS < now)
            .map(|l| l.record.id.clone())
            .collect();
        for id in dead {
            self.seen.remove(&id);
            self.escrows.remove(&id);
            if let Some(l) = self.logins.remove(&id) {
                self.by_cid.remove(&l.record.cid);
                if let Some(v) = self.by_user.get_mut(&l.record.user_id) {
                    v.retain(|x| *x != id);
                    if v.is_empty() {
                        self.by_user.remove(&l.record.user_id);
                    }
                }
            }
        }
    }
}

impl EmbeddedStore {
    /// Open (or create) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let path = dir.join("potvrda.redb");
        let db = Database::create(&path).map_err(redb_error)?;
        // Password hashes and device keys: readable by the service user only.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        let txn = db.begin_write().map_err(redb_error)?;
        {
            txn.open_table(USERS).map_err(redb_error)?;
            txn.open_table(USERNAMES).map_err(redb_error)?;
            txn.open_table(ACTIVATIONS).map_err(redb_error)?;
            txn.open_table(DEVICES).map_err(redb_error)?;
            txn.open_table(USER_DEVICES).map_err(redb_error)?;
            txn.open_table(AUDIT).map_err(redb_error)?;
            txn.open_table(KV).map_err(redb_error)?;
        }
        txn.commit().map_err(redb_error)?;
        let db = Arc::new(db);
        let (tx, jobs) = std::sync::mpsc::channel();
        let writer = Arc::clone(&db);
        let thread = std::thread::Builder::new()
            .name("potvrda-audit".into())
            .spawn(move || audit_writer(&writer, &jobs))?;
        let audit = Arc::new(AuditWriter {
            jobs: Some(tx),
            thread: Some(thread),
        });
        Ok(Self {
            db,
            dir: dir.to_owned(),
            mem: Arc::default(),
            notifier: Arc::default(),
            audit,
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| Error::Internal(format!("store task: {e}")))?
    }

    fn mem(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.mem.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn read_json<T: serde::de::DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<T>> {
    match table.get(key).map_err(redb_error)? {
        Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
        None => Ok(None),
    }
}

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
        self.blocking(move |db| {
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
        .await
    }

    async fn user(&self, id: &UserId) -> Result<Option<User>> {
        let id = id.to_owned();
        self.blocking(move |db| {
            read_json(
                &db.begin_read()
                    .map_err(redb_error)?
                    .open_table(USERS)
                    .map_err(redb_error)?,
                &id,
            )
        })
        .await
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
        self.blocking(move |db| {
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
        .await
    }

    async fn device(&self, device_id: &DeviceId) -> Result<Option<Device>> {
        let device_id = device_id.to_owned();
        self.blocking(move |db| {
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
        .await
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
        let link = format!("{user_id}/{device_id}");
        let (device_id, name) = (device_id.to_owned(), name.to_owned());
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(redb_error)?;
            let renamed = {
                let linked = txn
                    .open_table(USER_DEVICES)
                    .map_err(redb_error)?
                    .get(link.as_str())
                    .map_err(redb_error)?
                    .is_some();
                let mut devices = txn.open_table(DEVICES).map_err(redb_error)?;
                match read_json::<Device>(&devices, &device_id)? {
                    Some(mut d) if linked => {
                        d.name = name;
                        devices
                            .insert(device_id.as_str(), serde_json::to_vec(&d)?.as_slice())
                            .map_err(redb_error)?;
                        true
                    }
                    _ => false,
                }
            };
            txn.commit().map_err(redb_error)?;
            Ok(renamed)
        })
        .await
    }

    async fn mark_push_gone(&self, device_id: &DeviceId) -> Result<()> {
        let device_id = device_id.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(redb_error)?;
            {
                let mut devices = txn.open_table(DEVICES).map_err(redb_error)?;
                if let Some(mut d) = read_json::<Device>(&devices, &device_id)? {
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
}

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

#[async_trait]
impl KeyStore for EmbeddedStore {
    async fn get_or_insert_key(&self, name: &str, candidate: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let path = self.dir.join(format!("{name}-key.p8"));
        let candidate = Zeroizing::new(candidate.to_vec());
        tokio::task::spawn_blocking(move || key_file(&path, &candidate))
            .await
            .map_err(|e| Error::Internal(format!("key task: {e}")))?
    }
}

/// Read the key file, or create it with `candidate`: written to a temporary
/// file of mode 0600, synced, then hard-linked into place (atomic, and it never
/// replaces a key another process created first).
fn key_file(path: &Path, candidate: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    use std::io::Write;
    if !path.exists() {
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(candidate)?;
            f.sync_all()?;
        }
        let linked = std::fs::hard_link(&tmp, path);
        std::fs::remove_file(&tmp)?;
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.into()),
        }
    }
    check_private(path)?;
    Ok(Zeroizing::new(std::fs::read(path)?))
}

/// Refuse a secret file that group or others can read.
pub fn check_private(path: &Path) -> Result<()> {
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::Config(format!(
            "key file {} has mode {mode:o}; it must be readable by its owner only (chmod 600)",
            path.display()
        )));
    }
    Ok(())
}

/// The audit writer: takes every event waiting, commits them in one
/// transaction (one fsync for the batch), then answers each waiter. Runs
/// until the store is dropped.
fn audit_writer(db: &Database, jobs: &std::sync::mpsc::Receiver<AuditJob>) {
    let mut last_purge = 0u64;
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < AUDIT_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        match write_audit(db, &batch, &mut last_purge) {
            Ok(ids) => {
                for (job, id) in batch.into_iter().zip(ids) {
                    let _ = job.done.send(Ok(id));
                }
            }
            Err(e) => {
                let e = e.to_string();
                for job in batch {
                    let _ = job.done.send(Err(e.clone()));
                }
            }
        }
    }
}

fn write_audit(db: &Database, batch: &[AuditJob], last_purge: &mut u64) -> Result<Vec<String>> {
    let txn = db.begin_write().map_err(redb_error)?;
    let mut ids = Vec::with_capacity(batch.len());
    {
        let mut table = txn.open_table(AUDIT).map_err(redb_error)?;
        let mut last = table.last().map_err(redb_error)?.map(|(k, _)| k.value());
        for job in batch {
            // Keys never go backwards, even if the clock does.
            let key = match last {
                Some((ms, seq)) if ms >= job.key_ms => (ms, seq + 1),
                _ => (job.key_ms, 0),
            };
            table.insert(key, job.json.as_slice()).map_err(redb_error)?;
            ids.push(format!("{}-{}", key.0, key.1));
            last = Some(key);
        }
        let newest = batch.iter().map(|j| j.key_ms).max().unwrap_or(0);
        if newest >= last_purge.saturating_add(AUDIT_PURGE_EVERY_MS) {
            let cutoff = batch.iter().map(|j| j.retain_from_ms).max().unwrap_or(0);
            table
                .retain_in(..(cutoff, 0), |_, _| false)
                .map_err(redb_error)?;
            *last_purge = newest;
        }
    }
    txn.commit().map_err(redb_error)?;
    Ok(ids)
}

#[async_trait]
impl AuditStore for EmbeddedStore {
    async fn append_audit(&self, event: &AuditEvent, retain_from: i64) -> Result<String> {
        let (done, answer) = tokio::sync::oneshot::channel();
        let ms = |secs: i64| u64::try_from(secs).unwrap_or(0).saturating_mul(1000);
        let job = AuditJob {
            key_ms: ms(event.at),
            json: serde_json::to_vec(event)?,
            retain_from_ms: ms(retain_from),
            done,
        };
        self.audit
            .jobs
            .as_ref()
            .ok_or_else(|| Error::Store("the audit writer has stopped".into()))?
            .send(job)
            .map_err(|_| Error::Store("the audit writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| Error::Store("the audit writer has stopped".into()))?
            .map_err(Error::Store)
    }

    async fn audit_events(&self, filter: &AuditFilter) -> Result<AuditPage> {
        let f = filter.clone();
        self.blocking(move |db| {
            let ms = |secs: i64| u64::try_from(secs).unwrap_or(0).saturating_mul(1000);
            let mut start = (f.since.map_or(0, ms), 0);
            if let Some((a_ms, a_seq)) = f.after {
                let next = match a_seq.checked_add(1) {
                    Some(seq) => (a_ms, seq),
                    None => (a_ms.saturating_add(1), 0),
                };
                start = start.max(next);
            }
            let end = (
                f.until.map_or(u64::MAX, |u| ms(u).saturating_add(999)),
                u64::MAX,
            );
            let mut page = AuditPage::default();
            if start > end {
                return Ok(page);
            }
            let txn = db.begin_read().map_err(redb_error)?;
            let table = txn.open_table(AUDIT).map_err(redb_error)?;
            for entry in table.range(start..=end).map_err(redb_error)? {
                let (k, v) = entry.map_err(redb_error)?;
                let (key_ms, seq) = k.value();
                let mut event: AuditEvent = serde_json::from_slice(v.value())?;
                if !f.matches(&event) {
                    continue;
                }
                if page.events.len() == f.limit {
                    page.next_after = page.events.last().map(|e| e.id.clone());
                    break;
                }
                event.id = format!("{key_ms}-{seq}");
                page.events.push(event);
            }
            Ok(page)
        })
        .await
    }
}

impl EmbeddedStore {
    /// Run `f` on the live record of `key` in a write transaction; `f`
    /// returns what to store instead (`Some(None)`: delete) and the answer.
    async fn kv_update<T: Send + 'static>(
        &self,
        key: &str,
        now: i64,
        f: impl FnOnce(Option<&[u8]>) -> (Option<Option<Vec<u8>>>, T) + Send + 'static,
    ) -> Result<T> {
        let key = key.to_owned();
        let sweep = now > 0 && {
            let mut mem = self.mem();
            let due = now - mem.last_kv_sweep >= 600;
            if due {
                mem.last_kv_sweep = now;
            }
            due
        };
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(redb_error)?;
            let answer = {
                let mut table = txn.open_table(KV).map_err(redb_error)?;
                let current = table
                    .get(key.as_str())
                    .map_err(redb_error)?
                    .map(|v| v.value().to_vec());
                let (change, answer) = f(current.as_deref().and_then(|c| kv_decode(c, now)));
                match change {
                    Some(Some(stored)) => {
                        table
                            .insert(key.as_str(), stored.as_slice())
                            .map_err(redb_error)?;
                    }
                    Some(None) => {
                        table.remove(key.as_str()).map_err(redb_error)?;
                    }
                    None => {}
                }
                // Every ten minutes, drop what has expired.
                if sweep {
                    table
                        .retain(|_, v| kv_decode(v, now).is_some())
                        .map_err(redb_error)?;
                }
                answer
            };
            txn.commit().map_err(redb_error)?;
            Ok(answer)
        })
        .await
    }
}

#[async_trait]
impl KvStore for EmbeddedStore {
    async fn kv_put(&self, key: &str, value: &[u8], expires_at: i64) -> Result<()> {
        let stored = kv_encode(value, expires_at);
        self.kv_update(key, 0, move |_| (Some(Some(stored)), ()))
            .await
    }

    async fn kv_put_new(&self, key: &str, value: &[u8], expires_at: i64, now: i64) -> Result<bool> {
        let stored = kv_encode(value, expires_at);
        self.kv_update(key, now, move |live| match live {
            Some(_) => (None, false),
            None => (Some(Some(stored)), true),
        })
        .await
    }

    async fn kv_get(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>> {
        let key = key.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(redb_error)?;
            let table = txn.open_table(KV).map_err(redb_error)?;
            Ok(table
                .get(key.as_str())
                .map_err(redb_error)?
                .and_then(|v| kv_decode(v.value(), now).map(<[u8]>::to_vec)))
        })
        .await
    }

    async fn kv_take(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>> {
        self.kv_update(key, now, |live| match live {
            Some(v) => (Some(None), Some(v.to_vec())),
            None => (None, None),
        })
        .await
    }

    async fn kv_swap(
        &self,
        key: &str,
        expected: &[u8],
        value: &[u8],
        expires_at: i64,
        now: i64,
    ) -> Result<bool> {
        let (expected, stored) = (expected.to_vec(), kv_encode(value, expires_at));
        self.kv_update(key, now, move |live| match live {
            Some(v) if v == expected.as_slice() => (Some(Some(stored)), true),
            _ => (None, false),
        })
        .await
    }

    async fn kv_delete(&self, key: &str) -> Result<()> {
        self.kv_update(key, 0, |_| (Some(None), ())).await
    }

    async fn kv_announce(&self, topic: &str) -> Result<()> {
        self.notifier.notify(topic);
        Ok(())
    }
}

#[async_trait]
impl Health for EmbeddedStore {
    async fn ping(&self) -> Result<()> {
        self.blocking(|db| {
            db.begin_read()
                .map_err(redb_error)?
                .open_table(USERS)
                .map_err(redb_error)?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn key_file_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EmbeddedStore::open(dir.path()).expect("opens");
        let first = store
            .get_or_insert_key("signing", b"one")
            .await
            .expect("created");
        let second = store
            .get_or_insert_key("signing", b"two")
            .await
            .expect("read");
        assert_eq!(
            (first.as_slice(), second.as_slice()),
            (&b"one"[..], &b"one"[..])
        );
        let path = dir.path().join("signing-key.p8");
        assert_eq!(
            std::fs::metadata(&path)
                .expect("exists")
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(
            store.get_or_insert_key("signing", b"x").await.is_err(),
            "group-readable key refused"
        );
    }
}
