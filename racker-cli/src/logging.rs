//! Logs: `tracing` events to stderr for every command (`-v`/`-q`,
//! `RUST_LOG`), and, while a bootstrap runs, the netboot services' and
//! the bootstrap's own events (DHCP, TFTP, HTTP, installer reports, IPMI)
//! also into its attempt log with their timestamps (docs/output.md).

use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The log filter for `-v`/`-q` when `RUST_LOG` is not set: services
/// (`netboot serve`, `sim up`) start at `info`, other commands at `warn`.
pub(crate) fn log_filter(verbose: u8, quiet: u8, service: bool) -> &'static str {
    let base: i8 = if service { 2 } else { 1 };
    let level = base + i8::try_from(verbose).unwrap_or(i8::MAX).min(3)
        - i8::try_from(quiet).unwrap_or(i8::MAX).min(3);
    match level {
        i8::MIN..=-1 => "off",
        0 => "error",
        1 => "warn",
        2 => "info",
        3 => "debug",
        _ => "trace",
    }
}

/// The attempt log tracing events are copied into, while there is one.
static ATTEMPT_LOG: Mutex<Option<std::fs::File>> = Mutex::new(None);

/// Copy the events of [`init`]'s attempt-log layer into `path` (appended),
/// or stop copying with `None`.
pub(crate) fn copy_events_to(path: Option<&Path>) {
    let file = path.and_then(|p| {
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(p)
            .map_err(|e| tracing::warn!("cannot append to {}: {e}", p.display()))
            .ok()
    });
    if let Ok(mut slot) = ATTEMPT_LOG.lock() {
        *slot = file;
    }
}

/// Writes into the current attempt log, if any.
struct AttemptLog;

impl std::io::Write for AttemptLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut slot) = ATTEMPT_LOG.lock()
            && let Some(f) = slot.as_mut()
        {
            f.write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `[2026-12-02T09:15:00.123Z]`, as racker-bootstrap stamps its own lines.
struct Bracketed;

impl tracing_subscriber::fmt::time::FormatTime for Bracketed {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        write!(
            w,
            "[{}]",
            humantime::format_rfc3339_millis(std::time::SystemTime::now())
        )
    }
}

/// Send `tracing` events to stderr (`RUST_LOG` when set, else the level
/// `-v`/`-q` give, see [`log_filter`]) and, for racker's own crates at
/// `info` and above, to the attempt log set with [`copy_events_to`].
pub(crate) fn init(globals: &crate::globals::Globals, service: bool) {
    let stderr_filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(log_filter(globals.verbose, globals.quiet, service))
        });
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_filter(stderr_filter);
    let attempt_log = tracing_subscriber::fmt::layer()
        .with_writer(|| AttemptLog)
        .with_timer(Bracketed)
        .with_filter(
            tracing_subscriber::filter::Targets::new()
                .with_target("racker_netboot", tracing::Level::INFO)
                .with_target("racker_bootstrap", tracing::Level::INFO)
                .with_target("racker_ipmi", tracing::Level::INFO),
        );
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(attempt_log)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_moves_the_level() {
        assert_eq!(log_filter(0, 0, false), "warn");
        assert_eq!(log_filter(0, 0, true), "info");
        assert_eq!(log_filter(1, 0, false), "info");
        assert_eq!(log_filter(2, 0, false), "debug");
        assert_eq!(log_filter(9, 0, false), "trace");
        assert_eq!(log_filter(0, 1, false), "error");
        assert_eq!(log_filter(0, 2, false), "off");
        assert_eq!(log_filter(0, 255, true), "off");
    }
}
