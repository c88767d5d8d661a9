//! OpenID Connect CIBA with the phone as the authentication device, on
//! every store: poll and ping delivery, the interval enforced with
//! `slow_down`, expiry, denial and fraud reports, push bombing capped,
//! supersession, and every malformed request refused before any push.

use potvrda_e2e::{Backend, Options, TestServer};
use potvrda_proto::jose::Decision;
use potvrda_proto::oidc::{BackchannelResponse, LOA_BASIC, TokenResponse};
use serde_json::json;

use crate::support::*;

crate::on_both_stores!(
    poll_delivers_tokens_after_the_number_on_the_phone,
    a_phone_that_proves_less_than_asked_gets_no_token,
    malformed_requests_are_refused_before_any_push,
    an_unanswered_request_expires,
    denial_and_fraud_report_end_the_request,
    push_bombing_through_ciba_is_capped_and_superseded,
    denials_through_ciba_pause_the_pushes_as_for_logins,
    ping_tells_the_client_then_it_collects_once,
);

const KIOSK: (&str, &str) = ("kiosk", "kiosk-client-secret-0123456789");
const DESK: (&str, &str) = ("desk", "desk-client-secret-0123456789");
const WEB: (&str, &str) = ("web", "web-client-secret-0123456789");
const STRICT: (&str, &str) = ("strict", "strict-client-secret-0123456789");
const FLOOR: (&str, &str) = ("floor", "floor-client-secret-0123456789");

fn clients(notify: &str) -> String {
    json!([
        {"client_id": KIOSK.0, "client_secret": KIOSK.1, "name": "Šalter: upis u vrtić",
         "token_endpoint_auth_method": "client_secret_basic",
         "grant_types": ["urn:openid:params:grant-type:ciba", "refresh_token"],
         "backchannel_token_delivery_mode": "poll"},
        {"client_id": DESK.0, "client_secret": DESK.1, "name": "Pozivni centar",
         "grant_types": ["urn:openid:params:grant-type:ciba"],
         "backchannel_token_delivery_mode": "ping",
         "backchannel_client_notification_endpoint": notify},
        {"client_id": WEB.0, "client_secret": WEB.1, "name": "Web",
         "redirect_uris": ["https://web.example/cb"]},
        {"client_id": STRICT.0, "client_secret": STRICT.1, "name": "Poreska uprava",
         "grant_types": ["urn:openid:params:grant-type:ciba"],
         "backchannel_token_delivery_mode": "poll",
         "default_acr_values": ["urn:potvrda:loa:substantial"]},
        {"client_id": FLOOR.0, "client_secret": FLOOR.1, "name": "Katastar",
         "grant_types": ["urn:openid:params:grant-type:ciba"],
         "backchannel_token_delivery_mode": "poll",
         "allowed_acr_values": ["urn:potvrda:loa:substantial"]},
    ])
    .to_string()
}

async fn server(
    backend: Backend,
    notify: &str,
    limits: Option<(u32, u64, u32, u64)>,
) -> TestServer {
    let mut opts = Options::new(backend);
    opts.oidc_clients = Some(clients(notify));
    if let Some(l) = limits {
        opts.limits = l;
    }
    TestServer::start_with(opts).await
}

/// `POST /oauth2/bc-authorize` as `client`.
async fn ask(srv: &TestServer, client: (&str, &str), form: &[(&str, &str)]) -> reqwest::Response {
    srv.http
        .post(format!("{}/oauth2/bc-authorize", srv.url))
        .basic_auth(client.0, Some(client.1))
        .form(form)
        .send()
        .await
        .expect("sent")
}

async fn asked(
    srv: &TestServer,
    client: (&str, &str),
    form: &[(&str, &str)],
) -> BackchannelResponse {
    let r = ask(srv, client, form).await;
    assert_eq!(r.status(), 200, "bc-authorize");
    r.json().await.expect("json")
}

