//! End-to-end tests, built as one binary: the real server over real HTTP on a
//! free port, phones played by `potvrda-mobile-core` with a real local push
//! endpoint, and real Redis. Every scenario in [`flow`], [`attacks`] and
//! [`input`] runs on every store: embedded, Redis, and a three-master Redis Cluster.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a test harness: failing loudly is its job

mod accessibility;
mod attacks;
mod audit;
mod audit_chain;
mod browser;
mod ciba;
mod claims;
mod clients;
mod consent;
mod counter;
mod deploy;
mod failover;
mod fapi;
mod fatigue;
mod firefox;
mod flow;
mod input;
mod keyboard;
mod languages;
mod lifecycle;
mod limits;
mod logout;
mod migrate;
mod mobile;
mod mozpush;
mod observability;
mod oidc;
mod openapi;
mod outage;
mod pairwise;
mod recovery;
mod registry;
mod resend;
mod risk;
mod roles;
mod rp_library;
mod scale_out;
mod store_contract;
mod support;
mod system_of_record;
mod transport;
mod withdrawal;

/// Generate `embedded::<name>`, `redis::<name>`, `redis_cluster::<name>` and
/// `postgres::<name>` (PostgreSQL + Redis) tests from
/// `async fn <name>(backend: Backend)`.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(potvrda_e2e::Backend::Embedded).await
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(potvrda_e2e::Backend::Redis).await
                }
            )*
        }
        mod redis_cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(potvrda_e2e::Backend::RedisCluster).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(potvrda_e2e::Backend::Postgres).await
                }
            )*
        }
    };
}
