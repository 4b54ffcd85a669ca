//! What was provisioned and the state of every node: the bootstrap's
//! state file, the installers' reports, every BMC (over IPMI) and, for
//! Lokomotive, the Kubernetes API (docs/bootstrap.md, "racker status").

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use futures::StreamExt as _;
use racker_inventory::MacAddr;
use racker_ipmi::{Operation, Output, SessionOptions};
use serde::Serialize;

use crate::bmc::BmcResolver;
use crate::state::{NodeState, Stage, StateFile};
use crate::{Error, Rack};

/// How [`collect_status`] asks.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StatusOptions {
    /// Add every node's diagnostics (device, chassis status, boot flags).
    pub full: bool,
    /// IPMI UDP port of the BMCs (default: 623).
    pub ipmi_port: u16,
    /// IPMI: time per exchange (default: 3 s).
    pub ipmi_timeout: Duration,
    /// BMCs queried in parallel (default: 64).
    pub concurrency: usize,
    /// Lokomotive without a kubeconfig yet: try the API port (6443) of
    /// every node (default: yes).
    pub probe_api_port: bool,
    /// The live "OS up" probe: TCP port tried on an installed node whose
    /// last `up` report is older than its last boot, or missing (none: no
    /// probe) (default: 22, SSH).
    pub probe_port: Option<u16>,
    /// How long the probe waits for every node at once (default: 1 s).
    pub probe_timeout: Duration,
}

impl Default for StatusOptions {
    fn default() -> Self {
        Self {
            full: false,
            ipmi_port: racker_ipmi::DEFAULT_PORT,
            ipmi_timeout: Duration::from_secs(3),
            concurrency: 64,
            probe_api_port: true,
            probe_port: Some(22),
            probe_timeout: Duration::from_secs(1),
        }
    }
}

/// The rack's status (its JSON form is `racker status --output json`).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct StatusReport {
    /// What the last bootstrap provisioned (`nothing` before any).
    pub provisioned: String,
    /// Lokomotive: whether the Kubernetes API answers.
    pub kubernetes_api: Option<bool>,
    /// Every planned node.
    pub nodes: Vec<NodeStatus>,
}

/// One node's status. Its JSON form follows the output contract of
/// docs/output.md (`mac`, `bmc_ip`, `power` as `on`/`off`/`unknown`,
/// `state` a fixed word with a separate `reason`).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct NodeStatus {
    /// The node's name: its host name when it has one, else its primary MAC.
    pub node: String,
    /// Primary MAC.
    #[serde(rename = "mac")]
    pub primary_mac: MacAddr,
    /// BMC MAC.
    pub bmc_mac: MacAddr,
    /// Internal address.
    pub ip: String,
    /// Where its BMC was asked (`HOST:PORT`; `bmc_ip` and `bmc_port` in JSON).
    #[serde(skip)]
    pub bmc_address: String,
    /// The BMC's address (empty when it was not asked).
    pub bmc_ip: String,
    /// The BMC's UDP port (none when it was not asked).
    pub bmc_port: Option<u16>,
    /// Host name, once a bootstrap named it.
    pub hostname: Option<String>,
    /// The BMC answered.
    #[serde(rename = "bmc_reachable")]
    pub bmc_reached: bool,
    /// Why it did not.
    pub bmc_error: Option<String>,
    /// `on` / `off`, when the BMC answered (`unknown` in JSON otherwise).
    #[serde(serialize_with = "power_or_unknown")]
    pub power: Option<String>,
    /// The bootstrap state as a fixed word ([`NodeState::name`]; `planned`
    /// before any bootstrap).
    pub state: String,
    /// The last stage reached.
    pub stage: String,
    /// Why the node is in its state (a failure's reason).
    pub reason: Option<String>,
    /// The OS is installed.
    #[serde(rename = "os_installed")]
    pub os_provisioned: bool,
    /// The installed OS is up and its power is not off: it reported up
    /// (racker-report-up.service) in the current bootstrap generation since
    /// its last boot, or it answered the live probe now ([`UpSource`]).
    pub os_up: bool,
    /// What says the OS is up (none when it is not).
    pub up_source: Option<UpSource>,
    /// A Ready Kubernetes node.
    pub joined: bool,
    /// Diagnostics (with [`StatusOptions::full`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diag: Option<serde_json::Value>,
    /// The netboot server's last event of the node (its trail,
    /// `<state-dir>/netboot/events`), e.g. `14:02:13 kernel 404 (... missing)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_event: Option<String>,
}

/// What says a node's OS is up (`up_source` in `racker status -o json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum UpSource {
    /// Its `up` report of the current generation, sent after its last
    /// boot that the netboot server saw.
    Report,
    /// It accepted a TCP connection on the probe port just now.
    Probe,
    /// The Kubernetes API lists it as a Ready node (Lokomotive).
    Kubernetes,
}

