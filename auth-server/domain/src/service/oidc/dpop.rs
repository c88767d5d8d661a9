//! DPoP (RFC 9449): a client proves, at every request, that it holds the
//! private key its tokens are bound to. Proofs are checked here for the
//! token endpoint, PAR and UserInfo: the `dpop+jwt` type, an asymmetric
//! algorithm the client may use, a public `jwk` (never a private one), the
//! signature, `htm`/`htu` of this very request, a fresh `iat`, a `jti`
//! spent once on every instance, `ath` with an access token, and — where
//! asked — a server nonce. Nonces are stateless: an HMAC of the minute
//! under the server's pepper, so every instance makes and checks the same.

use super::*;
use crate::store::records::{DpopJtiSpent, Marker};
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};

capability! {
    /// DPoP proofs and nonces.
    pub Dpop
}

/// What the web layer hands over of a request that may carry a proof.
#[derive(Debug, Clone, Copy)]
pub struct DpopRequest<'r> {
    /// The `DPoP` header (`None` when absent; more than one is refused by
    /// the web layer as a malformed proof).
    pub proof: Option<&'r str>,
    /// The HTTP method.
    pub method: &'r str,
    /// The path of the endpoint (`/oauth2/token`); the proof's `htu` is the
    /// public URL of this path.
    pub path: &'r str,
}

/// A verified proof.
#[derive(Debug, Clone)]
pub(crate) struct Proof {
    /// The RFC 7638 thumbprint of its key.
    pub(crate) jkt: String,
    /// What it was signed with.
    pub(crate) alg: Algorithm,
}

impl Proof {
    /// Whether `client` may sign with its algorithm.
    pub(crate) fn allowed_for(&self, client: &OidcClient) -> Result<()> {
        if client.signing_algs().contains(&self.alg) {
            Ok(())
        } else {
            Err(invalid(
                "the proof's algorithm is not one this client may use",
            ))
        }
    }
}

/// How far a proof's `iat` may be from now, either way.
const IAT_WINDOW: i64 = 60;
/// How long one nonce is made for; the previous one is still taken.
const NONCE_SLOT: i64 = 60;

#[derive(Debug, Deserialize)]
struct ProofClaims {
    jti: String,
    htm: String,
    htu: String,
    iat: i64,
    #[serde(default)]
    ath: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
}

fn invalid(d: &str) -> Error {
    oauth(OAuthError::InvalidDpopProof, d)
}

