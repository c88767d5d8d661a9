//! Keys, the audit trail (monthly partitions) and the lasting typed records
//! in PostgreSQL.

use async_trait::async_trait;
use potvrda_domain::audit::chain::{ChainName, Head, Heads, link_event};
use potvrda_proto::api::{AuditEvent, AuditKind, ChainLink, Severity};
use sqlx::types::Json;
use sqlx::{Postgres, Transaction};
use zeroize::Zeroizing;

use super::PgStore;
use crate::error::Result;
use crate::store::{AuditFilter, AuditPage, AuditStore, KeyStore};

/// How often (clock seconds) months past retention are looked for.
const PURGE_EVERY: i64 = 3_600;
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

#[async_trait]
impl AuditStore for PgStore {
    async fn append_audit(&self, event: &AuditEvent, retain_from: i64) -> Result<String> {
        let id = self.insert_audit(event).await?;
        if Self::due(&self.last_purge, event.at, PURGE_EVERY) {
            self.drop_months_before(retain_from, event.at).await?;
        }
        Ok(id)
    }

    async fn audit_heads(&self) -> Result<Heads> {
        self.heads().await
    }

    async fn audit_events(&self, f: &AuditFilter) -> Result<AuditPage> {
        let limit = i64::try_from(f.limit).unwrap_or(i64::MAX);
        let after = f
            .after
            .map(|(_, seq)| i64::try_from(seq).unwrap_or(i64::MAX));
        let rows = self
            .timed("audit_events", async {
                sqlx::query_as::<_, (i64, i64, Json<AuditEvent>)>(
                    "SELECT seq, at_ms, event FROM audit \
                     WHERE ($1::text IS NULL OR user_id = $1) \
                       AND ($2::text IS NULL OR actor_id = $2) \
                       AND ($3::text IS NULL OR municipality = $3) \
                       AND ($4::bigint IS NULL OR at >= $4) \
                       AND ($5::bigint IS NULL OR at <= $5) \
                       AND ($6::bigint IS NULL OR seq > $6) \
                     ORDER BY seq LIMIT $7 + 1",
                )
                .bind(&f.user_id)
                .bind(&f.actor_id)
                .bind(&f.municipality)
                .bind(f.since)
                .bind(f.until)
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
            })
            .await?;
        let mut page = AuditPage::default();
        for (seq, at_ms, Json(mut event)) in rows {
            event.id = format!("{at_ms}-{seq}");
            if page.events.len() == f.limit {
                page.next_after = page.events.last().map(|e| e.id.clone());
                break;
            }
            page.events.push(event);
        }
        Ok(page)
    }
}

impl PgStore {
    /// Insert one event into the month it belongs to (made on first use),
    /// linked after the heads of its chains, locked for the transaction.
    async fn insert_audit(&self, event: &AuditEvent) -> Result<String> {
        let at_ms = event.at.saturating_mul(1000);
        let mut event = event.clone();
        let names = chain_names(event.municipality.as_deref());
        self.ensure_heads(&names).await?;
        let seq = self
            .timed("append_audit", async {
                let mut tx = self.pool.begin().await?;
                // The heads first: a month's partition is made (a lock on the
                // whole trail) only by whoever holds the national head, so no
                // append waits on it while holding what it waits for.
                let (national, municipal) = lock_heads(&mut tx, &names).await?;
                sqlx::query("SELECT potvrda_audit_month($1)")
                    .bind(event.at)
                    .execute(&mut *tx)
                    .await?;
                let (national, municipal) = link_event(&mut event, &national, municipal.as_ref())
                    .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
                let seq: i64 = sqlx::query_scalar(
                    "INSERT INTO audit (at, at_ms, user_id, actor_id, municipality, event) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
                )
                .bind(event.at)
                .bind(at_ms)
                .bind(&event.user_id)
                .bind(&event.actor_id)
                .bind(&event.municipality)
                .bind(Json(&event))
                .fetch_one(&mut *tx)
                .await?;
                let mut moved = vec![(ChainName::National.to_string(), national)];
                if let (Some(code), Some(head)) = (&event.municipality, municipal) {
                    moved.push((ChainName::Municipality(code.clone()).to_string(), head));
                }
                save_heads(&mut tx, &moved).await?;
                tx.commit().await?;
                Ok(seq)
            })
            .await?;
        Ok(format!("{at_ms}-{seq}"))
    }

