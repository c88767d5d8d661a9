//! A push service of the test's own, for a real Firefox (issue 15):
//! Mozilla's WebPush WebSocket protocol towards the browser (`hello`,
//! `register`, `unregister`, `notification`, `ack`, the `{}` ping — as
//! Firefox's `PushServiceWebSocket` speaks it), and RFC 8030 towards the
//! application server, with RFC 8292 VAPID checked: an ES256 JWT whose
//! `aud` is this service's origin, made by the key the subscription named
//! as its `applicationServerKey`. Firefox gets the RFC 8291 ciphertext as
//! the server sent it and decrypts it itself.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// What happened at the push service, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seen {
    /// The browser subscribed: its endpoint.
    Registered(String),
    /// The browser dropped a subscription.
    Unregistered(String),
    /// The server pushed to a channel (its `Topic`); `delivered` false:
    /// answered 410; `version`: the message's id towards the browser.
    Pushed {
        channel: String,
        topic: Option<String>,
        delivered: bool,
        version: Option<String>,
    },
    /// A push the server sent without valid VAPID, refused with 401/403.
    Refused(String),
    /// The browser acknowledged a message (`code` 100: delivered to the
    /// service worker; 101 and up: it could not decrypt or deliver it) by
    /// its `version`.
    Acked {
        channel: String,
        version: String,
        code: u64,
    },
}

#[derive(Default)]
struct State {
    origin: String,
    /// Channel → the VAPID key (base64url, no padding) it was registered with.
    channels: Mutex<HashMap<String, String>>,
    /// Channels answered 410 from now on (the subscription expired).
    gone: Mutex<HashSet<String>>,
    browser: Mutex<Option<mpsc::UnboundedSender<String>>>,
    version: AtomicU64,
    seen: Mutex<Option<mpsc::UnboundedSender<Seen>>>,
}

impl State {
    fn saw(&self, s: Seen) {
        if let Some(tx) = &*self.seen.lock().expect("lock") {
            let _ = tx.send(s);
        }
    }
}

/// The push service: a WebSocket for Firefox, HTTP for the server.
pub(crate) struct MozPush {
    /// For Firefox's `dom.push.serverURL`.
    pub(crate) ws_url: String,
    /// The endpoints' origin, for the server's allow-list.
    pub(crate) host: String,
    state: Arc<State>,
    seen: mpsc::UnboundedReceiver<Seen>,
}

impl MozPush {
    pub(crate) async fn start() -> Self {
        let ws = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let http = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let (tx, seen) = mpsc::unbounded_channel();
        let state = Arc::new(State {
            origin: format!("http://{}", http.local_addr().expect("addr")),
            seen: Mutex::new(Some(tx)),
            ..State::default()
        });
        let ws_url = format!("ws://{}/", ws.local_addr().expect("addr"));
        let s = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((sock, _)) = ws.accept().await {
                tokio::spawn(browser_connection(sock, Arc::clone(&s)));
            }
        });
        let s = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((sock, _)) = http.accept().await {
                tokio::spawn(push_request(sock, Arc::clone(&s)));
            }
        });
        Self {
            ws_url,
            host: "127.0.0.1".into(),
            state,
            seen,
        }
    }

    /// The next thing that happened (within 20 s).
    pub(crate) async fn next(&mut self) -> Seen {
        tokio::time::timeout(std::time::Duration::from_secs(20), self.seen.recv())
            .await
            .expect("the push service saw something within 20 s")
            .expect("open")
    }

    /// Whether nothing has happened here yet (not waiting).
    pub(crate) fn nothing_yet(&mut self) -> bool {
        self.seen.try_recv().is_err()
    }

    /// Answer 410 for `endpoint` from now on, as a push service does for an
    /// expired subscription.
    pub(crate) fn expire(&self, endpoint: &str) {
        let channel = endpoint.rsplit('/').next().unwrap_or_default().to_owned();
        self.state.gone.lock().expect("lock").insert(channel);
    }
}

/// The handshake's answer names the `push-notification` subprotocol Firefox asks for.
#[allow(
    clippy::result_large_err,
    reason = "the signature of tungstenite's handshake callback"
)]
fn subprotocol(
    _: &tokio_tungstenite::tungstenite::handshake::server::Request,
    mut resp: tokio_tungstenite::tungstenite::handshake::server::Response,
) -> Result<
    tokio_tungstenite::tungstenite::handshake::server::Response,
    tokio_tungstenite::tungstenite::handshake::server::ErrorResponse,
> {
    resp.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "push-notification".parse().expect("header"),
    );
    Ok(resp)
}

