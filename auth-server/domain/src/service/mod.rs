//! The domain: creating citizens, enrolling devices, logins, challenges,
//! approvals and tokens. It knows no HTTP types; the store, the clock, the
//! randomness, the keys and the push sender are injected.

/// A capability of the service: a view of [`Potvrda`] with its own type,
/// whose operations live in one file.
macro_rules! capability {
    ($(#[$meta:meta])* $vis:vis $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy)]
        $vis struct $name<'a>(pub(in crate::service) &'a crate::service::Potvrda);

        impl std::ops::Deref for $name<'_> {
            type Target = crate::service::Potvrda;
            fn deref(&self) -> &Self::Target {
                self.0
            }
        }

        impl std::fmt::Debug for $name<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(stringify!($name))
            }
        }
    };
}

mod accounts;
mod additions;
mod assurance;
mod challenge;
mod client;
mod counter;
mod decide;
mod desk;
mod device;
mod escrow;
mod factors;
mod guard;
pub(crate) mod jose;
mod login;
mod offline;
mod oidc;
mod profile;
mod recovery;
mod resets;
mod risk;
mod selfservice;
mod staff;
mod status;
mod text;
mod withdrawal;

pub use crate::actor::{Actor, ActorKind};
pub use accounts::Accounts;
pub use additions::Additions;
pub(crate) use challenge::Challenges;
pub use client::{AuthMethod, DeliveryMode, OidcClient};
pub use counter::CitizenRecord;
pub use counter::Counter;
pub(crate) use decide::Decisions;
pub use desk::Desks;
pub use desk::{Desk, DeskView};
pub use device::Devices;
pub(crate) use factors::Factors;
pub(crate) use guard::Guards;
pub use jose::verify_jws;
use jose::{ct_eq_str, decoding_key, new_id, payload_hash, sha256_b64};
pub use login::Logins;
pub use login::Purpose;
use login::audience_name;
pub(crate) use offline::OfflineCodes;
pub use oidc::Authorization;
pub(crate) use oidc::AuthorizationCodes;
pub(crate) use oidc::LogoutNotices;
pub use oidc::Logouts;
pub use oidc::Provider;
pub(crate) use oidc::RefreshTokens;
pub use oidc::TokenEndpoint;
pub use oidc::{
    AuthorizeOutcome, AuthorizeParams, Confirmation, LoginPage, LogoutOutcome, LogoutParams,
    SCOPES, StepOutcome, TokenForm,
};
pub use oidc::{
    Backchannel, BackchannelForm, ClientCredentials, ClientFields, CredentialParts, Endpoint,
};
pub(crate) use oidc::{CibaRequests, ClientAuth};
pub use oidc::{ClientInformation, ClientSource, Dpop, DpopRequest, Presented, Registry};
pub use oidc::{ConsentPage, Consents};
pub use oidc::{Introspection, ParForm, PushedRequests, Subjects, TokenQuery};
pub(crate) use profile::Profiles;
pub use recovery::RecoveryCodes;
pub use resets::{ResetOutcome, Resets};
pub(crate) use risk::RiskChecks;
pub use risk::{Assessment, RiskPolicy};
pub use selfservice::SelfService;
pub use staff::StaffAdmin;
pub use status::Outcomes;
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
    AUD_PULL, AccessTokenClaims, EcJwk, EnrollmentProofClaims, LoginContext, OwnService,
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
use crate::ports::{ClientNotifier, LongPoll, Meter, PushGateway};
use crate::settings::{Settings, secs};
use crate::store::RateKey;
use crate::store::records::{Record, Records};
use crate::store::{Activation, Device, EnrollOutcome, Limits, Login, LoginState, Store, User};
pub(crate) use crate::store::{ChallengeId, DeviceId, LoginId, UserId};

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
    notifier: Arc<dyn ClientNotifier>,
    logout_sender: Arc<dyn crate::ports::LogoutSender>,
    key_sets: Arc<dyn crate::ports::KeySets>,
    metrics: Arc<dyn Meter>,
    audit: Arc<Audit>,
    keyring: Arc<Keyring>,
    risk: RiskPolicy,
    device_limiter: Option<DeviceLimiter>,
    /// The configuration's clients, their secrets hashed.
    seed: Vec<OidcClient>,
}

/// Per-address limit of the phone's endpoints, kept in this instance's memory:
/// they cost one store read and one signature check each, less than a shared
/// counter would, so a flood is stopped where it arrives.
struct DeviceLimiter {
    limiter: governor::DefaultKeyedRateLimiter<IpAddr>,
    checks: std::sync::atomic::AtomicU64,
}

