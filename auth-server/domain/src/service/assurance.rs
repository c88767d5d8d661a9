//! What a login proved, as its tokens say it: `amr` (RFC 8176) from how the
//! citizen was authenticated and what the phone's answer proved, and the
//! level of assurance (`acr`) derived from them; and what a relying party
//! asks for (`acr_values`, an essential `acr` in `claims`). One place, for
//! the portal's access token, the ID token and the OpenID access token.
//!
//! The levels (docs/OIDC.md §6): every account is opened at a counter by an
//! official who checks an identity document, and every device is bound
//! there (the sheet's activation code) or approved from a device bound
//! there, so identity proofing is in person for every login. On that:
//! - `substantial` — two factors of different kinds (the password and the
//!   phone's key; or the phone's key and its PIN or biometric);
//! - `basic` — one factor (CIBA answered by a phone that names no
//!   confirmation besides the typed number);
//! - `high` — needs a hardware key whose attestation the server verified,
//!   which it does not yet: no login reaches it, and asking for it is
//!   `unmet_authentication_requirements`.

use potvrda_proto::oidc::{ACR_PWD_PUSH, LOA_BASIC, LOA_HIGH, LOA_SUBSTANTIAL};
use serde::{Deserialize, Serialize};

/// How a citizen was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Method {
    /// The password, then the phone's answer (the portal API, the OpenID
    /// pages, the counter).
    PasswordPush,
    /// CIBA: the phone's answer alone, asked for by the client.
    Ciba,
}

/// A level of assurance, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Level {
    /// *osnovni*, eIDAS low.
    Basic,
    /// *srednji*, eIDAS substantial.
    Substantial,
    /// *visoki*, eIDAS high.
    High,
}

impl Level {
    /// Every level, lowest first (discovery's `acr_values_supported`).
    pub(crate) const ALL: [Self; 3] = [Self::Basic, Self::Substantial, Self::High];

    /// Its `acr` value.
    pub(crate) fn acr(self) -> &'static str {
        match self {
            Self::Basic => LOA_BASIC,
            Self::Substantial => LOA_SUBSTANTIAL,
            Self::High => LOA_HIGH,
        }
    }

    /// From an `acr` value (protocol 2's one value is what it proved).
    fn parse(acr: &str) -> Option<Self> {
        match acr {
            LOA_BASIC => Some(Self::Basic),
            LOA_SUBSTANTIAL | ACR_PWD_PUSH => Some(Self::Substantial),
            LOA_HIGH => Some(Self::High),
            _ => None,
        }
    }
}

/// The kind of factor an `amr` value proves.
fn kind(amr: &str) -> Option<u8> {
    match amr {
        "pwd" | "pin" => Some(0),                 // something the citizen knows
        "hwk" | "swk" | "pop" | "otp" => Some(1), // something they have
        "fpt" | "face" => Some(2),                // something they are
        _ => None,
    }
}

impl Method {
    /// Records written before this field: the password and the push.
    pub(crate) fn of(method: Option<Self>) -> Self {
        method.unwrap_or(Self::PasswordPush)
    }

    /// The token's `amr`: `pwd` for a password login, what the answer
    /// `proven` (a login decided before protocol 3 proved `pop` and
    /// `user`), and `mfa` when factors of two kinds were proven.
    pub(crate) fn amr(self, proven: &[String]) -> Vec<String> {
        let mut amr: Vec<String> = Vec::new();
        if self == Self::PasswordPush {
            amr.push("pwd".into());
        }
        if proven.is_empty() {
            amr.extend(["pop", "user"].map(str::to_owned));
        } else {
            amr.extend(proven.iter().cloned());
        }
        if kinds(&amr) >= 2 {
            amr.push("mfa".into());
        }
        amr
    }

    /// The level such a login reached.
    pub(crate) fn level(self, proven: &[String]) -> Level {
        if kinds(&self.amr(proven)) >= 2 {
            Level::Substantial
        } else {
            Level::Basic
        }
    }

    /// The most a fresh login of this kind can reach: a password login is
    /// always two factors; CIBA reaches substantial when the phone
    /// confirms with a PIN or biometric. `high` needs a verified hardware
    /// key attestation, not yet offered.
    pub(crate) fn best(self) -> Level {
        Level::Substantial
    }
}

