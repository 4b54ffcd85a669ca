//! Keeps `<state-dir>/rack-status.json` current for the rack view of the
//! netboot HTTP server (docs/netboot.md, "The rack view"): every node's
//! bootstrap state from the state file and its power from its BMC (IPMI
//! chassis status, polled in the background), so the HTTP server itself
//! never talks IPMI.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use racker_inventory::MacAddr;
use racker_ipmi::{Operation, Output, SessionOptions};
use racker_netboot::http::rackview::{NodeStatusEntry, RackStatus, RackStatusFile};
use tokio::task::JoinHandle;

use crate::Rack;
use crate::bmc::BmcResolver;
use crate::state::{BootstrapState, NodeState, Stage, StateFile, now_unix};

/// How often the writer looks.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RackStatusOptions {
    /// Re-read the state file this often (default: 500 ms).
    pub interval: Duration,
    /// Ask every BMC for its power this often (default: 3 s).
    pub power_interval: Duration,
    /// IPMI UDP port of the BMCs (default: 623).
    pub ipmi_port: u16,
    /// IPMI: time per exchange (default: 2 s).
    pub ipmi_timeout: Duration,
}

impl Default for RackStatusOptions {
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(500),
            power_interval: Duration::from_secs(3),
            ipmi_port: racker_ipmi::DEFAULT_PORT,
            ipmi_timeout: Duration::from_secs(2),
        }
    }
}

/// A node's power as its BMC last said: `Ok(on)` or why it did not answer.
pub type PowerReading = Result<bool, String>;

/// The rack status from the bootstrap state and the power readings (pure).
pub fn compose_rack_status(
    state: Option<&BootstrapState>,
    power: &BTreeMap<MacAddr, PowerReading>,
    now: u64,
) -> RackStatus {
    let mut status = RackStatus::new(state.map(|s| s.provision.clone()), now);
    let Some(state) = state else {
        return status;
    };
    let lokomotive = state.provision == "lokomotive";
    let stages: Vec<Stage> = Stage::ALL
        .into_iter()
        .filter(|s| lokomotive || *s != Stage::Joined)
        .collect();
    for (mac, rec) in &state.nodes {
        let stage = rec.state.stage();
        let step = stages.iter().position(|s| *s == stage).map_or(1, |i| i + 1);
        let (label, reason) = match &rec.state {
            NodeState::Active { stage } => (stage.as_str(), None),
            NodeState::Excluded { .. } => ("excluded", None),
            NodeState::Failed { reason, .. } => ("failed", Some(reason.clone())),
        };
        let mut e = NodeStatusEntry::new(label, stage.as_str(), step as u32, stages.len() as u32);
        e.hostname = Some(rec.hostname.clone()).filter(|h| !h.is_empty());
        e.reason = reason;
        e.attempts = rec.attempts;
        e.updated_unix = rec.updated_unix;
        match power.get(mac) {
            Some(Ok(on)) => e.power = Some(if *on { "on" } else { "off" }.to_owned()),
            Some(Err(why)) => e.bmc_error = Some(why.clone()),
            None => {}
        }
        status.nodes.insert(*mac, e);
    }
    status
}

