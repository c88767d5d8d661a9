//! The device key: ECDSA P-256, behind a [`Signer`] trait so that Android
//! Keystore / StrongBox and the iOS Secure Enclave can hold it; the
//! [`SoftwareSigner`] is for tests, the virtual phone and platforms without one.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use p256::ecdsa::{Signature, SigningKey, signature::Signer as _};
use p256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use potvrda_proto::jose::EcJwk;
use rand_core::OsRng;
use zeroize::Zeroizing;

use crate::{Error, Result};

/// Something that holds a P-256 private key and signs with it (ES256).
pub trait Signer: Send + Sync {
    /// The public key.
    fn public_jwk(&self) -> EcJwk;
    /// An ES256 signature over `message` (SHA-256, then ECDSA), as the 64-byte `r || s`.
    fn sign(&self, message: &[u8]) -> Result<[u8; 64]>;
    /// Where the key lives, reported in every approval (protocol 3). A key
    /// in process memory is software; a keystore says otherwise only for a
    /// key its secure hardware holds.
    fn protection(&self) -> potvrda_proto::jose::KeyProtection {
        potvrda_proto::jose::KeyProtection::Software
    }
}

/// A P-256 key held in process memory.
#[derive(Clone)]
pub struct SoftwareSigner {
    key: SigningKey,
}

impl std::fmt::Debug for SoftwareSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftwareSigner")
            .field("key", &"***")
            .finish()
    }
}

impl SoftwareSigner {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self {
            key: SigningKey::random(&mut OsRng),
        }
    }

    /// The key from its 32-byte scalar, base64url.
    pub fn from_secret_b64(secret: &str) -> Result<Self> {
        let bytes = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(secret)
                .map_err(|_| Error::InvalidKey("device key is not base64url"))?,
        );
        let key = SigningKey::from_slice(&bytes)
            .map_err(|_| Error::InvalidKey("device key is not a P-256 scalar"))?;
        Ok(Self { key })
    }

    /// The 32-byte scalar, base64url, for persisting (keep it secret).
    pub fn secret_b64(&self) -> Zeroizing<String> {
        Zeroizing::new(URL_SAFE_NO_PAD.encode(self.key.to_bytes()))
    }

    /// The key sealed for storage under a 32-byte wrapping key the platform
    /// keeps (a non-exportable Keystore / Keychain / WebCrypto key unwraps
    /// it): base64url of a random 96-bit nonce and the AES-256-GCM
    /// ciphertext, bound to its purpose as associated data.
    pub fn seal(&self, wrapping_key: &[u8; 32]) -> Result<String> {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        use rand_core::RngCore;
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let secret = Zeroizing::new(self.key.to_bytes().to_vec());
        let sealed = aes_gcm::Aes256Gcm::new(wrapping_key.into())
            .encrypt(
                aes_gcm::Nonce::from_slice(&nonce),
                Payload {
                    msg: &secret,
                    aad: SEAL_AAD,
                },
            )
            .map_err(|_| Error::Unseal)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// Open what [`seal`](Self::seal) wrote; [`Error::Unseal`] for another
    /// wrapping key or altered bytes.
    pub fn unseal(sealed: &str, wrapping_key: &[u8; 32]) -> Result<Self> {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        let bytes = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| Error::Unseal)?;
        let (nonce, body) = bytes.split_at_checked(12).ok_or(Error::Unseal)?;
        let secret = Zeroizing::new(
            aes_gcm::Aes256Gcm::new(wrapping_key.into())
                .decrypt(
                    aes_gcm::Nonce::from_slice(nonce),
                    Payload {
                        msg: body,
                        aad: SEAL_AAD,
                    },
                )
                .map_err(|_| Error::Unseal)?,
        );
        let key = SigningKey::from_slice(&secret).map_err(|_| Error::Unseal)?;
        Ok(Self { key })
    }
}

/// What a sealed device key is, bound into its ciphertext.
const SEAL_AAD: &[u8] = b"potvrda device key v1";

/// The JWK of a P-256 public key.
pub fn jwk_of(key: &p256::PublicKey) -> EcJwk {
    let point = key.to_encoded_point(false);
    // An uncompressed, non-identity point always has both coordinates.
    let (x, y) = match (point.x(), point.y()) {
        (Some(x), Some(y)) => (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y)),
        _ => (String::new(), String::new()),
    };
    EcJwk::p256(x, y)
}

/// The P-256 public key a JWK describes.
pub fn public_key_of(jwk: &EcJwk) -> Result<p256::PublicKey> {
    if !jwk.is_p256() {
        return Err(Error::InvalidKey("not an EC P-256 JWK"));
    }
    let decode = |c: &str| -> Result<[u8; 32]> {
        let v = URL_SAFE_NO_PAD
            .decode(c)
            .map_err(|_| Error::InvalidKey("coordinate is not base64url"))?;
        v.try_into()
            .map_err(|_| Error::InvalidKey("coordinate is not 32 bytes"))
    };
    let (x, y) = (decode(&jwk.x)?, decode(&jwk.y)?);
    let point = p256::EncodedPoint::from_affine_coordinates(&x.into(), &y.into(), false);
    Option::from(p256::PublicKey::from_encoded_point(&point))
        .ok_or(Error::InvalidKey("point is not on P-256"))
}

impl Signer for SoftwareSigner {
    fn public_jwk(&self) -> EcJwk {
        jwk_of(&p256::PublicKey::from(self.key.verifying_key()))
    }

    fn sign(&self, message: &[u8]) -> Result<[u8; 64]> {
        let sig: Signature = self.key.sign(message);
        Ok(sig.to_bytes().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_round_trips() {
        let a = SoftwareSigner::generate();
        let b = SoftwareSigner::from_secret_b64(&a.secret_b64()).expect("valid secret");
        assert_eq!(a.public_jwk(), b.public_jwk());
        assert!(format!("{a:?}").contains("***"));
    }

    #[test]
    fn jwk_round_trips_and_rejects_off_curve() {
        let s = SoftwareSigner::generate();
        let jwk = s.public_jwk();
        let pk = public_key_of(&jwk).expect("own key is valid");
        assert_eq!(jwk_of(&pk), jwk);
        let mut bad = jwk.clone();
        bad.y = bad.x.clone();
        assert!(public_key_of(&bad).is_err());
        let mut rsa = jwk;
        rsa.kty = "RSA".into();
        assert!(public_key_of(&rsa).is_err());
    }

    #[test]
    fn a_sealed_key_opens_only_with_its_wrapping_key() {
        let key = SoftwareSigner::generate();
        let wrap = [7u8; 32];
        let sealed = key.seal(&wrap).expect("seals");
        assert!(!sealed.contains(key.secret_b64().as_str()));
        let back = SoftwareSigner::unseal(&sealed, &wrap).expect("opens");
        assert_eq!(back.public_jwk(), key.public_jwk());
        assert!(matches!(
            SoftwareSigner::unseal(&sealed, &[8u8; 32]),
            Err(Error::Unseal)
        ));
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).expect("b64");
        bytes[20] ^= 1;
        assert!(matches!(
            SoftwareSigner::unseal(&URL_SAFE_NO_PAD.encode(bytes), &wrap),
            Err(Error::Unseal)
        ));
        assert_ne!(
            key.seal(&wrap).expect("seals"),
            sealed,
            "a fresh nonce each time"
        );
    }
}
