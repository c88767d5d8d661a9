//! Shared steps: a citizen with an enrolled phone, a started login, waiting for a push.

use std::time::Duration;

use potvrda_e2e::{PORTAL_CLIENT, PORTAL_SECRET, TestServer};
use potvrda_mobile_core::Challenge;
use potvrda_mobile_core::phone::{PushEndpoint, VirtualPhone};
use potvrda_proto::api::{CreateCitizenResponse, LoginAudience, LoginResponse};
use potvrda_proto::jose::Decision;
use serde_json::json;

/// A citizen with one enrolled phone (push when `endpoint` is given).
pub struct Citizen {
    pub account: CreateCitizenResponse,
    pub phone: VirtualPhone,
}

pub async fn citizen(srv: &TestServer, endpoint: Option<&PushEndpoint>) -> Citizen {
    let account = srv.create_citizen(&potvrda_e2e::unique("c")).await;
    let push_url = endpoint.map(PushEndpoint::new_endpoint);
    let phone = VirtualPhone::enroll(
        &srv.url,
        account.activation_code.expose(),
        "test phone",
        push_url.as_deref(),
    )
    .await
    .expect("enrolls");
    if let Some(e) = endpoint {
        e.expect_vapid_key(&phone.state.device.vapid_public_key);
    }
    Citizen { account, phone }
}

pub async fn push_endpoint() -> PushEndpoint {
    PushEndpoint::start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("push endpoint starts")
}

pub async fn login(srv: &TestServer, c: &Citizen) -> LoginResponse {
    let resp = srv
        .login_raw(&c.account.username, c.account.initial_password.expose())
        .await;
    assert_eq!(resp.status(), 201, "login accepted");
    resp.json().await.expect("json")
}

/// The next push, decrypted and verified by the phone.
pub async fn next_push(endpoint: &mut PushEndpoint, phone: &VirtualPhone) -> Challenge {
    let msg = tokio::time::timeout(Duration::from_secs(10), endpoint.recv())
        .await
        .expect("a push arrives within 10 s")
        .expect("endpoint open");
    phone
        .open_push(&msg.body)
        .expect("push decrypts and verifies")
}

/// The single pending challenge, pulled.
pub async fn pulled(phone: &VirtualPhone) -> Challenge {
    let mut pending = phone.pending().await.expect("pull works");
    assert_eq!(pending.len(), 1, "exactly one pending challenge");
    pending.remove(0)
}

/// A number that is not the one shown.
pub fn wrong(number: u8) -> u8 {
    if number == 99 { 10 } else { number + 1 }
}

/// The HTTP status and error code of a failed phone call.
pub fn server_error(r: potvrda_mobile_core::Result<impl std::fmt::Debug>) -> (u16, String) {
    match r {
        Err(potvrda_mobile_core::Error::Server { status, error }) => (status, error),
        other => panic!("expected a server error, got {other:?}"),
    }
}

/// The portal's long-poll for `login`, running in the background: it answers
/// when the login is decided or after `wait` seconds.
pub fn long_poll(
    srv: &TestServer,
    login: &LoginResponse,
    wait: u64,
) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
    let (http, url) = (srv.http.clone(), srv.url.clone());
    let (id, secret) = (login.login_id.clone(), login.login_secret.clone());
    tokio::spawn(async move {
        http.get(format!("{url}/v1/logins/{id}?wait={wait}"))
            .basic_auth(PORTAL_CLIENT, Some(PORTAL_SECRET))
            .header("Login-Secret", secret.expose())
            .send()
            .await
    })
}

/// POST `body` to `path` with `token`; the status.
pub async fn post(
    srv: &TestServer,
    path: &str,
    token: Option<&str>,
    body: serde_json::Value,
) -> reqwest::Response {
    let mut r = srv.http.post(format!("{}{path}", srv.url)).json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().await.expect("request")
}

/// A staff member created by `by`, with a phone, logged in: their access token.
pub async fn staff(
    srv: &TestServer,
    by: &str,
    role: &str,
    municipality: Option<&str>,
) -> (CreateCitizenResponse, String) {
    let username = potvrda_e2e::unique(role);
    let r = post(
        srv,
        "/v1/admin/staff",
        Some(by),
        json!({"username": username, "display_name": format!("{role} {username}"), "role": role, "municipality": municipality}),
    )
    .await;
    assert_eq!(r.status(), 201, "create {role}");
    let account: CreateCitizenResponse = r.json().await.expect("json");
    let token = logged_in_for(srv, &account, LoginAudience::Admin).await;
    (account, token)
}

