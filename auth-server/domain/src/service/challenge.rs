//! Sending a login's challenge: admission against push bombing, the risk
//! assessment, one signed challenge per device, the superseded login
//! withdrawn, the audit, the pushes (none for a high-risk login), and the
//! watch that records an expiry.

use crate::store::{LoginId, UserId};
use std::sync::Arc;

use jsonwebtoken::{Algorithm, Header};
use potvrda_i18n::{Locale, Tr};
use potvrda_proto::api::{AuditKind, LoginAudience, LoginResponse};
use potvrda_proto::jose::{
    ChallengeClaims, ChallengeRisk, LoginContext, RiskLevel, TYP_CHALLENGE, WithdrawalReason,
};
use potvrda_proto::limits::{NUMBER_MAX, NUMBER_MIN, VERIFIED_CODE_DIGITS};

use super::risk::Assessment;
use super::{audience_name, new_id, sha256_b64};
use crate::audit::{Audit, Caller, Event};
use crate::clock;
use crate::error::{Error, Result};
use crate::ports::{Meter, PushJob};
use crate::settings::secs;
use crate::store::{
    Admission, DecideOutcome, Device, DeviceChallenge, Limits, LoginRecord, LoginState, Store, User,
};

capability! {
    /// Challenges: admitted, signed, pushed and withdrawn.
    pub(crate) Challenges
}

/// Who asked for a login through an API, and for how long.
#[derive(Debug, Clone, Default)]
pub(crate) struct Origin {
    /// The authenticated client of the portal API or of CIBA (none for the
    /// server's own pages).
    pub(crate) client: Option<crate::store::ClientId>,
    /// A lifetime other than the configured challenge lifetime (CIBA's
    /// `requested_expiry`).
    pub(crate) ttl: Option<std::time::Duration>,
}