fn kinds(amr: &[String]) -> usize {
    let mut seen: Vec<u8> = amr.iter().filter_map(|a| kind(a)).collect();
    seen.sort_unstable();
    seen.dedup();
    seen.len()
}

/// What a relying party asks for: the lowest level it accepts, from
/// `acr_values` (acceptable values, in order of preference) and an `acr`
/// in the `claims` parameter (OIDC Core §5.5.1.1; with `essential`, a
/// request for it alone). `None`: any level. Values this provider does not
/// know are ignored while a known one remains; with none left, the
/// request cannot be met.
pub(crate) fn requested(
    acr_values: Option<&str>,
    claims: Option<&str>,
) -> Result<Option<Level>, &'static str> {
    Ok(acceptable(acr_values, claims)?.into_iter().min())
}

/// Every known level a request accepts (empty: it names none).
fn acceptable(acr_values: Option<&str>, claims: Option<&str>) -> Result<Vec<Level>, &'static str> {
    let mut asked: Vec<&str> = acr_values
        .unwrap_or_default()
        .split_ascii_whitespace()
        .collect();
    let parsed: Option<serde_json::Value> = match claims {
        None => None,
        Some(c) => Some(serde_json::from_str(c).map_err(|_| "claims is not a JSON object")?),
    };
    let acr = parsed
        .as_ref()
        .map(|c| &c["id_token"]["acr"])
        .filter(|a| !a.is_null());
    let essential = acr.is_some_and(|a| a["essential"] == true);
    let from_claims: Vec<&str> = acr
        .map(|a| {
            a["value"]
                .as_str()
                .into_iter()
                .chain(
                    a["values"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|v| v.as_str()),
                )
                .collect()
        })
        .unwrap_or_default();
    if essential && !from_claims.is_empty() {
        // An essential claim is the requirement; acr_values only a preference.
        asked = from_claims;
    } else if asked.is_empty() {
        asked = from_claims;
    }
    if asked.is_empty() {
        return Ok(Vec::new());
    }
    let known: Vec<Level> = asked.iter().filter_map(|v| Level::parse(v)).collect();
    if known.is_empty() {
        return Err("no acr asked for is one this provider knows");
    }
    Ok(known)
}

