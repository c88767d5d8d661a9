//! OpenID Connect wire types: discovery, the token endpoint's answers and
//! errors (RFC 6749 §5), the claims of ID and access tokens, UserInfo.

use serde::{Deserialize, Serialize};

/// Level of assurance "basic" (Serbian *osnovni*, eIDAS *low*).
pub const LOA_BASIC: &str = "urn:potvrda:loa:basic";
/// Level of assurance "substantial" (Serbian *srednji*, eIDAS *substantial*).
pub const LOA_SUBSTANTIAL: &str = "urn:potvrda:loa:substantial";
/// Level of assurance "high" (Serbian *visoki*, eIDAS *high*).
pub const LOA_HIGH: &str = "urn:potvrda:loa:high";
/// The one `acr` of protocol 2 (the password, then the push): accepted in
/// `acr_values` as [`LOA_SUBSTANTIAL`], which such a login proves.
pub const ACR_PWD_PUSH: &str = "urn:potvrda:acr:pwd-push";
/// `client_assertion_type` of RFC 7523 `private_key_jwt`.
pub const CLIENT_ASSERTION_TYPE_JWT: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// `typ` of access tokens (RFC 9068).
pub const TYP_ACCESS_TOKEN: &str = "at+jwt";

/// `GET /.well-known/openid-configuration` (OpenID Connect Discovery 1.0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProviderMetadata {
    /// The issuer, `PUBLIC_URL`.
    pub issuer: String,
    /// `/oauth2/authorize`.
    pub authorization_endpoint: String,
    /// `/oauth2/token`.
    pub token_endpoint: String,
    /// `/oauth2/userinfo`.
    pub userinfo_endpoint: String,
    /// `/.well-known/jwks.json`.
    pub jwks_uri: String,
    /// `/oauth2/logout`.
    pub end_session_endpoint: String,
    /// `["code"]`.
    pub response_types_supported: Vec<String>,
    /// `["query"]`.
    pub response_modes_supported: Vec<String>,
    /// `authorization_code`, `refresh_token`.
    pub grant_types_supported: Vec<String>,
    /// `["public"]`.
    pub subject_types_supported: Vec<String>,
    /// OIDC Discovery: the languages of the pages (`ui_locales`): sr-Cyrl, sr-Latn, en, hu.
    #[serde(default)]
    pub ui_locales_supported: Vec<String>,
    /// OIDC Discovery: the languages and scripts of the claims
    /// (`claims_locales`): sr-Cyrl, sr-Latn.
    #[serde(default)]
    pub claims_locales_supported: Vec<String>,
    /// `RS256`, `ES256`.
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// `client_secret_basic`, `client_secret_post`, `none`.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// `["S256"]`.
    pub code_challenge_methods_supported: Vec<String>,
    /// `openid`, `profile`, `email`, `phone`, `offline_access`.
    pub scopes_supported: Vec<String>,
    /// The claims this provider may return.
    pub claims_supported: Vec<String>,
    /// `login`, `none`.
    pub prompt_values_supported: Vec<String>,
    /// The one `acr` this provider asserts.
    pub acr_values_supported: Vec<String>,
    /// RFC 9207: `iss` comes back with the code.
    pub authorization_response_iss_parameter_supported: bool,
    /// `ES256`, `RS256`, `PS256`: what a `private_key_jwt` assertion may be signed with.
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// CIBA Core §4: `/oauth2/bc-authorize`.
    pub backchannel_authentication_endpoint: String,
    /// CIBA Core §4: `poll`, `ping`.
    pub backchannel_token_delivery_modes_supported: Vec<String>,
    /// CIBA Core §4: `false` (the phone's number matching replaces a user code).
    pub backchannel_user_code_parameter_supported: bool,
    /// Back-Channel Logout 1.0 §2.1: logout tokens are sent.
    pub backchannel_logout_supported: bool,
    /// Back-Channel Logout 1.0 §2.1: they carry `sid`.
    pub backchannel_logout_session_supported: bool,
    /// Front-Channel Logout 1.0 §3: logout pages are framed.
    pub frontchannel_logout_supported: bool,
    /// Front-Channel Logout 1.0 §3: with `iss` and `sid`.
    pub frontchannel_logout_session_supported: bool,
    /// OpenID Connect Core §5.5: the `claims` parameter (for an essential `acr`).
    pub claims_parameter_supported: bool,
    /// RFC 9126: `/oauth2/par`.
    pub pushed_authorization_request_endpoint: String,
    /// RFC 9126: `false` — only clients registered for it must use PAR.
    pub require_pushed_authorization_requests: bool,
    /// RFC 9101: signed request objects are taken (`request`).
    pub request_parameter_supported: bool,
    /// RFC 9101: `request_uri` is only PAR's.
    pub request_uri_parameter_supported: bool,
    /// RFC 9101: `ES256`, `PS256`, `RS256`.
    pub request_object_signing_alg_values_supported: Vec<String>,
    /// RFC 9449: `ES256`, `PS256`, `RS256`.
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// RFC 7662: `/oauth2/introspect`.
    pub introspection_endpoint: String,
    /// RFC 7009: `/oauth2/revoke`.
    pub revocation_endpoint: String,
    /// RFC 8414: how clients authenticate at introspection.
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 8414: how clients authenticate at revocation.
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
}