/// The capabilities, each a view of the service with its own type.
impl Potvrda {
    /// Creating citizens and enrolling their phones.
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts(self)
    }

    /// Adding a device to an account from a device it already has.
    pub fn additions(&self) -> Additions<'_> {
        Additions(self)
    }

    /// Challenges: admitted, signed, pushed and withdrawn.
    pub(crate) fn challenges(&self) -> Challenges<'_> {
        Challenges(self)
    }

    /// The counter's operations on citizens.
    pub fn counter(&self) -> Counter<'_> {
        Counter(self)
    }

    /// Resets of a citizen's credentials at the counter.
    pub fn resets(&self) -> Resets<'_> {
        Resets(self)
    }

    /// A citizen's own account (`/v1/me`).
    pub fn self_service(&self) -> SelfService<'_> {
        SelfService(self)
    }

    /// What follows a login's decision.
    pub(crate) fn decisions(&self) -> Decisions<'_> {
        Decisions(self)
    }

    /// The counter's browser sessions (desks).
    pub fn desks(&self) -> Desks<'_> {
        Desks(self)
    }

    /// The phone's endpoints.
    pub fn devices(&self) -> Devices<'_> {
        Devices(self)
    }

    /// The second factors: verify, decide, record.
    pub(crate) fn factors(&self) -> Factors<'_> {
        Factors(self)
    }

    /// Guards of the login: fatigue and lock-outs.
    pub(crate) fn guards(&self) -> Guards<'_> {
        Guards(self)
    }

    /// Starting a login: the password, the limits, the challenges.
    pub fn logins(&self) -> Logins<'_> {
        Logins(self)
    }

    /// A login's outcome for the relying party.
    pub fn outcomes(&self) -> Outcomes<'_> {
        Outcomes(self)
    }

    /// The offline codes of a device.
    pub(crate) fn offline_codes(&self) -> OfflineCodes<'_> {
        OfflineCodes(self)
    }

    /// A device's profile: what it knows of the account.
    pub(crate) fn profiles(&self) -> Profiles<'_> {
        Profiles(self)
    }

    /// Recovery codes.
    pub fn recovery_codes(&self) -> RecoveryCodes<'_> {
        RecoveryCodes(self)
    }

    /// The login risk checks.
    pub(crate) fn risk_checks(&self) -> RiskChecks<'_> {
        RiskChecks(self)
    }

    /// Municipalities, staff accounts and who may do what.
    pub fn staff_admin(&self) -> StaffAdmin<'_> {
        StaffAdmin(self)
    }

    /// The OpenID Provider: clients and discovery.
    pub fn provider(&self) -> Provider<'_> {
        Provider(self)
    }

    /// The authorization endpoint and its login pages.
    pub fn authorization(&self) -> Authorization<'_> {
        Authorization(self)
    }

    /// The token and userinfo endpoints.
    pub fn token_endpoint(&self) -> TokenEndpoint<'_> {
        TokenEndpoint(self)
    }

    /// Authorization codes: issued and redeemed once.
    pub(crate) fn authorization_codes(&self) -> AuthorizationCodes<'_> {
        AuthorizationCodes(self)
    }

    /// Refresh tokens, rotated.
    pub(crate) fn refresh_tokens(&self) -> RefreshTokens<'_> {
        RefreshTokens(self)
    }

    /// RP-initiated logout.
    pub fn logouts(&self) -> Logouts<'_> {
        Logouts(self)
    }

    /// CIBA's backchannel authentication endpoint.
    pub fn backchannel(&self) -> Backchannel<'_> {
        Backchannel(self)
    }

    pub(crate) fn ciba_requests(&self) -> CibaRequests<'_> {
        CibaRequests(self)
    }

    pub(crate) fn client_auth(&self) -> ClientAuth<'_> {
        ClientAuth(self)
    }
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
    /// CIBA ping notifications.
    pub notifier: Arc<dyn ClientNotifier>,
    /// Back-channel logout delivery.
    pub logouts: Arc<dyn crate::ports::LogoutSender>,
    /// Clients' published key sets.
    pub key_sets: Arc<dyn crate::ports::KeySets>,
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
        let seed = p
            .settings
            .oidc
            .clients
            .iter()
            .map(|c| oidc::seeded_client(c, &p.keys.pepper))
            .collect();
        Self {
            seed,
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
            notifier: p.notifier,
            logout_sender: p.logouts,
            key_sets: p.key_sets,
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

    /// The citizen's consent to services.
    pub fn consents(&self) -> Consents<'_> {
        Consents(self)
    }

    /// Back-channel logout notices.
    pub(crate) fn logout_notices(&self) -> LogoutNotices<'_> {
        LogoutNotices(self)
    }

    /// Subject identifiers, public and pairwise.
    pub fn subjects(&self) -> Subjects<'_> {
        Subjects(self)
    }

    /// Pushed authorization requests.
    pub fn pushed_requests(&self) -> PushedRequests<'_> {
        PushedRequests(self)
    }

    /// Token introspection and revocation.
    pub fn introspection(&self) -> Introspection<'_> {
        Introspection(self)
    }

    /// DPoP proofs and nonces.
    pub fn dpop(&self) -> Dpop<'_> {
        Dpop(self)
    }

    /// The client registry.
    pub fn registry(&self) -> Registry<'_> {
        Registry(self)
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
        origin: &challenge::Origin,
    ) -> Result<LoginResponse> {
        let result = self
            .logins()
            .start_login_inner(req, purpose, caller, origin)
            .await;
        self.metrics.login(match &result {
            Ok(_) => "challenged",
            Err(Error::InvalidCredentials) => "invalid_credentials",
            Err(Error::InvalidClient(_)) => "invalid_client",
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
