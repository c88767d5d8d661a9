//! `potvrda-mobile-core`: the Rust code every Potvrda phone app shares.
//!
//! It holds everything that must be identical on every platform because it is
//! security-relevant: the device key ([`signer`]), Web Push decryption
//! ([`push`], RFC 8291), verification of the server's challenge and signing of
//! the citizen's answer ([`protocol`]) only after the citizen confirms with
//! biometrics or a PIN ([`presence`]), the offline code, and activation from
//! the printed sheet's QR code ([`activation`]). It has no HTTP client in its core API: [`device`] builds every
//! request and reads every answer ([`transport`]); the app moves the bytes,
//! the core decides what they mean.
//!
//! With the `device` feature it also provides [`phone::VirtualPhone`] and the
//! `potvrda-device` binary: a complete phone for demos and end-to-end tests,
//! with a real local push endpoint.
#![forbid(unsafe_code)]

pub mod activation;
pub mod device;
pub mod error;
pub mod inbox;
pub mod jws;
#[cfg(feature = "device")]
pub mod phone;
pub mod presence;
pub mod protocol;
pub mod push;
pub mod signer;
pub mod transport;

pub use activation::{Activation, activation_from_code, normalize_code, parse_activation_uri};
pub use error::{Error, Result};
pub use inbox::{Inbox, Shown};
pub use presence::{PinPrompt, PinState, PinStore, PinVerifier, UserVerifier};
pub use protocol::{Challenge, approval, enrollment_request, pull_token, verify_challenge};
pub use push::PushKeyPair;
pub use signer::{Signer, SoftwareSigner};
