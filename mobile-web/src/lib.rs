//! `potvrda-mobile-web`: [`potvrda_mobile_core`] compiled to
//! `wasm32-unknown-unknown` for the browser companion served at `/app`.
//!
//! The same core as the phone apps: it builds every request and reads every
//! answer (the page sends them with `fetch`), verifies each challenge and
//! signs the approval. The time is the page's clock, passed in. The citizen
//! confirms every approval and fraud report with a six-digit PIN set at
//! enrollment ([`potvrda_mobile_core::PinVerifier`], five wrong PINs lock
//! it). What [`Companion::save`] returns holds the device key: the page
//! encrypts it under a non-extractable WebCrypto AES-GCM key before it
//! stores it (`web-app/app.js`).
//!
//! This crate allows `unsafe` only because the glue wasm-bindgen generates
//! needs it; there is none written by hand.

use std::sync::{Arc, Mutex};

use potvrda_mobile_core::device::{self, Enrolled, PendingEnrollment, PushSetup};
use potvrda_mobile_core::transport::{Request, Response};
use potvrda_mobile_core::{
    Challenge, Error, Inbox, PinPrompt, PinState, PinStore, PinVerifier, Signer as _,
    SoftwareSigner,
};
use potvrda_proto::api::LoginStatus;
use potvrda_proto::jose::Decision;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

/// The browser companion's device.
#[wasm_bindgen]
pub struct Companion {
    signer: SoftwareSigner,
    pin: Arc<Mutex<Option<PinState>>>,
    enrolled: Option<Enrolled>,
    enrolling: Option<PendingEnrollment>,
    inbox: Inbox,
}

/// What the page stores (encrypted).
#[derive(Serialize, Deserialize)]
struct Saved {
    key: String,
    pin: Option<PinState>,
    device: Enrolled,
}

/// A request for `fetch`.
#[derive(Serialize)]
struct WireRequest {
    method: &'static str,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

fn fail(e: Error) -> JsError {
    let code = match &e {
        Error::InvalidActivation(_) => "invalid_activation",
        Error::UserNotVerified | Error::InvalidPin(_) => "not_confirmed",
        Error::PinLocked => "pin_locked",
        Error::NumberRequired => "number_required",
        Error::Server { .. } => "server",
        _ => "invalid",
    };
    JsError::new(&format!("{code}: {e}"))
}

fn request(r: Request) -> Result<String, JsError> {
    let wire = WireRequest {
        method: r.method,
        url: r.url,
        headers: r.headers,
        body: (!r.body.is_empty())
            .then(|| String::from_utf8(r.body))
            .transpose()
            .map_err(|_| JsError::new("invalid: request body is not UTF-8"))?,
    };
    serde_json::to_string(&wire).map_err(|e| JsError::new(&e.to_string()))
}

fn json<T: Serialize>(value: &T) -> Result<String, JsError> {
    serde_json::to_string(value).map_err(|e| JsError::new(&e.to_string()))
}

/// Seconds from the page's `Date.now()` milliseconds.
fn secs(now_ms: f64) -> i64 {
    (now_ms / 1000.0) as i64
}

#[wasm_bindgen]
impl Companion {
    /// A new device with a fresh key, not yet enrolled.
    #[wasm_bindgen(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Companion {
        Companion {
            signer: SoftwareSigner::generate(),
            pin: Arc::default(),
            enrolled: None,
            enrolling: None,
            inbox: Inbox::new(),
        }
    }

    /// The device [`save`](Self::save) wrote.
    pub fn restore(saved: &str) -> Result<Companion, JsError> {
        let saved: Saved = serde_json::from_str(saved)
            .map_err(|_| JsError::new("invalid: the saved device does not load"))?;
        let mut inbox = Inbox::new();
        inbox.set_locale(saved.device.locale);
        Ok(Companion {
            signer: SoftwareSigner::from_secret_b64(&saved.key).map_err(fail)?,
            pin: Arc::new(Mutex::new(saved.pin)),
            enrolled: Some(saved.device),
            enrolling: None,
            inbox,
        })
    }

