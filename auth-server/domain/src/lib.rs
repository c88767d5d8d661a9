//! Potvrda's domain: accounts and roles, the login flow and its second
//! factors, tokens and their keys, OpenID Connect's authorization logic and
//! the audit trail, with the ports they need ([`ports`], [`clock`],
//! [`store`]).
//!
//! It depends on no web framework, store driver or HTTP client: `deny.toml`
//! bans `actix-web`, `redis`, `redb`, `reqwest` and `askama` from this crate,
//! so the fence is kept by the build. The server (`potvrda-server`) plugs
//! the adapters in: the Prometheus meter, the Web Push sender, the embedded
//! and Redis stores, and the HTTP layer.
#![forbid(unsafe_code)]

pub mod actor;
pub mod audit;
pub mod clock;
pub mod error;
pub mod keyring;
pub mod keys;
pub mod password;
pub mod ports;
pub mod service;
pub mod settings;
pub mod store;
