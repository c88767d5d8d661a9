//! The core's error type.

/// Everything that can go wrong in the core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A JWS is not a well-formed compact ES256 JWS of the expected type.
    #[error("malformed JWS: {0}")]
    MalformedJws(&'static str),
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// The challenge names a server key this device was not given at enrollment.
    #[error("challenge signed with an unknown server key")]
    UnknownServerKey,
    /// The challenge is addressed to another device.
    #[error("challenge addressed to another device")]
    WrongAudience,
    /// The challenge has expired.
    #[error("challenge expired")]
    Expired,
    /// A key is malformed.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// The push message cannot be decrypted with this device's push keys.
    #[error("push message could not be decrypted")]
    PushDecrypt,
    /// Approving requires the two-digit number from the login screen (or,
    /// for a risky login, its longer code).
    #[error("approving requires the number or code shown on the login screen")]
    NumberRequired,
    /// JSON (de)serialisation failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// Reading or writing the device state failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The HTTP exchange failed (virtual phone only).
    #[cfg(feature = "device")]
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// A scanned or typed activation is not valid; the text says why.
    #[error("invalid activation: {0}")]
    InvalidActivation(&'static str),
    /// The citizen did not confirm (biometrics or PIN): nothing was signed.
    #[error("the citizen did not confirm; nothing was signed")]
    UserNotVerified,
    /// No PIN has been set on this device.
    #[error("no PIN is set")]
    PinNotSet,
    /// Too many wrong PINs: the device must be enrolled again.
    #[error("the PIN is locked after too many wrong attempts")]
    PinLocked,
    /// A PIN that cannot be used; the text says why.
    #[error("invalid PIN: {0}")]
    InvalidPin(&'static str),
    /// A sealed key does not open with this wrapping key.
    #[error("the sealed key cannot be opened")]
    Unseal,
    /// The server answered with an error (virtual phone only).
    #[error("server answered {status}: {error}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The `error` code of the body.
        error: String,
    },
}

/// The core's result type.
pub type Result<T> = std::result::Result<T, Error>;
