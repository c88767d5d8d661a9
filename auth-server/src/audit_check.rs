//! `auth-server audit verify`: the trail's chains and checkpoints checked
//! from an export (JSON Lines, with the audit JWKS beside it) or from the
//! live store (with the store's own audit key), the first broken link named.

use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

use potvrda_domain::audit::verify::{Report, Scope, Verifier};
use potvrda_domain::store::AuditFilter;
use potvrda_proto::api::AuditEvent;
use potvrda_proto::jose::Jwks;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::open_store;

/// Events read from the store per page.
const PAGE: usize = 1_000;

/// Check an export: one [`AuditEvent`] per line, oldest first.
pub fn verify_export(export: &Path, jwks: &Path, scope: Scope) -> Result<Report> {
    let jwks: Jwks = serde_json::from_slice(&std::fs::read(jwks).map_err(|e| {
        Error::Config(format!(
            "cannot read the audit JWKS {}: {e}",
            jwks.display()
        ))
    })?)?;
    let file = std::fs::File::open(export)
        .map_err(|e| Error::Config(format!("cannot read {}: {e}", export.display())))?;
    let mut verifier = Verifier::new(scope, &jwks);
    for (number, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let event: AuditEvent = serde_json::from_str(&line).map_err(|e| {
            Error::InvalidRequest(format!("line {}: not an audit event: {e}", number + 1))
        })?;
        if !verifier.push(&event) {
            break;
        }
    }
    Ok(verifier.finish())
}

/// Check the live store, from its oldest kept event to its heads (read
/// first: events appended while checking are past them and not required).
pub async fn verify_live(config: &Config) -> Result<(Report, u64)> {
    let store = open_store(config, Arc::new(potvrda_domain::ports::NoMeter)).await?;
    let jwks = audit_jwks(config.audit.key_file.as_deref(), store.as_ref()).await?;
    let heads = store.audit_heads().await?;
    let report = verify_store(store.as_ref(), &jwks).await?;
    Ok((report, heads.national.n))
}

/// The audit key set: of the configured key file, else of the key the
/// store holds. Read only: checking the wrong store must not make a key in it.
pub async fn audit_jwks(
    key_file: Option<&Path>,
    store: &(dyn potvrda_domain::store::KeyStore + Sync),
) -> Result<Jwks> {
    let key = match key_file {
        Some(path) => zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| {
            Error::Config(format!("cannot read the audit key {}: {e}", path.display()))
        })?),
        None => store.stored_key("audit").await?.ok_or_else(|| {
            Error::Config(
                "this store holds no audit key: is it the configured one? (or set [audit] key_file)"
                    .into(),
            )
        })?,
    };
    Ok(Jwks {
        keys: vec![potvrda_domain::keys::EsKey::from_pkcs8(&key)?.jwk],
    })
}

/// Check a store's whole trail against the audit key set.
pub async fn verify_store(
    store: &(dyn potvrda_domain::store::AuditStore + Sync),
    jwks: &Jwks,
) -> Result<Report> {
    let mut verifier = Verifier::new(Scope::National, jwks);
    let mut filter = AuditFilter {
        limit: PAGE,
        ..AuditFilter::default()
    };
    'pages: loop {
        let page = store.audit_events(&filter).await?;
        for event in &page.events {
            if !verifier.push(event) {
                break 'pages;
            }
        }
        match page
            .next_after
            .as_deref()
            .and_then(potvrda_domain::audit::parse_id)
        {
            Some(after) => filter.after = Some(after),
            None => break,
        }
    }
    Ok(verifier.finish())
}

/// The report as `auth-server audit verify` prints it, and whether it passed.
pub fn describe(report: &Report, stored_head: Option<u64>) -> (String, bool) {
    let mut out = format!(
        "{} events read ({} from before the chain began); national chain up to n={}; {} municipal chains; {} checkpoints verified ({} too far back to compare); anchored up to n={} ({} events after the last national checkpoint)\n",
        report.events,
        report.unchained,
        report.heads.national.n,
        report.heads.municipal.len(),
        report.checkpoints,
        report.checkpoints_unchecked,
        report.anchored_to.unwrap_or(0),
        report.unanchored_tail(),
    );
    if let Some(broken) = &report.broken {
        out.push_str(&format!("BROKEN at {broken}\n"));
        return (out, false);
    }
    if let Some(head) = stored_head
        && report.heads.national.n < head
    {
        out.push_str(&format!(
            "BROKEN: the store's national head is n={head}, the trail read ends at n={}: events at its end are missing\n",
            report.heads.national.n
        ));
        return (out, false);
    }
    out.push_str("OK: every link and every checkpoint holds\n");
    (out, true)
}
