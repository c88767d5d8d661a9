//! User verification: the citizen confirms with biometrics or a PIN before
//! the core signs an approval or a fraud report ([`crate::protocol::approval`]
//! takes a [`UserVerifier`] and signs nothing when it says no). A denial
//! needs no verification: refusing is always safe.
//!
//! Platforms with biometrics implement [`UserVerifier`] over
//! `BiometricPrompt` (Android, with the key's user-authentication
//! requirement) or `LAContext` (iOS). Platforms without use
//! [`PinVerifier`]: a six-digit PIN, as citizens know from existing
//! eGovernment apps, kept as an Argon2id hash, with five wrong attempts in a
//! row locking it (the device must then be enrolled again at the counter).
//! The attempt is counted *before* the PIN is checked and saved through the
//! app's [`PinStore`], so killing the app mid-check does not reset the count.

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Argon2, PasswordHash};
use rand_core::OsRng;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Wrong PINs in a row before the PIN locks.
pub const PIN_ATTEMPTS: u32 = 5;
/// Digits of a PIN.
pub const PIN_DIGITS: usize = 6;

/// The app's check that the citizen is present.
pub trait UserVerifier: Send + Sync {
    /// Ask the citizen to confirm, showing `reason`; `Ok(true)` only when
    /// they just did. A cancelled prompt is `Ok(false)`.
    fn verify(&self, reason: &str) -> Result<bool>;
    /// How it confirms, reported in the approval (protocol 3); `None` for
    /// a verifier that cannot say (the virtual phone).
    fn method(&self) -> Option<potvrda_proto::jose::Verification> {
        None
    }
}

/// Asks the citizen for their PIN (the app's PIN pad).
pub trait PinPrompt: Send + Sync {
    /// The PIN typed, or `None` if the citizen cancelled; `attempts_left`
    /// is shown on the pad.
    fn ask_pin(&self, reason: &str, attempts_left: u32) -> Option<String>;
}

/// Where the app keeps the PIN's state (its encrypted preferences).
pub trait PinStore: Send + Sync {
    /// The state saved last, if a PIN was set.
    fn load(&self) -> Result<Option<PinState>>;
    /// Save the state (before the PIN is checked, and after).
    fn save(&self, state: &PinState) -> Result<()>;
}

/// A PIN at rest: its Argon2id hash and the wrong attempts in a row.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinState {
    hash: String,
    failures: u32,
}

impl std::fmt::Debug for PinState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinState")
            .field("hash", &"***")
            .field("failures", &self.failures)
            .finish()
    }
}

impl PinState {
    /// Wrong attempts in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// [`UserVerifier`] with a six-digit PIN.
pub struct PinVerifier {
    prompt: Arc<dyn PinPrompt>,
    store: Arc<dyn PinStore>,
}

impl std::fmt::Debug for PinVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PinVerifier")
    }
}

fn check_pin(pin: &str) -> Result<()> {
    if pin.len() == PIN_DIGITS && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(Error::InvalidPin("the PIN is six digits"))
    }
}

impl PinVerifier {
    /// A verifier asking through `prompt`, keeping state in `store`.
    pub fn new(prompt: Arc<dyn PinPrompt>, store: Arc<dyn PinStore>) -> Self {
        Self { prompt, store }
    }

    /// Set (or replace) the PIN: six digits, not all the same, not a run.
    pub fn set_pin(store: &dyn PinStore, pin: &str) -> Result<()> {
        check_pin(pin)?;
        let b = pin.as_bytes();
        let same = b.iter().all(|d| *d == b[0]);
        let run = b.windows(2).all(|w| w[1] == w[0] + 1) || b.windows(2).all(|w| w[0] == w[1] + 1);
        if same || run {
            return Err(Error::InvalidPin(
                "choose a PIN that is not a simple sequence",
            ));
        }
        let salt = SaltString::generate(&mut OsRng);
        let hash = Argon2::default()
            .hash_password(pin.as_bytes(), &salt)
            .map_err(|_| Error::InvalidPin("the PIN could not be hashed"))?
            .to_string();
        store.save(&PinState { hash, failures: 0 })
    }
}

impl UserVerifier for PinVerifier {
    fn method(&self) -> Option<potvrda_proto::jose::Verification> {
        Some(potvrda_proto::jose::Verification::CorePin)
    }

