//! The end of a bootstrap as data: [`Report::summary`] gives what
//! `racker bootstrap -o json` prints (docs/output.md, kind `bootstrap`).

use std::path::PathBuf;

use racker_inventory::MacAddr;
use serde::Serialize;

use crate::run::{Outcome, Report};

/// A finished bootstrap in the output contract's vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Summary {
    /// What was provisioned (`flatcar`, `lokomotive`).
    pub provision: String,
    /// Every stage succeeded (excluded nodes aside).
    pub ok: bool,
    /// `provisioned` or `failed`.
    pub outcome: &'static str,
    /// The nodes whose failure ended the bootstrap (primary MACs).
    pub failed_nodes: Vec<MacAddr>,
    /// The rendered cluster directory.
    pub cluster_dir: PathBuf,
    /// The last attempt's log file.
    pub log: PathBuf,
    /// Every node, by primary MAC.
    pub nodes: Vec<SummaryNode>,
}

/// One node at the end of a bootstrap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SummaryNode {
    /// Its host name, else its primary MAC.
    pub node: String,
    /// Primary MAC.
    pub mac: MacAddr,
    /// BMC MAC.
    pub bmc_mac: MacAddr,
    /// Host name (none for plain Flatcar without names).
    pub hostname: Option<String>,
    /// The state as a fixed word ([`crate::NodeState::name`]).
    pub state: &'static str,
    /// The last stage reached.
    pub stage: &'static str,
    /// Why it is in its state (a failure's reason).
    pub reason: Option<String>,
    /// Installation attempts started.
    pub attempts: u32,
    /// Last transition (RFC 3339, UTC).
    pub updated_at: String,
}

impl Report {
    /// The report as data (see [`Summary`]).
    pub fn summary(&self) -> Summary {
        let failed_nodes = match &self.outcome {
            Outcome::Failed { nodes } => nodes.clone(),
            Outcome::Provisioned => Vec::new(),
        };
        Summary {
            provision: self.state.provision.clone(),
            ok: self.succeeded(),
            outcome: if self.succeeded() {
                "provisioned"
            } else {
                "failed"
            },
            failed_nodes,
            cluster_dir: self.state.cluster_dir.clone(),
            log: self.log.clone(),
            nodes: self
                .state
                .nodes
                .iter()
                .map(|(mac, r)| {
                    let hostname = Some(r.hostname.clone()).filter(|h| !h.is_empty());
                    SummaryNode {
                        node: hostname.clone().unwrap_or_else(|| mac.to_string()),
                        mac: *mac,
                        bmc_mac: r.bmc_mac,
                        hostname,
                        state: r.state.name(),
                        stage: r.state.stage().as_str(),
                        reason: r.state.reason().map(str::to_owned),
                        attempts: r.attempts,
                        updated_at: humantime::format_rfc3339_seconds(
                            std::time::UNIX_EPOCH + std::time::Duration::from_secs(r.updated_unix),
                        )
                        .to_string(),
                    }
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::state::{BootstrapState, NodeEvent, Stage};

    #[test]
    fn a_failed_node_has_its_reason_apart() {
        let (a, b) = (
            MacAddr::new([2, 0, 0, 0, 0, 1]),
            MacAddr::new([2, 0, 0, 0, 0, 2]),
        );
        let mut state = BootstrapState::new("flatcar", Path::new("/c"));
        state.ensure_node(a, MacAddr::new([2, 0, 0, 1, 0, 1]), "node-0", 5);
        state.ensure_node(b, MacAddr::new([2, 0, 0, 1, 0, 2]), "", 5);
        state
            .apply(a, &NodeEvent::Reached(Stage::Installed), 6)
            .unwrap();
        state
            .apply(b, &NodeEvent::Failed("no lease".into()), 7)
            .unwrap();
        let report = Report {
            outcome: Outcome::Failed { nodes: vec![b] },
            state,
            log: PathBuf::from("/c/logs/1-bootstrap.log"),
        };
        let s = report.summary();
        assert!(!s.ok);
        assert_eq!(s.outcome, "failed");
        assert_eq!(s.failed_nodes, [b]);
        assert_eq!(
            (
                s.nodes[0].node.as_str(),
                s.nodes[0].state,
                s.nodes[0].reason.as_deref()
            ),
            ("node-0", "installed", None)
        );
        assert_eq!(
            (
                s.nodes[1].node.clone(),
                s.nodes[1].state,
                s.nodes[1].stage,
                s.nodes[1].reason.as_deref()
            ),
            (b.to_string(), "failed", "planned", Some("no lease"))
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["nodes"][1]["mac"], b.to_string());
        assert_eq!(json["nodes"][1]["hostname"], serde_json::Value::Null);
        assert_eq!(json["nodes"][1]["updated_at"], "1970-01-01T00:00:07Z");
    }
}
