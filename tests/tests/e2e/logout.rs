//! Logging a citizen out of every service at once (OpenID Connect
//! Back-Channel and Front-Channel Logout 1.0), on every store: an
//! RP-initiated logout loads a front-channel client's logout page in a
//! frame (with `iss` and `sid`) and sends a
//! signed `logout+jwt` with `sid` and `sub` to every client of the session
//! that registered a `backchannel_logout_uri`; a client that refuses once
//! gets it on the retry; an unreachable one never holds up the logout and
//! is audited as undelivered; a lock at the counter reaches the clients of
//! every session the same way. The metrics count it all exactly.

use potvrda_e2e::{Backend, Options, TestServer};
use potvrda_proto::api::AuditKind;
use serde_json::{Value, json};

use crate::oidc::{browser, code_from, param, redeemed};
use crate::support::*;

crate::on_both_stores!(back_channel_logout_reaches_every_client_of_the_session);

const SECRET: &str = "a-client-secret-0123456789";
const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

fn clients(a: &str, b: &str) -> String {
    let client = |id: &str, logout: Option<&str>| {
        json!({"client_id": id, "client_secret": SECRET, "name": id,
               "redirect_uris": [format!("https://{id}.example/cb")],
               "post_logout_redirect_uris": [format!("https://{id}.example/bye")],
               "id_token_signed_response_alg": "ES256",
               "backchannel_logout_uri": logout})
    };
    let mut none = client("rp-none", None);
    if let Some(o) = none.as_object_mut() {
        o.remove("backchannel_logout_uri");
    }
    let mut front = client("rp-front", None);
    if let Some(o) = front.as_object_mut() {
        o.remove("backchannel_logout_uri");
        o.insert(
            "frontchannel_logout_uri".into(),
            json!("https://rp-front.example/fc?tenant=1"),
        );
    }
    json!([
        front,
        client("rp-a", Some(a)),
        client("rp-b", Some(b)),
        client("rp-down", Some("http://127.0.0.1:1/logout")),
        none,
    ])
    .to_string()
}

/// Sign in to `client` in `b` (logging in when `first` is given); its tokens.
async fn sign_in(
    srv: &TestServer,
    b: &reqwest::Client,
    client: &str,
    first: Option<&Citizen>,
) -> Value {
    let redirect = format!("https://{client}.example/cb");
    let url = format!(
        "{}/oauth2/authorize?client_id={client}&redirect_uri={redirect}&response_type=code&scope=openid&state=s",
        srv.url
    );
    let code = code_from(srv, b, &url, first).await;
    redeemed(srv, (client, SECRET), &code, &redirect).await
}

fn claims(jwt: &str) -> Value {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json")
}

/// The logout token a sink received, verified against the provider's keys.
async fn verified(srv: &TestServer, received: &Received, aud: &str) -> Value {
    let token = url::form_urlencoded::parse(received.raw.as_bytes())
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned())
        .expect("a logout_token form field");
    let header = jsonwebtoken::decode_header(&token).expect("a JWT");
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    let jwks: jsonwebtoken::jwk::JwkSet = srv
        .http
        .get(format!("{}/.well-known/jwks.json", srv.url))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let key = jwks
        .find(header.kid.as_deref().expect("kid"))
        .expect("a published key");
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_audience(&[aud]);
    v.set_issuer(&[srv.url.as_str()]);
    v.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_jwk(key).expect("key"),
        &v,
    )
    .expect("the logout token verifies")
    .claims;
    assert!(claims["events"][EVENT].is_object(), "{claims}");
    assert!(claims.get("nonce").is_none(), "§2.4: no nonce");
    let lifetime = claims["exp"].as_i64().unwrap_or(0) - claims["iat"].as_i64().unwrap_or(0);
    assert!((1..=120).contains(&lifetime), "short-lived: {lifetime} s");
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    claims
}

async fn metric(srv: &TestServer, outcome: &str) -> u64 {
    let text = srv
        .http
        .get(format!("{}/metrics", srv.url))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let name = format!("potvrda_logout_delivery_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&name))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} is exported"))
}

