//! The mobile companion through its real bindings: the Python bindings
//! uniffi generates, driven by a Python script against a live server; the
//! committed Kotlin and Swift bindings checked against what the pinned
//! generator makes of the library today.

use std::path::{Path, PathBuf};

use potvrda_e2e::{Backend, TestServer};
use tokio::sync::OnceCell;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Kotlin, Swift and Python generated from the library as built now
/// (`scripts/bindings.sh`, once per test run).
async fn generated() -> &'static Path {
    static DIR: OnceCell<PathBuf> = OnceCell::const_new();
    DIR.get_or_init(|| async {
        let out = std::env::temp_dir().join(format!("potvrda-bindings-{}", std::process::id()));
        let status = tokio::process::Command::new("bash")
            .arg(workspace().join("scripts/bindings.sh"))
            .arg(&out)
            .status()
            .await
            .expect("bash runs");
        assert!(status.success(), "scripts/bindings.sh failed");
        out
    })
    .await
}

/// The sheet's QR text for a server on this machine.
fn activation_uri(server: &str, code: &str) -> String {
    let server: String = url::form_urlencoded::byte_serialize(server.as_bytes()).collect();
    format!("potvrda://activate?server={server}&code={code}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_bindings_enroll_and_approve_a_login() {
    let bindings = generated().await;
    let srv = TestServer::start(Backend::Embedded).await;
    let account = srv.create_citizen(&potvrda_e2e::unique("py")).await;
    let out = tokio::process::Command::new("python3")
        .arg(workspace().join("tests/python/bindings_login.py"))
        .env("PYTHONPATH", bindings.join("python"))
        .env("POTVRDA_URL", &srv.url)
        .env(
            "POTVRDA_ACTIVATION",
            activation_uri(&srv.url, account.activation_code.expose()),
        )
        .env("POTVRDA_USERNAME", &account.username)
        .env("POTVRDA_PASSWORD", account.initial_password.expose())
        .env("POTVRDA_PORTAL_CLIENT", potvrda_e2e::PORTAL_CLIENT)
        .env("POTVRDA_PORTAL_SECRET", potvrda_e2e::PORTAL_SECRET)
        .env("POTVRDA_PORTAL_NAME", potvrda_e2e::PORTAL_NAME)
        .output()
        .await
        .expect("python3 runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("enrolled and approved"), "{stdout}");
    // The server saw what the script says: three approvals (the first
    // login, the second phone's addition, the login both phones were
    // asked), and a withdrawal pushed to the phone that did not answer.
    let events = srv
        .audit(&format!("user_id={}&limit=1000", account.user_id))
        .await
        .events;
    let approved: Vec<_> = events
        .iter()
        .filter(|e| e.kind == potvrda_proto::api::AuditKind::LoginApproved)
        .collect();
    assert_eq!(approved.len(), 3, "{events:?}");
    let answered_by = approved[2].detail["device_id"].clone();
    let withdrawn: Vec<_> = events
        .iter()
        .filter(|e| e.kind == potvrda_proto::api::AuditKind::PushSent)
        .filter(|e| e.detail.get("withdrawal").is_some())
        .filter(|e| e.detail["login_id"] == approved[2].detail["login_id"])
        .collect();
    assert_eq!(withdrawn.len(), 1, "{events:?}");
    assert_ne!(withdrawn[0].detail["device_id"], answered_by);
    srv.stop().await;
}

/// The generated Kotlin, compiled with the npm registry's Kotlin compiler
/// together with tests/kotlin/BindingsLogin.kt and every Kotlin listing of
/// docs/MOBILE.md (scripts/kotlin.sh), run on the JVM with JNA through the
/// built library against a live server (issue 15): enroll from the QR text,
/// a raw RFC 8291 push to the program's own endpoint, an approval refused
/// by the citizen's prompt and then given, a fraud report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kotlin_bindings_enroll_push_approve_and_report_fraud() {
    let bindings = generated().await;
    let status = tokio::process::Command::new("bash")
        .arg(workspace().join("scripts/kotlin.sh"))
        .arg(bindings)
        .status()
        .await
        .expect("bash runs");
    assert!(status.success(), "scripts/kotlin.sh failed");
    let srv = TestServer::start(Backend::Embedded).await;
    let account = srv.create_citizen(&potvrda_e2e::unique("kt")).await;
    let classpath = format!(
        "{}:/usr/share/java/jna.jar",
        bindings.join("potvrda-kotlin.jar").display()
    );
    let out = tokio::process::Command::new("java")
        .arg(format!(
            "-Djna.library.path={}",
            bindings.join("python").display()
        ))
        .args(["-cp", &classpath, "BindingsLoginKt"])
        .env("POTVRDA_URL", &srv.url)
        .env(
            "POTVRDA_ACTIVATION",
            activation_uri(&srv.url, account.activation_code.expose()),
        )
        .env("POTVRDA_USERNAME", &account.username)
        .env("POTVRDA_PASSWORD", account.initial_password.expose())
        .env("POTVRDA_PORTAL_CLIENT", potvrda_e2e::PORTAL_CLIENT)
        .env("POTVRDA_PORTAL_SECRET", potvrda_e2e::PORTAL_SECRET)
        .output()
        .await
        .expect("java runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("approved and reported fraud"), "{stdout}");
    // The server saw what the program says: one approval, one fraud report.
    let events = srv
        .audit(&format!("user_id={}", account.user_id))
        .await
        .events;
    let count = |kind| events.iter().filter(|e| e.kind == kind).count();
    assert_eq!(
        count(potvrda_proto::api::AuditKind::LoginApproved),
        1,
        "{events:?}"
    );
    assert_eq!(
        count(potvrda_proto::api::AuditKind::FraudReported),
        1,
        "{events:?}"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_committed_kotlin_and_swift_bindings_are_what_the_generator_makes() {
    let fresh = generated().await;
    let committed = workspace().join("mobile-ffi/bindings");
    for language in ["kotlin", "swift"] {
        let (a, b) = (
            files(&committed.join(language)),
            files(&fresh.join(language)),
        );
        assert_eq!(
            a.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            b.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            "{language}: the generated files differ from the committed ones: run scripts/bindings.sh"
        );
        for ((path, want), (_, got)) in a.iter().zip(&b) {
            assert!(
                want == got,
                "{language}: {} drifted from the library: run scripts/bindings.sh and commit",
                path.display()
            );
        }
    }
}

/// Every file under `dir`, by relative path, sorted.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("readable dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("under dir").to_path_buf();
                out.push((rel, std::fs::read(&path).expect("readable")));
            }
        }
    }
    out.sort();
    assert!(!out.is_empty(), "no bindings under {}", dir.display());
    out
}

