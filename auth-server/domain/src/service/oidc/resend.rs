//! The waiting page's time limit (WCAG 2.2.1, issue 16): how long the
//! phone's challenge has left, and "send a new request to the phone",
//! which challenges the phone again for the browser that typed the
//! password, without it.

use super::*;

impl Authorization<'_> {
    /// The phone's decision on `pending`, now (not waiting).
    pub(super) async fn decision(
        &self,
        pending: &PendingLogin,
    ) -> Result<(potvrda_proto::api::LoginStatusResponse, crate::store::Login)> {
        self.outcomes()
            .wait_for_decision(
                &pending.login_id,
                Some(pending.login_secret.expose()),
                0,
                false,
            )
            .await
    }

    /// The waiting page of `req`, whose phone was sent `pending`.
    pub(super) fn waiting_page(
        &self,
        request_id: &str,
        req: &AuthzRequest,
        pending: &PendingLogin,
        client_name: String,
        error: Option<Msg>,
    ) -> StepOutcome {
        StepOutcome::Waiting {
            request: request_id.to_owned(),
            number: pending.shown(),
            client_name,
            error,
            ui_locale: req.ui_locale,
            return_to: req.redirect_uri.clone(),
            expires_in: (pending.expires_at > 0)
                .then(|| (pending.expires_at - self.clock.now()).max(0)),
            can_resend: req.resent < MAX_RESENDS,
        }
    }

    /// "Send a new request to the phone" (WCAG 2.2.1: the time limit is
    /// renewed with one action): the password was checked for this request
    /// in this browser, so a new challenge goes to the phone without it,
    /// superseding the one before; at most [`MAX_RESENDS`] times, and the
    /// phone's push limits hold. A login already decided goes on as
    /// "continue" does.
    pub async fn oidc_again(
        &self,
        request_id: &str,
        binding: Option<&str>,
        caller: &Caller,
    ) -> Result<StepOutcome> {
        let Some(mut req) = self.load_request(request_id, binding).await? else {
            return Ok(Self::expired_page());
        };
        let Some(pending) = req.login.clone() else {
            return self.oidc_continue(request_id, binding).await;
        };
        let (answer, login) = self.decision(&pending).await?;
        let still_open = matches!(answer.status, LoginStatus::Pending | LoginStatus::Expired);
        if !still_open || req.resent >= MAX_RESENDS {
            return self.oidc_continue(request_id, binding).await;
        }
        let user = self
            .store
            .user(&login.record.user_id)
            .await?
            .filter(|u| !u.locked && !u.deactivated);
        let Some(user) = user else {
            return Ok(Self::expired_page());
        };
        let client_name = self.client_name(&req.client_id).await?;
        let context = potvrda_proto::jose::LoginContext {
            ip: caller.ip.map(|ip| ip.to_string()),
            user_agent: caller.user_agent.clone(),
            service: Some(client_name.clone()),
            ..Default::default()
        };
        let started = self
            .challenges()
            .challenge(
                &user,
                context,
                potvrda_proto::api::LoginAudience::Portal,
                caller,
                &crate::service::challenge::Origin::default(),
            )
            .await?;
        let pending = PendingLogin::from(started);
        req.login = Some(pending.clone());
        req.resent += 1;
        self.records()
            .put(request_id, &req, self.clock.now() + REQUEST_TTL)
            .await?;
        Ok(self.waiting_page(request_id, &req, &pending, client_name, None))
    }
}
