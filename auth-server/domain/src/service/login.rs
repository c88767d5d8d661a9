//! The password step of a login: limits, the guard, Argon2id, then the
//! challenge.

use super::*;
use crate::service::challenge::Origin;
use crate::service::oidc::ClientCredentials;
use potvrda_i18n::{Locale, Tr};

capability! {
    /// Starting a login: the password, the limits, the challenges.
    pub Logins
}

impl Logins<'_> {
    /// `POST /v1/logins`, by an authenticated client registered for the
    /// portal API: check the password and send a challenge to every device
    /// of the user, for a portal service or (staff only) the admin API. The
    /// phone shows the client's registered name, and the citizen's address
    /// and browser only from a client registered to report them.
    pub async fn start_login(
        &self,
        creds: ClientCredentials,
        mut req: LoginRequest,
        caller: &Caller,
    ) -> Result<LoginResponse> {
        let client = self.client_auth().portal(creds).await?;
        let purpose = match req.audience {
            LoginAudience::Portal => Purpose::Portal,
            LoginAudience::Admin => Purpose::AdminApi,
        };
        let reported = req.context.take().unwrap_or_default();
        let trusted = client.reports_user_context;
        req.context = Some(LoginContext {
            ip: reported.ip.filter(|_| trusted),
            user_agent: reported.user_agent.filter(|_| trusted),
            service: Some(client.name.clone()),
            binding_message: None,
            own_service: None,
        });
        let origin = Origin {
            client: Some(client.client_id.clone()),
            ttl: None,
        };
        self.start_login_for(req, purpose, caller, &origin).await
    }

    pub(super) async fn start_login_inner(
        &self,
        req: LoginRequest,
        purpose: Purpose,
        caller: &Caller,
        origin: &Origin,
    ) -> Result<LoginResponse> {
        let (username, context) = checked_login(&req, purpose)?;
        let now = self.clock.now();
        self.per_address_limits(caller.ip, now).await?;
        let user = self.store.user_by_name(&username).await?;
        let user_id = user.as_ref().map(|u| &u.id);
        let gate = self
            .guards()
            .password_gate(&username, user_id, caller.ip, now)
            .await?;
        if !gate.delay.is_zero() {
            self.clock.sleep(gate.delay).await;
        }
        let password = SecretString::from(req.password.expose().to_owned());
        let started = std::time::Instant::now();
        let ok = self
            .hasher
            .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
            .await?;
        self.metrics.password_verified(started.elapsed());
        let user = match user {
            Some(user) if ok && gate.locked.is_none() && !user.deactivated => user,
            other => {
                return Err(self
                    .wrong_password(&gate, other.as_ref(), caller, now)
                    .await?);
            }
        };
        self.guards().password_succeeded(&gate).await?;
        // Told only after the right password: a guesser learns nothing.
        if user.locked {
            return Err(self
                .refused_after_password(&user, "account_locked", Error::AccountLocked, caller, now)
                .await);
        }
        // Staff authority only from a login made for it (told only after the right password).
        if purpose != Purpose::Portal && user.role == Role::Citizen {
            return Err(self
                .refused_after_password(&user, "not_staff", Error::Forbidden, caller, now)
                .await);
        }
        self.challenges()
            .challenge(&user, context, purpose.audience(), caller, origin)
            .await
    }

    /// Per client address, before any hashing: logins (counted here) and
    /// failed logins (looked at); 429, told.
    async fn per_address_limits(&self, ip: Option<IpAddr>, now: i64) -> Result<()> {
        let Some(ip) = ip else {
            return Ok(());
        };
        let limits = &self.settings.limits;
        self.limit(&RateKey::LoginFrom(ip), true, limits.ip_login_limit, now)
            .await?;
        self.limit(&RateKey::FailedFrom(ip), false, limits.ip_failed_limit, now)
            .await
    }

    /// A wrong password (or a locked username, which answers alike):
    /// counted for the address and under the guard, audited; the error to
    /// answer with.
    async fn wrong_password(
        &self,
        gate: &super::guard::Gate,
        user: Option<&crate::store::User>,
        caller: &Caller,
        now: i64,
    ) -> Result<Error> {
        if let Some(ip) = caller.ip {
            let window = secs(self.settings.limits.rate_window);
            self.store
                .rate_hit(&RateKey::FailedFrom(ip), now, window)
                .await?;
        }
        let user_id = user.map(|u| u.id.as_str());
        self.guards()
            .password_failed(gate, user_id, caller, now)
            .await?;
        if let Some(scope) = gate.locked {
            tracing::warn!(
                scope,
                "login refused: too many failed passwords for this username"
            );
        }
        let reason = if gate.locked.is_some() {
            "password_locked"
        } else {
            "invalid_credentials"
        };
        let mut event = Event::new(AuditKind::LoginFailed, now)
            .caller(caller)
            .with("reason", reason);
        if let Some(u) = user_id {
            event = event.user(u);
        }
        self.audit.record(event).await;
        Ok(Error::InvalidCredentials)
    }

    /// A refusal told only after the right password, audited.
    async fn refused_after_password(
        &self,
        user: &crate::store::User,
        reason: &'static str,
        error: Error,
        caller: &Caller,
        now: i64,
    ) -> Error {
        self.audit
            .record(
                Event::new(AuditKind::LoginFailed, now)
                    .user(&user.id)
                    .caller(caller)
                    .with("reason", reason),
            )
            .await;
        error
    }
}

