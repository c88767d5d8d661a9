//! Compact JWS with ES256: signing through a [`Signer`] (so a hardware key can
//! sign) and verification against a P-256 JWK.
//!
//! Only ES256 is accepted: `none`, HMAC and RSA headers are rejected before any
//! key is touched.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use p256::ecdsa::{Signature, VerifyingKey, signature::Verifier as _};
use potvrda_proto::jose::{ALG_ES256, EcJwk};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::signer::{Signer, public_key_of};
use crate::{Error, Result};

/// The protected header of every Potvrda JWS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always `ES256`.
    pub alg: String,
    /// The message type (`potvrda-…+jwt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// Key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
}

/// Sign `claims` as a compact JWS with the given `typ` and `kid`.
pub fn sign<T: Serialize>(
    signer: &dyn Signer,
    typ: &str,
    kid: Option<&str>,
    claims: &T,
) -> Result<String> {
    let header = Header {
        alg: ALG_ES256.into(),
        typ: Some(typ.into()),
        kid: kid.map(str::to_owned),
    };
    let mut out = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?);
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?));
    let sig = signer.sign(out.as_bytes())?;
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(sig));
    Ok(out)
}

/// A parsed, not yet verified, compact JWS.
#[derive(Debug, Clone)]
pub struct Parsed<'a> {
    /// The protected header.
    pub header: Header,
    signing_input: &'a str,
    payload: Vec<u8>,
    signature: [u8; 64],
}

/// Split and decode a compact JWS; checks the algorithm and, when given, the `typ`.
pub fn parse<'a>(jws: &'a str, typ: Option<&str>) -> Result<Parsed<'a>> {
    let mut parts = jws.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::MalformedJws("not three dot-separated parts"));
    };
    let header_json = URL_SAFE_NO_PAD
        .decode(h)
        .map_err(|_| Error::MalformedJws("header is not base64url"))?;
    if potvrda_proto::jose::refused_header_param(&header_json).is_some() {
        return Err(Error::MalformedJws("crit or b64 in the header"));
    }
    let header: Header = serde_json::from_slice(&header_json)
        .map_err(|_| Error::MalformedJws("header is not JSON"))?;
    if header.alg != ALG_ES256 {
        return Err(Error::MalformedJws("alg is not ES256"));
    }
    if let Some(typ) = typ
        && header.typ.as_deref() != Some(typ)
    {
        return Err(Error::MalformedJws("unexpected typ"));
    }
    let payload = URL_SAFE_NO_PAD
        .decode(p)
        .map_err(|_| Error::MalformedJws("payload is not base64url"))?;
    let signature: [u8; 64] = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| Error::MalformedJws("signature is not base64url"))?
        .try_into()
        .map_err(|_| Error::MalformedJws("signature is not 64 bytes"))?;
    Ok(Parsed {
        header,
        signing_input: &jws[..h.len() + 1 + p.len()],
        payload,
        signature,
    })
}

impl Parsed<'_> {
    /// Verify the signature with `jwk` and decode the claims.
    pub fn verify<T: DeserializeOwned>(&self, jwk: &EcJwk) -> Result<T> {
        let key = VerifyingKey::from(public_key_of(jwk)?);
        let sig = Signature::from_slice(&self.signature).map_err(|_| Error::BadSignature)?;
        key.verify(self.signing_input.as_bytes(), &sig)
            .map_err(|_| Error::BadSignature)?;
        serde_json::from_slice(&self.payload)
            .map_err(|_| Error::MalformedJws("claims do not match"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SoftwareSigner;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Claims {
        a: u32,
    }

    #[test]
    fn sign_then_verify() {
        let s = SoftwareSigner::generate();
        let jws = sign(&s, "t+jwt", Some("k1"), &Claims { a: 7 }).expect("signs");
        let parsed = parse(&jws, Some("t+jwt")).expect("parses");
        assert_eq!(parsed.header.kid.as_deref(), Some("k1"));
        let c: Claims = parsed.verify(&s.public_jwk()).expect("verifies");
        assert_eq!(c, Claims { a: 7 });
    }

    #[test]
    fn wrong_key_typ_alg_and_tampering_are_rejected() {
        let s = SoftwareSigner::generate();
        let other = SoftwareSigner::generate();
        let jws = sign(&s, "t+jwt", None, &Claims { a: 7 }).expect("signs");
        let parsed = parse(&jws, None).expect("parses");
        assert!(matches!(
            parsed.verify::<Claims>(&other.public_jwk()),
            Err(Error::BadSignature)
        ));
        assert!(parse(&jws, Some("other+jwt")).is_err());

        // Swap the payload for another one: the signature no longer covers it.
        let forged_payload = URL_SAFE_NO_PAD.encode(br#"{"a":8}"#);
        let parts: Vec<&str> = jws.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        let parsed = parse(&forged, None).expect("well-formed");
        assert!(parsed.verify::<Claims>(&s.public_jwk()).is_err());

        // alg none / HS256 headers are refused before verification.
        for alg in ["none", "HS256", "RS256"] {
            let h = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}"}}"#));
            let bad = format!("{h}.{}.{}", parts[1], parts[2]);
            assert!(
                matches!(parse(&bad, None), Err(Error::MalformedJws(_))),
                "{alg}"
            );
        }
        assert!(parse("a.b", None).is_err());
        assert!(parse("a.b.c.d", None).is_err());
    }

    #[test]
    fn critical_extensions_and_unencoded_payloads_are_refused() {
        // Correctly signed, but with a header parameter that changes the rules.
        let s = SoftwareSigner::generate();
        let payload = URL_SAFE_NO_PAD.encode(br#"{"a":7}"#);
        for header in [
            r#"{"alg":"ES256","typ":"t+jwt","crit":["exp"],"exp":1}"#,
            r#"{"alg":"ES256","typ":"t+jwt","b64":false,"crit":["b64"]}"#,
            r#"{"alg":"ES256","typ":"t+jwt","b64":true}"#,
        ] {
            let input = format!("{}.{payload}", URL_SAFE_NO_PAD.encode(header));
            let sig = s.sign(input.as_bytes()).expect("signs");
            let jws = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig));
            assert!(
                matches!(parse(&jws, Some("t+jwt")), Err(Error::MalformedJws(_))),
                "{header}"
            );
        }
    }
}
