//! The phone's side: its pull token, pending challenges, the seen
//! acknowledgement, and the verification of its signed answer.

use super::*;

impl Potvrda {
    /// The device's own view of itself, for a valid pull token.
    pub async fn device_info(
        &self,
        device_id: &str,
        pull_token: Option<&str>,
        caller: &Caller,
    ) -> Result<DeviceInfo> {
        self.device_limit(caller)?;
        let device = self.authenticate_device(device_id, pull_token).await?;
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

    /// The pending challenges of a device, for a valid pull token.
    pub async fn pending_challenges(
        &self,
        device_id: &str,
        pull_token: Option<&str>,
        caller: &Caller,
    ) -> Result<Vec<String>> {
        self.device_limit(caller)?;
        let device = self.authenticate_device(device_id, pull_token).await?;
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
                    .find(|c| c.device_id == device_id)?
                    .jws;
                self.metrics
                    .challenge_fetched(created_ms, self.clock.now_ms());
                Some(jws)
            })
            .collect())
    }

    /// The phone has the challenge on screen (delivered by push or pulled):
    /// recorded once per challenge as the `seen` stage, on the server's clock.
    pub async fn acknowledge(
        &self,
        cid: &str,
        device_id: Option<&str>,
        pull_token: Option<&str>,
        caller: &Caller,
    ) -> Result<()> {
        self.device_limit(caller)?;
        let device_id = device_id.ok_or(Error::Unauthorized)?;
        let device = self.authenticate_device(device_id, pull_token).await?;
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
    pub(super) async fn authenticate_device(
        &self,
        device_id: &str,
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
        if claims.sub != device_id || claims.aud != AUD_PULL {
            return Err(Error::InvalidSignature(
                "pull token is for another device or audience",
            ));
        }
        if claims.iat < now - PULL_TOKEN_MAX_AGE_SECS || claims.iat > now + MAX_CLOCK_SKEW_SECS {
            return Err(Error::InvalidSignature("pull token is not fresh"));
        }
        Ok(device)
    }

    /// Verify the phone's signed answer to challenge `cid` and decide the login.
    pub async fn respond(&self, cid: &str, approval: &str, caller: &Caller) -> Result<LoginStatus> {
        self.device_limit(caller)?;
        let header = jsonwebtoken::decode_header(approval)
            .map_err(|_| Error::InvalidSignature("approval is not a JWS"))?;
        let device_id = header
            .kid
            .ok_or(Error::InvalidSignature("approval has no kid"))?;
        let device = self
            .store
            .device(&device_id)
            .await?
            .ok_or(Error::UnknownDevice)?;
        let claims: ApprovalClaims =
            verify_jws(approval, TYP_APPROVAL, &decoding_key(&device.public_key)?)?;
        if claims.cid != cid {
            return Err(Error::InvalidRequest(
                "the approval is for another challenge".into(),
            ));
        }
        let login = self
            .store
            .login_by_challenge(cid)
            .await?
            .ok_or(Error::NotFound)?;
        let rec = &login.record;
        if rec.user_id != device.user_id || !rec.challenges.iter().any(|c| c.device_id == device.id)
        {
            return Err(Error::InvalidSignature("this device was not asked"));
        }
        if !ct_eq_str(&claims.nonce, &rec.nonce) {
            return Err(Error::InvalidSignature(
                "nonce does not match the challenge",
            ));
        }
        // What the phone showed: the hash of the claims sent to this device
        // (required since protocol 2, as is the approval's jti).
        let (Some(hash), Some(jti)) = (&claims.ctx_hash, &claims.jti) else {
            return Err(Error::InvalidSignature(
                "ctx_hash and jti are required (protocol 2)",
            ));
        };
        let sent = rec
            .challenges
            .iter()
            .find(|c| c.device_id == device.id)
            .map(|c| payload_hash(&c.jws))
            .unwrap_or_default();
        if !ct_eq_str(hash, &sent) {
            return Err(Error::InvalidSignature(
                "ctx_hash does not match the challenge sent",
            ));
        }
        let now = self.clock.now();
        // Each approval once, by its jti, before the state change is even tried.
        if jti.is_empty() || jti.len() > 64 {
            return Err(Error::InvalidSignature("jti must be 1-64 characters"));
        }
        let spent = DeviceJti {
            device_id: device.id.clone(),
            jti: jti.to_owned(),
        };
        if !self
            .records::<ApprovalJtiUsed>()
            .put_new(&spent, &Marker, now + JTI_KEEP_SECS, now)
            .await?
        {
            return Err(Error::AlreadyDecided);
        }
        if claims.iat < rec.created_at - MAX_CLOCK_SKEW_SECS
            || claims.iat > now + MAX_CLOCK_SKEW_SECS
        {
            return Err(Error::InvalidSignature("approval is not fresh"));
        }
        match login.status(now) {
            LoginStatus::Pending => {}
            LoginStatus::Expired => return Err(Error::Expired),
            _ => return Err(Error::AlreadyDecided),
        }
        let (to, mismatch) = decide::outcome(rec, &claims);
        let decided_ms = self.clock.now_ms();
        match self
            .store
            .decide(&rec.id, to, now, decided_ms, Some(jti))
            .await?
        {
            DecideOutcome::Decided => {
                let decided = Decided {
                    rec,
                    device_id: &device.id,
                    claims: &claims,
                    approved: to == LoginState::Approved,
                    mismatch,
                    now,
                    decided_ms,
                };
                self.after_decision(&decided, caller).await?;
            }
            DecideOutcome::AlreadyDecided => return Err(Error::AlreadyDecided),
            DecideOutcome::Expired => return Err(Error::Expired),
            DecideOutcome::NotFound => return Err(Error::NotFound),
        }
        tracing::info!(
            login_id = rec.id,
            cid,
            device_id,
            decision = to.as_str(),
            number_mismatch = mismatch,
            "challenge decided"
        );
        if mismatch {
            return Err(Error::NumberMismatch);
        }
        Ok(if to == LoginState::Approved {
            LoginStatus::Approved
        } else {
            LoginStatus::Denied
        })
    }
}

/// How long a spent approval `jti` is remembered: far beyond any challenge.
pub(super) const JTI_KEEP_SECS: i64 = 86_400;
