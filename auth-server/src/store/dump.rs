//! Reading a whole store without changing it, for `auth-server migrate`
//! (issue 19): the embedded store and Redis each list what lasts in pages,
//! and [`super::postgres::PgStore`] takes it in
//! ([`super::postgres::import`]). Logins, challenges, rate counters and the
//! fleeting records are not copied: they live for minutes, and a login in
//! flight during the switch is simply tried again.

use async_trait::async_trait;

use super::records::Kind;
use crate::error::Result;
use crate::store::{Activation, AuditStore, DeviceStore, KeyStore, User, UserStore};

/// The names of the keys a store keeps ([`crate::keys::ServerKeys`]).
pub const KEY_NAMES: [&str; 4] = ["signing", "vapid", "pepper", "audit"];

/// One page of a listing, and where the next one starts (`None`: the end).
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// What this page holds.
    pub items: Vec<T>,
    /// The cursor of the next page, opaque to the caller.
    pub next: Option<String>,
}

/// A typed record as a store keeps it: its key, value and expiry (Unix
/// seconds, 0 for never).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The record's key ([`Kind::prefix`] and its id).
    pub key: String,
    /// The domain's encoding of the value (it may hold sealed secrets).
    pub value: Vec<u8>,
    /// When it expires (0: never).
    pub expires_at: i64,
}

impl std::fmt::Debug for StoredRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredRecord")
            .field("key", &self.key)
            .field("value", &"***")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Whether a record's key belongs in the system of record: the lasting
/// kinds, and (when in doubt, keep it) any key of no known kind.
pub fn lasting(key: &str) -> bool {
    Kind::of_key(key).is_none_or(Kind::lasting)
}

/// A store read whole, page by page. Accounts are read back by
/// [`UserStore::user`], keys by [`KeyStore::stored_key`], devices through [`DeviceStore::devices_of`] and the audit trail through
/// [`AuditStore::audit_events`], as the server reads them.
#[async_trait]
pub trait Dump: UserStore + DeviceStore + AuditStore + KeyStore + Send + Sync {
    /// Accounts after the cursor, at most `limit`.
    async fn users_page(&self, after: Option<&str>, limit: usize) -> Result<Page<User>>;
    /// Activation codes still valid at `now`, after the cursor.
    async fn activations_page(
        &self,
        after: Option<&str>,
        limit: usize,
        now: i64,
    ) -> Result<Page<Activation>>;
    /// Lasting records ([`lasting`]) live at `now`, after the cursor: about
    /// `limit` (Redis's `SCAN` may give a few more, or a key twice).
    async fn records_page(
        &self,
        after: Option<&str>,
        limit: usize,
        now: i64,
    ) -> Result<Page<StoredRecord>>;
}

/// A stored record in the backends' encoding ([`super::kv_encode`]) as a
/// [`StoredRecord`], if it lasts and is live at `now`.
pub(crate) fn stored_record(key: &str, stored: &[u8], now: i64) -> Option<StoredRecord> {
    let value = super::kv_decode(stored, now)?;
    let expires_at = i64::from_be_bytes(stored.get(..8)?.try_into().ok()?);
    lasting(key).then(|| StoredRecord {
        key: key.to_owned(),
        value: value.to_vec(),
        expires_at,
    })
}
