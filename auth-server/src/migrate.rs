//! `auth-server migrate` (issue 19): an embedded store or a Redis
//! deployment copied into PostgreSQL, the system of record, then checked.
//!
//! Every step is idempotent, so a run stopped anywhere is simply run again:
//! keys go in only where the target has none (or the same), accounts,
//! codes, devices and records by upserts that change nothing when repeated,
//! and the audit trail in batches whose progress commits with them (an
//! event is never copied twice). At the end the counts of both sides are
//! compared, a sample of accounts (with their devices) and of records is
//! read back from PostgreSQL and compared with the source, and the copied
//! trail is verified link by link and checkpoint by checkpoint against the
//! source's heads. Logins in flight, rate counters and other fleeting data
//! are not copied (docs/OPERATIONS.md, "Moving to PostgreSQL").

use std::collections::HashSet;
use std::sync::Arc;

use potvrda_domain::audit::verify::Report;
use potvrda_domain::store::{AuditFilter, DeviceStore as _, UserStore as _};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::dump::{Dump, KEY_NAMES, StoredRecord};
use crate::store::postgres::import::Totals;
use crate::store::postgres::{PgStore, PoolSettings};

/// Rows per batch.
const BATCH: usize = 500;
/// Accounts and records read back and compared, about.
const SAMPLE: u64 = 100;

/// Which store to copy from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    /// The redb file in the configured data dir (no server may hold it open).
    Embedded,
    /// The configured Redis (or Redis Cluster) and key prefix.
    Redis,
}

/// What a run copied and checked.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// What the source holds that lasts.
    pub source: Totals,
    /// What this run wrote (new or different); all zero on a repeated run.
    pub written: Totals,
    /// What PostgreSQL holds at the end.
    pub target: Totals,
    /// Accounts and records read back and found equal.
    pub sampled: u64,
    /// The copied trail's verification.
    pub audit: Report,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rows = self
            .source
            .named()
            .into_iter()
            .zip(self.written.named())
            .zip(self.target.named());
        for (((name, source), (_, written)), (_, target)) in rows {
            writeln!(
                f,
                "{name}: {source} in the source, {written} written now, {target} in PostgreSQL"
            )?;
        }
        writeln!(
            f,
            "sample: {} accounts and records read back equal",
            self.sampled
        )?;
        writeln!(
            f,
            "audit trail: {} events verified, national chain up to n={}, {} checkpoints",
            self.audit.events, self.audit.heads.national.n, self.audit.checkpoints
        )
    }
}

/// Copy the configured source into the configured PostgreSQL, then check.
pub async fn migrate(config: &Config, from: Source, now: i64) -> Result<Summary> {
    use secrecy::ExposeSecret as _;
    let url = config
        .store
        .postgres_url
        .as_ref()
        .filter(|u| !u.expose_secret().is_empty())
        .ok_or_else(|| Error::Config("migrate needs [store] postgres_url: the target".into()))?;
    let pool = PoolSettings {
        max_connections: config.store.postgres_pool_size,
        acquire_timeout: config.store.postgres_acquire_timeout,
    };
    let target = PgStore::connect(url, pool, Arc::new(potvrda_domain::ports::NoMeter)).await?;
    let source: Box<dyn Dump> = match from {
        Source::Embedded => Box::new(crate::store::embedded::EmbeddedStore::open(
            &config.store.data_dir,
        )?),
        Source::Redis => {
            let redis_url = config
                .store
                .redis_url
                .as_ref()
                .ok_or_else(|| Error::Config("migrate --from redis needs redis_url".into()))?;
            Box::new(
                crate::store::redis::RedisStore::connect(
                    redis_url,
                    config.store.redis_cluster,
                    &config.store.redis_key_prefix,
                )
                .await?,
            )
        }
    };
    run(
        source.as_ref(),
        &target,
        now,
        config.audit.key_file.as_deref(),
    )
    .await
}

/// Copy `source` into `target` and check the copy. `audit_key_file`: the
/// audit key when it is configured as a file rather than stored.
pub async fn run(
    source: &dyn Dump,
    target: &PgStore,
    now: i64,
    audit_key_file: Option<&std::path::Path>,
) -> Result<Summary> {
    let mut s = Summary::default();
    copy_keys(source, target, &mut s).await?;
    let users = copy_users(source, target, &mut s).await?;
    copy_activations(source, target, now, &mut s).await?;
    let records = copy_records(source, target, now, &mut s).await?;
    copy_audit(source, target, &mut s).await?;
    let heads = source.audit_heads().await?;
    target.import_heads(&heads).await?;
    s.target = target.totals().await?;
    check_counts(&s)?;
    s.sampled = check_sample(source, target, &users, &records).await?;
    let jwks = crate::audit_check::audit_jwks(audit_key_file, target).await?;
    s.audit = crate::audit_check::verify_store(target, &jwks).await?;
    if let Some(broken) = &s.audit.broken {
        return Err(Error::Store(format!(
            "the copied audit trail does not verify: {broken}"
        )));
    }
    if s.audit.heads != heads {
        return Err(Error::Store(format!(
            "the copied audit trail ends at national n={}, the source's at n={}",
            s.audit.heads.national.n, heads.national.n
        )));
    }
    Ok(s)
}

