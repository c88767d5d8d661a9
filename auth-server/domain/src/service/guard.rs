//! The password guard: failed passwords (and wrong codes) counted so that a
//! guesser is slowed and stopped, but nobody can lock a citizen out (security
//! round 2, finding 3).
//!
//! - Failures are counted per username *and address*: after
//!   `password_delay_after` each attempt from that address waits (1 s
//!   doubling to 8 s); after `password_lock_after` that address is locked for
//!   the username (answered like a wrong password) until its failures age out
//!   of the window. Another address — the citizen's — is not affected.
//! - Failures from all addresses together lock the username after
//!   `password_lock_after_all`, for every address the citizen has not logged
//!   in from: an address where the citizen's phone approved a login (a
//!   *known address*, remembered for
//!   [`KNOWN_ADDRESS_DAYS`](super::profile::KNOWN_ADDRESS_DAYS)) passes. This is
//!   the bypass through an approved device; a distributed guesser cannot use
//!   it without the phone.
//! - Attempts while locked are not counted, so a trickle of guesses cannot
//!   keep a lock alive: it ends one window after it began.
//! - A lock is an alert: `password_locked` in the audit trail (with the
//!   scope) and `potvrda_password_locks_total{scope}`.

use crate::store::UserId;
use std::net::IpAddr;
use std::time::Duration;

use potvrda_proto::api::AuditKind;

use super::sha256_b64;
use crate::audit::{Caller, Event};
use crate::error::Result;
use crate::settings::secs;
use crate::store::RateKey;

/// What the guard says before a password (or code) is checked.
#[derive(Debug, Clone)]
pub(super) struct Gate {
    /// The username's hash.
    name: String,
    /// The address, `none` when unknown.
    address: String,
    /// Locked, and for which scope: the attempt is refused like a wrong one.
    pub(super) locked: Option<&'static str>,
    /// How long to wait before checking.
    pub(super) delay: Duration,
    /// The failures from this address the gate counted.
    from_here: u32,
}

fn username_hash(username: &str) -> String {
    sha256_b64(username.as_bytes())[..22].to_owned()
}

impl Gate {
    fn address_key(&self) -> RateKey<'_> {
        RateKey::PasswordAt {
            username: &self.name,
            address: &self.address,
        }
    }

    fn username_key(&self) -> RateKey<'_> {
        RateKey::PasswordAnywhere(&self.name)
    }
}

capability! {
    /// Guards of the login: fatigue and lock-outs.
    pub(crate) Guards
}

impl Guards<'_> {
    /// Look (without counting) at the failures for `username` from `ip`.
    pub(super) async fn password_gate(
        &self,
        username: &str,
        user_id: Option<&UserId>,
        ip: Option<IpAddr>,
        now: i64,
    ) -> Result<Gate> {
        let window = secs(self.settings.limits.rate_window);
        let name = username_hash(username);
        let address = ip.map_or_else(|| "none".to_owned(), |ip| ip.to_string());
        let gate = Gate {
            name,
            address,
            locked: None,
            delay: Duration::ZERO,
            from_here: 0,
        };
        let (from_here, _) = self
            .store
            .rate_count(&gate.address_key(), now, window)
            .await?;
        let (everywhere, _) = self
            .store
            .rate_count(&gate.username_key(), now, window)
            .await?;
        let locked = if from_here >= self.settings.limits.password_lock_after {
            Some("address")
        } else if everywhere >= self.settings.limits.password_lock_after_all
            && !self.is_known_address(user_id, ip, now).await?
        {
            Some("username")
        } else {
            None
        };
        let delay_after = self.settings.limits.password_delay_after;
        let delay = if locked.is_none() && from_here >= delay_after {
            Duration::from_secs(1u64 << (from_here - delay_after).min(3))
        } else {
            Duration::ZERO
        };
        Ok(Gate {
            locked,
            delay,
            from_here,
            ..gate
        })
    }

    /// A failed attempt: counted (unless the gate was already locked), and
    /// the lock it starts is an alert.
    pub(super) async fn password_failed(
        &self,
        gate: &Gate,
        user_id: Option<&str>,
        caller: &Caller,
        now: i64,
    ) -> Result<()> {
        if gate.locked.is_some() {
            return Ok(());
        }
        let window = secs(self.settings.limits.rate_window);
        let (from_here, _) = self
            .store
            .rate_hit(&gate.address_key(), now, window)
            .await?;
        let (everywhere, _) = self
            .store
            .rate_hit(&gate.username_key(), now, window)
            .await?;
        for (scope, n, limit) in [
            (
                "address",
                from_here,
                self.settings.limits.password_lock_after,
            ),
            (
                "username",
                everywhere,
                self.settings.limits.password_lock_after_all,
            ),
        ] {
            if n == limit {
                self.metrics.password_locked(scope);
                tracing::warn!(
                    scope,
                    failures = n,
                    "username locked after failed passwords"
                );
                let mut event = Event::new(AuditKind::PasswordLocked, now)
                    .caller(caller)
                    .with("scope", scope)
                    .with("failures", n);
                if let Some(u) = user_id {
                    event = event.user(u);
                }
                self.audit.record(event).await;
            }
        }
        Ok(())
    }

    /// The right password: this address starts afresh. With no failure
    /// counted at the gate there is nothing to forget (one store command
    /// less per login); a failure racing in since stays counted, which errs
    /// on the guard's side.
    pub(super) async fn password_succeeded(&self, gate: &Gate) -> Result<()> {
        if gate.from_here == 0 {
            return Ok(());
        }
        self.store.rate_reset(&gate.address_key()).await
    }

    /// Whether the citizen's phone approved a login from `ip` lately.
    pub(super) async fn is_known_address(
        &self,
        user_id: Option<&UserId>,
        ip: Option<IpAddr>,
        now: i64,
    ) -> Result<bool> {
        let Some(ip) = ip else {
            return Ok(false);
        };
        // An unknown username costs the same read as a known one.
        let nobody = UserId::new("-");
        let profile = self
            .profiles()
            .profile(user_id.unwrap_or(&nobody), now)
            .await?;
        Ok(user_id.is_some() && profile.knows(ip, now))
    }
}
