//! The error body every failed request answers with, and its stable codes.
//!
//! Clients branch on [`ErrorCode`], never on the human `message`.

use serde::{Deserialize, Serialize};

/// Stable, machine-readable error codes. The JSON form is the snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The body, a path segment or a query parameter is malformed.
    InvalidRequest,
    /// The body is larger than [`crate::limits::MAX_BODY_BYTES`].
    PayloadTooLarge,
    /// Missing or wrong bearer credential (bootstrap token, login secret, pull token).
    Unauthorized,
    /// Protocol 3: the portal API's caller is not an authenticated client
    /// (no, a wrong or a replayed client credential).
    InvalidClient,
    /// Wrong password or unknown username: the two are indistinguishable.
    InvalidCredentials,
    /// The activation code is unknown, used or expired.
    InvalidActivationCode,
    /// The username already exists.
    UsernameTaken,
    /// The account has no enrolled device to approve a login.
    NoDevice,
    /// The push subscription is not acceptable (host not allowed, bad keys).
    InvalidPushSubscription,
    /// A JWS (proof, approval, pull token) failed verification.
    InvalidSignature,
    /// The device is unknown or revoked.
    UnknownDevice,
    /// No such login or challenge.
    NotFound,
    /// The challenge was already decided.
    AlreadyDecided,
    /// The challenge expired before it was decided.
    Expired,
    /// The number typed on the phone is not the one the login screen showed.
    NumberMismatch,
    /// Too many attempts; see `Retry-After`.
    RateLimited,
    /// The store (Redis) cannot be reached right now.
    StoreUnavailable,
    /// Something failed on the server; details are in the server log only.
    Internal,
    /// No route matches the path.
    NoSuchEndpoint,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// Authenticated, but this role may not do this.
    Forbidden,
    /// The account is locked (at the counter, or after a fraud report).
    AccountLocked,
    /// The municipality code exists already.
    MunicipalityExists,
    /// No such municipality.
    UnknownMunicipality,
    /// Four eyes: a second official must confirm what the first one asked.
    SecondOfficialRequired,
    /// A client of this id is registered (or was, and is retired).
    ClientExists,
    /// No such client in the registry.
    UnknownClient,
    /// The client comes from the configuration's seed: change it there.
    ClientReadOnly,
}

impl ErrorCode {
    /// The snake_case wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::PayloadTooLarge => "payload_too_large",
            Self::Unauthorized => "unauthorized",
            Self::InvalidClient => "invalid_client",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidActivationCode => "invalid_activation_code",
            Self::UsernameTaken => "username_taken",
            Self::NoDevice => "no_device",
            Self::InvalidPushSubscription => "invalid_push_subscription",
            Self::InvalidSignature => "invalid_signature",
            Self::UnknownDevice => "unknown_device",
            Self::NotFound => "not_found",
            Self::AlreadyDecided => "already_decided",
            Self::Expired => "expired",
            Self::NumberMismatch => "number_mismatch",
            Self::RateLimited => "rate_limited",
            Self::StoreUnavailable => "store_unavailable",
            Self::Internal => "internal",
            Self::NoSuchEndpoint => "no_such_endpoint",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Forbidden => "forbidden",
            Self::AccountLocked => "account_locked",
            Self::MunicipalityExists => "municipality_exists",
            Self::UnknownMunicipality => "unknown_municipality",
            Self::SecondOfficialRequired => "second_official_required",
            Self::ClientExists => "client_exists",
            Self::UnknownClient => "unknown_client",
            Self::ClientReadOnly => "client_read_only",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{"error": "<code>", "message": "<text for humans>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Stable code.
    pub error: ErrorCode,
    /// Human-readable explanation; never contains secrets or internal details.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde() {
        for code in [
            ErrorCode::InvalidCredentials,
            ErrorCode::NumberMismatch,
            ErrorCode::InvalidActivationCode,
            ErrorCode::StoreUnavailable,
            ErrorCode::SecondOfficialRequired,
            ErrorCode::ClientExists,
            ErrorCode::UnknownClient,
            ErrorCode::ClientReadOnly,
        ] {
            let json = serde_json::to_value(code).expect("serializable enum");
            assert_eq!(json, serde_json::Value::String(code.as_str().into()));
        }
    }
}
