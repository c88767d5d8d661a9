//! The page kit: what every HTML answer of the OpenID pages and the counter
//! shares — one Content-Security-Policy, no caching, `303 See Other`
//! redirects, cookies set and read in one way, and the forms' CSRF tokens.

use actix_web::cookie::Cookie;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

use subtle::ConstantTimeEq;

use super::Result;
use crate::error::Error;
use crate::service::Potvrda;

/// The pages' policy: their own scripts and styles only, forms posted only
/// here, never framed.
pub(super) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A rendered page with `status`, the policy, and no caching.
pub(super) fn html(
    status: StatusCode,
    body: std::result::Result<String, askama::Error>,
) -> Result<HttpResponse> {
    let body = body.map_err(|e| Error::Internal(format!("template: {e}")))?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}

/// A rendered page that frames `origins` (Front-Channel Logout's pages):
/// the policy, with a `frame-src` of exactly those.
pub(super) fn html_framing(
    status: StatusCode,
    body: std::result::Result<String, askama::Error>,
    origins: &[String],
) -> Result<HttpResponse> {
    let mut res = html(status, body)?;
    let csp = format!("{CSP}; frame-src {}", origins.join(" "));
    let value =
        header::HeaderValue::from_str(&csp).map_err(|e| Error::Internal(format!("csp: {e}")))?;
    res.headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, value);
    Ok(res)
}

/// A rendered page whose forms end in a redirect to `return_to`'s origin
/// (the OpenID pages: a form posted here answers `303` to the client, and
/// CSP's `form-action` governs that redirect too, so `'self'` alone would
/// stop the browser on its way back to the service).
pub(super) fn html_returning(
    status: StatusCode,
    body: std::result::Result<String, askama::Error>,
    return_to: &str,
) -> Result<HttpResponse> {
    let mut res = html(status, body)?;
    let Some(origin) = url::Url::parse(return_to)
        .ok()
        .filter(|u| matches!(u.scheme(), "https" | "http"))
        .map(|u| u.origin().ascii_serialization())
    else {
        return Ok(res);
    };
    let csp = CSP.replace(
        "form-action 'self'",
        &format!("form-action 'self' {origin}"),
    );
    let value =
        header::HeaderValue::from_str(&csp).map_err(|e| Error::Internal(format!("csp: {e}")))?;
    res.headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, value);
    Ok(res)
}

/// `303 See Other` to `url` (after a form), not cached.
pub(super) fn see_other(url: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, url))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// Add `cookie` to `res`.
pub(super) fn add_cookie(res: &mut HttpResponse, cookie: &Cookie<'_>) -> Result<()> {
    res.add_cookie(cookie)
        .map_err(|e| Error::Internal(format!("cookie: {e}")).into())
}

/// The value of the request's cookie `name`.
pub(super) fn cookie_value(req: &HttpRequest, name: &str) -> Option<String> {
    req.cookie(name).map(|c| c.value().to_owned())
}

/// Whether the server is reached over HTTPS (`Secure` and `__Host-` cookies).
pub(super) fn https(svc: &Potvrda) -> bool {
    svc.public_url().starts_with("https://")
}

/// The forms a CSRF token guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Form {
    /// Every form of the counter (its login included).
    Counter,
    /// The OpenID logout confirmation.
    Logout,
    /// The OpenID consent page.
    Consent,
}

impl Form {
    fn name(self) -> &'static str {
        match self {
            Self::Counter => "desk",
            Self::Logout => "logout",
            Self::Consent => "consent",
        }
    }
}

/// The CSRF token of `form` for the session whose cookie is `cookie`: a
/// keyed hash (HMAC-SHA256 under the server's pepper) of the cookie, the
/// signed double-submit pattern. Nothing is stored; another site can
/// neither read the cookie nor compute the token; a new cookie (after a
/// login) gives new tokens.
pub(super) fn csrf_token(svc: &Potvrda, form: Form, cookie: &str) -> String {
    svc.keys()
        .pepper
        .hash(format!("{}-csrf\0{cookie}", form.name()).as_bytes())
}

/// Whether a posted token is `form`'s for this cookie (constant time).
pub(super) fn csrf_ok(svc: &Potvrda, form: Form, cookie: &str, posted: &str) -> bool {
    let expected = csrf_token(svc, form, cookie);
    let ok: bool = expected.as_bytes().ct_eq(posted.as_bytes()).into();
    if !ok {
        tracing::warn!(form = form.name(), "form with a wrong CSRF token refused");
    }
    ok
}
