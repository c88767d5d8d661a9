//! Pushed authorization requests (RFC 9126): the client posts its
//! authorization request (or a signed request object) over an
//! authenticated back channel, the request is checked there, and the
//! browser carries only a handle that works once, for a minute.

use super::request::checked_request;
use super::*;
use crate::service::client::ASSERTION_ALGS;

capability! {
    /// Pushed authorization requests.
    pub PushedRequests
}

/// `POST /oauth2/par`: the authorization request's parameters and the
/// client's credentials.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ParForm {
    /// The authorization request (or `request`, a signed request object).
    #[serde(flatten)]
    pub params: AuthorizeParams,
    /// The client's credentials (its `client_id` is the request's).
    #[serde(flatten)]
    pub client: ClientFields,
}

/// A pushed request, kept until its one use.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PushedRequest {
    client_id: ClientId,
    params: AuthorizeParams,
}

/// Under the SHA-256 of the `request_uri`.
impl JsonRecord for PushedRequest {
    const KIND: Kind = Kind::OidcPushedRequest;
    type Id = str;
}

/// How long a `request_uri` can be used (RFC 9126 §2.2: short; FAPI 2.0: < 600 s).
pub const PAR_TTL: i64 = 60;
const URN: &str = "urn:ietf:params:oauth:request_uri:";

impl PushedRequests<'_> {
    /// Check and keep a pushed request; its single-use handle.
    pub async fn push(
        &self,
        form: ParForm,
        basic: Option<(String, String)>,
        dpop: DpopRequest<'_>,
    ) -> Result<potvrda_proto::oidc::ParResponse> {
        let proof = self
            .dpop()
            .verify(&dpop, None, ASSERTION_ALGS, true)
            .await?;
        let creds = ClientFields {
            client_id: form.params.client_id.clone(),
            ..form.client.clone()
        }
        .credentials(basic)?;
        let client = self
            .client_auth()
            .authenticate(creds, Endpoint::Par)
            .await?;
        if let Some(p) = &proof {
            p.allowed_for(&client)?;
        }
        let mut params = match &form.params.request {
            Some(jwt) => super::jar::request_object(self, &client, jwt).await?,
            None => form.params,
        };
        if params.request_uri.is_some() {
            return Err(oauth(
                OAuthError::InvalidRequest,
                "request_uri is not taken at PAR",
            ));
        }
        params.client_id = Some(client.client_id.to_string());
        params.dpop_jkt = bound_key(proof.map(|p| p.jkt), params.dpop_jkt.take())?;
        if !params
            .redirect_uri
            .as_deref()
            .is_some_and(|r| client.redirect_uris.iter().any(|u| u == r))
        {
            return Err(oauth(
                OAuthError::InvalidRequest,
                "redirect_uri is not registered for the client",
            ));
        }
        checked_request(&params, &client).map_err(|(error, d)| oauth(error, d))?;
        let uri = format!("{URN}{}", clock::token::<32>(self.rng.as_ref())?);
        let now = self.clock.now();
        let pushed = PushedRequest {
            client_id: client.client_id.clone(),
            params,
        };
        self.records()
            .put(sha256_b64(uri.as_bytes()).as_str(), &pushed, now + PAR_TTL)
            .await?;
        Ok(potvrda_proto::oidc::ParResponse {
            request_uri: uri,
            expires_in: PAR_TTL as u64,
        })
    }

    /// The pushed request behind `uri`, for `client_id`, taken: a second
    /// use, a late one or another client's finds nothing.
    pub(super) async fn take(&self, client_id: &str, uri: &str) -> Result<Option<AuthorizeParams>> {
        if !uri.starts_with(URN) || uri.len() > 128 {
            return Ok(None);
        }
        let now = self.clock.now();
        let taken = self
            .records::<PushedRequest>()
            .take(sha256_b64(uri.as_bytes()).as_str(), now)
            .await?;
        Ok(taken.filter(|p| p.client_id == client_id).map(|p| p.params))
    }
}

/// RFC 9449 §10.1: a proof at PAR names the key; a `dpop_jkt` beside it
/// must be the same.
fn bound_key(proven: Option<String>, asked: Option<String>) -> Result<Option<String>> {
    match (proven, asked) {
        (Some(p), Some(a)) if !ct_eq_str(&p, &a) => Err(oauth(
            OAuthError::InvalidDpopProof,
            "dpop_jkt is not the key of the DPoP proof",
        )),
        (Some(p), _) => Ok(Some(p)),
        (None, a) => Ok(a),
    }
}