/// How a node's "OS up" is decided (sans-IO: the caller probes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UpEvidence {
    /// Up by its report.
    Report,
    /// Possibly up: ask the node (probe).
    Probe,
    /// Not up (powered off, or nothing installed).
    NotUp,
}

/// `powered_off`: the BMC says off. `report_up_ms`: when the node last
/// reported `up` in the current generation (none: never). `last_boot_ms`:
/// the last sign of a boot the netboot server saw (a DHCP transaction).
/// `installed`: a report or the recorded stage says the OS is on the disk.
fn up_evidence(
    powered_off: bool,
    report_up_ms: Option<u64>,
    last_boot_ms: Option<u64>,
    installed: bool,
) -> UpEvidence {
    if powered_off {
        return UpEvidence::NotUp;
    }
    match report_up_ms {
        Some(up) if last_boot_ms.is_none_or(|boot| boot <= up) => UpEvidence::Report,
        // Booted again since (or no report): only a live answer counts.
        Some(_) => UpEvidence::Probe,
        None if installed => UpEvidence::Probe,
        None => UpEvidence::NotUp,
    }
}

/// When `mac` last reported `up` (current generation): the later of the
/// report file's time and the trail's last accepted `up` report (a
/// repeated `up` leaves the file as it was).
fn report_up_ms(
    report: Option<&racker_netboot::report::Report>,
    trail: &[racker_netboot::trail::TrailEvent],
) -> Option<u64> {
    let report = report.filter(|r| r.stage == racker_netboot::report::Stage::Up)?;
    let on_trail = trail
        .iter()
        .filter(|e| {
            e.kind == racker_netboot::trail::TrailKind::Report
                && e.what.starts_with("up ")
                && e.status == Some(200)
        })
        .map(|e| e.unix_ms)
        .max();
    Some(
        report
            .updated_unix
            .saturating_mul(1000)
            .max(on_trail.unwrap_or(0)),
    )
}

/// The last DHCPDISCOVER on the trail: the node (re)booted then (a
/// running OS renewing its lease sends REQUESTs only).
fn last_boot_ms(trail: &[racker_netboot::trail::TrailEvent]) -> Option<u64> {
    trail
        .iter()
        .filter(|e| {
            e.kind == racker_netboot::trail::TrailKind::Dhcp && e.what.starts_with("DHCPDISCOVER")
        })
        .map(|e| e.unix_ms)
        .max()
}

/// Which of `targets` accept a TCP connection within `timeout` (every one
/// tried at once: a rack of silent nodes costs `timeout`, not one per node).
pub(crate) async fn probe_tcp(
    targets: Vec<(MacAddr, std::net::SocketAddr)>,
    timeout: Duration,
) -> std::collections::BTreeSet<MacAddr> {
    use futures::stream::FuturesUnordered;
    let mut attempts: FuturesUnordered<_> = targets
        .into_iter()
        .map(|(mac, addr)| async move {
            tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr))
                .await
                .is_ok_and(|r| r.is_ok())
                .then_some(mac)
        })
        .collect();
    let mut up = std::collections::BTreeSet::new();
    while let Some(r) = attempts.next().await {
        up.extend(r);
    }
    up
}

