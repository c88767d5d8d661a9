//! Typed records: every kind of small record the domain keeps, with the
//! layout of its keys in one place ([`Kind`]) and its value type fixed by
//! the [`Record`] it is. The domain reads and writes them only through
//! [`Records`], never with a key it built itself; [`KvStore`] is the
//! backends' primitive underneath.
//!
//! The key layout is the one earlier releases wrote, byte for byte, so an
//! existing store keeps its sessions, grants, codes and profiles.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::KvStore;
use crate::error::Result;

/// Every kind of record, with the prefix of its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A pending OpenID authorization request (`oidc:req:{request id}`).
    OidcRequest,
    /// A single sign-on session (`oidc:sid:{SHA-256 of the cookie}`).
    OidcSession,
    /// An authorization code (`oidc:code:{SHA-256 of the code}`).
    OidcCode,
    /// A grant and its refresh-token family (`oidc:grant:{grant id}`).
    OidcGrant,
    /// A counter session (`desk:{SHA-256 of the cookie}`).
    DeskSession,
    /// A reset waiting for a second official (`reset-request:{user id}`).
    ResetRequest,
    /// A device addition waiting for the old phone (`addition:{request id}`).
    DeviceAddition,
    /// What the server remembers of a citizen's approvals (`login-profile:{user id}`).
    LoginProfile,
    /// A citizen's recovery code hashes (`recovery:{user id}`).
    RecoveryCodes,
    /// A device's sealed offline secret (`offline:{device id}`).
    OfflineSecret,
    /// An offline code step already used (`offline-used:{device id}:{step}`).
    OfflineStepUsed,
    /// A municipality (`municipality:{code}`).
    Municipality,
    /// The bootstrap's one superadmin was made (`first-superadmin`).
    FirstSuperadmin,
    /// The token signing keys (`token-keyring`).
    TokenKeyring,
    /// A spent `private_key_jwt` assertion (`client-jti:{client id}:{SHA-256 of its jti}`).
    ClientAssertionJti,
    /// A CIBA request (`ciba:{SHA-256 of the auth_req_id}`).
    CibaRequest,
    /// An activation code an addition released (`activation-addition:{code hash}`).
    AdditionActivation,
    /// A client in the registry (`oidc:client:{client id}`).
    OidcClient,
    /// The ids of the registry's clients (`oidc:clients`).
    OidcClientIndex,
    /// A pushed authorization request (`oidc:par:{SHA-256 of the request_uri}`).
    OidcPushedRequest,
    /// A spent DPoP proof (`dpop-jti:{SHA-256 of key thumbprint and jti}`).
    DpopJti,
    /// The citizen's consent to a client (`oidc:consent:{user id}:{client id}`).
    OidcConsent,
    /// The clients a provider session has signed in to (`oidc:sid-clients:{sid}`).
    OidcSessionClients,
    /// A pairwise subject handed out (`oidc:pairwise:{sector}:{sub}`).
    PairwiseSubject,
    /// A request waiting for the citizen's consent (`oidc:consent-req:{id}`).
    OidcConsentRequest,
}

impl Kind {
    /// The key prefix, with its separator when ids follow.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::OidcRequest => "oidc:req:",
            Self::OidcSession => "oidc:sid:",
            Self::OidcCode => "oidc:code:",
            Self::OidcGrant => "oidc:grant:",
            Self::DeskSession => "desk:",
            Self::ResetRequest => "reset-request:",
            Self::DeviceAddition => "addition:",
            Self::LoginProfile => "login-profile:",
            Self::RecoveryCodes => "recovery:",
            Self::OfflineSecret => "offline:",
            Self::OfflineStepUsed => "offline-used:",
            Self::Municipality => "municipality:",
            Self::FirstSuperadmin => "first-superadmin",
            Self::TokenKeyring => "token-keyring",
            Self::ClientAssertionJti => "client-jti:",
            Self::CibaRequest => "ciba:",
            Self::AdditionActivation => "activation-addition:",
            Self::OidcClient => "oidc:client:",
            Self::OidcClientIndex => "oidc:clients",
            Self::OidcPushedRequest => "oidc:par:",
            Self::DpopJti => "dpop-jti:",
            Self::OidcConsent => "oidc:consent:",
            Self::OidcSessionClients => "oidc:sid-clients:",
            Self::PairwiseSubject => "oidc:pairwise:",
            Self::OidcConsentRequest => "oidc:consent-req:",
        }
    }
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 25] = [
        Self::OidcRequest,
        Self::OidcSession,
        Self::OidcCode,
        Self::OidcGrant,
        Self::DeskSession,
        Self::ResetRequest,
        Self::DeviceAddition,
        Self::LoginProfile,
        Self::RecoveryCodes,
        Self::OfflineSecret,
        Self::OfflineStepUsed,
        Self::Municipality,
        Self::FirstSuperadmin,
        Self::TokenKeyring,
        Self::ClientAssertionJti,
        Self::CibaRequest,
        Self::AdditionActivation,
        Self::OidcClient,
        Self::OidcClientIndex,
        Self::OidcPushedRequest,
        Self::DpopJti,
        Self::OidcConsent,
        Self::OidcSessionClients,
        Self::PairwiseSubject,
        Self::OidcConsentRequest,
    ];

    /// Whether losing a record of this kind on a crash or a failover would
    /// lose something acknowledged that outlives a login: such records go to
    /// the system of record (PostgreSQL) where there is one. The others live
    /// for a login's minutes, belong with its challenge (Redis), and a lost
    /// one costs a citizen a new attempt, never a security property.
    /// Spent nonces (`jti`s of client assertions and DPoP proofs, offline
    /// code steps) are lasting: a lost one would let a replay through.
    pub fn lasting(self) -> bool {
        match self {
            Self::OidcRequest
            | Self::OidcCode
            | Self::DeviceAddition
            | Self::CibaRequest
            | Self::OidcPushedRequest
            | Self::OidcConsentRequest => false,
            Self::OidcSession
            | Self::OidcGrant
            | Self::DeskSession
            | Self::ResetRequest
            | Self::LoginProfile
            | Self::RecoveryCodes
            | Self::OfflineSecret
            | Self::OfflineStepUsed
            | Self::Municipality
            | Self::FirstSuperadmin
            | Self::TokenKeyring
            | Self::ClientAssertionJti
            | Self::AdditionActivation
            | Self::OidcClient
            | Self::OidcClientIndex
            | Self::DpopJti
            | Self::OidcConsent
            | Self::OidcSessionClients
            | Self::PairwiseSubject => true,
        }
    }

    /// The kind a stored key belongs to (the longest prefix it starts with).
    pub fn of_key(key: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .filter(|k| key.starts_with(k.prefix()))
            .max_by_key(|k| k.prefix().len())
    }
}

