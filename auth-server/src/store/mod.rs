//! The store backends: [`embedded`] (a redb file for accounts, devices and
//! activation codes; challenges in memory; key files in the data dir),
//! [`redis`] (everything, shared by every instance) and [`split`]
//! ([`postgres`] as the system of record, Redis for what is fleeting). Each
//! implements the domain's repository traits ([`potvrda_domain::store`]) and
//! passes the same contract suite.

pub mod dump;
pub mod embedded;
pub mod postgres;
pub mod redis;
pub mod split;

pub use potvrda_domain::store::*;

use potvrda_domain::error::Error;

/// A redb or JSON failure inside the embedded store.
pub(crate) fn redb_error(e: impl std::fmt::Display) -> Error {
    Error::Store(e.to_string())
}

/// A stored record: its expiry (big-endian i64, 0 for never) then the value.
pub(crate) fn kv_encode(value: &[u8], expires_at: i64) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + value.len());
    v.extend_from_slice(&expires_at.to_be_bytes());
    v.extend_from_slice(value);
    v
}

/// The value of a stored record if it is live at `now`.
pub(crate) fn kv_decode(stored: &[u8], now: i64) -> Option<&[u8]> {
    let (head, value) = stored.split_at_checked(8)?;
    let expires_at = i64::from_be_bytes(head.try_into().ok()?);
    (expires_at == 0 || now < expires_at).then_some(value)
}
