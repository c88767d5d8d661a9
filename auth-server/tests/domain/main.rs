//! Domain services on a real store (the embedded one, in a temporary
//! directory) with a hand-set clock: no port is bound, nothing sleeps.
//! They live here because the domain crate cannot depend on a store backend.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a test harness: failing loudly is its job

use std::sync::Arc;
use std::time::Duration;

use potvrda_proto::api::{LoginRequest, Role};
use potvrda_server::audit::{Audit, Caller};
use potvrda_server::clock::{Clock, ManualClock, Random, SeededRandom, SystemRandom};
use potvrda_server::config::Config;
use potvrda_server::error::Error;
use potvrda_server::password::PasswordHasher;
use potvrda_server::ports::{MemoryNotifier, MemoryPush, NoMeter};
use potvrda_server::service::{ClientCredentials, OidcClient, Parts, Potvrda};
use potvrda_server::store::embedded::EmbeddedStore;
use potvrda_server::store::{Store, User};
use potvrda_server::{keyring, keys};
use secrecy::SecretString;

/// The domain service on the embedded store, a hand-set clock, an
/// in-memory push gateway and no metrics; nothing listens on a port.
struct Domain {
    config: Config,
    svc: Arc<Potvrda>,
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    hasher: PasswordHasher,
    notifier: Arc<MemoryNotifier>,
    _dir: tempfile::TempDir,
}

impl Domain {
    async fn new(config: Config) -> Self {
        Self::with_random(config, Arc::new(SystemRandom::default())).await
    }

    async fn with_random(config: Config, rng: Arc<dyn Random>) -> Self {
        Self::on(config, rng, tempfile::tempdir().expect("tempdir")).await
    }

    /// A second service on a copy of this one's durable store: what it
    /// holds (accounts, devices, records, keys) without redoing its setup.
    async fn copy(&self) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = "potvrda.redb";
        std::fs::copy(self._dir.path().join(file), dir.path().join(file)).expect("copied");
        Self::on(self.config.clone(), Arc::new(SystemRandom::default()), dir).await
    }

    async fn on(config: Config, rng: Arc<dyn Random>, dir: tempfile::TempDir) -> Self {
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).expect("store"));
        let clock = Arc::new(ManualClock::new(1_700_000_000));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let keys = Arc::new(
            keys::ServerKeys::load(None, None, None, store.as_ref())
                .await
                .expect("keys"),
        );
        let keyring = Arc::new(
            keyring::Keyring::load(Arc::clone(&store), Arc::clone(&dyn_clock), Duration::ZERO)
                .await
                .expect("keyring"),
        );
        // The algorithm's minimum cost: these tests are about the flow.
        let hasher = PasswordHasher::new(8, 1, 1, 2).expect("hasher");
        let audit = Arc::new(Audit::new(
            Arc::clone(&store),
            Arc::clone(&dyn_clock),
            Arc::new(NoMeter),
            std::time::Duration::from_secs(3600),
        ));
        let mut settings = config.settings();
        settings.oidc.clients.extend(test_clients());
        let notifier = Arc::new(MemoryNotifier::default());
        let svc = Arc::new(Potvrda::new(Parts {
            settings: Arc::new(settings),
            public_url: "https://potvrda.example".into(),
            store: Arc::clone(&store),
            clock: dyn_clock,
            rng,
            keys,
            hasher: hasher.clone(),
            push: Arc::new(MemoryPush::default()),
            notifier: notifier.clone(),
            logouts: Arc::new(potvrda_server::ports::MemoryLogouts::default()),
            key_sets: Arc::new(potvrda_server::ports::NoKeySets),
            metrics: Arc::new(NoMeter),
            audit,
            keyring,
            risk: config.risk_policy().expect("risk policy"),
        }));
        Self {
            config,
            svc,
            store,
            clock,
            hasher,
            notifier,
            _dir: dir,
        }
    }

    async fn citizen(&self, username: &str, password: &str) {
        self.account(username, password, Role::Citizen, None).await;
    }

    /// An account stored as the counter would leave it, with an activation
    /// whose code hash is `unused-{username}`.
    async fn account(
        &self,
        username: &str,
        password: &str,
        role: Role,
        municipality: Option<&str>,
    ) {
        let hash = self
            .hasher
            .hash(SecretString::from(password.to_owned()))
            .await
            .expect("hash");
        let user = User {
            id: format!("id-{username}").into(),
            username: username.into(),
            display_name: username.into(),
            password_hash: hash,
            email: None,
            phone: None,
            role,
            municipality: municipality.map(str::to_owned),
            pwd_change_required: false,
            locked: false,
            fraud_reported_at: None,
            deactivated: false,
            generation: 0,
            created_by: None,
            created_at: self.clock.now(),
        };
        let activation = potvrda_server::store::Activation {
            code_hash: format!("unused-{username}"),
            user_id: user.id.clone(),
            expires_at: self.clock.now() + 60,
        };
        self.store
            .create_user(&user, &activation)
            .await
            .expect("created");
    }
}

