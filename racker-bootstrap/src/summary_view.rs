//! The end of a bootstrap or reprovision as the documents `racker
//! bootstrap -o json` and `racker reprovision -o json` print
//! (docs/output.md, kinds `bootstrap` and `reprovision`), and their text
//! form: the per-node table's rows and the closing line, marked `✓ ` or
//! `× ` (the caller lays out and colours them).

use std::path::PathBuf;
use std::time::Duration;

use racker_inventory::MacAddr;
use serde::Serialize;

use crate::{Report, Summary, SummaryNode};

/// `racker bootstrap -o json`: the [`Summary`] and the time taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BootstrapView {
    /// How the bootstrap ended.
    #[serde(flatten)]
    pub summary: Summary,
    /// Milliseconds the bootstrap took.
    pub elapsed_ms: u128,
}

impl BootstrapView {
    /// The view of `report`, which took `elapsed`.
    pub fn new(report: &Report, elapsed: Duration) -> Self {
        Self {
            summary: report.summary(),
            elapsed_ms: elapsed.as_millis(),
        }
    }

    /// The line below the table: `✓ flatcar provisioned in 1m 2s 300ms`
    /// or `× flatcar bootstrap failed after ... (log: ...)`.
    pub fn closing_line(&self) -> String {
        let s = &self.summary;
        let took = tenths(self.elapsed_ms);
        if s.ok {
            format!("✓ {} provisioned in {took}", s.provision)
        } else {
            format!(
                "× {} bootstrap failed after {took} (log: {})",
                s.provision,
                s.log.display()
            )
        }
    }
}

/// `racker reprovision -o json`: the bootstrap summary's keys, `nodes`
/// limited to the reprovisioned nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ReprovisionView {
    /// What the rack runs (`flatcar`).
    pub provision: String,
    /// Every requested node was installed again.
    pub ok: bool,
    /// `provisioned` or `failed`.
    pub outcome: &'static str,
    /// The nodes asked for, in the order given (primary MACs).
    pub requested: Vec<MacAddr>,
    /// The nodes whose failure ended it.
    pub failed_nodes: Vec<MacAddr>,
    /// The cluster directory.
    pub cluster_dir: PathBuf,
    /// The attempt's log file.
    pub log: PathBuf,
    /// Milliseconds it took.
    pub elapsed_ms: u128,
    /// The requested nodes.
    pub nodes: Vec<SummaryNode>,
}

impl ReprovisionView {
    /// The view of `report` for the `requested` nodes, which took `elapsed`.
    pub fn new(report: &Report, requested: &[MacAddr], elapsed: Duration) -> Self {
        let s = report.summary();
        Self {
            provision: s.provision,
            ok: s.ok,
            outcome: s.outcome,
            requested: requested.to_vec(),
            failed_nodes: s.failed_nodes,
            cluster_dir: s.cluster_dir,
            log: s.log,
            elapsed_ms: elapsed.as_millis(),
            nodes: s
                .nodes
                .into_iter()
                .filter(|n| requested.contains(&n.mac))
                .collect(),
        }
    }

    /// The line below the table: `✓ 2 node(s) reprovisioned in ...` or
    /// `× reprovision failed after ... (log: ...)`.
    pub fn closing_line(&self) -> String {
        let took = tenths(self.elapsed_ms);
        if self.ok {
            format!("✓ {} node(s) reprovisioned in {took}", self.requested.len())
        } else {
            format!(
                "× reprovision failed after {took} (log: {})",
                self.log.display()
            )
        }
    }
}

/// `ms` to tenths of a second, as people read it (`1s 200ms`).
fn tenths(ms: u128) -> humantime::FormattedDuration {
    let tenths = u64::try_from(ms / 100).unwrap_or(u64::MAX);
    humantime::format_duration(Duration::from_millis(tenths.saturating_mul(100)))
}

/// The header of [`summary_rows`]; `wide` adds the BMC MAC and stage.
pub fn summary_header(wide: bool) -> Vec<&'static str> {
    let mut header = vec!["NODE", "MAC", "STATE", "ATTEMPTS"];
    if wide {
        header.extend(["BMC MAC", "STAGE"]);
    }
    header.push("REASON");
    header
}

