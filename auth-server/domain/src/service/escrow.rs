//! The access token, sealed for whoever holds the login secret while it
//! waits in the store for a retried request (AES-256-GCM under a key derived
//! with HKDF-SHA256 from the login secret and the login id): the store alone
//! never holds a usable token.

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};

use crate::error::{Error, Result};

const INFO: &[u8] = b"potvrda token escrow v1";

fn key(secret: &str, login_id: &str) -> Result<RandomizedNonceKey> {
    let prk = Salt::new(HKDF_SHA256, login_id.as_bytes()).extract(secret.as_bytes());
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    prk.expand(&[INFO], &AES_256_GCM)
        .and_then(|okm| okm.fill(bytes.as_mut()))
        .map_err(|_| Error::Crypto("escrow key".into()))?;
    RandomizedNonceKey::new(&AES_256_GCM, bytes.as_ref())
        .map_err(|_| Error::Crypto("escrow key".into()))
}

/// `nonce || ciphertext || tag`.
pub fn seal(secret: &str, login_id: &str, token: &str) -> Result<Vec<u8>> {
    let mut data = token.as_bytes().to_vec();
    let nonce = key(secret, login_id)?
        .seal_in_place_append_tag(Aad::from(login_id.as_bytes()), &mut data)
        .map_err(|_| Error::Crypto("escrow seal".into()))?;
    let mut out = nonce.as_ref().to_vec();
    out.extend_from_slice(&data);
    Ok(out)
}

/// The token, if `sealed` was sealed for this secret and login.
pub fn open(secret: &str, login_id: &str, sealed: &[u8]) -> Option<String> {
    let (nonce, body) = sealed.split_at_checked(NONCE_LEN)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut body = body.to_vec();
    let plain = key(secret, login_id)
        .ok()?
        .open_in_place(nonce, Aad::from(login_id.as_bytes()), &mut body)
        .ok()?;
    String::from_utf8(plain.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_secret_holder_opens_it() {
        let sealed = seal("secret-a", "login-1", "eyJ.token").expect("seals");
        assert_eq!(
            open("secret-a", "login-1", &sealed).as_deref(),
            Some("eyJ.token")
        );
        assert_eq!(open("secret-b", "login-1", &sealed), None, "another secret");
        assert_eq!(open("secret-a", "login-2", &sealed), None, "another login");
        let mut tampered = sealed.clone();
        if let Some(last) = tampered.last_mut() {
            *last ^= 1;
        }
        assert_eq!(open("secret-a", "login-1", &tampered), None);
        assert_eq!(open("secret-a", "login-1", b"short"), None);
        assert!(
            !sealed.windows(9).any(|w| w == b"eyJ.token"),
            "not in clear"
        );
    }
}
