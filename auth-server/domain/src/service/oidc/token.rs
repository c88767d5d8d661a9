//! The token endpoint: client authentication, the grants it dispatches to,
//! and the tokens it mints; UserInfo.

use super::authorization_code::AuthorizationCode;
use super::refresh_token::RefreshToken;
use super::*;
use crate::store::{ClientId, UserId};

/// A grant of the token endpoint. A new grant (CIBA's
/// `urn:openid:params:grant-type:ciba`) is a file implementing this, its
/// [`GrantType`] variant, and a line in [`GRANTS`]; discovery lists it and
/// the endpoint dispatches to it from there.
#[async_trait]
pub(super) trait TokenGrant: Send + Sync {
    /// The `grant_type` it serves.
    fn grant_type(&self) -> GrantType;
    /// Exchange the form for tokens, for the authenticated `client`.
    async fn exchange(
        &self,
        svc: &Potvrda,
        client: &OidcClient,
        form: &TokenForm,
    ) -> Result<TokenResponse>;
}

/// Every grant the token endpoint serves, in discovery's order.
pub(super) const GRANTS: &[&dyn TokenGrant] =
    &[&AuthorizationCode, &RefreshToken, &super::ciba_token::Ciba];

capability! {
    /// The token and userinfo endpoints.
    pub TokenEndpoint
}

impl TokenEndpoint<'_> {
    /// `POST /oauth2/token`.
    pub async fn oidc_token(
        &self,
        form: TokenForm,
        basic: Option<(String, String)>,
    ) -> Result<TokenResponse> {
        let client = self
            .client_auth()
            .authenticate(form.credentials(basic)?, Endpoint::Token)
            .await?;
        let Some(asked) = form.grant_type.as_deref() else {
            return Err(oauth(OAuthError::InvalidRequest, "grant_type is required"));
        };
        let grant = GrantType::parse(asked)
            .and_then(|t| GRANTS.iter().find(|g| g.grant_type() == t))
            .ok_or_else(|| {
                oauth(
                    OAuthError::UnsupportedGrantType,
                    "grant_type must be authorization_code, refresh_token or urn:openid:params:grant-type:ciba",
                )
            })?;
        if !client.uses(grant.grant_type()) {
            return Err(oauth(
                OAuthError::UnauthorizedClient,
                "the client is not registered for this grant_type",
            ));
        }
        grant.exchange(self, &client, &form).await
    }

    /// Mark a grant revoked: its refresh tokens fail, its access tokens fail at UserInfo.
    pub(super) async fn revoke_grant(&self, gid: &str, reason: &'static str) -> Result<()> {
        let now = self.clock.now();
        let grants = self.records::<StoredGrant>();
        let mut user = None;
        // A code reused before its tokens were stored still leaves a revoked marker.
        let revoked = match grants.get(gid, now).await? {
            Some(mut g) => {
                user = Some(g.base.user_id.clone());
                g.revoked = true;
                g
            }
            None => StoredGrant {
                client_id: ClientId::default(),
                scope: String::new(),
                base: GrantBase {
                    user_id: UserId::default(),
                    auth_time: 0,
                    sid: String::new(),
                    generation: 0,
                    gid: gid.to_owned(),
                    method: None,
                    proven: Vec::new(),
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
    pub(super) async fn tokens(
        &self,
        client: &OidcClient,
        grant: &StoredGrant,
        nonce: Option<&str>,
        refresh_secret: &str,
        now: i64,
    ) -> Result<TokenResponse> {
        let keys = self.keyring.current();
        let ttl = self.settings.tokens.token_ttl;
        let method = Method::of(grant.base.method);
        let amr = method.amr(&grant.base.proven);
        let acr = method.level(&grant.base.proven).acr();
        let id_token = self.id_token(client, grant, nonce, &amr, now)?;
        let jti: String = new_id(self.rng.as_ref())?;
        let access_claims = OidcAccessClaims {
            iss: self.public_url.clone(),
            sub: grant.base.user_id.to_string(),
            aud: client.client_id.to_string(),
            client_id: client.client_id.to_string(),
            scope: grant.scope.clone(),
            exp: now + secs(ttl),
            iat: now,
            jti: jti.clone(),
            auth_time: grant.base.auth_time,
            amr,
            acr: acr.to_owned(),
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
                    .with("gid", grant.base.gid.as_str())
                    .with("acr", acr)
                    .with("amr", access_claims.amr.join(" ")),
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

    /// The ID token of a grant, signed with the client's algorithm.
    fn id_token(
        &self,
        client: &OidcClient,
        grant: &StoredGrant,
        nonce: Option<&str>,
        amr: &[String],
        now: i64,
    ) -> Result<String> {
        let claims = IdTokenClaims {
            iss: self.public_url.clone(),
            sub: grant.base.user_id.to_string(),
            aud: client.client_id.to_string(),
            azp: client.client_id.to_string(),
            exp: now + secs(self.settings.tokens.token_ttl),
            iat: now,
            auth_time: grant.base.auth_time,
            nonce: nonce.map(str::to_owned),
            amr: amr.to_vec(),
            acr: Method::of(grant.base.method)
                .level(&grant.base.proven)
                .acr()
                .into(),
            sid: grant.base.sid.clone(),
        };
        let alg = if client.id_token_signed_response_alg == "ES256" {
            Algorithm::ES256
        } else {
            Algorithm::RS256
        };
        let keys = self.keyring.current();
        let (signer, kid) = keys.current.signer(alg);
        let mut header = Header::new(alg);
        header.kid = Some(kid.to_owned());
        Ok(jsonwebtoken::encode(&header, &claims, signer)?)
    }

    /// `GET /oauth2/userinfo` for an access token this provider issued.
    pub async fn oidc_userinfo(&self, token: Option<&str>) -> Result<UserInfo> {
        let invalid = |d: &str| oauth(OAuthError::InvalidToken, d);
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
        let grant = self.records::<StoredGrant>().get(&claims.gid, now).await?;
        let Some(grant) = grant.filter(|g| !g.revoked) else {
            return Err(invalid("the grant was revoked"));
        };
        if self.provider().client(&grant.client_id).await?.is_none() {
            return Err(invalid("the client was retired"));
        }
        let user = self
            .store
            .user(&UserId::new(&claims.sub))
            .await?
            .filter(|u| !u.locked && !u.deactivated && u.generation == grant.base.generation)
            .ok_or_else(|| invalid("no such user, or the account is locked"))?;
        let scopes: Vec<&str> = claims.scope.split_ascii_whitespace().collect();
        let profile = scopes.contains(&"profile");
        Ok(UserInfo {
            sub: user.id.to_string(),
            preferred_username: profile.then(|| user.username.clone()),
            name: profile.then(|| user.display_name.clone()),
            email: user.email.clone().filter(|_| scopes.contains(&"email")),
            phone_number: user.phone.clone().filter(|_| scopes.contains(&"phone")),
        })
    }
}
