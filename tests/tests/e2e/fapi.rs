//! The FAPI 2.0 Security Profile, attacked on every store: a `fapi2`
//! client pushes a signed request object (PAR + JAR) with
//! `private_key_jwt`, the citizen logs in, and every token is bound to the
//! client's DPoP key. Each rule is then broken once: a `request_uri` used
//! twice or late, a request object signed by another key, a DPoP proof
//! replayed, for another URL or method, without a nonce or from another
//! key, a bound token used without its proof, PKCE `plain` or a secret
//! from a FAPI client, no PAR at all. Introspection and revocation answer
//! only the caller's own tokens, and revoking a refresh token ends its
//! family.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use potvrda_e2e::{Backend, Options, TestServer};
use potvrda_proto::jose::Decision;
use serde_json::{Value, json};

use crate::oidc::{browser, finish, location, open_login, param, post_password};
use crate::support::*;

crate::on_both_stores!(
    the_fapi2_flow_binds_every_token_to_the_clients_key,
    fapi2_clients_are_held_to_the_profile,
    a_public_clients_refresh_tokens_are_bound_to_its_key,
);

const FAPI: &str = "ezdravlje";
const OTHER: &str = "biblioteka";
const OTHER_SECRET: &str = "biblioteka-secret-0123456789";
const RP: &str = "https://ezdravlje.example/cb";
const APP: &str = "euprava-app";
const APP_RP: &str = "http://127.0.0.1:1/app";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn clients(key: &ClientKey) -> String {
    json!([
        {"client_id": FAPI, "name": "eZdravlje", "fapi2": true, "redirect_uris": [RP],
         "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [key.jwk]},
         "id_token_signed_response_alg": "ES256"},
        {"client_id": OTHER, "client_secret": OTHER_SECRET, "name": "Biblioteka",
         "redirect_uris": ["https://biblioteka.example/cb"]},
        {"client_id": APP, "name": "eUprava app", "redirect_uris": [APP_RP],
         "token_endpoint_auth_method": "none"},
    ])
    .to_string()
}

async fn server(backend: Backend, key: &ClientKey) -> TestServer {
    TestServer::start_with(Options {
        oidc_clients: Some(clients(key)),
        ..Options::new(backend)
    })
    .await
}

/// A PKCE verifier and its S256 challenge.
fn pkce() -> (String, String) {
    let verifier = format!("{}{}", potvrda_e2e::unique("v"), "x".repeat(43));
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    (verifier, URL_SAFE_NO_PAD.encode(digest))
}

/// A request object signed by `key`: the authorization request for `FAPI`.
fn request_object(srv: &TestServer, key: &ClientKey, challenge: &str, extra: Value) -> String {
    use potvrda_server::clock::Clock;
    let now = srv.clock.now();
    let mut claims = json!({
        "iss": FAPI, "aud": srv.url, "exp": now + 300, "nbf": now, "client_id": FAPI,
        "response_type": "code", "redirect_uri": RP, "scope": "openid profile",
        "state": "st-1", "nonce": "n-1", "code_challenge": challenge, "code_challenge_method": "S256",
    });
    if let (Some(c), Some(e)) = (claims.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(key.kid.clone());
    header.typ = Some("oauth-authz-req+jwt".into());
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ec_der(&key.der),
    )
    .expect("signs")
}

/// POST a form to `path` with the client's assertion and, if given, a
/// DPoP proof by `dpop` (with `nonce`).
async fn post_form(
    srv: &TestServer,
    path: &str,
    key: &ClientKey,
    form: &[(&str, &str)],
    dpop: Option<(&ClientKey, Option<&str>)>,
) -> reqwest::Response {
    let url = format!("{}{path}", srv.url);
    let assertion = assertion(srv, key, FAPI, json!({}));
    let mut fields: Vec<(&str, &str)> = vec![
        ("client_id", FAPI),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", &assertion),
    ];
    fields.extend_from_slice(form);
    let mut r = srv.http.post(&url).form(&fields);
    if let Some((k, nonce)) = dpop {
        r = r.header("DPoP", dpop_proof(srv, k, "POST", &url, nonce, None));
    }
    r.send().await.expect("sent")
}

