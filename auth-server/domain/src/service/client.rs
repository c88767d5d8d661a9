//! A registered relying party: what it may do and how it proves who it is.
//! The metadata names are RFC 7591's, CIBA Core §4's and OpenID Connect
//! Registration's wherever one exists.

use crate::store::ClientId;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use potvrda_proto::oidc::GrantType;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// A relying party of the OpenID Provider and the portal API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcClient {
    /// Its id.
    pub client_id: ClientId,
    /// Its secret; absent for a public client (which must use PKCE) and for
    /// a `private_key_jwt` client.
    #[serde(default)]
    pub client_secret: Option<SecretString>,
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
    #[serde(default)]
    pub default_acr_values: Vec<String>,
}

/// RFC 7591 `token_endpoint_auth_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryMode {
    /// The client polls the token endpoint.
    Poll,
    /// The client is notified, then asks the token endpoint once.
    Ping,
}

/// What a client may sign a `private_key_jwt` assertion with.
pub const ASSERTION_ALGS: &[Algorithm] = &[Algorithm::ES256, Algorithm::RS256, Algorithm::PS256];

fn default_id_token_alg() -> String {
    "RS256".into()
}

fn default_grant_types() -> Vec<GrantType> {
    vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
}

impl OidcClient {
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
            .and_then(|()| self.validate_acr())
            .and_then(|()| self.validate_grants())
            .and_then(|()| self.validate_uris())
            .map_err(|e| format!("oidc client {id}: {e}"))
    }

    fn validate_authentication(&self) -> std::result::Result<(), String> {
        let method = self.auth_method();
        match (method, &self.client_secret, &self.jwks) {
            (AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost, Some(_), None)
            | (AuthMethod::None, None, None) => Ok(()),
            (AuthMethod::PrivateKeyJwt, None, Some(set)) => {
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
                Err("private_key_jwt takes jwks and no client_secret".into())
            }
            (AuthMethod::None, _, _) => Err("a public client has no client_secret or jwks".into()),
            _ => Err(
                "client_secret_basic and client_secret_post take a client_secret and no jwks"
                    .into(),
            ),
        }
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
            Ok(_) => Ok(()),
            Err(e) => Err(format!("default_acr_values: {e}")),
        }
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

    /// Whether this is a public client (no credential).
    pub fn is_public(&self) -> bool {
        self.auth_method() == AuthMethod::None
    }

    /// How it authenticates (the registered method, or the one its
    /// credentials imply).
    pub fn auth_method(&self) -> AuthMethod {
        self.token_endpoint_auth_method
            .unwrap_or(match (&self.client_secret, &self.jwks) {
                (Some(_), _) => AuthMethod::ClientSecretBasic,
                (None, Some(_)) => AuthMethod::PrivateKeyJwt,
                (None, None) => AuthMethod::None,
            })
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
