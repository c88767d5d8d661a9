//! The embedded store, for one instance: accounts, devices and activation
//! codes in a redb file under the data dir (ACID transactions: a crash leaves
//! no half-written record), challenges in memory, keys in files of mode 0600.

mod accounts;
mod audit_log;
mod dump;
mod logins;
mod records;

use audit_log::AuditLog;

use std::collections::HashMap;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use redb::{Database, ReadableTable, TableDefinition};

use super::{ChallengeId, Login, LoginId, Notifier, UserId, kv_decode, redb_error};
use crate::error::{Error, Result};

const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
const USERNAMES: TableDefinition<&str, &str> = TableDefinition::new("usernames");
const ACTIVATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("activations");
const DEVICES: TableDefinition<&str, &[u8]> = TableDefinition::new("devices");
/// Key `"<user_id>/<device_id>"`: the devices of a user, by prefix scan.
const USER_DEVICES: TableDefinition<&str, u8> = TableDefinition::new("user_devices");
/// Audit events by `(milliseconds, sequence)`, as releases before the
/// append-only log kept them: moved into the log on open, then empty.
const AUDIT: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("audit");
/// The audit chains' heads by chain name (JSON [`Head`](potvrda_domain::audit::chain::Head)s),
/// saved now and then with the last event they cover (see [`audit_log`]).
const AUDIT_HEADS: TableDefinition<&str, &[u8]> = TableDefinition::new("audit_heads");
/// Small records with an expiry (see [`KvStore`]).
const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
/// Audit events appended in one write, at most.
const AUDIT_BATCH: usize = 512;

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
    log: Arc<AuditLog>,
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
    event: potvrda_proto::api::AuditEvent,
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
            txn.open_table(AUDIT_HEADS).map_err(redb_error)?;
            txn.open_table(KV).map_err(redb_error)?;
        }
        txn.commit().map_err(redb_error)?;
        let db = Arc::new(db);
        let (log, writer) = AuditLog::open(dir, Arc::clone(&db))?;
        let (tx, jobs) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("potvrda-audit".into())
            .spawn(move || writer.run(&jobs, AUDIT_BATCH))?;
        let audit = Arc::new(AuditWriter {
            log,
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

    /// A point read, on the caller's thread: redb reads from its own page
    /// cache take microseconds, less than the hand-off to the blocking pool
    /// would (writes, scans and their fsyncs stay on that pool).
    fn read<T>(&self, f: impl FnOnce(&Database) -> Result<T>) -> Result<T> {
        f(&self.db)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KeyStore;

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