async fn oauth_error(r: reqwest::Response) -> String {
    let body: Value = r.json().await.expect("JSON");
    body["error"].as_str().unwrap_or_default().to_owned()
}

/// The server's DPoP nonce, as a first proof without one learns it.
async fn learn_nonce(srv: &TestServer, key: &ClientKey, dpop: &ClientKey, request: &str) -> String {
    let r = post_form(
        srv,
        "/oauth2/par",
        key,
        &[("request", request)],
        Some((dpop, None)),
    )
    .await;
    assert_eq!(r.status(), 400);
    let nonce = r.headers()["dpop-nonce"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(oauth_error(r).await, "use_dpop_nonce");
    nonce
}

/// Push a signed request; its `request_uri`.
async fn pushed(
    srv: &TestServer,
    key: &ClientKey,
    dpop: &ClientKey,
    nonce: &str,
    request: &str,
) -> String {
    let r = post_form(
        srv,
        "/oauth2/par",
        key,
        &[("request", request)],
        Some((dpop, Some(nonce))),
    )
    .await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.expect("json");
    assert!(
        body["expires_in"]
            .as_u64()
            .is_some_and(|e| e > 0 && e < 600)
    );
    body["request_uri"]
        .as_str()
        .expect("request_uri")
        .to_owned()
}

fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json")
}

async fn userinfo(srv: &TestServer, scheme: &str, token: &str, proof: Option<String>) -> u16 {
    let mut r = srv
        .http
        .get(format!("{}/oauth2/userinfo", srv.url))
        .header("Authorization", format!("{scheme} {token}"));
    if let Some(p) = proof {
        r = r.header("DPoP", p);
    }
    r.send().await.expect("sent").status().as_u16()
}

