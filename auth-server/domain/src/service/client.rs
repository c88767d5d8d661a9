//! A registered relying party: what it may do and how it proves who it is.
//! The metadata names are RFC 7591's, CIBA Core §4's and OpenID Connect
//! Registration's wherever one exists.

use crate::store::ClientId;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use potvrda_proto::oidc::GrantType;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// A relying party of the OpenID Provider and the portal API: its
/// registration metadata, as the configuration's seed and the admin API
/// write it (and the registry keeps it, without the secret).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OidcClient {
    /// Its id.
    pub client_id: ClientId,
    /// Its secret, in the configuration's seed only (the registry generates
    /// secrets and keeps their hashes); absent for a public client (which
    /// must use PKCE) and for a `private_key_jwt` client. Never serialized.
    #[serde(default, skip_serializing)]
    pub client_secret: Option<SecretString>,
    /// The peppered hashes of the secrets that authenticate it now (the
    /// seed's, or the registry's current and, while a rotation overlaps,
    /// previous one). Filled by the provider, never read from or written to
    /// the metadata.
    #[serde(skip)]
    pub(crate) secrets: Vec<SecretHash>,
    /// Exact redirect URIs (no wildcards); required for the code flow.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Exact URIs it may be sent back to after logout.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// The service's name, shown on the login page and the phone.
    pub name: String,
    /// `RS256` (default) or `ES256`.
    #[serde(default = "default_id_token_alg")]
    pub id_token_signed_response_alg: String,
    /// RFC 7591: how it authenticates. Absent: `client_secret_basic` or
    /// `client_secret_post` with a secret (both accepted, as before), `none`
    /// without.
    #[serde(default)]
    pub token_endpoint_auth_method: Option<AuthMethod>,
    /// RFC 7591: its public keys, for `private_key_jwt`.
    #[serde(default)]
    pub jwks: Option<JwkSet>,
    /// RFC 7591: where it publishes them instead (fetched, cached for five
    /// minutes, fetched again for a key id it does not know).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// RFC 7591: the grants it uses at the token endpoint
    /// (default: `authorization_code`, `refresh_token`).
    #[serde(default = "default_grant_types")]
    pub grant_types: Vec<GrantType>,
    /// Potvrda: it may call the portal API (`/v1/logins`), which hands it
    /// the citizen's password.
    #[serde(default)]
    pub portal_api: bool,
    /// Potvrda: it may report the citizen's `ip` and `user_agent` in a
    /// login's context (the phone shows them as reported by this client).
    #[serde(default)]
    pub reports_user_context: bool,
    /// CIBA Core §4: `poll` or `ping`; required with the CIBA grant.
    #[serde(default)]
    pub backchannel_token_delivery_mode: Option<DeliveryMode>,
    /// CIBA Core §4: where a `ping` client is told that its request is decided.
    #[serde(default)]
    pub backchannel_client_notification_endpoint: Option<String>,
    /// CIBA Core §4: must be `false` (number matching replaces user codes).
    #[serde(default)]
    pub backchannel_user_code_parameter: bool,
    /// OpenID Connect Registration: the levels asked for when a request
    /// names none (`urn:potvrda:loa:basic`, `:substantial`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default_acr_values: Vec<String>,
    /// Potvrda (no registration standard names it): the only levels this
    /// client may ask for, and the floor of every login for it — a service
    /// registered for `substantial` never receives a `basic` login, whatever
    /// its request says. Empty: every level.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_acr_values: Vec<String>,
    /// RFC 7591: the scopes it may ask for, space-separated (absent: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// OpenID Connect Registration: `public` (default) or `pairwise`.
    #[serde(default)]
    pub subject_type: SubjectType,
    /// OpenID Connect Registration: the sector whose services share one
    /// pairwise `sub` (its host names the sector; absent: the host of the
    /// one redirect URI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sector_identifier_uri: Option<String>,
    /// Back-Channel Logout 1.0: where the provider POSTs a logout token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    /// Back-Channel Logout 1.0: the logout token must carry `sid`
    /// (it always does here).
    #[serde(default)]
    pub backchannel_logout_session_required: bool,
    /// Front-Channel Logout 1.0: the page the logout page loads in a frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontchannel_logout_uri: Option<String>,
    /// Front-Channel Logout 1.0: add `iss` and `sid` to that page's query.
    #[serde(default)]
    pub frontchannel_logout_session_required: bool,
    /// RFC 9126: authorization requests only through PAR.
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    /// RFC 9449: access tokens always DPoP-bound.
    #[serde(default)]
    pub dpop_bound_access_tokens: bool,
    /// Potvrda: held to the FAPI 2.0 Security Profile (PAR, DPoP,
    /// `private_key_jwt`, ES256/PS256 only).
    #[serde(default)]
    pub fapi2: bool,
    /// Potvrda: the citizen is asked to consent before the first login to
    /// this service (off for the portal's first-party services).
    #[serde(default)]
    pub require_consent: bool,
}