/// The answer of the backchannel authentication endpoint (CIBA Core §7.3),
/// with what the consumption device shows the citizen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackchannelResponse {
    /// The request's handle at the token endpoint.
    pub auth_req_id: String,
    /// Seconds until the request expires.
    pub expires_in: u64,
    /// Seconds the client waits between polls (`slow_down` adds 5).
    pub interval: u64,
    /// Potvrda: the two digits the consumption device (the call centre's
    /// screen, the kiosk) shows and the citizen types on the phone. Never in
    /// the push.
    pub number: u8,
    /// Potvrda: a risky login's longer code, shown *instead of* `number`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Potvrda: no notification was sent (a high-risk login); the
    /// consumption device tells the citizen to open the Potvrda app.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub push_suppressed: bool,
}

/// A successful token endpoint answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    /// A JWT (RFC 9068) for the client's own API calls and UserInfo.
    pub access_token: String,
    /// `Bearer`, or `DPoP` for a token bound to the client's key (RFC 9449).
    pub token_type: String,
    /// Seconds the access token lives.
    pub expires_in: u64,
    /// The ID token.
    pub id_token: String,
    /// Single use: each refresh returns a new one; reusing an old one revokes them all.
    pub refresh_token: String,
    /// The granted scopes, space-separated.
    pub scope: String,
}

/// The `grant_type`s of the token endpoint (RFC 6749 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// RFC 6749 §4.1, with PKCE.
    AuthorizationCode,
    /// RFC 6749 §6.
    RefreshToken,
    /// OpenID Connect CIBA Core 1.0 §10.1.
    #[serde(rename = "urn:openid:params:grant-type:ciba")]
    Ciba,
}

impl GrantType {
    /// Every grant, in the order discovery lists them.
    pub const ALL: [Self; 3] = [Self::AuthorizationCode, Self::RefreshToken, Self::Ciba];

    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::Ciba => "urn:openid:params:grant-type:ciba",
        }
    }

    /// From the wire value.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

/// The `error` codes of RFC 6749 §5.2 and RFC 6750 §3.1 this provider sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OAuthError {
    /// A malformed request.
    InvalidRequest,
    /// The client failed to authenticate (401).
    InvalidClient,
    /// The code or refresh token is invalid, expired, revoked or another client's.
    InvalidGrant,
    /// A `grant_type` this provider does not serve.
    UnsupportedGrantType,
    /// A bad access token at UserInfo (401).
    InvalidToken,
    /// A scope this provider does not know, or without `openid` (RFC 6749 §5.2).
    InvalidScope,
    /// The client is not registered for this grant or endpoint (RFC 6749 §5.2).
    UnauthorizedClient,
    /// CIBA: the citizen has not answered yet; poll again after the interval.
    AuthorizationPending,
    /// CIBA: polled sooner than the interval; the interval grows by 5 s.
    SlowDown,
    /// CIBA: the request expired unanswered.
    ExpiredToken,
    /// CIBA: the citizen denied, or reported the login as not theirs.
    AccessDenied,
    /// CIBA: the hint names no account that can be asked.
    UnknownUserId,
    /// CIBA: the binding message is too long or not printable.
    InvalidBindingMessage,
    /// OpenID Connect Unmet Authentication Requirements 1.0: the `acr`
    /// asked for cannot be met (never silently downgraded).
    UnmetAuthenticationRequirements,
    /// RFC 9449 §12.2: the DPoP proof is missing, malformed, replayed, for
    /// another URL or method, or from another key.
    InvalidDpopProof,
    /// RFC 9449 §8: send the proof again with the `DPoP-Nonce` this answer
    /// carries.
    UseDpopNonce,
    /// RFC 9126 / RFC 9101: the `request_uri` is unknown, used or expired.
    InvalidRequestUri,
    /// RFC 9101: the request object does not verify or is malformed.
    InvalidRequestObject,
    /// RFC 6749 §4.1.2.1: only `response_type=code` is served.
    UnsupportedResponseType,
    /// OIDC Core §3.1.2.6: `prompt=none` and no usable session.
    LoginRequired,
    /// OIDC Core §3.1.2.6: `prompt=none` and the citizen has not consented.
    ConsentRequired,
}

