//! Limits both sides agree on.

/// Largest accepted JSON request body, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Longest a status request may hold (`?wait=N`), in seconds.
pub const MAX_WAIT_SECS: u64 = 30;
/// How old a pull token may be, in seconds.
pub const PULL_TOKEN_MAX_AGE_SECS: i64 = 60;
/// How far in the future an `iat` may lie (clock skew between phone and server), in seconds.
pub const MAX_CLOCK_SKEW_SECS: i64 = 30;
/// How old an enrollment proof may be, in seconds.
pub const ENROLLMENT_PROOF_MAX_AGE_SECS: i64 = 300;
/// Longest username, in bytes.
pub const MAX_USERNAME_LEN: usize = 64;
/// Longest display name, device name or platform string, in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// Longest password, in bytes (Argon2 input is bounded to keep hashing cost fixed).
pub const MAX_PASSWORD_LEN: usize = 256;
/// Longest push endpoint URL, in bytes.
pub const MAX_PUSH_ENDPOINT_LEN: usize = 1024;
/// Longest login context string (`ip`, `user_agent`, `service`), in bytes.
pub const MAX_CONTEXT_FIELD_LEN: usize = 256;
/// Smallest number shown on the login screen.
pub const NUMBER_MIN: u8 = 10;
/// Largest number shown on the login screen (two digits).
pub const NUMBER_MAX: u8 = 99;
/// Characters of activation and recovery codes (upper case, no 0/O, 1/I).
pub const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// Activation code length without dashes: 12 × 5 bits = 60 bits.
pub const ACTIVATION_CODE_LEN: usize = 12;
/// Characters of a recovery code (10 × 5 bits = 50 bits).
pub const RECOVERY_CODE_LEN: usize = 10;

/// The canonical form of a typed code of `len` characters from
/// [`CODE_ALPHABET`] (activation and recovery codes): upper case, without
/// the dashes and spaces people type or the sheet prints. The one
/// normaliser the server and the phone share.
pub fn normalize_code(typed: &str, len: usize) -> Option<String> {
    let norm: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (norm.len() == len && norm.bytes().all(|b| CODE_ALPHABET.contains(&b))).then_some(norm)
}

/// Digits of a risky login's code, typed on the phone instead of the number.
pub const VERIFIED_CODE_DIGITS: u8 = 6;
