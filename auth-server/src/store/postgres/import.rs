//! Taking in an older store (`auth-server migrate`, issue 19): batches of
//! accounts, activation codes, devices and records written by upserts that
//! change nothing when repeated, the keys only where the target has none
//! (or the same), the audit trail copied link for link with its progress in
//! the same transaction, and the chains' heads set to the source's at the end.

use potvrda_domain::audit::chain::Heads;
use potvrda_proto::api::AuditEvent;

use super::PgStore;
use crate::error::{Error, Result};
use crate::store::dump::StoredRecord;
use crate::store::{Activation, Device, User};

/// The `migration_progress` step of the audit copy.
const AUDIT_STEP: &str = "audit";

/// How much of each thing a store holds (or a run wrote).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Accounts.
    pub users: u64,
    /// Pending activation codes.
    pub activations: u64,
    /// Devices.
    pub devices: u64,
    /// Lasting typed records.
    pub records: u64,
    /// Stored keys.
    pub keys: u64,
    /// Audit events.
    pub audit: u64,
}

impl Totals {
    /// Each kind with its name, in the order they are copied.
    pub fn named(&self) -> [(&'static str, u64); 6] {
        [
            ("accounts", self.users),
            ("activation codes", self.activations),
            ("devices", self.devices),
            ("records", self.records),
            ("keys", self.keys),
            ("audit events", self.audit),
        ]
    }
}

fn json<T: serde::Serialize>(items: &[T]) -> Result<Vec<serde_json::Value>> {
    items
        .iter()
        .map(|i| serde_json::to_value(i).map_err(Error::from))
        .collect()
}

impl PgStore {
    /// Upsert accounts; returns how many were new or different.
    pub async fn import_users(&self, users: &[User]) -> Result<u64> {
        let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
        let names: Vec<&str> = users.iter().map(|u| u.username.as_str()).collect();
        let municipalities: Vec<Option<&str>> =
            users.iter().map(|u| u.municipality.as_deref()).collect();
        let records = json(users)?;
        self.timed("import_users", async {
            sqlx::query(
                "INSERT INTO users (id, username, municipality, record) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[]) \
                 ON CONFLICT (id) DO UPDATE SET username = EXCLUDED.username, \
                   municipality = EXCLUDED.municipality, record = EXCLUDED.record \
                 WHERE users.record IS DISTINCT FROM EXCLUDED.record",
            )
            .bind(&ids)
            .bind(&names)
            .bind(&municipalities)
            .bind(&records)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
        })
        .await
    }

    /// Upsert activation codes (their accounts are in already).
    pub async fn import_activations(&self, activations: &[Activation]) -> Result<u64> {
        let hashes: Vec<&str> = activations.iter().map(|a| a.code_hash.as_str()).collect();
        let users: Vec<&str> = activations.iter().map(|a| a.user_id.as_str()).collect();
        let expiries: Vec<i64> = activations.iter().map(|a| a.expires_at).collect();
        self.timed("import_activations", async {
            sqlx::query(
                "INSERT INTO activations (code_hash, user_id, expires_at) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) \
                 ON CONFLICT (code_hash) DO UPDATE SET user_id = EXCLUDED.user_id, \
                   expires_at = EXCLUDED.expires_at \
                 WHERE (activations.user_id, activations.expires_at) \
                   IS DISTINCT FROM (EXCLUDED.user_id, EXCLUDED.expires_at)",
            )
            .bind(&hashes)
            .bind(&users)
            .bind(&expiries)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
        })
        .await
    }

    /// Upsert devices (their accounts are in already).
    pub async fn import_devices(&self, devices: &[Device]) -> Result<u64> {
        let ids: Vec<&str> = devices.iter().map(|d| d.id.as_str()).collect();
        let users: Vec<&str> = devices.iter().map(|d| d.user_id.as_str()).collect();
        let records = json(devices)?;
        self.timed("import_devices", async {
            sqlx::query(
                "INSERT INTO devices (id, user_id, record) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[]) \
                 ON CONFLICT (id) DO UPDATE SET user_id = EXCLUDED.user_id, record = EXCLUDED.record \
                 WHERE devices.record IS DISTINCT FROM EXCLUDED.record",
            )
            .bind(&ids)
            .bind(&users)
            .bind(&records)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
        })
        .await
    }

    /// Upsert lasting records.
    pub async fn import_records(&self, records: &[StoredRecord]) -> Result<u64> {
        let keys: Vec<&str> = records.iter().map(|r| r.key.as_str()).collect();
        let values: Vec<&[u8]> = records.iter().map(|r| r.value.as_slice()).collect();
        let expiries: Vec<i64> = records.iter().map(|r| r.expires_at).collect();
        self.timed("import_records", async {
            sqlx::query(
                "INSERT INTO records (key, value, expires_at) \
                 SELECT * FROM unnest($1::text[], $2::bytea[], $3::bigint[]) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, \
                   expires_at = EXCLUDED.expires_at \
                 WHERE (records.value, records.expires_at) \
                   IS DISTINCT FROM (EXCLUDED.value, EXCLUDED.expires_at)",
            )
            .bind(&keys)
            .bind(&values)
            .bind(&expiries)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
        })
        .await
    }

