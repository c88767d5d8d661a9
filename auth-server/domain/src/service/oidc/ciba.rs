//! OpenID Connect Client-Initiated Backchannel Authentication (CIBA Core
//! 1.0) with the citizen's phone as the authentication device: an
//! authenticated client asks for a known citizen (`login_hint` or
//! `id_token_hint`), the phone gets the same signed challenge, number
//! matching and defences as a password login, and the client collects the
//! tokens by polling (`poll`) or after a notification (`ping`) with the
//! grant `urn:openid:params:grant-type:ciba`.
//!
//! The number: the server chooses it as for every login and returns it in
//! the backchannel answer (`number`, or a risky login's `code`); the
//! consumption device shows it, the citizen types it on the phone, and the
//! push never carries it (DECISIONS.md).

use super::*;
use crate::service::assurance::{Level, asked_or_default};
use crate::service::challenge::Origin;
use crate::service::client::DeliveryMode;
use crate::store::User;
use potvrda_proto::api::LoginAudience;
use potvrda_proto::jose::LoginContext;
use potvrda_proto::oidc::{BackchannelResponse, GrantType};
use std::sync::Arc;
use std::time::Duration;

/// The longest `requested_expiry` honoured.
const MAX_EXPIRY: u64 = 300;
/// The longest `binding_message`, in characters.
const MAX_BINDING_MESSAGE: usize = 64;
/// What `slow_down` adds to the interval (CIBA Core §11).
pub(super) const SLOW_DOWN_SECS: u64 = 5;
/// How long a request is remembered after it expired, to answer `expired_token`.
pub(super) const KEEP_AFTER_EXPIRY: i64 = 600;

/// The backchannel authentication request (CIBA Core §7.1), as sent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BackchannelForm {
    /// Must include `openid`.
    pub scope: Option<String>,
    /// `ping`: the bearer token of the client's notification endpoint.
    pub client_notification_token: Option<Secret>,
    /// Space-separated `acr` values, in order of preference.
    pub acr_values: Option<String>,
    /// Not supported.
    pub login_hint_token: Option<String>,
    /// An ID token this provider issued to the client.
    pub id_token_hint: Option<String>,
    /// The citizen's username.
    pub login_hint: Option<String>,
    /// Shown on the consumption device and on the phone.
    pub binding_message: Option<String>,
    /// Not supported (number matching replaces it).
    pub user_code: Option<String>,
    /// Seconds the client wants the request to live.
    pub requested_expiry: Option<String>,
    /// OIDC Core §5.5: the claims asked for, as JSON (an essential `acr`).
    pub claims: Option<String>,
    /// Signed requests are not supported.
    pub request: Option<String>,
    /// Client authentication (`client_secret_post`, `private_key_jwt`).
    #[serde(flatten)]
    pub client: ClientFields,
}

/// A backchannel request, under the SHA-256 of its `auth_req_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct CibaRequest {
    pub(super) client_id: ClientId,
    pub(super) login_id: LoginId,
    pub(super) login_secret: Secret,
    pub(super) scope: String,
    pub(super) expires_at: i64,
    /// Seconds between polls, grown by `slow_down`.
    pub(super) interval: u64,
    /// The earliest next poll, clock milliseconds.
    pub(super) next_poll_ms: i64,
    /// The lowest level the client accepts.
    #[serde(default)]
    pub(super) level: Option<Level>,
}

impl JsonRecord for CibaRequest {
    const KIND: Kind = Kind::CibaRequest;
    type Id = str;
}

/// Who the client asks for.
enum Hint<'f> {
    Username(&'f str),
    IdToken(&'f str),
}

/// A request's checked parameters.
struct Asked<'f> {
    hint: Hint<'f>,
    level: Option<Level>,
    scope: String,
    binding_message: Option<String>,
    expiry: u64,
    notification_token: Option<Secret>,
}

capability! {
    /// CIBA's backchannel authentication endpoint.
    pub Backchannel
}

