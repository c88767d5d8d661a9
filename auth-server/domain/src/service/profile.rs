//! What the server remembers of a citizen's approved logins, in one record
//! per citizen: when the first and the last approval were, the addresses
//! the phone approved a login from (hashed, each forgotten after
//! [`KNOWN_ADDRESS_DAYS`]), and a recent fraud report. The password guard's
//! known-address bypass and the risk signals read it; an approval writes it
//! only when something changed (a new address, the first approval, a day
//! since the last one), so a citizen's everyday logins cost one read and no
//! durable write.

use crate::store::UserId;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::sha256_b64;
use crate::error::Result;
use crate::store::records::{JsonRecord, Kind};

/// How long an address where the citizen approved a login stays known.
pub const KNOWN_ADDRESS_DAYS: i64 = 90;
/// Addresses kept per citizen (the least recently approved is forgotten).
const MAX_ADDRESSES: usize = 16;
/// The last approval is rewritten at most this often.
const LAST_APPROVED_GRANULARITY: i64 = 86_400;
/// The record outlives its newest fact by this much.
const KEEP_SECS: i64 = 180 * 86_400;
const DAY: i64 = 86_400;

/// One citizen's record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Profile {
    /// The first approved login.
    pub(super) first_approved: Option<i64>,
    /// The last approved login (to the day).
    pub(super) last_approved: Option<i64>,
    /// Hashed addresses and when each is forgotten.
    addresses: Vec<(String, i64)>,
    /// A fraud report counts as a signal until then.
    pub(super) fraud_until: Option<i64>,
}

impl JsonRecord for Profile {
    const KIND: Kind = Kind::LoginProfile;
    type Id = UserId;
}

fn address_hash(ip: IpAddr) -> String {
    sha256_b64(ip.to_string().as_bytes())[..22].to_owned()
}

impl Profile {
    /// Whether the phone approved a login from `ip` lately.
    pub(super) fn knows(&self, ip: IpAddr, now: i64) -> bool {
        let h = address_hash(ip);
        self.addresses
            .iter()
            .any(|(a, until)| *a == h && *until > now)
    }

    /// An approved login from `ip` at `now`; whether anything worth writing changed.
    pub(super) fn approved(&mut self, ip: Option<IpAddr>, now: i64) -> bool {
        let mut changed = false;
        if self.first_approved.is_none() {
            self.first_approved = Some(now);
            changed = true;
        }
        if self
            .last_approved
            .is_none_or(|last| now - last >= LAST_APPROVED_GRANULARITY)
        {
            self.last_approved = Some(now);
            changed = true;
        }
        self.addresses.retain(|(_, until)| *until > now);
        if let Some(ip) = ip {
            let (h, until) = (address_hash(ip), now + KNOWN_ADDRESS_DAYS * DAY);
            match self.addresses.iter().position(|(a, _)| *a == h) {
                // Refreshed only when a day of its life has passed.
                Some(i) if until - self.addresses[i].1 < DAY => {}
                Some(i) => {
                    self.addresses[i].1 = until;
                    changed = true;
                }
                None => {
                    self.addresses.push((h, until));
                    changed = true;
                }
            }
            if self.addresses.len() > MAX_ADDRESSES {
                self.addresses
                    .sort_by_key(|(_, until)| std::cmp::Reverse(*until));
                self.addresses.truncate(MAX_ADDRESSES);
            }
        }
        changed
    }
}

capability! {
    /// A device's profile: what it knows of the account.
    pub(crate) Profiles
}

impl Profiles<'_> {
    /// The citizen's record (empty when there is none).
    pub(super) async fn profile(&self, user_id: &UserId, now: i64) -> Result<Profile> {
        // An unreadable profile is no profile (the next approval rebuilds it).
        Ok(self
            .records::<Profile>()
            .get_readable(user_id, now)
            .await?
            .unwrap_or_default())
    }

    pub(super) async fn save_profile(&self, user_id: &UserId, p: &Profile, now: i64) -> Result<()> {
        self.records().put(user_id, p, now + KEEP_SECS).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn approvals_are_remembered_and_written_only_when_they_change() {
        let mut p = Profile::default();
        let t0 = 1_800_000_000;
        assert!(
            p.approved(Some(ip("203.0.113.7")), t0),
            "the first approval"
        );
        assert!(p.knows(ip("203.0.113.7"), t0) && !p.knows(ip("203.0.113.8"), t0));
        assert_eq!((p.first_approved, p.last_approved), (Some(t0), Some(t0)));
        // The same address within the day: nothing to write.
        assert!(!p.approved(Some(ip("203.0.113.7")), t0 + 3600));
        // A new address, or a day later: written.
        assert!(p.approved(Some(ip("198.51.100.1")), t0 + 3600));
        assert!(p.approved(Some(ip("203.0.113.7")), t0 + DAY));
        assert_eq!(p.first_approved, Some(t0), "the first stays the first");
        // Forgotten after 90 days without an approval from there.
        let later = t0 + 3600 + KNOWN_ADDRESS_DAYS * DAY;
        assert!(!p.knows(ip("198.51.100.1"), later));
        assert!(p.knows(ip("203.0.113.7"), later), "refreshed a day later");
        // At most 16 addresses: the least recently approved go first.
        for i in 0..20u8 {
            p.approved(Some(IpAddr::from([10, 0, 0, i])), t0 + DAY + i64::from(i));
        }
        assert!(p.knows(IpAddr::from([10, 0, 0, 19]), t0 + DAY + 20));
        assert!(!p.knows(IpAddr::from([10, 0, 0, 0]), t0 + DAY + 20));
        assert!(p.addresses.len() <= MAX_ADDRESSES);
    }
}
