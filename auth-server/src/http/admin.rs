//! `/v1/admin`: creating citizens (bootstrap token for now; roles come with the counter).

use actix_web::{HttpRequest, HttpResponse, web};
use potvrda_proto::ErrorBody;
use potvrda_proto::api::{CreateCitizenRequest, CreateCitizenResponse};

use super::bearer;
use crate::error::Result;
use crate::service::Potvrda;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/citizens").route(web::post().to(create_citizen)));
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
    svc.authorize_bootstrap(bearer(&req))?;
    Ok(HttpResponse::Created().json(svc.create_citizen(body.into_inner()).await?))
}
