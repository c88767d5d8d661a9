//! The embedded store read whole, for `auth-server migrate`: each table in
//! key order, a page at a time in a read transaction of its own.

use std::ops::Bound;

use super::*;
use crate::error::Result;
use crate::store::dump::{Dump, Page, StoredRecord, stored_record};
use crate::store::{Activation, User, redb_error};
use async_trait::async_trait;
use redb::ReadableDatabase;

/// Up to `limit` rows of `table` after `after`, as `keep` maps them (a row
/// it declines is skipped); the cursor is the last key looked at.
fn page_of<T>(
    db: &Database,
    table: TableDefinition<&str, &[u8]>,
    after: Option<&str>,
    limit: usize,
    keep: impl Fn(&str, &[u8]) -> Result<Option<T>>,
) -> Result<Page<T>> {
    let txn = db.begin_read().map_err(redb_error)?;
    let table = txn.open_table(table).map_err(redb_error)?;
    let start = after.map_or(Bound::Unbounded, Bound::Excluded);
    let mut items = Vec::new();
    for row in table
        .range::<&str>((start, Bound::Unbounded))
        .map_err(redb_error)?
    {
        let (k, v) = row.map_err(redb_error)?;
        if let Some(item) = keep(k.value(), v.value())? {
            items.push(item);
        }
        if items.len() == limit {
            let next = Some(k.value().to_owned());
            return Ok(Page { items, next });
        }
    }
    Ok(Page { items, next: None })
}

#[async_trait]
impl Dump for EmbeddedStore {
    async fn users_page(&self, after: Option<&str>, limit: usize) -> Result<Page<User>> {
        let after = after.map(str::to_owned);
        self.blocking(move |db| {
            page_of(db, USERS, after.as_deref(), limit, |_, v| {
                Ok(Some(serde_json::from_slice(v)?))
            })
        })
        .await
    }

    async fn activations_page(
        &self,
        after: Option<&str>,
        limit: usize,
        now: i64,
    ) -> Result<Page<Activation>> {
        let after = after.map(str::to_owned);
        self.blocking(move |db| {
            page_of(db, ACTIVATIONS, after.as_deref(), limit, |_, v| {
                let a: Activation = serde_json::from_slice(v)?;
                Ok((a.expires_at > now).then_some(a))
            })
        })
        .await
    }

    async fn records_page(
        &self,
        after: Option<&str>,
        limit: usize,
        now: i64,
    ) -> Result<Page<StoredRecord>> {
        let after = after.map(str::to_owned);
        self.blocking(move |db| {
            page_of(db, KV, after.as_deref(), limit, |k, v| {
                Ok(stored_record(k, v, now))
            })
        })
        .await
    }
}
