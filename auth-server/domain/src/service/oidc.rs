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

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, Header, Validation};
use potvrda_proto::api::{AuditKind, LoginAudience, LoginRequest, LoginStatus};
use potvrda_proto::jose::{AMR_PWD_MFA, LoginContext};
use potvrda_proto::oidc::{
    ACR_PWD_PUSH, IdTokenClaims, OidcAccessClaims, ProviderMetadata, TYP_ACCESS_TOKEN,
    TokenResponse, UserInfo,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use super::OidcClient;
use super::{Potvrda, Purpose, ct_eq_str, new_id, sha256_b64};
use crate::audit::{Caller, Event};
use crate::clock;
use crate::error::{Error, Result};
use crate::settings::secs;
use crate::store::records::{JsonRecord, Kind};

/// How long the login page and the wait for the phone may take.
const REQUEST_TTL: i64 = 600;
/// How long a code can be redeemed.
const CODE_TTL: i64 = 60;
/// How long a redeemed code is remembered, to catch a second use.
const USED_CODE_TTL: i64 = 600;
/// The scopes this provider knows.
pub const SCOPES: &[&str] = &["openid", "profile", "email", "phone", "offline_access"];

/// The query of `/oauth2/authorize`, as sent (everything optional until checked).
#[derive(Debug, Clone, Default, Deserialize)]
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
}

/// A pending authorization request, kept while the citizen logs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct AuthzRequest {
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    /// SHA-256 of the browser's binding cookie: only that browser continues.
    binding: String,
    login: Option<PendingLogin>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PendingLogin {
    login_id: String,
    login_secret: String,
    number: u8,
    /// A risky login's longer code, shown instead of the number.
    #[serde(default)]
    code: Option<String>,
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
    client_id: String,
    redirect_uri: String,
    code_challenge: Option<String>,
    nonce: Option<String>,
    scope: String,
    grant: GrantBase,
    used: bool,
}

/// Who was authenticated, when, in which session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct GrantBase {
    user_id: String,
    auth_time: i64,
    sid: String,
    /// The account's security generation when the citizen logged in.
    #[serde(default)]
    generation: u64,
    /// The grant (refresh family) the code's tokens belong to.
    gid: String,
}

/// A refresh-token family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Grant {
    client_id: String,
    scope: String,
    base: GrantBase,
    /// SHA-256 of the one refresh token that may be used next.
    current: String,
    revoked: bool,
}

/// A single sign-on session at the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Session {
    sid: String,
    user_id: String,
    auth_time: i64,
    /// The account's security generation when the session began.
    #[serde(default)]
    generation: u64,
}

/// Where `/oauth2/authorize` leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeOutcome {
    /// The client or redirect URI cannot be trusted: show this, never redirect.
    ErrorPage(String),
    /// Send the browser here (a code, or an error for the client).
    Redirect(String),
    /// Show the login form for this request.
    Login(LoginPage),
}

/// The login form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginPage {
    /// The request id the form posts back.
    pub request: String,
    /// The service asking.
    pub client_name: String,
    /// A message after a failed attempt.
    pub error: Option<String>,
    /// A new binding cookie value to set, if the browser had none.
    pub set_binding: Option<String>,
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
        error: Option<String>,
    },
    /// Done: send the browser here; set this session cookie, if any.
    Redirect {
        /// The client's redirect URI with the answer.
        url: String,
        /// A new session cookie value.
        session: Option<String>,
    },
    /// The request is unknown, expired, or belongs to another browser.
    ErrorPage(String),
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
    /// `client_secret_post` / public clients.
    pub client_id: Option<String>,
    /// `client_secret_post`.
    pub client_secret: Option<String>,
    /// Ignored on refresh (the grant's scope stays).
    pub scope: Option<String>,
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
    /// The confirmation form's CSRF token (the citizen clicked "log out").
    pub csrf: Option<String>,
}

