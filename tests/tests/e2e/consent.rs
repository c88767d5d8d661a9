//! Consent (OpenID Connect Core §3.1.2.4), on every store: a service
//! registered with `require_consent` gets its first code only after the
//! citizen allows it on a page naming the service and what it learns;
//! the consent is remembered (and audited); `prompt=consent` asks again,
//! and a refusal is `access_denied`; `prompt=none` without consent is
//! `consent_required`; a forged form is refused.

use potvrda_e2e::{Backend, Options, TestServer};
use potvrda_proto::api::AuditKind;
use potvrda_proto::jose::Decision;
use serde_json::json;

use crate::oidc::{browser, location, open_login, param, post_password};
use crate::support::*;

crate::on_both_stores!(a_consent_client_asks_once_and_a_refusal_is_access_denied);

const SECRET: &str = "a-client-secret-0123456789";

fn authorize(srv: &TestServer, client: &str, extra: &str) -> String {
    format!(
        "{}/oauth2/authorize?client_id={client}&redirect_uri=https://{client}.example/cb&response_type=code&scope=openid%20profile&state=s{extra}",
        srv.url
    )
}

fn field(html: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let from = html.find(&marker).expect("the field") + marker.len();
    html[from..from + html[from..].find('"').expect("closing")].to_owned()
}

async fn answer(
    srv: &TestServer,
    b: &reqwest::Client,
    page: &str,
    decision: &str,
    csrf: Option<&str>,
) -> reqwest::Response {
    let (request, token) = (field(page, "request"), field(page, "csrf"));
    b.post(format!("{}/oauth2/authorize/consent", srv.url))
        .form(&[
            ("request", request.as_str()),
            ("csrf", csrf.unwrap_or(&token)),
            ("decision", decision),
        ])
        .send()
        .await
        .expect("sent")
}

async fn a_consent_client_asks_once_and_a_refusal_is_access_denied(backend: Backend) {
    let client = |id: &str| {
        json!({"client_id": id, "client_secret": SECRET, "name": format!("Servis {id}"),
               "redirect_uris": [format!("https://{id}.example/cb")], "require_consent": true})
    };
    let srv = TestServer::start_with(Options {
        oidc_clients: Some(json!([client("biblioteka"), client("muzej")]).to_string()),
        ..Options::new(backend)
    })
    .await;
    let c = citizen(&srv, None).await;
    let b = browser();
    let request = open_login(&b, &authorize(&srv, "biblioteka", "")).await;
    let number = post_password(&srv, &b, &request, &c).await;
    let ch = pulled(&c.phone).await;
    c.phone
        .answer(&ch, Decision::Approve, Some(number))
        .await
        .expect("approved");
    let r = b
        .get(format!(
            "{}/oauth2/authorize/continue?request={request}",
            srv.url
        ))
        .send()
        .await
        .expect("continue");
    assert_eq!(r.status(), 200, "the consent page, not a code");
    let page = r.text().await.expect("html");
    assert!(
        page.contains("Servis biblioteka") && page.contains("ваше корисничко име и име"),
        "{page}"
    );

    let forged = answer(&srv, &b, &page, "allow", Some("not-the-token")).await;
    assert_eq!(forged.status(), 403);
    let r = answer(&srv, &b, &page, "allow", None).await;
    let back = location(&r);
    assert!(param(&back, "code").is_some(), "allowed: the code");

    // Remembered: single sign-on gets a code at once.
    let r = b
        .get(authorize(&srv, "biblioteka", ""))
        .send()
        .await
        .expect("sso");
    assert!(param(&location(&r), "code").is_some());
    // Asked again with prompt=consent; refused.
    let r = b
        .get(authorize(&srv, "biblioteka", "&prompt=consent"))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    let page = r.text().await.expect("html");
    let r = answer(&srv, &b, &page, "deny", None).await;
    assert_eq!(
        param(&location(&r), "error").as_deref(),
        Some("access_denied")
    );
    // Never asked: prompt=none cannot ask.
    let r = b
        .get(authorize(&srv, "muzej", "&prompt=none"))
        .send()
        .await
        .expect("sent");
    assert_eq!(
        param(&location(&r), "error").as_deref(),
        Some("consent_required")
    );

    let trail = srv.audit("limit=1000").await.events;
    let given: Vec<_> = trail
        .iter()
        .filter(|e| e.kind == AuditKind::ConsentGiven)
        .collect();
    assert_eq!(given.len(), 1, "{given:?}");
    assert_eq!(given[0].detail["client_id"], "biblioteka");
}
