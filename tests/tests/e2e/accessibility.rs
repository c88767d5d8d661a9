//! Every page in every language, checked in a real browser (issue 16):
//! headless Chromium walks the OpenID login (its form, a refused password,
//! the waiting page, a refused offline code, the consent, the logout
//! confirmation, the logged-out and error pages) and the counter (its
//! login, a refused password, the waiting page, the search, the sheet, a
//! citizen, a refused action) in each locale, chosen with the pages' own
//! language switch. On each page:
//!
//! - axe-core (npm, pinned) runs the WCAG 2.0, 2.1 and 2.2 A and AA rules:
//!   no violation;
//! - `<html lang>` is the locale, no message is missing (`⟦id⟧`), and no
//!   text of another locale's catalogue is shown outside an element that
//!   says its own `lang` (the switch's language names);
//! - at 320 CSS px (WCAG 1.4.10) nothing scrolls sideways.

use std::time::Duration;

use fantoccini::{Client, Locator};
use potvrda_e2e::{Backend, Options, TestServer};
use potvrda_i18n::{Locale, catalog};
use potvrda_proto::jose::Decision;
use serde_json::json;

use crate::browser::chromium;
use crate::counter::{click, counter_setup, type_into};
use crate::support::*;

/// The WCAG levels checked: every A and AA rule of 2.0, 2.1 and 2.2.
const TAGS: [&str; 5] = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"];

/// The rules axe ran, for the note (and a check that they are many).
const RULES: &str = "const done = arguments[arguments.length - 1];
    done(axe.getRules(arguments[0]).map((r) => r.ruleId));";

const AUDIT: &str = "const done = arguments[arguments.length - 1];
    axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']})
      .then((r) => done(r.violations.map((v) => ({id: v.id, impact: v.impact,
          nodes: v.nodes.map((n) => n.target.join(' ') + ': ' + n.failureSummary)}))))
      .catch((e) => done([{id: 'axe-error', nodes: [String(e)]}]));";

/// The page's text in its own language: everything but the elements that
/// say they are in another.
const OWN_TEXT: &str = "const lang = document.documentElement.lang;
    const body = document.body.cloneNode(true);
    body.querySelectorAll('[lang], script').forEach((e) => { if (e.tagName === 'SCRIPT' || e.lang !== lang) e.remove(); });
    return {lang, text: document.title + '\\n' + body.textContent};";

struct Checker {
    axe: String,
    pages: usize,
}

impl Checker {
    async fn new() -> Self {
        let dir = crate::rp_library::installed().await;
        let axe = std::fs::read_to_string(dir.join("node_modules/axe-core/axe.min.js"))
            .expect("axe-core from npm");
        Self { axe, pages: 0 }
    }

    /// Wait for `css` on the page, then check it.
    async fn arrive(&mut self, browser: &Client, locale: Locale, css: &str, name: &str) {
        browser
            .wait()
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{name} ({locale}): {css}: {e}"));
        self.page(browser, locale, name).await;
    }

    /// Check the page `browser` shows, named `name`, in `locale`.
    async fn page(&mut self, browser: &Client, locale: Locale, name: &str) {
        self.pages += 1;
        browser.execute(&self.axe, vec![]).await.expect("axe loads");
        let violations = browser
            .execute_async(AUDIT, vec![json!(TAGS)])
            .await
            .expect("axe runs");
        assert_eq!(
            violations,
            json!([]),
            "{name} ({locale}): WCAG violations: {violations:#}"
        );
        let own = browser.execute(OWN_TEXT, vec![]).await.expect("text");
        assert_eq!(own["lang"], locale.tag(), "{name}: <html lang>");
        let text = own["text"].as_str().expect("text").to_owned();
        assert!(
            !text.contains('⟦'),
            "{name} ({locale}): a missing message: {text}"
        );
        if let Some(foreign) = foreign_text(locale, &text) {
            panic!("{name} ({locale}) shows {foreign:?}: {text}");
        }
        reflows(browser, name).await;
    }
}

/// A message of another locale on a `locale` page (long enough to be
/// unambiguous; messages with arguments by their longest fixed part).
fn foreign_text(locale: Locale, text: &str) -> Option<String> {
    let c = catalog();
    for other in Locale::ALL.into_iter().filter(|l| *l != locale) {
        for id in c.ids(other) {
            let theirs = c.text(other, &id);
            // The same words in two locales: only names (the brand) may be.
            if theirs == c.text(locale, &id)
                && (potvrda_i18n::NAMES.contains(&id.as_str()) || !potvrda_i18n::sentence(&theirs))
            {
                continue;
            }
            let fixed = theirs
                .split(['{', '}'])
                .max_by_key(|part| part.chars().count())
                .unwrap_or_default()
                .trim();
            if potvrda_i18n::sentence(fixed) && text.contains(fixed) {
                return Some(format!("{other} {id}: {fixed}"));
            }
        }
    }
    None
}