/// The token endpoint with the CIBA grant.
async fn collect(srv: &TestServer, client: (&str, &str), auth_req_id: &str) -> reqwest::Response {
    srv.http
        .post(format!("{}/oauth2/token", srv.url))
        .basic_auth(client.0, Some(client.1))
        .form(&[
            ("grant_type", "urn:openid:params:grant-type:ciba"),
            ("auth_req_id", auth_req_id),
        ])
        .send()
        .await
        .expect("sent")
}

/// The OAuth error of an answer: its status and `error`.
async fn error_of(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.expect("a JSON error");
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

fn claims(jwt: &str) -> serde_json::Value {
    jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(jwt)
        .expect("a JWT")
        .claims
}

async fn poll_delivers_tokens_after_the_number_on_the_phone(backend: Backend) {
    let srv = server(backend, "https://unused.example/", None).await;
    let c = citizen(&srv, None).await;
    let req = asked(
        &srv,
        KIOSK,
        &[
            ("scope", "openid profile"),
            ("login_hint", &c.account.username),
            ("binding_message", "Šalter 3"),
        ],
    )
    .await;
    assert!(
        req.expires_in > 0 && req.expires_in <= 300 && req.interval == 5,
        "{req:?}"
    );
    let shown = pulled(&c.phone).await;
    assert_eq!(
        shown.claims.ctx.service.as_deref(),
        Some("Šalter: upis u vrtić")
    );
    assert_eq!(
        shown.claims.ctx.binding_message.as_deref(),
        Some("Šalter 3")
    );
    let audit = srv.audit(&format!("user_id={}", c.account.user_id)).await;
    assert!(
        audit
            .events
            .iter()
            .any(|e| e.kind == potvrda_proto::api::AuditKind::LoginStarted
                && e.detail["client_id"] == KIOSK.0),
        "the trail names the CIBA client"
    );
    assert_eq!(
        (
            shown.claims.ctx.ip.as_ref(),
            shown.claims.ctx.user_agent.as_ref()
        ),
        (None, None)
    );
    // Pending, then too soon: slow_down, and the next poll waits 10 s.
    assert_eq!(
        error_of(collect(&srv, KIOSK, &req.auth_req_id).await).await,
        (400, "authorization_pending".into())
    );
    assert_eq!(
        error_of(collect(&srv, KIOSK, &req.auth_req_id).await).await,
        (400, "slow_down".into())
    );
    srv.clock.advance(6);
    assert_eq!(
        error_of(collect(&srv, KIOSK, &req.auth_req_id).await).await,
        (400, "slow_down".into()),
        "the interval grew to 10 s"
    );
    // Another client cannot collect it.
    assert_eq!(
        error_of(collect(&srv, DESK, &req.auth_req_id).await).await,
        (400, "invalid_grant".into())
    );
    approve_as_shown(&c.phone, &shown, req.number, req.code.as_deref())
        .await
        .expect("approved");
    srv.clock.advance(16);
    let r = collect(&srv, KIOSK, &req.auth_req_id).await;
    assert_eq!(r.status(), 200);
    let tokens: TokenResponse = r.json().await.expect("tokens");
    let id = claims(&tokens.id_token);
    assert_eq!(id["aud"], KIOSK.0);
    assert_eq!(id["sub"], c.account.user_id.as_str());
    assert_eq!(
        id["acr"], LOA_BASIC,
        "no password, and no confirmation the phone names"
    );
    assert_eq!(claims(&tokens.access_token)["acr"], LOA_BASIC);
    // The virtual phone keeps its key in software and names no verification.
    assert_eq!(id["amr"], json!(["swk", "user"]));
    assert_eq!(claims(&tokens.access_token)["amr"], json!(["swk", "user"]));
    let me: serde_json::Value = srv
        .http
        .get(format!("{}/oauth2/userinfo", srv.url))
        .bearer_auth(&tokens.access_token)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(me["preferred_username"], c.account.username.as_str());
    // The ID token names the citizen for the next request; another client's does not.
    let again = asked(
        &srv,
        KIOSK,
        &[("scope", "openid"), ("id_token_hint", &tokens.id_token)],
    )
    .await;
    let next = pulled(&c.phone).await;
    assert_ne!(next.claims.cid, shown.claims.cid);
    assert!(again.number >= 10);
    assert_eq!(
        error_of(
            ask(
                &srv,
                DESK,
                &[
                    ("scope", "openid"),
                    ("id_token_hint", &tokens.id_token),
                    ("client_notification_token", "t0k3n-of-the-desk")
                ]
            )
            .await
        )
        .await,
        (400, "invalid_request".into())
    );
    // Once only (the clock moves last: the phone refuses challenges from its future).
    srv.clock.advance(16);
    assert_eq!(
        error_of(collect(&srv, KIOSK, &req.auth_req_id).await).await,
        (400, "invalid_grant".into())
    );
}

/// What is wrong, who asks, the form, and the answer expected.
type Case<'a> = (
    &'a str,
    (&'a str, &'a str),
    Vec<(&'a str, &'a str)>,
    (u16, &'a str),
);

/// The client asks for `substantial`; the virtual phone confirms with
/// nothing it can name (one factor: `basic`): the approval issues no token,
/// and nothing lower is issued instead.
async fn a_phone_that_proves_less_than_asked_gets_no_token(backend: Backend) {
    let srv = server(backend, "https://unused.example/", None).await;
    let c = citizen(&srv, None).await;
    let req = asked(
        &srv,
        KIOSK,
        &[
            ("scope", "openid"),
            ("login_hint", &c.account.username),
            ("acr_values", "urn:potvrda:loa:substantial"),
        ],
    )
    .await;
    approve_as_shown(
        &c.phone,
        &pulled(&c.phone).await,
        req.number,
        req.code.as_deref(),
    )
    .await
    .expect("approved on the phone");
    assert_eq!(
        error_of(collect(&srv, KIOSK, &req.auth_req_id).await).await,
        (400, "unmet_authentication_requirements".into())
    );
    // The same for a client whose registration asks for it by default.
    let req = asked(
        &srv,
        STRICT,
        &[("scope", "openid"), ("login_hint", &c.account.username)],
    )
    .await;
    approve_as_shown(
        &c.phone,
        &pulled(&c.phone).await,
        req.number,
        req.code.as_deref(),
    )
    .await
    .expect("approved on the phone");
    assert_eq!(
        error_of(collect(&srv, STRICT, &req.auth_req_id).await).await,
        (400, "unmet_authentication_requirements".into()),
        "default_acr_values"
    );
    // A client registered for `substantial` alone: asking for `basic` is
    // refused before any push, and a request that names no level, or one
    // that also accepts `basic`, still needs `substantial`.
    let r = ask(
        &srv,
        FLOOR,
        &[
            ("scope", "openid"),
            ("login_hint", &c.account.username),
            ("acr_values", LOA_BASIC),
        ],
    )
    .await;
    assert_eq!(
        error_of(r).await,
        (400, "unmet_authentication_requirements".into()),
        "allowed_acr_values"
    );
    assert!(
        c.phone.pending().await.expect("pull works").is_empty(),
        "no push was sent"
    );
    for acr in [
        None,
        Some("urn:potvrda:loa:basic urn:potvrda:loa:substantial"),
    ] {
        let mut form = vec![
            ("scope", "openid"),
            ("login_hint", c.account.username.as_str()),
        ];
        form.extend(acr.map(|a| ("acr_values", a)));
        let req = asked(&srv, FLOOR, &form).await;
        approve_as_shown(
            &c.phone,
            &pulled(&c.phone).await,
            req.number,
            req.code.as_deref(),
        )
        .await
        .expect("approved on the phone");
        assert_eq!(
            error_of(collect(&srv, FLOOR, &req.auth_req_id).await).await,
            (400, "unmet_authentication_requirements".into()),
            "the floor of allowed_acr_values, asked {acr:?}"
        );
    }
}

async fn malformed_requests_are_refused_before_any_push(backend: Backend) {
    let srv = server(backend, "https://unused.example/", None).await;
    let c = citizen(&srv, None).await;
    let user = c.account.username.as_str();
    let long = "x".repeat(65);
    let cases: Vec<Case<'_>> = vec![
        (
            "no hint",
            KIOSK,
            vec![("scope", "openid")],
            (400, "invalid_request"),
        ),
        (
            "two hints",
            KIOSK,
            vec![
                ("scope", "openid"),
                ("login_hint", user),
                ("id_token_hint", "a.b.c"),
            ],
            (400, "invalid_request"),
        ),
        (
            "a forged id_token_hint",
            KIOSK,
            vec![("scope", "openid"), ("id_token_hint", "a.b.c")],
            (400, "invalid_request"),
        ),
        (
            "unknown user",
            KIOSK,
            vec![("scope", "openid"), ("login_hint", "nobody.here")],
            (400, "unknown_user_id"),
        ),
        (
            "no openid",
            KIOSK,
            vec![("scope", "profile"), ("login_hint", user)],
            (400, "invalid_scope"),
        ),
        (
            "unknown scope",
            KIOSK,
            vec![("scope", "openid admin"), ("login_hint", user)],
            (400, "invalid_scope"),
        ),
        (
            "long binding message",
            KIOSK,
            vec![
                ("scope", "openid"),
                ("login_hint", user),
                ("binding_message", &long),
            ],
            (400, "invalid_binding_message"),
        ),
        (
            "control in the binding message",
            KIOSK,
            vec![
                ("scope", "openid"),
                ("login_hint", user),
                ("binding_message", "a\u{7}b"),
            ],
            (400, "invalid_binding_message"),
        ),
        (
            "an acr it cannot meet",
            KIOSK,
            vec![
                ("scope", "openid"),
                ("login_hint", user),
                ("acr_values", "urn:potvrda:loa:high"),
            ],
            (400, "unmet_authentication_requirements"),
        ),
        (
            "an essential acr it cannot meet",
            KIOSK,
            vec![
                ("scope", "openid"),
                ("login_hint", user),
                (
                    "claims",
                    r#"{"id_token":{"acr":{"essential":true,"value":"urn:potvrda:loa:high"}}}"#,
                ),
            ],
            (400, "unmet_authentication_requirements"),
        ),
        (
            "only acr values it does not know",
            KIOSK,
            vec![
                ("scope", "openid"),
                ("login_hint", user),
                ("acr_values", "urn:example:loa:3"),
            ],
            (400, "unmet_authentication_requirements"),
        ),
        (
            "a user code",
            KIOSK,
            vec![
                ("scope", "openid"),
                ("login_hint", user),
                ("user_code", "1234"),
            ],
            (400, "invalid_request"),
        ),
        (
            "a bad expiry",
            KIOSK,
            vec![
                ("scope", "openid"),
                ("login_hint", user),
                ("requested_expiry", "soon"),
            ],
            (400, "invalid_request"),
        ),
        (
            "ping without a token",
            DESK,
            vec![("scope", "openid"), ("login_hint", user)],
            (400, "invalid_request"),
        ),
        (
            "a client without CIBA",
            WEB,
            vec![("scope", "openid"), ("login_hint", user)],
            (400, "unauthorized_client"),
        ),
        (
            "a wrong secret",
            ("kiosk", "not-the-kiosk-secret-at-all"),
            vec![("scope", "openid"), ("login_hint", user)],
            (401, "invalid_client"),
        ),
    ];
    for (what, client, form, want) in cases {
        assert_eq!(
            error_of(ask(&srv, client, &form).await).await,
            (want.0, want.1.to_owned()),
            "{what}"
        );
    }
    let anonymous = srv
        .http
        .post(format!("{}/oauth2/bc-authorize", srv.url))
        .form(&[("scope", "openid"), ("login_hint", user)])
        .send()
        .await
        .expect("sent");
    assert_eq!(error_of(anonymous).await, (401, "invalid_client".into()));
    // The right secret by a method the client is not registered for.
    let posted = srv
        .http
        .post(format!("{}/oauth2/bc-authorize", srv.url))
        .form(&[
            ("scope", "openid"),
            ("login_hint", user),
            ("client_id", KIOSK.0),
            ("client_secret", KIOSK.1),
        ])
        .send()
        .await
        .expect("sent");
    assert_eq!(
        error_of(posted).await,
        (401, "invalid_client".into()),
        "client_secret_post for a client_secret_basic client"
    );
    assert!(
        c.phone.pending().await.expect("pull").is_empty(),
        "nothing reached the phone"
    );
    assert_eq!(
        error_of(collect(&srv, KIOSK, "no-such-request").await).await,
        (400, "invalid_grant".into())
    );
}

