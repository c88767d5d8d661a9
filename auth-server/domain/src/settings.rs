//! What the domain is told by the configuration, by section. The server's
//! `Config` (file, environment, command line) builds it once at start and
//! validates it there; the domain only reads it.

use std::time::Duration;

use secrecy::SecretString;

use crate::service::OidcClient;

/// Everything the domain reads from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Logins, challenges and activation.
    pub login: LoginSettings,
    /// Rate limits and the password guard.
    pub limits: LimitSettings,
    /// Tokens the server issues.
    pub tokens: TokenSettings,
    /// The OpenID Connect provider.
    pub oidc: OidcSettings,
    /// Staff, the counter and the bootstrap.
    pub staff: StaffSettings,
}

/// Logins, challenges and activation.
#[derive(Debug, Clone)]
pub struct LoginSettings {
    /// How long a challenge waits for the phone.
    pub challenge_ttl: Duration,
    /// How long an activation code stays valid.
    pub activation_ttl: Duration,
    /// Challenges per account within `push_window`.
    pub push_limit: u32,
    /// The window of `push_limit`.
    pub push_window: Duration,
    /// Unanswered or denied challenges before pushes pause.
    pub fatigue_limit: u32,
    /// How long pushes pause after `fatigue_limit`.
    pub fatigue_pause: Duration,
}

/// Rate limits and the password guard.
#[derive(Debug, Clone)]
pub struct LimitSettings {
    /// The window of every per-client limit.
    pub rate_window: Duration,
    /// Failed passwords per account and address before the back-off.
    pub password_delay_after: u32,
    /// Failed passwords per account and address before the lock.
    pub password_lock_after: u32,
    /// Failed passwords per account from every address before unknown
    /// addresses are locked out.
    pub password_lock_after_all: u32,
    /// Failed logins per address.
    pub ip_failed_limit: u32,
    /// Logins per address.
    pub ip_login_limit: u32,
    /// Enrollments per address.
    pub ip_enroll_limit: u32,
    /// Requests per minute per address on the phone's endpoints (0: none).
    pub ip_device_limit: u32,
}

/// Tokens the server issues.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// Lifetime of an access token.
    pub token_ttl: Duration,
    /// `aud` of portal tokens.
    pub token_audience: String,
    /// `aud` of tokens for the admin API.
    pub admin_audience: String,
}

/// The OpenID Connect provider.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// Registered relying parties.
    pub clients: Vec<OidcClient>,
    /// Lifetime of a single sign-on session.
    pub session_ttl: Duration,
    /// Lifetime of a refresh token family.
    pub refresh_ttl: Duration,
    /// CIBA: how long a poll waits for the next (`slow_down` adds 5 s).
    pub ciba_interval: Duration,
}

/// Staff, the counter and the bootstrap.
#[derive(Debug, Clone)]
pub struct StaffSettings {
    /// A reset needs a second official of the same municipality.
    pub four_eyes_reset: bool,
    /// The bootstrap token (creates the first superadmin).
    pub bootstrap_token: Option<SecretString>,
    /// The audit archive's read-only token.
    pub audit_reader_token: Option<SecretString>,
}

/// Whole seconds of a duration, as the store and the tokens count time.
pub fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}