async fn the_fapi2_flow_binds_every_token_to_the_clients_key(backend: Backend) {
    let (key, dpop, stranger) = (
        client_key("fapi-1"),
        client_key("dpop-1"),
        client_key("dpop-2"),
    );
    let srv = server(backend, &key).await;
    let c = citizen(&srv, None).await;
    let (verifier, challenge) = pkce();
    let request = request_object(&srv, &key, &challenge, json!({}));
    let nonce = learn_nonce(&srv, &key, &dpop, &request).await;
    let uri = pushed(&srv, &key, &dpop, &nonce, &request).await;

    let b = browser();
    let authorize = format!(
        "{}/oauth2/authorize?client_id={FAPI}&request_uri={uri}",
        srv.url
    );
    let login_request = open_login(&b, &authorize).await;
    let reused = b.get(&authorize).send().await.expect("sent");
    assert_eq!(reused.status(), 400, "a request_uri works once");
    let number = post_password(&srv, &b, &login_request, &c).await;
    let ch = pulled(&c.phone).await;
    assert_eq!(ch.claims.ctx.service.as_deref(), Some("eZdravlje"));
    c.phone
        .answer(&ch, Decision::Approve, Some(number))
        .await
        .expect("approved");
    let back = finish(&srv, &b, &login_request).await;
    assert_eq!(param(&back, "iss").as_deref(), Some(srv.url.as_str()));
    assert_eq!(param(&back, "state").as_deref(), Some("st-1"));
    let code = param(&back, "code").expect("code");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", RP),
        ("code_verifier", verifier.as_str()),
    ];

    // The code is bound to the key that pushed the request.
    let r = post_form(
        &srv,
        "/oauth2/token",
        &key,
        &form,
        Some((&stranger, Some(&nonce))),
    )
    .await;
    assert_eq!(oauth_error(r).await, "invalid_dpop_proof", "another key");
    let r = post_form(&srv, "/oauth2/token", &key, &form, None).await;
    assert_eq!(oauth_error(r).await, "invalid_dpop_proof", "no proof");
    let r = post_form(&srv, "/oauth2/token", &key, &form, Some((&dpop, None))).await;
    assert_eq!(oauth_error(r).await, "use_dpop_nonce", "no nonce");
    let r = post_form(
        &srv,
        "/oauth2/token",
        &key,
        &form,
        Some((&dpop, Some(&nonce))),
    )
    .await;
    assert_eq!(r.status(), 200);
    let tokens: Value = r.json().await.expect("json");
    assert_eq!(tokens["token_type"], "DPoP");
    let access = tokens["access_token"]
        .as_str()
        .expect("access token")
        .to_owned();
    assert_eq!(claims_of(&access)["cnf"]["jkt"], thumbprint(&dpop));
    let id = claims_of(tokens["id_token"].as_str().expect("id token"));
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access.as_bytes());
    assert_eq!(
        id["at_hash"],
        URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
    );
    assert!(id["sid"].as_str().is_some_and(|s| !s.is_empty()));

    // UserInfo: only with a fresh proof by the bound key, covering the token.
    let info = format!("{}/oauth2/userinfo", srv.url);
    let proof = dpop_proof(&srv, &dpop, "GET", &info, None, Some(&access));
    assert_eq!(
        userinfo(&srv, "DPoP", &access, Some(proof.clone())).await,
        200
    );
    assert_eq!(
        userinfo(&srv, "DPoP", &access, Some(proof)).await,
        401,
        "replayed"
    );
    assert_eq!(
        userinfo(&srv, "Bearer", &access, None).await,
        401,
        "as a bearer token"
    );
    let under_bearer = dpop_proof(&srv, &dpop, "GET", &info, None, Some(&access));
    assert_eq!(
        userinfo(&srv, "Bearer", &access, Some(under_bearer)).await,
        401,
        "under the Bearer scheme, even with its proof"
    );
    assert_eq!(
        userinfo(&srv, "DPoP", &access, None).await,
        401,
        "without a proof"
    );
    let other_key = dpop_proof(&srv, &stranger, "GET", &info, None, Some(&access));
    assert_eq!(
        userinfo(&srv, "DPoP", &access, Some(other_key)).await,
        401,
        "another key"
    );
    let other_url = dpop_proof(
        &srv,
        &dpop,
        "GET",
        &format!("{}/oauth2/token", srv.url),
        None,
        Some(&access),
    );
    assert_eq!(
        userinfo(&srv, "DPoP", &access, Some(other_url)).await,
        401,
        "another URL"
    );
    let other_method = dpop_proof(&srv, &dpop, "POST", &info, None, Some(&access));
    assert_eq!(
        userinfo(&srv, "DPoP", &access, Some(other_method)).await,
        401,
        "another method"
    );
    let no_ath = dpop_proof(&srv, &dpop, "GET", &info, None, None);
    assert_eq!(
        userinfo(&srv, "DPoP", &access, Some(no_ath)).await,
        401,
        "not covering the token"
    );

    introspection_and_revocation(&srv, &key, &dpop, &nonce, &tokens).await;
}

