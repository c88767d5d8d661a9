//! Token introspection (RFC 7662) and revocation (RFC 7009). Both
//! authenticate the client, and both deal only in the caller's own
//! tokens: another client's token is "not active" to it, and revoking it
//! does nothing. Revoking a refresh token revokes its whole family; an
//! access token (a JWT, not kept) is revoked with its grant.

use super::*;
use potvrda_proto::oidc::IntrospectionResponse;

capability! {
    /// Token introspection and revocation.
    pub Introspection
}

/// The form of `/oauth2/introspect` and `/oauth2/revoke`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenQuery {
    /// The token asked about.
    pub token: Option<Secret>,
    /// `access_token` or `refresh_token` (a hint: both are tried).
    pub token_type_hint: Option<String>,
    /// The client's credentials.
    #[serde(flatten)]
    pub client: ClientFields,
}

impl TokenQuery {
    fn token(&self) -> Result<&str> {
        self.token
            .as_ref()
            .map(Secret::expose)
            .filter(|t| !t.is_empty() && t.len() <= 4096)
            .ok_or_else(|| oauth(OAuthError::InvalidRequest, "token is required"))
    }
}

/// What a token turned out to be.
enum Found {
    Access(OidcAccessClaims),
    Refresh(StoredGrant),
}

impl Introspection<'_> {
    /// RFC 7662: what a confidential client may know of its own token.
    pub async fn introspect(
        &self,
        q: TokenQuery,
        basic: Option<(String, String)>,
    ) -> Result<IntrospectionResponse> {
        let client = self
            .client_auth()
            .authenticate(q.client.credentials(basic)?, Endpoint::Introspection)
            .await?;
        if client.is_public() {
            return Err(oauth(
                OAuthError::InvalidClient,
                "introspection is for authenticated clients",
            ));
        }
        let inactive = IntrospectionResponse::default();
        let Some(found) = self.find(q.token()?).await? else {
            return Ok(inactive);
        };
        Ok(match found {
            Found::Access(c) if c.client_id == client.client_id.as_str() => IntrospectionResponse {
                active: true,
                scope: Some(c.scope),
                client_id: Some(c.client_id),
                sub: Some(c.sub),
                token_type: Some(if c.cnf.is_some() { "DPoP" } else { "Bearer" }.into()),
                exp: Some(c.exp),
                iat: Some(c.iat),
                iss: Some(c.iss),
                aud: Some(c.aud),
                jti: Some(c.jti),
                auth_time: Some(c.auth_time),
                acr: Some(c.acr).filter(|a| !a.is_empty()),
                cnf: c.cnf,
            },
            Found::Refresh(g) if g.client_id == client.client_id => IntrospectionResponse {
                active: true,
                scope: Some(g.scope),
                client_id: Some(g.client_id.to_string()),
                token_type: Some("refresh_token".into()),
                auth_time: Some(g.base.auth_time),
                iss: Some(self.public_url.clone()),
                ..inactive
            },
            _ => inactive,
        })
    }

    /// RFC 7009: revoke the client's own token (its grant: the refresh
    /// family and every access token of it). Anything else is answered as
    /// done, and nothing changes.
    pub async fn revoke(&self, q: TokenQuery, basic: Option<(String, String)>) -> Result<()> {
        let client = self
            .client_auth()
            .authenticate(q.client.credentials(basic)?, Endpoint::Revocation)
            .await?;
        let (gid, what) = match self.find(q.token()?).await? {
            Some(Found::Access(c)) if c.client_id == client.client_id.as_str() => {
                (c.gid, "access_token")
            }
            Some(Found::Refresh(g)) if g.client_id == client.client_id => {
                (g.base.gid, "refresh_token")
            }
            _ => return Ok(()),
        };
        let now = self.clock.now();
        let grant = self.token_endpoint().mark_revoked(&gid, now).await?;
        self.audit
            .record(
                Event::new(AuditKind::TokenRevoked, now)
                    .user(&grant.base.user_id)
                    .actor(client.client_id.as_str())
                    .with("client_id", client.client_id.as_str())
                    .with("gid", gid.as_str())
                    .with("what", what),
            )
            .await;
        Ok(())
    }

    /// A live access token, or the current refresh token of a live grant.
    async fn find(&self, token: &str) -> Result<Option<Found>> {
        if token.matches('.').count() == 2 {
            return match self.token_endpoint().live_access(token).await {
                Ok((claims, _, _)) => Ok(Some(Found::Access(claims))),
                Err(Error::OAuth { .. }) => Ok(None),
                Err(e) => Err(e),
            };
        }
        let Some((gid, secret)) = token.split_once('.').filter(|(g, _)| g.len() == 36) else {
            return Ok(None);
        };
        let now = self.clock.now();
        let Some(grant) = self.records::<StoredGrant>().get(gid, now).await? else {
            return Ok(None);
        };
        let live = !grant.revoked
            && ct_eq_str(&sha256_b64(secret.as_bytes()), &grant.current)
            && self
                .authorization()
                .account_usable(&grant.base.user_id, grant.base.generation)
                .await?;
        Ok(live.then_some(Found::Refresh(grant)))
    }
}
