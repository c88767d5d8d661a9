//! The OpenID Provider's HTTP face: discovery, the authorization pages
//! (server-rendered with askama, a strict CSP, one small script), the token
//! endpoint, UserInfo and logout. Handlers parse, call
//! [`Potvrda`](crate::service::Potvrda)'s `oidc_*` methods, and render.

use super::lang::{self, Chrome, TimeForms};

mod pages;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieAge};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use base64::{Engine, engine::general_purpose::STANDARD};
use pages::*;
use potvrda_i18n::Msg;
use potvrda_proto::api::LoginStatusResponse;
use potvrda_proto::oidc::{OAuthError, ProviderMetadata};
use serde::Deserialize;

use super::Result;
use super::page::{self, Form, cookie_value, html, see_other};
use crate::error::Error;
use crate::service::{
    AuthorizeOutcome, AuthorizeParams, Confirmation, ConsentPage, LoginPage, LogoutOutcome,
    LogoutParams, Potvrda, StepOutcome,
};

/// The provider's single sign-on session.
const SESSION_COOKIE: &str = "potvrda_session";
/// Binds an authorization request to the browser that started it.
const BINDING_COOKIE: &str = "potvrda_authz";

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    // Forms are the provider's only form bodies; a malformed one is an OAuth error.
    cfg.app_data(
        web::FormConfig::default()
            .limit(16 * 1024)
            .error_handler(|e, _| {
                super::ApiError(Error::OAuth {
                    error: OAuthError::InvalidRequest,
                    description: format!("malformed form: {e}"),
                })
                .into()
            }),
    )
    .service(web::resource("/.well-known/openid-configuration").route(web::get().to(discovery)))
    .service(
        web::resource("/oauth2/authorize")
            .route(web::get().to(authorize))
            .route(web::post().to(login)),
    )
    .service(web::resource("/oauth2/authorize/wait").route(web::get().to(wait)))
    .service(web::resource("/oauth2/authorize/continue").route(web::get().to(proceed)))
    .service(web::resource("/oauth2/authorize/code").route(web::post().to(code)))
    .service(web::resource("/oauth2/authorize/again").route(web::post().to(again)))
    .service(
        web::resource("/oauth2/authorize/consent")
            .route(web::get().to(consent_again))
            .route(web::post().to(consent)),
    )
    .service(
        web::resource("/oauth2/logout")
            .route(web::get().to(logout))
            .route(web::post().to(logout_form)),
    )
    .service(web::resource("/oauth2/static/wait.js").route(web::get().to(script)))
    .service(web::resource("/oauth2/static/logout.js").route(web::get().to(logout_script)))
    .service(web::resource("/oauth2/static/style.css").route(web::get().to(style)));
}

fn cookie<'c>(svc: &Potvrda, name: &'c str, value: String, age: i64) -> Cookie<'c> {
    Cookie::build(name, value)
        .path("/oauth2")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(page::https(svc))
        .max_age(CookieAge::seconds(age))
        .finish()
}

/// The way back to the login of `request` (its login or waiting page).
fn resume(request: &str) -> String {
    format!("/oauth2/authorize/continue?request={request}")
}

fn login_page(svc: &Potvrda, req: &HttpRequest, page: &LoginPage) -> Result<HttpResponse> {
    let mut res = page::html_returning(
        actix_web::http::StatusCode::OK,
        LoginTpl {
            chrome: lang::chrome(req, page.ui_locale, resume(&page.request)),
            request: &page.request,
            client_name: &page.client_name,
            error: &page.error,
        }
        .render(),
        &page.return_to,
    )?;
    if let Some(b) = &page.set_binding {
        page::add_cookie(&mut res, &cookie(svc, BINDING_COOKIE, b.clone(), 3600))?;
    }
    Ok(res)
}

