//! Web Push delivery (RFC 8030), encrypted per RFC 8291 (`aes128gcm`) and
//! authenticated with VAPID (RFC 8292).
//!
//! Push endpoints come from the phone, so they are an SSRF vector: only hosts
//! on the allow-list are accepted at enrollment (the public push services by
//! default, plus `push_allowed_hosts`), `https` only unless `push_allow_http`,
//! and redirects are never followed. Delivery runs in the background and never
//! blocks the login request: 404/410 mark the subscription gone (the device
//! then falls back to pull), 429 and 5xx are retried with back-off while the
//! challenge is still pending. The VAPID JWT is cached per push-service origin
//! until shortly before it expires.
//!
//! Encryption ([`encrypt`]): the ECDH and HKDF of RFC 8291 §3.4 with aws-lc
//! (the server's one native crypto library, ~5× faster than pure-Rust P-256),
//! the RFC 8188 record layer by `ece-native`, the crate `web-push-native`
//! builds on and mobile-core decrypts with. Logs name the push service's origin only,
//! never the full endpoint (it is a bearer capability).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, Header};
use potvrda_proto::api::{AuditKind, PushSubscription};
use potvrda_proto::limits::MAX_PUSH_ENDPOINT_LEN;
use serde::Serialize;

use crate::audit::{Audit, Event};
use crate::clock::Clock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::keys::ServerKeys;
use crate::metrics::Metrics;
use crate::ports::{PushGateway, PushJob};
use crate::store::{Device, LoginState, PushTarget, Store};

/// Lifetime of a VAPID JWT (RFC 8292 allows at most 24 h).
const VAPID_LIFETIME_SECS: i64 = 12 * 3600;
/// A cached VAPID JWT is renewed this long before it expires.
const VAPID_RENEW_BEFORE_SECS: i64 = 3600;
/// Delivery attempts per push before giving up (the device can still pull).
const MAX_ATTEMPTS: u32 = 4;

/// What the push service said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// 201/202: accepted.
    Accepted,
    /// 404/410: the subscription is gone.
    Gone,
    /// 429: try again, after this long if the service said.
    RateLimited(Option<Duration>),
    /// 5xx or a network error: try again, after this long if the service said.
    Retry(Option<Duration>),
    /// Any other status: not retried.
    Rejected(u16),
}

#[derive(Serialize)]
struct VapidClaims<'a> {
    aud: &'a str,
    exp: i64,
    sub: &'a str,
}

/// Sends challenges to phones.
pub struct PushSender {
    http: reqwest::Client,
    keys: Arc<ServerKeys>,
    subject: String,
    allowed_hosts: Vec<String>,
    allow_http: bool,
    vapid_cache: Mutex<HashMap<String, (String, i64)>>,
    metrics: Arc<Metrics>,
    /// This sender, for the delivery tasks it spawns.
    me: Weak<PushSender>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    audit: Arc<Audit>,
}

impl PushGateway for PushSender {
    fn validate(&self, sub: &PushSubscription) -> Result<PushTarget> {
        self.check(sub)
    }

    fn dispatch(&self, device: Device, job: PushJob) {
        self.send(device, job);
    }
}

/// Record size of the encrypted message: the RFC 8291 example's 4096; a
/// challenge is far smaller, so it is a single record.
const RECORD_SIZE: u32 = 4096;

/// RFC 8291 `aes128gcm` encryption of `payload` for the subscription keys
/// `ua_public` (uncompressed P-256 point) and `auth`, with the sender key
/// `as_key` and `salt` (both random per message; parameters for the
/// known-answer test).
pub fn encrypt(
    payload: &[u8],
    ua_public: &[u8],
    auth: &[u8],
    as_key: &aws_lc_rs::agreement::PrivateKey,
    salt: [u8; 16],
) -> Result<Vec<u8>> {
    use aws_lc_rs::{agreement, hkdf};
    let fail = |what: &str| Error::Crypto(format!("push encryption: {what}"));
    let as_public = as_key
        .compute_public_key()
        .map_err(|_| fail("public key"))?;
    let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, ua_public);
    let shared = agreement::agree(as_key, peer, fail("ECDH"), |s| {
        Ok(zeroize::Zeroizing::new(s.to_vec()))
    })?;
    // RFC 8291 §3.3: IKM = HKDF(auth, ecdh_secret, "WebPush: info" || 0x00 || ua_public || as_public, 32).
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, auth).extract(&shared);
    let info: [&[u8]; 3] = [b"WebPush: info\0", ua_public, as_public.as_ref()];
    let mut ikm = zeroize::Zeroizing::new([0u8; 32]);
    prk.expand(&info, hkdf::HKDF_SHA256)
        .and_then(|okm| okm.fill(ikm.as_mut()))
        .map_err(|_| fail("HKDF"))?;
    ece_native::encrypt(
        ikm.as_ref(),
        salt,
        as_public.as_ref(),
        std::iter::once(payload.to_vec()),
        RECORD_SIZE,
    )
    .map_err(|e| fail(&format!("{e:?}")))
}