/// What names one record of a kind.
pub trait RecordId: Sync {
    /// The part of the key after the kind's prefix.
    fn key_part(&self) -> String;
}

impl RecordId for str {
    fn key_part(&self) -> String {
        self.to_owned()
    }
}

impl RecordId for String {
    fn key_part(&self) -> String {
        self.clone()
    }
}

/// Records named by a typed id: the id's text.
macro_rules! typed_record_ids {
    ($($id:ty),*) => {
        $(impl RecordId for $id {
            fn key_part(&self) -> String {
                self.as_str().to_owned()
            }
        })*
    };
}
typed_record_ids!(
    super::UserId,
    super::DeviceId,
    super::LoginId,
    super::ChallengeId,
    super::ClientId
);

/// The one record of a kind that has no id.
impl RecordId for () {
    fn key_part(&self) -> String {
        String::new()
    }
}

/// A device and a time step of its offline code.
#[derive(Debug, Clone)]
pub struct DeviceStep {
    /// The device.
    pub device_id: super::DeviceId,
    /// The step (`time / 30 s`).
    pub step: u64,
}

impl RecordId for DeviceStep {
    fn key_part(&self) -> String {
        format!("{}:{}", self.device_id, self.step)
    }
}

/// One kind of record: its key prefix, its id and its stored form.
pub trait Record: Sized + Send + Sync {
    /// Where records of this type live.
    const KIND: Kind;
    /// What names one of them.
    type Id: RecordId + ?Sized;
    /// The stored bytes.
    fn encode(&self) -> Result<Vec<u8>>;
    /// Back from the stored bytes.
    fn decode(raw: &[u8]) -> Result<Self>;
}

/// A record kept as JSON (most of them).
pub trait JsonRecord: Serialize + DeserializeOwned + Send + Sync {
    /// Where records of this type live.
    const KIND: Kind;
    /// What names one of them.
    type Id: RecordId + ?Sized;
}

impl<T: JsonRecord> Record for T {
    const KIND: Kind = <T as JsonRecord>::KIND;
    type Id = <T as JsonRecord>::Id;
    fn encode(&self) -> Result<Vec<u8>> {
        Ok(serde_json::to_vec(self)?)
    }
    fn decode(raw: &[u8]) -> Result<Self> {
        Ok(serde_json::from_slice(raw)?)
    }
}

/// A record as read, with the exact bytes a compare-and-swap compares.
#[derive(Debug)]
pub struct Stored<R> {
    /// The record.
    pub value: R,
    raw: Vec<u8>,
}

/// The repository of records of type `R`.
pub struct Records<'s, R> {
    kv: &'s (dyn KvStore + Send + Sync),
    kind: PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for Records<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Records")
    }
}

impl<'s, R: Record> Records<'s, R> {
    /// The records of type `R` in `kv`.
    pub fn new(kv: &'s (dyn KvStore + Send + Sync)) -> Self {
        Self {
            kv,
            kind: PhantomData,
        }
    }

    fn key(id: &R::Id) -> String {
        format!("{}{}", R::KIND.prefix(), id.key_part())
    }