    fn verify(&self, reason: &str) -> Result<bool> {
        let mut state = self.store.load()?.ok_or(Error::PinNotSet)?;
        if state.failures >= PIN_ATTEMPTS {
            return Err(Error::PinLocked);
        }
        let Some(pin) = self.prompt.ask_pin(reason, PIN_ATTEMPTS - state.failures) else {
            return Ok(false);
        };
        // Count first: an app killed during the check has spent the attempt.
        state.failures += 1;
        self.store.save(&state)?;
        let ok = check_pin(&pin).is_ok()
            && PasswordHash::new(&state.hash)
                .map(|h| {
                    Argon2::default()
                        .verify_password(pin.as_bytes(), &h)
                        .is_ok()
                })
                .unwrap_or(false);
        if ok {
            state.failures = 0;
            self.store.save(&state)?;
        } else if state.failures >= PIN_ATTEMPTS {
            return Err(Error::PinLocked);
        }
        Ok(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Memory(Mutex<Option<PinState>>);

    impl PinStore for Memory {
        fn load(&self) -> Result<Option<PinState>> {
            Ok(self.0.lock().map_err(|_| Error::PinNotSet)?.clone())
        }
        fn save(&self, state: &PinState) -> Result<()> {
            *self.0.lock().map_err(|_| Error::PinNotSet)? = Some(state.clone());
            Ok(())
        }
    }

    /// Types the PINs given, in order; then cancels.
    struct Typist(Mutex<Vec<&'static str>>);

    impl PinPrompt for Typist {
        fn ask_pin(&self, _reason: &str, _left: u32) -> Option<String> {
            let mut pins = self.0.lock().ok()?;
            (!pins.is_empty()).then(|| pins.remove(0).to_owned())
        }
    }

    fn verifier(store: &Arc<Memory>, pins: Vec<&'static str>) -> PinVerifier {
        PinVerifier::new(Arc::new(Typist(Mutex::new(pins))), store.clone())
    }

    #[test]
    fn weak_or_malformed_pins_are_refused() {
        let store = Memory::default();
        for pin in ["12345", "1234567", "12a456", "111111", "123456", "987654"] {
            assert!(PinVerifier::set_pin(&store, pin).is_err(), "{pin}");
        }
        assert!(store.load().expect("load").is_none());
        PinVerifier::set_pin(&store, "274901").expect("a good PIN");
    }

    #[test]
    fn the_right_pin_verifies_and_clears_the_count() {
        let store = Arc::new(Memory::default());
        PinVerifier::set_pin(store.as_ref(), "274901").expect("set");
        let v = verifier(&store, vec!["000000", "274901"]);
        assert!(!v.verify("approve").expect("wrong"));
        assert_eq!(store.load().expect("load").expect("state").failures(), 1);
        assert!(v.verify("approve").expect("right"));
        assert_eq!(store.load().expect("load").expect("state").failures(), 0);
        // Cancelled: not verified, nothing counted.
        assert!(!v.verify("approve").expect("cancel"));
        assert_eq!(store.load().expect("load").expect("state").failures(), 0);
    }

    #[test]
    fn five_wrong_pins_lock_even_the_right_one() {
        let store = Arc::new(Memory::default());
        PinVerifier::set_pin(store.as_ref(), "274901").expect("set");
        let v = verifier(
            &store,
            vec!["000001", "000002", "000003", "000004", "000005", "274901"],
        );
        for _ in 0..4 {
            assert!(!v.verify("approve").expect("wrong"));
        }
        assert!(matches!(v.verify("approve"), Err(Error::PinLocked)));
        assert!(
            matches!(v.verify("approve"), Err(Error::PinLocked)),
            "the right PIN too"
        );
        // A restarted app reads the count back.
        let again = verifier(&store, vec!["274901"]);
        assert!(matches!(again.verify("approve"), Err(Error::PinLocked)));
    }

    #[test]
    fn no_pin_set_is_an_error_not_a_pass() {
        let store = Arc::new(Memory::default());
        assert!(matches!(
            verifier(&store, vec!["274901"]).verify("x"),
            Err(Error::PinNotSet)
        ));
    }
}