impl Challenges<'_> {
    /// Send a challenge for `user` with `context` to every device of theirs:
    /// the login's id, secret and number (or a risky login's code).
    pub(super) async fn challenge(
        &self,
        user: &User,
        context: LoginContext,
        audience: LoginAudience,
        caller: &Caller,
        origin: &Origin,
    ) -> Result<LoginResponse> {
        let now = self.clock.now();
        let devices = self.store.devices_of(&user.id).await?;
        if devices.is_empty() {
            self.refused(user, caller, now, "no_device", None).await;
            return Err(Error::NoDevice);
        }
        let rng = self.rng.as_ref();
        let assessment = self
            .risk_checks()
            .assess_login(user, &devices, caller.ip, now)
            .await?;
        let login_id = new_id(rng)?;
        let superseded = self.admit(user, &login_id, caller, now).await?;
        let secret = clock::token::<32>(rng)?;
        let mut record = LoginRecord {
            id: login_id,
            cid: new_id(rng)?,
            user_id: user.id.clone(),
            username: user.username.clone(),
            nonce: clock::token::<32>(rng)?,
            number: NUMBER_MIN + clock::below(rng, u32::from(NUMBER_MAX - NUMBER_MIN) + 1)? as u8,
            secret_hash: sha256_b64(secret.as_bytes()),
            created_at: now,
            created_at_ms: self.clock.now_ms(),
            expires_at: now + secs(origin.ttl.unwrap_or(self.settings.login.challenge_ttl)),
            context,
            challenges: Vec::with_capacity(devices.len()),
            audience,
            client_ip: caller.ip.map(|ip| ip.to_string()),
            portal_client: origin.client.clone(),
            code: (assessment.level >= RiskLevel::Elevated)
                .then(|| clock::string(rng, b"0123456789", usize::from(VERIFIED_CODE_DIGITS)))
                .transpose()?,
        };
        self.sign_challenges(&mut record, &devices, &assessment, now)?;
        self.store.create_login(&record).await?;
        self.watch_challenge(&record);
        if let Some(previous) = superseded {
            self.withdraw(&previous, &record, now).await?;
        }
        let push_suppressed = self
            .announce(&record, devices, &assessment, caller, now)
            .await;
        Ok(LoginResponse {
            login_id: record.id,
            login_secret: secret.into(),
            number: record.number,
            expires_at: record.expires_at,
            code: record.code,
            push_suppressed,
        })
    }

    /// Log and audit a started login, and push its challenges unless its
    /// risk is high (then the challenge waits in the app until the citizen
    /// opens it); whether the push was suppressed.
    async fn announce(
        &self,
        record: &LoginRecord,
        devices: Vec<Device>,
        assessment: &Assessment,
        caller: &Caller,
        now: i64,
    ) -> bool {
        tracing::info!(
            login_id = %record.id,
            cid = %record.cid,
            user_id = %record.user_id,
            "login started"
        );
        let push_suppressed = assessment.level == RiskLevel::High;
        self.audit
            .record(started_event(
                record,
                devices.len(),
                assessment,
                caller,
                now,
            ))
            .await;
        if !push_suppressed {
            self.dispatch_pushes(devices, record);
        }
        push_suppressed
    }

    /// A login refused before any push, audited with its reason.
    async fn refused(
        &self,
        user: &User,
        caller: &Caller,
        now: i64,
        reason: &str,
        until: Option<i64>,
    ) {
        let mut event = Event::new(AuditKind::LoginFailed, now)
            .user(&user.id)
            .caller(caller)
            .with("reason", reason);
        if let Some(until) = until {
            event = event.with("until", until);
        }
        self.audit.record(event).await;
    }

    /// Push-bombing defences, atomic across instances: paused after repeated
    /// denials, a bounded number of pushes per window, and one active login
    /// per user. The login it supersedes, if any.
    async fn admit(
        &self,
        user: &User,
        login_id: &LoginId,
        caller: &Caller,
        now: i64,
    ) -> Result<Option<LoginId>> {
        match self
            .store
            .admit_login(&user.id, login_id, now, &self.limits())
            .await?
        {
            Admission::Admitted { superseded } => Ok(superseded),
            Admission::Paused { until } | Admission::TooMany { retry_at: until } => {
                tracing::warn!(
                    user_id = %user.id,
                    until,
                    "login refused: push limit or fatigue pause"
                );
                self.refused(user, caller, now, "push_limited", Some(until))
                    .await;
                Err(Error::RateLimited {
                    retry_after: (until - now).max(1) as u64,
                })
            }
        }
    }

    /// One challenge JWS per device, with the risk (when a signal is present).
    fn sign_challenges(
        &self,
        record: &mut LoginRecord,
        devices: &[Device],
        assessment: &Assessment,
        now: i64,
    ) -> Result<()> {
        let risk = (!assessment.reasons.is_empty()).then(|| ChallengeRisk {
            level: assessment.level,
            reasons: assessment.reasons.clone(),
            code_digits: record.code.as_ref().map(|_| VERIFIED_CODE_DIGITS),
        });
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some(TYP_CHALLENGE.into());
        header.kid = Some(self.keys.signing.kid.clone());
        for device in devices {
            let claims = ChallengeClaims {
                cid: record.cid.clone(),
                nonce: record.nonce.clone(),
                sub: record.username.clone(),
                aud: device.id.to_string(),
                ctx: context_for(&record.context, device_locale(device)),
                iat: now,
                exp: record.expires_at,
                risk: risk.clone(),
            };
            record.challenges.push(DeviceChallenge {
                device_id: device.id.clone(),
                jws: jsonwebtoken::encode(&header, &claims, &self.keys.signing.encoding)?,
            });
        }
        Ok(())
    }

    /// Withdraw the earlier challenge: its push is stale, its approval answers 409.
    async fn withdraw(&self, previous: &LoginId, record: &LoginRecord, now: i64) -> Result<()> {
        let outcome = self
            .store
            .decide(
                previous,
                LoginState::Denied,
                now,
                self.clock.now_ms(),
                None,
                &[],
            )
            .await?;
        tracing::info!(
            login_id = %previous,
            superseded_by = %record.id,
            ?outcome,
            "earlier login superseded"
        );
        if outcome == DecideOutcome::Decided {
            if let Ok(Some(earlier)) = self.store.login(previous).await {
                super::withdrawal::withdraw_prompts(
                    (self.store.as_ref(), self.push.as_ref(), &self.keys),
                    &earlier.record,
                    None,
                    WithdrawalReason::Superseded,
                    now,
                )
                .await;
            }
            self.audit
                .record(
                    Event::new(AuditKind::LoginSuperseded, now)
                        .user(&record.user_id)
                        .with("login_id", previous.as_str())
                        .with("superseded_by", record.id.as_str()),
                )
                .await;
        }
        Ok(())
    }

    /// Push each device its challenge, in the background.
    fn dispatch_pushes(&self, devices: Vec<Device>, record: &LoginRecord) {
        for (device, challenge) in devices.into_iter().zip(&record.challenges) {
            if device.push.is_some() && !device.push_gone {
                let declared = device.push.as_ref().filter(|p| p.declarative);
                let payload = if declared.is_some() {
                    let locale = device_locale(&device);
                    declarative(&challenge.jws, record, &self.public_url, locale)
                } else {
                    challenge.jws.clone()
                };
                self.push.dispatch(
                    device,
                    PushJob {
                        login_id: record.id.clone(),
                        payload,
                        expires_at: record.expires_at,
                        created_ms: record.created_at_ms,
                        topic: super::withdrawal::topic(&record.id),
                        withdrawal: false,
                    },
                );
            }
        }
    }

    /// Follow a challenge this instance created until it is decided (on any
    /// instance) or expires: keeps the pending gauge right and records the
    /// `expired` outcome, which no request reports.
    fn watch_challenge(&self, record: &LoginRecord) {
        let (store, metrics, clock, audit) = (
            Arc::clone(&self.store),
            Arc::clone(&self.metrics),
            Arc::clone(&self.clock),
            Arc::clone(&self.audit),
        );
        let (push, keys) = (Arc::clone(&self.push), Arc::clone(&self.keys));
        let limits = self.limits();
        let (id, user_id, created_ms) = (
            record.id.clone(),
            record.user_id.clone(),
            record.created_at_ms,
        );
        let ttl_ms = (record.expires_at - record.created_at) * 1000;
        let expires_at = record.expires_at;
        let mut changes = store.subscribe(&id);
        metrics.challenge_opened();
        tokio::spawn(async move {
            // Expiry follows the injected clock (tests move it by hand).
            let mut expiry = clock.sleep_until(expires_at);
            loop {
                let woken = tokio::select! {
                    () = changes.changed() => true,
                    () = &mut expiry => false,
                };
                match store.login(&id).await {
                    Ok(Some(l)) if l.state != LoginState::Pending => break,
                    Ok(l) if !woken => {
                        if let Some(l) = l {
                            super::withdrawal::withdraw_prompts(
                                (store.as_ref(), push.as_ref(), &keys),
                                &l.record,
                                None,
                                WithdrawalReason::Expired,
                                clock.now(),
                            )
                            .await;
                        }
                        let expired_ms = created_ms + ttl_ms;
                        metrics.challenge_decided("expired", &user_id, created_ms, expired_ms);
                        let now = clock.now();
                        audit
                            .record(
                                Event::new(AuditKind::LoginExpired, now)
                                    .user(&user_id)
                                    .with("login_id", id.as_str()),
                            )
                            .await;
                        record_outcome(
                            store.as_ref(),
                            metrics.as_ref(),
                            &audit,
                            &user_id,
                            false,
                            now,
                            &limits,
                        )
                        .await;
                        break;
                    }
                    Err(_) if !woken => break,
                    _ => {}
                }
            }
            metrics.challenge_closed();
        });
    }
}

