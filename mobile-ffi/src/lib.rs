//! `potvrda-mobile-ffi`: [`potvrda_mobile_core`] for Kotlin, Swift and
//! Python through uniffi (proc-macros, no UDL).
//!
//! One object, [`Device`], does what the app needs: enroll from the printed
//! sheet, take challenges from a push or a pull, show them, approve with the
//! number, deny, report fraud, give the offline code. The app supplies three
//! things: the key ([`Keystore`]: Android Keystore / StrongBox, the iOS
//! Secure Enclave, or the [`new_software_keystore`] sealed under a platform
//! key), the citizen's confirmation ([`UserVerification`]: biometrics, or
//! [`pin_verification`]), and the network: every exchange is an
//! [`HttpRequest`] the app sends with its own HTTP stack and an
//! [`HttpResponse`] it hands back. Time is the phone's clock.
//!
//! This crate allows `unsafe` only because the scaffolding uniffi generates
//! needs it (`extern "C"` functions); there is none written by hand.

use std::sync::{Arc, Mutex, MutexGuard};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use p256::ecdsa::signature::Verifier as _;
use p256::pkcs8::DecodePublicKey as _;
use potvrda_mobile_core::device::{self, Enrolled, PendingEnrollment, PushSetup};
use potvrda_mobile_core::protocol::Pushed;
use potvrda_mobile_core::transport::{Request, Response};
use potvrda_mobile_core::{
    Challenge, Inbox, PushKeyPair, Shown, Signer, SoftwareSigner, UserVerifier,
};
use potvrda_proto::api::{LoginStatus, PushKeys, PushStatus, PushSubscription};
use potvrda_proto::jose::{Decision, EcJwk, WithdrawalReason};

pub mod error;

pub use error::{ApiError, Result};

uniffi::setup_scaffolding!();

/// The device key, held by the platform (P-256, not exportable).
#[uniffi::export(with_foreign)]
pub trait Keystore: Send + Sync {
    /// The public key: SubjectPublicKeyInfo DER (Android
    /// `PublicKey.getEncoded()`) or the 65-byte uncompressed point (iOS
    /// `SecKeyCopyExternalRepresentation`).
    fn public_key(&self) -> Result<Vec<u8>>;
    /// ECDSA P-256 with SHA-256 over `message` (Android `SHA256withECDSA`,
    /// iOS `.ecdsaSignatureMessageX962SHA256`): DER or the 64-byte `r || s`.
    fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>>;
    /// Where the key lives, reported in every approval (protocol 3):
    /// `Hardware` only when the platform says its secure hardware holds it
    /// (Android `KeyInfo.getSecurityLevel()` TEE or StrongBox; iOS a Secure
    /// Enclave key).
    fn protection(&self) -> KeyProtection;
}

/// Where the device key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum KeyProtection {
    /// In the app's storage.
    Software,
    /// In the phone's secure hardware, not exportable.
    Hardware,
}

/// How the citizen confirmed before an approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Verification {
    /// A biometric prompt that does not say which biometric.
    Biometric,
    /// A fingerprint.
    Fingerprint,
    /// A face.
    Face,
    /// The app's own PIN, or the phone's screen lock.
    AppPin,
    /// The core's six-digit PIN: what [`pin_verification`] reports.
    CorePin,
}

/// The citizen's confirmation before every approval and fraud report.
#[uniffi::export(with_foreign)]
pub trait UserVerification: Send + Sync {
    /// Ask the citizen (biometric prompt or PIN pad) with `reason` on
    /// screen; `true` only when they just confirmed. Called on the thread
    /// that called [`Device::approve`] or [`Device::report_fraud`]: call
    /// those off the UI thread and block here until the prompt answers.
    fn confirm(&self, reason: String) -> bool;
    /// How [`confirm`](UserVerification::confirm) asks, reported in the
    /// approval (protocol 3; the core's [`pin_verification`] reports its own PIN).
    fn method(&self) -> Verification;
}

/// The app's PIN pad, for [`pin_verification`].
#[uniffi::export(with_foreign)]
pub trait PinPad: Send + Sync {
    /// The six digits typed, or `None` when the citizen cancelled.
    fn ask(&self, reason: String, attempts_left: u32) -> Option<String>;
}

/// Where the app keeps the PIN's state (a JSON string: an Argon2id hash
/// and the count of wrong attempts; keep it in encrypted preferences).
#[uniffi::export(with_foreign)]
pub trait PinStorage: Send + Sync {
    /// What [`save`](PinStorage::save) was last given, if anything.
    fn load(&self) -> Option<String>;
    /// Keep `state`, replacing the last.
    fn save(&self, state: String) -> Result<()>;
}

