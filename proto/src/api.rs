//! HTTP request and answer bodies of API v1.

use serde::{Deserialize, Serialize};

use crate::Secret;
use crate::ids::{DeviceId, LoginId, UserId};

use crate::jose::{EcJwk, Jwks, LoginContext};

/// `POST /v1/admin/citizens` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateCitizenRequest {
    /// Login name: 3–64 of `a-z 0-9 . _ -`, starting with a letter or digit.
    /// Empty or absent: suggested from the name (`jelena.petrovic`, then
    /// `jelena.petrovic2`, …); the answer says which.
    #[serde(default)]
    pub username: String,
    /// Name shown to officials.
    pub display_name: String,
    /// E-mail, if the citizen gave one (OpenID Connect scope `email`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Phone number, if the citizen gave one (scope `phone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// A role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A citizen (every account created at the counter).
    #[default]
    Citizen,
    /// A counter official of one municipality: manages citizens.
    Official,
    /// An administrator of one municipality: manages its officials.
    Admin,
    /// National: creates municipalities and their administrators.
    Superadmin,
}

impl Role {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Citizen => "citizen",
            Self::Official => "official",
            Self::Admin => "admin",
            Self::Superadmin => "superadmin",
        }
    }
}

/// An account as the counter lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CitizenSummary {
    /// Id.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub user_id: UserId,
    /// Username.
    pub username: String,
    /// Name.
    pub display_name: String,
    /// E-mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Locked.
    pub locked: bool,
    /// When the citizen reported a login as fraud from the phone (which
    /// locked the account); cleared by an unlock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraud_reported_at: Option<i64>,
    /// Four eyes: a reset waiting for a second official (single citizen only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_reset: Option<PendingReset>,
    /// Created at.
    pub created_at: i64,
}

/// Four eyes: a reset asked for and not yet confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingReset {
    /// Name it in the confirmation.
    pub request_id: String,
    /// The official who asked.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub requested_by: UserId,
    /// Their name.
    pub requested_by_name: String,
    /// Their municipality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub municipality: Option<String>,
    /// Asked at.
    pub requested_at: i64,
    /// It lapses then.
    pub expires_at: i64,
}

/// `POST /v1/admin/citizens/{user_id}/reset/confirm` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConfirmResetRequest {
    /// The pending reset's id.
    pub request_id: String,
}

/// `GET /v1/admin/citizens?query=` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CitizenList {
    /// Matches by username prefix, in name order (at most 50).
    pub citizens: Vec<CitizenSummary>,
}

/// A device as its owner and the counter see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceSummary {
    /// Device id.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub device_id: DeviceId,
    /// Name given at enrollment.
    pub name: String,
    /// Platform.
    pub platform: String,
    /// Push reachability.
    pub push: PushStatus,
    /// Enrolled at.
    pub created_at: i64,
}

/// A list of devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceList {
    /// Oldest first.
    pub devices: Vec<DeviceSummary>,
}

/// `PATCH /v1/me/devices/{device_id}` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RenameDeviceRequest {
    /// The new name, 1–64 characters.
    pub name: String,
}

/// `POST /v1/me/devices/additions` answer: a challenge went to the
/// account's devices; approve it there with this number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceAdditionStarted {
    /// Poll `GET /v1/me/devices/additions/{request_id}`.
    pub request_id: String,
    /// The number to type on the existing device.
    pub number: u8,
    /// The challenge expires then.
    pub expires_at: i64,
    /// Protocol 2: a risky request's six-digit code, to type instead of `number`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// `GET /v1/me/devices/additions/{request_id}` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceAdditionStatus {
    /// `pending`, `approved`, `denied` or `expired`.
    pub status: LoginStatus,
    /// Once approved, exactly once: the activation code for the new device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub activation_code: Option<Secret>,
    /// When that code expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_expires_at: Option<i64>,
}

/// `POST /v1/me/password` body.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The password now.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub current: Secret,
    /// The new one: 10–1024 bytes, not the current one.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub new: Secret,
}

