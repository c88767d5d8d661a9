//! The virtual phone (feature `device`): the core plus an HTTP client and a
//! real local push endpoint, for demos and end-to-end tests.
//!
//! [`PushEndpoint`] plays the push service and the phone's push receiver in
//! one: it accepts RFC 8030 POSTs, checks the VAPID authorization the way a
//! push service does (RFC 8292: ES256 JWT, `aud` = its origin, `exp` within
//! 24 h, `k` = the server's key), and hands the encrypted body to the phone,
//! which decrypts it (RFC 8291) and verifies the challenge.

use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{HttpRequest, HttpResponse, web};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use potvrda_proto::api::{ChallengeAnswer, ChallengeAnswerResult, DeviceInfo};
use potvrda_proto::jose::Decision;
use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::device::{self, Enrolled, PushSetup};
use crate::signer::{Signer, SoftwareSigner, jwk_of};
use crate::transport::{Request, Response};
use crate::{Challenge, Error, Result, jws, protocol};

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What the phone keeps between runs (the file is written with mode 0600):
/// what every app keeps ([`Enrolled`]), and the device key, which a real
/// app leaves in the platform keystore.
#[derive(Clone, Serialize, Deserialize)]
pub struct DeviceState {
    /// The enrolled device.
    #[serde(flatten)]
    pub device: Enrolled,
    /// Device private key (base64url scalar).
    pub signing_key: String,
}

impl std::fmt::Debug for DeviceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceState")
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// The virtual phone's user verification: whoever runs it (a test, or the
/// person typing the number into `potvrda-device`) is the citizen. Real
/// apps pass biometrics or [`crate::PinVerifier`].
struct AtTheKeyboard;

impl crate::UserVerifier for AtTheKeyboard {
    fn verify(&self, _reason: &str) -> Result<bool> {
        Ok(true)
    }
}

/// The push half of the state.
pub type PushState = crate::device::RawPushKeys;

/// A phone: device key, push keys, and an HTTP client to the server.
pub struct VirtualPhone {
    http: reqwest::Client,
    clock_offset: i64,
    /// Persisted state.
    pub state: DeviceState,
    signer: SoftwareSigner,
    /// The recovery codes the server gave with the account's first device:
    /// shown once, never saved with the state.
    pub recovery_codes: Option<Vec<String>>,
}

impl std::fmt::Debug for VirtualPhone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualPhone")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// The feature-gated async client: send a [`Request`] the core built with
/// reqwest and hand back the [`Response`] for the core to read.
pub async fn send(http: &reqwest::Client, request: &Request) -> Result<Response> {
    let method = reqwest::Method::from_bytes(request.method.as_bytes())
        .map_err(|_| Error::MalformedJws("unknown HTTP method"))?;
    let mut builder = http.request(method, &request.url);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    if !request.body.is_empty() {
        builder = builder.body(request.body.clone());
    }
    let answer = builder.send().await?;
    Ok(Response {
        status: answer.status().as_u16(),
        body: answer.bytes().await?.to_vec(),
    })
}

impl VirtualPhone {
    /// Enroll a new device with `code`; with `push`, at that endpoint URL.
    pub async fn enroll(
        server: &str,
        code: &str,
        name: &str,
        push_endpoint: Option<&str>,
    ) -> Result<Self> {
        let signer = SoftwareSigner::generate();
        let activation = Activation {
            server: server.trim_end_matches('/').to_owned(),
            code: code.to_owned(),
        };
        let push = match push_endpoint {
            Some(endpoint) => PushSetup::Raw {
                endpoint: endpoint.to_owned(),
            },
            None => PushSetup::Pull,
        };
        let (pending, request) =
            device::begin_enrollment(&activation, &signer, name, "virtual", push, unix_now())?;
        let http = reqwest::Client::new();
        let done = pending.finish(&send(&http, &request).await?)?;
        Ok(Self {
            http,
            clock_offset: 0,
            state: DeviceState {
                device: done.device,
                signing_key: signer.secret_b64().to_string(),
            },
            signer,
            recovery_codes: done.recovery_codes,
        })
    }

