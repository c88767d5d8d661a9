//! CIBA on the injected clock: the interval and `slow_down` as known
//! answers, and a `ping` client told when its request expires unanswered.

use super::*;
use potvrda_server::service::{BackchannelForm, TokenForm};
use potvrda_server::store::Device;

async fn with_device() -> Domain {
    let d = Domain::new(Config::default()).await;
    d.citizen("ana", "the right password").await;
    let phone = potvrda_mobile_core::signer::SoftwareSigner::generate();
    let device = Device {
        id: "dev-ana".to_owned().into(),
        user_id: Default::default(),
        name: "Telefon".into(),
        platform: "android".into(),
        public_key: potvrda_mobile_core::signer::Signer::public_jwk(&phone),
        push: None,
        push_gone: false,
        created_at: d.clock.now(),
        enrolled_via: None,
    };
    d.store
        .enroll_device("unused-ana", device, d.clock.now())
        .await
        .expect("enrolled");
    d
}

fn basic(id: &str) -> Option<(String, String)> {
    Some((id.into(), format!("{id}-secret-0123456789")))
}

fn asking(token: Option<&str>) -> BackchannelForm {
    BackchannelForm {
        scope: Some("openid".into()),
        login_hint: Some("ana".into()),
        client_notification_token: token.map(Into::into),
        ..BackchannelForm::default()
    }
}

/// A token request without a DPoP proof.
const NO_PROOF: potvrda_server::service::DpopRequest<'static> =
    potvrda_server::service::DpopRequest {
        proof: None,
        method: "POST",
        path: "/oauth2/token",
    };

async fn poll(d: &Domain, auth_req_id: &str) -> String {
    let form = TokenForm {
        grant_type: Some("urn:openid:params:grant-type:ciba".into()),
        auth_req_id: Some(auth_req_id.into()),
        ..TokenForm::default()
    };
    match d
        .svc
        .token_endpoint()
        .oidc_token(form, basic("kiosk"), NO_PROOF)
        .await
    {
        Err(Error::OAuth { error, .. }) => error.as_str().to_owned(),
        Err(e) => panic!("{e}"),
        Ok(_) => "tokens".into(),
    }
}

/// The interval is 5 s; a poll sooner gets `slow_down` and adds 5 s to
/// every later wait, measured from that poll.
#[tokio::test]
async fn the_interval_is_enforced_on_the_clock() {
    let d = with_device().await;
    let req = d
        .svc
        .backchannel()
        .backchannel_authorize(asking(None), basic("kiosk"), &Caller::default())
        .await
        .expect("asked");
    assert_eq!(req.interval, 5);
    let id = req.auth_req_id.as_str();
    assert_eq!(poll(&d, id).await, "authorization_pending");
    d.clock.advance(4);
    assert_eq!(
        poll(&d, id).await,
        "slow_down",
        "4 s after, the interval is 5 s"
    );
    d.clock.advance(9);
    assert_eq!(
        poll(&d, id).await,
        "slow_down",
        "9 s after a slow_down, the interval is 10 s"
    );
    d.clock.advance(15);
    assert_eq!(
        poll(&d, id).await,
        "authorization_pending",
        "15 s is the grown interval"
    );
    d.clock.advance(15);
    assert_eq!(poll(&d, id).await, "authorization_pending");
}

/// A ping client hears of its request when it expires unanswered too, and
/// the token endpoint then says `expired_token`.
#[tokio::test]
async fn a_ping_client_is_told_of_the_expiry() {
    let d = with_device().await;
    let req = d
        .svc
        .backchannel()
        .backchannel_authorize(
            asking(Some("desk-token")),
            basic("desk"),
            &Caller::default(),
        )
        .await
        .expect("asked");
    assert!(d.notifier.take().is_empty(), "nothing is decided yet");
    d.clock
        .advance(i64::try_from(req.expires_in).expect("small") + 1);
    let pings = tokio::time::timeout(Duration::from_secs(10), d.notifier.next())
        .await
        .expect("a ping after the expiry");
    assert_eq!(
        pings,
        vec![(
            "https://desk.example/ciba".to_owned(),
            req.auth_req_id.clone()
        )]
    );
    let form = TokenForm {
        grant_type: Some("urn:openid:params:grant-type:ciba".into()),
        auth_req_id: Some(req.auth_req_id),
        ..TokenForm::default()
    };
    let r = d
        .svc
        .token_endpoint()
        .oidc_token(form, basic("desk"), NO_PROOF)
        .await;
    assert!(
        matches!(&r, Err(Error::OAuth { error, .. }) if error.as_str() == "expired_token"),
        "{r:?}"
    );
}
