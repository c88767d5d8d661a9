//! The audit trail's hash chains (PROTOCOL.md, "The tamper-evident audit
//! trail"): every event is linked into the national chain, and an event with
//! a municipality also into that municipality's chain, by
//! `hash = SHA-256(prev ‖ canonical event)`. The canonical event is the
//! RFC 8785 (JCS) form of the event's JSON without its `id` and `chain`.
//!
//! The stores link events under their own serialisation (the embedded
//! store's writer thread, a row lock on PostgreSQL, a compare-and-set script
//! on Redis); this module is the one rule they all apply, and the one the
//! verifier checks.

use std::collections::BTreeMap;
use std::fmt;

use aws_lc_rs::digest::{Context, SHA256};
use canon_json::CanonJsonSerialize as _;
use potvrda_proto::api::{AuditChain, AuditEvent, AuditKind, ChainLink};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A SHA-256 value.
pub type Digest = [u8; 32];

/// The `prev` of a chain's first link.
pub const GENESIS: Digest = [0; 32];

/// Which chain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChainName {
    /// Every event.
    National,
    /// The events of one municipality (by its code).
    Municipality(String),
}

impl ChainName {
    /// The chain's name on the wire and in the stores: `national` or
    /// `municipality:<code>`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "national" => Some(Self::National),
            _ => name
                .strip_prefix("municipality:")
                .filter(|code| !code.is_empty())
                .map(|code| Self::Municipality(code.to_owned())),
        }
    }
}

impl fmt::Display for ChainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::National => f.write_str("national"),
            Self::Municipality(code) => write!(f, "municipality:{code}"),
        }
    }
}

/// The last link of a chain, as the stores keep it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Head {
    /// How many events the chain holds (the last one's `n`).
    pub n: u64,
    /// The last link's hash.
    #[serde(with = "hex::serde")]
    pub hash: Digest,
    /// The last event is this chain's own checkpoint: nothing to sign anew.
    #[serde(default)]
    pub anchored: bool,
}

impl Head {
    /// The head after `link`, for an event that is (or not) this chain's checkpoint.
    fn after(link: &ChainLink, anchored: bool) -> Result<Self> {
        Ok(Self {
            n: link.n,
            hash: parse_digest(&link.hash)?,
            anchored,
        })
    }
}

/// Every chain's head.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Heads {
    /// The national chain.
    pub national: Head,
    /// Each municipality's chain, by code.
    pub municipal: BTreeMap<String, Head>,
}

impl Heads {
    /// Link `event` after these heads, and move them.
    pub fn append(&mut self, event: &mut AuditEvent) -> Result<()> {
        let municipal = event
            .municipality
            .as_ref()
            .map(|m| self.municipal.get(m).copied().unwrap_or_default());
        let (national, municipal) = link_event(event, &self.national, municipal.as_ref())?;
        self.national = national;
        if let (Some(code), Some(head)) = (&event.municipality, municipal) {
            self.municipal.insert(code.clone(), head);
        }
        Ok(())
    }

    /// Move these heads past `event`, already linked (a store replaying its
    /// own log): its links must follow the heads, as the verifier demands.
    pub fn follow(&mut self, event: &AuditEvent) -> Result<()> {
        let chain = event
            .chain
            .as_ref()
            .ok_or_else(|| Error::Internal(format!("audit event {} is not linked", event.id)))?;
        let checkpoint = event.kind == AuditKind::AuditCheckpoint;
        follows(&self.national, &chain.national, &event.id)?;
        let national = Head::after(&chain.national, checkpoint && event.municipality.is_none())?;
        match (&event.municipality, &chain.municipal) {
            (Some(code), Some(link)) => {
                let head = self.municipal.get(code).copied().unwrap_or_default();
                follows(&head, link, &event.id)?;
                self.municipal
                    .insert(code.clone(), Head::after(link, checkpoint)?);
            }
            (None, None) => {}
            _ => {
                return Err(Error::Internal(format!(
                    "audit event {} has a municipal link without a municipality, or the reverse",
                    event.id
                )));
            }
        }
        self.national = national;
        Ok(())
    }

    /// The chains with events since their last checkpoint.
    pub fn unanchored(&self) -> Vec<(ChainName, Head)> {
        let mut out: Vec<_> = self
            .municipal
            .iter()
            .filter(|(_, h)| !h.anchored && h.n > 0)
            .map(|(code, h)| (ChainName::Municipality(code.clone()), *h))
            .collect();
        // The national checkpoint last: it covers the municipal ones' events.
        if !self.national.anchored && self.national.n > 0 {
            out.push((ChainName::National, self.national));
        }
        out
    }
}

/// The bytes hashed for `event`: its RFC 8785 form without `id` and `chain`.
pub fn canonical(event: &AuditEvent) -> Result<Vec<u8>> {
    let mut value = serde_json::to_value(event)?;
    if let serde_json::Value::Object(members) = &mut value {
        members.remove("id");
        members.remove("chain");
    }
    value
        .to_canon_json_vec()
        .map_err(|e| Error::Internal(format!("audit event not canonicalisable: {e}")))
}

/// `SHA-256(prev ‖ canonical(event))`.
pub fn link_hash(prev: &Digest, event: &AuditEvent) -> Result<Digest> {
    Ok(hash_after(prev, &canonical(event)?))
}

