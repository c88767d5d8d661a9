//! Back-channel logout delivery (OpenID Connect Back-Channel Logout 1.0
//! §2.5): `logout_token=<JWT>` POSTed as a form to the client's
//! `backchannel_logout_uri`, in the background. A failure (a refused
//! answer, a timeout, no connection) is tried again after 1, 2 and 4
//! seconds; a token still undelivered is audited (`logout_undelivered`).
//! Counted in `potvrda_logout_delivery_total{outcome}` (`delivered`,
//! `retried`, `failed`) and timed in `potvrda_logout_delivery_seconds`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use potvrda_proto::api::AuditKind;

use crate::audit::{Audit, Event};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::ports::{LogoutJob, LogoutSender};

/// The waits before each retry.
const BACK_OFF: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// Sends logout tokens over HTTP.
pub struct HttpLogouts {
    http: reqwest::Client,
    metrics: Arc<Metrics>,
    audit: Arc<Audit>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for HttpLogouts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpLogouts")
    }
}

impl HttpLogouts {
    /// A sender with its own client (no redirects, short timeouts).
    pub fn new(metrics: Arc<Metrics>, audit: Arc<Audit>, clock: Arc<dyn Clock>) -> Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| Error::Internal(format!("http client: {e}")))?;
        Ok(Self {
            http,
            metrics,
            audit,
            clock,
        })
    }
}

impl LogoutSender for HttpLogouts {
    fn send(&self, job: LogoutJob) {
        let (http, metrics, audit, clock) = (
            self.http.clone(),
            Arc::clone(&self.metrics),
            Arc::clone(&self.audit),
            Arc::clone(&self.clock),
        );
        tokio::spawn(async move {
            let started = Instant::now();
            for attempt in 0..=BACK_OFF.len() {
                let sent = http
                    .post(&job.uri)
                    .form(&[("logout_token", job.logout_token.as_str())])
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => {
                        metrics.logout_delivered("delivered", started.elapsed());
                        return;
                    }
                    Ok(r) => {
                        tracing::warn!(client_id = %job.client_id, status = %r.status(), attempt, "back-channel logout refused")
                    }
                    Err(e) => {
                        tracing::warn!(client_id = %job.client_id, error = %e, attempt, "back-channel logout failed")
                    }
                }
                let Some(wait) = BACK_OFF.get(attempt) else {
                    break;
                };
                metrics.logout_delivered("retried", started.elapsed());
                // Back off between tries (nothing waits on it).
                tokio::time::sleep(*wait).await;
            }
            metrics.logout_delivered("failed", started.elapsed());
            audit
                .record(
                    Event::new(AuditKind::LogoutUndelivered, clock.now())
                        .user(&job.user_id)
                        .with("client_id", job.client_id.as_str())
                        .with("sid", job.sid.as_str()),
                )
                .await;
        });
    }
}