/// Introspection tells the client about its own tokens only; another
/// client's revocation does nothing; the client's revokes the family.
async fn introspection_and_revocation(
    srv: &TestServer,
    key: &ClientKey,
    dpop: &ClientKey,
    nonce: &str,
    tokens: &Value,
) {
    let access = tokens["access_token"].as_str().expect("access");
    let refresh = tokens["refresh_token"].as_str().expect("refresh");
    let own = post_form(srv, "/oauth2/introspect", key, &[("token", access)], None).await;
    let own: Value = own.json().await.expect("json");
    assert_eq!(own["active"], true);
    assert_eq!(own["token_type"], "DPoP");
    assert_eq!(own["cnf"]["jkt"], thumbprint(dpop));
    let by_other = |path: &'static str, token: &str| {
        srv.http
            .post(format!("{}{path}", srv.url))
            .basic_auth(OTHER, Some(OTHER_SECRET))
            .form(&[("token", token)])
            .send()
    };
    for token in [access, refresh] {
        let r: Value = by_other("/oauth2/introspect", token)
            .await
            .expect("sent")
            .json()
            .await
            .expect("json");
        assert_eq!(
            r,
            json!({"active": false}),
            "another client's token is not active to it"
        );
        let r = by_other("/oauth2/revoke", token).await.expect("sent");
        assert_eq!(r.status(), 200, "answered as done");
    }
    let still: Value = post_form(srv, "/oauth2/introspect", key, &[("token", refresh)], None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(still["active"], true, "another client revoked nothing");

    let r = post_form(
        srv,
        "/oauth2/revoke",
        key,
        &[("token", refresh), ("token_type_hint", "refresh_token")],
        None,
    )
    .await;
    assert_eq!(r.status(), 200);
    for token in [access, refresh] {
        let r: Value = post_form(srv, "/oauth2/introspect", key, &[("token", token)], None)
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(r["active"], false, "the family is revoked");
    }
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let r = post_form(srv, "/oauth2/token", key, &form, Some((dpop, Some(nonce)))).await;
    assert_eq!(oauth_error(r).await, "invalid_grant");
    let info = format!("{}/oauth2/userinfo", srv.url);
    let proof = dpop_proof(srv, dpop, "GET", &info, None, Some(access));
    assert_eq!(userinfo(srv, "DPoP", access, Some(proof)).await, 401);
    let trail = srv.audit("limit=1000").await.events;
    assert!(
        trail
            .iter()
            .any(|e| e.kind == potvrda_proto::api::AuditKind::TokenRevoked
                && e.detail["client_id"] == FAPI
                && e.detail["what"] == "refresh_token")
    );
}

async fn fapi2_clients_are_held_to_the_profile(backend: Backend) {
    let (key, dpop, impostor) = (
        client_key("fapi-1"),
        client_key("dpop-1"),
        client_key("fapi-1"),
    );
    let srv = server(backend, &key).await;
    let (_, challenge) = pkce();
    let good = request_object(&srv, &key, &challenge, json!({}));
    let nonce = learn_nonce(&srv, &key, &dpop, &good).await;
    let push = |request: String| {
        let (srv, key, dpop, nonce) = (&srv, &key, &dpop, nonce.clone());
        async move {
            post_form(
                srv,
                "/oauth2/par",
                key,
                &[("request", request.as_str())],
                Some((dpop, Some(&nonce))),
            )
            .await
        }
    };

    let forged = request_object(&srv, &impostor, &challenge, json!({}));
    assert_eq!(
        oauth_error(push(forged).await).await,
        "invalid_request_object",
        "another key"
    );
    let plain = request_object(
        &srv,
        &key,
        "a".repeat(43).as_str(),
        json!({"code_challenge_method": "plain"}),
    );
    assert_eq!(
        oauth_error(push(plain).await).await,
        "invalid_request",
        "PKCE plain"
    );
    let no_pkce = request_object(
        &srv,
        &key,
        &challenge,
        json!({"code_challenge": null, "code_challenge_method": null}),
    );
    assert_eq!(
        oauth_error(push(no_pkce).await).await,
        "invalid_request",
        "no PKCE"
    );
    let elsewhere = request_object(
        &srv,
        &key,
        &challenge,
        json!({"redirect_uri": "https://evil.example/cb"}),
    );
    assert_eq!(
        oauth_error(push(elsewhere).await).await,
        "invalid_request",
        "unregistered redirect"
    );

    // A secret, from a client that has none and may use none.
    let r = srv
        .http
        .post(format!("{}/oauth2/par", srv.url))
        .basic_auth(FAPI, Some("a-guessed-secret-0123456789"))
        .form(&[("request", good.as_str())])
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 401);
    assert_eq!(oauth_error(r).await, "invalid_client");

    // Straight to the authorization endpoint, without PAR.
    let b = browser();
    let direct = format!(
        "{}/oauth2/authorize?client_id={FAPI}&response_type=code&scope=openid&redirect_uri={RP}&code_challenge={challenge}&code_challenge_method=S256",
        srv.url
    );
    let r = b.get(&direct).send().await.expect("sent");
    let back = location(&r);
    assert_eq!(param(&back, "error").as_deref(), Some("invalid_request"));

    // A pushed request lives a minute.
    let uri = pushed(&srv, &key, &dpop, &nonce, &good).await;
    srv.clock.advance(121);
    let late = b
        .get(format!(
            "{}/oauth2/authorize?client_id={FAPI}&request_uri={uri}",
            srv.url
        ))
        .send()
        .await
        .expect("sent");
    assert_eq!(late.status(), 400, "a late request_uri");
    let stale = post_form(
        &srv,
        "/oauth2/par",
        &key,
        &[("request", good.as_str())],
        Some((&dpop, Some(&nonce))),
    )
    .await;
    assert_eq!(
        oauth_error(stale).await,
        "use_dpop_nonce",
        "a nonce lives one to two minutes"
    );
}