/// At 320 CSS px wide the page does not scroll sideways (WCAG 1.4.10).
async fn reflows(browser: &Client, name: &str) {
    browser.set_window_size(320, 900).await.expect("narrow");
    let wide = browser
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth,
                [...document.querySelectorAll('body *')]
                  .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
                  .map((e) => e.tagName + '#' + e.id + '.' + e.className).slice(0, 8)];",
            vec![],
        )
        .await
        .expect("widths");
    browser.set_window_size(1000, 1000).await.expect("back");
    assert!(
        wide[0].as_i64() <= wide[1].as_i64(),
        "{name}: scrolls sideways at 320 px: {wide}"
    );
}

/// Choose `locale` with the page's language switch.
pub(crate) async fn switch_to(browser: &Client, locale: Locale) {
    browser
        .find(Locator::Id("lang-choice"))
        .await
        .expect("the switch")
        .select_by_value(locale.tag())
        .await
        .expect("choose");
    click(browser, "#lang-apply").await;
    browser
        .wait()
        .for_element(Locator::Css(&format!("html[lang=\"{}\"]", locale.tag())))
        .await
        .expect("the page in the chosen language");
}

const RP_NAME: &str = "Упис у вртић";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_in_every_language_passes_axe() {
    let rp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let callback = format!("http://{}/cb", rp.local_addr().expect("addr"));
    let mut callbacks = crate::browser::relying_party_pages(rp, String::new()).await;
    let srv = TestServer::start_with(Options {
        oidc_clients: Some(
            json!([{"client_id": "vrtic", "redirect_uris": [callback], "name": RP_NAME,
                    "require_consent": true}])
            .to_string(),
        ),
        app_dir: Some(crate::mobile::web_app().await),
        ..Options::new(Backend::Embedded)
    })
    .await;
    let (_, official, official_phone) = counter_setup(&srv).await;
    let c = citizen(&srv, None).await;
    let mut check = Checker::new().await;
    let (_driver, browser) = chromium("1000,1000").await;
    let rules = browser
        .execute(&check.axe, vec![])
        .await
        .and(browser.execute_async(RULES, vec![json!(TAGS)]).await)
        .expect("the rules");
    let rules = rules.as_array().map_or(0, Vec::len);
    eprintln!("accessibility: axe-core rules checked: {rules}");
    assert!(rules > 50, "{rules} rules");

    for locale in Locale::ALL {
        browser
            .goto(&format!("{}/counter", srv.url))
            .await
            .expect("the counter");
        switch_to(&browser, locale).await;
        counter_pages(
            &mut check,
            &browser,
            &srv,
            locale,
            (&official, &official_phone),
        )
        .await;
        oidc_pages(
            &mut check,
            &browser,
            (&srv, &callback),
            locale,
            &c,
            &mut callbacks,
        )
        .await;
        companion_pages(&mut check, &browser, &srv, locale).await;
    }
    eprintln!("accessibility: {} pages × locales checked", check.pages);
    browser.close().await.expect("closed");
}

async fn counter_pages(
    check: &mut Checker,
    browser: &Client,
    srv: &TestServer,
    locale: Locale,
    (official, phone): (
        &potvrda_proto::api::CreateCitizenResponse,
        &potvrda_mobile_core::phone::VirtualPhone,
    ),
) {
    catch_up(srv);
    check.page(browser, locale, "counter login").await;
    type_into(browser, "#username", &official.username).await;
    type_into(browser, "#password", "not the password").await;
    click(browser, "#submit").await;
    check
        .arrive(browser, locale, "#error", "counter login, refused")
        .await;
    type_into(browser, "#username", &official.username).await;
    type_into(browser, "#password", official.initial_password.expose()).await;
    click(browser, "#submit").await;
    let number: u8 = crate::counter::text(browser, "number")
        .await
        .trim()
        .parse()
        .expect("two digits");
    check.page(browser, locale, "counter waiting").await;
    catch_up(srv);
    let ch = pulled(phone).await;
    phone
        .answer(&ch, Decision::Approve, Some(number))
        .await
        .expect("approved");
    check
        .arrive(browser, locale, "#staff", "counter home")
        .await;
    type_into(browser, "#query", "a").await;
    click(browser, "#search").await;
    check
        .arrive(browser, locale, "#results, #no-results", "counter search")
        .await;
    type_into(browser, "#new-name", "Ана Николић").await;
    click(browser, "#create-submit").await;
    check.arrive(browser, locale, "#code", "sheet").await;
    click(browser, "#back").await;
    check
        .arrive(browser, locale, "#name", "counter citizen")
        .await;
    browser
        .goto(&format!("{}/counter/citizens/u-no-such-citizen", srv.url))
        .await
        .expect("goto");
    check
        .arrive(browser, locale, "#message", "counter refused")
        .await;
    browser
        .goto(&format!("{}/counter", srv.url))
        .await
        .expect("goto");
    click(browser, "#logout").await;
    browser
        .wait()
        .for_element(Locator::Id("password"))
        .await
        .expect("out");
}

