//! JOSE pieces of the contract: the P-256 JWK, header `typ` values, audiences
//! and the claim sets of every JWS the two sides exchange.

use serde::{Deserialize, Serialize};

use crate::ids::ChallengeId;

/// The only signature algorithm anywhere in the protocol.
pub const ALG_ES256: &str = "ES256";

/// Protected-header parameters this protocol never uses and will not
/// ignore: `crit` (RFC 7515 §4.1.11 — a recipient must reject a JWS whose
/// critical extensions it does not understand; Potvrda understands none)
/// and `b64` (RFC 7797 — an unencoded payload changes what is signed).
pub const REFUSED_HEADER_PARAMS: &[&str] = &["crit", "b64"];

/// The first refused parameter a decoded protected header (JSON) carries;
/// `None` for a clean header (or one that is not a JSON object, which the
/// JWS parser refuses on its own).
pub fn refused_header_param(header_json: &[u8]) -> Option<&'static str> {
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(header_json).ok()?;
    REFUSED_HEADER_PARAMS
        .iter()
        .copied()
        .find(|p| map.contains_key(*p))
}
/// `typ` of the challenge JWS the server pushes to the phone.
pub const TYP_CHALLENGE: &str = "potvrda-challenge+jwt";
/// `typ` of the withdrawal JWS the server pushes when a login is over
/// (issue 15): the prompt of its challenge goes.
pub const TYP_WITHDRAWAL: &str = "potvrda-withdrawal+jwt";
/// `typ` of the approval JWS the phone posts back.
pub const TYP_APPROVAL: &str = "potvrda-approval+jwt";
/// `typ` of the enrollment proof JWS.
pub const TYP_ENROLLMENT: &str = "potvrda-enrollment+jwt";
/// `typ` of the pull token JWS.
pub const TYP_PULL: &str = "potvrda-pull+jwt";
/// `aud` of a pull token.
pub const AUD_PULL: &str = "potvrda-pull";
/// `amr` of an access token issued after password plus push approval.
pub const AMR_PWD_MFA: [&str; 2] = ["pwd", "mfa"];
/// `token_type` of the access token in the status answer.
pub const TOKEN_TYPE_BEARER: &str = "Bearer";

/// A public EC key on P-256 as a JWK (RFC 7517/7518).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EcJwk {
    /// Always `EC`.
    pub kty: String,
    /// Always `P-256`.
    pub crv: String,
    /// X coordinate, 32 bytes, base64url.
    pub x: String,
    /// Y coordinate, 32 bytes, base64url.
    pub y: String,
    /// Key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// `ES256` when published by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// `sig` when published by the server.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

impl EcJwk {
    /// A bare P-256 public key from its coordinates (already base64url).
    pub fn p256(x: String, y: String) -> Self {
        Self {
            kty: "EC".into(),
            crv: "P-256".into(),
            x,
            y,
            kid: None,
            alg: None,
            use_: None,
        }
    }

    /// Whether `kty` and `crv` name a P-256 key (coordinates are checked by whoever decodes them).
    pub fn is_p256(&self) -> bool {
        self.kty == "EC" && self.crv == "P-256"
    }
}

/// A JWK set, as served at `/.well-known/jwks.json` and returned at enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<EcJwk>,
}

impl Jwks {
    /// The key with this `kid`.
    pub fn find(&self, kid: &str) -> Option<&EcJwk> {
        self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
    }
}

/// A public key of the token keyring as `/.well-known/jwks.json` publishes
/// it: EC P-256 (`crv`, `x`, `y`) for ES256 or RSA (`n`, `e`) for RS256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicJwk {
    /// `EC` or `RSA`.
    pub kty: String,
    /// Key id (RFC 7638 thumbprint).
    pub kid: String,
    /// `ES256` or `RS256`.
    pub alg: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    /// EC: the curve, `P-256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// EC: X coordinate, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// EC: Y coordinate, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// RSA: modulus, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA: public exponent, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

/// The token keys at `/.well-known/jwks.json`: the current and the previous
/// generation, each as ES256 and RS256.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicJwks {
    /// The keys.
    pub keys: Vec<PublicJwk>,
}

impl PublicJwks {
    /// The key with this `kid`.
    pub fn find(&self, kid: &str) -> Option<&PublicJwk> {
        self.keys.iter().find(|k| k.kid == kid)
    }
}

/// Who is logging in from where, shown on the phone.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginContext {
    /// The client's IP address as the portal saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The browser's user agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The service the citizen is logging into: the registered name of the
    /// client that asked (protocol 3), never the caller's word.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Protocol 3: a CIBA request's `binding_message`, which the consumption
    /// device shows too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding_message: Option<String>,
    /// Protocol 3 (issue 16): the login is for one of Potvrda's own
    /// services, which the phone names in its own language. `service` then
    /// carries the name in the language of the device's push subscription
    /// (Cyrillic Serbian when it has none), for phones that predate it.
    /// Set only by the server, never taken from a caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_service: Option<OwnService>,
}

