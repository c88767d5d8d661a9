//! HTTP: one `configure` per module, mounted in [`configure`]; handlers parse,
//! call the domain ([`crate::service::Potvrda`]) and map the result. Every
//! error, including the framework's own (bad JSON, oversized bodies, unknown
//! routes, wrong methods), is answered as a JSON [`ErrorBody`].

mod admin;
mod app;
mod clients;
mod counter;
mod device;
mod lang;
mod login;
mod me;
mod meta;
mod oauth;
mod oidc;
pub mod openapi;
mod page;
mod sheet;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use potvrda_proto::limits::MAX_BODY_BYTES;
use potvrda_proto::oidc::OAuthError;
use potvrda_proto::{ErrorBody, ErrorCode};
use tracing::Instrument;

use crate::error::Error;
use crate::service::Potvrda;

/// Mount every route and the request-parsing configuration; `/metrics` too
/// unless it has a listener of its own.
pub fn configure(cfg: &mut web::ServiceConfig, with_metrics: bool) {
    if with_metrics {
        cfg.service(web::resource("/metrics").route(web::get().to(metrics_local)));
    }
    cfg.app_data(json_config())
        .app_data(web::PathConfig::default().error_handler(|e, _| bad_request(e.to_string())))
        .app_data(web::QueryConfig::default().error_handler(|e, _| bad_request(e.to_string())))
        .configure(meta::configure)
        .configure(oidc::configure)
        .configure(oauth::configure)
        .configure(sheet::configure)
        .configure(lang::configure)
        .configure(counter::configure)
        .configure(app::configure)
        .service(
            web::scope("/v1")
                .configure(admin::configure)
                .configure(clients::configure)
                .configure(device::configure)
                .configure(login::configure)
                .configure(me::configure),
        )
        .default_service(web::to(|| async {
            HttpResponse::NotFound().json(ErrorBody {
                error: ErrorCode::NoSuchEndpoint,
                message: "no such endpoint".into(),
            })
        }));
}

/// What the web layer keeps beside the domain service: the configuration it
/// serves by, the Prometheus registry and the trusted proxies.
#[derive(Debug)]
pub struct Web {
    /// The configuration.
    pub config: std::sync::Arc<crate::config::Config>,
    /// The metrics registry.
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub proxies: crate::proxies::Proxies,
}

/// `GET /metrics`, the Prometheus text format.
pub fn metrics_only(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/metrics").route(web::get().to(metrics)));
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub(crate) async fn metrics(svc: web::Data<Potvrda>, w: web::Data<Web>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(
            w.metrics
                .render(svc.hash_queue(), svc.store().failures(), svc.store().pool()),
        )
}

/// `GET /metrics` on the public listener (no `METRICS_LISTEN`): only for
/// a scraper on this host — a loopback peer that is no proxy and forwards
/// nothing; anyone else gets 404 as for an unknown path (security round 2,
/// finding 11: the metrics are for ops, not for the internet).
pub(crate) async fn metrics_local(
    svc: web::Data<Potvrda>,
    w: web::Data<Web>,
    req: HttpRequest,
) -> HttpResponse {
    let forwarded = req.headers().contains_key("x-forwarded-for")
        || req.headers().contains_key(header::FORWARDED);
    if metrics_visible(req.peer_addr().map(|a| a.ip()), forwarded, &w.proxies) {
        metrics(svc, w).await
    } else {
        HttpResponse::NotFound().json(ErrorBody {
            error: ErrorCode::NoSuchEndpoint,
            message: "no such endpoint".into(),
        })
    }
}

/// Whether the public listener shows `/metrics` to this peer.
fn metrics_visible(
    peer: Option<std::net::IpAddr>,
    forwarded: bool,
    proxies: &crate::proxies::Proxies,
) -> bool {
    peer.is_some_and(|ip| ip.is_loopback() && !proxies.trusts(ip)) && !forwarded
}

/// Middleware: a request id (the caller's `X-Request-Id` if it is a sane
/// token, else a new UUID) on every log line of the request and in the
/// response header; one access log line; the duration by route template.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> std::result::Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let method = req.method().to_string();
    let span = tracing::info_span!("request", request_id = %request_id, method = %method, path = %req.path());
    let w = req.app_data::<web::Data<Web>>().cloned();
    let mut res = next.call(req).instrument(span.clone()).await?;
    let status = res.status().as_u16();
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into());
    span.in_scope(|| tracing::info!(status, route = %route, duration_ms = started.elapsed().as_secs_f64() * 1e3, "request"));
    if let Some(w) = w {
        w.metrics.http(route, method, status, started.elapsed());
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    Ok(res)
}

const REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");

/// How long a request body may take to arrive once its head is in (bodies
/// are at most 16 KiB): past it the read fails, the answer is 408, and the
/// connection is freed (security round 2, finding 10: a head followed by no
/// body bytes held a connection for over 75 s).
pub const BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// Middleware: the request body must arrive within [`BODY_DEADLINE`].
pub async fn body_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> std::result::Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let inner = std::mem::replace(req.parts_mut().1, actix_web::dev::Payload::None);
    let deadline = Box::pin(tokio::time::sleep(BODY_DEADLINE));
    let stream: std::pin::Pin<Box<dyn futures_util::Stream<Item = BodyChunk>>> =
        Box::pin(DeadlineBody {
            inner,
            deadline,
            expired: false,
        });
    req.set_payload(actix_web::dev::Payload::from(stream));
    next.call(req).await
}

type BodyChunk = std::result::Result<web::Bytes, actix_web::error::PayloadError>;

/// A request body that fails with `TimedOut` once its deadline passes.
struct DeadlineBody {
    inner: actix_web::dev::Payload,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    expired: bool,
}

impl futures_util::Stream for DeadlineBody {
    type Item = BodyChunk;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        if self.expired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = std::pin::Pin::new(&mut self.inner).poll_next(cx) {
            return Poll::Ready(item);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.expired = true;
            return Poll::Ready(Some(Err(actix_web::error::PayloadError::Io(
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "request body not received in time",
                ),
            ))));
        }
        Poll::Pending
    }
}

/// Whether a body read failed on [`BODY_DEADLINE`].
fn timed_out(e: &actix_web::error::PayloadError) -> bool {
    matches!(e, actix_web::error::PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut)
}

/// Headers on every answer (added only where a route did not set its own):
/// no MIME sniffing, no referrer, no caching, no framing, and a CSP that
/// lets a JSON answer load nothing; HSTS when serving TLS natively.
pub fn security_headers(hsts: bool) -> actix_web::middleware::DefaultHeaders {
    let headers = if hsts {
        actix_web::middleware::DefaultHeaders::new().add((
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        ))
    } else {
        actix_web::middleware::DefaultHeaders::new()
    };
    headers
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::CACHE_CONTROL, "no-store"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ))
}

/// CORS for exactly the configured origins (the portal's pages, the browser
/// companion); without any, no CORS headers are sent and browsers refuse
/// cross-origin calls.
pub fn cors(origins: &[String]) -> actix_cors::Cors {
    origins
        .iter()
        .fold(actix_cors::Cors::default(), |c, o| c.allowed_origin(o))
        .allowed_methods(["GET", "POST", "DELETE"])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE, REQUEST_ID])
        .expose_headers([REQUEST_ID, header::RETRY_AFTER])
        .max_age(600)
}

