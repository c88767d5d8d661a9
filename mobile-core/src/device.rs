//! The enrolled device, platform-neutral: what every app (and the browser
//! companion) keeps, the requests it sends and what it makes of the answers.
//! The key is behind a [`Signer`], the citizen behind a [`UserVerifier`], the
//! network behind [`crate::transport`], and the time is a parameter, so the
//! same code runs under uniffi, in `wasm32` and in the virtual phone.

use potvrda_proto::api::{
    ChallengeAnswer, ChallengeAnswerResult, DeviceInfo, EnrollmentResponse, LoginStatus,
    PendingChallenges, PushSubscription,
};
use potvrda_proto::jose::{Decision, Jwks};
use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::transport::{Request, Response};
use crate::{Challenge, Error, PushKeyPair, Result, Signer, UserVerifier, protocol};

/// How challenges reach this device.
#[derive(Debug, Clone)]
pub enum PushSetup {
    /// None: the app pulls (`GET …/challenges`) when it opens or is woken.
    Pull,
    /// A Web Push endpoint (UnifiedPush distributor, Mozilla autopush, …)
    /// that delivers raw RFC 8291 messages: the core makes the keys and
    /// decrypts ([`Enrolled::open_push`]).
    Raw {
        /// The endpoint URL the distributor gave.
        endpoint: String,
    },
    /// A subscription whose keys the platform keeps and whose messages it
    /// decrypts (the browser's `PushManager`): [`Enrolled::open_push_text`].
    Decrypted(PushSubscription),
}

impl PushSetup {
    /// The keys made for a raw endpoint, and the subscription to register.
    fn prepare(
        self,
    ) -> (
        Option<PushKeyPair>,
        Option<String>,
        Option<PushSubscription>,
    ) {
        match self {
            Self::Pull => (None, None, None),
            Self::Raw { endpoint } => {
                let keys = PushKeyPair::generate();
                let sub = keys.subscription(&endpoint);
                (Some(keys), Some(endpoint), Some(sub))
            }
            Self::Decrypted(sub) => (None, None, Some(sub)),
        }
    }
}

fn raw_keys(keys: Option<PushKeyPair>, endpoint: Option<String>) -> Option<RawPushKeys> {
    keys.zip(endpoint).map(|(keys, endpoint)| {
        let (secret, auth) = keys.to_b64();
        RawPushKeys {
            endpoint,
            secret: secret.to_string(),
            auth: auth.to_string(),
        }
    })
}

/// A change of the push subscription sent and not yet answered.
#[derive(Debug)]
pub struct PendingPushChange {
    push: Option<PushKeyPair>,
    endpoint: Option<String>,
}

impl PendingPushChange {
    /// Read the server's answer: the device keeps its new push keys (a raw
    /// endpoint's) and learns the server's view of it.
    pub fn finish(self, device: &mut Enrolled, response: &Response) -> Result<DeviceInfo> {
        let info: DeviceInfo = response.json()?;
        device.push = raw_keys(self.push, self.endpoint);
        Ok(info)
    }
}

/// The push keys of a [`PushSetup::Raw`] device (base64url; secret).
#[derive(Clone, Serialize, Deserialize)]
pub struct RawPushKeys {
    /// The endpoint they belong to.
    pub endpoint: String,
    /// ECDH private scalar.
    pub secret: String,
    /// Auth secret.
    pub auth: String,
}

/// What an enrolled device keeps (the app stores it encrypted: it holds the
/// push keys and the offline secret; the device key is not in it).
#[derive(Clone, Serialize, Deserialize)]
pub struct Enrolled {
    /// Server base URL, no trailing slash.
    pub server: String,
    /// This device's id (`kid` of its signatures).
    pub device_id: String,
    /// The account.
    pub user_id: String,
    /// Its username, to show.
    pub username: String,
    /// The keys challenges must be signed with.
    pub server_jwks: Jwks,
    /// The server's VAPID key (for the platform's push subscription).
    pub vapid_public_key: String,
    /// Raw push keys, for [`PushSetup::Raw`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<RawPushKeys>,
    /// The offline-code secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_secret: Option<String>,
    /// The language of what the device says (its confirmation prompt):
    /// the phone's, or the citizen's choice (issue 16).
    #[serde(default)]
    pub locale: potvrda_i18n::Locale,
}