/// `web-app/` with its wasm package built now (`scripts/web-app.sh`, once per run).
pub(crate) async fn web_app() -> PathBuf {
    static BUILT: OnceCell<()> = OnceCell::const_new();
    BUILT
        .get_or_init(|| async {
            let status = tokio::process::Command::new("bash")
                .arg(workspace().join("scripts/web-app.sh"))
                .status()
                .await
                .expect("bash runs");
            assert!(status.success(), "scripts/web-app.sh failed");
        })
        .await;
    workspace().join("web-app")
}

/// What the page stored: the wrapping key's properties, whether it can be
/// exported, and the stored device's bytes.
const STORAGE: &str = r#"
const done = arguments[arguments.length - 1];
const open = indexedDB.open('potvrda', 1);
open.onsuccess = () => {
  const tx = open.result.transaction('kv', 'readonly');
  const wrap = tx.objectStore('kv').get('wrap');
  const device = tx.objectStore('kv').get('device');
  tx.oncomplete = () => {
    const key = wrap.result;
    const stored = Array.from(new Uint8Array(device.result.data), (b) => String.fromCharCode(b)).join('');
    crypto.subtle.exportKey('raw', key).then(
      () => done({ exported: true }),
      () => done({ exported: false, extractable: key.extractable, algorithm: key.algorithm.name, stored }));
  };
};
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_companion_approves_a_login_in_chromium() {
    use crate::counter::{click, text, type_into};
    use fantoccini::Locator;
    use potvrda_proto::api::{LoginResponse, LoginStatus};

    let mut opts = potvrda_e2e::Options::new(Backend::Embedded);
    opts.app_dir = Some(web_app().await);
    let srv = TestServer::start_with(opts).await;
    let account = srv.create_citizen(&potvrda_e2e::unique("web")).await;
    let (_driver, browser) = crate::browser::chromium("520,1000").await;
    browser
        .goto(&format!("{}/app", srv.url))
        .await
        .expect("opens /app");
    browser
        .wait()
        .for_element(Locator::Css("body[data-ready=true] #enroll:not([hidden])"))
        .await
        .expect("the app loads its wasm and asks for the code");
    speak(&browser, "sr-Latn").await;

    // Enroll with the code from the sheet and a PIN.
    type_into(
        &browser,
        "#code",
        &account.activation_code.expose().to_lowercase(),
    )
    .await;
    type_into(&browser, "#pin", "482913").await;
    type_into(&browser, "#pin2", "482913").await;
    click(&browser, "#enroll-button").await;
    browser
        .wait()
        .for_element(Locator::Css(
            "#recovery:not([hidden]) #codes li:nth-child(10)",
        ))
        .await
        .expect("ten recovery codes shown once");
    let png = browser.screenshot().await.expect("screenshot");
    crate::browser::keep_screenshot("app-1-recovery-codes.png", &png);
    click(&browser, "#codes-done").await;
    assert_eq!(text(&browser, "who").await, account.username);

    // The device is stored only encrypted, under a key the page cannot export.
    let stored = browser
        .execute_async(STORAGE, vec![])
        .await
        .expect("reads IndexedDB");
    assert_eq!(stored["exported"], false, "{stored}");
    assert_eq!(stored["extractable"], false, "{stored}");
    assert_eq!(stored["algorithm"], "AES-GCM", "{stored}");
    let bytes = stored["stored"].as_str().expect("ciphertext");
    assert!(bytes.len() > 200, "the device is stored");
    for plain in ["\"key\"", "device_id", account.username.as_str()] {
        assert!(!bytes.contains(plain), "{plain} stored in the clear");
    }

    // The portal starts a login; the companion shows it with its context.
    let resp = srv
        .login_raw(&account.username, account.initial_password.expose())
        .await;
    assert_eq!(resp.status(), 201);
    let login: LoginResponse = resp.json().await.expect("json");
    let card = browser
        .wait()
        .for_element(Locator::Css(".login[data-id]"))
        .await
        .expect("the pending login appears");
    let service = card
        .find(Locator::Css(".service"))
        .await
        .expect("service")
        .text()
        .await
        .expect("text");
    assert_eq!(service, "eUprava: porez na imovinu");
    let png = browser.screenshot().await.expect("screenshot");
    crate::browser::keep_screenshot("app-2-pending-login.png", &png);

    // A wrong PIN signs nothing: the login stays pending.
    type_into(&browser, ".login .number", &format!("{:02}", login.number)).await;
    type_into(&browser, ".login .pin", "739104").await;
    click(&browser, ".login .approve").await;
    browser
        .wait()
        .for_element(Locator::XPath(
            "//p[@id='status' and contains(., 'Pogrešan PIN')]",
        ))
        .await
        .expect("the wrong PIN is refused");
    let status = srv
        .status(&login.login_id, login.login_secret.expose(), 0)
        .await;
    assert_eq!(status.status, LoginStatus::Pending);

    // The right PIN approves.
    browser
        .find(Locator::Css(".login .pin"))
        .await
        .expect("pin field")
        .clear()
        .await
        .expect("clears");
    type_into(&browser, ".login .pin", "482913").await;
    click(&browser, ".login .approve").await;
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
    // The token says what the companion proved: its key in software, the
    // citizen present, confirmed with the core's PIN (protocol 3).
    let token = status.access_token.expect("token");
    let claims = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(&token)
        .expect("a JWT")
        .claims;
    assert_eq!(
        claims["amr"],
        serde_json::json!(["pwd", "swk", "user", "pin", "mfa"])
    );

    // Reloaded, the page opens the stored device again.
    browser.refresh().await.expect("reloads");
    browser
        .wait()
        .for_element(Locator::Css("body[data-ready=true] #home:not([hidden])"))
        .await
        .expect("still enrolled after a reload");
    assert_eq!(text(&browser, "who").await, account.username);

    // A risky login (security round 2): the citizen denies one, so the next
    // says why and asks for the login screen's six-digit code, not the number.
    let resp = srv
        .login_raw(&account.username, account.initial_password.expose())
        .await;
    assert_eq!(resp.status(), 201);
    browser
        .wait()
        .for_element(Locator::Css(".login[data-id]"))
        .await
        .expect("the login to deny");
    click(&browser, ".login .deny").await;
    browser
        .wait()
        .for_element(Locator::XPath(
            "//p[@id='status' and contains(., 'odbijena')]",
        ))
        .await
        .expect("denied");
    let resp = srv
        .login_raw(&account.username, account.initial_password.expose())
        .await;
    let risky: LoginResponse = resp.json().await.expect("json");
    let code = risky.code.clone().expect("a risky login's code");
    let card = browser
        .wait()
        .for_element(Locator::Css(".login[data-id] .notices li"))
        .await
        .expect("the reason is shown");
    assert!(
        card.text()
            .await
            .expect("text")
            .contains("Nedavno ste odbili prijavu"),
        "the notice, in the companion's language"
    );
    let typed = browser
        .find(Locator::Css(".login .number"))
        .await
        .expect("the code field");
    assert_eq!(
        typed.attr("maxlength").await.expect("attr").as_deref(),
        Some("6")
    );
    type_into(&browser, ".login .number", &code).await;
    type_into(&browser, ".login .pin", "482913").await;
    click(&browser, ".login .approve").await;
    browser
        .wait()
        .for_element(Locator::XPath(
            "//p[@id='status' and contains(., 'potvrđena')]",
        ))
        .await
        .expect("approved with the code");
    let status = srv
        .status(&risky.login_id, risky.login_secret.expose(), 0)
        .await;
    assert_eq!(status.status, LoginStatus::Approved);
    browser.close().await.expect("closes");
    srv.stop().await;
}

