//! What a decided challenge means: whether the citizen typed the right
//! answer, and what the decision leaves behind — metrics, the risk memory,
//! the known address, the audit trail, the fraud lock, the fatigue count.

use potvrda_proto::api::AuditKind;
use potvrda_proto::jose::{ApprovalClaims, Decision};

use super::challenge::record_outcome;
use super::ct_eq_str;
use crate::audit::{Caller, Event};
use crate::error::Result;
use crate::store::{LoginRecord, LoginState};

/// The state an answer decides, and whether it was a mismatch (approving
/// with the wrong number or code, which denies the login).
pub(super) fn outcome(rec: &LoginRecord, claims: &ApprovalClaims) -> (LoginState, bool) {
    // A risky login's code (constant time), else the two-digit number.
    let typed_right = match (&rec.code, &claims.code) {
        (Some(code), Some(typed)) => ct_eq_str(code, typed),
        (Some(_), None) => false,
        (None, _) => claims.number == Some(rec.number),
    };
    match claims.decision {
        Decision::Deny | Decision::Fraud => (LoginState::Denied, false),
        Decision::Approve if typed_right => (LoginState::Approved, false),
        Decision::Approve => (LoginState::Denied, true),
    }
}

/// A challenge this request decided.
pub(super) struct Decided<'a> {
    pub(super) rec: &'a LoginRecord,
    pub(super) device_id: &'a str,
    pub(super) claims: &'a ApprovalClaims,
    pub(super) approved: bool,
    pub(super) mismatch: bool,
    pub(super) now: i64,
    pub(super) decided_ms: i64,
}

capability! {
    /// What follows a login's decision.
    pub(crate) Decisions
}

impl Decisions<'_> {
    /// Record what the decision `d` leaves behind.
    pub(super) async fn after_decision(
        &self,
        d: &Decided<'_>,
        amr: &[&str],
        caller: &Caller,
    ) -> Result<()> {
        let (rec, now) = (d.rec, d.now);
        let outcome = if d.approved { "approved" } else { "denied" };
        self.metrics
            .challenge_decided(outcome, &rec.user_id, rec.created_at_ms, d.decided_ms);
        let fraud = d.claims.decision == Decision::Fraud;
        // An approval: the phone vouches for the address the login came from.
        self.risk_checks()
            .note_decision(
                &rec.user_id,
                (d.approved, fraud),
                rec.client_ip.as_deref(),
                now,
            )
            .await;
        self.audit
            .record(decision_event(d, caller).with("amr", amr.join(" ")))
            .await;
        if fraud {
            self.staff_admin().lock_after_fraud(&rec.user_id).await?;
            tracing::warn!(
                user_id = %rec.user_id,
                login_id = %rec.id,
                "login reported as fraud; account locked"
            );
            self.audit
                .record(
                    Event::new(AuditKind::FraudReported, now)
                        .user(&rec.user_id)
                        .caller(caller)
                        .with("login_id", rec.id.as_str())
                        .with("device_id", d.device_id)
                        .with("login_ip", rec.context.ip.clone())
                        .with("login_user_agent", rec.context.user_agent.clone())
                        .with("service", rec.context.service.clone()),
                )
                .await;
        }
        record_outcome(
            self.store.as_ref(),
            self.metrics.as_ref(),
            &self.audit,
            &rec.user_id,
            d.approved,
            now,
            &self.limits(),
        )
        .await;
        Ok(())
    }
}

/// `login_approved` or `login_denied` (with the reason).
fn decision_event(d: &Decided<'_>, caller: &Caller) -> Event {
    let kind = if d.approved {
        AuditKind::LoginApproved
    } else {
        AuditKind::LoginDenied
    };
    let event = Event::new(kind, d.now)
        .user(&d.rec.user_id)
        .caller(caller)
        .with("login_id", d.rec.id.as_str())
        .with("device_id", d.device_id)
        .with("approval_jti", d.claims.jti.clone())
        .with("ctx_hash", d.claims.ctx_hash.clone());
    match (d.approved, d.mismatch) {
        (true, _) => event,
        (false, true) => event.with("reason", "number_mismatch"),
        (false, false) => event.with("reason", "denied"),
    }
}
