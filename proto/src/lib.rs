//! Potvrda wire contract, version 1.
//!
//! Both the auth-server and every phone (through `potvrda-mobile-core`) compile
//! against these types, so a field renamed here is a compile error on both
//! sides instead of a silent protocol break. Nothing in this crate does I/O.
//!
//! Conventions (see `docs/PROTOCOL.md`): JSON bodies; binary values are
//! base64url without padding; times are integer Unix seconds; every signature
//! is a compact JWS with `alg` ES256; public keys are JWKs (`kty` EC, `crv`
//! P-256); errors are [`ErrorBody`] with a stable [`ErrorCode`].
#![forbid(unsafe_code)]

pub mod api;
pub mod error;
pub mod ids;
pub mod jose;
pub mod limits;
pub mod offline;
pub mod oidc;
pub mod secret;

pub use error::{ErrorBody, ErrorCode};
pub use ids::{ChallengeId, ClientId, DeviceId, LoginId, UserId};
pub use secret::Secret;
