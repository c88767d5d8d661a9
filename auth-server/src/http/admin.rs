//! `/v1/admin`: creating citizens (bootstrap token for now; roles come with the counter).

use actix_web::{HttpRequest, HttpResponse, web};
use potvrda_proto::api::CreateCitizenRequest;

use super::bearer;
use crate::error::Result;
use crate::service::Potvrda;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/citizens").route(web::post().to(create_citizen)));
}

async fn create_citizen(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    body: web::Json<CreateCitizenRequest>,
) -> Result<HttpResponse> {
    svc.authorize_bootstrap(bearer(&req))?;
    Ok(HttpResponse::Created().json(svc.create_citizen(body.into_inner()).await?))
}