/// Gather the status of every node of `rack` with the state of
/// `state_dir`, asking BMCs where `bmcs` says.
pub async fn collect_status(
    rack: &Rack,
    credentials: &racker_ipmi::Credentials,
    state_dir: &Path,
    bmcs: &BmcResolver,
    options: &StatusOptions,
) -> Result<StatusReport, Error> {
    let state = StateFile::load(state_dir)?;
    let reports = racker_netboot::report::ReportStore::open(state_dir).ok();
    let opts = SessionOptions::default().timeout(options.ipmi_timeout);
    let op = if options.full {
        Operation::Diag
    } else {
        Operation::ChassisStatus
    };
    let targets: Vec<(MacAddr, racker_ipmi::BmcAddress)> = rack
        .plan
        .nodes()
        .iter()
        .map(|p| {
            (
                p.node.primary_mac,
                bmcs.resolve(p, options.ipmi_port).address,
            )
        })
        .collect();
    let mut results: BTreeMap<MacAddr, (Option<racker_ipmi::BmcAddress>, Result<Output, String>)> =
        BTreeMap::new();
    let mut stream =
        racker_ipmi::fan_out_operation(targets, credentials, &opts, &op, options.concurrency);
    while let Some(r) = stream.next().await {
        results.insert(r.key, (Some(r.bmc), r.result.map_err(|e| e.to_string())));
    }
    drop(stream);

    let mut nodes = Vec::new();
    let mut to_probe = Vec::new();
    for p in rack.plan.nodes() {
        let mac = p.node.primary_mac;
        let record = state.as_ref().and_then(|s| s.nodes.get(&mac));
        let reported = reports.as_ref().is_some_and(|r| r.is_installed(mac));
        let trail = racker_netboot::trail::load(state_dir, mac);
        let current = reports.as_ref().and_then(|r| r.current(mac));
        let (bmc, result) = results
            .remove(&mac)
            .unwrap_or_else(|| (None, Err("not queried".to_owned())));
        let (power, diag) = match &result {
            Ok(Output::ChassisStatus(c)) => (Some(on_off(c.power_on)), None),
            Ok(Output::Diag(d)) => (
                Some(on_off(d.chassis.power_on)),
                serde_json::to_value(d).ok(),
            ),
            _ => (None, None),
        };
        let stage = record.map(|r| r.state.stage());
        let hostname = record.map(|r| r.hostname.clone()).filter(|h| !h.is_empty());
        let powered_off = power.as_deref() == Some("off");
        let os_provisioned = reported
            || (stage >= Some(Stage::Installed)
                && matches!(record.map(|r| &r.state), Some(NodeState::Active { .. })));
        // Never "up" from an old file: a report sent since the node's last
        // boot, else a live answer (below); never next to power off.
        let evidence = up_evidence(
            powered_off,
            report_up_ms(current.as_ref(), &trail),
            last_boot_ms(&trail),
            os_provisioned,
        );
        if evidence == UpEvidence::Probe
            && let Some(port) = options.probe_port
        {
            to_probe.push((mac, std::net::SocketAddr::from((p.ip, port))));
        }
        nodes.push(NodeStatus {
            node: hostname.clone().unwrap_or_else(|| mac.to_string()),
            primary_mac: mac,
            bmc_mac: p.node.bmc_mac,
            ip: p.ip.to_string(),
            bmc_address: bmc.as_ref().map(ToString::to_string).unwrap_or_default(),
            bmc_ip: bmc
                .as_ref()
                .map(|b| b.host().to_owned())
                .unwrap_or_default(),
            bmc_port: bmc.as_ref().map(racker_ipmi::BmcAddress::port),
            hostname,
            bmc_reached: result.is_ok(),
            bmc_error: result.as_ref().err().cloned(),
            power,
            state: record.map_or("planned", |r| r.state.name()).to_owned(),
            stage: stage.unwrap_or(Stage::Planned).as_str().to_owned(),
            reason: record.and_then(|r| r.state.reason()).map(str::to_owned),
            os_provisioned,
            os_up: evidence == UpEvidence::Report,
            up_source: (evidence == UpEvidence::Report).then_some(UpSource::Report),
            joined: stage == Some(Stage::Joined),
            diag,
            last_event: trail
                .last()
                .map(|e| format!("{} {}", racker_netboot::trail::clock(e.unix_ms), e.label())),
        });
    }
    if !to_probe.is_empty() {
        let answered = probe_tcp(to_probe, options.probe_timeout).await;
        for n in &mut nodes {
            if answered.contains(&n.primary_mac) {
                n.os_up = true;
                n.up_source = Some(UpSource::Probe);
            }
        }
    }
    let provisioned = state
        .as_ref()
        .map_or_else(|| "nothing".to_owned(), |s| s.provision.clone());
    let kubeconfig = state.as_ref().and_then(|s| s.kubeconfig.clone());
    let kubernetes_api = match (provisioned.as_str(), &kubeconfig) {
        // Ask the API itself with the cluster's kubeconfig: reachable, and
        // which nodes are Ready members.
        ("lokomotive", Some(path)) if path.exists() => match kube_nodes(path).await {
            Ok(seen) => {
                for n in &mut nodes {
                    let host = n.hostname.clone().unwrap_or_default();
                    let ip = n.ip.parse().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
                    n.joined = seen.iter().any(|k| k.ready && k.is(&host, ip));
                    // A Ready member runs its OS (unless its BMC says off).
                    if n.joined && !n.os_up && n.power.as_deref() != Some("off") {
                        n.os_up = true;
                        n.up_source = Some(UpSource::Kubernetes);
                    }
                }
                Some(true)
            }
            Err(e) => {
                tracing::debug!("Kubernetes API: {e}");
                Some(false)
            }
        },
        // No kubeconfig (yet): is anything listening on the API port?
        ("lokomotive", _) if options.probe_api_port => Some(kube_api_answers(rack).await),
        _ => None,
    };
    Ok(StatusReport {
        provisioned,
        kubernetes_api,
        nodes,
    })
}

/// The API's node list, with the kubeconfig at `path`.
async fn kube_nodes(path: &Path) -> Result<Vec<crate::kube::KubeNode>, crate::kube::KubeError> {
    crate::kube::Client::from_file(path, Duration::from_secs(3))?
        .nodes()
        .await
}

fn power_or_unknown<S: serde::Serializer>(power: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(power.as_deref().unwrap_or("unknown"))
}