/// Names used after `prefix` in `code` (`device.` → `approve`, …).
fn called(code: &str, prefix: &str) -> Vec<String> {
    code.match_indices(prefix)
        .map(|(i, _)| {
            code[i + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// The fenced blocks of `lang` in `markdown`.
fn blocks<'a>(markdown: &'a str, lang: &str) -> Vec<&'a str> {
    let fence = format!("```{lang}\n");
    markdown
        .match_indices(&fence)
        .filter_map(|(i, _)| {
            let body = &markdown[i + fence.len()..];
            body.find("```").map(|end| &body[..end])
        })
        .collect()
}

#[test]
fn the_mobile_guide_uses_only_generated_names() {
    let read = |p: &str| std::fs::read_to_string(workspace().join(p)).expect("readable");
    let guide = read("docs/MOBILE.md");
    let kotlin = read("mobile-ffi/bindings/kotlin/rs/potvrda/core/potvrda_mobile_ffi.kt");
    let swift = read("mobile-ffi/bindings/swift/PotvrdaCore.swift");
    let (kotlin_code, swift_code) = (blocks(&guide, "kotlin"), blocks(&guide, "swift"));
    assert!(
        kotlin_code.len() >= 4 && swift_code.len() >= 3,
        "the listings are there"
    );
    let mut checked = 0;
    for code in kotlin_code {
        for name in called(code, "device.") {
            assert!(
                kotlin.contains(&format!("fun `{name}`(")),
                "Kotlin: device.{name}"
            );
            checked += 1;
        }
        for name in called(code, "ApiException.") {
            assert!(
                kotlin.contains(&format!("class {name}(")),
                "Kotlin: ApiException.{name}"
            );
        }
        for name in called(code, "PushMode.") {
            assert!(
                kotlin.contains(&format!("class {name}(")),
                "Kotlin: PushMode.{name}"
            );
        }
        for name in [
            "Keystore",
            "UserVerification",
            "HttpResponse",
            "PendingLogin",
        ] {
            assert!(
                !code.contains(name) || kotlin.contains(&format!(" {name}")),
                "{name}"
            );
        }
    }
    for code in swift_code {
        for name in called(code, "device.") {
            assert!(
                swift.contains(&format!("func {name}(")),
                "Swift: device.{name}"
            );
            checked += 1;
        }
        for name in called(code, "ApiError.") {
            assert!(
                swift.contains(&format!("case {name}")),
                "Swift: ApiError.{name}"
            );
        }
    }
    assert!(
        checked >= 12,
        "the listings call the device ({checked} calls checked)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_serves_its_own_files_only_and_nothing_when_not_installed() {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    // Not installed: a clear 404, not a crash or a directory listing.
    let bare = TestServer::start(Backend::Embedded).await;
    let r = http
        .get(format!("{}/app/", bare.url))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.expect("json error");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("not installed")
    );
    bare.stop().await;

    let mut opts = potvrda_e2e::Options::new(Backend::Embedded);
    opts.app_dir = Some(workspace().join("web-app"));
    let srv = TestServer::start_with(opts).await;
    let r = http
        .get(format!("{}/app", srv.url))
        .send()
        .await
        .expect("request");
    assert_eq!(
        (r.status().as_u16(), r.headers()["location"].to_str().ok()),
        (308, Some("/app/"))
    );
    let r = http
        .get(format!("{}/app/", srv.url))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(
        csp.contains("script-src 'self' 'wasm-unsafe-eval'")
            && csp.contains("frame-ancestors 'none'")
    );
    // Only the app's files: no other file of the directory, no way out of it.
    for path in [
        "README.md",
        "..%2FCargo.toml",
        "pkg/..%2F..%2FCargo.toml",
        "%2E%2E/Cargo.toml",
        "pkg/",
        "index.html%00",
    ] {
        let r = http
            .get(format!("{}/app/{path}", srv.url))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 404, "{path}");
    }
    srv.stop().await;
}

/// Choose the companion's language `tag` with its own switch (kept for the
/// next visits).
pub(crate) async fn speak(browser: &fantoccini::Client, tag: &str) {
    browser
        .find(fantoccini::Locator::Id("lang-choice"))
        .await
        .expect("the language switch")
        .select_by_value(tag)
        .await
        .expect("choose");
    browser
        .wait()
        .for_element(fantoccini::Locator::Css(&format!(
            "html[lang=\"{tag}\"] #status"
        )))
        .await
        .expect("the companion in that language");
}
