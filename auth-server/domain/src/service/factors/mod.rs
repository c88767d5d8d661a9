//! The second factors. Each answers a pending login in its own way — the
//! phone's signed approval, an offline code, a recovery code — and each
//! goes through the same three steps in [`Potvrda::answer`]: the factor
//! **verifies** the answer against the login, the flow **decides** the
//! login once (atomically, in the store: of racing answers one wins), and
//! the factor **records** what the decision leaves behind.
//!
//! A new factor (a passkey) is a file implementing [`SecondFactor`], a
//! variant of [`Answer`] if it answers in a new way, and a line in
//! [`FACTORS`].

mod codes;
mod push;

use crate::store::{ChallengeId, DeviceId, LoginId};
use async_trait::async_trait;
use potvrda_proto::jose::{ApprovalClaims, WithdrawalReason};

use super::Potvrda;
use crate::audit::Caller;
use crate::error::{Error, Result};
use crate::store::{DecideOutcome, Login, LoginState};

pub(super) use codes::{OfflineCode, RecoveryCode};
pub(super) use push::PushApproval;

/// What the citizen, or their phone, sent to answer a login.
#[derive(Debug, Clone, Copy)]
pub(super) enum Answer<'a> {
    /// The phone's signed answer (a JWS) to challenge `cid`.
    Approval {
        /// The challenge id.
        cid: &'a ChallengeId,
        /// The compact JWS.
        jws: &'a str,
    },
    /// A code typed into the login instead of the phone, with the login's
    /// secret (the relying party's proof that it started the login).
    Code {
        /// The login.
        login_id: &'a LoginId,
        /// The login secret.
        secret: Option<&'a str>,
        /// What was typed.
        code: &'a str,
    },
}

/// Which factor decided a login (the audit trail's `factor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FactorKind {
    /// The phone's signed approval with number matching.
    PushApproval,
    /// The phone's offline (TOTP) code.
    OfflineCode,
    /// A printed recovery code.
    RecoveryCode,
}

impl FactorKind {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::PushApproval => "push_approval",
            Self::OfflineCode => "offline_code",
            Self::RecoveryCode => "recovery_code",
        }
    }
}

/// A verified answer: the login it decides, to what, and the factor's
/// evidence for [`SecondFactor::record`].
#[derive(Debug)]
pub(super) struct Verified {
    /// The pending login.
    pub(super) login: Login,
    /// What the answer decides.
    pub(super) to: LoginState,
    /// The approval's `jti`, kept with the decision.
    pub(super) jti: Option<String>,
    /// What the factor saw.
    pub(super) evidence: Evidence,
}

/// What a factor saw, for its record step.
#[derive(Debug)]
pub(super) enum Evidence {
    /// The phone's approval: the device, its claims, and whether the number
    /// (or code) it sent was wrong.
    Approval {
        /// The device that signed.
        device_id: DeviceId,
        /// The claims it signed.
        claims: Box<ApprovalClaims>,
        /// The wrong number or code: the login is denied.
        mismatch: bool,
    },
    /// An offline code of this device.
    OfflineCode {
        /// The device whose code it was.
        device_id: DeviceId,
    },
    /// A recovery code, spent; this many are left.
    RecoveryCode {
        /// Unspent codes left.
        remaining: usize,
    },
}