/// Enroll a phone for `account`, log in for a portal service, approve: the access token.
pub async fn logged_in(srv: &TestServer, account: &CreateCitizenResponse) -> String {
    logged_in_for(srv, account, LoginAudience::Portal).await
}

/// Enroll a phone for `account`, log in for `audience`, approve: the access token.
pub async fn logged_in_for(
    srv: &TestServer,
    account: &CreateCitizenResponse,
    audience: LoginAudience,
) -> String {
    let phone = VirtualPhone::enroll(&srv.url, account.activation_code.expose(), "phone", None)
        .await
        .expect("enrolls");
    let c = Citizen {
        account: account.clone(),
        phone,
    };
    let r = srv
        .login_for(
            &c.account.username,
            c.account.initial_password.expose(),
            audience,
        )
        .await;
    assert_eq!(r.status(), 201, "login accepted");
    let l: LoginResponse = r.json().await.expect("json");
    c.phone
        .answer(&pulled(&c.phone).await, Decision::Approve, Some(l.number))
        .await
        .expect("approved");
    srv.status(&l.login_id, l.login_secret.expose(), 0)
        .await
        .access_token
        .expect("token")
}

/// Approve with what the login screen shows: a risky login's six-digit
/// code (protocol 2), else the two-digit number.
pub async fn approve_as_shown(
    phone: &VirtualPhone,
    ch: &Challenge,
    number: u8,
    code: Option<&str>,
) -> Result<potvrda_proto::api::ChallengeAnswerResult, potvrda_mobile_core::Error> {
    match code {
        Some(code) => phone.answer_code(ch, code).await,
        None => phone.answer(ch, Decision::Approve, Some(number)).await,
    }
}

/// Approve with a wrong answer to what the login screen shows (a number
/// mismatch, or a wrong code for a risky login): the server denies it.
pub async fn approve_wrongly(
    phone: &VirtualPhone,
    ch: &Challenge,
    number: u8,
    code: Option<&str>,
) -> Result<potvrda_proto::api::ChallengeAnswerResult, potvrda_mobile_core::Error> {
    match code {
        Some(code) => {
            let other = if code == "000000" { "111111" } else { "000000" };
            phone.answer_code(ch, other).await
        }
        None => {
            let other = if number == 99 { 10 } else { number + 1 };
            phone.answer(ch, Decision::Approve, Some(other)).await
        }
    }
}

/// A relying party's P-256 key: its private key for signing, its public JWK.
pub struct ClientKey {
    /// The key id.
    pub kid: String,
    /// PKCS#8 DER of the private key.
    pub der: Vec<u8>,
    /// The public JWK (`kty` EC, `crv` P-256), for the registration's `jwks`.
    pub jwk: serde_json::Value,
}

/// A fresh client key named `kid`.
pub fn client_key(kid: &str) -> ClientKey {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let raw = pair.public_key_raw();
    assert_eq!((raw.len(), raw[0]), (65, 4), "an uncompressed P-256 point");
    ClientKey {
        kid: kid.into(),
        der: pair.serialize_der(),
        jwk: json!({
            "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&raw[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&raw[33..]),
        }),
    }
}

/// An RFC 7523 client assertion signed with `key`: `claims` over the
/// defaults (`iss` = `sub` = `client_id`, `aud` the issuer, `exp` in 60 s,
/// a fresh `jti`).
pub fn assertion(
    srv: &TestServer,
    key: &ClientKey,
    client_id: &str,
    claims: serde_json::Value,
) -> String {
    use potvrda_server::clock::Clock;
    let now = srv.clock.now();
    let mut body = json!({
        "iss": client_id, "sub": client_id, "aud": srv.url,
        "iat": now, "exp": now + 60, "jti": potvrda_e2e::unique("jti"),
    });
    if let (Some(b), Some(extra)) = (body.as_object_mut(), claims.as_object()) {
        for (k, v) in extra {
            b.insert(k.clone(), v.clone());
        }
    }
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(key.kid.clone());
    let signer = jsonwebtoken::EncodingKey::from_ec_der(&key.der);
    jsonwebtoken::encode(&header, &body, &signer).expect("signs")
}

/// One HTTP request a [`NotificationSink`] received.
#[derive(Debug)]
pub struct Received {
    /// `Authorization`.
    pub authorization: Option<String>,
    /// The body, as JSON.
    pub body: serde_json::Value,
    /// The body, as sent.
    pub raw: String,
}