    /// Store a key the target lacks; `Ok(false)` if it already held this
    /// one, an error if it holds another (it has served with keys of its own).
    pub async fn import_key(&self, name: &str, material: &[u8]) -> Result<bool> {
        let inserted = self
            .timed("import_key", async {
                sqlx::query(
                    "INSERT INTO keys (name, material) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                )
                .bind(name)
                .bind(material)
                .execute(&self.pool)
                .await
                .map(|r| r.rows_affected())
            })
            .await?;
        let stored = crate::store::KeyStore::stored_key(self, name)
            .await?
            .unwrap_or_default();
        if !bool::from(subtle::ConstantTimeEq::ct_eq(stored.as_slice(), material)) {
            return Err(Error::Store(format!(
                "the target database already holds another {name} key: it has served on its own; migrate into an empty database"
            )));
        }
        Ok(inserted == 1)
    }

    /// Where the audit copy stopped: the source id of the last event copied.
    /// Refuses a target with a trail of its own (events not copied here).
    pub async fn audit_import_cursor(&self) -> Result<Option<String>> {
        let (cursor, events) = self
            .timed("audit_import_cursor", async {
                sqlx::query_as::<_, (Option<String>, bool)>(
                    "SELECT (SELECT cursor FROM migration_progress WHERE step = $1), \
                            EXISTS (SELECT 1 FROM audit)",
                )
                .bind(AUDIT_STEP)
                .fetch_one(&self.pool)
                .await
            })
            .await?;
        if cursor.is_none() && events {
            return Err(Error::Store(
                "the target database already holds an audit trail of its own: migrate into an empty database".into(),
            ));
        }
        Ok(cursor)
    }

    /// Copy a batch of events as they are (their links included) and move
    /// the cursor to `last_id`, in one transaction.
    pub async fn import_audit(&self, events: &[AuditEvent], last_id: &str) -> Result<()> {
        let ats: Vec<i64> = events.iter().map(|e| e.at).collect();
        self.timed("import_audit", async {
            let mut tx = self.pool.begin().await?;
            super::audit::ensure_months(&mut tx, &ats).await?;
            super::audit::insert_rows(&mut tx, events).await?;
            sqlx::query(
                "INSERT INTO migration_progress (step, cursor) VALUES ($1, $2) \
                 ON CONFLICT (step) DO UPDATE SET cursor = EXCLUDED.cursor",
            )
            .bind(AUDIT_STEP)
            .bind(last_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        })
        .await
    }

    /// Set every chain's head to the source's (the events were copied
    /// link for link, so its heads are theirs).
    pub async fn import_heads(&self, heads: &Heads) -> Result<()> {
        let rows = super::audit::head_rows(heads);
        let (chains, ns, hashes, anchored) = super::audit::head_columns(&rows);
        self.timed("import_heads", async {
            sqlx::query(
                "INSERT INTO audit_heads (chain, n, hash, anchored) \
                 SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::boolean[]) \
                 ON CONFLICT (chain) DO UPDATE SET n = EXCLUDED.n, hash = EXCLUDED.hash, \
                   anchored = EXCLUDED.anchored",
            )
            .bind(&chains)
            .bind(&ns)
            .bind(&hashes)
            .bind(&anchored)
            .execute(&self.pool)
            .await
            .map(drop)
        })
        .await?;
        if let Ok(mut known) = self.known_chains.lock() {
            known.extend(chains.iter().map(|c| (*c).to_owned()));
        }
        Ok(())
    }

    /// How much the database holds.
    pub async fn totals(&self) -> Result<Totals> {
        let row: (i64, i64, i64, i64, i64, i64) = self
            .timed("totals", async {
                sqlx::query_as(
                    "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM activations), \
                            (SELECT count(*) FROM devices), (SELECT count(*) FROM records), \
                            (SELECT count(*) FROM keys), (SELECT count(*) FROM audit)",
                )
                .fetch_one(&self.pool)
                .await
            })
            .await?;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(Totals {
            users: n(row.0),
            activations: n(row.1),
            devices: n(row.2),
            records: n(row.3),
            keys: n(row.4),
            audit: n(row.5),
        })
    }

    /// A record as stored, whatever its expiry (for the migration's sample).
    pub async fn stored_record(&self, key: &str) -> Result<Option<(Vec<u8>, i64)>> {
        self.timed("stored_record", async {
            sqlx::query_as("SELECT value, expires_at FROM records WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await
        })
        .await
    }
}
