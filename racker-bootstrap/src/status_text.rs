//! [`StatusReport`] as a table for people (`racker status`, `-o text` and
//! `-o wide`): the header, one row per node and the notes below it, as
//! plain text (the caller lays out and colours the table, and colours the
//! state words and the leading `×` of a note).

use crate::status::{StatusReport, UpSource};

impl StatusReport {
    /// The table's header; `wide` adds the BMC address, stage and reason.
    pub fn table_header(wide: bool) -> Vec<&'static str> {
        let mut header = vec!["PRIMARY MAC", "IP", "HOSTNAME", "BMC"];
        if wide {
            header.push("BMC ADDRESS");
        }
        header.extend(["POWER", "OS", "JOINED", "STATE"]);
        if wide {
            header.extend(["STAGE", "REASON"]);
        }
        header
    }

    /// The table's rows, columns as [`StatusReport::table_header`]: `BMC`
    /// is `reached` or `unreachable`, `OS` `up` (with `-o wide` what says
    /// so, e.g. `up (report)`), `installed` or `-`, `JOINED` `yes`/`no`
    /// for Lokomotive, `-` for nothing known.
    pub fn table_rows(&self, wide: bool) -> Vec<Vec<String>> {
        let dash = |s: Option<&String>| s.cloned().unwrap_or_else(|| "-".into());
        self.nodes
            .iter()
            .map(|n| {
                let mut row = vec![
                    n.primary_mac.to_string(),
                    n.ip.clone(),
                    dash(n.hostname.as_ref()),
                    if n.bmc_reached {
                        "reached"
                    } else {
                        "unreachable"
                    }
                    .to_owned(),
                ];
                if wide {
                    row.push(dash(Some(&n.bmc_address).filter(|a| !a.is_empty())));
                }
                row.extend([
                    n.power.clone().unwrap_or_else(|| "unknown".into()),
                    match (n.os_up, n.os_provisioned, n.up_source) {
                        (true, _, Some(source)) if wide => format!("up ({})", source.word()),
                        (true, ..) => "up".into(),
                        (false, true, _) => "installed".into(),
                        (false, false, _) => "-".into(),
                    },
                    match (self.provisioned.as_str(), n.joined) {
                        ("lokomotive", true) => "yes".into(),
                        ("lokomotive", false) => "no".into(),
                        _ => "-".into(),
                    },
                    n.state.clone(),
                ]);
                if wide {
                    row.push(n.stage.clone());
                    row.push(dash(n.reason.as_ref()));
                }
                row
            })
            .collect()
    }

    /// The lines below the table: failures (without `-o wide`, whose
    /// columns have them) and BMC errors marked `  × `, and with `full`
    /// every node's last netboot event and diagnostics.
    pub fn notes(&self, full: bool, wide: bool) -> Vec<String> {
        let mut out = Vec::new();
        for n in &self.nodes {
            if !wide && let Some(reason) = &n.reason {
                out.push(format!(
                    "  × {} {} after {}: {reason}",
                    n.primary_mac, n.state, n.stage
                ));
            }
            if let Some(e) = &n.bmc_error {
                out.push(format!(
                    "  × {} BMC {} ({}): {e}",
                    n.primary_mac, n.bmc_mac, n.bmc_address
                ));
            }
            if full && let Some(e) = &n.last_event {
                out.push(format!("  {} last netboot event: {e}", n.primary_mac));
            }
            if full && let Some(d) = &n.diag {
                out.push(format!("  {} diag: {d}", n.primary_mac));
            }
        }
        out
    }
}

