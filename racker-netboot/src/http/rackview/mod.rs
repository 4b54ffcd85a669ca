//! The rack view (docs/netboot.md, "The rack view"): `GET /` is a small
//! self-contained page (HTML, CSS and JavaScript embedded in the binary, no
//! CDN) that shows the rack as slots, one per node, and polls
//! `GET /api/rack` once a second.
//!
//! The netboot server knows the plan (node entries, DHCP reservations) and
//! the installers' reports; what only the bootstrap knows (each node's
//! state and its power, which needs IPMI) comes through a
//! [`RackStatusSource`], by default the file `<state-dir>/rack-status.json`
//! that `racker bootstrap` (and the demo) keep current. So the HTTP server
//! never talks IPMI, and a `racker netboot serve` in another process shows
//! what a running bootstrap writes.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use racker_inventory::MacAddr;
use serde::{Deserialize, Serialize};

use crate::Reservation;
use crate::matchbox::NodeEntry;
use crate::report::{Report, Stage};

/// The page (`GET /`).
pub(crate) const PAGE_HTML: &str = include_str!("page.html");
/// Its style sheet (`GET /rackview.css`).
pub(crate) const PAGE_CSS: &str = include_str!("page.css");
/// Its script (`GET /rackview.js`).
pub(crate) const PAGE_JS: &str = include_str!("page.js");

/// Version of the `/api/rack` and `rack-status.json` formats.
pub const SCHEMA_VERSION: u32 = 1;

/// The file a bootstrap keeps current for the rack view.
pub const RACK_STATUS_FILE: &str = "rack-status.json";

/// What the bootstrap knows about the rack (`<state-dir>/rack-status.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RackStatus {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// What the bootstrap provisions (`flatcar`, `lokomotive`).
    pub provisioned: Option<String>,
    /// When the writer last looked (seconds since the epoch).
    pub updated_unix: u64,
    /// Every node of the bootstrap, by primary MAC.
    pub nodes: BTreeMap<MacAddr, NodeStatusEntry>,
}

impl RackStatus {
    /// An empty status of the current schema.
    pub fn new(provisioned: Option<String>, updated_unix: u64) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            provisioned,
            updated_unix,
            nodes: BTreeMap::new(),
        }
    }
}

/// One node as the bootstrap sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NodeStatusEntry {
    /// Host name, once named.
    pub hostname: Option<String>,
    /// `planned`, `bmc-reachable`, … `os-up`, `joined`, `excluded`, `failed`.
    pub state: String,
    /// Why it failed.
    pub reason: Option<String>,
    /// The last stage reached (`planned` … `joined`).
    pub stage: String,
    /// Stages reached so far (1 for `planned`).
    pub step: u32,
    /// Stages in all.
    pub steps: u32,
    /// `on` / `off`, when the BMC answered.
    pub power: Option<String>,
    /// Why the BMC did not answer.
    pub bmc_error: Option<String>,
    /// Installation attempts.
    pub attempts: u32,
    /// When the state last changed.
    pub updated_unix: u64,
}

impl NodeStatusEntry {
    /// A node in `state` at stage `step` of `steps`.
    pub fn new(state: &str, stage: &str, step: u32, steps: u32) -> Self {
        Self {
            state: state.to_owned(),
            stage: stage.to_owned(),
            step,
            steps,
            ..Self::default()
        }
    }
}

/// Where the rack view learns the bootstrap's view of the nodes.
pub trait RackStatusSource: Send + Sync + std::fmt::Debug {
    /// The current status (`None`: no bootstrap has written one).
    fn status(&self) -> Option<RackStatus>;
}

/// The rack status in `<state-dir>/rack-status.json`, read per request (it
/// is small, and another process writes it).
#[derive(Debug, Clone)]
pub struct RackStatusFile {
    path: PathBuf,
}

impl RackStatusFile {
    /// `<state-dir>/rack-status.json`.
    pub fn in_state_dir(state_dir: &Path) -> Self {
        Self {
            path: Self::path(state_dir),
        }
    }

    /// The file's path under `state_dir`.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(RACK_STATUS_FILE)
    }

    /// Write `status` atomically to `<state-dir>/rack-status.json`.
    pub fn write(state_dir: &Path, status: &RackStatus) -> std::io::Result<()> {
        let mut json = serde_json::to_vec_pretty(status).map_err(std::io::Error::other)?;
        json.push(b'\n');
        racker_fsutil::write_atomic(&Self::path(state_dir), &json, 0o644)
    }
}

impl RackStatusSource for RackStatusFile {
    fn status(&self) -> Option<RackStatus> {
        let bytes = std::fs::read(&self.path).ok()?;
        match serde_json::from_slice::<RackStatus>(&bytes) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::debug!(path = %self.path.display(), "rack view: unreadable status: {e}");
                None
            }
        }
    }
}

/// The latest thing that happened to a node, as the rack view shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastEvent {
    /// When (seconds since the epoch).
    pub unix: u64,
    /// What (`report installed`, `state os-up`).
    pub text: String,
}

