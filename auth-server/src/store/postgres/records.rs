//! Keys and the lasting typed records in PostgreSQL.

use async_trait::async_trait;
use zeroize::Zeroizing;

use super::PgStore;
use crate::error::Result;
use crate::store::KeyStore;

/// How often (clock seconds) expired records are deleted.
const SWEEP_EVERY: i64 = 600;

#[async_trait]
impl KeyStore for PgStore {
    async fn get_or_insert_key(&self, name: &str, candidate: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.timed("get_or_insert_key", async {
            sqlx::query("INSERT INTO keys (name, material) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(name)
                .bind(candidate)
                .execute(&self.pool)
                .await?;
            sqlx::query_scalar::<_, Vec<u8>>("SELECT material FROM keys WHERE name = $1")
                .bind(name)
                .fetch_one(&self.pool)
                .await
        })
        .await
        .map(Zeroizing::new)
    }

    async fn stored_key(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        self.timed("stored_key", async {
            sqlx::query_scalar::<_, Vec<u8>>("SELECT material FROM keys WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await
        })
        .await
        .map(|k| k.map(Zeroizing::new))
    }
}

impl PgStore {
    /// Store `value` under `key` until `expires_at` (0: never).
    pub(crate) async fn record_put(&self, key: &str, value: &[u8], expires_at: i64) -> Result<()> {
        self.timed("record_put", async {
            sqlx::query(
                "INSERT INTO records (key, value, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO UPDATE SET value = $2, expires_at = $3",
            )
            .bind(key)
            .bind(value)
            .bind(expires_at)
            .execute(&self.pool)
            .await
            .map(drop)
        })
        .await
    }

    /// Store unless a live record is there; `true` when stored.
    pub(crate) async fn record_put_new(
        &self,
        key: &str,
        value: &[u8],
        expires_at: i64,
        now: i64,
    ) -> Result<bool> {
        self.sweep(now).await?;
        self.timed("record_put_new", async {
            sqlx::query(
                "INSERT INTO records (key, value, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO UPDATE SET value = $2, expires_at = $3 \
                 WHERE records.expires_at <> 0 AND records.expires_at <= $4",
            )
            .bind(key)
            .bind(value)
            .bind(expires_at)
            .bind(now)
            .execute(&self.pool)
            .await
        })
        .await
        .map(|r| r.rows_affected() == 1)
    }

    /// The live record.
    pub(crate) async fn record_get(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>> {
        self.timed("record_get", async {
            sqlx::query_scalar(
                "SELECT value FROM records WHERE key = $1 AND (expires_at = 0 OR expires_at > $2)",
            )
            .bind(key)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
        })
        .await
    }

    /// Read and remove the live record, atomically.
    pub(crate) async fn record_take(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>> {
        self.timed("record_take", async {
            sqlx::query_scalar(
                "DELETE FROM records WHERE key = $1 AND (expires_at = 0 OR expires_at > $2) \
                 RETURNING value",
            )
            .bind(key)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
        })
        .await
    }

    /// Replace the live record if it still is `expected`; `true` when replaced.
    pub(crate) async fn record_swap(
        &self,
        key: &str,
        expected: &[u8],
        value: &[u8],
        expires_at: i64,
        now: i64,
    ) -> Result<bool> {
        self.timed("record_swap", async {
            sqlx::query(
                "UPDATE records SET value = $3, expires_at = $4 \
                 WHERE key = $1 AND value = $2 AND (expires_at = 0 OR expires_at > $5)",
            )
            .bind(key)
            .bind(expected)
            .bind(value)
            .bind(expires_at)
            .bind(now)
            .execute(&self.pool)
            .await
        })
        .await
        .map(|r| r.rows_affected() == 1)
    }

    /// Remove.
    pub(crate) async fn record_delete(&self, key: &str) -> Result<()> {
        self.timed("record_delete", async {
            sqlx::query("DELETE FROM records WHERE key = $1")
                .bind(key)
                .execute(&self.pool)
                .await
                .map(drop)
        })
        .await
    }

    /// Every ten minutes of the clock, delete what has expired.
    async fn sweep(&self, now: i64) -> Result<()> {
        if now <= 0 || !Self::due(&self.last_sweep, now, SWEEP_EVERY) {
            return Ok(());
        }
        self.timed("sweep_records", async {
            sqlx::query("DELETE FROM records WHERE expires_at <> 0 AND expires_at <= $1")
                .bind(now)
                .execute(&self.pool)
                .await
                .map(drop)
        })
        .await
    }
}