impl UpSource {
    /// Its JSON word (`report`, `probe`, `kubernetes`).
    pub fn word(self) -> &'static str {
        match self {
            Self::Report => "report",
            Self::Probe => "probe",
            Self::Kubernetes => "kubernetes",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_source_words_are_the_json_ones() {
        for s in [UpSource::Report, UpSource::Probe, UpSource::Kubernetes] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.word());
        }
    }

    fn node(reason: Option<&str>, up: Option<UpSource>) -> crate::NodeStatus {
        crate::NodeStatus {
            node: "node-0".into(),
            primary_mac: "02:00:00:00:00:01".parse().unwrap(),
            bmc_mac: "02:00:00:01:00:01".parse().unwrap(),
            ip: "10.0.0.2".into(),
            bmc_address: String::new(),
            bmc_ip: String::new(),
            bmc_port: None,
            hostname: None,
            bmc_reached: false,
            bmc_error: Some("timed out".into()),
            power: None,
            state: if reason.is_some() { "failed" } else { "os-up" }.into(),
            stage: "installed".into(),
            reason: reason.map(str::to_owned),
            os_provisioned: true,
            os_up: up.is_some(),
            up_source: up,
            joined: false,
            diag: None,
            last_event: Some("14:02:13 kernel".into()),
        }
    }

    #[test]
    fn rows_and_notes() {
        let report = StatusReport {
            provisioned: "lokomotive".into(),
            kubernetes_api: Some(false),
            nodes: vec![
                node(Some("no lease"), None),
                node(None, Some(UpSource::Probe)),
            ],
        };
        let rows = report.table_rows(false);
        assert_eq!(
            rows[0],
            [
                "02:00:00:00:00:01",
                "10.0.0.2",
                "-",
                "unreachable",
                "unknown",
                "installed",
                "no",
                "failed"
            ]
        );
        assert_eq!(rows[1][5], "up");
        let wide = report.table_rows(true);
        assert_eq!(wide[1][6], "up (probe)");
        assert_eq!(
            (wide[0][4].as_str(), wide[0][10].as_str()),
            ("-", "no lease")
        );
        assert_eq!(
            report.notes(false, false),
            [
                "  × 02:00:00:00:00:01 failed after installed: no lease",
                "  × 02:00:00:00:00:01 BMC 02:00:00:01:00:01 (): timed out",
                "  × 02:00:00:00:00:01 BMC 02:00:00:01:00:01 (): timed out",
            ]
        );
        assert_eq!(report.notes(true, true).len(), 4);
    }

    #[test]
    fn an_empty_report_has_a_header_only() {
        let report = StatusReport {
            provisioned: "nothing".into(),
            kubernetes_api: None,
            nodes: Vec::new(),
        };
        assert!(report.table_rows(true).is_empty());
        assert!(report.notes(true, false).is_empty());
        assert_eq!(StatusReport::table_header(false).len(), 8);
        assert_eq!(StatusReport::table_header(true).len(), 11);
    }

    proptest::proptest! {
        /// Any nodes: rows as wide as the header, and one note per failure
        /// (without `-o wide`) and per BMC error.
        #[test]
        fn rows_and_notes_of_any_report(
            nodes in proptest::collection::vec(
                (
                    proptest::option::of("[a-z ]{1,10}"),
                    proptest::option::of("[a-z ]{1,10}"),
                    proptest::option::of(0u8..3),
                    proptest::bool::ANY,
                ),
                0..20,
            ),
            lokomotive in proptest::bool::ANY,
        ) {
            let sources = [UpSource::Report, UpSource::Probe, UpSource::Kubernetes];
            let report = StatusReport {
                provisioned: if lokomotive { "lokomotive" } else { "flatcar" }.into(),
                kubernetes_api: None,
                nodes: nodes
                    .iter()
                    .map(|(reason, bmc_error, up, joined)| {
                        let mut n = node(reason.as_deref(), up.map(|u| sources[usize::from(u)]));
                        n.bmc_error.clone_from(bmc_error);
                        n.joined = *joined;
                        n
                    })
                    .collect(),
            };
            for wide in [false, true] {
                let rows = report.table_rows(wide);
                proptest::prop_assert_eq!(rows.len(), nodes.len());
                let width = StatusReport::table_header(wide).len();
                proptest::prop_assert!(rows.iter().all(|r| r.len() == width));
                let failures = if wide { 0 } else { nodes.iter().filter(|n| n.0.is_some()).count() };
                let errors = nodes.iter().filter(|n| n.1.is_some()).count();
                proptest::prop_assert_eq!(report.notes(false, wide).len(), failures + errors);
            }
        }
    }
}
