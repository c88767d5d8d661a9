//! Pairwise subject identifiers (OpenID Connect Core §8.1), on every store:
//! two services of one sector know the citizen by the same `sub`, a service
//! of another sector by a different one, none by the account id; a public
//! client still gets the account id; and the service desk translates a
//! pairwise `sub` back, audited.

use potvrda_e2e::{Backend, Options, TestServer};
use potvrda_proto::api::AuditKind;
use serde_json::{Value, json};

use crate::oidc::{browser, code_from, redeemed};
use crate::support::*;

crate::on_both_stores!(pairwise_subjects_are_stable_within_a_sector_and_unlinkable_across);

const SECRET: &str = "a-client-secret-0123456789";

fn clients() -> String {
    let client = |id: &str, redirect: &str, extra: Value| {
        let mut c = json!({"client_id": id, "client_secret": SECRET, "name": id,
                           "redirect_uris": [redirect]});
        if let (Some(c), Some(e)) = (c.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        c
    };
    let health = json!({"subject_type": "pairwise",
                        "sector_identifier_uri": "https://zdravlje.gov.rs/sector.json"});
    json!([
        client("dom-zdravlja", "https://dz.example/cb", health.clone()),
        client("apoteka", "https://apoteka.example/cb", health),
        client(
            "porez",
            "https://porez.example/cb",
            json!({"subject_type": "pairwise"})
        ),
        client("javni", "https://javni.example/cb", json!({})),
    ])
    .to_string()
}

/// The `sub` of the ID token and of UserInfo `client` gets for the browser's session.
async fn subject(
    srv: &TestServer,
    b: &reqwest::Client,
    client: &str,
    redirect: &str,
    first: Option<&Citizen>,
) -> String {
    let url = format!(
        "{}/oauth2/authorize?client_id={client}&redirect_uri={redirect}&response_type=code&scope=openid&state=s",
        srv.url
    );
    let code = code_from(srv, b, &url, first).await;
    let tokens = redeemed(srv, (client, SECRET), &code, redirect).await;
    let id = tokens["id_token"].as_str().expect("an ID token");
    let sub = claims(id)["sub"].as_str().expect("sub").to_owned();
    let info: Value = srv
        .http
        .get(format!("{}/oauth2/userinfo", srv.url))
        .bearer_auth(tokens["access_token"].as_str().expect("access"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(info["sub"], sub, "UserInfo names the same subject");
    sub
}

fn claims(jwt: &str) -> Value {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json")
}

async fn pairwise_subjects_are_stable_within_a_sector_and_unlinkable_across(backend: Backend) {
    let srv = TestServer::start_with(Options {
        oidc_clients: Some(clients()),
        ..Options::new(backend)
    })
    .await;
    let c = citizen(&srv, None).await;
    let account = c.account.user_id.to_string();
    let b = browser();
    let dz = subject(&srv, &b, "dom-zdravlja", "https://dz.example/cb", Some(&c)).await;
    let pharmacy = subject(&srv, &b, "apoteka", "https://apoteka.example/cb", None).await;
    let tax = subject(&srv, &b, "porez", "https://porez.example/cb", None).await;
    let public = subject(&srv, &b, "javni", "https://javni.example/cb", None).await;
    let again = subject(&srv, &b, "dom-zdravlja", "https://dz.example/cb", None).await;
    assert_eq!(dz, pharmacy, "one sector, one subject");
    assert_eq!(dz, again, "stable");
    assert_ne!(dz, tax, "another sector, another subject");
    assert!(dz != account && tax != account, "never the account id");
    assert_eq!(public, account, "a public client gets the account id");

    // The service desk translates, and it is audited.
    let resolve = |client: &str, sub: &str| {
        srv.http
            .get(format!(
                "{}/v1/admin/clients/{client}/subjects/{sub}",
                srv.url
            ))
            .bearer_auth(&srv.token)
            .send()
    };
    let r = resolve("apoteka", &dz).await.expect("sent");
    assert_eq!(r.status(), 200);
    let found: Value = r.json().await.expect("json");
    assert_eq!(found["user_id"], account.as_str());
    let r = resolve("apoteka", &tax).await.expect("sent");
    assert_eq!(
        r.status(),
        404,
        "another sector's subject means nothing here"
    );
    let trail = srv.audit("limit=1000").await.events;
    assert!(trail.iter().any(|e| e.kind == AuditKind::SubjectResolved
        && e.detail["client_id"] == "apoteka"
        && e.user_id.as_deref() == Some(account.as_str())));
}