/// An HTTP header.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpHeader {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
}

/// A request for the app to send as is.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// Headers to set.
    pub headers: Vec<HttpHeader>,
    /// Body (empty: none).
    pub body: Vec<u8>,
}

/// What the server answered.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpResponse {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: Vec<u8>,
}

/// How challenges reach the device.
#[derive(Debug, Clone, uniffi::Enum)]
pub enum PushMode {
    /// No push: the app pulls ([`Device::pending_request`]) when opened.
    Pull,
    /// A Web Push endpoint delivering raw RFC 8291 messages (UnifiedPush
    /// distributors): the core makes the keys and decrypts
    /// ([`Device::receive_push`]).
    WebPush {
        /// The endpoint URL.
        endpoint: String,
    },
    /// A subscription whose keys the platform holds and whose messages it
    /// decrypts ([`Device::receive_decrypted_push`]).
    PlatformDecrypted {
        /// The endpoint URL.
        endpoint: String,
        /// The subscription's public key, base64url.
        p256dh: String,
        /// Its auth secret, base64url.
        auth: String,
    },
}

impl From<PushMode> for PushSetup {
    fn from(push: PushMode) -> Self {
        match push {
            PushMode::Pull => Self::Pull,
            PushMode::WebPush { endpoint } => Self::Raw { endpoint },
            PushMode::PlatformDecrypted {
                endpoint,
                p256dh,
                auth,
            } => Self::Decrypted(PushSubscription {
                payload: None,
                locale: None,
                endpoint,
                keys: PushKeys { p256dh, auth },
            }),
        }
    }
}

/// What a push brought.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum PushEvent {
    /// A login to confirm: show it.
    Login {
        /// What the approval screen shows.
        login: PendingLogin,
    },
    /// A login that is over: close its prompt (issue 15).
    Withdrawn {
        /// The login's id, as in [`PendingLogin::id`].
        id: String,
        /// Why.
        reason: Withdrawn,
    },
}

/// Why a prompt was withdrawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Withdrawn {
    /// Answered on another device, or with a code.
    Answered,
    /// A newer login replaced it.
    Superseded,
    /// Nobody answered in time.
    Expired,
}

/// Whether pushes reach the device, as the server sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PushReachability {
    /// Its subscription is in use.
    Active,
    /// The push service said the subscription is gone: subscribe again.
    Gone,
    /// No subscription: the app pulls.
    PullOnly,
}

impl From<PushStatus> for PushReachability {
    fn from(status: PushStatus) -> Self {
        match status {
            PushStatus::Active => Self::Active,
            PushStatus::Gone => Self::Gone,
            PushStatus::None => Self::PullOnly,
        }
    }
}

/// A login waiting for the citizen: what the approval screen shows.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PendingLogin {
    /// Challenge id, for [`Device::approve`] and friends.
    pub id: String,
    /// The account logging in.
    pub username: String,
    /// The service the citizen is logging into, in the device's language
    /// (the portal's name when the login names none).
    pub service: String,
    /// The browser's address, as the portal saw it.
    pub ip: Option<String>,
    /// The browser's user agent.
    pub user_agent: Option<String>,
    /// What the consumption device shows too (a CIBA request's
    /// `binding_message`): show it beside the service, for the citizen to compare.
    pub binding_message: Option<String>,
    /// Unix seconds after which it can no longer be answered.
    pub expires_at: i64,
    /// A risky login asks for the login screen's code of this many digits
    /// ([`Device::approve_code`]) instead of the two-digit number.
    pub code_digits: Option<u8>,
    /// Why the login looks risky, to show the citizen ("first login from
    /// this address", …), from the signed challenge.
    pub notices: Vec<String>,
}

/// A finished enrollment.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Enrollment {
    /// The device id the server gave.
    pub device_id: String,
    /// The account's username.
    pub username: String,
    /// With the account's first device: ten recovery codes to show once.
    pub recovery_codes: Vec<String>,
}

/// What the server made of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Outcome {
    /// The login went through.
    Approved,
    /// The login was refused (denied or reported).
    Denied,
}

/// A software key for tests, the virtual phone and platforms without a
/// hardware keystore, and its sealed form to store.
#[derive(uniffi::Record)]
pub struct SoftwareKey {
    /// The key, to pass to [`Device::new`].
    pub keystore: Arc<dyn Keystore>,
    /// The key sealed (AES-256-GCM) under the platform's wrapping key.
    pub sealed: String,
}

