//! The phone's side of the protocol, as pure functions of their inputs (the
//! current time is a parameter, so expiry is tested without sleeping).

use potvrda_i18n::{Locale, Tr};
use potvrda_proto::api::{EnrollmentRequest, PushSubscription};
use potvrda_proto::jose::{
    AUD_PULL, ApprovalClaims, ChallengeClaims, Decision, EcJwk, EnrollmentProofClaims, Jwks,
    PORTAL_SERVICE_MESSAGE, PullClaims, TYP_APPROVAL, TYP_CHALLENGE, TYP_ENROLLMENT, TYP_PULL,
    TYP_WITHDRAWAL, Verification, WithdrawalClaims, WithdrawalReason,
};
use potvrda_proto::limits::{MAX_CLOCK_SKEW_SECS, NUMBER_MAX, NUMBER_MIN};

use crate::presence::UserVerifier;
use crate::signer::Signer;
use crate::{Error, Result, jws};

/// A verified challenge: what the phone shows the citizen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The claims, verified against the server's keys.
    pub claims: ChallengeClaims,
    /// The JWS as received.
    pub jws: String,
}

/// The enrollment request for `activation_code`, with the proof signed by `signer`.
pub fn enrollment_request(
    signer: &dyn Signer,
    activation_code: &str,
    name: &str,
    platform: &str,
    push: Option<PushSubscription>,
    now: i64,
) -> Result<EnrollmentRequest> {
    let proof = jws::sign(
        signer,
        TYP_ENROLLMENT,
        None,
        &EnrollmentProofClaims {
            act: activation_code.to_owned(),
            iat: now,
        },
    )?;
    Ok(EnrollmentRequest {
        activation_code: activation_code.into(),
        public_key: signer.public_jwk(),
        name: name.to_owned(),
        platform: platform.to_owned(),
        push,
        proof,
    })
}

/// Verify a challenge JWS: signed by one of the server keys received at
/// enrollment, addressed to this device, not expired and not from the future.
pub fn verify_challenge(
    jws_text: &str,
    server_jwks: &Jwks,
    device_id: &str,
    now: i64,
) -> Result<Challenge> {
    let parsed = jws::parse(jws_text, Some(TYP_CHALLENGE))?;
    let claims: ChallengeClaims = parsed.verify(server_key(&parsed, server_jwks)?)?;
    for_this_device(&claims.aud, claims.exp, device_id, now)?;
    if claims.iat > now + MAX_CLOCK_SKEW_SECS {
        return Err(Error::MalformedJws("challenge issued in the future"));
    }
    Ok(Challenge {
        claims,
        jws: jws_text.to_owned(),
    })
}

/// The server key a pushed JWS names (`kid`), from the enrollment's JWKS.
fn server_key<'a>(parsed: &jws::Parsed<'_>, server_jwks: &'a Jwks) -> Result<&'a EcJwk> {
    let kid = parsed
        .header
        .kid
        .as_deref()
        .ok_or(Error::UnknownServerKey)?;
    server_jwks.find(kid).ok_or(Error::UnknownServerKey)
}

/// Addressed to this device and not expired.
fn for_this_device(aud: &str, exp: i64, device_id: &str, now: i64) -> Result<()> {
    if aud != device_id {
        return Err(Error::WrongAudience);
    }
    if exp <= now {
        return Err(Error::Expired);
    }
    Ok(())
}

/// A withdrawal the server pushed (issue 15): the login of challenge `cid`
/// is over, its prompt goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdrawal {
    /// The challenge whose prompt goes.
    pub cid: String,
    /// Why.
    pub reason: WithdrawalReason,
}

/// What a push brought, verified.
#[derive(Debug, Clone)]
pub enum Pushed {
    /// A login to confirm.
    Challenge(Box<Challenge>),
    /// A login that is over.
    Withdrawn(Withdrawal),
}

/// The challenge JWS in a Declarative Web Push message (issue 15):
/// `{"web_push": 8030, "notification": {…, "data": {"jws": …}}}`. Only the
/// JWS counts: the title and body shown by the platform are not trusted.
fn declarative_jws(text: &str) -> Result<String> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|_| Error::MalformedJws("push is neither a JWS nor JSON"))?;
    if value["web_push"] != 8030 {
        return Err(Error::MalformedJws("not a Declarative Web Push message"));
    }
    value["notification"]["data"]["jws"]
        .as_str()
        .map(str::to_owned)
        .ok_or(Error::MalformedJws("no JWS in the declarative push"))
}