/// Middleware that turns any error response without a JSON body (e.g. the
/// router's 405) into an [`ErrorBody`].
pub fn json_errors<B: 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(|res: ServiceResponse<B>| {
        // JSON bodies and the provider's HTML error pages are already answers.
        let is_json = res
            .response()
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| {
                v.as_bytes().starts_with(b"application/json")
                    || v.as_bytes().starts_with(b"text/html")
            });
        if is_json {
            return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
        }
        let status = res.status();
        let code = match status {
            StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
            StatusCode::NOT_FOUND => ErrorCode::NoSuchEndpoint,
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
            s if s.is_client_error() => ErrorCode::InvalidRequest,
            _ => ErrorCode::Internal,
        };
        let (req, _) = res.into_parts();
        let body = HttpResponse::build(status).json(ErrorBody {
            error: code,
            message: status.canonical_reason().unwrap_or("error").to_lowercase(),
        });
        Ok(ErrorHandlerResponse::Response(
            ServiceResponse::new(req, body).map_into_right_body(),
        ))
    })
}

fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_BODY_BYTES)
        .error_handler(|err, _req| {
            use actix_web::error::JsonPayloadError as J;
            let (status, code, message) = match &err {
                J::Overflow { .. } | J::OverflowKnownLength { .. } => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorCode::PayloadTooLarge,
                    format!("body larger than {MAX_BODY_BYTES} bytes"),
                ),
                J::Payload(p) if timed_out(p) => (
                    StatusCode::REQUEST_TIMEOUT,
                    ErrorCode::InvalidRequest,
                    format!(
                        "request body not received within {} s",
                        BODY_DEADLINE.as_secs()
                    ),
                ),
                J::ContentType => (
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    ErrorCode::InvalidRequest,
                    "expected Content-Type: application/json".into(),
                ),
                J::Deserialize(e) => (
                    StatusCode::BAD_REQUEST,
                    ErrorCode::InvalidRequest,
                    format!("invalid JSON body: {e}"),
                ),
                _ => (
                    StatusCode::BAD_REQUEST,
                    ErrorCode::InvalidRequest,
                    "unreadable body".into(),
                ),
            };
            actix_web::error::InternalError::from_response(
                err,
                HttpResponse::build(status).json(ErrorBody {
                    error: code,
                    message,
                }),
            )
            .into()
        })
}

fn bad_request(message: String) -> actix_web::Error {
    ApiError(Error::InvalidRequest(message)).into()
}

/// A domain error on its way to the client: the one place where an error
/// becomes an HTTP status, a stable `error` code and a public message.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What a handler returns.
pub type Result<T> = std::result::Result<T, ApiError>;

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        let ApiError(e) = self;
        if let Error::OAuth { error, .. } = e {
            // RFC 6749 §5.2: 401 for a failed client authentication, 400 else;
            // RFC 6750 §3.1: 401 for a bad access token.
            return match *error {
                OAuthError::InvalidClient | OAuthError::InvalidToken => StatusCode::UNAUTHORIZED,
                _ => StatusCode::BAD_REQUEST,
            };
        }
        match e.code() {
            ErrorCode::InvalidRequest
            | ErrorCode::InvalidActivationCode
            | ErrorCode::InvalidPushSubscription => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized
            | ErrorCode::InvalidClient
            | ErrorCode::InvalidCredentials
            | ErrorCode::InvalidSignature
            | ErrorCode::UnknownDevice => StatusCode::UNAUTHORIZED,
            ErrorCode::NotFound | ErrorCode::NoSuchEndpoint | ErrorCode::UnknownClient => {
                StatusCode::NOT_FOUND
            }
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::UsernameTaken
            | ErrorCode::NoDevice
            | ErrorCode::AlreadyDecided
            | ErrorCode::MunicipalityExists
            | ErrorCode::ClientExists
            | ErrorCode::ClientReadOnly => StatusCode::CONFLICT,
            ErrorCode::Forbidden | ErrorCode::AccountLocked | ErrorCode::SecondOfficialRequired => {
                StatusCode::FORBIDDEN
            }
            ErrorCode::UnknownMunicipality => StatusCode::BAD_REQUEST,
            ErrorCode::Expired => StatusCode::GONE,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::NumberMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let ApiError(e) = self;
        if let Error::OAuth { error, description } = e {
            let mut res = HttpResponse::build(status)
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .json(potvrda_proto::oidc::OAuthErrorBody {
                    error: *error,
                    error_description: Some(description.clone()),
                });
            match *error {
                OAuthError::InvalidClient => {
                    res.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Basic realm=\"potvrda\""),
                    );
                }
                OAuthError::InvalidToken => {
                    res.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Bearer error=\"invalid_token\""),
                    );
                }
                _ => {}
            }
            return res;
        }
        if status.is_server_error() {
            // Internal details go to the log, never to the client.
            tracing::error!(error = %e, "request failed");
        }
        let mut res = HttpResponse::build(status).json(ErrorBody {
            error: e.code(),
            message: e.public_message(),
        });
        if let Error::RateLimited { retry_after } = e {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
        }
        if status == StatusCode::UNAUTHORIZED {
            let challenge = if e.code() == ErrorCode::InvalidClient {
                "Basic realm=\"potvrda\""
            } else {
                "Bearer"
            };
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        res
    }
}