/// A challenge as Declarative Web Push (issue 15): what a Home Screen web
/// app on iOS 18.4+ shows by itself — the service, where the login comes
/// from, and the companion's page for that challenge — with the signed
/// challenge in `data.jws`, which the core verifies before anything is
/// answered. Browsers without declarative support hand the same JSON to the
/// service worker.
/// The text is in the device's language (`tr`).
fn declarative(jws: &str, record: &LoginRecord, public_url: &str, locale: Locale) -> String {
    let tr = Tr(locale);
    let from = [
        record.context.ip.as_deref(),
        record.context.user_agent.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" · ");
    let waiting = tr.t("app-waiting");
    let body = if from.is_empty() {
        waiting
    } else {
        format!("{waiting}\n{}", tr.t1("app-from", "ip", &from))
    };
    serde_json::json!({
        "web_push": 8030,
        "notification": {
            "title": context_for(&record.context, locale).service.as_deref().unwrap_or("Potvrda"),
            "body": body,
            "navigate": format!("{}/app/#{}", public_url.trim_end_matches('/'), record.cid),
            "tag": format!("potvrda-{}", record.cid),
            "require_interaction": true,
            "data": {"jws": jws, "cid": record.cid.to_string()},
        },
    })
    .to_string()
}

/// How many times one waiting page (an authorization request, a counter
/// login) may send a new challenge to the phone (WCAG 2.2.1 asks for at
/// least ten extensions).
pub(super) const MAX_RESENDS: u8 = 10;

