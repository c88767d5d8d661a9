//! `/app/`: the browser companion (mobile-core in wasm, `web-app/`), served
//! from `app_dir` when configured. Only the files the app consists of are
//! served (a fixed list: no path from the request reaches the file system),
//! with a strict CSP that allows the wasm module and nothing from elsewhere.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use potvrda_proto::{ErrorBody, ErrorCode};

/// The app's files and their types.
const FILES: &[(&str, &str)] = &[
    ("index.html", "text/html; charset=utf-8"),
    ("app.js", "text/javascript; charset=utf-8"),
    ("app.css", "text/css; charset=utf-8"),
    ("sw.js", "text/javascript; charset=utf-8"),
    ("manifest.webmanifest", "application/manifest+json"),
    ("icon.svg", "image/svg+xml"),
    (
        "pkg/potvrda_mobile_web.js",
        "text/javascript; charset=utf-8",
    ),
    ("pkg/potvrda_mobile_web_bg.wasm", "application/wasm"),
];

/// Scripts and the wasm module from this origin only; `fetch` to this
/// origin only (the API); no framing, no plugins, no inline script.
const CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; \
    style-src 'self'; img-src 'self'; manifest-src 'self'; worker-src 'self'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Mount `/app` and `/app/…`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/app").route(web::get().to(|| async {
        HttpResponse::PermanentRedirect()
            .insert_header((header::LOCATION, "/app/"))
            .finish()
    })))
    .service(web::resource("/app/").route(web::get().to(index)))
    .service(web::resource("/app/{file:.+}").route(web::get().to(file)));
}

async fn index(w: web::Data<super::Web>) -> HttpResponse {
    serve(&w, "index.html").await
}

async fn file(w: web::Data<super::Web>, path: web::Path<String>) -> HttpResponse {
    serve(&w, &path).await
}

fn not_found(message: &str) -> HttpResponse {
    HttpResponse::NotFound().json(ErrorBody {
        error: ErrorCode::NoSuchEndpoint,
        message: message.into(),
    })
}

async fn serve(w: &super::Web, name: &str) -> HttpResponse {
    let Some((name, content_type)) = FILES.iter().find(|(f, _)| *f == name) else {
        return not_found("no such file in the companion app");
    };
    let Some(dir) = w.config.listen.app_dir.clone() else {
        return not_found("the browser companion is not installed on this server");
    };
    let path = dir.join(name);
    match web::block(move || std::fs::read(path)).await {
        Ok(Ok(body)) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, *content_type))
            .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header((header::REFERRER_POLICY, "no-referrer"))
            // Always revalidated: a new release's wasm and glue go together.
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .body(body),
        _ => {
            tracing::warn!(file = name, "browser companion file missing from app_dir");
            not_found("the browser companion is not installed on this server")
        }
    }
}