/// The client's IP: the TCP peer, or, when the peer is a trusted proxy, the
/// nearest untrusted address in `X-Forwarded-For` (right to left).
fn client_ip(req: &HttpRequest, proxies: &crate::proxies::Proxies) -> Option<std::net::IpAddr> {
    let peer = req.peer_addr()?.ip();
    let forwarded = req.headers().get_all("x-forwarded-for");
    let _ = proxies.observe(peer, forwarded.clone().next().is_some());
    Some(proxies.client_ip(peer, forwarded.filter_map(|v| v.to_str().ok())))
}

/// Who sent the request (address after trusted proxies, `User-Agent`).
fn caller(req: &HttpRequest) -> crate::audit::Caller {
    let ip = req
        .app_data::<web::Data<Web>>()
        .and_then(|w| client_ip(req, &w.proxies));
    crate::audit::Caller::new(
        ip,
        req.headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
    )
}

/// The bearer credential of a request, if any.
fn bearer(req: &HttpRequest) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn bearer_parsing() {
        let r = TestRequest::default()
            .insert_header(("Authorization", "Bearer abc"))
            .to_http_request();
        assert_eq!(bearer(&r), Some("abc"));
        let r = TestRequest::default()
            .insert_header(("Authorization", "bearer  abc "))
            .to_http_request();
        assert_eq!(bearer(&r), Some("abc"));
        let r = TestRequest::default()
            .insert_header(("Authorization", "Basic abc"))
            .to_http_request();
        assert_eq!(bearer(&r), None);
        let r = TestRequest::default()
            .insert_header(("Authorization", "Bearer "))
            .to_http_request();
        assert_eq!(bearer(&r), None);
    }

    #[test]
    fn metrics_on_the_public_listener_are_for_this_host_only() {
        let none = crate::proxies::Proxies::checked(&[]);
        let local_proxy = crate::proxies::Proxies::checked(&["127.0.0.1".into()]);
        let ip = |s: &str| Some(s.parse().expect("ip"));
        assert!(metrics_visible(ip("127.0.0.1"), false, &none));
        assert!(metrics_visible(ip("::1"), false, &none));
        assert!(!metrics_visible(ip("127.0.0.1"), true, &none), "forwarded");
        assert!(
            !metrics_visible(ip("127.0.0.1"), false, &local_proxy),
            "a proxy"
        );
        assert!(!metrics_visible(ip("203.0.113.7"), false, &none));
        assert!(!metrics_visible(ip("10.0.0.3"), false, &none));
        assert!(!metrics_visible(None, false, &none));
    }

    #[test]
    fn internal_errors_do_not_leak() {
        let e = ApiError(Error::Store("redis at 10.0.0.5: WRONGPASS".into()));
        assert_eq!(e.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.0.public_message().contains("WRONGPASS"));
        assert_eq!(
            ApiError(Error::NumberMismatch).status_code(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(ApiError(Error::Expired).status_code(), StatusCode::GONE);
        assert_eq!(
            ApiError(Error::StoreUnavailable("x".into())).status_code(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
