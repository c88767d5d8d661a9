//! When the phone is not at hand: ten single-use recovery codes, issued with
//! the account's first device and kept only as keyed hashes, or the phone's
//! offline code ([`super::offline`]); either replaces the push approval of
//! one login, and a wrong one counts as a failed password.

use potvrda_proto::api::{AuditKind, LoginStatus};

use super::{CODE_ALPHABET, Potvrda, ct_eq_str, sha256_b64};
use crate::audit::{Caller, Event};
use crate::clock;
use crate::error::{Error, Result};
use crate::store::RateKey;
use crate::store::records::{JsonRecord, Kind};
use crate::store::{DecideOutcome, LoginState};

/// Wrong offline codes per citizen in a day before offline codes stop
/// working for that day: with three codes valid at a time, a guesser who
/// has the password succeeds with probability ≤ 10 × 3 / 10⁶ a day.
const OFFLINE_FAILURES_PER_DAY: u32 = 10;
const DAY: i64 = 86_400;

/// Codes issued at once.
const RECOVERY_CODES: usize = 10;
/// Characters per code: 10 × 5 bits = 50 bits.
const RECOVERY_LEN: usize = 10;

/// A citizen's unspent recovery codes, as peppered hashes.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
struct RecoveryHashes(Vec<String>);

impl JsonRecord for RecoveryHashes {
    const KIND: Kind = Kind::RecoveryCodes;
    type Id = str;
}

/// The canonical form of a typed code: upper case, no dashes or spaces.
fn normalize(code: &str) -> Option<String> {
    let norm: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (norm.len() == RECOVERY_LEN && norm.bytes().all(|b| CODE_ALPHABET.contains(&b))).then_some(norm)
}

impl Potvrda {
    /// Issue the codes if the account has none yet (its first device); the
    /// codes to show once, or `None`.
    pub(super) async fn issue_recovery_codes(
        &self,
        user_id: &str,
        caller: &Caller,
    ) -> Result<Option<Vec<String>>> {
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
        Ok(Some(codes))
    }

    /// `POST /v1/logins/{login_id}/code`: a recovery code instead of the
    /// phone. The login secret authorises; the code is spent once.
    pub async fn login_with_code(
        &self,
        login_id: &str,
        secret: Option<&str>,
        code: &str,
        caller: &Caller,
    ) -> Result<LoginStatus> {
        let secret = secret.ok_or(Error::Unauthorized)?;
        let login = self.store.login(login_id).await?.ok_or(Error::NotFound)?;
        if !ct_eq_str(&sha256_b64(secret.as_bytes()), &login.record.secret_hash) {
            return Err(Error::Unauthorized);
        }
        let now = self.clock.now();
        match login.status(now) {
            LoginStatus::Pending => {}
            LoginStatus::Expired => return Err(Error::Expired),
            _ => return Err(Error::AlreadyDecided),
        }
        let rec = &login.record;
        // Wrong codes count with wrong passwords, under the same guard.
        let gate = self
            .password_gate(&rec.username, Some(&rec.user_id), caller.ip, now)
            .await?;
        let locked = gate.locked.is_some();
        // Six digits: the phone's offline code; else a recovery code.
        if let Some(typed) = potvrda_proto::offline::normalize(code) {
            // Six digits are few: besides the password's lock, at most
            // OFFLINE_FAILURES_PER_DAY wrong codes a day, then offline codes
            // are refused for the rest of the day (recovery codes still work).
            let day_key = RateKey::OfflineFailures(&rec.user_id);
            let (day_failures, _) = self.store.rate_count(&day_key, now, DAY).await?;
            let device = if locked || day_failures >= OFFLINE_FAILURES_PER_DAY {
                None
            } else {
                self.check_offline_code(&rec.user_id, &typed, now).await?
            };
            let Some(device_id) = device else {
                self.store.rate_hit(&day_key, now, DAY).await?;
                return self
                    .wrong_code(&gate, rec, "wrong_offline_code", caller, now)
                    .await;
            };
            self.approve_with_code(&rec.id, now).await?;
            self.audit
                .record(
                    Event::new(AuditKind::OfflineCodeUsed, now)
                        .user(&rec.user_id)
                        .caller(caller)
                        .with("login_id", rec.id.as_str())
                        .with("device_id", device_id.as_str()),
                )
                .await;
            return Ok(LoginStatus::Approved);
        }
        let hash = normalize(code).map(|c| self.keys.pepper.hash(c.as_bytes()));
        let codes = self.records::<RecoveryHashes>();
        let stored = codes.read(&rec.user_id, now).await?;
        let spent = match (&hash, &stored, locked) {
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
            return self
                .wrong_code(&gate, rec, "wrong_recovery_code", caller, now)
                .await;
        };
        self.approve_with_code(&rec.id, now).await?;
        self.audit
            .record(
                Event::new(AuditKind::RecoveryCodeUsed, now)
                    .user(&rec.user_id)
                    .caller(caller)
                    .with("login_id", rec.id.as_str())
                    .with("remaining", remaining),
            )
            .await;
        Ok(LoginStatus::Approved)
    }

    /// A wrong code: a failed attempt under the password's lock, audited.
    async fn wrong_code(
        &self,
        gate: &super::guard::Gate,
        rec: &crate::store::LoginRecord,
        reason: &'static str,
        caller: &Caller,
        now: i64,
    ) -> Result<LoginStatus> {
        self.password_failed(gate, Some(&rec.user_id), caller, now)
            .await?;
        self.audit
            .record(
                Event::new(AuditKind::LoginFailed, now)
                    .user(&rec.user_id)
                    .caller(caller)
                    .with("reason", reason)
                    .with("login_id", rec.id.as_str()),
            )
            .await;
        Err(Error::InvalidCredentials)
    }

    /// The code stands in for the phone: the login is approved.
    async fn approve_with_code(&self, login_id: &str, now: i64) -> Result<()> {
        match self
            .store
            .decide(
                login_id,
                LoginState::Approved,
                now,
                self.clock.now_ms(),
                None,
            )
            .await?
        {
            DecideOutcome::Decided => Ok(()),
            DecideOutcome::Expired => Err(Error::Expired),
            DecideOutcome::NotFound => Err(Error::NotFound),
            DecideOutcome::AlreadyDecided => Err(Error::AlreadyDecided),
        }
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
