//! `/v1/me`: a signed-in user's own devices and password (their access token).

use actix_web::{HttpRequest, HttpResponse, web};
use potvrda_proto::ErrorBody;
use potvrda_proto::api::{
    ChangePasswordRequest, DeviceAdditionStarted, DeviceAdditionStatus, DeviceList,
    RenameDeviceRequest,
};
use serde::Deserialize;

use super::Result;
use super::bearer;
use crate::service::Potvrda;
use crate::store::DeviceId;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/me/devices").route(web::get().to(devices)))
        .service(web::resource("/me/devices/additions").route(web::post().to(start_addition)))
        .service(
            web::resource("/me/devices/additions/{request_id}")
                .route(web::get().to(addition_status)),
        )
        .service(
            web::resource("/me/devices/{device_id}")
                .route(web::delete().to(revoke_device))
                .route(web::patch().to(rename_device)),
        )
        .service(web::resource("/me/password").route(web::post().to(password)));
}

/// My devices.
#[utoipa::path(get, path = "/v1/me/devices", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = DeviceList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn devices(svc: web::Data<Potvrda>, req: HttpRequest) -> Result<HttpResponse> {
    let by = svc.staff_admin().authenticate_self(bearer(&req)).await?;
    Ok(HttpResponse::Ok().json(svc.self_service().my_devices(&by).await?))
}

/// Revoke one of my devices (a phone sold or lost).
#[utoipa::path(delete, path = "/v1/me/devices/{device_id}", tag = "me", params(("device_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn revoke_device(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<DeviceId>,
) -> Result<HttpResponse> {
    let by = svc.staff_admin().authenticate_self(bearer(&req)).await?;
    svc.self_service()
        .revoke_my_device(&path, &by, &super::caller(&req))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Rename one of my devices.
#[utoipa::path(patch, path = "/v1/me/devices/{device_id}", tag = "me", params(("device_id" = String, Path)),
    request_body = RenameDeviceRequest, security(("bearer" = [])),
    responses((status = 204), (status = 400, description = "Empty or long name", body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn rename_device(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<DeviceId>,
    body: web::Json<RenameDeviceRequest>,
) -> Result<HttpResponse> {
    let by = svc.staff_admin().authenticate_self(bearer(&req)).await?;
    svc.self_service()
        .rename_my_device(&path, &body.name, &by)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Add a device: a challenge goes to my existing devices (approve there with the number).
#[utoipa::path(post, path = "/v1/me/devices/additions", tag = "me", security(("bearer" = [])),
    responses((status = 201, body = DeviceAdditionStarted), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, description = "no_device: nothing to approve with (the counter resets)", body = ErrorBody),
              (status = 429, description = "Push limit", body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn start_addition(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
) -> Result<HttpResponse> {
    let by = svc.staff_admin().authenticate_self(bearer(&req)).await?;
    let started = svc
        .additions()
        .start_device_addition(&by, &super::caller(&req))
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(started))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct WaitQuery {
    /// Seconds to hold for a decision, at most 30.
    #[serde(default)]
    wait: u64,
}

/// The addition's decision; once approved, the new device's activation code (once).
#[utoipa::path(get, path = "/v1/me/devices/additions/{request_id}", tag = "me",
    params(("request_id" = String, Path), WaitQuery), security(("bearer" = [])),
    responses((status = 200, body = DeviceAdditionStatus), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, description = "Unknown, someone else's, or already handed out", body = ErrorBody),
              (status = 400, description = "Malformed request", body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn addition_status(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<WaitQuery>,
) -> Result<HttpResponse> {
    let by = svc.staff_admin().authenticate_self(bearer(&req)).await?;
    let status = svc
        .additions()
        .device_addition_status(&path, query.wait, &by, &super::caller(&req))
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(status))
}

/// Change my password (the initial one from the counter must be changed).
#[utoipa::path(post, path = "/v1/me/password", tag = "me", request_body = ChangePasswordRequest,
    security(("bearer" = [])),
    responses((status = 204), (status = 401, description = "unauthorized, invalid_credentials (wrong current password)", body = ErrorBody),
              (status = 400, description = "Malformed request, a too short new password", body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn password(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    body: web::Json<ChangePasswordRequest>,
) -> Result<HttpResponse> {
    let by = svc.staff_admin().authenticate_self(bearer(&req)).await?;
    let ChangePasswordRequest { current, new } = body.into_inner();
    svc.self_service()
        .change_password(current, new, &by, &super::caller(&req))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
