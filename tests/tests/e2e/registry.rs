//! The client registry, on every store: a superadmin registers, changes,
//! rotates and retires clients through the admin API; secrets are shown
//! once and a rotated one keeps working for its overlap only; the
//! configuration's clients are read-only; nobody else may touch it; bad
//! metadata changes nothing; and a change made through one instance is
//! used by another without a restart.

use potvrda_e2e::{Backend, Options, PORTAL_CLIENT, TestServer};
use potvrda_proto::api::AuditKind;
use serde_json::{Value, json};

use crate::support::*;

crate::on_both_stores!(
    a_superadmin_registers_rotates_and_retires_a_client,
    nobody_else_touches_the_registry_and_bad_metadata_changes_nothing,
);

/// A portal-API client's metadata.
fn portal_client(id: &str, name: &str) -> Value {
    json!({"client_id": id, "name": name, "grant_types": [], "portal_api": true,
           "token_endpoint_auth_method": "client_secret_basic"})
}

async fn admin(
    srv: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut r = srv
        .http
        .request(method, format!("{}/v1/admin/clients{path}", srv.url))
        .bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().await.expect("sent")
}

/// What the portal API says to this client id and secret: `invalid_client`
/// when they do not authenticate, `invalid_credentials` (a wrong password)
/// when they do.
async fn portal_says(srv: &TestServer, id: &str, secret: &str) -> String {
    let r = srv
        .http
        .post(format!("{}/v1/logins", srv.url))
        .basic_auth(id, Some(secret))
        .json(&json!({"username": "nobody-here", "password": "not-the-password"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 401);
    let e: Value = r.json().await.expect("json");
    e["error"].as_str().expect("code").to_owned()
}

async fn a_superadmin_registers_rotates_and_retires_a_client(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let (_, superadmin) = staff(&srv, &srv.token, "superadmin", None).await;
    let r = admin(
        &srv,
        reqwest::Method::POST,
        "",
        &superadmin,
        Some(portal_client("katastar", "Katastar nepokretnosti")),
    )
    .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let made: Value = r.json().await.expect("json");
    let first = made["client_secret"]
        .as_str()
        .expect("a secret, once")
        .to_owned();
    assert!(first.len() >= 43, "256 random bits");
    assert_eq!(made["client_secret_expires_at"], 0);
    assert_eq!(made["source"], "registry");
    assert_eq!(
        portal_says(&srv, "katastar", &first).await,
        "invalid_credentials"
    );
    assert_eq!(
        portal_says(&srv, "katastar", "a-guess-0123456789abcdef").await,
        "invalid_client"
    );

    // Read back: the metadata, never the secret.
    let read = admin(&srv, reqwest::Method::GET, "/katastar", &superadmin, None).await;
    let read_text = read.text().await.expect("text");
    assert!(!read_text.contains(&first) && !read_text.contains("client_secret\""));
    let listed = admin(&srv, reqwest::Method::GET, "", &superadmin, None).await;
    let listed: Vec<Value> = listed.json().await.expect("json");
    assert!(
        listed
            .iter()
            .any(|c| c["client_id"] == PORTAL_CLIENT && c["source"] == "configuration")
    );
    assert!(
        listed
            .iter()
            .any(|c| c["client_id"] == "katastar" && c["source"] == "registry")
    );

    // Changed: the new metadata is what the next request uses.
    let mut changed = portal_client("katastar", "Republički geodetski zavod");
    changed["reports_user_context"] = json!(true);
    let r = admin(
        &srv,
        reqwest::Method::PUT,
        "/katastar",
        &superadmin,
        Some(changed),
    )
    .await;
    assert_eq!(r.status(), 200);
    let updated: Value = r.json().await.expect("json");
    assert!(
        updated.get("client_secret").is_none(),
        "an update keeps the secret"
    );
    assert_eq!(
        portal_says(&srv, "katastar", &first).await,
        "invalid_credentials"
    );

    // Rotated: both work during the overlap, only the new one after it.
    let r = admin(
        &srv,
        reqwest::Method::POST,
        "/katastar/secret",
        &superadmin,
        None,
    )
    .await;
    assert_eq!(r.status(), 200);
    let rotated: Value = r.json().await.expect("json");
    let second = rotated["client_secret"]
        .as_str()
        .expect("new secret")
        .to_owned();
    assert_ne!(first, second);
    assert_eq!(
        portal_says(&srv, "katastar", &first).await,
        "invalid_credentials"
    );
    assert_eq!(
        portal_says(&srv, "katastar", &second).await,
        "invalid_credentials"
    );
    srv.clock.advance(24 * 3600 + 1);
    // (The superadmin's access token has expired too: the bootstrap goes on.)
    let superadmin = srv.token.clone();
    assert_eq!(
        portal_says(&srv, "katastar", &first).await,
        "invalid_client"
    );
    assert_eq!(
        portal_says(&srv, "katastar", &second).await,
        "invalid_credentials"
    );

    // Retired: it authenticates no more, and its id is not given out again.
    let r = admin(
        &srv,
        reqwest::Method::DELETE,
        "/katastar",
        &superadmin,
        None,
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        portal_says(&srv, "katastar", &second).await,
        "invalid_client"
    );
    let again = admin(
        &srv,
        reqwest::Method::POST,
        "",
        &superadmin,
        Some(portal_client("katastar", "Katastar")),
    )
    .await;
    assert_eq!(again.status(), 409);
    let e: Value = again.json().await.expect("json");
    assert_eq!(e["error"], "client_exists");

    let trail = srv.audit("limit=1000").await.events;
    let kinds: Vec<AuditKind> = trail
        .iter()
        .filter(|e| e.detail.get("client_id").is_some_and(|c| c == "katastar"))
        .map(|e| e.kind)
        .collect();
    for kind in [
        AuditKind::ClientRegistered,
        AuditKind::ClientUpdated,
        AuditKind::ClientSecretRotated,
        AuditKind::ClientRetired,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} audited: {kinds:?}");
    }
    let update = trail
        .iter()
        .find(|e| e.kind == AuditKind::ClientUpdated)
        .expect("update");
    assert_eq!(update.detail["changed"], "name reports_user_context");
    let all = serde_json::to_string(&trail).expect("json");
    assert!(
        !all.contains(&first) && !all.contains(&second),
        "no secret in the trail"
    );
}

async fn nobody_else_touches_the_registry_and_bad_metadata_changes_nothing(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let (_, superadmin) = staff(&srv, &srv.token, "superadmin", None).await;
    let r = post(
        &srv,
        "/v1/admin/municipalities",
        Some(&superadmin),
        json!({"code": "subotica", "name": "Subotica"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let (_, admin_token) = staff(&srv, &superadmin, "admin", Some("subotica")).await;
    let body = portal_client("vrtic", "Vrtić");
    for token in [admin_token.as_str(), "not-a-token"] {
        let r = admin(&srv, reqwest::Method::POST, "", token, Some(body.clone())).await;
        assert!(matches!(r.status().as_u16(), 401 | 403), "{}", r.status());
        let r = admin(&srv, reqwest::Method::GET, "", token, None).await;
        assert!(matches!(r.status().as_u16(), 401 | 403), "{}", r.status());
    }
    // The configuration's clients are changed only there.
    for (method, path, body) in [
        (
            reqwest::Method::PUT,
            format!("/{PORTAL_CLIENT}"),
            Some(portal_client(PORTAL_CLIENT, "x")),
        ),
        (reqwest::Method::DELETE, format!("/{PORTAL_CLIENT}"), None),
        (
            reqwest::Method::POST,
            format!("/{PORTAL_CLIENT}/secret"),
            None,
        ),
    ] {
        let r = admin(&srv, method, &path, &superadmin, body).await;
        assert_eq!(r.status(), 409);
        let e: Value = r.json().await.expect("json");
        assert_eq!(e["error"], "client_read_only");
    }
    let r = admin(
        &srv,
        reqwest::Method::POST,
        "",
        &superadmin,
        Some(portal_client(PORTAL_CLIENT, "x")),
    )
    .await;
    assert_eq!(r.status(), 409, "a seed's id is taken");

    let mut with_secret = body.clone();
    with_secret["client_secret"] = json!("chosen-by-the-admin-0123456789");
    let mut unknown = body.clone();
    unknown["logo_colour"] = json!("red");
    let mut fapi_secret = body.clone();
    fapi_secret["fapi2"] = json!(true);
    let mut no_redirect = body.clone();
    no_redirect["grant_types"] = json!(["authorization_code"]);
    let mut pairwise_nowhere = body.clone();
    pairwise_nowhere["subject_type"] = json!("pairwise");
    for (what, bad) in [
        ("a chosen secret", with_secret),
        ("an unknown field", unknown),
        ("fapi2 with a secret", fapi_secret),
        ("a code client without redirect_uris", no_redirect),
        ("pairwise without a sector", pairwise_nowhere),
    ] {
        let r = admin(&srv, reqwest::Method::POST, "", &superadmin, Some(bad)).await;
        assert_eq!(r.status(), 400, "{what}");
        let e: Value = r.json().await.expect("a JSON error");
        assert_eq!(e["error"], "invalid_request", "{what}");
    }
    let r = admin(&srv, reqwest::Method::GET, "/vrtic", &superadmin, None).await;
    assert_eq!(r.status(), 404, "nothing was registered");
    let r = admin(
        &srv,
        reqwest::Method::PUT,
        "/nobody",
        &superadmin,
        Some(portal_client("nobody", "x")),
    )
    .await;
    assert_eq!(r.status(), 404);
}

/// Registered through one instance, used through another, retired through
/// the first: the second refuses it at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_registered_on_one_instance_is_used_by_another() {
    let a = TestServer::start(Backend::Redis).await;
    let b = TestServer::start_with(Options {
        redis_prefix: a.redis_prefix.clone(),
        ..Options::new(Backend::Redis)
    })
    .await;
    let r = admin(
        &a,
        reqwest::Method::POST,
        "",
        &a.token,
        Some(portal_client("porez", "Poreska uprava")),
    )
    .await;
    assert_eq!(r.status(), 201);
    let made: Value = r.json().await.expect("json");
    let secret = made["client_secret"].as_str().expect("secret");
    assert_eq!(
        portal_says(&b, "porez", secret).await,
        "invalid_credentials"
    );
    let r = admin(&a, reqwest::Method::DELETE, "/porez", &a.token, None).await;
    assert_eq!(r.status(), 204);
    assert_eq!(portal_says(&b, "porez", secret).await, "invalid_client");
}

/// A client's published key set: serves what `keys` holds now at its URL.
async fn key_server(keys: std::sync::Arc<std::sync::Mutex<Value>>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/jwks.json", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let body = keys.lock().map(|k| k.to_string()).unwrap_or_default();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = sock.write_all(format!("{head}{body}").as_bytes()).await;
        }
    });
    url
}