/// The language a device is spoken to in: its push subscription's (issue
/// 16), else the default.
fn device_locale(device: &Device) -> Locale {
    device
        .push
        .as_ref()
        .and_then(|p| p.locale)
        .unwrap_or_default()
}

/// The login's context as a device in `locale` is shown it: one of
/// Potvrda's own services named in that language.
fn context_for(context: &LoginContext, locale: Locale) -> LoginContext {
    let mut ctx = context.clone();
    if let Some(own) = ctx.own_service {
        ctx.service = Some(super::login::own_service_name(own, locale));
    }
    ctx
}

/// `login_started`, with the risk assessment and its reasons.
fn started_event(
    record: &LoginRecord,
    devices: usize,
    assessment: &Assessment,
    caller: &Caller,
    now: i64,
) -> Event {
    let reasons: Vec<&str> = assessment.reasons.iter().map(|r| r.as_str()).collect();
    let mut event = Event::new(AuditKind::LoginStarted, now)
        .user(&record.user_id)
        .caller(caller)
        .with("login_id", record.id.as_str())
        .with("devices", devices)
        .with("service", record.context.service.clone());
    // The relying party that asked, through the portal API or CIBA.
    if let Some(client) = &record.portal_client {
        event = event.with("client_id", client.as_str());
    }
    event
        .with("audience", audience_name(record.audience))
        .with("risk_score", assessment.score)
        .with("risk_level", assessment.level.as_str())
        .with("risk_reasons", reasons)
        .with("push_suppressed", assessment.level == RiskLevel::High)
}

/// Count a challenge's outcome toward the user's fatigue pause.
pub(super) async fn record_outcome(
    store: &dyn Store,
    metrics: &dyn Meter,
    audit: &Audit,
    user_id: &UserId,
    approved: bool,
    now: i64,
    limits: &Limits,
) {
    match store.record_outcome(user_id, approved, now, limits).await {
        Ok(Some(until)) => {
            metrics.fatigue_paused();
            tracing::warn!(
                user_id = %user_id,
                until,
                "pushes paused after repeated denied or expired challenges"
            );
            audit
                .record(
                    Event::new(AuditKind::FatiguePaused, now)
                        .user(user_id)
                        .with("until", until)
                        .with("failures_in_a_row", limits.fatigue_limit),
                )
                .await;
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(user_id = %user_id, error = %e, "could not record a challenge outcome")
        }
    }
}
