//! `potvrda-device`: a virtual phone for demos and tests.
//!
//! ```text
//! potvrda-device enroll --server http://127.0.0.1:8080 --code ABCD-EFGH-JKMN --push-listen 127.0.0.1:8091
//! potvrda-device listen            # receive pushes; type the number to approve
//! potvrda-device pending           # pull pending challenges (no push needed)
//! potvrda-device approve --cid <cid> --number 42
//! potvrda-device deny --cid <cid>
//! ```
//!
//! It speaks the language of `--lang` (`sr-Cyrl`, `sr-Latn`, `en`, `hu`),
//! else of the terminal (`LC_ALL`, `LC_MESSAGES`, `LANG`), else Serbian in
//! Cyrillic, from the same catalogue as the server and the phones.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use potvrda_i18n::{Arg, Locale, catalog};
use potvrda_mobile_core::phone::{PushEndpoint, VirtualPhone};
use potvrda_mobile_core::{Challenge, Error, Result, protocol};
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
    /// The language to speak (`sr-Cyrl`, `sr-Latn`, `en`, `hu`); default:
    /// the terminal's.
    #[arg(long, global = true, env = "POTVRDA_LANG")]
    lang: Option<Locale>,
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

/// Message `id` in `locale` with its text arguments.
fn say(locale: Locale, id: &str, args: &[(&str, &str)]) -> String {
    let args: Vec<(&str, Arg<'_>)> = args.iter().map(|(k, v)| (*k, Arg::Text(v))).collect();
    catalog().text_with(locale, id, &args)
}

/// The language: `--lang`, else the terminal's, else the default.
fn language(chosen: Option<Locale>) -> Locale {
    let terminal = || {
        ["LC_ALL", "LC_MESSAGES", "LANG"]
            .into_iter()
            .filter_map(|v| std::env::var(v).ok())
            .find(|v| !v.is_empty())
            .and_then(|v| Locale::from_posix(&v))
    };
    chosen.or_else(terminal).unwrap_or_default()
}

fn describe(c: &Challenge, locale: Locale) -> String {
    let ctx = &c.claims.ctx;
    let unknown = say(locale, "dev-unknown", &[]);
    let line = |id: &str, args: &[(&str, &str)]| format!("\n  {}", say(locale, id, args));
    let binding = ctx
        .binding_message
        .as_deref()
        .map(|m| line("dev-message", &[("message", m)]))
        .unwrap_or_default();
    let seconds = (c.claims.exp - potvrda_mobile_core::phone::unix_now()).to_string();
    [
        say(locale, "dev-challenge", &[("cid", c.claims.cid.as_ref())]),
        line("dev-login-as", &[("user", &c.claims.sub)]),
        line(
            "dev-service",
            &[("service", &protocol::service_name(c, locale))],
        ),
        binding,
        line(
            "dev-from",
            &[
                ("ip", ctx.ip.as_deref().unwrap_or(&unknown)),
                ("agent", ctx.user_agent.as_deref().unwrap_or(&unknown)),
            ],
        ),
        line("dev-expires", &[("seconds", &seconds)]),
    ]
    .concat()
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
    let lang = language(cli.lang);
    match cli.cmd {
        Cmd::Enroll {
            server,
            code,
            name,
            push_listen,
        } => {
            let endpoint = push_listen.map(|a| format!("http://{a}/push/device"));
            let mut phone =
                VirtualPhone::enroll(&server, &code, &name, endpoint.as_deref()).await?;
            phone.state.device.locale = lang;
            phone.save(&cli.state)?;
            let mode = say(
                lang,
                if endpoint.is_some() {
                    "dev-mode-push"
                } else {
                    "dev-mode-pull"
                },
                &[],
            );
            let path = cli.state.display().to_string();
            println!(
                "{}",
                say(
                    lang,
                    "dev-enrolled",
                    &[
                        ("device", &phone.state.device.device_id),
                        ("user", &phone.state.device.username),
                        ("mode", &mode),
                        ("path", &path),
                    ],
                )
            );
            if let Some(codes) = &phone.recovery_codes {
                println!("{}", say(lang, "dev-recovery", &[]));
                for c in codes {
                    println!("  {c}");
                }
            }
        }
        Cmd::Listen => {
            let mut phone = VirtualPhone::load(&cli.state)?;
            phone.state.device.locale = lang;
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
            println!(
                "{}",
                say(
                    lang,
                    "dev-listening",
                    &[("endpoint", &push.endpoint), ("stop", "Ctrl-C")]
                )
            );
            let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            while let Some(msg) = endpoint.recv().await {
                let challenge = match phone.open_push(&msg.body) {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!(
                            "{}",
                            say(lang, "dev-rejected", &[("error", &e.to_string())])
                        );
                        continue;
                    }
                };
                // Tell the server it is on screen (its latency metrics); not essential.
                if let Err(e) = phone.acknowledge(&challenge).await {
                    eprintln!(
                        "{}",
                        say(lang, "dev-ack-failed", &[("error", &e.to_string())])
                    );
                }
                println!("{}", describe(&challenge, lang));
                println!(
                    "{}",
                    say(
                        lang,
                        "dev-answer",
                        &[("enter", "Enter"), ("fraud", "fraud")]
                    )
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
                println!("{}", say(lang, "dev-none", &[]));
            }
            for c in pending {
                println!("{}", describe(&c, lang));
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
                    return Err(std::io::Error::other(say(lang, "dev-no-offline", &[])).into());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_speaks_the_chosen_language_or_the_terminals() {
        assert_eq!(language(Some(Locale::Hu)), Locale::Hu);
        assert_eq!(
            say(Locale::SrLatn, "dev-expires", &[("seconds", "42")]),
            "ističe za 42 s"
        );
        assert_eq!(
            say(
                Locale::Hu,
                "dev-answer",
                &[("enter", "Enter"), ("fraud", "fraud")]
            ),
            "Írja be a bejelentkezési képernyőn látható számot a megerősítéshez, Enter az elutasításhoz, vagy „fraud”, ha nem Ön volt:"
        );
    }
}
