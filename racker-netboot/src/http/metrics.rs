//! Prometheus text-format metrics (exposition format 0.0.4).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::matchbox::Catalog;
use crate::report::{ReportStore, Stage};
use crate::tftp::server::TftpStats;

/// Another component (e.g. DHCP) contributing metrics to `/metrics`.
pub trait MetricsSource: Send + Sync + std::fmt::Debug {
    /// Append complete metric families (`# HELP`, `# TYPE`, samples).
    fn write_metrics(&self, out: &mut String);
}

/// HTTP counters.
#[derive(Debug, Default)]
pub struct HttpStats {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    refused: AtomicU64,
    /// Asset payload bytes sent.
    pub asset_bytes: Arc<AtomicU64>,
    /// Connections open now.
    pub connections_open: AtomicU64,
    /// Connections refused at accept (connection limits).
    pub connections_refused: AtomicU64,
    /// Connections closed by a header, idle, body or send timeout.
    pub connections_timed_out: AtomicU64,
}

impl HttpStats {
    /// Count one response.
    pub fn count(&self, route: &'static str, status: u16) {
        let mut m = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *m.entry((route, status)).or_default() += 1;
    }

    /// Count one refused (traversal) request.
    pub fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }
}

/// All counters of the netboot content services.
#[derive(Debug, Default)]
pub struct Metrics {
    /// TFTP counters (shared with the TFTP server).
    pub tftp: Arc<TftpStats>,
    /// HTTP counters.
    pub http: HttpStats,
    extra: Mutex<Vec<Arc<dyn MetricsSource>>>,
}

pub(crate) fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

impl Metrics {
    /// Add a contributor (the DHCP server registers itself here).
    pub fn register(&self, source: Arc<dyn MetricsSource>) {
        self.extra
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(source);
    }

    /// Render every metric.
    pub fn render(&self, reports: &ReportStore, catalog: &Catalog) -> String {
        let mut out = String::new();
        let t = &self.tftp;
        for (name, help, v) in [
            (
                "racker_tftp_requests_total",
                "TFTP read requests received.",
                &t.requests,
            ),
            (
                "racker_tftp_refused_total",
                "TFTP requests refused (not found, traversal, write requests, malformed).",
                &t.refused,
            ),
            (
                "racker_tftp_transfers_completed_total",
                "TFTP transfers completed.",
                &t.completed,
            ),
            (
                "racker_tftp_transfers_failed_total",
                "TFTP transfers failed or timed out.",
                &t.failed,
            ),
            (
                "racker_tftp_bytes_sent_total",
                "TFTP payload bytes sent, retransmissions included.",
                &t.bytes_sent,
            ),
        ] {
            family(&mut out, name, "counter", help);
            let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
        }
        family(
            &mut out,
            "racker_tftp_transfers_active",
            "gauge",
            "TFTP transfers in progress.",
        );
        let _ = writeln!(
            out,
            "racker_tftp_transfers_active {}",
            t.active.load(Ordering::Relaxed)
        );

        family(
            &mut out,
            "racker_http_requests_total",
            "counter",
            "HTTP responses by route and status code.",
        );
        {
            let m = self
                .http
                .requests
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for ((route, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "racker_http_requests_total{{route=\"{route}\",code=\"{status}\"}} {n}"
                );
            }
        }
        family(
            &mut out,
            "racker_http_asset_bytes_sent_total",
            "counter",
            "Asset payload bytes sent over HTTP.",
        );
        let _ = writeln!(
            out,
            "racker_http_asset_bytes_sent_total {}",
            self.http.asset_bytes.load(Ordering::Relaxed)
        );
        family(
            &mut out,
            "racker_http_refused_total",
            "counter",
            "HTTP asset requests refused (path traversal).",
        );
        let _ = writeln!(
            out,
            "racker_http_refused_total {}",
            self.http.refused.load(Ordering::Relaxed)
        );
        for (name, kind, help, v) in [
            (
                "racker_http_connections_open",
                "gauge",
                "HTTP connections open.",
                &self.http.connections_open,
            ),
            (
                "racker_http_connections_refused_total",
                "counter",
                "HTTP connections refused by the connection limits.",
                &self.http.connections_refused,
            ),
            (
                "racker_http_connections_timed_out_total",
                "counter",
                "HTTP connections closed by a header, idle, body or send timeout.",
                &self.http.connections_timed_out,
            ),
        ] {
            family(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
        }

        // Nodes by stage: every node with a MAC selector is "planned" until
        // it reports.
        let mut by_stage: BTreeMap<&str, u64> = BTreeMap::new();
        let stages = Stage::ALL.map(Stage::as_str);
        for s in std::iter::once("planned").chain(stages) {
            by_stage.insert(s, 0);
        }
        let reported = reports.reports();
        for r in &reported {
            *by_stage.entry(r.stage.as_str()).or_default() += 1;
        }
        let planned = catalog
            .groups
            .values()
            .filter_map(|g| g.selector.get("mac"))
            .filter_map(|m| m.parse().ok())
            .filter(|m| !reported.iter().any(|r| r.mac == *m))
            .count() as u64;
        by_stage.insert("planned", planned);
        family(
            &mut out,
            "racker_nodes",
            "gauge",
            "Nodes by installation stage.",
        );
        for (stage, n) in by_stage {
            let _ = writeln!(out, "racker_nodes{{stage=\"{stage}\"}} {n}");
        }

        for source in self
            .extra
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            source.write_metrics(&mut out);
        }
        out
    }
}
