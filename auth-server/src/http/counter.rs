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

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use potvrda_proto::api::{CitizenSummary, CreateCitizenRequest, PushStatus, Role};
use serde::Deserialize;

use super::page::Form;
use super::sheet;
use super::{Result, page};
use crate::error::Error;
use crate::service::{Desk, DeskView, Potvrda, ResetOutcome};
use crate::store::{DeviceId, UserId};

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

/// The staff member in the page header.
struct StaffLine {
    name: String,
    role: &'static str,
    municipality: Option<String>,
}

#[derive(Template)]
#[template(path = "counter/login.html")]
struct LoginTpl<'a> {
    csrf: &'a str,
    error: &'a Option<String>,
}

#[derive(Template)]
#[template(path = "counter/waiting.html")]
struct WaitingTpl {
    number: String,
}

/// A search result.
struct Row {
    user_id: String,
    username: String,
    display_name: String,
    locked: bool,
    fraud: bool,
}

#[derive(Template)]
#[template(path = "counter/home.html")]
struct HomeTpl<'a> {
    csrf: &'a str,
    staff: StaffLine,
    query: &'a str,
    results: Option<Vec<Row>>,
    error: Option<String>,
}

/// A device on the citizen's page.
struct DeviceRow {
    device_id: String,
    name: String,
    platform: String,
    push: &'static str,
    since: String,
}

#[derive(Template)]
#[template(path = "counter/citizen.html")]
struct CitizenTpl<'a> {
    csrf: &'a str,
    staff: StaffLine,
    c: CitizenSummary,
    created: String,
    fraud: Option<String>,
    devices: Vec<DeviceRow>,
    notice: Option<&'a str>,
    /// Four eyes: (request id, who asked, when, whether this official may confirm).
    pending: Option<(String, String, String, bool)>,
    /// The latest security events, for staff of the citizen's municipality.
    events: Option<Vec<EventRow>>,
}

#[derive(Template)]
#[template(path = "counter/message.html")]
struct MessageTpl<'a> {
    title: &'a str,
    message: &'a str,
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Superadmin => "superadmin",
        Role::Admin => "admin",
        Role::Official => "službenik · official",
        Role::Citizen => "citizen",
    }
}

fn staff_line(desk: &Desk) -> StaffLine {
    match &desk.view {
        DeskView::Staff {
            principal,
            display_name,
            ..
        } => StaffLine {
            name: display_name.clone(),
            role: principal.role().map_or("", role_name),
            municipality: principal.municipality().map(str::to_owned),
        },
        _ => StaffLine {
            name: String::new(),
            role: "",
            municipality: None,
        },
    }
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
fn refused(svc: &Potvrda, desk: &Desk, e: Error) -> Result<HttpResponse> {
    let e = super::ApiError(e);
    let status = e.status_code();
    if status.is_server_error() {
        return Err(e);
    }
    let title = match status {
        StatusCode::FORBIDDEN => "Nije dozvoljeno · Not allowed",
        StatusCode::NOT_FOUND => "Nije pronađeno · Not found",
        _ => "Nije moguće · Not possible",
    };
    let message = e.0.public_message();
    html(
        svc,
        desk,
        status,
        MessageTpl {
            title,
            message: &message,
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
fn page(svc: &Potvrda, desk: &Desk, results: Option<(&str, Vec<Row>)>) -> Result<HttpResponse> {
    let csrf = csrf(svc, desk);
    match &desk.view {
        DeskView::Login { error } => html(
            svc,
            desk,
            StatusCode::OK,
            LoginTpl { csrf: &csrf, error }.render(),
        ),
        DeskView::Waiting { number } => html(
            svc,
            desk,
            StatusCode::OK,
            WaitingTpl {
                number: number.clone(),
            }
            .render(),
        ),
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
        return Ok(Err(refused(svc, &desk, Error::Forbidden)?));
    }
    Ok(Ok(desk))
}

/// The counter: the login form, the waiting page, or the search and new-account forms.
#[utoipa::path(get, path = "/counter", tag = "counter",
    responses((status = 200, description = "The counter page", content_type = "text/html")))]
pub(crate) async fn home(svc: web::Data<Potvrda>, req: HttpRequest) -> Result<HttpResponse> {
    let desk = svc.desks().desk(cookie_of(&req).as_deref()).await?;
    page(&svc, &desk, None)
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
        return refused(&svc, &desk, Error::Forbidden);
    }
    let desk = svc
        .desks()
        .desk_login(desk, username, password, &super::caller(&req))
        .await?;
    page(&svc, &desk, None)
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
        _ => page(&svc, &desk, None),
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
            page(&svc, &desk, Some((&form.query, rows)))
        }
        Err(e) => refused(&svc, &desk, e),
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
        ..
    } = form.into_inner();
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
            )?;
            finish(&svc, &desk, res)
        }
        Err(e) => refused(&svc, &desk, e),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct NoticeQuery {
    /// What was just done: `locked`, `unlocked`, `revoked`.
    #[serde(default)]
    done: Option<String>,
}

