//! Domain services on a real store (the embedded one, in a temporary
//! directory) with a hand-set clock: no port is bound, nothing sleeps.
//! They live here because the domain crate cannot depend on a store backend.

use std::sync::Arc;

use potvrda_server::clock::ManualClock;
use potvrda_server::store::Store;
use potvrda_server::store::embedded::EmbeddedStore;
use potvrda_server::{keyring, keys};

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
    let keys = keys::ServerKeys::load(Some(&sf), Some(&vf), &store)
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
    let a = keys::ServerKeys::load(None, None, &store)
        .await
        .expect("generates");
    let b = keys::ServerKeys::load(None, None, &store)
        .await
        .expect("reads");
    assert_eq!(
        (a.signing.kid.clone(), a.vapid_public_b64()),
        (b.signing.kid.clone(), b.vapid_public_b64())
    );
    assert_ne!(a.signing.kid, a.vapid.kid, "two different keys");
    // A missing configured file is an error, not a silent new key.
    assert!(
        keys::ServerKeys::load(Some(&dir.path().join("nope")), None, &store)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn rotation_keeps_the_previous_generation_and_survives_a_reload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).expect("store"));
    let clock = Arc::new(ManualClock::new(1_000));
    let ring = keyring::Keyring::load(Arc::clone(&store), clock.clone(), 0)
        .await
        .expect("created");
    let first = ring.current();
    assert!(first.previous.is_none());
    assert_eq!(first.jwks().keys.len(), 2);
    // A second instance on the same store reads the same keys.
    let other = keyring::Keyring::load(Arc::clone(&store), clock.clone(), 0)
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