impl std::fmt::Debug for PushSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushSender")
            .field("allowed_hosts", &self.allowed_hosts)
            .finish_non_exhaustive()
    }
}

impl PushSender {
    /// A sender using `keys.vapid`.
    pub fn new(
        keys: Arc<ServerKeys>,
        config: &Config,
        metrics: Arc<Metrics>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        audit: Arc<Audit>,
    ) -> Result<Arc<Self>> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Internal(format!("http client: {e}")))?;
        Ok(Arc::new_cyclic(|me| Self {
            me: me.clone(),
            http,
            keys,
            subject: config.push.vapid_subject.clone(),
            allowed_hosts: config.push_hosts(),
            allow_http: config.push.allow_http,
            vapid_cache: Mutex::default(),
            metrics,
            store,
            clock,
            audit,
        }))
    }

    /// Check a subscription from an enrollment: allowed host and scheme, valid keys.
    fn check(&self, sub: &PushSubscription) -> Result<PushTarget> {
        if sub.endpoint.len() > MAX_PUSH_ENDPOINT_LEN {
            return Err(Error::InvalidPushSubscription("endpoint too long"));
        }
        let url = url::Url::parse(&sub.endpoint)
            .map_err(|_| Error::InvalidPushSubscription("endpoint is not a URL"))?;
        match url.scheme() {
            // Push services listen on 443; another port on an allowed host
            // is someone else's service (security round 2, finding 11).
            "https" if url.port_or_known_default() == Some(443) => {}
            "https" => {
                return Err(Error::InvalidPushSubscription(
                    "https endpoints must use port 443",
                ));
            }
            // Development and tests only (`PUSH_ALLOW_HTTP`): any port.
            "http" if self.allow_http => {}
            _ => return Err(Error::InvalidPushSubscription("endpoint must use https")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::InvalidPushSubscription(
                "endpoint must not carry credentials",
            ));
        }
        let host = url
            .host_str()
            .ok_or(Error::InvalidPushSubscription("endpoint has no host"))?;
        if !host_allowed(&self.allowed_hosts, host) {
            return Err(Error::InvalidPushSubscription(
                "push service host is not on the allow-list",
            ));
        }
        let p256dh = URL_SAFE_NO_PAD
            .decode(&sub.keys.p256dh)
            .map_err(|_| Error::InvalidPushSubscription("p256dh is not base64url"))?;
        if p256dh.len() != 65 || p256::PublicKey::from_sec1_bytes(&p256dh).is_err() {
            return Err(Error::InvalidPushSubscription(
                "p256dh is not an uncompressed P-256 point",
            ));
        }
        let auth = URL_SAFE_NO_PAD
            .decode(&sub.keys.auth)
            .map_err(|_| Error::InvalidPushSubscription("auth is not base64url"))?;
        if auth.len() != 16 {
            return Err(Error::InvalidPushSubscription("auth must be 16 bytes"));
        }
        Ok(PushTarget {
            endpoint: sub.endpoint.clone(),
            p256dh: sub.keys.p256dh.clone(),
            auth: sub.keys.auth.clone(),
            declarative: sub.payload == Some(potvrda_proto::api::PushPayload::Declarative),
            locale: sub.locale,
        })
    }

    /// The `Authorization: vapid t=…, k=…` value for a push service origin.
    fn vapid_header(&self, origin: &str, now: i64) -> Result<String> {
        let mut cache = self.vapid_cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((header, exp)) = cache.get(origin)
            && now < exp - VAPID_RENEW_BEFORE_SECS
        {
            return Ok(header.clone());
        }
        let exp = now + VAPID_LIFETIME_SECS;
        let jwt = jsonwebtoken::encode(
            &Header::new(Algorithm::ES256),
            &VapidClaims {
                aud: origin,
                exp,
                sub: &self.subject,
            },
            &self.keys.vapid.encoding,
        )?;
        let header = format!("vapid t={jwt}, k={}", self.keys.vapid_public_b64());
        cache.insert(origin.to_owned(), (header.clone(), exp));
        Ok(header)
    }

    /// One delivery attempt.
    pub async fn deliver(
        &self,
        target: &PushTarget,
        payload: &[u8],
        ttl: u64,
        topic: &str,
        now: i64,
    ) -> Result<Delivery> {
        let url = url::Url::parse(&target.endpoint)
            .map_err(|_| Error::Internal("stored endpoint".into()))?;
        let origin = url.origin().ascii_serialization();
        let ua_public = URL_SAFE_NO_PAD
            .decode(&target.p256dh)
            .map_err(|_| Error::Internal("stored p256dh".into()))?;
        let auth = URL_SAFE_NO_PAD
            .decode(&target.auth)
            .map_err(|_| Error::Internal("stored auth".into()))?;
        let as_key = aws_lc_rs::agreement::PrivateKey::generate(&aws_lc_rs::agreement::ECDH_P256)
            .map_err(|_| Error::Crypto("push key generation".into()))?;
        let mut salt = [0u8; 16];
        aws_lc_rs::rand::fill(&mut salt).map_err(|_| Error::Crypto("random".into()))?;
        let body = encrypt(payload, &ua_public, &auth, &as_key, salt)?;
        let answer = self
            .http
            .post(url)
            .header(
                reqwest::header::AUTHORIZATION,
                self.vapid_header(&origin, now)?,
            )
            .header("TTL", ttl.to_string())
            .header("Urgency", "high")
            .header("Topic", topic)
            .header(reqwest::header::CONTENT_ENCODING, "aes128gcm")
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body)
            .send()
            .await;
        Ok(match answer {
            Ok(r) => classify(r.status().as_u16(), retry_after(r.headers())),
            Err(e) => {
                tracing::warn!(push_service = %origin, error = %e.without_url(), "push delivery failed");
                Delivery::Retry(None)
            }
        })
    }

    /// Deliver the challenge to `device` in the background, retrying while the
    /// login is pending and unexpired.
    fn send(&self, device: Device, job: PushJob) {
        let (Some(target), Some(sender)) = (device.push.clone(), self.me.upgrade()) else {
            return;
        };
        let withdrawal = job.withdrawal;
        let login_id = job.login_id.clone();
        tokio::spawn(async move {
            let failure = sender.deliver_with_retries(&device, &target, &job).await;
            let now = sender.clock.now();
            let event = match failure {
                None => Event::new(AuditKind::PushSent, now),
                Some(reason) => Event::new(AuditKind::PushFailed, now).with("reason", reason),
            };
            let event = if withdrawal {
                event.with("withdrawal", true)
            } else {
                event
            };
            sender
                .audit
                .record(
                    event
                        .user(&device.user_id)
                        .with("login_id", login_id.as_str())
                        .with("device_id", device.id.as_str()),
                )
                .await;
        });
    }

    /// Deliver one challenge, retrying 429/5xx with backoff while the login is
    /// pending and unexpired. `None` when the push service accepted it, else
    /// why not.
    async fn deliver_with_retries(
        &self,
        device: &Device,
        target: &PushTarget,
        job: &PushJob,
    ) -> Option<&'static str> {
        let (login_id, expires_at) = (&job.login_id, job.expires_at);
        let origin = url::Url::parse(&target.endpoint)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        let mut backoff = Duration::from_millis(500);
        for attempt in 1..=MAX_ATTEMPTS {
            let now = self.clock.now();
            if now >= expires_at {
                return Some("expired");
            }
            let ttl = (expires_at - now) as u64;
            let started = std::time::Instant::now();
            let delivery = self
                .deliver(target, job.payload.as_bytes(), ttl, &job.topic, now)
                .await;
            let result = match &delivery {
                Ok(Delivery::Accepted) => "accepted",
                Ok(Delivery::Gone) => "gone",
                Ok(Delivery::RateLimited(_)) => "rate_limited",
                _ => "error",
            };
            if !job.withdrawal {
                self.metrics.push_delivered(
                    result,
                    started.elapsed(),
                    job.created_ms,
                    self.clock.now_ms(),
                );
            }
            match delivery {
                Ok(Delivery::Accepted) => {
                    tracing::debug!(login_id = %login_id, device_id = %device.id, push_service = %origin, "push accepted");
                    return None;
                }
                Ok(Delivery::Gone) => {
                    tracing::info!(login_id = %login_id, device_id = %device.id, push_service = %origin, "push subscription gone; device falls back to pull");
                    if let Err(e) = self
                        .store
                        .mark_push_gone(&device.id, &target.endpoint)
                        .await
                    {
                        tracing::warn!(device_id = %device.id, error = %e, "could not mark push subscription gone");
                    }
                    return Some("subscription_gone");
                }
                Ok(Delivery::Rejected(status)) => {
                    tracing::warn!(login_id = %login_id, device_id = %device.id, push_service = %origin, status, "push rejected");
                    return Some("rejected");
                }
                Ok(Delivery::Retry(after) | Delivery::RateLimited(after)) => {
                    let wait = after
                        .unwrap_or(backoff)
                        .min(Duration::from_secs(ttl.min(30)));
                    tracing::info!(login_id = %login_id, attempt, push_service = %origin, wait_ms = wait.as_millis() as u64, "push will be retried");
                    tokio::time::sleep(wait).await;
                    backoff *= 2;
                }
                Err(e) => {
                    tracing::error!(login_id = %login_id, device_id = %device.id, error = %e, "push could not be built");
                    return Some("not_built");
                }
            }
            // A challenge is retried while its login waits; a withdrawal
            // while it is valid.
            if !job.withdrawal {
                match self.store.login(login_id).await {
                    Ok(Some(l)) if l.state == LoginState::Pending => {}
                    _ => return Some("login_ended"),
                }
            }
        }
        Some("retries_exhausted")
    }
}