    /// Store `value` until `expires_at` (0: never).
    pub async fn put(&self, id: &R::Id, value: &R, expires_at: i64) -> Result<()> {
        self.kv
            .kv_put(&Self::key(id), &value.encode()?, expires_at)
            .await
    }

    /// Store only if there is no live record; `true` when stored (the
    /// single-use operations: a used offline step, the first superadmin).
    pub async fn put_new(&self, id: &R::Id, value: &R, expires_at: i64, now: i64) -> Result<bool> {
        self.kv
            .kv_put_new(&Self::key(id), &value.encode()?, expires_at, now)
            .await
    }

    /// The live record.
    pub async fn get(&self, id: &R::Id, now: i64) -> Result<Option<R>> {
        Ok(self.read(id, now).await?.map(|s| s.value))
    }

    /// The live record, or `None` when it does not decode (a record the
    /// next write replaces).
    pub async fn get_readable(&self, id: &R::Id, now: i64) -> Result<Option<R>> {
        let raw = self.kv.kv_get(&Self::key(id), now).await?;
        Ok(raw.and_then(|r| R::decode(&r).ok()))
    }

    /// The live record with its stored bytes, for [`Records::swap`].
    pub async fn read(&self, id: &R::Id, now: i64) -> Result<Option<Stored<R>>> {
        let Some(raw) = self.kv.kv_get(&Self::key(id), now).await? else {
            return Ok(None);
        };
        Ok(Some(Stored {
            value: R::decode(&raw)?,
            raw,
        }))
    }

    /// Atomically read and remove the live record: one caller gets it.
    pub async fn take(&self, id: &R::Id, now: i64) -> Result<Option<R>> {
        let raw = self.kv.kv_take(&Self::key(id), now).await?;
        raw.map(|r| R::decode(&r)).transpose()
    }

    /// Replace the record if it is still what `old` read; `true` when replaced.
    pub async fn swap(
        &self,
        id: &R::Id,
        old: &Stored<R>,
        new: &R,
        expires_at: i64,
        now: i64,
    ) -> Result<bool> {
        self.kv
            .kv_swap(&Self::key(id), &old.raw, &new.encode()?, expires_at, now)
            .await
    }

    /// Remove.
    pub async fn delete(&self, id: &R::Id) -> Result<()> {
        self.kv.kv_delete(&Self::key(id)).await
    }

    /// The topic on which changes of this kind are announced
    /// (`__{prefix}`), for [`super::LoginStore::subscribe`].
    pub fn topic() -> String {
        format!("__{}", R::KIND.prefix())
    }

    /// Tell every instance that records of this kind changed.
    pub async fn announce(&self) -> Result<()> {
        self.kv.kv_announce(&Self::topic()).await
    }
}

/// A marker record: present or not (a used offline step, the first
/// superadmin). Stored as `1`, as earlier releases did.
#[derive(Debug, Clone, Copy)]
pub struct Marker<const K: u8>;

/// Marker kinds.
pub mod marker {
    /// `offline-used:{device}:{step}`.
    pub const OFFLINE_STEP: u8 = 0;
    /// `first-superadmin`.
    pub const FIRST_SUPERADMIN: u8 = 1;
    /// `client-jti:{client}:{jti hash}`.
    pub const CLIENT_JTI: u8 = 2;
    /// `activation-addition:{code hash}`.
    pub const ADDITION_ACTIVATION: u8 = 3;
    /// `dpop-jti:{hash}`.
    pub const DPOP_JTI: u8 = 4;
}

/// An offline code step that was used.
pub type OfflineStepUsed = Marker<{ marker::OFFLINE_STEP }>;
/// The bootstrap made its superadmin.
pub type FirstSuperadmin = Marker<{ marker::FIRST_SUPERADMIN }>;
/// A client assertion's `jti` that was spent.
pub type ClientJtiSpent = Marker<{ marker::CLIENT_JTI }>;
/// An activation code that an addition released (not the counter).
pub type AdditionActivation = Marker<{ marker::ADDITION_ACTIVATION }>;
/// A DPoP proof's `jti` that was spent.
pub type DpopJtiSpent = Marker<{ marker::DPOP_JTI }>;

macro_rules! marker_record {
    ($t:ty, $kind:expr, $id:ty) => {
        impl Record for $t {
            const KIND: Kind = $kind;
            type Id = $id;
            fn encode(&self) -> Result<Vec<u8>> {
                Ok(b"1".to_vec())
            }
            fn decode(_: &[u8]) -> Result<Self> {
                Ok(Marker)
            }
        }
    };
}
marker_record!(OfflineStepUsed, Kind::OfflineStepUsed, DeviceStep);
marker_record!(FirstSuperadmin, Kind::FirstSuperadmin, ());
marker_record!(ClientJtiSpent, Kind::ClientAssertionJti, str);
marker_record!(AdditionActivation, Kind::AdditionActivation, str);
marker_record!(DpopJtiSpent, Kind::DpopJti, str);
