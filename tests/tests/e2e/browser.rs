//! The OpenID Connect login in a real browser: headless Chromium driven
//! through WebDriver (chromedriver), from the client's link to its callback,
//! with the JavaScript long-poll following the phone's approval.

use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    RedirectUrl, Scope, TokenResponse,
};
use potvrda_e2e::{Backend, Options, TestServer};
use potvrda_proto::jose::Decision;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// chromedriver on a free port, killed on drop.
pub(crate) struct Driver {
    child: Child,
    url: String,
}

/// Headless Chromium of this size (`"900,1300"`), through its own chromedriver.
pub(crate) async fn chromium(window: &str) -> (Driver, fantoccini::Client) {
    let driver = Driver::start(
        "chromedriver",
        "Debian `apt-get install -y chromium chromium-driver`",
    )
    .await;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({"binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", format!("--window-size={window}")]}),
    );
    let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session");
    (driver, browser)
}

/// Headless Firefox ESR with these preferences, through geckodriver.
pub(crate) async fn firefox(prefs: serde_json::Value) -> (Driver, fantoccini::Client) {
    let driver = Driver::start(
        "geckodriver",
        "`cargo install geckodriver` and Debian `apt-get install -y firefox-esr`",
    )
    .await;
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), "firefox".into());
    caps.insert(
        "moz:firefoxOptions".into(),
        serde_json::json!({"binary": "/usr/bin/firefox-esr", "args": ["-headless"], "prefs": prefs}),
    );
    let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Firefox session");
    (driver, browser)
}

/// Keep a screenshot for the documentation when `POTVRDA_TEST_SCREENSHOTS=<dir>` is set.
pub(crate) fn keep_screenshot(name: &str, png: &[u8]) {
    if let Ok(dir) = std::env::var("POTVRDA_TEST_SCREENSHOTS") {
        std::fs::write(std::path::Path::new(&dir).join(name), png).expect("screenshot saved");
    }
}

impl Driver {
    async fn start(program: &str, install: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        // A process group of its own: the browser it starts is killed with
        // it, even when a failing test never closes its session.
        let child = Command::new(program)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{program} is needed ({e}): {install} (scripts/test.sh installs it)")
            });
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http.get(format!("{url}/status")).send().await
                && r.status() == 200
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{program} ready within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A relying party's two pages: `/` with a "log in" link, `/cb` that takes
/// the browser back and reports the query it arrived with.
pub(crate) async fn relying_party_pages(
    listener: tokio::net::TcpListener,
    login_link: String,
) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buf = [0u8; 2048];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let body = if path.starts_with("/cb") {
                let _ = tx.send(path);
                "<!doctype html><title>Portal</title><p id=\"done\">Welcome back.</p>".to_owned()
            } else {
                format!(
                    "<!doctype html><title>Portal</title><a id=\"login\" href=\"{login_link}\">Prijava preko Potvrde</a>"
                )
            };
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(answer.as_bytes()).await;
        }
    });
    rx
}

