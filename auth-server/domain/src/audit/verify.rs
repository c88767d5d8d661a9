//! Checking a trail: every link, every checkpoint's signature and claim,
//! and the first broken link named. The same code checks an export (JSON
//! Lines) and the live store (`auth-server audit verify`).

use std::collections::{BTreeMap, VecDeque};

use jsonwebtoken::DecodingKey;
use potvrda_proto::api::{
    AuditCheckpointClaims, AuditEvent, AuditKind, ChainLink, TYP_AUDIT_CHECKPOINT,
};
use potvrda_proto::jose::Jwks;

use super::chain::{ChainName, Digest, GENESIS, Head, Heads, link_hash, parse_digest};
use crate::service::jose::{decoding_key, verify_jws};

/// How many recent links of each chain a checkpoint may point back to.
const WINDOW: usize = 4096;

/// Which chain an export must hold whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every event (an unfiltered export, the live store).
    National,
    /// One municipality's events (an export filtered by municipality): the
    /// national links are checked one by one, not for gaps.
    Municipality(String),
}

/// The first broken link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// The event's id.
    pub id: String,
    /// The chain broken there.
    pub chain: String,
    /// The event's position in that chain, when it has one.
    pub n: Option<u64>,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "event {} ({}", self.id, self.chain)?;
        if let Some(n) = self.n {
            write!(f, " n={n}")?;
        }
        write!(f, "): {}", self.reason)
    }
}

/// What a check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Events read.
    pub events: u64,
    /// Events before the chain began (written by a release without it).
    pub unchained: u64,
    /// Checkpoints whose signature and claim were checked.
    pub checkpoints: u64,
    /// Checkpoints pointing further back than the verifier remembers.
    pub checkpoints_unchecked: u64,
    /// The last head of each chain seen.
    pub heads: Heads,
    /// The national `n` of the last event covered by a checked checkpoint.
    pub anchored_to: Option<u64>,
    /// The first broken link, if any.
    pub broken: Option<Break>,
}

impl Report {
    /// National events after the last checkpoint: a cut there is invisible
    /// to the chain alone (compare with the store's head, or a later checkpoint).
    pub fn unanchored_tail(&self) -> u64 {
        self.heads
            .national
            .n
            .saturating_sub(self.anchored_to.unwrap_or(0))
    }
}

/// Reads events in order and checks them.
pub struct Verifier {
    scope: Scope,
    keys: BTreeMap<String, DecodingKey>,
    recent: BTreeMap<ChainName, VecDeque<(u64, Digest)>>,
    report: Report,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier trusting the audit keys of `jwks`.
    pub fn new(scope: Scope, jwks: &Jwks) -> Self {
        let keys = jwks
            .keys
            .iter()
            .filter_map(|k| Some((k.kid.clone()?, decoding_key(k).ok()?)))
            .collect();
        Self {
            scope,
            keys,
            recent: BTreeMap::new(),
            report: Report::default(),
        }
    }

    /// Check the next event; `false` once a link is broken (stop reading).
    pub fn push(&mut self, event: &AuditEvent) -> bool {
        if self.report.broken.is_some() {
            return false;
        }
        self.report.events += 1;
        if let Err(b) = self.check(event) {
            self.report.broken = Some(b);
            return false;
        }
        true
    }

    /// The findings.
    pub fn finish(self) -> Report {
        self.report
    }