/// A pushed JWS: a challenge, or a withdrawal (by its `typ`), verified with
/// the server's keys, for this device, unexpired.
pub fn verify_pushed(
    jws_text: &str,
    server_jwks: &Jwks,
    device_id: &str,
    now: i64,
) -> Result<Pushed> {
    let unwrapped;
    let jws_text = if jws_text.trim_start().starts_with('{') {
        unwrapped = declarative_jws(jws_text)?;
        unwrapped.as_str()
    } else {
        jws_text
    };
    let parsed = jws::parse(jws_text, None)?;
    if parsed.header.typ.as_deref() != Some(TYP_WITHDRAWAL) {
        return verify_challenge(jws_text, server_jwks, device_id, now)
            .map(|c| Pushed::Challenge(Box::new(c)));
    }
    let claims: WithdrawalClaims = parsed.verify(server_key(&parsed, server_jwks)?)?;
    for_this_device(&claims.aud, claims.exp, device_id, now)?;
    Ok(Pushed::Withdrawn(Withdrawal {
        cid: claims.cid.to_string(),
        reason: claims.reason,
    }))
}

/// What the phone calls the service a login is for, in `locale` (issue
/// 16): one of Potvrda's own in the phone's language, else the relying
/// party's registered name, else the portal.
pub fn service_name(challenge: &Challenge, locale: Locale) -> String {
    let ctx = &challenge.claims.ctx;
    match (ctx.own_service, &ctx.service) {
        (Some(own), _) => Tr(locale).t(own.message_id()),
        (None, Some(name)) => name.clone(),
        (None, None) => Tr(locale).t(PORTAL_SERVICE_MESSAGE),
    }
}

/// The approval JWS answering `challenge`. Approving requires the number the
/// citizen typed; the core never guesses or skips it. Approving and
/// reporting fraud also require the citizen's confirmation through
/// `verifier` (biometrics or PIN), asked after the number is checked: when
/// it says no, nothing is signed. A denial is signed without it.
pub fn approval(
    signer: &dyn Signer,
    verifier: &dyn UserVerifier,
    device_id: &str,
    challenge: &Challenge,
    decision: Decision,
    (number, locale): (Option<u8>, Locale),
    now: i64,
) -> Result<String> {
    let service = service_name(challenge, locale);
    let tr = Tr(locale);
    let (number, reason) = match decision {
        // A risky login asks for the longer code (`approval_with_code`).
        Decision::Approve if code_digits(challenge).is_some() => {
            return Err(Error::NumberRequired);
        }
        Decision::Approve => match number {
            Some(n) if (NUMBER_MIN..=NUMBER_MAX).contains(&n) => {
                (Some(n), tr.t1("app-confirm-login", "service", &service))
            }
            _ => return Err(Error::NumberRequired),
        },
        Decision::Fraud => (None, tr.t("app-report-fraud")),
        Decision::Deny => (None, String::new()),
    };
    if decision != Decision::Deny && !verifier.verify(&reason)? {
        return Err(Error::UserNotVerified);
    }
    let uv = (decision != Decision::Deny)
        .then(|| verifier.method())
        .flatten();
    sign_approval(
        signer,
        device_id,
        challenge,
        decision,
        (number, None, uv),
        now,
    )
}

/// Sign the answer to `challenge`: what the phone saw (`ctx_hash`), a fresh
/// `jti`, what the citizen typed — the number, or a risky login's code —,
/// how they confirmed, and where the key lives (protocol 3).
fn sign_approval(
    signer: &dyn Signer,
    device_id: &str,
    challenge: &Challenge,
    decision: Decision,
    (number, code, uv): (Option<u8>, Option<String>, Option<Verification>),
    now: i64,
) -> Result<String> {
    jws::sign(
        signer,
        TYP_APPROVAL,
        Some(device_id),
        &ApprovalClaims {
            cid: challenge.claims.cid.clone(),
            nonce: challenge.claims.nonce.clone(),
            decision,
            number,
            iat: now,
            ctx_hash: Some(ctx_hash(&challenge.jws)?),
            jti: Some(random_id()),
            code,
            uv,
            key: Some(signer.protection()),
        },
    )
}

