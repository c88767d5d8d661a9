//! The OpenID pages' templates and how each is put together: the page
//! kit's frame (language, switch), the policy that lets its forms return
//! to the service, the time limit's plural forms.

use super::*;

#[derive(Template)]
#[template(path = "login.html")]
pub(super) struct LoginTpl<'a> {
    pub(super) chrome: Chrome,
    pub(super) request: &'a str,
    pub(super) client_name: &'a str,
    pub(super) error: &'a Option<Msg>,
}

#[derive(Template)]
#[template(path = "waiting.html")]
pub(super) struct WaitingTpl<'a> {
    pub(super) chrome: Chrome,
    pub(super) request: &'a str,
    pub(super) client_name: &'a str,
    pub(super) number: String,
    pub(super) error: &'a Option<Msg>,
    /// Seconds left, and the sentence saying so in each plural form.
    pub(super) expires_in: Option<i64>,
    pub(super) time_forms: TimeForms,
    pub(super) can_resend: bool,
}

#[derive(Template)]
#[template(path = "logout.html")]
pub(super) struct LogoutTpl<'a> {
    pub(super) chrome: Chrome,
    pub(super) csrf: &'a str,
    pub(super) client_id: &'a str,
    pub(super) post_logout_redirect_uri: &'a str,
    pub(super) state: &'a str,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub(super) struct ConsentTpl<'a> {
    pub(super) chrome: Chrome,
    pub(super) request: &'a str,
    pub(super) client_name: &'a str,
    pub(super) scopes: Vec<&'static str>,
    pub(super) csrf: &'a str,
}

/// What a scope tells the citizen: its message's id.
pub(super) fn scope_words(scope: &str) -> &'static str {
    match scope {
        "openid" => "scope-openid",
        "profile" => "scope-profile",
        "email" => "scope-email",
        "phone" => "scope-phone",
        "offline_access" => "scope-offline_access",
        _ => "",
    }
}

/// The consent page, for the session whose cookie is `session`.
pub(super) fn consent_page(
    svc: &Potvrda,
    req: &HttpRequest,
    page: &ConsentPage,
    session: &str,
) -> Result<HttpResponse> {
    let csrf = page::csrf_token(svc, Form::Consent, session);
    let here = format!("/oauth2/authorize/consent?request={}", page.request);
    page::html_returning(
        actix_web::http::StatusCode::OK,
        ConsentTpl {
            chrome: lang::chrome(req, page.ui_locale, here),
            request: &page.request,
            client_name: &page.client_name,
            scopes: page
                .scopes
                .iter()
                .map(|s| scope_words(s))
                .filter(|w| !w.is_empty())
                .collect(),
            csrf: &csrf,
        }
        .render(),
        &page.return_to,
    )
}

#[derive(Template)]
#[template(path = "message.html")]
pub(super) struct MessageTpl<'a> {
    pub(super) chrome: Chrome,
    pub(super) title: &'a str,
    pub(super) message: &'a str,
}

/// A page saying `text` under `title` (message ids); its language switch
/// leads to the same words (a message page has nothing to lose).
pub(super) fn message(
    req: &HttpRequest,
    status: actix_web::http::StatusCode,
    title: &str,
    text: &Msg,
) -> Result<HttpResponse> {
    html(
        status,
        MessageTpl {
            chrome: lang::chrome(req, None, lang::this_page(req)),
            title,
            message: text.0,
        }
        .render(),
    )
}

#[derive(Template)]
#[template(path = "logged_out.html")]
pub(super) struct LoggedOutTpl<'a> {
    pub(super) chrome: Chrome,
    pub(super) frames: &'a [String],
    pub(super) target: Option<&'a str>,
}

/// Front-Channel Logout 1.0: the logged-out page loads each service's
/// logout page in a hidden frame (its origin alone allowed to be framed),
/// then goes on to `target`.
pub(super) fn front_channel(
    req: &HttpRequest,
    frames: &[String],
    target: Option<&str>,
) -> Result<HttpResponse> {
    let origins: Vec<String> = frames
        .iter()
        .filter_map(|f| url::Url::parse(f).ok())
        .map(|u| u.origin().ascii_serialization())
        .collect();
    page::html_framing(
        actix_web::http::StatusCode::OK,
        LoggedOutTpl {
            chrome: lang::chrome(req, None, "/oauth2/logout".into()),
            frames,
            target,
        }
        .render(),
        &origins,
    )
}
