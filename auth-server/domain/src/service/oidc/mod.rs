//! The OpenID Provider: authorization code flow with PKCE whose login step is
//! the password and the push approval, single sign-on sessions, the token
//! endpoint (codes, rotating refresh tokens with reuse detection), UserInfo
//! and RP-initiated logout. No HTTP types: the handlers in `http::oidc` parse,
//! call these, and render.
//!
//! State lives in the store's [`KvStore`](crate::store::KvStore), each record
//! with an expiry on the injected clock: authorization requests (10 min),
//! codes (60 s, then kept 10 min as "used" to catch a second use), grants
//! (one refresh-token family each), sessions.

use crate::store::ClientId;
use crate::store::{LoginId, UserId};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::DecodingKey;
use jsonwebtoken::{Algorithm, Header, Validation};
use potvrda_i18n::{Locale, Msg};
use potvrda_proto::Secret;
use potvrda_proto::api::{AuditKind, LoginStatus};
use potvrda_proto::oidc::{
    IdTokenClaims, OidcAccessClaims, ProviderMetadata, TYP_ACCESS_TOKEN, TokenResponse, UserInfo,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::OidcClient;
use super::assurance::{Level, Method};
use super::{Potvrda, Purpose, ct_eq_str, new_id, sha256_b64};
use crate::audit::{Caller, Event};
use crate::clock;
use crate::error::{Error, Result};
use crate::settings::secs;
use crate::store::records::{JsonRecord, Kind};
pub use potvrda_proto::oidc::{GrantType, OAuthError};

/// How long the login page and the wait for the phone may take.
const REQUEST_TTL: i64 = 600;
/// How long a code can be redeemed.
const CODE_TTL: i64 = 60;
/// How long a redeemed code is remembered, to catch a second use.
const USED_CODE_TTL: i64 = 600;
/// How clients authenticate, at every endpoint that authenticates them.
const AUTH_METHODS: &[&str] = &[
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
];
/// The scopes this provider knows.
pub const SCOPES: &[&str] = &["openid", "profile", "email", "phone", "offline_access"];

/// The query of `/oauth2/authorize`, as sent (everything optional until checked).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AuthorizeParams {
    /// Client.
    pub client_id: Option<String>,
    /// Where to send the browser back.
    pub redirect_uri: Option<String>,
    /// Must be `code`.
    pub response_type: Option<String>,
    /// Must include `openid`.
    pub scope: Option<String>,
    /// Echoed back.
    pub state: Option<String>,
    /// Echoed in the ID token.
    pub nonce: Option<String>,
    /// PKCE challenge.
    pub code_challenge: Option<String>,
    /// Must be `S256` when given.
    pub code_challenge_method: Option<String>,
    /// `login` forces a new approval; `none` forbids any page.
    pub prompt: Option<String>,
    /// Maximum age of the approval, in seconds.
    pub max_age: Option<String>,
    /// Space-separated `acr` values the client accepts, in order of preference.
    pub acr_values: Option<String>,
    /// OIDC Core §5.5: the claims asked for, as JSON (an essential `acr`).
    pub claims: Option<String>,
    /// RFC 9449 §10: the thumbprint of the DPoP key the tokens will be bound to.
    pub dpop_jkt: Option<String>,
    /// RFC 9101: a request object signed by the client.
    pub request: Option<String>,
    /// RFC 9126: a pushed request's handle.
    pub request_uri: Option<String>,
    /// OIDC Core §3.1.2.1: the citizen's preferred languages for the pages,
    /// space-separated BCP 47 tags.
    pub ui_locales: Option<String>,
    /// OIDC Core §5.2: the languages and scripts the client wants the
    /// claims in, space-separated BCP 47 tags (`sr-Latn`: the names in
    /// Latin script).
    pub claims_locales: Option<String>,
}

use crate::service::challenge::MAX_RESENDS;

