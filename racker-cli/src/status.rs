//! `racker status`: what was provisioned and the state of every node
//! (collected by racker-bootstrap, printed here).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use racker_bootstrap::{StatusOptions, StatusReport, collect_status};

use crate::context::{self, PlanArgs};
use crate::globals::Globals;

/// Arguments of `racker status`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  racker status
  racker status --full
  racker status -o json
  racker status --watch          # redraw every 2s until Ctrl-C
  racker status --watch 10s -o jsonl")]
pub(crate) struct StatusCmd {
    #[command(flatten)]
    plan: PlanArgs,
    /// Add every node's diagnostics (device, chassis status, boot flags).
    #[arg(long)]
    full: bool,
    /// IPMI UDP port of the BMCs.
    #[arg(long, default_value_t = racker_ipmi::DEFAULT_PORT)]
    ipmi_port: u16,
    /// IPMI: time per exchange, retransmissions included (seconds, or
    /// e.g. 500ms, 5s).
    #[arg(long, default_value = crate::flags::IPMI_TIMEOUT, value_parser = crate::flags::ipmi_timeout, value_name = "DURATION")]
    ipmi_timeout: Duration,
    /// BMCs queried in parallel.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Show the status again every INTERVAL (default 2s) until Ctrl-C:
    /// redrawn in place on a terminal, one after the other otherwise.
    #[arg(
        long,
        value_name = "INTERVAL",
        num_args = 0..=1,
        default_missing_value = "2s",
        value_parser = crate::flags::watch_interval
    )]
    watch: Option<Duration>,
}

pub(crate) fn run(globals: &Globals, args: StatusCmd) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run_async(globals, &args))
}