impl std::fmt::Debug for ChangePasswordRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChangePasswordRequest { .. }")
    }
}

/// `POST /v1/admin/municipalities` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateMunicipalityRequest {
    /// Short code, 2–32 of `a-z 0-9 -` (e.g. `novi-sad`).
    pub code: String,
    /// Name.
    pub name: String,
}

/// A municipality.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Municipality {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
}

/// `POST /v1/admin/staff` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateStaffRequest {
    /// Login name.
    pub username: String,
    /// Name.
    pub display_name: String,
    /// `superadmin`, `admin` or `official`.
    pub role: Role,
    /// The municipality code (`null` for a superadmin).
    #[serde(default)]
    pub municipality: Option<String>,
}

/// `POST /v1/admin/citizens` answer (201). The password and code are shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateCitizenResponse {
    /// New user id.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub user_id: UserId,
    /// Username (normalised).
    pub username: String,
    /// Initial password, shown once.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub initial_password: Secret,
    /// Single-use activation code for the phone, shown once.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub activation_code: Secret,
    /// When the activation code expires.
    pub activation_expires_at: i64,
}

/// The Web Push keys of a subscription (RFC 8291).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PushKeys {
    /// The phone's ECDH public key, uncompressed P-256 point, base64url.
    pub p256dh: String,
    /// The 16-byte authentication secret, base64url.
    pub auth: String,
}

/// A Web Push subscription, as `PushSubscription.toJSON()` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushSubscription {
    /// The push service URL to POST messages to.
    pub endpoint: String,
    /// Encryption keys.
    pub keys: PushKeys,
    /// What the pushes' plaintext is (issue 15; absent: `jws`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<PushPayload>,
    /// The device's language for the notification's text (issue 16:
    /// `sr-Cyrl`, `sr-Latn`, `en` or `hu`; absent: `sr-Cyrl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub locale: Option<potvrda_i18n::Locale>,
}

/// The plaintext of a challenge push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PushPayload {
    /// The challenge JWS itself.
    Jws,
    /// Declarative Web Push JSON (`{"web_push": 8030, "notification": {…}}`)
    /// with the JWS in `notification.data.jws`: a Home Screen web app on
    /// iOS 18.4+ shows it without its service worker; other browsers hand
    /// the same JSON to the service worker.
    Declarative,
}

/// `POST /v1/enrollments` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EnrollmentRequest {
    /// Activation code from the printed sheet.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub activation_code: Secret,
    /// The new device's public key.
    pub public_key: EcJwk,
    /// A name for the device ("Jelena's phone").
    pub name: String,
    /// `android`, `ios`, `web`, …
    pub platform: String,
    /// Push subscription; absent for a pull-only device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushSubscription>,
    /// JWS by the device key over [`crate::jose::EnrollmentProofClaims`].
    pub proof: String,
}

/// `POST /v1/enrollments` answer (201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollmentResponse {
    /// New device id; the `kid` of every JWS this device signs.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub device_id: DeviceId,
    /// The account the device belongs to.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub user_id: UserId,
    /// Its username.
    pub username: String,
    /// The keys challenges are signed with.
    pub server_jwks: Jwks,
    /// The VAPID public key (uncompressed P-256 point, base64url).
    pub vapid_public_key: String,
    /// Ten single-use recovery codes, with the account's first device only:
    /// each replaces the phone's approval once. Shown once; keep them on paper.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<String>>))]
    pub recovery_codes: Option<Vec<Secret>>,
    /// The device's offline-code secret ([`crate::offline`]), base64url,
    /// given once: the app keeps it in its keystore and shows a code from
    /// it when the phone has no network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub offline_secret: Option<Secret>,
}

/// `POST /v1/logins/{login_id}/code` body.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginCodeRequest {
    /// A recovery code.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub code: Secret,
}

impl std::fmt::Debug for LoginCodeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginCodeRequest { .. }")
    }
}

