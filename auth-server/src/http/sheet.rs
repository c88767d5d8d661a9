//! The printed activation sheet: a print-ready A4 page with the username,
//! the initial password, the activation code and its expiry, and a QR code
//! of `potvrda://activate?server=<PUBLIC_URL>&code=<code>`, with short
//! instructions, all in one locale: the one the official chose for the
//! citizen (or the request's `Accept-Language` on the admin API). It is only ever the
//! answer to the request that created the secrets (`Accept: text/html` on
//! account creation or reset): reprinting means a reset.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use potvrda_i18n::{Locale, Tr};
use potvrda_proto::api::CreateCitizenResponse;

use super::Result;
use crate::error::Error;
use crate::service::Potvrda;

const SHEET_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'";
/// On the counter the sheet has one script of its own: the print button.
const COUNTER_SHEET_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/static/sheet.css").route(web::get().to(style)));
}

#[derive(Template)]
#[template(path = "sheet.html")]
struct SheetTpl<'a> {
    tr: Tr,
    css: &'a str,
    display_name: &'a str,
    username: &'a str,
    password: &'a str,
    code: &'a str,
    expires: &'a str,
    qr_svg: &'a str,
    activation_uri: &'a str,
    /// On the counter: the page to go back to (and a print button).
    back: Option<&'a str>,
}

/// Whether the caller asked for the printable page.
pub(super) fn wants_sheet(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// The activation URI the QR code carries.
pub fn activation_uri(public_url: &str, code: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "potvrda://activate?server={}&code={}",
        enc(public_url),
        enc(code)
    )
}

/// `2026-11-29 14:05 UTC`.
pub(super) fn utc(t: i64) -> String {
    match actix_web::cookie::time::OffsetDateTime::from_unix_timestamp(t) {
        Ok(d) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute()
        ),
        Err(_) => t.to_string(),
    }
}

/// The sheet for freshly created secrets.
pub(super) fn render(
    svc: &Potvrda,
    status: StatusCode,
    answer: &CreateCitizenResponse,
    display_name: &str,
    locale: Locale,
) -> Result<HttpResponse> {
    render_page(svc, status, answer, display_name, None, locale)
}

/// The sheet as a counter page: a print button and a way back (`back`).
pub(super) fn render_page(
    svc: &Potvrda,
    status: StatusCode,
    answer: &CreateCitizenResponse,
    display_name: &str,
    back: Option<&str>,
    locale: Locale,
) -> Result<HttpResponse> {
    let uri = activation_uri(svc.public_url(), answer.activation_code.expose());
    let qr = qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| Error::Internal(format!("qr: {e}")))?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .build();
    // The XML prolog has no place inside HTML.
    let svg = qr.find("<svg").map_or(qr.as_str(), |i| &qr[i..]);
    let css = format!("{}/static/sheet.css", svc.public_url());
    let page = SheetTpl {
        tr: Tr(locale),
        css: &css,
        display_name,
        username: &answer.username,
        password: answer.initial_password.expose(),
        code: answer.activation_code.expose(),
        expires: &utc(answer.activation_expires_at),
        qr_svg: svg,
        activation_uri: &uri,
        back,
    }
    .render()
    .map_err(|e| Error::Internal(format!("template: {e}")))?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            if back.is_some() {
                COUNTER_SHEET_CSP
            } else {
                SHEET_CSP
            },
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(page))
}

/// The sheet's print style.
#[utoipa::path(get, path = "/static/sheet.css", tag = "admin", responses((status = 200, content_type = "text/css")))]
pub(crate) async fn style() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(include_str!("../../static/sheet.css"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_uris_encode_the_server() {
        assert_eq!(
            activation_uri("https://prijava.euprava.gov.rs", "ABCD-EFGH-JKMN"),
            "potvrda://activate?server=https%3A%2F%2Fprijava.euprava.gov.rs&code=ABCD-EFGH-JKMN"
        );
        assert_eq!(utc(1_795_000_000), "2026-11-18 11:06 UTC");
    }
}