/// Firefox's side: the handshake with the `push-notification` subprotocol,
/// then requests in and notifications out.
async fn browser_connection(sock: tokio::net::TcpStream, state: Arc<State>) {
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(sock, subprotocol).await else {
        return;
    };
    let (mut out, mut inc) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    *state.browser.lock().expect("lock") = Some(tx.clone());
    loop {
        tokio::select! {
            msg = inc.next() => {
                let Some(Ok(Message::Text(text))) = msg else { break };
                if let Some(reply) = answer(&state, text.as_str()) {
                    let _ = tx.send(reply);
                }
            }
            Some(text) = rx.recv() => {
                if out.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// The reply to one message from the browser.
fn answer(state: &State, text: &str) -> Option<String> {
    let msg: Value = serde_json::from_str(text).ok()?;
    let channel = msg["channelID"].as_str().unwrap_or_default().to_owned();
    match msg["messageType"].as_str() {
        None => Some("{}".into()), // the ping
        Some("hello") => Some(
            json!({"messageType": "hello", "status": 200, "use_webpush": true,
                   "uaid": msg["uaid"].as_str().filter(|u| !u.is_empty())
                       .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned)})
            .to_string(),
        ),
        Some("register") => {
            let key = msg["key"]
                .as_str()
                .unwrap_or_default()
                .trim_end_matches('=');
            state
                .channels
                .lock()
                .expect("lock")
                .insert(channel.clone(), key.to_owned());
            let endpoint = format!("{}/wpush/{channel}", state.origin);
            state.saw(Seen::Registered(endpoint.clone()));
            Some(
                json!({"messageType": "register", "status": 200, "channelID": channel,
                       "pushEndpoint": endpoint})
                .to_string(),
            )
        }
        Some("unregister") => {
            state.channels.lock().expect("lock").remove(&channel);
            state.saw(Seen::Unregistered(channel.clone()));
            Some(
                json!({"messageType": "unregister", "status": 200, "channelID": channel})
                    .to_string(),
            )
        }
        Some("ack") => {
            for u in msg["updates"].as_array().into_iter().flatten() {
                state.saw(Seen::Acked {
                    channel: u["channelID"].as_str().unwrap_or_default().to_owned(),
                    version: u["version"].as_str().unwrap_or_default().to_owned(),
                    code: u["code"].as_u64().unwrap_or(0),
                });
            }
            None
        }
        Some(_) => None,
    }
}

/// The application server's side: `POST /wpush/{channel}` (RFC 8030 §5).
async fn push_request(mut sock: tokio::net::TcpStream, state: Arc<State>) {
    let Some((head, body)) = read_request(&mut sock).await else {
        return;
    };
    let mut lines = head.lines();
    let target = lines
        .next()
        .and_then(|l| l.strip_prefix("POST "))
        .and_then(|l| l.split(' ').next())
        .unwrap_or_default()
        .to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let channel = target
        .strip_prefix("/wpush/")
        .unwrap_or_default()
        .to_owned();
    let status = deliver(&state, &channel, &headers, &body);
    let reason = match status {
        201 => "Created",
        410 => "Gone",
        _ => "Refused",
    };
    let _ = sock
        .write_all(
            format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await;
}

/// Check and forward one push; the status to answer.
fn deliver(state: &State, channel: &str, headers: &HashMap<String, String>, body: &[u8]) -> u16 {
    let Some(key) = state.channels.lock().expect("lock").get(channel).cloned() else {
        return 410;
    };
    if state.gone.lock().expect("lock").contains(channel) {
        state.saw(Seen::Pushed {
            channel: channel.into(),
            topic: headers.get("topic").cloned(),
            delivered: false,
            version: None,
        });
        return 410;
    }
    if let Err(why) = vapid(state, headers.get("authorization"), &key) {
        state.saw(Seen::Refused(why.into()));
        return 403;
    }
    if headers.get("content-encoding").map(String::as_str) != Some("aes128gcm")
        || !headers.contains_key("ttl")
    {
        state.saw(Seen::Refused("not an RFC 8291 push with a TTL".into()));
        return 400;
    }
    let version = state.version.fetch_add(1, Ordering::SeqCst).to_string();
    let note = json!({"messageType": "notification", "channelID": channel, "version": version,
                      "data": URL_SAFE_NO_PAD.encode(body), "headers": {"encoding": "aes128gcm"}});
    let sent = state
        .browser
        .lock()
        .expect("lock")
        .as_ref()
        .is_some_and(|tx| tx.send(note.to_string()).is_ok());
    state.saw(Seen::Pushed {
        channel: channel.into(),
        topic: headers.get("topic").cloned(),
        delivered: sent,
        version: Some(version),
    });
    201
}

/// RFC 8292: `vapid t=<ES256 JWT>, k=<the subscription's key>`, `aud` this
/// origin, `exp` within 24 h.
fn vapid(state: &State, value: Option<&String>, key: &str) -> Result<(), &'static str> {
    let params = value
        .and_then(|v| v.strip_prefix("vapid "))
        .ok_or("no vapid authorization")?;
    let (mut t, mut k) = (None, None);
    for part in params.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v),
            Some(("k", v)) => k = Some(v.trim_end_matches('=')),
            _ => {}
        }
    }
    let (t, k) = (t.ok_or("no t")?, k.ok_or("no k")?);
    if k != key {
        return Err("k is not the subscription's applicationServerKey");
    }
    let point = URL_SAFE_NO_PAD
        .decode(k)
        .map_err(|_| "k is not base64url")?;
    if point.len() != 65 || point[0] != 4 {
        return Err("k is not an uncompressed P-256 point");
    }
    let decoding = jsonwebtoken::DecodingKey::from_ec_components(
        &URL_SAFE_NO_PAD.encode(&point[1..33]),
        &URL_SAFE_NO_PAD.encode(&point[33..]),
    )
    .map_err(|_| "k is not a key")?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[&state.origin]);
    validation.set_required_spec_claims(&["aud", "exp"]);
    let claims = jsonwebtoken::decode::<Value>(t, &decoding, &validation)
        .map_err(|_| "the VAPID JWT does not verify")?
        .claims;
    let exp = claims["exp"].as_i64().unwrap_or(0);
    if exp > potvrda_e2e::now() + 24 * 3600 {
        return Err("exp is more than 24 h ahead");
    }
    Ok(())
}

/// One HTTP/1.1 request: its head and its body (by `Content-Length`).
async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = sock.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&buf[..n]);
        let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let len = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        while raw.len() < end + 4 + len {
            let n = sock.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            raw.extend_from_slice(&buf[..n]);
        }
        return Some((head, raw[end + 4..end + 4 + len].to_vec()));
    }
}
