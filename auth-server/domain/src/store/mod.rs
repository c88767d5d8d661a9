//! Storage as the domain sees it: small async traits combined into one
//! [`Store`] bound. The backends live in the server (`potvrda_server::store`:
//! embedded and Redis) and pass the same contract suite.
//!
//! Every state change of a login is atomic in the store: of racing approvals
//! exactly one wins, and the token is handed out exactly once.

pub mod notify;
pub mod records;

use std::net::IpAddr;

use async_trait::async_trait;
use potvrda_proto::api::LoginStatus;
use potvrda_proto::jose::{EcJwk, LoginContext};
pub use potvrda_proto::{ChallengeId, ClientId, DeviceId, LoginId, UserId};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::Result;
pub use notify::{Notifier, Subscription};

/// An account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// User id (UUID).
    pub id: UserId,
    /// Unique login name.
    pub username: String,
    /// Name shown to officials.
    pub display_name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// E-mail, when given.
    #[serde(default)]
    pub email: Option<String>,
    /// Phone number, when given.
    #[serde(default)]
    pub phone: Option<String>,
    /// Role.
    #[serde(default)]
    pub role: potvrda_proto::api::Role,
    /// The staff member's municipality.
    #[serde(default)]
    pub municipality: Option<String>,
    /// The password is an initial one (created or reset at the counter)
    /// and must be changed.
    #[serde(default)]
    pub pwd_change_required: bool,
    /// Locked: no login (at the counter, or after a fraud report).
    #[serde(default)]
    pub locked: bool,
    /// When a login was reported as fraud from the phone (the lock's reason).
    #[serde(default)]
    pub fraud_reported_at: Option<i64>,
    /// A deactivated staff account: no login, its tokens stop working.
    #[serde(default)]
    pub deactivated: bool,
    /// The security generation: raised by a reset, a password change, a
    /// device revocation and a lock. Single sign-on sessions and OpenID
    /// grants made under an earlier generation are over.
    #[serde(default)]
    pub generation: u64,
    /// The staff member who created the account (four eyes: a confirmer
    /// the requester created does not count as a second pair of eyes).
    #[serde(default)]
    pub created_by: Option<String>,
    /// Created at.
    pub created_at: i64,
}

/// A pending activation code, stored by its SHA-256 only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activation {
    /// SHA-256 of the normalised code, base64url.
    pub code_hash: String,
    /// The account it activates a device for.
    pub user_id: UserId,
    /// Expires at.
    pub expires_at: i64,
}

/// Where and how to push to a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushTarget {
    /// Push service URL (allow-listed at enrollment).
    pub endpoint: String,
    /// The phone's ECDH public key, base64url.
    pub p256dh: String,
    /// The 16-byte auth secret, base64url.
    pub auth: String,
    /// Challenges go as Declarative Web Push JSON (issue 15).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub declarative: bool,
    /// The language of the notification's text (issue 16; absent: the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<potvrda_i18n::Locale>,
}

/// An enrolled device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Device id (UUID); the `kid` of its signatures.
    pub id: DeviceId,
    /// Owner.
    pub user_id: UserId,
    /// Name given at enrollment.
    pub name: String,
    /// Platform given at enrollment.
    pub platform: String,
    /// Its public key.
    pub public_key: EcJwk,
    /// Push subscription, if any.
    pub push: Option<PushTarget>,
    /// The push service said the subscription is gone (404/410): pull only.
    #[serde(default)]
    pub push_gone: bool,
    /// Enrolled at.
    pub created_at: i64,
    /// How it was bound to the account (protocol 3; `None`: before it, by
    /// an activation code from the counter or from an addition — both
    /// rooted at the counter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolled_via: Option<Channel>,
}

/// How a device was bound to its account: the input of the level of
/// assurance that identity proofing gives (docs/OIDC.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// With an activation code an official printed at the counter, after
    /// checking the citizen's identity document in person (a new account,
    /// or a reset).
    Counter,
    /// With an activation code released by an approval, with number
    /// matching, on a device the account already had.
    Addition,
}

impl Channel {
    /// Its wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Addition => "addition",
        }
    }
}

