//! Any string as a compact JWS: the phone's parser and verifier, and the
//! server's approval verification (feature `server`), refuse cleanly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use potvrda_mobile_core::{Signer, SoftwareSigner, jws};
use potvrda_proto::jose::Jwks;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let signer = SoftwareSigner::from_secret_b64("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94")
        .expect("key");
    let mut jwk = signer.public_jwk();
    if let Ok(parsed) = jws::parse(text, None) {
        let _ = parsed.verify::<serde_json::Value>(&jwk);
    }
    jwk.kid = Some("k".into());
    let _ = potvrda_mobile_core::verify_challenge(
        text,
        &Jwks {
            keys: vec![jwk.clone()],
        },
        "device",
        1_800_000_000,
    );
    #[cfg(feature = "server")]
    {
        let key = jsonwebtoken_key(&jwk);
        let _ = potvrda_server::service::verify_jws::<potvrda_proto::jose::ApprovalClaims>(
            text,
            potvrda_proto::jose::TYP_APPROVAL,
            &key,
        );
    }
});

#[cfg(feature = "server")]
fn jsonwebtoken_key(jwk: &potvrda_proto::jose::EcJwk) -> potvrda_server::service::DecodingKey {
    potvrda_server::service::DecodingKey::from_ec_components(&jwk.x, &jwk.y).expect("valid key")
}
