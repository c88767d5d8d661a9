//! The typed codes: the phone's offline code (six digits, TOTP) and a
//! printed recovery code, typed into the login instead of the phone. Both
//! are authorised by the login's secret, counted with wrong passwords
//! under the same guard, and spent once.

use async_trait::async_trait;
use potvrda_proto::api::{AuditKind, LoginStatus};

use super::{Answer, Evidence, FactorKind, SecondFactor, Verified};
use crate::audit::{Caller, Event};
use crate::error::{Error, Result};
use crate::service::guard::Gate;
use crate::service::recovery::{self, DAY, OFFLINE_FAILURES_PER_DAY, RecoveryHashes};
use crate::service::{Potvrda, ct_eq_str, sha256_b64};
use crate::store::{Login, LoginState, RateKey};

/// `Answer::Code` of six digits.
pub(in crate::service) struct OfflineCode;

/// Any other `Answer::Code`.
pub(in crate::service) struct RecoveryCode;

/// The pending login a code answers, after its secret, the guard the code
/// is counted under, and the code.
async fn code_login<'a>(
    svc: &Potvrda,
    answer: &Answer<'a>,
    caller: &Caller,
) -> Result<(Login, Gate, &'a str)> {
    let Answer::Code {
        login_id,
        secret,
        code,
    } = *answer
    else {
        return Err(Error::InvalidRequest("not a code".into()));
    };
    let secret = secret.ok_or(Error::Unauthorized)?;
    let login = svc.store.login(login_id).await?.ok_or(Error::NotFound)?;
    if !ct_eq_str(&sha256_b64(secret.as_bytes()), &login.record.secret_hash) {
        return Err(Error::Unauthorized);
    }
    let now = svc.clock.now();
    match login.status(now) {
        LoginStatus::Pending => {}
        LoginStatus::Expired => return Err(Error::Expired),
        _ => return Err(Error::AlreadyDecided),
    }
    let rec = &login.record;
    // Wrong codes count with wrong passwords, under the same guard.
    let gate = svc
        .guards()
        .password_gate(&rec.username, Some(&rec.user_id), caller.ip, now)
        .await?;
    Ok((login, gate, code))
}

/// The audit event of a code that decided a login.
fn code_used(kind: AuditKind, v: &Verified, amr: &[&str], caller: &Caller, now: i64) -> Event {
    let rec = &v.login.record;
    Event::new(kind, now)
        .user(&rec.user_id)
        .caller(caller)
        .with("login_id", rec.id.as_str())
        .with("amr", amr.join(" "))
}

fn approved(login: Login, evidence: Evidence) -> Verified {
    Verified {
        login,
        to: LoginState::Approved,
        jti: None,
        evidence,
    }
}

#[async_trait]
impl SecondFactor for OfflineCode {
    fn kind(&self) -> FactorKind {
        FactorKind::OfflineCode
    }

    fn amr(&self) -> &'static [&'static str] {
        &["mfa", "otp"]
    }

    fn takes(&self, answer: &Answer<'_>) -> bool {
        matches!(answer, Answer::Code { code, .. } if potvrda_proto::offline::normalize(code).is_some())
    }

    async fn verify(
        &self,
        svc: &Potvrda,
        answer: &Answer<'_>,
        caller: &Caller,
    ) -> Result<Verified> {
        let (login, gate, code) = code_login(svc, answer, caller).await?;
        let typed = potvrda_proto::offline::normalize(code)
            .ok_or_else(|| Error::InvalidRequest("not an offline code".into()))?;
        let (rec, now) = (&login.record, svc.clock.now());
        // Six digits are few: besides the password's lock, at most
        // OFFLINE_FAILURES_PER_DAY wrong codes a day, then offline codes
        // are refused for the rest of the day (recovery codes still work).
        let day_key = RateKey::OfflineFailures(&rec.user_id);
        let (day_failures, _) = svc.store.rate_count(&day_key, now, DAY).await?;
        let device = if gate.locked.is_some() || day_failures >= OFFLINE_FAILURES_PER_DAY {
            None
        } else {
            svc.offline_codes()
                .check_offline_code(&rec.user_id, &typed, now)
                .await?
        };
        let Some(device_id) = device else {
            svc.store.rate_hit(&day_key, now, DAY).await?;
            return Err(svc
                .recovery_codes()
                .wrong_code(&gate, rec, "wrong_offline_code", caller, now)
                .await);
        };
        Ok(approved(login, Evidence::OfflineCode { device_id }))
    }

    async fn record(
        &self,
        svc: &Potvrda,
        v: &Verified,
        caller: &Caller,
        (now, _): (i64, i64),
    ) -> Result<()> {
        let Evidence::OfflineCode { device_id } = &v.evidence else {
            return Err(Error::Internal("offline code without its evidence".into()));
        };
        let event = code_used(AuditKind::OfflineCodeUsed, v, self.amr(), caller, now);
        svc.audit
            .record(event.with("device_id", device_id.as_str()))
            .await;
        Ok(())
    }
}

#[async_trait]
impl SecondFactor for RecoveryCode {
    fn kind(&self) -> FactorKind {
        FactorKind::RecoveryCode
    }

    fn amr(&self) -> &'static [&'static str] {
        &["mfa", "otp"]
    }

    fn takes(&self, answer: &Answer<'_>) -> bool {
        matches!(answer, Answer::Code { code, .. } if potvrda_proto::offline::normalize(code).is_none())
    }

    async fn verify(
        &self,
        svc: &Potvrda,
        answer: &Answer<'_>,
        caller: &Caller,
    ) -> Result<Verified> {
        let (login, gate, code) = code_login(svc, answer, caller).await?;
        let (rec, now) = (&login.record, svc.clock.now());
        let hash = recovery::normalize(code).map(|c| svc.keys.pepper.hash(c.as_bytes()));
        let codes = svc.records::<RecoveryHashes>();
        let stored = codes.read(&rec.user_id, now).await?;
        let spent = match (&hash, &stored, gate.locked.is_some()) {
            (Some(h), Some(old), false) => {
                let mut hashes = old.value.0.clone();
                match hashes.iter().position(|x| ct_eq_str(x, h)) {
                    Some(i) => {
                        hashes.remove(i);
                        let left = hashes.len();
                        // Spent atomically: of two racing uses, one wins.
                        codes
                            .swap(&rec.user_id, old, &RecoveryHashes(hashes), 0, now)
                            .await?
                            .then_some(left)
                    }
                    None => None,
                }
            }
            _ => None,
        };
        let Some(remaining) = spent else {
            return Err(svc
                .recovery_codes()
                .wrong_code(&gate, rec, "wrong_recovery_code", caller, now)
                .await);
        };
        Ok(approved(login, Evidence::RecoveryCode { remaining }))
    }

    async fn record(
        &self,
        svc: &Potvrda,
        v: &Verified,
        caller: &Caller,
        (now, _): (i64, i64),
    ) -> Result<()> {
        let Evidence::RecoveryCode { remaining } = v.evidence else {
            return Err(Error::Internal("recovery code without its evidence".into()));
        };
        let event = code_used(AuditKind::RecoveryCodeUsed, v, self.amr(), caller, now);
        svc.audit.record(event.with("remaining", remaining)).await;
        Ok(())
    }
}