/// `SHA-256(prev ‖ form)`.
fn hash_after(prev: &Digest, form: &[u8]) -> Digest {
    let mut ctx = Context::new(&SHA256);
    ctx.update(prev);
    ctx.update(form);
    let mut out = GENESIS;
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Link `event` after the national head and (when it has a municipality)
/// its municipality's head: sets `event.chain`, returns the new heads.
pub fn link_event(
    event: &mut AuditEvent,
    national: &Head,
    municipal: Option<&Head>,
) -> Result<(Head, Option<Head>)> {
    event.chain = None;
    let checkpoint = event.kind == AuditKind::AuditCheckpoint;
    // One canonical form for both links.
    let form = canonical(event)?;
    let national_link = next_link(national, &form);
    let municipal_link = match (&event.municipality, municipal) {
        (Some(_), Some(head)) => Some(next_link(head, &form)),
        (Some(_), None) => Some(next_link(&Head::default(), &form)),
        (None, _) => None,
    };
    let national = Head::after(&national_link, checkpoint && event.municipality.is_none())?;
    let municipal = municipal_link
        .as_ref()
        .map(|l| Head::after(l, checkpoint))
        .transpose()?;
    event.chain = Some(AuditChain {
        national: national_link,
        municipal: municipal_link,
    });
    Ok((national, municipal))
}

fn next_link(head: &Head, form: &[u8]) -> ChainLink {
    ChainLink {
        n: head.n + 1,
        prev: hex::encode(head.hash),
        hash: hex::encode(hash_after(&head.hash, form)),
    }
}

/// Whether `link` comes right after `head` (its hash is not recomputed: the
/// log it comes from was written by the same rule; `audit verify` recomputes).
fn follows(head: &Head, link: &ChainLink, id: &str) -> Result<()> {
    if link.n == head.n + 1 && parse_digest(&link.prev)? == head.hash {
        Ok(())
    } else {
        Err(Error::Internal(format!(
            "audit event {id} does not follow the chain's head (n {} after {})",
            link.n, head.n
        )))
    }
}

/// A hash as 64 hex digits.
pub fn parse_digest(hex_digits: &str) -> Result<Digest> {
    let mut out = GENESIS;
    hex::decode_to_slice(hex_digits, &mut out)
        .map_err(|_| Error::InvalidRequest("a chain hash is 64 hex digits".into()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Event;

    fn event(at: i64, municipality: Option<&str>) -> AuditEvent {
        let e = Event::new(AuditKind::CitizenCreated, at)
            .user("u-1")
            .with("note", "ćir");
        match municipality {
            Some(m) => e.municipality(m).into_inner(),
            None => e.into_inner(),
        }
    }

    /// A known answer: the canonical form is sorted, spaceless UTF-8, and
    /// the first link is SHA-256 of 32 zero bytes then that form.
    #[test]
    fn the_canonical_form_and_the_first_link_are_known_answers() {
        let mut e = event(1_700_000_000, Some("BG01"));
        e.id = "ignored-1".into();
        let form = String::from_utf8(canonical(&e).expect("canonical")).expect("utf-8");
        assert_eq!(
            form,
            r#"{"at":1700000000,"detail":{"note":"ćir"},"kind":"citizen_created","municipality":"BG01","severity":"info","user_id":"u-1"}"#
        );
        let mut ctx = Context::new(&SHA256);
        ctx.update(&[0u8; 32]);
        ctx.update(form.as_bytes());
        let mut heads = Heads::default();
        heads.append(&mut e).expect("linked");
        let chain = e.chain.clone().expect("chain");
        assert_eq!(chain.national.hash, hex::encode(ctx.finish()));
        assert_eq!(chain.national.prev, "0".repeat(64));
        assert_eq!(
            (chain.national.n, chain.municipal.as_ref().map(|m| m.n)),
            (1, Some(1))
        );
        // The link does not depend on the id or on an earlier chain value.
        e.id = "other".into();
        assert_eq!(
            hex::encode(link_hash(&GENESIS, &e).expect("hash")),
            chain.national.hash
        );
    }

    #[test]
    fn chains_advance_separately_and_checkpoints_anchor_only_their_chain() {
        let mut heads = Heads::default();
        for m in [Some("BG01"), None, Some("NS02"), Some("BG01")] {
            heads.append(&mut event(1, m)).expect("linked");
        }
        assert_eq!(heads.national.n, 4);
        assert_eq!(heads.municipal["BG01"].n, 2);
        assert_eq!(heads.municipal["NS02"].n, 1);
        let names: Vec<_> = heads
            .unanchored()
            .into_iter()
            .map(|(c, _)| c.to_string())
            .collect();
        assert_eq!(
            names,
            ["municipality:BG01", "municipality:NS02", "national"]
        );
        let mut cp = Event::new(AuditKind::AuditCheckpoint, 2)
            .municipality("BG01")
            .into_inner();
        heads.append(&mut cp).expect("linked");
        assert!(heads.municipal["BG01"].anchored && !heads.national.anchored);
        let mut cp = Event::new(AuditKind::AuditCheckpoint, 2).into_inner();
        heads.append(&mut cp).expect("linked");
        let names: Vec<_> = heads
            .unanchored()
            .into_iter()
            .map(|(c, _)| c.to_string())
            .collect();
        assert_eq!(names, ["municipality:NS02"]);
    }

    #[test]
    fn chain_names_round_trip() {
        for name in ["national", "municipality:BG01"] {
            assert_eq!(ChainName::parse(name).expect("parses").to_string(), name);
        }
        assert_eq!(ChainName::parse("municipality:"), None);
        assert_eq!(ChainName::parse("regional"), None);
    }
}
