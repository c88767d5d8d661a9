//! Choosing the pages' language (issue 16): the citizen's choice in the
//! language switch (a cookie), then what the relying party asked for
//! (`ui_locales`), then the browser's `Accept-Language`, then Serbian in
//! Cyrillic. Every page carries a [`Chrome`]: its translator and the
//! switch's way back to it.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieAge};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use potvrda_i18n::{Locale, Tr};
use serde::Deserialize;

use super::Result;
use super::page;
use crate::error::Error;
use crate::service::Potvrda;

/// The cookie holding the citizen's choice (a tag of [`Locale::ALL`]).
pub(super) const LANG_COOKIE: &str = "potvrda_lang";

/// What every page's frame needs: its language and the switch.
pub(crate) struct Chrome {
    /// The page's translator.
    pub(crate) tr: Tr,
    /// The page (a path here, fetched with GET) the switch comes back to.
    pub(crate) here: String,
}

/// One entry of the language switch.
pub(crate) struct Choice {
    pub(crate) tag: &'static str,
    pub(crate) name: &'static str,
    pub(crate) current: bool,
}

impl Chrome {
    /// The switch's entries, each named in its own language.
    pub(crate) fn choices(&self) -> Vec<Choice> {
        Locale::ALL
            .into_iter()
            .map(|l| Choice {
                tag: l.tag(),
                name: l.autonym(),
                current: l == self.tr.0,
            })
            .collect()
    }
}

/// The locale of a page answering `req`; `asked`: what an OpenID request's
/// `ui_locales` asked for.
pub(super) fn locale(req: &HttpRequest, asked: Option<Locale>) -> Locale {
    let chosen = req
        .cookie(LANG_COOKIE)
        .and_then(|c| c.value().parse::<Locale>().ok());
    let accept = || {
        req.headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(Locale::negotiate)
    };
    chosen.or(asked).or_else(accept).unwrap_or_default()
}

/// The frame of a page answering `req`, which the switch returns to at `here`.
pub(super) fn chrome(req: &HttpRequest, asked: Option<Locale>, here: String) -> Chrome {
    Chrome {
        tr: Tr(locale(req, asked)),
        here,
    }
}

/// `here` for a page that can be fetched again as it was (a GET).
pub(super) fn this_page(req: &HttpRequest) -> String {
    req.uri()
        .path_and_query()
        .map_or_else(|| "/".into(), |p| p.as_str().to_owned())
}

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/lang").route(web::post().to(switch)));
}

/// The language switch's form.
#[derive(Debug, Deserialize)]
pub(crate) struct SwitchForm {
    lang: String,
    back: String,
}

/// A path on this server (never another origin: `//host`, `/\host`).
fn local(back: &str) -> bool {
    back.starts_with('/')
        && !back.starts_with("//")
        && !back.starts_with("/\\")
        && !back.chars().any(char::is_control)
}

/// The language switch: remember the choice for a year and go back.
#[utoipa::path(post, path = "/lang", tag = "oidc",
    request_body(content_type = "application/x-www-form-urlencoded", description = "lang (sr-Cyrl, sr-Latn, en, hu), back (a path here)"),
    responses((status = 303, description = "Back to the page, in the chosen language"),
              (status = 400, description = "An unknown language or a way back off this server", body = potvrda_proto::ErrorBody)))]
pub(crate) async fn switch(
    svc: web::Data<Potvrda>,
    form: web::Form<SwitchForm>,
) -> Result<HttpResponse> {
    let locale: Locale = form
        .lang
        .parse()
        .map_err(|e| Error::InvalidRequest(format!("lang: {e}")))?;
    if !local(&form.back) {
        return Err(Error::InvalidRequest("back must be a path on this server".into()).into());
    }
    let mut res = page::see_other(&form.back);
    let cookie = Cookie::build(LANG_COOKIE, locale.tag())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(page::https(&svc))
        .max_age(CookieAge::days(365))
        .finish();
    page::add_cookie(&mut res, &cookie)?;
    Ok(res)
}

/// `waiting-time` in each plural category of the locale, `#` for the
/// number: the page's script counts down in the right grammar
/// (`Intl.PluralRules` picks the category).
pub(crate) struct TimeForms {
    pub(crate) one: String,
    pub(crate) few: String,
    pub(crate) other: String,
}

impl TimeForms {
    pub(crate) fn of(tr: &potvrda_i18n::Tr) -> Self {
        let form = |n: i64| {
            tr.n("waiting-time", "seconds", n)
                .replace(&n.to_string(), "#")
        };
        Self {
            one: form(1),
            few: form(2),
            other: form(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::local;

    #[test]
    fn the_way_back_stays_here() {
        assert!(local("/oauth2/authorize/continue?request=x"));
        assert!(local("/counter"));
        for off in [
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example/",
            "",
            "/a\nb",
        ] {
            assert!(!local(off), "{off:?}");
        }
    }
}
