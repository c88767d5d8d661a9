//! Client authentication, the one rule for every endpoint a relying party
//! calls (the token and backchannel endpoints, the portal API):
//! `client_secret_basic`, `client_secret_post`, `private_key_jwt`
//! (RFC 7523: `iss` = `sub` = the client, `aud` this provider, short-lived,
//! each `jti` once), or `none` for a public client at the token endpoint.

use super::*;
use crate::service::client::{AuthMethod, assertion_alg};
use crate::store::records::ClientJtiSpent;
use potvrda_proto::oidc::CLIENT_ASSERTION_TYPE_JWT;

/// The longest an assertion may live (its `exp` from now).
const MAX_ASSERTION_LIFETIME: i64 = 300;
/// Clock skew allowed for `iat` and `nbf`.
const ASSERTION_LEEWAY: i64 = 60;

/// What a request presented to authenticate its client.
#[derive(Debug, Default)]
pub enum ClientCredentials {
    /// Nothing.
    #[default]
    Absent,
    /// HTTP Basic (RFC 6749 §2.3.1).
    Basic {
        /// The client id.
        id: String,
        /// The secret.
        secret: SecretString,
    },
    /// `client_id` and `client_secret` in the form.
    Post {
        /// The client id.
        id: String,
        /// The secret.
        secret: SecretString,
    },
    /// Only a `client_id` (a public client).
    Id(String),
    /// An RFC 7523 assertion, with the form's `client_id` if it gave one.
    Assertion {
        /// The JWT.
        jwt: String,
        /// The form's `client_id`, which must be the assertion's `iss`.
        id: Option<String>,
    },
}

/// The client credentials a form may carry (RFC 6749 §2.3.1, RFC 7523),
/// flattened into every form of an endpoint that authenticates clients.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ClientFields {
    /// `client_secret_post`, `private_key_jwt` and public clients.
    pub client_id: Option<String>,
    /// `client_secret_post`.
    pub client_secret: Option<Secret>,
    /// RFC 7523: `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    pub client_assertion_type: Option<String>,
    /// RFC 7523: the `private_key_jwt` assertion.
    pub client_assertion: Option<Secret>,
}

impl ClientFields {
    /// The credentials these fields (and the request's HTTP Basic) present.
    pub fn credentials(&self, basic: Option<(String, String)>) -> Result<ClientCredentials> {
        ClientCredentials::from_parts(CredentialParts {
            basic,
            client_id: self.client_id.as_deref(),
            client_secret: self.client_secret.as_ref().map(Secret::expose),
            assertion_type: self.client_assertion_type.as_deref(),
            assertion: self.client_assertion.as_ref().map(Secret::expose),
        })
    }
}

/// The parts of a form that can authenticate a client.
#[derive(Debug, Default)]
pub struct CredentialParts<'a> {
    /// HTTP Basic, decoded.
    pub basic: Option<(String, String)>,
    /// The form's `client_id`.
    pub client_id: Option<&'a str>,
    /// The form's `client_secret`.
    pub client_secret: Option<&'a str>,
    /// The form's `client_assertion_type`.
    pub assertion_type: Option<&'a str>,
    /// The form's `client_assertion`.
    pub assertion: Option<&'a str>,
}

impl ClientCredentials {
    /// The credentials of a form (and its HTTP Basic): exactly one method.
    pub fn from_parts(p: CredentialParts<'_>) -> Result<Self> {
        let one = |d: &str| oauth(OAuthError::InvalidRequest, d);
        match (p.basic, p.client_secret, p.assertion_type, p.assertion) {
            (Some((id, secret)), None, None, None) => {
                if p.client_id.is_some_and(|f| f != id) {
                    return Err(one("client_id differs from the HTTP Basic one"));
                }
                Ok(Self::Basic {
                    id,
                    secret: secret.into(),
                })
            }
            (None, Some(secret), None, None) => Ok(Self::Post {
                id: p
                    .client_id
                    .ok_or_else(|| one("client_secret needs client_id"))?
                    .to_owned(),
                secret: secret.to_owned().into(),
            }),
            (None, None, Some(CLIENT_ASSERTION_TYPE_JWT), Some(jwt)) => Ok(Self::Assertion {
                jwt: jwt.to_owned(),
                id: p.client_id.map(str::to_owned),
            }),
            (None, None, Some(_), Some(_)) => Err(one(
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            )),
            (None, None, None, None) => Ok(p
                .client_id
                .map_or(Self::Absent, |id| Self::Id(id.to_owned()))),
            _ => Err(one("use one client authentication method")),
        }
    }