/// The portal API's client and a CIBA client (poll), as the configuration
/// would register them.
fn test_clients() -> Vec<OidcClient> {
    serde_json::from_value(serde_json::json!([
        {"client_id": "portal", "client_secret": "portal-secret-0123456789", "name": "eUprava",
         "grant_types": [], "portal_api": true},
        {"client_id": "kiosk", "client_secret": "kiosk-secret-0123456789", "name": "Kiosk",
         "grant_types": ["urn:openid:params:grant-type:ciba"],
         "backchannel_token_delivery_mode": "poll"},
        {"client_id": "desk", "client_secret": "desk-secret-0123456789", "name": "Desk",
         "grant_types": ["urn:openid:params:grant-type:ciba"],
         "backchannel_token_delivery_mode": "ping",
         "backchannel_client_notification_endpoint": "https://desk.example/ciba"},
    ]))
    .expect("clients")
}

/// The portal client's credentials.
fn portal() -> ClientCredentials {
    ClientCredentials::Basic {
        id: "portal".into(),
        secret: "portal-secret-0123456789".to_owned().into(),
    }
}

fn attempt(username: &str, password: &str) -> LoginRequest {
    LoginRequest {
        username: username.into(),
        password: password.into(),
        context: None,
        audience: Default::default(),
    }
}

mod actors;
mod ciba;

