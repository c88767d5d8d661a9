//! The phone's side: its pull token, pending challenges, the seen
//! acknowledgement, and the verification of its signed answer.

use super::factors::{Answer, Evidence};
use super::*;

capability! {
    /// The phone's endpoints.
    pub Devices
}

impl Devices<'_> {
    /// The device actor of a request: its address within the per-address
    /// limit (checked first, before any signature), and a fresh pull token
    /// signed by that device, for that device.
    pub async fn authenticate(
        &self,
        device_id: &DeviceId,
        pull_token: Option<&str>,
        caller: &Caller,
    ) -> Result<Actor> {
        self.device_limit(caller)?;
        let device = self.verify_pull_token(device_id, pull_token).await?;
        Ok(Actor::Device(Box::new(device)))
    }

    /// The device's own view of itself (the device actor only).
    pub async fn device_info(&self, by: &Actor) -> Result<DeviceInfo> {
        let device = by.device()?.clone();
        Ok(DeviceInfo {
            device_id: device.id,
            name: device.name,
            platform: device.platform,
            push: match (&device.push, device.push_gone) {
                (None, _) => PushStatus::None,
                (Some(_), true) => PushStatus::Gone,
                (Some(_), false) => PushStatus::Active,
            },
            created_at: device.created_at,
        })
    }

    /// Replace the device's push subscription, or remove it with `None`
    /// (the device actor only): the enrollment's allow-list and checks, and
    /// audited. A subscription found gone is no longer gone.
    pub async fn set_push(
        &self,
        by: &Actor,
        subscription: Option<&potvrda_proto::api::PushSubscription>,
        caller: &Caller,
    ) -> Result<DeviceInfo> {
        let device = by.device()?;
        let target = subscription.map(|s| self.push.validate(s)).transpose()?;
        let origin = target.as_ref().and_then(|t| {
            url::Url::parse(&t.endpoint)
                .ok()
                .map(|u| u.origin().ascii_serialization())
        });
        if !self
            .store
            .set_push(&device.user_id, &device.id, target.clone())
            .await?
        {
            return Err(Error::InvalidCredentials);
        }
        let event = by
            .event(AuditKind::PushSubscriptionChanged, self.clock.now())
            .user(&device.user_id)
            .caller(caller)
            .with("device_id", device.id.as_str())
            .with(
                "change",
                if target.is_some() {
                    "replaced"
                } else {
                    "removed"
                },
            );
        self.audit
            .record(match origin {
                Some(o) => event.with("push_service", o),
                None => event,
            })
            .await;
        let mut changed = device.clone();
        changed.push = target;
        changed.push_gone = false;
        self.device_info(&Actor::Device(Box::new(changed))).await
    }

    /// The pending challenges of a device (the device actor only).
    pub async fn pending_challenges(&self, by: &Actor) -> Result<Vec<String>> {
        let device = by.device()?;
        let now = self.clock.now();
        Ok(self
            .store
            .pending_logins(&device.user_id, now)
            .await?
            .into_iter()
            .filter_map(|l| {
                let created_ms = l.record.created_at_ms;
                let jws = l
                    .record
                    .challenges
                    .into_iter()
                    .find(|c| c.device_id == device.id)?
                    .jws;
                self.metrics
                    .challenge_fetched(created_ms, self.clock.now_ms());
                Some(jws)
            })
            .collect())
    }

    /// The phone has the challenge on screen (delivered by push or pulled):
    /// recorded once per challenge as the `seen` stage, on the server's clock.
    /// The device actor only.
    pub async fn acknowledge(&self, cid: &ChallengeId, by: &Actor) -> Result<()> {
        let device = by.device()?;
        let login = self
            .store
            .login_by_challenge(cid)
            .await?
            .ok_or(Error::NotFound)?;
        if login.record.user_id != device.user_id
            || !login
                .record
                .challenges
                .iter()
                .any(|c| c.device_id == device.id)
        {
            return Err(Error::NotFound);
        }
        if login.state == LoginState::Pending && self.store.mark_seen(&login.record.id).await? {
            self.metrics
                .challenge_seen(login.record.created_at_ms, self.clock.now_ms());
        }
        Ok(())
    }

    /// The device a fresh pull token (signed by that device, for that device) speaks for.
    async fn verify_pull_token(
        &self,
        device_id: &DeviceId,
        pull_token: Option<&str>,
    ) -> Result<Device> {
        let token = pull_token.ok_or(Error::Unauthorized)?;
        let kid = jsonwebtoken::decode_header(token)
            .map_err(|_| Error::InvalidSignature("pull token is not an ES256 JWS"))?
            .kid;
        if kid.as_deref() != Some(device_id) {
            return Err(Error::InvalidSignature("pull token kid is not this device"));
        }
        let device = self
            .store
            .device(device_id)
            .await?
            .ok_or(Error::UnknownDevice)?;
        let claims: PullClaims = verify_jws(token, TYP_PULL, &decoding_key(&device.public_key)?)?;
        let now = self.clock.now();
        if claims.sub != device_id.as_str() || claims.aud != AUD_PULL {
            return Err(Error::InvalidSignature(
                "pull token is for another device or audience",
            ));
        }
        if claims.iat < now - PULL_TOKEN_MAX_AGE_SECS || claims.iat > now + MAX_CLOCK_SKEW_SECS {
            return Err(Error::InvalidSignature("pull token is not fresh"));
        }
        Ok(device)
    }

    /// Verify the phone's signed answer to challenge `cid` and decide the
    /// login (the push approval factor: `factors/push.rs`).
    pub async fn respond(
        &self,
        cid: &ChallengeId,
        approval: &str,
        caller: &Caller,
    ) -> Result<LoginStatus> {
        let answer = Answer::Approval { cid, jws: approval };
        let v = self.factors().answer(answer, caller).await?;
        let mismatch = matches!(v.evidence, Evidence::Approval { mismatch: true, .. });
        if mismatch {
            tracing::info!(login_id = %v.login.record.id, cid = %cid, "number mismatch: denied");
            return Err(Error::NumberMismatch);
        }
        Ok(if v.to == LoginState::Approved {
            LoginStatus::Approved
        } else {
            LoginStatus::Denied
        })
    }
}