async fn an_unanswered_request_expires(backend: Backend) {
    let srv = server(backend, "https://unused.example/", None).await;
    let c = citizen(&srv, None).await;
    let req = asked(
        &srv,
        KIOSK,
        &[
            ("scope", "openid"),
            ("login_hint", &c.account.username),
            ("requested_expiry", "20"),
        ],
    )
    .await;
    assert!(req.expires_in <= 20, "{req:?}");
    let shown = pulled(&c.phone).await;
    assert!(
        shown.claims.exp <= shown.claims.iat + 20,
        "the phone's challenge expires with it"
    );
    srv.clock.advance(21);
    assert_eq!(
        error_of(collect(&srv, KIOSK, &req.auth_req_id).await).await,
        (400, "expired_token".into())
    );
    assert!(
        c.phone
            .answer(&shown, Decision::Approve, Some(req.number))
            .await
            .is_err(),
        "too late to approve"
    );
}

async fn denial_and_fraud_report_end_the_request(backend: Backend) {
    let srv = server(backend, "https://unused.example/", None).await;
    let c = citizen(&srv, None).await;
    let form = [
        ("scope", "openid"),
        ("login_hint", c.account.username.as_str()),
    ];
    let denied = asked(&srv, KIOSK, &form).await;
    c.phone
        .answer(&pulled(&c.phone).await, Decision::Deny, None)
        .await
        .expect("denied");
    assert_eq!(
        error_of(collect(&srv, KIOSK, &denied.auth_req_id).await).await,
        (400, "access_denied".into())
    );
    let wrong = asked(&srv, KIOSK, &form).await;
    let refused = approve_wrongly(
        &c.phone,
        &pulled(&c.phone).await,
        wrong.number,
        wrong.code.as_deref(),
    )
    .await;
    assert!(refused.is_err(), "{refused:?}");
    srv.clock.advance(6);
    assert_eq!(
        error_of(collect(&srv, KIOSK, &wrong.auth_req_id).await).await,
        (400, "access_denied".into()),
        "a wrong number denies"
    );
    let fraud = asked(&srv, KIOSK, &form).await;
    c.phone
        .answer(&pulled(&c.phone).await, Decision::Fraud, None)
        .await
        .expect("reported");
    srv.clock.advance(6);
    assert_eq!(
        error_of(collect(&srv, KIOSK, &fraud.auth_req_id).await).await,
        (400, "access_denied".into())
    );
    // The report locked the account: no more pushes through CIBA either.
    assert_eq!(
        error_of(ask(&srv, KIOSK, &form).await).await,
        (400, "access_denied".into())
    );
    assert!(c.phone.pending().await.expect("pull").is_empty());
}