/// `POST /v1/logins` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Username.
    pub username: String,
    /// Password.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub password: Secret,
    /// Who is logging in from where, shown on the phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<LoginContext>,
    /// What the token is for (protocol 2): a portal service (the default),
    /// or the admin API (staff only; the phone shows the admin API, never
    /// the caller's `context.service`; the token's `aud` is the admin audience).
    #[serde(default, skip_serializing_if = "LoginAudience::is_portal")]
    pub audience: LoginAudience,
}

/// What a login's token is for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LoginAudience {
    /// A portal service: `aud` = the portal's audience. Never admin authority.
    #[default]
    Portal,
    /// The admin API (`/v1/admin`): staff accounts only.
    Admin,
}

impl LoginAudience {
    /// The default, left out of the JSON.
    pub fn is_portal(&self) -> bool {
        *self == Self::Portal
    }
}

/// `POST /v1/logins` answer (201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginResponse {
    /// Login id for the status requests.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub login_id: LoginId,
    /// Bearer secret for the status requests.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub login_secret: Secret,
    /// The two digits the login screen shows.
    pub number: u8,
    /// When the challenge expires.
    pub expires_at: i64,
    /// Protocol 2: a risky login's longer code, which the login screen shows
    /// *instead of* `number`; the phone asks for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Protocol 2: no notification was sent (a high-risk login); the login
    /// screen tells the citizen to open the Potvrda app.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub push_suppressed: bool,
}

/// `GET /v1/devices/{device_id}/challenges` answer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingChallenges {
    /// Challenge JWSs still pending for this device.
    pub challenges: Vec<String>,
}

/// Whether a device can be reached by push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PushStatus {
    /// Pushes are delivered.
    Active,
    /// The push service said the subscription is gone (404/410): the device must pull or re-register.
    Gone,
    /// Enrolled without push: pull only.
    None,
}

/// `GET /v1/devices/{device_id}` answer: the device's own view of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceInfo {
    /// Device id.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub device_id: DeviceId,
    /// Name given at enrollment.
    pub name: String,
    /// Platform given at enrollment.
    pub platform: String,
    /// Push reachability.
    pub push: PushStatus,
    /// Enrolled at.
    pub created_at: i64,
}

/// `POST /v1/challenges/{cid}/response` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChallengeAnswer {
    /// Approval JWS.
    pub approval: String,
}

/// `POST /v1/challenges/{cid}/response` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChallengeAnswerResult {
    /// `approved` or `denied`.
    pub status: LoginStatus,
}

/// The state of a login as its status answer reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LoginStatus {
    /// Waiting for the phone.
    Pending,
    /// Approved; the token comes with this answer.
    Approved,
    /// Denied on the phone, or the number did not match.
    Denied,
    /// Nobody answered in time.
    Expired,
    /// Approved, and the token was already handed out.
    Consumed,
}

impl LoginStatus {
    /// Whether the login will not change any more (apart from approved → consumed).
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Pending)
    }
}

/// `GET /v1/logins/{login_id}` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginStatusResponse {
    /// State.
    pub status: LoginStatus,
    /// The access token, exactly once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// `Bearer`, with the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Token lifetime in seconds, with the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// With the token: the password is the initial one from the counter and
    /// must be changed (`POST /v1/me/password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pwd_change_required: Option<bool>,
}

/// `GET /healthz` and `GET /readyz` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// `ok`, or `unavailable`.
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enrollment_without_push_is_pull_only() {
        let body = r#"{"activation_code":"A","public_key":{"kty":"EC","crv":"P-256","x":"x","y":"y"},
                      "name":"n","platform":"android","proof":"p"}"#;
        let req: EnrollmentRequest = serde_json::from_str(body).expect("valid body");
        assert!(req.push.is_none());
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let body = r#"{"username":"a","password":"b","admin":true}"#;
        assert!(serde_json::from_str::<LoginRequest>(body).is_err());
    }

    #[test]
    fn status_omits_absent_token() {
        let v = serde_json::to_value(LoginStatusResponse {
            status: LoginStatus::Consumed,
            access_token: None,
            token_type: None,
            expires_in: None,
            pwd_change_required: None,
        })
        .expect("serializable");
        assert_eq!(v, serde_json::json!({"status": "consumed"}));
    }
}

