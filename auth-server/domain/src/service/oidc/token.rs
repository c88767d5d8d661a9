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
    /// Exchange the form for tokens, for the authenticated `client`, bound
    /// to the DPoP key `jkt` when the request proved one.
    async fn exchange(
        &self,
        svc: &Potvrda,
        client: &OidcClient,
        form: &TokenForm,
        jkt: Option<&str>,
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
        dpop: DpopRequest<'_>,
    ) -> Result<TokenResponse> {
        // The proof first: a missing nonce costs the client no assertion.
        let proof = self
            .dpop()
            .verify(&dpop, None, crate::service::client::ASSERTION_ALGS, true)
            .await?;
        let client = self
            .client_auth()
            .authenticate(form.credentials(basic)?, Endpoint::Token)
            .await?;
        match &proof {
            Some(p) => p.allowed_for(&client)?,
            None if client.requires_dpop() => {
                return Err(oauth(
                    OAuthError::InvalidDpopProof,
                    "this client's tokens are DPoP-bound: send a DPoP proof",
                ));
            }
            None => {}
        }
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
        let jkt = proof.as_ref().map(|p| p.jkt.as_str());
        grant.exchange(self, &client, &form, jkt).await
    }

    /// A new grant (one refresh-token family), stored, with its first
    /// refresh token's secret.
    pub(super) async fn new_grant(
        &self,
        client: &OidcClient,
        scope: &str,
        base: GrantBase,
        jkt: Option<&str>,
        now: i64,
    ) -> Result<(StoredGrant, String)> {
        let secret = clock::token::<32>(self.rng.as_ref())?;
        let grant = StoredGrant {
            client_id: client.client_id.clone(),
            scope: scope.to_owned(),
            base,
            current: sha256_b64(secret.as_bytes()),
            revoked: false,
            jkt: jkt.map(str::to_owned),
        };
        self.records()
            .put(
                grant.base.gid.as_str(),
                &grant,
                now + secs(self.settings.oidc.refresh_ttl),
            )
            .await?;
        Ok((grant, secret))
    }

    /// A grant reused: revoked, logged and audited as likely theft.
    pub(super) async fn revoke_grant(&self, gid: &str, reason: &'static str) -> Result<()> {
        let now = self.clock.now();
        let revoked = self.mark_revoked(gid, now).await?;
        tracing::warn!(
            gid,
            reason,
            "grant revoked: a code or refresh token was used twice"
        );
        let mut event = Event::new(AuditKind::GrantRevoked, now)
            .with("gid", gid)
            .with("reason", reason)
            .with("client_id", revoked.client_id.as_str());
        if !revoked.base.user_id.is_empty() {
            event = event.user(&revoked.base.user_id);
        }
        self.audit.record(event).await;
        Ok(())
    }

    /// Mark a grant revoked: its refresh tokens fail, its access tokens
    /// fail at UserInfo and introspection.
    pub(super) async fn mark_revoked(&self, gid: &str, now: i64) -> Result<StoredGrant> {
        let grants = self.records::<StoredGrant>();
        // A code reused before its tokens were stored still leaves a revoked marker.
        let revoked = match grants.get(gid, now).await? {
            Some(mut g) => {
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
                    claims: RequestedClaims::default(),
                },
                current: String::new(),
                revoked: true,
                jkt: None,
            },
        };
        grants
            .put(gid, &revoked, now + secs(self.settings.oidc.refresh_ttl))
            .await?;
        Ok(revoked)
    }

    /// ID token, access token and the refresh token `gid.secret`.
    pub(super) async fn tokens(
        &self,
        client: &OidcClient,
        grant: &StoredGrant,
        nonce: Option<&str>,
        refresh_secret: &str,
        now: i64,
        jkt: Option<&str>,
    ) -> Result<TokenResponse> {
        let keys = self.keyring.current();
        let ttl = self.settings.tokens.token_ttl;
        let method = Method::of(grant.base.method);
        let amr = method.amr(&grant.base.proven);
        let acr = method.level(&grant.base.proven).acr();
        let jti: String = new_id(self.rng.as_ref())?;
        let sub = self.subjects().issued(client, &grant.base.user_id).await?;
        let access_claims = OidcAccessClaims {
            iss: self.public_url.clone(),
            sub: sub.clone(),
            aud: client.client_id.to_string(),
            client_id: client.client_id.to_string(),
            scope: grant.scope.clone(),
            exp: now + secs(ttl),
            iat: now,
            jti: jti.clone(),
            auth_time: grant.base.auth_time,
            amr: amr.clone(),
            acr: acr.to_owned(),
            gid: grant.base.gid.clone(),
            cnf: jkt.map(|j| potvrda_proto::oidc::Cnf { jkt: j.to_owned() }),
        };
        let (signer, kid) = keys.current.signer(Algorithm::ES256);
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.to_owned());
        header.typ = Some(TYP_ACCESS_TOKEN.into());
        let access_token = jsonwebtoken::encode(&header, &access_claims, signer)?;
        let named = match &grant.base.claims.id_token {
            asked if asked.is_empty() => Released::default(),
            asked => self
                .store
                .user(&grant.base.user_id)
                .await?
                .map(|u| Released::of(&u, "", asked, grant.base.claims.locale))
                .unwrap_or_default(),
        };
        let id_token = self.id_token(
            client,
            grant,
            (&sub, nonce),
            &amr,
            (&access_token, named),
            now,
        )?;
        self.audit
            .record(
                Event::new(AuditKind::TokenIssued, now)
                    .user(&grant.base.user_id)
                    .with("client_id", client.client_id.as_str())
                    .with("jti", jti.as_str())
                    .with("gid", grant.base.gid.as_str())
                    .with("acr", acr)
                    .with("amr", access_claims.amr.join(" "))
                    .with("dpop", jkt.is_some()),
            )
            .await;
        Ok(TokenResponse {
            access_token,
            token_type: if jkt.is_some() { "DPoP" } else { "Bearer" }.into(),
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
        (sub, nonce): (&str, Option<&str>),
        amr: &[String],
        (access_token, named): (&str, Released),
        now: i64,
    ) -> Result<String> {
        let claims = IdTokenClaims {
            iss: self.public_url.clone(),
            sub: sub.to_owned(),
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
            at_hash: Some(at_hash(access_token)),
            preferred_username: named.preferred_username,
            name: named.name,
            email: named.email,
            phone_number: named.phone_number,
        };
        self.signed_for(client, &claims, None)
    }

    /// `claims` signed for `client` with its ID token algorithm (ID tokens,
    /// logout tokens), under the current key.
    pub(super) fn signed_for(
        &self,
        client: &OidcClient,
        claims: &impl Serialize,
        typ: Option<&str>,
    ) -> Result<String> {
        let alg = if client.id_token_signed_response_alg == "ES256" {
            Algorithm::ES256
        } else {
            Algorithm::RS256
        };
        let keys = self.keyring.current();
        let (signer, kid) = keys.current.signer(alg);
        let mut header = Header::new(alg);
        header.kid = Some(kid.to_owned());
        header.typ = typ.map(str::to_owned);
        Ok(jsonwebtoken::encode(&header, claims, signer)?)
    }

    /// `GET /oauth2/userinfo` for an access token this provider issued.
    /// A DPoP-bound token is taken only under the `DPoP` scheme, with a
    /// proof by its key that covers it (`ath`).
    pub async fn oidc_userinfo(
        &self,
        presented: Option<Presented<'_>>,
        dpop: DpopRequest<'_>,
    ) -> Result<UserInfo> {
        let invalid = |d: &str| oauth(OAuthError::InvalidToken, d);
        let presented = presented.ok_or_else(|| invalid("an access token is required"))?;
        let (claims, user, grant) = self.live_access(presented.token).await?;
        self.sender_checked(&claims, presented, &dpop).await?;
        let asked = &grant.base.claims;
        let r = Released::of(&user, &claims.scope, &asked.userinfo, asked.locale);
        Ok(UserInfo {
            sub: claims.sub.clone(),
            preferred_username: r.preferred_username,
            name: r.name,
            email: r.email,
            phone_number: r.phone_number,
        })
    }
}

