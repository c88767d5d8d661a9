//! A secret on the wire: a password, an activation or recovery code. It is
//! serialised as the plain string (the wire is unchanged), printed as `***`
//! by `Debug` (a logged request leaks nothing), compared in constant time,
//! and its memory is zeroed when it is dropped.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// A secret string.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wrap `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it (a hash, a check).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Constant time in the length of the shorter operand (lengths may leak).
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for Secret {}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_the_plain_string_on_the_wire_and_never_printed() {
        let s = Secret::from("correct horse battery staple");
        assert_eq!(
            serde_json::to_string(&s).expect("json"),
            "\"correct horse battery staple\""
        );
        let back: Secret = serde_json::from_str("\"correct horse battery staple\"").expect("json");
        assert_eq!(back, s);
        assert_ne!(back, Secret::from("correct horse battery stapler"));
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(s.expose(), "correct horse battery staple");
    }
}
