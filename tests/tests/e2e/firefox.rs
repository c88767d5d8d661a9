//! The browser companion woken by a real Web Push in a real Firefox ESR
//! (issue 15): the test's own push service (`mozpush`) speaks Mozilla's
//! WebSocket protocol to Firefox and RFC 8030 + VAPID to the server;
//! Firefox subscribes through its `PushManager`, decrypts the RFC 8291
//! message itself and wakes the service worker, which shows the
//! notification; the citizen approves on the page with the number and the
//! PIN. Also: the subscription replaced after the push service said 410,
//! and pulling when the citizen refused notifications.

use std::time::Duration;

use fantoccini::{Client, Locator};
use potvrda_e2e::{Backend, TestServer};
use potvrda_proto::api::{CreateCitizenResponse, LoginResponse, LoginStatus};
use serde_json::{Value, json};

use crate::counter::{click, type_into};
use crate::mozpush::{MozPush, Seen};

const PIN: &str = "482913";

fn prefs(push: &MozPush, notifications: u8) -> Value {
    json!({
        "dom.push.serverURL": push.ws_url,
        "dom.push.testing.allowInsecureServerURL": true,
        "dom.push.connection.enabled": true,
        "dom.serviceWorkers.testing.enabled": true,
        // 1: allowed, 2: refused (the citizen said no).
        "permissions.default.desktop-notification": notifications,
        "network.proxy.type": 0,
        // Notifications through Firefox's own alert window: a headless
        // machine has no desktop notification daemon.
        "alerts.useSystemBackend": false,
    })
}

async fn server(push: &MozPush) -> TestServer {
    let mut opts = potvrda_e2e::Options::new(Backend::Embedded);
    opts.app_dir = Some(crate::mobile::web_app().await);
    let srv = TestServer::start_with(opts).await;
    assert_eq!(
        push.host, "127.0.0.1",
        "on the test server's push allow-list"
    );
    srv
}

/// Enroll the companion in `browser` for a new citizen.
async fn enrolled(srv: &TestServer, browser: &Client) -> CreateCitizenResponse {
    let account = srv.create_citizen(&potvrda_e2e::unique("ff")).await;
    browser
        .goto(&format!("{}/app/", srv.url))
        .await
        .expect("opens /app");
    browser
        .wait()
        .for_element(Locator::Css("body[data-ready=true] #enroll:not([hidden])"))
        .await
        .expect("the app loads its wasm and asks for the code");
    crate::mobile::speak(browser, "sr-Latn").await;
    type_into(browser, "#code", account.activation_code.expose()).await;
    type_into(browser, "#pin", PIN).await;
    type_into(browser, "#pin2", PIN).await;
    click(browser, "#enroll-button").await;
    click(browser, "#recovery:not([hidden]) #codes-done").await;
    account
}

/// The notifications the service worker shows.
async fn notifications(browser: &Client) -> Vec<Value> {
    const SCRIPT: &str = "const done = arguments[arguments.length - 1];
        navigator.serviceWorker.ready
          .then((r) => r.getNotifications())
          .then((ns) => done(ns.map((n) => ({title: n.title, body: n.body, tag: n.tag, data: n.data}))))
          .catch((e) => done(String(e)));";
    let got = browser
        .execute_async(SCRIPT, vec![])
        .await
        .expect("reads the notifications");
    got.as_array()
        .unwrap_or_else(|| panic!("notifications: {got}"))
        .clone()
}

