//! `/v1/admin/clients`: the client registry (RFC 7591 metadata, RFC 7592's
//! read, update and delete), for superadmins.

use actix_web::{HttpRequest, HttpResponse, web};
use potvrda_proto::ErrorBody;

use super::Result;
use super::bearer;
use crate::service::{OidcClient, Potvrda};
use crate::store::ClientId;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin/clients")
            .route(web::post().to(register))
            .route(web::get().to(list)),
    )
    .service(
        web::resource("/admin/clients/{client_id}")
            .route(web::get().to(read))
            .route(web::put().to(update))
            .route(web::delete().to(retire)),
    )
    .service(web::resource("/admin/clients/{client_id}/secret").route(web::post().to(rotate)))
    .service(
        web::resource("/admin/clients/{client_id}/subjects/{sub}").route(web::get().to(subject)),
    );
}

/// Register a client (RFC 7591 metadata). A secret, when its method takes
/// one, is generated and shown in this answer only.
#[utoipa::path(post, path = "/v1/admin/clients", tag = "clients",
    request_body(content = Object, description = "RFC 7591 client metadata (docs/OIDC.md)"),
    security(("bearer" = [])),
    responses((status = 201, description = "RFC 7591 client information", body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, description = "client_exists", body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn register(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    body: web::Json<OidcClient>,
) -> Result<HttpResponse> {
    let by = svc.staff_admin().authenticate_admin(bearer(&req)).await?;
    let info = svc.registry().register(body.into_inner(), &by).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(info))
}

/// Every client: the configuration's seed and the registry's.
#[utoipa::path(get, path = "/v1/admin/clients", tag = "clients",
    security(("bearer" = [])),
    responses((status = 200, description = "Client information, one per client", body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn list(svc: web::Data<Potvrda>, req: HttpRequest) -> Result<HttpResponse> {
    let by = svc.staff_admin().authenticate_admin(bearer(&req)).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(svc.registry().list(&by).await?))
}

/// One client's registration.
#[utoipa::path(get, path = "/v1/admin/clients/{client_id}", tag = "clients", params(("client_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "RFC 7591 client information", body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, description = "unknown_client", body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn read(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<ClientId>,
) -> Result<HttpResponse> {
    let by = svc.staff_admin().authenticate_admin(bearer(&req)).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(svc.registry().read(&path, &by).await?))
}

/// Replace a client's metadata (RFC 7592 §2.2); its secret stays.
#[utoipa::path(put, path = "/v1/admin/clients/{client_id}", tag = "clients", params(("client_id" = String, Path)),
    request_body(content = Object, description = "RFC 7591 client metadata"),
    security(("bearer" = [])),
    responses((status = 200, description = "RFC 7591 client information", body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, description = "unknown_client", body = ErrorBody),
              (status = 409, description = "client_read_only", body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn update(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<ClientId>,
    body: web::Json<OidcClient>,
) -> Result<HttpResponse> {
    let by = svc.staff_admin().authenticate_admin(bearer(&req)).await?;
    let info = svc.registry().update(&path, body.into_inner(), &by).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(info))
}

/// A new secret, shown once; the previous one works for another 24 hours.
#[utoipa::path(post, path = "/v1/admin/clients/{client_id}/secret", tag = "clients", params(("client_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "Client information with the new client_secret", body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, description = "unknown_client", body = ErrorBody),
              (status = 409, description = "client_read_only", body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn rotate(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<ClientId>,
) -> Result<HttpResponse> {
    let by = svc.staff_admin().authenticate_admin(bearer(&req)).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(svc.registry().rotate_secret(&path, &by).await?))
}

/// Retire a client (RFC 7592 §2.3): it authenticates no more and its
/// tokens stop working; its id is not given out again.
#[utoipa::path(delete, path = "/v1/admin/clients/{client_id}", tag = "clients", params(("client_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, description = "unknown_client", body = ErrorBody),
              (status = 409, description = "client_read_only", body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn retire(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<ClientId>,
) -> Result<HttpResponse> {
    let by = svc.staff_admin().authenticate_admin(bearer(&req)).await?;
    svc.registry().retire(&path, &by).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The service desk: the account behind a client's (pairwise) `sub`.
/// Audited as `subject_resolved`.
#[utoipa::path(get, path = "/v1/admin/clients/{client_id}/subjects/{sub}", tag = "clients",
    params(("client_id" = String, Path), ("sub" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "{\"user_id\": …}", body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, description = "unknown_client, or no such subject", body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn subject(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<(ClientId, String)>,
) -> Result<HttpResponse> {
    let by = svc.staff_admin().authenticate_admin(bearer(&req)).await?;
    let (client_id, sub) = path.into_inner();
    let user_id = svc.subjects().resolve(&client_id, &sub, &by).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(serde_json::json!({ "user_id": user_id })))
}