/// What a security act was. The JSON form is the snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditKind {
    /// An account was opened (actor: who opened it).
    CitizenCreated,
    /// A device was enrolled with an activation code.
    DeviceEnrolled,
    /// A device replaced or removed its push subscription (protocol 3, issue 15);
    /// `detail.change`: `replaced` or `removed`, `detail.push_service`: its origin.
    PushSubscriptionChanged,
    /// An enrollment was refused (bad code, bad proof); `detail.reason`.
    EnrollmentFailed,
    /// A login was refused before any push (`detail.reason`: `invalid_credentials`,
    /// `password_locked`, `no_device`, `push_limited`, `rate_limited`).
    LoginFailed,
    /// The password was right and challenges went out (`detail.devices`).
    LoginStarted,
    /// A newer login of the same citizen withdrew this one.
    LoginSuperseded,
    /// The push service accepted the challenge for a device.
    PushSent,
    /// The push could not be delivered (`detail.reason`); the phone can still pull.
    PushFailed,
    /// The phone approved with the right number (`detail.approval_jti`, `detail.ctx_hash`).
    LoginApproved,
    /// The phone denied, or approved with the wrong number (`detail.reason`).
    LoginDenied,
    /// Nobody answered the challenge in time.
    LoginExpired,
    /// Pushes to the citizen are paused after repeated denied or expired challenges.
    FatiguePaused,
    /// The access token was handed out (`detail.jti`, `detail.approval_jti`;
    /// for OpenID Connect clients `detail.client_id`, `detail.gid`).
    TokenIssued,
    /// An OpenID Connect code or refresh token was used twice: everything the
    /// grant issued is revoked (`detail.gid`, `detail.reason`). Likely theft.
    GrantRevoked,
    /// A provider session ended by logout (`detail.sid`).
    SessionEnded,
    /// A municipality was created (`detail.code`).
    MunicipalityCreated,
    /// A staff account was created (`detail.role`, `detail.municipality`).
    StaffCreated,
    /// A staff account was deactivated.
    StaffDeactivated,
    /// An account was locked (by an official, or after a fraud report).
    AccountLocked,
    /// An account was unlocked.
    AccountUnlocked,
    /// The citizen reported a login as fraud on the phone: denied, account
    /// locked (`detail.login_id`, `detail.device_id`, the login's context).
    FraudReported,
    /// A device was revoked (`detail.device_id`; by the citizen or the counter).
    DeviceRevoked,
    /// Password and activation code reissued at the counter (a lost phone).
    AccountReset,
    /// The user changed their password.
    PasswordChanged,
    /// Recovery codes were issued with the first device (`detail.count`).
    RecoveryCodesIssued,
    /// A recovery code replaced the phone's approval (`detail.login_id`, `detail.remaining`).
    RecoveryCodeUsed,
    /// The phone's offline code replaced the push approval (`detail.login_id`, `detail.device_id`).
    OfflineCodeUsed,
    /// An existing device approved adding another; an activation code was
    /// issued (`detail.request_id`, `detail.device_id` of the approver).
    DeviceAddApproved,
    /// Four eyes: an official asked for a reset that a second official must
    /// confirm (`detail.request_id`); the reset itself is `account_reset`
    /// with `detail.requested_by`.
    ResetRequested,
    /// Failed passwords locked a username (`detail.scope`: `address` — for
    /// the address the failures came from — or `username` — for every
    /// address the citizen has not logged in from; `detail.failures`).
    PasswordLocked,
    /// Staff searched the citizens (`detail.query`, `detail.results`).
    CitizensSearched,
    /// Staff read a citizen's record (`detail.what`: `summary`, `devices`, `events`).
    CitizenViewed,
    /// Four eyes refused a confirmation that defeats its purpose
    /// (`detail.reason`: `confirmer_created_after_request`,
    /// `confirmer_created_by_requester`, `same_official`).
    FourEyesRefused,
    /// A superadmin registered an OpenID client (`detail.client_id`,
    /// `detail.token_endpoint_auth_method`, `detail.fapi2`).
    ClientRegistered,
    /// A superadmin changed a client's registration (`detail.client_id`,
    /// `detail.changed`: the metadata names that changed).
    ClientUpdated,
    /// A client's secret was rotated (`detail.client_id`,
    /// `detail.previous_valid_until`).
    ClientSecretRotated,
    /// A client was retired: it authenticates no more (`detail.client_id`).
    ClientRetired,
    /// A client revoked a token (RFC 7009; `detail.client_id`, `detail.gid`,
    /// `detail.what`: `refresh_token` or `access_token`).
    TokenRevoked,
    /// A back-channel logout token could not be delivered after every retry
    /// (`detail.client_id`, `detail.sid`).
    LogoutUndelivered,
    /// The service desk translated a pairwise subject to the account
    /// (`detail.client_id`, `detail.sub`).
    SubjectResolved,
    /// The citizen consented to a service (`detail.client_id`, `detail.scope`).
    ConsentGiven,
    /// A month of audit events past the retention was dropped from
    /// PostgreSQL, the trail's only deletion (`detail.month`: `YYYY-MM`,
    /// `detail.events`: how many it held; `detail.last_n`, `detail.last_hash`:
    /// the national chain's link of its last event, the anchor of what is kept).
    AuditMonthDropped,
    /// A signed checkpoint of one audit chain (`detail.chain`, `detail.n`,
    /// `detail.hash`, `detail.jws`: the same, signed with the audit key; see
    /// PROTOCOL.md, "The tamper-evident audit trail").
    AuditCheckpoint,
}