/// A client's notification endpoint (CIBA pings, back-channel logout):
/// accepts POSTs, answers 204, and hands each request over — after
/// refusing the first `fail_first` with a 503.
pub struct NotificationSink {
    /// Its URL.
    pub url: String,
    rx: tokio::sync::mpsc::UnboundedReceiver<Received>,
}

impl NotificationSink {
    /// Listen on a free port of 127.0.0.1.
    pub async fn start() -> Self {
        Self::start_failing(0).await
    }

    /// Listen, and refuse the first `fail_first` requests with a 503.
    pub async fn start_failing(mut fail_first: usize) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "http://{}/ciba/notify",
            listener.local_addr().expect("addr")
        );
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut raw = Vec::new();
                let mut buf = [0u8; 4096];
                // Read the head, then the body its Content-Length names.
                let (head, body) = loop {
                    let Ok(n) = sock.read(&mut buf).await else {
                        break (String::new(), Vec::new());
                    };
                    if n == 0 {
                        break (String::new(), Vec::new());
                    }
                    raw.extend_from_slice(&buf[..n]);
                    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if raw.len() >= end + 4 + len {
                        break (head, raw[end + 4..end + 4 + len].to_vec());
                    }
                };
                let authorization = head.lines().find_map(|l| {
                    l.split_once(':')
                        .filter(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                        .map(|(_, v)| v.trim().to_owned())
                });
                if fail_first > 0 {
                    fail_first -= 1;
                    let _ = sock
                        .write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .await;
                    continue;
                }
                let _ = sock
                    .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                    .await;
                let _ = tx.send(Received {
                    authorization,
                    body: serde_json::from_slice(&body).unwrap_or_default(),
                    raw: String::from_utf8_lossy(&body).into_owned(),
                });
            }
        });
        Self { url, rx }
    }

    /// The next notification (within 10 s).
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
            .await
            .expect("a notification within 10 s")
            .expect("the sink is open")
    }
}

/// An RFC 9449 DPoP proof by `key` for `method` and `url`, with the server's
/// `nonce` and the hash of `access_token` (`ath`) when given; `claims`
/// override the defaults (a fresh `jti`, `iat` now).
pub fn dpop_proof(
    srv: &TestServer,
    key: &ClientKey,
    method: &str,
    url: &str,
    nonce: Option<&str>,
    access_token: Option<&str>,
) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use potvrda_server::clock::Clock;
    let mut body = json!({
        "jti": potvrda_e2e::unique("dpop"), "htm": method, "htu": url, "iat": srv.clock.now(),
    });
    if let Some(n) = nonce {
        body["nonce"] = json!(n);
    }
    if let Some(t) = access_token {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, t.as_bytes());
        body["ath"] = json!(URL_SAFE_NO_PAD.encode(digest));
    }
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.typ = Some("dpop+jwt".into());
    let mut public = key.jwk.clone();
    if let Some(o) = public.as_object_mut() {
        o.remove("kid");
        o.remove("use");
    }
    header.jwk = Some(serde_json::from_value(public).expect("a JWK"));
    let signer = jsonwebtoken::EncodingKey::from_ec_der(&key.der);
    jsonwebtoken::encode(&header, &body, &signer).expect("signs")
}

/// The RFC 7638 thumbprint of `key` (what `cnf.jkt` and `dpop_jkt` carry).
pub fn thumbprint(key: &ClientKey) -> String {
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.jwk.clone()).expect("a JWK");
    jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
        .expect("thumbprint")
}

/// Bring the server's manual clock up to the wall clock: a long browser
/// test would otherwise fall behind the phone's, and the server refuse the
/// phone's tokens as dated in the future.
pub fn catch_up(srv: &TestServer) {
    use potvrda_server::clock::Clock as _;
    let behind = potvrda_e2e::now() - srv.clock.now();
    if behind > 0 {
        srv.clock.advance(behind);
    }
}

/// The status and error code of a failed HTTP answer.
pub async fn http_error(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let body: potvrda_proto::ErrorBody = r.json().await.expect("a JSON error body");
    (status, body.error.as_str().to_owned())
}

/// The status and error code of a phone call the server refused.
pub fn phone_error(e: potvrda_mobile_core::Error) -> (u16, String) {
    match e {
        potvrda_mobile_core::Error::Server { status, error } => (status, error),
        other => panic!("phone: {other}"),
    }
}
