//! What the portal calls: start a login, then wait for its outcome.

use actix_web::{HttpRequest, HttpResponse, web};
use potvrda_proto::api::LoginRequest;
use serde::Deserialize;

use super::bearer;
use crate::error::Result;
use crate::service::Potvrda;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/logins").route(web::post().to(start)))
        .service(web::resource("/logins/{login_id}").route(web::get().to(status)));
}

async fn start(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse> {
    let ip = super::client_ip(&req, svc.trusted_proxies());
    Ok(HttpResponse::Created().json(svc.start_login(body.into_inner(), ip).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wait {
    #[serde(default)]
    wait: u64,
}

async fn status(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<Wait>,
) -> Result<HttpResponse> {
    let answer = svc.login_status(&path, bearer(&req), query.wait).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(answer))
}