/// A citizen's page: status (and a fraud report), devices, actions.
#[utoipa::path(get, path = "/counter/citizens/{user_id}", tag = "counter",
    params(("user_id" = String, Path), NoticeQuery),
    responses((status = 200, description = "The citizen's page", content_type = "text/html"),
              (status = 303, description = "Not logged in: to the login form"),
              (status = 404, description = "No such citizen", content_type = "text/html")))]
pub(crate) async fn citizen(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<UserId>,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse> {
    let desk = svc.desks().desk(cookie_of(&req).as_deref()).await?;
    let Ok(by) = desk.principal() else {
        return see_other(&svc, &desk, "/counter");
    };
    let record = match svc
        .counter()
        .citizen_record(&path, by, &super::caller(&req))
        .await
    {
        Ok(found) => found,
        Err(e) => return refused(&svc, &desk, e),
    };
    let (c, devices) = (record.summary, record.devices);
    let events = record
        .events
        .map(|events| events.iter().map(event_row).collect());
    let notice = match query.done.as_deref() {
        Some("locked") => Some("Nalog je zaključan. · The account is locked."),
        Some("unlocked") => Some("Nalog je otključan. · The account is unlocked."),
        Some("revoked") => Some("Uređaj je opozvan. · The device is revoked."),
        Some("requested") => Some(
            "Zatražen je reset; potvrđuje ga drugi službenik. · Reset requested; a second official confirms it.",
        ),
        _ => None,
    };
    let devices = devices
        .into_iter()
        .map(|d| DeviceRow {
            device_id: d.device_id.into_string(),
            name: d.name,
            platform: d.platform,
            push: match d.push {
                PushStatus::Active => "✓",
                PushStatus::Gone => "nedostupan · gone",
                PushStatus::None => "—",
            },
            since: sheet::utc(d.created_at),
        })
        .collect();
    let me = by.staff_id();
    let pending = c.pending_reset.as_ref().map(|p| {
        (
            p.request_id.clone(),
            p.requested_by_name.clone(),
            sheet::utc(p.requested_at),
            Some(&p.requested_by) != me,
        )
    });
    html(
        &svc,
        &desk,
        StatusCode::OK,
        CitizenTpl {
            csrf: &csrf(&svc, &desk),
            staff: staff_line(&desk),
            created: sheet::utc(c.created_at),
            fraud: c.fraud_reported_at.map(sheet::utc),
            c,
            devices,
            notice,
            pending,
            events,
        }
        .render(),
    )
}

/// One line of a citizen's security events at the counter.
struct EventRow {
    when: String,
    what: &'static str,
    outcome: String,
    address: String,
    service: String,
    alert: bool,
}

fn event_row(e: &potvrda_proto::api::AuditEvent) -> EventRow {
    use potvrda_proto::api::AuditKind as K;
    let text = |key: &str| {
        e.detail
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let what = match e.kind {
        K::LoginStarted => "prijava · login",
        K::LoginApproved => "potvrđeno · approved",
        K::LoginDenied => "odbijeno · denied",
        K::LoginExpired => "isteklo · expired",
        K::LoginFailed => "neuspela prijava · failed login",
        K::FraudReported => "PRIJAVLJENA ZLOUPOTREBA · FRAUD REPORTED",
        K::PasswordLocked => "lozinka blokirana · password locked",
        K::DeviceEnrolled => "uređaj aktiviran · device enrolled",
        K::DeviceRevoked => "uređaj opozvan · device revoked",
        K::AccountLocked => "nalog zaključan · account locked",
        K::AccountUnlocked => "nalog otključan · account unlocked",
        K::AccountReset => "reset",
        K::PasswordChanged => "nova lozinka · password changed",
        K::RecoveryCodeUsed => "rezervni kod · recovery code",
        K::OfflineCodeUsed => "oflajn kod · offline code",
        K::FatiguePaused => "obaveštenja pauzirana · pushes paused",
        _ => "događaj · event",
    };
    // The fraud report carries the reported login's address and browser.
    let address = match e.kind {
        K::FraudReported => text("login_ip"),
        _ => e.ip.clone().unwrap_or_default(),
    };
    EventRow {
        when: sheet::utc(e.at),
        what,
        outcome: text("reason"),
        address,
        service: text("service"),
        alert: e.severity == potvrda_proto::api::Severity::High,
    }
}

/// A lost phone: a new initial password and activation code (the earlier
/// ones stop working), as the sheet to print.
#[utoipa::path(post, path = "/counter/citizens/{user_id}/reset", tag = "counter", params(("user_id" = String, Path)),
    request_body(content_type = "application/x-www-form-urlencoded", description = "csrf"),
    responses((status = 200, description = "The activation sheet to print", content_type = "text/html"),
              (status = 303, description = "Not logged in: to the login form"),
              (status = 403, description = "Wrong CSRF token", content_type = "text/html"),
              (status = 404, description = "No such citizen", content_type = "text/html")))]