/// The stored state of a login (expiry is derived from the clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginState {
    /// Waiting for the phone.
    Pending,
    /// Approved, token not yet handed out.
    Approved,
    /// Denied.
    Denied,
    /// Approved and the token was handed out.
    Consumed,
}

impl LoginState {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Consumed => "consumed",
        }
    }
    /// From the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "approved" => Self::Approved,
            "denied" => Self::Denied,
            "consumed" => Self::Consumed,
            _ => return None,
        })
    }
}

/// The challenge JWS addressed to one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceChallenge {
    /// Device id.
    pub device_id: DeviceId,
    /// Challenge JWS.
    pub jws: String,
}

/// The immutable part of a login, written once at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRecord {
    /// Login id (UUID).
    pub id: LoginId,
    /// Challenge id (UUID).
    pub cid: ChallengeId,
    /// Account.
    pub user_id: UserId,
    /// Its username.
    pub username: String,
    /// Challenge nonce, base64url.
    pub nonce: String,
    /// The number the login screen shows.
    pub number: u8,
    /// SHA-256 of the login secret, base64url.
    pub secret_hash: String,
    /// Created at.
    pub created_at: i64,
    /// Created at, wall-clock milliseconds (for latency metrics across instances).
    #[serde(default)]
    pub created_at_ms: i64,
    /// Expires at.
    pub expires_at: i64,
    /// Context shown on the phone.
    pub context: LoginContext,
    /// One challenge JWS per device.
    pub challenges: Vec<DeviceChallenge>,
    /// What the login's token is for (records before protocol 2: the portal).
    #[serde(default)]
    pub audience: potvrda_proto::api::LoginAudience,
    /// The client address the login came from (after trusted proxies): an
    /// approval makes it a known address of the citizen.
    #[serde(default)]
    pub client_ip: Option<String>,
    /// A risky login's longer code, typed on the phone instead of the number.
    #[serde(default)]
    pub code: Option<String>,
    /// Protocol 3: the client that started it through the portal API or
    /// CIBA; only that client sees its status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portal_client: Option<ClientId>,
}

/// A login as read from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// Immutable part.
    pub record: LoginRecord,
    /// Current state.
    pub state: LoginState,
    /// When it was decided.
    pub decided_at: Option<i64>,
    /// When it was decided, wall-clock milliseconds.
    pub decided_at_ms: Option<i64>,
    /// The `jti` of the approval that decided it.
    pub approval_jti: Option<String>,
    /// What the answer proved (RFC 8176 `amr` values, protocol 3: `pop` or
    /// `hwk`/`swk`, `user`, `pin`/`fpt`/`face`, `otp`); empty for a login
    /// decided before protocol 3, or denied without an answer.
    pub amr: Vec<String>,
}

impl Login {
    /// The status the API reports at time `now`.
    pub fn status(&self, now: i64) -> LoginStatus {
        match self.state {
            LoginState::Pending if now >= self.record.expires_at => LoginStatus::Expired,
            LoginState::Pending => LoginStatus::Pending,
            LoginState::Approved => LoginStatus::Approved,
            LoginState::Denied => LoginStatus::Denied,
            LoginState::Consumed => LoginStatus::Consumed,
        }
    }
}

/// What an attempt to decide a login did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecideOutcome {
    /// This call decided it.
    Decided,
    /// It was already decided.
    AlreadyDecided,
    /// It expired first.
    Expired,
    /// No such login.
    NotFound,
}

/// What enrolling a device did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollOutcome {
    /// Enrolled for this user.
    Enrolled(Box<User>),
    /// The activation code is unknown, used or expired.
    InvalidCode,
}

/// Accounts and activation codes.
#[async_trait]
pub trait UserStore {
    /// Create `user` with its first activation; `Error::UsernameTaken` if the name exists.
    async fn create_user(&self, user: &User, activation: &Activation) -> Result<()>;
    /// The user with this username.
    async fn user_by_name(&self, username: &str) -> Result<Option<User>>;
    /// The user with this id.
    async fn user(&self, id: &UserId) -> Result<Option<User>>;
    /// Replace the stored account `user.id` (the username stays as created).
    async fn update_user(&self, user: &User) -> Result<()>;
    /// A new activation code for the user; any earlier pending one stops working.
    async fn new_activation(&self, activation: &Activation) -> Result<()>;
    /// Accounts whose username starts with `prefix` (lower case), in name order.
    async fn search_users(&self, prefix: &str, limit: usize) -> Result<Vec<User>>;
}

