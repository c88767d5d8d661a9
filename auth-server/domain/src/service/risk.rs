//! Risk-adaptive push (security round 2). Each login is scored from
//! signals the server already has — an address the citizen's phone never
//! approved a login from, recent denials or a fraud report, velocity, a long
//! silence, a new device — and answered in proportion:
//!
//! - **low**: the two-digit number and a push, as always;
//! - **elevated**: a six-digit code on the login screen that the citizen
//!   types on the phone (Duo's Verified Push), instead of the number;
//! - **high**: the code, and no notification — the challenge waits in the
//!   app until the citizen opens it, which shows why (Microsoft suppresses
//!   anomalous pushes the same way).
//!
//! The reasons travel inside the signed challenge, so the phone can say
//! "first login from this address"; they are audited with the score on
//! `login_started` and counted in `potvrda_login_risk_total{level}`. The
//! policy (weights and thresholds) is configuration (`RISK_*`).
//!
//! A signal needs a baseline: until the citizen has approved a login,
//! every address and every device is new, and a first login is not risky.

use crate::store::UserId;
use std::net::IpAddr;

use potvrda_proto::jose::{RiskLevel, RiskReason};

use crate::error::{Error, Result};
use crate::store::RateKey;
use crate::store::{Device, User};

/// Logins in the last 15 minutes that make the next one a burst.
const VELOCITY_LOGINS: u32 = 3;
const VELOCITY_WINDOW: i64 = 15 * 60;
/// A denial this recent is a signal.
const DENIAL_WINDOW: i64 = 86_400;
/// A fraud report this recent is a signal.
const FRAUD_DAYS: i64 = 30;
/// No approved login for this long: dormant.
const DORMANT_DAYS: i64 = 90;
/// A device enrolled after the first approved login and younger than this is new.
const NEW_DEVICE_SECS: i64 = 86_400;

/// Weights and thresholds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskPolicy {
    weights: Vec<(RiskReason, u32)>,
    escalate_at: u32,
    suppress_at: u32,
}

/// What the policy made of a login's signals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// The sum of the present signals' weights.
    pub score: u32,
    /// The present signals with a weight.
    pub reasons: Vec<RiskReason>,
    /// The answer.
    pub level: RiskLevel,
}

impl RiskPolicy {
    /// From `RISK_WEIGHTS` (`reason=weight,…`; unnamed reasons keep their
    /// default) and the two thresholds; the error names what is wrong.
    pub fn parse(weights: &str, escalate_at: u32, suppress_at: u32) -> Result<Self> {
        let bad = |m: String| Error::Config(m);
        let mut policy = Self::default();
        for item in weights.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, weight) = item
                .split_once('=')
                .ok_or_else(|| bad(format!("risk_weights: {item:?} is not reason=weight")))?;
            let reason = RiskReason::ALL
                .into_iter()
                .find(|r| r.as_str() == name.trim())
                .ok_or_else(|| bad(format!("risk_weights: unknown reason {:?}", name.trim())))?;
            let weight: u32 = weight.trim().parse().map_err(|_| {
                bad(format!(
                    "risk_weights: the weight of {name} is not a number"
                ))
            })?;
            if let Some(w) = policy.weights.iter_mut().find(|(r, _)| *r == reason) {
                w.1 = weight;
            }
        }
        if escalate_at == 0 || suppress_at < escalate_at {
            return Err(bad(
                "risk_escalate_at must be at least 1 and risk_suppress_at at least risk_escalate_at"
                    .into(),
            ));
        }
        policy.escalate_at = escalate_at;
        policy.suppress_at = suppress_at;
        Ok(policy)
    }

    /// Weigh the present signals.
    pub fn assess(&self, present: &[RiskReason]) -> Assessment {
        let reasons: Vec<RiskReason> = self
            .weights
            .iter()
            .filter(|(r, w)| *w > 0 && present.contains(r))
            .map(|(r, _)| *r)
            .collect();
        let score = self
            .weights
            .iter()
            .filter(|(r, _)| reasons.contains(r))
            .map(|(_, w)| w)
            .sum();
        let level = if score >= self.suppress_at {
            RiskLevel::High
        } else if score >= self.escalate_at {
            RiskLevel::Elevated
        } else {
            RiskLevel::Low
        };
        Assessment {
            score,
            reasons,
            level,
        }
    }
}

impl Default for RiskPolicy {
    /// A fraud report and a new address together are high; a denial, or a
    /// new address with a new device, elevated; one weak signal alone, low.
    fn default() -> Self {
        Self {
            weights: vec![
                (RiskReason::NewAddress, 1),
                (RiskReason::RecentDenials, 2),
                (RiskReason::RecentFraudReport, 3),
                (RiskReason::Velocity, 1),
                (RiskReason::Dormant, 1),
                (RiskReason::NewDevice, 2),
            ],
            escalate_at: 2,
            suppress_at: 4,
        }
    }
}

capability! {
    /// The login risk checks.
    pub(crate) RiskChecks
}

