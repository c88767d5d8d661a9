//! Keys, the audit trail's door (the log is in `audit_log`), typed records and health in the embedded store.

use super::*;
use crate::error::{Error, Result};
use crate::store::{
    AuditFilter, AuditPage, AuditStore, Health, KeyStore, KvStore, kv_decode, kv_encode, redb_error,
};
use async_trait::async_trait;
use potvrda_domain::audit::chain::Heads;
use potvrda_proto::api::AuditEvent;
use redb::ReadableDatabase;
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
        Ok(self.audit.log.heads())
    }

    async fn audit_events(&self, filter: &AuditFilter) -> Result<AuditPage> {
        let (log, filter) = (Arc::clone(&self.audit.log), filter.clone());
        tokio::task::spawn_blocking(move || log.events(&filter))
            .await
            .map_err(|e| Error::Internal(format!("audit task: {e}")))?
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
        self.read(|db| {
            let txn = db.begin_read().map_err(redb_error)?;
            let table = txn.open_table(KV).map_err(redb_error)?;
            Ok(table
                .get(key.as_str())
                .map_err(redb_error)?
                .and_then(|v| kv_decode(v.value(), now).map(<[u8]>::to_vec)))
        })
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
