//! The CIBA grant at the token endpoint (`urn:openid:params:grant-type:ciba`,
//! CIBA Core §10–11): the interval enforced with `slow_down`, the level
//! asked for checked against what the phone proved, the approval redeemed
//! once into a grant.

use super::ciba::{CibaRequest, KEEP_AFTER_EXPIRY, SLOW_DOWN_SECS};
use super::*;
use crate::service::assurance::Method;
use crate::store::records::Stored;
use potvrda_proto::oidc::GrantType;

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
        jkt: Option<&str>,
    ) -> Result<TokenResponse> {
        svc.ciba_requests().redeem(client, form, jkt).await
    }
}

capability! {
    /// CIBA requests at the token endpoint: paced, redeemed once.
    pub(crate) CibaRequests
}

impl CibaRequests<'_> {
    /// The token endpoint's answer for a backchannel request (CIBA Core §11).
    async fn redeem(
        &self,
        client: &OidcClient,
        form: &TokenForm,
        jkt: Option<&str>,
    ) -> Result<TokenResponse> {
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
            LoginStatus::Approved => self.issue(client, request, &login, jkt, now).await,
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
        jkt: Option<&str>,
        now: i64,
    ) -> Result<TokenResponse> {
        // What the phone proved must meet what the client asked for, before
        // the approval is spent: a lower level is never issued.
        let reached = Method::Ciba.level(&login.amr);
        if request.level.is_some_and(|l| reached < l) {
            return Err(oauth(
                OAuthError::UnmetAuthenticationRequirements,
                format!("the phone's answer proved {}", reached.acr()),
            ));
        }
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
        let (grant, secret) = self.grant(client, request, login, jkt, now).await?;
        self.token_endpoint()
            .tokens(client, &grant, None, &secret, now, jkt)
            .await
    }

    /// The grant (a refresh-token family) of a redeemed request, stored,
    /// with its first refresh token's secret.
    async fn grant(
        &self,
        client: &OidcClient,
        request: &CibaRequest,
        login: &crate::store::Login,
        jkt: Option<&str>,
        now: i64,
    ) -> Result<(StoredGrant, String)> {
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
        let rng = self.rng.as_ref();
        let base = GrantBase {
            user_id: user.id.clone(),
            auth_time: login.decided_at.unwrap_or(now),
            sid: new_id(rng)?,
            generation: user.generation,
            gid: new_id(rng)?,
            method: Some(Method::Ciba),
            proven: login.amr.clone(),
            claims: RequestedClaims::default(),
        };
        self.logout_notices()
            .remember(&base.user_id, &base.sid, &client.client_id)
            .await?;
        self.token_endpoint()
            .new_grant(client, &request.scope, base, jkt, now)
            .await
    }
}