/// A fresh software key sealed under `wrapping_key` (32 bytes the platform
/// keystore keeps or unwraps).
#[uniffi::export]
pub fn new_software_keystore(wrapping_key: Vec<u8>) -> Result<SoftwareKey> {
    let signer = SoftwareSigner::generate();
    let sealed = signer.seal(&wrapping(&wrapping_key)?)?;
    Ok(SoftwareKey {
        keystore: Arc::new(SoftwareKeystore(signer)),
        sealed,
    })
}

/// Open a key [`new_software_keystore`] sealed.
#[uniffi::export]
pub fn open_software_keystore(sealed: String, wrapping_key: Vec<u8>) -> Result<Arc<dyn Keystore>> {
    let signer = SoftwareSigner::unseal(&sealed, &wrapping(&wrapping_key)?)?;
    Ok(Arc::new(SoftwareKeystore(signer)))
}

/// A six-digit PIN as the citizen's confirmation, for platforms without
/// biometrics: five wrong PINs in a row lock it (then enroll again).
#[uniffi::export]
pub fn pin_verification(
    pad: Arc<dyn PinPad>,
    storage: Arc<dyn PinStorage>,
) -> Arc<dyn UserVerification> {
    Arc::new(PinGate(potvrda_mobile_core::PinVerifier::new(
        Arc::new(Pad(pad)),
        Arc::new(Storage(storage)),
    )))
}

/// Set (or replace) the PIN: six digits, not a trivial sequence.
#[uniffi::export]
pub fn set_pin(storage: Arc<dyn PinStorage>, pin: String) -> Result<()> {
    Ok(potvrda_mobile_core::PinVerifier::set_pin(
        &Storage(storage),
        &pin,
    )?)
}

/// Decrypt an RFC 8291 (`aes128gcm`) message with a subscription's private
/// key and auth secret (base64url): what [`Device::receive_push`] does
/// first; exported for checking against the RFC's vector.
#[uniffi::export]
pub fn decrypt_web_push(
    private_key: String,
    auth_secret: String,
    body: Vec<u8>,
) -> Result<Vec<u8>> {
    Ok(PushKeyPair::from_b64(&private_key, &auth_secret)?.decrypt(&body)?)
}

/// The phone: one per enrolled account.
#[derive(uniffi::Object)]
pub struct Device {
    signer: KeystoreSigner,
    verifier: Arc<dyn UserVerification>,
    development: bool,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    enrolling: Option<PendingEnrollment>,
    changing_push: Option<device::PendingPushChange>,
    enrolled: Option<Enrolled>,
    inbox: Inbox,
}

#[uniffi::export]
impl Device {
    /// A device not yet enrolled, with its key and the citizen's
    /// confirmation. `development` accepts an `http` server on a loopback
    /// address (a development build talking to a local server).
    #[uniffi::constructor]
    pub fn new(
        keystore: Arc<dyn Keystore>,
        verification: Arc<dyn UserVerification>,
        development: bool,
    ) -> Result<Arc<Self>> {
        Ok(Arc::new(Self {
            signer: KeystoreSigner::new(keystore)?,
            verifier: verification,
            development,
            inner: Mutex::default(),
        }))
    }

    /// A device enrolled earlier, from what [`state`](Self::state) gave.
    #[uniffi::constructor]
    pub fn restore(
        state: String,
        keystore: Arc<dyn Keystore>,
        verification: Arc<dyn UserVerification>,
        development: bool,
    ) -> Result<Arc<Self>> {
        let enrolled: Enrolled = serde_json::from_str(&state).map_err(|_| ApiError::Internal {
            reason: "the saved state does not load".into(),
        })?;
        let device = Self::new(keystore, verification, development)?;
        {
            let mut inner = device.lock();
            inner.inbox.set_locale(enrolled.locale);
            inner.enrolled = Some(enrolled);
        }
        Ok(device)
    }

    /// Speak `tag` from now on (`sr-Cyrl`, `sr-Latn`, `en` or `hu`; issue
    /// 16): the confirmation prompt and a risky login's notices. The app
    /// passes the phone's language, or the citizen's choice; it is kept in
    /// [`state`](Self::state).
    pub fn set_locale(&self, tag: String) -> Result<()> {
        let locale = tag
            .parse::<potvrda_i18n::Locale>()
            .map_err(|_| ApiError::UnknownLocale { tag })?;
        let mut inner = self.lock();
        inner.inbox.set_locale(locale);
        if let Some(enrolled) = inner.enrolled.as_mut() {
            enrolled.locale = locale;
        }
        Ok(())
    }

