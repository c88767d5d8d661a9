//! Roles at the counter, mounted: the bootstrap token makes one superadmin;
//! a table of every role against every admin action, across two
//! municipalities; locks, fraud reports and deactivation taking effect at once.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use potvrda_e2e::{Backend, TestServer};
use potvrda_proto::ErrorBody;
use potvrda_proto::api::{AuditKind, Severity};
use potvrda_proto::jose::{Decision, OwnService};
use serde_json::json;

use crate::support::*;

crate::on_both_stores!(
    every_role_against_every_admin_action,
    a_staff_members_portal_token_is_no_admin_credential,
    the_municipality_sees_what_happens_to_its_citizens,
    a_locked_account_is_told_only_after_the_right_password,
    a_fraud_report_denies_locks_and_alerts,
);

fn claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json")
}

async fn every_role_against_every_admin_action(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let boot = srv.token.clone();
    let (_, sa) = staff(&srv, &boot, "superadmin", None).await;
    // The bootstrap token made its one superadmin; it makes no more staff.
    for role in ["superadmin", "admin", "official"] {
        let r = post(
            &srv,
            "/v1/admin/staff",
            Some(&boot),
            json!({"username": potvrda_e2e::unique("x"), "display_name": "X", "role": role,
                   "municipality": if role == "superadmin" { None } else { Some("nowhere") }}),
        )
        .await;
        assert_eq!(r.status(), 403, "bootstrap creating a {role}");
    }
    for (code, name) in [("novi-sad", "Novi Sad"), ("nis", "Niš")] {
        let r = post(
            &srv,
            "/v1/admin/municipalities",
            Some(&sa),
            json!({"code": code, "name": name}),
        )
        .await;
        assert_eq!(r.status(), 201);
    }
    let r = post(
        &srv,
        "/v1/admin/municipalities",
        Some(&sa),
        json!({"code": "nis", "name": "Niš"}),
    )
    .await;
    assert_eq!(r.status(), 409);
    let (_, admin_ns) = staff(&srv, &sa, "admin", Some("novi-sad")).await;
    let (_, official_ns) = staff(&srv, &admin_ns, "official", Some("novi-sad")).await;
    let (official_nis, _) = staff(&srv, &sa, "official", Some("nis")).await;
    let citizen = srv.create_citizen(&potvrda_e2e::unique("c")).await;
    let citizen_token = logged_in(&srv, &citizen).await;
    let target = srv.create_citizen(&potvrda_e2e::unique("t")).await;
    let t = claims(&official_ns);
    assert_eq!(t["roles"], json!(["official"]));
    assert_eq!(t["municipality"], "novi-sad");
    assert_eq!(claims(&citizen_token)["roles"], json!(["citizen"]));

    // The official's token for a portal service (finding 2 of security round 2).
    let official_ns_portal = {
        let r = post(
            &srv,
            "/v1/admin/staff",
            Some(&admin_ns),
            json!({"username": potvrda_e2e::unique("o"), "display_name": "O", "role": "official", "municipality": "novi-sad"}),
        )
        .await;
        assert_eq!(r.status(), 201);
        // An official, logged in for a portal service.
        logged_in(&srv, &r.json().await.expect("json")).await
    };
    let who: [(&str, Option<&str>); 8] = [
        ("nobody", None),
        ("a wrong token", Some("not-a-token")),
        // A portal token (a citizen's, or staff's) is no admin credential: 401.
        ("citizen", Some(&citizen_token)),
        ("official of Novi Sad", Some(&official_ns)),
        ("admin of Novi Sad", Some(&admin_ns)),
        ("superadmin", Some(&sa)),
        ("bootstrap", Some(&boot)),
        (
            "official of Novi Sad, portal token",
            Some(&official_ns_portal),
        ),
    ];
    // (action, then the expected status for each of `who`, in order).
    type Action = (&'static str, &'static str, serde_json::Value, [u16; 8]);
    let uniq = || potvrda_e2e::unique("u");
    let actions: Vec<Action> = vec![
        (
            "create a municipality",
            "/v1/admin/municipalities",
            json!({"code": "x", "name": "X"}),
            [401, 401, 401, 403, 403, 201, 403, 401],
        ),
        (
            "create an official in Novi Sad",
            "/v1/admin/staff",
            json!({"display_name": "O", "role": "official", "municipality": "novi-sad"}),
            [401, 401, 401, 403, 201, 201, 403, 401],
        ),
        (
            "create an official in Niš",
            "/v1/admin/staff",
            json!({"display_name": "O", "role": "official", "municipality": "nis"}),
            [401, 401, 401, 403, 403, 201, 403, 401],
        ),
        (
            "create an admin in Novi Sad",
            "/v1/admin/staff",
            json!({"display_name": "A", "role": "admin", "municipality": "novi-sad"}),
            [401, 401, 401, 403, 403, 201, 403, 401],
        ),
        (
            "create a superadmin",
            "/v1/admin/staff",
            json!({"display_name": "S", "role": "superadmin"}),
            [401, 401, 401, 403, 403, 201, 403, 401],
        ),
        (
            "create a citizen",
            "/v1/admin/citizens",
            json!({"display_name": "C"}),
            [401, 401, 401, 201, 201, 201, 201, 401],
        ),
        (
            "lock a citizen",
            "lock",
            json!({}),
            [401, 401, 401, 204, 204, 204, 403, 401],
        ),
        (
            "deactivate an official of Niš",
            "deactivate",
            json!({}),
            [401, 401, 401, 403, 403, 204, 403, 401],
        ),
    ];
    for (i, (action, path, body, expected)) in actions.into_iter().enumerate() {
        for ((name, token), want) in who.iter().zip(expected) {
            let (path, body) = match path {
                "lock" => (
                    format!("/v1/admin/citizens/{}/lock", target.user_id),
                    body.clone(),
                ),
                "deactivate" => {
                    // A fresh official each time, so an allowed call finds one to deactivate.
                    let (o, _) = if want == 204 {
                        staff(&srv, &sa, "official", Some("nis")).await
                    } else {
                        (official_nis.clone(), String::new())
                    };
                    (
                        format!("/v1/admin/staff/{}/deactivate", o.user_id),
                        body.clone(),
                    )
                }
                p => {
                    let mut b = body.clone();
                    if p == "/v1/admin/municipalities" {
                        b["code"] = json!(format!("m{i}{}", &uniq()[..8]));
                    } else {
                        b["username"] = json!(uniq());
                    }
                    (p.to_owned(), b)
                }
            };
            let r = post(&srv, &path, *token, body).await;
            assert_eq!(r.status(), want, "{name}: {action}");
            if want >= 400 {
                let e: ErrorBody = r.json().await.expect("JSON error");
                assert_eq!(
                    e.error.as_str(),
                    if want == 401 {
                        "unauthorized"
                    } else {
                        "forbidden"
                    },
                    "{name}: {action}"
                );
            }
        }
    }
    // The audit trail: superadmin and bootstrap see all; an admin only their municipality; others nothing.
    for ((name, token), want) in who.iter().zip([401, 401, 401, 403, 200, 200, 200, 401]) {
        let mut r = srv
            .http
            .get(format!("{}/v1/admin/audit?limit=1000", srv.url));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let r = r.send().await.expect("request");
        assert_eq!(r.status(), want, "{name}: read the audit trail");
        if *name == "admin of Novi Sad" {
            let page: potvrda_proto::api::AuditResponse = r.json().await.expect("json");
            assert!(!page.events.is_empty());
            assert!(
                page.events
                    .iter()
                    .all(|e| e.municipality.as_deref() == Some("novi-sad")),
                "own municipality only"
            );
        }
    }
    let all = srv.audit("limit=1000").await.events;
    let created = all
        .iter()
        .find(|e| {
            e.kind == AuditKind::StaffCreated
                && e.actor_id.as_deref() != Some("bootstrap")
                && e.municipality.as_deref() == Some("novi-sad")
        })
        .expect("a staff action by the Novi Sad admin");
    assert!(created.ip.is_some() && created.actor_id.is_some());
}

