//! `racker ipmi exporter`: the Prometheus exporter for every BMC of the
//! rack (library: racker_ipmi::exporter).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use racker_ipmi::exporter::{ExportTarget, Exporter, ExporterOptions};
use racker_ipmi::{Credentials, SessionOptions};

use super::Target;

/// Arguments of `racker ipmi exporter`.
#[derive(Debug, clap::Args)]
pub(crate) struct ExporterArgs {
    /// Address to serve /metrics on.
    #[arg(long, default_value = "127.0.0.1:9290")]
    listen: SocketAddr,
    /// Time between polls of every BMC (e.g. `30s`, `1m`).
    #[arg(long, default_value = "30s", value_parser = crate::flags::ipmi_timeout, value_name = "DURATION")]
    interval: Duration,
    /// Time one BMC may take per poll before it counts as down.
    #[arg(long, default_value = "10s", value_parser = crate::flags::ipmi_timeout, value_name = "DURATION")]
    bmc_timeout: Duration,
}

pub(super) async fn run(
    args: &ExporterArgs,
    targets: Vec<Target>,
    creds: &Credentials,
    opts: &SessionOptions,
    concurrency: usize,
) -> anyhow::Result<ExitCode> {
    let targets: Vec<ExportTarget> = targets
        .into_iter()
        .map(|t| ExportTarget {
            node: t.host_label(),
            mac: t.bmc_mac.map_or_else(|| t.label.clone(), |m| m.to_string()),
            bmc: t.address,
        })
        .collect();
    let n = targets.len();
    let exporter = Arc::new(Exporter::new(
        targets,
        creds.clone(),
        ExporterOptions {
            session: opts.clone(),
            bmc_timeout: args.bmc_timeout,
            concurrency,
        },
    ));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    eprintln!(
        "racker ipmi exporter: {n} BMCs every {:?}, metrics on http://{}/metrics",
        args.interval,
        listener.local_addr().unwrap_or(args.listen)
    );
    tokio::select! {
        r = racker_ipmi::exporter::poll_and_serve(listener, exporter, args.interval) => {
            r.context("serving /metrics")?
        }
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
    }
    Ok(ExitCode::SUCCESS)
}
