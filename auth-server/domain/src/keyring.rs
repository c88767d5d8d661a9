//! The token keyring: the keys that sign access tokens and ID tokens, ES256
//! and RS256 (OpenID Connect's default), rotated on a schedule or by
//! `auth-server keys rotate`. `/.well-known/jwks.json` always publishes the
//! current and the previous generation, so a token signed just before a
//! rotation still verifies; tokens are signed with the current one.
//!
//! The keyring is one record in the store: every instance on one Redis
//! reads the same keys, a rotation is a compare-and-swap (of racing
//! instances exactly one rotates), and it is announced so the others reload
//! at once (and every minute regardless). The challenge key the phones trust
//! is not part of it: phones learn that one at enrollment, and it stays.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::{Engine, engine::general_purpose::STANDARD, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use pkcs8::der::Decode;
use potvrda_proto::jose::{PublicJwk, PublicJwks};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::keys::{EsKey, generate_pkcs8};
use crate::store::Store;
use crate::store::records::{JsonRecord, Kind, Records, Stored};

/// An RSA key usable with `jsonwebtoken`.
pub struct RsKey {
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// Modulus, base64url.
    pub n: String,
    /// Exponent, base64url.
    pub e: String,
    /// For signing.
    pub encoding: EncodingKey,
    /// For verifying our own signatures.
    pub decoding: DecodingKey,
}

impl std::fmt::Debug for RsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl RsKey {
    /// From a PKCS#8 DER RSA private key.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self> {
        let bad = || Error::Crypto("key is not a PKCS#8 RSA key".into());
        let pair = RsaKeyPair::from_pkcs8(der).map_err(|_| bad())?;
        let public = pair.public_key();
        let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
        let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
        // jsonwebtoken signs with the RFC 8017 RSAPrivateKey inside the PKCS#8 wrapper.
        let info = pkcs8::PrivateKeyInfo::from_der(der).map_err(|_| bad())?;
        let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            canonical.as_bytes(),
        ));
        Ok(Self {
            kid,
            decoding: DecodingKey::from_rsa_components(&n, &e)?,
            encoding: EncodingKey::from_rsa_der(info.private_key),
            n,
            e,
        })
    }
}

/// A fresh 2048-bit RSA key, PKCS#8 DER.
fn generate_rsa_pkcs8() -> Result<Zeroizing<Vec<u8>>> {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048)
        .map_err(|_| Error::Crypto("RSA key generation failed".into()))?;
    let der = pair
        .as_der()
        .map_err(|_| Error::Crypto("RSA key encoding failed".into()))?;
    Ok(Zeroizing::new(der.as_ref().to_vec()))
}

/// One generation: an ES256 and an RS256 key.
#[derive(Debug)]
pub struct Generation {
    /// ES256.
    pub es: EsKey,
    /// RS256.
    pub rs: RsKey,
}

impl Generation {
    /// The signing key and `kid` for `alg` (ES256 or RS256).
    pub fn signer(&self, alg: Algorithm) -> (&EncodingKey, &str) {
        match alg {
            Algorithm::RS256 => (&self.rs.encoding, &self.rs.kid),
            _ => (&self.es.encoding, &self.es.kid),
        }
    }
}

/// The keys in force.
#[derive(Debug)]
pub struct TokenKeys {
    /// Signs.
    pub current: Generation,
    /// Still verifies.
    pub previous: Option<Generation>,
    /// When `current` was made (clock seconds).
    pub created_at: i64,
}