impl Backchannel<'_> {
    /// `POST /oauth2/bc-authorize`: authenticate the client, find the
    /// citizen, send the challenge to their phones; the `auth_req_id` and
    /// the number the consumption device shows.
    pub async fn backchannel_authorize(
        &self,
        form: BackchannelForm,
        basic: Option<(String, String)>,
        caller: &Caller,
    ) -> Result<BackchannelResponse> {
        let client = self
            .client_auth()
            .authenticate(form.client.credentials(basic)?, Endpoint::Backchannel)
            .await?;
        if !client.uses(GrantType::Ciba) {
            return Err(oauth(
                OAuthError::UnauthorizedClient,
                "the client is not registered for CIBA",
            ));
        }
        let client = &client;
        let asked = checked(&form, client)?;
        let user = self.hinted_user(client, &asked.hint).await?;
        let context = LoginContext {
            service: Some(client.name.clone()),
            binding_message: asked.binding_message.clone(),
            ..LoginContext::default()
        };
        let origin = Origin {
            client: Some(client.client_id.clone()),
            ttl: Some(Duration::from_secs(asked.expiry)),
        };
        let started = self
            .challenges()
            .challenge(&user, context, LoginAudience::Portal, caller, &origin)
            .await
            .map_err(refusal)?;
        self.remember(client, &asked, started).await
    }

    /// Keep the request, watch it for a `ping` client, and answer.
    async fn remember(
        &self,
        client: &OidcClient,
        asked: &Asked<'_>,
        started: potvrda_proto::api::LoginResponse,
    ) -> Result<BackchannelResponse> {
        let now = self.clock.now();
        let auth_req_id = clock::token::<32>(self.rng.as_ref())?;
        let interval = self.settings.oidc.ciba_interval.as_secs();
        let request = CibaRequest {
            client_id: client.client_id.clone(),
            login_id: started.login_id.clone(),
            login_secret: started.login_secret,
            scope: asked.scope.clone(),
            expires_at: started.expires_at,
            interval,
            next_poll_ms: 0,
            level: asked.level,
        };
        self.records()
            .put(
                sha256_b64(auth_req_id.as_bytes()).as_str(),
                &request,
                request.expires_at + KEEP_AFTER_EXPIRY,
            )
            .await?;
        if let (Some(DeliveryMode::Ping), Some(endpoint), Some(token)) = (
            client.backchannel_token_delivery_mode,
            &client.backchannel_client_notification_endpoint,
            &asked.notification_token,
        ) {
            self.ping_when_decided(&request, endpoint.clone(), token.clone(), &auth_req_id);
        }
        tracing::info!(client_id = %client.client_id, login_id = %request.login_id, "CIBA request started");
        Ok(BackchannelResponse {
            auth_req_id,
            expires_in: u64::try_from(request.expires_at - now).unwrap_or(0),
            interval,
            number: started.number,
            code: started.code,
            push_suppressed: started.push_suppressed,
        })
    }

    /// The account the hint names: active, not locked.
    async fn hinted_user(&self, client: &OidcClient, hint: &Hint<'_>) -> Result<User> {
        let user = match hint {
            Hint::Username(name) => {
                let name = name.trim().to_ascii_lowercase();
                self.store.user_by_name(&name).await?
            }
            Hint::IdToken(jwt) => {
                let sub = self.id_token_subject(client, jwt)?;
                match self.subjects().account(client, &sub).await? {
                    Some(id) => self.store.user(&id).await?,
                    None => None,
                }
            }
        };
        let user = user
            .filter(|u| !u.deactivated)
            .ok_or_else(|| oauth(OAuthError::UnknownUserId, "no account matches the hint"))?;
        if user.locked {
            return Err(oauth(OAuthError::AccessDenied, "the account is locked"));
        }
        Ok(user)
    }

    /// The `sub` of an ID token this provider issued to `client` (expired
    /// ones are fine, OIDC Core §3.1.2.1).
    fn id_token_subject(&self, client: &OidcClient, jwt: &str) -> Result<String> {
        let bad = || {
            oauth(
                OAuthError::InvalidRequest,
                "id_token_hint is not an ID token this provider issued to the client",
            )
        };
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| bad())?;
        let keys = self.keyring.current();
        let (key, alg) = header
            .kid
            .as_deref()
            .and_then(|kid| keys.verifier(kid))
            .ok_or_else(bad)?;
        if header.alg != alg {
            return Err(bad());
        }
        let mut v = Validation::new(alg);
        v.validate_exp = false;
        v.set_issuer(&[&self.public_url]);
        v.set_audience(&[client.client_id.as_str()]);
        let claims = jsonwebtoken::decode::<IdTokenClaims>(jwt, key, &v).map_err(|_| bad())?;
        Ok(claims.claims.sub)
    }

    /// Tell a `ping` client when the citizen has answered, or the request
    /// expired (CIBA Core §10.2). A lost instance loses the ping, never the
    /// answer: the client can still poll.
    fn ping_when_decided(
        &self,
        request: &CibaRequest,
        endpoint: String,
        token: Secret,
        auth_req_id: &str,
    ) {
        let (store, clock, notifier) = (
            Arc::clone(&self.store),
            Arc::clone(&self.clock),
            Arc::clone(&self.notifier),
        );
        let (login_id, expires_at, auth_req_id) = (
            request.login_id.clone(),
            request.expires_at,
            auth_req_id.to_owned(),
        );
        let mut changes = store.subscribe(&login_id);
        tokio::spawn(async move {
            let mut expiry = clock.sleep_until(expires_at);
            loop {
                match store.login(&login_id).await {
                    Ok(Some(l)) if l.state == crate::store::LoginState::Pending => {}
                    _ => break,
                }
                tokio::select! {
                    () = changes.changed() => {}
                    () = &mut expiry => break,
                }
            }
            notifier.ping(endpoint, token, auth_req_id);
        });
    }
}

