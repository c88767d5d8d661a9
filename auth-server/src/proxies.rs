//! Who the client is: the TCP peer, or, when the peer is a trusted proxy,
//! the nearest untrusted address in `X-Forwarded-For`. Every per-address
//! limit and the audit trail depend on it, so a deployment that forgets to
//! name its proxy turns every per-address limit into a global one (security
//! round 2, finding 1): [`Proxies::observe`] notices and warns.

use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use ipnet::IpNet;

use crate::error::{Error, Result};

/// Requests looked at before deciding that every one came from one address.
const LONE_PEER_REQUESTS: u32 = 50;

/// The configured trusted proxies, and a watch for a proxy nobody named.
#[derive(Debug)]
pub struct Proxies {
    nets: Vec<IpNet>,
    watch: Watch,
}

/// What [`Proxies::observe`] warned about (each at most once per process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warning {
    /// An untrusted peer sent `X-Forwarded-For`: a proxy not in `trusted_proxies`.
    UntrustedForwarder(IpAddr),
    /// The first requests all came from one private address: a proxy whose
    /// address every client now shares.
    LonePrivatePeer(IpAddr),
}

#[derive(Debug, Default)]
struct Watch {
    done: AtomicBool,
    warned_forwarder: AtomicBool,
    state: Mutex<(Option<IpAddr>, u32)>,
}

impl Proxies {
    /// From `trusted_proxies` entries: addresses or CIDR ranges.
    pub fn parse(entries: &[String]) -> Result<Self> {
        let nets = entries
            .iter()
            .map(|e| parse_net(e.trim()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                Error::Config(
                    "trusted_proxies must be IP addresses or CIDR ranges (10.0.0.0/8, fd00::/8)"
                        .into(),
                )
            })?;
        Ok(Self {
            nets,
            watch: Watch::default(),
        })
    }

    /// From entries [`Proxies::parse`] already accepted (a configuration
    /// that was loaded); anything unparsable is left out.
    pub fn checked(entries: &[String]) -> Self {
        Self {
            nets: entries.iter().filter_map(|e| parse_net(e.trim())).collect(),
            watch: Watch::default(),
        }
    }

    /// Whether `ip` is a configured proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client address of a request from `peer` with these
    /// `X-Forwarded-For` values (right to left, skipping trusted hops).
    pub fn client_ip<'a>(&self, peer: IpAddr, forwarded: impl Iterator<Item = &'a str>) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) if self.trusts(ip) => continue,
                Ok(ip) => return ip,
                Err(_) => return peer,
            }
        }
        peer
    }

    /// Look at a request while no proxy is configured: warn (once) when an
    /// untrusted peer forwards, or when the first requests all come from one
    /// private address. Returns the warning given now, if any.
    pub fn observe(&self, peer: IpAddr, has_forwarded: bool) -> Option<Warning> {
        if !self.nets.is_empty() {
            return None;
        }
        if has_forwarded && !self.watch.warned_forwarder.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                %peer,
                "requests carry X-Forwarded-For from a peer not in trusted_proxies: every client \
                 behind it shares its address, so per-address limits and the audit trail see one \
                 client; set POTVRDA_TRUSTED_PROXIES to the proxy's address"
            );
            return Some(Warning::UntrustedForwarder(peer));
        }
        if self.watch.done.load(Ordering::Relaxed) {
            return None;
        }
        let Ok(mut state) = self.watch.state.lock() else {
            return None;
        };
        match state.0 {
            None => *state = (Some(peer), 1),
            Some(first) if first == peer => state.1 += 1,
            Some(_) => {
                self.watch.done.store(true, Ordering::Relaxed);
                return None;
            }
        }
        if state.1 < LONE_PEER_REQUESTS {
            return None;
        }
        self.watch.done.store(true, Ordering::Relaxed);
        if !is_private(peer) {
            return None;
        }
        tracing::warn!(
            %peer,
            requests = state.1,
            "every request so far came from one private address and no trusted_proxies are \
             configured: if a proxy or load balancer stands in front, all clients share its \
             address and one client's failures limit everyone; set POTVRDA_TRUSTED_PROXIES"
        );
        Some(Warning::LonePrivatePeer(peer))
    }
}