impl TokenKeys {
    /// The verifying key with this `kid` and its algorithm.
    pub fn verifier(&self, kid: &str) -> Option<(&DecodingKey, Algorithm)> {
        [Some(&self.current), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .find_map(|g| {
                if g.es.kid == kid {
                    Some((&g.es.decoding, Algorithm::ES256))
                } else if g.rs.kid == kid {
                    Some((&g.rs.decoding, Algorithm::RS256))
                } else {
                    None
                }
            })
    }

    /// The published set: current first.
    pub fn jwks(&self) -> PublicJwks {
        let mut keys = Vec::new();
        for g in [Some(&self.current), self.previous.as_ref()]
            .into_iter()
            .flatten()
        {
            keys.push(PublicJwk {
                kty: "EC".into(),
                kid: g.es.kid.clone(),
                alg: "ES256".into(),
                use_: "sig".into(),
                crv: Some("P-256".into()),
                x: Some(g.es.jwk.x.clone()),
                y: Some(g.es.jwk.y.clone()),
                n: None,
                e: None,
            });
            keys.push(PublicJwk {
                kty: "RSA".into(),
                kid: g.rs.kid.clone(),
                alg: "RS256".into(),
                use_: "sig".into(),
                crv: None,
                x: None,
                y: None,
                n: Some(g.rs.n.clone()),
                e: Some(g.rs.e.clone()),
            });
        }
        PublicJwks { keys }
    }
}

/// The stored form: PKCS#8 DER, base64.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredGeneration {
    es256: String,
    rs256: String,
}

impl JsonRecord for StoredKeyring {
    const KIND: Kind = Kind::TokenKeyring;
    type Id = ();
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredKeyring {
    created_at: i64,
    current: StoredGeneration,
    previous: Option<StoredGeneration>,
}

impl StoredGeneration {
    fn generate() -> Result<Self> {
        Ok(Self {
            es256: STANDARD.encode(generate_pkcs8()?.as_slice()),
            rs256: STANDARD.encode(generate_rsa_pkcs8()?.as_slice()),
        })
    }

    fn open(&self) -> Result<Generation> {
        let der = |b64: &str| {
            STANDARD
                .decode(b64)
                .map(Zeroizing::new)
                .map_err(|_| Error::Store("the token keyring is corrupt".into()))
        };
        Ok(Generation {
            es: EsKey::from_pkcs8(&der(&self.es256)?)?,
            rs: RsKey::from_pkcs8(&der(&self.rs256)?)?,
        })
    }
}

impl StoredKeyring {
    fn open(&self) -> Result<TokenKeys> {
        Ok(TokenKeys {
            current: self.current.open()?,
            previous: self
                .previous
                .as_ref()
                .map(StoredGeneration::open)
                .transpose()?,
            created_at: self.created_at,
        })
    }
}

/// The keyring of this instance, kept in step with the store.
pub struct Keyring {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// Seconds between automatic rotations; 0: only by command.
    interval: i64,
    keys: RwLock<Arc<TokenKeys>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// Read the keyring from the store, creating it on first start.
    pub async fn load(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        interval: std::time::Duration,
    ) -> Result<Self> {
        let keys = read_or_create(store.as_ref(), clock.as_ref()).await?.1;
        Ok(Self {
            store,
            clock,
            interval: i64::try_from(interval.as_secs()).unwrap_or(i64::MAX),
            keys: RwLock::new(Arc::new(keys)),
        })
    }