/// The password back-off waits on the injected clock: after
/// `password_delay_after` failures the next attempt is held until the
/// clock has moved by the delay (1 s, then 2, 4, 8), and only then
/// answers. Nothing here sleeps: the test waits until the attempt is
/// asleep on the clock, checks it has not answered, and moves the clock.
#[tokio::test]
async fn the_password_back_off_waits_on_the_injected_clock() {
    let config = Config {
        limits: potvrda_server::config::sections::Limits {
            password_delay_after: 2,
            password_lock_after: 10,
            ..Default::default()
        },
        ..Config::default()
    };
    let d = Domain::new(config).await;
    d.citizen("ana", "the right password").await;
    let caller = Caller::new(Some("192.0.2.10".parse().expect("ip")), Some("test"));
    for _ in 0..2 {
        let r = d
            .svc
            .logins()
            .start_login(portal(), attempt("ana", "wrong"), &caller)
            .await;
        assert!(matches!(r, Err(Error::InvalidCredentials)), "{r:?}");
    }
    let asleep_before = d.clock.sleepers();
    let svc = Arc::clone(&d.svc);
    let held = tokio::spawn({
        let caller = caller.clone();
        async move {
            svc.logins()
                .start_login(portal(), attempt("ana", "wrong"), &caller)
                .await
        }
    });
    // A failsafe, not a synchronisation: the attempt must fall asleep on
    // the clock, and this bound only turns a regression into a failure
    // instead of a hang.
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while d.clock.sleepers() == asleep_before {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the attempt waits on the injected clock");
    assert!(!held.is_finished(), "the third attempt waits for the clock");
    d.clock.advance(1);
    let r = held.await.expect("joined");
    assert!(matches!(r, Err(Error::InvalidCredentials)), "{r:?}");
}

#[tokio::test]
async fn configured_key_files_win_over_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(&dir.path().join("data")).expect("store");
    let (signing, vapid) = (
        keys::generate_pkcs8().expect("keygen"),
        keys::generate_pkcs8().expect("keygen"),
    );
    let (sf, vf) = (dir.path().join("signing.p8"), dir.path().join("vapid.p8"));
    std::fs::write(&sf, signing.as_slice()).expect("write");
    std::fs::write(&vf, vapid.as_slice()).expect("write");
    let keys = keys::ServerKeys::load(Some(&sf), Some(&vf), None, &store)
        .await
        .expect("loads");
    assert_eq!(
        keys.signing.kid,
        keys::EsKey::from_pkcs8(&signing).expect("valid").kid
    );
    assert_eq!(
        keys.vapid.public_point,
        keys::EsKey::from_pkcs8(&vapid).expect("valid").public_point
    );
    assert!(
        !dir.path().join("data/signing-key.p8").exists(),
        "nothing generated"
    );
    // Without files, the store generates once and returns the same keys after.
    let a = keys::ServerKeys::load(None, None, None, &store)
        .await
        .expect("generates");
    let b = keys::ServerKeys::load(None, None, None, &store)
        .await
        .expect("reads");
    assert_eq!(
        (a.signing.kid.clone(), a.vapid_public_b64()),
        (b.signing.kid.clone(), b.vapid_public_b64())
    );
    assert_ne!(a.signing.kid, a.vapid.kid, "two different keys");
    // A missing configured file is an error, not a silent new key.
    assert!(
        keys::ServerKeys::load(Some(&dir.path().join("nope")), None, None, &store)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn rotation_keeps_the_previous_generation_and_survives_a_reload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).expect("store"));
    let clock = Arc::new(ManualClock::new(1_000));
    let ring = keyring::Keyring::load(Arc::clone(&store), clock.clone(), Duration::ZERO)
        .await
        .expect("created");
    let first = ring.current();
    assert!(first.previous.is_none());
    assert_eq!(first.jwks().keys.len(), 2);
    // A second instance on the same store reads the same keys.
    let other = keyring::Keyring::load(Arc::clone(&store), clock.clone(), Duration::ZERO)
        .await
        .expect("read");
    assert_eq!(other.current().current.rs.kid, first.current.rs.kid);

    clock.advance(10);
    let (es, rs) = ring.rotate().await.expect("rotated");
    let now = ring.current();
    assert_eq!(
        (now.current.es.kid.clone(), now.current.rs.kid.clone()),
        (es, rs)
    );
    assert_eq!(now.created_at, 1_010);
    let prev = now.previous.as_ref().expect("previous kept");
    assert_eq!(prev.es.kid, first.current.es.kid);
    let kids: Vec<String> = now.jwks().keys.into_iter().map(|k| k.kid).collect();
    assert_eq!(kids.len(), 4);
    assert!(
        now.verifier(&first.current.rs.kid).is_some(),
        "old tokens verify"
    );
    // A scheduled rotation that lost the race does nothing.
    let (es2, _) = keyring::rotate(store.as_ref(), clock.as_ref(), Some(1_000))
        .await
        .expect("no-op");
    assert_eq!(es2, now.current.es.kid);
    other.reload().await.expect("reload");
    assert_eq!(other.current().current.es.kid, now.current.es.kid);
}

/// Randomness is injected: two services on one seed make the same random
/// choices (here, the counter's next two session cookies), and another seed
/// makes others.
#[tokio::test]
async fn a_seeded_random_source_replays_its_choices() {
    let run = |seed: u8| async move {
        let d =
            Domain::with_random(Config::default(), Arc::new(SeededRandom::new([seed; 32]))).await;
        let cookie = || async {
            let desk = d.svc.desks().desk(None).await.expect("a new session");
            desk.set_cookie.clone().expect("a new cookie")
        };
        (cookie().await, cookie().await)
    };
    let (a, b, c) = (run(1).await, run(1).await, run(2).await);
    assert_eq!(a, b, "one seed, the same cookies");
    assert_ne!(a.0, a.1, "the next cookie is another");
    assert_ne!(a.0, c.0, "another seed, another cookie");
    assert_eq!(a.0.len(), 43, "32 bytes, base64url");
}

mod approval_rules {
    //! The push approval's eight rules, each broken once against a real
    //! pending login: the answer is refused with that rule's reason, the
    //! login stays pending, and the genuine approval still decides it.

    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use potvrda_mobile_core::jws;
    use potvrda_mobile_core::signer::{Signer, SoftwareSigner};
    use potvrda_proto::api::LoginStatus;
    use potvrda_proto::jose::{ApprovalClaims, ChallengeClaims, Decision, TYP_APPROVAL};
    use potvrda_server::store::{ChallengeId, Device, DeviceId, LoginId, LoginState, UserId};

    struct Pending {
        d: Domain,
        phone: SoftwareSigner,
        device_id: DeviceId,
        cid: ChallengeId,
        challenge: String,
        claims: ChallengeClaims,
        number: u8,
        login_id: LoginId,
    }

