//! The relying party as an authenticated actor (protocol 3), attacked on
//! every store: the portal API refuses anonymous and wrongly authenticated
//! callers, the phone shows the client's registered name and never a name
//! from the request, a client not allowed to report the citizen's address
//! has it dropped, and `private_key_jwt` assertions are checked as RFC 7523
//! says (signature, `aud`, `exp`, single-use `jti`).

use potvrda_e2e::{Backend, Options, PORTAL_CLIENT, PORTAL_NAME, PORTAL_SECRET, TestServer};
use potvrda_proto::ErrorBody;
use potvrda_proto::api::{AuditKind, LoginResponse};
use serde_json::json;

use crate::support::*;

crate::on_both_stores!(
    anonymous_and_wrong_clients_are_refused_and_change_nothing,
    the_phone_shows_the_registered_name_never_the_callers,
    context_from_a_client_not_allowed_to_report_it_is_dropped,
    private_key_jwt_assertions_are_checked,
    a_login_is_seen_only_by_the_client_that_started_it,
);

/// A client registered for the portal API that may not report context, a
/// `private_key_jwt` portal client, and a code-flow client (not the portal).
fn clients(key: &ClientKey) -> String {
    json!([
        {"client_id": "plain", "client_secret": "plain-client-secret-0123456789",
         "name": "Vrtić: upis", "grant_types": [], "portal_api": true},
        {"client_id": "signed", "token_endpoint_auth_method": "private_key_jwt",
         "jwks": {"keys": [key.jwk]}, "name": "Katastar", "grant_types": [], "portal_api": true},
        {"client_id": "web", "client_secret": "web-client-secret-0123456789",
         "name": "Web", "redirect_uris": ["https://web.example/cb"]},
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

fn body(c: &Citizen) -> serde_json::Value {
    json!({
        "username": c.account.username,
        "password": c.account.initial_password,
        "context": {"service": "Banka Intesa: potvrdite plaćanje", "ip": "203.0.113.66", "user_agent": "Forged"},
    })
}

async fn refused(r: reqwest::Response, what: &str) {
    assert_eq!(r.status(), 401, "{what}");
    assert!(
        r.headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("Basic")),
        "{what}: a Basic challenge"
    );
    let e: ErrorBody = r.json().await.expect("a JSON error");
    assert_eq!(e.error.as_str(), "invalid_client", "{what}");
}

async fn anonymous_and_wrong_clients_are_refused_and_change_nothing(backend: Backend) {
    let key = client_key("k1");
    let srv = server(backend, &key).await;
    let c = citizen(&srv, None).await;
    let post = || {
        srv.http
            .post(format!("{}/v1/logins", srv.url))
            .json(&body(&c))
    };
    refused(post().send().await.expect("sent"), "anonymous").await;
    refused(
        post()
            .bearer_auth("a-login-secret-as-in-protocol-2")
            .send()
            .await
            .expect("sent"),
        "protocol 2 bearer",
    )
    .await;
    refused(
        post()
            .basic_auth(PORTAL_CLIENT, Some("not-the-secret-of-the-portal"))
            .send()
            .await
            .expect("sent"),
        "wrong secret",
    )
    .await;
    refused(
        post()
            .basic_auth("nobody", Some("whatever-secret-it-has"))
            .send()
            .await
            .expect("sent"),
        "unknown client",
    )
    .await;
    refused(
        post()
            .basic_auth("web", Some("web-client-secret-0123456789"))
            .send()
            .await
            .expect("sent"),
        "a client not registered for the portal API",
    )
    .await;
    refused(
        post()
            .basic_auth("signed", Some(""))
            .send()
            .await
            .expect("sent"),
        "a private_key_jwt client with a secret",
    )
    .await;
    // Nothing reached the phone, and no password was checked.
    assert!(c.phone.pending().await.expect("pull").is_empty());
    let audit = srv.audit(&format!("user_id={}", c.account.user_id)).await;
    assert!(
        audit
            .events
            .iter()
            .all(|e| !matches!(e.kind, AuditKind::LoginFailed | AuditKind::LoginStarted)),
        "{:?}",
        audit.events
    );
    // The right client is served, and its login's status and code
    // endpoints refuse anonymous callers too.
    let login: LoginResponse = srv
        .portal(post())
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let status = srv
        .http
        .get(format!("{}/v1/logins/{}", srv.url, login.login_id))
        .header("Login-Secret", login.login_secret.expose())
        .send()
        .await
        .expect("sent");
    refused(status, "an anonymous status").await;
    let code = srv
        .http
        .post(format!("{}/v1/logins/{}/code", srv.url, login.login_id))
        .header("Login-Secret", login.login_secret.expose())
        .json(&json!({"code": "123456"}))
        .send()
        .await
        .expect("sent");
    refused(code, "an anonymous code").await;
    // The login secret is still needed beside the client.
    let r = srv
        .status_raw(&login.login_id, "not-the-login-secret", 0)
        .await;
    assert_eq!(r.status(), 401);
}

async fn the_phone_shows_the_registered_name_never_the_callers(backend: Backend) {
    let key = client_key("k1");
    let srv = server(backend, &key).await;
    let c = citizen(&srv, None).await;
    let login: LoginResponse = srv
        .portal(srv.http.post(format!("{}/v1/logins", srv.url)))
        .json(&body(&c))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let shown = pulled(&c.phone).await;
    assert_eq!(shown.claims.ctx.service.as_deref(), Some(PORTAL_NAME));
    // The portal client may report the citizen's address and browser.
    assert_eq!(shown.claims.ctx.ip.as_deref(), Some("203.0.113.66"));
    // The trail names the client that asked, and the name the phone showed.
    let audit = srv.audit(&format!("user_id={}", c.account.user_id)).await;
    let started = audit
        .events
        .iter()
        .find(|e| e.kind == AuditKind::LoginStarted)
        .expect("login_started");
    assert_eq!(started.detail["client_id"], PORTAL_CLIENT);
    assert_eq!(started.detail["service"], PORTAL_NAME);
    approve_as_shown(&c.phone, &shown, login.number, login.code.as_deref())
        .await
        .expect("approved");
}

async fn context_from_a_client_not_allowed_to_report_it_is_dropped(backend: Backend) {
    let key = client_key("k1");
    let srv = server(backend, &key).await;
    let c = citizen(&srv, None).await;
    let r = srv
        .http
        .post(format!("{}/v1/logins", srv.url))
        .basic_auth("plain", Some("plain-client-secret-0123456789"))
        .json(&body(&c))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 201);
    let shown = pulled(&c.phone).await;
    let ctx = &shown.claims.ctx;
    assert_eq!(ctx.service.as_deref(), Some("Vrtić: upis"));
    assert_eq!(
        (ctx.ip.as_deref(), ctx.user_agent.as_deref()),
        (None, None),
        "{ctx:?}"
    );
}

async fn private_key_jwt_assertions_are_checked(backend: Backend) {
    let key = client_key("k1");
    let srv = server(backend, &key).await;
    let c = citizen(&srv, None).await;
    let start = |jwt: String| {
        srv.http
            .post(format!("{}/v1/logins", srv.url))
            .header("Client-Assertion", jwt)
            .json(&body(&c))
            .send()
    };
    let good = assertion(&srv, &key, "signed", json!({}));
    let r = start(good.clone()).await.expect("sent");
    assert_eq!(r.status(), 201, "a good assertion");
    let login: LoginResponse = r.json().await.expect("json");
    refused(start(good).await.expect("sent"), "a reused jti").await;
    let other = client_key("k1");
    let now = {
        use potvrda_server::clock::Clock;
        srv.clock.now()
    };
    for (what, jwt) in [
        ("another key", assertion(&srv, &other, "signed", json!({}))),
        (
            "aud of another server",
            assertion(&srv, &key, "signed", json!({"aud": "https://evil.example"})),
        ),
        (
            "expired",
            assertion(&srv, &key, "signed", json!({"exp": now - 1})),
        ),
        (
            "an hour long",
            assertion(&srv, &key, "signed", json!({"exp": now + 3600})),
        ),
        (
            "issued in the future",
            assertion(&srv, &key, "signed", json!({"iat": now + 600})),
        ),
        (
            "sub of another client",
            assertion(&srv, &key, "signed", json!({"sub": PORTAL_CLIENT})),
        ),
        (
            "without a jti",
            assertion(&srv, &key, "signed", json!({"jti": ""})),
        ),
        (
            "iss of a secret client",
            assertion(&srv, &key, PORTAL_CLIENT, json!({})),
        ),
        ("not a JWT", "a.b.c".to_owned()),
    ] {
        refused(start(jwt).await.expect("sent"), what).await;
    }
    // An HS256 token "signed" with the public key (algorithm confusion).
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"iss": "signed", "sub": "signed", "aud": srv.url, "exp": now + 60, "jti": "x"}),
        &jsonwebtoken::EncodingKey::from_secret(key.jwk.to_string().as_bytes()),
    )
    .expect("encodes");
    refused(start(forged).await.expect("sent"), "HS256").await;
    // Both Basic and an assertion: one method only.
    let both = srv
        .http
        .post(format!("{}/v1/logins", srv.url))
        .basic_auth(PORTAL_CLIENT, Some(PORTAL_SECRET))
        .header(
            "Client-Assertion",
            assertion(&srv, &key, "signed", json!({})),
        )
        .json(&body(&c))
        .send()
        .await
        .expect("sent");
    refused(both, "two methods").await;
    // The status, with a fresh assertion whose aud names the endpoint.
    let challenge = pulled(&c.phone).await;
    c.phone
        .answer(
            &challenge,
            potvrda_proto::jose::Decision::Approve,
            Some(login.number),
        )
        .await
        .expect("approved");
    let endpoint = format!("{}/v1/logins", srv.url);
    let r = srv
        .http
        .get(format!("{}/v1/logins/{}", srv.url, login.login_id))
        .header(
            "Client-Assertion",
            assertion(&srv, &key, "signed", json!({"aud": endpoint})),
        )
        .header("Login-Secret", login.login_secret.expose())
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    let status: potvrda_proto::api::LoginStatusResponse = r.json().await.expect("json");
    assert!(status.access_token.is_some());
}

async fn a_login_is_seen_only_by_the_client_that_started_it(backend: Backend) {
    let key = client_key("k1");
    let srv = server(backend, &key).await;
    let c = citizen(&srv, None).await;
    let login = login(&srv, &c).await;
    for path in ["", "/code"] {
        let url = format!("{}/v1/logins/{}{path}", srv.url, login.login_id);
        let request = if path.is_empty() {
            srv.http.get(url)
        } else {
            srv.http.post(url).json(&json!({"code": "123456"}))
        };
        let r = request
            .basic_auth("plain", Some("plain-client-secret-0123456789"))
            .header("Login-Secret", login.login_secret.expose())
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), 404, "another client, {path:?}");
    }
    // Its own client still gets the status.
    let status = srv
        .status(&login.login_id, login.login_secret.expose(), 0)
        .await;
    assert_eq!(status.status, potvrda_proto::api::LoginStatus::Pending);
}