/// One of Potvrda's own services a login can be for (issue 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OwnService {
    /// The counter's web pages (an official logs in).
    Counter,
    /// A citizen adds a device from one they already hold.
    NewDevice,
    /// The admin API (a staff member's tool).
    AdminApi,
}

impl OwnService {
    /// The id of its name in the translation catalogue (`potvrda-i18n`).
    pub fn message_id(self) -> &'static str {
        match self {
            Self::Counter => "service-counter",
            Self::NewDevice => "service-new-device",
            Self::AdminApi => "service-admin-api",
        }
    }
}

/// The id in the translation catalogue of what the phone shows when a
/// login names no service: the portal itself.
pub const PORTAL_SERVICE_MESSAGE: &str = "service-portal";

/// Claims of the challenge JWS (`typ` [`TYP_CHALLENGE`]), signed by the server.
/// It never contains the number: the citizen must read it off the login screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChallengeClaims {
    /// Challenge id.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub cid: ChallengeId,
    /// 32 random bytes, base64url; the approval must echo it.
    pub nonce: String,
    /// The username logging in.
    pub sub: String,
    /// The device id this challenge is addressed to.
    pub aud: String,
    /// Login context.
    pub ctx: LoginContext,
    /// Issued at.
    pub iat: i64,
    /// Expires at.
    pub exp: i64,
    /// Why this login looks risky, and what the phone must ask for (protocol
    /// 2; absent for an ordinary login, which is then as in version 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<ChallengeRisk>,
}

/// Why a prompt is withdrawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawalReason {
    /// Another device answered it, or a recovery or offline code did.
    Answered,
    /// A newer login of the same citizen replaced it.
    Superseded,
    /// Nobody answered in time.
    Expired,
}

/// Claims of the withdrawal JWS (`typ` [`TYP_WITHDRAWAL`]), signed by the
/// server like a challenge: the login of challenge `cid` is over, so the
/// device drops its prompt (a forged one cannot hide a live login).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithdrawalClaims {
    /// The challenge whose prompt goes.
    pub cid: ChallengeId,
    /// The device id it is addressed to.
    pub aud: String,
    /// Why.
    pub reason: WithdrawalReason,
    /// Issued at.
    pub iat: i64,
    /// Expires at.
    pub exp: i64,
}

/// The risk part of a challenge: signed, so the phone can tell the citizen
/// why it asks for more (security round 2, risk-adaptive push).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChallengeRisk {
    /// How risky.
    pub level: RiskLevel,
    /// Why, in the order they were weighed.
    pub reasons: Vec<RiskReason>,
    /// The approval must carry the login screen's code of this many digits
    /// (`ApprovalClaims::code`) instead of the two-digit number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_digits: Option<u8>,
}

/// A login's risk level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    /// Ordinary: the two-digit number, a push.
    Low,
    /// A longer code typed on the phone (as Duo's Verified Push).
    Elevated,
    /// The longer code, and no notification: the challenge waits in the app
    /// until the citizen opens it, with the reasons shown.
    High,
}

impl RiskLevel {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Elevated => "elevated",
            Self::High => "high",
        }
    }
}

/// A signal that makes a login riskier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RiskReason {
    /// The first login from this address (none of the citizen's approved
    /// logins came from it).
    NewAddress,
    /// A login of the citizen was denied in the last 24 hours.
    RecentDenials,
    /// The citizen reported a login as fraud in the last 30 days.
    RecentFraudReport,
    /// Several logins in the last 15 minutes.
    Velocity,
    /// No approved login for 90 days.
    Dormant,
    /// A device enrolled in the last 24 hours, after the citizen's first
    /// approved login (a second phone, or one enrolled after a reset).
    NewDevice,
}

impl RiskReason {
    /// Every reason.
    pub const ALL: [Self; 6] = [
        Self::NewAddress,
        Self::RecentDenials,
        Self::RecentFraudReport,
        Self::Velocity,
        Self::Dormant,
        Self::NewDevice,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NewAddress => "new_address",
            Self::RecentDenials => "recent_denials",
            Self::RecentFraudReport => "recent_fraud_report",
            Self::Velocity => "velocity",
            Self::Dormant => "dormant",
            Self::NewDevice => "new_device",
        }
    }
}

/// The citizen's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Approve the login (requires the number).
    Approve,
    /// Deny the login.
    Deny,
    /// Deny the login and report it as fraud: the account is locked and
    /// the counter is alerted.
    Fraud,
}