fn step(svc: &Potvrda, req: &HttpRequest, outcome: StepOutcome) -> Result<HttpResponse> {
    match outcome {
        StepOutcome::Login(page) => login_page(svc, req, &page),
        StepOutcome::Waiting {
            request,
            number,
            client_name,
            error,
            ui_locale,
            return_to,
            expires_in,
            can_resend,
        } => page::html_returning(
            if error.is_some() {
                actix_web::http::StatusCode::UNAUTHORIZED
            } else {
                actix_web::http::StatusCode::OK
            },
            {
                let chrome = lang::chrome(req, ui_locale, resume(&request));
                WaitingTpl {
                    time_forms: TimeForms::of(&chrome.tr),
                    chrome,
                    request: &request,
                    client_name: &client_name,
                    number,
                    error: &error,
                    expires_in,
                    can_resend,
                }
            }
            .render(),
            &return_to,
        ),
        StepOutcome::Redirect { url, session } => {
            let mut res = see_other(&url);
            if let Some(s) = session {
                let age = crate::settings::secs(svc.settings().oidc.session_ttl);
                page::add_cookie(&mut res, &cookie(svc, SESSION_COOKIE, s, age))?;
            }
            Ok(res)
        }
        StepOutcome::Consent { page, session } => {
            let Some(s) = session else {
                return message(
                    req,
                    actix_web::http::StatusCode::BAD_REQUEST,
                    "error-cannot-log-in",
                    &Msg("error-no-session"),
                );
            };
            let mut res = consent_page(svc, req, &page, &s)?;
            let age = crate::settings::secs(svc.settings().oidc.session_ttl);
            page::add_cookie(&mut res, &cookie(svc, SESSION_COOKIE, s, age))?;
            Ok(res)
        }
        StepOutcome::ErrorPage(text) => message(
            req,
            actix_web::http::StatusCode::BAD_REQUEST,
            "error-cannot-log-in",
            &text,
        ),
    }
}

/// OpenID Connect Discovery.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "oidc",
    responses((status = 200, body = ProviderMetadata)))]
pub(crate) async fn discovery(svc: web::Data<Potvrda>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .json(svc.provider().oidc_metadata())
}

/// Start an authorization: the login page, a code from the session, or an error for the client.
#[utoipa::path(get, path = "/oauth2/authorize", tag = "oidc",
    params(("client_id" = Option<String>, Query), ("redirect_uri" = Option<String>, Query), ("response_type" = Option<String>, Query),
           ("scope" = Option<String>, Query), ("state" = Option<String>, Query), ("nonce" = Option<String>, Query),
           ("code_challenge" = Option<String>, Query), ("code_challenge_method" = Option<String>, Query),
           ("prompt" = Option<String>, Query), ("max_age" = Option<String>, Query)),
    responses((status = 200, description = "The login page", content_type = "text/html"),
              (status = 303, description = "Back to the client with a code or an error"),
              (status = 400, description = "Unknown client or redirect URI", content_type = "text/html")))]
pub(crate) async fn authorize(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    query: web::Query<AuthorizeParams>,
) -> Result<HttpResponse> {
    let caller = super::caller(&req);
    let outcome = svc
        .authorization()
        .oidc_authorize(
            query.into_inner(),
            cookie_value(&req, SESSION_COOKIE).as_deref(),
            cookie_value(&req, BINDING_COOKIE).as_deref(),
            &caller,
        )
        .await?;
    match outcome {
        AuthorizeOutcome::ErrorPage(text) => message(
            &req,
            actix_web::http::StatusCode::BAD_REQUEST,
            "error-invalid-request",
            &text,
        ),
        AuthorizeOutcome::Redirect(url) => Ok(see_other(&url)),
        AuthorizeOutcome::Login(page) => login_page(&svc, &req, &page),
        AuthorizeOutcome::Consent(page) => consent_page(
            &svc,
            &req,
            &page,
            &cookie_value(&req, SESSION_COOKIE).unwrap_or_default(),
        ),
    }
}