impl Dpop<'_> {
    /// The nonce to send in `DPoP-Nonce` now.
    pub fn nonce(&self) -> String {
        self.nonce_for(self.clock.now().div_euclid(NONCE_SLOT))
    }

    fn nonce_for(&self, slot: i64) -> String {
        self.keys
            .pepper
            .hash(format!("potvrda dpop nonce v1:{slot}").as_bytes())
    }

    fn nonce_ok(&self, nonce: &str) -> bool {
        let slot = self.clock.now().div_euclid(NONCE_SLOT);
        [slot, slot - 1]
            .iter()
            .fold(false, |ok, s| ct_eq_str(&self.nonce_for(*s), nonce) | ok)
    }

    /// Check the request's proof, if it has one: the thumbprint (`jkt`) of
    /// the key that signed it, and its algorithm. `access_token` is the token it must cover
    /// (`ath`); `nonce` whether a server nonce is demanded.
    pub(crate) async fn verify(
        &self,
        req: &DpopRequest<'_>,
        access_token: Option<&str>,
        algs: &[Algorithm],
        nonce: bool,
    ) -> Result<Option<Proof>> {
        let Some(proof) = req.proof else {
            return Ok(None);
        };
        let header = jsonwebtoken::decode_header(proof).map_err(|_| invalid("not a JWT"))?;
        if header.typ.as_deref() != Some("dpop+jwt") {
            return Err(invalid("typ must be dpop+jwt"));
        }
        if !algs.contains(&header.alg) {
            return Err(invalid(
                "the proof's algorithm is not one this client may use",
            ));
        }
        let jwk = header
            .jwk
            .as_ref()
            .ok_or_else(|| invalid("the proof needs a jwk"))?;
        if carries_private_key(proof) {
            return Err(invalid("the proof's jwk must be a public key"));
        }
        let fits =
            super::super::client::assertion_alg(jwk).is_some_and(|a| a.contains(&header.alg));
        if !fits {
            return Err(invalid("the jwk does not fit the algorithm"));
        }
        let claims = verified(proof, jwk, header.alg)?;
        let jkt = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|_| invalid("the jwk has no thumbprint"))?;
        self.check_claims(req, &claims, access_token, nonce)?;
        self.spend(&jkt, &claims).await?;
        Ok(Some(Proof {
            jkt,
            alg: header.alg,
        }))
    }

    fn check_claims(
        &self,
        req: &DpopRequest<'_>,
        c: &ProofClaims,
        access_token: Option<&str>,
        nonce: bool,
    ) -> Result<()> {
        let now = self.clock.now();
        if !c.htm.eq_ignore_ascii_case(req.method) {
            return Err(invalid("htm is not this request's method"));
        }
        let normal = |u: &str| {
            url::Url::parse(u).ok().map(|mut u| {
                u.set_query(None);
                u.set_fragment(None);
                u.to_string()
            })
        };
        let expected = normal(&format!("{}{}", self.public_url, req.path));
        if expected.is_none() || normal(&c.htu) != expected {
            return Err(invalid("htu is not this endpoint"));
        }
        if (c.iat - now).abs() > IAT_WINDOW {
            return Err(invalid("the proof is not fresh (iat)"));
        }
        if c.jti.is_empty() || c.jti.len() > 256 {
            return Err(invalid("the proof needs a jti"));
        }
        match (access_token, &c.ath) {
            (Some(t), Some(ath)) if ct_eq_str(&sha256_b64(t.as_bytes()), ath) => {}
            (Some(_), _) => return Err(invalid("ath is not the hash of this access token")),
            (None, _) => {}
        }
        if nonce && !c.nonce.as_deref().is_some_and(|n| self.nonce_ok(n)) {
            return Err(oauth(
                OAuthError::UseDpopNonce,
                "send the proof again with the DPoP-Nonce of this answer",
            ));
        }
        Ok(())
    }

    /// The `jti` is spent once per key, on every instance, for as long as
    /// its `iat` is taken.
    async fn spend(&self, jkt: &str, c: &ProofClaims) -> Result<()> {
        let now = self.clock.now();
        let key = sha256_b64(format!("{jkt}:{}", c.jti).as_bytes());
        let first = self
            .records::<DpopJtiSpent>()
            .put_new(&key, &Marker, c.iat + 2 * IAT_WINDOW, now)
            .await?;
        if !first {
            tracing::warn!("a DPoP proof was replayed");
            return Err(invalid("the proof was already used"));
        }
        Ok(())
    }
}

/// The signature, by the proof's own key.
fn verified(proof: &str, jwk: &Jwk, alg: Algorithm) -> Result<ProofClaims> {
    let key = DecodingKey::from_jwk(jwk).map_err(|_| invalid("the jwk does not parse"))?;
    let mut v = Validation::new(alg);
    v.validate_exp = false;
    v.required_spec_claims.clear();
    v.validate_aud = false;
    jsonwebtoken::decode::<ProofClaims>(proof, &key, &v)
        .map(|d| d.claims)
        .map_err(|_| invalid("the proof does not verify, or lacks jti, htm, htu or iat"))
}

/// RFC 9449 §4.3: the header's `jwk` must not hold private parts (`d`, and
/// RSA's primes); the parsed key drops them, so the raw header is read.
fn carries_private_key(proof: &str) -> bool {
    let raw = proof
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    raw.as_ref()
        .and_then(|h| h.get("jwk"))
        .and_then(serde_json::Value::as_object)
        .is_none_or(|jwk| {
            ["d", "p", "q", "dp", "dq", "qi", "k"]
                .iter()
                .any(|k| jwk.contains_key(*k))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_jwk_in_the_header_is_noticed() {
        let enc = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let public =
            enc(serde_json::json!({"typ": "dpop+jwt", "jwk": {"kty": "EC", "x": "a", "y": "b"}}));
        let private = enc(
            serde_json::json!({"typ": "dpop+jwt", "jwk": {"kty": "EC", "x": "a", "y": "b", "d": "c"}}),
        );
        assert!(!carries_private_key(&format!("{public}.e30.sig")));
        assert!(carries_private_key(&format!("{private}.e30.sig")));
        assert!(
            carries_private_key("not-base64.e30.sig"),
            "unreadable counts as refused"
        );
    }
}