    fn check(&mut self, e: &AuditEvent) -> Result<(), Break> {
        let broken = |chain: &ChainName, n: Option<u64>, reason: &str| Break {
            id: e.id.clone(),
            chain: chain.to_string(),
            n,
            reason: reason.to_owned(),
        };
        let Some(chain) = &e.chain else {
            if self.report.heads.national.n == 0 {
                self.report.unchained += 1;
                return Ok(());
            }
            return Err(broken(
                &ChainName::National,
                None,
                "no chain links after the chain began",
            ));
        };
        let whole_national = self.scope == Scope::National;
        self.follow(&ChainName::National, &chain.national, e, whole_national)
            .map_err(|r| broken(&ChainName::National, Some(chain.national.n), &r))?;
        match (&e.municipality, &chain.municipal) {
            (Some(code), Some(link)) => {
                let name = ChainName::Municipality(code.clone());
                self.follow(&name, link, e, true)
                    .map_err(|r| broken(&name, Some(link.n), &r))?;
            }
            (Some(code), None) => {
                let name = ChainName::Municipality(code.clone());
                return Err(broken(&name, None, "no link in its municipality's chain"));
            }
            (None, Some(link)) => {
                return Err(broken(
                    &ChainName::National,
                    Some(link.n),
                    "a municipal link without a municipality",
                ));
            }
            (None, None) => {}
        }
        if e.kind == AuditKind::AuditCheckpoint {
            let (name, n) = match (&e.municipality, &chain.municipal) {
                (Some(code), Some(link)) => (ChainName::Municipality(code.clone()), link.n),
                _ => (ChainName::National, chain.national.n),
            };
            self.checkpoint(e, n)
                .map_err(|r| broken(&name, Some(n), &r))?;
        }
        Ok(())
    }

    /// Check `link` of `e` against what came before in `name`, and move on.
    fn follow(
        &mut self,
        name: &ChainName,
        link: &ChainLink,
        e: &AuditEvent,
        whole: bool,
    ) -> Result<(), String> {
        let prev = parse_digest(&link.prev).map_err(|_| "prev is not 64 hex digits".to_owned())?;
        let head = self.head(name);
        if head.n > 0 && whole {
            if link.n != head.n + 1 {
                return Err(format!(
                    "expected n={}, found n={} (events missing or out of order)",
                    head.n + 1,
                    link.n
                ));
            }
            if prev != head.hash {
                return Err("prev is not the previous event's hash (an event before it was removed or changed)".into());
            }
        } else if link.n == 1 && prev != GENESIS {
            return Err("the first link's prev is not zero".into());
        }
        let hash = link_hash(&prev, e).map_err(|err| err.to_string())?;
        if hex::encode(hash) != link.hash {
            return Err("the hash does not match the event (the event was changed)".into());
        }
        let anchored = e.kind == AuditKind::AuditCheckpoint;
        let new = Head {
            n: link.n,
            hash,
            anchored,
        };
        match name {
            ChainName::National => self.report.heads.national = new,
            ChainName::Municipality(code) => {
                self.report.heads.municipal.insert(code.clone(), new);
            }
        }
        let recent = self.recent.entry(name.clone()).or_default();
        if recent.len() == WINDOW {
            recent.pop_front();
        }
        recent.push_back((link.n, hash));
        Ok(())
    }

    fn holds_whole(&self, name: &ChainName) -> bool {
        matches!(name, ChainName::Municipality(_)) || self.scope == Scope::National
    }

    fn head(&self, name: &ChainName) -> Head {
        match name {
            ChainName::National => self.report.heads.national,
            ChainName::Municipality(code) => self
                .report
                .heads
                .municipal
                .get(code)
                .copied()
                .unwrap_or_default(),
        }
    }

