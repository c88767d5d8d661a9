//! Scopes and the `claims` parameter (OpenID Connect Core §5.4, §5.5), on
//! every store: `openid` alone releases nothing about the citizen; a claim
//! asked for by name is released where it was asked (the ID token or
//! UserInfo) and nowhere else.

use potvrda_e2e::{Backend, Options, TestServer};
use serde_json::{Value, json};

use crate::oidc::{browser, code_from, redeemed};
use crate::support::*;

crate::on_both_stores!(claims_asked_by_name_are_released_where_asked);

/// `claims_locales` (OIDC Core §5.2): a name registered in Cyrillic is
/// released in Latin script to a service that asks for `sr-Latn` (or a
/// language Potvrda serves in Latin), by the pages' exact
/// transliteration; as registered otherwise; discovery says so.
#[tokio::test]
async fn claims_locales_gives_the_name_in_the_script_asked_for() {
    let clients =
        json!([{"client_id": "rp", "client_secret": SECRET, "name": "RP", "redirect_uris": [RP]}]);
    let srv = TestServer::start_with(Options {
        oidc_clients: Some(clients.to_string()),
        ..Options::new(Backend::Embedded)
    })
    .await;
    let account = srv
        .create_citizen_named(&potvrda_e2e::unique("j"), "Љиљана Њежић-Џамић")
        .await;
    let phone = potvrda_mobile_core::phone::VirtualPhone::enroll(
        &srv.url,
        account.activation_code.expose(),
        "phone",
        None,
    )
    .await
    .expect("enrolls");
    let c = Citizen { account, phone };
    let b = browser();
    let by_name = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("claims", &json!({"id_token": {"name": null}}).to_string())
        .finish();
    let mut first = Some(&c);
    for (locales, name) in [
        ("sr-Latn", "Ljiljana Nježić-Džamić"),
        ("de%20sr-Cyrl", "Љиљана Њежић-Џамић"),
        ("hr", "Ljiljana Nježić-Džamić"),
        ("en", "Љиљана Њежић-Џамић"),
    ] {
        let extra = format!("&scope=openid%20profile&{by_name}&claims_locales={locales}");
        let (id, info) = signed_in(&srv, &b, &extra, first.take()).await;
        assert_eq!(
            (&id["name"], &info["name"]),
            (&json!(name), &json!(name)),
            "{locales}"
        );
    }
    let discovery: Value = srv
        .http
        .get(format!("{}/.well-known/openid-configuration", srv.url))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(
        discovery["claims_locales_supported"],
        json!(["sr-Cyrl", "sr-Latn"])
    );
}

const SECRET: &str = "a-client-secret-0123456789";
const RP: &str = "https://rp.example/cb";

/// Tokens and UserInfo for an authorization request with `extra` parameters.
async fn signed_in(
    srv: &TestServer,
    b: &reqwest::Client,
    extra: &str,
    c: Option<&Citizen>,
) -> (Value, Value) {
    let url = format!(
        "{}/oauth2/authorize?client_id=rp&redirect_uri={RP}&response_type=code&state=s{extra}",
        srv.url
    );
    let code = code_from(srv, b, &url, c).await;
    let tokens = redeemed(srv, ("rp", SECRET), &code, RP).await;
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
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let id = tokens["id_token"].as_str().expect("id token");
    let payload = URL_SAFE_NO_PAD
        .decode(id.split('.').nth(1).expect("jwt"))
        .expect("b64");
    (serde_json::from_slice(&payload).expect("json"), info)
}

async fn claims_asked_by_name_are_released_where_asked(backend: Backend) {
    let clients =
        json!([{"client_id": "rp", "client_secret": SECRET, "name": "RP", "redirect_uris": [RP]}]);
    let srv = TestServer::start_with(Options {
        oidc_clients: Some(clients.to_string()),
        ..Options::new(backend)
    })
    .await;
    let c = citizen(&srv, None).await;
    let b = browser();
    let (id, info) = signed_in(&srv, &b, "&scope=openid", Some(&c)).await;
    for released in [&id, &info] {
        assert!(
            released.get("name").is_none() && released.get("preferred_username").is_none(),
            "{released}"
        );
    }
    let asked = json!({"id_token": {"name": null}, "userinfo": {"preferred_username": {"essential": true}, "unknown_claim": null}});
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("claims", &asked.to_string())
        .finish();
    let (id, info) = signed_in(&srv, &b, &format!("&scope=openid&{query}"), None).await;
    assert!(id["name"].as_str().is_some_and(|n| !n.is_empty()), "{id}");
    assert!(id.get("preferred_username").is_none(), "{id}");
    assert_eq!(info["preferred_username"], c.account.username.as_str());
    assert!(
        info.get("name").is_none() && info.get("unknown_claim").is_none(),
        "{info}"
    );
    let (_, with_scope) = signed_in(&srv, &b, "&scope=openid%20profile", None).await;
    assert!(with_scope["name"].is_string() && with_scope["preferred_username"].is_string());
}
