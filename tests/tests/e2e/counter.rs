//! The counter's web UI at `/counter`: a day at the counter in headless
//! Chromium (login with the official's phone, a citizen's fraud report,
//! unlock, a new account and its printed sheet, a device revoked, a lost
//! phone's reset, logout), and the session's defences over plain HTTP on
//! every store (CSRF tokens, cookie attributes and rotation, staff only,
//! deactivation, idle expiry, logout).

use std::time::Duration;

use fantoccini::Locator;
use potvrda_e2e::{Backend, TestServer};
use potvrda_mobile_core::phone::VirtualPhone;
use potvrda_proto::api::{AuditKind, CitizenSummary, CreateCitizenResponse};
use potvrda_proto::jose::{Decision, OwnService};
use serde_json::json;

use crate::browser::{chromium, keep_screenshot};
use crate::support::*;

crate::on_both_stores!(
    the_counter_session_resists_forgery_and_ends_when_it_should,
    a_four_eyes_reset_needs_a_second_official,
    a_planted_cookie_does_not_follow_the_officials_login,
    an_admin_cannot_be_both_pairs_of_eyes,
    the_citizens_page_shows_its_security_events_to_its_municipality,
    the_officials_waiting_page_renews_its_time_limit,
);

async fn a_four_eyes_reset_needs_a_second_official(backend: Backend) {
    let srv = TestServer::start_with(potvrda_e2e::Options {
        four_eyes_reset: true,
        ..potvrda_e2e::Options::new(backend)
    })
    .await;
    let (sa, first, first_phone) = counter_setup(&srv).await;
    let r = post(
        &srv,
        "/v1/admin/municipalities",
        Some(&sa),
        json!({"code": "ns", "name": "Novi Sad"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let (second, second_phone) =
        staff_with_phone(&srv, &sa, "official", Some("bg"), "Petar Petrović").await;
    let (_, elsewhere) = staff(&srv, &sa, "official", Some("ns")).await;
    let c = citizen(&srv, None).await;
    let id = &c.account.user_id;

    // The first official asks at the counter: nothing changes yet.
    let a = Browser::new(&srv);
    let csrf = a.login(&first, &first_phone).await;
    let r = a
        .form(&format!("/counter/citizens/{id}/reset"), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status(), 303);
    let (_, page) = a.get(&format!("/counter/citizens/{id}")).await;
    assert!(page.contains(r#"id="awaiting""#) && !page.contains(r#"id="confirm-reset""#));
    let pending = citizen_summary(&srv, &sa, id)
        .await
        .pending_reset
        .expect("a pending reset");
    assert_eq!(pending.requested_by, first.user_id);
    assert_eq!(
        srv.login_raw(&c.account.username, c.account.initial_password.expose())
            .await
            .status(),
        201,
        "the old password still works until confirmed"
    );

    // Not the one who asked, not another municipality, not another request.
    // A token for the first official through the API (their phone approves).
    let l: potvrda_proto::api::LoginResponse = srv
        .login_for(
            &first.username,
            first.initial_password.expose(),
            potvrda_proto::api::LoginAudience::Admin,
        )
        .await
        .json()
        .await
        .expect("json");
    first_phone
        .answer(
            &pulled(&first_phone).await,
            Decision::Approve,
            Some(l.number),
        )
        .await
        .expect("approved");
    let first_token = srv
        .status(&l.login_id, l.login_secret.expose(), 0)
        .await
        .access_token
        .expect("token");
    let confirm = |token: String, request_id: String| {
        let srv = &srv;
        async move {
            post(
                srv,
                &format!("/v1/admin/citizens/{id}/reset/confirm"),
                Some(&token),
                json!({ "request_id": request_id }),
            )
            .await
        }
    };
    for (token, request, status, code) in [
        (
            first_token.clone(),
            pending.request_id.clone(),
            403,
            "second_official_required",
        ),
        (
            elsewhere.clone(),
            pending.request_id.clone(),
            403,
            "second_official_required",
        ),
        (sa.clone(), "not-the-request".to_owned(), 404, "not_found"),
    ] {
        let r = confirm(token, request).await;
        assert_eq!(r.status().as_u16(), status);
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["error"], code);
    }

    // The second official of the same municipality confirms at the counter and prints.
    let b = Browser::new(&srv);
    let csrf = b.login(&second, &second_phone).await;
    let (_, page) = b.get(&format!("/counter/citizens/{id}")).await;
    assert!(page.contains(r#"id="confirm-reset""#), "{page}");
    let r = b
        .form(
            &format!("/counter/citizens/{id}/reset/confirm"),
            &[("csrf", csrf.as_str()), ("request_id", &pending.request_id)],
        )
        .await;
    assert_eq!(r.status(), 200);
    let sheet = r.text().await.expect("sheet");
    let code = sheet
        .split(r#"<td id="code" class="secret">"#)
        .nth(1)
        .and_then(|s| s.split('<').next())
        .expect("the new code")
        .to_owned();
    assert_eq!(
        srv.login_raw(&c.account.username, c.account.initial_password.expose())
            .await
            .status(),
        401,
        "the old password is gone"
    );
    VirtualPhone::enroll(&srv.url, &code, "new phone", None)
        .await
        .expect("the new code enrolls");
    // Confirmed once.
    let r = confirm(sa.clone(), pending.request_id.clone()).await;
    assert_eq!(r.status(), 404);
    assert!(citizen_summary(&srv, &sa, id).await.pending_reset.is_none());

    let events = srv.audit(&format!("user_id={id}")).await.events;
    let asked = events
        .iter()
        .find(|e| e.kind == AuditKind::ResetRequested)
        .expect("the request is audited");
    assert_eq!(asked.actor_id.as_deref(), Some(first.user_id.as_str()));
    let done = events
        .iter()
        .find(|e| e.kind == AuditKind::AccountReset)
        .expect("the reset is audited");
    assert_eq!(done.actor_id.as_deref(), Some(second.user_id.as_str()));
    assert_eq!(done.detail["requested_by"], first.user_id.as_str());
}

/// A staff member of `role` created by `by`, with an enrolled phone.
pub(crate) async fn staff_with_phone(
    srv: &TestServer,
    by: &str,
    role: &str,
    municipality: Option<&str>,
    name: &str,
) -> (CreateCitizenResponse, VirtualPhone) {
    let r = post(
        srv,
        "/v1/admin/staff",
        Some(by),
        json!({"username": potvrda_e2e::unique(role), "display_name": name, "role": role, "municipality": municipality}),
    )
    .await;
    assert_eq!(r.status(), 201, "create {role}");
    let account: CreateCitizenResponse = r.json().await.expect("json");
    let phone = VirtualPhone::enroll(&srv.url, account.activation_code.expose(), "phone", None)
        .await
        .expect("enrolls");
    (account, phone)
}

/// A superadmin's token and an official of municipality `bg` with a phone.
pub(crate) async fn counter_setup(
    srv: &TestServer,
) -> (String, CreateCitizenResponse, VirtualPhone) {
    let (_, sa) = staff(srv, &srv.token, "superadmin", None).await;
    let r = post(
        srv,
        "/v1/admin/municipalities",
        Some(&sa),
        json!({"code": "bg", "name": "Beograd"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let (official, phone) =
        staff_with_phone(srv, &sa, "official", Some("bg"), "Milica Jovanović").await;
    (sa, official, phone)
}

async fn citizen_summary(srv: &TestServer, token: &str, id: &str) -> CitizenSummary {
    let r = srv
        .http
        .get(format!("{}/v1/admin/citizens/{id}", srv.url))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    r.json().await.expect("json")
}

/// A citizen who reported a login as fraud from the phone (the account is locked).
async fn fraud_reported(srv: &TestServer) -> Citizen {
    let r = post(
        srv,
        "/v1/admin/citizens",
        Some(&srv.token),
        json!({"username": "jelena.petrovic", "display_name": "Jelena Petrović",
               "email": "jelena@example.rs", "phone": "+381 64 123 4567"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let account: CreateCitizenResponse = r.json().await.expect("json");
    let phone = VirtualPhone::enroll(
        &srv.url,
        account.activation_code.expose(),
        "Jelenin telefon",
        None,
    )
    .await
    .expect("enrolls");
    let c = Citizen { account, phone };
    login(srv, &c).await;
    c.phone
        .answer(&pulled(&c.phone).await, Decision::Fraud, None)
        .await
        .expect("reported");
    c
}

/// The value of `name="csrf"` in a page.
fn csrf_of(html: &str) -> String {
    html.split(r#"name="csrf" value=""#)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a CSRF field")
        .to_owned()
}

/// A browser without JavaScript: a cookie jar, no automatic redirects.
struct Browser {
    http: reqwest::Client,
    url: String,
}

impl Browser {
    fn new(srv: &TestServer) -> Self {
        Self {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            url: srv.url.clone(),
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("request");
        (r.status().as_u16(), r.text().await.expect("body"))
    }

    async fn form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.url))
            .form(fields)
            .send()
            .await
            .expect("request")
    }

    /// Log in with password and phone: the counter page's CSRF token.
    async fn login(&self, account: &CreateCitizenResponse, phone: &VirtualPhone) -> String {
        let (_, page) = self.get("/counter").await;
        let r = self
            .form(
                "/counter/login",
                &[
                    ("csrf", &csrf_of(&page)),
                    ("username", &account.username),
                    ("password", account.initial_password.expose()),
                ],
            )
            .await;
        assert_eq!(r.status(), 200);
        let waiting = r.text().await.expect("body");
        let number: u8 = waiting
            .split(r#"id="number" aria-live="polite">"#)
            .nth(1)
            .and_then(|s| s.split('<').next())
            .and_then(|n| n.trim().parse().ok())
            .expect("the waiting page shows the number");
        let ch = pulled(phone).await;
        assert_eq!(
            (ch.claims.ctx.service.as_deref(), ch.claims.ctx.own_service),
            (Some("Шалтер"), Some(OwnService::Counter))
        );
        phone
            .answer(&ch, Decision::Approve, Some(number))
            .await
            .expect("approved");
        let r = self
            .http
            .get(format!("{}/counter/login/continue", self.url))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 303, "approved: into the counter");
        let (status, page) = self.get("/counter").await;
        assert_eq!(status, 200);
        assert!(page.contains(r#"id="staff""#), "logged in: {page}");
        csrf_of(&page)
    }
}

fn set_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("potvrda_counter="))
        .map(str::to_owned)
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_owned())
        .expect("a value")
}

async fn the_counter_session_resists_forgery_and_ends_when_it_should(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let (sa, official, phone) = counter_setup(&srv).await;
    let victim = citizen(&srv, None).await;
    let b = Browser::new(&srv);

    // The first visit: a session cookie with every protection, and a strict CSP.
    let r = b
        .http
        .get(format!("{}/counter", srv.url))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("form-action 'self'")
            && csp.contains("frame-ancestors 'none'")
            && !csp.contains("unsafe"),
        "{csp}"
    );
    let first = set_cookie(&r).expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/counter"] {
        assert!(first.contains(attr), "{attr} in {first}");
    }
    let anonymous_csrf = csrf_of(&r.text().await.expect("body"));

    // A login form without the page's CSRF token sends no push.
    let r = b
        .form(
            "/counter/login",
            &[
                ("csrf", "forged"),
                ("username", &official.username),
                ("password", official.initial_password.expose()),
            ],
        )
        .await;
    assert_eq!(r.status(), 403);
    assert!(
        phone.pending().await.expect("pending").is_empty(),
        "no challenge"
    );

    // Log in: the cookie changes (no session fixation), the old one opens nothing.
    let csrf = b.login(&official, &phone).await;
    assert_ne!(csrf, anonymous_csrf);
    let stale = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let (_, page) = {
        let r = stale
            .get(format!("{}/counter", srv.url))
            .header(
                "Cookie",
                format!("potvrda_counter={}", cookie_value(&first)),
            )
            .send()
            .await
            .expect("request");
        (r.status(), r.text().await.expect("body"))
    };
    assert!(
        page.contains(r#"action="/counter/login""#) && !page.contains(r#"id="staff""#),
        "the pre-login cookie is not the session"
    );

    // Forged forms change nothing: no token, the anonymous token, another session's token.
    let lock = format!("/counter/citizens/{}/lock", victim.account.user_id);
    let other = Browser::new(&srv);
    let (_, other_page) = other.get("/counter").await;
    for (forged, status) in [
        (None, 400),
        (Some(anonymous_csrf.as_str()), 403),
        (Some(csrf_of(&other_page).as_str()), 403),
        (Some(""), 403),
    ] {
        let r = match forged {
            Some(t) => b.form(&lock, &[("csrf", t)]).await,
            None => b.form(&lock, &[]).await,
        };
        assert_eq!(r.status().as_u16(), status, "forged {forged:?}");
    }
    assert!(
        !citizen_summary(&srv, &sa, &victim.account.user_id)
            .await
            .locked
    );
    // Another session's cookie with this session's token: also refused.
    let r = other.form(&lock, &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), 303, "not logged in: to the login page");
    assert!(
        !citizen_summary(&srv, &sa, &victim.account.user_id)
            .await
            .locked
    );

    // The real form works, and the audit names the official.
    let r = b.form(&lock, &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), 303);
    assert!(
        citizen_summary(&srv, &sa, &victim.account.user_id)
            .await
            .locked
    );
    let trail = srv
        .audit(&format!("user_id={}", victim.account.user_id))
        .await;
    assert!(
        trail
            .events
            .iter()
            .any(|e| e.kind == AuditKind::AccountLocked
                && e.actor_id.as_deref() == Some(official.user_id.as_str())),
        "the lock is audited with its actor"
    );

    // A citizen's password opens no counter session, and sends no push
    // (staff authority comes only from a staff login, security round 2).
    let c = citizen(&srv, None).await;
    let cb = Browser::new(&srv);
    let (_, page) = cb.get("/counter").await;
    let r = cb
        .form(
            "/counter/login",
            &[
                ("csrf", &csrf_of(&page)),
                ("username", &c.account.username),
                ("password", c.account.initial_password.expose()),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.expect("body");
    assert!(
        page.contains("Ово није налог службеника."),
        "refused: {page}"
    );
    assert!(
        c.phone.pending().await.expect("pull").is_empty(),
        "no challenge"
    );
    let (_, page) = cb.get("/counter").await;
    assert!(!page.contains(r#"id="staff""#));

    // Idle for more than 30 minutes: the session is gone.
    let idle = Browser::new(&srv);
    let (official2, phone2) =
        staff_with_phone(&srv, &sa, "official", Some("bg"), "Petar Petrović").await;
    idle.login(&official2, &phone2).await;
    srv.clock.advance(31 * 60);
    let (_, page) = idle.get("/counter").await;
    assert!(
        !page.contains(r#"id="staff""#),
        "an idle session has expired"
    );
    srv.clock.advance(-31 * 60);

    // Deactivating the official ends their session at the next request.
    let (_, page) = b.get("/counter").await;
    assert!(page.contains(r#"id="staff""#));
    let r = post(
        &srv,
        &format!("/v1/admin/staff/{}/deactivate", official.user_id),
        Some(&sa),
        json!({}),
    )
    .await;
    assert!(r.status().is_success(), "deactivate: {}", r.status());
    let (_, page) = b.get("/counter").await;
    assert!(
        page.contains("Сесија је завршена.") && !page.contains(r#"id="staff""#),
        "{page}"
    );

    // Logout ends the session for good.
    let out = Browser::new(&srv);
    let csrf = out.login(&official2, &phone2).await;
    let r = out.form("/counter/logout", &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), 303);
    let (_, page) = out.get("/counter").await;
    assert!(!page.contains(r#"id="staff""#));
    let r = out
        .form(
            &format!("/counter/citizens/{}/unlock", victim.account.user_id),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), 303, "after logout: to the login page");
    assert!(
        citizen_summary(&srv, &sa, &victim.account.user_id)
            .await
            .locked
    );
}

pub(crate) async fn text(browser: &fantoccini::Client, id: &str) -> String {
    browser
        .wait()
        .for_element(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"))
        .text()
        .await
        .expect("text")
}

pub(crate) async fn click(browser: &fantoccini::Client, css: &str) {
    browser
        .wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .expect("click");
}

pub(crate) async fn type_into(browser: &fantoccini::Client, css: &str, value: &str) {
    browser
        .wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .send_keys(value)
        .await
        .expect("type");
}

async fn shot(browser: &fantoccini::Client, name: &str) {
    let png = browser.screenshot().await.expect("screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 5_000,
        "{name} renders"
    );
    keep_screenshot(name, &png);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_at_the_counter_in_chromium() {
    let srv = TestServer::start(Backend::Embedded).await;
    let (sa, official, phone) = counter_setup(&srv).await;
    let fraud = fraud_reported(&srv).await;
    let (_driver, browser) = chromium("1100,1000").await;

    // Morning: the official logs in with the password and their own phone,
    // in Serbian Cyrillic (the screenshots in docs/COUNTER.md).
    browser
        .goto(&format!("{}/counter", srv.url))
        .await
        .expect("open");
    crate::accessibility::switch_to(&browser, potvrda_i18n::Locale::SrCyrl).await;
    type_into(&browser, "#username", &official.username).await;
    type_into(&browser, "#password", official.initial_password.expose()).await;
    shot(&browser, "counter-1-login.png").await;
    click(&browser, "#submit").await;
    let number: u8 = text(&browser, "number")
        .await
        .trim()
        .parse()
        .expect("two digits");
    shot(&browser, "counter-2-waiting.png").await;
    let ch = pulled(&phone).await;
    assert_eq!(
        (ch.claims.ctx.service.as_deref(), ch.claims.ctx.own_service),
        (Some("Шалтер"), Some(OwnService::Counter))
    );
    phone
        .answer(&ch, Decision::Approve, Some(number))
        .await
        .expect("approved");
    // The page's script follows the approval into the counter.
    assert!(text(&browser, "staff").await.contains("Milica Jovanović"));
    let cookies = browser.get_all_cookies().await.expect("cookies");
    let session = cookies
        .iter()
        .find(|c| c.name() == "potvrda_counter")
        .expect("the session cookie");
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(format!("{:?}", session.same_site()), "Some(Strict)");

    // A citizen whose phone reported fraud comes to the counter.
    type_into(&browser, "#query", "jelena").await;
    click(&browser, "#search").await;
    let results = text(&browser, "results").await;
    assert!(
        results.contains(&fraud.account.username) && results.contains("Пријављена злоупотреба"),
        "{results}"
    );
    shot(&browser, "counter-3-search.png").await;
    browser
        .find(Locator::LinkText(&fraud.account.username))
        .await
        .expect("the citizen's link")
        .click()
        .await
        .expect("click");
    assert!(
        text(&browser, "fraud")
            .await
            .contains("пријавио пријаву као злоупотребу")
    );
    shot(&browser, "counter-4-fraud.png").await;
    // Identity checked: unlock.
    click(&browser, "#unlock").await;
    assert!(text(&browser, "notice").await.contains("откључан"));
    assert!(
        !citizen_summary(&srv, &sa, &fraud.account.user_id)
            .await
            .locked
    );
    assert!(browser.find(Locator::Id("fraud")).await.is_err());

    // A new citizen: the account and its sheet.
    click(&browser, "#back").await;
    let username = "ana.nikolic".to_owned();
    type_into(&browser, "#new-username", &username).await;
    type_into(&browser, "#new-name", "Ana Nikolić").await;
    type_into(&browser, "#new-email", "ana@example.rs").await;
    shot(&browser, "counter-5-new-account.png").await;
    click(&browser, "#create-submit").await;
    assert_eq!(text(&browser, "username").await, username);
    let code = text(&browser, "code").await;
    let password = text(&browser, "password").await;
    assert_eq!(code.len(), 14);
    let qr = browser
        .find(Locator::Css("#qr svg"))
        .await
        .expect("the QR code");
    let (_, _, w, h) = qr.rectangle().await.expect("its box");
    assert!(w > 100.0 && h > 100.0, "QR {w}×{h}");
    shot(&browser, "counter-6-sheet.png").await;
    let pdf = browser
        .print(fantoccini::wd::PrintConfiguration::default())
        .await
        .expect("printed");
    assert!(
        pdf.starts_with(b"%PDF") && pdf.len() > 10_000,
        "a real PDF: {} bytes",
        pdf.len()
    );
    if let Ok(dir) = std::env::var("POTVRDA_TEST_SCREENSHOTS") {
        std::fs::write(std::path::Path::new(&dir).join("counter-sheet.pdf"), &pdf).expect("saved");
    }
    // The printed code and password work.
    let ana_phone = VirtualPhone::enroll(&srv.url, &code, "Ana's phone", None)
        .await
        .expect("the printed code enrolls");
    let r = srv.login_raw(&username, &password).await;
    assert_eq!(r.status(), 201, "the printed password works");
    let _ = ana_phone.pending().await.expect("pending");

    // The phone is lost: revoke it, then reset and print a new sheet.
    click(&browser, "#back").await;
    let devices = text(&browser, "devices").await;
    assert!(devices.contains("Ana's phone"), "{devices}");
    shot(&browser, "counter-7-citizen.png").await;
    click(&browser, "#devices button.revoke").await;
    assert!(text(&browser, "notice").await.contains("опозван"));
    browser
        .find(Locator::Id("no-devices"))
        .await
        .expect("no device left");
    assert!(
        ana_phone.pending().await.is_err(),
        "the revoked phone is refused"
    );
    click(&browser, "#reset").await;
    let new_code = text(&browser, "code").await;
    assert_ne!(new_code, code);
    assert!(
        VirtualPhone::enroll(&srv.url, &code, "old", None)
            .await
            .is_err(),
        "the earlier code is void"
    );
    VirtualPhone::enroll(&srv.url, &new_code, "Ana's new phone", None)
        .await
        .expect("the new code enrolls");

    // Evening: log out.
    click(&browser, "#back").await;
    click(&browser, "#logout").await;
    browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("password"))
        .await
        .expect("the login form again");
    browser.close().await.expect("closed");
}

/// Security round 2, finding 4: the pending counter login was stored under
/// the pre-login cookie. An attacker who planted an anonymous cookie in the
/// official's browser (cookie tossing from a sibling subdomain) long-polled
/// the waiting step with it and won the staff session when the official
/// approved. Now the password step moves the login to a new cookie.
async fn a_planted_cookie_does_not_follow_the_officials_login(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let (_, official, phone) = counter_setup(&srv).await;
    let plain = || {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    };
    // The attacker takes an anonymous cookie and its login page's CSRF token.
    let attacker = plain();
    let r = attacker
        .get(format!("{}/counter", srv.url))
        .send()
        .await
        .expect("request");
    let planted = cookie_value(&set_cookie(&r).expect("cookie"));
    let csrf = csrf_of(&r.text().await.expect("body"));
    let with = |c: &str| format!("potvrda_counter={c}");
    // The official's browser carries the planted cookie and logs in.
    let official_browser = plain();
    let r = official_browser
        .post(format!("{}/counter/login", srv.url))
        .header("Cookie", with(&planted))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", &official.username),
            ("password", official.initial_password.expose()),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200, "the waiting page");
    let fresh = cookie_value(&set_cookie(&r).expect("the password step sets a new cookie"));
    assert_ne!(fresh, planted);
    let waiting = r.text().await.expect("body");
    let number: u8 = waiting
        .split(r#"id="number" aria-live="polite">"#)
        .nth(1)
        .and_then(|s| s.split('<').next())
        .and_then(|n| n.trim().parse().ok())
        .expect("the number");
    // The attacker, with the planted cookie, waits for the approval …
    let poll = {
        let (attacker, url, c) = (attacker.clone(), srv.url.clone(), with(&planted));
        tokio::spawn(async move {
            attacker
                .get(format!("{url}/counter/login/wait?wait=10"))
                .header("Cookie", c)
                .send()
                .await
                .expect("request")
                .status()
        })
    };
    let ch = pulled(&phone).await;
    phone
        .answer(&ch, Decision::Approve, Some(number))
        .await
        .expect("approved");
    assert_eq!(
        poll.await.expect("joined"),
        404,
        "the planted cookie waits for nothing"
    );
    // … and the planted cookie continues into nothing.
    let r = attacker
        .get(format!("{}/counter/login/continue", srv.url))
        .header("Cookie", with(&planted))
        .send()
        .await
        .expect("request");
    assert!(set_cookie(&r).is_none_or(|c| !c.contains(&fresh)));
    let page = attacker
        .get(format!("{}/counter", srv.url))
        .header("Cookie", with(&planted))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    assert!(
        !page.contains(r#"id="staff""#),
        "the attacker has no staff session"
    );
    // The official's own browser, with the new cookie, gets the session.
    let r = official_browser
        .get(format!("{}/counter/login/continue", srv.url))
        .header("Cookie", with(&fresh))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 303);
    let session = cookie_value(&set_cookie(&r).expect("the session cookie"));
    let page = official_browser
        .get(format!("{}/counter", srv.url))
        .header("Cookie", with(&session))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    assert!(page.contains(r#"id="staff""#), "the official is in");
}

/// Security round 2, finding 6: an admin requested a reset, created a new
/// official in the same municipality, enrolled that official's phone and
/// confirmed as them. The confirmer must predate the request and must not
/// have been created by the requester; the attempt is a high-severity alert.
async fn an_admin_cannot_be_both_pairs_of_eyes(backend: Backend) {
    let srv = TestServer::start_with(potvrda_e2e::Options {
        four_eyes_reset: true,
        ..potvrda_e2e::Options::new(backend)
    })
    .await;
    let (sa, _, _) = counter_setup(&srv).await;
    let (admin, admin_phone) = staff_with_phone(&srv, &sa, "admin", Some("bg"), "Ana Admin").await;
    // An official the admin made before the request: created by the requester.
    let (made_before, made_before_phone) = staff_with_phone(
        &srv,
        &admin_token(&srv, &admin, &admin_phone).await,
        "official",
        Some("bg"),
        "Marko",
    )
    .await;
    let c = citizen(&srv, None).await;
    let id = c.account.user_id.clone();
    let token = admin_token(&srv, &admin, &admin_phone).await;
    let r = post(
        &srv,
        &format!("/v1/admin/citizens/{id}/reset"),
        Some(&token),
        json!({}),
    )
    .await;
    assert_eq!(r.status(), 202, "a request");
    let pending: potvrda_proto::api::PendingReset = r.json().await.expect("json");
    // A minute later the admin creates an accomplice official, enrolls its phone …
    srv.clock.advance(60);
    let mut admin_phone = admin_phone;
    admin_phone.set_clock_offset(60);
    let token = admin_token(&srv, &admin, &admin_phone).await;
    let (accomplice, mut accomplice_phone) =
        staff_with_phone(&srv, &token, "official", Some("bg"), "Nikola").await;
    let mut made_before_phone = made_before_phone;
    // … and confirms as them: refused, and so is the official the admin made before.
    for (who, phone) in [
        (&accomplice, &mut accomplice_phone),
        (&made_before, &mut made_before_phone),
    ] {
        phone.set_clock_offset(60);
        let t = admin_token(&srv, who, phone).await;
        let r = post(
            &srv,
            &format!("/v1/admin/citizens/{id}/reset/confirm"),
            Some(&t),
            json!({"request_id": pending.request_id}),
        )
        .await;
        assert_eq!(r.status(), 403, "{}", who.username);
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["error"], "second_official_required");
    }
    // Nothing was reset: the old password still works.
    assert_eq!(
        srv.login_raw(&c.account.username, c.account.initial_password.expose())
            .await
            .status(),
        201
    );
    let refused: Vec<_> = srv
        .audit(&format!("user_id={id}"))
        .await
        .events
        .into_iter()
        .filter(|e| e.kind == AuditKind::FourEyesRefused)
        .collect();
    assert_eq!(refused.len(), 2, "both attempts alert");
    assert!(
        refused
            .iter()
            .all(|e| e.severity == potvrda_proto::api::Severity::High)
    );
    assert_eq!(
        refused[0].detail["reason"],
        "confirmer_created_after_request"
    );
    assert_eq!(
        refused[1].detail["reason"],
        "confirmer_created_by_requester"
    );
}

/// An admin-API token for a staff member whose phone approves.
async fn admin_token(
    srv: &TestServer,
    who: &CreateCitizenResponse,
    phone: &VirtualPhone,
) -> String {
    let r = srv
        .login_for(
            &who.username,
            who.initial_password.expose(),
            potvrda_proto::api::LoginAudience::Admin,
        )
        .await;
    assert_eq!(r.status(), 201, "admin login");
    let l: potvrda_proto::api::LoginResponse = r.json().await.expect("json");
    phone
        .answer(&pulled(phone).await, Decision::Approve, Some(l.number))
        .await
        .expect("approved");
    srv.status(&l.login_id, l.login_secret.expose(), 0)
        .await
        .access_token
        .expect("token")
}

/// Security round 2, finding 12: the counter page told the official to check
/// the citizen's identity before unlocking, but showed nothing of the
/// reported login. Now officials of the citizen's municipality see the
/// latest security events — when, from where, into what service — on the
/// citizen's page; officials elsewhere do not.
async fn the_citizens_page_shows_its_security_events_to_its_municipality(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let (sa, official, phone) = counter_setup(&srv).await;
    let token = admin_token(&srv, &official, &phone).await;
    let r = post(
        &srv,
        "/v1/admin/citizens",
        Some(&token),
        json!({"username": potvrda_e2e::unique("c"), "display_name": "Jovan Jovanović"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let account: CreateCitizenResponse = r.json().await.expect("json");
    let c = Citizen {
        phone: VirtualPhone::enroll(&srv.url, account.activation_code.expose(), "phone", None)
            .await
            .expect("enrolls"),
        account,
    };
    login(&srv, &c).await;
    c.phone
        .answer(&pulled(&c.phone).await, Decision::Fraud, None)
        .await
        .expect("reported");
    let page_for = |who: CreateCitizenResponse, phone: VirtualPhone| {
        let (srv, id) = (&srv, c.account.user_id.clone());
        async move {
            let b = Browser::new(srv);
            b.login(&who, &phone).await;
            let (status, page) = b.get(&format!("/counter/citizens/{id}")).await;
            assert_eq!(status, 200);
            page
        }
    };
    let page = page_for(official.clone(), phone).await;
    let events = between(&page, r#"<table id="events">"#, "</table>").expect("the events table");
    let fraud = events
        .split("<tr")
        .find(|row| row.contains("ПРИЈАВЉЕНА ЗЛОУПОТРЕБА"))
        .expect("the fraud report");
    assert!(
        fraud.contains("203.0.113.7") && fraud.contains("eUprava: porez na imovinu"),
        "{fraud}"
    );
    assert!(fraud.contains(r#"class="alert""#));
    assert!(events.contains("<td>пријава</td>"));
    // An official of another municipality serves the citizen, but sees no events.
    let r = post(
        &srv,
        "/v1/admin/municipalities",
        Some(&sa),
        json!({"code": "nis", "name": "Niš"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let (elsewhere, elsewhere_phone) =
        staff_with_phone(&srv, &sa, "official", Some("nis"), "Ana").await;
    let page = page_for(elsewhere, elsewhere_phone).await;
    assert!(page.contains(r#"id="name""#) && !page.contains(r#"id="events""#));
}

fn between<'a>(html: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = html.find(start)? + start.len();
    Some(&html[from..from + html[from..].find(end)?])
}

/// The official's waiting page (WCAG 2.2.1, issue 16): it shows the time
/// left and "send a new request to the phone", which needs the page's
/// CSRF token and session, supersedes the request before, stops after ten,
/// and, once the phone approved, goes into the counter like "continue".
async fn the_officials_waiting_page_renews_its_time_limit(backend: Backend) {
    let srv = TestServer::start_with(potvrda_e2e::Options {
        limits: (1000, 900, 50, 900),
        ..potvrda_e2e::Options::new(backend)
    })
    .await;
    let (_, official, phone) = counter_setup(&srv).await;
    let b = Browser::new(&srv);
    let (_, page) = b.get("/counter").await;
    let r = b
        .form(
            "/counter/login",
            &[
                ("csrf", &csrf_of(&page)),
                ("username", &official.username),
                ("password", official.initial_password.expose()),
            ],
        )
        .await;
    let html = r.text().await.expect("body");
    let seconds: i64 = between(&html, r#"id="time" class="hint" data-seconds=""#, "\"")
        .and_then(|s| s.parse().ok())
        .expect("the time left is shown");
    assert!((1..=60).contains(&seconds), "{seconds}");
    assert!(html.contains(r#"id="again""#), "{html}");
    let csrf = csrf_of(&html);
    let mut number = waiting_number(&html);
    let mut previous = pulled(&phone).await;

    // A forged token, or another browser with the page's token: nothing sent.
    let r = b.form("/counter/login/again", &[("csrf", "forged")]).await;
    assert_eq!(r.status(), 403);
    let stranger = Browser::new(&srv);
    let r = stranger
        .form("/counter/login/again", &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        phone.pending().await.expect("pull").len(),
        1,
        "no new challenge"
    );

    // Ten new requests, each superseding the one before.
    for n in 1..=10 {
        let r = b.form("/counter/login/again", &[("csrf", &csrf)]).await;
        assert_eq!(r.status(), 200, "resend {n}");
        let html = r.text().await.expect("html");
        assert_eq!(html.contains(r#"id="again""#), n < 10, "resend {n}");
        let fresh = pulled(&phone).await;
        assert_ne!(fresh.claims.cid, previous.claims.cid, "resend {n}");
        assert_eq!(fresh.claims.ctx.own_service, Some(OwnService::Counter));
        assert!(
            phone
                .answer(&previous, Decision::Approve, Some(number))
                .await
                .is_err(),
            "resend {n}: the one before is superseded"
        );
        previous = fresh;
        number = waiting_number(&html);
    }
    // The eleventh is "continue": the phone is not asked again.
    let r = b.form("/counter/login/again", &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), 200);
    let pending = phone.pending().await.expect("pull");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].claims.cid, previous.claims.cid, "no eleventh");
    // Approved: "again" goes into the counter.
    phone
        .answer(&previous, Decision::Approve, Some(number))
        .await
        .expect("approved");
    let r = b.form("/counter/login/again", &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), 303);
    let (_, home) = b.get("/counter").await;
    assert!(home.contains(r#"id="staff""#), "logged in: {home}");

    // Approved with resends left: "again" goes in, the phone is not asked again.
    let b = Browser::new(&srv);
    let (_, page) = b.get("/counter").await;
    let html = b
        .form(
            "/counter/login",
            &[
                ("csrf", &csrf_of(&page)),
                ("username", &official.username),
                ("password", official.initial_password.expose()),
            ],
        )
        .await
        .text()
        .await
        .expect("body");
    phone
        .answer(
            &pulled(&phone).await,
            Decision::Approve,
            Some(waiting_number(&html)),
        )
        .await
        .expect("approved");
    let r = b
        .form("/counter/login/again", &[("csrf", &csrf_of(&html))])
        .await;
    assert_eq!(r.status(), 303);
    assert!(
        phone.pending().await.expect("pull").is_empty(),
        "no new challenge"
    );
}

/// The number on a waiting page.
fn waiting_number(html: &str) -> u8 {
    between(html, r#"id="number" aria-live="polite">"#, "<")
        .and_then(|n| n.trim().parse().ok())
        .expect("the waiting page shows the number")
}
