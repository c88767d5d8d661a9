//! The domain's one error type. Each variant maps to one stable wire code in
//! exactly one place (`http::error`); internal details stay in the log.

use potvrda_proto::ErrorCode;

/// Everything that can go wrong in the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Configuration is invalid (start-up only).
    #[error("configuration: {0}")]
    Config(String),
    /// The request is malformed; the text is safe to show the caller.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Missing or wrong bearer credential.
    #[error("unauthorized")]
    Unauthorized,
    /// The portal API's caller is not an authenticated client; the text is
    /// safe to show.
    #[error("invalid client: {0}")]
    InvalidClient(String),
    /// Wrong password or unknown user.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Unknown, used or expired activation code.
    #[error("invalid activation code")]
    InvalidActivationCode,
    /// The username exists.
    #[error("username taken")]
    UsernameTaken,
    /// The user has no device to approve with.
    #[error("no device enrolled")]
    NoDevice,
    /// The push subscription is refused; the text is safe to show.
    #[error("invalid push subscription: {0}")]
    InvalidPushSubscription(&'static str),
    /// A JWS failed verification; the text is safe to show.
    #[error("invalid signature: {0}")]
    InvalidSignature(&'static str),
    /// The device is unknown or revoked.
    #[error("unknown device")]
    UnknownDevice,
    /// No such login or challenge.
    #[error("not found")]
    NotFound,
    /// The challenge was already decided.
    #[error("already decided")]
    AlreadyDecided,
    /// The challenge expired.
    #[error("expired")]
    Expired,
    /// The typed number does not match; the login is now denied.
    #[error("number mismatch")]
    NumberMismatch,
    /// Too many attempts; try again after this many seconds.
    #[error("rate limited for {retry_after} s")]
    RateLimited {
        /// Seconds until a retry can succeed.
        retry_after: u64,
    },
    /// The store cannot be reached.
    #[error("store unavailable: {0}")]
    StoreUnavailable(String),
    /// The store failed in another way.
    #[error("store: {0}")]
    Store(String),
    /// A cryptographic operation failed unexpectedly.
    #[error("crypto: {0}")]
    Crypto(String),
    /// File I/O failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// Any other internal failure.
    #[error("internal: {0}")]
    Internal(String),
    /// Authenticated, but not allowed.
    #[error("forbidden")]
    Forbidden,
    /// The account is locked.
    #[error("account locked")]
    AccountLocked,
    /// The municipality exists.
    #[error("municipality exists")]
    MunicipalityExists,
    /// No such municipality.
    #[error("unknown municipality")]
    UnknownMunicipality,
    /// Four eyes: the confirmation must come from another official.
    #[error("second official required")]
    SecondOfficialRequired,
    /// A client of this id is registered (or retired).
    #[error("client exists")]
    ClientExists,
    /// No such client in the registry.
    #[error("unknown client")]
    UnknownClient,
    /// A seed client is changed only in the configuration.
    #[error("client read-only")]
    ClientReadOnly,
    /// An OAuth 2.0 error (RFC 6749 §5.2), answered in that format; the
    /// description is safe to show.
    #[error("oauth: {}: {description}", .error.as_str())]
    OAuth {
        /// The RFC 6749 error code.
        error: potvrda_proto::oidc::OAuthError,
        /// Detail for the client's developer.
        description: String,
    },
}

impl Error {
    /// The stable wire code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Self::Unauthorized => ErrorCode::Unauthorized,
            Self::InvalidCredentials => ErrorCode::InvalidCredentials,
            Self::InvalidActivationCode => ErrorCode::InvalidActivationCode,
            Self::UsernameTaken => ErrorCode::UsernameTaken,
            Self::NoDevice => ErrorCode::NoDevice,
            Self::InvalidPushSubscription(_) => ErrorCode::InvalidPushSubscription,
            Self::InvalidClient(_) => ErrorCode::InvalidClient,
            Self::InvalidSignature(_) => ErrorCode::InvalidSignature,
            Self::UnknownDevice => ErrorCode::UnknownDevice,
            Self::NotFound => ErrorCode::NotFound,
            Self::AlreadyDecided => ErrorCode::AlreadyDecided,
            Self::Expired => ErrorCode::Expired,
            Self::NumberMismatch => ErrorCode::NumberMismatch,
            Self::StoreUnavailable(_) => ErrorCode::StoreUnavailable,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::OAuth { .. } => ErrorCode::InvalidRequest,
            Self::Forbidden => ErrorCode::Forbidden,
            Self::AccountLocked => ErrorCode::AccountLocked,
            Self::MunicipalityExists => ErrorCode::MunicipalityExists,
            Self::UnknownMunicipality => ErrorCode::UnknownMunicipality,
            Self::SecondOfficialRequired => ErrorCode::SecondOfficialRequired,
            Self::ClientExists => ErrorCode::ClientExists,
            Self::UnknownClient => ErrorCode::UnknownClient,
            Self::ClientReadOnly => ErrorCode::ClientReadOnly,
            Self::Config(_)
            | Self::Store(_)
            | Self::Crypto(_)
            | Self::Io(_)
            | Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The message shown to the caller: fixed text, or text the variant
    /// guarantees is safe; never internal error text.
    pub fn public_message(&self) -> String {
        match self {
            Self::InvalidRequest(m) => m.clone(),
            Self::InvalidPushSubscription(m) => format!("push subscription refused: {m}"),
            Self::InvalidSignature(m) => format!("signature refused: {m}"),
            Self::Unauthorized => "missing or invalid bearer credential".into(),
            Self::InvalidClient(m) => m.clone(),
            Self::InvalidCredentials => "invalid username or password".into(),
            Self::InvalidActivationCode => "the activation code is unknown, used or expired".into(),
            Self::UsernameTaken => "this username is taken".into(),
            Self::NoDevice => "the account has no device to confirm the login".into(),
            Self::UnknownDevice => "unknown or revoked device".into(),
            Self::NotFound => "no such login or challenge".into(),
            Self::AlreadyDecided => "the challenge was already decided".into(),
            Self::Expired => "the challenge has expired".into(),
            Self::NumberMismatch => {
                "the number does not match the login screen; the login is denied".into()
            }
            Self::StoreUnavailable(_) => "the service is temporarily unavailable, try again".into(),
            Self::RateLimited { .. } => "too many attempts; try again later".into(),
            Self::Forbidden => "your role may not do this".into(),
            Self::AccountLocked => "the account is locked; visit a municipality's counter".into(),
            Self::MunicipalityExists => "this municipality code exists".into(),
            Self::UnknownMunicipality => "no such municipality".into(),
            Self::SecondOfficialRequired => {
                "another official of the same municipality must confirm this".into()
            }
            Self::ClientExists => "a client of this id is registered, or was and is retired".into(),
            Self::UnknownClient => "no such client".into(),
            Self::ClientReadOnly => {
                "this client comes from the configuration; change it there".into()
            }
            _ => "internal error".into(),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::Store(e.to_string())
    }
}

impl From<jsonwebtoken::errors::Error> for Error {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        Self::Crypto(e.to_string())
    }
}

/// The server's result type.
pub type Result<T> = std::result::Result<T, Error>;
