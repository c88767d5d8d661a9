//! Health, readiness and the public keys.

use actix_web::{HttpResponse, web};
use potvrda_proto::api::Health;
use potvrda_proto::jose::{Jwks, PublicJwks};

use crate::service::Potvrda;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").route(web::get().to(healthz)))
        .service(web::resource("/readyz").route(web::get().to(readyz)))
        .service(web::resource("/.well-known/jwks.json").route(web::get().to(jwks)))
        .service(web::resource("/.well-known/audit-jwks.json").route(web::get().to(audit_jwks)))
        .service(web::resource("/openapi.json").route(web::get().to(openapi)));
}

/// The process serves.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok".into(),
    })
}

/// The store answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, body = Health), (status = 503, body = Health)))]
pub(crate) async fn readyz(svc: web::Data<Potvrda>) -> HttpResponse {
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

/// The keys access and ID tokens are signed with: the current and the previous generation, ES256 and RS256.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "operations", responses((status = 200, body = PublicJwks)))]
pub(crate) async fn jwks(svc: web::Data<Potvrda>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(svc.keyring().current().jwks())
}

/// The key the audit trail's checkpoints are signed with (PROTOCOL.md, "The
/// tamper-evident audit trail"): an auditor's trust anchor, apart from the token keys.
#[utoipa::path(get, path = "/.well-known/audit-jwks.json", tag = "operations", responses((status = 200, body = Jwks)))]
pub(crate) async fn audit_jwks(svc: web::Data<Potvrda>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(svc.keys().audit_jwks())
}

/// This API's OpenAPI 3.1 description.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, description = "OpenAPI 3.1 document")))]
pub(crate) async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(super::openapi::document())
}