    fn method(&self) -> Option<AuthMethod> {
        match self {
            Self::Absent => None,
            Self::Basic { .. } => Some(AuthMethod::ClientSecretBasic),
            Self::Post { .. } => Some(AuthMethod::ClientSecretPost),
            Self::Id(_) => Some(AuthMethod::None),
            Self::Assertion { .. } => Some(AuthMethod::PrivateKeyJwt),
        }
    }
}

/// Where a client authenticates: what an assertion's `aud` may name
/// besides the issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/oauth2/token`.
    Token,
    /// `/oauth2/bc-authorize`.
    Backchannel,
    /// `/v1/logins` and its status and code endpoints.
    Portal,
    /// `/oauth2/par`.
    Par,
    /// `/oauth2/introspect`.
    Introspection,
    /// `/oauth2/revoke`.
    Revocation,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Self::Token => "/oauth2/token",
            Self::Backchannel => "/oauth2/bc-authorize",
            Self::Portal => "/v1/logins",
            Self::Par => "/oauth2/par",
            Self::Introspection => "/oauth2/introspect",
            Self::Revocation => "/oauth2/revoke",
        }
    }
}

#[derive(Debug, Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    jti: Option<String>,
}

capability! {
    /// Client authentication.
    pub(crate) ClientAuth
}

impl<'a> ClientAuth<'a> {
    /// The registered client these credentials prove, by the method it is
    /// registered for; `invalid_client` else.
    pub(crate) async fn authenticate(
        &self,
        creds: ClientCredentials,
        at: Endpoint,
    ) -> Result<OidcClient> {
        let fail = |d: &str| oauth(OAuthError::InvalidClient, d);
        let Some(method) = creds.method() else {
            return Err(fail("client authentication is required"));
        };
        let client = match creds {
            ClientCredentials::Absent => return Err(fail("client authentication is required")),
            ClientCredentials::Basic { id, secret } | ClientCredentials::Post { id, secret } => {
                let client = self.registered(&id).await?;
                if !self.secret_matches(&client, secret.expose_secret()) {
                    return Err(fail("client authentication failed"));
                }
                client
            }
            ClientCredentials::Id(id) => self.registered(&id).await?,
            ClientCredentials::Assertion { jwt, id } => {
                self.verify_assertion(&jwt, id.as_deref(), at).await?
            }
        };
        if !accepts(&client, method) {
            return Err(fail(
                "the client is registered for another authentication method",
            ));
        }
        Ok(client)
    }

    /// The portal API's caller: a client registered for it (errors in the
    /// portal API's own form).
    pub(crate) async fn portal(&self, creds: ClientCredentials) -> Result<OidcClient> {
        let client = self
            .authenticate(creds, Endpoint::Portal)
            .await
            .map_err(|e| match e {
                Error::OAuth {
                    error: OAuthError::InvalidClient,
                    description,
                } => Error::InvalidClient(description),
                Error::OAuth { description, .. } => Error::InvalidRequest(description),
                other => other,
            })?;
        if !client.portal_api {
            return Err(Error::InvalidClient(
                "the client is not registered for the portal API".into(),
            ));
        }
        Ok(client)
    }

    async fn registered(&self, id: &str) -> Result<OidcClient> {
        Provider(self.0)
            .client(id)
            .await?
            .ok_or_else(|| oauth(OAuthError::InvalidClient, "unknown client"))
    }

    /// Whether `secret` is one of the client's live secrets (compared as
    /// peppered hashes, in constant time).
    fn secret_matches(&self, client: &OidcClient, secret: &str) -> bool {
        let now = self.clock.now();
        let presented = super::registry::client_secret_hash(&self.keys.pepper, secret);
        client
            .secrets
            .iter()
            .filter(|s| s.until == 0 || now < s.until)
            .fold(false, |hit, s| ct_eq_str(&s.hash, &presented) | hit)
    }

    /// RFC 7523 §3, with OIDC Core §9's `iss` = `sub` = the client.
    async fn verify_assertion(
        &self,
        jwt: &str,
        form_id: Option<&str>,
        at: Endpoint,
    ) -> Result<OidcClient> {
        let fail = |d: &str| oauth(OAuthError::InvalidClient, d);
        let header = jsonwebtoken::decode_header(jwt)
            .map_err(|_| fail("the client assertion is not a JWT"))?;
        let unverified = jsonwebtoken::dangerous::insecure_decode::<AssertionClaims>(jwt)
            .map_err(|_| fail("the client assertion's claims are malformed"))?
            .claims;
        if form_id.is_some_and(|f| f != unverified.iss) {
            return Err(fail("client_id differs from the assertion's issuer"));
        }
        let client = self.registered(&unverified.iss).await?;
        let decoding = verifying_key(self, &client, &header).await.map_err(fail)?;
        let mut v = Validation::new(header.alg);
        v.validate_exp = false;
        v.validate_nbf = false;
        v.set_issuer(&[client.client_id.as_str()]);
        let endpoint = format!("{}{}", self.public_url, at.path());
        v.set_audience(&[self.public_url.as_str(), endpoint.as_str()]);
        let claims = jsonwebtoken::decode::<AssertionClaims>(jwt, &decoding, &v)
            .map_err(|_| fail("the client assertion does not verify (signature, iss or aud)"))?
            .claims;
        self.assertion_fresh(&client, &claims).await?;
        Ok(client)
    }

