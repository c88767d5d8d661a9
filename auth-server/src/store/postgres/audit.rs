//! The audit trail in PostgreSQL: monthly partitions, the chains' heads
//! locked by each append, and appends batched: the events of concurrent
//! requests waiting while one transaction commits go in together in the next
//! (one lock of the heads, one insert, one commit for the batch), as the
//! embedded store's writer thread batches its own.

use async_trait::async_trait;
use potvrda_domain::audit::Event;
use potvrda_domain::audit::chain::{ChainName, Head, Heads};
use potvrda_proto::api::{AuditEvent, ChainLink};
use sqlx::types::Json;
use sqlx::{Postgres, Transaction};

use super::PgStore;
use crate::error::{Error, Result};
use crate::store::{AuditFilter, AuditPage, AuditStore};

/// How often (clock seconds) months past retention are looked for.
const PURGE_EVERY: i64 = 3_600;
/// Events written in one transaction, at most.
const AUDIT_BATCH: usize = 256;

/// An event waiting for its batch, and where its id goes.
pub(super) struct AuditJob {
    event: AuditEvent,
    done: tokio::sync::oneshot::Sender<Result<String>>,
}

/// The appends waiting, and the turn to write them.
#[derive(Default)]
pub(super) struct AuditQueue {
    waiting: std::sync::Mutex<Vec<AuditJob>>,
    writing: tokio::sync::Mutex<()>,
}

#[async_trait]
impl AuditStore for PgStore {
    async fn append_audit(&self, event: &AuditEvent, retain_from: i64) -> Result<String> {
        let id = self.append_batched(event).await?;
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
    /// Append `event` with whatever else is waiting: queued, then written
    /// by whoever holds the turn. The write runs in a task of its own, so a
    /// request dropped while it writes (a client gone) loses nobody's event;
    /// correctness does not rest on the turn but on the heads' row locks.
    async fn append_batched(&self, event: &AuditEvent) -> Result<String> {
        let (done, answer) = tokio::sync::oneshot::channel();
        self.audit_queue
            .waiting
            .lock()
            .map_err(|_| Error::Internal("audit queue poisoned".into()))?
            .push(AuditJob {
                event: event.clone(),
                done,
            });
        {
            let _turn = self.audit_queue.writing.lock().await;
            loop {
                let batch: Vec<AuditJob> = {
                    let mut waiting = self
                        .audit_queue
                        .waiting
                        .lock()
                        .map_err(|_| Error::Internal("audit queue poisoned".into()))?;
                    let n = waiting.len().min(AUDIT_BATCH);
                    waiting.drain(..n).collect()
                };
                if batch.is_empty() {
                    break;
                }
                let store = self.clone();
                let _ = tokio::spawn(async move { store.write_batch(batch).await }).await;
            }
        }
        answer
            .await
            .map_err(|_| Error::Internal("audit write task ended".into()))?
    }

    /// Write `jobs` in one transaction and answer each.
    async fn write_batch(&self, jobs: Vec<AuditJob>) {
        let (events, senders): (Vec<AuditEvent>, Vec<_>) =
            jobs.into_iter().map(|j| (j.event, j.done)).unzip();
        match self.insert_batch(events).await {
            Ok(ids) => {
                for (done, id) in senders.into_iter().zip(ids) {
                    let _ = done.send(Ok(id));
                }
            }
            Err(e) => {
                for done in senders {
                    let _ = done.send(Err(same_error(&e)));
                }
            }
        }
    }

    /// Insert `events` in order, each into the month it belongs to (made on
    /// first use), linked after the heads of its chains, locked for the
    /// transaction. Returns their ids.
    async fn insert_batch(&self, mut events: Vec<AuditEvent>) -> Result<Vec<String>> {
        let mut names: Vec<String> = events
            .iter()
            .flat_map(|e| chain_names(e.municipality.as_deref()))
            .collect();
        names.sort();
        names.dedup();
        self.ensure_heads(&names).await?;
        let seqs = self
            .timed("append_audit", async {
                let mut tx = self.pool.begin().await?;
                // The heads first: a month's partition is made (a lock on the
                // whole trail) only by whoever holds the national head, so no
                // append waits on it while holding what it waits for.
                let mut heads = lock_heads(&mut tx, &names).await?;
                let ats: Vec<i64> = events.iter().map(|e| e.at).collect();
                ensure_months(&mut tx, &ats).await?;
                for event in &mut events {
                    heads
                        .append(event)
                        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
                }
                let mut seqs = insert_rows(&mut tx, &events).await?;
                save_heads(&mut tx, &head_rows(&heads)).await?;
                tx.commit().await?;
                // Sequence numbers are drawn in the rows' order.
                seqs.sort_unstable();
                Ok(seqs)
            })
            .await?;
        Ok(events
            .iter()
            .zip(seqs)
            .map(|(e, seq)| format!("{}-{seq}", e.at.saturating_mul(1000)))
            .collect())
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
            let event = Event::month_dropped(
                &month,
                u64::try_from(events).unwrap_or(0),
                last.as_ref().map(|l| &l.0),
                now,
            );
            self.append_batched(&event).await?;
        }
        Ok(())
    }
}