    /// Drop the months wholly before `retain_from`, and record each drop.
    async fn drop_months_before(&self, retain_from: i64, now: i64) -> Result<()> {
        let dropped = self
            .timed("drop_audit_months", async {
                sqlx::query_as::<_, (String, i64, Option<Json<ChainLink>>)>(
                    "SELECT month, events, last_link FROM potvrda_audit_drop_before($1)",
                )
                .bind(retain_from)
                .fetch_all(&self.pool)
                .await
            })
            .await?;
        for (month, events, last) in dropped {
            tracing::info!(month, events, "audit month past retention dropped");
            let mut detail = serde_json::Map::new();
            detail.insert("month".into(), month.into());
            detail.insert("events".into(), events.into());
            if let Some(Json(last)) = last {
                detail.insert("last_n".into(), last.n.into());
                detail.insert("last_hash".into(), last.hash.into());
            }
            let event = AuditEvent {
                id: String::new(),
                at: now,
                kind: AuditKind::AuditMonthDropped,
                severity: Severity::Info,
                actor_id: None,
                user_id: None,
                municipality: None,
                ip: None,
                user_agent: None,
                detail,
                chain: None,
            };
            self.insert_audit(&event).await?;
        }
        Ok(())
    }

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

/// The heads an event moves, locked until the transaction ends (in name
/// order: `municipality:…` before `national`, the same order for every
/// append, so two appends never wait on each other in a circle). Their rows
/// exist: [`PgStore::ensure_heads`] made them before the transaction.
async fn lock_heads(
    tx: &mut Transaction<'_, Postgres>,
    names: &[String],
) -> std::result::Result<(Head, Option<Head>), sqlx::Error> {
    let rows: Vec<(String, i64, Vec<u8>, bool)> = sqlx::query_as(
        "SELECT chain, n, hash, anchored FROM audit_heads \
         WHERE chain = ANY($1) ORDER BY chain FOR UPDATE",
    )
    .bind(names)
    .fetch_all(&mut **tx)
    .await?;
    let mut found: std::collections::BTreeMap<String, Head> = rows
        .into_iter()
        .map(|(chain, n, hash, anchored)| (chain, head_of(n, &hash, anchored)))
        .collect();
    let national = found
        .remove(&ChainName::National.to_string())
        .unwrap_or_default();
    let municipal = names.get(1).and_then(|m| found.remove(m));
    Ok((national, municipal))
}

/// The chains an event is linked into, national first.
fn chain_names(municipality: Option<&str>) -> Vec<String> {
    let mut names = vec![ChainName::National.to_string()];
    if let Some(code) = municipality {
        names.push(ChainName::Municipality(code.to_owned()).to_string());
    }
    names
}

fn head_of(n: i64, hash: &[u8], anchored: bool) -> Head {
    let mut digest = [0u8; 32];
    if hash.len() == 32 {
        digest.copy_from_slice(hash);
    }
    Head {
        n: u64::try_from(n).unwrap_or(0),
        hash: digest,
        anchored,
    }
}

/// Write the moved heads (still locked by this transaction).
async fn save_heads(
    tx: &mut Transaction<'_, Postgres>,
    moved: &[(String, Head)],
) -> std::result::Result<(), sqlx::Error> {
    let (chains, ns, hashes, anchored) = head_columns(moved);
    sqlx::query(
        "UPDATE audit_heads h SET n = v.n, hash = v.hash, anchored = v.anchored \
         FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::boolean[]) AS v(chain, n, hash, anchored) \
         WHERE h.chain = v.chain",
    )
    .bind(&chains)
    .bind(&ns)
    .bind(&hashes)
    .bind(&anchored)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Heads as the columns of an `unnest`: chain, n, hash, anchored.
pub(super) fn head_columns(heads: &[(String, Head)]) -> HeadColumns<'_> {
    (
        heads.iter().map(|(c, _)| c.as_str()).collect(),
        heads
            .iter()
            .map(|(_, h)| i64::try_from(h.n).unwrap_or(i64::MAX))
            .collect(),
        heads.iter().map(|(_, h)| h.hash.to_vec()).collect(),
        heads.iter().map(|(_, h)| h.anchored).collect(),
    )
}

/// What [`head_columns`] gives.
pub(super) type HeadColumns<'a> = (Vec<&'a str>, Vec<i64>, Vec<Vec<u8>>, Vec<bool>);

impl PgStore {
    /// Make the head rows of `names` that may be missing, each in a statement
    /// of its own (committed at once, holding no lock an append waits on).
    async fn ensure_heads(&self, names: &[String]) -> Result<()> {
        let missing: Vec<String> = {
            let known = self
                .known_chains
                .lock()
                .map_err(|_| crate::error::Error::Internal("chain cache poisoned".into()))?;
            names
                .iter()
                .filter(|n| !known.contains(*n))
                .cloned()
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        self.timed("audit_heads_made", async {
            sqlx::query(
                "INSERT INTO audit_heads (chain, n, hash) \
                 SELECT unnest($1::text[]), 0, $2 ON CONFLICT DO NOTHING",
            )
            .bind(&missing)
            .bind(vec![0u8; 32])
            .execute(&self.pool)
            .await
        })
        .await?;
        if let Ok(mut known) = self.known_chains.lock() {
            known.extend(missing);
        }
        Ok(())
    }

    /// Every chain's head, as committed.
    pub(crate) async fn heads(&self) -> Result<Heads> {
        let rows: Vec<(String, i64, Vec<u8>, bool)> = self
            .timed("audit_heads", async {
                sqlx::query_as("SELECT chain, n, hash, anchored FROM audit_heads")
                    .fetch_all(&self.pool)
                    .await
            })
            .await?;
        let mut heads = Heads::default();
        for (chain, n, hash, anchored) in rows {
            let head = head_of(n, &hash, anchored);
            match ChainName::parse(&chain) {
                Some(ChainName::National) => heads.national = head,
                Some(ChainName::Municipality(code)) => {
                    heads.municipal.insert(code, head);
                }
                None => {}
            }
        }
        Ok(heads)
    }
}