async fn copy_keys(source: &dyn Dump, target: &PgStore, s: &mut Summary) -> Result<()> {
    for name in KEY_NAMES {
        let Some(material) = source.stored_key(name).await? else {
            continue;
        };
        s.source.keys += 1;
        s.written.keys += u64::from(target.import_key(name, &material).await?);
    }
    Ok(())
}

/// Accounts with their devices; returns the ids of the sample.
async fn copy_users(source: &dyn Dump, target: &PgStore, s: &mut Summary) -> Result<Vec<String>> {
    let mut sample = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = source.users_page(after.as_deref(), BATCH).await?;
        let mut devices = Vec::new();
        for user in &page.items {
            devices.extend(source.devices_of(&user.id).await?);
            if sampled(s.source.users) {
                sample.push(user.id.as_str().to_owned());
            }
            s.source.users += 1;
        }
        s.source.devices += devices.len() as u64;
        s.written.users += target.import_users(&page.items).await?;
        s.written.devices += target.import_devices(&devices).await?;
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(sample),
        }
    }
}

async fn copy_activations(
    source: &dyn Dump,
    target: &PgStore,
    now: i64,
    s: &mut Summary,
) -> Result<()> {
    let mut after: Option<String> = None;
    loop {
        let page = source
            .activations_page(after.as_deref(), BATCH, now)
            .await?;
        s.source.activations += page.items.len() as u64;
        s.written.activations += target.import_activations(&page.items).await?;
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(()),
        }
    }
}

/// Lasting records (a key `SCAN` gives twice counts once); returns the
/// sampled records as read.
async fn copy_records(
    source: &dyn Dump,
    target: &PgStore,
    now: i64,
    s: &mut Summary,
) -> Result<Vec<StoredRecord>> {
    let mut seen = HashSet::new();
    let mut sample = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = source.records_page(after.as_deref(), BATCH, now).await?;
        for r in &page.items {
            if seen.insert(r.key.clone()) {
                if sampled(s.source.records) {
                    sample.push(r.clone());
                }
                s.source.records += 1;
            }
        }
        s.written.records += target.import_records(&page.items).await?;
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(sample),
        }
    }
}

/// The trail from where the last run stopped, in the source's order; the
/// source's events are counted from its start.
async fn copy_audit(source: &dyn Dump, target: &PgStore, s: &mut Summary) -> Result<()> {
    let start = target
        .audit_import_cursor()
        .await?
        .as_deref()
        .and_then(potvrda_domain::audit::parse_id);
    let mut filter = AuditFilter {
        limit: BATCH,
        ..AuditFilter::default()
    };
    loop {
        let page = source.audit_events(&filter).await?;
        s.source.audit += page.events.len() as u64;
        let last = page.events.last().map(|e| e.id.clone());
        let fresh: Vec<_> = page
            .events
            .into_iter()
            .filter(|e| potvrda_domain::audit::parse_id(&e.id) > start)
            .collect();
        if let (Some(last), false) = (&last, fresh.is_empty()) {
            target.import_audit(&fresh, last).await?;
            s.written.audit += fresh.len() as u64;
        }
        match (
            page.next_after,
            last.as_deref().and_then(potvrda_domain::audit::parse_id),
        ) {
            (Some(_), Some(after)) => filter.after = Some(after),
            (None, _) => return Ok(()),
            (Some(_), None) => return Err(Error::Store("an audit event without an id".into())),
        }
    }
}

/// Whether the item after `seen` others is in the sample: each of the
/// first [`SAMPLE`] or so, then a thinning share (about a thousand of a
/// million).
fn sampled(seen: u64) -> bool {
    seen.is_multiple_of((seen / SAMPLE).max(1))
}

fn check_counts(s: &Summary) -> Result<()> {
    let pairs = s
        .source
        .named()
        .into_iter()
        .zip(s.target.named())
        .map(|((name, source), (_, target))| (name, source, target));
    for (name, source, target) in pairs {
        if source != target {
            return Err(Error::Store(format!(
                "{name}: {source} in the source but {target} in PostgreSQL (a target used before, or a source written to during the copy: stop the servers and run again)"
            )));
        }
    }
    Ok(())
}

async fn check_sample(
    source: &dyn Dump,
    target: &PgStore,
    users: &[String],
    records: &[StoredRecord],
) -> Result<u64> {
    let mut checked = 0;
    for id in users {
        let id = crate::store::UserId::from(id.clone());
        let (theirs, ours) = (source.devices_of(&id).await?, target.devices_of(&id).await?);
        if source.user(&id).await? != target.user(&id).await? || theirs != ours {
            return Err(Error::Store(format!(
                "sample: account {id} differs in PostgreSQL"
            )));
        }
        checked += 1;
    }
    // Records as the copy read them (no second pass over the source: the
    // counts already show a source that changed meanwhile).
    for r in records {
        let stored = target.stored_record(&r.key).await?;
        if stored.as_ref() != Some(&(r.value.clone(), r.expires_at)) {
            return Err(Error::Store(format!("sample: record {} differs", r.key)));
        }
        checked += 1;
    }
    Ok(checked)
}