/// The same failure for every event of a failed batch.
fn same_error(e: &Error) -> Error {
    match e {
        Error::StoreUnavailable(m) => Error::StoreUnavailable(m.clone()),
        other => Error::Store(other.to_string()),
    }
}

/// The monthly partitions holding `ats` (Unix seconds), made where missing.
pub(super) async fn ensure_months(
    tx: &mut Transaction<'_, Postgres>,
    ats: &[i64],
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query("SELECT potvrda_audit_month(a) FROM (SELECT DISTINCT unnest($1::bigint[]) AS a) m")
        .bind(ats)
        .execute(&mut **tx)
        .await
        .map(drop)
}

/// Insert the rows of `events` (linked already), in order; their `seq`s.
pub(super) async fn insert_rows(
    tx: &mut Transaction<'_, Postgres>,
    events: &[AuditEvent],
) -> std::result::Result<Vec<i64>, sqlx::Error> {
    let ats: Vec<i64> = events.iter().map(|e| e.at).collect();
    let ms: Vec<i64> = ats.iter().map(|a| a.saturating_mul(1000)).collect();
    let users: Vec<Option<&str>> = events.iter().map(|e| e.user_id.as_deref()).collect();
    let actors: Vec<Option<&str>> = events.iter().map(|e| e.actor_id.as_deref()).collect();
    let places: Vec<Option<&str>> = events.iter().map(|e| e.municipality.as_deref()).collect();
    let stored: Vec<Json<AuditEvent>> = events
        .iter()
        .map(|e| {
            Json(AuditEvent {
                id: String::new(),
                ..e.clone()
            })
        })
        .collect();
    sqlx::query_scalar(
        "INSERT INTO audit (at, at_ms, user_id, actor_id, municipality, event) \
         SELECT at, at_ms, user_id, actor_id, municipality, event \
         FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::jsonb[]) \
         WITH ORDINALITY AS e(at, at_ms, user_id, actor_id, municipality, event, i) ORDER BY i \
         RETURNING seq",
    )
    .bind(&ats)
    .bind(&ms)
    .bind(&users)
    .bind(&actors)
    .bind(&places)
    .bind(&stored)
    .fetch_all(&mut **tx)
    .await
}

/// The heads of `names`, locked until the transaction ends (in name order:
/// `municipality:…` before `national`, the same order for every append, so
/// two appends never wait on each other in a circle). Their rows exist:
/// [`PgStore::ensure_heads`] made them before the transaction.
async fn lock_heads(
    tx: &mut Transaction<'_, Postgres>,
    names: &[String],
) -> std::result::Result<Heads, sqlx::Error> {
    let rows: Vec<(String, i64, Vec<u8>, bool)> = sqlx::query_as(
        "SELECT chain, n, hash, anchored FROM audit_heads \
         WHERE chain = ANY($1) ORDER BY chain FOR UPDATE",
    )
    .bind(names)
    .fetch_all(&mut **tx)
    .await?;
    Ok(heads_of(rows))
}

/// Stored head rows as [`Heads`].
fn heads_of(rows: Vec<(String, i64, Vec<u8>, bool)>) -> Heads {
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
    heads
}

/// Every head as a row, national first.
pub(super) fn head_rows(heads: &Heads) -> Vec<(String, Head)> {
    let mut rows = vec![(ChainName::National.to_string(), heads.national)];
    rows.extend(
        heads
            .municipal
            .iter()
            .map(|(code, h)| (ChainName::Municipality(code.clone()).to_string(), *h)),
    );
    rows
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
        Ok(heads_of(rows))
    }
}
