//! The `authorization_code` grant (RFC 6749 §4.1, PKCE per RFC 7636): a
//! code is redeemed once by its own client; a second redemption revokes
//! the grant it made.

use super::*;

/// `grant_type=authorization_code`.
pub(super) struct AuthorizationCode;

#[async_trait]
impl TokenGrant for AuthorizationCode {
    fn grant_type(&self) -> GrantType {
        GrantType::AuthorizationCode
    }

    async fn exchange(
        &self,
        svc: &Potvrda,
        client: &OidcClient,
        form: &TokenForm,
        jkt: Option<&str>,
    ) -> Result<TokenResponse> {
        svc.authorization_codes()
            .redeem_code(client, form, jkt)
            .await
    }
}

capability! {
    /// Authorization codes: issued and redeemed once.
    pub(crate) AuthorizationCodes
}

impl AuthorizationCodes<'_> {
    /// Redeem an authorization code: its client, redirect URI and PKCE
    /// verifier, once.
    async fn redeem_code(
        &self,
        client: &OidcClient,
        form: &TokenForm,
        jkt: Option<&str>,
    ) -> Result<TokenResponse> {
        let code = form
            .code
            .as_deref()
            .filter(|c| !c.is_empty() && c.len() <= 128)
            .ok_or_else(|| oauth(OAuthError::InvalidRequest, "code is required"))?;
        let now = self.clock.now();
        let k = sha256_b64(code.as_bytes());
        let codes = self.records::<CodeRecord>();
        let stored = codes
            .read(&k, now)
            .await?
            .ok_or_else(|| oauth(OAuthError::InvalidGrant, "the code is unknown or expired"))?;
        let record = &stored.value;
        // The client first: only the code's own (authenticated) client can
        // set off the reuse revocation, never another client presenting it
        // (security round 2, finding 8).
        if record.client_id != client.client_id {
            return Err(oauth(
                OAuthError::InvalidGrant,
                "the code was issued to another client",
            ));
        }
        if record.used {
            return self.reused(&record.grant.gid).await;
        }
        if form.redirect_uri.as_deref() != Some(record.redirect_uri.as_str()) {
            return Err(oauth(
                OAuthError::InvalidGrant,
                "redirect_uri does not match the authorization request",
            ));
        }
        pkce_verified(record, form)?;
        if let Some(bound) = &record.dpop_jkt
            && !jkt.is_some_and(|j| ct_eq_str(j, bound))
        {
            return Err(oauth(
                OAuthError::InvalidDpopProof,
                "the code is bound to another DPoP key (dpop_jkt)",
            ));
        }
        if !self
            .authorization()
            .account_usable(&record.grant.user_id, record.grant.generation)
            .await?
        {
            return Err(oauth(
                OAuthError::InvalidGrant,
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
            return self.reused(&record.grant.gid).await;
        }
        let endpoint = self.token_endpoint();
        let (grant, secret) = endpoint
            .new_grant(client, &record.scope, record.grant.clone(), jkt, now)
            .await?;
        endpoint
            .tokens(client, &grant, record.nonce.as_deref(), &secret, now, jkt)
            .await
    }

    /// A code used twice: everything it issued is revoked (RFC 6749 §4.1.2).
    async fn reused(&self, gid: &str) -> Result<TokenResponse> {
        self.token_endpoint()
            .revoke_grant(gid, "code_reused")
            .await?;
        Err(oauth(
            OAuthError::InvalidGrant,
            "the code was already used; what it issued is revoked",
        ))
    }
}

/// RFC 7636 §4.6: the verifier hashes to the challenge the code was issued
/// for; a code issued without one takes none.
fn pkce_verified(record: &CodeRecord, form: &TokenForm) -> Result<()> {
    match (&record.code_challenge, form.code_verifier.as_deref()) {
        (Some(challenge), Some(verifier)) if pkce_ok(verifier) => {
            let computed = sha256_b64(verifier.as_bytes());
            if ct_eq_str(&computed, challenge) {
                Ok(())
            } else {
                Err(oauth(
                    OAuthError::InvalidGrant,
                    "code_verifier does not match",
                ))
            }
        }
        (Some(_), _) => Err(oauth(
            OAuthError::InvalidGrant,
            "a valid code_verifier is required",
        )),
        (None, Some(_)) => Err(oauth(
            OAuthError::InvalidGrant,
            "no code_challenge was sent for this code",
        )),
        (None, None) => Ok(()),
    }
}
