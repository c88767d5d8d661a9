//! RP-initiated logout.

use super::*;

capability! {
    /// RP-initiated logout.
    pub Logouts
}

impl Logouts<'_> {
    /// RP-initiated logout. The session ends when the request proves it
    /// comes from the session's own client (an ID token of this session as
    /// `id_token_hint`) or from the citizen (the confirmation form, whose
    /// CSRF token the web layer checked: `confirmation`); a bare cross-site
    /// GET only asks (security round 2, finding 9).
    pub async fn oidc_logout(
        &self,
        p: LogoutParams,
        session_cookie: Option<&str>,
        confirmation: Confirmation,
    ) -> Result<LogoutOutcome> {
        let now = self.clock.now();
        let hinted = p.id_token_hint.as_deref().and_then(|t| self.hinted(t));
        let client_id = match (&hinted, p.client_id.clone()) {
            (Some((h, _)), Some(c)) if *h != c => None,
            (Some((h, _)), _) => Some(h.clone()),
            (None, c) => c,
        };
        let client = match client_id.as_deref() {
            Some(id) => self.provider().client(id).await?,
            None => None,
        };
        let target = client
            .zip(p.post_logout_redirect_uri.as_deref())
            .filter(|(c, uri)| c.post_logout_redirect_uris.iter().any(|u| u == uri))
            .map(|(_, uri)| match &p.state {
                Some(s) => redirect_with(uri, &[("state", s)]),
                None => uri.to_owned(),
            });
        let Some(cookie) = session_cookie.filter(|c| !c.is_empty() && c.len() <= 64) else {
            return Ok(LogoutOutcome::Done(target, Vec::new()));
        };
        let k = sha256_b64(cookie.as_bytes());
        let sessions = self.records::<Session>();
        let Some(session) = sessions.get(&k, now).await? else {
            return Ok(LogoutOutcome::Done(target, Vec::new()));
        };
        let proven = hinted
            .as_ref()
            .is_some_and(|(_, sid)| ct_eq_str(sid, &session.sid))
            || confirmation == Confirmation::Confirmed;
        if !proven {
            if confirmation == Confirmation::Forged {
                return Err(Error::Forbidden);
            }
            return Ok(LogoutOutcome::Confirm);
        }
        let mut frames = Vec::new();
        if sessions.take(&k, now).await?.is_some() {
            frames = self
                .logout_notices()
                .session_ended(&session.user_id, &session.sid)
                .await?;
            tracing::info!(
                user_id = %session.user_id,
                "provider session ended by logout"
            );
            self.audit
                .record(
                    Event::new(AuditKind::SessionEnded, now)
                        .user(&session.user_id)
                        .with("sid", session.sid.as_str()),
                )
                .await;
        }
        Ok(LogoutOutcome::Done(target, frames))
    }

    /// The client (`aud`) and session (`sid`) of an ID token this provider
    /// signed (expiry does not matter for a logout hint).
    pub(super) fn hinted(&self, id_token: &str) -> Option<(String, String)> {
        let header = jsonwebtoken::decode_header(id_token).ok()?;
        let keys = self.keyring.current();
        let (key, alg) = keys.verifier(header.kid.as_deref()?)?;
        if header.alg != alg {
            return None;
        }
        let mut v = Validation::new(alg);
        v.validate_exp = false;
        v.validate_aud = false;
        v.set_issuer(&[&self.public_url]);
        jsonwebtoken::decode::<IdTokenClaims>(id_token, key, &v)
            .ok()
            .map(|d| (d.claims.aud, d.claims.sid))
    }
}

/// What a logout request leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoutOutcome {
    /// Done (or nothing to end): where to send the browser, when the client
    /// registered it, and the Front-Channel Logout pages to load first.
    Done(Option<String>, Vec<String>),
    /// Ask the citizen first: a form that posts back (with its CSRF token).
    Confirm,
}

/// Whether the citizen confirmed the logout: the confirmation form's CSRF
/// token, as the web layer found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    /// No token: a link or a redirect, not the form.
    Absent,
    /// The form's token, right for this session.
    Confirmed,
    /// A token, but not this session's: 403.
    Forged,
}