/// A pending authorization request, kept while the citizen logs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct AuthzRequest {
    client_id: ClientId,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    /// SHA-256 of the browser's binding cookie: only that browser continues.
    binding: String,
    login: Option<PendingLogin>,
    /// RFC 9449 §10: the key the code's tokens will be bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dpop_jkt: Option<String>,
    /// The claims asked for by name.
    #[serde(default, skip_serializing_if = "RequestedClaims::is_empty")]
    claims: RequestedClaims,
    /// `prompt=consent`: ask the citizen, whatever they allowed before.
    #[serde(default)]
    prompt_consent: bool,
    /// The pages' language the client asked for (`ui_locales`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ui_locale: Option<Locale>,
    /// How many times the citizen asked for a new request to the phone.
    #[serde(default)]
    resent: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PendingLogin {
    login_id: LoginId,
    login_secret: Secret,
    number: u8,
    /// A risky login's longer code, shown instead of the number.
    #[serde(default)]
    code: Option<String>,
    /// When the phone's challenge expires (0: not known, a request stored
    /// before this was kept).
    #[serde(default)]
    expires_at: i64,
}

impl From<potvrda_proto::api::LoginResponse> for PendingLogin {
    fn from(started: potvrda_proto::api::LoginResponse) -> Self {
        Self {
            login_id: started.login_id,
            login_secret: started.login_secret,
            number: started.number,
            code: started.code,
            expires_at: started.expires_at,
        }
    }
}

impl PendingLogin {
    /// What the waiting page shows: the code, or the number.
    fn shown(&self) -> String {
        self.code.clone().unwrap_or_else(|| self.number.to_string())
    }
}

/// What a code stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CodeRecord {
    client_id: ClientId,
    redirect_uri: String,
    code_challenge: Option<String>,
    nonce: Option<String>,
    scope: String,
    grant: GrantBase,
    used: bool,
    /// RFC 9449 §10: only a proof by this key redeems the code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dpop_jkt: Option<String>,
}

/// The scripts the claims can be released in (OIDC Core §5.2): a name
/// registered in Cyrillic is released in Latin for `sr-Latn`, by the exact
/// transliteration the pages use; otherwise as registered.
const CLAIMS_LOCALES: [Locale; 2] = [Locale::SrCyrl, Locale::SrLatn];

/// The claims about the citizen a client can be given, by scope or by name.
pub(super) const RELEASABLE: &[&str] = &["preferred_username", "name", "email", "phone_number"];

/// The claims the `claims` parameter asked for by name (OIDC Core §5.5).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct RequestedClaims {
    /// At UserInfo.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) userinfo: Vec<String>,
    /// In the ID token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) id_token: Vec<String>,
    /// OIDC Core §5.2: the first of `claims_locales` Potvrda knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) locale: Option<Locale>,
}

impl RequestedClaims {
    fn is_empty(&self) -> bool {
        self.userinfo.is_empty() && self.id_token.is_empty() && self.locale.is_none()
    }
}

/// Who was authenticated, when, in which session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct GrantBase {
    user_id: UserId,
    auth_time: i64,
    sid: String,
    /// The account's security generation when the citizen logged in.
    #[serde(default)]
    generation: u64,
    /// The grant (refresh family) the code's tokens belong to.
    gid: String,
    /// How the citizen was authenticated (grants before protocol 3: the
    /// password and the push).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<Method>,
    /// What the login's answer proved (RFC 8176 values; protocol 3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    proven: Vec<String>,
    /// The claims asked for by name.
    #[serde(default, skip_serializing_if = "RequestedClaims::is_empty")]
    claims: RequestedClaims,
}

/// A refresh-token family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredGrant {
    client_id: ClientId,
    scope: String,
    base: GrantBase,
    /// SHA-256 of the one refresh token that may be used next.
    current: String,
    revoked: bool,
    /// RFC 9449 §5: the DPoP key a public client's refresh tokens are
    /// bound to (the one that redeemed the code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jkt: Option<String>,
}

