//! The `refresh_token` grant (RFC 6749 §6): refresh tokens rotate; a
//! replayed one revokes its family.

use super::*;

/// `grant_type=refresh_token`.
pub(super) struct RefreshToken;

#[async_trait]
impl TokenGrant for RefreshToken {
    fn grant_type(&self) -> GrantType {
        GrantType::RefreshToken
    }

    async fn exchange(
        &self,
        svc: &Potvrda,
        client: &OidcClient,
        form: &TokenForm,
        jkt: Option<&str>,
    ) -> Result<TokenResponse> {
        svc.refresh_tokens().refresh(client, form, jkt).await
    }
}

capability! {
    /// Refresh tokens, rotated.
    pub(crate) RefreshTokens
}

impl RefreshTokens<'_> {
    /// Rotate a refresh token: the grant's family, its client, its account.
    async fn refresh(
        &self,
        client: &OidcClient,
        form: &TokenForm,
        jkt: Option<&str>,
    ) -> Result<TokenResponse> {
        let presented = form
            .refresh_token
            .as_deref()
            .ok_or_else(|| oauth(OAuthError::InvalidRequest, "refresh_token is required"))?;
        let invalid = || {
            oauth(
                OAuthError::InvalidGrant,
                "the refresh token is invalid, expired or revoked",
            )
        };
        let (gid, secret) = presented.split_once('.').ok_or_else(invalid)?;
        if gid.len() != 36 {
            return Err(invalid());
        }
        let now = self.clock.now();
        let grants = self.records::<StoredGrant>();
        let stored = grants.read(gid, now).await?.ok_or_else(invalid)?;
        let grant = &stored.value;
        if grant.revoked
            || grant.client_id != client.client_id
            || !self
                .authorization()
                .account_usable(&grant.base.user_id, grant.base.generation)
                .await?
        {
            return Err(invalid());
        }
        key_bound(client, grant, jkt)?;
        if !ct_eq_str(&sha256_b64(secret.as_bytes()), &grant.current) {
            // An old token of the family: someone holds a copy. Revoke it all.
            self.token_endpoint()
                .revoke_grant(gid, "refresh_reused")
                .await?;
            return Err(oauth(
                OAuthError::InvalidGrant,
                "the refresh token was already used; the grant is revoked",
            ));
        }
        // FAPI 2.0 §5.3.2.1: no rotation for its clients, whose refresh
        // tokens are bound to their private_key_jwt authentication.
        if client.fapi2 {
            return self
                .token_endpoint()
                .tokens(client, grant, None, secret, now, jkt)
                .await;
        }
        let next = clock::token::<32>(self.rng.as_ref())?;
        let rotated = StoredGrant {
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
            self.token_endpoint()
                .revoke_grant(gid, "refresh_reused")
                .await?;
            return Err(oauth(
                OAuthError::InvalidGrant,
                "the refresh token was already used; the grant is revoked",
            ));
        }
        self.token_endpoint()
            .tokens(client, &rotated, None, &next, now, jkt)
            .await
    }
}

/// RFC 9449 §5: a public client's refresh tokens are bound to its DPoP key
/// (a confidential client's, to its authentication).
fn key_bound(client: &OidcClient, grant: &StoredGrant, jkt: Option<&str>) -> Result<()> {
    match &grant.jkt {
        Some(bound) if client.is_public() && !jkt.is_some_and(|j| ct_eq_str(j, bound)) => {
            Err(oauth(
                OAuthError::InvalidDpopProof,
                "the refresh token is bound to another DPoP key",
            ))
        }
        _ => Ok(()),
    }
}