/// The request's own checks (CIBA Core §7.1, §13).
fn checked<'f>(form: &'f BackchannelForm, client: &OidcClient) -> Result<Asked<'f>> {
    let invalid = |d: &str| oauth(OAuthError::InvalidRequest, d);
    if form.request.is_some() || form.login_hint_token.is_some() {
        return Err(invalid(
            "signed requests and login_hint_token are not supported",
        ));
    }
    if form.user_code.is_some() {
        return Err(invalid("user_code is not supported"));
    }
    let hint = match (form.login_hint.as_deref(), form.id_token_hint.as_deref()) {
        (Some(name), None) if !name.trim().is_empty() && name.len() <= 64 => Hint::Username(name),
        (None, Some(jwt)) if jwt.len() <= 8192 => Hint::IdToken(jwt),
        _ => {
            return Err(invalid(
                "exactly one of login_hint and id_token_hint is required",
            ));
        }
    };
    let expiry = match form.requested_expiry.as_deref() {
        None => MAX_EXPIRY,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|s| (1..=86_400).contains(s))
            .ok_or_else(|| invalid("requested_expiry must be a positive number of seconds"))?
            .min(MAX_EXPIRY),
    };
    Ok(Asked {
        level: level_asked(form, client)?,
        hint,
        scope: scope(form)?,
        binding_message: binding_message(form)?,
        expiry,
        notification_token: notification_token(form, client)?,
    })
}

/// The scopes: `openid` and only ones this provider knows.
fn scope(form: &BackchannelForm) -> Result<String> {
    let scopes: Vec<&str> = form
        .scope
        .as_deref()
        .unwrap_or_default()
        .split_ascii_whitespace()
        .collect();
    if !scopes.contains(&"openid") {
        return Err(oauth(OAuthError::InvalidScope, "scope must include openid"));
    }
    if let Some(unknown) = scopes.iter().find(|s| !SCOPES.contains(s)) {
        return Err(oauth(
            OAuthError::InvalidScope,
            format!("unknown scope {unknown}"),
        ));
    }
    Ok(scopes.join(" "))
}

/// 1 to 64 printable characters, if any.
fn binding_message(form: &BackchannelForm) -> Result<Option<String>> {
    form.binding_message
        .as_deref()
        .map(|m| {
            let m = m.trim();
            let ok = !m.is_empty()
                && m.chars().count() <= MAX_BINDING_MESSAGE
                && !m.chars().any(char::is_control);
            ok.then(|| m.to_owned()).ok_or_else(|| {
                oauth(
                    OAuthError::InvalidBindingMessage,
                    format!("binding_message must be 1-{MAX_BINDING_MESSAGE} printable characters"),
                )
            })
        })
        .transpose()
}

/// A `ping` client's bearer token for its notification endpoint.
fn notification_token(form: &BackchannelForm, client: &OidcClient) -> Result<Option<Secret>> {
    match (
        client.backchannel_token_delivery_mode,
        &form.client_notification_token,
    ) {
        (Some(DeliveryMode::Ping), Some(t))
            if !t.expose().is_empty() && t.expose().len() <= 1024 =>
        {
            Ok(Some(t.clone()))
        }
        (Some(DeliveryMode::Ping), _) => Err(oauth(
            OAuthError::InvalidRequest,
            "a ping client sends a client_notification_token of 1-1024 characters",
        )),
        _ => Ok(None),
    }
}

/// The lowest level the client accepts; one a CIBA login cannot reach is
/// refused now, never silently downgraded.
fn level_asked(form: &BackchannelForm, client: &OidcClient) -> Result<Option<Level>> {
    let unmet = |d: String| oauth(OAuthError::UnmetAuthenticationRequirements, d);
    let level = asked_or_default(form.acr_values.as_deref(), form.claims.as_deref(), client)
        .map_err(|e| unmet(e.to_owned()))?;
    if level.is_some_and(|l| l > Method::Ciba.best()) {
        return Err(unmet(format!(
            "a backchannel login proves at most {}",
            Method::Ciba.best().acr()
        )));
    }
    Ok(level)
}

/// A refusal of the login, in CIBA's terms where it has one.
fn refusal(e: Error) -> Error {
    match e {
        Error::NoDevice => oauth(
            OAuthError::UnknownUserId,
            "the account has no device to ask",
        ),
        Error::AccountLocked => oauth(OAuthError::AccessDenied, "the account is locked"),
        other => other,
    }
}
