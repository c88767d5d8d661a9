//! Potvrda auth-server: checks the password (Argon2id), sends a signed
//! challenge to the citizen's phone through Web Push, verifies the phone's
//! signed approval and issues a JWT.
//!
//! [`start`] builds everything from a [`config::Config`] and serves on the
//! configured address; the binary and the end-to-end tests both use it.
#![forbid(unsafe_code)]

pub mod audit_check;
pub mod ciba_ping;
pub mod config;
pub mod http;
pub mod key_sets;
pub mod logout_delivery;
pub mod metrics;
pub mod migrate;
pub mod proxies;
pub mod push;
pub mod store;

pub use potvrda_domain::{audit, clock, error, keyring, keys, password, ports, service, settings};

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::{App, HttpServer, middleware, web};
use secrecy::ExposeSecret;

use crate::clock::{Clock, Random, SystemRandom};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::keys::ServerKeys;
use crate::password::PasswordHasher;
use crate::push::PushSender;
use crate::service::{Parts, Potvrda};
use crate::store::Store;

/// A running server.
pub struct Running {
    /// The address actually bound.
    pub addr: SocketAddr,
    /// The issuer URL.
    pub public_url: String,
    /// Where `/metrics` is served, when on its own listener.
    pub metrics_addr: Option<SocketAddr>,
    handle: actix_web::dev::ServerHandle,
    metrics_handle: Option<actix_web::dev::ServerHandle>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    svc: web::Data<Potvrda>,
    web: web::Data<http::Web>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Running {
    /// Stop; with `graceful`, in-flight requests (long-polls included) finish
    /// first. Returns once every worker has let go of the service, so the
    /// store (the redb file lock) is released and can be opened again.
    pub async fn stop(self, graceful: bool) -> Result<()> {
        if let Some(h) = &self.metrics_handle {
            h.stop(graceful).await;
        }
        self.handle.stop(graceful).await;
        let served = self
            .task
            .await
            .map_err(|e| Error::Internal(format!("server task: {e}")))?
            .map_err(Error::Io);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        // Worker threads drop their clones just after the server future ends.
        while Arc::strong_count(&self.svc) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        served
    }

    /// How many logins have a status request parked on this instance.
    pub fn waiting_long_polls(&self) -> usize {
        self.web.metrics.long_polls_waiting()
    }

    /// A handle to stop the server from elsewhere (signal handlers).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.handle.clone()
    }

    /// Run until stopped.
    pub async fn wait(self) -> Result<()> {
        self.task
            .await
            .map_err(|e| Error::Internal(format!("server task: {e}")))?
            .map_err(Error::Io)
    }
}

/// Open the configured store: PostgreSQL + Redis when both URLs are set,
/// Redis when `redis_url` is, else embedded. `meter` times PostgreSQL's queries.
pub async fn open_store(
    config: &Config,
    meter: Arc<dyn potvrda_domain::ports::Meter>,
) -> Result<Arc<dyn Store>> {
    let set = |u: &Option<secrecy::SecretString>| {
        u.as_ref()
            .filter(|u| !u.expose_secret().is_empty())
            .cloned()
    };
    let Some(redis_url) = set(&config.store.redis_url) else {
        return Ok(Arc::new(store::embedded::EmbeddedStore::open(
            &config.store.data_dir,
        )?));
    };
    let redis = store::redis::RedisStore::connect(
        &redis_url,
        config.store.redis_cluster,
        &config.store.redis_key_prefix,
    )
    .await?;
    let Some(pg_url) = set(&config.store.postgres_url) else {
        return Ok(Arc::new(redis));
    };
    let pool = store::postgres::PoolSettings {
        max_connections: config.store.postgres_pool_size,
        acquire_timeout: config.store.postgres_acquire_timeout,
    };
    let pg = store::postgres::PgStore::connect(&pg_url, pool, meter).await?;
    Ok(Arc::new(store::split::SplitStore::new(pg, redis)))
}

/// The store's shape, for the log.
fn store_shape(config: &Config) -> &'static str {
    match (&config.store.postgres_url, &config.store.redis_url) {
        (Some(_), Some(_)) => "postgres+redis",
        (None, Some(_)) => "redis",
        _ => "embedded",
    }
}