    async fn enroll(d: &Domain, user: &str, code_hash: &str) -> (SoftwareSigner, DeviceId) {
        let phone = SoftwareSigner::generate();
        let device = Device {
            id: format!("dev-{user}").into(),
            user_id: UserId::default(),
            name: "Telefon".into(),
            platform: "android".into(),
            public_key: phone.public_jwk(),
            push: None,
            push_gone: false,
            created_at: d.clock.now(),
            enrolled_via: None,
        };
        let id = device.id.clone();
        d.store
            .enroll_device(code_hash, device, d.clock.now())
            .await
            .expect("enrolled");
        (phone, id)
    }

    async fn pending() -> Pending {
        let d = Domain::new(Config::default()).await;
        d.citizen("ana", "the right password").await;
        let (phone, device_id) = enroll(&d, "ana", "unused-ana").await;
        let started = d
            .svc
            .logins()
            .start_login(
                portal(),
                attempt("ana", "the right password"),
                &Caller::default(),
            )
            .await
            .expect("challenged");
        let login = d
            .store
            .login(&started.login_id)
            .await
            .expect("read")
            .expect("there");
        let challenge = login.record.challenges[0].jws.clone();
        let payload = challenge.split('.').nth(1).expect("payload");
        let claims: ChallengeClaims =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("claims");
        Pending {
            cid: claims.cid.clone(),
            d,
            phone,
            device_id,
            challenge,
            claims,
            number: started.number,
            login_id: started.login_id,
        }
    }

    impl Pending {
        fn genuine(&self) -> ApprovalClaims {
            ApprovalClaims {
                cid: self.cid.clone(),
                nonce: self.claims.nonce.clone(),
                decision: Decision::Approve,
                number: Some(self.number),
                iat: self.d.clock.now(),
                ctx_hash: Some(
                    potvrda_mobile_core::protocol::ctx_hash(&self.challenge).expect("hash"),
                ),
                jti: Some(uuid_like(&self.login_id)),
                code: None,
                uv: Some(potvrda_proto::jose::Verification::Fingerprint),
                key: Some(potvrda_proto::jose::KeyProtection::Hardware),
            }
        }

        fn signed(&self, claims: &ApprovalClaims) -> String {
            jws::sign(&self.phone, TYP_APPROVAL, Some(&self.device_id), claims).expect("signs")
        }

        async fn state(&self) -> LoginState {
            self.d
                .store
                .login(&self.login_id)
                .await
                .expect("read")
                .expect("there")
                .state
        }
    }

    fn uuid_like(seed: &str) -> String {
        format!("jti-{seed}")
    }

    fn refused_with(r: Result<LoginStatus, Error>, reason: &str) {
        match r {
            Err(Error::InvalidSignature(m)) => assert_eq!(m, reason),
            Err(Error::InvalidRequest(m)) => assert!(m.contains(reason), "{m}"),
            Err(Error::AlreadyDecided) => assert_eq!("already decided", reason),
            Err(Error::UnknownDevice) => assert_eq!("unknown device", reason),
            other => panic!("expected a refusal ({reason}), got {other:?}"),
        }
    }

