//! Health, readiness and the public keys.

use actix_web::{HttpResponse, web};
use potvrda_proto::api::Health;

use crate::service::Potvrda;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").route(web::get().to(healthz)))
        .service(web::resource("/readyz").route(web::get().to(readyz)))
        .service(web::resource("/.well-known/jwks.json").route(web::get().to(jwks)));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok".into(),
    })
}

async fn readyz(svc: web::Data<Potvrda>) -> HttpResponse {
    match svc.store().ping().await {
        Ok(()) => HttpResponse::Ok().json(Health {
            status: "ok".into(),
        }),
        Err(e) => {
            tracing::warn!(error = %e, "store not ready");
            HttpResponse::ServiceUnavailable().json(Health {
                status: "unavailable".into(),
            })
        }
    }
}

async fn jwks(svc: web::Data<Potvrda>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(svc.keys().jwks())
}
