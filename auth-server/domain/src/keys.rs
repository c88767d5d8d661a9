//! The server's keys: the ES256 key that signs challenges and access tokens
//! (published in the JWKS with a RFC 7638 thumbprint as `kid`), and the VAPID
//! key (RFC 8292). Both are generated on first start and kept by the store
//! (key files of mode 0600 in the data dir, or a Redis key shared by every
//! instance), or loaded from configured files.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{DecodingKey, EncodingKey};
use potvrda_proto::jose::{ALG_ES256, EcJwk, Jwks};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::store::KeyStore;

/// One P-256 key pair usable with `jsonwebtoken`.
pub struct EsKey {
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// Public key as a JWK (with `kid`, `alg`, `use`).
    pub jwk: EcJwk,
    /// Uncompressed public point.
    pub public_point: Vec<u8>,
    /// For signing.
    pub encoding: EncodingKey,
    /// For verifying our own signatures.
    pub decoding: DecodingKey,
}

impl std::fmt::Debug for EsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl EsKey {
    /// From a PKCS#8 DER private key.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map_err(|_| Error::Crypto("key is not a PKCS#8 P-256 key".into()))?;
        let point = pair.public_key().as_ref().to_vec();
        if point.len() != 65 || point[0] != 4 {
            return Err(Error::Crypto("unexpected public key encoding".into()));
        }
        let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&point[33..65]);
        let kid = thumbprint(&x, &y);
        let decoding = DecodingKey::from_ec_components(&x, &y)?;
        let mut jwk = EcJwk::p256(x, y);
        jwk.kid = Some(kid.clone());
        jwk.alg = Some(ALG_ES256.into());
        jwk.use_ = Some("sig".into());
        Ok(Self {
            kid,
            jwk,
            public_point: point,
            encoding: EncodingKey::from_ec_der(der),
            decoding,
        })
    }
}

/// RFC 7638 JWK thumbprint (SHA-256) of a P-256 key.
pub fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        canonical.as_bytes(),
    ))
}

/// A fresh PKCS#8 P-256 private key.
pub fn generate_pkcs8() -> Result<Zeroizing<Vec<u8>>> {
    let doc = EcdsaKeyPair::generate_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &aws_lc_rs::rand::SystemRandom::new(),
    )
    .map_err(|_| Error::Crypto("key generation failed".into()))?;
    Ok(Zeroizing::new(doc.as_ref().to_vec()))
}

/// A secret key for keyed hashes (recovery codes at rest); `Debug` hides it.
pub struct Pepper(pub Zeroizing<Vec<u8>>);

impl std::fmt::Debug for Pepper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pepper(***)")
    }
}

impl Pepper {
    /// HMAC-SHA256 of `data` under the pepper, base64url.
    pub fn hash(&self, data: &[u8]) -> String {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.0);
        URL_SAFE_NO_PAD.encode(aws_lc_rs::hmac::sign(&key, data))
    }
}

/// All keys the server holds.
#[derive(Debug)]
pub struct ServerKeys {
    /// Signs challenges (and, before the keyring, access tokens).
    pub signing: EsKey,
    /// Signs VAPID JWTs.
    pub vapid: EsKey,
    /// Keys the hashes of recovery codes, so a copy of the store alone
    /// cannot be brute-forced offline.
    pub pepper: Pepper,
    /// Signs the audit trail's checkpoints (published apart, in
    /// `/.well-known/audit-jwks.json`).
    pub audit: std::sync::Arc<EsKey>,
}

impl ServerKeys {
    /// Load from the configured files, or get-or-create in the store.
    pub async fn load(
        signing_file: Option<&std::path::Path>,
        vapid_file: Option<&std::path::Path>,
        audit_file: Option<&std::path::Path>,
        store: &dyn KeyStore,
    ) -> Result<Self> {
        let mut candidate = Zeroizing::new(vec![0u8; 32]);
        aws_lc_rs::rand::fill(&mut candidate).map_err(|_| Error::Crypto("no randomness".into()))?;
        Ok(Self {
            signing: EsKey::from_pkcs8(&load_one("signing", signing_file, store).await?)?,
            vapid: EsKey::from_pkcs8(&load_one("vapid", vapid_file, store).await?)?,
            pepper: Pepper(store.get_or_insert_key("pepper", &candidate).await?),
            audit: std::sync::Arc::new(EsKey::from_pkcs8(
                &load_one("audit", audit_file, store).await?,
            )?),
        })
    }

    /// The audit key set: what checkpoints are verified with.
    pub fn audit_jwks(&self) -> Jwks {
        Jwks {
            keys: vec![self.audit.jwk.clone()],
        }
    }

    /// The published key set.
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: vec![self.signing.jwk.clone()],
        }
    }

    /// The VAPID public key as the `k` parameter and the enrollment answer give it.
    pub fn vapid_public_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.vapid.public_point)
    }
}

async fn load_one(
    name: &str,
    file: Option<&std::path::Path>,
    store: &dyn KeyStore,
) -> Result<Zeroizing<Vec<u8>>> {
    match file {
        Some(path) => Ok(Zeroizing::new(std::fs::read(path).map_err(|e| {
            Error::Config(format!("cannot read {name} key {}: {e}", path.display()))
        })?)),
        None => store.get_or_insert_key(name, &generate_pkcs8()?).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 §3.1 uses an RSA key; for EC we check the member order and
    /// that the thumbprint is stable and differs per key.
    #[test]
    fn kid_is_a_stable_thumbprint() {
        let der = generate_pkcs8().expect("keygen");
        let a = EsKey::from_pkcs8(&der).expect("valid");
        let b = EsKey::from_pkcs8(&der).expect("valid");
        assert_eq!(a.kid, b.kid);
        assert_eq!(a.kid.len(), 43);
        let c = EsKey::from_pkcs8(&generate_pkcs8().expect("keygen")).expect("valid");
        assert_ne!(a.kid, c.kid);
        assert!(EsKey::from_pkcs8(b"not a key").is_err());
    }
}
