//! The OpenAPI description matches the server: every route the HTTP modules
//! register is in `/openapi.json` with its method, and nothing else is; and
//! every operation it lists is served (no 404 `no_such_endpoint`, no 405).

use std::collections::BTreeSet;
use std::path::Path;

use potvrda_e2e::{Backend, TestServer};

/// `(METHOD, path)` of every `web::resource("…").route(web::method()…)` in a source file.
fn registered(file: &str, prefix: &str) -> BTreeSet<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../auth-server/src/http");
    let text = std::fs::read_to_string(dir.join(file)).expect("source");
    let mut out = BTreeSet::new();
    for chunk in text.split("web::resource(\"").skip(1) {
        let (path, rest) = chunk.split_once('"').expect("closing quote");
        for (method, marker) in [
            ("GET", "web::get()"),
            ("POST", "web::post()"),
            ("DELETE", "web::delete()"),
            ("PATCH", "web::patch()"),
            ("PUT", "web::put()"),
        ] {
            let route = rest.split("web::resource(").next().unwrap_or(rest);
            if route.contains(marker) {
                out.insert((method.to_owned(), format!("{prefix}{path}")));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_description_matches_the_routes() {
    let srv = TestServer::start(Backend::Embedded).await;
    let doc: serde_json::Value = srv
        .http
        .get(format!("{}/openapi.json", srv.url))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("operations").keys() {
            documented.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    let mut code = BTreeSet::new();
    for (file, prefix) in [
        ("admin.rs", "/v1"),
        ("clients.rs", "/v1"),
        ("device.rs", "/v1"),
        ("lang.rs", ""),
        ("login.rs", "/v1"),
        ("me.rs", "/v1"),
        ("meta.rs", ""),
        ("oidc/mod.rs", ""),
        ("oauth.rs", ""),
        ("sheet.rs", ""),
        ("counter/mod.rs", "/counter"),
        ("mod.rs", ""),
    ] {
        code.extend(registered(file, prefix));
    }
    assert!(code.len() >= 12, "the scan finds the routes: {code:?}");
    assert_eq!(documented, code, "documented vs registered routes");

    for (method, path) in &documented {
        let concrete = path
            .replace("{device_id}", "00000000-0000-4000-8000-000000000000")
            .replace("{cid}", "00000000-0000-4000-8000-000000000000")
            .replace("{login_id}", "00000000-0000-4000-8000-000000000000");
        let r = srv
            .http
            .request(
                method.parse().expect("method"),
                format!("{}{concrete}", srv.url),
            )
            .header("Content-Type", "application/json")
            .body("{}")
            .send()
            .await
            .expect("request");
        assert_ne!(r.status(), 405, "{method} {path}");
        if r.status() == 404 {
            let body: serde_json::Value = r.json().await.expect("json");
            assert_ne!(
                body["error"], "no_such_endpoint",
                "{method} {path} is documented but not served"
            );
        }
    }
}
