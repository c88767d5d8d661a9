//! Web Push on the receiving side: the subscription key pair and 16-byte auth
//! secret (RFC 8291 §2), and decryption of an `aes128gcm` message (RFC 8188)
//! through `web-push-native`, the same crate the server encrypts with.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use potvrda_proto::api::{PushKeys, PushSubscription};
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::{Error, Result};

/// The phone's half of a Web Push subscription.
#[derive(Clone)]
pub struct PushKeyPair {
    secret: p256::SecretKey,
    auth: [u8; 16],
}

impl std::fmt::Debug for PushKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushKeyPair")
            .field("p256dh", &self.public_b64())
            .field("secret", &"***")
            .finish()
    }
}

impl PushKeyPair {
    /// A fresh key pair and auth secret.
    pub fn generate() -> Self {
        let mut auth = [0u8; 16];
        OsRng.fill_bytes(&mut auth);
        Self {
            secret: p256::SecretKey::random(&mut OsRng),
            auth,
        }
    }

    /// From the private scalar and auth secret, both base64url.
    pub fn from_b64(secret: &str, auth: &str) -> Result<Self> {
        let s = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(secret)
                .map_err(|_| Error::InvalidKey("push key is not base64url"))?,
        );
        let secret = p256::SecretKey::from_slice(&s)
            .map_err(|_| Error::InvalidKey("push key is not a P-256 scalar"))?;
        let auth: [u8; 16] = URL_SAFE_NO_PAD
            .decode(auth)
            .map_err(|_| Error::InvalidKey("auth secret is not base64url"))?
            .try_into()
            .map_err(|_| Error::InvalidKey("auth secret is not 16 bytes"))?;
        Ok(Self { secret, auth })
    }

    /// The private scalar and auth secret, base64url, for persisting.
    pub fn to_b64(&self) -> (Zeroizing<String>, Zeroizing<String>) {
        (
            Zeroizing::new(URL_SAFE_NO_PAD.encode(self.secret.to_bytes())),
            Zeroizing::new(URL_SAFE_NO_PAD.encode(self.auth)),
        )
    }

    /// The `p256dh` value: the uncompressed public point, base64url.
    pub fn public_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.secret.public_key().to_encoded_point(false).as_bytes())
    }

    /// The subscription to register with the server for `endpoint`.
    pub fn subscription(&self, endpoint: &str) -> PushSubscription {
        PushSubscription {
            payload: None,
            locale: None,
            endpoint: endpoint.to_owned(),
            keys: PushKeys {
                p256dh: self.public_b64(),
                auth: URL_SAFE_NO_PAD.encode(self.auth),
            },
        }
    }

    /// Decrypt an RFC 8291 `aes128gcm` message body.
    ///
    /// The header is checked first (RFC 8188 §2.1: record size at least 18;
    /// RFC 8291 §4: a 65-byte key id): `ece-native` 0.5 panics on a record
    /// size of 0, which cargo fuzz found; a crafted push must not crash the app.
    pub fn decrypt(&self, body: &[u8]) -> Result<Vec<u8>> {
        const HEADER: usize = 16 + 4 + 1;
        if body.len() < HEADER + 65 {
            return Err(Error::PushDecrypt);
        }
        let rs = u32::from_be_bytes([body[16], body[17], body[18], body[19]]);
        if rs < 18 || body[20] != 65 {
            return Err(Error::PushDecrypt);
        }
        let auth = web_push_native::Auth::clone_from_slice(&self.auth);
        web_push_native::decrypt(body.to_vec(), &self.secret, &auth).map_err(|_| Error::PushDecrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8291, Appendix A.
    #[test]
    fn rfc8291_appendix_a_vector() {
        let ua = PushKeyPair::from_b64(
            "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94",
            "BTBZMqHH6r4Tts7J_aSIgg",
        )
        .expect("RFC keys are valid");
        assert_eq!(
            ua.public_b64(),
            "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
        );
        let body = URL_SAFE_NO_PAD
            .decode(
                "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
            )
            .expect("RFC body is base64url");
        let plain = ua.decrypt(&body).expect("RFC vector decrypts");
        assert_eq!(plain, b"When I grow up, I want to be a watermelon");

        // One flipped bit anywhere in the ciphertext fails authentication.
        let mut tampered = body.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(matches!(ua.decrypt(&tampered), Err(Error::PushDecrypt)));
        // A different auth secret fails too.
        let other = PushKeyPair::from_b64(
            "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94",
            "AAAAAAAAAAAAAAAAAAAAAA",
        )
        .expect("valid keys");
        assert!(other.decrypt(&body).is_err());
    }

    /// Regression: the input cargo fuzz found (record size 0) and friends.
    #[test]
    fn malformed_headers_are_refused_not_panicked_on() {
        let ua = PushKeyPair::generate();
        let mut body = vec![0u8; 16 + 4 + 1 + 65 + 32];
        body[20] = 65;
        for rs in [0u32, 1, 17] {
            body[16..20].copy_from_slice(&rs.to_be_bytes());
            assert!(
                matches!(ua.decrypt(&body), Err(Error::PushDecrypt)),
                "rs {rs}"
            );
        }
        body[16..20].copy_from_slice(&4096u32.to_be_bytes());
        body[20] = 0;
        assert!(ua.decrypt(&body).is_err(), "idlen 0");
        assert!(ua.decrypt(&[]).is_err());
        // The input cargo fuzz found: it reaches `ece-native`'s record split with rs = 0.
        let keys = PushKeyPair::from_b64(
            "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94",
            "BTBZMqHH6r4Tts7J_aSIgg",
        )
        .expect("RFC keys");
        let crash = include_bytes!("../testdata/push-record-size-0.bin");
        assert!(matches!(keys.decrypt(crash), Err(Error::PushDecrypt)));
    }

    #[test]
    fn encrypt_with_web_push_native_then_decrypt() {
        let ua = PushKeyPair::generate();
        let sub = ua.subscription("https://push.example/abc");
        let pk = p256::PublicKey::from_sec1_bytes(
            &URL_SAFE_NO_PAD.decode(&sub.keys.p256dh).expect("b64"),
        )
        .expect("point");
        let auth = web_push_native::Auth::clone_from_slice(
            &URL_SAFE_NO_PAD.decode(&sub.keys.auth).expect("b64"),
        );
        let msg = web_push_native::encrypt(b"hello".to_vec(), &pk, &auth).expect("encrypts");
        assert_eq!(ua.decrypt(&msg).expect("decrypts"), b"hello");
        let (s, a) = ua.to_b64();
        let again = PushKeyPair::from_b64(&s, &a).expect("round trip");
        assert_eq!(again.public_b64(), ua.public_b64());
    }
}