    /// Speak `tag` from now on (`sr-Cyrl`, `sr-Latn`, `en`, `hu`): a risky
    /// login's notices and what the device says; kept by [`save`](Self::save).
    pub fn set_locale(&mut self, tag: &str) -> Result<(), JsError> {
        let locale: potvrda_i18n::Locale = tag
            .parse()
            .map_err(|_| JsError::new("invalid: an unknown language"))?;
        self.inbox.set_locale(locale);
        if let Some(enrolled) = self.enrolled.as_mut() {
            enrolled.locale = locale;
        }
        Ok(())
    }

    /// Everything to keep, key included: encrypt before storing.
    pub fn save(&self) -> Result<String, JsError> {
        let device = self
            .enrolled
            .clone()
            .ok_or_else(|| JsError::new("not_enrolled"))?;
        json(&Saved {
            key: self.signer.secret_b64().to_string(),
            pin: self.pin_state(),
            device,
        })
    }

    /// The enrollment request for the code from the sheet at `server` (the
    /// page's own origin), with the six-digit PIN the citizen chose.
    pub fn enrollment_request(
        &mut self,
        server: &str,
        code: &str,
        pin: &str,
        name: &str,
        now_ms: f64,
    ) -> Result<String, JsError> {
        let development = server.starts_with("http://");
        let activation =
            potvrda_mobile_core::activation_from_code(server, code, development).map_err(fail)?;
        PinVerifier::set_pin(&Pins(Arc::clone(&self.pin)), pin).map_err(fail)?;
        let (pending, req) = device::begin_enrollment(
            &activation,
            &self.signer,
            name,
            "web",
            PushSetup::Pull,
            secs(now_ms),
        )
        .map_err(fail)?;
        self.enrolling = Some(pending);
        request(req)
    }

    /// Read the enrollment answer: `{device_id, username, recovery_codes}`.
    pub fn finish_enrollment(&mut self, status: u16, body: &[u8]) -> Result<String, JsError> {
        let pending = self
            .enrolling
            .take()
            .ok_or_else(|| JsError::new("not_enrolled"))?;
        let done = pending
            .finish(&Response {
                status,
                body: body.to_vec(),
            })
            .map_err(fail)?;
        let answer = serde_json::json!({
            "device_id": done.device.device_id,
            "username": done.device.username,
            "recovery_codes": done.recovery_codes.unwrap_or_default(),
        });
        let mut device = done.device;
        device.locale = self.inbox.locale();
        self.enrolled = Some(device);
        json(&answer)
    }

    /// The enrolled account's username.
    pub fn username(&self) -> Option<String> {
        self.enrolled.as_ref().map(|e| e.username.clone())
    }

    /// The server's VAPID key: the `applicationServerKey` to subscribe with.
    pub fn vapid_public_key(&self) -> Option<String> {
        self.enrolled.as_ref().map(|e| e.vapid_public_key.clone())
    }

    /// The request asking whether pushes still reach this device; read the
    /// answer with [`push_status`](Self::push_status).
    pub fn push_status_request(&self, now_ms: f64) -> Result<String, JsError> {
        request(
            self.device()?
                .info_request(&self.signer, secs(now_ms))
                .map_err(fail)?,
        )
    }

    /// `"active"`, `"gone"` (subscribe again) or `"none"`.
    pub fn push_status(&self, status: u16, body: &[u8]) -> Result<String, JsError> {
        let info: potvrda_proto::api::DeviceInfo = Response {
            status,
            body: body.to_vec(),
        }
        .json()
        .map_err(fail)?;
        json(&info.push)
    }