/// Devices.
#[async_trait]
pub trait DeviceStore {
    /// Atomically consume the activation code with this hash (if valid at
    /// `now`) and enroll `device` for its user.
    async fn enroll_device(
        &self,
        code_hash: &str,
        device: Device,
        now: i64,
    ) -> Result<EnrollOutcome>;
    /// The active devices of a user.
    async fn devices_of(&self, user_id: &UserId) -> Result<Vec<Device>>;
    /// An active device.
    async fn device(&self, device_id: &DeviceId) -> Result<Option<Device>>;
    /// The push service said the subscription at `endpoint` is gone (a
    /// subscription replaced since is not).
    async fn mark_push_gone(&self, device_id: &DeviceId, endpoint: &str) -> Result<()>;
    /// Replace (or, with `None`, remove) the push subscription of the
    /// user's active device; it is no longer gone. `true` if it is theirs.
    async fn set_push(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
        push: Option<PushTarget>,
    ) -> Result<bool>;
    /// Unlink a device from its user: no more pushes, its signatures refused.
    /// `true` if it was the user's active device.
    async fn revoke_device(&self, user_id: &UserId, device_id: &DeviceId) -> Result<bool>;
    /// Give the user's active device a new name; `true` if it is theirs.
    async fn rename_device(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
        name: &str,
    ) -> Result<bool>;
}

/// Logins and their challenges.
#[async_trait]
pub trait LoginStore {
    /// Store a new pending login.
    async fn create_login(&self, login: &LoginRecord) -> Result<()>;
    /// A login by id.
    async fn login(&self, login_id: &LoginId) -> Result<Option<Login>>;
    /// A login by challenge id.
    async fn login_by_challenge(&self, cid: &ChallengeId) -> Result<Option<Login>>;
    /// The user's logins still pending at `now`.
    async fn pending_logins(&self, user_id: &UserId, now: i64) -> Result<Vec<Login>>;
    /// Atomically move a pending, unexpired login to `to` (approved or
    /// denied) at `now` (clock seconds) / `now_ms` (wall-clock milliseconds).
    async fn decide(
        &self,
        login_id: &LoginId,
        to: LoginState,
        now: i64,
        now_ms: i64,
        approval_jti: Option<&str>,
        amr: &[String],
    ) -> Result<DecideOutcome>;
    /// Mark the challenge as seen by a phone; `true` the first time only.
    async fn mark_seen(&self, login_id: &LoginId) -> Result<bool>;
    /// Hand the token over, atomically: an approved login becomes consumed
    /// and keeps `escrow` (the token, sealed for the login secret's holder),
    /// which is returned; a login consumed at most `redeliver` seconds before
    /// `now` returns the escrow it keeps (a reply lost in transit does not
    /// lose the login, and no second token is minted); else `None`.
    async fn take_token(
        &self,
        login_id: &LoginId,
        escrow: &[u8],
        now: i64,
        redeliver: i64,
    ) -> Result<Option<Vec<u8>>>;
    /// Wake-ups for changes of this login, on this instance or any other.
    fn subscribe(&self, topic: &str) -> Subscription;
    /// Spend an approval's `jti` for `device_id` until `expires_at`:
    /// `true` the first time only. Kept as long as the challenges it
    /// guards and no longer: where a backend keeps its logins (the embedded
    /// store: in memory), it keeps these too.
    async fn spend_jti(
        &self,
        device_id: &DeviceId,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool>;
}

/// The push-bombing limits (from the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Pushes per user per window.
    pub push_limit: u32,
    /// Window, seconds.
    pub push_window: i64,
    /// Failures in a row before a pause.
    pub fatigue_limit: u32,
    /// Pause, seconds.
    pub fatigue_pause: i64,
}