async fn http(
    req: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, reqwest::Error> {
    let (parts, body) = req.into_parts();
    let resp = reqwest::Client::new()
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let mut out = openidconnect::HttpResponse::new(Vec::new());
    *out.status_mut() = resp.status();
    *out.headers_mut() = resp.headers().clone();
    *out.body_mut() = resp.bytes().await?.to_vec();
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_citizen_logs_in_to_a_service_in_chromium() {
    let rp_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let rp = format!("http://{}", rp_listener.local_addr().expect("addr"));
    let callback = format!("{rp}/cb");
    let srv = TestServer::start_with(Options {
        oidc_clients: Some(
            serde_json::json!([{"client_id": "porez", "client_secret": "porez-secret-0123456789",
                "redirect_uris": [callback], "name": "Poreska uprava"}])
            .to_string(),
        ),
        ..Options::new(Backend::Embedded)
    })
    .await;
    let c = citizen(&srv, None).await;
    let meta =
        CoreProviderMetadata::discover_async(IssuerUrl::new(srv.url.clone()).expect("url"), &http)
            .await
            .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        meta,
        ClientId::new("porez".into()),
        Some(ClientSecret::new("porez-secret-0123456789".into())),
    )
    .set_redirect_uri(RedirectUrl::new(callback.clone()).expect("uri"));
    let (pkce, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(pkce)
        .url();
    let link = auth_url.as_str().replace('&', "&amp;");
    let mut callbacks = relying_party_pages(rp_listener, link).await;

    let (_driver, browser) = chromium("800,900").await;

    browser.goto(&rp).await.expect("the portal");
    browser
        .find(Locator::Id("login"))
        .await
        .expect("the portal's link")
        .click()
        .await
        .expect("click");
    browser
        .wait()
        .for_element(Locator::Css(r#"input[name="username"]"#))
        .await
        .expect("the login page")
        .send_keys(&c.account.username)
        .await
        .expect("type");
    browser
        .find(Locator::Css(r#"input[name="password"]"#))
        .await
        .expect("password field")
        .send_keys(c.account.initial_password.expose())
        .await
        .expect("type");
    assert_eq!(
        browser
            .find(Locator::Id("service"))
            .await
            .expect("service")
            .text()
            .await
            .expect("text"),
        "Poreska uprava"
    );
    browser
        .find(Locator::Id("submit"))
        .await
        .expect("submit")
        .click()
        .await
        .expect("click");
    let number: u8 = browser
        .wait()
        .for_element(Locator::Id("number"))
        .await
        .expect("the waiting page")
        .text()
        .await
        .expect("text")
        .trim()
        .parse()
        .expect("two digits");
    let shot = browser.screenshot().await.expect("screenshot");
    keep_screenshot("oidc-waiting.png", &shot);
    assert!(
        shot.starts_with(b"\x89PNG") && shot.len() > 1000,
        "the waiting page renders"
    );
    // The citizen approves on the phone; the page's script takes the browser back.
    let ch = pulled(&c.phone).await;
    assert_eq!(ch.claims.ctx.service.as_deref(), Some("Poreska uprava"));
    c.phone
        .answer(&ch, Decision::Approve, Some(number))
        .await
        .expect("approved");
    let arrived = tokio::time::timeout(Duration::from_secs(30), callbacks.recv())
        .await
        .expect("the browser reaches the callback within 30 s")
        .expect("a callback");
    browser
        .wait()
        .for_element(Locator::Id("done"))
        .await
        .expect("the portal's callback page");
    browser.close().await.expect("session closed");

    let back = url::Url::parse(&format!("{rp}{arrived}")).expect("url");
    let q = |name: &str| {
        back.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(q("state").as_deref(), Some(state.secret().as_str()));
    let tokens = client
        .exchange_code(AuthorizationCode::new(q("code").expect("code")))
        .expect("token endpoint")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("the code from the browser is good");
    let claims = tokens
        .id_token()
        .expect("id token")
        .claims(&client.id_token_verifier(), &nonce)
        .expect("verifies");
    assert_eq!(claims.subject().as_str(), c.account.user_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_activation_sheet_prints_from_chromium() {
    let srv = TestServer::start(Backend::Embedded).await;
    let username = potvrda_e2e::unique("jelena");
    let r = srv
        .http
        .post(format!("{}/v1/admin/citizens", srv.url))
        .bearer_auth(&srv.token)
        .header("Accept", "text/html")
        .json(&serde_json::json!({"username": username, "display_name": "Jelena Petrović"}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 201);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe"));
    let html = r.text().await.expect("html");
    for needle in [
        username.as_str(),
        "Jelena Petrović",
        "<svg",
        "potvrda://activate?server=",
        // The official's language (the default: Serbian in Cyrillic), and
        // only that one.
        "<html lang=\"sr-Cyrl\">",
        "Упутство",
    ] {
        assert!(html.contains(needle), "the sheet shows {needle}");
    }
    // The secrets are on it, and the QR code carries the activation URI with this code.
    let code = html
        .split(r#"<td id="code" class="secret">"#)
        .nth(1)
        .and_then(|s| s.split('<').next())
        .expect("code")
        .to_owned();
    assert_eq!(code.len(), 14);
    let encoded: String = url::form_urlencoded::byte_serialize(srv.url.as_bytes()).collect();
    let shown = html
        .split(r#"<p class="uri">"#)
        .nth(1)
        .and_then(|s| s.split('<').next())
        .expect("the URI under the QR code")
        .replace("&amp;", "&")
        .replace("&#38;", "&")
        .replace("&#x2f;", "/")
        .replace("&#47;", "/");
    assert_eq!(
        shown,
        format!("potvrda://activate?server={encoded}&code={code}")
    );
    // It enrolls a phone, as the citizen would by typing it.
    VirtualPhoneCheck::enroll(&srv, &code).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("sheet.html");
    std::fs::write(&file, &html).expect("write");
    let (_driver, browser) = chromium("900,1300").await;
    browser
        .goto(&format!("file://{}", file.display()))
        .await
        .expect("open the sheet");
    let qr = browser
        .find(Locator::Css("#qr svg"))
        .await
        .expect("the QR code is drawn");
    let (_, _, w, h) = qr.rectangle().await.expect("its box");
    assert!(
        w > 100.0 && h > 100.0,
        "a QR code big enough to scan: {w}×{h}"
    );
    let shot = browser.screenshot().await.expect("screenshot");
    assert!(
        shot.starts_with(b"\x89PNG") && shot.len() > 10_000,
        "the sheet renders"
    );
    keep_screenshot("activation-sheet.png", &shot);
    browser.close().await.expect("closed");
}

struct VirtualPhoneCheck;

impl VirtualPhoneCheck {
    async fn enroll(srv: &TestServer, code: &str) {
        potvrda_mobile_core::phone::VirtualPhone::enroll(&srv.url, code, "phone", None)
            .await
            .expect("the printed code enrolls a phone");
    }
}