    /// The keys in force.
    pub fn current(&self) -> Arc<TokenKeys> {
        // A poisoned lock still holds a whole Arc: nothing half-written.
        Arc::clone(&self.keys.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Re-read the store (after another instance rotated).
    pub async fn reload(&self) -> Result<()> {
        let (_, keys) = read_or_create(self.store.as_ref(), self.clock.as_ref()).await?;
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
        Ok(())
    }

    /// Rotate now: a new current generation, the current one becomes the
    /// previous, the previous is dropped. Returns the new ES256 and RS256 kids.
    pub async fn rotate(&self) -> Result<(String, String)> {
        let kids = rotate(self.store.as_ref(), self.clock.as_ref(), None).await?;
        self.reload().await?;
        Ok(kids)
    }

    /// Follow the store and rotate on schedule, for as long as the keyring lives.
    pub fn spawn_upkeep(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let mut announced = self.store.subscribe(&Records::<StoredKeyring>::topic());
        tokio::spawn(async move {
            loop {
                let Some(ring) = weak.upgrade() else { return };
                let created = ring.current().created_at;
                let due = (ring.interval > 0).then(|| created.saturating_add(ring.interval));
                let clock = Arc::clone(&ring.clock);
                drop(ring);
                let rotate_now = tokio::select! {
                    () = announced.changed() => false,
                    () = tokio::time::sleep(Duration::from_secs(60)) => false,
                    () = async {
                        match due {
                            Some(t) => clock.sleep_until(t).await,
                            None => std::future::pending().await,
                        }
                    } => true,
                };
                let Some(ring) = weak.upgrade() else { return };
                let result = if rotate_now {
                    // Only the instance whose swap lands rotates; the others reload.
                    rotate(ring.store.as_ref(), ring.clock.as_ref(), Some(created))
                        .await
                        .map(|_| ())
                } else {
                    Ok(())
                };
                if let Err(e) = match result {
                    Ok(()) => ring.reload().await,
                    Err(e) => Err(e),
                } {
                    tracing::warn!(error = %e, "token keyring upkeep failed; retrying within a minute");
                }
            }
        });
    }
}

async fn read_or_create(
    store: &dyn Store,
    clock: &dyn Clock,
) -> Result<(Stored<StoredKeyring>, TokenKeys)> {
    let now = clock.now();
    let records = Records::<StoredKeyring>::new(store);
    if let Some(stored) = records.read(&(), now).await? {
        let keys = stored.value.open()?;
        return Ok((stored, keys));
    }
    let fresh = StoredKeyring {
        created_at: now,
        current: StoredGeneration::generate()?,
        previous: None,
    };
    records.put_new(&(), &fresh, 0, now).await?;
    // Whoever won the race, everyone reads the same record.
    let stored = records
        .read(&(), now)
        .await?
        .ok_or_else(|| Error::Store("the token keyring vanished".into()))?;
    let keys = stored.value.open()?;
    Ok((stored, keys))
}

/// Rotate the stored keyring. With `if_created_at`, only if the current
/// generation is still that one (the scheduled rotation of racing instances).
pub async fn rotate(
    store: &dyn Store,
    clock: &dyn Clock,
    if_created_at: Option<i64>,
) -> Result<(String, String)> {
    loop {
        let (stored, _) = read_or_create(store, clock).await?;
        if if_created_at.is_some_and(|c| c != stored.value.created_at) {
            let keys = stored.value.open()?;
            return Ok((keys.current.es.kid, keys.current.rs.kid));
        }
        let next = StoredKeyring {
            created_at: clock.now(),
            current: StoredGeneration::generate()?,
            previous: Some(stored.value.current.clone()),
        };
        let records = Records::<StoredKeyring>::new(store);
        if records.swap(&(), &stored, &next, 0, clock.now()).await? {
            records.announce().await?;
            let keys = next.open()?;
            tracing::info!(
                es256 = keys.current.es.kid,
                rs256 = keys.current.rs.kid,
                "token keys rotated"
            );
            return Ok((keys.current.es.kid, keys.current.rs.kid));
        }
        // Someone else changed it meanwhile: read again.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_keys_sign_what_their_jwk_verifies() {
        let der = generate_rsa_pkcs8().expect("keygen");
        let key = RsKey::from_pkcs8(&der).expect("valid");
        assert_eq!(key.e, "AQAB");
        let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
        header.kid = Some(key.kid.clone());
        let token = jsonwebtoken::encode(&header, &serde_json::json!({"sub": "x"}), &key.encoding)
            .expect("signs");
        let mut v = jsonwebtoken::Validation::new(Algorithm::RS256);
        v.required_spec_claims.clear();
        v.validate_exp = false;
        let verifier = DecodingKey::from_rsa_components(&key.n, &key.e).expect("jwk");
        jsonwebtoken::decode::<serde_json::Value>(&token, &verifier, &v).expect("verifies");
        assert!(RsKey::from_pkcs8(b"junk").is_err());
    }
}