    /// A checkpoint's signature, and its claim against the links seen
    /// before it (the checkpoint itself is link `own_n` of its chain).
    fn checkpoint(&mut self, e: &AuditEvent, own_n: u64) -> Result<(), String> {
        let jws = e
            .detail
            .get("jws")
            .and_then(|v| v.as_str())
            .ok_or("a checkpoint without a jws")?;
        let kid = jsonwebtoken::decode_header(jws)
            .ok()
            .and_then(|h| h.kid)
            .ok_or("the checkpoint's JWS names no key")?;
        let key = self
            .keys
            .get(&kid)
            .ok_or("the checkpoint is signed by a key not in the audit JWKS")?;
        let claims: AuditCheckpointClaims = verify_jws(jws, TYP_AUDIT_CHECKPOINT, key)
            .map_err(|err| format!("checkpoint: {err}"))?;
        let name = ChainName::parse(&claims.chain).ok_or("the checkpoint names no known chain")?;
        let expected_municipality = match &name {
            ChainName::National => None,
            ChainName::Municipality(code) => Some(code.as_str()),
        };
        if e.municipality.as_deref() != expected_municipality {
            return Err("the checkpoint is filed under another chain than it signs".into());
        }
        let seen = self
            .recent
            .get(&name)
            .and_then(|links| links.iter().find(|(n, _)| *n == claims.n));
        match seen {
            Some((_, hash)) if hex::encode(hash) == claims.hash => {
                self.report.checkpoints += 1;
                if name == ChainName::National {
                    self.report.anchored_to = Some(claims.n);
                }
                Ok(())
            }
            Some(_) => Err(format!(
                "the signed head of {} at n={} differs from the chain (events before it were changed)",
                claims.chain, claims.n
            )),
            None if claims.n >= own_n && self.holds_whole(&name) => Err(format!(
                "the checkpoint signs {} at n={}, beyond the events before it",
                claims.chain, claims.n
            )),
            None => {
                self.report.checkpoints_unchecked += 1;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Event, checkpoint_event};
    use crate::keys::{EsKey, generate_pkcs8};

    fn key() -> EsKey {
        EsKey::from_pkcs8(&generate_pkcs8().expect("keygen")).expect("key")
    }

    /// A trail of `n` events (every third in BG01), checkpoints after the
    /// 4th and the last, ids `e1`, `e2`, …
    fn trail(key: &EsKey, n: usize) -> Vec<AuditEvent> {
        let mut heads = Heads::default();
        let mut out = Vec::new();
        let push = |heads: &mut Heads, mut e: AuditEvent, out: &mut Vec<AuditEvent>| {
            heads.append(&mut e).expect("linked");
            e.id = format!("e{}", out.len() + 1);
            out.push(e);
        };
        for i in 0..n {
            let mut e =
                Event::new(AuditKind::LoginStarted, 1_000 + i as i64).user(&format!("u{i}"));
            if i % 3 == 0 {
                e = e.municipality("BG01");
            }
            push(&mut heads, e.into_inner(), &mut out);
            if i == 3 || i + 1 == n {
                // As the server does: the municipal checkpoints, then the national over them.
                for (chain, head) in heads.clone().unanchored() {
                    let head = if chain == ChainName::National {
                        heads.national
                    } else {
                        head
                    };
                    let cp = checkpoint_event(key, "https://potvrda.test", &chain, &head, 2_000)
                        .expect("signed");
                    push(&mut heads, cp, &mut out);
                }
            }
        }
        out
    }

    fn verify(events: &[AuditEvent], jwks: &Jwks) -> Report {
        let mut v = Verifier::new(Scope::National, jwks);
        for e in events {
            if !v.push(e) {
                break;
            }
        }
        v.finish()
    }

    fn jwks(key: &EsKey) -> Jwks {
        Jwks {
            keys: vec![key.jwk.clone()],
        }
    }

    #[test]
    fn an_untouched_trail_verifies_and_is_anchored_to_its_end() {
        let k = key();
        let events = trail(&k, 10);
        let report = verify(&events, &jwks(&k));
        assert_eq!(report.broken, None);
        assert_eq!(report.events, events.len() as u64);
        assert_eq!(report.checkpoints, 4, "BG01 and national, twice");
        assert_eq!(
            report.unanchored_tail(),
            1,
            "only the last checkpoint itself follows the last anchor"
        );
        assert_eq!(report.heads.municipal["BG01"].n, 6);
    }

    #[test]
    fn an_edited_event_is_named() {
        let k = key();
        let mut events = trail(&k, 10);
        events[6].detail.insert("ip".into(), "10.0.0.1".into());
        let broken = verify(&events, &jwks(&k)).broken.expect("broken");
        assert_eq!(
            (broken.id.as_str(), broken.chain.as_str()),
            ("e7", "national")
        );
        assert!(broken.reason.contains("changed"), "{broken}");
    }

    #[test]
    fn a_removed_or_moved_event_breaks_the_link_after_it() {
        let k = key();
        let events = trail(&k, 10);
        let mut removed = events.clone();
        removed.remove(8);
        let broken = verify(&removed, &jwks(&k)).broken.expect("broken");
        assert_eq!(broken.id, "e10");
        let mut swapped = events.clone();
        swapped.swap(8, 9);
        assert_eq!(
            verify(&swapped, &jwks(&k)).broken.expect("broken").id,
            "e10"
        );
    }

    /// An editor who re-hashes every later link is caught by the next
    /// checkpoint, which they cannot re-sign.
    #[test]
    fn re_hashing_after_an_edit_is_caught_by_the_next_checkpoint() {
        let k = key();
        let events = trail(&k, 10);
        let mut forged = Vec::new();
        let mut heads = Heads::default();
        for (i, e) in events.iter().enumerate() {
            let mut e = e.clone();
            // A national-only event: BG01's checkpoint still agrees.
            if i == 7 {
                e.user_id = Some("someone-else".into());
            }
            heads.append(&mut e).expect("linked");
            forged.push(e);
        }
        let broken = verify(&forged, &jwks(&k)).broken.expect("broken");
        let first_checkpoint_after_edit = events[8..]
            .iter()
            .find(|e| e.kind == AuditKind::AuditCheckpoint && e.municipality.is_none())
            .expect("national checkpoint");
        assert_eq!(broken.id, first_checkpoint_after_edit.id);
        assert!(broken.reason.contains("signed head"), "{broken}");
    }

    /// A fabricated event, linked consistently to a made-up past, in place
    /// of a real one: its own hash holds, its `prev` does not.
    #[test]
    fn a_substituted_event_is_named_by_its_prev() {
        let k = key();
        let mut events = trail(&k, 10);
        let n = events[6].chain.as_ref().expect("chain").national.n;
        let mut forged = Event::new(AuditKind::LoginStarted, 1_004)
            .user("u-forged")
            .into_inner();
        let made_up = Head {
            n: n - 1,
            hash: [9; 32],
            anchored: false,
        };
        super::super::chain::link_event(&mut forged, &made_up, None).expect("linked");
        forged.id = events[6].id.clone();
        events[6] = forged;
        let broken = verify(&events, &jwks(&k)).broken.expect("broken");
        assert_eq!(broken.id, "e7");
        assert!(broken.reason.contains("prev is not"), "{broken}");
    }

    /// An event removed and the next one re-linked around the hole (its
    /// `n` kept): the gap in `n` names it, before any checkpoint.
    #[test]
    fn a_hole_re_linked_around_is_named_by_its_n() {
        let k = key();
        let mut events = trail(&k, 10);
        let before = events[5].chain.as_ref().expect("chain").national.clone();
        events.remove(6);
        let mut next = events[6].clone();
        let n = next.chain.as_ref().expect("chain").national.n;
        let head = Head {
            n: n - 1,
            hash: parse_digest(&before.hash).expect("hash"),
            anchored: false,
        };
        super::super::chain::link_event(&mut next, &head, None).expect("linked");
        events[6] = next;
        let broken = verify(&events, &jwks(&k)).broken.expect("broken");
        assert_eq!(broken.id, "e8");
        assert!(broken.reason.contains("expected n="), "{broken}");
    }

    fn relink(events: &mut [AuditEvent]) {
        let mut heads = Heads::default();
        for e in events {
            heads.append(e).expect("linked");
        }
    }

    /// The last events cut and the checkpoint after them re-linked onto
    /// what is left: it signs links that are no longer there.
    #[test]
    fn a_cut_before_a_checkpoint_is_named_by_the_checkpoint() {
        let k = key();
        let mut events = trail(&k, 10);
        let last = events.pop().expect("national checkpoint");
        events.truncate(events.len() - 3);
        events.push(last.clone());
        relink(&mut events);
        let broken = verify(&events, &jwks(&k)).broken.expect("broken");
        assert_eq!(broken.id, last.id);
        assert!(broken.reason.contains("beyond"), "{broken}");
    }

    #[test]
    fn a_checkpoint_moved_to_another_chain_is_refused() {
        let k = key();
        let mut events = trail(&k, 6);
        let cp = events
            .iter()
            .position(|e| e.kind == AuditKind::AuditCheckpoint && e.municipality.is_some())
            .expect("a municipal checkpoint");
        events[cp].municipality = None;
        relink(&mut events);
        let broken = verify(&events, &jwks(&k)).broken.expect("broken");
        assert_eq!(broken.id, events[cp].id);
        assert!(
            broken.reason.contains("filed under another chain"),
            "{broken}"
        );
    }

    #[test]
    fn a_checkpoint_signed_by_another_key_or_altered_is_refused() {
        let k = key();
        let events = trail(&k, 6);
        let other = key();
        let broken = verify(&events, &jwks(&other)).broken.expect("broken");
        assert!(broken.reason.contains("not in the audit JWKS"), "{broken}");
        // A checkpoint re-signed by an impostor with the right kid.
        let mut forged = events.clone();
        let cp = forged
            .iter()
            .position(|e| e.kind == AuditKind::AuditCheckpoint)
            .expect("cp");
        let jws = forged[cp].detail["jws"].as_str().expect("jws").to_owned();
        let mut parts: Vec<&str> = jws.split('.').collect();
        let other_jws = checkpoint_event(&other, "x", &ChainName::National, &Head::default(), 0)
            .expect("signed");
        let other_sig = other_jws.detail["jws"]
            .as_str()
            .expect("jws")
            .rsplit('.')
            .next()
            .expect("sig")
            .to_owned();
        parts[2] = &other_sig;
        forged[cp]
            .detail
            .insert("jws".into(), parts.join(".").into());
        // Re-linked by the impostor, so only the signature can tell.
        let mut heads = Heads::default();
        for e in &mut forged {
            heads.append(e).expect("linked");
        }
        let broken = verify(&forged, &jwks(&k)).broken.expect("broken");
        assert!(broken.reason.contains("signature"), "{broken}");
    }

    #[test]
    fn a_trail_starting_mid_chain_verifies_and_events_without_links_only_lead() {
        let k = key();
        let events = trail(&k, 10);
        // Retention dropped the first five.
        assert_eq!(verify(&events[5..], &jwks(&k)).broken, None);
        // Events from before the chain lead; after it began, one is a break.
        let mut old = Event::new(AuditKind::LoginStarted, 1).into_inner();
        old.id = "old".into();
        let mut with_old = vec![old.clone()];
        with_old.extend(events.iter().cloned());
        let report = verify(&with_old, &jwks(&k));
        assert_eq!((report.broken, report.unchained), (None, 1));
        let mut late = events.clone();
        late.insert(3, old);
        assert_eq!(verify(&late, &jwks(&k)).broken.expect("broken").id, "old");
    }

    #[test]
    fn a_municipal_export_needs_its_own_chain_whole_but_not_the_national() {
        let k = key();
        let events = trail(&k, 10);
        let bg: Vec<_> = events
            .iter()
            .filter(|e| e.municipality.as_deref() == Some("BG01"))
            .cloned()
            .collect();
        let mut v = Verifier::new(Scope::Municipality("BG01".into()), &jwks(&k));
        assert!(bg.iter().all(|e| v.push(e)));
        let report = v.finish();
        assert_eq!((report.broken, report.checkpoints), (None, 2));
        let mut gap = bg.clone();
        gap.remove(1);
        let mut v = Verifier::new(Scope::Municipality("BG01".into()), &jwks(&k));
        gap.iter().all(|e| v.push(e));
        assert_eq!(
            v.finish().broken.expect("broken").chain,
            "municipality:BG01"
        );
    }
}
