//! The domain: creating citizens, enrolling devices, logins, challenges,
//! approvals and tokens. It knows no HTTP types; the store, the clock, the
//! randomness, the keys and the push sender are injected.

mod accounts;
mod additions;
mod challenge;
mod client;
mod counter;
mod decide;
mod desk;
mod device;
mod escrow;
mod factors;
mod guard;
mod jose;
mod login;
mod offline;
mod oidc;
mod profile;
mod recovery;
mod risk;
mod staff;
mod status;
mod text;

pub use additions::NEW_DEVICE_SERVICE;
pub use client::OidcClient;
pub use counter::{CitizenRecord, ResetOutcome};
pub use desk::{COUNTER_SERVICE, Desk, DeskView};
pub use jose::verify_jws;
use jose::{ct_eq_str, decoding_key, new_id, payload_hash, sha256_b64};
use login::audience_name;
pub use login::{ADMIN_SERVICE, Purpose};
pub use oidc::{
    AuthorizeOutcome, AuthorizeParams, LoginPage, LogoutOutcome, LogoutParams, SCOPES, StepOutcome,
    TokenForm,
};
pub use risk::{Assessment, RiskPolicy};
pub use staff::Principal;
use text::{SUGGESTION_TRIES, clean_context, clean_email, clean_phone, clean_text, grouped};
pub use text::{code_hash, normalize_username, suggest_username};

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
pub use jsonwebtoken::DecodingKey;
use jsonwebtoken::{Algorithm, Header, Validation};
use potvrda_proto::api::{
    AuditKind, CreateCitizenRequest, CreateCitizenResponse, DeviceInfo, EnrollmentRequest,
    EnrollmentResponse, LoginAudience, LoginRequest, LoginResponse, LoginStatus,
    LoginStatusResponse, PushStatus, Role,
};
use potvrda_proto::jose::{
    AMR_PWD_MFA, AUD_PULL, AccessTokenClaims, EcJwk, EnrollmentProofClaims, LoginContext,
    PullClaims, TOKEN_TYPE_BEARER, TYP_ENROLLMENT, TYP_PULL,
};
use potvrda_proto::limits::{
    ENROLLMENT_PROOF_MAX_AGE_SECS, MAX_CLOCK_SKEW_SECS, MAX_CONTEXT_FIELD_LEN, MAX_NAME_LEN,
    MAX_PASSWORD_LEN, MAX_USERNAME_LEN, MAX_WAIT_SECS, PULL_TOKEN_MAX_AGE_SECS,
};
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use crate::audit::{Audit, Caller, Event};
use crate::clock::{self, Clock, Random};
use crate::error::{Error, Result};
use crate::keyring::Keyring;
use crate::keys::ServerKeys;
use crate::password::PasswordHasher;
use crate::ports::{LongPoll, Meter, PushGateway};
use crate::settings::{Settings, secs};
use crate::store::RateKey;
use crate::store::records::{Record, Records};
use crate::store::{Activation, Device, EnrollOutcome, Limits, Login, LoginState, Store, User};

/// Characters of generated passwords (no look-alikes: 0/O, 1/l/I).
const PASSWORD_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// Characters of activation codes (upper case, no look-alikes).
const CODE_ALPHABET: &[u8] = potvrda_proto::limits::CODE_ALPHABET;
/// Activation code length without dashes: 12 × 5 bits = 60 bits.
const CODE_LEN: usize = potvrda_proto::limits::ACTIVATION_CODE_LEN;

/// The service every HTTP handler calls.
pub struct Potvrda {
    settings: Arc<Settings>,
    public_url: String,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Random>,
    keys: Arc<ServerKeys>,
    hasher: PasswordHasher,
    push: Arc<dyn PushGateway>,
    metrics: Arc<dyn Meter>,
    audit: Arc<Audit>,
    keyring: Arc<Keyring>,
    risk: RiskPolicy,
    device_limiter: Option<DeviceLimiter>,
}

