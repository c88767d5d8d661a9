//! A citizen's page at the counter and what is done from it: reset, confirm, lock, unlock, revoke.

use super::*;
use crate::error::Error;
use crate::http::Result;
use crate::http::sheet;
use crate::service::{Desk, Potvrda, ResetOutcome};
use crate::store::{DeviceId, UserId};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use potvrda_proto::api::PushStatus;
use serde::Deserialize;

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
        .citizen_record(&path, by, &crate::http::caller(&req))
        .await
    {
        Ok(found) => found,
        Err(e) => return refused(&svc, &req, &desk, e),
    };
    let (c, devices) = (record.summary, record.devices);
    let events = record
        .events
        .map(|events| events.iter().map(event_row).collect());
    let notice = notice(query.done.as_deref());
    let devices = devices.into_iter().map(device_row).collect();
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
            chrome: chrome(&req, super::super::lang::this_page(&req)),
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

/// What the page says after an action (`?done=`).
fn notice(done: Option<&str>) -> Option<&'static str> {
    match done {
        Some("locked") => Some("notice-locked"),
        Some("unlocked") => Some("notice-unlocked"),
        Some("revoked") => Some("notice-revoked"),
        Some("requested") => Some("notice-reset-requested"),
        _ => None,
    }
}

/// A device as its row on the citizen's page.
fn device_row(d: potvrda_proto::api::DeviceSummary) -> DeviceRow {
    DeviceRow {
        device_id: d.device_id.into_string(),
        name: d.name,
        platform: d.platform,
        push: match d.push {
            PushStatus::Active => "push-on",
            PushStatus::Gone => "push-gone",
            PushStatus::None => "push-off",
        },
        since: sheet::utc(d.created_at),
    }
}

/// One line of a citizen's security events at the counter.
pub(super) struct EventRow {
    pub(super) when: String,
    pub(super) what: &'static str,
    pub(super) outcome: String,
    pub(super) address: String,
    pub(super) service: String,
    pub(super) alert: bool,
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
        K::LoginStarted => "event-login-started",
        K::LoginApproved => "event-login-approved",
        K::LoginDenied => "event-login-denied",
        K::LoginExpired => "event-login-expired",
        K::LoginFailed => "event-login-failed",
        K::FraudReported => "event-fraud-reported",
        K::PasswordLocked => "event-password-locked",
        K::DeviceEnrolled => "event-device-enrolled",
        K::DeviceRevoked => "event-device-revoked",
        K::AccountLocked => "event-account-locked",
        K::AccountUnlocked => "event-account-unlocked",
        K::AccountReset => "event-account-reset",
        K::PasswordChanged => "event-password-changed",
        K::RecoveryCodeUsed => "event-recovery-code-used",
        K::OfflineCodeUsed => "event-offline-code-used",
        K::FatiguePaused => "event-fatigue-paused",
        _ => "event-other",
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
    form: web::Form<SheetForm>,
) -> Result<HttpResponse> {
    let desk = match staff_post(&svc, &req, &form.csrf).await? {
        Ok(d) => d,
        Err(res) => return Ok(res),
    };
    let locale = sheet_locale(&req, Some(&form.locale))?;
    let by = desk.principal()?;
    let caller = crate::http::caller(&req);
    let done = async {
        let name = svc.counter().citizen(&path, by).await?.display_name;
        Ok::<_, Error>((svc.resets().reset_citizen(&path, by, &caller).await?, name))
    }
    .await;
    match done {
        Ok((ResetOutcome::Done(answer), name)) => print(&svc, &desk, &answer, &name, locale),
        Ok((ResetOutcome::Requested(_), _)) => see_other(
            &svc,
            &desk,
            &format!("/counter/citizens/{}?done=requested", path.as_str()),
        ),
        Err(e) => refused(&svc, &req, &desk, e),
    }
}

/// The sheet of a reset, with the way back to the citizen.
fn print(
    svc: &Potvrda,
    desk: &Desk,
    answer: &potvrda_proto::api::CreateCitizenResponse,
    name: &str,
    locale: potvrda_i18n::Locale,
) -> Result<HttpResponse> {
    let back = format!("/counter/citizens/{}", answer.user_id);
    let res = sheet::render_page(svc, StatusCode::OK, answer, name, Some(&back), locale)?;
    finish(svc, desk, res)
}

/// The confirmation form of a four-eyes reset.
#[derive(Debug, Deserialize)]
pub(crate) struct ConfirmForm {
    csrf: String,
    request_id: String,
    /// The sheet's language (`sr-Cyrl`…; empty: the page's).
    #[serde(default)]
    locale: String,
}

/// A form that prints a sheet: its CSRF token and the sheet's language.
#[derive(Debug, Deserialize)]
pub(crate) struct SheetForm {
    csrf: String,
    /// `sr-Cyrl`, `sr-Latn`, `en` or `hu`; empty: the page's language.
    #[serde(default)]
    locale: String,
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
    let locale = sheet_locale(&req, Some(&form.locale))?;
    let by = desk.principal()?;
    let caller = crate::http::caller(&req);
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
        Ok((answer, name)) => print(&svc, &desk, &answer, &name, locale),
        Err(e) => refused(&svc, &req, &desk, e),
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
    let caller = crate::http::caller(req);
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
        Err(e) => refused(svc, req, &desk, e),
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
    let caller = crate::http::caller(&req);
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
        Err(e) => refused(&svc, &req, &desk, e),
    }
}