/// The lowest level a login for this client must reach: what the request
/// accepts among the levels the client is registered for
/// (`allowed_acr_values`; none registered: every level), else its
/// `default_acr_values`, else the lowest level it is registered for.
/// A request that accepts only levels the client may not ask for cannot
/// be met.
pub(crate) fn asked_or_default(
    acr_values: Option<&str>,
    claims: Option<&str>,
    client: &crate::service::OidcClient,
) -> Result<Option<Level>, &'static str> {
    let allowed = client.allowed_levels();
    let asked = acceptable(acr_values, claims)?;
    let within = asked
        .iter()
        .copied()
        .filter(|l| allowed.is_empty() || allowed.contains(l))
        .min();
    match within {
        Some(level) => Ok(Some(level)),
        None if !asked.is_empty() => Err("no acr asked for is one this client is registered for"),
        None => Ok(client
            .default_level()?
            .or_else(|| allowed.iter().min().copied())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Known answers for every kind of login the server makes.
    #[test]
    fn amr_and_level_say_what_was_proven() {
        let p = Method::PasswordPush;
        let cases: &[(Method, &[&str], &[&str], Level)] = &[
            (p, &[], &["pwd", "pop", "user", "mfa"], Level::Substantial),
            (
                p,
                &["hwk", "user", "fpt"],
                &["pwd", "hwk", "user", "fpt", "mfa"],
                Level::Substantial,
            ),
            (p, &["otp"], &["pwd", "otp", "mfa"], Level::Substantial),
            (Method::Ciba, &[], &["pop", "user"], Level::Basic),
            (
                Method::Ciba,
                &["swk", "user"],
                &["swk", "user"],
                Level::Basic,
            ),
            (
                Method::Ciba,
                &["swk", "user", "user"],
                &["swk", "user", "user"],
                Level::Basic,
            ),
            (
                Method::Ciba,
                &["hwk", "user", "pin"],
                &["hwk", "user", "pin", "mfa"],
                Level::Substantial,
            ),
            (
                Method::Ciba,
                &["swk", "user", "face"],
                &["swk", "user", "face", "mfa"],
                Level::Substantial,
            ),
        ];
        for (method, proven, amr, level) in cases {
            assert_eq!(method.amr(&v(proven)), v(amr), "{method:?} {proven:?}");
            assert_eq!(method.level(&v(proven)), *level, "{method:?} {proven:?}");
        }
        assert!(
            Level::ALL
                .iter()
                .all(|l| *l <= Method::Ciba.best() || *l == Level::High)
        );
    }

    #[test]
    fn what_a_relying_party_asks_for() {
        /// `acr_values`, `claims`, and the lowest level accepted (`Err`: unmet).
        type Case<'a> = (Option<&'a str>, Option<&'a str>, Result<Option<Level>, ()>);
        let cases: &[Case<'_>] = &[
            (None, None, Ok(None)),
            (Some(LOA_SUBSTANTIAL), None, Ok(Some(Level::Substantial))),
            (
                Some("urn:potvrda:loa:high urn:potvrda:loa:basic"),
                None,
                Ok(Some(Level::Basic)),
            ),
            (
                Some("urn:other urn:potvrda:loa:high"),
                None,
                Ok(Some(Level::High)),
            ),
            (Some("urn:other"), None, Err(())),
            (Some(ACR_PWD_PUSH), None, Ok(Some(Level::Substantial))),
            (
                None,
                Some(r#"{"id_token":{"acr":{"essential":true,"value":"urn:potvrda:loa:high"}}}"#),
                Ok(Some(Level::High)),
            ),
            (
                Some(LOA_BASIC),
                Some(
                    r#"{"id_token":{"acr":{"essential":true,"values":["urn:potvrda:loa:substantial"]}}}"#,
                ),
                Ok(Some(Level::Substantial)),
            ),
            (
                None,
                Some(r#"{"id_token":{"acr":{"essential":true,"value":"urn:x"}}}"#),
                Err(()),
            ),
            (None, Some(r#"{"userinfo":{"email":null}}"#), Ok(None)),
            (None, Some("not json"), Err(())),
        ];
        for (values, claims, want) in cases {
            let got = requested(*values, *claims).map_err(|_| ());
            assert_eq!(&got, want, "{values:?} {claims:?}");
        }
    }

    /// A client's registered levels bound what it may ask for and are the
    /// floor of its logins; its default applies within them.
    #[test]
    fn a_client_is_held_to_the_levels_it_is_registered_for() {
        let client = |extra: serde_json::Value| {
            let mut c = serde_json::json!({"client_id": "c", "name": "C", "redirect_uris": []});
            c.as_object_mut()
                .expect("object")
                .extend(extra.as_object().expect("object").clone());
            serde_json::from_value::<crate::service::OidcClient>(c).expect("a client")
        };
        let open = client(serde_json::json!({}));
        let floor = client(serde_json::json!({"allowed_acr_values": [LOA_SUBSTANTIAL]}));
        let both = client(serde_json::json!({
            "allowed_acr_values": [LOA_BASIC, LOA_SUBSTANTIAL],
            "default_acr_values": [LOA_SUBSTANTIAL],
        }));
        let both_asked = format!("{LOA_BASIC} {LOA_SUBSTANTIAL}");
        /// The client, what it asks for, the floor (`Err`: refused).
        type Case<'a> = (
            &'a crate::service::OidcClient,
            Option<&'a str>,
            Result<Option<Level>, ()>,
        );
        let cases: &[Case<'_>] = &[
            (&open, None, Ok(None)),
            (&open, Some(LOA_BASIC), Ok(Some(Level::Basic))),
            (&floor, None, Ok(Some(Level::Substantial))),
            (&floor, Some(LOA_BASIC), Err(())),
            (&floor, Some(&both_asked), Ok(Some(Level::Substantial))),
            (&floor, Some(LOA_HIGH), Err(())),
            (&both, None, Ok(Some(Level::Substantial))),
            (&both, Some(LOA_BASIC), Ok(Some(Level::Basic))),
        ];
        for (c, asked, want) in cases {
            let got = asked_or_default(*asked, None, c).map_err(|_| ());
            assert_eq!(&got, want, "{:?} asked {asked:?}", c.allowed_acr_values);
        }
    }
}
