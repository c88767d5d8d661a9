//! Accounts and enrollment: creating a citizen (the sheet's secrets), and a
//! device enrolling with its activation code.

use super::*;
use crate::store::Channel;
use crate::store::records::AdditionActivation;

capability! {
    /// Creating citizens and enrolling their phones.
    pub Accounts
}

impl Accounts<'_> {
    /// Create an account with a random initial password and a single-use
    /// activation code (for its first phone), both shown once.
    pub(super) async fn create_account(
        &self,
        req: CreateCitizenRequest,
        role: Role,
        municipality: Option<String>,
        created_by: Option<&str>,
    ) -> Result<(User, CreateCitizenResponse)> {
        let display_name = clean_text("display_name", &req.display_name, MAX_NAME_LEN)?;
        if req.username.trim().is_empty() {
            return self
                .with_suggested_username(req, &display_name, role, municipality, created_by)
                .await;
        }
        let username = normalize_username(&req.username)?;
        let email = req.email.as_deref().map(clean_email).transpose()?;
        let phone = req.phone.as_deref().map(clean_phone).transpose()?;
        let rng = self.rng.as_ref();
        let password = grouped(&clock::string(rng, PASSWORD_ALPHABET, 16)?);
        let code = grouped(&clock::string(rng, CODE_ALPHABET, CODE_LEN)?);
        let now = self.clock.now();
        let user = User {
            id: new_id(rng)?,
            username,
            display_name,
            password_hash: self
                .hasher
                .hash(SecretString::from(password.clone()))
                .await?,
            email,
            phone,
            role,
            municipality,
            pwd_change_required: true,
            locked: false,
            fraud_reported_at: None,
            deactivated: false,
            generation: 0,
            created_by: created_by.map(str::to_owned),
            created_at: now,
        };
        let activation = Activation {
            code_hash: code_hash(&code).ok_or_else(|| Error::Internal("generated code".into()))?,
            user_id: user.id.clone(),
            expires_at: now + secs(self.settings.login.activation_ttl),
        };
        self.store.create_user(&user, &activation).await?;
        tracing::info!(user_id = %user.id, role = role.as_str(), "account created");
        let answer = CreateCitizenResponse {
            user_id: user.id.clone(),
            username: user.username.clone(),
            initial_password: password.into(),
            activation_code: code.into(),
            activation_expires_at: activation.expires_at,
        };
        Ok((user, answer))
    }

    /// An account whose username is suggested from the name: `ime.prezime`,
    /// then `ime.prezime2`, … (one taken in between by a concurrent
    /// creation: the next one).
    async fn with_suggested_username(
        &self,
        req: CreateCitizenRequest,
        display_name: &str,
        role: Role,
        municipality: Option<String>,
        created_by: Option<&str>,
    ) -> Result<(User, CreateCitizenResponse)> {
        let base = suggest_username(display_name);
        for n in 1..=SUGGESTION_TRIES {
            let candidate = if n == 1 {
                base.clone()
            } else {
                format!("{base}{n}")
            };
            if self.store.user_by_name(&candidate).await?.is_some() {
                continue;
            }
            let req = CreateCitizenRequest {
                username: candidate,
                ..req.clone()
            };
            match Box::pin(self.create_account(req, role, municipality.clone(), created_by)).await {
                Err(Error::UsernameTaken) => continue,
                other => return other,
            }
        }
        Err(Error::UsernameTaken)
    }

    /// Create a citizen (officials, admins, superadmins, the bootstrap token).
    pub async fn create_citizen(
        &self,
        req: CreateCitizenRequest,
        by: &Actor,
        caller: &Caller,
    ) -> Result<CreateCitizenResponse> {
        by.require_staff(&[Role::Official, Role::Admin, Role::Superadmin], true)?;
        // The citizen belongs to the municipality whose counter opened the
        // account: its admins see everything that happens to it.
        let (user, answer) = self
            .create_account(
                req,
                Role::Citizen,
                by.municipality().map(str::to_owned),
                by.staff_id().map(UserId::as_str),
            )
            .await?;
        self.audit
            .record(
                by.event(AuditKind::CitizenCreated, self.clock.now())
                    .user(&user.id)
                    .caller(caller)
                    .with("username", user.username.as_str()),
            )
            .await;
        Ok(answer)
    }

    /// Enroll a device with an activation code and a proof of key possession.
    pub async fn enroll(
        &self,
        req: EnrollmentRequest,
        caller: &Caller,
    ) -> Result<EnrollmentResponse> {
        if let Some(ip) = caller.ip {
            let now = self.clock.now();
            self.limit(
                &RateKey::EnrollFrom(ip),
                true,
                self.settings.limits.ip_enroll_limit,
                now,
            )
            .await?;
        }
        let result = self.enroll_inner(req).await;
        let now = self.clock.now();
        let event = match &result {
            Ok((done, via)) => Event::new(AuditKind::DeviceEnrolled, now)
                .user(&done.user_id)
                .with("device_id", done.device_id.as_str())
                .with("enrolled_via", via.as_str()),
            Err(e @ (Error::InvalidActivationCode | Error::InvalidSignature(_))) => {
                Event::new(AuditKind::EnrollmentFailed, now).with("reason", e.code().as_str())
            }
            Err(_) => return result.map(|(done, _)| done),
        };
        self.audit.record(event.caller(caller)).await;
        // The account's first device also brings its recovery codes (after
        // the enrollment's own event, so the trail reads in order).
        let mut result = result.map(|(done, _)| done);
        if let Ok(done) = &mut result {
            done.recovery_codes = self
                .recovery_codes()
                .issue_recovery_codes(&done.user_id, caller)
                .await?;
            done.offline_secret = Some(
                self.offline_codes()
                    .issue_offline_secret(&done.device_id)
                    .await?,
            );
        }
        result
    }

    /// How an activation code binds its device: released by an addition,
    /// or printed at the counter.
    async fn channel_of(&self, code_hash: &str, now: i64) -> Result<Channel> {
        let addition = self
            .records::<AdditionActivation>()
            .get(code_hash, now)
            .await?;
        Ok(if addition.is_some() {
            Channel::Addition
        } else {
            Channel::Counter
        })
    }

    pub(super) async fn enroll_inner(
        &self,
        req: EnrollmentRequest,
    ) -> Result<(EnrollmentResponse, Channel)> {
        let name = clean_text("name", &req.name, MAX_NAME_LEN)?;
        let platform = clean_text("platform", &req.platform, MAX_NAME_LEN)?;
        let device_key = decoding_key(&req.public_key)?;
        let now = self.clock.now();
        let proof: EnrollmentProofClaims = verify_jws(&req.proof, TYP_ENROLLMENT, &device_key)?;
        let (Some(hash), Some(proof_hash)) = (
            code_hash(req.activation_code.expose()),
            code_hash(&proof.act),
        ) else {
            return Err(Error::InvalidActivationCode);
        };
        if !ct_eq_str(&hash, &proof_hash) {
            return Err(Error::InvalidSignature(
                "the proof is for another activation code",
            ));
        }
        if proof.iat < now - ENROLLMENT_PROOF_MAX_AGE_SECS || proof.iat > now + MAX_CLOCK_SKEW_SECS
        {
            return Err(Error::InvalidSignature("the proof is not fresh"));
        }
        let push = req
            .push
            .as_ref()
            .map(|p| self.push.validate(p))
            .transpose()?;
        let via = self.channel_of(&hash, now).await?;
        let device = Device {
            id: new_id(self.rng.as_ref())?,
            user_id: UserId::default(),
            name,
            platform,
            public_key: EcJwk::p256(req.public_key.x.clone(), req.public_key.y.clone()),
            push,
            push_gone: false,
            created_at: now,
            enrolled_via: Some(via),
        };
        let device_id = device.id.clone();
        match self.store.enroll_device(&hash, device, now).await? {
            EnrollOutcome::InvalidCode => Err(Error::InvalidActivationCode),
            EnrollOutcome::Enrolled(user) => {
                tracing::info!(user_id = %user.id, device_id = %device_id, "device enrolled");
                Ok((
                    EnrollmentResponse {
                        device_id,
                        user_id: user.id,
                        username: user.username,
                        server_jwks: self.keys.jwks(),
                        vapid_public_key: self.keys.vapid_public_b64(),
                        recovery_codes: None,
                        offline_secret: None,
                    },
                    via,
                ))
            }
        }
    }
}
