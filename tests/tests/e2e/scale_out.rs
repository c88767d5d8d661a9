//! More than one server: two instances on one Redis, and an embedded store
//! that survives a restart.

use std::time::Duration;

use potvrda_e2e::{Backend, Options, TestServer};
use potvrda_mobile_core::phone::VirtualPhone;
use potvrda_proto::api::LoginStatus;
use potvrda_proto::jose::Decision;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_redis_share_keys_and_wake_each_other() {
    two_instances(Backend::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_a_redis_cluster_share_keys_and_wake_each_other() {
    two_instances(Backend::RedisCluster).await;
}

/// Two instances on one PostgreSQL database and one Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_postgres_and_redis_share_keys_and_wake_each_other() {
    two_instances(Backend::Postgres).await;
}

async fn two_instances(backend: Backend) {
    let a = TestServer::start(backend).await;
    let b = TestServer::start_with(Options {
        redis_prefix: a.redis_prefix.clone(),
        postgres_url: a.postgres_url.clone(),
        ..Options::new(backend)
    })
    .await;
    assert_eq!(
        a.jwks().await,
        b.jwks().await,
        "instances share the signing key without copying"
    );

    let mut endpoint = push_endpoint().await;
    // Created on A, enrolled on B.
    let account = a.create_citizen(&potvrda_e2e::unique("c")).await;
    let push_url = endpoint.new_endpoint();
    let phone = VirtualPhone::enroll(
        &b.url,
        account.activation_code.expose(),
        "phone",
        Some(&push_url),
    )
    .await
    .expect("enrolls on B");
    endpoint.expect_vapid_key(&phone.state.device.vapid_public_key);
    let c = Citizen { account, phone };

    for round in 0..3 {
        // Login on A; the portal long-polls A; the phone answers B.
        let login = login(&a, &c).await;
        let challenge = next_push(&mut endpoint, &c.phone).await;
        let waiting = long_poll(&a, &login, 30);
        // The long-poll is parked on A before the approval lands on B, so only
        // pub/sub through Redis can wake it.
        a.until_parked(1).await;
        let phone_on_b = on_server(&c.phone, &b.url);
        phone_on_b
            .answer(&challenge, Decision::Approve, Some(login.number))
            .await
            .expect("approved on B");
        let answer: potvrda_proto::api::LoginStatusResponse =
            tokio::time::timeout(Duration::from_secs(10), waiting)
                .await
                .expect("A's long-poll wakes")
                .expect("joined")
                .expect("answered")
                .json()
                .await
                .expect("json");
        assert_eq!(answer.status, LoginStatus::Approved, "round {round}");
        let token = answer.access_token.expect("token");
        // One token across instances: B gives the same one to a retry.
        assert_eq!(
            b.status(&login.login_id, login.login_secret.expose(), 0)
                .await
                .access_token
                .as_deref(),
            Some(token.as_str())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_survives_a_restart() {
    let first = TestServer::start(Backend::Embedded).await;
    let kid_before = first.jwks().await;
    let c = citizen(&first, None).await;
    let dir = first.data_dir.clone();
    let keep = first.stop().await.expect("owns its temp dir");

    let second = TestServer::start_with(Options {
        data_dir: Some(dir.clone()),
        ..Options::new(Backend::Embedded)
    })
    .await;
    assert_eq!(second.jwks().await, kid_before, "the signing key persisted");
    let phone = on_server(&c.phone, &second.url);
    let c = Citizen {
        account: c.account,
        phone,
    };
    let login = login(&second, &c).await;
    let challenge = pulled(&c.phone).await;
    c.phone
        .answer(&challenge, Decision::Approve, Some(login.number))
        .await
        .expect("the device enrolled before the restart approves");
    assert!(
        second
            .status(&login.login_id, login.login_secret.expose(), 0)
            .await
            .access_token
            .is_some()
    );
    // The activation code stayed used.
    let again = VirtualPhone::enroll(
        &second.url,
        c.account.activation_code.expose(),
        "again",
        None,
    )
    .await;
    assert_eq!(server_error(again), (400, "invalid_activation_code".into()));
    let key = dir.join("signing-key.p8");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(key)
            .expect("key file")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    drop(keep);
}

/// The same phone (same keys), talking to another server.
fn on_server(phone: &VirtualPhone, url: &str) -> VirtualPhone {
    let mut state = phone.state.clone();
    state.device.server = url.to_owned();
    VirtualPhone::from_state(state).expect("same keys")
}