fn oauth(error: &'static str, description: impl Into<String>) -> Error {
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

impl JsonRecord for Grant {
    const KIND: Kind = Kind::OidcGrant;
    type Id = str;
}

impl Potvrda {
    /// The registered client with this id.
    fn client(&self, id: &str) -> Option<&OidcClient> {
        self.settings
            .oidc
            .clients
            .iter()
            .find(|c| c.client_id == id)
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
            grant_types_supported: v(&["authorization_code", "refresh_token"]),
            subject_types_supported: v(&["public"]),
            id_token_signing_alg_values_supported: v(&["RS256", "ES256"]),
            token_endpoint_auth_methods_supported: v(&[
                "client_secret_basic",
                "client_secret_post",
                "none",
            ]),
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
            acr_values_supported: v(&[ACR_PWD_PUSH]),
            authorization_response_iss_parameter_supported: true,
        }
    }

    /// `/oauth2/authorize`: check the request; answer from the session, or
    /// show the login form.
    pub async fn oidc_authorize(
        &self,
        p: AuthorizeParams,
        session_cookie: Option<&str>,
        binding_cookie: Option<&str>,
        caller: &Caller,
    ) -> Result<AuthorizeOutcome> {
        // Until the client and its redirect URI are known, nothing is redirected.
        let Some(client) = p.client_id.as_deref().and_then(|id| self.client(id)) else {
            return Ok(AuthorizeOutcome::ErrorPage(
                "Unknown client: the service that sent you here is not registered.".into(),
            ));
        };
        let Some(redirect_uri) = p
            .redirect_uri
            .as_deref()
            .filter(|r| client.redirect_uris.iter().any(|u| u == r))
        else {
            return Ok(AuthorizeOutcome::ErrorPage(
                "The return address is not registered for this service.".into(),
            ));
        };
        let state = p.state.clone();
        let fail = |error: &str, description: &str| {
            let mut params = vec![
                ("error", error),
                ("error_description", description),
                ("iss", self.public_url.as_str()),
            ];
            if let Some(s) = &state {
                params.push(("state", s));
            }
            Ok(AuthorizeOutcome::Redirect(redirect_with(
                redirect_uri,
                &params,
            )))
        };
        if p.response_type.as_deref() != Some("code") {
            return fail("unsupported_response_type", "response_type must be code");
        }
        let scope = p.scope.clone().unwrap_or_default();
        let scopes: Vec<&str> = scope.split_ascii_whitespace().collect();
        if !scopes.contains(&"openid") {
            return fail("invalid_scope", "scope must include openid");
        }
        if let Some(unknown) = scopes.iter().find(|s| !SCOPES.contains(s)) {
            return fail("invalid_scope", &format!("unknown scope {unknown}"));
        }
        match (&p.code_challenge, p.code_challenge_method.as_deref()) {
            (None, _) if client.is_public() => {
                return fail("invalid_request", "public clients must use PKCE (S256)");
            }
            (Some(_), m) if m != Some("S256") => {
                return fail("invalid_request", "code_challenge_method must be S256");
            }
            (Some(c), _) if c.len() != 43 || URL_SAFE_NO_PAD.decode(c).is_err() => {
                return fail(
                    "invalid_request",
                    "code_challenge must be a base64url SHA-256",
                );
            }
            (None, Some(_)) => {
                return fail(
                    "invalid_request",
                    "code_challenge_method without code_challenge",
                );
            }
            _ => {}
        }
        if p.nonce.as_ref().is_some_and(|n| n.len() > 255)
            || state.as_ref().is_some_and(|s| s.len() > 1024)
        {
            return fail("invalid_request", "nonce or state too long");
        }
        let max_age = match p.max_age.as_deref().map(str::parse::<u64>) {
            None => None,
            Some(Ok(a)) => Some(i64::try_from(a).unwrap_or(i64::MAX)),
            Some(Err(_)) => return fail("invalid_request", "max_age must be a number of seconds"),
        };
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
            return fail("invalid_request", "unknown prompt value");
        }
        let (prompt_login, prompt_none) = (prompts.contains(&"login"), prompts.contains(&"none"));
        if prompt_login && prompt_none {
            return fail(
                "invalid_request",
                "prompt=none cannot be combined with login",
            );
        }
        let now = self.clock.now();
        let request = AuthzRequest {
            client_id: client.client_id.clone(),
            redirect_uri: redirect_uri.to_owned(),
            scope: scopes.join(" "),
            state: state.clone(),
            nonce: p.nonce.clone(),
            code_challenge: p.code_challenge.clone(),
            binding: String::new(),
            login: None,
        };
        // Single sign-on: a live session, fresh enough, and no forced login.
        if !prompt_login
            && let Some(session) = self.session(session_cookie, now).await?
            && max_age.is_none_or(|a| now - session.auth_time <= a)
        {
            let url = self.issue_code(&request, &session).await?;
            tracing::info!(
                client_id = client.client_id,
                user_id = session.user_id,
                "single sign-on: code issued from the session"
            );
            return Ok(AuthorizeOutcome::Redirect(url));
        }
        if prompt_none {
            return fail("login_required", "no session, or it is too old");
        }
        let (binding, set_binding) = match binding_cookie.filter(|b| b.len() >= 32 && b.len() <= 64)
        {
            Some(b) => (b.to_owned(), None),
            None => {
                let b = clock::token::<32>(self.rng.as_ref())?;
                (b.clone(), Some(b))
            }
        };
        let id = clock::token::<24>(self.rng.as_ref())?;
        let request = AuthzRequest {
            binding: sha256_b64(binding.as_bytes()),
            ..request
        };
        self.records()
            .put(id.as_str(), &request, now + REQUEST_TTL)
            .await?;
        let _ = caller;
        Ok(AuthorizeOutcome::Login(LoginPage {
            request: id,
            client_name: client.name.clone(),
            error: None,
            set_binding,
        }))
    }

    async fn load_request(&self, id: &str, binding: Option<&str>) -> Result<Option<AuthzRequest>> {
        if id.is_empty() || id.len() > 64 {
            return Ok(None);
        }
        let now = self.clock.now();
        let Some(req) = self.records::<AuthzRequest>().get(id, now).await? else {
            return Ok(None);
        };
        let bound = binding.is_some_and(|b| ct_eq_str(&sha256_b64(b.as_bytes()), &req.binding));
        Ok(bound.then_some(req))
    }

    fn expired_page() -> StepOutcome {
        StepOutcome::ErrorPage(
            "This login has expired or was opened in another browser. Go back to the service and start again."
                .into(),
        )
    }

    /// The login form was posted: check the password and send the push.
    pub async fn oidc_login(
        &self,
        request_id: &str,
        binding: Option<&str>,
        username: String,
        password: String,
        caller: &Caller,
    ) -> Result<StepOutcome> {
        let Some(mut req) = self.load_request(request_id, binding).await? else {
            return Ok(Self::expired_page());
        };
        let client_name = self
            .client(&req.client_id)
            .map(|c| c.name.clone())
            .unwrap_or_default();
        let again = |message: &str| {
            Ok(StepOutcome::Login(LoginPage {
                request: request_id.to_owned(),
                client_name: client_name.clone(),
                error: Some(message.to_owned()),
                set_binding: None,
            }))
        };
        let login = LoginRequest {
            username,
            password,
            context: Some(LoginContext {
                ip: caller.ip.map(|ip| ip.to_string()),
                user_agent: caller.user_agent.clone(),
                service: Some(client_name.clone()),
            }),
            audience: LoginAudience::Portal,
        };
        let started = match self.start_login_for(login, Purpose::Portal, caller).await {
            Ok(s) => s,
            Err(Error::InvalidCredentials) => return again("Wrong username or password."),
            Err(Error::NoDevice) => {
                return again(
                    "This account has no phone to confirm with. Visit your municipality's counter.",
                );
            }
            Err(Error::RateLimited { .. }) => {
                return again("Too many attempts. Wait a few minutes and try again.");
            }
            Err(Error::InvalidRequest(_)) => return again("Enter your username and password."),
            Err(e) => return Err(e),
        };
        let pending = PendingLogin {
            login_id: started.login_id,
            login_secret: started.login_secret,
            number: started.number,
            code: started.code,
        };
        let shown = pending.shown();
        req.login = Some(pending);
        let now = self.clock.now();
        self.records()
            .put(request_id, &req, now + REQUEST_TTL)
            .await?;
        Ok(StepOutcome::Waiting {
            request: request_id.to_owned(),
            number: shown,
            client_name,
            error: None,
        })
    }

    /// The waiting page's long-poll: the login's status, without consuming it.
    pub async fn oidc_wait(
        &self,
        request_id: &str,
        binding: Option<&str>,
        wait: u64,
    ) -> Result<LoginStatus> {
        let Some(req) = self.load_request(request_id, binding).await? else {
            return Err(Error::NotFound);
        };
        let Some(login) = req.login else {
            return Err(Error::NotFound);
        };
        let (answer, _) = self
            .wait_for_decision(&login.login_id, Some(&login.login_secret), wait, false)
            .await?;
        Ok(answer.status)
    }

    /// "Continue": once approved, end the request with a code (and a
    /// session); while pending, the waiting page again.
    pub async fn oidc_continue(
        &self,
        request_id: &str,
        binding: Option<&str>,
    ) -> Result<StepOutcome> {
        let Some(req) = self.load_request(request_id, binding).await? else {
            return Ok(Self::expired_page());
        };
        let client_name = self
            .client(&req.client_id)
            .map(|c| c.name.clone())
            .unwrap_or_default();
        let Some(pending) = req.login.clone() else {
            return Ok(StepOutcome::Login(LoginPage {
                request: request_id.to_owned(),
                client_name,
                error: None,
                set_binding: None,
            }));
        };
        let (answer, login) = self
            .wait_for_decision(&pending.login_id, Some(&pending.login_secret), 0, false)
            .await?;
        let now = self.clock.now();
        let deny = |description: &str| {
            let mut params = vec![
                ("error", "access_denied"),
                ("error_description", description),
                ("iss", self.public_url.as_str()),
            ];
            if let Some(s) = &req.state {
                params.push(("state", s));
            }
            redirect_with(&req.redirect_uri, &params)
        };
        match answer.status {
            LoginStatus::Pending => Ok(StepOutcome::Waiting {
                request: request_id.to_owned(),
                number: pending.shown(),
                client_name,
                error: None,
            }),
            LoginStatus::Approved => {
                // Exactly one "continue" ends the request, and the approval is consumed once.
                if self
                    .records::<AuthzRequest>()
                    .take(request_id, now)
                    .await?
                    .is_none()
                    // (An empty escrow: here the code is handed over, not a token.)
                    || self
                        .store
                        .take_token(&pending.login_id, b"", now, 0)
                        .await?
                        .is_none_or(|e| !e.is_empty())
                {
                    return Ok(Self::expired_page());
                }
                let generation = self
                    .store
                    .user(&login.record.user_id)
                    .await?
                    .map_or(0, |u| u.generation);
                let session = Session {
                    sid: new_id(self.rng.as_ref())?,
                    user_id: login.record.user_id.clone(),
                    auth_time: login.decided_at.unwrap_or(now),
                    generation,
                };
                let cookie = clock::token::<32>(self.rng.as_ref())?;
                self.records()
                    .put(
                        sha256_b64(cookie.as_bytes()).as_str(),
                        &session,
                        now + secs(self.settings.oidc.session_ttl),
                    )
                    .await?;
                let url = self.issue_code(&req, &session).await?;
                Ok(StepOutcome::Redirect {
                    url,
                    session: Some(cookie),
                })
            }
            other => {
                self.records::<AuthzRequest>().delete(request_id).await?;
                let why = if other == LoginStatus::Expired {
                    "the confirmation on the phone expired"
                } else {
                    "the login was not confirmed on the phone"
                };
                Ok(StepOutcome::Redirect {
                    url: deny(why),
                    session: None,
                })
            }
        }
    }

    /// The phone has no network: its offline code (or a recovery code)
    /// typed on the waiting page stands in for the approval. A wrong code
    /// counts as a failed password; the waiting page says so.
    pub async fn oidc_code(
        &self,
        request_id: &str,
        binding: Option<&str>,
        code: &str,
        caller: &Caller,
    ) -> Result<StepOutcome> {
        let Some(req) = self.load_request(request_id, binding).await? else {
            return Ok(Self::expired_page());
        };
        let Some(pending) = req.login else {
            return Ok(Self::expired_page());
        };
        match self
            .login_with_code(&pending.login_id, Some(&pending.login_secret), code, caller)
            .await
        {
            Ok(_) | Err(Error::Expired | Error::AlreadyDecided) => {
                self.oidc_continue(request_id, binding).await
            }
            Err(Error::InvalidCredentials) => Ok(StepOutcome::Waiting {
                request: request_id.to_owned(),
                number: pending.shown(),
                client_name: self
                    .client(&req.client_id)
                    .map(|c| c.name.clone())
                    .unwrap_or_default(),
                error: Some("Pogrešan kod. · Wrong code.".into()),
            }),
            Err(e) => Err(e),
        }
    }

    async fn session(&self, cookie: Option<&str>, now: i64) -> Result<Option<Session>> {
        let Some(cookie) = cookie.filter(|c| !c.is_empty() && c.len() <= 64) else {
            return Ok(None);
        };
        let session = self
            .records::<Session>()
            .get(&sha256_b64(cookie.as_bytes()), now)
            .await?;
        let Some(session) = session else {
            return Ok(None);
        };
        // A session outlives nothing that ends the account's use: a lock
        // (a fraud report) or a deactivation ends single sign-on at once.
        Ok(self
            .account_usable(&session.user_id, session.generation)
            .await?
            .then_some(session))
    }

    /// Whether the account exists, is not locked nor deactivated, and no
    /// reset, password change, device revocation or lock came after the
    /// login that made the session or grant (security generation).
    async fn account_usable(&self, user_id: &str, generation: u64) -> Result<bool> {
        Ok(self
            .store
            .user(user_id)
            .await?
            .is_some_and(|u| !u.locked && !u.deactivated && u.generation == generation))
    }

    /// A code for `req`, redeemable once within 60 s; the redirect URL carrying it.
    async fn issue_code(&self, req: &AuthzRequest, session: &Session) -> Result<String> {
        let now = self.clock.now();
        let code = clock::token::<32>(self.rng.as_ref())?;
        let record = CodeRecord {
            client_id: req.client_id.clone(),
            redirect_uri: req.redirect_uri.clone(),
            code_challenge: req.code_challenge.clone(),
            nonce: req.nonce.clone(),
            scope: req.scope.clone(),
            grant: GrantBase {
                user_id: session.user_id.clone(),
                auth_time: session.auth_time,
                sid: session.sid.clone(),
                generation: session.generation,
                gid: new_id(self.rng.as_ref())?,
            },
            used: false,
        };
        self.records()
            .put(
                sha256_b64(code.as_bytes()).as_str(),
                &record,
                now + CODE_TTL,
            )
            .await?;
        let mut params = vec![("code", code.as_str()), ("iss", self.public_url.as_str())];
        if let Some(s) = &req.state {
            params.push(("state", s));
        }
        Ok(redirect_with(&req.redirect_uri, &params))
    }

    /// Authenticate the client at the token endpoint.
    fn authenticate_client(
        &self,
        form: &TokenForm,
        basic: Option<(String, String)>,
    ) -> Result<&OidcClient> {
        let (id, secret) = match (basic, &form.client_id) {
            (Some((id, secret)), form_id) => {
                if form_id.as_ref().is_some_and(|f| *f != id) || form.client_secret.is_some() {
                    return Err(oauth(
                        "invalid_request",
                        "use one client authentication method",
                    ));
                }
                (id, Some(secret))
            }
            (None, Some(id)) => (id.clone(), form.client_secret.clone()),
            (None, None) => {
                return Err(oauth("invalid_client", "client authentication is required"));
            }
        };
        let client = self
            .client(&id)
            .ok_or_else(|| oauth("invalid_client", "unknown client"))?;
        match (&client.client_secret, secret) {
            (None, None) => Ok(client),
            (Some(expected), Some(given)) if ct_eq_str(expected.expose_secret(), &given) => {
                Ok(client)
            }
            (None, Some(_)) => Err(oauth("invalid_client", "a public client has no secret")),
            _ => Err(oauth("invalid_client", "client authentication failed")),
        }
    }

    /// `POST /oauth2/token`.
    pub async fn oidc_token(
        &self,
        form: TokenForm,
        basic: Option<(String, String)>,
    ) -> Result<TokenResponse> {
        let client = self.authenticate_client(&form, basic)?;
        match form.grant_type.as_deref() {
            Some("authorization_code") => self.redeem_code(client, &form).await,
            Some("refresh_token") => self.refresh(client, &form).await,
            Some(_) => Err(oauth(
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token",
            )),
            None => Err(oauth("invalid_request", "grant_type is required")),
        }
    }

    async fn redeem_code(&self, client: &OidcClient, form: &TokenForm) -> Result<TokenResponse> {
        let code = form
            .code
            .as_deref()
            .filter(|c| !c.is_empty() && c.len() <= 128)
            .ok_or_else(|| oauth("invalid_request", "code is required"))?;
        let now = self.clock.now();
        let k = sha256_b64(code.as_bytes());
        let codes = self.records::<CodeRecord>();
        let stored = codes
            .read(&k, now)
            .await?
            .ok_or_else(|| oauth("invalid_grant", "the code is unknown or expired"))?;
        let record = &stored.value;
        // The client first: only the code's own (authenticated) client can
        // set off the reuse revocation, never another client presenting it
        // (security round 2, finding 8).
        if record.client_id != client.client_id {
            return Err(oauth(
                "invalid_grant",
                "the code was issued to another client",
            ));
        }
        if record.used {
            self.revoke_grant(&record.grant.gid, "code_reused").await?;
            return Err(oauth(
                "invalid_grant",
                "the code was already used; what it issued is revoked",
            ));
        }
        if form.redirect_uri.as_deref() != Some(record.redirect_uri.as_str()) {
            return Err(oauth(
                "invalid_grant",
                "redirect_uri does not match the authorization request",
            ));
        }
        match (&record.code_challenge, form.code_verifier.as_deref()) {
            (Some(challenge), Some(verifier)) if pkce_ok(verifier) => {
                let computed = sha256_b64(verifier.as_bytes());
                if !ct_eq_str(&computed, challenge) {
                    return Err(oauth("invalid_grant", "code_verifier does not match"));
                }
            }
            (Some(_), _) => {
                return Err(oauth("invalid_grant", "a valid code_verifier is required"));
            }
            (None, Some(_)) => {
                return Err(oauth(
                    "invalid_grant",
                    "no code_challenge was sent for this code",
                ));
            }
            (None, None) => {}
        }
        if !self
            .account_usable(&record.grant.user_id, record.grant.generation)
            .await?
        {
            return Err(oauth(
                "invalid_grant",
                "the account is locked or deactivated",
            ));
        }
        // The one redemption: whoever swaps the record to "used" wins; a racing
        // second use finds it used and revokes.
        let used = CodeRecord {
            used: true,
            ..record.clone()
        };
        if !codes
            .swap(&k, &stored, &used, now + USED_CODE_TTL, now)
            .await?
        {
            self.revoke_grant(&record.grant.gid, "code_reused").await?;
            return Err(oauth(
                "invalid_grant",
                "the code was already used; what it issued is revoked",
            ));
        }
        let secret = clock::token::<32>(self.rng.as_ref())?;
        let grant = Grant {
            client_id: client.client_id.clone(),
            scope: record.scope.clone(),
            base: record.grant.clone(),
            current: sha256_b64(secret.as_bytes()),
            revoked: false,
        };
        self.records()
            .put(
                grant.base.gid.as_str(),
                &grant,
                now + secs(self.settings.oidc.refresh_ttl),
            )
            .await?;
        self.tokens(client, &grant, record.nonce.as_deref(), &secret, now)
            .await
    }

    async fn refresh(&self, client: &OidcClient, form: &TokenForm) -> Result<TokenResponse> {
        let presented = form
            .refresh_token
            .as_deref()
            .ok_or_else(|| oauth("invalid_request", "refresh_token is required"))?;
        let invalid = || {
            oauth(
                "invalid_grant",
                "the refresh token is invalid, expired or revoked",
            )
        };
        let (gid, secret) = presented.split_once('.').ok_or_else(invalid)?;
        if gid.len() != 36 {
            return Err(invalid());
        }
        let now = self.clock.now();
        let grants = self.records::<Grant>();
        let stored = grants.read(gid, now).await?.ok_or_else(invalid)?;
        let grant = &stored.value;
        if grant.revoked
            || grant.client_id != client.client_id
            || !self
                .account_usable(&grant.base.user_id, grant.base.generation)
                .await?
        {
            return Err(invalid());
        }
        if !ct_eq_str(&sha256_b64(secret.as_bytes()), &grant.current) {
            // An old token of the family: someone holds a copy. Revoke it all.
            self.revoke_grant(gid, "refresh_reused").await?;
            return Err(oauth(
                "invalid_grant",
                "the refresh token was already used; the grant is revoked",
            ));
        }
        let next = clock::token::<32>(self.rng.as_ref())?;
        let rotated = Grant {
            current: sha256_b64(next.as_bytes()),
            ..grant.clone()
        };
        if !grants
            .swap(
                gid,
                &stored,
                &rotated,
                now + secs(self.settings.oidc.refresh_ttl),
                now,
            )
            .await?
        {
            // Two refreshes with the same token at once: one of them is a copy.
            self.revoke_grant(gid, "refresh_reused").await?;
            return Err(oauth(
                "invalid_grant",
                "the refresh token was already used; the grant is revoked",
            ));
        }
        self.tokens(client, &rotated, None, &next, now).await
    }

    /// Mark a grant revoked: its refresh tokens fail, its access tokens fail at UserInfo.
    async fn revoke_grant(&self, gid: &str, reason: &'static str) -> Result<()> {
        let now = self.clock.now();
        let grants = self.records::<Grant>();
        let mut user = None;
        // A code reused before its tokens were stored still leaves a revoked marker.
        let revoked = match grants.get(gid, now).await? {
            Some(mut g) => {
                user = Some(g.base.user_id.clone());
                g.revoked = true;
                g
            }
            None => Grant {
                client_id: String::new(),
                scope: String::new(),
                base: GrantBase {
                    user_id: String::new(),
                    auth_time: 0,
                    sid: String::new(),
                    generation: 0,
                    gid: gid.to_owned(),
                },
                current: String::new(),
                revoked: true,
            },
        };
        grants
            .put(gid, &revoked, now + secs(self.settings.oidc.refresh_ttl))
            .await?;
        tracing::warn!(
            gid,
            reason,
            "grant revoked: a code or refresh token was used twice"
        );
        let mut event = Event::new(AuditKind::GrantRevoked, now)
            .with("gid", gid)
            .with("reason", reason)
            .with("client_id", revoked.client_id.as_str());
        if let Some(u) = &user {
            event = event.user(u);
        }
        self.audit.record(event).await;
        Ok(())
    }

    /// ID token, access token and the refresh token `gid.secret`.
    async fn tokens(
        &self,
        client: &OidcClient,
        grant: &Grant,
        nonce: Option<&str>,
        refresh_secret: &str,
        now: i64,
    ) -> Result<TokenResponse> {
        let keys = self.keyring.current();
        let ttl = self.settings.tokens.token_ttl;
        let amr: Vec<String> = AMR_PWD_MFA.iter().map(|s| (*s).to_owned()).collect();
        let id_claims = IdTokenClaims {
            iss: self.public_url.clone(),
            sub: grant.base.user_id.clone(),
            aud: client.client_id.clone(),
            azp: client.client_id.clone(),
            exp: now + secs(ttl),
            iat: now,
            auth_time: grant.base.auth_time,
            nonce: nonce.map(str::to_owned),
            amr: amr.clone(),
            acr: ACR_PWD_PUSH.into(),
            sid: grant.base.sid.clone(),
        };
        let alg = if client.id_token_signed_response_alg == "ES256" {
            Algorithm::ES256
        } else {
            Algorithm::RS256
        };
        let (signer, kid) = keys.current.signer(alg);
        let mut header = Header::new(alg);
        header.kid = Some(kid.to_owned());
        let id_token = jsonwebtoken::encode(&header, &id_claims, signer)?;
        let jti = new_id(self.rng.as_ref())?;
        let access_claims = OidcAccessClaims {
            iss: self.public_url.clone(),
            sub: grant.base.user_id.clone(),
            aud: client.client_id.clone(),
            client_id: client.client_id.clone(),
            scope: grant.scope.clone(),
            exp: now + secs(ttl),
            iat: now,
            jti: jti.clone(),
            auth_time: grant.base.auth_time,
            amr,
            gid: grant.base.gid.clone(),
        };
        let (signer, kid) = keys.current.signer(Algorithm::ES256);
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.to_owned());
        header.typ = Some(TYP_ACCESS_TOKEN.into());
        let access_token = jsonwebtoken::encode(&header, &access_claims, signer)?;
        self.audit
            .record(
                Event::new(AuditKind::TokenIssued, now)
                    .user(&grant.base.user_id)
                    .with("client_id", client.client_id.as_str())
                    .with("jti", jti.as_str())
                    .with("gid", grant.base.gid.as_str()),
            )
            .await;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer".into(),
            expires_in: ttl.as_secs(),
            id_token,
            refresh_token: format!("{}.{refresh_secret}", grant.base.gid),
            scope: grant.scope.clone(),
        })
    }

    /// `GET /oauth2/userinfo` for an access token this provider issued.
    pub async fn oidc_userinfo(&self, token: Option<&str>) -> Result<UserInfo> {
        let invalid = |d: &str| oauth("invalid_token", d);
        let token = token.ok_or_else(|| invalid("an access token is required"))?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("not a JWT"))?;
        if header.alg != Algorithm::ES256 || header.typ.as_deref() != Some(TYP_ACCESS_TOKEN) {
            return Err(invalid("not an access token of this provider"));
        }
        let keys = self.keyring.current();
        let (key, _) = header
            .kid
            .as_deref()
            .and_then(|kid| keys.verifier(kid))
            .ok_or_else(|| invalid("unknown key"))?;
        let mut v = Validation::new(Algorithm::ES256);
        v.validate_aud = false;
        v.validate_exp = false;
        v.set_issuer(&[&self.public_url]);
        let claims = jsonwebtoken::decode::<OidcAccessClaims>(token, key, &v)
            .map_err(|_| invalid("the token does not verify"))?
            .claims;
        let now = self.clock.now();
        if claims.exp <= now {
            return Err(invalid("the token has expired"));
        }
        let grant = self.records::<Grant>().get(&claims.gid, now).await?;
        let Some(grant) = grant.filter(|g| !g.revoked) else {
            return Err(invalid("the grant was revoked"));
        };
        let user = self
            .store
            .user(&claims.sub)
            .await?
            .filter(|u| !u.locked && !u.deactivated && u.generation == grant.base.generation)
            .ok_or_else(|| invalid("no such user, or the account is locked"))?;
        let scopes: Vec<&str> = claims.scope.split_ascii_whitespace().collect();
        let profile = scopes.contains(&"profile");
        Ok(UserInfo {
            sub: user.id.clone(),
            preferred_username: profile.then(|| user.username.clone()),
            name: profile.then(|| user.display_name.clone()),
            email: user.email.clone().filter(|_| scopes.contains(&"email")),
            phone_number: user.phone.clone().filter(|_| scopes.contains(&"phone")),
        })
    }

    /// RP-initiated logout. The session ends when the request proves it
    /// comes from the session's own client (an ID token of this session as
    /// `id_token_hint`) or from the citizen (the confirmation form's CSRF
    /// token); a bare cross-site GET only asks (security round 2, finding 9).
    pub async fn oidc_logout(
        &self,
        p: LogoutParams,
        session_cookie: Option<&str>,
    ) -> Result<LogoutOutcome> {
        let now = self.clock.now();
        let csrf = p.csrf.as_deref();
        let hinted = p.id_token_hint.as_deref().and_then(|t| self.hinted(t));
        let client_id = match (&hinted, p.client_id.clone()) {
            (Some((h, _)), Some(c)) if *h != c => None,
            (Some((h, _)), _) => Some(h.clone()),
            (None, c) => c,
        };
        let target = client_id
            .as_deref()
            .and_then(|id| self.client(id))
            .zip(p.post_logout_redirect_uri.as_deref())
            .filter(|(c, uri)| c.post_logout_redirect_uris.iter().any(|u| u == uri))
            .map(|(_, uri)| match &p.state {
                Some(s) => redirect_with(uri, &[("state", s)]),
                None => uri.to_owned(),
            });
        let Some(cookie) = session_cookie.filter(|c| !c.is_empty() && c.len() <= 64) else {
            return Ok(LogoutOutcome::Done(target));
        };
        let k = sha256_b64(cookie.as_bytes());
        let sessions = self.records::<Session>();
        let Some(session) = sessions.get(&k, now).await? else {
            return Ok(LogoutOutcome::Done(target));
        };
        let expected = self.logout_csrf(cookie);
        let proven = hinted
            .as_ref()
            .is_some_and(|(_, sid)| ct_eq_str(sid, &session.sid))
            || csrf.is_some_and(|t| ct_eq_str(t, &expected));
        if !proven {
            if csrf.is_some() {
                return Err(Error::Forbidden);
            }
            return Ok(LogoutOutcome::Confirm { csrf: expected });
        }
        if sessions.take(&k, now).await?.is_some() {
            tracing::info!(
                user_id = session.user_id,
                "provider session ended by logout"
            );
            self.audit
                .record(
                    Event::new(AuditKind::SessionEnded, now)
                        .user(&session.user_id)
                        .with("sid", session.sid.as_str()),
                )
                .await;
        }
        Ok(LogoutOutcome::Done(target))
    }

    /// The logout form's CSRF token: a keyed hash of the session cookie.
    fn logout_csrf(&self, cookie: &str) -> String {
        self.keys
            .pepper
            .hash(format!("logout-csrf\0{cookie}").as_bytes())
    }

    /// The client (`aud`) and session (`sid`) of an ID token this provider
    /// signed (expiry does not matter for a logout hint).
    fn hinted(&self, id_token: &str) -> Option<(String, String)> {
        let header = jsonwebtoken::decode_header(id_token).ok()?;
        let keys = self.keyring.current();
        let (key, alg) = keys.verifier(header.kid.as_deref()?)?;
        if header.alg != alg {
            return None;
        }
        let mut v = Validation::new(alg);
        v.validate_exp = false;
        v.validate_aud = false;
        v.set_issuer(&[&self.public_url]);
        jsonwebtoken::decode::<IdTokenClaims>(id_token, key, &v)
            .ok()
            .map(|d| (d.claims.aud, d.claims.sid))
    }
}

/// What a logout request leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoutOutcome {
    /// Done (or nothing to end): where to send the browser, when the client
    /// registered it.
    Done(Option<String>),
    /// Ask the citizen first: a form that posts back with this token.
    Confirm {
        /// The form's CSRF token.
        csrf: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

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