/// The first notification shown whose challenge is not in `before` (within 20 s).
async fn shown(browser: &Client, before: &[String]) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(n) = notifications(browser).await.into_iter().find(|n| {
            n["data"]["cid"]
                .as_str()
                .is_some_and(|c| !before.iter().any(|b| b == c))
        }) {
            return n;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no new notification within 20 s: {:?}",
            notifications(browser).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The push service's events until one matches.
async fn until(push: &mut MozPush, want: impl Fn(&Seen) -> bool) -> Seen {
    loop {
        let s = push.next().await;
        assert!(
            !matches!(s, Seen::Refused(_)),
            "the push service refused a push: {s:?}"
        );
        if want(&s) {
            return s;
        }
    }
}

/// The first push of a login not pushed before (its challenge: a
/// withdrawal shares an earlier login's `Topic`), skipping everything else.
async fn first_push_of_a_new_login(push: &mut MozPush, topics: &mut Vec<String>) -> Seen {
    let seen = until(
        push,
        |s| matches!(s, Seen::Pushed { topic: Some(t), .. } if !topics.contains(t)),
    )
    .await;
    if let Seen::Pushed { topic: Some(t), .. } = &seen {
        topics.push(t.clone());
    }
    seen
}

async fn start_login(srv: &TestServer, account: &CreateCitizenResponse) -> (LoginResponse, i64) {
    let started = wall_ms();
    let resp = srv
        .login_raw(&account.username, account.initial_password.expose())
        .await;
    assert_eq!(resp.status(), 201);
    (resp.json().await.expect("json"), started)
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn median(mut xs: Vec<i64>) -> i64 {
    xs.sort_unstable();
    xs[xs.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_receives_the_push_decrypts_it_and_the_citizen_approves() {
    let mut push = MozPush::start().await;
    let srv = server(&push).await;
    let (_driver, browser) = crate::browser::firefox(prefs(&push, 1)).await;
    let account = enrolled(&srv, &browser).await;

    // The companion subscribes through Firefox's PushManager with the
    // server's VAPID key; the server holds that endpoint.
    let Seen::Registered(endpoint) = until(&mut push, |s| matches!(s, Seen::Registered(_))).await
    else {
        unreachable!()
    };
    browser
        .wait()
        .for_element(Locator::Css("body[data-push=on]"))
        .await
        .expect("the companion says pushes reach it");

    // Logins push; Firefox decrypts (RFC 8291) and acknowledges; the service
    // worker shows the notification with the service. A newer login
    // supersedes the one before, so each is a fresh prompt.
    let mut latencies = Vec::new();
    let mut cids: Vec<String> = Vec::new();
    let mut last = None;
    let mut topics = Vec::new();
    for _ in 0..3 {
        let (login, started) = start_login(&srv, &account).await;
        let Seen::Pushed {
            topic,
            delivered,
            version,
            ..
        } = first_push_of_a_new_login(&mut push, &mut topics).await
        else {
            unreachable!()
        };
        assert!(delivered && topic.is_some_and(|t| t.len() == 32));
        let version = version.expect("delivered with a version");
        let acked = until(
            &mut push,
            |s| matches!(s, Seen::Acked { version: v, .. } if *v == version),
        )
        .await;
        assert_eq!(
            acked,
            Seen::Acked {
                channel: endpoint.rsplit('/').next().expect("channel").into(),
                version,
                code: 100
            },
            "Firefox decrypted the message and handed it to the service worker"
        );
        let note = shown(&browser, &cids).await;
        assert_eq!(note["title"], "eUprava: porez na imovinu", "{note}");
        // In the companion's language (it chose sr-Latn), one language only.
        let waiting = potvrda_i18n::catalog().text(potvrda_i18n::Locale::SrLatn, "app-waiting");
        assert!(
            note["body"]
                .as_str()
                .is_some_and(|b| b.starts_with(&format!("{waiting}\n"))),
            "{note}"
        );
        let cid = note["data"]["cid"].as_str().expect("cid").to_owned();
        assert_eq!(note["tag"], format!("potvrda-{cid}"));
        // Declarative Web Push: the page to open came in the message.
        assert_eq!(note["data"]["navigate"], format!("{}/app/#{cid}", srv.url));
        browser
            .wait()
            .for_element(Locator::Css(&format!(".login[data-id=\"{cid}\"]")))
            .await
            .expect("the page shows the login");
        cids.push(cid.clone());
        let at = note["data"]["shown_at"].as_i64().expect("shown_at");
        latencies.push(at - started);
        last = Some((login, cid));
    }
    // The two earlier logins were superseded: their withdrawals closed
    // their notifications, and their cards are gone.
    let (_, cid) = last.as_ref().expect("a login");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let tags: Vec<Value> = notifications(&browser)
            .await
            .into_iter()
            .map(|n| n["tag"].clone())
            .collect();
        if tags == [json!(format!("potvrda-{cid}"))] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "superseded notifications still shown: {tags:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cards = browser
        .find_all(Locator::Css(".login[data-id]"))
        .await
        .expect("cards");
    assert_eq!(cards.len(), 1, "only the newest login is shown");
    let ms = median(latencies.clone());
    eprintln!("firefox: login request → notification shown: median {ms} ms of {latencies:?}");

    // Tapping the notification navigates the companion to `#<challenge>`
    // (the service worker's notificationclick; WebDriver cannot tap a
    // notification, so the test navigates as it does): that login's number
    // field is ready to type into.
    let (login, cid) = last.expect("a login");
    browser
        .execute("location.hash = arguments[0];", vec![json!(cid)])
        .await
        .expect("navigates");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let active = browser
            .execute(
                "const a = document.activeElement; \
                 return a && a.classList.contains('number') ? a.closest('.login').dataset.id : null;",
                vec![],
            )
            .await
            .expect("reads the focus");
        if active == json!(cid) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the tapped login's number field has no focus: {active}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The citizen approves on the page with the number and the PIN.
    let card = format!(".login[data-id=\"{cid}\"]");
    type_into(
        &browser,
        &format!("{card} .number"),
        &format!("{:02}", login.number),
    )
    .await;
    type_into(&browser, &format!("{card} .pin"), PIN).await;
    click(&browser, &format!("{card} .approve")).await;
    browser
        .wait()
        .for_element(Locator::XPath(
            "//p[@id='status' and contains(., 'potvrđena')]",
        ))
        .await
        .expect("approved");
    let status = srv
        .status(&login.login_id, login.login_secret.expose(), 0)
        .await;
    assert_eq!(status.status, LoginStatus::Approved);
    assert!(status.access_token.is_some(), "the portal gets its token");

    // The push service says the subscription expired (410): the server
    // marks it gone; the companion, back on screen, subscribes again and
    // the next login reaches the new subscription.
    push.expire(&endpoint);
    let (_, _) = start_login(&srv, &account).await;
    let gone = first_push_of_a_new_login(&mut push, &mut topics).await;
    assert!(
        matches!(
            gone,
            Seen::Pushed {
                delivered: false,
                ..
            }
        ),
        "{gone:?}"
    );
    let info_gone = srv.audit_until(&account.user_id, |events| {
        events
            .iter()
            .any(|e| e.kind == potvrda_proto::api::AuditKind::PushFailed)
    });
    info_gone.await;
    browser.refresh().await.expect("reload");
    let Seen::Registered(renewed) = until(&mut push, |s| matches!(s, Seen::Registered(_))).await
    else {
        unreachable!()
    };
    assert_ne!(renewed, endpoint, "a new subscription");
    browser
        .wait()
        .for_element(Locator::Css("body[data-push=on]"))
        .await
        .expect("pushes reach it again");
    let (_, _) = start_login(&srv, &account).await;
    let again = first_push_of_a_new_login(&mut push, &mut topics).await;
    assert!(
        matches!(&again, Seen::Pushed { channel, delivered: true, .. } if renewed.ends_with(channel.as_str())),
        "{again:?}"
    );
    browser.close().await.expect("closes");
}

/// Notifications refused: no subscription, and the companion pulls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_without_notification_permission_pulls() {
    let mut push = MozPush::start().await;
    let srv = server(&push).await;
    let (_driver, browser) = crate::browser::firefox(prefs(&push, 2)).await;
    let account = enrolled(&srv, &browser).await;
    browser
        .wait()
        .for_element(Locator::Css("body[data-push=off]"))
        .await
        .expect("the companion knows pushes are refused");
    let (_login, _) = start_login(&srv, &account).await;
    browser
        .wait()
        .for_element(Locator::Css(".login[data-id]"))
        .await
        .expect("the login arrives by pulling");
    assert!(push.nothing_yet(), "nothing was registered or pushed");
    browser.close().await.expect("closes");
}