    /// The offline code now (this phone's clock), when the server gave a secret.
    pub fn offline_code(&self) -> Result<Option<String>> {
        self.state.device.offline_code(self.now())
    }

    /// Restore from a state file.
    pub fn load(path: &Path) -> Result<Self> {
        Self::from_state(serde_json::from_slice(&std::fs::read(path)?)?)
    }

    /// Restore from state.
    pub fn from_state(state: DeviceState) -> Result<Self> {
        let signer = SoftwareSigner::from_secret_b64(&state.signing_key)?;
        Ok(Self {
            http: reqwest::Client::new(),
            clock_offset: 0,
            state,
            signer,
            recovery_codes: None,
        })
    }

    /// Write the state file (mode 0600: it holds the private keys).
    pub fn save(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(&serde_json::to_vec_pretty(&self.state)?)?;
        Ok(())
    }

    /// Run this phone's clock `secs` ahead of the system clock (tests that
    /// move the server's clock move the phone's too).
    pub fn set_clock_offset(&mut self, secs: i64) {
        self.clock_offset = secs;
    }

    /// Speak `locale` (issue 16): the prompt, and the language the next
    /// push subscription ([`resubscribe`](Self::resubscribe)) tells the server.
    pub fn set_locale(&mut self, locale: potvrda_i18n::Locale) {
        self.state.device.locale = locale;
    }

    fn now(&self) -> i64 {
        unix_now() + self.clock_offset
    }

    /// The device key (tests use it to forge and replay).
    pub fn signer(&self) -> &SoftwareSigner {
        &self.signer
    }

    /// Decrypt a push message and verify what it brings: a challenge, or
    /// the withdrawal of one.
    pub fn open_pushed(&self, body: &[u8]) -> Result<crate::protocol::Pushed> {
        self.state.device.open_pushed(body, self.now())
    }

    /// Decrypt a push message and verify the challenge inside.
    pub fn open_push(&self, body: &[u8]) -> Result<Challenge> {
        self.state.device.open_push(body, self.now())
    }

    /// Pull the pending challenges (verified).
    pub async fn pending(&self) -> Result<Vec<Challenge>> {
        let request = self
            .state
            .device
            .pending_request(&self.signer, self.now())?;
        let answer = send(&self.http, &request).await?;
        self.state.device.read_pending(&answer, self.now())
    }

    /// Tell the server this challenge is on screen (for its latency metrics).
    pub async fn acknowledge(&self, challenge: &Challenge) -> Result<()> {
        let request =
            self.state
                .device
                .seen_request(&self.signer, &challenge.claims.cid, self.now())?;
        send(&self.http, &request).await?.success()
    }

    /// Register a new push subscription at `endpoint` (new keys), or none:
    /// what a phone does when [`info`](Self::info) says `gone`.
    pub async fn resubscribe(&mut self, endpoint: Option<&str>) -> Result<DeviceInfo> {
        let setup = match endpoint {
            Some(e) => PushSetup::Raw {
                endpoint: e.to_owned(),
            },
            None => PushSetup::Pull,
        };
        let (pending, request) = self
            .state
            .device
            .push_request(&self.signer, setup, self.now())?;
        let answer = send(&self.http, &request).await?;
        pending.finish(&mut self.state.device, &answer)
    }

    /// The server's view of this device (push reachability).
    pub async fn info(&self) -> Result<DeviceInfo> {
        let request = self.state.device.info_request(&self.signer, self.now())?;
        send(&self.http, &request).await?.json()
    }

    /// The signed answer to `challenge`.
    pub fn approval(
        &self,
        challenge: &Challenge,
        decision: Decision,
        number: Option<u8>,
    ) -> Result<String> {
        protocol::approval(
            &self.signer,
            &AtTheKeyboard,
            &self.state.device.device_id,
            challenge,
            decision,
            (number, self.state.device.locale),
            self.now(),
        )
    }

