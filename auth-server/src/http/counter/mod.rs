//! The counter's web pages at `/counter`: server-rendered (askama), no
//! front-end build. An official logs in with password and phone approval,
//! then searches, opens accounts, resets (lost phone), locks, unlocks,
//! revokes devices and prints the activation sheet. The session is a random
//! `HttpOnly`, `SameSite=Strict` cookie (`Secure` behind HTTPS) naming a
//! server-side session ([`Desk`]); every form carries the session's CSRF
//! token; every page has a strict Content-Security-Policy.
//!
//! Handlers parse, call the domain (the same calls as the admin API, with
//! the official as the [`Actor`](crate::service::Actor)) and render.
//! A refused action is a page with the status of the API's error.

mod citizens;
mod pages;

pub(crate) use citizens::*;
use pages::*;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use potvrda_i18n::Locale;
use potvrda_proto::api::CreateCitizenRequest;
use serde::Deserialize;

use super::page::Form;
use super::sheet;
use super::{Result, page};
use crate::error::Error;
use crate::service::{Desk, DeskView, Potvrda};

const COOKIE: &str = "potvrda_counter";

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/counter")
            .app_data(
                web::FormConfig::default()
                    .limit(16 * 1024)
                    .error_handler(|e, _| {
                        super::ApiError(Error::InvalidRequest(format!("malformed form: {e}")))
                            .into()
                    }),
            )
            .service(web::resource("").route(web::get().to(home)))
            .service(web::resource("/login").route(web::post().to(login)))
            .service(web::resource("/login/wait").route(web::get().to(wait)))
            .service(web::resource("/login/continue").route(web::get().to(proceed)))
            .service(web::resource("/login/again").route(web::post().to(again)))
            .service(web::resource("/logout").route(web::post().to(logout)))
            .service(web::resource("/search").route(web::post().to(search)))
            .service(web::resource("/citizens").route(web::post().to(create)))
            .service(web::resource("/citizens/{user_id}").route(web::get().to(citizen)))
            .service(web::resource("/citizens/{user_id}/reset").route(web::post().to(reset)))
            .service(
                web::resource("/citizens/{user_id}/reset/confirm")
                    .route(web::post().to(confirm_reset)),
            )
            .service(web::resource("/citizens/{user_id}/lock").route(web::post().to(lock)))
            .service(web::resource("/citizens/{user_id}/unlock").route(web::post().to(unlock)))
            .service(
                web::resource("/citizens/{user_id}/devices/{device_id}/revoke")
                    .route(web::post().to(revoke)),
            )
            .service(web::resource("/static/counter.css").route(web::get().to(style)))
            .service(web::resource("/static/counter.js").route(web::get().to(script))),
    );
}

/// The session cookie's name under HTTPS: `__Host-` makes the browser
/// refuse it unless it was set by this host, `Secure`, for `Path=/`, without
/// `Domain`, so a sibling subdomain or a plain-HTTP answer cannot plant one
/// (cookie tossing, security round 2 finding 4).
const HOST_COOKIE: &str = "__Host-potvrda_counter";

fn cookie_name(svc: &Potvrda) -> &'static str {
    if page::https(svc) {
        HOST_COOKIE
    } else {
        COOKIE
    }
}

/// The session cookie: never readable by scripts, never sent from another
/// site; under HTTPS a `__Host-` cookie (which must have `Path=/`),
/// otherwise (development) only for `/counter`.
fn cookie(svc: &Potvrda, value: String) -> Cookie<'static> {
    let secure = page::https(svc);
    Cookie::build(cookie_name(svc), value)
        .path(if secure { "/" } else { "/counter" })
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .finish()
}

/// Headers every counter answer carries (the page kit's policy on
/// redirects and JSON too), and the new cookie if there is one.
fn finish(svc: &Potvrda, desk: &Desk, mut res: HttpResponse) -> Result<HttpResponse> {
    let h = res.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            header::HeaderValue::from_static(page::CSP),
        );
    }
    if let Some(v) = &desk.set_cookie {
        page::add_cookie(&mut res, &cookie(svc, v.clone()))?;
    }
    Ok(res)
}

fn html(
    svc: &Potvrda,
    desk: &Desk,
    status: StatusCode,
    body: std::result::Result<String, askama::Error>,
) -> Result<HttpResponse> {
    finish(svc, desk, page::html(status, body)?)
}