/// A single sign-on session at the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Session {
    sid: String,
    user_id: UserId,
    auth_time: i64,
    /// The account's security generation when the session began.
    #[serde(default)]
    generation: u64,
    /// What the login's answer proved (RFC 8176 values; protocol 3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    proven: Vec<String>,
}

/// Where `/oauth2/authorize` leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeOutcome {
    /// The client or redirect URI cannot be trusted: show this, never redirect.
    ErrorPage(Msg),
    /// Send the browser here (a code, or an error for the client).
    Redirect(String),
    /// Show the login form for this request.
    Login(LoginPage),
    /// Ask the citizen's consent first.
    Consent(ConsentPage),
}

/// The login form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginPage {
    /// The request id the form posts back.
    pub request: String,
    /// The service asking.
    pub client_name: String,
    /// A message after a failed attempt.
    pub error: Option<Msg>,
    /// A new binding cookie value to set, if the browser had none.
    pub set_binding: Option<String>,
    /// The language the client asked the pages to speak.
    pub ui_locale: Option<Locale>,
    /// The client's redirect URI: where the page's forms may lead.
    pub return_to: String,
}

/// Where the login form and the "continue" link lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// The login form again, with a message.
    Login(LoginPage),
    /// Waiting for the phone: show this number.
    Waiting {
        /// The request id.
        request: String,
        /// What to type on the phone: the two-digit number, or a risky
        /// login's six-digit code.
        number: String,
        /// The service asking.
        client_name: String,
        /// Why a typed code was refused.
        error: Option<Msg>,
        /// The language the client asked the pages to speak.
        ui_locale: Option<Locale>,
        /// The client's redirect URI: where the page's forms may lead.
        return_to: String,
        /// Seconds until the phone's challenge expires (WCAG 2.2.1: shown,
        /// with a warning, and renewed with one action); `None` for a
        /// request stored before the expiry was kept (no countdown shown).
        expires_in: Option<i64>,
        /// Whether the citizen may still ask for a new request.
        can_resend: bool,
    },
    /// Done: send the browser here; set this session cookie, if any.
    Redirect {
        /// The client's redirect URI with the answer.
        url: String,
        /// A new session cookie value.
        session: Option<String>,
    },
    /// Ask the citizen's consent first; set this session cookie, if any.
    Consent {
        /// The page.
        page: ConsentPage,
        /// A new session cookie value.
        session: Option<String>,
    },
    /// The request is unknown, expired, or belongs to another browser.
    ErrorPage(Msg),
}

/// The token endpoint's form.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenForm {
    /// `authorization_code` or `refresh_token`.
    pub grant_type: Option<String>,
    /// The code.
    pub code: Option<String>,
    /// Must equal the one of the authorization request.
    pub redirect_uri: Option<String>,
    /// PKCE verifier.
    pub code_verifier: Option<String>,
    /// The refresh token.
    pub refresh_token: Option<String>,
    /// Ignored on refresh (the grant's scope stays).
    pub scope: Option<String>,
    /// CIBA: the backchannel request being redeemed.
    pub auth_req_id: Option<String>,
    /// The client's credentials.
    #[serde(flatten)]
    pub client: ClientFields,
}

impl TokenForm {
    /// The client credentials this form (and its HTTP Basic) presents.
    pub fn credentials(&self, basic: Option<(String, String)>) -> Result<ClientCredentials> {
        self.client.credentials(basic)
    }
}

/// RP-initiated logout parameters.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LogoutParams {
    /// An ID token this provider issued (expired ones are fine).
    pub id_token_hint: Option<String>,
    /// The client, when no hint is given.
    pub client_id: Option<String>,
    /// Where to go afterwards; must be registered for the client.
    pub post_logout_redirect_uri: Option<String>,
    /// Echoed back.
    pub state: Option<String>,
    /// The confirmation form's CSRF token (the citizen clicked "log out"),
    /// checked by the web layer, which tells the domain its [`Confirmation`].
    pub csrf: Option<String>,
}