/// Rotate the token keys in the configured store now (`auth-server keys
/// rotate`); running instances on the same store pick the new keys up at
/// once. Returns the new ES256 and RS256 key ids.
pub async fn rotate_token_keys(config: &Config) -> Result<(String, String)> {
    let store = open_store(config, Arc::new(potvrda_domain::ports::NoMeter)).await?;
    keyring::rotate(store.as_ref(), &clock::SystemClock, None).await
}

/// Build the service and serve it. `clock` is the system clock in production
/// and a hand-set one in tests.
pub async fn start(config: Config, clock: Arc<dyn Clock>) -> Result<Running> {
    start_with(config, clock, Arc::new(SystemRandom::default())).await
}

/// [`start`] with the randomness injected too (a seeded stream replays a
/// run in tests; the operating system's in production).
pub async fn start_with(
    mut config: Config,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Random>,
) -> Result<Running> {
    if config.oidc.registered.is_empty() {
        config.parse_clients()?;
    }
    let config = Arc::new(config);
    let listener = std::net::TcpListener::bind(config.listen.address)?;
    let addr = listener.local_addr()?;
    let public_url = config.public_url_for(addr);
    let metrics = Arc::new(metrics::Metrics::new()?);
    spawn_upkeep(Arc::downgrade(&metrics));
    let svc = web::Data::new(assemble(&config, &public_url, clock, rng, &metrics).await?);
    let web_parts = web::Data::new(http::Web {
        config: Arc::clone(&config),
        metrics,
        proxies: proxies::Proxies::checked(&config.listen.trusted_proxies),
    });
    let (handle, task) = serve_public(&config, listener, &svc, &web_parts)?;
    let (metrics_addr, metrics_handle) = match config.listen.metrics_listen {
        Some(at) => {
            let (bound, h) = serve_metrics(at, &svc, &web_parts)?;
            (Some(bound), Some(h))
        }
        None => (None, None),
    };
    tracing::info!(%addr, public_url, store = store_shape(&config), "potvrda auth-server listening");
    Ok(Running {
        addr,
        public_url,
        metrics_addr,
        handle,
        metrics_handle,
        task,
        svc,
        web: web_parts,
    })
}

/// The domain service with its adapters plugged in: the store, the keys,
/// the keyring, the password hasher, the audit sink, the push sender.
async fn assemble(
    config: &Arc<Config>,
    public_url: &str,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Random>,
    metrics: &Arc<metrics::Metrics>,
) -> Result<Potvrda> {
    let meter: Arc<dyn potvrda_domain::ports::Meter> = metrics.clone();
    let store = open_store(config, Arc::clone(&meter)).await?;
    let keys = Arc::new(
        ServerKeys::load(
            config.tokens.signing_key_file.as_deref(),
            config.push.vapid_key_file.as_deref(),
            config.audit.key_file.as_deref(),
            store.as_ref(),
        )
        .await?,
    );
    let keyring = Arc::new(
        keyring::Keyring::load(
            Arc::clone(&store),
            Arc::clone(&clock),
            config.tokens.key_rotation,
        )
        .await?,
    );
    keyring.spawn_upkeep();
    let audit = Arc::new(
        audit::Audit::new(
            Arc::clone(&store),
            Arc::clone(&clock),
            Arc::clone(&meter),
            config.audit.retention,
        )
        .with_checkpoints(
            Arc::clone(&keys.audit),
            public_url.to_owned(),
            config.audit.checkpoint_interval,
        ),
    );
    spawn_checkpoints(&audit, config.audit.checkpoint_interval);
    let push = PushSender::new(
        Arc::clone(&keys),
        config,
        Arc::clone(metrics),
        Arc::clone(&store),
        Arc::clone(&clock),
        Arc::clone(&audit),
    )?;
    let logouts = Arc::new(logout_delivery::HttpLogouts::new(
        Arc::clone(metrics),
        Arc::clone(&audit),
        Arc::clone(&clock),
    )?);
    let key_sets = Arc::new(key_sets::HttpKeySets::new(Arc::clone(&clock))?);
    Ok(Potvrda::new(Parts {
        settings: Arc::new(config.settings()),
        risk: config.risk_policy()?,
        public_url: public_url.to_owned(),
        store,
        clock,
        rng,
        keys,
        hasher: password_hasher(config).await?,
        push,
        notifier: Arc::new(ciba_ping::HttpNotifier::new()?),
        logouts,
        key_sets,
        metrics: meter,
        audit,
        keyring,
    }))
}