    /// The request registering the browser's push subscription (its
    /// `toJSON()`), or removing it with `null` (issue 15). The answer is a
    /// device view: read it with [`push_status`](Self::push_status).
    pub fn push_request(
        &self,
        subscription_json: Option<String>,
        now_ms: f64,
    ) -> Result<String, JsError> {
        let setup = match subscription_json {
            Some(text) => PushSetup::Decrypted(
                serde_json::from_str(&text)
                    .map_err(|_| JsError::new("invalid: not a push subscription"))?,
            ),
            None => PushSetup::Pull,
        };
        let (_, req) = self
            .device()?
            .push_request(&self.signer, setup, secs(now_ms))
            .map_err(fail)?;
        request(req)
    }

    /// The request that pulls pending logins.
    pub fn pending_request(&self, now_ms: f64) -> Result<String, JsError> {
        request(
            self.device()?
                .pending_request(&self.signer, secs(now_ms))
                .map_err(fail)?,
        )
    }

    /// Read pulled logins (each verified): a JSON list to show.
    pub fn receive_pending(
        &mut self,
        status: u16,
        body: &[u8],
        now_ms: f64,
    ) -> Result<String, JsError> {
        let challenges = self
            .device()?
            .read_pending(
                &Response {
                    status,
                    body: body.to_vec(),
                },
                secs(now_ms),
            )
            .map_err(fail)?;
        json(&self.inbox.replace(challenges))
    }

    /// A push the browser decrypted (the service worker's push event
    /// text): `{"login": {…}}` to show, or `{"withdrawn": id}` — the login
    /// is over (answered elsewhere, superseded, expired): close its prompt.
    pub fn receive_push(&mut self, text: &str, now_ms: f64) -> Result<String, JsError> {
        let pushed = self
            .device()?
            .open_pushed_text(text, secs(now_ms))
            .map_err(fail)?;
        let withdrawn = match &pushed {
            potvrda_mobile_core::protocol::Pushed::Withdrawn(w) => Some(w.cid.clone()),
            potvrda_mobile_core::protocol::Pushed::Challenge(_) => None,
        };
        match (self.inbox.receive(pushed), withdrawn) {
            (Some(login), _) => json(&serde_json::json!({ "login": login })),
            (None, id) => json(&serde_json::json!({ "withdrawn": id })),
        }
    }

    /// Approve with the number from the login screen and the PIN.
    pub fn approve(&self, id: &str, number: u8, pin: &str, now_ms: f64) -> Result<String, JsError> {
        self.answer(id, Decision::Approve, Some(number), pin, now_ms)
    }

    /// Approve a risky login with the login screen's code and the PIN.
    pub fn approve_code(
        &self,
        id: &str,
        code: &str,
        pin: &str,
        now_ms: f64,
    ) -> Result<String, JsError> {
        let (enrolled, challenge, verifier) = self.held(id, pin)?;
        request(
            enrolled
                .answer_code_request(&self.signer, &verifier, challenge, code, secs(now_ms))
                .map_err(fail)?,
        )
    }

    /// Refuse the login.
    pub fn deny(&self, id: &str, now_ms: f64) -> Result<String, JsError> {
        self.answer(id, Decision::Deny, None, "", now_ms)
    }

    /// "This was not me": refuse and report, with the PIN.
    pub fn report_fraud(&self, id: &str, pin: &str, now_ms: f64) -> Result<String, JsError> {
        self.answer(id, Decision::Fraud, None, pin, now_ms)
    }

    /// Read the answer to approve/deny/report: `"approved"` or `"denied"`.
    pub fn answer_outcome(
        &mut self,
        id: &str,
        status: u16,
        body: &[u8],
    ) -> Result<String, JsError> {
        let outcome = Enrolled::read_answer(&Response {
            status,
            body: body.to_vec(),
        })
        .map_err(fail)?;
        self.inbox.answered(id);
        Ok(match outcome {
            LoginStatus::Approved => "approved",
            _ => "denied",
        }
        .to_owned())
    }

    /// The offline code now, when the server gave a secret.
    pub fn offline_code(&self, now_ms: f64) -> Result<Option<String>, JsError> {
        self.device()?.offline_code(secs(now_ms)).map_err(fail)
    }

