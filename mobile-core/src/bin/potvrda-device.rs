//! `potvrda-device`: a virtual phone for demos and tests.
//!
//! ```text
//! potvrda-device enroll --server http://127.0.0.1:8080 --code ABCD-EFGH-JKMN --push-listen 127.0.0.1:8091
//! potvrda-device listen            # receive pushes; type the number to approve
//! potvrda-device pending           # pull pending challenges (no push needed)
//! potvrda-device approve --cid <cid> --number 42
//! potvrda-device deny --cid <cid>
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use potvrda_mobile_core::phone::{PushEndpoint, VirtualPhone};
use potvrda_mobile_core::{Challenge, Error, Result};
use potvrda_proto::jose::Decision;
use tokio::io::AsyncBufReadExt;

#[derive(Debug, Parser)]
#[command(version, about = "A virtual Potvrda phone")]
struct Cli {
    /// Where the device keeps its keys and enrollment.
    #[arg(
        long,
        global = true,
        default_value = "potvrda-device.json",
        env = "POTVRDA_DEVICE_STATE"
    )]
    state: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Enroll with the activation code from the printed sheet.
    Enroll {
        /// Server base URL.
        #[arg(long)]
        server: String,
        /// Activation code.
        #[arg(long)]
        code: String,
        /// Device name.
        #[arg(long, default_value = "virtual phone")]
        name: String,
        /// Receive pushes on this address (omit for a pull-only device).
        #[arg(long)]
        push_listen: Option<SocketAddr>,
    },
    /// Receive pushes and answer them interactively.
    Listen,
    /// Whether pushes reach this device (the server's view: active, gone
    /// after the push service said 404/410, or none).
    Status,
    /// Replace the push subscription: receive pushes on this address with
    /// new keys (after `gone`, or on moving), or pull only with `--off`.
    Push {
        /// The new address to receive pushes on.
        #[arg(long, conflicts_with = "off", required_unless_present = "off")]
        listen: Option<SocketAddr>,
        /// Remove the subscription: pull only.
        #[arg(long)]
        off: bool,
    },
    /// List pending challenges (pull).
    Pending,
    /// Approve a challenge with the number shown on the login screen.
    Approve {
        /// Challenge id.
        #[arg(long)]
        cid: String,
        /// The two-digit number.
        #[arg(long)]
        number: u8,
    },
    /// Deny a challenge.
    Deny {
        /// Challenge id.
        #[arg(long)]
        cid: String,
    },
    /// Deny a challenge and report it as fraud (the account is locked).
    Fraud {
        /// Challenge id.
        #[arg(long)]
        cid: String,
    },
    /// Show the offline code, for a login while the phone has no network.
    Code,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("potvrda-device: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("potvrda-device: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn describe(c: &Challenge) -> String {
    let ctx = &c.claims.ctx;
    let binding = ctx
        .binding_message
        .as_deref()
        .map(|m| format!("\n  message:   {m} (the screen asking shows it too)"))
        .unwrap_or_default();
    format!(
        "challenge {}\n  login as:  {}\n  service:   {}{binding}\n  from:      {} ({})\n  expires:   in {} s",
        c.claims.cid,
        c.claims.sub,
        ctx.service.as_deref().unwrap_or("-"),
        ctx.ip.as_deref().unwrap_or("unknown address"),
        ctx.user_agent.as_deref().unwrap_or("unknown browser"),
        c.claims.exp - potvrda_mobile_core::phone::unix_now(),
    )
}

async fn find(phone: &VirtualPhone, cid: &str) -> Result<Challenge> {
    phone
        .pending()
        .await?
        .into_iter()
        .find(|c| c.claims.cid == cid)
        .ok_or(Error::Server {
            status: 404,
            error: "not_found".into(),
        })
}

async fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Enroll {
            server,
            code,
            name,
            push_listen,
        } => {
            let endpoint = push_listen.map(|a| format!("http://{a}/push/device"));
            let phone = VirtualPhone::enroll(&server, &code, &name, endpoint.as_deref()).await?;
            phone.save(&cli.state)?;
            println!(
                "enrolled device {} for {} ({}); state in {}",
                phone.state.device.device_id,
                phone.state.device.username,
                if endpoint.is_some() {
                    "push"
                } else {
                    "pull only"
                },
                cli.state.display()
            );
            if let Some(codes) = &phone.recovery_codes {
                println!(
                    "Recovery codes, each replaces the phone once. Write them down now, they are not shown again:"
                );
                for c in codes {
                    println!("  {c}");
                }
            }
        }
        Cmd::Listen => {
            let phone = VirtualPhone::load(&cli.state)?;
            let push = phone
                .state
                .device
                .push
                .as_ref()
                .ok_or(Error::InvalidKey("this device was enrolled without push"))?;
            let addr: SocketAddr = url_authority(&push.endpoint)
                .parse()
                .map_err(|_| Error::InvalidKey("stored endpoint has no host:port"))?;
            let mut endpoint = PushEndpoint::start(addr).await?;
            endpoint.expect_vapid_key(&phone.state.device.vapid_public_key);
            println!("listening for pushes on {}; Ctrl-C to stop", push.endpoint);
            let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            while let Some(msg) = endpoint.recv().await {
                let challenge = match phone.open_push(&msg.body) {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("rejected a push: {e}");
                        continue;
                    }
                };
                // Tell the server it is on screen (its latency metrics); not essential.
                if let Err(e) = phone.acknowledge(&challenge).await {
                    eprintln!("acknowledgement failed: {e}");
                }
                println!("{}", describe(&challenge));
                println!(
                    "Type the number shown on the login screen to approve, Enter to deny, or \"fraud\" if this was not you:"
                );
                let line = lines.next_line().await?.unwrap_or_default();
                let answer = match line.trim().parse::<u8>() {
                    Ok(n) => phone.answer(&challenge, Decision::Approve, Some(n)).await,
                    Err(_) if line.trim().eq_ignore_ascii_case("fraud") => {
                        phone.answer(&challenge, Decision::Fraud, None).await
                    }
                    Err(_) => phone.answer(&challenge, Decision::Deny, None).await,
                };
                match answer {
                    Ok(r) => println!("-> {:?}", r.status),
                    Err(e) => println!("-> {e}"),
                }
            }
        }
        Cmd::Status => {
            let phone = VirtualPhone::load(&cli.state)?;
            let info = phone.info().await?;
            println!("push: {:?}", info.push);
        }
        Cmd::Push { listen, off: _ } => {
            let mut phone = VirtualPhone::load(&cli.state)?;
            let endpoint = listen.map(|a| format!("http://{a}/push/device"));
            let info = phone.resubscribe(endpoint.as_deref()).await?;
            phone.save(&cli.state)?;
            println!("push: {:?}", info.push);
        }
        Cmd::Pending => {
            let phone = VirtualPhone::load(&cli.state)?;
            let pending = phone.pending().await?;
            if pending.is_empty() {
                println!("no pending challenges");
            }
            for c in pending {
                println!("{}", describe(&c));
            }
        }
        Cmd::Approve { cid, number } => {
            let phone = VirtualPhone::load(&cli.state)?;
            let c = find(&phone, &cid).await?;
            println!(
                "{:?}",
                phone
                    .answer(&c, Decision::Approve, Some(number))
                    .await?
                    .status
            );
        }
        Cmd::Deny { cid } => {
            let phone = VirtualPhone::load(&cli.state)?;
            let c = find(&phone, &cid).await?;
            println!("{:?}", phone.answer(&c, Decision::Deny, None).await?.status);
        }
        Cmd::Code => {
            let phone = VirtualPhone::load(&cli.state)?;
            match phone.offline_code()? {
                Some(code) => println!("{code}"),
                None => {
                    return Err(std::io::Error::other(
                        "this device was enrolled without an offline secret",
                    )
                    .into());
                }
            }
        }
        Cmd::Fraud { cid } => {
            let phone = VirtualPhone::load(&cli.state)?;
            let c = find(&phone, &cid).await?;
            println!(
                "{:?}",
                phone.answer(&c, Decision::Fraud, None).await?.status
            );
        }
    }
    Ok(())
}

fn url_authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}