/// One slot of the rack view (`/api/rack`'s `nodes[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeView {
    /// 1-based position (by internal address, then MAC).
    pub slot: usize,
    /// Primary MAC.
    pub mac: MacAddr,
    /// Host name.
    pub hostname: Option<String>,
    /// Internal address.
    pub ip: Option<Ipv4Addr>,
    /// Role.
    pub role: Option<String>,
    /// The node's state (see [`NodeStatusEntry::state`]; without a
    /// bootstrap: `waiting`, `installing`, `installed`, `os-up`, `failed`).
    pub state: String,
    /// Why it failed.
    pub reason: Option<String>,
    /// `on` / `off` / unknown.
    pub power: Option<String>,
    /// Why the BMC did not answer.
    pub bmc_error: Option<String>,
    /// Stages reached.
    pub step: u32,
    /// Stages in all.
    pub steps: u32,
    /// The installer's last report (`installing`, `installed`, `up`, `failed`).
    pub report: Option<&'static str>,
    /// The latest event.
    pub last_event: Option<LastEvent>,
}

/// `/api/rack`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RackView {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The server's clock (seconds since the epoch), for "n s ago".
    pub now_unix: u64,
    /// What the bootstrap provisions, when one wrote its status.
    pub provisioned: Option<String>,
    /// Whether a bootstrap's status is included (else state comes from the
    /// installers' reports only and power is unknown).
    pub bootstrap: bool,
    /// Every node, in slot order.
    pub nodes: Vec<NodeView>,
}

/// What the netboot server knows about the plan.
#[derive(Debug, Clone, Default)]
pub struct RackPlan {
    /// The booted nodes.
    pub nodes: Vec<NodeEntry>,
    /// DHCP reservations (addresses and names of nodes and BMCs).
    pub reservations: Vec<Reservation>,
}

/// Stages a node goes through without a bootstrap: waiting, installing,
/// installed, up.
const REPORT_STEPS: u32 = 4;

/// Assemble the rack view (pure: plan, reports, status, each node's
/// latest event on the netboot server's trail and the time in).
pub fn rack_view(
    plan: &RackPlan,
    reports: &[Report],
    status: Option<&RackStatus>,
    trail: &BTreeMap<MacAddr, LastEvent>,
    now_unix: u64,
) -> RackView {
    #[derive(Default)]
    struct Acc {
        hostname: Option<String>,
        ip: Option<Ipv4Addr>,
        role: Option<String>,
    }
    let mut nodes: BTreeMap<MacAddr, Acc> = BTreeMap::new();
    for n in &plan.nodes {
        let a = nodes.entry(n.mac).or_default();
        a.hostname = n.hostname.clone();
        a.ip = n.ip;
        a.role = n.role.clone();
    }
    if let Some(s) = status {
        for (mac, e) in &s.nodes {
            let a = nodes.entry(*mac).or_default();
            if a.hostname.is_none() {
                a.hostname = e.hostname.clone();
            }
        }
    }
    // A node that reported is a node (a plan-less `netboot serve`).
    for r in reports {
        nodes.entry(r.mac).or_default();
    }
    // Reservations only fill in nodes already known (they also name BMCs).
    for r in &plan.reservations {
        if let Some(a) = nodes.get_mut(&r.mac) {
            a.ip = a.ip.or(Some(r.ip));
            if a.hostname.is_none() {
                a.hostname = r.hostname.clone();
            }
        }
    }
    let reports: BTreeMap<MacAddr, &Report> = reports.iter().map(|r| (r.mac, r)).collect();
    let mut views: Vec<NodeView> = nodes
        .into_iter()
        .map(|(mac, a)| {
            let report = reports.get(&mac).copied();
            let entry = status.and_then(|s| s.nodes.get(&mac));
            let report_event = report.map(|r| LastEvent {
                unix: r.updated_unix,
                text: format!("installer reported {}", r.stage.as_str()),
            });
            let state_event = entry.map(|e| LastEvent {
                unix: e.updated_unix,
                text: format!("bootstrap: {}", e.state),
            });
            // The newest of the three; on a tie the trail (most precise),
            // then the report.
            let last_event = [trail.get(&mac).cloned(), report_event, state_event]
                .into_iter()
                .flatten()
                .fold(None::<LastEvent>, |best, e| match best {
                    Some(b) if b.unix >= e.unix => Some(b),
                    _ => Some(e),
                });
            let (state, reason, power, bmc_error, step, steps) = match entry {
                Some(e) => (
                    e.state.clone(),
                    e.reason.clone(),
                    e.power.clone(),
                    e.bmc_error.clone(),
                    e.step,
                    e.steps,
                ),
                None => {
                    let (state, step) = match report.map(|r| r.stage) {
                        None => ("waiting", 1),
                        Some(Stage::Installing) => ("installing", 2),
                        Some(Stage::Installed) => ("installed", 3),
                        Some(Stage::Up) => ("os-up", 4),
                        Some(Stage::Failed) => ("failed", 2),
                    };
                    (
                        state.to_owned(),
                        report.and_then(|r| r.reason.clone()),
                        None,
                        None,
                        step,
                        REPORT_STEPS,
                    )
                }
            };
            NodeView {
                slot: 0,
                mac,
                hostname: a.hostname,
                ip: a.ip,
                role: a.role,
                state,
                reason,
                power,
                bmc_error,
                step,
                steps,
                report: report.map(|r| r.stage.as_str()),
                last_event,
            }
        })
        .collect();
    // Slots by address (the plan's order), nodes without one last.
    views.sort_by_key(|v| (v.ip.is_none(), v.ip, v.mac));
    for (i, v) in views.iter_mut().enumerate() {
        v.slot = i + 1;
    }
    RackView {
        schema_version: SCHEMA_VERSION,
        now_unix,
        provisioned: status.and_then(|s| s.provisioned.clone()),
        bootstrap: status.is_some(),
        nodes: views,
    }
}

#[cfg(test)]
mod tests;
