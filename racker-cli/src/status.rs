//! `racker status`: what was provisioned and the state of every node
//! (collected by racker-bootstrap, printed here).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use racker_bootstrap::{
    Event, RackFiles, StatusOptions, StatusReport, collect_rack_status, watch_rack_status,
};

use crate::context::{self, PlanArgs};
use crate::globals::Globals;
use crate::output::{Tone, paint};

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
    let files = RackFiles::new(
        &globals.oem_dir,
        &globals.state_dir,
        &globals.sys_class_net,
        args.plan.plan_options(),
    );
    let warnings = |e: &Event| {
        if let Event::Warning(w) = e {
            crate::output::warn(w);
        }
    };
    if let Some(interval) = args.watch {
        return watch(
            globals,
            args,
            (&files, bmcs.inner(), &options),
            &warnings,
            interval,
        )
        .await;
    }
    let status = collect_rack_status(&files, bmcs.inner(), &options, &warnings).await?;
    crate::output::emit(globals.output, "status", &status, |wide| {
        print_text(&status, args.full, wide);
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `racker status --watch`: racker-bootstrap's rounds every `interval`
/// until Ctrl-C, shown as they come. On a terminal the text is redrawn in
/// place (cursor home, each line cleared to its end, the rest of the screen
/// cleared); piped, every round is printed after a `--- <time> ---` line,
/// and JSON formats print one document per round.
async fn watch(
    globals: &Globals,
    args: &StatusCmd,
    (files, bmcs, options): (&RackFiles, &racker_bootstrap::BmcResolver, &StatusOptions),
    warnings: &dyn racker_bootstrap::EventSink,
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
    if in_place {
        // Clear once; later rounds overwrite in place (no flicker).
        print!("\x1b[2J");
    }
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    watch_rack_status(files, bmcs, options, interval, warnings, stop, |round| {
        let round = round.map_err(anyhow::Error::from);
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
        anyhow::Ok(())
    })
    .await?;
    if in_place {
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

/// The status table; `wide` adds the BMC address, stage and reason (also
/// `racker demo`'s).
pub(crate) fn print_text(status: &StatusReport, full: bool, wide: bool) {
    for l in text_lines(status, full, wide) {
        crate::output::line(l);
    }
}

/// The lines of [`print_text`]: racker-bootstrap's table and notes, in
/// colour.
fn text_lines(status: &StatusReport, full: bool, wide: bool) -> Vec<String> {
    let mut out = vec![format!("Provisioned: {}", status.provisioned)];
    if let Some(api) = status.kubernetes_api {
        out.push(format!(
            "Kubernetes API: {}",
            if api {
                paint(Tone::Good, "answers")
            } else {
                paint(Tone::Bad, "does not answer")
            }
        ));
    }
    out.push(String::new());
    let header = StatusReport::table_header(wide);
    let mut rows = status.table_rows(wide);
    paint_states(&header, &mut rows);
    out.extend(crate::table::render(&header, &rows));
    let notes = status.notes(full, wide);
    out.extend(
        notes
            .iter()
            .map(|l| crate::bootstrap::progress::coloured_marks(l)),
    );
    out
}

/// Table cells in their colours by column: state words (BMC, POWER, the
/// first word of OS, STATE), JOINED `yes` green, FAULTS yellow.
pub(crate) fn paint_states(header: &[&str], rows: &mut [Vec<String>]) {
    for row in rows {
        for (h, cell) in header.iter().zip(row.iter_mut()) {
            *cell = match *h {
                "BMC" | "POWER" | "STATE" => paint(Tone::of_state(cell), cell),
                "OS" => match cell.split_once(' ') {
                    Some((w, rest)) => format!("{} {rest}", paint(Tone::of_state(w), w)),
                    None => paint(Tone::of_state(cell), cell),
                },
                "JOINED" if cell == "yes" => paint(Tone::Good, cell),
                "FAULTS" if cell != "-" => paint(Tone::Warn, cell),
                _ => continue,
            };
        }
    }
}