/// The background writer; stop it with [`RackStatusWriter::stop`] (a last
/// write) or by dropping it.
#[derive(Debug)]
pub struct RackStatusWriter {
    state_dir: PathBuf,
    power: Arc<Mutex<BTreeMap<MacAddr, PowerReading>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl RackStatusWriter {
    /// Start keeping `<state-dir>/rack-status.json` current for the nodes
    /// of `rack`, asking their BMCs (found through `bmcs`) for power.
    /// Must be called inside a tokio runtime.
    pub fn spawn(
        state_dir: &Path,
        rack: &Rack,
        credentials: racker_ipmi::Credentials,
        bmcs: BmcResolver,
        options: RackStatusOptions,
    ) -> Self {
        let power: Arc<Mutex<BTreeMap<MacAddr, PowerReading>>> = Arc::default();
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
        let poller = {
            let power = power.clone();
            let opts = SessionOptions::default().timeout(options.ipmi_timeout);
            let every = options.power_interval;
            tokio::spawn(async move {
                loop {
                    let mut stream = racker_ipmi::fan_out_operation(
                        targets.clone(),
                        &credentials,
                        &opts,
                        &Operation::ChassisStatus,
                        64,
                    );
                    while let Some(r) = stream.next().await {
                        let reading = match r.result {
                            Ok(Output::ChassisStatus(c)) => Ok(c.power_on),
                            Ok(_) => continue,
                            Err(e) => Err(e.to_string()),
                        };
                        lock(&power).insert(r.key, reading);
                    }
                    drop(stream);
                    tokio::time::sleep(every).await;
                }
            })
        };
        let writer = {
            let power = power.clone();
            let dir = state_dir.to_owned();
            let every = options.interval;
            tokio::spawn(async move {
                let mut last: Option<RackStatus> = None;
                loop {
                    crate::state::off_worker(|| write_if_changed(&dir, &power, &mut last));
                    tokio::time::sleep(every).await;
                }
            })
        };
        Self {
            state_dir: state_dir.to_owned(),
            power,
            tasks: vec![poller, writer],
        }
    }

    /// Stop, after one last write of the current state.
    pub fn stop(mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.tasks.clear();
        write_if_changed(&self.state_dir, &self.power, &mut None);
    }
}

impl Drop for RackStatusWriter {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Write the status when it differs from `last` (the time aside).
fn write_if_changed(
    dir: &Path,
    power: &Mutex<BTreeMap<MacAddr, PowerReading>>,
    last: &mut Option<RackStatus>,
) {
    // A state file being replaced or not there yet: try again next time.
    let state = StateFile::load(dir).ok().flatten();
    let mut status = compose_rack_status(state.as_ref(), &lock(power), now_unix());
    let stamp = status.updated_unix;
    status.updated_unix = 0;
    if last.as_ref() == Some(&status) {
        return;
    }
    *last = Some(status.clone());
    status.updated_unix = stamp;
    if let Err(e) = RackStatusFile::write(dir, &status) {
        tracing::warn!(
            "rack view: writing {}: {e}",
            RackStatusFile::path(dir).display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(i: u8) -> MacAddr {
        MacAddr::new([2, 0, 0, 1, 0, i])
    }

    #[test]
    fn states_steps_power_and_failures() {
        let mut s = BootstrapState::new("flatcar", Path::new("/c"));
        for i in 0..4 {
            s.ensure_node(mac(i), mac(100 + i), &format!("node-{i}"), 1);
        }
        use crate::state::NodeEvent;
        s.apply(mac(1), &NodeEvent::Reached(Stage::OsUp), 5)
            .unwrap();
        s.apply(mac(2), &NodeEvent::Failed("no report".into()), 6)
            .unwrap();
        s.apply(mac(3), &NodeEvent::Exclude, 7).unwrap();
        let power = BTreeMap::from([
            (mac(0), Err("timeout".to_owned())),
            (mac(1), Ok(true)),
            (mac(2), Ok(false)),
        ]);
        let r = compose_rack_status(Some(&s), &power, 9);
        assert_eq!(r.provisioned.as_deref(), Some("flatcar"));
        let n = |i| &r.nodes[&mac(i)];
        assert_eq!(
            (n(0).state.as_str(), n(0).step, n(0).steps),
            ("planned", 1, 6)
        );
        assert_eq!(n(0).bmc_error.as_deref(), Some("timeout"));
        assert_eq!(n(0).power, None);
        assert_eq!((n(1).state.as_str(), n(1).step), ("os-up", 6));
        assert_eq!(n(1).power.as_deref(), Some("on"));
        assert_eq!(n(1).updated_unix, 5);
        assert_eq!(n(2).state, "failed");
        assert_eq!(n(2).reason.as_deref(), Some("no report"));
        assert_eq!(n(2).power.as_deref(), Some("off"));
        assert_eq!(n(3).state, "excluded");
        assert_eq!(n(3).hostname.as_deref(), Some("node-3"));
        // Lokomotive counts the join.
        let mut l = s.clone();
        l.provision = "lokomotive".into();
        assert_eq!(
            compose_rack_status(Some(&l), &power, 9).nodes[&mac(1)].steps,
            7
        );
        // No bootstrap yet: no nodes.
        assert!(compose_rack_status(None, &power, 9).nodes.is_empty());
    }

    #[test]
    fn writes_only_changes() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = BootstrapState::new("flatcar", Path::new("/c"));
        s.ensure_node(mac(0), mac(100), "a", 1);
        let mut file = StateFile::new(dir.path(), s).unwrap();
        let power = Mutex::new(BTreeMap::new());
        let mut last = None;
        write_if_changed(dir.path(), &power, &mut last);
        let path = RackStatusFile::path(dir.path());
        assert!(path.exists());
        std::fs::remove_file(&path).unwrap();
        write_if_changed(dir.path(), &power, &mut last);
        assert!(!path.exists(), "unchanged status rewritten");
        file.apply(
            mac(0),
            &crate::state::NodeEvent::Reached(Stage::BmcReachable),
        )
        .unwrap();
        file.flush().unwrap();
        write_if_changed(dir.path(), &power, &mut last);
        let read: RackStatus = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(read.nodes[&mac(0)].state, "bmc-reachable");
    }
}
