//! The domain: creating citizens, enrolling devices, logins, challenges,
//! approvals and tokens. It knows no HTTP types; the store, the clock, the
//! randomness, the keys and the push sender are injected.

mod additions;
mod challenge;
mod client;
mod counter;
mod decide;
mod desk;
mod escrow;
mod guard;
mod offline;
mod oidc;
mod profile;
mod recovery;
mod risk;
mod staff;

pub use additions::NEW_DEVICE_SERVICE;
pub use client::OidcClient;
pub use counter::{CitizenRecord, ResetOutcome};
use decide::Decided;
pub use desk::{COUNTER_SERVICE, Desk, DeskView};
pub use oidc::{
    AuthorizeOutcome, AuthorizeParams, LoginPage, LogoutOutcome, LogoutParams, SCOPES, StepOutcome,
    TokenForm,
};
pub use risk::{Assessment, RiskPolicy};
pub use staff::Principal;

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
    AMR_PWD_MFA, AUD_PULL, AccessTokenClaims, ApprovalClaims, EcJwk, EnrollmentProofClaims,
    LoginContext, PullClaims, TOKEN_TYPE_BEARER, TYP_APPROVAL, TYP_ENROLLMENT, TYP_PULL,
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
use crate::store::records::{ApprovalJtiUsed, DeviceJti, Marker, Record, Records};
use crate::store::{
    Activation, DecideOutcome, Device, EnrollOutcome, Limits, Login, LoginState, Store, User,
};

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

    /// Create an account with a random initial password and a single-use
    /// activation code (for its first phone), both shown once.
    async fn create_account(
        &self,
        req: CreateCitizenRequest,
        role: Role,
        municipality: Option<String>,
        created_by: Option<&str>,
    ) -> Result<(User, CreateCitizenResponse)> {
        let display_name = clean_text("display_name", &req.display_name, MAX_NAME_LEN)?;
        if req.username.trim().is_empty() {
            // Suggested from the name: `ime.prezime`, then `ime.prezime2`, …
            let base = suggest_username(&display_name);
            for n in 1..=SUGGESTION_TRIES {
                let candidate = if n == 1 {
                    base.clone()
                } else {
                    format!("{base}{n}")
                };
                if self.store.user_by_name(&candidate).await?.is_some() {
                    continue;
                }
                let req = CreateCitizenRequest {
                    username: candidate,
                    ..req.clone()
                };
                match Box::pin(self.create_account(req, role, municipality.clone(), created_by))
                    .await
                {
                    // Taken in between by a concurrent creation: the next one.
                    Err(Error::UsernameTaken) => continue,
                    other => return other,
                }
            }
            return Err(Error::UsernameTaken);
        }
        let username = normalize_username(&req.username)?;
        let email = req.email.as_deref().map(clean_email).transpose()?;
        let phone = req.phone.as_deref().map(clean_phone).transpose()?;
        let rng = self.rng.as_ref();
        let password = grouped(&clock::string(rng, PASSWORD_ALPHABET, 16)?);
        let code = grouped(&clock::string(rng, CODE_ALPHABET, CODE_LEN)?);
        let now = self.clock.now();
        let user = User {
            id: new_id(rng)?,
            username,
            display_name,
            password_hash: self
                .hasher
                .hash(SecretString::from(password.clone()))
                .await?,
            email,
            phone,
            role,
            municipality,
            pwd_change_required: true,
            locked: false,
            fraud_reported_at: None,
            deactivated: false,
            generation: 0,
            created_by: created_by.map(str::to_owned),
            created_at: now,
        };
        let activation = Activation {
            code_hash: code_hash(&code).ok_or_else(|| Error::Internal("generated code".into()))?,
            user_id: user.id.clone(),
            expires_at: now + secs(self.settings.login.activation_ttl),
        };
        self.store.create_user(&user, &activation).await?;
        tracing::info!(user_id = user.id, role = role.as_str(), "account created");
        let answer = CreateCitizenResponse {
            user_id: user.id.clone(),
            username: user.username.clone(),
            initial_password: password,
            activation_code: code,
            activation_expires_at: activation.expires_at,
        };
        Ok((user, answer))
    }

    /// Create a citizen (officials, admins, superadmins, the bootstrap token).
    pub async fn create_citizen(
        &self,
        req: CreateCitizenRequest,
        by: &Principal,
        caller: &Caller,
    ) -> Result<CreateCitizenResponse> {
        by.require(&[Role::Official, Role::Admin, Role::Superadmin], true)?;
        // The citizen belongs to the municipality whose counter opened the
        // account: its admins see everything that happens to it.
        let (user, answer) = self
            .create_account(
                req,
                Role::Citizen,
                by.municipality().map(str::to_owned),
                by.actor_id(),
            )
            .await?;
        self.audit
            .record(
                by.event(AuditKind::CitizenCreated, self.clock.now())
                    .user(&user.id)
                    .caller(caller)
                    .with("username", user.username.as_str()),
            )
            .await;
        Ok(answer)
    }

    /// Enroll a device with an activation code and a proof of key possession.
    pub async fn enroll(
        &self,
        req: EnrollmentRequest,
        caller: &Caller,
    ) -> Result<EnrollmentResponse> {
        if let Some(ip) = caller.ip {
            let now = self.clock.now();
            self.limit(
                &RateKey::EnrollFrom(ip),
                true,
                self.settings.limits.ip_enroll_limit,
                now,
            )
            .await?;
        }
        let mut result = self.enroll_inner(req).await;
        let now = self.clock.now();
        let event = match &result {
            Ok(done) => Event::new(AuditKind::DeviceEnrolled, now)
                .user(&done.user_id)
                .with("device_id", done.device_id.as_str()),
            Err(e @ (Error::InvalidActivationCode | Error::InvalidSignature(_))) => {
                Event::new(AuditKind::EnrollmentFailed, now).with("reason", e.code().as_str())
            }
            Err(_) => return result,
        };
        self.audit.record(event.caller(caller)).await;
        // The account's first device also brings its recovery codes (after
        // the enrollment's own event, so the trail reads in order).
        if let Ok(done) = &mut result {
            done.recovery_codes = self.issue_recovery_codes(&done.user_id, caller).await?;
            done.offline_secret = Some(self.issue_offline_secret(&done.device_id).await?);
        }
        result
    }

    async fn enroll_inner(&self, req: EnrollmentRequest) -> Result<EnrollmentResponse> {
        let name = clean_text("name", &req.name, MAX_NAME_LEN)?;
        let platform = clean_text("platform", &req.platform, MAX_NAME_LEN)?;
        let device_key = decoding_key(&req.public_key)?;
        let now = self.clock.now();
        let proof: EnrollmentProofClaims = verify_jws(&req.proof, TYP_ENROLLMENT, &device_key)?;
        let (Some(hash), Some(proof_hash)) =
            (code_hash(&req.activation_code), code_hash(&proof.act))
        else {
            return Err(Error::InvalidActivationCode);
        };
        if !ct_eq_str(&hash, &proof_hash) {
            return Err(Error::InvalidSignature(
                "the proof is for another activation code",
            ));
        }
        if proof.iat < now - ENROLLMENT_PROOF_MAX_AGE_SECS || proof.iat > now + MAX_CLOCK_SKEW_SECS
        {
            return Err(Error::InvalidSignature("the proof is not fresh"));
        }
        let push = req
            .push
            .as_ref()
            .map(|p| self.push.validate(p))
            .transpose()?;
        let device = Device {
            id: new_id(self.rng.as_ref())?,
            user_id: String::new(),
            name,
            platform,
            public_key: EcJwk::p256(req.public_key.x.clone(), req.public_key.y.clone()),
            push,
            push_gone: false,
            created_at: now,
        };
        let device_id = device.id.clone();
        match self.store.enroll_device(&hash, device, now).await? {
            EnrollOutcome::InvalidCode => Err(Error::InvalidActivationCode),
            EnrollOutcome::Enrolled(user) => {
                tracing::info!(user_id = user.id, device_id, "device enrolled");
                Ok(EnrollmentResponse {
                    device_id,
                    user_id: user.id,
                    username: user.username,
                    server_jwks: self.keys.jwks(),
                    vapid_public_key: self.keys.vapid_public_b64(),
                    recovery_codes: None,
                    offline_secret: None,
                })
            }
        }
    }

    /// `POST /v1/logins`: check the password and send a challenge to every
    /// device of the user, for a portal service or (staff only) the admin API.
    pub async fn start_login(&self, req: LoginRequest, caller: &Caller) -> Result<LoginResponse> {
        let purpose = match req.audience {
            LoginAudience::Portal => Purpose::Portal,
            LoginAudience::Admin => Purpose::AdminApi,
        };
        self.start_login_for(req, purpose, caller).await
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

    async fn start_login_inner(
        &self,
        req: LoginRequest,
        purpose: Purpose,
        caller: &Caller,
    ) -> Result<LoginResponse> {
        let client_ip = caller.ip;
        if req.password.len() > MAX_PASSWORD_LEN {
            return Err(Error::InvalidRequest(format!(
                "password longer than {MAX_PASSWORD_LEN} bytes"
            )));
        }
        if req.username.len() > MAX_USERNAME_LEN {
            return Err(Error::InvalidRequest(format!(
                "username longer than {MAX_USERNAME_LEN} bytes"
            )));
        }
        let mut context = clean_context(req.context.unwrap_or_default())?;
        if let Some(service) = purpose.service() {
            // The phone shows what the token will really be for, never the caller's word.
            context.service = Some(service.to_owned());
        }
        let username = req.username.trim().to_ascii_lowercase();
        // Rate limits before any hashing: per client IP (429, told), then per
        // username (delay, then a lock that answers like a wrong password).
        let (now, window) = (self.clock.now(), secs(self.settings.limits.rate_window));
        if let Some(ip) = client_ip {
            self.limit(
                &RateKey::LoginFrom(ip),
                true,
                self.settings.limits.ip_login_limit,
                now,
            )
            .await?;
            self.limit(
                &RateKey::FailedFrom(ip),
                false,
                self.settings.limits.ip_failed_limit,
                now,
            )
            .await?;
        }
        let user = self.store.user_by_name(&username).await?;
        let user_id = user.as_ref().map(|u| u.id.as_str());
        let gate = self
            .password_gate(&username, user_id, client_ip, now)
            .await?;
        if !gate.delay.is_zero() {
            tokio::time::sleep(gate.delay).await;
        }
        let password = SecretString::from(req.password);
        let started = std::time::Instant::now();
        let ok = self
            .hasher
            .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
            .await?;
        self.metrics.password_verified(started.elapsed());
        let user = match user {
            Some(user) if ok && gate.locked.is_none() && !user.deactivated => user,
            _ => {
                if let Some(ip) = client_ip {
                    self.store
                        .rate_hit(&RateKey::FailedFrom(ip), now, window)
                        .await?;
                }
                let user_id = user.as_ref().map(|u| u.id.as_str());
                self.password_failed(&gate, user_id, caller, now).await?;
                if let Some(scope) = gate.locked {
                    tracing::warn!(
                        scope,
                        "login refused: too many failed passwords for this username"
                    );
                }
                let mut event = Event::new(AuditKind::LoginFailed, now).caller(caller).with(
                    "reason",
                    if gate.locked.is_some() {
                        "password_locked"
                    } else {
                        "invalid_credentials"
                    },
                );
                if let Some(u) = user_id {
                    event = event.user(u);
                }
                self.audit.record(event).await;
                return Err(Error::InvalidCredentials);
            }
        };
        self.password_succeeded(&gate).await?;
        // Told only after the right password: a guesser learns nothing.
        if user.locked {
            self.audit
                .record(
                    Event::new(AuditKind::LoginFailed, now)
                        .user(&user.id)
                        .caller(caller)
                        .with("reason", "account_locked"),
                )
                .await;
            return Err(Error::AccountLocked);
        }
        // Staff authority only from a login made for it (told only after the right password).
        if purpose != Purpose::Portal && user.role == Role::Citizen {
            self.audit
                .record(
                    Event::new(AuditKind::LoginFailed, now)
                        .user(&user.id)
                        .caller(caller)
                        .with("reason", "not_staff"),
                )
                .await;
            return Err(Error::Forbidden);
        }
        self.challenge(&user, context, purpose.audience(), caller)
            .await
    }

    /// The device's own view of itself, for a valid pull token.
    pub async fn device_info(
        &self,
        device_id: &str,
        pull_token: Option<&str>,
        caller: &Caller,
    ) -> Result<DeviceInfo> {
        self.device_limit(caller)?;
        let device = self.authenticate_device(device_id, pull_token).await?;
        Ok(DeviceInfo {
            device_id: device.id,
            name: device.name,
            platform: device.platform,
            push: match (&device.push, device.push_gone) {
                (None, _) => PushStatus::None,
                (Some(_), true) => PushStatus::Gone,
                (Some(_), false) => PushStatus::Active,
            },
            created_at: device.created_at,
        })
    }

    /// The pending challenges of a device, for a valid pull token.
    pub async fn pending_challenges(
        &self,
        device_id: &str,
        pull_token: Option<&str>,
        caller: &Caller,
    ) -> Result<Vec<String>> {
        self.device_limit(caller)?;
        let device = self.authenticate_device(device_id, pull_token).await?;
        let now = self.clock.now();
        Ok(self
            .store
            .pending_logins(&device.user_id, now)
            .await?
            .into_iter()
            .filter_map(|l| {
                let created_ms = l.record.created_at_ms;
                let jws = l
                    .record
                    .challenges
                    .into_iter()
                    .find(|c| c.device_id == device_id)?
                    .jws;
                self.metrics
                    .challenge_fetched(created_ms, self.clock.now_ms());
                Some(jws)
            })
            .collect())
    }

    /// The phone has the challenge on screen (delivered by push or pulled):
    /// recorded once per challenge as the `seen` stage, on the server's clock.
    pub async fn acknowledge(
        &self,
        cid: &str,
        device_id: Option<&str>,
        pull_token: Option<&str>,
        caller: &Caller,
    ) -> Result<()> {
        self.device_limit(caller)?;
        let device_id = device_id.ok_or(Error::Unauthorized)?;
        let device = self.authenticate_device(device_id, pull_token).await?;
        let login = self
            .store
            .login_by_challenge(cid)
            .await?
            .ok_or(Error::NotFound)?;
        if login.record.user_id != device.user_id
            || !login
                .record
                .challenges
                .iter()
                .any(|c| c.device_id == device.id)
        {
            return Err(Error::NotFound);
        }
        if login.state == LoginState::Pending && self.store.mark_seen(&login.record.id).await? {
            self.metrics
                .challenge_seen(login.record.created_at_ms, self.clock.now_ms());
        }
        Ok(())
    }

    /// The device a fresh pull token (signed by that device, for that device) speaks for.
    async fn authenticate_device(
        &self,
        device_id: &str,
        pull_token: Option<&str>,
    ) -> Result<Device> {
        let token = pull_token.ok_or(Error::Unauthorized)?;
        let kid = jsonwebtoken::decode_header(token)
            .map_err(|_| Error::InvalidSignature("pull token is not an ES256 JWS"))?
            .kid;
        if kid.as_deref() != Some(device_id) {
            return Err(Error::InvalidSignature("pull token kid is not this device"));
        }
        let device = self
            .store
            .device(device_id)
            .await?
            .ok_or(Error::UnknownDevice)?;
        let claims: PullClaims = verify_jws(token, TYP_PULL, &decoding_key(&device.public_key)?)?;
        let now = self.clock.now();
        if claims.sub != device_id || claims.aud != AUD_PULL {
            return Err(Error::InvalidSignature(
                "pull token is for another device or audience",
            ));
        }
        if claims.iat < now - PULL_TOKEN_MAX_AGE_SECS || claims.iat > now + MAX_CLOCK_SKEW_SECS {
            return Err(Error::InvalidSignature("pull token is not fresh"));
        }
        Ok(device)
    }

    /// Verify the phone's signed answer to challenge `cid` and decide the login.
    pub async fn respond(&self, cid: &str, approval: &str, caller: &Caller) -> Result<LoginStatus> {
        self.device_limit(caller)?;
        let header = jsonwebtoken::decode_header(approval)
            .map_err(|_| Error::InvalidSignature("approval is not a JWS"))?;
        let device_id = header
            .kid
            .ok_or(Error::InvalidSignature("approval has no kid"))?;
        let device = self
            .store
            .device(&device_id)
            .await?
            .ok_or(Error::UnknownDevice)?;
        let claims: ApprovalClaims =
            verify_jws(approval, TYP_APPROVAL, &decoding_key(&device.public_key)?)?;
        if claims.cid != cid {
            return Err(Error::InvalidRequest(
                "the approval is for another challenge".into(),
            ));
        }
        let login = self
            .store
            .login_by_challenge(cid)
            .await?
            .ok_or(Error::NotFound)?;
        let rec = &login.record;
        if rec.user_id != device.user_id || !rec.challenges.iter().any(|c| c.device_id == device.id)
        {
            return Err(Error::InvalidSignature("this device was not asked"));
        }
        if !ct_eq_str(&claims.nonce, &rec.nonce) {
            return Err(Error::InvalidSignature(
                "nonce does not match the challenge",
            ));
        }
        // What the phone showed: the hash of the claims sent to this device
        // (required since protocol 2, as is the approval's jti).
        let (Some(hash), Some(jti)) = (&claims.ctx_hash, &claims.jti) else {
            return Err(Error::InvalidSignature(
                "ctx_hash and jti are required (protocol 2)",
            ));
        };
        let sent = rec
            .challenges
            .iter()
            .find(|c| c.device_id == device.id)
            .map(|c| payload_hash(&c.jws))
            .unwrap_or_default();
        if !ct_eq_str(hash, &sent) {
            return Err(Error::InvalidSignature(
                "ctx_hash does not match the challenge sent",
            ));
        }
        let now = self.clock.now();
        // Each approval once, by its jti, before the state change is even tried.
        if jti.is_empty() || jti.len() > 64 {
            return Err(Error::InvalidSignature("jti must be 1-64 characters"));
        }
        let spent = DeviceJti {
            device_id: device.id.clone(),
            jti: jti.to_owned(),
        };
        if !self
            .records::<ApprovalJtiUsed>()
            .put_new(&spent, &Marker, now + JTI_KEEP_SECS, now)
            .await?
        {
            return Err(Error::AlreadyDecided);
        }
        if claims.iat < rec.created_at - MAX_CLOCK_SKEW_SECS
            || claims.iat > now + MAX_CLOCK_SKEW_SECS
        {
            return Err(Error::InvalidSignature("approval is not fresh"));
        }
        match login.status(now) {
            LoginStatus::Pending => {}
            LoginStatus::Expired => return Err(Error::Expired),
            _ => return Err(Error::AlreadyDecided),
        }
        let (to, mismatch) = decide::outcome(rec, &claims);
        let decided_ms = self.clock.now_ms();
        match self
            .store
            .decide(&rec.id, to, now, decided_ms, Some(jti))
            .await?
        {
            DecideOutcome::Decided => {
                let decided = Decided {
                    rec,
                    device_id: &device.id,
                    claims: &claims,
                    approved: to == LoginState::Approved,
                    mismatch,
                    now,
                    decided_ms,
                };
                self.after_decision(&decided, caller).await?;
            }
            DecideOutcome::AlreadyDecided => return Err(Error::AlreadyDecided),
            DecideOutcome::Expired => return Err(Error::Expired),
            DecideOutcome::NotFound => return Err(Error::NotFound),
        }
        tracing::info!(
            login_id = rec.id,
            cid,
            device_id,
            decision = to.as_str(),
            number_mismatch = mismatch,
            "challenge decided"
        );
        if mismatch {
            return Err(Error::NumberMismatch);
        }
        Ok(if to == LoginState::Approved {
            LoginStatus::Approved
        } else {
            LoginStatus::Denied
        })
    }

    /// The status of a login, waiting up to `wait_secs` for a decision. The
    /// access token comes exactly once, with the first answer after approval.
    pub async fn login_status(
        &self,
        login_id: &str,
        secret: Option<&str>,
        wait_secs: u64,
    ) -> Result<LoginStatusResponse> {
        self.wait_for_decision(login_id, secret, wait_secs, true)
            .await
            .map(|(answer, _)| answer)
    }

    /// Wait up to `wait_secs` for the login to be decided. With `take`, an
    /// approval is consumed and the access token issued; without, the status
    /// is only reported (the OpenID Connect pages consume it themselves).
    async fn wait_for_decision(
        &self,
        login_id: &str,
        secret: Option<&str>,
        wait_secs: u64,
        take: bool,
    ) -> Result<(LoginStatusResponse, Login)> {
        if wait_secs > MAX_WAIT_SECS {
            return Err(Error::InvalidRequest(format!(
                "wait must be at most {MAX_WAIT_SECS}"
            )));
        }
        let secret = secret.ok_or(Error::Unauthorized)?;
        let _parked = (wait_secs > 0).then(|| LongPoll::park(self.metrics.as_ref()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(wait_secs);
        // Subscribe before reading, so a decision in between is not missed.
        let mut changes = self.store.subscribe(login_id);
        let mut login = self.load_until(login_id, deadline, &mut changes).await?;
        if !ct_eq_str(&sha256_b64(secret.as_bytes()), &login.record.secret_hash) {
            return Err(Error::Unauthorized);
        }
        loop {
            let now = self.clock.now();
            match login.status(now) {
                LoginStatus::Pending => {
                    let started = tokio::time::Instant::now();
                    if started >= deadline {
                        return Ok((status_only(LoginStatus::Pending), login));
                    }
                    // Wake at a decision, at the deadline, or when the challenge expires.
                    let until_expiry =
                        Duration::from_secs((login.record.expires_at - now).max(0) as u64);
                    let until = deadline.min(started + until_expiry);
                    let _ = tokio::time::timeout_at(until, changes.changed()).await;
                }
                LoginStatus::Approved if !take => {
                    return Ok((status_only(LoginStatus::Approved), login));
                }
                LoginStatus::Approved | LoginStatus::Consumed if take => {
                    if let Some(answer) = self.hand_over(&login, secret, now).await? {
                        return Ok((answer, login));
                    }
                    if login.state == LoginState::Consumed {
                        return Ok((status_only(LoginStatus::Consumed), login));
                    }
                }
                other => return Ok((status_only(other), login)),
            }
            login = self.load_until(login_id, deadline, &mut changes).await?;
        }
    }

    /// Read a login for a long-poll. A store outage does not fail the wait:
    /// the read is retried until the wait's deadline (then 503).
    async fn load_until(
        &self,
        login_id: &str,
        deadline: tokio::time::Instant,
        changes: &mut crate::store::Subscription,
    ) -> Result<Login> {
        loop {
            match self.store.login(login_id).await {
                Ok(Some(l)) => return Ok(l),
                Ok(None) => return Err(Error::NotFound),
                Err(Error::StoreUnavailable(e)) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(login_id, error = %e, "store unavailable during a long-poll; retrying");
                    let retry =
                        (tokio::time::Instant::now() + Duration::from_millis(250)).min(deadline);
                    let _ = tokio::time::timeout_at(retry, changes.changed()).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Mint the access token for an approved login (not yet handed over).
    async fn mint_token(&self, login: &Login, now: i64) -> Result<(String, AccessTokenClaims)> {
        let user = self.store.user(&login.record.user_id).await?;
        let claims = AccessTokenClaims {
            iss: self.public_url.clone(),
            sub: login.record.user_id.clone(),
            preferred_username: login.record.username.clone(),
            aud: match login.record.audience {
                LoginAudience::Portal => self.settings.tokens.token_audience.clone(),
                LoginAudience::Admin => self.settings.tokens.admin_audience.clone(),
            },
            iat: now,
            exp: now + secs(self.settings.tokens.token_ttl),
            jti: new_id(self.rng.as_ref())?,
            auth_time: login.decided_at.unwrap_or(now),
            amr: AMR_PWD_MFA.iter().map(|s| (*s).to_owned()).collect(),
            approval_jti: login.approval_jti.clone(),
            roles: vec![
                user.as_ref()
                    .map_or(Role::Citizen, |u| u.role)
                    .as_str()
                    .to_owned(),
            ],
            pwd_change_required: user.as_ref().is_some_and(|u| u.pwd_change_required),
            // A staff member's municipality (a citizen's is the counter's business).
            municipality: user
                .filter(|u| u.role != Role::Citizen)
                .and_then(|u| u.municipality),
        };
        let keys = self.keyring.current();
        let (signer, kid) = keys.current.signer(Algorithm::ES256);
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.to_owned());
        Ok((jsonwebtoken::encode(&header, &claims, signer)?, claims))
    }

    /// Hand the token over once: minted and sealed for the login secret
    /// *before* the atomic hand-over, so nothing can fail after it; a retry
    /// of a request whose answer was lost (within [`REDELIVER_SECS`]) gets
    /// the same token back, never a second one. `None`: nothing to hand over.
    async fn hand_over(
        &self,
        login: &Login,
        secret: &str,
        now: i64,
    ) -> Result<Option<LoginStatusResponse>> {
        let (token, claims) = self.mint_token(login, now).await?;
        let sealed = escrow::seal(secret, &login.record.id, &token)?;
        let Some(stored) = self
            .store
            .take_token(&login.record.id, &sealed, now, REDELIVER_SECS)
            .await?
        else {
            return Ok(None);
        };
        let first = stored == sealed;
        let token = if first {
            token
        } else {
            match escrow::open(secret, &login.record.id, &stored) {
                Some(t) => t,
                None => return Ok(None),
            }
        };
        if first {
            let now_ms = self.clock.now_ms();
            self.metrics
                .token_issued(login.decided_at_ms.unwrap_or(now_ms), now_ms);
            tracing::info!(
                login_id = login.record.id,
                user_id = claims.sub,
                jti = claims.jti,
                "access token issued"
            );
            self.audit
                .record(
                    Event::new(AuditKind::TokenIssued, now)
                        .user(&claims.sub)
                        .with("login_id", login.record.id.as_str())
                        .with("jti", claims.jti.as_str())
                        .with("approval_jti", claims.approval_jti.clone()),
                )
                .await;
        } else {
            tracing::info!(
                login_id = login.record.id,
                "access token delivered again (a retried request)"
            );
        }
        // The token came back authenticated (AEAD under the login secret): its own claim counts.
        let pwd_change_required =
            jsonwebtoken::dangerous::insecure_decode::<AccessTokenClaims>(&token)
                .map(|d| d.claims.pwd_change_required)
                .unwrap_or(claims.pwd_change_required);
        Ok(Some(LoginStatusResponse {
            status: LoginStatus::Approved,
            access_token: Some(token),
            token_type: Some(TOKEN_TYPE_BEARER.into()),
            expires_in: Some(self.settings.tokens.token_ttl.as_secs()),
            pwd_change_required: Some(pwd_change_required),
        }))
    }
}

/// What the phone shows as the service of an admin API login.
pub const ADMIN_SERVICE: &str = "Administracija · Admin API";

/// What a login is for: who may make it, what the phone shows, what its
/// token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A portal service (the caller names it; the token is never staff authority).
    Portal,
    /// The admin API: staff only, the phone shows [`ADMIN_SERVICE`].
    AdminApi,
    /// The counter's web pages: staff only, the phone shows [`COUNTER_SERVICE`].
    Counter,
}

impl Purpose {
    /// The service the phone shows, when the server names it.
    fn service(self) -> Option<&'static str> {
        match self {
            Self::Portal => None,
            Self::AdminApi => Some(ADMIN_SERVICE),
            Self::Counter => Some(COUNTER_SERVICE),
        }
    }

    /// The audience of the login's token.
    fn audience(self) -> LoginAudience {
        match self {
            Self::Portal => LoginAudience::Portal,
            Self::AdminApi | Self::Counter => LoginAudience::Admin,
        }
    }
}

fn audience_name(a: LoginAudience) -> &'static str {
    match a {
        LoginAudience::Portal => "portal",
        LoginAudience::Admin => "admin",
    }
}

/// How long a spent approval `jti` is remembered: far beyond any challenge.
const JTI_KEEP_SECS: i64 = 86_400;

/// How long after the hand-over a retried status request gets the token again.
const REDELIVER_SECS: i64 = 60;

fn limits_of(settings: &Settings) -> Limits {
    let login = &settings.login;
    Limits {
        push_limit: login.push_limit,
        push_window: secs(login.push_window),
        fatigue_limit: login.fatigue_limit,
        fatigue_pause: secs(login.fatigue_pause),
    }
}

fn status_only(status: LoginStatus) -> LoginStatusResponse {
    LoginStatusResponse {
        status,
        access_token: None,
        token_type: None,
        expires_in: None,
        pwd_change_required: None,
    }
}

/// Verify a compact JWS: ES256 only, the expected `typ`, the given key.
/// Time claims are checked by the caller against the injected clock.
pub fn verify_jws<T: DeserializeOwned>(jws: &str, typ: &str, key: &DecodingKey) -> Result<T> {
    let header =
        jsonwebtoken::decode_header(jws).map_err(|_| Error::InvalidSignature("not a JWS"))?;
    // jsonwebtoken ignores `crit` and `b64`; RFC 7515 §4.1.11 says reject.
    let raw_header = jws
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .unwrap_or_default();
    if potvrda_proto::jose::refused_header_param(&raw_header).is_some() {
        return Err(Error::InvalidSignature("crit and b64 are not supported"));
    }
    if header.alg != Algorithm::ES256 {
        return Err(Error::InvalidSignature("alg must be ES256"));
    }
    if header.typ.as_deref() != Some(typ) {
        return Err(Error::InvalidSignature("unexpected typ"));
    }
    let mut validation = Validation::new(Algorithm::ES256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    jsonwebtoken::decode::<T>(jws, key, &validation)
        .map(|d| d.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::Json(_) => {
                Error::InvalidSignature("claims are malformed")
            }
            _ => Error::InvalidSignature("signature does not verify"),
        })
}

/// A verifying key for a device JWK, after checking the point is on P-256.
fn decoding_key(jwk: &EcJwk) -> Result<DecodingKey> {
    let bad = || Error::InvalidRequest("public_key must be an EC P-256 JWK".into());
    if !jwk.is_p256() {
        return Err(bad());
    }
    let x = URL_SAFE_NO_PAD.decode(&jwk.x).map_err(|_| bad())?;
    let y = URL_SAFE_NO_PAD.decode(&jwk.y).map_err(|_| bad())?;
    if x.len() != 32 || y.len() != 32 {
        return Err(bad());
    }
    let point = [&[4u8][..], &x, &y].concat();
    p256::PublicKey::from_sec1_bytes(&point).map_err(|_| bad())?;
    DecodingKey::from_ec_components(&jwk.x, &jwk.y).map_err(|_| bad())
}

fn new_id(rng: &dyn Random) -> Result<String> {
    Ok(uuid::Builder::from_random_bytes(clock::bytes::<16>(rng)?)
        .into_uuid()
        .to_string())
}

/// SHA-256, base64url, of a JWS's decoded payload (what `ctx_hash` covers).
fn payload_hash(jws: &str) -> String {
    jws.split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .map(|bytes| sha256_b64(&bytes))
        .unwrap_or_default()
}

fn sha256_b64(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data))
}

