//! The authorization endpoint and the browser login step: the request, the
//! password page, waiting for the phone, the single sign-on session and the
//! code it ends with.

use super::consent::Finished;
use super::request::{Checked, checked_request};
use super::*;
use crate::service::assurance::Method;
use crate::store::UserId;
use potvrda_i18n::{Locale, Msg};

capability! {
    /// The authorization endpoint and its login pages.
    pub Authorization
}

impl<'a> Authorization<'a> {
    /// `/oauth2/authorize`: check the request; answer from the session, or
    /// show the login form.
    pub async fn oidc_authorize(
        &self,
        p: AuthorizeParams,
        session_cookie: Option<&str>,
        binding_cookie: Option<&str>,
        _caller: &Caller,
    ) -> Result<AuthorizeOutcome> {
        let (p, pushed) = match self.resolved(p).await? {
            Ok(resolved) => resolved,
            Err(page) => return Ok(page),
        };
        let (client, redirect_uri) = match self.registered(&p).await? {
            Ok(known) => known,
            Err(page) => return Ok(page),
        };
        let client = &client;
        let state = p.state.clone();
        let fail = |error: OAuthError, description: &str| {
            Ok(AuthorizeOutcome::Redirect(self.error_redirect(
                redirect_uri,
                state.as_deref(),
                error,
                description,
            )))
        };
        if client.requires_par() && !pushed {
            return fail(
                OAuthError::InvalidRequest,
                "this client sends its authorization requests through PAR (RFC 9126)",
            );
        }
        let checked = match checked_request(&p, client) {
            Ok(c) => c,
            Err((error, description)) => return fail(error, &description),
        };
        let Checked {
            scopes,
            max_age,
            prompt_login,
            prompt_none,
            prompt_consent,
            level,
            claims,
        } = checked;
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
            dpop_jkt: p.dpop_jkt.clone(),
            claims,
            prompt_consent,
            ui_locale: p.ui_locales.as_deref().and_then(Locale::first_of),
            resent: 0,
        };
        // Single sign-on: a live session, fresh enough, of the level asked
        // for (else a step-up: a new login), and no forced login.
        if !prompt_login
            && let Some(session) = self.session(session_cookie, now).await?
            && max_age.is_none_or(|a| now - session.auth_time <= a)
            && level.is_none_or(|l| Method::PasswordPush.level(&session.proven) >= l)
        {
            if prompt_none && self.consents().needed(&request, &session.user_id).await? {
                return fail(OAuthError::ConsentRequired, "the citizen has not consented");
            }
            tracing::info!(
                client_id = %client.client_id,
                user_id = %session.user_id,
                "single sign-on from the session"
            );
            return Ok(match self.consents().finish(&request, &session).await? {
                Finished::Code(url) => AuthorizeOutcome::Redirect(url),
                Finished::Consent(page) => AuthorizeOutcome::Consent(page),
            });
        }
        if prompt_none {
            return fail(OAuthError::LoginRequired, "no session, or it is too old");
        }
        self.login_page(client, request, binding_cookie, now).await
    }

    /// The request's parameters: a pushed request's (RFC 9126, taken once),
    /// a signed request object's (RFC 9101), or the query's; and whether
    /// they were pushed. A handle or object that does not hold is an error
    /// page: its redirect URI cannot be trusted.
    async fn resolved(
        &self,
        p: AuthorizeParams,
    ) -> Result<std::result::Result<(AuthorizeParams, bool), AuthorizeOutcome>> {
        let page = |m: &'static str| Ok(Err(AuthorizeOutcome::ErrorPage(Msg(m))));
        let Some(client_id) = p.client_id.as_deref() else {
            return Ok(Ok((p, false)));
        };
        if let Some(uri) = &p.request_uri {
            return match self.pushed_requests().take(client_id, uri).await? {
                Some(pushed) => Ok(Ok((pushed, true))),
                None => page("error-link-expired"),
            };
        }
        let Some(jwt) = &p.request else {
            return Ok(Ok((p, false)));
        };
        let Some(client) = self.provider().client(client_id).await? else {
            return page("error-unknown-client");
        };
        match super::jar::request_object(self, &client, jwt).await {
            Ok(signed) => Ok(Ok((signed, false))),
            Err(Error::OAuth { description, .. }) => {
                tracing::warn!(client_id, description, "a request object was refused");
                page("error-bad-request-object")
            }
            Err(e) => Err(e),
        }
    }

    /// The request's client and its registered redirect URI; until both are
    /// known nothing is redirected, and the browser gets an error page.
    async fn registered<'p>(
        &self,
        p: &'p AuthorizeParams,
    ) -> Result<std::result::Result<(OidcClient, &'p str), AuthorizeOutcome>> {
        let client = match p.client_id.as_deref() {
            Some(id) => Provider(self.0).client(id).await?,
            None => None,
        };
        let Some(client) = client else {
            return Ok(Err(AuthorizeOutcome::ErrorPage(Msg(
                "error-unknown-client",
            ))));
        };
        let Some(redirect_uri) = p
            .redirect_uri
            .as_deref()
            .filter(|r| client.redirect_uris.iter().any(|u| u == r))
        else {
            return Ok(Err(AuthorizeOutcome::ErrorPage(Msg(
                "error-redirect-not-registered",
            ))));
        };
        Ok(Ok((client, redirect_uri)))
    }

    /// No usable session: the request is kept (bound to this browser) and
    /// the login form is shown.
    async fn login_page(
        &self,
        client: &OidcClient,
        request: AuthzRequest,
        binding_cookie: Option<&str>,
        now: i64,
    ) -> Result<AuthorizeOutcome> {
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
        Ok(AuthorizeOutcome::Login(LoginPage {
            request: id,
            client_name: client.name.clone(),
            error: None,
            set_binding,
            ui_locale: request.ui_locale,
            return_to: request.redirect_uri.clone(),
        }))
    }

    /// The client's redirect URI with an RFC 6749 §4.1.2.1 error.
    fn error_redirect(
        &self,
        redirect_uri: &str,
        state: Option<&str>,
        error: OAuthError,
        description: &str,
    ) -> String {
        let mut params = vec![
            ("error", error.as_str()),
            ("error_description", description),
            ("iss", self.public_url.as_str()),
        ];
        if let Some(s) = state {
            params.push(("state", s));
        }
        redirect_with(redirect_uri, &params)
    }

    pub(super) async fn load_request(
        &self,
        id: &str,
        binding: Option<&str>,
    ) -> Result<Option<AuthzRequest>> {
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

    /// The name the pages show for a request's client.
    pub(super) async fn client_name(&self, id: &ClientId) -> Result<String> {
        Ok(self
            .provider()
            .client(id)
            .await?
            .map(|c| c.name)
            .unwrap_or_default())
    }

    pub(super) fn expired_page() -> StepOutcome {
        StepOutcome::ErrorPage(Msg("error-login-expired"))
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
        let client_name = self.client_name(&req.client_id).await?;
        let again = |message: &'static str| {
            Ok(StepOutcome::Login(LoginPage {
                request: request_id.to_owned(),
                client_name: client_name.clone(),
                error: Some(Msg(message)),
                set_binding: None,
                ui_locale: req.ui_locale,
                return_to: req.redirect_uri.clone(),
            }))
        };
        let started = match self
            .logins()
            .browser_login(
                username,
                password,
                Some(&client_name),
                Purpose::Portal,
                caller,
            )
            .await
        {
            Ok(s) => s,
            Err(Error::InvalidCredentials) => return again("error-wrong-credentials"),
            Err(Error::NoDevice) => {
                return again("login-no-phone");
            }
            Err(Error::RateLimited { .. }) => {
                return again("login-too-many");
            }
            Err(Error::InvalidRequest(_)) => return again("error-enter-credentials"),
            Err(e) => return Err(e),
        };
        let pending = PendingLogin::from(started);
        req.login = Some(pending.clone());
        let now = self.clock.now();
        self.records()
            .put(request_id, &req, now + REQUEST_TTL)
            .await?;
        Ok(self.waiting_page(request_id, &req, &pending, client_name, None))
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
            .outcomes()
            .wait_for_decision(
                &login.login_id,
                Some(login.login_secret.expose()),
                wait,
                false,
            )
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
        let client_name = self.client_name(&req.client_id).await?;
        let Some(pending) = req.login.clone() else {
            return Ok(StepOutcome::Login(LoginPage {
                request: request_id.to_owned(),
                client_name,
                error: None,
                set_binding: None,
                ui_locale: req.ui_locale,
                return_to: req.redirect_uri.clone(),
            }));
        };
        let (answer, login) = self.decision(&pending).await?;
        match answer.status {
            LoginStatus::Pending => {
                Ok(self.waiting_page(request_id, &req, &pending, client_name, None))
            }
            LoginStatus::Approved => self.approved(request_id, &req, &pending, &login).await,
            other => {
                self.records::<AuthzRequest>().delete(request_id).await?;
                let why = if other == LoginStatus::Expired {
                    "the confirmation on the phone expired"
                } else {
                    "the login was not confirmed on the phone"
                };
                Ok(StepOutcome::Redirect {
                    url: self.denied(&req, why),
                    session: None,
                })
            }
        }
    }

    /// The phone approved: exactly one "continue" ends the request and
    /// consumes the approval; the provider session starts and the code goes
    /// to the client.
    async fn approved(
        &self,
        request_id: &str,
        req: &AuthzRequest,
        pending: &PendingLogin,
        login: &crate::store::Login,
    ) -> Result<StepOutcome> {
        let now = self.clock.now();
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
            proven: login.amr.clone(),
        };
        let cookie = clock::token::<32>(self.rng.as_ref())?;
        self.records()
            .put(
                sha256_b64(cookie.as_bytes()).as_str(),
                &session,
                now + secs(self.settings.oidc.session_ttl),
            )
            .await?;
        Ok(match self.consents().finish(req, &session).await? {
            Finished::Code(url) => StepOutcome::Redirect {
                url,
                session: Some(cookie),
            },
            Finished::Consent(page) => StepOutcome::Consent {
                page,
                session: Some(cookie),
            },
        })
    }

    /// The client's redirect with `access_denied` (RFC 6749 §4.1.2.1, with `iss`).
    pub(super) fn denied(&self, req: &AuthzRequest, description: &str) -> String {
        self.error_redirect(
            &req.redirect_uri,
            req.state.as_deref(),
            OAuthError::AccessDenied,
            description,
        )
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
        let Some(pending) = req.login.clone() else {
            return Ok(Self::expired_page());
        };
        match self
            .recovery_codes()
            .redeem_login_code(
                &pending.login_id,
                Some(pending.login_secret.expose()),
                code,
                caller,
            )
            .await
        {
            Ok(_) | Err(Error::Expired | Error::AlreadyDecided) => {
                self.oidc_continue(request_id, binding).await
            }
            Err(Error::InvalidCredentials) => {
                let client_name = self.client_name(&req.client_id).await?;
                let wrong = Some(Msg("error-wrong-code"));
                Ok(self.waiting_page(request_id, &req, &pending, client_name, wrong))
            }
            Err(e) => Err(e),
        }
    }

    pub(super) async fn session(&self, cookie: Option<&str>, now: i64) -> Result<Option<Session>> {
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
    pub(super) async fn account_usable(&self, user_id: &UserId, generation: u64) -> Result<bool> {
        Ok(self
            .store
            .user(user_id)
            .await?
            .is_some_and(|u| !u.locked && !u.deactivated && u.generation == generation))
    }

    /// A code for `req`, redeemable once within 60 s; the redirect URL carrying it.
    pub(super) async fn issue_code(&self, req: &AuthzRequest, session: &Session) -> Result<String> {
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
                method: Some(Method::PasswordPush),
                proven: session.proven.clone(),
                claims: req.claims.clone(),
            },
            used: false,
            dpop_jkt: req.dpop_jkt.clone(),
        };
        self.logout_notices()
            .remember(&session.user_id, &session.sid, &req.client_id)
            .await?;
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
}
