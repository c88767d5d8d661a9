//! JWS verification for what devices sign, device keys, ids, hashes, and the
//! constant-time comparison every secret goes through.

use super::*;

/// Verify a compact JWS: ES256 only, the expected `typ`, the given key.
/// Time claims are checked by the caller against the injected clock.
pub fn verify_jws<T: DeserializeOwned>(jws: &str, typ: &str, key: &DecodingKey) -> Result<T> {
    let header =
        jsonwebtoken::decode_header(jws).map_err(|_| Error::InvalidSignature("not a JWS"))?;
    // jsonwebtoken ignores `crit` and `b64`; RFC 7515 §4.1.11 says reject.
    let raw_header = jws
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .unwrap_or_default();
    if potvrda_proto::jose::refused_header_param(&raw_header).is_some() {
        return Err(Error::InvalidSignature("crit and b64 are not supported"));
    }
    if header.alg != Algorithm::ES256 {
        return Err(Error::InvalidSignature("alg must be ES256"));
    }
    if header.typ.as_deref() != Some(typ) {
        return Err(Error::InvalidSignature("unexpected typ"));
    }
    let mut validation = Validation::new(Algorithm::ES256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    jsonwebtoken::decode::<T>(jws, key, &validation)
        .map(|d| d.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::Json(_) => {
                Error::InvalidSignature("claims are malformed")
            }
            _ => Error::InvalidSignature("signature does not verify"),
        })
}

/// A verifying key for a device JWK, after checking the point is on P-256.
pub(crate) fn decoding_key(jwk: &EcJwk) -> Result<DecodingKey> {
    let bad = || Error::InvalidRequest("public_key must be an EC P-256 JWK".into());
    if !jwk.is_p256() {
        return Err(bad());
    }
    let x = URL_SAFE_NO_PAD.decode(&jwk.x).map_err(|_| bad())?;
    let y = URL_SAFE_NO_PAD.decode(&jwk.y).map_err(|_| bad())?;
    if x.len() != 32 || y.len() != 32 {
        return Err(bad());
    }
    let point = [&[4u8][..], &x, &y].concat();
    p256::PublicKey::from_sec1_bytes(&point).map_err(|_| bad())?;
    DecodingKey::from_ec_components(&jwk.x, &jwk.y).map_err(|_| bad())
}

/// A random UUID (version 4): a typed id, or text.
pub(super) fn new_id<T: From<String>>(rng: &dyn Random) -> Result<T> {
    Ok(uuid::Builder::from_random_bytes(clock::bytes::<16>(rng)?)
        .into_uuid()
        .to_string()
        .into())
}

/// SHA-256, base64url, of a JWS's decoded payload (what `ctx_hash` covers).
pub(super) fn payload_hash(jws: &str) -> String {
    jws.split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .map(|bytes| sha256_b64(&bytes))
        .unwrap_or_default()
}

pub(super) fn sha256_b64(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data))
}

/// Constant-time equality of two strings (length is not secret).
pub(super) fn ct_eq_str(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_curve_device_keys_are_refused() {
        let jwk = EcJwk::p256(
            URL_SAFE_NO_PAD.encode([1u8; 32]),
            URL_SAFE_NO_PAD.encode([2u8; 32]),
        );
        assert!(matches!(decoding_key(&jwk), Err(Error::InvalidRequest(_))));
    }
}
