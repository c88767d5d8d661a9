//! Prometheus metrics, one registry per server instance (a local recorder of
//! `metrics-exporter-prometheus`, so instances in one test process do not mix
//! their counts). Every histogram has buckets chosen for what it measures: a
//! human approval takes seconds, a token hand-over microseconds.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `potvrda_challenge_decision_seconds` | histogram | `outcome` = approved, denied, expired, fraud |
//! | `potvrda_push_delivery_seconds` | histogram | `result` = accepted, gone, rate_limited, error |
//! | `potvrda_password_verify_seconds` | histogram | |
//! | `potvrda_approval_to_token_seconds` | histogram | |
//! | `potvrda_challenge_stage_seconds` | histogram | `stage` = push_accepted, seen, fetched, decided, token |
//! | `potvrda_http_request_duration_seconds` | histogram | `route`, `method`, `status` (class) |
//! | `potvrda_logins_total` | counter | `result` = challenged, invalid_credentials, no_device, invalid_request, error |
//! | `potvrda_tokens_issued_total` | counter | |
//! | `potvrda_push_ignored_total`, `potvrda_push_denied_total` | counter | `bucket` = user bucket 0–15 |
//! | `potvrda_fatigue_pauses_total` | counter | |
//! | `potvrda_redis_errors_total` | counter | |
//! | `potvrda_challenges_pending` | gauge | challenges this instance created that are still open |
//! | `potvrda_long_polls_waiting` | gauge | status requests parked on this instance |
//! | `potvrda_hash_queue_depth` | gauge | password hashes waiting for the blocking pool |
//! | `potvrda_postgres_query_seconds` | histogram | `op` = the store operation (PostgreSQL + Redis only) |
//! | `potvrda_postgres_connections` | gauge | `state` = busy, idle, max |

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use crate::error::{Error, Result};
use crate::ports::Meter;

const DECISION: &str = "potvrda_challenge_decision_seconds";
const PUSH: &str = "potvrda_push_delivery_seconds";
const PASSWORD: &str = "potvrda_password_verify_seconds";
const TO_TOKEN: &str = "potvrda_approval_to_token_seconds";
impl Meter for Metrics {
    fn fatigue_paused(&self) {
        self.with(|| counter!("potvrda_fatigue_pauses_total").increment(1));
    }

    fn audit_written(&self, kind: &'static str) {
        self.with(|| counter!("potvrda_audit_events_total", "kind" => kind).increment(1));
    }

    fn audit_failed(&self) {
        self.with(|| counter!("potvrda_audit_write_errors_total").increment(1));
    }

    fn login_risk(&self, level: &'static str) {
        self.with(|| counter!("potvrda_login_risk_total", "level" => level).increment(1));
    }

    fn password_locked(&self, scope: &'static str) {
        self.with(|| counter!("potvrda_password_locks_total", "scope" => scope).increment(1));
    }

    fn login(&self, result: &'static str) {
        self.with(|| counter!("potvrda_logins_total", "result" => result).increment(1));
    }

    fn password_verified(&self, d: Duration) {
        self.with(|| histogram!(PASSWORD).record(d.as_secs_f64()));
    }

    fn challenge_opened(&self) {
        self.pending.fetch_add(1, Ordering::Relaxed);
    }

    fn challenge_closed(&self) {
        self.pending.fetch_sub(1, Ordering::Relaxed);
    }

    fn challenge_decided(
        &self,
        outcome: &'static str,
        user_id: &str,
        created_ms: i64,
        decided_ms: i64,
    ) {
        self.with(|| {
            histogram!(DECISION, "outcome" => outcome).record(secs_between(created_ms, decided_ms));
            if outcome != "expired" {
                histogram!(STAGE, "stage" => "decided")
                    .record(secs_between(created_ms, decided_ms));
            }
            match outcome {
                "expired" => {
                    counter!("potvrda_push_ignored_total", "bucket" => user_bucket(user_id))
                        .increment(1)
                }
                "denied" | "fraud" => {
                    counter!("potvrda_push_denied_total", "bucket" => user_bucket(user_id))
                        .increment(1)
                }
                _ => {}
            }
        });
    }

    fn challenge_seen(&self, created_ms: i64, at_ms: i64) {
        self.with(|| histogram!(STAGE, "stage" => "seen").record(secs_between(created_ms, at_ms)));
    }

    fn challenge_fetched(&self, created_ms: i64, at_ms: i64) {
        self.with(|| {
            histogram!(STAGE, "stage" => "fetched").record(secs_between(created_ms, at_ms))
        });
    }

    fn token_issued(&self, decided_ms: i64, at_ms: i64) {
        let s = secs_between(decided_ms, at_ms);
        self.with(|| {
            counter!("potvrda_tokens_issued_total").increment(1);
            histogram!(TO_TOKEN).record(s);
            histogram!(STAGE, "stage" => "token").record(s);
        });
    }