fn on_off(on: bool) -> String {
    if on { "on" } else { "off" }.to_owned()
}

/// True when any node accepts TCP connections on the API port (6443).
/// Every node is tried at once under one 2-second deadline, so a rack of
/// unreachable nodes costs 2 s, not 2 s per node.
async fn kube_api_answers(rack: &Rack) -> bool {
    use futures::stream::FuturesUnordered;
    let mut attempts: FuturesUnordered<_> = rack
        .plan
        .nodes()
        .iter()
        .map(|p| tokio::net::TcpStream::connect(std::net::SocketAddr::from((p.ip, 6443))))
        .collect();
    let any = async {
        while let Some(r) = attempts.next().await {
            if r.is_ok() {
                return true;
            }
        }
        false
    };
    tokio::time::timeout(Duration::from_secs(2), any)
        .await
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use racker_netboot::trail::{TrailEvent, TrailKind};

    fn event(kind: TrailKind, what: &str, status: Option<u16>, unix_ms: u64) -> TrailEvent {
        TrailEvent {
            unix_ms,
            kind,
            what: what.to_owned(),
            status,
        }
    }

    #[test]
    fn up_only_from_a_report_since_the_last_boot_else_a_probe() {
        use UpEvidence::*;
        // (powered_off, report_up_ms, last_boot_ms, installed) -> evidence
        let cases = [
            ((false, Some(2_000), Some(1_000), true), Report),
            ((false, Some(2_000), None, true), Report),
            ((false, Some(2_000), Some(2_000), true), Report),
            // Booted again since its report: ask it.
            ((false, Some(2_000), Some(3_000), true), Probe),
            // Installed (recorded stage) but no report: ask it.
            ((false, None, None, true), Probe),
            ((false, None, Some(3_000), false), NotUp),
            // Never up next to power off, whatever the files say.
            ((true, Some(2_000), None, true), NotUp),
            ((true, None, None, true), NotUp),
        ];
        for ((off, up, boot, installed), want) in cases {
            assert_eq!(
                up_evidence(off, up, boot, installed),
                want,
                "{off} {up:?} {boot:?} {installed}"
            );
        }
    }

    #[test]
    fn report_time_and_boot_time_come_from_the_report_and_the_trail() {
        let dir = tempfile::tempdir().unwrap();
        let store = racker_netboot::report::ReportStore::open(dir.path()).unwrap();
        let mac = MacAddr::new([2, 0, 0, 0, 0, 1]);
        let t = std::time::UNIX_EPOCH + Duration::from_secs(100);
        store
            .record(mac, racker_netboot::report::Stage::Installed, None, t)
            .unwrap();
        let trail = vec![
            event(
                TrailKind::Dhcp,
                "DHCPDISCOVER -> DHCPOFFER 172.24.213.2",
                None,
                90_000,
            ),
            event(TrailKind::Report, "up (200)", Some(200), 150_000),
            event(TrailKind::Report, "up (403) — refused", Some(403), 170_000),
            event(
                TrailKind::Dhcp,
                "DHCPREQUEST -> DHCPACK 172.24.213.2",
                None,
                180_000,
            ),
        ];
        // Not up yet: no report time.
        assert_eq!(report_up_ms(store.get(mac).as_ref(), &trail), None);
        store
            .record(mac, racker_netboot::report::Stage::Up, None, t)
            .unwrap();
        // The later accepted `up` on the trail (a repeat leaves the file).
        assert_eq!(report_up_ms(store.get(mac).as_ref(), &trail), Some(150_000));
        // A renewal (REQUEST) is no boot; a DISCOVER is.
        assert_eq!(last_boot_ms(&trail), Some(90_000));
        let mut rebooted = trail.clone();
        rebooted.push(event(
            TrailKind::Dhcp,
            "DHCPDISCOVER -> DHCPOFFER 172.24.213.2",
            None,
            200_000,
        ));
        assert_eq!(last_boot_ms(&rebooted), Some(200_000));
    }

    #[tokio::test]
    async fn the_probe_finds_listening_nodes_within_its_timeout() {
        let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let (a, b) = (
            MacAddr::new([2, 0, 0, 0, 0, 1]),
            MacAddr::new([2, 0, 0, 0, 0, 2]),
        );
        // A TEST-NET address nobody answers: it costs the timeout, once.
        let c = MacAddr::new([2, 0, 0, 0, 0, 3]);
        let silent = std::net::SocketAddr::from(([192, 0, 2, 1], 22));
        let started = std::time::Instant::now();
        let up = probe_tcp(
            vec![(a, open.local_addr().unwrap()), (b, closed), (c, silent)],
            Duration::from_millis(300),
        )
        .await;
        assert_eq!(up.into_iter().collect::<Vec<_>>(), [a]);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}