/// What the portal API says to an assertion signed by `key` for `client`.
async fn portal_says_to(srv: &TestServer, key: &ClientKey, client: &str) -> String {
    let r = srv
        .http
        .post(format!("{}/v1/logins", srv.url))
        .header("Client-Assertion", assertion(srv, key, client, json!({})))
        .json(&json!({"username": "nobody-here", "password": "not-the-password"}))
        .send()
        .await
        .expect("sent");
    let e: Value = r.json().await.expect("json");
    e["error"].as_str().expect("code").to_owned()
}

/// A client that publishes its keys at a `jwks_uri` rolls them over by
/// publishing: a new key id is fetched for, a withdrawn key stops working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_publishing_its_keys_rolls_them_over() {
    let srv = TestServer::start(Backend::Embedded).await;
    let (k1, k2) = (client_key("k1"), client_key("k2"));
    let published = std::sync::Arc::new(std::sync::Mutex::new(json!({"keys": [k1.jwk]})));
    let url = key_server(published.clone()).await;
    let r = admin(
        &srv,
        reqwest::Method::POST,
        "",
        &srv.token,
        Some(
            json!({"client_id": "objavljeni", "name": "Objavljeni ključevi", "grant_types": [],
                    "portal_api": true, "token_endpoint_auth_method": "private_key_jwt",
                    "jwks_uri": url}),
        ),
    )
    .await;
    assert_eq!(r.status(), 201);
    assert_eq!(
        portal_says_to(&srv, &k1, "objavljeni").await,
        "invalid_credentials"
    );
    assert_eq!(
        portal_says_to(&srv, &k2, "objavljeni").await,
        "invalid_client",
        "not published yet"
    );
    // The rollover: k2 published, k1 withdrawn. A key id the cached set
    // lacks is fetched for at most every ten seconds.
    if let Ok(mut p) = published.lock() {
        *p = json!({"keys": [k2.jwk]});
    }
    assert_eq!(
        portal_says_to(&srv, &k2, "objavljeni").await,
        "invalid_client",
        "within ten seconds of the last fetch"
    );
    srv.clock.advance(11);
    assert_eq!(
        portal_says_to(&srv, &k2, "objavljeni").await,
        "invalid_credentials",
        "fetched for"
    );
    assert_eq!(
        portal_says_to(&srv, &k1, "objavljeni").await,
        "invalid_client",
        "withdrawn"
    );
}
