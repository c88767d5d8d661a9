//! What phones call: enrollment, pulling challenges, answering them.

use actix_web::{HttpRequest, HttpResponse, web};
use potvrda_proto::api::{
    ChallengeAnswer, ChallengeAnswerResult, EnrollmentRequest, PendingChallenges,
};

use super::bearer;
use crate::error::Result;
use crate::service::Potvrda;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/enrollments").route(web::post().to(enroll)))
        .service(web::resource("/devices/{device_id}").route(web::get().to(info)))
        .service(web::resource("/devices/{device_id}/challenges").route(web::get().to(pending)))
        .service(web::resource("/challenges/{cid}/response").route(web::post().to(respond)))
        .service(web::resource("/challenges/{cid}/seen").route(web::post().to(seen)));
}

async fn enroll(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    body: web::Json<EnrollmentRequest>,
) -> Result<HttpResponse> {
    let ip = super::client_ip(&req, svc.trusted_proxies());
    Ok(HttpResponse::Created().json(svc.enroll(body.into_inner(), ip).await?))
}

async fn info(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(svc.device_info(&path, bearer(&req)).await?))
}

async fn pending(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let challenges = svc.pending_challenges(&path, bearer(&req)).await?;
    Ok(HttpResponse::Ok().json(PendingChallenges { challenges }))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SeenQuery {
    device_id: String,
}

async fn seen(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<SeenQuery>,
) -> Result<HttpResponse> {
    svc.acknowledge(&path, Some(&query.device_id), bearer(&req))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn respond(
    svc: web::Data<Potvrda>,
    path: web::Path<String>,
    body: web::Json<ChallengeAnswer>,
) -> Result<HttpResponse> {
    let status = svc.respond(&path, &body.approval).await?;
    Ok(HttpResponse::Ok().json(ChallengeAnswerResult { status }))
}