    /// `sub`, the times, and the `jti` spent once until the assertion expires.
    async fn assertion_fresh(&self, client: &OidcClient, c: &AssertionClaims) -> Result<()> {
        let fail = |d: &str| oauth(OAuthError::InvalidClient, d);
        let now = self.clock.now();
        if c.sub != client.client_id.as_str() {
            return Err(fail("the assertion's sub must be the client id"));
        }
        if c.exp <= now {
            return Err(fail("the client assertion has expired"));
        }
        if c.exp > now + MAX_ASSERTION_LIFETIME + ASSERTION_LEEWAY {
            return Err(fail("the client assertion lives longer than 5 minutes"));
        }
        if c.iat
            .into_iter()
            .chain(c.nbf)
            .any(|t| t > now + ASSERTION_LEEWAY)
        {
            return Err(fail("the client assertion is not valid yet"));
        }
        let jti = c
            .jti
            .as_deref()
            .filter(|j| !j.is_empty() && j.len() <= 256)
            .ok_or_else(|| fail("the client assertion needs a jti"))?;
        let key = format!("{}:{}", client.client_id, sha256_b64(jti.as_bytes()));
        let first = self
            .records::<ClientJtiSpent>()
            .put_new(
                &key,
                &crate::store::records::Marker,
                c.exp + ASSERTION_LEEWAY,
                now,
            )
            .await?;
        if !first {
            tracing::warn!(client_id = %client.client_id, "a client assertion was replayed");
            return Err(fail("the client assertion was already used"));
        }
        Ok(())
    }
}

/// Whether a client registered as it is accepts `method`: clients
/// registered without a method take either secret method, as before.
fn accepts(client: &OidcClient, method: AuthMethod) -> bool {
    match (client.token_endpoint_auth_method, client.auth_method()) {
        (Some(registered), _) => registered == method,
        (None, AuthMethod::ClientSecretBasic) => {
            matches!(
                method,
                AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost
            )
        }
        (None, implied) => implied == method,
    }
}

/// The client's key that verifies a JWT with this header (by `kid`, or its
/// only key): from its registered `jwks`, or the set at its `jwks_uri`
/// (fetched again once for a `kid` the cached set lacks); one it may sign
/// with, the header's algorithm fitting it (assertions and request objects
/// alike).
pub(super) async fn verifying_key(
    svc: &Potvrda,
    client: &OidcClient,
    header: &jsonwebtoken::Header,
) -> std::result::Result<DecodingKey, &'static str> {
    if let Some(set) = &client.jwks {
        return key_in(set, client, header);
    }
    let uri = client.jwks_uri.as_deref().ok_or("the client has no keys")?;
    let unavailable = "the client's published keys cannot be fetched";
    let set = svc
        .key_sets
        .key_set(uri, false)
        .await
        .map_err(|_| unavailable)?;
    match key_in(&set, client, header) {
        Err(e) if header.kid.as_deref().is_some_and(|k| set.find(k).is_none()) => {
            let fresh = svc.key_sets.key_set(uri, true).await.map_err(|_| e)?;
            key_in(&fresh, client, header)
        }
        other => other,
    }
}

fn key_in(
    set: &jsonwebtoken::jwk::JwkSet,
    client: &OidcClient,
    header: &jsonwebtoken::Header,
) -> std::result::Result<DecodingKey, &'static str> {
    let key = match &header.kid {
        Some(kid) => set.find(kid),
        None => (set.keys.len() == 1).then(|| &set.keys[0]),
    }
    .ok_or("no registered key of the client matches the JWT")?;
    if !client.signing_algs().contains(&header.alg)
        || !assertion_alg(key).is_some_and(|algs| algs.contains(&header.alg))
    {
        return Err("the JWT's algorithm does not fit the client's key");
    }
    DecodingKey::from_jwk(key).map_err(|_| "the client's key does not parse")
}
