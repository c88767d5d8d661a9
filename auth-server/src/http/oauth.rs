//! The OpenID Provider's back-channel endpoints, called by clients and
//! never by browsers: the token endpoint, PAR, CIBA's backchannel
//! authorization, UserInfo, introspection and revocation. Each parses the
//! form, the client's credentials and the DPoP proof, calls the domain, and
//! answers JSON that is never cached; the token endpoint and PAR also hand
//! out the next DPoP nonce, in success and in error.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use potvrda_proto::oidc::{
    BackchannelResponse, IntrospectionResponse, OAuthError, OAuthErrorBody, ParResponse,
    TokenResponse, UserInfo,
};

use super::Result;
use super::oidc::basic;
use crate::error::Error;
use crate::service::{
    BackchannelForm, DpopRequest, ParForm, Potvrda, Presented, TokenForm, TokenQuery,
};

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/oauth2/token").route(web::post().to(token)))
        .service(web::resource("/oauth2/par").route(web::post().to(par)))
        .service(web::resource("/oauth2/bc-authorize").route(web::post().to(backchannel)))
        .service(
            web::resource("/oauth2/userinfo")
                .route(web::get().to(userinfo))
                .route(web::post().to(userinfo)),
        )
        .service(web::resource("/oauth2/introspect").route(web::post().to(introspect)))
        .service(web::resource("/oauth2/revoke").route(web::post().to(revoke)));
}

/// The request's DPoP proof for `path` (RFC 9449 §4.3: at most one).
fn dpop<'r>(req: &'r HttpRequest, path: &'r str) -> crate::error::Result<DpopRequest<'r>> {
    let mut proofs = req.headers().get_all("dpop");
    let proof = proofs.next();
    let malformed = || Error::OAuth {
        error: OAuthError::InvalidDpopProof,
        description: "one DPoP header, of ASCII text".into(),
    };
    if proofs.next().is_some() {
        return Err(malformed());
    }
    Ok(DpopRequest {
        proof: proof
            .map(|v| v.to_str().map_err(|_| malformed()))
            .transpose()?,
        method: req.method().as_str(),
        path,
    })
}

/// The access token of `Authorization: Bearer …` or `Authorization: DPoP …`.
fn presented(req: &HttpRequest) -> Option<Presented<'_>> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    let dpop = scheme.eq_ignore_ascii_case("dpop");
    (dpop || scheme.eq_ignore_ascii_case("bearer"))
        .then_some(Presented { dpop, token })
        .filter(|p| !p.token.is_empty())
}

/// A JSON answer that is never stored, with the next DPoP nonce.
fn with_nonce(svc: &Potvrda, answer: crate::error::Result<HttpResponse>) -> HttpResponse {
    let mut res = answer.unwrap_or_else(|e| super::ApiError(e).error_response());
    if let Ok(nonce) = HeaderValue::from_str(&svc.dpop().nonce()) {
        res.headers_mut()
            .insert(header::HeaderName::from_static("dpop-nonce"), nonce);
    }
    res
}

fn json<T: serde::Serialize>(body: T) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}

/// The token endpoint: codes, refresh tokens and CIBA requests for tokens,
/// DPoP-bound when the request carries a proof.
#[utoipa::path(post, path = "/oauth2/token", tag = "oidc",
    request_body(content_type = "application/x-www-form-urlencoded", description = "grant_type, code, redirect_uri, code_verifier, refresh_token, auth_req_id; client_id, client_secret, client_assertion_type, client_assertion; a DPoP header"),
    responses((status = 200, body = TokenResponse), (status = 400, body = OAuthErrorBody), (status = 401, body = OAuthErrorBody)))]
pub(crate) async fn token(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    form: web::Form<TokenForm>,
) -> HttpResponse {
    let answer = async {
        let tokens = svc
            .token_endpoint()
            .oidc_token(
                form.into_inner(),
                basic(&req)?,
                dpop(&req, "/oauth2/token")?,
            )
            .await?;
        Ok(json(tokens))
    };
    with_nonce(&svc, answer.await)
}