/// How many digits of the login screen's code a risky challenge asks for
/// instead of the two-digit number (security round 2); `None` for the number.
pub fn code_digits(challenge: &Challenge) -> Option<u8> {
    challenge.claims.risk.as_ref().and_then(|r| r.code_digits)
}

/// What the phone should tell the citizen about a risky challenge ("first
/// login from this address", …), from its signed claims, in `locale`.
pub fn notices(challenge: &Challenge, locale: Locale) -> Vec<String> {
    let tr = Tr(locale);
    challenge
        .claims
        .risk
        .iter()
        .flat_map(|r| {
            r.reasons
                .iter()
                .map(|reason| tr.t(&format!("risk-{}", reason.as_str())))
        })
        .collect()
}

/// The approval of a risky challenge with the code from the login screen
/// (exactly the digits it asked for, spaces ignored), signed only after
/// `verifier` confirms the citizen.
pub fn approval_with_code(
    signer: &dyn Signer,
    verifier: &dyn UserVerifier,
    device_id: &str,
    challenge: &Challenge,
    (code, locale): (&str, Locale),
    now: i64,
) -> Result<String> {
    let digits = code_digits(challenge).ok_or(Error::NumberRequired)?;
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != usize::from(digits) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::NumberRequired);
    }
    let service = service_name(challenge, locale);
    if !verifier.verify(&Tr(locale).t1("app-confirm-login", "service", &service))? {
        return Err(Error::UserNotVerified);
    }
    sign_approval(
        signer,
        device_id,
        challenge,
        Decision::Approve,
        (None, Some(code), verifier.method()),
        now,
    )
}

/// SHA-256, base64url, of the claims a challenge JWS carries (its decoded payload).
pub fn ctx_hash(challenge_jws: &str) -> Result<String> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use sha2::Digest;
    let payload = challenge_jws
        .split('.')
        .nth(1)
        .ok_or(Error::MalformedJws("no payload"))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| Error::MalformedJws("payload is not base64url"))?;
    Ok(URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(bytes)))
}

fn random_id() -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let mut b = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// A pull token for `GET /v1/devices/{device_id}/challenges`.
pub fn pull_token(signer: &dyn Signer, device_id: &str, now: i64) -> Result<String> {
    jws::sign(
        signer,
        TYP_PULL,
        Some(device_id),
        &PullClaims {
            sub: device_id.to_owned(),
            aud: AUD_PULL.to_owned(),
            iat: now,
        },
    )
}