    #[tokio::test]
    async fn each_rule_refuses_its_own_forgery_and_the_genuine_answer_decides() {
        let p = pending().await;
        let svc = &p.d.svc;
        let caller = Caller::default();
        let good = p.genuine();
        let other_key = SoftwareSigner::generate();
        let cases: Vec<(&str, String, &str)> = vec![
            ("rule 1: a JWS", "not.a-jws".into(), "approval is not a JWS"),
            (
                "rule 1: a kid",
                jws::sign(&p.phone, TYP_APPROVAL, None, &good).expect("signs"),
                "approval has no kid",
            ),
            (
                "rule 2: the device's own key",
                jws::sign(&other_key, TYP_APPROVAL, Some(&p.device_id), &good).expect("signs"),
                "bad signature",
            ),
            (
                "rule 3: this challenge",
                p.signed(&ApprovalClaims {
                    cid: "another".into(),
                    ..good.clone()
                }),
                "another challenge",
            ),
            (
                "rule 5: the challenge's nonce",
                p.signed(&ApprovalClaims {
                    nonce: "guessed".into(),
                    ..good.clone()
                }),
                "nonce does not match the challenge",
            ),
            (
                "rule 6: what the phone was sent",
                p.signed(&ApprovalClaims {
                    ctx_hash: Some("AAAA".into()),
                    ..good.clone()
                }),
                "ctx_hash does not match the challenge sent",
            ),
            (
                "rule 6: protocol 2 needs the hash",
                p.signed(&ApprovalClaims {
                    ctx_hash: None,
                    ..good.clone()
                }),
                "ctx_hash and jti are required (protocol 2)",
            ),
            (
                "rule 8: fresh",
                p.signed(&ApprovalClaims {
                    iat: p.d.clock.now() - 3600,
                    jti: Some("stale".into()),
                    ..good.clone()
                }),
                "approval is not fresh",
            ),
            (
                "rule 8: not from the future",
                p.signed(&ApprovalClaims {
                    iat: p.d.clock.now() + 3600,
                    jti: Some("future".into()),
                    ..good.clone()
                }),
                "approval is not fresh",
            ),
        ];
        for (rule, jws, reason) in cases {
            let r = svc.devices().respond(&p.cid, &jws, &caller).await;
            if reason == "bad signature" {
                assert!(
                    matches!(r, Err(Error::InvalidSignature(_))),
                    "{rule}: {r:?}"
                );
            } else {
                refused_with(r, reason);
            }
            assert_eq!(
                p.state().await,
                LoginState::Pending,
                "{rule} changed nothing"
            );
        }
        // Rule 7: the genuine answer decides once; its jti is spent.
        assert_eq!(
            svc.devices()
                .respond(&p.cid, &p.signed(&good), &caller)
                .await
                .expect("approved"),
            LoginStatus::Approved
        );
        assert_eq!(p.state().await, LoginState::Approved);
        // What it proved is kept with the decision, as RFC 8176 values
        // (protocol 3): the hardware key instead of `pop`, the typed number,
        // the fingerprint.
        let decided =
            p.d.store
                .login(&p.login_id)
                .await
                .expect("read")
                .expect("there");
        assert_eq!(decided.amr, ["hwk", "user", "fpt"]);
        refused_with(
            svc.devices()
                .respond(&p.cid, &p.signed(&good), &caller)
                .await,
            "already decided",
        );
    }

    /// Rule 4: another citizen's device, though enrolled and signing with
    /// its own key, was not asked.
    #[tokio::test]
    async fn a_device_that_was_not_asked_is_refused() {
        let p = pending().await;
        p.d.citizen("marko", "his password").await;
        let (marko_phone, marko_device) = enroll(&p.d, "marko", "unused-marko").await;
        let claims = p.genuine();
        let jws =
            jws::sign(&marko_phone, TYP_APPROVAL, Some(&marko_device), &claims).expect("signs");
        refused_with(
            p.d.svc
                .devices()
                .respond(&p.cid, &jws, &Caller::default())
                .await,
            "this device was not asked",
        );
        assert_eq!(p.state().await, LoginState::Pending);
        let unknown =
            jws::sign(&marko_phone, TYP_APPROVAL, Some("no-such-device"), &claims).expect("signs");
        refused_with(
            p.d.svc
                .devices()
                .respond(&p.cid, &unknown, &Caller::default())
                .await,
            "unknown device",
        );
    }

    /// Rule 7 across challenges: a `jti` spent on one login is refused on
    /// the next, before its state is tried.
    #[tokio::test]
    async fn a_spent_jti_is_refused_on_another_challenge() {
        let p = pending().await;
        let caller = Caller::default();
        let good = p.genuine();
        p.d.svc
            .devices()
            .respond(&p.cid, &p.signed(&good), &caller)
            .await
            .expect("approved");
        let next =
            p.d.svc
                .logins()
                .start_login(portal(), attempt("ana", "the right password"), &caller)
                .await
                .expect("challenged");
        let login =
            p.d.store
                .login(&next.login_id)
                .await
                .expect("read")
                .expect("there");
        let challenge = &login.record.challenges[0].jws;
        let payload = challenge.split('.').nth(1).expect("payload");
        let claims: ChallengeClaims =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("claims");
        let reused = ApprovalClaims {
            cid: claims.cid.clone(),
            nonce: claims.nonce,
            number: Some(next.number),
            ctx_hash: Some(potvrda_mobile_core::protocol::ctx_hash(challenge).expect("hash")),
            ..good
        };
        refused_with(
            p.d.svc
                .devices()
                .respond(&claims.cid, &p.signed(&reused), &caller)
                .await,
            "already decided",
        );
        let state =
            p.d.store
                .login(&next.login_id)
                .await
                .expect("read")
                .expect("there")
                .state;
        assert_eq!(state, LoginState::Pending, "the state was not even tried");
    }
}