    /// Answer `challenge` (approve needs the number from the login screen).
    pub async fn answer(
        &self,
        challenge: &Challenge,
        decision: Decision,
        number: Option<u8>,
    ) -> Result<ChallengeAnswerResult> {
        let request = self.state.device.answer_request(
            &self.signer,
            &AtTheKeyboard,
            challenge,
            decision,
            number,
            self.now(),
        )?;
        send(&self.http, &request).await?.json()
    }

    /// Approve a risky challenge with the login screen's code.
    pub async fn answer_code(
        &self,
        challenge: &Challenge,
        code: &str,
    ) -> Result<ChallengeAnswerResult> {
        let request = self.state.device.answer_code_request(
            &self.signer,
            &AtTheKeyboard,
            challenge,
            code,
            self.now(),
        )?;
        send(&self.http, &request).await?.json()
    }

    /// Post an approval JWS as is.
    pub async fn post_approval(&self, cid: &str, approval: &str) -> Result<ChallengeAnswerResult> {
        let request = Request::post_json(
            format!("{}/v1/challenges/{cid}/response", self.state.device.server),
            None,
            &ChallengeAnswer {
                approval: approval.to_owned(),
            },
        )?;
        send(&self.http, &request).await?.json()
    }
}

/// A push message as the endpoint received it.
#[derive(Debug, Clone)]
pub struct PushMessage {
    /// Request path (`/push/<token>`).
    pub path: String,
    /// The encrypted body.
    pub body: Vec<u8>,
    /// `TTL` header.
    pub ttl: Option<u64>,
    /// `Urgency` header.
    pub urgency: Option<String>,
    /// `Topic` header (RFC 8030 §5.4).
    pub topic: Option<String>,
    /// `Content-Encoding` header.
    pub content_encoding: Option<String>,
    /// The VAPID `k` the server presented.
    pub vapid_key: String,
}

#[derive(Deserialize)]
struct VapidClaims {
    aud: String,
    exp: i64,
    sub: String,
}

struct EndpointState {
    origin: String,
    answer: AtomicU16,
    queued: Mutex<std::collections::VecDeque<u16>>,
    attempts: std::sync::atomic::AtomicUsize,
    expected_vapid_key: Mutex<Option<String>>,
    tx: tokio::sync::mpsc::UnboundedSender<PushMessage>,
}

/// A local push service + receiver on 127.0.0.1.
pub struct PushEndpoint {
    /// Bound address.
    pub addr: SocketAddr,
    state: Arc<EndpointState>,
    rx: tokio::sync::mpsc::UnboundedReceiver<PushMessage>,
    handle: actix_web::dev::ServerHandle,
}

impl std::fmt::Debug for PushEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushEndpoint")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl PushEndpoint {
    /// Listen on `bind` (port 0 for any free port).
    pub async fn start(bind: SocketAddr) -> Result<Self> {
        let listener = std::net::TcpListener::bind(bind)?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let state = Arc::new(EndpointState {
            origin: format!("http://{addr}"),
            answer: AtomicU16::new(201),
            queued: Mutex::default(),
            attempts: std::sync::atomic::AtomicUsize::new(0),
            expected_vapid_key: Mutex::new(None),
            tx,
        });
        let data = web::Data::from(Arc::clone(&state));
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(8192))
                .route("/push/{token}", web::post().to(receive))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Self {
            addr,
            state,
            rx,
            handle,
        })
    }

    /// A fresh endpoint URL on this service.
    pub fn new_endpoint(&self) -> String {
        let mut token = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut token);
        format!(
            "{}/push/{}",
            self.state.origin,
            URL_SAFE_NO_PAD.encode(token)
        )
    }

    /// Only accept pushes authorised with this VAPID key (as a push service
    /// does once a subscription names its `applicationServerKey`).
    pub fn expect_vapid_key(&self, key: &str) {
        *self
            .state
            .expected_vapid_key
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(key.to_owned());
    }

    /// Answer every following push with this HTTP status (201 accepts; 410 says gone).
    pub fn answer_with(&self, status: u16) {
        self.state.answer.store(status, Ordering::SeqCst);
    }

    /// Answer the next pushes with these statuses, in order, then as before
    /// (429 comes with `Retry-After: 1`).
    pub fn answer_next(&self, statuses: &[u16]) {
        self.state
            .queued
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(statuses.iter().copied());
    }

    /// How many correctly authorised push requests arrived, whatever the answer.
    pub fn attempts(&self) -> usize {
        self.state.attempts.load(Ordering::SeqCst)
    }

    /// The next accepted push message.
    pub async fn recv(&mut self) -> Option<PushMessage> {
        self.rx.recv().await
    }

    /// Stop serving.
    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