/// The claims about a citizen a token's scopes grant, or the `claims`
/// parameter asked for by name (docs/OIDC.md §3: `profile` →
/// `preferred_username`, `name`; `email`; `phone` → `phone_number`).
#[derive(Debug, Default)]
pub(super) struct Released {
    pub(super) preferred_username: Option<String>,
    pub(super) name: Option<String>,
    pub(super) email: Option<String>,
    pub(super) phone_number: Option<String>,
}

impl Released {
    /// What `scope` and the claims `asked` for by name release of `user`,
    /// the name in the script of `locale` (`claims_locales`) where it can be.
    pub(super) fn of(
        user: &crate::store::User,
        scope: &str,
        asked: &[String],
        locale: Option<Locale>,
    ) -> Self {
        let scopes: Vec<&str> = scope.split_ascii_whitespace().collect();
        let wants =
            |claim: &str, scope: &str| scopes.contains(&scope) || asked.iter().any(|a| a == claim);
        let name = match locale {
            Some(Locale::SrLatn) => potvrda_i18n::transliterate(&user.display_name),
            _ => user.display_name.clone(),
        };
        Self {
            preferred_username: wants("preferred_username", "profile")
                .then(|| user.username.clone()),
            name: wants("name", "profile").then_some(name),
            email: user.email.clone().filter(|_| wants("email", "email")),
            phone_number: user
                .phone
                .clone()
                .filter(|_| wants("phone_number", "phone")),
        }
    }
}

