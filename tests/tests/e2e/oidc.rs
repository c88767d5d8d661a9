//! The OpenID Provider, driven by a real relying-party library (the
//! `openidconnect` crate) over HTTP, with a citizen's phone from mobile-core
//! approving: discovery, PKCE, `state` and `nonce`, ID tokens checked by the
//! library itself, UserInfo, refresh rotation and reuse detection, code
//! reuse, wrong redirect URI, wrong verifier, deny, expiry, single sign-on,
//! logout and key rotation. The "browser" is an HTTP client with a cookie jar
//! that reads the pages the way a person would (the form, the number, the
//! continue link).

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreTokenResponse, CoreUserInfoClaims,
};
use openidconnect::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, Scope,
    TokenResponse,
};
use potvrda_e2e::{Backend, Options, TestServer};
use potvrda_proto::jose::Decision;
use potvrda_server::clock::Clock;

use crate::support::*;

crate::on_both_stores!(
    code_flow_with_pkce_refresh_rotation_and_reuse_detection,
    a_second_use_of_a_code_fails_and_revokes_what_the_first_issued,
    bad_clients_redirects_verifiers_and_secrets_are_refused,
    a_denial_on_the_phone_is_access_denied_for_the_client,
    codes_and_login_pages_expire,
    single_sign_on_prompt_max_age_and_logout,
    a_locked_account_loses_its_session_and_its_grants,
    a_reset_a_new_password_or_a_revoked_phone_ends_every_session,
    another_client_cannot_revoke_a_grant_with_a_used_code,
    a_cross_site_logout_only_asks,
    the_offline_code_on_the_waiting_page_stands_in_for_the_phone,
    a_resource_server_steps_the_login_up_and_no_level_is_downgraded,
);

/// A resource server (RFC 9470) in a few lines: it verifies the access
/// token against the provider's keys, then asks for `need` (an `acr`) and
/// a login no older than `max_age`; what it answers when the token does
/// not do: its `WWW-Authenticate` challenge. (docs/OIDC.md §7 shows this.)
fn resource(
    token: &str,
    keys: &jsonwebtoken::jwk::JwkSet,
    (issuer, audience): (&str, &str),
    (need, max_age): (&str, i64),
    now: i64,
) -> Result<serde_json::Value, String> {
    const LEVELS: [&str; 3] = [
        "urn:potvrda:loa:basic",
        "urn:potvrda:loa:substantial",
        "urn:potvrda:loa:high",
    ];
    let invalid = || r#"Bearer error="invalid_token""#.to_owned();
    let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
    let jwk = header
        .kid
        .as_deref()
        .and_then(|k| keys.find(k))
        .ok_or_else(invalid)?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|_| invalid())?;
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.validate_exp = false; // the test's clock is the provider's
    let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key, &v)
        .map_err(|_| invalid())?
        .claims;
    let rank = |acr: &str| LEVELS.iter().position(|l| *l == acr);
    let level_ok = claims["acr"].as_str().and_then(rank) >= rank(need);
    let fresh = claims["auth_time"]
        .as_i64()
        .is_some_and(|t| now - t <= max_age);
    if level_ok && fresh {
        Ok(claims)
    } else {
        Err(format!(
            r#"Bearer error="insufficient_user_authentication", error_description="a {need} login in the last {max_age} s is required", acr_values="{need}", max_age={max_age}"#
        ))
    }
}

