//! "Send a new request to the phone" (WCAG 2.2.1, issue 16), attacked:
//! only the browser that typed the password can ask, at most ten times
//! per login (the phone's push limits hold besides), each new request
//! supersedes the one before, and a login already decided goes on as
//! "continue" does instead of asking the phone again.

use potvrda_e2e::{Backend, Options, TestServer};
use potvrda_proto::jose::Decision;

use crate::oidc::{browser, location, open_login, post_password};
use crate::support::*;

const RP: &str = "https://vrtic.example/cb";

async fn server(backend: Backend) -> TestServer {
    let clients = serde_json::json!([
        {"client_id": "vrtic", "redirect_uris": [RP], "name": "Упис у вртић"}
    ]);
    TestServer::start_with(Options {
        oidc_clients: Some(clients.to_string()),
        limits: (1000, 900, 50, 900),
        ..Options::new(backend)
    })
    .await
}

fn authorize(srv: &TestServer) -> String {
    format!(
        "{}/oauth2/authorize?client_id=vrtic&redirect_uri={}&response_type=code&scope=openid&state=s\
         &nonce=n&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        srv.url,
        url::form_urlencoded::byte_serialize(RP.as_bytes()).collect::<String>()
    )
}

async fn again(srv: &TestServer, b: &reqwest::Client, request: &str) -> reqwest::Response {
    b.post(format!("{}/oauth2/authorize/again", srv.url))
        .form(&[("request", request)])
        .send()
        .await
        .expect("again")
}

crate::on_both_stores!(a_new_request_to_the_phone_is_bounded_and_bound_to_the_browser);

async fn a_new_request_to_the_phone_is_bounded_and_bound_to_the_browser(backend: Backend) {
    let srv = server(backend).await;
    let c = citizen(&srv, None).await;
    let b = browser();
    let request = open_login(&b, &authorize(&srv)).await;
    let mut number = post_password(&srv, &b, &request, &c).await;
    let mut previous = pulled(&c.phone).await;

    // Another browser (no binding cookie) cannot make the phone ring.
    let stranger = browser();
    let r = again(&srv, &stranger, &request).await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        c.phone.pending().await.expect("pull").len(),
        1,
        "no new challenge for a stranger"
    );

    // Ten new requests, each superseding the one before.
    for n in 1..=10 {
        let r = again(&srv, &b, &request).await;
        assert_eq!(r.status(), 200, "resend {n}");
        let html = r.text().await.expect("html");
        assert_eq!(
            html.contains(r#"id="again""#),
            n < 10,
            "the button while resends are left ({n})"
        );
        let fresh = pulled(&c.phone).await;
        assert_ne!(
            fresh.claims.cid, previous.claims.cid,
            "resend {n}: a new challenge"
        );
        assert!(
            c.phone
                .answer(&previous, Decision::Approve, Some(number))
                .await
                .is_err(),
            "resend {n}: the one before is superseded"
        );
        previous = fresh;
        number = shown_number(&html);
    }
    // The eleventh is "continue": the phone is not asked again.
    let r = again(&srv, &b, &request).await;
    assert_eq!(r.status(), 200, "the waiting page, as continue shows it");
    let pending = c.phone.pending().await.expect("pull");
    assert_eq!(pending.len(), 1);
    assert_eq!(
        pending[0].claims.cid, previous.claims.cid,
        "no eleventh challenge"
    );

    // Decided: "again" goes on to the service like "continue".
    c.phone
        .answer(&previous, Decision::Approve, Some(number))
        .await
        .expect("approved");
    let back = location(&again(&srv, &b, &request).await);
    assert!(
        back.as_str().starts_with(RP) && back.as_str().contains("code="),
        "{back}"
    );

    // Decided with resends left: "again" goes on like "continue", and the
    // phone is not asked again.
    let b = browser();
    let request = open_login(&b, &authorize(&srv)).await;
    let number = post_password(&srv, &b, &request, &c).await;
    let ch = pulled(&c.phone).await;
    c.phone
        .answer(&ch, Decision::Approve, Some(number))
        .await
        .expect("approved");
    let back = location(&again(&srv, &b, &request).await);
    assert!(back.as_str().contains("code="), "{back}");
    assert!(
        c.phone.pending().await.expect("pull").is_empty(),
        "no new challenge"
    );
}

/// The number a waiting page shows.
fn shown_number(html: &str) -> u8 {
    html.split(r#"id="number" aria-live="polite">"#)
        .nth(1)
        .and_then(|s| s.split('<').next())
        .and_then(|n| n.trim().parse().ok())
        .expect("the number")
}
