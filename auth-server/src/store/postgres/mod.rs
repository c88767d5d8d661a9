//! PostgreSQL, the system of record (issue 19): accounts, devices,
//! activation codes, the lasting typed records, the stored keys and the
//! audit trail, in tables made by versioned migrations (`migrations/`, run at
//! start). It never stands alone: [`super::split::SplitStore`] pairs it with
//! Redis, which keeps what is fleeting.

mod accounts;
mod audit;
pub mod import;
mod records;

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::error::{Error, Result};
use crate::ports::Meter;
use crate::store::{Health, PoolUsage};

/// The schema's migrations, in order; each is applied once, in a
/// transaction, and recorded in `_sqlx_migrations` with its checksum (an
/// edited migration is refused at start).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "system of record",
        include_str!("../../../migrations/0001_system_of_record.sql"),
    ),
    (
        2,
        "audit chain",
        include_str!("../../../migrations/0002_audit_chain.sql"),
    ),
    (
        3,
        "migration progress",
        include_str!("../../../migrations/0003_migration_progress.sql"),
    ),
];

/// The migrations as sqlx runs them.
fn migrator() -> Migrator {
    Migrator {
        migrations: Cow::Owned(
            MIGRATIONS
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect(),
        ),
        ..Migrator::DEFAULT
    }
}

/// The newest schema version this release knows.
pub fn schema_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// How to reach PostgreSQL.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    /// Connections at most.
    pub max_connections: u32,
    /// How long a request waits for a free connection before a 503.
    pub acquire_timeout: Duration,
}

/// The PostgreSQL store.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    failures: Arc<AtomicU64>,
    meter: Arc<dyn Meter>,
    /// Clock second of the last sweep of expired records.
    last_sweep: Arc<AtomicI64>,
    /// Clock second of the last look for audit months past retention.
    last_purge: Arc<AtomicI64>,
    /// The audit chains whose head row is known to exist.
    known_chains: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// Audit appends waiting for their batch.
    audit_queue: Arc<audit::AuditQueue>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connect to `url` (`postgres://…`, or `postgres:///db?host=/run/postgresql`
    /// for a unix socket) and bring the schema up to date.
    pub async fn connect(
        url: &secrecy::SecretString,
        pool: PoolSettings,
        meter: Arc<dyn Meter>,
    ) -> Result<Self> {
        use secrecy::ExposeSecret as _;
        // The URL may hold a password: its parse error is not repeated.
        let options = PgConnectOptions::from_str(url.expose_secret())
            .map_err(|_| Error::Config("store.postgres_url is not a PostgreSQL URL".into()))?
            .application_name("potvrda");
        let pool = PgPoolOptions::new()
            .max_connections(pool.max_connections)
            .acquire_timeout(pool.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(pg_error)?;
        migrator()
            .run(&pool)
            .await
            .map_err(|e| Error::Store(format!("PostgreSQL migrations: {e}")))?;
        Ok(Self {
            pool,
            failures: Arc::default(),
            meter,
            last_sweep: Arc::default(),
            last_purge: Arc::default(),
            known_chains: Arc::default(),
            audit_queue: Arc::default(),
        })
    }

    /// The schema version the database is at.
    pub async fn version(&self) -> Result<i64> {
        self.timed("version", async {
            sqlx::query_scalar::<_, Option<i64>>(
                "SELECT max(version) FROM _sqlx_migrations WHERE success",
            )
            .fetch_one(&self.pool)
            .await
            .map(Option::unwrap_or_default)
        })
        .await
    }

    /// Run `query`, timing it under `op` and counting its failure.
    async fn timed<T>(
        &self,
        op: &'static str,
        query: impl Future<Output = std::result::Result<T, sqlx::Error>>,
    ) -> Result<T> {
        let started = Instant::now();
        let result = query.await;
        self.meter.store_query(op, started.elapsed());
        result.map_err(|e| {
            self.failures.fetch_add(1, Ordering::Relaxed);
            pg_error(e)
        })
    }

    /// `true` at most once per `every` clock seconds across calls sharing `last`.
    fn due(last: &AtomicI64, now: i64, every: i64) -> bool {
        let before = last.load(Ordering::Relaxed);
        now - before >= every
            && last
                .compare_exchange(before, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// A driver failure as the domain sees it: unreachable (a 503 for the
/// client) or otherwise failed. The text goes to the log only.
fn pg_error(e: sqlx::Error) -> Error {
    let unavailable = match &e {
        // A proxy or virtual address with no primary behind it (HAProxy,
        // a service during a failover) accepts, then closes the connection
        // in the handshake: sqlx reports that as a protocol error.
        sqlx::Error::Io(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // Connection failures, a server shutting down or still starting,
        // a standby that refuses writes (a failover in progress).
        sqlx::Error::Database(d) => d.code().is_some_and(|c| {
            c.starts_with("08") || c.starts_with("57P") || c == "25006" || c == "53300"
        }),
        _ => false,
    };
    if unavailable {
        Error::StoreUnavailable(e.to_string())
    } else {
        Error::Store(e.to_string())
    }
}

#[async_trait::async_trait]
impl Health for PgStore {
    async fn ping(&self) -> Result<()> {
        self.timed("ping", async {
            sqlx::query("SELECT 1").execute(&self.pool).await.map(drop)
        })
        .await
    }

    fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    fn pool(&self) -> Option<PoolUsage> {
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        let open = self.pool.size();
        Some(PoolUsage {
            open,
            busy: open.saturating_sub(idle),
            max: self.pool.options().get_max_connections(),
        })
    }
}