impl OAuthError {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidToken => "invalid_token",
            Self::InvalidScope => "invalid_scope",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::AccessDenied => "access_denied",
            Self::UnknownUserId => "unknown_user_id",
            Self::InvalidBindingMessage => "invalid_binding_message",
            Self::UnmetAuthenticationRequirements => "unmet_authentication_requirements",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::InvalidRequestUri => "invalid_request_uri",
            Self::InvalidRequestObject => "invalid_request_object",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
        }
    }
}

/// An RFC 6749 §5.2 error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `invalid_grant`,
    /// `unsupported_grant_type`; `invalid_token` at UserInfo.
    pub error: OAuthError,
    /// Human-readable detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// The claims of an ID token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// Issuer.
    pub iss: String,
    /// The user id.
    pub sub: String,
    /// The client id.
    pub aud: String,
    /// Authorized party: the client id.
    pub azp: String,
    /// Expires.
    pub exp: i64,
    /// Issued.
    pub iat: i64,
    /// When the citizen approved on the phone.
    pub auth_time: i64,
    /// The client's nonce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// `["pwd", "mfa"]`.
    pub amr: Vec<String>,
    /// [`ACR_PWD_PUSH`].
    pub acr: String,
    /// The provider session.
    pub sid: String,
    /// OIDC Core §3.1.3.6: the left half of the access token's SHA-256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    /// Asked for by name in the `claims` parameter (OIDC Core §5.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// Asked for by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Asked for by name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Asked for by name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
}

/// The claims of an access token issued to an OpenID Connect client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcAccessClaims {
    /// Issuer.
    pub iss: String,
    /// The user id.
    pub sub: String,
    /// The client id.
    pub aud: String,
    /// The client id.
    pub client_id: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// Expires.
    pub exp: i64,
    /// Issued.
    pub iat: i64,
    /// Unique id.
    pub jti: String,
    /// When the citizen approved.
    pub auth_time: i64,
    /// `["pwd", "mfa"]`.
    pub amr: Vec<String>,
    /// The login's level of assurance (protocol 3; tokens before it have none).
    #[serde(default)]
    pub acr: String,
    /// The grant (refresh family) it belongs to; revoked with it.
    pub gid: String,
    /// RFC 9449 §6: the thumbprint of the key it is bound to (DPoP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Cnf>,
}

/// RFC 7800 / RFC 9449 §6.1: the confirmation of a bound token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Cnf {
    /// The RFC 7638 SHA-256 thumbprint of the client's DPoP key.
    pub jkt: String,
}

/// `GET /oauth2/userinfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserInfo {
    /// The user id.
    pub sub: String,
    /// Username (scope `profile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// Display name (scope `profile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// E-mail (scope `email`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Phone (scope `phone`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
}

/// RFC 9126 §2.2: a pushed authorization request's handle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ParResponse {
    /// `urn:ietf:params:oauth:request_uri:…`, for one authorization request.
    pub request_uri: String,
    /// Seconds it can be used.
    pub expires_in: u64,
}

/// RFC 7662 §2.2: what introspection tells a client about its token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IntrospectionResponse {
    /// Whether the token is live (when false, nothing else is said).
    pub active: bool,
    /// Granted scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The client it was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The subject, as the client knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// `Bearer` or `DPoP` for an access token, `refresh_token` else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// The issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// The access token's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// When the citizen approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The level of assurance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// RFC 9449 §6.2: the key a DPoP-bound token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Cnf>,
}