/// The offline code ([`potvrda_proto::offline`]) for the secret the server
/// gave at enrollment (base64url), at Unix time `now`: what the app shows
/// when the phone has no network, typed by the citizen on the login page.
pub fn offline_code(secret_b64: &str, now: i64) -> Result<String> {
    use base64::Engine;
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(secret_b64)
        .map_err(|_| Error::InvalidKey("offline secret is not base64url"))?;
    if secret.len() != potvrda_proto::offline::SECRET_LEN {
        return Err(Error::InvalidKey("offline secret has the wrong length"));
    }
    let now = u64::try_from(now).map_err(|_| Error::InvalidKey("time before 1970"))?;
    Ok(potvrda_proto::offline::code(&secret, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SoftwareSigner;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The citizen confirms every time.
    struct Present;

    impl UserVerifier for Present {
        fn verify(&self, _reason: &str) -> Result<bool> {
            Ok(true)
        }
    }

    /// A platform keystore stand-in that counts its signatures.
    struct CountingKeystore {
        key: SoftwareSigner,
        signed: AtomicUsize,
    }

    impl Signer for CountingKeystore {
        fn public_jwk(&self) -> potvrda_proto::jose::EcJwk {
            self.key.public_jwk()
        }
        fn sign(&self, message: &[u8]) -> Result<[u8; 64]> {
            self.signed.fetch_add(1, Ordering::SeqCst);
            self.key.sign(message)
        }
    }

    /// Says yes or no, and counts how often it was asked (and with what).
    struct Asked {
        answer: bool,
        asked: std::sync::Mutex<Vec<String>>,
    }

    impl UserVerifier for Asked {
        fn verify(&self, reason: &str) -> Result<bool> {
            if let Ok(mut a) = self.asked.lock() {
                a.push(reason.to_owned());
            }
            Ok(self.answer)
        }
    }
    use potvrda_proto::jose::LoginContext;

    fn server() -> (SoftwareSigner, Jwks) {
        let s = SoftwareSigner::generate();
        let mut jwk = s.public_jwk();
        jwk.kid = Some("srv1".into());
        (s, Jwks { keys: vec![jwk] })
    }

    fn challenge(aud: &str, iat: i64, exp: i64) -> ChallengeClaims {
        ChallengeClaims {
            cid: "c1".into(),
            nonce: "n1".into(),
            sub: "jelena".into(),
            aud: aud.into(),
            ctx: LoginContext::default(),
            iat,
            exp,
            risk: None,
        }
    }

    /// A withdrawal is verified as strictly as a challenge: a forged one
    /// could hide a live login from the citizen.
    #[test]
    fn withdrawal_verification_checks_key_audience_and_time() {
        let (srv, jwks) = server();
        let claims = |aud: &str| WithdrawalClaims {
            cid: "c1".into(),
            aud: aud.into(),
            reason: WithdrawalReason::Answered,
            iat: 1000,
            exp: 1300,
        };
        let sign = |signer: &SoftwareSigner, kid: &str, aud: &str| {
            jws::sign(signer, TYP_WITHDRAWAL, Some(kid), &claims(aud)).expect("signs")
        };
        let good = sign(&srv, "srv1", "dev1");
        let Ok(Pushed::Withdrawn(w)) = verify_pushed(&good, &jwks, "dev1", 1100) else {
            panic!("a valid withdrawal");
        };
        assert_eq!(
            (w.cid.as_str(), w.reason),
            ("c1", WithdrawalReason::Answered)
        );
        assert!(matches!(
            verify_pushed(&good, &jwks, "dev2", 1100),
            Err(Error::WrongAudience)
        ));
        assert!(matches!(
            verify_pushed(&good, &jwks, "dev1", 1300),
            Err(Error::Expired)
        ));
        let forged = sign(&SoftwareSigner::generate(), "srv1", "dev1");
        assert!(matches!(
            verify_pushed(&forged, &jwks, "dev1", 1100),
            Err(Error::BadSignature)
        ));
        assert!(matches!(
            verify_pushed(&sign(&srv, "srv2", "dev1"), &jwks, "dev1", 1100),
            Err(Error::UnknownServerKey)
        ));
        // Declarative Web Push JSON: only the JWS inside counts.
        let ch = jws::sign(
            &srv,
            TYP_CHALLENGE,
            Some("srv1"),
            &challenge("dev1", 1000, 1060),
        )
        .expect("signs");
        let wrapped = serde_json::json!({"web_push": 8030, "notification": {
            "title": "anything", "navigate": "https://evil.example/", "data": {"jws": ch}}});
        assert!(matches!(
            verify_pushed(&wrapped.to_string(), &jwks, "dev1", 1030),
            Ok(Pushed::Challenge(c)) if c.jws == ch
        ));
        let forged_inside =
            serde_json::json!({"web_push": 8030, "notification": {"data": {"jws": forged}}});
        assert!(verify_pushed(&forged_inside.to_string(), &jwks, "dev1", 1100).is_err());
        for bad in [
            r#"{"notification": {"data": {"jws": "x"}}}"#,
            r#"{"web_push": 8030}"#,
            "{not json",
        ] {
            assert!(verify_pushed(bad, &jwks, "dev1", 1030).is_err(), "{bad}");
        }
        // A challenge still verifies as a challenge through the same door.
        let ch = jws::sign(
            &srv,
            TYP_CHALLENGE,
            Some("srv1"),
            &challenge("dev1", 1000, 1060),
        )
        .expect("signs");
        assert!(matches!(
            verify_pushed(&ch, &jwks, "dev1", 1030),
            Ok(Pushed::Challenge(_))
        ));
    }

    #[test]
    fn challenge_verification_checks_key_audience_and_time() {
        let (srv, jwks) = server();
        let jws_text = jws::sign(
            &srv,
            TYP_CHALLENGE,
            Some("srv1"),
            &challenge("dev1", 1000, 1060),
        )
        .expect("signs");
        let c = verify_challenge(&jws_text, &jwks, "dev1", 1030).expect("valid");
        assert_eq!(c.claims.sub, "jelena");
        assert!(matches!(
            verify_challenge(&jws_text, &jwks, "dev2", 1030),
            Err(Error::WrongAudience)
        ));
        assert!(matches!(
            verify_challenge(&jws_text, &jwks, "dev1", 1060),
            Err(Error::Expired)
        ));
        assert!(verify_challenge(&jws_text, &jwks, "dev1", 900).is_err());

        // The same claims signed by an attacker's key under the server's kid.
        let attacker = SoftwareSigner::generate();
        let forged = jws::sign(
            &attacker,
            TYP_CHALLENGE,
            Some("srv1"),
            &challenge("dev1", 1000, 1060),
        )
        .expect("signs");
        assert!(matches!(
            verify_challenge(&forged, &jwks, "dev1", 1030),
            Err(Error::BadSignature)
        ));
        let unknown = jws::sign(
            &srv,
            TYP_CHALLENGE,
            Some("srv2"),
            &challenge("dev1", 1000, 1060),
        )
        .expect("signs");
        assert!(matches!(
            verify_challenge(&unknown, &jwks, "dev1", 1030),
            Err(Error::UnknownServerKey)
        ));
        // An approval-typed JWS is not a challenge.
        let wrong_typ = jws::sign(
            &srv,
            TYP_APPROVAL,
            Some("srv1"),
            &challenge("dev1", 1000, 1060),
        )
        .expect("signs");
        assert!(verify_challenge(&wrong_typ, &jwks, "dev1", 1030).is_err());
    }

    #[test]
    fn approving_requires_a_two_digit_number() {
        let dev = SoftwareSigner::generate();
        let (srv, _) = server();
        let c = Challenge {
            claims: challenge("dev1", 1000, 1060),
            jws: jws::sign(
                &srv,
                TYP_CHALLENGE,
                Some("srv1"),
                &challenge("dev1", 1000, 1060),
            )
            .expect("signs"),
        };
        for bad in [None, Some(0), Some(9), Some(100)] {
            assert!(matches!(
                approval(
                    &dev,
                    &Present,
                    "dev1",
                    &c,
                    Decision::Approve,
                    (bad, Locale::En),
                    1001
                ),
                Err(Error::NumberRequired)
            ));
        }
        let jws_text = approval(
            &dev,
            &Present,
            "dev1",
            &c,
            Decision::Approve,
            (Some(42), Locale::En),
            1001,
        )
        .expect("signs");
        let parsed = jws::parse(&jws_text, Some(TYP_APPROVAL)).expect("parses");
        assert_eq!(parsed.header.kid.as_deref(), Some("dev1"));
        let claims: ApprovalClaims = parsed.verify(&dev.public_jwk()).expect("verifies");
        assert_eq!(
            (claims.number, claims.nonce.as_str(), claims.iat),
            (Some(42), "n1", 1001)
        );
        // It signs what was shown: the hash of the challenge's claims, and a fresh id.
        assert_eq!(claims.ctx_hash, Some(ctx_hash(&c.jws).expect("hash")));
        let other = approval(
            &dev,
            &Present,
            "dev1",
            &c,
            Decision::Approve,
            (Some(42), Locale::En),
            1001,
        )
        .expect("signs");
        let other: ApprovalClaims = jws::parse(&other, None)
            .and_then(|p| p.verify(&dev.public_jwk()))
            .expect("ok");
        assert!(
            claims.jti.is_some() && claims.jti != other.jti,
            "a jti per approval"
        );
        // Denying needs no number, and drops one if given.
        let deny = approval(
            &dev,
            &Present,
            "dev1",
            &c,
            Decision::Deny,
            (Some(42), Locale::En),
            1001,
        )
        .expect("signs");
        let claims: ApprovalClaims = jws::parse(&deny, None)
            .and_then(|p| p.verify(&dev.public_jwk()))
            .expect("verifies");
        assert_eq!(claims.number, None);
    }

    #[test]
    fn enrollment_proof_and_pull_token_are_signed_by_the_device() {
        let dev = SoftwareSigner::generate();
        let req =
            enrollment_request(&dev, "ABCD-EFGH", "phone", "android", None, 5).expect("builds");
        let claims: EnrollmentProofClaims = jws::parse(&req.proof, Some(TYP_ENROLLMENT))
            .and_then(|p| p.verify(&req.public_key))
            .expect("verifies");
        assert_eq!((claims.act.as_str(), claims.iat), ("ABCD-EFGH", 5));
        let tok = pull_token(&dev, "dev1", 7).expect("signs");
        let claims: PullClaims = jws::parse(&tok, Some(TYP_PULL))
            .and_then(|p| p.verify(&dev.public_jwk()))
            .expect("verifies");
        assert_eq!(
            (claims.sub.as_str(), claims.aud.as_str(), claims.iat),
            ("dev1", AUD_PULL, 7)
        );
    }

    #[test]
    fn offline_codes_follow_rfc_6238() {
        use base64::Engine;
        let seed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(b"12345678901234567890123456789012");
        // RFC 6238 Appendix B, SHA-256, last six of eight digits.
        assert_eq!(offline_code(&seed, 59).expect("code"), "119246");
        assert_eq!(offline_code(&seed, 1_234_567_890).expect("code"), "819424");
        assert!(offline_code("short", 59).is_err());
        assert!(offline_code(&seed, -1).is_err());
    }

    #[test]
    fn nothing_is_signed_without_the_citizens_confirmation() {
        let (srv, _) = server();
        let c = Challenge {
            claims: challenge("dev1", 1000, 1060),
            jws: jws::sign(
                &srv,
                TYP_CHALLENGE,
                Some("srv1"),
                &challenge("dev1", 1000, 1060),
            )
            .expect("signs"),
        };
        let keystore = CountingKeystore {
            key: SoftwareSigner::generate(),
            signed: AtomicUsize::new(0),
        };
        let no = Asked {
            answer: false,
            asked: std::sync::Mutex::new(Vec::new()),
        };
        for decision in [Decision::Approve, Decision::Fraud] {
            assert!(matches!(
                approval(
                    &keystore,
                    &no,
                    "dev1",
                    &c,
                    decision,
                    (Some(42), Locale::En),
                    1001
                ),
                Err(Error::UserNotVerified)
            ));
        }
        assert_eq!(
            keystore.signed.load(Ordering::SeqCst),
            0,
            "the key was never used"
        );
        // A wrong number is refused before the citizen is even asked.
        assert!(
            approval(
                &keystore,
                &no,
                "dev1",
                &c,
                Decision::Approve,
                (Some(5), Locale::En),
                1001
            )
            .is_err()
        );
        let asked = no.asked.lock().expect("lock").clone();
        assert_eq!(asked.len(), 2);
        assert!(asked[0].contains("Confirm the login"), "{asked:?}");
        assert!(asked[1].contains("Report fraud"), "{asked:?}");
        // Denying needs no confirmation; confirmed answers sign once each.
        approval(
            &keystore,
            &no,
            "dev1",
            &c,
            Decision::Deny,
            (None, Locale::En),
            1001,
        )
        .expect("deny");
        let yes = Asked {
            answer: true,
            asked: std::sync::Mutex::new(Vec::new()),
        };
        approval(
            &keystore,
            &yes,
            "dev1",
            &c,
            Decision::Approve,
            (Some(42), Locale::En),
            1001,
        )
        .expect("ok");
        approval(
            &keystore,
            &yes,
            "dev1",
            &c,
            Decision::Fraud,
            (None, Locale::En),
            1001,
        )
        .expect("ok");
        assert_eq!(keystore.signed.load(Ordering::SeqCst), 3);
        assert_eq!(no.asked.lock().expect("lock").len(), 2, "deny asked nobody");
    }

    #[test]
    fn a_risky_challenge_is_approved_only_with_its_code_and_the_citizens_confirmation() {
        use potvrda_proto::jose::{ChallengeRisk, RiskLevel, RiskReason};
        let (srv, _) = server();
        let mut claims = challenge("dev1", 1000, 1060);
        claims.risk = Some(ChallengeRisk {
            level: RiskLevel::Elevated,
            reasons: vec![RiskReason::NewAddress, RiskReason::NewDevice],
            code_digits: Some(6),
        });
        let c = Challenge {
            jws: jws::sign(&srv, TYP_CHALLENGE, Some("srv1"), &claims).expect("signs"),
            claims,
        };
        assert_eq!(code_digits(&c), Some(6));
        assert_eq!(
            notices(&c, Locale::En),
            [
                "First login from this address",
                "A device was added recently"
            ]
        );
        let keystore = CountingKeystore {
            key: SoftwareSigner::generate(),
            signed: AtomicUsize::new(0),
        };
        let (yes, no) = (
            Asked {
                answer: true,
                asked: std::sync::Mutex::new(Vec::new()),
            },
            Asked {
                answer: false,
                asked: std::sync::Mutex::new(Vec::new()),
            },
        );
        // The two-digit number is not enough; nor a code of another length or with letters.
        assert!(matches!(
            approval(
                &keystore,
                &yes,
                "dev1",
                &c,
                Decision::Approve,
                (Some(42), Locale::En),
                1001
            ),
            Err(Error::NumberRequired)
        ));
        for bad in ["12345", "1234567", "12a456", ""] {
            assert!(
                matches!(
                    approval_with_code(&keystore, &yes, "dev1", &c, (bad, Locale::En), 1001),
                    Err(Error::NumberRequired)
                ),
                "{bad}"
            );
        }
        // The citizen says no: nothing is signed.
        assert!(matches!(
            approval_with_code(&keystore, &no, "dev1", &c, ("123456", Locale::En), 1001),
            Err(Error::UserNotVerified)
        ));
        assert_eq!(keystore.signed.load(Ordering::SeqCst), 0);
        // Typed with a space, confirmed: the code is signed, the number is not.
        let jws_text =
            approval_with_code(&keystore, &yes, "dev1", &c, ("123 456", Locale::En), 1001)
                .expect("signs");
        let signed: ApprovalClaims = jws::parse(&jws_text, Some(TYP_APPROVAL))
            .expect("parses")
            .verify(&keystore.key.public_jwk())
            .expect("verifies");
        assert_eq!(
            (signed.code.as_deref(), signed.number),
            (Some("123456"), None)
        );
        assert_eq!(signed.ctx_hash, Some(ctx_hash(&c.jws).expect("hash")));
        // Denying and reporting need no code.
        approval(
            &keystore,
            &yes,
            "dev1",
            &c,
            Decision::Deny,
            (None, Locale::En),
            1001,
        )
        .expect("deny");
        approval(
            &keystore,
            &yes,
            "dev1",
            &c,
            Decision::Fraud,
            (None, Locale::En),
            1001,
        )
        .expect("fraud");
        // An ordinary challenge takes no code.
        let plain = Challenge {
            claims: challenge("dev1", 1000, 1060),
            jws: c.jws.clone(),
        };
        assert!(
            approval_with_code(
                &keystore,
                &yes,
                "dev1",
                &plain,
                ("123456", Locale::En),
                1001
            )
            .is_err()
        );
    }

    #[test]
    fn every_risk_reason_has_its_words_in_every_locale() {
        for locale in Locale::ALL {
            for reason in potvrda_proto::jose::RiskReason::ALL {
                let id = format!("risk-{}", reason.as_str());
                assert!(potvrda_i18n::catalog().has(locale, &id), "{locale} {id}");
            }
        }
    }

    /// The phone's prompt (what a biometric or PIN dialog shows) is in the
    /// device's language.
    #[test]
    fn the_prompt_is_in_the_devices_language() {
        struct Records(std::sync::Mutex<Vec<String>>);
        impl UserVerifier for Records {
            fn verify(&self, reason: &str) -> Result<bool> {
                self.0
                    .lock()
                    .map_err(|_| Error::UserNotVerified)?
                    .push(reason.to_owned());
                Ok(true)
            }
        }
        let dev = SoftwareSigner::generate();
        let (srv, _) = server();
        let mut claims = challenge("dev1", 1000, 1060);
        // A counter login, as the server writes it for a Cyrillic device.
        claims.ctx.service = Some("Шалтер".into());
        claims.ctx.own_service = Some(potvrda_proto::jose::OwnService::Counter);
        let c = Challenge {
            jws: jws::sign(&srv, TYP_CHALLENGE, Some("srv1"), &claims).expect("signs"),
            claims,
        };
        let seen = Records(std::sync::Mutex::new(Vec::new()));
        for locale in [Locale::Hu, Locale::SrCyrl] {
            approval(
                &dev,
                &seen,
                "dev1",
                &c,
                Decision::Approve,
                (Some(42), locale),
                1001,
            )
            .expect("signs");
        }
        approval(
            &dev,
            &seen,
            "dev1",
            &c,
            Decision::Fraud,
            (None, Locale::SrLatn),
            1001,
        )
        .expect("signs");
        let seen = seen.0.into_inner().expect("lock");
        assert_eq!(
            seen,
            [
                "A bejelentkezés megerősítése: Ügyfélszolgálati pult".to_owned(),
                "Потврди пријаву: Шалтер".to_owned(),
                "Prijavi zloupotrebu".to_owned(),
            ]
        );
    }
}