/// Pushed authorization requests (RFC 9126): the client posts the
/// authorization request (or a signed request object) and gets the
/// single-use `request_uri` the browser is sent with.
#[utoipa::path(post, path = "/oauth2/par", tag = "oidc",
    request_body(content_type = "application/x-www-form-urlencoded", description = "the authorization request's parameters, or request (RFC 9101); client authentication; a DPoP header binds the code"),
    responses((status = 201, body = ParResponse), (status = 400, body = OAuthErrorBody), (status = 401, body = OAuthErrorBody)))]
pub(crate) async fn par(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    form: web::Form<ParForm>,
) -> HttpResponse {
    let answer = async {
        let pushed = svc
            .pushed_requests()
            .push(form.into_inner(), basic(&req)?, dpop(&req, "/oauth2/par")?)
            .await?;
        Ok(HttpResponse::Created()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(pushed))
    };
    with_nonce(&svc, answer.await)
}

/// CIBA's backchannel authentication endpoint: an authenticated client asks
/// for a known citizen; the phone gets the challenge.
#[utoipa::path(post, path = "/oauth2/bc-authorize", tag = "oidc",
    request_body(content_type = "application/x-www-form-urlencoded", description = "scope, login_hint or id_token_hint, binding_message, requested_expiry, acr_values, client_notification_token; client authentication"),
    responses((status = 200, body = BackchannelResponse), (status = 400, body = OAuthErrorBody), (status = 401, body = OAuthErrorBody), (status = 429, description = "Rate limited", body = potvrda_proto::ErrorBody)))]
pub(crate) async fn backchannel(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    form: web::Form<BackchannelForm>,
) -> Result<HttpResponse> {
    let answer = svc
        .backchannel()
        .backchannel_authorize(form.into_inner(), basic(&req)?, &super::caller(&req))
        .await?;
    Ok(json(answer))
}

/// Claims about the user of an access token (a DPoP-bound one with its proof).
#[utoipa::path(method(get, post), path = "/oauth2/userinfo", tag = "oidc", security(("bearer" = [])),
    responses((status = 200, body = UserInfo), (status = 401, body = OAuthErrorBody)))]
pub(crate) async fn userinfo(svc: web::Data<Potvrda>, req: HttpRequest) -> Result<HttpResponse> {
    let info = svc
        .token_endpoint()
        .oidc_userinfo(presented(&req), dpop(&req, "/oauth2/userinfo")?)
        .await?;
    Ok(json(info))
}

/// Token introspection (RFC 7662): about the calling client's own tokens.
#[utoipa::path(post, path = "/oauth2/introspect", tag = "oidc",
    request_body(content_type = "application/x-www-form-urlencoded", description = "token, token_type_hint; client authentication"),
    responses((status = 200, body = IntrospectionResponse), (status = 400, body = OAuthErrorBody), (status = 401, body = OAuthErrorBody)))]
pub(crate) async fn introspect(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    form: web::Form<TokenQuery>,
) -> Result<HttpResponse> {
    let answer = svc
        .introspection()
        .introspect(form.into_inner(), basic(&req)?)
        .await?;
    Ok(json(answer))
}

/// Token revocation (RFC 7009): a refresh token revokes its family, an
/// access token its grant. Unknown tokens are answered as revoked.
#[utoipa::path(post, path = "/oauth2/revoke", tag = "oidc",
    request_body(content_type = "application/x-www-form-urlencoded", description = "token, token_type_hint; client authentication"),
    responses((status = 200, description = "Revoked, or unknown"), (status = 400, body = OAuthErrorBody), (status = 401, body = OAuthErrorBody)))]
pub(crate) async fn revoke(
    svc: web::Data<Potvrda>,
    req: HttpRequest,
    form: web::Form<TokenQuery>,
) -> Result<HttpResponse> {
    svc.introspection()
        .revoke(form.into_inner(), basic(&req)?)
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}