/// The consent form.
#[derive(Debug, Deserialize)]
pub(crate) struct ConsentForm {
    request: String,
    csrf: String,
    decision: String,
}

/// The consent page's request.
#[derive(Debug, Deserialize)]
pub(crate) struct ConsentQuery {
    request: String,
}

/// The consent page of a request still waiting, again (the language
/// switch comes back here).
#[utoipa::path(get, path = "/oauth2/authorize/consent", tag = "oidc",
    params(("request" = String, Query)),
    responses((status = 200, description = "The consent page", content_type = "text/html"),
              (status = 400, description = "Unknown or expired request, or another browser", content_type = "text/html")))]
pub(crate) async fn consent_again(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    query: web::Query<ConsentQuery>,
) -> Result<HttpResponse> {
    let session = cookie_value(&req, SESSION_COOKIE);
    let page = match session {
        Some(_) => svc.consents().pending_page(&query.request).await?,
        None => None,
    };
    match (page, session) {
        (Some(page), Some(s)) => consent_page(&svc, &req, &page, &s),
        _ => message(
            &req,
            actix_web::http::StatusCode::BAD_REQUEST,
            "error-cannot-log-in",
            &Msg("error-login-expired"),
        ),
    }
}

/// The citizen's answer on the consent page: back to the service with a
/// code, or with `access_denied`.
#[utoipa::path(post, path = "/oauth2/authorize/consent", tag = "oidc",
    request_body(content_type = "application/x-www-form-urlencoded", description = "request, csrf, decision (allow or deny)"),
    responses((status = 303, description = "Back to the client with a code, or access_denied"),
              (status = 400, description = "Unknown or expired request", content_type = "text/html"),
              (status = 403, description = "A wrong CSRF token")))]
pub(crate) async fn consent(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    form: web::Form<ConsentForm>,
) -> Result<HttpResponse> {
    let session = cookie_value(&req, SESSION_COOKIE);
    if !session
        .as_deref()
        .is_some_and(|s| page::csrf_ok(&svc, Form::Consent, s, &form.csrf))
    {
        return Err(Error::Forbidden.into());
    }
    let allow = match form.decision.as_str() {
        "allow" => true,
        "deny" => false,
        _ => return Err(Error::InvalidRequest("decision must be allow or deny".into()).into()),
    };
    let outcome = svc
        .consents()
        .oidc_consent(&form.request, session.as_deref(), allow)
        .await?;
    step(&svc, &req, outcome)
}

/// The login form.
#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    request: String,
    username: String,
    password: String,
}

/// The login form posted: the waiting page with the number, or the form again.
#[utoipa::path(post, path = "/oauth2/authorize", tag = "oidc",
    request_body(content_type = "application/x-www-form-urlencoded", description = "request, username, password"),
    responses((status = 200, description = "The waiting page (number) or the login page with an error", content_type = "text/html"),
              (status = 400, description = "Unknown or expired request", content_type = "text/html")))]
pub(crate) async fn login(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse> {
    let caller = super::caller(&req);
    let LoginForm {
        request,
        username,
        password,
    } = form.into_inner();
    let outcome = svc
        .authorization()
        .oidc_login(
            &request,
            cookie_value(&req, BINDING_COOKIE).as_deref(),
            username,
            password,
            &caller,
        )
        .await?;
    step(&svc, &req, outcome)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct RequestQuery {
    /// The authorization request.
    request: String,
    /// Seconds to hold for a decision, at most 30.
    #[serde(default)]
    wait: u64,
}

/// The waiting page's long-poll: `{"status"}` of the phone's decision.
#[utoipa::path(get, path = "/oauth2/authorize/wait", tag = "oidc", params(RequestQuery),
    responses((status = 200, body = LoginStatusResponse), (status = 404, description = "Unknown request")))]
pub(crate) async fn wait(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    query: web::Query<RequestQuery>,
) -> Result<HttpResponse> {
    let status = svc
        .authorization()
        .oidc_wait(
            &query.request,
            cookie_value(&req, BINDING_COOKIE).as_deref(),
            query.wait,
        )
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "status": status })))
}

