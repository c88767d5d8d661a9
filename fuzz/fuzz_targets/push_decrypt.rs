//! Any bytes as an RFC 8291 message: decryption fails cleanly or succeeds, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use potvrda_mobile_core::PushKeyPair;

fuzz_target!(|data: &[u8]| {
    // The RFC 8291 Appendix A receiver keys: well-formed headers get as far as AES-GCM.
    let keys = PushKeyPair::from_b64(
        "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94",
        "BTBZMqHH6r4Tts7J_aSIgg",
    )
    .expect("RFC keys are valid");
    let _ = keys.decrypt(data);
});
