//! The pages' language (issue 16): Serbian in Cyrillic by default, the
//! browser's `Accept-Language`, the relying party's `ui_locales` (kept
//! for the whole login), and the citizen's own choice in the language
//! switch (a cookie), which beats both; bad input to the switch is a JSON
//! 400 and sets nothing; every page is in one language only.

use potvrda_e2e::{Backend, Options, TestServer};

use crate::oidc::{browser, open_login, post_password};
use crate::support::citizen;

const RP: &str = "https://vrtic.example/cb";

async fn server() -> TestServer {
    let clients = serde_json::json!([
        {"client_id": "vrtic", "redirect_uris": [RP], "name": "Упис у вртић"}
    ]);
    TestServer::start_with(Options {
        oidc_clients: Some(clients.to_string()),
        ..Options::new(Backend::Embedded)
    })
    .await
}

/// The page's `lang` and its HTML.
async fn page(r: reqwest::RequestBuilder) -> (String, String) {
    let html = r.send().await.expect("page").text().await.expect("html");
    let lang = html
        .split("<html lang=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a lang on <html>")
        .to_owned();
    (lang, html)
}

/// What the counter's login page says, per locale.
const STAFF_LOGIN: [(&str, &str); 4] = [
    ("sr-Cyrl", "Пријава службеника"),
    ("sr-Latn", "Prijava službenika"),
    ("en", "Staff login"),
    ("hu", "Ügyintézői bejelentkezés"),
];

/// `html` says `want`'s title and no other locale's.
fn only(html: &str, want: &str) {
    for (tag, title) in STAFF_LOGIN {
        assert_eq!(
            html.contains(title),
            tag == want,
            "{want} page and the {tag} title: {html}"
        );
    }
}