fn parse_net(entry: &str) -> Option<IpNet> {
    entry
        .parse::<IpNet>()
        .ok()
        .or_else(|| entry.parse::<IpAddr>().ok().map(IpNet::from))
}

/// A private-network address (RFC 1918, RFC 4193, link-local): where a
/// proxy in front of the server usually is.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn addresses_and_ranges_are_trusted_and_garbage_is_refused() {
        let p = Proxies::parse(&[
            "10.1.2.3".into(),
            " 172.30.0.0/24".into(),
            "fd00::/8".into(),
        ])
        .expect("parses");
        assert!(p.trusts(ip("10.1.2.3")) && !p.trusts(ip("10.1.2.4")));
        assert!(p.trusts(ip("172.30.0.200")) && !p.trusts(ip("172.30.1.1")));
        assert!(p.trusts(ip("fd12::1")));
        for bad in ["nginx", "10.0.0.0/33", "10.0.0.1/8/1", ""] {
            let err = Proxies::parse(&[bad.into()]).expect_err(bad);
            assert!(err.to_string().contains("CIDR"), "{err}");
        }
    }

    #[test]
    fn forwarded_addresses_count_only_through_trusted_hops() {
        let p = Proxies::parse(&["172.30.0.10".into(), "10.0.0.0/8".into()]).expect("parses");
        let xff = |v: &'static str| std::iter::once(v);
        // The proxy names the client.
        assert_eq!(
            p.client_ip(ip("172.30.0.10"), xff("203.0.113.7")),
            ip("203.0.113.7")
        );
        // A client's own spoofed entry stands left of the one the proxy added.
        assert_eq!(
            p.client_ip(ip("172.30.0.10"), xff("198.51.100.1, 203.0.113.7")),
            ip("203.0.113.7")
        );
        // Trusted hops are skipped right to left.
        assert_eq!(
            p.client_ip(ip("172.30.0.10"), xff("203.0.113.7, 10.2.3.4")),
            ip("203.0.113.7")
        );
        // An untrusted peer's header is ignored; garbage falls back to the peer.
        assert_eq!(
            p.client_ip(ip("198.51.100.9"), xff("203.0.113.7")),
            ip("198.51.100.9")
        );
        assert_eq!(
            p.client_ip(ip("172.30.0.10"), xff("junk")),
            ip("172.30.0.10")
        );
        assert_eq!(
            p.client_ip(ip("172.30.0.10"), std::iter::empty()),
            ip("172.30.0.10")
        );
    }

    #[test]
    fn a_proxy_nobody_named_is_warned_about_once() {
        // Every request from one private address: the deployment of finding 1.
        let p = Proxies::parse(&[]).expect("empty");
        let proxy = ip("172.18.0.5");
        let warnings: Vec<_> = (0..200).filter_map(|_| p.observe(proxy, false)).collect();
        assert_eq!(warnings, vec![Warning::LonePrivatePeer(proxy)]);
        // A forwarding header from an untrusted peer: once.
        let p = Proxies::parse(&[]).expect("empty");
        assert_eq!(
            p.observe(proxy, true),
            Some(Warning::UntrustedForwarder(proxy))
        );
        assert_eq!(p.observe(proxy, true), None);
        // Many clients, or one public or loopback client: no warning.
        let p = Proxies::parse(&[]).expect("empty");
        for i in 0..200u8 {
            assert_eq!(p.observe(IpAddr::from([10, 0, 0, i]), false), None);
        }
        for lone in ["203.0.113.7", "127.0.0.1", "::1"] {
            let p = Proxies::parse(&[]).expect("empty");
            assert!(
                (0..200).all(|_| p.observe(ip(lone), false).is_none()),
                "{lone}"
            );
        }
        // With a proxy configured, nothing to warn about.
        let p = Proxies::parse(&["172.18.0.5".into()]).expect("parses");
        assert!((0..200).all(|_| p.observe(proxy, true).is_none()));
    }
}
