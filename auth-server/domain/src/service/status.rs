//! A login's status for the relying party: the long-poll, and the token
//! minted and handed over once.

use super::*;
use crate::service::assurance::Method;
use crate::service::oidc::ClientCredentials;
use crate::store::ClientId;

capability! {
    /// A login's outcome for the relying party.
    pub Outcomes
}

impl Outcomes<'_> {
    /// The status of a login, for the authenticated client that started it,
    /// waiting up to `wait_secs` for a decision. The access token comes
    /// exactly once, with the first answer after approval.
    pub async fn login_status(
        &self,
        creds: ClientCredentials,
        login_id: &LoginId,
        secret: Option<&str>,
        wait_secs: u64,
    ) -> Result<LoginStatusResponse> {
        let client = self.client_auth().portal(creds).await?;
        self.wait_for(login_id, Some(&client.client_id), secret, wait_secs, true)
            .await
            .map(|(answer, _)| answer)
    }

    /// [`Self::wait_for`] of a login the server's own pages started.
    pub(super) async fn wait_for_decision(
        &self,
        login_id: &LoginId,
        secret: Option<&str>,
        wait_secs: u64,
        take: bool,
    ) -> Result<(LoginStatusResponse, Login)> {
        self.wait_for(login_id, None, secret, wait_secs, take).await
    }

    /// Wait up to `wait_secs` for the login to be decided. With `take`, an
    /// approval is consumed and the access token issued; without, the status
    /// is only reported (the OpenID Connect pages consume it themselves).
    /// With `client`, only a login that client started is found.
    pub(super) async fn wait_for(
        &self,
        login_id: &LoginId,
        client: Option<&ClientId>,
        secret: Option<&str>,
        wait_secs: u64,
        take: bool,
    ) -> Result<(LoginStatusResponse, Login)> {
        if wait_secs > MAX_WAIT_SECS {
            return Err(Error::InvalidRequest(format!(
                "wait must be at most {MAX_WAIT_SECS}"
            )));
        }
        let secret = secret.ok_or(Error::Unauthorized)?;
        let _parked = (wait_secs > 0).then(|| LongPoll::park(self.metrics.as_ref()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(wait_secs);
        // Subscribe before reading, so a decision in between is not missed.
        let mut changes = self.store.subscribe(login_id);
        let mut login = self.load_until(login_id, deadline, &mut changes).await?;
        if client.is_some_and(|c| login.record.portal_client.as_ref() != Some(c)) {
            return Err(Error::NotFound);
        }
        if !ct_eq_str(&sha256_b64(secret.as_bytes()), &login.record.secret_hash) {
            return Err(Error::Unauthorized);
        }
        loop {
            let now = self.clock.now();
            match login.status(now) {
                LoginStatus::Pending => {
                    let started = tokio::time::Instant::now();
                    if started >= deadline {
                        return Ok((status_only(LoginStatus::Pending), login));
                    }
                    // Wake at a decision, at the deadline, or when the challenge expires.
                    let until_expiry =
                        Duration::from_secs((login.record.expires_at - now).max(0) as u64);
                    let until = deadline.min(started + until_expiry);
                    let _ = tokio::time::timeout_at(until, changes.changed()).await;
                }
                LoginStatus::Approved if !take => {
                    return Ok((status_only(LoginStatus::Approved), login));
                }
                LoginStatus::Approved | LoginStatus::Consumed if take => {
                    if let Some(answer) = self.hand_over(&login, secret, now).await? {
                        return Ok((answer, login));
                    }
                    if login.state == LoginState::Consumed {
                        return Ok((status_only(LoginStatus::Consumed), login));
                    }
                }
                other => return Ok((status_only(other), login)),
            }
            login = self.load_until(login_id, deadline, &mut changes).await?;
        }
    }

    /// Read a login for a long-poll. A store outage does not fail the wait:
    /// the read is retried until the wait's deadline (then 503).
    pub(super) async fn load_until(
        &self,
        login_id: &LoginId,
        deadline: tokio::time::Instant,
        changes: &mut crate::store::Subscription,
    ) -> Result<Login> {
        loop {
            match self.store.login(login_id).await {
                Ok(Some(l)) => return Ok(l),
                Ok(None) => return Err(Error::NotFound),
                Err(Error::StoreUnavailable(e)) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(login_id = %login_id, error = %e, "store unavailable during a long-poll; retrying");
                    let retry =
                        (tokio::time::Instant::now() + Duration::from_millis(250)).min(deadline);
                    let _ = tokio::time::timeout_at(retry, changes.changed()).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Mint the access token for an approved login (not yet handed over).
    pub(super) async fn mint_token(
        &self,
        login: &Login,
        now: i64,
    ) -> Result<(String, AccessTokenClaims)> {
        let user = self.store.user(&login.record.user_id).await?;
        let claims = AccessTokenClaims {
            iss: self.public_url.clone(),
            sub: login.record.user_id.to_string(),
            preferred_username: login.record.username.clone(),
            aud: match login.record.audience {
                LoginAudience::Portal => self.settings.tokens.token_audience.clone(),
                LoginAudience::Admin => self.settings.tokens.admin_audience.clone(),
            },
            iat: now,
            exp: now + secs(self.settings.tokens.token_ttl),
            jti: new_id(self.rng.as_ref())?,
            auth_time: login.decided_at.unwrap_or(now),
            amr: Method::PasswordPush.amr(&login.amr),
            acr: Method::PasswordPush.level(&login.amr).acr().to_owned(),
            approval_jti: login.approval_jti.clone(),
            roles: vec![
                user.as_ref()
                    .map_or(Role::Citizen, |u| u.role)
                    .as_str()
                    .to_owned(),
            ],
            pwd_change_required: user.as_ref().is_some_and(|u| u.pwd_change_required),
            // A staff member's municipality (a citizen's is the counter's business).
            municipality: user
                .filter(|u| u.role != Role::Citizen)
                .and_then(|u| u.municipality),
        };
        let keys = self.keyring.current();
        let (signer, kid) = keys.current.signer(Algorithm::ES256);
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.to_owned());
        Ok((jsonwebtoken::encode(&header, &claims, signer)?, claims))
    }

    /// Hand the token over once: minted and sealed for the login secret
    /// *before* the atomic hand-over, so nothing can fail after it; a retry
    /// of a request whose answer was lost (within [`REDELIVER_SECS`]) gets
    /// the same token back, never a second one. `None`: nothing to hand over.
    pub(super) async fn hand_over(
        &self,
        login: &Login,
        secret: &str,
        now: i64,
    ) -> Result<Option<LoginStatusResponse>> {
        let (token, claims) = self.mint_token(login, now).await?;
        let sealed = escrow::seal(secret, &login.record.id, &token)?;
        let Some(stored) = self
            .store
            .take_token(&login.record.id, &sealed, now, REDELIVER_SECS)
            .await?
        else {
            return Ok(None);
        };
        let first = stored == sealed;
        let token = if first {
            token
        } else {
            match escrow::open(secret, &login.record.id, &stored) {
                Some(t) => t,
                None => return Ok(None),
            }
        };
        if first {
            let now_ms = self.clock.now_ms();
            self.metrics
                .token_issued(login.decided_at_ms.unwrap_or(now_ms), now_ms);
            tracing::info!(
                login_id = %login.record.id,
                user_id = %claims.sub,
                jti = claims.jti,
                "access token issued"
            );
            self.audit
                .record(
                    Event::new(AuditKind::TokenIssued, now)
                        .user(&claims.sub)
                        .with("login_id", login.record.id.as_str())
                        .with("jti", claims.jti.as_str())
                        .with("approval_jti", claims.approval_jti.clone())
                        .with("acr", claims.acr.as_str())
                        .with("amr", claims.amr.join(" ")),
                )
                .await;
        } else {
            tracing::info!(
                login_id = %login.record.id,
                "access token delivered again (a retried request)"
            );
        }
        // The token came back authenticated (AEAD under the login secret): its own claim counts.
        let pwd_change_required =
            jsonwebtoken::dangerous::insecure_decode::<AccessTokenClaims>(&token)
                .map(|d| d.claims.pwd_change_required)
                .unwrap_or(claims.pwd_change_required);
        Ok(Some(LoginStatusResponse {
            status: LoginStatus::Approved,
            access_token: Some(token),
            token_type: Some(TOKEN_TYPE_BEARER.into()),
            expires_in: Some(self.settings.tokens.token_ttl.as_secs()),
            pwd_change_required: Some(pwd_change_required),
        }))
    }
}

/// How long after the hand-over a retried status request gets the token again.
pub(super) const REDELIVER_SECS: i64 = 60;

pub(super) fn status_only(status: LoginStatus) -> LoginStatusResponse {
    LoginStatusResponse {
        status,
        access_token: None,
        token_type: None,
        expires_in: None,
        pwd_change_required: None,
    }
}
