//! `/v1/admin`: municipalities, staff, citizens, the audit trail. Every
//! handler authenticates the caller (bootstrap token or a staff member's
//! access token) and the domain decides what that role may do.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use potvrda_proto::ErrorBody;
use potvrda_proto::api::{
    AuditResponse, CitizenList, CitizenSummary, ConfirmResetRequest, CreateCitizenRequest,
    CreateCitizenResponse, CreateMunicipalityRequest, CreateStaffRequest, DeviceList, Municipality,
    PendingReset,
};
use serde::Deserialize;

use super::Result;
use super::bearer;
use crate::error::Error;
use crate::service::{Potvrda, ResetOutcome};
use crate::store::{AuditFilter, DeviceId, UserId};

/// Events in one answer by default, and at most.
const AUDIT_PAGE: usize = 100;
const AUDIT_PAGE_MAX: usize = 1000;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin/citizens")
            .route(web::post().to(create_citizen))
            .route(web::get().to(search)),
    )
    .service(web::resource("/admin/citizens/{user_id}").route(web::get().to(citizen)))
    .service(web::resource("/admin/citizens/{user_id}/devices").route(web::get().to(devices)))
    .service(web::resource("/admin/citizens/{user_id}/events").route(web::get().to(events)))
    .service(
        web::resource("/admin/citizens/{user_id}/devices/{device_id}")
            .route(web::delete().to(revoke_device)),
    )
    .service(web::resource("/admin/citizens/{user_id}/reset").route(web::post().to(reset)))
    .service(
        web::resource("/admin/citizens/{user_id}/reset/confirm")
            .route(web::post().to(confirm_reset)),
    )
    .service(web::resource("/admin/citizens/{user_id}/lock").route(web::post().to(lock)))
    .service(web::resource("/admin/citizens/{user_id}/unlock").route(web::post().to(unlock)))
    .service(web::resource("/admin/municipalities").route(web::post().to(create_municipality)))
    .service(web::resource("/admin/staff").route(web::post().to(create_staff)))
    .service(web::resource("/admin/staff/{user_id}/deactivate").route(web::post().to(deactivate)))
    .service(web::resource("/admin/audit").route(web::get().to(audit)))
    .service(web::resource("/admin/audit/export").route(web::get().to(audit_export)));
}

/// Create a citizen: initial password and activation code, shown once.
#[utoipa::path(post, path = "/v1/admin/citizens", tag = "admin", request_body = CreateCitizenRequest,
    security(("bearer" = [])),
    responses((status = 201, body = CreateCitizenResponse), (status = 401, body = ErrorBody),
              (status = 409, description = "username_taken", body = ErrorBody), (status = 400, description = "Malformed request", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn create_citizen(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    body: web::Json<CreateCitizenRequest>,
) -> Result<HttpResponse> {
    let by = svc.staff_admin().authenticate_admin(bearer(&req)).await?;
    let caller = super::caller(&req);
    let body = body.into_inner();
    let name = body.display_name.clone();
    let created = svc.accounts().create_citizen(body, &by, &caller).await?;
    if super::sheet::wants_sheet(&req) {
        return super::sheet::render(
            &svc,
            StatusCode::CREATED,
            &created,
            &name,
            super::lang::locale(&req, None),
        );
    }
    Ok(HttpResponse::Created().json(created))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchQuery {
    /// The start of a username.
    query: String,
}

/// Find citizens by the start of their username (officials and up).
#[utoipa::path(get, path = "/v1/admin/citizens", tag = "admin", params(SearchQuery),
    security(("bearer" = [])),
    responses((status = 200, body = CitizenList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 400, description = "Malformed request", body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn search(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse> {
    let by = svc.staff_admin().authenticate_admin(bearer(&req)).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(
            svc.counter()
                .search_citizens(&query.query, &by, &super::caller(&req))
                .await?,
        ))
}

/// One citizen: name, contact, lock state and a fraud report's time.
#[utoipa::path(get, path = "/v1/admin/citizens/{user_id}", tag = "admin", params(("user_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = CitizenSummary), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn citizen(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<UserId>,
) -> Result<HttpResponse> {
    let by = svc.staff_admin().authenticate_admin(bearer(&req)).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(
            svc.counter()
                .read_citizen(&path, &by, &super::caller(&req))
                .await?,
        ))
}

/// A citizen's devices.
#[utoipa::path(get, path = "/v1/admin/citizens/{user_id}/devices", tag = "admin", params(("user_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = DeviceList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn devices(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<UserId>,
) -> Result<HttpResponse> {
    let by = svc.staff_admin().authenticate_admin(bearer(&req)).await?;
    Ok(HttpResponse::Ok().json(
        svc.counter()
            .citizen_devices(&path, &by, &super::caller(&req))
            .await?,
    ))
}

/// A citizen's latest security events (logins with service, address and
/// outcome; the fraud report with its context), newest first: for staff of
/// the citizen's municipality and superadmins (403 for others).
#[utoipa::path(get, path = "/v1/admin/citizens/{user_id}/events", tag = "admin", params(("user_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = AuditResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn events(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<UserId>,
) -> Result<HttpResponse> {
    let by = svc.staff_admin().authenticate_admin(bearer(&req)).await?;
    let events = svc
        .counter()
        .citizen_events(&path, &by, &super::caller(&req))
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(AuditResponse {
            events,
            next_after: None,
        }))
}