/// The browser companion in `locale` (its own switch): the activation and
/// the recovery codes the first time, then a pending login's card.
async fn companion_pages(check: &mut Checker, browser: &Client, srv: &TestServer, locale: Locale) {
    catch_up(srv);
    // A new citizen each time: the activation pages in every language.
    let owner = &srv.create_citizen(&potvrda_e2e::unique("app")).await;
    let app = format!("{}/app/", srv.url);
    browser.goto(&app).await.expect("the companion");
    let ready = || async {
        browser
            .wait()
            .for_element(Locator::Css("body[data-ready=true]"))
            .await
            .expect("loaded");
    };
    ready().await;
    // The device activated in the language before is forgotten.
    let forgotten = browser
        .execute_async(FORGET_DEVICE, vec![])
        .await
        .expect("the script runs");
    assert_eq!(forgotten, json!(true), "the saved device deleted");
    browser.goto(&app).await.expect("the companion again");
    ready().await;
    crate::mobile::speak(browser, locale.tag()).await;
    browser
        .wait()
        .for_element(Locator::Css("#enroll:not([hidden])"))
        .await
        .expect("the activation page");
    check.page(browser, locale, "companion activation").await;
    type_into(browser, "#code", owner.activation_code.expose()).await;
    type_into(browser, "#pin", "482913").await;
    type_into(browser, "#pin2", "482913").await;
    click(browser, "#enroll-button").await;
    browser
        .wait()
        .for_element(Locator::Css("#recovery:not([hidden])"))
        .await
        .expect("the recovery codes");
    check
        .page(browser, locale, "companion recovery codes")
        .await;
    click(browser, "#codes-done").await;
    let r = srv
        .login_raw(&owner.username, owner.initial_password.expose())
        .await;
    assert_eq!(r.status(), 201);
    check
        .arrive(
            browser,
            locale,
            ".login[data-id] .approve",
            "companion login",
        )
        .await;
}

/// Deletes the companion's saved device (its IndexedDB record), so that
/// the next load shows the activation page.
const FORGET_DEVICE: &str = r#"
const done = arguments[arguments.length - 1];
const open = indexedDB.open('potvrda', 1);
open.onupgradeneeded = () => open.result.createObjectStore('kv');
open.onsuccess = () => {
  const tx = open.result.transaction('kv', 'readwrite');
  tx.objectStore('kv').delete('device');
  tx.oncomplete = () => { open.result.close(); done(true); };
  tx.onerror = () => done(String(tx.error));
};
open.onerror = () => done(String(open.error));
"#;

/// The authorization request of `client` asking again for consent.
fn authorize(srv: &TestServer, client: &str, callback: &str) -> String {
    format!(
        "{}/oauth2/authorize?client_id={client}&redirect_uri={}&response_type=code\
         &scope=openid%20profile%20email&state=s&nonce=n&prompt=consent\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        srv.url,
        url::form_urlencoded::byte_serialize(callback.as_bytes()).collect::<String>()
    )
}