/// OpenID Connect Core §8: how `sub` is chosen for a client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectType {
    /// The citizen's account id, the same for every client.
    #[default]
    Public,
    /// One per citizen and sector (§8.1), unlinkable across sectors.
    Pairwise,
}

/// A client secret's peppered hash, and until when it authenticates
/// (0: until replaced).
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct SecretHash {
    /// HMAC-SHA-256 of the secret under the server's pepper, base64url.
    pub hash: String,
    /// Unix time after which it no longer authenticates (0: never).
    #[serde(default)]
    pub until: i64,
}

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretHash(***, until {})", self.until)
    }
}

/// RFC 7591 `token_endpoint_auth_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic with the secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// The secret in the form (RFC 6749 §2.3.1).
    ClientSecretPost,
    /// A JWT signed with the client's key (RFC 7523, OIDC Core §9).
    PrivateKeyJwt,
    /// A public client: PKCE only.
    None,
}

/// CIBA Core §5 token delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryMode {
    /// The client polls the token endpoint.
    Poll,
    /// The client is notified, then asks the token endpoint once.
    Ping,
}

/// What a client may sign a `private_key_jwt` assertion with.
pub const ASSERTION_ALGS: &[Algorithm] = &[Algorithm::ES256, Algorithm::RS256, Algorithm::PS256];
/// What a `fapi2` client may sign with (FAPI 2.0 Security Profile §5.4.1).
pub const FAPI2_ALGS: &[Algorithm] = &[Algorithm::ES256, Algorithm::PS256];

impl OidcClient {
    /// The algorithms its signatures (assertions, request objects, DPoP
    /// proofs) may use.
    pub fn signing_algs(&self) -> &'static [Algorithm] {
        if self.fapi2 {
            FAPI2_ALGS
        } else {
            ASSERTION_ALGS
        }
    }
}

fn default_id_token_alg() -> String {
    "RS256".into()
}

fn default_grant_types() -> Vec<GrantType> {
    vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
}

impl OidcClient {
    /// Check a registration (the seed's or the admin API's): its metadata,
    /// and an id that is not one of the server's own token audiences (its
    /// tokens' `aud` would be the portal's).
    pub fn check_registration(
        &self,
        tokens: &crate::settings::TokenSettings,
    ) -> std::result::Result<(), String> {
        self.validate()?;
        if self.client_id == tokens.token_audience || self.client_id == tokens.admin_audience {
            return Err(format!(
                "oidc client id {} must differ from token_audience and admin_audience",
                self.client_id
            ));
        }
        Ok(())
    }