async fn run_async(globals: &Globals, args: &StatusCmd) -> anyhow::Result<ExitCode> {
    let mut options = StatusOptions::default();
    options.full = args.full;
    options.ipmi_port = args.ipmi_port;
    options.ipmi_timeout = args.ipmi_timeout;
    options.concurrency = args.concurrency;
    let bmcs = context::BmcResolver::load(globals)?;
    if let Some(interval) = args.watch {
        return watch(globals, args, &bmcs, &options, interval).await;
    }
    let status = collect(globals, &args.plan, &bmcs, &options).await?;
    crate::output::emit(globals.output, "status", &status, |wide| {
        print_text(&status, args.full, wide);
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `racker status --watch`: collect and show the status every `interval`
/// until Ctrl-C. On a terminal the text is redrawn in place (cursor home,
/// each line cleared to its end, the rest of the screen cleared); piped,
/// every round is printed after a `--- <time> ---` line, and JSON formats
/// print one document per round.
async fn watch(
    globals: &Globals,
    args: &StatusCmd,
    bmcs: &context::BmcResolver,
    options: &StatusOptions,
    interval: Duration,
) -> anyhow::Result<ExitCode> {
    use std::io::{IsTerminal as _, Write as _};
    let format = globals.output;
    let in_place = !format.is_json() && std::io::stdout().is_terminal();
    let colour = !matches!(
        anstream::AutoStream::choice(&std::io::stdout()),
        anstream::ColorChoice::Never
    );
    let every = humantime::format_duration(interval);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    if in_place {
        // Clear once; later rounds overwrite in place (no flicker).
        print!("\x1b[2J");
    }
    loop {
        let round = tokio::select! {
            r = collect(globals, &args.plan, bmcs, options) => r,
            _ = &mut ctrl_c => break,
        };
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        let lines = match &round {
            Ok(status) => text_lines(status, args.full, format.is_wide()),
            Err(e) => vec![crate::output::fail_mark(&crate::error_chain(e))],
        };
        if in_place {
            let mut frame = format!(
                "\x1b[HEvery {every}: racker status    {now}    (Ctrl-C to stop)\x1b[K\n\x1b[K\n"
            );
            for line in lines {
                let line = if colour {
                    line
                } else {
                    anstream::adapter::strip_str(&line).to_string()
                };
                frame.push_str(&line);
                frame.push_str("\x1b[K\n");
            }
            frame.push_str("\x1b[J");
            let mut out = std::io::stdout().lock();
            out.write_all(frame.as_bytes())?;
            out.flush()?;
        } else {
            match &round {
                Ok(status) if format.is_json() => {
                    crate::output::print_json(format, "status", status)?;
                }
                Err(e) if format.is_json() => crate::output::error(crate::error_chain(e)),
                _ => {
                    crate::output::line(format!("--- {now} ---"));
                    for line in lines {
                        crate::output::line(line);
                    }
                }
            }
            std::io::stdout().flush()?;
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = &mut ctrl_c => break,
        }
    }
    if in_place {
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

/// Print the status table (used by `racker demo` too, whose simulated
/// BMCs answer at `bmcs`).
pub(crate) async fn print_status(
    globals: &Globals,
    plan: &PlanArgs,
    ipmi_port: u16,
    bmcs: std::collections::BTreeMap<racker_inventory::MacAddr, std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let mut options = StatusOptions::default();
    options.ipmi_port = ipmi_port;
    // The demo's nodes are simulated: their planned addresses are not on
    // this machine, so no probe of the API port goes there.
    options.probe_api_port = false;
    let bmcs = context::BmcResolver::with_overrides(globals, bmcs)?;
    let status = collect(globals, plan, &bmcs, &options).await?;
    print_text(&status, false, false);
    Ok(())
}

async fn collect(
    globals: &Globals,
    plan: &PlanArgs,
    bmcs: &context::BmcResolver,
    options: &StatusOptions,
) -> anyhow::Result<StatusReport> {
    let rack = context::load_rack(globals, plan)?;
    let credentials = context::load_credentials(globals)?;
    let creds =
        racker_ipmi::Credentials::new(credentials.user.clone(), credentials.password.expose());
    // Lease/plan disagreements are warned about once per node.
    for p in rack.plan.nodes() {
        bmcs.resolve(p, options.ipmi_port);
    }
    Ok(collect_status(&rack, &creds, &globals.state_dir, bmcs.inner(), options).await?)
}

/// The status table; `wide` adds the BMC address, stage and reason.
fn print_text(status: &StatusReport, full: bool, wide: bool) {
    for l in text_lines(status, full, wide) {
        crate::output::line(l);
    }
}

/// The lines of [`print_text`].
fn text_lines(status: &StatusReport, full: bool, wide: bool) -> Vec<String> {
    use crate::output::{Tone, fail_mark, paint};
    let mut out = Vec::new();
    let mut line = |l: String| out.push(l);
    line(format!("Provisioned: {}", status.provisioned));
    if let Some(api) = status.kubernetes_api {
        line(format!(
            "Kubernetes API: {}",
            if api {
                paint(Tone::Good, "answers")
            } else {
                paint(Tone::Bad, "does not answer")
            }
        ));
    }
    line(String::new());
    let mut header = vec!["PRIMARY MAC", "IP", "HOSTNAME", "BMC"];
    if wide {
        header.push("BMC ADDRESS");
    }
    header.extend(["POWER", "OS", "JOINED", "STATE"]);
    if wide {
        header.extend(["STAGE", "REASON"]);
    }
    let word = |w: &str| paint(Tone::of_state(w), w);
    let rows: Vec<Vec<String>> = status
        .nodes
        .iter()
        .map(|n| {
            let mut row = vec![
                n.primary_mac.to_string(),
                n.ip.clone(),
                n.hostname.clone().unwrap_or_else(|| "-".into()),
                word(if n.bmc_reached {
                    "reached"
                } else {
                    "unreachable"
                }),
            ];
            if wide {
                row.push(if n.bmc_address.is_empty() {
                    "-".into()
                } else {
                    n.bmc_address.clone()
                });
            }
            row.extend([
                word(n.power.as_deref().unwrap_or(crate::output::power_str(None))),
                match (n.os_up, n.os_provisioned) {
                    // -o wide says what says so (report, probe, kubernetes).
                    (true, _) if wide => match n.up_source {
                        Some(source) => format!(
                            "{} ({})",
                            word("up"),
                            serde_json::to_value(source)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_owned))
                                .unwrap_or_default()
                        ),
                        None => word("up"),
                    },
                    (true, _) => word("up"),
                    (false, true) => word("installed"),
                    (false, false) => "-".into(),
                },
                match (status.provisioned.as_str(), n.joined) {
                    ("lokomotive", true) => paint(Tone::Good, "yes"),
                    ("lokomotive", false) => "no".into(),
                    _ => "-".into(),
                },
                word(&n.state),
            ]);
            if wide {
                row.push(n.stage.clone());
                row.push(n.reason.clone().unwrap_or_else(|| "-".into()));
            }
            row
        })
        .collect();
    for l in crate::table::render(&header, &rows) {
        line(l);
    }
    for n in &status.nodes {
        if !wide && let Some(reason) = &n.reason {
            line(format!(
                "  {}",
                fail_mark(&format!(
                    "{} {} after {}: {reason}",
                    n.primary_mac, n.state, n.stage
                ))
            ));
        }
        if let Some(e) = &n.bmc_error {
            line(format!(
                "  {}",
                fail_mark(&format!(
                    "{} BMC {} ({}): {e}",
                    n.primary_mac, n.bmc_mac, n.bmc_address
                ))
            ));
        }
        if full && let Some(e) = &n.last_event {
            line(format!("  {} last netboot event: {e}", n.primary_mac));
        }
        if full && let Some(d) = &n.diag {
            line(format!("  {} diag: {d}", n.primary_mac));
        }
    }
    out
}
