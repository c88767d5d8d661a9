//! `/v1/me`: a signed-in user's own devices and password (their access token).

use actix_web::{HttpRequest, HttpResponse, web};
use potvrda_proto::ErrorBody;
use potvrda_proto::api::{ChangePasswordRequest, DeviceList};

use super::bearer;
use crate::error::Result;
use crate::service::Potvrda;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/me/devices").route(web::get().to(devices)))
        .service(web::resource("/me/devices/{device_id}").route(web::delete().to(revoke_device)))
        .service(web::resource("/me/password").route(web::post().to(password)));
}

/// My devices.
#[utoipa::path(get, path = "/v1/me/devices", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = DeviceList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn devices(svc: web::Data<Potvrda>, req: HttpRequest) -> Result<HttpResponse> {
    let by = svc.authenticate(bearer(&req)).await?;
    Ok(HttpResponse::Ok().json(svc.my_devices(&by).await?))
}

/// Revoke one of my devices (a phone sold or lost).
#[utoipa::path(delete, path = "/v1/me/devices/{device_id}", tag = "me", params(("device_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn revoke_device(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let by = svc.authenticate(bearer(&req)).await?;
    svc.revoke_my_device(&path, &by, &super::caller(&req, &svc))
        .await?;
    Ok(HttpResponse::NoContent().finish())
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
    let by = svc.authenticate(bearer(&req)).await?;
    let ChangePasswordRequest { current, new } = body.into_inner();
    svc.change_password(current, new, &by, &super::caller(&req, &svc))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