/// Per-address limit of the phone's endpoints, kept in this instance's memory:
/// they cost one store read and one signature check each, less than a shared
/// counter would, so a flood is stopped where it arrives.
struct DeviceLimiter {
    limiter: governor::DefaultKeyedRateLimiter<IpAddr>,
    checks: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Potvrda {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Potvrda")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// Everything the service is built from.
pub struct Parts {
    /// What the configuration tells the domain.
    pub settings: Arc<Settings>,
    /// The issuer URL.
    pub public_url: String,
    /// Storage.
    pub store: Arc<dyn Store>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Randomness.
    pub rng: Arc<dyn Random>,
    /// Keys.
    pub keys: Arc<ServerKeys>,
    /// Password hashing.
    pub hasher: PasswordHasher,
    /// Push delivery.
    pub push: Arc<dyn PushGateway>,
    /// Metrics.
    pub metrics: Arc<dyn Meter>,
    /// The audit trail.
    pub audit: Arc<Audit>,
    /// The token keys.
    pub keyring: Arc<Keyring>,
    /// The login risk policy.
    pub risk: RiskPolicy,
}

impl Potvrda {
    /// Assemble the service.
    pub fn new(p: Parts) -> Self {
        let device_limiter =
            std::num::NonZeroU32::new(p.settings.limits.ip_device_limit).map(|n| DeviceLimiter {
                limiter: governor::RateLimiter::keyed(governor::Quota::per_minute(n)),
                checks: std::sync::atomic::AtomicU64::new(0),
            });
        Self {
            device_limiter,
            risk: p.risk,
            settings: p.settings,
            public_url: p.public_url,
            store: p.store,
            clock: p.clock,
            rng: p.rng,
            keys: p.keys,
            hasher: p.hasher,
            push: p.push,
            metrics: p.metrics,
            audit: p.audit,
            keyring: p.keyring,
        }
    }

    /// A per-client limit: count this request (`hit`) or only look, and
    /// refuse with 429 once `limit` is reached within the window.
    async fn limit(&self, key: &RateKey<'_>, hit: bool, limit: u32, now: i64) -> Result<()> {
        let window = secs(self.settings.limits.rate_window);
        let (n, oldest) = if hit {
            self.store.rate_hit(key, now, window).await?
        } else {
            self.store.rate_count(key, now, window).await?
        };
        let over = if hit { n > limit } else { n >= limit };
        if over {
            tracing::warn!(limit_key = key.key(), n, "request refused: rate limit");
            return Err(Error::RateLimited {
                retry_after: (oldest + window - now).max(1) as u64,
            });
        }
        Ok(())
    }

    /// The per-address limit of the phone's endpoints (429 with `Retry-After`).
    fn device_limit(&self, caller: &Caller) -> Result<()> {
        let (Some(l), Some(ip)) = (&self.device_limiter, caller.ip) else {
            return Ok(());
        };
        // Forget quiet addresses now and then, so the table stays small.
        if l.checks.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 4096 == 4095 {
            l.limiter.retain_recent();
        }
        l.limiter.check_key(&ip).map_err(|not_until| {
            use governor::clock::Clock as _;
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            tracing::warn!(%ip, "request refused: per-address limit of the phone endpoints");
            Error::RateLimited {
                retry_after: wait.as_secs().max(1),
            }
        })
    }

    fn limits(&self) -> Limits {
        limits_of(&self.settings)
    }

    /// Password hashes waiting for a hashing slot right now.
    pub fn hash_queue(&self) -> usize {
        self.hasher.queued()
    }

    /// The keys, for the JWKS endpoint.
    pub fn keys(&self) -> &ServerKeys {
        &self.keys
    }

    /// The issuer URL.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The repository of records of type `R`.
    fn records<R: Record>(&self) -> Records<'_, R> {
        Records::new(self.store.as_ref())
    }

    /// What the configuration tells the domain.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The token keys (`/.well-known/jwks.json`).
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The audit trail.
    pub fn audit(&self) -> &Audit {
        &self.audit
    }

    /// The store, for health checks.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// A login for `purpose`: who may make it, what the phone shows as the
    /// service, what the token is for.
    pub(crate) async fn start_login_for(
        &self,
        req: LoginRequest,
        purpose: Purpose,
        caller: &Caller,
    ) -> Result<LoginResponse> {
        let result = self.start_login_inner(req, purpose, caller).await;
        self.metrics.login(match &result {
            Ok(_) => "challenged",
            Err(Error::InvalidCredentials) => "invalid_credentials",
            Err(Error::NoDevice) => "no_device",
            Err(Error::RateLimited { .. }) => "rate_limited",
            Err(Error::InvalidRequest(_)) => "invalid_request",
            Err(Error::Forbidden) => "forbidden",
            Err(_) => "error",
        });
        result
    }
}

fn limits_of(settings: &Settings) -> Limits {
    let login = &settings.login;
    Limits {
        push_limit: login.push_limit,
        push_window: secs(login.push_window),
        fatigue_limit: login.fatigue_limit,
        fatigue_pause: secs(login.fatigue_pause),
    }
}
