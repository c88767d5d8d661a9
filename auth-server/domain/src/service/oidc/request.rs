//! The checks of an authorization request (RFC 6749 §4.1.1, RFC 7636,
//! OpenID Connect Core §3.1.2.1 and §5.5): what it asks for, or the error
//! to redirect with.

use super::*;
use crate::service::assurance::{Level, Method, asked_or_default};

/// What an authorization request asks for, once it is checked.
pub(super) struct Checked {
    pub(super) scopes: Vec<String>,
    pub(super) max_age: Option<i64>,
    /// The lowest level of assurance the client accepts.
    pub(super) level: Option<Level>,
    pub(super) prompt_login: bool,
    pub(super) prompt_none: bool,
    pub(super) prompt_consent: bool,
    /// OIDC Core §5.5: the individual claims asked for.
    pub(super) claims: RequestedClaims,
}

/// Check the request's parameters (RFC 6749 §4.1.1, RFC 7636, OpenID Core
/// §3.1.2.1); an error to redirect with, else what it asks for.
pub(super) fn checked_request(
    p: &AuthorizeParams,
    client: &OidcClient,
) -> std::result::Result<Checked, Refusal> {
    if p.response_type.as_deref() != Some("code") {
        return Err((
            OAuthError::UnsupportedResponseType,
            "response_type must be code".into(),
        ));
    }
    let scopes: Vec<&str> = p
        .scope
        .as_deref()
        .unwrap_or_default()
        .split_ascii_whitespace()
        .collect();
    if !scopes.contains(&"openid") {
        return Err((OAuthError::InvalidScope, "scope must include openid".into()));
    }
    if let Some(unknown) = scopes.iter().find(|s| !SCOPES.contains(s)) {
        return Err((OAuthError::InvalidScope, format!("unknown scope {unknown}")));
    }
    if let Some(allowed) = &client.scope
        && let Some(refused) = scopes
            .iter()
            .find(|s| !allowed.split_ascii_whitespace().any(|a| a == **s))
    {
        return Err((
            OAuthError::InvalidScope,
            format!("the client is not registered for scope {refused}"),
        ));
    }
    pkce(p, client)?;
    if p.nonce.as_ref().is_some_and(|n| n.len() > 255)
        || p.state.as_ref().is_some_and(|s| s.len() > 1024)
    {
        return Err((OAuthError::InvalidRequest, "nonce or state too long".into()));
    }
    let max_age = match p.max_age.as_deref().map(str::parse::<u64>) {
        None => None,
        Some(Ok(a)) => Some(i64::try_from(a).unwrap_or(i64::MAX)),
        Some(Err(_)) => {
            return Err((
                OAuthError::InvalidRequest,
                "max_age must be a number of seconds".into(),
            ));
        }
    };
    let (prompt_login, prompt_none, prompt_consent) = prompts(p)?;
    // A level no login here can reach is refused, never silently downgraded.
    let level = asked_or_default(p.acr_values.as_deref(), p.claims.as_deref(), client)
        .map_err(|e| (OAuthError::UnmetAuthenticationRequirements, e.to_owned()))?;
    if level.is_some_and(|l| l > Method::PasswordPush.best()) {
        return Err((
            OAuthError::UnmetAuthenticationRequirements,
            format!(
                "a login here proves at most {}",
                Method::PasswordPush.best().acr()
            ),
        ));
    }
    Ok(Checked {
        level,
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        max_age,
        prompt_login,
        prompt_none,
        prompt_consent,
        claims: RequestedClaims {
            locale: p.claims_locales.as_deref().and_then(claims_locale),
            ..requested_claims(p.claims.as_deref())
        },
    })
}

/// The first of `claims_locales` the claims can be released in.
fn claims_locale(tags: &str) -> Option<Locale> {
    tags.split_ascii_whitespace()
        .filter_map(Locale::first_of)
        .find(|l| CLAIMS_LOCALES.contains(l))
}

/// OIDC Core §5.5: the claims of [`RELEASABLE`] the `claims` parameter
/// asks for, in UserInfo and in the ID token (others are ignored, as the
/// specification says; a malformed parameter was refused with `acr`).
fn requested_claims(claims: Option<&str>) -> RequestedClaims {
    let parsed: serde_json::Value = claims
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_default();
    let names = |target: &str| -> Vec<String> {
        parsed[target]
            .as_object()
            .map(|o| {
                o.keys()
                    .filter(|k| RELEASABLE.contains(&k.as_str()))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    RequestedClaims {
        userinfo: names("userinfo"),
        id_token: names("id_token"),
        locale: None,
    }
}

/// An OAuth error and its description.
pub(super) type Refusal = (OAuthError, String);

/// PKCE (RFC 7636): S256 only, required of public clients.
fn pkce(p: &AuthorizeParams, client: &OidcClient) -> std::result::Result<(), Refusal> {
    match (&p.code_challenge, p.code_challenge_method.as_deref()) {
        (None, _) if client.is_public() || client.fapi2 => Err((
            OAuthError::InvalidRequest,
            "public and FAPI 2.0 clients must use PKCE (S256)".into(),
        )),
        (Some(_), m) if m != Some("S256") => Err((
            OAuthError::InvalidRequest,
            "code_challenge_method must be S256".into(),
        )),
        (Some(c), _) if c.len() != 43 || URL_SAFE_NO_PAD.decode(c).is_err() => Err((
            OAuthError::InvalidRequest,
            "code_challenge must be a base64url SHA-256".into(),
        )),
        (None, Some(_)) => Err((
            OAuthError::InvalidRequest,
            "code_challenge_method without code_challenge".into(),
        )),
        _ => Ok(()),
    }
}

/// `prompt`: `login` and `none` (not both), `consent` (ask the citizen);
/// `select_account` is accepted and means nothing here (one account).
fn prompts(p: &AuthorizeParams) -> std::result::Result<(bool, bool, bool), Refusal> {
    let prompts: Vec<&str> = p
        .prompt
        .as_deref()
        .unwrap_or("")
        .split_ascii_whitespace()
        .collect();
    if prompts
        .iter()
        .any(|x| !matches!(*x, "login" | "none" | "consent" | "select_account"))
    {
        return Err((OAuthError::InvalidRequest, "unknown prompt value".into()));
    }
    let (login, none) = (prompts.contains(&"login"), prompts.contains(&"none"));
    if login && none {
        return Err((
            OAuthError::InvalidRequest,
            "prompt=none cannot be combined with login".into(),
        ));
    }
    Ok((login, none, prompts.contains(&"consent")))
}