/// Constant-time equality of two strings (length is not secret).
fn ct_eq_str(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Groups of four joined by dashes, for reading aloud and typing.
fn grouped(s: &str) -> String {
    s.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

/// The hash an activation code is stored under, after normalising what a
/// citizen may type (case, dashes, spaces); `None` when it cannot be a code.
pub fn code_hash(code: &str) -> Option<String> {
    let norm: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (norm.len() == CODE_LEN && norm.bytes().all(|b| CODE_ALPHABET.contains(&b)))
        .then(|| sha256_b64(norm.as_bytes()))
}

/// Suggestions tried before giving up (then the official chooses one).
const SUGGESTION_TRIES: u32 = 50;

/// `ime.prezime` from a name in Serbian Latin or Cyrillic script: letters
/// transliterated to ASCII (č, ć → c; đ → dj; š → s; ž → z; Cyrillic as in
/// the official Latin transliteration), words joined with dots; at most 48
/// characters, `korisnik` when nothing usable is left.
pub fn suggest_username(display_name: &str) -> String {
    let mut out = String::new();
    let mut word = false;
    for c in display_name.chars().flat_map(char::to_lowercase) {
        let latin = match c {
            'a'..='z' | '0'..='9' => c.to_string(),
            'č' | 'ć' | 'ч' | 'ћ' | 'ц' => "c".into(),
            'š' | 'ш' => "s".into(),
            'ž' | 'ж' | 'з' => "z".into(),
            'đ' | 'ђ' => "dj".into(),
            'а' => "a".into(),
            'б' => "b".into(),
            'в' => "v".into(),
            'г' => "g".into(),
            'д' => "d".into(),
            'е' => "e".into(),
            'и' => "i".into(),
            'ј' => "j".into(),
            'к' => "k".into(),
            'л' => "l".into(),
            'љ' => "lj".into(),
            'м' => "m".into(),
            'н' => "n".into(),
            'њ' => "nj".into(),
            'о' => "o".into(),
            'п' => "p".into(),
            'р' => "r".into(),
            'с' => "s".into(),
            'т' => "t".into(),
            'у' => "u".into(),
            'ф' => "f".into(),
            'х' => "h".into(),
            'џ' => "dz".into(),
            _ => String::new(),
        };
        if latin.is_empty() {
            word = false;
            continue;
        }
        if !word && !out.is_empty() {
            out.push('.');
        }
        word = true;
        out.push_str(&latin);
    }
    let mut out: String = out.chars().take(48).collect();
    while out.ends_with('.') {
        out.pop();
    }
    if out.len() < 3 {
        "korisnik".into()
    } else {
        out
    }
}

/// Usernames: 3–64 of `a-z 0-9 . _ -`, starting with a letter or digit, lower-cased.
pub fn normalize_username(raw: &str) -> Result<String> {
    let u = raw.trim().to_ascii_lowercase();
    let ok = (3..=MAX_USERNAME_LEN).contains(&u.len())
        && u.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && u.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(u)
    } else {
        Err(Error::InvalidRequest(
            "username must be 3-64 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit".into(),
        ))
    }
}

fn clean_text(field: &str, v: &str, max: usize) -> Result<String> {
    let v = v.trim();
    if v.is_empty() || v.len() > max || v.chars().any(char::is_control) {
        return Err(Error::InvalidRequest(format!(
            "{field} must be 1-{max} bytes without control characters"
        )));
    }
    Ok(v.to_owned())
}

/// An e-mail address as people type it: one `@`, no spaces, at most 254 bytes.
fn clean_email(v: &str) -> Result<String> {
    let v = v.trim();
    let ok = v.len() <= 254
        && v.split('@').count() == 2
        && v.split('@').all(|part| !part.is_empty())
        && !v.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then(|| v.to_owned())
        .ok_or_else(|| Error::InvalidRequest("email is not an e-mail address".into()))
}

/// A phone number in international form: `+` and 6-15 digits (E.164).
fn clean_phone(v: &str) -> Result<String> {
    let digits: String = v
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .collect();
    let ok = digits
        .strip_prefix('+')
        .is_some_and(|d| (6..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()));
    ok.then_some(digits).ok_or_else(|| {
        Error::InvalidRequest("phone must be +<country><number>, 6-15 digits".into())
    })
}

fn clean_context(ctx: LoginContext) -> Result<LoginContext> {
    let f = |name: &str, v: Option<String>| -> Result<Option<String>> {
        v.map(|v| clean_text(name, &v, MAX_CONTEXT_FIELD_LEN))
            .transpose()
    };
    Ok(LoginContext {
        ip: f("context.ip", ctx.ip)?,
        user_agent: f("context.user_agent", ctx.user_agent)?,
        service: f("context.service", ctx.service)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_suggested_from_names_in_either_script() {
        assert_eq!(suggest_username("Đorđe Čolić"), "djordje.colic");
        assert_eq!(suggest_username("Јелена Петровић"), "jelena.petrovic");
        assert_eq!(suggest_username("  Ana-Marija  Žižić "), "ana.marija.zizic");
        assert_eq!(
            suggest_username("Љубица Његош Џаковић"),
            "ljubica.njegos.dzakovic"
        );
        assert_eq!(suggest_username("李"), "korisnik");
        let long = suggest_username(&"Jovanović ".repeat(10));
        assert!(long.len() <= 48 && !long.ends_with('.'), "{long}");
        for name in ["Đorđe Čolić", "Јелена Петровић", &"x ".repeat(40)] {
            let s = suggest_username(name);
            assert!(normalize_username(&s).is_ok(), "{s}");
        }
    }

    #[test]
    fn usernames() {
        assert_eq!(normalize_username(" Jelena.P ").expect("valid"), "jelena.p");
        for bad in ["ab", ".dot", "a b c", "ćirilica", &"x".repeat(65)] {
            assert!(normalize_username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn activation_codes_normalise_and_reject_garbage() {
        let h = code_hash("ABCD-EFGH-JKMN").expect("valid");
        assert_eq!(code_hash("abcd efgh jkmn"), Some(h.clone()));
        assert_eq!(code_hash("ABCDEFGHJKMN"), Some(h));
        assert_eq!(
            code_hash("ABCD-EFGH-JKM0"),
            None,
            "0 is not in the alphabet"
        );
        assert_eq!(code_hash("ABCD"), None);
    }

    #[test]
    fn grouping_and_constant_time_eq() {
        assert_eq!(grouped("abcdefghij"), "abcd-efgh-ij");
        assert!(ct_eq_str("abc", "abc"));
        assert!(!ct_eq_str("abc", "abd"));
        assert!(!ct_eq_str("abc", "abcd"));
    }

    #[test]
    fn off_curve_device_keys_are_refused() {
        let jwk = EcJwk::p256(
            URL_SAFE_NO_PAD.encode([1u8; 32]),
            URL_SAFE_NO_PAD.encode([2u8; 32]),
        );
        assert!(matches!(decoding_key(&jwk), Err(Error::InvalidRequest(_))));
    }
}
