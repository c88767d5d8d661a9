//! When the phone is not at hand: ten single-use recovery codes, issued with
//! the account's first device and kept only as keyed hashes, or the phone's
//! offline code ([`super::offline`]); either replaces the push approval of
//! one login, and a wrong one counts as a failed password.

use crate::store::{LoginId, UserId};
use potvrda_proto::Secret;
use potvrda_proto::api::{AuditKind, LoginStatus};

use super::CODE_ALPHABET;
use super::factors::Answer;
use crate::audit::{Caller, Event};
use crate::clock;
use crate::error::{Error, Result};
use crate::service::oidc::ClientCredentials;
use crate::store::records::{JsonRecord, Kind};

/// Wrong offline codes per citizen in a day before offline codes stop
/// working for that day: with three codes valid at a time, a guesser who
/// has the password succeeds with probability ≤ 10 × 3 / 10⁶ a day.
pub(super) const OFFLINE_FAILURES_PER_DAY: u32 = 10;
pub(super) const DAY: i64 = 86_400;

/// Codes issued at once.
const RECOVERY_CODES: usize = 10;
/// Characters per code: 10 × 5 bits = 50 bits.
const RECOVERY_LEN: usize = potvrda_proto::limits::RECOVERY_CODE_LEN;

/// A citizen's unspent recovery codes, as peppered hashes.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub(super) struct RecoveryHashes(pub(super) Vec<String>);

impl JsonRecord for RecoveryHashes {
    const KIND: Kind = Kind::RecoveryCodes;
    type Id = UserId;
}

/// The canonical form of a typed code: upper case, no dashes or spaces.
pub(super) fn normalize(code: &str) -> Option<String> {
    potvrda_proto::limits::normalize_code(code, RECOVERY_LEN)
}

capability! {
    /// Recovery codes.
    pub RecoveryCodes
}

impl RecoveryCodes<'_> {
    /// Issue the codes if the account has none yet (its first device); the
    /// codes to show once, or `None`.
    pub(super) async fn issue_recovery_codes(
        &self,
        user_id: &UserId,
        caller: &Caller,
    ) -> Result<Option<Vec<Secret>>> {
        let rng = self.rng.as_ref();
        let mut codes = Vec::with_capacity(RECOVERY_CODES);
        for _ in 0..RECOVERY_CODES {
            // Two groups of five, `XXXXX-XXXXX`, for reading off paper.
            let raw = clock::string(rng, CODE_ALPHABET, RECOVERY_LEN)?;
            codes.push(format!("{}-{}", &raw[..5], &raw[5..]));
        }
        let hashes: Vec<String> = codes
            .iter()
            .filter_map(|c| normalize(c))
            .map(|c| self.keys.pepper.hash(c.as_bytes()))
            .collect();
        let now = self.clock.now();
        if !self
            .records()
            .put_new(user_id, &RecoveryHashes(hashes), 0, now)
            .await?
        {
            return Ok(None);
        }
        self.audit
            .record(
                Event::new(AuditKind::RecoveryCodesIssued, now)
                    .user(user_id)
                    .caller(caller)
                    .with("count", RECOVERY_CODES),
            )
            .await;
        Ok(Some(codes.into_iter().map(Secret::from).collect()))
    }

    /// `POST /v1/logins/{login_id}/code`: a recovery code or the phone's
    /// offline code instead of the phone (the code factors:
    /// `factors/codes.rs`). The login secret authorises; the code is spent
    /// once.
    pub async fn login_with_code(
        &self,
        creds: ClientCredentials,
        login_id: &LoginId,
        secret: Option<&str>,
        code: &str,
        caller: &Caller,
    ) -> Result<LoginStatus> {
        let client = self.client_auth().portal(creds).await?;
        let login = self.store.login(login_id).await?.ok_or(Error::NotFound)?;
        if login.record.portal_client.as_ref() != Some(&client.client_id) {
            return Err(Error::NotFound);
        }
        self.redeem_login_code(login_id, secret, code, caller).await
    }

    /// A code for a login the server's own pages started.
    pub(super) async fn redeem_login_code(
        &self,
        login_id: &LoginId,
        secret: Option<&str>,
        code: &str,
        caller: &Caller,
    ) -> Result<LoginStatus> {
        let answer = Answer::Code {
            login_id,
            secret,
            code,
        };
        self.factors().answer(answer, caller).await?;
        Ok(LoginStatus::Approved)
    }

    /// A wrong code: a failed attempt under the password's lock, audited.
    pub(super) async fn wrong_code(
        &self,
        gate: &super::guard::Gate,
        rec: &crate::store::LoginRecord,
        reason: &'static str,
        caller: &Caller,
        now: i64,
    ) -> Error {
        if let Err(e) = self
            .guards()
            .password_failed(gate, Some(&rec.user_id), caller, now)
            .await
        {
            return e;
        }
        self.audit
            .record(
                Event::new(AuditKind::LoginFailed, now)
                    .user(&rec.user_id)
                    .caller(caller)
                    .with("reason", reason)
                    .with("login_id", rec.id.as_str()),
            )
            .await;
        Error::InvalidCredentials
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_typed_forgivingly() {
        assert_eq!(normalize("abcde-fghjk").as_deref(), Some("ABCDEFGHJK"));
        assert_eq!(normalize("ABCDE FGHJK").as_deref(), Some("ABCDEFGHJK"));
        assert_eq!(normalize("ABCDE-FGHJ0"), None, "0 is not in the alphabet");
        assert_eq!(normalize("ABCDE"), None);
    }
}