/// The request's own checks: lengths, the context (the service named by
/// the server when the purpose names it, never the caller's word), the
/// username as stored.
fn checked_login(req: &LoginRequest, purpose: Purpose) -> Result<(String, LoginContext)> {
    if req.password.expose().len() > MAX_PASSWORD_LEN {
        return Err(Error::InvalidRequest(format!(
            "password longer than {MAX_PASSWORD_LEN} bytes"
        )));
    }
    if req.username.len() > MAX_USERNAME_LEN {
        return Err(Error::InvalidRequest(format!(
            "username longer than {MAX_USERNAME_LEN} bytes"
        )));
    }
    let mut context = clean_context(req.context.clone().unwrap_or_default())?;
    if let Some(own) = purpose.service() {
        context = own_context(context, own);
    }
    Ok((req.username.trim().to_ascii_lowercase(), context))
}

/// The context of a login for one of Potvrda's own services: the phone
/// names it in its own language; `service` is its name in the default
/// language (the audit trail's, and what a phone that predates
/// `own_service` shows unless the challenge names it in the device's).
pub(super) fn own_context(context: LoginContext, own: OwnService) -> LoginContext {
    LoginContext {
        service: Some(own_service_name(own, Locale::default())),
        own_service: Some(own),
        ..context
    }
}

/// The name of one of Potvrda's own services in `locale`.
pub(super) fn own_service_name(own: OwnService, locale: Locale) -> String {
    Tr(locale).t(own.message_id())
}

/// What a login is for: who may make it, what the phone shows, what its
/// token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A portal service (the authenticated client names it; the token is never staff authority).
    Portal,
    /// The admin API: staff only, the phone shows [`OwnService::AdminApi`].
    AdminApi,
    /// The counter's web pages: staff only, the phone shows [`OwnService::Counter`].
    Counter,
}

impl Purpose {
    /// The service the phone shows, when the server names it.
    fn service(self) -> Option<OwnService> {
        match self {
            Self::Portal => None,
            Self::AdminApi => Some(OwnService::AdminApi),
            Self::Counter => Some(OwnService::Counter),
        }
    }

    /// The audience of the login's token.
    fn audience(self) -> LoginAudience {
        match self {
            Self::Portal => LoginAudience::Portal,
            Self::AdminApi | Self::Counter => LoginAudience::Admin,
        }
    }
}

impl Logins<'_> {
    /// The browser's password step, shared by the OpenID pages and the
    /// counter: the login request the page's form makes, for `service`
    /// (what the phone shows; the counter's is named by its purpose), from
    /// the caller's address and browser.
    pub(super) async fn browser_login(
        &self,
        username: String,
        password: String,
        service: Option<&str>,
        purpose: Purpose,
        caller: &Caller,
    ) -> Result<LoginResponse> {
        let login = LoginRequest {
            username,
            password: password.into(),
            context: Some(LoginContext {
                ip: caller.ip.map(|ip| ip.to_string()),
                user_agent: caller.user_agent.clone(),
                service: service.map(str::to_owned),
                binding_message: None,
                own_service: None,
            }),
            audience: purpose.audience(),
        };
        self.start_login_for(login, purpose, caller, &Origin::default())
            .await
    }
}

pub(super) fn audience_name(a: LoginAudience) -> &'static str {
    match a {
        LoginAudience::Portal => "portal",
        LoginAudience::Admin => "admin",
    }
}