/// The per-node table of a bootstrap's (or reprovision's) summary.
pub fn summary_rows(nodes: &[SummaryNode], wide: bool) -> Vec<Vec<String>> {
    nodes
        .iter()
        .map(|n| {
            let mut row = vec![
                n.node.clone(),
                n.mac.to_string(),
                n.state.to_owned(),
                n.attempts.to_string(),
            ];
            if wide {
                row.extend([n.bmc_mac.to_string(), n.stage.to_owned()]);
            }
            row.push(n.reason.clone().unwrap_or_else(|| "-".into()));
            row
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::Outcome;
    use crate::state::{BootstrapState, NodeEvent};

    fn report() -> (Report, [MacAddr; 2]) {
        let macs = [
            MacAddr::new([2, 0, 0, 0, 0, 1]),
            MacAddr::new([2, 0, 0, 0, 0, 2]),
        ];
        let mut state = BootstrapState::new("flatcar", Path::new("/c"));
        for (i, mac) in macs.iter().enumerate() {
            state.ensure_node(*mac, MacAddr::new([2, 0, 0, 1, 0, i as u8]), "", 5);
        }
        state
            .apply(macs[1], &NodeEvent::Failed("no lease".into()), 7)
            .unwrap();
        let report = Report {
            outcome: Outcome::Failed {
                nodes: vec![macs[1]],
            },
            state,
            log: PathBuf::from("/c/logs/1-bootstrap.log"),
        };
        (report, macs)
    }

    #[test]
    fn bootstrap_view_flattens_the_summary() {
        let (report, _) = report();
        let view = BootstrapView::new(&report, Duration::from_millis(1_234));
        let text = serde_json::to_string(&view).unwrap();
        assert!(
            text.starts_with("{\"provision\":\"flatcar\",\"ok\":false,"),
            "{text}"
        );
        assert!(text.ends_with(",\"elapsed_ms\":1234}"), "{text}");
        assert_eq!(
            view.closing_line(),
            "× flatcar bootstrap failed after 1s 200ms (log: /c/logs/1-bootstrap.log)"
        );
        let rows = summary_rows(&view.summary.nodes, true);
        assert_eq!(rows[1].len(), summary_header(true).len());
        assert_eq!(rows[1][2..4], ["failed", "0"]);
        assert_eq!(rows[1][6], "no lease");
    }

    #[test]
    fn reprovision_view_keeps_the_requested_nodes() {
        let (report, macs) = report();
        let view = ReprovisionView::new(&report, &[macs[1]], Duration::from_millis(99));
        assert_eq!(view.nodes.len(), 1);
        assert_eq!(view.nodes[0].mac, macs[1]);
        assert_eq!(
            view.closing_line(),
            "× reprovision failed after 0s (log: /c/logs/1-bootstrap.log)"
        );
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["requested"][0], macs[1].to_string());
    }

    proptest::proptest! {
        /// Any nodes, names and failures: one row per node as wide as the
        /// header, the requested nodes kept in a reprovision, and a
        /// closing line marked by the outcome.
        #[test]
        fn views_of_any_bootstrap(
            nodes in proptest::collection::btree_map(
                0u8..=255,
                ("[a-z0-9.-]{0,8}", proptest::option::of("[a-z ]{1,12}")),
                0..30,
            ),
            ms in 0u128..10_000_000,
        ) {
            let mut state = BootstrapState::new("flatcar", Path::new("/c"));
            let mut failed = Vec::new();
            for (i, (name, failure)) in &nodes {
                let mac = MacAddr::new([2, 0, 0, 0, 0, *i]);
                state.ensure_node(mac, MacAddr::new([2, 0, 0, 1, 0, *i]), name, 1);
                if let Some(reason) = failure {
                    state.apply(mac, &NodeEvent::Failed(reason.clone()), 2).unwrap();
                    failed.push(mac);
                }
            }
            let outcome = if failed.is_empty() {
                Outcome::Provisioned
            } else {
                Outcome::Failed { nodes: failed.clone() }
            };
            let report = Report { outcome, state, log: PathBuf::from("/c/l.log") };
            let view = BootstrapView::new(&report, Duration::from_millis(ms as u64));
            for wide in [false, true] {
                let rows = summary_rows(&view.summary.nodes, wide);
                proptest::prop_assert_eq!(rows.len(), nodes.len());
                proptest::prop_assert!(rows.iter().all(|r| r.len() == summary_header(wide).len()));
            }
            let mark = if failed.is_empty() { "✓ " } else { "× " };
            proptest::prop_assert!(view.closing_line().starts_with(mark));
            let reprovision = ReprovisionView::new(&report, &failed, Duration::ZERO);
            proptest::prop_assert_eq!(reprovision.nodes.len(), failed.len());
            proptest::prop_assert!(serde_json::to_string(&reprovision).is_ok());
        }
    }
}