/// Continue after the phone: back to the client once decided, else the waiting page.
#[utoipa::path(get, path = "/oauth2/authorize/continue", tag = "oidc", params(RequestQuery),
    responses((status = 303, description = "Back to the client with a code, or access_denied"),
              (status = 200, description = "Still waiting", content_type = "text/html"),
              (status = 400, description = "Unknown or expired request", content_type = "text/html")))]
pub(crate) async fn proceed(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    query: web::Query<RequestQuery>,
) -> Result<HttpResponse> {
    let outcome = svc
        .authorization()
        .oidc_continue(
            &query.request,
            cookie_value(&req, BINDING_COOKIE).as_deref(),
        )
        .await?;
    step(&svc, &req, outcome)
}

/// The code form of the waiting page.
#[derive(Debug, Deserialize)]
pub(crate) struct CodeForm {
    request: String,
    code: String,
}

/// The phone has no network: its offline code (or a recovery code) instead of the approval.
#[utoipa::path(post, path = "/oauth2/authorize/code", tag = "oidc",
    request_body(content_type = "application/x-www-form-urlencoded", description = "request, code"),
    responses((status = 303, description = "Accepted: back to the client with a code"),
              (status = 401, description = "Wrong code: the waiting page with the reason", content_type = "text/html"),
              (status = 400, description = "Unknown or expired request", content_type = "text/html")))]
pub(crate) async fn code(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse> {
    let caller = super::caller(&req);
    let outcome = svc
        .authorization()
        .oidc_code(
            &form.request,
            cookie_value(&req, BINDING_COOKIE).as_deref(),
            &form.code,
            &caller,
        )
        .await?;
    step(&svc, &req, outcome)
}

/// The waiting page's "send a new request to the phone".
#[derive(Debug, Deserialize)]
pub(crate) struct AgainForm {
    request: String,
}

/// A new challenge to the phone for a login whose password was checked in
/// this browser (WCAG 2.2.1: the time limit renewed with one action).
#[utoipa::path(post, path = "/oauth2/authorize/again", tag = "oidc",
    request_body(content_type = "application/x-www-form-urlencoded", description = "request"),
    responses((status = 200, description = "The waiting page with the new number", content_type = "text/html"),
              (status = 303, description = "Already decided: as continue"),
              (status = 400, description = "Unknown or expired request, or another browser", content_type = "text/html")))]
pub(crate) async fn again(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    form: web::Form<AgainForm>,
) -> Result<HttpResponse> {
    let caller = super::caller(&req);
    let outcome = svc
        .authorization()
        .oidc_again(
            &form.request,
            cookie_value(&req, BINDING_COOKIE).as_deref(),
            &caller,
        )
        .await?;
    step(&svc, &req, outcome)
}

/// `Authorization: Basic` credentials (RFC 6749 §2.3.1: form-urlencoded id and secret).
pub(super) fn basic(req: &HttpRequest) -> crate::error::Result<Option<(String, String)>> {
    let Some(v) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || Error::OAuth {
        error: OAuthError::InvalidClient,
        description: "malformed Basic credentials".into(),
    };
    let v = v.to_str().map_err(|_| bad())?;
    let Some((scheme, b64)) = v.split_once(' ') else {
        return Err(bad());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad());
    }
    let decoded = STANDARD.decode(b64.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let dec = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .ok_or_else(bad)
    };
    Ok(Some((dec(id)?, dec(secret)?)))
}

/// RP-initiated logout: ends the provider session when an ID token of this
/// session is the hint; otherwise asks the citizen first (a form posting back).
#[utoipa::path(get, path = "/oauth2/logout", tag = "oidc",
    params(("id_token_hint" = Option<String>, Query), ("client_id" = Option<String>, Query),
           ("post_logout_redirect_uri" = Option<String>, Query), ("state" = Option<String>, Query)),
    responses((status = 303, description = "To the registered post-logout URI"), (status = 200, description = "Logged out, or the confirmation page", content_type = "text/html")))]