    fn long_poll(&self, parked: bool) {
        if parked {
            self.long_polls.fetch_add(1, Ordering::Relaxed);
        } else {
            self.long_polls.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn store_query(&self, op: &'static str, d: Duration) {
        self.with(|| histogram!(QUERY, "op" => op).record(d.as_secs_f64()));
    }
}

const STAGE: &str = "potvrda_challenge_stage_seconds";
const HTTP: &str = "potvrda_http_request_duration_seconds";
const LOGOUT: &str = "potvrda_logout_delivery_seconds";
const QUERY: &str = "potvrda_postgres_query_seconds";

fn secs_between(from_ms: i64, to_ms: i64) -> f64 {
    (to_ms - from_ms).max(0) as f64 / 1000.0
}

/// A user's bucket: fatigue shows up per bucket without a label per citizen.
pub fn user_bucket(user_id: &str) -> String {
    let h = user_id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    (h % 16).to_string()
}

/// The instance's metrics.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    pending: AtomicI64,
    long_polls: AtomicUsize,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A fresh registry with the buckets below.
    pub fn new() -> Result<Self> {
        let b =
            |e: metrics_exporter_prometheus::BuildError| Error::Internal(format!("metrics: {e}"));
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(DECISION.into()),
                &[
                    0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0,
                ],
            )
            .map_err(b)?
            .set_buckets_for_metric(
                Matcher::Full(PUSH.into()),
                &[
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ],
            )
            .map_err(b)?
            .set_buckets_for_metric(
                Matcher::Full(PASSWORD.into()),
                &[
                    0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5,
                ],
            )
            .map_err(b)?
            .set_buckets_for_metric(
                Matcher::Full(TO_TOKEN.into()),
                &[
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1.0,
                ],
            )
            .map_err(b)?
            .set_buckets_for_metric(
                Matcher::Full(STAGE.into()),
                &[
                    0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0,
                    30.0, 60.0, 120.0,
                ],
            )
            .map_err(b)?
            .set_buckets_for_metric(
                Matcher::Full(LOGOUT.into()),
                &[0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0],
            )
            .map_err(b)?
            .set_buckets_for_metric(
                Matcher::Full(QUERY.into()),
                &[
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
                    1.0, 5.0,
                ],
            )
            .map_err(b)?
            .set_buckets_for_metric(
                Matcher::Full(HTTP.into()),
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0, 30.0,
                ],
            )
            .map_err(b)?;
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let m = Self {
            recorder,
            handle,
            pending: AtomicI64::new(0),
            long_polls: AtomicUsize::new(0),
        };
        // Counters that may stay at zero for a long time are still exported.
        m.with(|| {
            use metrics::{describe_counter, describe_gauge, describe_histogram};
            describe_histogram!(DECISION, metrics::Unit::Seconds, "Challenge created to decided, by outcome.");
            describe_histogram!(PUSH, metrics::Unit::Seconds, "Push service answer time, by result.");
            describe_histogram!(PASSWORD, metrics::Unit::Seconds, "Argon2id verification time, queueing included.");
            describe_histogram!(TO_TOKEN, metrics::Unit::Seconds, "Approval accepted to token handed to the waiting client.");
            describe_histogram!(STAGE, metrics::Unit::Seconds, "The login path split by stage: push_accepted, seen (phone acknowledged), fetched (pulled) and decided are measured from the login; token from the decision.");
            describe_histogram!(HTTP, metrics::Unit::Seconds, "HTTP request duration by route template, method and status class.");
            describe_counter!("potvrda_logins_total", "Login requests by result.");
            describe_counter!("potvrda_logout_delivery_total", "Back-channel logout tokens by outcome (delivered; retried: an attempt failed and another follows; failed: every attempt failed).");
            describe_histogram!(LOGOUT, metrics::Unit::Seconds, "Back-channel logout: from the first attempt to its outcome.");
            describe_counter!("potvrda_tokens_issued_total", "Access tokens handed out.");
            describe_counter!("potvrda_push_ignored_total", "Challenges that expired unanswered, by user bucket.");
            describe_counter!("potvrda_push_denied_total", "Challenges denied on the phone, by user bucket.");
            describe_counter!("potvrda_fatigue_pauses_total", "Times pushes to a user were paused after repeated denials or expiries.");
            describe_counter!("potvrda_redis_errors_total", "Redis commands that failed in this process.");
            describe_counter!("potvrda_audit_events_total", "Audit events written, by kind.");
            describe_counter!("potvrda_audit_write_errors_total", "Audit events that could not be written (see the error log).");
            describe_counter!("potvrda_login_risk_total", "Logins by risk level (low: number and push; elevated: six-digit code; high: code, no notification).");
            describe_counter!("potvrda_password_locks_total", "Usernames locked after failed passwords, by scope (address: for one address; username: for every unknown address).");
            describe_gauge!("potvrda_challenges_pending", "Challenges this instance created that are still open.");
            describe_gauge!("potvrda_long_polls_waiting", "Status requests parked on this instance.");
            describe_gauge!("potvrda_hash_queue_depth", "Password hashes waiting for a blocking-pool slot.");
            describe_histogram!(QUERY, metrics::Unit::Seconds, "PostgreSQL queries (and transactions) by operation, waiting for a connection included.");
            describe_gauge!("potvrda_postgres_connections", "PostgreSQL connections of this instance's pool, by state (busy, idle, max).");
            for result in [
                "challenged",
                "invalid_credentials",
                "no_device",
                "rate_limited",
                "invalid_request",
                "forbidden",
                "error",
            ] {
                counter!("potvrda_logins_total", "result" => result).increment(0);
            }
            counter!("potvrda_tokens_issued_total").increment(0);
            for outcome in ["delivered", "retried", "failed"] {
                counter!("potvrda_logout_delivery_total", "outcome" => outcome).increment(0);
            }
            counter!("potvrda_fatigue_pauses_total").increment(0);
            counter!("potvrda_audit_write_errors_total").increment(0);
            for level in ["low", "elevated", "high"] {
                counter!("potvrda_login_risk_total", "level" => level).increment(0);
            }
            for scope in ["address", "username"] {
                counter!("potvrda_password_locks_total", "scope" => scope).increment(0);
            }
        });
        Ok(m)
    }

    fn with<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, f)
    }

    /// The text exposition (also drains histogram samples).
    pub fn render(
        &self,
        hash_queue: usize,
        store_failures: u64,
        pool: Option<crate::store::PoolUsage>,
    ) -> String {
        self.with(|| {
            counter!("potvrda_redis_errors_total").absolute(store_failures);
            if let Some(p) = pool {
                let idle = p.open.saturating_sub(p.busy);
                for (state, n) in [("busy", p.busy), ("idle", idle), ("max", p.max)] {
                    gauge!("potvrda_postgres_connections", "state" => state).set(f64::from(n));
                }
            }
            gauge!("potvrda_challenges_pending").set(self.pending.load(Ordering::Relaxed) as f64);
            gauge!("potvrda_long_polls_waiting")
                .set(self.long_polls.load(Ordering::Relaxed) as f64);
            gauge!("potvrda_hash_queue_depth").set(hash_queue as f64);
        });
        self.handle.render()
    }

    /// Drain histogram samples; call every few seconds.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// The push service answered `result` after `d`.
    pub fn push_delivered(&self, result: &'static str, d: Duration, created_ms: i64, at_ms: i64) {
        self.with(|| {
            histogram!(PUSH, "result" => result).record(d.as_secs_f64());
            if result == "accepted" {
                histogram!(STAGE, "stage" => "push_accepted")
                    .record(secs_between(created_ms, at_ms));
            }
        });
    }

    /// A back-channel logout attempt ended with `outcome`, `d` after the first.
    pub fn logout_delivered(&self, outcome: &'static str, d: Duration) {
        self.with(|| {
            counter!("potvrda_logout_delivery_total", "outcome" => outcome).increment(1);
            if outcome != "retried" {
                histogram!(LOGOUT, "outcome" => outcome).record(d.as_secs_f64());
            }
        });
    }

    /// An HTTP request finished.
    pub fn http(&self, route: String, method: String, status: u16, d: Duration) {
        let class = format!("{}xx", status / 100);
        self.with(|| {
            histogram!(HTTP, "route" => route, "method" => method, "status" => class)
                .record(d.as_secs_f64())
        });
    }

    /// Status requests parked right now.
    pub fn long_polls_waiting(&self) -> usize {
        self.long_polls.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_have_buckets_not_quantiles() {
        let m = Metrics::new().expect("metrics");
        m.password_verified(Duration::from_millis(40));
        m.token_issued(999, 1_000);
        m.challenge_decided("expired", "u1", 0, 60_000);
        let text = m.render(3, 0, None);
        assert!(
            text.contains(r#"potvrda_password_verify_seconds_bucket{le="0.05"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"potvrda_password_verify_seconds_bucket{le="0.03"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"potvrda_approval_to_token_seconds_bucket{le="0.0001"}"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"potvrda_challenge_decision_seconds_bucket{outcome="expired",le="60"} 1"#
            ),
            "{text}"
        );
        assert!(!text.contains("quantile="), "summaries are not wanted");
        assert!(text.contains("potvrda_hash_queue_depth 3"));
        assert!(text.contains(r#"potvrda_logins_total{result="no_device"} 0"#));
        assert!(text.contains(&format!(
            r#"potvrda_push_ignored_total{{bucket="{}"}} 1"#,
            user_bucket("u1")
        )));
    }

    #[test]
    fn instances_do_not_share_counts() {
        let (a, b) = (Metrics::new().expect("a"), Metrics::new().expect("b"));
        a.login("challenged");
        assert!(
            a.render(0, 0, None)
                .contains(r#"potvrda_logins_total{result="challenged"} 1"#)
        );
        assert!(
            b.render(0, 0, None)
                .contains(r#"potvrda_logins_total{result="challenged"} 0"#)
        );
        let g = crate::ports::LongPoll::park(&a);
        assert_eq!(a.long_polls_waiting(), 1);
        drop(g);
        assert_eq!(a.long_polls_waiting(), 0);
    }
}