impl RiskChecks<'_> {
    /// Score a login of `user` from `ip`, and count it toward velocity:
    /// one read of the citizen's record, two counters.
    pub(super) async fn assess_login(
        &self,
        user: &User,
        devices: &[Device],
        ip: Option<IpAddr>,
        now: i64,
    ) -> Result<Assessment> {
        let mut present = Vec::new();
        let profile = self.profiles().profile(&user.id, now).await?;
        if let (Some(first), Some(last)) = (profile.first_approved, profile.last_approved) {
            if ip.is_some_and(|ip| !profile.knows(ip, now)) {
                present.push(RiskReason::NewAddress);
            }
            if now - last > DORMANT_DAYS * 86_400 {
                present.push(RiskReason::Dormant);
            }
            // A device enrolled after the citizen's first approved login
            // (not the one enrolled at the counter before it), lately.
            if devices
                .iter()
                .any(|d| d.created_at > first && now - d.created_at < NEW_DEVICE_SECS)
            {
                present.push(RiskReason::NewDevice);
            }
        }
        let (denials, _) = self
            .store
            .rate_count(&RateKey::Denials(&user.id), now, DENIAL_WINDOW)
            .await?;
        if denials > 0 {
            present.push(RiskReason::RecentDenials);
        }
        if profile.fraud_until.is_some_and(|until| until > now) {
            present.push(RiskReason::RecentFraudReport);
        }
        let (logins, _) = self
            .store
            .rate_hit(&RateKey::Logins(&user.id), now, VELOCITY_WINDOW)
            .await?;
        if logins > VELOCITY_LOGINS {
            present.push(RiskReason::Velocity);
        }
        let assessment = self.risk.assess(&present);
        self.metrics.login_risk(assessment.level.as_str());
        Ok(assessment)
    }

    /// Remember what a decided login means for the next one's score (and
    /// for the password guard: an approval makes its address known).
    pub(super) async fn note_decision(
        &self,
        user_id: &UserId,
        (approved, fraud): (bool, bool),
        ip: Option<&str>,
        now: i64,
    ) {
        if let Err(e) = self.remember(user_id, (approved, fraud), ip, now).await {
            tracing::warn!(user_id = %user_id, error = %e, "could not record a login's outcome for its risk");
        }
    }

    async fn remember(
        &self,
        user_id: &UserId,
        (approved, fraud): (bool, bool),
        ip: Option<&str>,
        now: i64,
    ) -> Result<()> {
        if !approved {
            self.store
                .rate_hit(&RateKey::Denials(user_id), now, DENIAL_WINDOW)
                .await?;
            if !fraud {
                return Ok(());
            }
        }
        let mut profile = self.profiles().profile(user_id, now).await?;
        let changed = if approved {
            profile.approved(ip.and_then(|ip| ip.parse().ok()), now)
        } else {
            profile.fraud_until = Some(now + FRAUD_DAYS * 86_400);
            true
        };
        if changed {
            self.profiles().save_profile(user_id, &profile, now).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signal_weighs_and_the_thresholds_choose_the_answer() {
        let p = RiskPolicy::default();
        let low = p.assess(&[]);
        assert_eq!((low.score, low.level), (0, RiskLevel::Low));
        for (signals, score, level) in [
            (vec![RiskReason::NewAddress], 1, RiskLevel::Low),
            (vec![RiskReason::Velocity], 1, RiskLevel::Low),
            (vec![RiskReason::Dormant], 1, RiskLevel::Low),
            (vec![RiskReason::RecentDenials], 2, RiskLevel::Elevated),
            (vec![RiskReason::NewDevice], 2, RiskLevel::Elevated),
            (
                vec![RiskReason::NewAddress, RiskReason::Dormant],
                2,
                RiskLevel::Elevated,
            ),
            (vec![RiskReason::RecentFraudReport], 3, RiskLevel::Elevated),
            (
                vec![RiskReason::NewAddress, RiskReason::RecentFraudReport],
                4,
                RiskLevel::High,
            ),
            (
                vec![RiskReason::RecentDenials, RiskReason::NewDevice],
                4,
                RiskLevel::High,
            ),
        ] {
            let a = p.assess(&signals);
            assert_eq!((a.score, a.level), (score, level), "{signals:?}");
            assert_eq!(a.reasons, signals, "the reasons, in policy order");
        }
    }

    #[test]
    fn the_policy_is_configurable_and_checked() {
        let p = RiskPolicy::parse("new_address=5, dormant=0", 2, 5).expect("parses");
        let a = p.assess(&[RiskReason::NewAddress, RiskReason::Dormant]);
        assert_eq!((a.score, a.level), (5, RiskLevel::High));
        assert_eq!(
            a.reasons,
            vec![RiskReason::NewAddress],
            "a zero weight is no reason"
        );
        assert_eq!(
            p.assess(&[RiskReason::Velocity]).level,
            RiskLevel::Low,
            "unnamed reasons keep their default"
        );
        for (weights, esc, sup, message) in [
            ("new_address", 2, 4, "is not reason=weight"),
            ("moon_phase=1", 2, 4, "unknown reason \"moon_phase\""),
            (
                "velocity=lots",
                2,
                4,
                "the weight of velocity is not a number",
            ),
            ("", 0, 4, "risk_escalate_at must be at least 1"),
            ("", 3, 2, "risk_suppress_at at least risk_escalate_at"),
        ] {
            let err = RiskPolicy::parse(weights, esc, sup).expect_err(weights);
            assert!(err.to_string().contains(message), "{err}");
        }
    }
}