    /// Check the registration; the message names the client and the field.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let id = &self.client_id;
        if id.is_empty() || id.len() > 128 || id.chars().any(|c| c.is_control() || c == ':') {
            return Err(format!(
                "oidc client id {id:?} must be 1-128 characters without ':'"
            ));
        }
        if self.name.trim().is_empty() || self.name.len() > 100 {
            return Err(format!("oidc client {id}: name must be 1-100 bytes"));
        }
        if self
            .client_secret
            .as_ref()
            .is_some_and(|s| s.expose_secret().len() < 16)
        {
            return Err(format!(
                "oidc client {id}: client_secret must be at least 16 characters"
            ));
        }
        if !matches!(
            self.id_token_signed_response_alg.as_str(),
            "RS256" | "ES256"
        ) {
            return Err(format!(
                "oidc client {id}: id_token_signed_response_alg must be RS256 or ES256"
            ));
        }
        self.validate_authentication()
            .and_then(|()| self.validate_fapi2())
            .and_then(|()| self.validate_acr())
            .and_then(|()| self.validate_scope())
            .and_then(|()| self.validate_subject())
            .and_then(|()| self.validate_grants())
            .and_then(|()| self.validate_uris())
            .map_err(|e| format!("oidc client {id}: {e}"))
    }

    fn validate_authentication(&self) -> std::result::Result<(), String> {
        let method = self.auth_method();
        match (method, self.has_secret(), &self.jwks) {
            (AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost, true, None)
            | (AuthMethod::None, false, None) => Ok(()),
            (AuthMethod::PrivateKeyJwt, false, None) if self.jwks_uri.is_some() => Ok(()),
            (AuthMethod::PrivateKeyJwt, false, Some(set)) if self.jwks_uri.is_none() => {
                if set.keys.is_empty() {
                    return Err("jwks must hold at least one key".into());
                }
                for key in &set.keys {
                    assertion_alg(key).ok_or("each jwks key must be an EC P-256 or RSA key")?;
                    DecodingKey::from_jwk(key).map_err(|_| "a jwks key does not parse")?;
                }
                Ok(())
            }
            (AuthMethod::PrivateKeyJwt, _, _) => {
                Err("private_key_jwt takes jwks or jwks_uri (not both) and no client_secret".into())
            }
            (AuthMethod::None, _, _) => Err("a public client has no client_secret or jwks".into()),
            _ => Err(
                "client_secret_basic and client_secret_post take a client_secret and no jwks"
                    .into(),
            ),
        }
    }

    /// FAPI 2.0 Security Profile §5.3.2 for a `fapi2` client: a
    /// confidential client with `private_key_jwt` (§5.3.2.1: no shared
    /// secret), ES256 or PS256 keys only (§5.4.1), an ES256 ID token, and
    /// only the code flow with its refresh tokens.
    fn validate_fapi2(&self) -> std::result::Result<(), String> {
        if !self.fapi2 {
            return Ok(());
        }
        if self.auth_method() != AuthMethod::PrivateKeyJwt {
            return Err("a fapi2 client authenticates with private_key_jwt".into());
        }
        if self.id_token_signed_response_alg != "ES256" {
            return Err("a fapi2 client takes ES256 ID tokens".into());
        }
        let rs256_only = self.jwks.iter().flat_map(|s| &s.keys).any(|k| {
            assertion_alg(k).is_some_and(|algs| !algs.iter().any(|a| FAPI2_ALGS.contains(a)))
        });
        if rs256_only {
            return Err("a fapi2 client's keys sign with ES256 or PS256".into());
        }
        if self
            .grant_types
            .iter()
            .any(|g| !matches!(g, GrantType::AuthorizationCode | GrantType::RefreshToken))
            || self.portal_api
        {
            return Err(
                "a fapi2 client uses the authorization_code and refresh_token grants only".into(),
            );
        }
        Ok(())
    }

    fn validate_scope(&self) -> std::result::Result<(), String> {
        let Some(scope) = &self.scope else {
            return Ok(());
        };
        match scope
            .split_ascii_whitespace()
            .find(|s| !crate::service::oidc::SCOPES.contains(s))
        {
            Some(unknown) => Err(format!("scope names {unknown:?}, which is not served")),
            None if !scope.split_ascii_whitespace().any(|s| s == "openid") => {
                Err("scope must include openid".into())
            }
            None => Ok(()),
        }
    }

    fn validate_subject(&self) -> std::result::Result<(), String> {
        if let Some(uri) = &self.sector_identifier_uri
            && !url::Url::parse(uri).is_ok_and(|u| u.scheme() == "https" && u.host().is_some())
        {
            return Err("sector_identifier_uri must be an https URI".into());
        }
        if self.subject_type == SubjectType::Pairwise && self.sector().is_none() {
            return Err(
                "a pairwise client needs a sector_identifier_uri, or redirect_uris on one host"
                    .into(),
            );
        }
        Ok(())
    }

    fn validate_acr(&self) -> std::result::Result<(), String> {
        match self.default_level() {
            Ok(None) if !self.default_acr_values.is_empty() => {
                Err("default_acr_values must name a level (urn:potvrda:loa:…)".into())
            }
            Ok(Some(level)) if level > crate::service::assurance::Method::PasswordPush.best() => {
                Err(format!(
                    "default_acr_values asks for {}, which no login reaches yet",
                    level.acr()
                ))
            }
            Ok(_) => self.validate_allowed_acr(),
            Err(e) => Err(format!("default_acr_values: {e}")),
        }
    }

    fn validate_allowed_acr(&self) -> std::result::Result<(), String> {
        use crate::service::assurance::Level;
        let parse = |v: &String| Level::ALL.into_iter().find(|l| l.acr() == v);
        if let Some(v) = self.allowed_acr_values.iter().find(|v| parse(v).is_none()) {
            return Err(format!(
                "allowed_acr_values names {v}, which is not a level"
            ));
        }
        let allowed = self.allowed_levels();
        if allowed
            .iter()
            .all(|l| *l > crate::service::assurance::Method::PasswordPush.best())
            && !allowed.is_empty()
        {
            return Err("allowed_acr_values names only levels no login reaches yet".into());
        }
        match self.default_level() {
            Ok(Some(level)) if !allowed.is_empty() && !allowed.contains(&level) => Err(format!(
                "default_acr_values asks for {}, which allowed_acr_values does not allow",
                level.acr()
            )),
            _ => Ok(()),
        }
    }

    /// The levels of `allowed_acr_values` (empty: every level).
    pub(crate) fn allowed_levels(&self) -> Vec<crate::service::assurance::Level> {
        crate::service::assurance::Level::ALL
            .into_iter()
            .filter(|l| self.allowed_acr_values.iter().any(|v| v == l.acr()))
            .collect()
    }

    /// The lowest level of `default_acr_values`, if it names any.
    pub(crate) fn default_level(
        &self,
    ) -> std::result::Result<Option<crate::service::assurance::Level>, &'static str> {
        if self.default_acr_values.is_empty() {
            return Ok(None);
        }
        crate::service::assurance::requested(Some(&self.default_acr_values.join(" ")), None)
    }

    fn validate_grants(&self) -> std::result::Result<(), String> {
        let confidential = self.auth_method() != AuthMethod::None;
        if (self.portal_api || self.uses(GrantType::Ciba)) && !confidential {
            return Err(
                "the portal API and CIBA need an authenticated (confidential) client".into(),
            );
        }
        if self.reports_user_context && !self.portal_api {
            return Err("reports_user_context needs portal_api".into());
        }
        if self.uses(GrantType::AuthorizationCode) && self.redirect_uris.is_empty() {
            return Err("the authorization_code grant needs at least one redirect_uri".into());
        }
        if self.backchannel_user_code_parameter {
            return Err("backchannel_user_code_parameter is not supported (the phone's number matching replaces it)".into());
        }
        match (
            self.uses(GrantType::Ciba),
            self.backchannel_token_delivery_mode,
            &self.backchannel_client_notification_endpoint,
        ) {
            (false, None, None)
            | (true, Some(DeliveryMode::Poll), None)
            | (true, Some(DeliveryMode::Ping), Some(_)) => Ok(()),
            (true, None, _) => Err("the CIBA grant needs backchannel_token_delivery_mode".into()),
            (true, Some(DeliveryMode::Ping), None) => {
                Err("ping needs backchannel_client_notification_endpoint".into())
            }
            _ => Err("backchannel_* settings need the urn:openid:params:grant-type:ciba grant (and a notification endpoint only with ping)".into()),
        }
    }

    fn validate_uris(&self) -> std::result::Result<(), String> {
        for uri in self
            .redirect_uris
            .iter()
            .chain(&self.post_logout_redirect_uris)
            .chain(&self.backchannel_client_notification_endpoint)
            .chain(&self.backchannel_logout_uri)
            .chain(&self.frontchannel_logout_uri)
            .chain(&self.jwks_uri)
        {
            let ok = url::Url::parse(uri)
                .is_ok_and(|u| u.fragment().is_none() && matches!(u.scheme(), "https" | "http"));
            if !ok {
                return Err(format!(
                    "{uri:?} must be an absolute http(s) URI without a fragment"
                ));
            }
        }
        Ok(())
    }

    /// The sector of its pairwise subjects: the host of
    /// `sector_identifier_uri`, else of its redirect URIs when they share one.
    pub fn sector(&self) -> Option<String> {
        let host = |u: &str| url::Url::parse(u).ok()?.host_str().map(str::to_owned);
        if let Some(uri) = &self.sector_identifier_uri {
            return host(uri);
        }
        let mut hosts = self.redirect_uris.iter().map(|u| host(u));
        let first = hosts.next()??;
        hosts.all(|h| h.as_ref() == Some(&first)).then_some(first)
    }

    /// Whether its authorization requests must come through PAR.
    pub fn requires_par(&self) -> bool {
        self.fapi2 || self.require_pushed_authorization_requests
    }

    /// Whether its access tokens must be DPoP-bound.
    pub fn requires_dpop(&self) -> bool {
        self.fapi2 || self.dpop_bound_access_tokens
    }

    /// Whether it holds a secret (the seed's, or a hash of the registry's).
    pub fn has_secret(&self) -> bool {
        self.client_secret.is_some() || !self.secrets.is_empty()
    }

    /// Whether this is a public client (no credential).
    pub fn is_public(&self) -> bool {
        self.auth_method() == AuthMethod::None
    }

    /// How it authenticates (the registered method, or the one its
    /// credentials imply).
    pub fn auth_method(&self) -> AuthMethod {
        self.token_endpoint_auth_method.unwrap_or(
            match (
                self.has_secret(),
                self.jwks.is_some() || self.jwks_uri.is_some(),
            ) {
                (true, _) => AuthMethod::ClientSecretBasic,
                (false, true) => AuthMethod::PrivateKeyJwt,
                (false, false) => AuthMethod::None,
            },
        )
    }

    /// Whether it is registered for `grant`.
    pub fn uses(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
}

/// The algorithm a client's key signs assertions with: ES256 for P-256,
/// RS256 or PS256 for RSA (the key's `alg`, when it names one of them).
pub(crate) fn assertion_alg(key: &Jwk) -> Option<&'static [Algorithm]> {
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, KeyAlgorithm};
    match (&key.algorithm, key.common.key_algorithm) {
        (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
            if ec.curve == EllipticCurve::P256 =>
        {
            Some(&[Algorithm::ES256])
        }
        (AlgorithmParameters::RSA(_), None) => Some(&[Algorithm::RS256, Algorithm::PS256]),
        (AlgorithmParameters::RSA(_), Some(KeyAlgorithm::RS256)) => Some(&[Algorithm::RS256]),
        (AlgorithmParameters::RSA(_), Some(KeyAlgorithm::PS256)) => Some(&[Algorithm::PS256]),
        _ => None,
    }
}