pub(crate) async fn logout(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    query: web::Query<LogoutParams>,
) -> Result<HttpResponse> {
    end_session(&svc, &req, query.into_inner()).await
}

/// The logout confirmation form (and RP-initiated logout by POST).
#[utoipa::path(post, path = "/oauth2/logout", tag = "oidc",
    request_body(content_type = "application/x-www-form-urlencoded", description = "csrf, id_token_hint, client_id, post_logout_redirect_uri, state"),
    responses((status = 303, description = "To the registered post-logout URI"), (status = 200, description = "Logged out", content_type = "text/html"), (status = 403, description = "A wrong CSRF token")))]
pub(crate) async fn logout_form(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    form: web::Form<LogoutParams>,
) -> Result<HttpResponse> {
    end_session(&svc, &req, form.into_inner()).await
}

async fn end_session(svc: &Potvrda, req: &HttpRequest, p: LogoutParams) -> Result<HttpResponse> {
    let fields = p.clone();
    let session = cookie_value(req, SESSION_COOKIE);
    let confirmation = match (&p.csrf, &session) {
        (None, _) => Confirmation::Absent,
        (Some(t), Some(c)) if page::csrf_ok(svc, Form::Logout, c, t) => Confirmation::Confirmed,
        (Some(_), _) => Confirmation::Forged,
    };
    let outcome = svc
        .logouts()
        .oidc_logout(p, session.as_deref(), confirmation)
        .await?;
    let target = match outcome {
        LogoutOutcome::Confirm => {
            let csrf = page::csrf_token(svc, Form::Logout, session.as_deref().unwrap_or_default());
            // The confirmed form answers 303 to the post-logout URI (checked
            // against the client's registration then), which `form-action`
            // must allow.
            let back = fields
                .post_logout_redirect_uri
                .as_deref()
                .unwrap_or_default();
            return page::html_returning(
                actix_web::http::StatusCode::OK,
                LogoutTpl {
                    chrome: lang::chrome(req, None, lang::this_page(req)),
                    csrf: &csrf,
                    client_id: fields.client_id.as_deref().unwrap_or_default(),
                    post_logout_redirect_uri: fields
                        .post_logout_redirect_uri
                        .as_deref()
                        .unwrap_or_default(),
                    state: fields.state.as_deref().unwrap_or_default(),
                }
                .render(),
                back,
            );
        }
        LogoutOutcome::Done(target, frames) => (target, frames),
    };
    let mut res = match target {
        (target, frames) if !frames.is_empty() => front_channel(req, &frames, target.as_deref())?,
        (Some(url), _) => see_other(&url),
        (None, _) => message(
            req,
            actix_web::http::StatusCode::OK,
            "logged-out-title",
            &Msg("logged-out-done"),
        )?,
    };
    let mut gone = cookie(svc, SESSION_COOKIE, String::new(), 0);
    gone.make_removal();
    res.add_cookie(&gone)
        .map_err(|e| Error::Internal(format!("cookie: {e}")))?;
    Ok(res)
}

/// The logged-out page's script (Front-Channel Logout).
#[utoipa::path(get, path = "/oauth2/static/logout.js", tag = "oidc", responses((status = 200, content_type = "text/javascript")))]
pub(crate) async fn logout_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(include_str!("../../../static/logout.js"))
}

/// The waiting page's script.
#[utoipa::path(get, path = "/oauth2/static/wait.js", tag = "oidc", responses((status = 200, content_type = "text/javascript")))]
pub(crate) async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(include_str!("../../../static/wait.js"))
}

/// The pages' style.
#[utoipa::path(get, path = "/oauth2/static/style.css", tag = "oidc", responses((status = 200, content_type = "text/css")))]
pub(crate) async fn style() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(include_str!("../../../static/style.css"))
}