    /// The device's public key as a JWK (JSON), to show its fingerprint.
    pub fn public_key(&self) -> Result<String, JsError> {
        json(&self.signer.public_jwk())
    }
}

impl Companion {
    fn device(&self) -> Result<&Enrolled, JsError> {
        self.enrolled
            .as_ref()
            .ok_or_else(|| JsError::new("not_enrolled"))
    }

    fn pin_state(&self) -> Option<PinState> {
        self.pin
            .lock()
            .map(|p| p.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// The enrollment, the held challenge `id`, and the PIN check.
    fn held(&self, id: &str, pin: &str) -> Result<(&Enrolled, &Challenge, PinVerifier), JsError> {
        let enrolled = self.device()?;
        let challenge = self
            .inbox
            .get(id)
            .ok_or_else(|| JsError::new("invalid: no such pending login"))?;
        let verifier = PinVerifier::new(
            Arc::new(Typed(pin.to_owned())),
            Arc::new(Pins(Arc::clone(&self.pin))),
        );
        Ok((enrolled, challenge, verifier))
    }

    fn answer(
        &self,
        id: &str,
        decision: Decision,
        number: Option<u8>,
        pin: &str,
        now_ms: f64,
    ) -> Result<String, JsError> {
        let (enrolled, challenge, verifier) = self.held(id, pin)?;
        request(
            enrolled
                .answer_request(
                    &self.signer,
                    &verifier,
                    challenge,
                    decision,
                    number,
                    secs(now_ms),
                )
                .map_err(fail)?,
        )
    }
}

/// The PIN the citizen typed into the approval form.
struct Typed(String);

impl PinPrompt for Typed {
    fn ask_pin(&self, _reason: &str, _attempts_left: u32) -> Option<String> {
        (!self.0.is_empty()).then(|| self.0.clone())
    }
}

/// The PIN state, kept with the device and saved by the page.
struct Pins(Arc<Mutex<Option<PinState>>>);

impl PinStore for Pins {
    fn load(&self) -> potvrda_mobile_core::Result<Option<PinState>> {
        Ok(self
            .0
            .lock()
            .map(|p| p.clone())
            .unwrap_or_else(|p| p.into_inner().clone()))
    }

    fn save(&self, state: &PinState) -> potvrda_mobile_core::Result<()> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(state.clone());
        Ok(())
    }
}

/// The companion's language for the browser's `navigator.languages`
/// (space-separated tags, in order), or the citizen's stored choice: its
/// tag (`sr-Cyrl` when none of them is spoken).
#[wasm_bindgen]
pub fn locale_for(languages: &str) -> String {
    languages
        .parse::<potvrda_i18n::Locale>()
        .ok()
        .or_else(|| potvrda_i18n::Locale::first_of(languages))
        .unwrap_or_default()
        .tag()
        .to_owned()
}

/// The companion's messages in `locale` (a tag of [`locale_for`]), as a
/// JSON object `{id: text}` of every `app-` message of the catalogue and
/// the language switch's label.
#[wasm_bindgen]
pub fn messages(locale: &str) -> String {
    let locale = locale.parse().unwrap_or_default();
    let catalog = potvrda_i18n::catalog();
    let mut map: serde_json::Map<String, serde_json::Value> = catalog
        .messages(locale, "app-")
        .into_iter()
        .map(|(id, text)| (id, text.into()))
        .collect();
    map.insert("language".into(), catalog.text(locale, "language").into());
    serde_json::Value::Object(map).to_string()
}

/// The languages the companion speaks: `[{"tag", "name"}]`, each named in itself.
#[wasm_bindgen]
pub fn locales() -> String {
    let all: Vec<serde_json::Value> = potvrda_i18n::Locale::ALL
        .iter()
        .map(|l| serde_json::json!({"tag": l.tag(), "name": l.autonym()}))
        .collect();
    serde_json::Value::Array(all).to_string()
}
