//! Transport left to the app: the core describes every HTTP request it needs
//! ([`Request`]: method, URL, headers, body) and reads every answer
//! ([`Response`]: status, body); the app sends them with its own HTTP stack
//! (OkHttp, URLSession, `fetch`, …). Nothing here opens a socket.

use potvrda_proto::ErrorBody;
use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// An HTTP request for the app to send as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The absolute URL.
    pub url: String,
    /// Header names and values (`Authorization`, `Content-Type`, `Accept`).
    pub headers: Vec<(String, String)>,
    /// The body; empty for `GET`.
    pub body: Vec<u8>,
}

/// What the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// The body as received.
    pub body: Vec<u8>,
}

impl Request {
    /// `GET url` with a bearer token.
    pub fn get(url: String, bearer: &str) -> Self {
        Self {
            method: "GET",
            url,
            headers: vec![
                ("Accept".into(), "application/json".into()),
                ("Authorization".into(), format!("Bearer {bearer}")),
            ],
            body: Vec::new(),
        }
    }

    /// `POST url` with no body and a bearer token.
    pub fn post_empty(url: String, bearer: &str) -> Self {
        Self {
            method: "POST",
            ..Self::get(url, bearer)
        }
    }

    /// `POST url` with a JSON body, and a bearer token when given.
    pub fn post_json<T: serde::Serialize>(
        url: String,
        bearer: Option<&str>,
        body: &T,
    ) -> Result<Self> {
        Self::json("POST", url, bearer, body)
    }

    /// `method url` with a JSON body, and a bearer token when given.
    pub fn json<T: serde::Serialize>(
        method: &'static str,
        url: String,
        bearer: Option<&str>,
        body: &T,
    ) -> Result<Self> {
        let mut headers = vec![
            ("Accept".into(), "application/json".into()),
            ("Content-Type".into(), "application/json".into()),
        ];
        if let Some(token) = bearer {
            headers.push(("Authorization".into(), format!("Bearer {token}")));
        }
        Ok(Self {
            method,
            url,
            headers,
            body: serde_json::to_vec(body)?,
        })
    }
}

impl Response {
    /// The JSON body of a 2xx answer; any other answer becomes
    /// [`Error::Server`] with the body's stable `error` code.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        self.success()?;
        Ok(serde_json::from_slice(&self.body)?)
    }

    /// `Ok` for a 2xx answer, [`Error::Server`] otherwise.
    pub fn success(&self) -> Result<()> {
        if (200..300).contains(&self.status) {
            return Ok(());
        }
        let error = serde_json::from_slice::<ErrorBody>(&self.body)
            .map(|b| b.error.as_str().to_owned())
            .unwrap_or_else(|_| "unreadable error".into());
        Err(Error::Server {
            status: self.status,
            error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_by_status_and_error_code() {
        let ok = Response {
            status: 200,
            body: br#"{"challenges":["a"]}"#.to_vec(),
        };
        let p: potvrda_proto::api::PendingChallenges = ok.json().expect("2xx parses");
        assert_eq!(p.challenges, ["a"]);
        let refused = Response {
            status: 401,
            body: br#"{"error":"unauthorized","message":"no"}"#.to_vec(),
        };
        assert!(matches!(
            refused.json::<potvrda_proto::api::PendingChallenges>(),
            Err(Error::Server { status: 401, ref error }) if error == "unauthorized"
        ));
        let garbage = Response {
            status: 502,
            body: b"<html>".to_vec(),
        };
        assert!(matches!(
            garbage.success(),
            Err(Error::Server { status: 502, ref error }) if error == "unreadable error"
        ));
        let post = Request::post_json("https://x/v1".into(), Some("t"), &1).expect("builds");
        assert_eq!(post.body, b"1");
        assert!(
            post.headers
                .contains(&("Authorization".into(), "Bearer t".into()))
        );
        assert_eq!(Request::get("https://x".into(), "t").body, b"");
    }
}