#[tokio::test]
async fn the_browser_and_the_citizen_choose_the_language() {
    let srv = server().await;
    let b = browser();
    let counter = format!("{}/counter", srv.url);

    let (lang, html) = page(b.get(&counter)).await;
    assert_eq!(lang, "sr-Cyrl", "the default");
    only(&html, "sr-Cyrl");
    for (accept, want) in [
        ("hu-HU,hu;q=0.9,en;q=0.5", "hu"),
        ("de-DE, en-GB;q=0.8", "en"),
        ("sr-Latn-RS", "sr-Latn"),
        ("hr", "sr-Latn"),
        ("sr-RS, en;q=0.1", "sr-Cyrl"),
        ("fr", "sr-Cyrl"),
    ] {
        let (lang, html) = page(b.get(&counter).header("accept-language", accept)).await;
        assert_eq!(lang, want, "{accept}");
        only(&html, want);
    }

    // Bad input to the switch: a JSON 400, and no cookie.
    for (lang, back) in [
        ("xx", "/counter"),
        ("en", "//evil.example/"),
        ("en", "https://evil.example/"),
    ] {
        let r = b
            .post(format!("{}/lang", srv.url))
            .form(&[("lang", lang), ("back", back)])
            .send()
            .await
            .expect("switch");
        assert_eq!(r.status(), 400, "{lang} {back}");
        assert!(r.headers().get("set-cookie").is_none());
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["error"], "invalid_request");
    }
    let (lang, _) = page(b.get(&counter)).await;
    assert_eq!(lang, "sr-Cyrl", "nothing was remembered");

    // The switch: remembered, and it beats the browser's languages.
    let r = b
        .post(format!("{}/lang", srv.url))
        .form(&[("lang", "en"), ("back", "/counter")])
        .send()
        .await
        .expect("switch");
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/counter");
    let (lang, html) = page(b.get(&counter).header("accept-language", "hu")).await;
    assert_eq!(lang, "en");
    only(&html, "en");
    assert!(
        html.contains(r#"<option value="en" lang="en" selected>English</option>"#)
            && html
                .contains(r#"<option value="sr-Cyrl" lang="sr-Cyrl">Српски (ћирилица)</option>"#),
        "the switch names each language in itself, and marks the current one: {html}"
    );
}

#[tokio::test]
async fn ui_locales_holds_for_the_whole_login_and_is_in_discovery() {
    let srv = server().await;
    let meta: serde_json::Value =
        reqwest::get(format!("{}/.well-known/openid-configuration", srv.url))
            .await
            .expect("discovery")
            .json()
            .await
            .expect("json");
    assert_eq!(
        meta["ui_locales_supported"],
        serde_json::json!(["sr-Cyrl", "sr-Latn", "en", "hu"])
    );
    let c = citizen(&srv, None).await;
    let b = browser();
    let url = format!(
        "{}/oauth2/authorize?client_id=vrtic&redirect_uri={}&response_type=code&scope=openid&state=s1&nonce=n1\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&ui_locales=de%20hu%20en",
        srv.url,
        url::form_urlencoded::byte_serialize(RP.as_bytes()).collect::<String>()
    );
    // The relying party's `ui_locales` beats the browser's `Accept-Language`.
    let (lang, html) = page(b.get(&url).header("accept-language", "en")).await;
    assert_eq!(lang, "hu");
    assert!(html.contains("<h1>Bejelentkezés</h1>"), "{html}");
    let request = open_login(&b, &url).await;
    let _number = post_password(&srv, &b, &request, &c).await;
    let (lang, html) = page(b.get(format!(
        "{}/oauth2/authorize/continue?request={request}",
        srv.url
    )))
    .await;
    assert_eq!(lang, "hu", "the waiting page keeps the request's language");
    assert!(html.contains("Erősítse meg a telefonján"), "{html}");
    assert!(
        html.contains("Упис у вртић"),
        "the service's own name is not translated"
    );
    // The switch on the waiting page comes back to it.
    assert!(html.contains(&format!(
        r#"name="back" value="/oauth2/authorize/continue?request={request}""#
    )));
}

/// Potvrda's own services are named in the phone's language (issue 16):
/// the server signs the name in the language the device's push
/// subscription carries, and the phone's core names them in its own
/// whatever the server wrote. The audit keeps the default language's.
#[tokio::test]
async fn the_phone_names_potvrdas_own_services_in_its_language() {
    use potvrda_i18n::Locale;
    use potvrda_mobile_core::protocol::service_name;
    use potvrda_proto::jose::{Decision, OwnService};

    use crate::support::{login, next_push, post, pulled, push_endpoint};

    let srv = server().await;
    let mut endpoint = push_endpoint().await;
    let mut c = citizen(&srv, Some(&endpoint)).await;
    let l = login(&srv, &c).await;
    let ch = next_push(&mut endpoint, &c.phone).await;
    c.phone
        .answer(&ch, Decision::Approve, Some(l.number))
        .await
        .expect("approved");
    let token = srv
        .status(&l.login_id, l.login_secret.expose(), 0)
        .await
        .access_token
        .expect("a token");
    // The citizen sets the phone to Hungarian; its subscription says so.
    c.phone.set_locale(Locale::Hu);
    c.phone
        .resubscribe(Some(&endpoint.new_endpoint()))
        .await
        .expect("subscribed again");
    let r = post(
        &srv,
        "/v1/me/devices/additions",
        Some(&token),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let pushed = next_push(&mut endpoint, &c.phone).await;
    let ch = pulled(&c.phone).await;
    assert_eq!(
        pushed.claims, ch.claims,
        "push and pull carry one challenge"
    );
    assert_eq!(
        (ch.claims.ctx.service.as_deref(), ch.claims.ctx.own_service),
        (Some("Új eszköz"), Some(OwnService::NewDevice)),
        "signed in the subscription's language"
    );
    // A phone set to another language since names it in that one.
    assert_eq!(service_name(&ch, Locale::SrLatn), "Novi uređaj");
    assert_eq!(service_name(&ch, Locale::En), "New device");
    srv.audit_until(c.account.user_id.as_ref(), |events| {
        events.iter().any(|e| {
            e.kind == potvrda_proto::api::AuditKind::LoginStarted
                && e.detail["service"] == "Нови уређај"
        })
    })
    .await;
}