async fn oidc_pages(
    check: &mut Checker,
    browser: &Client,
    (srv, callback): (&TestServer, &str),
    locale: Locale,
    c: &Citizen,
    callbacks: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    catch_up(srv);
    browser
        .goto(&authorize(srv, "vrtic", callback))
        .await
        .expect("authorize");
    check.page(browser, locale, "login").await;
    type_into(browser, "#username", &c.account.username).await;
    type_into(browser, "#password", "not the password").await;
    click(browser, "#submit").await;
    check
        .arrive(browser, locale, "#error", "login, refused")
        .await;
    type_into(browser, "#username", &c.account.username).await;
    type_into(browser, "#password", c.account.initial_password.expose()).await;
    click(browser, "#submit").await;
    let number: u8 = crate::counter::text(browser, "number")
        .await
        .trim()
        .parse()
        .expect("two digits");
    check.page(browser, locale, "waiting").await;
    click(browser, "#offline summary").await;
    type_into(browser, "#code", "000000").await;
    click(browser, "#code-submit").await;
    check
        .arrive(browser, locale, "#code-error", "waiting, code refused")
        .await;
    catch_up(srv);
    let ch = pulled(&c.phone).await;
    c.phone
        .answer(&ch, Decision::Approve, Some(number))
        .await
        .expect("approved");
    check.arrive(browser, locale, "#allow", "consent").await;
    click(browser, "#allow").await;
    tokio::time::timeout(Duration::from_secs(20), callbacks.recv())
        .await
        .expect("back at the service")
        .expect("a callback");
    browser
        .goto(&format!("{}/oauth2/logout", srv.url))
        .await
        .expect("logout");
    check.arrive(browser, locale, "#logout", "logout").await;
    click(browser, "#logout").await;
    check
        .arrive(browser, locale, "#message", "logged out")
        .await;
    browser
        .goto(&authorize(srv, "no-such-client", callback))
        .await
        .expect("authorize");
    check.arrive(browser, locale, "#message", "error").await;
}

/// WCAG 2.2.1 on the waiting page: the time left is shown in the page's
/// grammar, a warning is announced 20 s before the end, and one button
/// sends a new request to the phone (superseding the first) without the
/// password again; the new one logs the citizen in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_time_limit_is_shown_warned_and_renewed() {
    let rp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let callback = format!("http://{}/cb", rp.local_addr().expect("addr"));
    let mut callbacks = crate::browser::relying_party_pages(rp, String::new()).await;
    let srv = TestServer::start_with(Options {
        oidc_clients: Some(
            json!([{"client_id": "vrtic", "redirect_uris": [callback], "name": RP_NAME}])
                .to_string(),
        ),
        ..Options::new(Backend::Embedded)
    })
    .await;
    let c = citizen(&srv, None).await;
    let (_driver, browser) = chromium("1000,1000").await;
    browser
        .goto(&authorize(&srv, "vrtic", &callback))
        .await
        .expect("authorize");
    switch_to(&browser, Locale::SrCyrl).await;
    type_into(&browser, "#username", &c.account.username).await;
    type_into(&browser, "#password", c.account.initial_password.expose()).await;
    click(&browser, "#submit").await;
    let first = crate::counter::text(&browser, "number").await;
    let stale = pulled(&c.phone).await;

    // 45 s later (the server's clock), the page says 15 s are left, in
    // Serbian's plural, and warns.
    srv.clock.advance(45);
    let request = browser
        .find(Locator::Css("#again-form input[name=request]"))
        .await
        .expect("the request")
        .attr("value")
        .await
        .expect("value")
        .expect("an id");
    browser
        .goto(&format!(
            "{}/oauth2/authorize/continue?request={request}",
            srv.url
        ))
        .await
        .expect("the waiting page again");
    let time = crate::counter::text(&browser, "time").await;
    // (The page counts down by the browser's clock: a slow machine reads
    // it a few seconds later; 11 to 15 all take the form "секунди".)
    assert!(
        (11..=15).any(|n| time == format!("Захтев важи још {n} секунди.")),
        "{time}"
    );
    assert_eq!(
        crate::counter::text(&browser, "time-warning").await,
        catalog().text(Locale::SrCyrl, "waiting-time-warning")
    );
    check_again(&browser).await;
    srv.clock.advance(-45);

    // One action: a new request, a new number, the first one withdrawn.
    click(&browser, "#again").await;
    browser
        .wait()
        .for_element(Locator::Css("#time-warning:empty"))
        .await
        .expect("a fresh time limit");
    let number: u8 = crate::counter::text(&browser, "number")
        .await
        .trim()
        .parse()
        .expect("two digits");
    catch_up(&srv);
    let fresh = pulled(&c.phone).await;
    assert_ne!(
        fresh.claims.cid, stale.claims.cid,
        "a new challenge, not {first}"
    );
    assert!(
        c.phone
            .answer(&stale, Decision::Approve, Some(number))
            .await
            .is_err(),
        "the first request is superseded"
    );
    c.phone
        .answer(&fresh, Decision::Approve, Some(number))
        .await
        .expect("approved");
    click(&browser, "#allow").await;
    let Ok(back) = tokio::time::timeout(Duration::from_secs(20), callbacks.recv()).await else {
        panic!(
            "not back at the service: {:?} {:?}",
            browser.current_url().await,
            browser.source().await
        );
    };
    let back = back.expect("a callback");
    assert!(back.starts_with("/cb?code="), "{back}");
    browser.close().await.expect("closed");
}