async fn a_resource_server_steps_the_login_up_and_no_level_is_downgraded(backend: Backend) {
    use potvrda_proto::oidc::{LOA_HIGH, LOA_SUBSTANTIAL};
    use potvrda_server::clock::Clock;
    let srv = provider(backend).await;
    let c = citizen(&srv, None).await;
    let portal = relying_party(&srv, false).await;
    let b = browser();
    let keys: jsonwebtoken::jwk::JwkSet =
        reqwest::get(format!("{}/.well-known/jwks.json", srv.url))
            .await
            .expect("jwks")
            .json()
            .await
            .expect("a JWK set");
    let redeem = |a: Authz, back: url::Url| {
        let (portal, srv) = (&portal, &srv);
        async move {
            portal
                .exchange_code(code_of(&back, &a, srv))
                .expect("token endpoint")
                .set_pkce_verifier(a.verifier)
                .request_async(&http)
                .await
                .expect("tokens")
                .access_token()
                .secret()
                .clone()
        }
    };
    let a = authorize(&portal, &[("acr_values", LOA_SUBSTANTIAL)]);
    let back = log_in(&srv, &b, &a, &c).await;
    let token = redeem(a, back).await;
    let at = (srv.url.as_str(), CONFIDENTIAL);
    let claims =
        resource(&token, &keys, at, (LOA_SUBSTANTIAL, 300), srv.clock.now()).expect("served");
    assert_eq!(claims["acr"], LOA_SUBSTANTIAL);

    // The resource wants a login of the last 10 s: the token is older.
    srv.clock.advance(11);
    let challenge =
        resource(&token, &keys, at, (LOA_SUBSTANTIAL, 10), srv.clock.now()).expect_err("too old");
    assert!(
        challenge.contains(r#"error="insufficient_user_authentication""#)
            && challenge.contains("max_age=10"),
        "{challenge}"
    );
    // The client asks again with max_age: the session is not reused; a new push.
    let a = authorize(
        &portal,
        &[("acr_values", LOA_SUBSTANTIAL), ("max_age", "10")],
    );
    let back = log_in(&srv, &b, &a, &c).await;
    let fresh = redeem(a, back).await;
    resource(&fresh, &keys, at, (LOA_SUBSTANTIAL, 10), srv.clock.now())
        .expect("a fresh login serves");

    // A resource that wants `high` says so; the provider refuses to
    // pretend: unmet, by acr_values and by an essential claim alike.
    let challenge =
        resource(&fresh, &keys, at, (LOA_HIGH, 300), srv.clock.now()).expect_err("not high");
    assert!(
        challenge.contains(&format!(r#"acr_values="{LOA_HIGH}""#)),
        "{challenge}"
    );
    let essential =
        format!(r#"{{"id_token":{{"acr":{{"essential":true,"value":"{LOA_HIGH}"}}}}}}"#);
    for extra in [[("acr_values", LOA_HIGH)], [("claims", essential.as_str())]] {
        let a = authorize(&portal, &extra);
        let back = location(&b.get(&a.url).send().await.expect("authorize"));
        assert_eq!(
            param(&back, "error").as_deref(),
            Some("unmet_authentication_requirements"),
            "{extra:?}"
        );
        assert!(param(&back, "code").is_none());
    }
    assert!(
        c.phone.pending().await.expect("pull").is_empty(),
        "no push for an unmet level"
    );
}

async fn the_offline_code_on_the_waiting_page_stands_in_for_the_phone(backend: Backend) {
    let srv = provider(backend).await;
    let c = citizen(&srv, None).await;
    let rp = relying_party(&srv, false).await;
    let b = browser();
    let a = authorize(&rp, &[]);
    let request = open_login(&b, &a.url).await;
    post_password(&srv, &b, &request, &c).await;
    let secret = c.phone.state.device.offline_secret.clone().expect("secret");
    let now = srv.clock.now();
    let code = potvrda_mobile_core::protocol::offline_code(&secret, now).expect("code");
    let valid: Vec<String> = [now - 30, now, now + 30]
        .iter()
        .map(|t| potvrda_mobile_core::protocol::offline_code(&secret, *t).expect("code"))
        .collect();
    let wrong = (0..)
        .map(|i| format!("{:06}", 123_456 + i))
        .find(|w| !valid.contains(w))
        .expect("a wrong code");
    let post_code = |code: String| {
        let b = b.clone();
        let url = format!("{}/oauth2/authorize/code", srv.url);
        let request = request.clone();
        async move {
            b.post(url)
                .form(&[("request", request.as_str()), ("code", code.as_str())])
                .send()
                .await
                .expect("code")
        }
    };
    let r = post_code(wrong).await;
    assert_eq!(r.status(), 401);
    let html = r.text().await.expect("html");
    assert!(html.contains(r#"id="code-error""#) && html.contains(r#"id="number""#));
    // The right code: back to the service with a code, as after the phone.
    let back = location(&post_code(code).await);
    assert!(back.as_str().starts_with(RP));
    let tokens = rp
        .exchange_code(code_of(&back, &a, &srv))
        .expect("token endpoint")
        .set_pkce_verifier(a.verifier)
        .request_async(&http)
        .await
        .expect("tokens");
    let claims = tokens
        .id_token()
        .expect("id token")
        .claims(&rp.id_token_verifier(), &a.nonce)
        .expect("verifies");
    assert_eq!(claims.subject().as_str(), c.account.user_id);
    assert!(
        c.phone.pending().await.expect("pull").is_empty(),
        "the challenge is decided"
    );
}

async fn a_locked_account_loses_its_session_and_its_grants(backend: Backend) {
    let srv = provider(backend).await;
    let c = citizen(&srv, None).await;
    let rp = relying_party(&srv, false).await;
    let b = browser();
    let a = authorize(&rp, &[]);
    let back = log_in(&srv, &b, &a, &c).await;
    let tokens = rp
        .exchange_code(code_of(&back, &a, &srv))
        .expect("token endpoint")
        .set_pkce_verifier(a.verifier)
        .request_async(&http)
        .await
        .expect("tokens");
    // An OpenID client's access token is not a key to the counter's API.
    let r = post(
        &srv,
        "/v1/admin/citizens",
        Some(tokens.access_token().secret()),
        serde_json::json!({"username": potvrda_e2e::unique("x"), "display_name": "X"}),
    )
    .await;
    assert_eq!(r.status(), 401);
    // The citizen reports fraud on the next login: the account locks.
    let l = login(&srv, &c).await;
    c.phone
        .answer(&pulled(&c.phone).await, Decision::Fraud, None)
        .await
        .expect("reported");
    let _ = l;
    // Single sign-on ends: the login page, not a code.
    let again = authorize(&rp, &[]);
    assert_eq!(
        b.get(&again.url).send().await.expect("authorize").status(),
        200
    );
    // The refresh token and the access token stop working.
    let refresh = rp
        .exchange_refresh_token(tokens.refresh_token().expect("refresh"))
        .expect("token endpoint")
        .request_async(&http)
        .await;
    assert!(
        format!("{refresh:?}").contains("invalid_grant"),
        "{refresh:?}"
    );
    let r = srv
        .http
        .get(format!("{}/oauth2/userinfo", srv.url))
        .bearer_auth(tokens.access_token().secret())
        .send()
        .await
        .expect("userinfo");
    assert_eq!(r.status(), 401);
}

const CONFIDENTIAL: &str = "portal";
const SECRET: &str = "portal-secret-0123456789";
const PUBLIC: &str = "mobile-app";
const RP: &str = "https://portal.example/callback";
const RP_PUBLIC: &str = "http://127.0.0.1:1/app-callback";
const AFTER_LOGOUT: &str = "https://portal.example/bye";

fn clients() -> String {
    serde_json::json!([
        {"client_id": CONFIDENTIAL, "client_secret": SECRET, "redirect_uris": [RP],
         "post_logout_redirect_uris": [AFTER_LOGOUT], "name": "eUprava portal"},
        {"client_id": PUBLIC, "redirect_uris": [RP_PUBLIC], "name": "eUprava app",
         "id_token_signed_response_alg": "ES256"}
    ])
    .to_string()
}

async fn provider(backend: Backend) -> TestServer {
    TestServer::start_with(Options {
        oidc_clients: Some(clients()),
        limits: (100, 900, 5, 900),
        ..Options::new(backend)
    })
    .await
}

/// The relying party's HTTP client: the server's real HTTP, through reqwest.
async fn http(
    req: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, reqwest::Error> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let (parts, body) = req.into_parts();
    let resp = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let mut out = openidconnect::HttpResponse::new(Vec::new());
    *out.status_mut() = resp.status();
    *out.headers_mut() = resp.headers().clone();
    *out.body_mut() = resp.bytes().await?.to_vec();
    Ok(out)
}

type Rp = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

async fn relying_party(srv: &TestServer, public: bool) -> Rp {
    let meta = CoreProviderMetadata::discover_async(
        IssuerUrl::new(srv.url.clone()).expect("issuer"),
        &http,
    )
    .await
    .expect("discovery");
    let (id, secret, uri) = if public {
        (PUBLIC, None, RP_PUBLIC)
    } else {
        (CONFIDENTIAL, Some(ClientSecret::new(SECRET.into())), RP)
    };
    let client = CoreClient::from_provider_metadata(meta, ClientId::new(id.into()), secret)
        .set_redirect_uri(RedirectUrl::new(uri.into()).expect("redirect"));
    if public {
        client.set_auth_type(AuthType::RequestBody)
    } else {
        client
    }
}

struct Authz {
    url: String,
    state: CsrfToken,
    nonce: Nonce,
    verifier: PkceCodeVerifier,
}

fn authorize(rp: &Rp, extra: &[(&str, &str)]) -> Authz {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("phone".into()))
        .set_pkce_challenge(challenge);
    for (k, v) in extra {
        req = req.add_extra_param(*k, *v);
    }
    let (url, state, nonce) = req.url();
    Authz {
        url: url.to_string(),
        state,
        nonce,
        verifier,
    }
}

/// A browser: a cookie jar, no automatic redirects.
pub(crate) fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The text between `start` and the next `end` in `html`.
fn between<'a>(html: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = html.find(start)? + start.len();
    Some(&html[from..from + html[from..].find(end)?])
}

pub(crate) fn location(r: &reqwest::Response) -> url::Url {
    assert_eq!(r.status(), 303, "a redirect");
    url::Url::parse(r.headers()["location"].to_str().expect("ascii")).expect("absolute")
}

pub(crate) fn param(u: &url::Url, name: &str) -> Option<String> {
    u.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Open the authorization URL; the login page's request id.
pub(crate) async fn open_login(b: &reqwest::Client, url: &str) -> String {
    let r = b.get(url).send().await.expect("authorize");
    assert_eq!(r.status(), 200, "the login page");
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    let html = r.text().await.expect("html");
    assert!(html.contains(r#"name="username""#) && html.contains(r#"name="password""#));
    between(&html, r#"name="request" value=""#, "\"")
        .expect("request id")
        .to_owned()
}

/// Post the password; the number the waiting page shows.
pub(crate) async fn post_password(
    srv: &TestServer,
    b: &reqwest::Client,
    request: &str,
    c: &Citizen,
) -> u8 {
    let r = b
        .post(format!("{}/oauth2/authorize", srv.url))
        .form(&[
            ("request", request),
            ("username", &c.account.username),
            ("password", c.account.initial_password.expose()),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 200);
    let html = r.text().await.expect("html");
    let number = between(&html, r#"id="number" aria-live="polite">"#, "<").expect("number");
    assert!(
        html.contains(r#"id="continue""#),
        "a link that works without JavaScript"
    );
    number.trim().parse().expect("two digits")
}

/// The page's long-poll, then "continue": where the browser is sent.
pub(crate) async fn finish(srv: &TestServer, b: &reqwest::Client, request: &str) -> url::Url {
    let s: serde_json::Value = b
        .get(format!(
            "{}/oauth2/authorize/wait?wait=10&request={request}",
            srv.url
        ))
        .send()
        .await
        .expect("wait")
        .json()
        .await
        .expect("json");
    assert_ne!(s["status"], "pending", "decided within the wait");
    let r = b
        .get(format!(
            "{}/oauth2/authorize/continue?request={request}",
            srv.url
        ))
        .send()
        .await
        .expect("continue");
    location(&r)
}

/// The code a browser brings back from `url`: logging `first` in (the
/// password, the phone's approval), or straight from the session.
pub(crate) async fn code_from(
    srv: &TestServer,
    b: &reqwest::Client,
    url: &str,
    first: Option<&Citizen>,
) -> String {
    let back = match first {
        Some(c) => {
            let request = open_login(b, url).await;
            let number = post_password(srv, b, &request, c).await;
            let ch = pulled(&c.phone).await;
            c.phone
                .answer(&ch, Decision::Approve, Some(number))
                .await
                .expect("approved");
            finish(srv, b, &request).await
        }
        None => location(&b.get(url).send().await.expect("single sign-on")),
    };
    param(&back, "code").expect("a code")
}

/// Redeem `code` for `client` (`client_secret_basic`): the token answer.
pub(crate) async fn redeemed(
    srv: &TestServer,
    (client, secret): (&str, &str),
    code: &str,
    redirect: &str,
) -> serde_json::Value {
    srv.http
        .post(format!("{}/oauth2/token", srv.url))
        .basic_auth(client, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
        ])
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json")
}

/// The whole login in the browser with the phone approving; the redirect back.
async fn log_in(srv: &TestServer, b: &reqwest::Client, a: &Authz, c: &Citizen) -> url::Url {
    let request = open_login(b, &a.url).await;
    let number = post_password(srv, b, &request, c).await;
    let ch = pulled(&c.phone).await;
    assert_eq!(ch.claims.ctx.service.as_deref(), Some("eUprava portal"));
    c.phone
        .answer(&ch, Decision::Approve, Some(number))
        .await
        .expect("approved");
    finish(srv, b, &request).await
}

fn code_of(back: &url::Url, a: &Authz, srv: &TestServer) -> AuthorizationCode {
    assert_eq!(
        param(back, "state").as_deref(),
        Some(a.state.secret().as_str())
    );
    assert_eq!(param(back, "iss").as_deref(), Some(srv.url.as_str()));
    AuthorizationCode::new(param(back, "code").expect("code"))
}

async fn code_flow_with_pkce_refresh_rotation_and_reuse_detection(backend: Backend) {
    let srv = provider(backend).await;
    let c = citizen(&srv, None).await;
    let rp = relying_party(&srv, false).await;
    let a = authorize(&rp, &[]);
    let back = log_in(&srv, &browser(), &a, &c).await;
    assert!(back.as_str().starts_with(RP));
    let tokens = rp
        .exchange_code(code_of(&back, &a, &srv))
        .expect("token endpoint")
        .set_pkce_verifier(a.verifier)
        .request_async(&http)
        .await
        .expect("code exchanged");
    // The library verifies the ID token: RS256 against the JWKS, iss, aud, exp, nonce.
    let id_token = tokens.id_token().expect("id_token");
    let claims = id_token
        .claims(&rp.id_token_verifier(), &a.nonce)
        .expect("ID token verifies");
    assert_eq!(claims.subject().as_str(), c.account.user_id);
    let amr: Vec<String> = claims
        .auth_method_refs()
        .expect("amr")
        .iter()
        .map(|m| m.as_str().to_owned())
        .collect();
    assert_eq!(amr, ["pwd", "swk", "user", "mfa"]);
    assert_eq!(
        claims.auth_context_ref().map(|a| a.as_str()),
        Some(potvrda_proto::oidc::LOA_SUBSTANTIAL),
        "the password and the phone: two factors"
    );
    assert!(claims.auth_time().is_some());
    let header = jsonwebtoken::decode_header(id_token.to_string()).expect("header");
    assert_eq!(
        header.alg,
        jsonwebtoken::Algorithm::RS256,
        "RS256 by default"
    );

    let info: CoreUserInfoClaims = rp
        .user_info(tokens.access_token().to_owned(), None)
        .expect("userinfo endpoint")
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(
        info.preferred_username().map(|u| u.as_str()),
        Some(c.account.username.as_str())
    );
    assert_eq!(
        info.email().map(|e| e.as_str().to_owned()),
        Some(format!("{}@example.rs", c.account.username))
    );
    assert_eq!(
        info.phone_number().map(|p| p.as_str()),
        Some("+381641234567")
    );

    // Refresh: a new refresh token each time; the old one is then a theft signal.
    let first = tokens.refresh_token().expect("refresh token").clone();
    let second = rp
        .exchange_refresh_token(&first)
        .expect("token endpoint")
        .request_async(&http)
        .await
        .expect("refreshed");
    let second_refresh = second.refresh_token().expect("rotated").clone();
    assert_ne!(second_refresh.secret(), first.secret());
    second
        .id_token()
        .expect("id_token on refresh")
        .claims(&rp.id_token_verifier(), |_: Option<&Nonce>| Ok(()))
        .expect("refreshed ID token verifies");
    let reuse = rp
        .exchange_refresh_token(&first)
        .expect("token endpoint")
        .request_async(&http)
        .await;
    assert!(
        format!("{reuse:?}").contains("invalid_grant"),
        "an old refresh token is refused: {reuse:?}"
    );
    // ... and the whole family is revoked: the newest refresh token, and the access tokens.
    let after = rp
        .exchange_refresh_token(&RefreshToken::new(second_refresh.secret().clone()))
        .expect("token endpoint")
        .request_async(&http)
        .await;
    assert!(format!("{after:?}").contains("invalid_grant"), "{after:?}");
    let r = srv
        .http
        .get(format!("{}/oauth2/userinfo", srv.url))
        .bearer_auth(second.access_token().secret())
        .send()
        .await
        .expect("userinfo");
    assert_eq!(r.status(), 401);
    let events = srv
        .audit(&format!("user_id={}", c.account.user_id))
        .await
        .events;
    assert!(
        events
            .iter()
            .any(|e| e.kind == potvrda_proto::api::AuditKind::GrantRevoked
                && e.severity == potvrda_proto::api::Severity::High),
        "the reuse is audited at high severity"
    );
}

async fn a_second_use_of_a_code_fails_and_revokes_what_the_first_issued(backend: Backend) {
    let srv = provider(backend).await;
    let c = citizen(&srv, None).await;
    let rp = relying_party(&srv, false).await;
    let a = authorize(&rp, &[]);
    let back = log_in(&srv, &browser(), &a, &c).await;
    let code = code_of(&back, &a, &srv);
    let verifier = a.verifier.secret().clone();
    let first = rp
        .exchange_code(code.clone())
        .expect("token endpoint")
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.clone()))
        .request_async(&http)
        .await
        .expect("first use");
    let second = rp
        .exchange_code(code)
        .expect("token endpoint")
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(&http)
        .await;
    assert!(
        format!("{second:?}").contains("invalid_grant"),
        "{second:?}"
    );
    let refresh = rp
        .exchange_refresh_token(first.refresh_token().expect("refresh"))
        .expect("token endpoint")
        .request_async(&http)
        .await;
    assert!(
        format!("{refresh:?}").contains("invalid_grant"),
        "the first use's refresh token is revoked: {refresh:?}"
    );
    let r = srv
        .http
        .get(format!("{}/oauth2/userinfo", srv.url))
        .bearer_auth(first.access_token().secret())
        .send()
        .await
        .expect("userinfo");
    assert_eq!(r.status(), 401, "the first use's access token is revoked");
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .expect("ascii")
            .contains("invalid_token")
    );
}

async fn token_error(
    srv: &TestServer,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (u16, String) {
    let mut req = srv
        .http
        .post(format!("{}/oauth2/token", srv.url))
        .form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let r = req.send().await.expect("token");
    let status = r.status().as_u16();
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: serde_json::Value = r.json().await.expect("RFC 6749 JSON error");
    (status, body["error"].as_str().expect("error").to_owned())
}

async fn bad_clients_redirects_verifiers_and_secrets_are_refused(backend: Backend) {
    let srv = provider(backend).await;
    let c = citizen(&srv, None).await;
    let rp = relying_party(&srv, false).await;
    let b = browser();
    // Unknown client, unregistered redirect URI: an error page, never a redirect.
    let a = authorize(&rp, &[]);
    for (from, to) in [
        (
            format!("client_id={CONFIDENTIAL}"),
            "client_id=nobody".to_owned(),
        ),
        (
            url::form_urlencoded::byte_serialize(RP.as_bytes()).collect::<String>(),
            url::form_urlencoded::byte_serialize(b"https://evil.example/callback").collect(),
        ),
        (
            url::form_urlencoded::byte_serialize(RP.as_bytes()).collect::<String>(),
            url::form_urlencoded::byte_serialize(format!("{RP}/x").as_bytes()).collect(),
        ),
    ] {
        let bad = a.url.replace(&from, &to);
        assert_ne!(bad, a.url);
        let r = b.get(&bad).send().await.expect("authorize");
        assert_eq!(r.status(), 400, "{bad}");
        assert!(r.headers().get("location").is_none(), "never redirected");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .starts_with("text/html")
        );
    }
    // Other errors go back to the client per RFC 6749 §4.1.2.1.
    let no_openid = a.url.replace("scope=openid", "scope=profile");
    let back = location(&b.get(&no_openid).send().await.expect("authorize"));
    assert_eq!(param(&back, "error").as_deref(), Some("invalid_scope"));
    assert_eq!(
        param(&back, "state").as_deref(),
        Some(a.state.secret().as_str())
    );
    let plain = a
        .url
        .replace("code_challenge_method=S256", "code_challenge_method=plain");
    let back = location(&b.get(&plain).send().await.expect("authorize"));
    assert_eq!(param(&back, "error").as_deref(), Some("invalid_request"));
    // A public client without PKCE is refused.
    let public = relying_party(&srv, true).await;
    let (url, _, _) = public
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .url();
    let back = location(&b.get(url.as_str()).send().await.expect("authorize"));
    assert_eq!(param(&back, "error").as_deref(), Some("invalid_request"));

    // A real code, then the token endpoint's checks.
    let back = log_in(&srv, &b, &a, &c).await;
    let code = code_of(&back, &a, &srv);
    let verifier = a.verifier.secret().clone();
    let ok_form = |v: &str| {
        vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.secret().clone()),
            ("redirect_uri", RP.to_owned()),
            ("code_verifier", v.to_owned()),
        ]
    };
    let as_refs = |f: &[(&'static str, String)]| -> Vec<(&'static str, String)> { f.to_vec() };
    let send = |f: Vec<(&'static str, String)>, basic: Option<(&'static str, &'static str)>| {
        let srv = &srv;
        async move {
            let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            token_error(srv, &pairs, basic).await
        }
    };
    assert_eq!(
        send(
            as_refs(&ok_form(&verifier)),
            Some((CONFIDENTIAL, "wrong-secret-0123456789"))
        )
        .await,
        (401, "invalid_client".into())
    );
    assert_eq!(
        send(as_refs(&ok_form(&verifier)), None).await,
        (401, "invalid_client".into()),
        "a confidential client must authenticate"
    );
    let wrong_verifier = "x".repeat(43);
    assert_eq!(
        send(
            as_refs(&ok_form(&wrong_verifier)),
            Some((CONFIDENTIAL, SECRET))
        )
        .await,
        (400, "invalid_grant".into())
    );
    let mut wrong_uri = ok_form(&verifier);
    wrong_uri[2].1 = format!("{RP}/other");
    assert_eq!(
        send(wrong_uri, Some((CONFIDENTIAL, SECRET))).await,
        (400, "invalid_grant".into())
    );
    let mut other_grant = ok_form(&verifier);
    other_grant[0].1 = "password".into();
    assert_eq!(
        send(other_grant, Some((CONFIDENTIAL, SECRET))).await,
        (400, "unsupported_grant_type".into())
    );
    // The failed attempts did not burn the code: the rightful client still redeems it.
    rp.exchange_code(code)
        .expect("token endpoint")
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(&http)
        .await
        .expect("the right verifier, URI and secret work");
}

async fn a_denial_on_the_phone_is_access_denied_for_the_client(backend: Backend) {
    let srv = provider(backend).await;
    let c = citizen(&srv, None).await;
    let rp = relying_party(&srv, false).await;
    let b = browser();
    let a = authorize(&rp, &[]);
    let request = open_login(&b, &a.url).await;
    // A wrong password shows the form again, with a message.
    let r = b
        .post(format!("{}/oauth2/authorize", srv.url))
        .form(&[
            ("request", request.as_str()),
            ("username", &c.account.username),
            ("password", "wrong"),
        ])
        .send()
        .await
        .expect("login");
    let html = r.text().await.expect("html");
    assert!(html.contains(r#"id="error""#) && html.contains(r#"name="password""#));
    post_password(&srv, &b, &request, &c).await;
    c.phone
        .answer(&pulled(&c.phone).await, Decision::Deny, None)
        .await
        .expect("denied");
    let back = finish(&srv, &b, &request).await;
    assert!(back.as_str().starts_with(RP));
    assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
    assert_eq!(
        param(&back, "state").as_deref(),
        Some(a.state.secret().as_str())
    );
    assert!(param(&back, "code").is_none());
    // The request is over: continuing again is an error page, not a second redirect.
    let r = b
        .get(format!(
            "{}/oauth2/authorize/continue?request={request}",
            srv.url
        ))
        .send()
        .await
        .expect("continue");
    assert_eq!(r.status(), 400);
    // Another browser cannot continue someone else's request.
    let a2 = authorize(&rp, &[]);
    let request2 = open_login(&b, &a2.url).await;
    let r = browser()
        .get(format!(
            "{}/oauth2/authorize/continue?request={request2}",
            srv.url
        ))
        .send()
        .await
        .expect("continue");
    assert_eq!(r.status(), 400, "bound to the browser that started it");
}

async fn codes_and_login_pages_expire(backend: Backend) {
    let srv = provider(backend).await;
    let c = citizen(&srv, None).await;
    let rp = relying_party(&srv, false).await;
    let b = browser();
    let a = authorize(&rp, &[]);
    let back = log_in(&srv, &b, &a, &c).await;
    let code = code_of(&back, &a, &srv);
    srv.clock.advance(61);
    let late = rp
        .exchange_code(code)
        .expect("token endpoint")
        .set_pkce_verifier(a.verifier)
        .request_async(&http)
        .await;
    assert!(format!("{late:?}").contains("invalid_grant"), "{late:?}");
    // A login page left open for more than ten minutes cannot be used.
    let a2 = authorize(&rp, &[("prompt", "login")]);
    let request = open_login(&b, &a2.url).await;
    srv.clock.advance(601);
    let r = b
        .post(format!("{}/oauth2/authorize", srv.url))
        .form(&[
            ("request", request.as_str()),
            ("username", &c.account.username),
            ("password", c.account.initial_password.expose()),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .expect("html")
            .contains("Ова пријава је истекла")
    );
}

async fn single_sign_on_prompt_max_age_and_logout(backend: Backend) {
    let srv = provider(backend).await;
    let c = citizen(&srv, None).await;
    let portal = relying_party(&srv, false).await;
    let app = relying_party(&srv, true).await;
    let b = browser();
    let a = authorize(&portal, &[]);
    let back = log_in(&srv, &b, &a, &c).await;
    let tokens = portal
        .exchange_code(code_of(&back, &a, &srv))
        .expect("token endpoint")
        .set_pkce_verifier(a.verifier)
        .request_async(&http)
        .await
        .expect("tokens");
    let id_token = tokens.id_token().expect("id token").to_string();

    // A second client within the session: straight back with a code, no push.
    let a2 = authorize(&app, &[]);
    let back = location(&b.get(&a2.url).send().await.expect("authorize"));
    assert!(back.as_str().starts_with(RP_PUBLIC));
    let app_tokens = app
        .exchange_code(code_of(&back, &a2, &srv))
        .expect("token endpoint")
        .set_pkce_verifier(a2.verifier)
        .request_async(&http)
        .await
        .expect("public client with PKCE, no secret");
    let claims = app_tokens
        .id_token()
        .expect("id token")
        .claims(
            &app.id_token_verifier()
                .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]),
            &a2.nonce,
        )
        .expect("ES256 ID token verifies");
    assert_eq!(claims.subject().as_str(), c.account.user_id);
    assert!(
        c.phone.pending().await.expect("pull").is_empty(),
        "no push for SSO"
    );

    // prompt=login, and max_age older than the approval, ask again.
    let forced = authorize(&app, &[("prompt", "login")]);
    assert_eq!(
        b.get(&forced.url).send().await.expect("authorize").status(),
        200
    );
    srv.clock.advance(30);
    let aged = authorize(&app, &[("max_age", "10")]);
    assert_eq!(
        b.get(&aged.url).send().await.expect("authorize").status(),
        200
    );
    let fresh_enough = authorize(&app, &[("max_age", "3600")]);
    assert_eq!(
        b.get(&fresh_enough.url)
            .send()
            .await
            .expect("authorize")
            .status(),
        303
    );

    // RP-initiated logout ends the session and returns to the registered URI.
    let logout = format!(
        "{}/oauth2/logout?id_token_hint={id_token}&post_logout_redirect_uri={}&state=bye-1",
        srv.url,
        url::form_urlencoded::byte_serialize(AFTER_LOGOUT.as_bytes()).collect::<String>()
    );
    let after = location(&b.get(&logout).send().await.expect("logout"));
    assert_eq!(after.as_str(), format!("{AFTER_LOGOUT}?state=bye-1"));
    let again = authorize(&app, &[]);
    assert_eq!(
        b.get(&again.url).send().await.expect("authorize").status(),
        200,
        "logged out: the login page again"
    );
    let silent = authorize(&app, &[("prompt", "none")]);
    let back = location(&b.get(&silent.url).send().await.expect("authorize"));
    assert_eq!(param(&back, "error").as_deref(), Some("login_required"));
    // An unregistered post-logout URI is not followed.
    let r = b
        .get(format!(
            "{}/oauth2/logout?id_token_hint={id_token}&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F",
            srv.url
        ))
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status(), 200);
}

/// Key rotation on one Redis: `auth-server keys rotate` (the library call it
/// makes) switches both instances at once; tokens signed before still verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_publishes_current_and_previous_and_instances_switch_together() {
    let a = provider(Backend::Redis).await;
    let b = TestServer::start_with(Options {
        oidc_clients: Some(clients()),
        redis_prefix: a.redis_prefix.clone(),
        ..Options::new(Backend::Redis)
    })
    .await;
    let before = a.jwks().await;
    assert_eq!(before.keys.len(), 2, "one generation: ES256 and RS256");
    assert_eq!(b.jwks().await, before, "instances share the keyring");
    let c = citizen(&a, None).await;
    let rp = relying_party(&a, false).await;
    let az = authorize(&rp, &[]);
    let back = log_in(&a, &browser(), &az, &c).await;
    let old = rp
        .exchange_code(code_of(&back, &az, &a))
        .expect("token endpoint")
        .set_pkce_verifier(az.verifier)
        .request_async(&http)
        .await
        .expect("tokens");

    let config = potvrda_server::config::Config {
        store: potvrda_server::config::sections::Store {
            redis_url: Some(potvrda_e2e::redis_url().into()),
            redis_key_prefix: a.redis_prefix.clone().expect("prefix"),
            ..Default::default()
        },
        ..potvrda_server::config::Config::default()
    };
    let (es, rs) = potvrda_server::rotate_token_keys(&config)
        .await
        .expect("rotated");
    for srv in [&a, &b] {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let now = srv.jwks().await;
            if now.keys.len() == 4 {
                assert_eq!(now.keys[0].kid, es, "current first");
                assert_eq!(now.keys[1].kid, rs);
                assert!(
                    before.keys.iter().all(|k| now.find(&k.kid).is_some()),
                    "previous kept"
                );
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "rotation seen within 10 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    // The old ID token still verifies against the new JWKS (fresh discovery).
    let fresh = relying_party(&a, false).await;
    old.id_token()
        .expect("id token")
        .claims(&fresh.id_token_verifier(), &az.nonce)
        .expect("signed before the rotation, still valid");
    // New tokens are signed with the new key, on the other instance too.
    let rp2 = relying_party(&b, false).await;
    let refreshed = rp2
        .exchange_refresh_token(old.refresh_token().expect("refresh"))
        .expect("token endpoint")
        .request_async(&http)
        .await
        .expect("refreshed on the other instance");
    let header =
        jsonwebtoken::decode_header(refreshed.id_token().expect("id").to_string()).expect("header");
    assert_eq!(header.kid.as_deref(), Some(rs.as_str()));
}

/// The automatic schedule, driven by the server's clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_on_schedule() {
    let srv = provider(Backend::Embedded).await;
    let before = srv.jwks().await;
    srv.clock.advance(90 * 86_400);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let now = srv.jwks().await;
        if now.keys.len() == 4 {
            assert_eq!(
                &now.keys[2..],
                &before.keys[..],
                "the old generation is now the previous"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rotated within 20 s of the due time"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let _ = srv.clock.now();
}

/// Security round 2, finding 5: after a lost-phone reset and the device's
/// revocation, the old refresh token still refreshed and `prompt=none` still
/// issued codes; a password change ended nothing either. Now a reset, a
/// password change, a device revocation and a lock each end every session
/// and grant (an unlock revives none), and a reset revokes the old devices.
async fn a_reset_a_new_password_or_a_revoked_phone_ends_every_session(backend: Backend) {
    let srv = provider(backend).await;
    let rp = relying_party(&srv, false).await;
    let (_, sa) = staff(&srv, &srv.token, "superadmin", None).await;
    // The control: nothing happened, everything works.
    let c = citizen(&srv, None).await;
    let (b, tokens) = signed_in(&srv, &rp, &c).await;
    assert_eq!(still_works(&srv, &rp, b, tokens).await, (true, true, true));

    // 1. A lost-phone reset at the counter.
    let c = citizen(&srv, None).await;
    let (b, tokens) = signed_in(&srv, &rp, &c).await;
    let r = post(
        &srv,
        &format!("/v1/admin/citizens/{}/reset", c.account.user_id),
        Some(&sa),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        still_works(&srv, &rp, b, tokens).await,
        (false, false, false),
        "after a reset"
    );
    let pull = c.phone.pending().await;
    assert!(pull.is_err(), "the lost phone is revoked: {pull:?}");

    // 2. The citizen changes the password (with a portal token).
    let c = citizen(&srv, None).await;
    let (b, tokens) = signed_in(&srv, &rp, &c).await;
    let portal = {
        let l = login(&srv, &c).await;
        c.phone
            .answer(&pulled(&c.phone).await, Decision::Approve, Some(l.number))
            .await
            .expect("approved");
        srv.status(&l.login_id, l.login_secret.expose(), 0)
            .await
            .access_token
            .expect("token")
    };
    let r = srv
        .http
        .post(format!("{}/v1/me/password", srv.url))
        .bearer_auth(&portal)
        .json(&serde_json::json!({"current": c.account.initial_password, "new": "a-new-long-password"}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 204);
    assert_eq!(
        still_works(&srv, &rp, b, tokens).await,
        (false, false, false),
        "after a password change"
    );

    // 3. The counter revokes the phone.
    let c = citizen(&srv, None).await;
    let (b, tokens) = signed_in(&srv, &rp, &c).await;
    let device = c.phone.state.device.device_id.clone();
    let r = srv
        .http
        .delete(format!(
            "{}/v1/admin/citizens/{}/devices/{device}",
            srv.url, c.account.user_id
        ))
        .bearer_auth(&sa)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 204);
    assert_eq!(
        still_works(&srv, &rp, b, tokens).await,
        (false, false, false),
        "after a revocation"
    );

    // 4. A lock, then an unlock: what the lock ended stays ended.
    let c = citizen(&srv, None).await;
    let (b, tokens) = signed_in(&srv, &rp, &c).await;
    for action in ["lock", "unlock"] {
        let r = post(
            &srv,
            &format!("/v1/admin/citizens/{}/{action}", c.account.user_id),
            Some(&sa),
            serde_json::json!({}),
        )
        .await;
        assert_eq!(r.status(), 204);
    }
    assert_eq!(
        still_works(&srv, &rp, b, tokens).await,
        (false, false, false),
        "after a lock and an unlock"
    );
}

/// Logged in through the provider: a browser with its session, the RP's tokens.
async fn signed_in(srv: &TestServer, rp: &Rp, c: &Citizen) -> (reqwest::Client, CoreTokenResponse) {
    let b = browser();
    let a = authorize(rp, &[]);
    let back = log_in(srv, &b, &a, c).await;
    let tokens = rp
        .exchange_code(code_of(&back, &a, srv))
        .expect("token endpoint")
        .set_pkce_verifier(a.verifier)
        .request_async(&http)
        .await
        .expect("tokens");
    (b, tokens)
}

/// Whether single sign-on (`prompt=none`), the refresh token and UserInfo still work.
async fn still_works(
    srv: &TestServer,
    rp: &Rp,
    b: reqwest::Client,
    tokens: CoreTokenResponse,
) -> (bool, bool, bool) {
    let silent = authorize(rp, &[("prompt", "none")]);
    let back = location(&b.get(&silent.url).send().await.expect("authorize"));
    let sso = param(&back, "code").is_some();
    let refresh = rp
        .exchange_refresh_token(tokens.refresh_token().expect("refresh"))
        .expect("token endpoint")
        .request_async(&http)
        .await
        .is_ok();
    let userinfo = srv
        .http
        .get(format!("{}/oauth2/userinfo", srv.url))
        .bearer_auth(tokens.access_token().secret())
        .send()
        .await
        .expect("userinfo")
        .status()
        == 200;
    (sso, refresh, userinfo)
}

/// Security round 2, finding 8: a used code of the confidential client,
/// presented by a public client with no secret, revoked the confidential
/// client's grant, because the "already used" check ran first.
async fn another_client_cannot_revoke_a_grant_with_a_used_code(backend: Backend) {
    let srv = provider(backend).await;
    let c = citizen(&srv, None).await;
    let rp = relying_party(&srv, false).await;
    let b = browser();
    let a = authorize(&rp, &[]);
    let back = log_in(&srv, &b, &a, &c).await;
    let code = code_of(&back, &a, &srv);
    let tokens = rp
        .exchange_code(code.clone())
        .expect("token endpoint")
        .set_pkce_verifier(a.verifier)
        .request_async(&http)
        .await
        .expect("tokens");
    // The public client presents the (used) code: refused, and nothing is revoked.
    let (status, error) = token_error(
        &srv,
        &[
            ("grant_type", "authorization_code"),
            ("code", code.secret()),
            ("redirect_uri", RP),
            ("client_id", PUBLIC),
        ],
        None,
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    let refreshed = rp
        .exchange_refresh_token(tokens.refresh_token().expect("refresh"))
        .expect("token endpoint")
        .request_async(&http)
        .await;
    assert!(
        refreshed.is_ok(),
        "the confidential client's grant stands: {refreshed:?}"
    );
    // The code's own client presenting it again still revokes (the reuse rule).
    let refreshed = refreshed.expect("tokens");
    let (status, _) = token_error(
        &srv,
        &[
            ("grant_type", "authorization_code"),
            ("code", code.secret()),
            ("redirect_uri", RP),
        ],
        Some((CONFIDENTIAL, SECRET)),
    )
    .await;
    assert_eq!(status, 400);
    let after = rp
        .exchange_refresh_token(refreshed.refresh_token().expect("refresh"))
        .expect("token endpoint")
        .request_async(&http)
        .await;
    assert!(format!("{after:?}").contains("invalid_grant"), "{after:?}");
}

/// Security round 2, finding 9: a cross-site top-level GET to
/// `/oauth2/logout` ended the citizen's session. Now a logout without an ID
/// token of this very session asks the citizen, and the form posts back
/// with a CSRF token.
async fn a_cross_site_logout_only_asks(backend: Backend) {
    let srv = provider(backend).await;
    let rp = relying_party(&srv, false).await;
    let victim = citizen(&srv, None).await;
    let b = browser();
    let a = authorize(&rp, &[]);
    log_in(&srv, &b, &a, &victim).await;
    let signed_in = |b: &reqwest::Client| {
        let (b, rp) = (b.clone(), &rp);
        async move {
            let silent = authorize(rp, &[("prompt", "none")]);
            param(
                &location(&b.get(&silent.url).send().await.expect("authorize")),
                "code",
            )
            .is_some()
        }
    };
    assert!(signed_in(&b).await);
    // The attacker's own ID token (another session) as the hint, or none at all.
    let attacker = citizen(&srv, None).await;
    let ab = browser();
    let aa = authorize(&rp, &[]);
    let back = log_in(&srv, &ab, &aa, &attacker).await;
    let theirs = rp
        .exchange_code(code_of(&back, &aa, &srv))
        .expect("token endpoint")
        .set_pkce_verifier(aa.verifier)
        .request_async(&http)
        .await
        .expect("tokens");
    let their_id_token = theirs.id_token().expect("id token").to_string();
    let mut page = String::new();
    for query in [String::new(), format!("?id_token_hint={their_id_token}")] {
        let r = b
            .get(format!("{}/oauth2/logout{query}", srv.url))
            .send()
            .await
            .expect("logout");
        assert_eq!(r.status(), 200, "a page, not a redirect");
        page = r.text().await.expect("body");
        assert!(
            page.contains(r#"action="/oauth2/logout""#),
            "the confirmation form"
        );
        assert!(signed_in(&b).await, "still signed in after {query:?}");
    }
    // A forged form (no token from the page) is refused.
    let r = b
        .post(format!("{}/oauth2/logout", srv.url))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status(), 403);
    assert!(signed_in(&b).await);
    // The citizen clicks "log out": the session ends.
    let csrf = between(&page, r#"name="csrf" value=""#, r#"""#)
        .expect("csrf")
        .to_owned();
    let r = b
        .post(format!("{}/oauth2/logout", srv.url))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status(), 200);
    assert!(!signed_in(&b).await, "logged out");
    // The session's own client, with its ID token, logs out without asking.
    let ended = theirs.id_token().expect("id token").to_string();
    let r = ab
        .get(format!("{}/oauth2/logout?id_token_hint={ended}", srv.url))
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status(), 200);
    assert!(
        !r.text()
            .await
            .expect("body")
            .contains(r#"action="/oauth2/logout""#)
    );
    assert!(!signed_in(&ab).await);
}
