//! The citizen's lifecycle through the HTTP API, on every store: a lost
//! phone at the counter (find, list, revoke, reset, re-enroll), and the
//! citizen's own devices and password.

use potvrda_e2e::{Backend, TestServer};
use potvrda_mobile_core::phone::VirtualPhone;
use potvrda_proto::api::{AuditKind, CitizenList, CreateCitizenResponse, DeviceList, LoginStatus};
use potvrda_proto::jose::Decision;
use serde_json::json;

use crate::support::*;

crate::on_both_stores!(
    a_lost_phone_at_the_counter,
    the_citizen_manages_their_devices_and_password,
    a_second_device_is_approved_from_the_first,
    usernames_are_suggested_when_left_empty,
);

async fn patch(srv: &TestServer, path: &str, token: &str, body: serde_json::Value) -> u16 {
    srv.http
        .patch(format!("{}{path}", srv.url))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

async fn addition_status(srv: &TestServer, id: &str, token: &str) -> (u16, serde_json::Value) {
    let r = srv
        .http
        .get(format!("{}/v1/me/devices/additions/{id}?wait=0", srv.url))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    (r.status().as_u16(), r.json().await.expect("json"))
}

async fn usernames_are_suggested_when_left_empty(backend: Backend) {
    let srv = TestServer::start(backend).await;
    // Unique per run on the shared Redis: a random surname in Cyrillic.
    let tag: String = uuid_letters();
    let mut made = Vec::new();
    for body in [
        json!({"display_name": format!("Ђорђе Чолић{tag}")}),
        json!({"username": "", "display_name": format!("Đorđe Čolić{tag}")}),
        json!({"username": "  ", "display_name": format!("Djordje Colic{tag}")}),
    ] {
        let r = post(&srv, "/v1/admin/citizens", Some(&srv.token), body).await;
        assert_eq!(r.status(), 201);
        let a: CreateCitizenResponse = r.json().await.expect("json");
        made.push(a.username);
    }
    let base = format!("djordje.colic{tag}");
    assert_eq!(made, [base.clone(), format!("{base}2"), format!("{base}3")]);
    // A name with nothing usable still gets an account.
    let r = post(
        &srv,
        "/v1/admin/citizens",
        Some(&srv.token),
        json!({"display_name": "李"}),
    )
    .await;
    assert_eq!(r.status(), 201);
}

/// A few lower-case letters, different on every call.
fn uuid_letters() -> String {
    potvrda_e2e::unique("")
        .chars()
        .filter(|c| c.is_ascii_digit())
        .take(8)
        .map(|d| char::from(b'a' + (d as u8 - b'0')))
        .collect()
}

async fn a_second_device_is_approved_from_the_first(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let c = citizen(&srv, None).await;
    let token = logged_in_as(&srv, &c).await;
    let other = citizen(&srv, None).await;
    let other_token = logged_in_as(&srv, &other).await;
    let first = &c.phone.state.device.device_id;

    // Rename: mine only, a sane name only.
    let path = format!("/v1/me/devices/{first}");
    assert_eq!(
        patch(&srv, &path, &token, json!({"name": "Jelenin telefon"})).await,
        204
    );
    assert_eq!(patch(&srv, &path, &token, json!({"name": "  "})).await, 400);
    assert_eq!(
        patch(&srv, &path, &other_token, json!({"name": "mine now"})).await,
        404
    );
    let mine: DeviceList = get(&srv, "/v1/me/devices", &token).await;
    assert_eq!(mine.devices[0].name, "Jelenin telefon");

    // Denied on the existing phone: no code.
    let start = |t: String| {
        let srv = &srv;
        async move {
            let r = post(srv, "/v1/me/devices/additions", Some(&t), json!({})).await;
            assert_eq!(r.status(), 201);
            r.json::<potvrda_proto::api::DeviceAdditionStarted>()
                .await
                .expect("json")
        }
    };
    let denied = start(token.clone()).await;
    let ch = pulled(&c.phone).await;
    assert_eq!(
        (ch.claims.ctx.service.as_deref(), ch.claims.ctx.own_service),
        (
            Some("Нови уређај"),
            Some(potvrda_proto::jose::OwnService::NewDevice)
        )
    );
    c.phone
        .answer(&ch, Decision::Deny, None)
        .await
        .expect("denied");
    let (status, body) = addition_status(&srv, &denied.request_id, &token).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("denied")));
    assert!(body.get("activation_code").is_none());

    // Approved with the number: the code, once, and only to its owner.
    let asked = start(token.clone()).await;
    let (status, body) = addition_status(&srv, &asked.request_id, &token).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("pending")));
    assert_eq!(
        addition_status(&srv, &asked.request_id, &other_token)
            .await
            .0,
        404,
        "someone else's request"
    );
    let ch = pulled(&c.phone).await;
    approve_as_shown(&c.phone, &ch, asked.number, asked.code.as_deref())
        .await
        .expect("approved");
    let (status, body) = addition_status(&srv, &asked.request_id, &token).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("approved")));
    let code = body["activation_code"].as_str().expect("a code").to_owned();
    assert_eq!(
        addition_status(&srv, &asked.request_id, &token).await.0,
        404,
        "handed out once"
    );
    let second = VirtualPhone::enroll(&srv.url, &code, "tablet", None)
        .await
        .expect("the code enrolls the new device");
    assert!(second.recovery_codes.is_none());
    let mine: DeviceList = get(&srv, "/v1/me/devices", &token).await;
    assert_eq!(mine.devices.len(), 2);
    // Logins now reach both; either approves.
    let l = login(&srv, &c).await;
    let ch = pulled(&second).await;
    assert_eq!(pulled(&c.phone).await.claims.cid, ch.claims.cid);
    // A device enrolled after the first approval: the login asks for the code.
    approve_as_shown(&second, &ch, l.number, l.code.as_deref())
        .await
        .expect("the new device approves");
    assert!(
        srv.status(&l.login_id, l.login_secret.expose(), 0)
            .await
            .access_token
            .is_some()
    );
    let events = srv
        .audit(&format!("user_id={}", c.account.user_id))
        .await
        .events;
    assert!(
        events
            .iter()
            .any(|e| e.kind == AuditKind::DeviceAddApproved)
    );
    // Each enrollment records how the device was bound (protocol 3): the
    // sheet's code from the counter, then the code the addition released.
    let channels: Vec<_> = events
        .iter()
        .filter(|e| e.kind == AuditKind::DeviceEnrolled)
        .map(|e| {
            e.detail["enrolled_via"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(channels, ["counter", "addition"]);
    assert!(
        !serde_json::to_string(&events)
            .expect("json")
            .contains(&code)
    );
}

async fn get<T: serde::de::DeserializeOwned>(srv: &TestServer, path: &str, token: &str) -> T {
    let r = srv
        .http
        .get(format!("{}{path}", srv.url))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().await.expect("json")
}

async fn delete(srv: &TestServer, path: &str, token: &str) -> u16 {
    srv.http
        .delete(format!("{}{path}", srv.url))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

/// A superadmin, a municipality and one of its officials: the official's token.
async fn official(srv: &TestServer) -> String {
    let (_, sa) = staff(srv, &srv.token, "superadmin", None).await;
    let r = post(
        srv,
        "/v1/admin/municipalities",
        Some(&sa),
        json!({"code": "subotica", "name": "Subotica"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    staff(srv, &sa, "official", Some("subotica")).await.1
}

async fn a_lost_phone_at_the_counter(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let off = official(&srv).await;
    let c = citizen(&srv, None).await;
    // The counter finds the citizen by the start of the username.
    let found: CitizenList = get(
        &srv,
        &format!("/v1/admin/citizens?query={}", &c.account.username[..6]),
        &off,
    )
    .await;
    assert!(
        found
            .citizens
            .iter()
            .any(|x| x.user_id == c.account.user_id)
    );
    let devices: DeviceList = get(
        &srv,
        &format!("/v1/admin/citizens/{}/devices", c.account.user_id),
        &off,
    )
    .await;
    assert_eq!(devices.devices.len(), 1);
    let lost = devices.devices[0].device_id.clone();
    assert_eq!(lost, c.phone.state.device.device_id);
    // A login is pending on the lost phone when the counter revokes it.
    let l = login(&srv, &c).await;
    let stale = pulled(&c.phone).await;
    let path = format!("/v1/admin/citizens/{}/devices/{lost}", c.account.user_id);
    assert_eq!(delete(&srv, &path, &off).await, 204);
    assert_eq!(delete(&srv, &path, &off).await, 404, "once");
    let r = c
        .phone
        .answer(&stale, Decision::Approve, Some(l.number))
        .await;
    assert_eq!(
        server_error(r),
        (401, "unknown_device".into()),
        "the revoked phone's approval is refused"
    );
    // Reset: a new password and code; the old password stops working.
    let r = post(
        &srv,
        &format!("/v1/admin/citizens/{}/reset", c.account.user_id),
        Some(&off),
        json!({}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let fresh: CreateCitizenResponse = r.json().await.expect("json");
    assert_ne!(fresh.initial_password, c.account.initial_password);
    assert_eq!(
        srv.login_raw(&c.account.username, c.account.initial_password.expose())
            .await
            .status(),
        401
    );
    // A second reset makes the first new code useless.
    let r = post(
        &srv,
        &format!("/v1/admin/citizens/{}/reset", c.account.user_id),
        Some(&off),
        json!({}),
    )
    .await;
    let newest: CreateCitizenResponse = r.json().await.expect("json");
    let r = VirtualPhone::enroll(&srv.url, fresh.activation_code.expose(), "new phone", None).await;
    assert_eq!(server_error(r).1, "invalid_activation_code");
    let phone = VirtualPhone::enroll(&srv.url, newest.activation_code.expose(), "new phone", None)
        .await
        .expect("the newest code enrolls");
    let again = Citizen {
        account: newest.clone(),
        phone,
    };
    let l = login(&srv, &again).await;
    again
        .phone
        .answer(
            &pulled(&again.phone).await,
            Decision::Approve,
            Some(l.number),
        )
        .await
        .expect("approved on the new phone");
    let s = srv.status(&l.login_id, l.login_secret.expose(), 0).await;
    assert_eq!(s.status, LoginStatus::Approved);
    assert_eq!(
        s.pwd_change_required,
        Some(true),
        "a reset password must be changed"
    );
    let payload = s.access_token.expect("token");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            payload.split('.').nth(1).expect("payload"),
        )
        .expect("b64"),
    )
    .expect("json");
    assert_eq!(claims["pwd_change_required"], true);
    let kinds: Vec<AuditKind> = srv
        .audit(&format!("user_id={}", c.account.user_id))
        .await
        .events
        .iter()
        .map(|e| e.kind)
        .collect();
    assert!(kinds.contains(&AuditKind::DeviceRevoked) && kinds.contains(&AuditKind::AccountReset));
    // A citizen's portal token cannot use the counter's endpoints.
    let r = srv
        .http
        .get(format!("{}/v1/admin/citizens?query=a", srv.url))
        .bearer_auth(&payload)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 401);
}

async fn the_citizen_manages_their_devices_and_password(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let c = citizen(&srv, None).await;
    let token = logged_in_as(&srv, &c).await;
    let mine: DeviceList = get(&srv, "/v1/me/devices", &token).await;
    assert_eq!(mine.devices.len(), 1);
    // Another citizen's device is not theirs to revoke.
    let other = citizen(&srv, None).await;
    assert_eq!(
        delete(
            &srv,
            &format!("/v1/me/devices/{}", other.phone.state.device.device_id),
            &token
        )
        .await,
        404
    );
    assert!(other.phone.info().await.is_ok(), "untouched");
    // The bootstrap token is not a user.
    assert_eq!(
        delete(&srv, "/v1/me/devices/x", &srv.token.clone()).await,
        403
    );

    let change = |current: &str, new: &str| {
        let (http, url, token) = (srv.http.clone(), srv.url.clone(), token.clone());
        let body = json!({"current": current, "new": new});
        async move {
            http.post(format!("{url}/v1/me/password"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        }
    };
    let initial = c.account.initial_password.expose().to_owned();
    assert_eq!(change("wrong", "a-new-long-password").await, 401);
    assert_eq!(change(&initial, "short").await, 400);
    assert_eq!(change(&initial, &initial).await, 400, "must differ");
    assert_eq!(change(&initial, "a-new-long-password").await, 204);
    assert_eq!(
        srv.login_raw(&c.account.username, &initial).await.status(),
        401
    );
    let after = Citizen {
        account: CreateCitizenResponse {
            initial_password: "a-new-long-password".into(),
            ..c.account.clone()
        },
        phone: c.phone,
    };
    let l = login(&srv, &after).await;
    after
        .phone
        .answer(
            &pulled(&after.phone).await,
            Decision::Approve,
            Some(l.number),
        )
        .await
        .expect("approved");
    let s = srv.status(&l.login_id, l.login_secret.expose(), 0).await;
    assert_eq!(s.pwd_change_required, Some(false));
    // Revoking their own phone: it is gone from the list and gets nothing more.
    let token = s.access_token.expect("token");
    assert_eq!(
        delete(
            &srv,
            &format!("/v1/me/devices/{}", after.phone.state.device.device_id),
            &token
        )
        .await,
        204
    );
    let mine: DeviceList = get(&srv, "/v1/me/devices", &token).await;
    assert!(mine.devices.is_empty());
    assert_eq!(
        srv.login_raw(&c.account.username, "a-new-long-password")
            .await
            .status(),
        409,
        "no device left: no_device"
    );
}

/// Log `c` in with its phone: the access token.
async fn logged_in_as(srv: &TestServer, c: &Citizen) -> String {
    let l = login(srv, c).await;
    c.phone
        .answer(&pulled(&c.phone).await, Decision::Approve, Some(l.number))
        .await
        .expect("approved");
    srv.status(&l.login_id, l.login_secret.expose(), 0)
        .await
        .access_token
        .expect("token")
}
