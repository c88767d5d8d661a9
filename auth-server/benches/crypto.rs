//! Criterion micro-benchmarks of the server's per-login crypto: push
//! encryption (aws-lc ECDH, as shipped, against the pure-Rust P-256 of
//! `web-push-native`), approval verification, and ES256 signing (challenge
//! and access token). Run: `cargo bench -p potvrda-server --bench crypto`.
#![allow(missing_docs, clippy::expect_used)] // a benchmark: failing loudly is its job

use std::hint::black_box;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use potvrda_proto::jose::{ApprovalClaims, Decision, TYP_APPROVAL};
use potvrda_server::keys::{EsKey, generate_pkcs8};
use potvrda_server::push::encrypt;
use potvrda_server::service::verify_jws;

fn bench(c: &mut Criterion) {
    let payload = vec![b'x'; 700]; // the size of a challenge JWS
    let ua = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    let ua_public = ua.public_key().to_encoded_point(false).as_bytes().to_vec();
    let auth = [7u8; 16];
    c.bench_function("push_encrypt/aws_lc", |b| {
        b.iter(|| {
            let key = aws_lc_rs::agreement::PrivateKey::generate(&aws_lc_rs::agreement::ECDH_P256)
                .expect("key");
            black_box(encrypt(&payload, &ua_public, &auth, &key, [1u8; 16]).expect("encrypts"))
        })
    });
    let pk = ua.public_key();
    let wp_auth = web_push_native::Auth::clone_from_slice(&auth);
    c.bench_function("push_encrypt/rustcrypto", |b| {
        b.iter(|| {
            black_box(web_push_native::encrypt(payload.clone(), &pk, &wp_auth).expect("encrypts"))
        })
    });

    let server = EsKey::from_pkcs8(&generate_pkcs8().expect("keygen")).expect("key");
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(server.kid.clone());
    let claims = serde_json::json!({"iss": "https://prijava.example", "sub": "u", "aud": "potvrda", "iat": 1, "exp": 2, "jti": "j"});
    c.bench_function("es256_sign/token", |b| {
        b.iter(|| {
            black_box(jsonwebtoken::encode(&header, &claims, &server.encoding).expect("signs"))
        })
    });

    let device = EsKey::from_pkcs8(&generate_pkcs8().expect("keygen")).expect("key");
    let mut h = Header::new(Algorithm::ES256);
    h.typ = Some(TYP_APPROVAL.into());
    h.kid = Some("device".into());
    let approval = jsonwebtoken::encode(
        &h,
        &ApprovalClaims {
            cid: "c".into(),
            nonce: URL_SAFE_NO_PAD.encode([3u8; 32]),
            decision: Decision::Approve,
            number: Some(42),
            iat: 1,
            ctx_hash: Some(URL_SAFE_NO_PAD.encode([5u8; 32])),
            jti: Some("bench".into()),
            code: None,
            uv: None,
            key: None,
        },
        &device.encoding,
    )
    .expect("signs");
    c.bench_function("approval_verify", |b| {
        b.iter(|| {
            black_box(
                verify_jws::<ApprovalClaims>(&approval, TYP_APPROVAL, &device.decoding)
                    .expect("verifies"),
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
