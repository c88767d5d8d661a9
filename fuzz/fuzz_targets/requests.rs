//! Any bytes as each request body, and any string through the server's input
//! normalisers (the server's with feature `server`), the activation-URI
//! parser: errors, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use potvrda_proto::api::{
    ChallengeAnswer, CreateCitizenRequest, EnrollmentRequest, LoginRequest, PushSubscription,
};

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<LoginRequest>(data);
    let _ = serde_json::from_slice::<EnrollmentRequest>(data);
    let _ = serde_json::from_slice::<CreateCitizenRequest>(data);
    let _ = serde_json::from_slice::<ChallengeAnswer>(data);
    let _ = serde_json::from_slice::<PushSubscription>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        #[cfg(feature = "server")]
        {
            let _ = potvrda_server::service::normalize_username(text);
            let _ = potvrda_server::service::code_hash(text);
            let _ = potvrda_server::service::suggest_username(text);
        }
        let _ = potvrda_mobile_core::protocol::ctx_hash(text);
        let _ = potvrda_mobile_core::parse_activation_uri(text, true);
        let _ = potvrda_proto::offline::normalize(text);
    }
});