    /// The enrollment request for a scanned sheet (`potvrda://activate?…`),
    /// or for a code typed by hand with `server` given. Send it, then give
    /// the answer to [`finish_enrollment`](Self::finish_enrollment).
    pub fn enrollment_request(
        &self,
        activation: String,
        server: Option<String>,
        name: String,
        platform: String,
        push: PushMode,
    ) -> Result<HttpRequest> {
        let activation = match server {
            None => potvrda_mobile_core::parse_activation_uri(&activation, self.development)?,
            Some(server) => {
                potvrda_mobile_core::activation_from_code(&server, &activation, self.development)?
            }
        };
        let (pending, request) = device::begin_enrollment(
            &activation,
            &self.signer,
            &name,
            &platform,
            push.into(),
            now(),
        )?;
        self.lock().enrolling = Some(pending);
        Ok(request.into())
    }

    /// Read the answer to the enrollment request; then keep [`state`](Self::state).
    pub fn finish_enrollment(&self, response: HttpResponse) -> Result<Enrollment> {
        let mut inner = self.lock();
        let pending = inner.enrolling.take().ok_or(ApiError::NotEnrolled)?;
        let done = pending.finish(&response.into())?;
        let enrollment = Enrollment {
            device_id: done.device.device_id.clone(),
            username: done.device.username.clone(),
            recovery_codes: done.recovery_codes.unwrap_or_default(),
        };
        let mut device = done.device;
        device.locale = inner.inbox.locale();
        inner.enrolled = Some(device);
        Ok(enrollment)
    }

    /// What to keep between runs (JSON; it holds the push keys and the
    /// offline secret: store it encrypted). The device key is not in it.
    pub fn state(&self) -> Result<String> {
        let inner = self.lock();
        let enrolled = inner.enrolled.as_ref().ok_or(ApiError::NotEnrolled)?;
        serde_json::to_string(enrolled).map_err(|e| ApiError::Internal {
            reason: e.to_string(),
        })
    }

    /// The device id, once enrolled.
    pub fn device_id(&self) -> Option<String> {
        self.lock().enrolled.as_ref().map(|e| e.device_id.clone())
    }

    /// The request that asks the server whether pushes still reach this
    /// device; read its answer with [`read_push_status`](Self::read_push_status).
    pub fn push_status_request(&self) -> Result<HttpRequest> {
        let inner = self.lock();
        let enrolled = inner.enrolled.as_ref().ok_or(ApiError::NotEnrolled)?;
        Ok(enrolled.info_request(&self.signer, now())?.into())
    }

    /// The server's view of this device's push subscription. On `Gone`
    /// (the push service answered 404/410), subscribe again with
    /// [`push_request`](Self::push_request).
    pub fn read_push_status(&self, response: HttpResponse) -> Result<PushReachability> {
        let info: potvrda_proto::api::DeviceInfo = Response::from(response).json()?;
        Ok(info.push.into())
    }

    /// Register a new push subscription (the distributor or the platform
    /// gave a new endpoint), or none with `PushMode::Pull` (protocol 3, issue 15).
    /// Send it, then give the answer to [`finish_push_change`](Self::finish_push_change)
    /// and keep the new [`state`](Self::state).
    pub fn push_request(&self, push: PushMode) -> Result<HttpRequest> {
        let mut inner = self.lock();
        let enrolled = inner.enrolled.as_ref().ok_or(ApiError::NotEnrolled)?;
        let (pending, request) = enrolled.push_request(&self.signer, push.into(), now())?;
        inner.changing_push = Some(pending);
        Ok(request.into())
    }

    /// Read the answer to [`push_request`](Self::push_request): the new push
    /// keys are kept (save [`state`](Self::state)); what the server now says.
    pub fn finish_push_change(&self, response: HttpResponse) -> Result<PushReachability> {
        let mut inner = self.lock();
        let pending = inner.changing_push.take().ok_or(ApiError::NotEnrolled)?;
        let enrolled = inner.enrolled.as_mut().ok_or(ApiError::NotEnrolled)?;
        let info = pending.finish(enrolled, &response.into())?;
        Ok(info.push.into())
    }

    /// The request that pulls the pending logins.
    pub fn pending_request(&self) -> Result<HttpRequest> {
        let inner = self.lock();
        let enrolled = inner.enrolled.as_ref().ok_or(ApiError::NotEnrolled)?;
        Ok(enrolled.pending_request(&self.signer, now())?.into())
    }

