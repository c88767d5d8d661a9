//! What phones call: enrollment, pulling challenges, answering them.

use actix_web::{HttpRequest, HttpResponse, web};
use potvrda_proto::ErrorBody;
use potvrda_proto::api::{
    ChallengeAnswer, ChallengeAnswerResult, DeviceInfo, EnrollmentRequest, EnrollmentResponse,
    PendingChallenges, PushSubscription,
};

use super::Result;
use super::bearer;
use crate::service::{Actor, Potvrda};
use crate::store::{ChallengeId, DeviceId};

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/enrollments").route(web::post().to(enroll)))
        .service(web::resource("/devices/{device_id}").route(web::get().to(info)))
        .service(web::resource("/devices/{device_id}/challenges").route(web::get().to(pending)))
        .service(
            web::resource("/devices/{device_id}/push")
                .route(web::put().to(set_push))
                .route(web::delete().to(remove_push)),
        )
        .service(web::resource("/challenges/{cid}/response").route(web::post().to(respond)))
        .service(web::resource("/challenges/{cid}/seen").route(web::post().to(seen)));
}

/// Enroll a device with an activation code.
#[utoipa::path(post, path = "/v1/enrollments", tag = "phone", request_body = EnrollmentRequest,
    responses((status = 201, body = EnrollmentResponse), (status = 401, body = ErrorBody), (status = 400, description = "Malformed request", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn enroll(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    body: web::Json<EnrollmentRequest>,
) -> Result<HttpResponse> {
    let caller = super::caller(&req);
    Ok(HttpResponse::Created().json(svc.accounts().enroll(body.into_inner(), &caller).await?))
}

/// The device's own view of itself (pull token).
#[utoipa::path(get, path = "/v1/devices/{device_id}", tag = "phone", params(("device_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = DeviceInfo), (status = 401, body = ErrorBody), (status = 400, description = "Malformed request", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn info(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<DeviceId>,
) -> Result<HttpResponse> {
    let by = device_actor(&svc, &req, &path).await?;
    Ok(HttpResponse::Ok().json(svc.devices().device_info(&by).await?))
}

/// Replace the device's push subscription (pull token; protocol 3, issue 15): the
/// enrollment's allow-list and checks; a subscription found gone is active
/// again.
#[utoipa::path(put, path = "/v1/devices/{device_id}/push", tag = "phone", params(("device_id" = String, Path)),
    request_body = PushSubscription, security(("bearer" = [])),
    responses((status = 200, body = DeviceInfo), (status = 401, body = ErrorBody), (status = 400, description = "Malformed request or a subscription off the allow-list", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn set_push(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<DeviceId>,
    body: web::Json<PushSubscription>,
) -> Result<HttpResponse> {
    let by = device_actor(&svc, &req, &path).await?;
    let info = svc
        .devices()
        .set_push(&by, Some(&body), &super::caller(&req))
        .await?;
    Ok(HttpResponse::Ok().json(info))
}

/// Remove the device's push subscription: it pulls (pull token; protocol 3, issue 15).
#[utoipa::path(delete, path = "/v1/devices/{device_id}/push", tag = "phone", params(("device_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = DeviceInfo), (status = 401, body = ErrorBody), (status = 400, description = "Malformed request", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn remove_push(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<DeviceId>,
) -> Result<HttpResponse> {
    let by = device_actor(&svc, &req, &path).await?;
    let info = svc
        .devices()
        .set_push(&by, None, &super::caller(&req))
        .await?;
    Ok(HttpResponse::Ok().json(info))
}

/// The device's pending challenges (pull token).
#[utoipa::path(get, path = "/v1/devices/{device_id}/challenges", tag = "phone", params(("device_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = PendingChallenges), (status = 401, body = ErrorBody), (status = 400, description = "Malformed request", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn pending(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<DeviceId>,
) -> Result<HttpResponse> {
    let by = device_actor(&svc, &req, &path).await?;
    let challenges = svc.devices().pending_challenges(&by).await?;
    Ok(HttpResponse::Ok().json(PendingChallenges { challenges }))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SeenQuery {
    device_id: DeviceId,
}

/// The phone has the challenge on screen (optional; pull token).
#[utoipa::path(post, path = "/v1/challenges/{cid}/seen", tag = "phone",
    params(("cid" = String, Path), ("device_id" = String, Query)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 400, description = "Malformed request", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn seen(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<ChallengeId>,
    query: web::Query<SeenQuery>,
) -> Result<HttpResponse> {
    let by = device_actor(&svc, &req, &query.device_id).await?;
    svc.devices().acknowledge(&path, &by).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Answer a challenge with a signed approval or denial.
#[utoipa::path(post, path = "/v1/challenges/{cid}/response", tag = "phone", params(("cid" = String, Path)),
    request_body = ChallengeAnswer,
    responses((status = 200, body = ChallengeAnswerResult), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 410, body = ErrorBody), (status = 422, body = ErrorBody), (status = 400, description = "Malformed request", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn respond(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<ChallengeId>,
    body: web::Json<ChallengeAnswer>,
) -> Result<HttpResponse> {
    let status = svc
        .devices()
        .respond(&path, &body.approval, &super::caller(&req))
        .await?;
    Ok(HttpResponse::Ok().json(ChallengeAnswerResult { status }))
}

/// The device a request speaks for: its pull token, within its address's limit.
async fn device_actor(svc: &Potvrda, req: &HttpRequest, device_id: &DeviceId) -> Result<Actor> {
    Ok(svc
        .devices()
        .authenticate(device_id, bearer(req), &super::caller(req))
        .await?)
}