pub(crate) async fn reset(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<UserId>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse> {
    let desk = match staff_post(&svc, &req, &form.csrf).await? {
        Ok(d) => d,
        Err(res) => return Ok(res),
    };
    let by = desk.principal()?;
    let caller = super::caller(&req);
    let done = async {
        let name = svc.counter().citizen(&path, by).await?.display_name;
        Ok::<_, Error>((svc.resets().reset_citizen(&path, by, &caller).await?, name))
    }
    .await;
    match done {
        Ok((ResetOutcome::Done(answer), name)) => print(&svc, &desk, &answer, &name),
        Ok((ResetOutcome::Requested(_), _)) => see_other(
            &svc,
            &desk,
            &format!("/counter/citizens/{}?done=requested", path.as_str()),
        ),
        Err(e) => refused(&svc, &desk, e),
    }
}

/// The sheet of a reset, with the way back to the citizen.
fn print(
    svc: &Potvrda,
    desk: &Desk,
    answer: &potvrda_proto::api::CreateCitizenResponse,
    name: &str,
) -> Result<HttpResponse> {
    let back = format!("/counter/citizens/{}", answer.user_id);
    let res = sheet::render_page(svc, StatusCode::OK, answer, name, Some(&back))?;
    finish(svc, desk, res)
}

/// The confirmation form of a four-eyes reset.
#[derive(Debug, Deserialize)]
pub(crate) struct ConfirmForm {
    csrf: String,
    request_id: String,
}

/// Four eyes: the second official confirms the reset; the sheet to print.
#[utoipa::path(post, path = "/counter/citizens/{user_id}/reset/confirm", tag = "counter", params(("user_id" = String, Path)),
    request_body(content_type = "application/x-www-form-urlencoded", description = "csrf, request_id"),
    responses((status = 200, description = "The activation sheet to print", content_type = "text/html"),
              (status = 303, description = "Not logged in: to the login form"),
              (status = 403, description = "Wrong CSRF token, or the official who asked", content_type = "text/html"),
              (status = 404, description = "No such citizen or pending reset", content_type = "text/html")))]
