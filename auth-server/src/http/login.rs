//! What the portal calls: start a login, then wait for its outcome. Every
//! call authenticates the client (protocol 3): HTTP Basic
//! (`client_secret_basic`) or a `Client-Assertion` header
//! (`private_key_jwt`); the login secret travels in `Login-Secret`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use potvrda_proto::ErrorBody;
use potvrda_proto::api::{
    ChallengeAnswerResult, LoginCodeRequest, LoginRequest, LoginResponse, LoginStatusResponse,
};
use potvrda_proto::oidc::CLIENT_ASSERTION_TYPE_JWT;
use serde::Deserialize;

use super::Result;
use crate::error::Error;
use crate::service::{ClientCredentials, CredentialParts, Potvrda};
use crate::store::LoginId;

/// The header carrying a `private_key_jwt` assertion on the portal API.
pub(crate) const CLIENT_ASSERTION_HEADER: &str = "client-assertion";
/// The header carrying a login's secret on its status and code calls.
pub(crate) const LOGIN_SECRET_HEADER: &str = "login-secret";

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/logins").route(web::post().to(start)))
        .service(web::resource("/logins/{login_id}").route(web::get().to(status)))
        .service(web::resource("/logins/{login_id}/code").route(web::post().to(code)));
}

/// The client credentials of a portal API call (malformed: `invalid_client`).
fn credentials(req: &HttpRequest) -> Result<ClientCredentials> {
    let invalid = |m: &str| Error::InvalidClient(m.to_owned());
    let authorization = req.headers().get(header::AUTHORIZATION);
    if authorization
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case("bearer "))
        })
    {
        return Err(invalid(
            "protocol 3: authenticate the client with HTTP Basic or a Client-Assertion header; the login secret goes in Login-Secret",
        )
        .into());
    }
    let basic = super::oidc::basic(req).map_err(|_| invalid("malformed Basic credentials"))?;
    let assertion = req
        .headers()
        .get(CLIENT_ASSERTION_HEADER)
        .map(|v| {
            v.to_str()
                .map_err(|_| invalid("malformed Client-Assertion"))
        })
        .transpose()?;
    ClientCredentials::from_parts(CredentialParts {
        basic,
        assertion_type: assertion.map(|_| CLIENT_ASSERTION_TYPE_JWT),
        assertion,
        ..CredentialParts::default()
    })
    .map_err(|_| invalid("use one client authentication method").into())
}

fn login_secret(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(LOGIN_SECRET_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Check the password and send the challenge to the citizen's phones.
#[utoipa::path(post, path = "/v1/logins", tag = "portal", request_body = LoginRequest,
    security(("client_basic" = []), ("client_assertion" = [])),
    responses((status = 201, body = LoginResponse), (status = 401, description = "invalid_client, invalid_credentials", body = ErrorBody),
              (status = 409, description = "no_device", body = ErrorBody), (status = 400, description = "Malformed request", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn start(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse> {
    let started = svc
        .logins()
        .start_login(credentials(&req)?, body.into_inner(), &super::caller(&req))
        .await?;
    Ok(HttpResponse::Created().json(started))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct Wait {
    /// Seconds to hold the request for a decision, at most 30.
    #[serde(default)]
    wait: u64,
}

/// The login's status; holds up to `wait` seconds; the token comes once.
#[utoipa::path(get, path = "/v1/logins/{login_id}", tag = "portal", params(("login_id" = String, Path), Wait,
        ("Login-Secret" = String, Header, description = "The login secret of the start's answer")),
    security(("client_basic" = []), ("client_assertion" = [])),
    responses((status = 200, body = LoginStatusResponse), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 400, description = "Malformed request", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody), (status = 503, description = "Store unavailable", body = ErrorBody)))]
pub(crate) async fn status(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    path: web::Path<LoginId>,
    query: web::Query<Wait>,
) -> Result<HttpResponse> {
    let answer = svc
        .outcomes()
        .login_status(credentials(&req)?, &path, login_secret(&req), query.wait)
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(answer))
}

/// A recovery code instead of the phone's approval.
#[utoipa::path(post, path = "/v1/logins/{login_id}/code", tag = "portal", params(("login_id" = String, Path),
        ("Login-Secret" = String, Header, description = "The login secret of the start's answer")),
    request_body = LoginCodeRequest, security(("client_basic" = []), ("client_assertion" = [])),
    responses((status = 200, body = ChallengeAnswerResult), (status = 401, description = "invalid_client, unauthorized, invalid_credentials (a wrong code, counted as a failed password)", body = ErrorBody),
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
            credentials(&req)?,
            &path,
            login_secret(&req),
            body.code.expose(),
            &super::caller(&req),
        )
        .await?;
    Ok(HttpResponse::Ok().json(ChallengeAnswerResult { status }))
}
