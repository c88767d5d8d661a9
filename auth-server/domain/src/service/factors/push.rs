//! The push approval: the phone signs its answer to the challenge it was
//! sent (ES256 with its enrolled key), with the number or code the citizen
//! matched. Eight rules decide whether the answer counts, each refusing
//! with its own reason, before the state is even tried.

use crate::store::{ChallengeId, DeviceId};
use async_trait::async_trait;
use potvrda_proto::jose::{ApprovalClaims, TYP_APPROVAL};
use potvrda_proto::limits::MAX_CLOCK_SKEW_SECS;

use super::{Answer, Evidence, FactorKind, SecondFactor, Verified};
use crate::audit::Caller;
use crate::error::{Error, Result};
use crate::service::decide::{self, Decided};
use crate::service::{Potvrda, ct_eq_str, decoding_key, payload_hash, verify_jws};
use crate::store::{Device, Login, LoginState};
use potvrda_proto::api::LoginStatus;

/// How long a spent approval `jti` is remembered: far beyond any challenge.
const JTI_KEEP_SECS: i64 = 86_400;

/// `Answer::Approval`.
pub(in crate::service) struct PushApproval;

#[async_trait]
impl SecondFactor for PushApproval {
    fn kind(&self) -> FactorKind {
        FactorKind::PushApproval
    }

    /// Proof of possession of the device's key (`hwk`/`swk` when the phone
    /// says where it lives) and the citizen's presence, typing the number;
    /// how they confirmed comes with each approval (`proven`).
    fn amr(&self) -> &'static [&'static str] {
        &["mfa", "pop", "user"]
    }

    fn takes(&self, answer: &Answer<'_>) -> bool {
        matches!(answer, Answer::Approval { .. })
    }

    async fn verify(
        &self,
        svc: &Potvrda,
        answer: &Answer<'_>,
        caller: &Caller,
    ) -> Result<Verified> {
        let Answer::Approval { cid, jws } = *answer else {
            return Err(Error::InvalidRequest("not an approval".into()));
        };
        svc.device_limit(caller)?;
        let (device, claims) = signed_by_a_device(svc, jws).await?;
        let login = asked_device(svc, cid, &device, &claims).await?;
        let jti = spend_jti(svc, &device, &claims).await?;
        fresh_and_pending(&login, &claims, svc.clock.now())?;
        let (to, mismatch) = decide::outcome(&login.record, &claims);
        Ok(Verified {
            login,
            to,
            jti: Some(jti),
            evidence: Evidence::Approval {
                device_id: device.id,
                claims: Box::new(claims),
                mismatch,
            },
        })
    }

    async fn record(
        &self,
        svc: &Potvrda,
        v: &Verified,
        caller: &Caller,
        (now, decided_ms): (i64, i64),
    ) -> Result<()> {
        let Evidence::Approval {
            device_id,
            claims,
            mismatch,
        } = &v.evidence
        else {
            return Err(Error::Internal("push approval without its evidence".into()));
        };
        let decided = Decided {
            rec: &v.login.record,
            device_id,
            claims,
            approved: v.to == LoginState::Approved,
            mismatch: *mismatch,
            now,
            decided_ms,
        };
        svc.decisions()
            .after_decision(&decided, self.amr(), caller)
            .await
    }
}

/// Rules 1–2: a JWS of type approval, signed by the enrolled key of the
/// device its `kid` names.
async fn signed_by_a_device(svc: &Potvrda, jws: &str) -> Result<(Device, ApprovalClaims)> {
    let header = jsonwebtoken::decode_header(jws)
        .map_err(|_| Error::InvalidSignature("approval is not a JWS"))?;
    let device_id = header
        .kid
        .ok_or(Error::InvalidSignature("approval has no kid"))?;
    let device = svc
        .store
        .device(&DeviceId::new(device_id))
        .await?
        .ok_or(Error::UnknownDevice)?;
    let claims: ApprovalClaims = verify_jws(jws, TYP_APPROVAL, &decoding_key(&device.public_key)?)?;
    Ok((device, claims))
}

/// Rules 3–6: for this challenge, of a login this device was asked, with
/// the challenge's nonce and the hash of exactly what this device was sent.
async fn asked_device(
    svc: &Potvrda,
    cid: &ChallengeId,
    device: &Device,
    claims: &ApprovalClaims,
) -> Result<Login> {
    if claims.cid != *cid {
        return Err(Error::InvalidRequest(
            "the approval is for another challenge".into(),
        ));
    }
    let login = svc
        .store
        .login_by_challenge(cid)
        .await?
        .ok_or(Error::NotFound)?;
    let rec = &login.record;
    if rec.user_id != device.user_id || !rec.challenges.iter().any(|c| c.device_id == device.id) {
        return Err(Error::InvalidSignature("this device was not asked"));
    }
    if !ct_eq_str(&claims.nonce, &rec.nonce) {
        return Err(Error::InvalidSignature(
            "nonce does not match the challenge",
        ));
    }
    // What the phone showed: the hash of the claims sent to this device
    // (required since protocol 2, as is the approval's jti).
    let (Some(hash), Some(_)) = (&claims.ctx_hash, &claims.jti) else {
        return Err(Error::InvalidSignature(
            "ctx_hash and jti are required (protocol 2)",
        ));
    };
    let sent = rec
        .challenges
        .iter()
        .find(|c| c.device_id == device.id)
        .map(|c| payload_hash(&c.jws))
        .unwrap_or_default();
    if !ct_eq_str(hash, &sent) {
        return Err(Error::InvalidSignature(
            "ctx_hash does not match the challenge sent",
        ));
    }
    Ok(login)
}

/// Rule 7: each approval once, by its `jti`, before the state change is
/// even tried.
async fn spend_jti(svc: &Potvrda, device: &Device, claims: &ApprovalClaims) -> Result<String> {
    let jti = claims.jti.clone().unwrap_or_default();
    if jti.is_empty() || jti.len() > 64 {
        return Err(Error::InvalidSignature("jti must be 1-64 characters"));
    }
    let now = svc.clock.now();
    if !svc
        .store
        .spend_jti(&device.id, &jti, now + JTI_KEEP_SECS, now)
        .await?
    {
        return Err(Error::AlreadyDecided);
    }
    Ok(jti)
}

/// Rule 8: signed after the login began (within the clock skew) and not in
/// the future, for a login still pending.
fn fresh_and_pending(login: &Login, claims: &ApprovalClaims, now: i64) -> Result<()> {
    if claims.iat < login.record.created_at - MAX_CLOCK_SKEW_SECS
        || claims.iat > now + MAX_CLOCK_SKEW_SECS
    {
        return Err(Error::InvalidSignature("approval is not fresh"));
    }
    match login.status(now) {
        LoginStatus::Pending => Ok(()),
        LoginStatus::Expired => Err(Error::Expired),
        _ => Err(Error::AlreadyDecided),
    }
}
