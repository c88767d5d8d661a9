//! Time and randomness as injected dependencies, so that expiry and every
//! random choice can be driven by tests without sleeping.

use std::future::Future;
use std::pin::Pin;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::error::{Error, Result};

/// A future that resolves when a clock reaches a time.
pub type Alarm<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// The current time in Unix seconds.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> i64;
    /// Now in milliseconds, for latencies measured across instances.
    fn now_ms(&self) -> i64 {
        self.now().saturating_mul(1000)
    }
    /// Resolves once [`Clock::now`] is at least `t`.
    fn sleep_until(&self, t: i64) -> Alarm<'_>;
    /// Resolves after `d` on this clock (whole seconds, rounded up, on a
    /// clock that only counts seconds).
    fn sleep(&self, d: std::time::Duration) -> Alarm<'_> {
        let secs = i64::try_from(d.as_secs() + u64::from(d.subsec_nanos() > 0)).unwrap_or(i64::MAX);
        self.sleep_until(self.now().saturating_add(secs))
    }
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }

    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    fn sleep_until(&self, t: i64) -> Alarm<'_> {
        let target = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64);
        let wait = target
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        Box::pin(tokio::time::sleep(wait))
    }

    fn sleep(&self, d: std::time::Duration) -> Alarm<'_> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// A clock tests set by hand; moving it wakes whoever sleeps on it.
#[derive(Debug)]
pub struct ManualClock(tokio::sync::watch::Sender<i64>);

impl ManualClock {
    /// A clock showing `now`.
    pub fn new(now: i64) -> Self {
        Self(tokio::sync::watch::Sender::new(now))
    }
    /// Move the clock forward by `secs`.
    pub fn advance(&self, secs: i64) {
        self.0.send_modify(|t| *t += secs);
    }
    /// How many sleepers wait on this clock right now (a test waits for
    /// the code under test to be asleep before it moves the clock).
    pub fn sleepers(&self) -> usize {
        self.0.receiver_count()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        *self.0.borrow()
    }

    fn sleep_until(&self, t: i64) -> Alarm<'_> {
        let mut time = self.0.subscribe();
        Box::pin(async move {
            // The sender lives as long as `self`, which outlives this future.
            let _ = time.wait_for(|now| *now >= t).await;
        })
    }
}

/// A source of cryptographically secure random bytes.
pub trait Random: Send + Sync {
    /// Fill `buf`.
    fn fill(&self, buf: &mut [u8]) -> Result<()>;
}

/// The operating system's CSPRNG (through aws-lc-rs).
#[derive(Debug, Default)]
pub struct SystemRandom(aws_lc_rs::rand::SystemRandom);

impl Random for SystemRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<()> {
        use aws_lc_rs::rand::SecureRandom;
        self.0
            .fill(buf)
            .map_err(|_| Error::Crypto("random source failed".into()))
    }
}

/// A deterministic stream: SHA-256 of a seed and a block counter. Two
/// runs with one seed make the same random choices, so a test can replay
/// a run (the login number, ids, codes) byte for byte. Never for production:
/// the seed is the whole secret.
pub struct SeededRandom {
    seed: [u8; 32],
    stream: std::sync::Mutex<(u64, Vec<u8>)>,
}

impl SeededRandom {
    /// The stream of `seed`.
    pub fn new(seed: [u8; 32]) -> Self {
        Self {
            seed,
            stream: std::sync::Mutex::new((0, Vec::new())),
        }
    }
}

impl std::fmt::Debug for SeededRandom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SeededRandom(***)")
    }
}

impl Random for SeededRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<()> {
        let mut guard = self
            .stream
            .lock()
            .map_err(|_| Error::Internal("random stream poisoned".into()))?;
        let (counter, pending) = &mut *guard;
        while pending.len() < buf.len() {
            let mut block = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
            block.update(&self.seed);
            block.update(&counter.to_be_bytes());
            pending.extend_from_slice(block.finish().as_ref());
            *counter += 1;
        }
        buf.copy_from_slice(&pending[..buf.len()]);
        pending.drain(..buf.len());
        Ok(())
    }
}

/// `N` random bytes.
pub fn bytes<const N: usize>(rng: &dyn Random) -> Result<[u8; N]> {
    let mut b = [0u8; N];
    rng.fill(&mut b)?;
    Ok(b)
}

/// `N` random bytes, base64url.
pub fn token<const N: usize>(rng: &dyn Random) -> Result<String> {
    Ok(URL_SAFE_NO_PAD.encode(bytes::<N>(rng)?))
}

/// A uniform integer in `0..n` (rejection sampling, no modulo bias).
pub fn below(rng: &dyn Random, n: u32) -> Result<u32> {
    debug_assert!(n > 0);
    let zone = u32::MAX - (u32::MAX % n);
    loop {
        let v = u32::from_le_bytes(bytes::<4>(rng)?);
        if v < zone {
            return Ok(v % n);
        }
    }
}

/// `len` characters drawn uniformly from `alphabet`.
pub fn string(rng: &dyn Random, alphabet: &[u8], len: usize) -> Result<String> {
    (0..len)
        .map(|_| below(rng, alphabet.len() as u32).map(|i| alphabet[i as usize] as char))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Replays a fixed byte sequence: known-answer tests of random choices.
    pub(crate) struct Replay(pub Mutex<Vec<u8>>);

    impl Random for Replay {
        fn fill(&self, buf: &mut [u8]) -> Result<()> {
            let mut src = self
                .0
                .lock()
                .map_err(|_| Error::Internal("poisoned".into()))?;
            if src.len() < buf.len() {
                return Err(Error::Crypto("replay exhausted".into()));
            }
            buf.copy_from_slice(&src[..buf.len()]);
            src.drain(..buf.len());
            Ok(())
        }
    }

    #[test]
    fn below_rejects_the_biased_zone() {
        // 0xFFFF_FFFF lies in the rejected zone for n = 10; 7 is then accepted.
        let r = Replay(Mutex::new([[0xff; 4], 7u32.to_le_bytes()].concat()));
        assert_eq!(below(&r, 10).expect("value"), 7);
    }

    #[test]
    fn string_uses_only_the_alphabet() {
        let s = string(&SystemRandom::default(), b"AB", 64).expect("random");
        assert_eq!(s.len(), 64);
        assert!(s.bytes().all(|c| c == b'A' || c == b'B'));
        assert!(s.contains('A') && s.contains('B'));
    }

    #[test]
    fn manual_clock_advances() {
        let c = ManualClock::new(100);
        c.advance(61);
        assert_eq!(c.now(), 161);
    }

    #[tokio::test]
    async fn manual_clock_wakes_sleepers_when_moved_past_their_time() {
        let c = std::sync::Arc::new(ManualClock::new(100));
        let sleeper = {
            let c = std::sync::Arc::clone(&c);
            tokio::spawn(async move { c.sleep_until(160).await })
        };
        c.advance(59);
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "159 is before 160");
        c.advance(1);
        tokio::time::timeout(std::time::Duration::from_secs(10), sleeper)
            .await
            .expect("woken at 160")
            .expect("no panic");
        // A time already passed resolves at once.
        tokio::time::timeout(std::time::Duration::from_secs(10), c.sleep_until(50))
            .await
            .expect("immediate");
    }
}