fn see_other(svc: &Potvrda, desk: &Desk, to: &str) -> Result<HttpResponse> {
    finish(svc, desk, page::see_other(to))
}

/// A refused action as a page with the API's status and public message;
/// server errors stay the one JSON answer (and the log).
fn refused(svc: &Potvrda, req: &HttpRequest, desk: &Desk, e: Error) -> Result<HttpResponse> {
    let e = super::ApiError(e);
    let status = e.status_code();
    if status.is_server_error() {
        return Err(e);
    }
    let title = match status {
        StatusCode::FORBIDDEN => "error-forbidden",
        StatusCode::NOT_FOUND => "error-not-found",
        _ => "error-not-possible",
    };
    html(
        svc,
        desk,
        status,
        MessageTpl {
            chrome: chrome(req, "/counter".into()),
            title,
            message: refusal(&e.0),
        }
        .render(),
    )
}

fn cookie_of(req: &HttpRequest) -> Option<String> {
    let svc = req.app_data::<web::Data<Potvrda>>()?;
    page::cookie_value(req, cookie_name(svc))
}

/// The session's forms' CSRF token (the page kit's, bound to its cookie).
fn csrf(svc: &Potvrda, desk: &Desk) -> String {
    page::csrf_token(svc, Form::Counter, desk.cookie())
}

/// The page a session shows at `/counter`.
fn page(
    svc: &Potvrda,
    req: &HttpRequest,
    desk: &Desk,
    results: Option<(&str, Vec<Row>)>,
) -> Result<HttpResponse> {
    let csrf = csrf(svc, desk);
    let chrome = || chrome(req, "/counter".into());
    match &desk.view {
        DeskView::Login { error } => html(
            svc,
            desk,
            StatusCode::OK,
            LoginTpl {
                chrome: chrome(),
                csrf: &csrf,
                error,
            }
            .render(),
        ),
        DeskView::Waiting {
            number,
            expires_in,
            can_resend,
        } => {
            let chrome = chrome();
            html(
                svc,
                desk,
                StatusCode::OK,
                WaitingTpl {
                    time_forms: TimeForms::of(&chrome.tr),
                    chrome,
                    csrf: &csrf,
                    number: number.clone(),
                    expires_in: *expires_in,
                    can_resend: *can_resend,
                }
                .render(),
            )
        }
        DeskView::Staff { .. } => {
            let (query, results) = match results {
                Some((q, r)) => (q, Some(r)),
                None => ("", None),
            };
            html(
                svc,
                desk,
                StatusCode::OK,
                HomeTpl {
                    chrome: chrome(),
                    csrf: &csrf,
                    staff: staff_line(desk),
                    query,
                    results,
                    error: None,
                }
                .render(),
            )
        }
    }
}

/// A form's CSRF token.
#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    csrf: String,
}

/// The logged-in session of a form post with a good CSRF token; `Err` with
/// the answer to give instead (to the login page when not logged in).
async fn staff_post(
    svc: &Potvrda,
    req: &HttpRequest,
    csrf: &str,
) -> Result<std::result::Result<Desk, HttpResponse>> {
    let desk = svc.desks().desk(cookie_of(req).as_deref()).await?;
    if desk.principal().is_err() {
        return Ok(Err(see_other(svc, &desk, "/counter")?));
    }
    if !page::csrf_ok(svc, Form::Counter, desk.cookie(), csrf) {
        return Ok(Err(refused(svc, req, &desk, Error::Forbidden)?));
    }
    Ok(Ok(desk))
}

/// The counter: the login form, the waiting page, or the search and new-account forms.
#[utoipa::path(get, path = "/counter", tag = "counter",
    responses((status = 200, description = "The counter page", content_type = "text/html")))]
pub(crate) async fn home(svc: web::Data<Potvrda>, req: HttpRequest) -> Result<HttpResponse> {
    let desk = svc.desks().desk(cookie_of(&req).as_deref()).await?;
    page(&svc, &req, &desk, None)
}

/// The login form.
#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    csrf: String,
    username: String,
    password: String,
}

/// Password posted: the waiting page with the number, or the form again.
#[utoipa::path(post, path = "/counter/login", tag = "counter",
    request_body(content_type = "application/x-www-form-urlencoded", description = "csrf, username, password"),
    responses((status = 200, description = "The waiting page or the login form with the reason", content_type = "text/html"),
              (status = 403, description = "Wrong CSRF token", content_type = "text/html")))]