/// RFC 9449 §5: a public client's refresh token works only with a proof by
/// the key its code was redeemed with; a confidential client's is bound to
/// its authentication instead.
async fn a_public_clients_refresh_tokens_are_bound_to_its_key(backend: Backend) {
    let (key, dpop, thief) = (
        client_key("fapi-1"),
        client_key("app-dpop"),
        client_key("thief"),
    );
    let srv = server(backend, &key).await;
    let c = citizen(&srv, None).await;
    let (verifier, challenge) = pkce();
    let b = browser();
    let url = format!(
        "{}/oauth2/authorize?client_id={APP}&redirect_uri={APP_RP}&response_type=code&scope=openid&state=s&code_challenge={challenge}&code_challenge_method=S256",
        srv.url
    );
    let code = crate::oidc::code_from(&srv, &b, &url, Some(&c)).await;
    let token_url = format!("{}/oauth2/token", srv.url);
    let token = |form: Vec<(&'static str, String)>, k: &ClientKey, nonce: Option<String>| {
        let proof = dpop_proof(&srv, k, "POST", &token_url, nonce.as_deref(), None);
        srv.http
            .post(&token_url)
            .header("DPoP", proof)
            .form(&form)
            .send()
    };
    let first = token(vec![("grant_type", "x".into())], &dpop, None)
        .await
        .expect("sent");
    let nonce = first.headers()["dpop-nonce"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let redeem = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code),
        ("redirect_uri", APP_RP.to_owned()),
        ("code_verifier", verifier),
        ("client_id", APP.to_owned()),
    ];
    let tokens: Value = token(redeem, &dpop, Some(nonce.clone()))
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(tokens["token_type"], "DPoP", "{tokens}");
    let refresh = |t: &Value| {
        vec![
            ("grant_type", "refresh_token".to_owned()),
            (
                "refresh_token",
                t["refresh_token"].as_str().expect("refresh").to_owned(),
            ),
            ("client_id", APP.to_owned()),
        ]
    };
    let stolen = token(refresh(&tokens), &thief, Some(nonce.clone()))
        .await
        .expect("sent");
    assert_eq!(
        oauth_error(stolen).await,
        "invalid_dpop_proof",
        "another key"
    );
    let without = srv
        .http
        .post(&token_url)
        .form(&refresh(&tokens))
        .send()
        .await
        .expect("sent");
    assert_eq!(oauth_error(without).await, "invalid_dpop_proof", "no proof");
    let renewed: Value = token(refresh(&tokens), &dpop, Some(nonce))
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(renewed["token_type"], "DPoP", "its own key: {renewed}");
    assert_eq!(
        claims_of(renewed["access_token"].as_str().expect("access"))["cnf"]["jkt"],
        thumbprint(&dpop)
    );
}