async fn a_locked_account_is_told_only_after_the_right_password(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let (_, sa) = staff(&srv, &srv.token, "superadmin", None).await;
    let c = citizen(&srv, None).await;
    let path = format!("/v1/admin/citizens/{}/lock", c.account.user_id);
    assert_eq!(post(&srv, &path, Some(&sa), json!({})).await.status(), 204);
    let wrong = srv.login_raw(&c.account.username, "wrong password").await;
    assert_eq!(wrong.status(), 401, "a guesser learns nothing");
    let right = srv
        .login_raw(&c.account.username, c.account.initial_password.expose())
        .await;
    assert_eq!(right.status(), 403);
    let e: ErrorBody = right.json().await.expect("json");
    assert_eq!(e.error.as_str(), "account_locked");
    assert!(
        c.phone.pending().await.expect("pull").is_empty(),
        "no push to a locked account"
    );
    let path = format!("/v1/admin/citizens/{}/unlock", c.account.user_id);
    assert_eq!(post(&srv, &path, Some(&sa), json!({})).await.status(), 204);
    login(&srv, &c).await;
    let kinds: Vec<AuditKind> = srv
        .audit(&format!("user_id={}", c.account.user_id))
        .await
        .events
        .iter()
        .map(|e| e.kind)
        .collect();
    for k in [
        AuditKind::AccountLocked,
        AuditKind::AccountUnlocked,
        AuditKind::LoginStarted,
    ] {
        assert!(kinds.contains(&k), "{k:?} in {kinds:?}");
    }
    // Locking a staff account through the citizens' endpoint is not a thing.
    let path = format!(
        "/v1/admin/citizens/{}/lock",
        "00000000-0000-4000-8000-000000000000"
    );
    assert_eq!(post(&srv, &path, Some(&sa), json!({})).await.status(), 404);
}

