//! `auth-server`: the Potvrda server binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use potvrda_server::clock::SystemClock;
use potvrda_server::config::{Config, LogFormat, Overrides};

/// Potvrda: password, then a push approval on the phone, then a JWT.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, env = "POTVRDA_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (overrides POTVRDA_LISTEN).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Public URL (overrides POTVRDA_PUBLIC_URL).
    #[arg(long)]
    public_url: Option<String>,
    /// Data directory (overrides POTVRDA_DATA_DIR).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Redis URL (overrides POTVRDA_REDIS_URL); unset: embedded store.
    #[arg(long)]
    redis_url: Option<String>,
    /// What to do instead of serving.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Manage the token keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Copy an embedded store or a Redis deployment into the configured
    /// PostgreSQL ([store] postgres_url), then check counts, a sample and the
    /// audit trail. Idempotent: a run stopped anywhere is run again. Stop
    /// the servers first (docs/OPERATIONS.md, "Moving to PostgreSQL").
    Migrate {
        /// The store to copy: the data dir's redb file, or the configured Redis.
        #[arg(long, value_enum)]
        from: potvrda_server::migrate::Source,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
}

#[derive(Debug, clap::Subcommand)]
enum AuditAction {
    /// Check the trail's hash chains and signed checkpoints, and name the
    /// first broken link (exit 1). Without --export: the live store of the
    /// configuration, up to the heads it keeps (the embedded store is
    /// locked by a running server: stop it, or verify an export).
    Verify {
        /// An export (`GET /v1/admin/audit/export`, JSON Lines) instead of the store.
        #[arg(long, requires = "jwks")]
        export: Option<PathBuf>,
        /// The audit key set (`/.well-known/audit-jwks.json`) for an export.
        #[arg(long)]
        jwks: Option<PathBuf>,
        /// The chain an export must hold whole: `national` (an unfiltered
        /// export) or `municipality:<code>` (an export of one municipality).
        #[arg(long, default_value = "national")]
        chain: String,
    },
}

#[derive(Debug, clap::Subcommand)]
enum KeysAction {
    /// Make a new generation of token keys current now; the current one stays
    /// published as the previous. Running instances on the same Redis switch
    /// at once. (The embedded store is locked by a running server: stop it first.)
    Rotate,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let overrides = Overrides {
        listen: cli.listen,
        public_url: cli.public_url,
        data_dir: cli.data_dir,
        redis_url: cli.redis_url,
    };
    let config = match Config::load(cli.config.as_deref(), std::env::vars(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("auth-server: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    init_tracing(&config);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("auth-server: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Some(Command::Audit {
        action:
            AuditAction::Verify {
                export,
                jwks,
                chain,
            },
    }) = cli.command
    {
        return runtime.block_on(audit_verify(&config, export, jwks, &chain));
    }
    if let Some(Command::Migrate { from }) = cli.command {
        use potvrda_server::clock::Clock as _;
        return match runtime.block_on(potvrda_server::migrate::migrate(
            &config,
            from,
            SystemClock.now(),
        )) {
            Ok(summary) => {
                print!("{summary}");
                println!("OK: PostgreSQL holds everything the source did");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("auth-server migrate: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    if let Some(Command::Keys {
        action: KeysAction::Rotate,
    }) = cli.command
    {
        return match runtime.block_on(potvrda_server::rotate_token_keys(&config)) {
            Ok((es256, rs256)) => {
                println!("token keys rotated: ES256 kid {es256}, RS256 kid {rs256}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("auth-server keys rotate: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    match runtime.block_on(serve(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "auth-server stopped");
            eprintln!("auth-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn audit_verify(
    config: &Config,
    export: Option<PathBuf>,
    jwks: Option<PathBuf>,
    chain: &str,
) -> std::process::ExitCode {
    use potvrda_domain::audit::chain::ChainName;
    use potvrda_domain::audit::verify::Scope;
    use potvrda_server::audit_check;
    let scope = match ChainName::parse(chain) {
        Some(ChainName::National) => Scope::National,
        Some(ChainName::Municipality(code)) => Scope::Municipality(code),
        None => {
            eprintln!("auth-server audit verify: --chain is `national` or `municipality:<code>`");
            return std::process::ExitCode::from(2);
        }
    };
    let checked = match (export, jwks) {
        (Some(export), Some(jwks)) => {
            audit_check::verify_export(&export, &jwks, scope).map(|r| (r, None))
        }
        _ => audit_check::verify_live(config)
            .await
            .map(|(r, head)| (r, Some(head))),
    };
    match checked {
        Ok((report, head)) => {
            let (text, ok) = audit_check::describe(&report, head);
            print!("{text}");
            if ok {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("auth-server audit verify: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn serve(config: Config) -> potvrda_server::error::Result<()> {
    let running = potvrda_server::start(config, Arc::new(SystemClock)).await?;
    let handle = running.handle();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: draining in-flight requests");
        handle.stop(true).await;
    });
    running.wait().await
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn init_tracing(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&config.log.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
