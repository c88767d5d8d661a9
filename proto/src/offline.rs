//! The offline code: when the phone has no network, the app shows a TOTP
//! (RFC 6238) that the login accepts instead of the push approval. Its
//! parameters are part of the contract both sides compile against: HMAC-
//! SHA-256, six digits, 30-second steps, a 32-byte secret agreed at
//! enrollment (the server generates it and returns it once in the
//! enrollment answer). The server accepts the step before and after the
//! current one (clock drift) and each step's code once.

use totp_rs::{Algorithm, TOTP};

/// Digits of a code.
pub const DIGITS: usize = 6;
/// Seconds per step.
pub const STEP: u64 = 30;
/// Bytes of the shared secret.
pub const SECRET_LEN: usize = 32;

/// The code for `secret` at Unix time `time`.
pub fn code(secret: &[u8], time: u64) -> String {
    // `new_unchecked`: the parameters are the constants above, valid for
    // RFC 6238; a short secret from a corrupt store still yields a code
    // (that simply never matches the phone's), never a panic.
    TOTP::new_unchecked(Algorithm::SHA256, DIGITS, 0, STEP, secret.to_vec()).generate(time)
}

/// The step of Unix time `time`.
pub fn step(time: u64) -> u64 {
    time / STEP
}

/// Whether a typed string looks like an offline code (six digits, spaces allowed).
pub fn normalize(typed: &str) -> Option<String> {
    let digits: String = typed.chars().filter(|c| *c != ' ').collect();
    (digits.len() == DIGITS && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-256: the six-digit code is the last six of the eight.
    #[test]
    fn rfc_6238_sha256_vectors() {
        let seed = b"12345678901234567890123456789012";
        for (time, eight) in [
            (59, "46119246"),
            (1_111_111_109, "68084774"),
            (1_111_111_111, "67062674"),
            (1_234_567_890, "91819424"),
            (2_000_000_000, "90698825"),
            (20_000_000_000, "77737706"),
        ] {
            assert_eq!(code(seed, time), eight[2..], "T = {time}");
        }
    }

    #[test]
    fn codes_change_with_the_step_only() {
        let seed = [7u8; SECRET_LEN];
        assert_eq!(code(&seed, 60), code(&seed, 89));
        assert_ne!(code(&seed, 89), code(&seed, 90));
        assert_eq!(step(89), 2);
    }

    #[test]
    fn typed_codes() {
        assert_eq!(normalize("123 456").as_deref(), Some("123456"));
        assert_eq!(normalize("12345"), None);
        assert_eq!(normalize("ABCDE-FGHJK"), None);
    }
}