pub(crate) async fn login(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse> {
    let LoginForm {
        csrf,
        username,
        password,
    } = form.into_inner();
    let desk = svc.desks().desk(cookie_of(&req).as_deref()).await?;
    if !page::csrf_ok(&svc, Form::Counter, desk.cookie(), &csrf) {
        return refused(&svc, &req, &desk, Error::Forbidden);
    }
    let desk = svc
        .desks()
        .desk_login(desk, username, password, &super::caller(&req))
        .await?;
    page(&svc, &req, &desk, None)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct WaitQuery {
    /// Seconds to hold for a decision, at most 30.
    #[serde(default)]
    wait: u64,
}

/// The waiting page's long-poll: `{"status"}` of the phone's decision.
#[utoipa::path(get, path = "/counter/login/wait", tag = "counter", params(WaitQuery),
    responses((status = 200, body = potvrda_proto::api::LoginStatusResponse), (status = 404, description = "No login waiting")))]
pub(crate) async fn wait(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    query: web::Query<WaitQuery>,
) -> Result<HttpResponse> {
    let desk = svc.desks().desk(cookie_of(&req).as_deref()).await?;
    let status = svc.desks().desk_wait(&desk, query.wait).await?;
    finish(
        &svc,
        &desk,
        HttpResponse::Ok().json(serde_json::json!({ "status": status })),
    )
}

/// After the phone: into the counter once approved (a new session cookie).
#[utoipa::path(get, path = "/counter/login/continue", tag = "counter",
    responses((status = 303, description = "Logged in: to the counter"),
              (status = 200, description = "Still waiting, or the login form with the reason", content_type = "text/html")))]
pub(crate) async fn proceed(svc: web::Data<Potvrda>, req: HttpRequest) -> Result<HttpResponse> {
    let desk = svc.desks().desk(cookie_of(&req).as_deref()).await?;
    let desk = svc.desks().desk_continue(desk).await?;
    match desk.view {
        DeskView::Staff { .. } => see_other(&svc, &desk, "/counter"),
        _ => page(&svc, &req, &desk, None),
    }
}

/// "Send a new request to the phone" (WCAG 2.2.1): a new challenge for
/// the login this session is waiting for, without the password again.
#[utoipa::path(post, path = "/counter/login/again", tag = "counter",
    request_body(content_type = "application/x-www-form-urlencoded", description = "csrf"),
    responses((status = 200, description = "The waiting page with the new number, or the login form with the reason", content_type = "text/html"),
              (status = 303, description = "Already approved: into the counter"),
              (status = 403, description = "Wrong CSRF token", content_type = "text/html")))]
pub(crate) async fn again(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse> {
    let desk = svc.desks().desk(cookie_of(&req).as_deref()).await?;
    if !page::csrf_ok(&svc, Form::Counter, desk.cookie(), &form.csrf) {
        return refused(&svc, &req, &desk, Error::Forbidden);
    }
    let desk = svc.desks().desk_again(desk, &super::caller(&req)).await?;
    match desk.view {
        DeskView::Staff { .. } => see_other(&svc, &desk, "/counter"),
        _ => page(&svc, &req, &desk, None),
    }
}

/// Log out.
#[utoipa::path(post, path = "/counter/logout", tag = "counter",
    request_body(content_type = "application/x-www-form-urlencoded", description = "csrf"),
    responses((status = 303, description = "To the login form"), (status = 403, description = "Wrong CSRF token", content_type = "text/html")))]
pub(crate) async fn logout(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse> {
    let desk = match staff_post(&svc, &req, &form.csrf).await? {
        Ok(d) => d,
        Err(res) => return Ok(res),
    };
    let desk = svc.desks().desk_logout(desk).await?;
    see_other(&svc, &desk, "/counter")
}

/// The search form.
#[derive(Debug, Deserialize)]
pub(crate) struct SearchForm {
    csrf: String,
    query: String,
}

/// Find citizens by the start of their username.
#[utoipa::path(post, path = "/counter/search", tag = "counter",
    request_body(content_type = "application/x-www-form-urlencoded", description = "csrf, query"),
    responses((status = 200, description = "The counter page with the matches", content_type = "text/html"),
              (status = 303, description = "Not logged in: to the login form"),
              (status = 400, description = "Empty or long query", content_type = "text/html"),
              (status = 403, description = "Wrong CSRF token", content_type = "text/html")))]