impl TokenEndpoint<'_> {
    /// The claims and the account of a live access token of this provider:
    /// its signature, its expiry, its grant not revoked, its client not
    /// retired, its account usable as when it was issued.
    pub(super) async fn live_access(
        &self,
        token: &str,
    ) -> Result<(OidcAccessClaims, crate::store::User, StoredGrant)> {
        let invalid = |d: &str| oauth(OAuthError::InvalidToken, d);
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
        let Some(grant) = grant.filter(|g| !g.revoked && g.client_id == claims.client_id) else {
            return Err(invalid("the grant was revoked"));
        };
        if self.provider().client(&grant.client_id).await?.is_none() {
            return Err(invalid("the client was retired"));
        }
        let user = self
            .store
            .user(&grant.base.user_id)
            .await?
            .filter(|u| !u.locked && !u.deactivated && u.generation == grant.base.generation)
            .ok_or_else(|| invalid("no such user, or the account is locked"))?;
        Ok((claims, user, grant))
    }
}

/// An access token as a request presents it (`Authorization: <scheme> <token>`).
#[derive(Debug, Clone, Copy)]
pub struct Presented<'t> {
    /// `Authorization: DPoP` rather than `Bearer`.
    pub dpop: bool,
    /// The token.
    pub token: &'t str,
}

impl TokenEndpoint<'_> {
    /// RFC 9449 §7: a bound token comes under the `DPoP` scheme with a proof
    /// by its key covering it; an unbound one under `Bearer`.
    async fn sender_checked(
        &self,
        claims: &OidcAccessClaims,
        presented: Presented<'_>,
        dpop: &DpopRequest<'_>,
    ) -> Result<()> {
        let invalid = |d: &str| oauth(OAuthError::InvalidToken, d);
        let Some(cnf) = &claims.cnf else {
            return if presented.dpop {
                Err(invalid("a bearer token comes under the Bearer scheme"))
            } else {
                Ok(())
            };
        };
        if !presented.dpop {
            return Err(invalid(
                "this token is DPoP-bound: present it with a DPoP proof",
            ));
        }
        let proof = self
            .dpop()
            .verify(
                dpop,
                Some(presented.token),
                crate::service::client::ASSERTION_ALGS,
                false,
            )
            .await
            // At a resource, a refused proof is a refused token (401).
            .map_err(|e| match e {
                Error::OAuth { description, .. } => invalid(&format!("DPoP: {description}")),
                other => other,
            })?
            .ok_or_else(|| invalid("this token is DPoP-bound: a DPoP proof is required"))?;
        if !ct_eq_str(&proof.jkt, &cnf.jkt) {
            return Err(invalid("the DPoP proof is by another key than the token's"));
        }
        Ok(())
    }
}

/// OpenID Connect Core §3.1.3.6: the base64url left half of the access
/// token's SHA-256 (the hash of ES256 and RS256 alike).
fn at_hash(access_token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
}
