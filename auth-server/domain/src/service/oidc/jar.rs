//! Signed request objects (JAR, RFC 9101): an authorization request as a
//! JWT signed with one of the client's registered keys, whose claims are
//! the request's parameters. Only the object's parameters count.

use super::client_auth::verifying_key;
use super::*;

/// The longest a request object may live (FAPI 2.0 Message Signing §5.3.1).
const MAX_LIFETIME: i64 = 3600;
/// Clock skew allowed on `nbf`/`iat`.
const LEEWAY: i64 = 60;

fn bad(d: &str) -> Error {
    oauth(OAuthError::InvalidRequestObject, d)
}

/// The parameters of `client`'s request object `jwt`, verified: the
/// signature by its key and an algorithm it may use, `iss` the client,
/// `aud` this issuer, `exp` within the hour, `client_id` the client.
pub(super) async fn request_object(
    svc: &Potvrda,
    client: &OidcClient,
    jwt: &str,
) -> Result<AuthorizeParams> {
    let header = jsonwebtoken::decode_header(jwt).map_err(|_| bad("not a JWT"))?;
    if header.typ.as_deref().is_some_and(|t| {
        !t.eq_ignore_ascii_case("oauth-authz-req+jwt") && !t.eq_ignore_ascii_case("JWT")
    }) {
        return Err(bad("typ must be oauth-authz-req+jwt"));
    }
    let key = verifying_key(svc, client, &header).await.map_err(bad)?;
    let mut v = Validation::new(header.alg);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.set_required_spec_claims(&["exp", "iss", "aud"]);
    v.set_issuer(&[client.client_id.as_str()]);
    v.set_audience(&[svc.public_url.as_str()]);
    let claims = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(jwt, &key, &v)
        .map_err(|_| bad("the request object does not verify (signature, iss, aud or exp)"))?
        .claims;
    fresh(svc.clock.now(), &claims)?;
    if claims.get("client_id").and_then(serde_json::Value::as_str)
        != Some(client.client_id.as_str())
    {
        return Err(bad("the request object's client_id is not its issuer"));
    }
    if claims.contains_key("request") || claims.contains_key("request_uri") {
        return Err(bad("a request object holds no request or request_uri"));
    }
    params(claims)
}

fn fresh(now: i64, claims: &serde_json::Map<String, serde_json::Value>) -> Result<()> {
    let time = |k: &str| claims.get(k).and_then(serde_json::Value::as_i64);
    let exp = time("exp").ok_or_else(|| bad("exp is required"))?;
    if exp <= now {
        return Err(bad("the request object has expired"));
    }
    let start = time("nbf").or(time("iat")).unwrap_or(now);
    if start > now + LEEWAY || exp - start > MAX_LIFETIME || exp > now + MAX_LIFETIME + LEEWAY {
        return Err(bad(
            "the request object must live at most an hour, from now",
        ));
    }
    Ok(())
}

/// The claims as parameters: text as it is, numbers and JSON (`claims`,
/// `max_age`) as their JSON text.
fn params(claims: serde_json::Map<String, serde_json::Value>) -> Result<AuthorizeParams> {
    let text: serde_json::Map<String, serde_json::Value> = claims
        .into_iter()
        .filter(|(k, v)| {
            !v.is_null() && !matches!(k.as_str(), "iss" | "aud" | "exp" | "nbf" | "iat" | "jti")
        })
        .map(|(k, v)| {
            let t = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            (k, serde_json::Value::String(t))
        })
        .collect();
    serde_json::from_value(serde_json::Value::Object(text))
        .map_err(|_| bad("the request object's parameters are malformed"))
}