impl std::fmt::Debug for Enrolled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolled")
            .field("server", &self.server)
            .field("device_id", &self.device_id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// An enrollment sent and not yet answered.
#[derive(Debug)]
pub struct PendingEnrollment {
    server: String,
    push: Option<PushKeyPair>,
    endpoint: Option<String>,
}

/// A finished enrollment.
#[derive(Debug)]
pub struct EnrollmentDone {
    /// The device to keep.
    pub device: Enrolled,
    /// With the account's first device only: the recovery codes, to show once.
    pub recovery_codes: Option<Vec<String>>,
}

/// Start enrolling with a scanned sheet: the request to send, and what to
/// finish with when the answer comes.
pub fn begin_enrollment(
    activation: &Activation,
    signer: &dyn Signer,
    name: &str,
    platform: &str,
    push: PushSetup,
    now: i64,
) -> Result<(PendingEnrollment, Request)> {
    let (keys, endpoint, subscription) = push.prepare();
    let body =
        protocol::enrollment_request(signer, &activation.code, name, platform, subscription, now)?;
    let request = Request::post_json(format!("{}/v1/enrollments", activation.server), None, &body)?;
    Ok((
        PendingEnrollment {
            server: activation.server.clone(),
            push: keys,
            endpoint,
        },
        request,
    ))
}

impl PendingEnrollment {
    /// Read the server's answer to the enrollment request.
    pub fn finish(self, response: &Response) -> Result<EnrollmentDone> {
        let answer: EnrollmentResponse = response.json()?;
        let push = raw_keys(self.push, self.endpoint);
        Ok(EnrollmentDone {
            device: Enrolled {
                server: self.server,
                device_id: answer.device_id.into_string(),
                user_id: answer.user_id.into_string(),
                username: answer.username,
                server_jwks: answer.server_jwks,
                vapid_public_key: answer.vapid_public_key,
                push,
                offline_secret: answer.offline_secret.map(|s| s.expose().to_owned()),
                locale: potvrda_i18n::Locale::default(),
            },
            recovery_codes: answer
                .recovery_codes
                .map(|codes| codes.iter().map(|c| c.expose().to_owned()).collect()),
        })
    }
}

impl Enrolled {
    /// `GET /v1/devices/{id}/challenges` with a fresh pull token.
    pub fn pending_request(&self, signer: &dyn Signer, now: i64) -> Result<Request> {
        let token = protocol::pull_token(signer, &self.device_id, now)?;
        Ok(Request::get(
            format!("{}/v1/devices/{}/challenges", self.server, self.device_id),
            &token,
        ))
    }

    /// `GET /v1/devices/{id}`: the server's view of this device (whether
    /// its push subscription is `gone`).
    pub fn info_request(&self, signer: &dyn Signer, now: i64) -> Result<Request> {
        let token = protocol::pull_token(signer, &self.device_id, now)?;
        Ok(Request::get(
            format!("{}/v1/devices/{}", self.server, self.device_id),
            &token,
        ))
    }

    /// `PUT /v1/devices/{id}/push` with a new subscription, or `DELETE` it
    /// with [`PushSetup::Pull`] (protocol 3, issue 15): what a device does when the
    /// server reports its subscription `gone`, or when its distributor or
    /// the browser gives it a new one.
    pub fn push_request(
        &self,
        signer: &dyn Signer,
        setup: PushSetup,
        now: i64,
    ) -> Result<(PendingPushChange, Request)> {
        let token = protocol::pull_token(signer, &self.device_id, now)?;
        let url = format!("{}/v1/devices/{}/push", self.server, self.device_id);
        let (push, endpoint, subscription) = setup.prepare();
        // The server names its own services in this language (issue 16).
        let subscription = subscription.map(|sub| PushSubscription {
            locale: sub.locale.or(Some(self.locale)),
            ..sub
        });
        let request = match subscription {
            Some(sub) => Request::json("PUT", url, Some(&token), &sub)?,
            None => Request {
                method: "DELETE",
                ..Request::get(url, &token)
            },
        };
        Ok((PendingPushChange { push, endpoint }, request))
    }

    /// The verified challenges in the answer to [`pending_request`](Self::pending_request).
    /// One that does not verify (forged, expired, another device's) fails the whole answer.
    pub fn read_pending(&self, response: &Response, now: i64) -> Result<Vec<Challenge>> {
        let pending: PendingChallenges = response.json()?;
        pending
            .challenges
            .iter()
            .map(|c| self.verify(c, now))
            .collect()
    }

    /// A challenge JWS from anywhere (push, pull), verified.
    pub fn verify(&self, jws: &str, now: i64) -> Result<Challenge> {
        protocol::verify_challenge(jws, &self.server_jwks, &self.device_id, now)
    }

    /// A raw RFC 8291 push message (`aes128gcm` body): decrypted with this
    /// device's push keys, then verified.
    pub fn open_push(&self, body: &[u8], now: i64) -> Result<Challenge> {
        match self.open_pushed(body, now)? {
            protocol::Pushed::Challenge(c) => Ok(*c),
            protocol::Pushed::Withdrawn(_) => {
                Err(Error::MalformedJws("a withdrawal, not a challenge"))
            }
        }
    }

    /// A raw RFC 8291 push message, decrypted and verified: a challenge or
    /// the withdrawal of one.
    pub fn open_pushed(&self, body: &[u8], now: i64) -> Result<protocol::Pushed> {
        let keys = self.push.as_ref().ok_or(Error::PushDecrypt)?;
        let plain = PushKeyPair::from_b64(&keys.secret, &keys.auth)?.decrypt(body)?;
        let text =
            std::str::from_utf8(&plain).map_err(|_| Error::MalformedJws("push is not UTF-8"))?;
        self.open_pushed_text(text, now)
    }

    /// A push the platform already decrypted, verified: a challenge or the
    /// withdrawal of one.
    pub fn open_pushed_text(&self, text: &str, now: i64) -> Result<protocol::Pushed> {
        protocol::verify_pushed(text.trim(), &self.server_jwks, &self.device_id, now)
    }

    /// A push message the platform already decrypted (the browser's push
    /// event): the challenge JWS, verified as any other.
    pub fn open_push_text(&self, text: &str, now: i64) -> Result<Challenge> {
        self.verify(text.trim(), now)
    }

    /// `POST /v1/challenges/{cid}/seen`: the challenge is on screen.
    pub fn seen_request(&self, signer: &dyn Signer, cid: &str, now: i64) -> Result<Request> {
        let token = protocol::pull_token(signer, &self.device_id, now)?;
        Ok(Request::post_empty(
            format!(
                "{}/v1/challenges/{cid}/seen?device_id={}",
                self.server, self.device_id
            ),
            &token,
        ))
    }

    /// The signed answer to `challenge` as a request. Approving needs the
    /// number from the login screen; approving and reporting fraud need the
    /// citizen's confirmation through `verifier` ([`protocol::approval`]).
    pub fn answer_request(
        &self,
        signer: &dyn Signer,
        verifier: &dyn UserVerifier,
        challenge: &Challenge,
        decision: Decision,
        number: Option<u8>,
        now: i64,
    ) -> Result<Request> {
        let approval = protocol::approval(
            signer,
            verifier,
            &self.device_id,
            challenge,
            decision,
            (number, self.locale),
            now,
        )?;
        self.post_answer(challenge, approval)
    }

    fn post_answer(&self, challenge: &Challenge, approval: String) -> Result<Request> {
        Request::post_json(
            format!(
                "{}/v1/challenges/{}/response",
                self.server, challenge.claims.cid
            ),
            None,
            &ChallengeAnswer { approval },
        )
    }

    /// The approval of a risky challenge with the login screen's code.
    pub fn answer_code_request(
        &self,
        signer: &dyn Signer,
        verifier: &dyn UserVerifier,
        challenge: &Challenge,
        code: &str,
        now: i64,
    ) -> Result<Request> {
        let approval = protocol::approval_with_code(
            signer,
            verifier,
            &self.device_id,
            challenge,
            (code, self.locale),
            now,
        )?;
        self.post_answer(challenge, approval)
    }

    /// What the server made of an answer: `approved` or `denied`.
    pub fn read_answer(response: &Response) -> Result<LoginStatus> {
        Ok(response.json::<ChallengeAnswerResult>()?.status)
    }

    /// The offline code at `now`, when the server gave a secret.
    pub fn offline_code(&self, now: i64) -> Result<Option<String>> {
        self.offline_secret
            .as_deref()
            .map(|s| protocol::offline_code(s, now))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SoftwareSigner, jws};
    use potvrda_proto::jose::{ChallengeClaims, LoginContext, TYP_CHALLENGE};

    struct Yes;
    impl UserVerifier for Yes {
        fn verify(&self, _reason: &str) -> Result<bool> {
            Ok(true)
        }
    }

    fn answer_of(device: &SoftwareSigner, server: &SoftwareSigner) -> Response {
        let mut jwk = server.public_jwk();
        jwk.kid = Some("srv".into());
        let body = EnrollmentResponse {
            device_id: "dev1".into(),
            user_id: "u1".into(),
            username: "jelena".into(),
            server_jwks: Jwks { keys: vec![jwk] },
            vapid_public_key: "BV".into(),
            recovery_codes: Some(vec!["r1".into()]),
            offline_secret: None,
        };
        let _ = device;
        Response {
            status: 201,
            body: serde_json::to_vec(&body).expect("serialises"),
        }
    }

    fn challenge_jws(server: &SoftwareSigner, now: i64) -> String {
        jws::sign(
            server,
            TYP_CHALLENGE,
            Some("srv"),
            &ChallengeClaims {
                cid: "c1".into(),
                nonce: "n".into(),
                sub: "jelena".into(),
                aud: "dev1".into(),
                ctx: LoginContext::default(),
                iat: now,
                exp: now + 60,
                risk: None,
            },
        )
        .expect("signs")
    }

    #[test]
    fn an_enrollment_with_raw_push_keeps_its_keys_and_opens_rfc8291_messages() {
        let (device, server) = (SoftwareSigner::generate(), SoftwareSigner::generate());
        let activation = Activation {
            server: "https://potvrda.example".into(),
            code: "ABCD-EFGH-JKLM".into(),
        };
        let (pending, req) = begin_enrollment(
            &activation,
            &device,
            "phone",
            "android",
            PushSetup::Raw {
                endpoint: "https://push.example/x".into(),
            },
            100,
        )
        .expect("builds");
        assert_eq!(
            (req.method, req.url.as_str()),
            ("POST", "https://potvrda.example/v1/enrollments")
        );
        let sent: potvrda_proto::api::EnrollmentRequest =
            serde_json::from_slice(&req.body).expect("json");
        let sub = sent.push.expect("subscription sent");
        assert_eq!(sub.endpoint, "https://push.example/x");

        let done = pending
            .finish(&answer_of(&device, &server))
            .expect("finishes");
        assert_eq!(done.recovery_codes, Some(vec!["r1".to_string()]));
        let enrolled = done.device;

        // The server encrypts the challenge to the subscription it was given.
        let jws_text = challenge_jws(&server, 1000);
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let pk = p256::PublicKey::from_sec1_bytes(&b64.decode(&sub.keys.p256dh).expect("b64"))
            .expect("point");
        let auth =
            web_push_native::Auth::clone_from_slice(&b64.decode(&sub.keys.auth).expect("b64"));
        let body =
            web_push_native::encrypt(jws_text.clone().into_bytes(), &pk, &auth).expect("encrypts");
        let c = enrolled.open_push(&body, 1001).expect("opens");
        assert_eq!(c.claims.cid, "c1");
        // The same challenge, decrypted by the platform, verifies the same way.
        assert_eq!(
            enrolled.open_push_text(&jws_text, 1001).expect("verifies"),
            c
        );
        // A forged challenge is refused on either path.
        let forged = challenge_jws(&SoftwareSigner::generate(), 1000);
        assert!(matches!(
            enrolled.open_push_text(&forged, 1001),
            Err(Error::BadSignature)
        ));

        // The state survives a JSON round trip (the app stores it).
        let again: Enrolled =
            serde_json::from_str(&serde_json::to_string(&enrolled).expect("ser")).expect("de");
        assert_eq!(again.open_push(&body, 1001).expect("opens"), c);
        assert!(!format!("{again:?}").contains(&again.push.as_ref().expect("keys").secret));

        let answer = enrolled
            .answer_request(&device, &Yes, &c, Decision::Approve, Some(42), 1002)
            .expect("signs");
        assert_eq!(
            answer.url,
            "https://potvrda.example/v1/challenges/c1/response"
        );
        let sent: ChallengeAnswer = serde_json::from_slice(&answer.body).expect("json");
        let claims: potvrda_proto::jose::ApprovalClaims = jws::parse(&sent.approval, None)
            .and_then(|p| p.verify(&device.public_jwk()))
            .expect("signed by the device key");
        assert_eq!(claims.number, Some(42));

        let seen = enrolled.seen_request(&device, "c1", 1002).expect("builds");
        assert!(seen.body.is_empty() && seen.url.ends_with("/seen?device_id=dev1"));
        let pull = enrolled.pending_request(&device, 1002).expect("builds");
        assert!(
            pull.headers
                .iter()
                .any(|(n, v)| n == "Authorization" && v.starts_with("Bearer "))
        );
    }

    #[test]
    fn a_pending_answer_with_one_bad_challenge_is_refused_whole() {
        let (device, server) = (SoftwareSigner::generate(), SoftwareSigner::generate());
        let activation = Activation {
            server: "https://p.example".into(),
            code: "ABCD-EFGH-JKLM".into(),
        };
        let (pending, _) =
            begin_enrollment(&activation, &device, "p", "ios", PushSetup::Pull, 1).expect("ok");
        let enrolled = pending
            .finish(&answer_of(&device, &server))
            .expect("finishes")
            .device;
        let good = challenge_jws(&server, 1000);
        let body = |list: Vec<String>| Response {
            status: 200,
            body: serde_json::to_vec(&PendingChallenges { challenges: list }).expect("json"),
        };
        assert_eq!(
            enrolled
                .read_pending(&body(vec![good.clone()]), 1001)
                .expect("verifies")
                .len(),
            1
        );
        let forged = challenge_jws(&SoftwareSigner::generate(), 1000);
        assert!(
            enrolled
                .read_pending(&body(vec![good, forged]), 1001)
                .is_err()
        );
        assert!(matches!(
            enrolled.read_pending(
                &Response {
                    status: 401,
                    body: br#"{"error":"unauthorized","message":"x"}"#.to_vec()
                },
                1001
            ),
            Err(Error::Server { status: 401, .. })
        ));
        // A pull-only device has no push keys: a raw message cannot be opened.
        assert!(matches!(
            enrolled.open_push(b"x", 1001),
            Err(Error::PushDecrypt)
        ));
    }
}
