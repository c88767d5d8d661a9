//! Keys, the audit trail (its writer thread), typed records and health in the embedded store.

use super::*;
use crate::error::{Error, Result};
use crate::store::{
    AuditFilter, AuditPage, AuditStore, Health, KeyStore, KvStore, kv_decode, kv_encode, redb_error,
};
use async_trait::async_trait;
use potvrda_domain::audit::chain::{ChainName, Head, Heads};
use potvrda_proto::api::AuditEvent;
use redb::{Database, ReadableDatabase, ReadableTable};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use zeroize::Zeroizing;

#[async_trait]
impl KeyStore for EmbeddedStore {
    async fn get_or_insert_key(&self, name: &str, candidate: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let path = self.dir.join(format!("{name}-key.p8"));
        let candidate = Zeroizing::new(candidate.to_vec());
        tokio::task::spawn_blocking(move || key_file(&path, &candidate))
            .await
            .map_err(|e| Error::Internal(format!("key task: {e}")))?
    }

    async fn stored_key(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let path = self.dir.join(format!("{name}-key.p8"));
        tokio::task::spawn_blocking(move || {
            if !path.exists() {
                return Ok(None);
            }
            check_private(&path)?;
            Ok(Some(Zeroizing::new(std::fs::read(&path)?)))
        })
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

/// The audit writer: takes every event waiting, links each after the
/// chains' heads (kept here: this thread is the only writer), commits them
/// with the moved heads in one transaction (one fsync for the batch), then
/// answers each waiter. Runs until the store is dropped.
pub(super) fn audit_writer(db: &Database, jobs: &std::sync::mpsc::Receiver<AuditJob>) {
    let mut last_purge = 0u64;
    let mut heads = match read_heads(db) {
        Ok(h) => h,
        Err(e) => {
            // Refuse every event rather than start a second chain.
            let e = format!("the audit chain's heads cannot be read: {e}");
            tracing::error!(error = %e, "audit writer stopped");
            while let Ok(job) = jobs.recv() {
                let _ = job.done.send(Err(e.clone()));
            }
            return;
        }
    };
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < AUDIT_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let before = heads.clone();
        match write_audit(db, &mut batch, &mut heads, &mut last_purge) {
            Ok(ids) => {
                for (job, id) in batch.into_iter().zip(ids) {
                    let _ = job.done.send(Ok(id));
                }
            }
            Err(e) => {
                // Nothing was committed: the heads are as before the batch.
                heads = before;
                let e = e.to_string();
                for job in batch {
                    let _ = job.done.send(Err(e.clone()));
                }
            }
        }
    }
}

/// The committed heads.
pub(super) fn read_heads(db: &Database) -> Result<Heads> {
    let txn = db.begin_read().map_err(redb_error)?;
    let table = txn.open_table(AUDIT_HEADS).map_err(redb_error)?;
    let mut heads = Heads::default();
    for row in table.iter().map_err(redb_error)? {
        let (k, v) = row.map_err(redb_error)?;
        let head: Head = serde_json::from_slice(v.value())?;
        match ChainName::parse(k.value()) {
            Some(ChainName::National) => heads.national = head,
            Some(ChainName::Municipality(code)) => {
                heads.municipal.insert(code, head);
            }
            None => {}
        }
    }
    Ok(heads)
}

fn write_audit(
    db: &Database,
    batch: &mut [AuditJob],
    heads: &mut Heads,
    last_purge: &mut u64,
) -> Result<Vec<String>> {
    let txn = db.begin_write().map_err(redb_error)?;
    let mut ids = Vec::with_capacity(batch.len());
    {
        let mut table = txn.open_table(AUDIT).map_err(redb_error)?;
        let mut last = table.last().map_err(redb_error)?.map(|(k, _)| k.value());
        let mut moved = std::collections::BTreeSet::new();
        for job in batch.iter_mut() {
            // Keys never go backwards, even if the clock does.
            let key = match last {
                Some((ms, seq)) if ms >= job.key_ms => (ms, seq + 1),
                _ => (job.key_ms, 0),
            };
            heads.append(&mut job.event)?;
            moved.insert(ChainName::National);
            if let Some(code) = &job.event.municipality {
                moved.insert(ChainName::Municipality(code.clone()));
            }
            let json = serde_json::to_vec(&job.event)?;
            table.insert(key, json.as_slice()).map_err(redb_error)?;
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
        let mut stored = txn.open_table(AUDIT_HEADS).map_err(redb_error)?;
        for name in moved {
            let head = match &name {
                ChainName::National => heads.national,
                ChainName::Municipality(code) => {
                    heads.municipal.get(code).copied().unwrap_or_default()
                }
            };
            let json = serde_json::to_vec(&head)?;
            stored
                .insert(name.to_string().as_str(), json.as_slice())
                .map_err(redb_error)?;
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
            event: event.clone(),
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

    async fn audit_heads(&self) -> Result<Heads> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || read_heads(&db))
            .await
            .map_err(|e| Error::Internal(format!("audit task: {e}")))?
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
