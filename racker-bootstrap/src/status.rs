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
    /// IPMI UDP port of the BMCs [default: 623].
    pub ipmi_port: u16,
    /// IPMI: time per exchange [default: 3 s].
    pub ipmi_timeout: Duration,
    /// BMCs queried in parallel [default: 64].
    pub concurrency: usize,
    /// Lokomotive without a kubeconfig yet: try the API port (6443) of
    /// every node [default: yes].
    pub probe_api_port: bool,
}

impl Default for StatusOptions {
    fn default() -> Self {
        Self {
            full: false,
            ipmi_port: racker_ipmi::DEFAULT_PORT,
            ipmi_timeout: Duration::from_secs(3),
            concurrency: 64,
            probe_api_port: true,
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
    /// The installed OS reported up (racker-report-up.service) in the
    /// current bootstrap generation, and its power is not off.
    pub os_up: bool,
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
    for p in rack.plan.nodes() {
        let mac = p.node.primary_mac;
        let record = state.as_ref().and_then(|s| s.nodes.get(&mac));
        let reported = reports.as_ref().is_some_and(|r| r.is_installed(mac));
        let reported_up = reports.as_ref().is_some_and(|r| r.is_up(mac));
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
            os_provisioned: reported
                || (stage >= Some(Stage::Installed)
                    && matches!(record.map(|r| &r.state), Some(NodeState::Active { .. }))),
            // Never "up" next to power off: a report or a recorded stage
            // only counts while the node is not known to be off.
            os_up: (reported_up || stage >= Some(Stage::OsUp)) && !powered_off,
            joined: stage == Some(Stage::Joined),
            diag,
            last_event: racker_netboot::trail::load(state_dir, mac)
                .last()
                .map(|e| format!("{} {}", racker_netboot::trail::clock(e.unix_ms), e.label())),
        });
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
