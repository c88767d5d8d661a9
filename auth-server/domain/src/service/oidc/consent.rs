//! Consent (OpenID Connect Core §3.1.2.4): a service registered with
//! `require_consent` (or a request with `prompt=consent`) asks the citizen
//! before its first code: the page names the service and what it will
//! learn, and the citizen allows or refuses. A consent is remembered per
//! citizen and service for the scopes allowed (a year), and audited.

use super::*;
use std::collections::BTreeSet;

capability! {
    /// The citizen's consent to a service.
    pub Consents
}

/// A consent given.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Consent {
    scopes: BTreeSet<String>,
}

/// Under `{user id}:{client id}`.
impl JsonRecord for Consent {
    const KIND: Kind = Kind::OidcConsent;
    type Id = str;
}

/// An authorization request waiting for the citizen's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingConsent {
    request: AuthzRequest,
    sid: String,
}

impl JsonRecord for PendingConsent {
    const KIND: Kind = Kind::OidcConsentRequest;
    type Id = str;
}

/// How long a consent is remembered.
const CONSENT_TTL: i64 = 365 * 86_400;

/// The consent page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentPage {
    /// The id the form posts back.
    pub request: String,
    /// The service asking.
    pub client_name: String,
    /// The scopes it asks for (`openid` first).
    pub scopes: Vec<String>,
    /// The language the client asked the pages to speak.
    pub ui_locale: Option<potvrda_i18n::Locale>,
    /// The client's redirect URI: where the page's form may lead.
    pub return_to: String,
}

/// Where a logged-in request goes next.
pub(super) enum Finished {
    /// The client's redirect URI with the code.
    Code(String),
    /// The consent page first.
    Consent(ConsentPage),
}

impl Consents<'_> {
    /// Whether the citizen must be asked before `req` gets a code.
    pub(super) async fn needed(&self, req: &AuthzRequest, user: &UserId) -> Result<bool> {
        if req.prompt_consent {
            return Ok(true);
        }
        let Some(client) = self.provider().client(&req.client_id).await? else {
            return Ok(false);
        };
        if !client.require_consent {
            return Ok(false);
        }
        let given = self
            .records::<Consent>()
            .get(
                format!("{user}:{}", req.client_id).as_str(),
                self.clock.now(),
            )
            .await?
            .unwrap_or_default();
        Ok(!req
            .scope
            .split_ascii_whitespace()
            .all(|s| given.scopes.contains(s)))
    }

    /// The code for `req`, or the consent page when the citizen must be asked.
    pub(super) async fn finish(&self, req: &AuthzRequest, session: &Session) -> Result<Finished> {
        if !self.needed(req, &session.user_id).await? {
            return Ok(Finished::Code(
                self.authorization().issue_code(req, session).await?,
            ));
        }
        let id = clock::token::<24>(self.rng.as_ref())?;
        let pending = PendingConsent {
            request: req.clone(),
            sid: session.sid.clone(),
        };
        self.records()
            .put(id.as_str(), &pending, self.clock.now() + REQUEST_TTL)
            .await?;
        Ok(Finished::Consent(self.page(id, req).await?))
    }

    /// The consent page asking for `req`, answered under `id`.
    async fn page(&self, id: String, req: &AuthzRequest) -> Result<ConsentPage> {
        let client_name = self
            .provider()
            .client(&req.client_id)
            .await?
            .map(|c| c.name)
            .unwrap_or_default();
        Ok(ConsentPage {
            request: id,
            client_name,
            scopes: req
                .scope
                .split_ascii_whitespace()
                .map(str::to_owned)
                .collect(),
            ui_locale: req.ui_locale,
            return_to: req.redirect_uri.clone(),
        })
    }

    /// The consent page of a request still waiting for the citizen's
    /// answer, shown again (after the language switch); `None`: no such
    /// request, or it expired.
    pub async fn pending_page(&self, request_id: &str) -> Result<Option<ConsentPage>> {
        if request_id.is_empty() || request_id.len() > 64 {
            return Ok(None);
        }
        let now = self.clock.now();
        let Some(pending) = self
            .records::<PendingConsent>()
            .get(request_id, now)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(
            self.page(request_id.to_owned(), &pending.request).await?,
        ))
    }

    /// The citizen's answer on the consent page (whose CSRF token the web
    /// layer checked): allowed, the code; refused, `access_denied`. Only the
    /// session that was asked can answer.
    pub async fn oidc_consent(
        &self,
        request_id: &str,
        session_cookie: Option<&str>,
        allow: bool,
    ) -> Result<StepOutcome> {
        let now = self.clock.now();
        let expired = Authorization::expired_page;
        if request_id.is_empty() || request_id.len() > 64 {
            return Ok(expired());
        }
        let Some(pending) = self
            .records::<PendingConsent>()
            .take(request_id, now)
            .await?
        else {
            return Ok(expired());
        };
        let session = self.authorization().session(session_cookie, now).await?;
        let Some(session) = session.filter(|s| ct_eq_str(&s.sid, &pending.sid)) else {
            return Ok(expired());
        };
        let req = &pending.request;
        if !allow {
            let url = self
                .authorization()
                .denied(req, "the citizen did not consent");
            return Ok(StepOutcome::Redirect { url, session: None });
        }
        let key = format!("{}:{}", session.user_id, req.client_id);
        let mut given = self
            .records::<Consent>()
            .get(key.as_str(), now)
            .await?
            .unwrap_or_default();
        given
            .scopes
            .extend(req.scope.split_ascii_whitespace().map(str::to_owned));
        self.records()
            .put(key.as_str(), &given, now + CONSENT_TTL)
            .await?;
        self.audit
            .record(
                Event::new(AuditKind::ConsentGiven, now)
                    .user(&session.user_id)
                    .with("client_id", req.client_id.as_str())
                    .with("scope", req.scope.as_str()),
            )
            .await;
        let url = self.authorization().issue_code(req, &session).await?;
        Ok(StepOutcome::Redirect { url, session: None })
    }
}