/// The warned page still passes axe.
async fn check_again(browser: &Client) {
    let mut check = Checker::new().await;
    check.page(browser, Locale::SrCyrl, "waiting, warned").await;
}

/// The official prints the sheet in the citizen's language, whatever the
/// counter's own (issue 16): for each locale, Chromium's PDF of the sheet
/// is one A4 page whose every font is embedded (`pdffonts`), and whose
/// text (`pdftotext`) is the catalogue's, in that locale: a glyph drawn
/// as a box would not come back as its letter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sheet_prints_in_the_citizens_language_on_one_page() {
    let srv = TestServer::start(Backend::Embedded).await;
    let (_, official, phone) = counter_setup(&srv).await;
    let (_driver, browser) = chromium("1000,1000").await;
    browser
        .goto(&format!("{}/counter", srv.url))
        .await
        .expect("counter");
    switch_to(&browser, Locale::SrCyrl).await;
    type_into(&browser, "#username", &official.username).await;
    type_into(&browser, "#password", official.initial_password.expose()).await;
    click(&browser, "#submit").await;
    let number: u8 = crate::counter::text(&browser, "number")
        .await
        .trim()
        .parse()
        .expect("two digits");
    catch_up(&srv);
    let ch = pulled(&phone).await;
    phone
        .answer(&ch, Decision::Approve, Some(number))
        .await
        .expect("approved");
    browser
        .wait()
        .for_element(Locator::Id("staff"))
        .await
        .expect("in");
    let dir = tempfile::tempdir().expect("tmp");
    for locale in Locale::ALL {
        browser
            .goto(&format!("{}/counter", srv.url))
            .await
            .expect("home");
        type_into(&browser, "#new-name", "Ђорђе Šandor Nađ").await;
        browser
            .find(Locator::Id("new-locale"))
            .await
            .expect("the sheet's language")
            .select_by_value(locale.tag())
            .await
            .expect("choose");
        click(&browser, "#create-submit").await;
        browser
            .wait()
            .for_element(Locator::Css(&format!(
                "html[lang=\"{}\"] #code",
                locale.tag()
            )))
            .await
            .expect("the sheet in the citizen's language");
        let pdf = browser
            .print(fantoccini::wd::PrintConfiguration::default())
            .await
            .expect("printed");
        let file = dir.path().join(format!("{locale}.pdf"));
        std::fs::write(&file, &pdf).expect("saved");
        let run = |tool: &str, args: &[&str]| {
            let out = std::process::Command::new(tool)
                .args(args)
                .arg(&file)
                .args(if tool == "pdftotext" {
                    &["-"][..]
                } else {
                    &[][..]
                })
                .output()
                .unwrap_or_else(|e| {
                    panic!("{tool} (Debian poppler-utils, scripts/test.sh installs it): {e}")
                });
            assert!(
                out.status.success(),
                "{tool}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let info = run("pdfinfo", &[]);
        assert!(
            info.lines()
                .any(|l| l.starts_with("Pages:") && l.ends_with(" 1")),
            "{locale}: one page: {info}"
        );
        let fonts = run("pdffonts", &[]);
        let rows: Vec<&str> = fonts.lines().skip(2).collect();
        assert!(!rows.is_empty(), "{locale}: fonts: {fonts}");
        for row in &rows {
            let cols: Vec<&str> = row.split_whitespace().collect();
            // name type [encoding…] emb sub uni object ID
            let emb = cols[cols.len() - 5];
            assert_eq!(emb, "yes", "{locale}: a font not embedded: {row}");
        }
        let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        let text = words(&run("pdftotext", &["-layout"]));
        for id in [
            "sheet-title",
            "sheet-code",
            "sheet-step-install",
            "sheet-footer",
        ] {
            let want = words(&catalog().text(locale, id));
            assert!(
                text.contains(&want),
                "{locale}: {id} {want:?} not in the PDF: {text}"
            );
        }
        assert!(
            text.contains("Ђорђе Šandor Nađ"),
            "{locale}: the name as written"
        );
    }
    browser.close().await.expect("closed");
}