pub(crate) async fn confirm_reset(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<UserId>,
    form: web::Form<ConfirmForm>,
) -> Result<HttpResponse> {
    let desk = match staff_post(&svc, &req, &form.csrf).await? {
        Ok(d) => d,
        Err(res) => return Ok(res),
    };
    let by = desk.principal()?;
    let caller = super::caller(&req);
    let done = async {
        let name = svc.counter().citizen(&path, by).await?.display_name;
        Ok::<_, Error>((
            svc.resets()
                .confirm_reset(&path, &form.request_id, by, &caller)
                .await?,
            name,
        ))
    }
    .await;
    match done {
        Ok((answer, name)) => print(&svc, &desk, &answer, &name),
        Err(e) => refused(&svc, &desk, e),
    }
}

async fn set_locked(
    svc: &Potvrda,
    req: &HttpRequest,
    user_id: &UserId,
    csrf: &str,
    locked: bool,
) -> Result<HttpResponse> {
    let desk = match staff_post(svc, req, csrf).await? {
        Ok(d) => d,
        Err(res) => return Ok(res),
    };
    let caller = super::caller(req);
    match svc
        .staff_admin()
        .set_locked(user_id, locked, desk.principal()?, &caller)
        .await
    {
        Ok(()) => {
            let done = if locked { "locked" } else { "unlocked" };
            see_other(
                svc,
                &desk,
                &format!("/counter/citizens/{user_id}?done={done}"),
            )
        }
        Err(e) => refused(svc, &desk, e),
    }
}

/// Lock the account: no login until unlocked.
#[utoipa::path(post, path = "/counter/citizens/{user_id}/lock", tag = "counter", params(("user_id" = String, Path)),
    request_body(content_type = "application/x-www-form-urlencoded", description = "csrf"),
    responses((status = 303, description = "Back to the citizen's page"), (status = 403, description = "Wrong CSRF token", content_type = "text/html"),
              (status = 404, description = "No such citizen", content_type = "text/html")))]
pub(crate) async fn lock(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<UserId>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse> {
    set_locked(&svc, &req, &path, &form.csrf, true).await
}

/// Unlock the account (clears a fraud report's lock).
#[utoipa::path(post, path = "/counter/citizens/{user_id}/unlock", tag = "counter", params(("user_id" = String, Path)),
    request_body(content_type = "application/x-www-form-urlencoded", description = "csrf"),
    responses((status = 303, description = "Back to the citizen's page"), (status = 403, description = "Wrong CSRF token", content_type = "text/html"),
              (status = 404, description = "No such citizen", content_type = "text/html")))]
pub(crate) async fn unlock(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<UserId>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse> {
    set_locked(&svc, &req, &path, &form.csrf, false).await
}

/// Revoke one of the citizen's devices.
#[utoipa::path(post, path = "/counter/citizens/{user_id}/devices/{device_id}/revoke", tag = "counter",
    params(("user_id" = String, Path), ("device_id" = String, Path)),
    request_body(content_type = "application/x-www-form-urlencoded", description = "csrf"),
    responses((status = 303, description = "Back to the citizen's page"), (status = 403, description = "Wrong CSRF token", content_type = "text/html"),
              (status = 404, description = "No such citizen or device", content_type = "text/html")))]
pub(crate) async fn revoke(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<(UserId, DeviceId)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse> {
    let desk = match staff_post(&svc, &req, &form.csrf).await? {
        Ok(d) => d,
        Err(res) => return Ok(res),
    };
    let (user_id, device_id) = path.into_inner();
    let caller = super::caller(&req);
    match svc
        .counter()
        .revoke_citizen_device(&user_id, &device_id, desk.principal()?, &caller)
        .await
    {
        Ok(()) => see_other(
            &svc,
            &desk,
            &format!("/counter/citizens/{user_id}?done=revoked"),
        ),
        Err(e) => refused(&svc, &desk, e),
    }
}

/// The counter's style.
#[utoipa::path(get, path = "/counter/static/counter.css", tag = "counter", responses((status = 200, content_type = "text/css")))]
pub(crate) async fn style() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(include_str!("../../static/counter.css"))
}

/// The sheet's print button.
#[utoipa::path(get, path = "/counter/static/counter.js", tag = "counter", responses((status = 200, content_type = "text/javascript")))]
pub(crate) async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(include_str!("../../static/counter.js"))
}