async fn a_fraud_report_denies_locks_and_alerts(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let c = citizen(&srv, None).await;
    let l = login(&srv, &c).await;
    c.phone
        .answer(&pulled(&c.phone).await, Decision::Fraud, None)
        .await
        .expect("reported");
    assert_eq!(
        srv.status(&l.login_id, l.login_secret.expose(), 0)
            .await
            .status,
        potvrda_proto::api::LoginStatus::Denied
    );
    let r = srv
        .login_raw(&c.account.username, c.account.initial_password.expose())
        .await;
    assert_eq!(r.status(), 403, "locked after the report");
    let events = srv
        .audit(&format!("user_id={}", c.account.user_id))
        .await
        .events;
    let fraud = events
        .iter()
        .find(|e| e.kind == AuditKind::FraudReported)
        .expect("fraud_reported");
    assert_eq!(fraud.severity, Severity::High);
    assert_eq!(fraud.detail["login_id"], l.login_id.as_str());
    assert_eq!(
        fraud.detail["login_ip"], "203.0.113.7",
        "what the portal saw, for the investigation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivated_officials_token_stops_working_at_once() {
    let srv = TestServer::start(Backend::Embedded).await;
    let (_, sa) = staff(&srv, &srv.token, "superadmin", None).await;
    let r = post(
        &srv,
        "/v1/admin/municipalities",
        Some(&sa),
        json!({"code": "kraljevo", "name": "Kraljevo"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let (o, token) = staff(&srv, &sa, "official", Some("kraljevo")).await;
    let citizen = json!({"username": potvrda_e2e::unique("c"), "display_name": "C"});
    assert_eq!(
        post(&srv, "/v1/admin/citizens", Some(&token), citizen)
            .await
            .status(),
        201
    );
    let path = format!("/v1/admin/staff/{}/deactivate", o.user_id);
    assert_eq!(post(&srv, &path, Some(&sa), json!({})).await.status(), 204);
    let citizen = json!({"username": potvrda_e2e::unique("c"), "display_name": "C"});
    assert_eq!(
        post(&srv, "/v1/admin/citizens", Some(&token), citizen)
            .await
            .status(),
        401,
        "the token is dead"
    );
    let r = srv
        .login_raw(&o.username, o.initial_password.expose())
        .await;
    assert_eq!(r.status(), 401, "and no new login");
}

/// Security round 2, finding 2: an official logs in to a portal service
/// ("Parking Novi Sad"); whoever sees that token (the service, a phisher)
/// tried to search citizens, reset one and take the new secrets. Admin
/// authority now comes only from a login made for the admin API, which the
/// phone shows as such, whatever service the caller names.
async fn a_staff_members_portal_token_is_no_admin_credential(backend: Backend) {
    use potvrda_mobile_core::phone::VirtualPhone;
    use potvrda_proto::api::{LoginAudience, LoginResponse};
    let srv = TestServer::start(backend).await;
    let (_, sa) = staff(&srv, &srv.token, "superadmin", None).await;
    let r = post(
        &srv,
        "/v1/admin/municipalities",
        Some(&sa),
        json!({"code": "novi-sad", "name": "Novi Sad"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let official = post(
        &srv,
        "/v1/admin/staff",
        Some(&sa),
        json!({"username": potvrda_e2e::unique("o"), "display_name": "O", "role": "official", "municipality": "novi-sad"}),
    )
    .await
    .json::<potvrda_proto::api::CreateCitizenResponse>()
    .await
    .expect("official");
    let phone = VirtualPhone::enroll(&srv.url, official.activation_code.expose(), "phone", None)
        .await
        .expect("enrolls");
    let victim = srv.create_citizen(&potvrda_e2e::unique("v")).await;
    // The official logs in through the portal (whose registered name the
    // phone shows, whatever the request says), and the phone says so.
    let start = |audience: LoginAudience| {
        let (srv, official) = (&srv, &official);
        async move {
            let r = srv.portal(srv.http.post(format!("{}/v1/logins", srv.url)))
                .json(&json!({"username": official.username, "password": official.initial_password,
                              "context": {"service": "Parking Novi Sad", "own_service": "counter"}, "audience": audience}))
                .send()
                .await
                .expect("request");
            assert_eq!(r.status(), 201);
            r.json::<LoginResponse>().await.expect("json")
        }
    };
    let approve = |l: LoginResponse| {
        let (srv, phone) = (&srv, &phone);
        async move {
            let c = phone.pending().await.expect("pull").remove(0);
            let shown = (c.claims.ctx.service.clone(), c.claims.ctx.own_service);
            phone
                .answer(&c, Decision::Approve, Some(l.number))
                .await
                .expect("approved");
            let token = srv
                .status(&l.login_id, l.login_secret.expose(), 0)
                .await
                .access_token
                .expect("token");
            (shown, token)
        }
    };
    let (shown, parking) = approve(start(LoginAudience::Portal).await).await;
    // Neither the service the caller named nor one of Potvrda's own it
    // claimed (issue 16): the client's registered name.
    assert_eq!(shown, (Some(potvrda_e2e::PORTAL_NAME.to_owned()), None));
    assert_eq!(claims(&parking)["aud"], "potvrda");
    // The attack: search, reset (to receive the new password and code), create, read the trail.
    let get = |path: String, token: String| {
        let srv = &srv;
        async move {
            srv.http
                .get(format!("{}{path}", srv.url))
                .bearer_auth(token)
                .send()
                .await
                .expect("request")
        }
    };
    let r = get(
        format!("/v1/admin/citizens?query={}", &victim.username[..3]),
        parking.clone(),
    )
    .await;
    assert_eq!(r.status(), 401, "a portal token searches no citizens");
    let r = get(
        format!("/v1/admin/citizens/{}", victim.user_id),
        parking.clone(),
    )
    .await;
    assert_eq!(r.status(), 401);
    let r = get("/v1/admin/audit".into(), parking.clone()).await;
    assert_eq!(r.status(), 401);
    let r = post(
        &srv,
        &format!("/v1/admin/citizens/{}/reset", victim.user_id),
        Some(&parking),
        json!({}),
    )
    .await;
    assert_eq!(r.status(), 401, "a portal token resets nobody");
    let e: ErrorBody = r.json().await.expect("JSON error");
    assert_eq!(e.error.as_str(), "unauthorized");
    let r = post(
        &srv,
        "/v1/admin/citizens",
        Some(&parking),
        json!({"display_name": "X"}),
    )
    .await;
    assert_eq!(r.status(), 401);
    // Nothing changed: the victim's password and activation code still work.
    let r = srv
        .login_raw(&victim.username, victim.initial_password.expose())
        .await;
    assert_eq!(r.status(), 409, "right password, no device yet (not reset)");
    // The same official, logging in for the admin API: the phone shows the
    // admin API, not the service the caller named.
    let (shown, admin) = approve(start(LoginAudience::Admin).await).await;
    assert_eq!(
        shown,
        (
            Some("Администрација".to_owned()),
            Some(OwnService::AdminApi)
        )
    );
    assert_eq!(claims(&admin)["aud"], "potvrda-admin");
    let r = get(
        format!("/v1/admin/citizens/{}", victim.user_id),
        admin.clone(),
    )
    .await;
    assert_eq!(r.status(), 200, "the admin token is admin authority");
    // …and only that: it is no portal token for self-service.
    let r = get("/v1/me/devices".into(), admin).await;
    assert_eq!(r.status(), 401);
    let r = get("/v1/me/devices".into(), parking).await;
    assert_eq!(r.status(), 200, "the portal token still serves its holder");
    // A citizen cannot make an admin login; a wrong password tells nothing about roles.
    let citizen = srv.create_citizen(&potvrda_e2e::unique("c")).await;
    let r = srv
        .login_for(
            &citizen.username,
            citizen.initial_password.expose(),
            LoginAudience::Admin,
        )
        .await;
    assert_eq!(r.status(), 403);
    let r = srv
        .login_for(&citizen.username, "wrong password!", LoginAudience::Admin)
        .await;
    assert_eq!(r.status(), 401);
}

/// Security round 2, finding 12: the admin of the citizen's municipality
/// saw only the counter's acts on the citizen, not the enrollment, logins
/// or the fraud report. Now every event about a citizen opened in a
/// municipality is visible to its admins (the API) and its officials (the
/// latest security events); the fence to other municipalities holds from
/// both sides; every read of a record is itself audited.
async fn the_municipality_sees_what_happens_to_its_citizens(backend: Backend) {
    use potvrda_mobile_core::phone::VirtualPhone;
    use potvrda_proto::api::{AuditResponse, CreateCitizenResponse};
    let srv = TestServer::start(backend).await;
    let (_, sa) = staff(&srv, &srv.token, "superadmin", None).await;
    for (code, name) in [("novi-sad", "Novi Sad"), ("nis", "Niš")] {
        let r = post(
            &srv,
            "/v1/admin/municipalities",
            Some(&sa),
            json!({"code": code, "name": name}),
        )
        .await;
        assert_eq!(r.status(), 201);
    }
    let (_, admin_ns) = staff(&srv, &sa, "admin", Some("novi-sad")).await;
    let (official_ns_account, official_ns) =
        staff(&srv, &admin_ns, "official", Some("novi-sad")).await;
    let (_, admin_nis) = staff(&srv, &sa, "admin", Some("nis")).await;
    let (_, official_nis) = staff(&srv, &admin_nis, "official", Some("nis")).await;
    // Each municipality's counter opens a citizen; both enroll and log in;
    // the Novi Sad citizen reports the login as fraud.
    let open = |by: String| {
        let srv = &srv;
        async move {
            let r = post(
                srv,
                "/v1/admin/citizens",
                Some(&by),
                json!({"username": potvrda_e2e::unique("c"), "display_name": "Građanin"}),
            )
            .await;
            assert_eq!(r.status(), 201);
            let account: CreateCitizenResponse = r.json().await.expect("json");
            let phone =
                VirtualPhone::enroll(&srv.url, account.activation_code.expose(), "phone", None)
                    .await
                    .expect("enrolls");
            Citizen { account, phone }
        }
    };
    let ns = open(official_ns.clone()).await;
    let nis = open(official_nis.clone()).await;
    for (c, decision) in [(&ns, Decision::Fraud), (&nis, Decision::Approve)] {
        let l = login(&srv, c).await;
        let number = (decision == Decision::Approve).then_some(l.number);
        c.phone
            .answer(&pulled(&c.phone).await, decision, number)
            .await
            .expect("answered");
    }
    let get = |path: String, token: String| {
        let srv = &srv;
        async move {
            srv.http
                .get(format!("{}{path}", srv.url))
                .bearer_auth(token)
                .send()
                .await
                .expect("request")
        }
    };
    let kinds_for = |token: String, user: String| {
        let get = &get;
        async move {
            let r = get(format!("/v1/admin/audit?user_id={user}&limit=1000"), token).await;
            assert_eq!(r.status(), 200);
            let page: AuditResponse = r.json().await.expect("json");
            page.events.into_iter().map(|e| e.kind).collect::<Vec<_>>()
        }
    };
    // The admin of Novi Sad sees everything about the Novi Sad citizen …
    let seen = kinds_for(admin_ns.clone(), ns.account.user_id.clone().into_string()).await;
    for kind in [
        AuditKind::CitizenCreated,
        AuditKind::DeviceEnrolled,
        AuditKind::LoginStarted,
        AuditKind::LoginDenied,
        AuditKind::FraudReported,
    ] {
        assert!(
            seen.contains(&kind),
            "admin of Novi Sad sees {kind:?}: {seen:?}"
        );
    }
    // … and nothing of the Niš citizen's own acts; the admin of Niš the other way round.
    let fenced = kinds_for(admin_ns.clone(), nis.account.user_id.clone().into_string()).await;
    assert!(
        !fenced.iter().any(|k| matches!(
            k,
            AuditKind::DeviceEnrolled | AuditKind::LoginStarted | AuditKind::LoginApproved
        )),
        "{fenced:?}"
    );
    let fenced = kinds_for(admin_nis.clone(), ns.account.user_id.clone().into_string()).await;
    assert!(
        !fenced
            .iter()
            .any(|k| matches!(k, AuditKind::DeviceEnrolled | AuditKind::FraudReported)),
        "{fenced:?}"
    );
    let own = kinds_for(admin_nis.clone(), nis.account.user_id.clone().into_string()).await;
    assert!(own.contains(&AuditKind::LoginApproved));
    // The official of Novi Sad reads the latest security events: the fraud
    // report with its address and service; an official of Niš may not.
    let r = get(
        format!("/v1/admin/citizens/{}/events", ns.account.user_id),
        official_ns.clone(),
    )
    .await;
    assert_eq!(r.status(), 200);
    let events: AuditResponse = r.json().await.expect("json");
    let fraud = events
        .events
        .iter()
        .find(|e| e.kind == AuditKind::FraudReported)
        .expect("the fraud report");
    assert_eq!(fraud.detail["service"], "eUprava: porez na imovinu");
    assert_eq!(fraud.detail["login_ip"], "203.0.113.7");
    assert!(
        events.events.windows(2).all(|w| w[0].at >= w[1].at),
        "newest first"
    );
    let r = get(
        format!("/v1/admin/citizens/{}/events", ns.account.user_id),
        official_nis.clone(),
    )
    .await;
    assert_eq!(r.status(), 403, "the fence");
    let r = get(
        format!("/v1/admin/citizens/{}/events", ns.account.user_id),
        sa.clone(),
    )
    .await;
    assert_eq!(r.status(), 200, "the national view");
    // Every read is accounted for: the search, the summary, the devices, the events.
    let r = get(
        format!("/v1/admin/citizens?query={}", ns.account.username),
        official_ns.clone(),
    )
    .await;
    assert_eq!(r.status(), 200);
    for what in ["", "/devices"] {
        let r = get(
            format!("/v1/admin/citizens/{}{what}", ns.account.user_id),
            official_ns.clone(),
        )
        .await;
        assert_eq!(r.status(), 200);
    }
    let trail = srv.audit("limit=1000").await.events;
    let by_official = |kind: AuditKind| {
        trail
            .iter()
            .filter(|e| {
                e.kind == kind
                    && e.actor_id.as_deref() == Some(official_ns_account.user_id.as_str())
            })
            .collect::<Vec<_>>()
    };
    let reads: Vec<&str> = by_official(AuditKind::CitizenViewed)
        .iter()
        .map(|e| e.detail["what"].as_str().expect("what"))
        .collect();
    assert_eq!(reads, ["events", "summary", "devices"]);
    assert!(
        by_official(AuditKind::CitizenViewed)
            .iter()
            .all(|e| e.user_id.as_deref() == Some(ns.account.user_id.as_str()))
    );
    let searched = by_official(AuditKind::CitizensSearched);
    assert_eq!(searched.len(), 1);
    assert_eq!(searched[0].detail["results"], 1);
}