    /// Read the pulled logins (each verified), and hold them for answering.
    pub fn receive_pending(&self, response: HttpResponse) -> Result<Vec<PendingLogin>> {
        let mut inner = self.lock();
        let enrolled = inner.enrolled.as_ref().ok_or(ApiError::NotEnrolled)?;
        let challenges = enrolled.read_pending(&response.into(), now())?;
        Ok(inner
            .inbox
            .replace(challenges)
            .into_iter()
            .map(view)
            .collect())
    }

    /// A raw RFC 8291 push message (UnifiedPush and other Web Push
    /// distributors): decrypted, verified, held for answering.
    pub fn receive_push(&self, body: Vec<u8>) -> Result<PushEvent> {
        let mut inner = self.lock();
        let enrolled = inner.enrolled.as_ref().ok_or(ApiError::NotEnrolled)?;
        let pushed = enrolled.open_pushed(&body, now())?;
        Ok(event(&mut inner.inbox, pushed))
    }

    /// A push the platform already decrypted (its text): verified, held.
    pub fn receive_decrypted_push(&self, text: String) -> Result<PushEvent> {
        let mut inner = self.lock();
        let enrolled = inner.enrolled.as_ref().ok_or(ApiError::NotEnrolled)?;
        let pushed = enrolled.open_pushed_text(&text, now())?;
        Ok(event(&mut inner.inbox, pushed))
    }

    /// The logins held and not yet expired.
    pub fn pending_logins(&self) -> Vec<PendingLogin> {
        let mut inner = self.lock();
        inner.inbox.pending(now()).into_iter().map(view).collect()
    }

    /// Tell the server the login is on screen (its latency metrics).
    pub fn seen_request(&self, id: String) -> Result<HttpRequest> {
        let inner = self.lock();
        let enrolled = inner.enrolled.as_ref().ok_or(ApiError::NotEnrolled)?;
        Ok(enrolled.seen_request(&self.signer, &id, now())?.into())
    }

    /// Approve with the number the login screen shows: asks the citizen
    /// to confirm first; nothing is signed if they do not.
    pub fn approve(&self, id: String, number: u8) -> Result<HttpRequest> {
        self.answer(&id, Decision::Approve, Some(number))
    }

    /// Approve a risky login with the code the login screen shows
    /// (`code_digits` digits): asks the citizen to confirm first.
    pub fn approve_code(&self, id: String, code: String) -> Result<HttpRequest> {
        let (enrolled, challenge) = self.held(&id)?;
        let verifier = Confirm(Arc::clone(&self.verifier));
        Ok(enrolled
            .answer_code_request(&self.signer, &verifier, &challenge, &code, now())?
            .into())
    }

    /// Refuse the login (no confirmation needed).
    pub fn deny(&self, id: String) -> Result<HttpRequest> {
        self.answer(&id, Decision::Deny, None)
    }

    /// "This was not me": refuse and report (asks the citizen to confirm).
    pub fn report_fraud(&self, id: String) -> Result<HttpRequest> {
        self.answer(&id, Decision::Fraud, None)
    }

    /// Read the server's answer to an approve, deny or report; the login
    /// is no longer held.
    pub fn answer_outcome(&self, id: String, response: HttpResponse) -> Result<Outcome> {
        let status = Enrolled::read_answer(&response.into())?;
        self.lock().inbox.answered(&id);
        Ok(match status {
            LoginStatus::Approved => Outcome::Approved,
            _ => Outcome::Denied,
        })
    }

    /// The offline code now, when the server gave this device a secret.
    pub fn offline_code(&self) -> Result<Option<String>> {
        let inner = self.lock();
        let enrolled = inner.enrolled.as_ref().ok_or(ApiError::NotEnrolled)?;
        Ok(enrolled.offline_code(now())?)
    }
}

impl Device {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data, still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Copies of the enrollment and the held challenge `id`, with the lock
    /// released before the citizen is asked: the prompt can stay open for a
    /// minute, and a push arriving meanwhile (or the app's own prompt code)
    /// must not wait for it.
    fn held(&self, id: &str) -> Result<(Enrolled, Challenge)> {
        let inner = self.lock();
        let enrolled = inner.enrolled.clone().ok_or(ApiError::NotEnrolled)?;
        let challenge = inner
            .inbox
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::InvalidChallenge {
                reason: "no such pending login".into(),
            })?;
        Ok((enrolled, challenge))
    }

    fn answer(&self, id: &str, decision: Decision, number: Option<u8>) -> Result<HttpRequest> {
        let (enrolled, challenge) = self.held(id)?;
        let verifier = Confirm(Arc::clone(&self.verifier));
        Ok(enrolled
            .answer_request(&self.signer, &verifier, &challenge, decision, number, now())?
            .into())
    }
}