fn header(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers().get(name)?.to_str().ok().map(str::to_owned)
}

/// Check `Authorization: vapid t=<jwt>, k=<key>` per RFC 8292; the key on success.
fn check_vapid(
    state: &EndpointState,
    value: Option<String>,
) -> std::result::Result<String, &'static str> {
    let value = value.ok_or("no Authorization header")?;
    let params = value
        .strip_prefix("vapid ")
        .ok_or("not a vapid authorization")?;
    let (mut t, mut k) = (None, None);
    for part in params.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v.to_owned()),
            Some(("k", v)) => k = Some(v.to_owned()),
            _ => {}
        }
    }
    let (t, k) = (t.ok_or("no t")?, k.ok_or("no k")?);
    if let Some(expected) = state
        .expected_vapid_key
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_deref()
        && expected != k
    {
        return Err("k is not the subscription's application server key");
    }
    let point = URL_SAFE_NO_PAD
        .decode(&k)
        .map_err(|_| "k is not base64url")?;
    let key = p256::PublicKey::from_sec1_bytes(&point).map_err(|_| "k is not a P-256 point")?;
    let claims: VapidClaims = jws::parse(&t, None)
        .and_then(|p| p.verify(&jwk_of(&key)))
        .map_err(|_| "t does not verify with k")?;
    let now = unix_now();
    if claims.aud != state.origin {
        return Err("aud is not this push service's origin");
    }
    if claims.exp <= now || claims.exp > now + 24 * 3600 {
        return Err("exp is not within the next 24 hours");
    }
    if !(claims.sub.starts_with("mailto:") || claims.sub.starts_with("https:")) {
        return Err("sub is not a contact URI");
    }
    Ok(k)
}

async fn receive(
    state: web::Data<EndpointState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let vapid_key = match check_vapid(&state, header(&req, "authorization")) {
        Ok(k) => k,
        Err(why) => return HttpResponse::Unauthorized().body(why),
    };
    state.attempts.fetch_add(1, Ordering::SeqCst);
    let queued = state
        .queued
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .pop_front();
    let status = queued.unwrap_or_else(|| state.answer.load(Ordering::SeqCst));
    if (200..300).contains(&status) {
        let _ = state.tx.send(PushMessage {
            path: req.path().to_owned(),
            body: body.to_vec(),
            ttl: header(&req, "ttl").and_then(|v| v.parse().ok()),
            urgency: header(&req, "urgency"),
            topic: header(&req, "topic"),
            content_encoding: header(&req, "content-encoding"),
            vapid_key,
        });
    }
    let mut answer = HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::CREATED),
    );
    if status == 429 {
        answer.insert_header(("Retry-After", "1"));
    }
    answer.finish()
}

/// The phone's public key as a JWK (for tests that need it).
pub fn public_jwk(phone: &VirtualPhone) -> potvrda_proto::jose::EcJwk {
    phone.signer.public_jwk()
}