/// Whether `host` is allowed: an exact entry, or an entry `.example.com` that
/// allows every subdomain of example.com.
pub fn host_allowed(allowed: &[String], host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    allowed.iter().any(|entry| match entry.strip_prefix('.') {
        Some(domain) => host.ends_with(&format!(".{domain}")),
        None => host == *entry,
    })
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// RFC 8030 §5 / RFC 8030 §8.4 outcomes by status.
pub fn classify(status: u16, retry_after: Option<Duration>) -> Delivery {
    match status {
        200..=299 => Delivery::Accepted,
        404 | 410 => Delivery::Gone,
        429 => Delivery::RateLimited(retry_after),
        500..=599 => Delivery::Retry(retry_after),
        other => Delivery::Rejected(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_matching() {
        let allowed: Vec<String> = vec!["fcm.googleapis.com".into(), ".notify.windows.com".into()];
        assert!(host_allowed(&allowed, "fcm.googleapis.com"));
        assert!(host_allowed(&allowed, "FCM.googleapis.com."));
        assert!(host_allowed(&allowed, "db5.notify.windows.com"));
        assert!(!host_allowed(&allowed, "notify.windows.com.evil.example"));
        assert!(!host_allowed(&allowed, "evilfcm.googleapis.com"));
        assert!(!host_allowed(&allowed, "169.254.169.254"));
        assert!(!host_allowed(&allowed, "localhost"));
    }

    fn sender(allow_http: bool) -> Arc<PushSender> {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = || {
            crate::keys::EsKey::from_pkcs8(&crate::keys::generate_pkcs8().expect("keygen"))
                .expect("key")
        };
        let keys = Arc::new(ServerKeys {
            signing: key(),
            vapid: key(),
            pepper: crate::keys::Pepper(zeroize::Zeroizing::new(vec![7; 32])),
            audit: Arc::new(key()),
        });
        let config = Config {
            push: crate::config::sections::Push {
                vapid_subject: "mailto:ops@example.org".into(),
                allowed_hosts: vec!["push.example.org".into()],
                allow_http,
                ..Default::default()
            },
            ..Config::default()
        };
        let metrics = Arc::new(Metrics::new().expect("metrics"));
        // The directory goes when `dir` drops; the open database stays usable.
        let store: Arc<dyn Store> =
            Arc::new(crate::store::embedded::EmbeddedStore::open(dir.path()).expect("store"));
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::SystemClock);
        let audit = Arc::new(Audit::new(
            Arc::clone(&store),
            Arc::clone(&clock),
            Arc::clone(&metrics) as Arc<dyn crate::ports::Meter>,
            std::time::Duration::from_secs(3600),
        ));
        PushSender::new(keys, &config, metrics, store, clock, audit).expect("sender")
    }

    #[test]
    fn http_endpoints_need_explicit_permission() {
        let ua = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let sub = |endpoint: &str| PushSubscription {
            payload: None,
            locale: None,
            endpoint: endpoint.into(),
            keys: potvrda_proto::api::PushKeys {
                p256dh: URL_SAFE_NO_PAD.encode(
                    p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(
                        &ua.public_key(),
                        false,
                    ),
                ),
                auth: URL_SAFE_NO_PAD.encode([9u8; 16]),
            },
        };
        assert!(
            sender(false)
                .validate(&sub("https://push.example.org/a"))
                .is_ok()
        );
        assert!(matches!(
            sender(false).validate(&sub("http://push.example.org/a")),
            Err(Error::InvalidPushSubscription(_))
        ));
        assert!(
            sender(true)
                .validate(&sub("http://push.example.org/a"))
                .is_ok()
        );
        assert!(
            sender(true)
                .validate(&sub("http://other.example.org/a"))
                .is_err()
        );
        // An allowed host on another port is another service: refused.
        for other in [
            "https://push.example.org:8443/a",
            "https://push.example.org:22/a",
            "https://push.example.org:80/a",
        ] {
            assert!(
                matches!(
                    sender(true).validate(&sub(other)),
                    Err(Error::InvalidPushSubscription(m)) if m.contains("443")
                ),
                "{other}"
            );
        }
        assert!(
            sender(false)
                .validate(&sub("https://push.example.org:443/a"))
                .is_ok()
        );
    }

    #[test]
    fn vapid_header_is_cached_per_origin_until_renewal() {
        let s = sender(false);
        let a = s
            .vapid_header("https://push.example.org", 1000)
            .expect("signs");
        assert_eq!(
            a,
            s.vapid_header("https://push.example.org", 1000 + 3600)
                .expect("cached")
        );
        assert_ne!(
            a,
            s.vapid_header("https://other.example.org", 1000)
                .expect("signs")
        );
        let renewed = s
            .vapid_header(
                "https://push.example.org",
                1000 + VAPID_LIFETIME_SECS - VAPID_RENEW_BEFORE_SECS,
            )
            .expect("renewed");
        assert_ne!(a, renewed, "renewed an hour before expiry");
        assert!(
            a.starts_with("vapid t=") && a.ends_with(&format!(", k={}", s.keys.vapid_public_b64()))
        );
    }

    /// RFC 8291, Appendix A: the same sender key and salt give the RFC's bytes.
    #[test]
    fn rfc8291_appendix_a_encryption() {
        let d = |s: &str| URL_SAFE_NO_PAD.decode(s).expect("base64url");
        let as_key = aws_lc_rs::agreement::PrivateKey::from_private_key(
            &aws_lc_rs::agreement::ECDH_P256,
            &d("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"),
        )
        .expect("RFC key");
        let salt: [u8; 16] = d("DGv6ra1nlYgDCS1FRnbzlw").try_into().expect("16 bytes");
        let body = encrypt(
            b"When I grow up, I want to be a watermelon",
            &d("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"),
            &d("BTBZMqHH6r4Tts7J_aSIgg"),
            &as_key,
            salt,
        )
        .expect("encrypts");
        assert_eq!(
            URL_SAFE_NO_PAD.encode(body),
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
        );
    }

    #[test]
    fn rfc8030_status_classes() {
        assert_eq!(classify(201, None), Delivery::Accepted);
        assert_eq!(classify(410, None), Delivery::Gone);
        assert_eq!(classify(404, None), Delivery::Gone);
        assert_eq!(
            classify(429, Some(Duration::from_secs(3))),
            Delivery::RateLimited(Some(Duration::from_secs(3)))
        );
        assert_eq!(classify(503, None), Delivery::Retry(None));
        assert_eq!(classify(413, None), Delivery::Rejected(413));
    }
}