/// Whether a new login may push to the user's phones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Yes; this earlier login, if any, is superseded.
    Admitted {
        /// The user's previous login, to be withdrawn.
        superseded: Option<LoginId>,
    },
    /// Pushes are paused until then (clock seconds).
    Paused {
        /// End of the pause.
        until: i64,
    },
    /// The window is full until then (clock seconds).
    TooMany {
        /// When a push becomes possible again.
        retry_at: i64,
    },
}

/// Per-user defences against push bombing, atomic across instances.
#[async_trait]
pub trait GuardStore {
    /// Admit login `login_id` for `user_id` at `now`: not paused, a free slot
    /// in the push window (taken here), and it becomes the user's one active login.
    async fn admit_login(
        &self,
        user_id: &UserId,
        login_id: &LoginId,
        now: i64,
        limits: &Limits,
    ) -> Result<Admission>;
    /// A challenge of the user ended approved (`true`) or denied/expired
    /// (`false`); returns the end of a pause this outcome started.
    async fn record_outcome(
        &self,
        user_id: &UserId,
        approved: bool,
        now: i64,
        limits: &Limits,
    ) -> Result<Option<i64>>;
}

/// What a rate counter counts. The stored key of each ([`RateKey::key`])
/// is the layout earlier releases wrote, so counters survive an upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateKey<'a> {
    /// Enrollments from an address.
    EnrollFrom(IpAddr),
    /// Logins from an address.
    LoginFrom(IpAddr),
    /// Failed logins from an address.
    FailedFrom(IpAddr),
    /// Failed passwords of a username (its hash) from an address (or `none`).
    PasswordAt {
        /// The username's hash.
        username: &'a str,
        /// The address, `none` when unknown.
        address: &'a str,
    },
    /// Failed passwords of a username (its hash) from every address.
    PasswordAnywhere(&'a str),
    /// A citizen's recent denials (risk).
    Denials(&'a str),
    /// A citizen's recent logins (risk: velocity).
    Logins(&'a str),
    /// A citizen's wrong offline codes today.
    OfflineFailures(&'a str),
}

impl RateKey<'_> {
    /// The stored key.
    pub fn key(&self) -> String {
        match self {
            Self::EnrollFrom(ip) => format!("eni:{ip}"),
            Self::LoginFrom(ip) => format!("lgi:{ip}"),
            Self::FailedFrom(ip) => format!("pwi:{ip}"),
            Self::PasswordAt { username, address } => format!("pwa:{username}:{address}"),
            Self::PasswordAnywhere(username) => format!("pwu:{username}"),
            Self::Denials(user) => format!("risk-denials:{user}"),
            Self::Logins(user) => format!("risk-logins:{user}"),
            Self::OfflineFailures(user) => format!("offline-failures:{user}"),
        }
    }
}

/// Sliding-window counters for rate limits, shared by every instance.
#[async_trait]
pub trait RateStore {
    /// Count one event under `key` at `now`; the number in the last `window`
    /// seconds (this one included) and the time of the oldest.
    async fn rate_hit(&self, key: &RateKey<'_>, now: i64, window: i64) -> Result<(u32, i64)>;
    /// The number of events under `key` in the last `window` seconds, and the oldest.
    async fn rate_count(&self, key: &RateKey<'_>, now: i64, window: i64) -> Result<(u32, i64)>;
    /// Forget `key` (a successful login clears its failures).
    async fn rate_reset(&self, key: &RateKey<'_>) -> Result<()>;
}

/// Key material shared by every instance on the store.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// The stored key called `name`; if there is none yet, store `candidate`
    /// and return it. Racing instances all get the one that won.
    async fn get_or_insert_key(&self, name: &str, candidate: &[u8]) -> Result<Zeroizing<Vec<u8>>>;
    /// The stored key called `name`, if there is one (never made here: for
    /// the commands that only read, `audit verify` and `migrate`).
    async fn stored_key(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>>;
}

/// Which audit events to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only events about this citizen.
    pub user_id: Option<String>,
    /// Only events by this actor.
    pub actor_id: Option<String>,
    /// Only events of this municipality.
    pub municipality: Option<String>,
    /// Not before (Unix seconds).
    pub since: Option<i64>,
    /// Not after (Unix seconds).
    pub until: Option<i64>,
    /// Only events after this id (the previous page's `next_after`).
    pub after: Option<(u64, u64)>,
    /// Entries to look at, at most.
    pub limit: usize,
}

/// A page of audit events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditPage {
    /// Matching events, oldest first.
    pub events: Vec<potvrda_proto::api::AuditEvent>,
    /// Where the next page starts, when this one was cut at `limit`.
    pub next_after: Option<String>,
}

/// The append-only audit trail.
#[async_trait]
pub trait AuditStore {
    /// Append `event` durably, linked after the heads of its chains
    /// ([`crate::audit::chain::link_event`], under the store's own
    /// serialisation, so no two events share a link), its `id` assigned here
    /// and returned; and let events older than `retain_from` (Unix seconds) go.
    async fn append_audit(
        &self,
        event: &potvrda_proto::api::AuditEvent,
        retain_from: i64,
    ) -> Result<String>;
    /// Events matching `filter`, oldest first.
    async fn audit_events(&self, filter: &AuditFilter) -> Result<AuditPage>;
    /// The heads of every chain, as last committed.
    async fn audit_heads(&self) -> Result<crate::audit::chain::Heads>;
}

/// Small records with an expiry on the server's clock (OpenID Connect
/// requests, codes, sessions, refresh-token families, the token keyring).
/// Expiry is checked against the `now` passed in, so tests move time by hand;
/// the backends also drop expired records on their own.
#[async_trait]
pub trait KvStore {
    /// Store `value` under `key` until `expires_at` (0: never).
    async fn kv_put(&self, key: &str, value: &[u8], expires_at: i64) -> Result<()>;
    /// Store only if there is no live record; `true` when stored.
    async fn kv_put_new(&self, key: &str, value: &[u8], expires_at: i64, now: i64) -> Result<bool>;
    /// The live record.
    async fn kv_get(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>>;
    /// Atomically read and remove the live record: one caller gets it.
    async fn kv_take(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>>;
    /// Atomically replace the live record if it still is `expected`; `true` when replaced.
    async fn kv_swap(
        &self,
        key: &str,
        expected: &[u8],
        value: &[u8],
        expires_at: i64,
        now: i64,
    ) -> Result<bool>;
    /// Remove.
    async fn kv_delete(&self, key: &str) -> Result<()>;
    /// Tell every instance that `topic` changed (wakes [`LoginStore::subscribe`]rs of it).
    async fn kv_announce(&self, topic: &str) -> Result<()>;
}

/// Reachability.
#[async_trait]
pub trait Health {
    /// `Ok` when the store answers.
    async fn ping(&self) -> Result<()>;
    /// Commands that failed since the store was opened.
    fn failures(&self) -> u64 {
        0
    }
    /// The connection pool's use, for a store that has one.
    fn pool(&self) -> Option<PoolUsage> {
        None
    }
}

/// A connection pool's use at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    /// Connections open.
    pub open: u32,
    /// Of those, in use.
    pub busy: u32,
    /// Connections at most.
    pub max: u32,
}

/// Everything the server needs from a store.
pub trait Store:
    UserStore
    + DeviceStore
    + LoginStore
    + GuardStore
    + RateStore
    + KeyStore
    + AuditStore
    + KvStore
    + Health
    + Send
    + Sync
{
}
impl<
    T: UserStore
        + DeviceStore
        + LoginStore
        + GuardStore
        + RateStore
        + KeyStore
        + AuditStore
        + KvStore
        + Health
        + Send
        + Sync,
> Store for T
{
}

impl AuditFilter {
    /// Whether an event passes the filter's citizen, actor and time bounds.
    pub fn matches(&self, e: &potvrda_proto::api::AuditEvent) -> bool {
        let f = self;
        f.user_id
            .as_ref()
            .is_none_or(|u| e.user_id.as_ref() == Some(u))
            && f.actor_id
                .as_ref()
                .is_none_or(|a| e.actor_id.as_ref() == Some(a))
            && f.municipality
                .as_ref()
                .is_none_or(|m| e.municipality.as_ref() == Some(m))
            && f.since.is_none_or(|s| e.at >= s)
            && f.until.is_none_or(|u| e.at <= u)
    }
}