async fn push_bombing_through_ciba_is_capped_and_superseded(backend: Backend) {
    // Three pushes per 15 minutes per citizen, as the configuration says.
    let srv = server(backend, "https://unused.example/", Some((3, 900, 5, 900))).await;
    let c = citizen(&srv, None).await;
    let form = [
        ("scope", "openid"),
        ("login_hint", c.account.username.as_str()),
    ];
    let first = asked(&srv, KIOSK, &form).await;
    let second = asked(&srv, KIOSK, &form).await;
    // One active login per citizen: the first is withdrawn.
    assert_eq!(
        error_of(collect(&srv, KIOSK, &first.auth_req_id).await).await,
        (400, "access_denied".into())
    );
    let pending = c.phone.pending().await.expect("pull");
    assert_eq!(pending.len(), 1, "only the newest prompt remains");
    let _third = asked(&srv, KIOSK, &form).await;
    let r = ask(&srv, KIOSK, &form).await;
    assert_eq!(r.status(), 429, "the fourth push in the window");
    assert!(r.headers().contains_key("retry-after"));
    let _ = second;
}

/// Fatigue: after two denials in a row (`FATIGUE_LIMIT` 2) pushes pause,
/// for CIBA and for the password login alike: it is one account's phone.
async fn denials_through_ciba_pause_the_pushes_as_for_logins(backend: Backend) {
    let srv = server(backend, "https://unused.example/", Some((100, 900, 2, 900))).await;
    let c = citizen(&srv, None).await;
    let form = [
        ("scope", "openid"),
        ("login_hint", c.account.username.as_str()),
    ];
    for _ in 0..2 {
        let req = asked(&srv, KIOSK, &form).await;
        c.phone
            .answer(&pulled(&c.phone).await, Decision::Deny, None)
            .await
            .expect("denied");
        assert_eq!(
            error_of(collect(&srv, KIOSK, &req.auth_req_id).await).await,
            (400, "access_denied".into())
        );
    }
    let paused = ask(&srv, KIOSK, &form).await;
    assert_eq!(paused.status(), 429, "pushes pause after the denials");
    assert!(paused.headers().contains_key("retry-after"));
    let r = srv
        .login_raw(&c.account.username, c.account.initial_password.expose())
        .await;
    assert_eq!(r.status(), 429, "the password login meets the same pause");
    assert!(c.phone.pending().await.expect("pull").is_empty());
}