/// A way to confirm a login besides the password.
#[async_trait]
pub(super) trait SecondFactor: Send + Sync {
    /// Which factor this is.
    fn kind(&self) -> FactorKind;
    /// The `amr` values (RFC 8176) it contributes; what an answer proved
    /// goes with the decision (`proven`) into the login's tokens.
    fn amr(&self) -> &'static [&'static str];
    /// Whether this factor takes `answer`.
    fn takes(&self, answer: &Answer<'_>) -> bool;
    /// Check the answer against its pending login. A wrong answer is an
    /// error (and, for typed codes, a failed attempt under the guard).
    async fn verify(&self, svc: &Potvrda, answer: &Answer<'_>, caller: &Caller)
    -> Result<Verified>;
    /// Record what the decision leaves behind: audit, memory, locks.
    async fn record(
        &self,
        svc: &Potvrda,
        v: &Verified,
        caller: &Caller,
        decided: (i64, i64),
    ) -> Result<()>;
}

/// Every factor, in the order answers are offered to them.
pub(super) const FACTORS: &[&dyn SecondFactor] = &[&PushApproval, &OfflineCode, &RecoveryCode];

capability! {
    /// The second factors: verify, decide, record.
    pub(crate) Factors
}

impl Factors<'_> {
    /// Answer a pending login: verify → decide → record.
    pub(super) async fn answer(&self, answer: Answer<'_>, caller: &Caller) -> Result<Verified> {
        let factor = FACTORS
            .iter()
            .find(|f| f.takes(&answer))
            .ok_or_else(|| Error::InvalidRequest("no factor takes this answer".into()))?;
        let v = factor.verify(self, &answer, caller).await?;
        let (now, now_ms) = (self.clock.now(), self.clock.now_ms());
        let id = &v.login.record.id;
        match self
            .store
            .decide(
                id,
                v.to,
                now,
                now_ms,
                v.jti.as_deref(),
                &proven(*factor, &v),
            )
            .await?
        {
            DecideOutcome::Decided => {}
            DecideOutcome::AlreadyDecided => return Err(Error::AlreadyDecided),
            DecideOutcome::Expired => return Err(Error::Expired),
            DecideOutcome::NotFound => return Err(Error::NotFound),
        }
        let answered_on = match &v.evidence {
            Evidence::Approval { device_id, .. } => Some(device_id),
            _ => None,
        };
        super::withdrawal::withdraw_prompts(
            (self.store.as_ref(), self.push.as_ref(), &self.keys),
            &v.login.record,
            answered_on,
            WithdrawalReason::Answered,
            now,
        )
        .await;
        factor.record(self, &v, caller, (now, now_ms)).await?;
        tracing::info!(
            login_id = %id,
            factor = factor.kind().as_str(),
            decision = v.to.as_str(),
            "login answered"
        );
        Ok(v)
    }
}

/// What an answer proved, as RFC 8176 `amr` values: the factor's own
/// (without `mfa`, which the token adds for the whole login), and for the
/// phone's approval where its key lives (`hwk`/`swk` instead of `pop`, when
/// the phone says) and how the citizen confirmed (protocol 3).
fn proven(factor: &dyn SecondFactor, v: &Verified) -> Vec<String> {
    let key = match &v.evidence {
        Evidence::Approval { claims, .. } => claims.key.map(|k| k.amr()),
        _ => None,
    };
    let uv = match &v.evidence {
        Evidence::Approval { claims, .. } => claims.uv.map(|u| u.amr()),
        _ => None,
    };
    let mut amr: Vec<String> = Vec::new();
    let own = factor.amr().iter().filter(|a| **a != "mfa");
    for a in own
        .map(|a| if *a == "pop" { key.unwrap_or(a) } else { a })
        .chain(uv)
    {
        if !amr.iter().any(|x| x == a) {
            amr.push(a.to_owned());
        }
    }
    amr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_has_exactly_one_factor() {
        let answers = [
            Answer::Approval {
                cid: &ChallengeId::new("c"),
                jws: "a.b.c",
            },
            Answer::Code {
                login_id: &LoginId::new("l"),
                secret: None,
                code: "123 456",
            },
            Answer::Code {
                login_id: &LoginId::new("l"),
                secret: None,
                code: "ABCDE-FGHJK",
            },
        ];
        let kinds: Vec<FactorKind> = answers
            .iter()
            .map(|a| {
                let taking: Vec<_> = FACTORS.iter().filter(|f| f.takes(a)).collect();
                assert_eq!(taking.len(), 1, "{a:?}");
                taking[0].kind()
            })
            .collect();
        assert_eq!(
            kinds,
            [
                FactorKind::PushApproval,
                FactorKind::OfflineCode,
                FactorKind::RecoveryCode
            ]
        );
        for f in FACTORS {
            assert!(!f.amr().is_empty(), "{:?}", f.kind());
        }
    }
}
