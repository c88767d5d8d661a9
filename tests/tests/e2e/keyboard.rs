//! Keyboard only (WCAG 2.1.1, 2.4.7; issue 16): in headless Chromium, with
//! Tab, typing and Enter and nothing else, a citizen logs in to a service
//! through the OpenID pages and logs out again, and an official logs in
//! to the counter, opens an account for a new citizen and reaches the
//! printed sheet's buttons. Every element the keyboard lands on shows its
//! focus.

use std::time::Duration;

use fantoccini::Client;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use potvrda_e2e::{Backend, Options, TestServer};
use potvrda_proto::jose::Decision;
use serde_json::json;

use crate::browser::chromium;
use crate::counter::counter_setup;
use crate::support::*;

/// Press these keys (characters, or `Key`s as their code points).
async fn press(browser: &Client, keys: &str) {
    let mut seq = KeyActions::new("keyboard".into());
    for c in keys.chars() {
        seq = seq
            .then(KeyAction::Down { value: c })
            .then(KeyAction::Up { value: c });
    }
    browser.perform_actions(seq).await.expect("keys");
}

fn key(k: Key) -> String {
    char::from(k).to_string()
}

/// Tab until the element `#id` has the focus (at most 40 presses); each
/// element passed on the way shows its focus.
async fn tab_to(browser: &Client, id: &str) {
    for _ in 0..40 {
        press(browser, &key(Key::Tab)).await;
        let focus = browser
            .execute(
                "const a = document.activeElement; const s = getComputedStyle(a);
                 return [a.id, a.tagName, s.outlineStyle, s.outlineWidth];",
                vec![],
            )
            .await
            .expect("the focus");
        if focus[1] != "BODY" {
            assert!(
                focus[2] != "none" && focus[3] != "0px",
                "the focus on {focus} is not visible"
            );
        }
        if focus[0] == id {
            return;
        }
    }
    panic!("#{id} cannot be reached with Tab");
}

/// The page's `#id` text, once it is there.
async fn shown(browser: &Client, id: &str) -> String {
    crate::counter::text(browser, id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_and_the_counter_work_with_the_keyboard_alone() {
    let rp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", rp.local_addr().expect("addr"));
    let mut arrived = crate::browser::relying_party_pages(rp, String::new()).await;
    let srv = TestServer::start_with(Options {
        oidc_clients: Some(
            json!([{"client_id": "vrtic", "redirect_uris": [format!("{base}/cb")],
                    "post_logout_redirect_uris": [format!("{base}/cb-bye")], "name": "Упис у вртић"}])
            .to_string(),
        ),
        ..Options::new(Backend::Embedded)
    })
    .await;
    let c = citizen(&srv, None).await;
    let (_, official, official_phone) = counter_setup(&srv).await;
    let (_driver, browser) = chromium("1000,1000").await;
    let enter = key(Key::Enter);

    // The citizen: username, password, Enter; the phone; back at the service.
    browser
        .goto(&format!(
            "{}/oauth2/authorize?client_id=vrtic&redirect_uri={}&response_type=code&scope=openid\
             &state=s&nonce=n&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
            srv.url,
            url::form_urlencoded::byte_serialize(format!("{base}/cb").as_bytes()).collect::<String>()
        ))
        .await
        .expect("authorize");
    tab_to(&browser, "username").await;
    press(&browser, &c.account.username).await;
    tab_to(&browser, "password").await;
    press(&browser, c.account.initial_password.expose()).await;
    press(&browser, &enter).await;
    let number: u8 = shown(&browser, "number")
        .await
        .trim()
        .parse()
        .expect("two digits");
    tab_to(&browser, "continue").await;
    catch_up(&srv);
    let ch = pulled(&c.phone).await;
    c.phone
        .answer(&ch, Decision::Approve, Some(number))
        .await
        .expect("approved");
    press(&browser, &enter).await;
    let Ok(back) = tokio::time::timeout(Duration::from_secs(20), arrived.recv()).await else {
        panic!(
            "not back at the service: {:?} {:?}",
            browser.current_url().await,
            browser.source().await
        );
    };
    let back = back.expect("a callback");
    assert!(back.starts_with("/cb?code="), "{back}");

    // Logging out: the confirmation's button, then the service's page.
    browser
        .goto(&format!(
            "{}/oauth2/logout?client_id=vrtic&post_logout_redirect_uri={}",
            srv.url,
            url::form_urlencoded::byte_serialize(format!("{base}/cb-bye").as_bytes())
                .collect::<String>()
        ))
        .await
        .expect("logout");
    tab_to(&browser, "logout").await;
    press(&browser, &enter).await;
    let bye = tokio::time::timeout(Duration::from_secs(20), arrived.recv())
        .await
        .expect("the service's page after the logout")
        .expect("a callback");
    assert!(bye.starts_with("/cb-bye"), "{bye}");

    // The official: login, the phone, a new citizen, the sheet.
    browser
        .goto(&format!("{}/counter", srv.url))
        .await
        .expect("counter");
    tab_to(&browser, "username").await;
    press(&browser, &official.username).await;
    tab_to(&browser, "password").await;
    press(&browser, official.initial_password.expose()).await;
    press(&browser, &enter).await;
    let number: u8 = shown(&browser, "number")
        .await
        .trim()
        .parse()
        .expect("two digits");
    catch_up(&srv);
    let ch = pulled(&official_phone).await;
    official_phone
        .answer(&ch, Decision::Approve, Some(number))
        .await
        .expect("approved");
    assert!(shown(&browser, "staff").await.contains("Milica Jovanović"));
    tab_to(&browser, "new-name").await;
    press(&browser, "Јелена Јовановић").await;
    tab_to(&browser, "create-submit").await;
    press(&browser, &enter).await;
    let username = shown(&browser, "username").await;
    assert!(!username.is_empty() && !shown(&browser, "code").await.is_empty());
    tab_to(&browser, "print").await;
    tab_to(&browser, "back").await;
    press(&browser, &enter).await;
    assert_eq!(shown(&browser, "name").await, "Јелена Јовановић");
    browser.close().await.expect("closed");
}
