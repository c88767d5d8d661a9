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
use crate::service::challenge::Origin;
use crate::service::client::DeliveryMode;
use crate::store::User;
use crate::store::records::Stored;
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
const SLOW_DOWN_SECS: u64 = 5;
/// How long a request is remembered after it expired, to answer `expired_token`.
const KEEP_AFTER_EXPIRY: i64 = 600;
/// What a CIBA login proves: possession of the enrolled device key, and the
/// citizen typing the consumption device's number (RFC 8176 `pop`, `user`).
pub(super) const AMR_CIBA: &[&str] = &["pop", "user"];

/// The backchannel authentication request (CIBA Core §7.1), as sent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BackchannelForm {
    /// Must include `openid`.
    pub scope: Option<String>,
    /// `ping`: the bearer token of the client's notification endpoint.
    pub client_notification_token: Option<String>,
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
    /// Signed requests are not supported.
    pub request: Option<String>,
    /// Client authentication (`client_secret_post`, `private_key_jwt`).
    pub client_id: Option<String>,
    /// `client_secret_post`.
    pub client_secret: Option<String>,
    /// RFC 7523.
    pub client_assertion_type: Option<String>,
    /// RFC 7523.
    pub client_assertion: Option<String>,
}

impl BackchannelForm {
    fn credentials(&self, basic: Option<(String, String)>) -> Result<ClientCredentials> {
        ClientCredentials::from_parts(CredentialParts {
            basic,
            client_id: self.client_id.as_deref(),
            client_secret: self.client_secret.as_deref(),
            assertion_type: self.client_assertion_type.as_deref(),
            assertion: self.client_assertion.as_deref(),
        })
    }
}

/// A backchannel request, under the SHA-256 of its `auth_req_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CibaRequest {
    client_id: ClientId,
    login_id: LoginId,
    login_secret: Secret,
    scope: String,
    expires_at: i64,
    /// Seconds between polls, grown by `slow_down`.
    interval: u64,
    /// The earliest next poll, clock milliseconds.
    next_poll_ms: i64,
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
            .authenticate(form.credentials(basic)?, Endpoint::Backchannel)
            .await?;
        if !client.uses(GrantType::Ciba) {
            return Err(oauth(
                OAuthError::UnauthorizedClient,
                "the client is not registered for CIBA",
            ));
        }
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
                self.store.user(&UserId::new(&sub)).await?
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
    let binding_message = form
        .binding_message
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
        .transpose()?;
    let expiry = match form.requested_expiry.as_deref() {
        None => None,
        Some(v) => Some(
            v.parse::<u64>()
                .ok()
                .filter(|s| (1..=86_400).contains(s))
                .ok_or_else(|| invalid("requested_expiry must be a positive number of seconds"))?,
        ),
    };
    let notification_token = match (
        client.backchannel_token_delivery_mode,
        &form.client_notification_token,
    ) {
        (Some(DeliveryMode::Ping), Some(t)) if !t.is_empty() && t.len() <= 1024 => {
            Some(Secret::from(t.clone()))
        }
        (Some(DeliveryMode::Ping), _) => {
            return Err(invalid(
                "a ping client sends a client_notification_token of 1-1024 characters",
            ));
        }
        _ => None,
    };
    acr_met(form.acr_values.as_deref())?;
    Ok(Asked {
        hint,
        scope: scopes.join(" "),
        binding_message,
        expiry: expiry.unwrap_or(MAX_EXPIRY).min(MAX_EXPIRY),
        notification_token,
    })
}