/// Claims of the approval JWS (`typ` [`TYP_APPROVAL`], header `kid` = device id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApprovalClaims {
    /// Challenge id.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub cid: ChallengeId,
    /// The challenge's nonce, echoed.
    pub nonce: String,
    /// Approve or deny.
    pub decision: Decision,
    /// The two-digit number typed by the citizen; required to approve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u8>,
    /// Issued at.
    pub iat: i64,
    /// SHA-256 (base64url) of the challenge claims the phone displayed (the
    /// decoded payload of the challenge JWS): proof of what the citizen saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctx_hash: Option<String>,
    /// Unique id of this approval (single use; carried into the access token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The login screen's longer code, typed on the phone, when the
    /// challenge asked for one (`ChallengeRisk::code_digits`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Protocol 3: how the citizen confirmed before the phone signed (an
    /// approval or a fraud report; a denial asks nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uv: Option<Verification>,
    /// Protocol 3: where the key that signed lives, as the phone reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyProtection>,
}

/// How the citizen confirmed on the phone (protocol 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Verification {
    /// A biometric prompt that does not say which biometric (Android's
    /// `BiometricPrompt`, iOS's `LAContext`).
    Biometric,
    /// A fingerprint.
    Fingerprint,
    /// A face.
    Face,
    /// The app's own PIN, or the phone's screen lock.
    AppPin,
    /// The core's six-digit PIN (`pin_verification`).
    CorePin,
}

impl Verification {
    /// Its RFC 8176 `amr` value: `fpt`, `face`, `pin`, or `user` for a
    /// biometric of unknown kind (the citizen was there; which trait
    /// proved it is not known).
    pub fn amr(self) -> &'static str {
        match self {
            Self::Fingerprint => "fpt",
            Self::Face => "face",
            Self::AppPin | Self::CorePin => "pin",
            Self::Biometric => "user",
        }
    }
}

/// Where the device key lives (protocol 3), as the phone reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum KeyProtection {
    /// In the app's storage (the browser companion, `new_software_keystore`).
    Software,
    /// In the phone's secure hardware (Android Keystore in a TEE or
    /// StrongBox, the iOS Secure Enclave), not exportable.
    Hardware,
}

impl KeyProtection {
    /// Its RFC 8176 `amr` value: `hwk` or `swk`.
    pub fn amr(self) -> &'static str {
        match self {
            Self::Hardware => "hwk",
            Self::Software => "swk",
        }
    }
}

/// Claims of the enrollment proof (`typ` [`TYP_ENROLLMENT`]), signed by the new device key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollmentProofClaims {
    /// The activation code from the printed sheet.
    pub act: String,
    /// Issued at.
    pub iat: i64,
}

/// Claims of a pull token (`typ` [`TYP_PULL`], header `kid` = device id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PullClaims {
    /// The device id.
    pub sub: String,
    /// Always [`AUD_PULL`].
    pub aud: String,
    /// Issued at; accepted for [`crate::limits::PULL_TOKEN_MAX_AGE_SECS`].
    pub iat: i64,
}

/// Claims of the access token the server issues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccessTokenClaims {
    /// Issuer: the server's public URL.
    pub iss: String,
    /// The user id.
    pub sub: String,
    /// The username.
    pub preferred_username: String,
    /// Audience.
    pub aud: String,
    /// Issued at.
    pub iat: i64,
    /// Expires at.
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
    /// When the user authenticated (the approval).
    pub auth_time: i64,
    /// `["pwd", "mfa"]`.
    pub amr: Vec<String>,
    /// The login's level of assurance (protocol 3; tokens before it have none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub acr: String,
    /// The `jti` of the approval that authorised this login, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_jti: Option<String>,
    /// The account's role: `citizen`, `official`, `admin` or `superadmin`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// The staff member's municipality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub municipality: Option<String>,
    /// The password is an initial one and must be changed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pwd_change_required: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwk_use_field_is_named_use() {
        let mut jwk = EcJwk::p256("x".into(), "y".into());
        jwk.use_ = Some("sig".into());
        let v = serde_json::to_value(&jwk).expect("serializable");
        assert_eq!(v["use"], "sig");
        assert!(v.get("kid").is_none());
    }

    #[test]
    fn approval_number_is_optional_on_deny() {
        let c: ApprovalClaims =
            serde_json::from_str(r#"{"cid":"c","nonce":"n","decision":"deny","iat":1}"#)
                .expect("valid claims");
        assert_eq!(c.decision, Decision::Deny);
        assert_eq!(c.number, None);
        assert!(
            serde_json::from_str::<ApprovalClaims>(
                r#"{"cid":"c","nonce":"n","decision":"maybe","iat":1}"#
            )
            .is_err()
        );
    }
}