async fn back_channel_logout_reaches_every_client_of_the_session(backend: Backend) {
    let (mut a, mut b) = (
        NotificationSink::start().await,
        NotificationSink::start_failing(1).await,
    );
    let srv = TestServer::start_with(Options {
        oidc_clients: Some(clients(&a.url, &b.url)),
        ..Options::new(backend)
    })
    .await;
    let c = citizen(&srv, None).await;
    let account = c.account.user_id.to_string();
    let browser_1 = browser();
    let tokens = sign_in(&srv, &browser_1, "rp-a", Some(&c)).await;
    for client in ["rp-b", "rp-down", "rp-none", "rp-front"] {
        sign_in(&srv, &browser_1, client, None).await;
    }
    let id_token = tokens["id_token"].as_str().expect("id token");
    let sid = claims(id_token)["sid"].as_str().expect("sid").to_owned();

    let r = browser_1
        .get(format!(
            "{}/oauth2/logout?id_token_hint={id_token}&post_logout_redirect_uri=https://rp-a.example/bye",
            srv.url
        ))
        .send()
        .await
        .expect("logout");
    // Done at once: the logged-out page loads the front-channel client's
    // page (only its origin may be framed), then goes on.
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        csp.ends_with("; frame-src https://rp-front.example"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let page = r.text().await.expect("html");
    let src = r#"class="frontchannel" src=""#;
    let frame = url::Url::parse(
        &page[page.find(src).expect("an iframe") + src.len()..]
            .split('"')
            .next()
            .expect("src")
            .replace("&#38;", "&")
            .replace("&amp;", "&"),
    )
    .expect("a URL");
    assert_eq!(frame.host_str(), Some("rp-front.example"));
    assert_eq!(
        param(&frame, "tenant").as_deref(),
        Some("1"),
        "the registered query kept"
    );
    assert_eq!(param(&frame, "iss").as_deref(), Some(srv.url.as_str()));
    assert_eq!(param(&frame, "sid").as_deref(), Some(sid.as_str()));
    assert!(
        page.contains(r#"id="continue" href="https://rp-a.example/bye""#),
        "{page}"
    );
    let undelivered = |events: &[potvrda_proto::api::AuditEvent]| {
        events
            .iter()
            .any(|e| e.kind == AuditKind::LogoutUndelivered && e.detail["client_id"] == "rp-down")
    };
    assert!(
        !undelivered(&srv.audit("limit=1000").await.events),
        "nobody waited for the unreachable client"
    );

    for (sink, aud) in [(&mut a, "rp-a"), (&mut b, "rp-b")] {
        let got = verified(&srv, &sink.next().await, aud).await;
        assert_eq!(got["sid"], sid.as_str(), "{aud}");
        assert_eq!(got["sub"], account.as_str(), "{aud}");
    }
    let trail = srv.audit_until(&account, |e| undelivered(e)).await;
    assert!(undelivered(&trail));

    // A lock at the counter ends a second session the same way.
    let browser_2 = browser();
    let second = sign_in(&srv, &browser_2, "rp-a", Some(&c)).await;
    let sid_2 = claims(second["id_token"].as_str().expect("id token"))["sid"].clone();
    assert_ne!(sid_2, sid.as_str());
    let (_, superadmin) = staff(&srv, &srv.token, "superadmin", None).await;
    let r = post(
        &srv,
        &format!("/v1/admin/citizens/{account}/lock"),
        Some(&superadmin),
        json!({}),
    )
    .await;
    assert_eq!(r.status(), 204);
    let got = verified(&srv, &a.next().await, "rp-a").await;
    assert_eq!(got["sid"], sid_2);

    // The sink hands a request over as it answers; the count follows the answer.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while metric(&srv, "delivered").await < 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(metric(&srv, "delivered").await, 3, "rp-a twice, rp-b once");
    assert_eq!(
        metric(&srv, "failed").await,
        1,
        "rp-down, after every retry"
    );
    assert_eq!(
        metric(&srv, "retried").await,
        4,
        "rp-b once, rp-down three times"
    );
}
