//! The small public error the apps see ([`ApiError`]), and how the core's
//! internal [`potvrda_mobile_core::Error`] maps onto it: an app branches on
//! a handful of cases (show the sheet again, ask again, tell the citizen
//! the server said no), not on the core's internals.

use potvrda_mobile_core::Error;

/// What can go wrong, as the app needs to tell it apart.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum ApiError {
    /// The scanned or typed activation is not one of ours; `reason` says why.
    #[error("invalid activation: {reason}")]
    InvalidActivation {
        /// Why, in English, for logs and developers.
        reason: String,
    },
    /// A PIN that cannot be set (not six digits, or a simple sequence).
    #[error("invalid PIN: {reason}")]
    InvalidPin {
        /// Why.
        reason: String,
    },
    /// The citizen did not confirm (cancelled the biometric or PIN prompt,
    /// or the PIN is locked): nothing was signed.
    #[error("the citizen did not confirm; nothing was signed")]
    NotConfirmed,
    /// Approving needs the two-digit number from the login screen (a risky
    /// login: its longer code, see `code_digits`).
    #[error("approving needs the number or code shown on the login screen")]
    NumberRequired,
    /// The challenge is not valid for this device (forged, expired, for
    /// another device, or no longer held): show nothing, sign nothing.
    #[error("invalid challenge: {reason}")]
    InvalidChallenge {
        /// Why.
        reason: String,
    },
    /// A push message this device's keys cannot open.
    #[error("the push message cannot be decrypted")]
    PushUndecryptable,
    /// The server refused; `code` is its stable error code.
    #[error("the server answered {status}: {code}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The stable `error` code of the answer.
        code: String,
    },
    /// The platform keystore failed or gave a key or signature that does not verify.
    #[error("keystore: {reason}")]
    Keystore {
        /// Why.
        reason: String,
    },
    /// The call needs an enrolled device (or an enrollment in progress).
    #[error("not enrolled")]
    NotEnrolled,
    /// A language the core does not speak (`set_locale`).
    #[error("unknown locale {tag}: not one of sr-Cyrl, sr-Latn, en, hu")]
    UnknownLocale {
        /// The tag given.
        tag: String,
    },
    /// Anything else (a malformed answer, a state that does not load).
    #[error("internal: {reason}")]
    Internal {
        /// Why.
        reason: String,
    },
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidActivation(why) => Self::InvalidActivation {
                reason: why.to_owned(),
            },
            Error::InvalidPin(why) => Self::InvalidPin {
                reason: why.to_owned(),
            },
            Error::UserNotVerified | Error::PinLocked | Error::PinNotSet => Self::NotConfirmed,
            Error::NumberRequired => Self::NumberRequired,
            Error::MalformedJws(_)
            | Error::BadSignature
            | Error::UnknownServerKey
            | Error::WrongAudience
            | Error::Expired => Self::InvalidChallenge {
                reason: e.to_string(),
            },
            Error::PushDecrypt => Self::PushUndecryptable,
            Error::Server { status, error } => Self::Server {
                status,
                code: error,
            },
            Error::InvalidKey(why) => Self::Keystore {
                reason: why.to_owned(),
            },
            other => Self::Internal {
                reason: other.to_string(),
            },
        }
    }
}

impl From<uniffi::UnexpectedUniFFICallbackError> for ApiError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Keystore { reason: e.reason }
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, ApiError>;