/// Checkpoints for quiet hours: a chain that moved gets signed within an
/// interval even if no further event comes to trigger it.
/// Holds the trail weakly: a stopped server's store is closed, not kept by it.
fn spawn_checkpoints(audit: &Arc<audit::Audit>, every: std::time::Duration) {
    let audit = Arc::downgrade(audit);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every.max(std::time::Duration::from_secs(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(audit) = audit.upgrade() else {
                return;
            };
            audit.checkpoint_if_due().await;
        }
    });
}

/// The Argon2id pool (its dummy hash is computed off the runtime).
async fn password_hasher(config: &Arc<Config>) -> Result<PasswordHasher> {
    let c = Arc::clone(config);
    let concurrency = match c.password.hash_concurrency {
        0 => cores(),
        n => n,
    };
    tokio::task::spawn_blocking(move || {
        PasswordHasher::new(
            c.password.memory_kib,
            c.password.iterations,
            c.password.parallelism,
            concurrency,
        )
    })
    .await
    .map_err(|e| Error::Internal(format!("hasher: {e}")))?
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

type Served = (
    actix_web::dev::ServerHandle,
    tokio::task::JoinHandle<std::io::Result<()>>,
);

/// The public listener: the API, the pages, the companion.
fn serve_public(
    config: &Config,
    listener: std::net::TcpListener,
    svc: &web::Data<Potvrda>,
    web_parts: &web::Data<http::Web>,
) -> Result<Served> {
    let (app_svc, app_web) = (svc.clone(), web_parts.clone());
    let metrics_on_main = config.listen.metrics_listen.is_none();
    let tls = tls_config(config)?;
    let hsts = tls.is_some();
    let origins = config.listen.cors_allowed_origins.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(app_svc.clone())
            .app_data(app_web.clone())
            .wrap(http::json_errors())
            .wrap(middleware::Condition::new(
                !origins.is_empty(),
                http::cors(&origins),
            ))
            .wrap(http::security_headers(hsts))
            .wrap(middleware::from_fn(http::body_deadline))
            .wrap(middleware::from_fn(http::observe))
            .configure(|cfg| http::configure(cfg, metrics_on_main))
    })
    .workers(match config.listen.workers {
        0 => cores(),
        n => n,
    })
    // A client has 5 s to send a request head (at most 128 KiB and 96
    // headers, actix-http's limits: 431 beyond), so slow-header connections
    // cannot pile up; idle keep-alive connections close after 30 s.
    .client_request_timeout(std::time::Duration::from_secs(5))
    .keep_alive(std::time::Duration::from_secs(30))
    .disable_signals()
    .shutdown_timeout(35);
    let server = match tls {
        Some(tls) => server.listen_rustls_0_23(listener, tls)?,
        None => server.listen(listener)?,
    }
    .run();
    Ok((server.handle(), tokio::spawn(server)))
}

/// `/metrics` on a listener of its own (`METRICS_LISTEN`).
fn serve_metrics(
    at: SocketAddr,
    svc: &web::Data<Potvrda>,
    web_parts: &web::Data<http::Web>,
) -> Result<(SocketAddr, actix_web::dev::ServerHandle)> {
    let listener = std::net::TcpListener::bind(at)?;
    let bound = listener.local_addr()?;
    let (msvc, mweb) = (svc.clone(), web_parts.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(msvc.clone())
            .app_data(mweb.clone())
            .configure(http::metrics_only)
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    let h = server.handle();
    tokio::spawn(server);
    Ok((bound, h))
}

/// Drain histogram samples every few seconds for as long as the metrics live.
fn spawn_upkeep(metrics: std::sync::Weak<metrics::Metrics>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tick.tick().await;
            match metrics.upgrade() {
                Some(m) => m.upkeep(),
                None => return,
            }
        }
    });
}

/// The rustls configuration when `tls_cert_file`/`tls_key_file` are set. The
/// key file must be readable by its owner only.
fn tls_config(config: &Config) -> Result<Option<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (Some(cert), Some(key)) = (&config.listen.tls_cert_file, &config.listen.tls_key_file)
    else {
        return Ok(None);
    };
    store::embedded::check_private(key)?;
    let bad = |what: &str, e: &dyn std::fmt::Display| Error::Config(format!("{what}: {e}"));
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad("tls_cert_file", &e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad("tls_cert_file", &e))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad("tls_key_file", &e))?;
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad("tls", &e))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| bad("tls", &e))?;
    Ok(Some(tls))
}