/// How urgently someone should look at an audit event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Routine.
    Info,
    /// Worth a look (refusals, pauses, denials).
    Warning,
    /// Act now (fraud reports).
    High,
}

/// One security act, as recorded. Never holds a password, code or token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEvent {
    /// Position in the log (`<milliseconds>-<sequence>`), for `after=` paging.
    pub id: String,
    /// When (Unix seconds, server clock).
    pub at: i64,
    /// What happened.
    pub kind: AuditKind,
    /// How urgent.
    pub severity: Severity,
    /// Who acted (a staff user id, `bootstrap`), when not the citizen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<String>,
    /// The citizen concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The actor's municipality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub municipality: Option<String>,
    /// The client address the request came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The client's `User-Agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Kind-specific facts (ids, reasons, counts).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub detail: serde_json::Map<String, serde_json::Value>,
    /// The event's links in the hash chains (absent on events written before
    /// the chain began). Not part of the hashed form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<AuditChain>,
}

/// Where an audit event sits in the hash chains: every event is in the
/// national chain, an event with a municipality also in that municipality's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditChain {
    /// The national chain's link.
    pub national: ChainLink,
    /// The municipality's chain's link (when the event has a municipality).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub municipal: Option<ChainLink>,
}

/// What an audit checkpoint signs (a JWS of `typ`
/// [`TYP_AUDIT_CHECKPOINT`], ES256, under a key of `/.well-known/audit-jwks.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCheckpointClaims {
    /// The server's public URL.
    pub iss: String,
    /// `national` or `municipality:<code>`.
    pub chain: String,
    /// How many events the chain held.
    pub n: u64,
    /// The hash of its `n`-th link (64 hex digits).
    pub hash: String,
    /// When it was signed (Unix seconds, server clock).
    pub iat: i64,
}

/// The `typ` of an audit checkpoint's JWS.
pub const TYP_AUDIT_CHECKPOINT: &str = "potvrda-audit-checkpoint+jwt";

/// One link: `hash = SHA-256(prev ‖ canonical event)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChainLink {
    /// Position in the chain, from 1.
    pub n: u64,
    /// The previous link's hash (64 hex digits; zeros before the first).
    pub prev: String,
    /// This link's hash (64 hex digits).
    pub hash: String,
}

/// `GET /v1/admin/audit` answer: events in time order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditResponse {
    /// Oldest first.
    pub events: Vec<AuditEvent>,
    /// Pass as `after=` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}