fn oauth(error: OAuthError, description: impl Into<String>) -> Error {
    Error::OAuth {
        error,
        description: description.into(),
    }
}

/// The client's redirect URI with `params` added to its query.
fn redirect_with(uri: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(uri) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            u.into()
        }
        // Registered URIs are validated at start-up; this cannot happen.
        Err(_) => uri.to_owned(),
    }
}

/// RFC 7636 §4.1: 43–128 characters of `[A-Za-z0-9-._~]`.
fn pkce_ok(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

impl JsonRecord for AuthzRequest {
    const KIND: Kind = Kind::OidcRequest;
    type Id = str;
}

/// Under the hash of the session cookie.
impl JsonRecord for Session {
    const KIND: Kind = Kind::OidcSession;
    type Id = str;
}

/// Under the hash of the code.
impl JsonRecord for CodeRecord {
    const KIND: Kind = Kind::OidcCode;
    type Id = str;
}

impl JsonRecord for StoredGrant {
    const KIND: Kind = Kind::OidcGrant;
    type Id = str;
}

mod authorization_code;
mod authorize;
mod backchannel_logout;
mod ciba;
mod ciba_token;
mod client_auth;
mod consent;
mod dpop;
mod introspection;
mod jar;
mod logout;
mod par;
mod refresh_token;
mod registry;
mod request;
mod resend;
mod subjects;
mod token;

pub use registry::{ClientInformation, ClientSource, Registry};

pub(crate) use authorization_code::AuthorizationCodes;
pub use authorize::Authorization;
pub(crate) use backchannel_logout::LogoutNotices;
pub use ciba::{Backchannel, BackchannelForm};
pub(crate) use ciba_token::CibaRequests;
pub(crate) use client_auth::ClientAuth;
pub use client_auth::{ClientCredentials, ClientFields, CredentialParts, Endpoint};
pub use consent::{ConsentPage, Consents};
pub use dpop::{Dpop, DpopRequest};
pub use introspection::{Introspection, TokenQuery};
pub use logout::{Confirmation, LogoutOutcome, Logouts};
pub use par::{ParForm, PushedRequests};
pub(crate) use refresh_token::RefreshTokens;
pub use subjects::Subjects;
use token::TokenGrant;
pub use token::{Presented, TokenEndpoint};

use async_trait::async_trait;

capability! {
    /// The OpenID Provider: clients and discovery.
    pub Provider
}

/// A configuration client as the provider holds it: its secret hashed.
pub(crate) fn seeded_client(c: &OidcClient, pepper: &crate::keys::Pepper) -> OidcClient {
    let mut client = c.clone();
    client.secrets = client
        .client_secret
        .take()
        .map(|s| crate::service::client::SecretHash {
            hash: registry::client_secret_hash(pepper, s.expose_secret()),
            until: 0,
        })
        .into_iter()
        .collect();
    client
}

impl Provider<'_> {
    /// The registered client with this id that may act now (the seed's or
    /// the registry's, read from the store at every use).
    pub(crate) async fn client(&self, id: &str) -> Result<Option<OidcClient>> {
        Registry(self.0).active(id).await
    }

    /// OpenID Connect Discovery.
    pub fn oidc_metadata(&self) -> ProviderMetadata {
        let u = |p: &str| format!("{}{p}", self.public_url);
        let v = |xs: &[&str]| xs.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        ProviderMetadata {
            issuer: self.public_url.clone(),
            authorization_endpoint: u("/oauth2/authorize"),
            token_endpoint: u("/oauth2/token"),
            userinfo_endpoint: u("/oauth2/userinfo"),
            jwks_uri: u("/.well-known/jwks.json"),
            end_session_endpoint: u("/oauth2/logout"),
            response_types_supported: v(&["code"]),
            response_modes_supported: v(&["query"]),
            grant_types_supported: token::GRANTS
                .iter()
                .map(|g| g.grant_type().as_str().to_owned())
                .collect(),
            subject_types_supported: v(&["public", "pairwise"]),
            ui_locales_supported: Locale::ALL.iter().map(|l| l.tag().to_owned()).collect(),
            claims_locales_supported: CLAIMS_LOCALES.iter().map(|l| l.tag().to_owned()).collect(),
            id_token_signing_alg_values_supported: v(&["RS256", "ES256"]),
            token_endpoint_auth_methods_supported: v(AUTH_METHODS),
            token_endpoint_auth_signing_alg_values_supported: v(&["ES256", "RS256", "PS256"]),
            backchannel_authentication_endpoint: u("/oauth2/bc-authorize"),
            backchannel_token_delivery_modes_supported: v(&["poll", "ping"]),
            backchannel_user_code_parameter_supported: false,
            backchannel_logout_supported: true,
            backchannel_logout_session_supported: true,
            frontchannel_logout_supported: true,
            frontchannel_logout_session_supported: true,
            claims_parameter_supported: true,
            pushed_authorization_request_endpoint: u("/oauth2/par"),
            require_pushed_authorization_requests: false,
            request_parameter_supported: true,
            request_uri_parameter_supported: false,
            request_object_signing_alg_values_supported: v(&["ES256", "PS256", "RS256"]),
            dpop_signing_alg_values_supported: v(&["ES256", "PS256", "RS256"]),
            introspection_endpoint: u("/oauth2/introspect"),
            revocation_endpoint: u("/oauth2/revoke"),
            introspection_endpoint_auth_methods_supported: v(AUTH_METHODS),
            revocation_endpoint_auth_methods_supported: v(AUTH_METHODS),
            code_challenge_methods_supported: v(&["S256"]),
            scopes_supported: v(SCOPES),
            claims_supported: v(&[
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "amr",
                "acr",
                "azp",
                "sid",
                "preferred_username",
                "name",
                "email",
                "phone_number",
            ]),
            prompt_values_supported: v(&["login", "none"]),
            acr_values_supported: Level::ALL.iter().map(|l| l.acr().to_owned()).collect(),
            authorization_response_iss_parameter_supported: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_grant_type_is_served_once() {
        for t in GrantType::ALL {
            let serving = token::GRANTS.iter().filter(|g| g.grant_type() == t).count();
            assert_eq!(serving, 1, "{t:?}");
            assert_eq!(GrantType::parse(t.as_str()), Some(t));
        }
        assert_eq!(token::GRANTS.len(), GrantType::ALL.len());
        assert_eq!(GrantType::parse("password"), None);
    }

    #[test]
    fn client_credentials_in_forms_never_print() {
        let client = ClientFields {
            client_secret: Some("s3cret-of-the-client".into()),
            client_assertion: Some("a.s3cret.jwt".into()),
            ..ClientFields::default()
        };
        let token = TokenForm {
            client: client.clone(),
            ..TokenForm::default()
        };
        let bc = BackchannelForm {
            client,
            client_notification_token: Some("s3cret-bearer".into()),
            ..BackchannelForm::default()
        };
        for printed in [format!("{token:?}"), format!("{bc:?}")] {
            assert!(!printed.contains("s3cret"), "{printed}");
        }
    }

    #[test]
    fn pkce_verifiers_follow_rfc_7636() {
        assert!(pkce_ok(&"a".repeat(43)));
        assert!(pkce_ok(&"A-._~9".repeat(20)));
        assert!(!pkce_ok(&"a".repeat(42)));
        assert!(!pkce_ok(&"a".repeat(129)));
        assert!(!pkce_ok(&format!("{}+", "a".repeat(43))));
        // RFC 7636 appendix B.
        assert_eq!(
            sha256_b64(b"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn redirects_keep_the_registered_query() {
        assert_eq!(
            redirect_with(
                "https://rp.example/cb?tenant=7",
                &[("code", "a b"), ("state", "x&y")]
            ),
            "https://rp.example/cb?tenant=7&code=a+b&state=x%26y"
        );
    }
}