pub(crate) async fn search(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    form: web::Form<SearchForm>,
) -> Result<HttpResponse> {
    let desk = match staff_post(&svc, &req, &form.csrf).await? {
        Ok(d) => d,
        Err(res) => return Ok(res),
    };
    let by = desk.principal()?;
    match svc
        .counter()
        .search_citizens(&form.query, by, &super::caller(&req))
        .await
    {
        Ok(list) => {
            let rows = list
                .citizens
                .into_iter()
                .map(|c| Row {
                    user_id: c.user_id.into_string(),
                    username: c.username,
                    display_name: c.display_name,
                    locked: c.locked,
                    fraud: c.fraud_reported_at.is_some(),
                })
                .collect();
            page(&svc, &req, &desk, Some((&form.query, rows)))
        }
        Err(e) => refused(&svc, &req, &desk, e),
    }
}

/// The new-account form.
#[derive(Debug, Deserialize)]
pub(crate) struct CreateForm {
    csrf: String,
    username: String,
    display_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
    /// The sheet's language (`sr-Cyrl`…; empty: the page's).
    #[serde(default)]
    locale: Option<String>,
}

fn optional(s: String) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// Open a citizen's account: the printable sheet with the secrets, once.
#[utoipa::path(post, path = "/counter/citizens", tag = "counter",
    request_body(content_type = "application/x-www-form-urlencoded", description = "csrf, username, display_name, email, phone"),
    responses((status = 201, description = "The activation sheet to print", content_type = "text/html"),
              (status = 303, description = "Not logged in: to the login form"),
              (status = 400, description = "Invalid username or name", content_type = "text/html"),
              (status = 403, description = "Wrong CSRF token", content_type = "text/html"),
              (status = 409, description = "The username is taken", content_type = "text/html")))]
pub(crate) async fn create(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    form: web::Form<CreateForm>,
) -> Result<HttpResponse> {
    let desk = match staff_post(&svc, &req, &form.csrf).await? {
        Ok(d) => d,
        Err(res) => return Ok(res),
    };
    let CreateForm {
        username,
        display_name,
        email,
        phone,
        locale,
        ..
    } = form.into_inner();
    let sheet_locale = sheet_locale(&req, locale.as_deref())?;
    let body = CreateCitizenRequest {
        username,
        display_name: display_name.clone(),
        email: optional(email),
        phone: optional(phone),
    };
    let caller = super::caller(&req);
    match svc
        .accounts()
        .create_citizen(body, desk.principal()?, &caller)
        .await
    {
        Ok(created) => {
            let back = format!("/counter/citizens/{}", created.user_id);
            let res = sheet::render_page(
                &svc,
                StatusCode::CREATED,
                &created,
                &display_name,
                Some(&back),
                sheet_locale,
            )?;
            finish(&svc, &desk, res)
        }
        Err(e) => refused(&svc, &req, &desk, e),
    }
}

/// The counter's style.
#[utoipa::path(get, path = "/counter/static/counter.css", tag = "counter", responses((status = 200, content_type = "text/css")))]
pub(crate) async fn style() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(include_str!("../../../static/counter.css"))
}

/// The sheet's print button.
#[utoipa::path(get, path = "/counter/static/counter.js", tag = "counter", responses((status = 200, content_type = "text/javascript")))]
pub(crate) async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(include_str!("../../../static/counter.js"))
}

/// The counter's pages' frame: the official's language, back to `here`.
fn chrome(req: &HttpRequest, here: String) -> super::lang::Chrome {
    super::lang::chrome(req, None, here)
}

/// The sheet's language: the one the official chose for the citizen, else
/// the page's own.
fn sheet_locale(req: &HttpRequest, chosen: Option<&str>) -> Result<Locale> {
    match chosen.filter(|c| !c.is_empty()) {
        Some(tag) => tag
            .parse()
            .map_err(|e| Error::InvalidRequest(format!("locale: {e}")).into()),
        None => Ok(super::lang::locale(req, None)),
    }
}

/// What a refused action says, by the error's stable code.
fn refusal(e: &Error) -> &'static str {
    use potvrda_proto::ErrorCode as C;
    match e.code() {
        C::UsernameTaken => "refused-username-taken",
        C::InvalidRequest => "refused-invalid-request",
        C::Forbidden => "refused-forbidden",
        C::NotFound | C::UnknownDevice => "refused-not-found",
        C::SecondOfficialRequired => "refused-second-official",
        C::AccountLocked => "refused-account-locked",
        C::RateLimited => "refused-rate-limited",
        _ => "refused-other",
    }
}
