//! CIBA `ping` notifications (CIBA Core §10.2): a POST of `{"auth_req_id"}`
//! with the client's `client_notification_token` as a bearer token, to the
//! notification endpoint the client registered. Tried three times; a lost
//! ping costs the client nothing but a poll.

use std::time::Duration;

use potvrda_domain::ports::ClientNotifier;
use potvrda_proto::Secret;

use crate::error::{Error, Result};

/// Sends pings over HTTP.
#[derive(Debug, Clone)]
pub struct HttpNotifier {
    http: reqwest::Client,
}

/// Attempts per ping.
const TRIES: u32 = 3;

impl HttpNotifier {
    /// A notifier with its own client (no redirects, short timeouts).
    pub fn new() -> Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Internal(format!("http client: {e}")))?;
        Ok(Self { http })
    }
}

impl ClientNotifier for HttpNotifier {
    fn ping(&self, endpoint: String, token: Secret, auth_req_id: String) {
        let http = self.http.clone();
        tokio::spawn(async move {
            for attempt in 1..=TRIES {
                let sent = http
                    .post(&endpoint)
                    .bearer_auth(token.expose())
                    .json(&serde_json::json!({ "auth_req_id": auth_req_id }))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => return,
                    Ok(r) => tracing::warn!(status = %r.status(), attempt, "CIBA ping refused"),
                    Err(e) => tracing::warn!(error = %e, attempt, "CIBA ping failed"),
                }
                // Back off between tries (not a synchronisation: nothing waits on it).
                tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
            }
        });
    }
}