/// Revoke a citizen's device: no more pushes; its approvals are refused.
#[utoipa::path(delete, path = "/v1/admin/citizens/{user_id}/devices/{device_id}", tag = "admin",
    params(("user_id" = String, Path), ("device_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn revoke_device(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<(UserId, DeviceId)>,
) -> Result<HttpResponse> {
    let by = svc.staff_admin().authenticate_admin(bearer(&req)).await?;
    let (user_id, device_id) = path.into_inner();
    svc.counter()
        .revoke_citizen_device(&user_id, &device_id, &by, &super::caller(&req))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A lost phone: a new initial password and activation code, shown once;
/// with `FOUR_EYES_RESET`, 202 and a pending reset a second official confirms.
#[utoipa::path(post, path = "/v1/admin/citizens/{user_id}/reset", tag = "admin", params(("user_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = CreateCitizenResponse), (status = 202, description = "Four eyes: asked, to be confirmed", body = PendingReset),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn reset(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<UserId>,
) -> Result<HttpResponse> {
    let by = svc.staff_admin().authenticate_admin(bearer(&req)).await?;
    let answer = match svc
        .resets()
        .reset_citizen(&path, &by, &super::caller(&req))
        .await?
    {
        ResetOutcome::Done(answer) => answer,
        ResetOutcome::Requested(pending) => return Ok(HttpResponse::Accepted().json(pending)),
    };
    secrets(&svc, &req, answer)
}

/// The answer that carries a reset's secrets: JSON, or the sheet.
fn secrets(
    svc: &Potvrda,
    req: &HttpRequest,
    answer: CreateCitizenResponse,
) -> Result<HttpResponse> {
    if super::sheet::wants_sheet(req) {
        let name = answer.username.clone();
        return super::sheet::render(
            svc,
            StatusCode::OK,
            &answer,
            &name,
            super::lang::locale(req, None),
        );
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(answer))
}

/// Four eyes: a second official confirms a pending reset and gets the secrets.
#[utoipa::path(post, path = "/v1/admin/citizens/{user_id}/reset/confirm", tag = "admin", params(("user_id" = String, Path)),
    request_body = ConfirmResetRequest, security(("bearer" = [])),
    responses((status = 200, body = CreateCitizenResponse), (status = 401, body = ErrorBody),
              (status = 403, description = "forbidden, second_official_required (the one who asked, or another municipality)", body = ErrorBody),
              (status = 404, description = "No such citizen or pending reset", body = ErrorBody), (status = 400, description = "Malformed request", body = ErrorBody),
              (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn confirm_reset(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<UserId>,
    body: web::Json<ConfirmResetRequest>,
) -> Result<HttpResponse> {
    let by = svc.staff_admin().authenticate_admin(bearer(&req)).await?;
    let answer = svc
        .resets()
        .confirm_reset(&path, &body.request_id, &by, &super::caller(&req))
        .await?;
    secrets(&svc, &req, answer)
}

/// Create a municipality (superadmin).
#[utoipa::path(post, path = "/v1/admin/municipalities", tag = "admin", request_body = CreateMunicipalityRequest,
    security(("bearer" = [])),
    responses((status = 201, body = Municipality), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, description = "municipality_exists", body = ErrorBody), (status = 400, description = "Malformed request", body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn create_municipality(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    body: web::Json<CreateMunicipalityRequest>,
) -> Result<HttpResponse> {
    let by = svc.staff_admin().authenticate_admin(bearer(&req)).await?;
    let caller = super::caller(&req);
    let m = svc
        .staff_admin()
        .create_municipality(body.into_inner(), &by, &caller)
        .await?;
    Ok(HttpResponse::Created().json(m))
}

/// Create a staff account: initial password and activation code, shown once.
#[utoipa::path(post, path = "/v1/admin/staff", tag = "admin", request_body = CreateStaffRequest,
    security(("bearer" = [])),
    responses((status = 201, body = CreateCitizenResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, description = "username_taken", body = ErrorBody), (status = 400, description = "Malformed request, unknown_municipality", body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn create_staff(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    body: web::Json<CreateStaffRequest>,
) -> Result<HttpResponse> {
    let by = svc.staff_admin().authenticate_admin(bearer(&req)).await?;
    let caller = super::caller(&req);
    let body = body.into_inner();
    let name = body.display_name.clone();
    let created = svc.staff_admin().create_staff(body, &by, &caller).await?;
    if super::sheet::wants_sheet(&req) {
        return super::sheet::render(
            &svc,
            StatusCode::CREATED,
            &created,
            &name,
            super::lang::locale(&req, None),
        );
    }
    Ok(HttpResponse::Created().json(created))
}

/// Deactivate a staff account (superadmin; an admin for officials of their municipality).
#[utoipa::path(post, path = "/v1/admin/staff/{user_id}/deactivate", tag = "admin", params(("user_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn deactivate(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<UserId>,
) -> Result<HttpResponse> {
    let by = svc.staff_admin().authenticate_admin(bearer(&req)).await?;
    svc.staff_admin()
        .deactivate_staff(&path, &by, &super::caller(&req))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Lock a citizen's account: no login until unlocked at a counter.
#[utoipa::path(post, path = "/v1/admin/citizens/{user_id}/lock", tag = "admin", params(("user_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn lock(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<UserId>,
) -> Result<HttpResponse> {
    let by = svc.staff_admin().authenticate_admin(bearer(&req)).await?;
    svc.staff_admin()
        .set_locked(&path, true, &by, &super::caller(&req))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Unlock a citizen's account.
#[utoipa::path(post, path = "/v1/admin/citizens/{user_id}/unlock", tag = "admin", params(("user_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn unlock(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<UserId>,
) -> Result<HttpResponse> {
    let by = svc.staff_admin().authenticate_admin(bearer(&req)).await?;
    svc.staff_admin()
        .set_locked(&path, false, &by, &super::caller(&req))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Which audit events to read.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    /// Only events about this citizen.
    user_id: Option<String>,
    /// Only events by this actor.
    actor_id: Option<String>,
    /// Not before (Unix seconds).
    since: Option<i64>,
    /// Not after (Unix seconds).
    until: Option<i64>,
    /// Continue after this event id (`next_after` of the previous page).
    after: Option<String>,
    /// Events per page, 1–1000 (default 100).
    limit: Option<usize>,
}

impl AuditQuery {
    fn filter(self, default_limit: usize) -> crate::error::Result<AuditFilter> {
        let after = self
            .after
            .map(|a| {
                crate::audit::parse_id(&a)
                    .ok_or_else(|| Error::InvalidRequest("after must be an event id".into()))
            })
            .transpose()?;
        let limit = self.limit.unwrap_or(default_limit);
        if !(1..=AUDIT_PAGE_MAX).contains(&limit) {
            return Err(Error::InvalidRequest(format!(
                "limit must be 1-{AUDIT_PAGE_MAX}"
            )));
        }
        let id = |v: Option<String>, name: &str| -> crate::error::Result<Option<String>> {
            match v {
                Some(v) if v.is_empty() || v.len() > 64 => Err(Error::InvalidRequest(format!(
                    "{name} must be 1-64 characters"
                ))),
                v => Ok(v),
            }
        };
        Ok(AuditFilter {
            municipality: None,
            user_id: id(self.user_id, "user_id")?,
            actor_id: id(self.actor_id, "actor_id")?,
            since: self.since,
            until: self.until,
            after,
            limit,
        })
    }
}

/// Audit events, oldest first, a page at a time.
#[utoipa::path(get, path = "/v1/admin/audit", tag = "admin", params(AuditQuery),
    security(("bearer" = [])),
    responses((status = 200, body = AuditResponse), (status = 401, body = ErrorBody), (status = 400, description = "Malformed request", body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn audit(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse> {
    let by = svc.staff_admin().authenticate_admin(bearer(&req)).await?;
    let mut filter = query.into_inner().filter(AUDIT_PAGE)?;
    let audit_user = filter.user_id.clone().map(UserId::from);
    filter.municipality = svc
        .staff_admin()
        .audit_scope(&by, audit_user.as_ref())
        .await?;
    let page = svc.audit().read(&filter).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(AuditResponse {
            events: page.events,
            next_after: page.next_after,
        }))
}

/// Every matching audit event as JSON Lines (`application/x-ndjson`), streamed.
#[utoipa::path(get, path = "/v1/admin/audit/export", tag = "admin", params(AuditQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "One AuditEvent per line", content_type = "application/x-ndjson"), (status = 401, body = ErrorBody), (status = 400, description = "Malformed request", body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn audit_export(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse> {
    let by = svc.staff_admin().authenticate_admin(bearer(&req)).await?;
    let mut filter = query.into_inner().filter(AUDIT_PAGE_MAX)?;
    let audit_user = filter.user_id.clone().map(UserId::from);
    filter.municipality = svc
        .staff_admin()
        .audit_scope(&by, audit_user.as_ref())
        .await?;
    // The first page is read before answering, so a store outage is a 503.
    let first = svc.audit().read(&filter).await?;
    let lines = futures_util::stream::unfold(
        (svc, filter, Some(Ok(first))),
        |(svc, mut filter, page)| async move {
            let page = match page? {
                Ok(page) => page,
                // Abort the transfer: the client sees an incomplete body, not a short export.
                Err(e) => {
                    tracing::error!(error = %e, "audit export cut short");
                    return Some((
                        Err(actix_web::Error::from(super::ApiError(e))),
                        (svc, filter, None),
                    ));
                }
            };
            let mut body = Vec::new();
            for event in &page.events {
                // An AuditEvent always serialises (string keys, no floats from outside).
                if serde_json::to_writer(&mut body, event).is_ok() {
                    body.push(b'\n');
                }
            }
            let next = match page.next_after.as_deref().and_then(crate::audit::parse_id) {
                Some(after) => {
                    filter.after = Some(after);
                    Some(svc.audit().read(&filter).await)
                }
                None => None,
            };
            Some((Ok(web::Bytes::from(body)), (svc, filter, next)))
        },
    );
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .insert_header(("Cache-Control", "no-store"))
        .streaming(lines))
}