/// A CIBA login proves [`ACR_PUSH`]: asking for anything else (without
/// offering it too) cannot be met, and is refused rather than downgraded.
fn acr_met(acr_values: Option<&str>) -> Result<()> {
    match acr_values {
        Some(values) if !values.split_ascii_whitespace().any(|v| v == ACR_PUSH) => Err(oauth(
            OAuthError::UnmetAuthenticationRequirements,
            format!("a backchannel login proves {ACR_PUSH}"),
        )),
        _ => Ok(()),
    }
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

/// `grant_type=urn:openid:params:grant-type:ciba`.
pub(super) struct Ciba;

#[async_trait]
impl TokenGrant for Ciba {
    fn grant_type(&self) -> GrantType {
        GrantType::Ciba
    }

    async fn exchange(
        &self,
        svc: &Potvrda,
        client: &OidcClient,
        form: &TokenForm,
    ) -> Result<TokenResponse> {
        svc.ciba_requests().redeem(client, form).await
    }
}

capability! {
    /// CIBA requests at the token endpoint: paced, redeemed once.
    pub(crate) CibaRequests
}

impl CibaRequests<'_> {
    /// The token endpoint's answer for a backchannel request (CIBA Core §11).
    async fn redeem(&self, client: &OidcClient, form: &TokenForm) -> Result<TokenResponse> {
        let id = form
            .auth_req_id
            .as_deref()
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .ok_or_else(|| oauth(OAuthError::InvalidRequest, "auth_req_id is required"))?;
        let now = self.clock.now();
        let key = sha256_b64(id.as_bytes());
        let stored = self
            .records::<CibaRequest>()
            .read(&key, now)
            .await?
            .ok_or_else(|| oauth(OAuthError::InvalidGrant, "the auth_req_id is unknown"))?;
        let request = &stored.value;
        if request.client_id != client.client_id {
            return Err(oauth(
                OAuthError::InvalidGrant,
                "the auth_req_id was issued to another client",
            ));
        }
        if now >= request.expires_at {
            return Err(oauth(
                OAuthError::ExpiredToken,
                "the request expired unanswered",
            ));
        }
        self.paced(&key, &stored, now).await?;
        let (answer, login) = self
            .outcomes()
            .wait_for_decision(
                &request.login_id,
                Some(request.login_secret.expose()),
                0,
                false,
            )
            .await?;
        match answer.status {
            LoginStatus::Pending => Err(oauth(
                OAuthError::AuthorizationPending,
                "the citizen has not answered yet",
            )),
            LoginStatus::Approved => self.issue(client, request, &login, now).await,
            LoginStatus::Expired => Err(oauth(
                OAuthError::ExpiredToken,
                "the request expired unanswered",
            )),
            LoginStatus::Denied => Err(oauth(
                OAuthError::AccessDenied,
                "the citizen did not confirm",
            )),
            LoginStatus::Consumed => Err(oauth(
                OAuthError::InvalidGrant,
                "the request was already redeemed",
            )),
        }
    }

    /// Enforce the interval: a poll sooner than it gets `slow_down`, and
    /// every later poll waits 5 s longer (CIBA Core §11).
    async fn paced(&self, key: &str, stored: &Stored<CibaRequest>, now: i64) -> Result<()> {
        let now_ms = self.clock.now_ms();
        let early = now_ms < stored.value.next_poll_ms;
        let mut next = stored.value.clone();
        if early {
            next.interval += SLOW_DOWN_SECS;
        }
        next.next_poll_ms = now_ms + i64::try_from(next.interval).unwrap_or(60) * 1000;
        let swapped = self
            .records()
            .swap(key, stored, &next, next.expires_at + KEEP_AFTER_EXPIRY, now)
            .await?;
        if early || !swapped {
            return Err(oauth(
                OAuthError::SlowDown,
                format!("poll at most every {} s", next.interval),
            ));
        }
        Ok(())
    }

    /// The approval, consumed exactly once, becomes a grant and its tokens.
    async fn issue(
        &self,
        client: &OidcClient,
        request: &CibaRequest,
        login: &crate::store::Login,
        now: i64,
    ) -> Result<TokenResponse> {
        // The one redemption (an empty escrow: no portal token is handed over).
        let first = self
            .store
            .take_token(&request.login_id, b"", now, 0)
            .await?
            .is_some_and(|e| e.is_empty());
        if !first {
            return Err(oauth(
                OAuthError::InvalidGrant,
                "the request was already redeemed",
            ));
        }
        let user = self
            .store
            .user(&login.record.user_id)
            .await?
            .filter(|u| !u.locked && !u.deactivated)
            .ok_or_else(|| {
                oauth(
                    OAuthError::AccessDenied,
                    "the account is locked or deactivated",
                )
            })?;
        let secret = clock::token::<32>(self.rng.as_ref())?;
        let rng = self.rng.as_ref();
        let grant = StoredGrant {
            client_id: client.client_id.clone(),
            scope: request.scope.clone(),
            base: GrantBase {
                user_id: user.id.clone(),
                auth_time: login.decided_at.unwrap_or(now),
                sid: new_id(rng)?,
                generation: user.generation,
                gid: new_id(rng)?,
                method: Some(Method::Ciba),
            },
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
        self.token_endpoint()
            .tokens(client, &grant, None, &secret, now)
            .await
    }
}
