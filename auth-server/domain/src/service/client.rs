//! A registered relying party of the OpenID Provider.

use crate::store::ClientId;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// A relying party of the OpenID Provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcClient {
    /// Its id.
    pub client_id: ClientId,
    /// Its secret; absent for a public client (which must use PKCE).
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    /// Exact redirect URIs (no wildcards).
    pub redirect_uris: Vec<String>,
    /// Exact URIs it may be sent back to after logout.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// The service's name, shown on the login page and the phone.
    pub name: String,
    /// `RS256` (default) or `ES256`.
    #[serde(default = "default_id_token_alg")]
    pub id_token_signed_response_alg: String,
}

fn default_id_token_alg() -> String {
    "RS256".into()
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
        if self.redirect_uris.is_empty() {
            return Err(format!("oidc client {id}: at least one redirect_uri"));
        }
        for uri in self
            .redirect_uris
            .iter()
            .chain(&self.post_logout_redirect_uris)
        {
            let ok = url::Url::parse(uri)
                .is_ok_and(|u| u.fragment().is_none() && matches!(u.scheme(), "https" | "http"));
            if !ok {
                return Err(format!(
                    "oidc client {id}: {uri:?} must be an absolute http(s) URI without a fragment"
                ));
            }
        }
        Ok(())
    }

    /// Whether this is a public client (no secret).
    pub fn is_public(&self) -> bool {
        self.client_secret.is_none()
    }
}