/// What a push did to the held logins.
fn event(inbox: &mut Inbox, pushed: Pushed) -> PushEvent {
    match pushed {
        Pushed::Challenge(c) => PushEvent::Login {
            login: view(inbox.hold(*c)),
        },
        Pushed::Withdrawn(w) => {
            inbox.answered(&w.cid);
            PushEvent::Withdrawn {
                id: w.cid,
                reason: match w.reason {
                    WithdrawalReason::Answered => Withdrawn::Answered,
                    WithdrawalReason::Superseded => Withdrawn::Superseded,
                    WithdrawalReason::Expired => Withdrawn::Expired,
                },
            }
        }
    }
}

fn view(s: Shown) -> PendingLogin {
    PendingLogin {
        id: s.id,
        username: s.username,
        service: s.service,
        ip: s.ip,
        user_agent: s.user_agent,
        binding_message: s.binding_message,
        expires_at: s.expires_at,
        code_digits: s.code_digits,
        notices: s.notices,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn wrapping(key: &[u8]) -> Result<[u8; 32]> {
    key.try_into().map_err(|_| ApiError::Keystore {
        reason: "the wrapping key is 32 bytes".into(),
    })
}

impl From<Request> for HttpRequest {
    fn from(r: Request) -> Self {
        Self {
            method: r.method.to_owned(),
            url: r.url,
            headers: r
                .headers
                .into_iter()
                .map(|(name, value)| HttpHeader { name, value })
                .collect(),
            body: r.body,
        }
    }
}

impl From<HttpResponse> for Response {
    fn from(r: HttpResponse) -> Self {
        Self {
            status: r.status,
            body: r.body,
        }
    }
}

/// The platform keystore as the core's [`Signer`]: the public key read
/// once, and every signature checked against it before it is used (a
/// keystore that signs with another key, or garbage, is caught here).
struct KeystoreSigner {
    keystore: Arc<dyn Keystore>,
    public: p256::ecdsa::VerifyingKey,
    jwk: EcJwk,
}

impl KeystoreSigner {
    fn new(keystore: Arc<dyn Keystore>) -> Result<Self> {
        let bytes = keystore.public_key()?;
        let public = p256::PublicKey::from_public_key_der(&bytes)
            .or_else(|_| p256::PublicKey::from_sec1_bytes(&bytes))
            .map_err(|_| ApiError::Keystore {
                reason: "the public key is neither P-256 SPKI DER nor a SEC1 point".into(),
            })?;
        Ok(Self {
            keystore,
            jwk: potvrda_mobile_core::signer::jwk_of(&public),
            public: public.into(),
        })
    }
}

impl Signer for KeystoreSigner {
    fn public_jwk(&self) -> EcJwk {
        self.jwk.clone()
    }

    fn sign(&self, message: &[u8]) -> potvrda_mobile_core::Result<[u8; 64]> {
        let refused = |_| potvrda_mobile_core::Error::InvalidKey("the keystore did not sign");
        let raw = self.keystore.sign(message.to_vec()).map_err(refused)?;
        let sig = p256::ecdsa::Signature::from_der(&raw)
            .or_else(|_| p256::ecdsa::Signature::from_slice(&raw))
            .map_err(|_| potvrda_mobile_core::Error::InvalidKey("not an ECDSA P-256 signature"))?;
        let sig = sig.normalize_s().unwrap_or(sig);
        self.public.verify(message, &sig).map_err(|_| {
            potvrda_mobile_core::Error::InvalidKey("the keystore signed with another key")
        })?;
        Ok(sig.to_bytes().into())
    }

    fn protection(&self) -> potvrda_proto::jose::KeyProtection {
        match self.keystore.protection() {
            KeyProtection::Hardware => potvrda_proto::jose::KeyProtection::Hardware,
            KeyProtection::Software => potvrda_proto::jose::KeyProtection::Software,
        }
    }
}

/// [`SoftwareSigner`] offered as a [`Keystore`].
struct SoftwareKeystore(SoftwareSigner);

impl Keystore for SoftwareKeystore {
    fn public_key(&self) -> Result<Vec<u8>> {
        let jwk = self.0.public_jwk();
        let mut point = vec![4u8];
        for c in [&jwk.x, &jwk.y] {
            point.extend(URL_SAFE_NO_PAD.decode(c).map_err(|_| ApiError::Keystore {
                reason: "own key".into(),
            })?);
        }
        Ok(point)
    }

    fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>> {
        Ok(self.0.sign(&message)?.to_vec())
    }

    fn protection(&self) -> KeyProtection {
        KeyProtection::Software
    }
}

struct Confirm(Arc<dyn UserVerification>);

impl UserVerifier for Confirm {
    fn verify(&self, reason: &str) -> potvrda_mobile_core::Result<bool> {
        Ok(self.0.confirm(reason.to_owned()))
    }

    fn method(&self) -> Option<potvrda_proto::jose::Verification> {
        use potvrda_proto::jose::Verification as V;
        Some(match self.0.method() {
            Verification::Biometric => V::Biometric,
            Verification::Fingerprint => V::Fingerprint,
            Verification::Face => V::Face,
            Verification::AppPin => V::AppPin,
            Verification::CorePin => V::CorePin,
        })
    }
}

struct PinGate(potvrda_mobile_core::PinVerifier);

impl UserVerification for PinGate {
    fn confirm(&self, reason: String) -> bool {
        matches!(self.0.verify(&reason), Ok(true))
    }

    fn method(&self) -> Verification {
        Verification::CorePin
    }
}

struct Pad(Arc<dyn PinPad>);

impl potvrda_mobile_core::PinPrompt for Pad {
    fn ask_pin(&self, reason: &str, attempts_left: u32) -> Option<String> {
        self.0.ask(reason.to_owned(), attempts_left)
    }
}

struct Storage(Arc<dyn PinStorage>);

impl potvrda_mobile_core::PinStore for Storage {
    fn load(&self) -> potvrda_mobile_core::Result<Option<potvrda_mobile_core::PinState>> {
        self.0
            .load()
            .map(|s| serde_json::from_str(&s))
            .transpose()
            .map_err(Into::into)
    }

    fn save(&self, state: &potvrda_mobile_core::PinState) -> potvrda_mobile_core::Result<()> {
        self.0.save(serde_json::to_string(state)?).map_err(|_| {
            potvrda_mobile_core::Error::Io(std::io::Error::other("PIN storage refused"))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]
    use super::*;
    use p256::ecdsa::signature::Signer as _;

    /// A hardware keystore stand-in: signs in DER as Android and iOS do,
    /// optionally with a key other than the one it reports.
    struct Hardware {
        key: p256::ecdsa::SigningKey,
        signs_with: p256::ecdsa::SigningKey,
    }

    impl Keystore for Hardware {
        fn public_key(&self) -> Result<Vec<u8>> {
            use p256::pkcs8::EncodePublicKey;
            Ok(self
                .key
                .verifying_key()
                .to_public_key_der()
                .expect("encodes")
                .into_vec())
        }
        fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>> {
            let sig: p256::ecdsa::Signature = self.signs_with.sign(&message);
            Ok(sig.to_der().as_bytes().to_vec())
        }
        fn protection(&self) -> KeyProtection {
            KeyProtection::Hardware
        }
    }

    #[test]
    fn a_der_signing_keystore_works_and_a_lying_one_is_caught() {
        let key = p256::ecdsa::SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let honest = KeystoreSigner::new(Arc::new(Hardware {
            key: key.clone(),
            signs_with: key.clone(),
        }))
        .expect("SPKI DER public key");
        assert_eq!(
            honest.protection(),
            potvrda_proto::jose::KeyProtection::Hardware,
            "the approval says where the keystore keeps the key"
        );
        let raw = honest.sign(b"message").expect("signs");
        let sig = p256::ecdsa::Signature::from_slice(&raw).expect("r || s");
        key.verifying_key()
            .verify(b"message", &sig)
            .expect("verifies");

        let lying = KeystoreSigner::new(Arc::new(Hardware {
            key,
            signs_with: p256::ecdsa::SigningKey::random(
                &mut p256::elliptic_curve::rand_core::OsRng,
            ),
        }))
        .expect("loads");
        assert!(lying.sign(b"message").is_err());
    }

    /// A platform keystore stand-in that counts its signatures.
    struct Counting {
        key: SoftwareKeystore,
        signed: std::sync::atomic::AtomicUsize,
    }

    impl Keystore for Counting {
        fn public_key(&self) -> Result<Vec<u8>> {
            self.key.public_key()
        }
        fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>> {
            self.signed
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.key.sign(message)
        }
        fn protection(&self) -> KeyProtection {
            KeyProtection::Software
        }
    }

    /// The citizen cancels every prompt; meanwhile it checks whether the
    /// device would answer another call (a push arriving during the prompt).
    #[derive(Default)]
    struct Cancels {
        device: std::sync::OnceLock<std::sync::Weak<Device>>,
        blocked: std::sync::atomic::AtomicBool,
    }

    impl UserVerification for Cancels {
        fn confirm(&self, _reason: String) -> bool {
            if let Some(device) = self.device.get().and_then(std::sync::Weak::upgrade)
                && device.inner.try_lock().is_err()
            {
                self.blocked
                    .store(true, std::sync::atomic::Ordering::SeqCst);
            }
            false
        }
        fn method(&self) -> Verification {
            Verification::Biometric
        }
    }

    #[test]
    fn through_the_exported_device_nothing_is_signed_without_confirmation() {
        use potvrda_proto::jose::{ChallengeClaims, Jwks, LoginContext, TYP_CHALLENGE};
        let keystore = Arc::new(Counting {
            key: SoftwareKeystore(SoftwareSigner::generate()),
            signed: Default::default(),
        });
        let signed = || keystore.signed.load(std::sync::atomic::Ordering::SeqCst);
        let citizen = Arc::new(Cancels::default());
        let device = Device::new(keystore.clone(), citizen.clone(), false).expect("device");
        citizen
            .device
            .set(Arc::downgrade(&device))
            .expect("set once");
        assert!(matches!(
            device.pending_request(),
            Err(ApiError::NotEnrolled)
        ));
        device
            .enrollment_request(
                "potvrda://activate?server=https%3A%2F%2Fp.example&code=ABCD-EFGH-JKMN".into(),
                None,
                "phone".into(),
                "android".into(),
                PushMode::Pull,
            )
            .expect("request");
        assert_eq!(signed(), 1, "the enrollment proof");
        let server = SoftwareSigner::generate();
        let mut jwk = server.public_jwk();
        jwk.kid = Some("srv".into());
        let answer = serde_json::json!({
            "device_id": "dev1", "user_id": "u1", "username": "jelena",
            "server_jwks": Jwks { keys: vec![jwk] }, "vapid_public_key": "BV",
        });
        device
            .finish_enrollment(HttpResponse {
                status: 201,
                body: answer.to_string().into_bytes(),
            })
            .expect("enrolled");
        let challenge = potvrda_mobile_core::jws::sign(
            &server,
            TYP_CHALLENGE,
            Some("srv"),
            &ChallengeClaims {
                cid: "c1".into(),
                nonce: "n".into(),
                sub: "jelena".into(),
                aud: "dev1".into(),
                ctx: LoginContext::default(),
                iat: now(),
                exp: now() + 60,
                risk: None,
            },
        )
        .expect("signs");
        let PushEvent::Login { login } =
            device.receive_decrypted_push(challenge).expect("verified")
        else {
            panic!("a challenge is a login to confirm")
        };
        assert!(matches!(
            device.approve(login.id.clone(), 42),
            Err(ApiError::NotConfirmed)
        ));
        assert!(matches!(
            device.report_fraud(login.id.clone()),
            Err(ApiError::NotConfirmed)
        ));
        assert!(matches!(
            device.approve("other".into(), 42),
            Err(ApiError::InvalidChallenge { .. })
        ));
        assert_eq!(signed(), 1, "the keystore was not asked to sign");
        assert!(
            !citizen.blocked.load(std::sync::atomic::Ordering::SeqCst),
            "the device stayed locked while the citizen was asked"
        );
        device
            .deny(login.id)
            .expect("a denial needs no confirmation");
        assert_eq!(signed(), 2);
    }

    #[test]
    fn a_sealed_software_key_opens_only_with_its_wrapping_key() {
        let made = new_software_keystore(vec![1; 32]).expect("makes");
        let opened = open_software_keystore(made.sealed.clone(), vec![1; 32]).expect("opens");
        assert_eq!(
            opened.public_key().expect("key"),
            made.keystore.public_key().expect("key")
        );
        assert!(open_software_keystore(made.sealed.clone(), vec![2; 32]).is_err());
        assert!(new_software_keystore(vec![1; 16]).is_err());
        // The SEC1 point the software keystore reports loads like the DER one.
        KeystoreSigner::new(opened).expect("SEC1 public key");
    }
}
