//! Activation from the printed sheet: the QR code carries
//! `potvrda://activate?server=<PUBLIC_URL>&code=<code>`. The app only scans
//! it; this module decides whether it is one of ours: the scheme and host,
//! exactly one server and one code, an `https` server without credentials,
//! path, query or fragment (plain `http` only to a loopback address, and
//! only when the app is a development build), and a code of the sheet's
//! alphabet, normalised to `XXXX-XXXX-XXXX`. A code typed by hand goes
//! through [`normalize_code`] alone.

use crate::{Error, Result};

use potvrda_proto::limits::ACTIVATION_CODE_LEN as CODE_LEN;

/// What a scanned sheet says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    /// The server to enroll with (no trailing slash).
    pub server: String,
    /// The activation code, `XXXX-XXXX-XXXX`.
    pub code: String,
}

fn bad(why: &'static str) -> Error {
    Error::InvalidActivation(why)
}

/// The code as printed (`XXXX-XXXX-XXXX`) from what was typed or scanned:
/// case, spaces and dashes do not matter.
pub fn normalize_code(typed: &str) -> Result<String> {
    let raw = potvrda_proto::limits::normalize_code(typed, CODE_LEN)
        .ok_or_else(|| bad("the activation code is 12 letters and digits"))?;
    Ok(format!("{}-{}-{}", &raw[..4], &raw[4..8], &raw[8..]))
}

/// Parse and check the URI of a sheet's QR code. `development` allows an
/// `http` server on a loopback address (a test server on the same machine).
pub fn parse_activation_uri(uri: &str, development: bool) -> Result<Activation> {
    let parsed = url::Url::parse(uri.trim()).map_err(|_| bad("not a URI"))?;
    if parsed.scheme() != "potvrda" || parsed.host_str() != Some("activate") {
        return Err(bad("not a Potvrda activation URI"));
    }
    if parsed.fragment().is_some() || !matches!(parsed.path(), "" | "/") {
        return Err(bad("unexpected parts in the activation URI"));
    }
    let (mut server, mut code) = (None, None);
    for (key, value) in parsed.query_pairs() {
        let slot = match key.as_ref() {
            "server" => &mut server,
            "code" => &mut code,
            _ => return Err(bad("unknown parameter in the activation URI")),
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(bad("a parameter appears twice"));
        }
    }
    let (Some(server), Some(code)) = (server, code) else {
        return Err(bad("the activation URI needs a server and a code"));
    };
    Ok(Activation {
        server: check_server(&server, development)?,
        code: normalize_code(&code)?,
    })
}

/// A code typed by hand for `server` (the app's server setting, or what
/// the citizen typed): both checked as a scanned sheet's would be.
pub fn activation_from_code(server: &str, code: &str, development: bool) -> Result<Activation> {
    Ok(Activation {
        server: check_server(server, development)?,
        code: normalize_code(code)?,
    })
}

fn check_server(server: &str, development: bool) -> Result<String> {
    let url = url::Url::parse(server).map_err(|_| bad("the server is not a URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("the server URL carries credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("the server URL has a query or fragment"));
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(bad("the server URL has no host")),
    };
    match url.scheme() {
        "https" => {}
        "http" if development && loopback => {}
        "http" => return Err(bad("the server must use https")),
        _ => return Err(bad("the server must be an https URL")),
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typed_code_is_checked_with_its_server() {
        let a = activation_from_code("https://p.example/", "abcd efgh jkmn", false).expect("ok");
        assert_eq!(
            (a.server.as_str(), a.code.as_str()),
            ("https://p.example", "ABCD-EFGH-JKMN")
        );
        assert!(activation_from_code("http://p.example", "ABCDEFGHJKMN", false).is_err());
        assert!(activation_from_code("http://127.0.0.1:8080", "ABCDEFGHJKMN", false).is_err());
        assert!(activation_from_code("http://127.0.0.1:8080", "ABCDEFGHJKMN", true).is_ok());
        assert!(activation_from_code("https://p.example", "ABCD", false).is_err());
    }

    #[test]
    fn a_printed_sheet_parses() {
        // Exactly what the server prints (auth-server `sheet::activation_uri`).
        let a = parse_activation_uri(
            "potvrda://activate?server=https%3A%2F%2Fprijava.euprava.gov.rs&code=ABCD-EFGH-JKMN",
            false,
        )
        .expect("valid");
        assert_eq!(a.server, "https://prijava.euprava.gov.rs");
        assert_eq!(a.code, "ABCD-EFGH-JKMN");
        let a = parse_activation_uri(
            "potvrda://activate?code=abcdefghjkmn&server=https://p.example/base/",
            false,
        )
        .expect("order and case do not matter");
        assert_eq!(
            (a.server.as_str(), a.code.as_str()),
            ("https://p.example/base", "ABCD-EFGH-JKMN")
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for (uri, dev) in [
            (
                "https://activate?server=https://a.rs&code=ABCD-EFGH-JKMN",
                false,
            ),
            (
                "potvrda://login?server=https://a.rs&code=ABCD-EFGH-JKMN",
                false,
            ),
            (
                "potvrda://activate?server=http://a.rs&code=ABCD-EFGH-JKMN",
                false,
            ),
            (
                "potvrda://activate?server=http://a.rs&code=ABCD-EFGH-JKMN",
                true,
            ),
            (
                "potvrda://activate?server=http://127.0.0.1:8080&code=ABCD-EFGH-JKMN",
                false,
            ),
            (
                "potvrda://activate?server=javascript:alert(1)&code=ABCD-EFGH-JKMN",
                false,
            ),
            (
                "potvrda://activate?server=https://u:p@a.rs&code=ABCD-EFGH-JKMN",
                false,
            ),
            (
                "potvrda://activate?server=https://a.rs?x=1&code=ABCD-EFGH-JKMN",
                false,
            ),
            (
                "potvrda://activate?server=https://a.rs&code=ABCD-EFGH-JKM0",
                false,
            ),
            ("potvrda://activate?server=https://a.rs&code=ABCD", false),
            ("potvrda://activate?server=https://a.rs", false),
            (
                "potvrda://activate?server=https://a.rs&server=https://b.rs&code=ABCD-EFGH-JKMN",
                false,
            ),
            (
                "potvrda://activate?server=https://a.rs&code=ABCD-EFGH-JKMN&next=x",
                false,
            ),
            (
                "potvrda://activate?server=https://a.rs&code=ABCD-EFGH-JKMN#f",
                false,
            ),
            ("not a uri", false),
        ] {
            assert!(
                matches!(
                    parse_activation_uri(uri, dev),
                    Err(Error::InvalidActivation(_))
                ),
                "{uri} (development: {dev})"
            );
        }
    }

    #[test]
    fn loopback_http_only_in_development() {
        let a = parse_activation_uri(
            "potvrda://activate?server=http%3A%2F%2F127.0.0.1%3A8080&code=ABCD-EFGH-JKMN",
            true,
        )
        .expect("a local test server");
        assert_eq!(a.server, "http://127.0.0.1:8080");
        assert!(
            parse_activation_uri(
                "potvrda://activate?server=http://localhost:8080&code=ABCD-EFGH-JKMN",
                true
            )
            .is_ok()
        );
    }

    #[test]
    fn typed_codes() {
        assert_eq!(
            normalize_code("abcd efgh jkmn").expect("ok"),
            "ABCD-EFGH-JKMN"
        );
        assert!(
            normalize_code("ABCD-EFGH-JKM1").is_err(),
            "1 is not printed"
        );
        assert!(
            normalize_code("ABCD-EFGH-JKMO").is_err(),
            "O is not printed"
        );
    }
}