async fn ping_tells_the_client_then_it_collects_once(backend: Backend) {
    let mut sink = NotificationSink::start().await;
    let srv = server(backend, &sink.url, None).await;
    let c = citizen(&srv, None).await;
    let req = asked(
        &srv,
        DESK,
        &[
            ("scope", "openid"),
            ("login_hint", &c.account.username),
            ("client_notification_token", "desk-notification-token-1"),
        ],
    )
    .await;
    approve_as_shown(
        &c.phone,
        &pulled(&c.phone).await,
        req.number,
        req.code.as_deref(),
    )
    .await
    .expect("approved");
    let ping = sink.next().await;
    assert_eq!(
        ping.authorization.as_deref(),
        Some("Bearer desk-notification-token-1")
    );
    assert_eq!(ping.body, json!({"auth_req_id": req.auth_req_id}));
    let r = collect(&srv, DESK, &req.auth_req_id).await;
    assert_eq!(r.status(), 200);
    let tokens: TokenResponse = r.json().await.expect("tokens");
    assert_eq!(claims(&tokens.id_token)["aud"], DESK.0);
    srv.clock.advance(6);
    assert_eq!(
        error_of(collect(&srv, DESK, &req.auth_req_id).await).await,
        (400, "invalid_grant".into())
    );
    // A denial is told too (CIBA Core §10.2), and the token endpoint says why.
    let denied = asked(
        &srv,
        DESK,
        &[
            ("scope", "openid"),
            ("login_hint", &c.account.username),
            ("client_notification_token", "desk-notification-token-2"),
        ],
    )
    .await;
    c.phone
        .answer(&pulled(&c.phone).await, Decision::Deny, None)
        .await
        .expect("denied");
    assert_eq!(
        sink.next().await.body["auth_req_id"],
        denied.auth_req_id.as_str()
    );
    assert_eq!(
        error_of(collect(&srv, DESK, &denied.auth_req_id).await).await,
        (400, "access_denied".into())
    );
}
