//! What the portal calls: start a login, then wait for its outcome.

use actix_web::{HttpRequest, HttpResponse, web};
use potvrda_proto::ErrorBody;
use potvrda_proto::api::{
    ChallengeAnswerResult, LoginCodeRequest, LoginRequest, LoginResponse, LoginStatusResponse,
};
use serde::Deserialize;

use super::Result;
use super::bearer;
use crate::service::Potvrda;
use crate::store::LoginId;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/logins").route(web::post().to(start)))
        .service(web::resource("/logins/{login_id}").route(web::get().to(status)))
        .service(web::resource("/logins/{login_id}/code").route(web::post().to(code)));
}

/// Check the password and send the challenge to the citizen's phones.
#[utoipa::path(post, path = "/v1/logins", tag = "portal", request_body = LoginRequest,
    responses((status = 201, body = LoginResponse), (status = 401, description = "invalid_credentials", body = ErrorBody),
              (status = 409, description = "no_device", body = ErrorBody), (status = 400, description = "Malformed request", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn start(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse> {
    let caller = super::caller(&req);
    Ok(HttpResponse::Created().json(svc.logins().start_login(body.into_inner(), &caller).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct Wait {
    /// Seconds to hold the request for a decision, at most 30.
    #[serde(default)]
    wait: u64,
}

/// The login's status; holds up to `wait` seconds; the token comes once.
#[utoipa::path(get, path = "/v1/logins/{login_id}", tag = "portal", params(("login_id" = String, Path), Wait),
    security(("bearer" = [])),
    responses((status = 200, body = LoginStatusResponse), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 400, description = "Malformed request", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn status(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<LoginId>,
    query: web::Query<Wait>,
) -> Result<HttpResponse> {
    let answer = svc
        .outcomes()
        .login_status(&path, bearer(&req), query.wait)
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(answer))
}

/// A recovery code instead of the phone's approval (the login secret authorises).
#[utoipa::path(post, path = "/v1/logins/{login_id}/code", tag = "portal", params(("login_id" = String, Path)),
    request_body = LoginCodeRequest, security(("bearer" = [])),
    responses((status = 200, body = ChallengeAnswerResult), (status = 401, description = "unauthorized, invalid_credentials (a wrong code, counted as a failed password)", body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 410, body = ErrorBody), (status = 400, description = "Malformed request", body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn code(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<LoginId>,
    body: web::Json<LoginCodeRequest>,
) -> Result<HttpResponse> {
    let status = svc
        .recovery_codes()
        .login_with_code(
            &path,
            bearer(&req),
            body.code.expose(),
            &super::caller(&req),
        )
        .await?;
    Ok(HttpResponse::Ok().json(ChallengeAnswerResult { status }))
}
