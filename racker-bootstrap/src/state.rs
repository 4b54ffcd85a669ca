//! The per-node bootstrap state machine and its crash-safe persistence.
//!
//! Every node moves forward through
//! `planned → bmc-reachable → pxe-requested → installer-booted → installed
//! → os-up → joined`, or ends `excluded`, or `failed` (with the stage it
//! failed in and the reason). The whole state is one JSON file in the state
//! directory, rewritten atomically (temp + fsync + rename) on every
//! transition, so a crash or Ctrl-C at any point leaves the last transition
//! on disk and a rerun resumes from there.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use racker_inventory::MacAddr;
use serde::{Deserialize, Serialize};

use crate::Error;

/// Where a node is in the bootstrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// In the plan, nothing done yet.
    Planned,
    /// Its BMC answered over IPMI.
    BmcReachable,
    /// Boot-flag timeout off, power off, next boot PXE, power on: done.
    PxeRequested,
    /// The installer reported that it started.
    InstallerBooted,
    /// The installer reported success; the node boots from disk.
    Installed,
    /// The installed OS is up.
    OsUp,
    /// The node joined the Kubernetes cluster.
    Joined,
}

impl Stage {
    /// Every stage, in order.
    pub const ALL: [Stage; 7] = [
        Self::Planned,
        Self::BmcReachable,
        Self::PxeRequested,
        Self::InstallerBooted,
        Self::Installed,
        Self::OsUp,
        Self::Joined,
    ];

    /// The kebab-case name (as in the state file).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Planned => "planned",
            Self::BmcReachable => "bmc-reachable",
            Self::PxeRequested => "pxe-requested",
            Self::InstallerBooted => "installer-booted",
            Self::Installed => "installed",
            Self::OsUp => "os-up",
            Self::Joined => "joined",
        }
    }
}

/// A node's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum NodeState {
    /// Progressing normally.
    Active {
        /// Last stage reached.
        stage: Stage,
    },
    /// Left out by the operator (`--exclude` or the failure policy).
    Excluded {
        /// Last stage reached before exclusion.
        stage: Stage,
    },
    /// Failed; a retry restarts it from `planned`.
    Failed {
        /// Last stage reached before the failure.
        stage: Stage,
        /// Why.
        reason: String,
    },
}

impl NodeState {
    /// The last stage reached.
    pub fn stage(&self) -> Stage {
        match self {
            Self::Active { stage } | Self::Excluded { stage } | Self::Failed { stage, .. } => {
                *stage
            }
        }
    }

    /// The state as one fixed lowercase word (docs/output.md): the stage's
    /// name while active, else `excluded` or `failed`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Active { stage } => stage.as_str(),
            Self::Excluded { .. } => "excluded",
            Self::Failed { .. } => "failed",
        }
    }

    /// Why the node is in this state (a failure's reason).
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Failed { reason, .. } => Some(reason),
            Self::Active { .. } | Self::Excluded { .. } => None,
        }
    }

    /// `installed`, `excluded`, `failed after installed: <reason>`.
    pub fn label(&self) -> String {
        match self {
            Self::Active { stage } => stage.as_str().to_owned(),
            Self::Excluded { .. } => "excluded".to_owned(),
            Self::Failed { stage, reason } => format!("failed after {}: {reason}", stage.as_str()),
        }
    }
}

/// One node's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The node's BMC MAC.
    pub bmc_mac: MacAddr,
    /// Its host name (empty for plain Flatcar without names).
    pub hostname: String,
    /// Where it is.
    #[serde(flatten)]
    pub state: NodeState,
    /// Installation attempts started (PXE requested).
    pub attempts: u32,
    /// Unix time of the last transition.
    pub updated_unix: u64,
}

/// A refused transition (a bug in the caller, or a stale event).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransitionError {
    /// The node is not in the state.
    #[error("node {0} is not part of this bootstrap")]
    UnknownNode(MacAddr),
    /// The event does not apply to the node's state.
    #[error("node {mac} cannot go from {from} to {to}")]
    Invalid {
        /// The node.
        mac: MacAddr,
        /// Its state's label.
        from: String,
        /// The refused target.
        to: &'static str,
    },
}

/// An event that moves a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// The node reached a stage (moving backwards is a no-op).
    Reached(Stage),
    /// The node failed, for this reason.
    Failed(String),
    /// The node is left out from now on.
    Exclude,
    /// Start over (retry policy), keeping attempts: `failed` → `planned`,
    /// or → `installed` when the failure came after the install (an
    /// installed node is never reinstalled by a retry).
    Reset,
    /// Install again (`racker reprovision`): any active or failed state →
    /// `planned`.
    Reprovision,
}

/// The whole bootstrap state (sans-IO: [`BootstrapState::apply`] is pure;
/// [`StateFile`] persists it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootstrapState {
    /// Format version (1).
    pub version: u32,
    /// What is provisioned (`flatcar`, `lokomotive`).
    pub provision: String,
    /// The rendered cluster directory.
    pub cluster_dir: PathBuf,
    /// Lokomotive: the kubeconfig joins were followed with (`racker status`
    /// asks the same API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<PathBuf>,
    /// Keyed by primary MAC.
    pub nodes: BTreeMap<MacAddr, NodeRecord>,
    /// The bootstrap generation: install reports of another generation
    /// never count for this one (racker_netboot::report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<String>,
}

impl BootstrapState {
    /// An empty state.
    pub fn new(provision: &str, cluster_dir: &Path) -> Self {
        Self {
            version: 1,
            provision: provision.to_owned(),
            cluster_dir: cluster_dir.to_owned(),
            kubeconfig: None,
            nodes: BTreeMap::new(),
            generation: None,
        }
    }

    /// Add a node in `planned` unless it is already known (resume).
    pub fn ensure_node(&mut self, mac: MacAddr, bmc_mac: MacAddr, hostname: &str, now: u64) {
        self.nodes.entry(mac).or_insert_with(|| NodeRecord {
            bmc_mac,
            hostname: hostname.to_owned(),
            state: NodeState::Active {
                stage: Stage::Planned,
            },
            attempts: 0,
            updated_unix: now,
        });
    }

    /// Apply `event` to node `mac`. Returns whether the state changed
    /// (re-applying an event is a no-op, so replays are harmless).
    pub fn apply(
        &mut self,
        mac: MacAddr,
        event: &NodeEvent,
        now: u64,
    ) -> Result<bool, TransitionError> {
        let rec = self
            .nodes
            .get_mut(&mac)
            .ok_or(TransitionError::UnknownNode(mac))?;
        let invalid = |to: &'static str, from: &NodeState| TransitionError::Invalid {
            mac,
            from: from.label(),
            to,
        };
        let next = match (&rec.state, event) {
            (NodeState::Active { stage }, NodeEvent::Reached(to)) => {
                if to <= stage {
                    return Ok(false);
                }
                if *to == Stage::PxeRequested {
                    rec.attempts += 1;
                }
                NodeState::Active { stage: *to }
            }
            (NodeState::Active { stage }, NodeEvent::Failed(reason)) => NodeState::Failed {
                stage: *stage,
                reason: reason.clone(),
            },
            (NodeState::Active { stage } | NodeState::Failed { stage, .. }, NodeEvent::Exclude) => {
                NodeState::Excluded { stage: *stage }
            }
            (NodeState::Failed { stage, .. }, NodeEvent::Reset) => NodeState::Active {
                stage: if *stage >= Stage::Installed {
                    Stage::Installed
                } else {
                    Stage::Planned
                },
            },
            (NodeState::Failed { reason, .. }, NodeEvent::Failed(r)) if reason == r => {
                return Ok(false);
            }
            (NodeState::Active { .. } | NodeState::Failed { .. }, NodeEvent::Reprovision) => {
                NodeState::Active {
                    stage: Stage::Planned,
                }
            }
            (NodeState::Excluded { .. }, NodeEvent::Exclude) => return Ok(false),
            (NodeState::Active { .. }, NodeEvent::Reset) => return Ok(false),
            (from, NodeEvent::Reached(s)) => return Err(invalid(s.as_str(), from)),
            (from, NodeEvent::Failed(_)) => return Err(invalid("failed", from)),
            (from, NodeEvent::Reset | NodeEvent::Reprovision) => {
                return Err(invalid("planned", from));
            }
        };
        rec.state = next;
        rec.updated_unix = now;
        Ok(true)
    }

    /// Nodes in a given condition.
    pub fn macs_where(&self, f: impl Fn(&NodeState) -> bool) -> Vec<MacAddr> {
        self.nodes
            .iter()
            .filter(|(_, r)| f(&r.state))
            .map(|(m, _)| *m)
            .collect()
    }
}

/// The state file: `<state-dir>/bootstrap.json`.
///
/// Node events are written behind, at most every `SAVE_INTERVAL` (200 ms): a
/// burst of events on a large rack costs one write per interval instead of
/// one whole-file write per event (which made bootstraps of 1,000 nodes
/// quadratic, docs/bootstrap.md). [`flush`](Self::flush) (also on drop)
/// writes what is pending; the stages call [`save_if_due`](Self::save_if_due)
/// on every tick, so the file is never more than about a quarter of a
/// second behind. What a crash loses in that window is re-derived on
/// resume from the install reports, which are written at once.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    pub(crate) state: BootstrapState,
    dirty: bool,
    last_save: Option<Instant>,
}

/// How often pending node events are written at most.
pub(crate) const SAVE_INTERVAL: Duration = Duration::from_millis(200);

impl Drop for StateFile {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::warn!("writing {}: {e}", self.path.display());
        }
    }
}

/// Run `f`, which waits for the disk (fsync): inside a multi-threaded
/// tokio runtime through `block_in_place`, so the worker's other tasks
/// (the netboot server, a simulated rack) go on meanwhile.
pub(crate) fn off_worker<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Seconds since the Unix epoch (0 before it).
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl StateFile {
    /// `<state-dir>/bootstrap.json`.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("bootstrap.json")
    }

    /// Load the previous state, if any.
    pub fn load(state_dir: &Path) -> Result<Option<BootstrapState>, Error> {
        let path = Self::path(state_dir);
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(state) => Ok(Some(state)),
                Err(source) => Err(Error::CorruptState { path, source }),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("reading", path, e)),
        }
    }

    /// Persist `state` at `<state-dir>/bootstrap.json` (written at once).
    /// Temporary files a killed writer left beside it are removed here,
    /// once, not at every save.
    pub fn new(state_dir: &Path, state: BootstrapState) -> Result<Self, Error> {
        std::fs::create_dir_all(state_dir).map_err(|e| Error::io("creating", state_dir, e))?;
        racker_fsutil::remove_stale_temporaries(&Self::path(state_dir));
        let mut f = Self {
            path: Self::path(state_dir),
            state,
            dirty: true,
            last_save: None,
        };
        f.save()?;
        Ok(f)
    }

    /// The current state.
    pub fn state(&self) -> &BootstrapState {
        &self.state
    }

    fn save(&mut self) -> Result<(), Error> {
        let mut json = serde_json::to_vec_pretty(&self.state)
            .map_err(|e| Error::io("serializing", &self.path, e.into()))?;
        json.push(b'\n');
        off_worker(|| {
            racker_fsutil::write_atomic(&self.path, &json, 0o644)
                .map_err(|e| Error::io("writing", &self.path, e))
        })?;
        self.dirty = false;
        self.last_save = Some(Instant::now());
        Ok(())
    }

    /// Write pending node events now.
    pub fn flush(&mut self) -> Result<(), Error> {
        if self.dirty { self.save() } else { Ok(()) }
    }

    /// Write pending node events when the last write is at least
    /// `SAVE_INTERVAL` (200 ms) ago.
    pub fn save_if_due(&mut self) -> Result<(), Error> {
        if self.dirty && self.last_save.is_none_or(|t| t.elapsed() >= SAVE_INTERVAL) {
            self.save()
        } else {
            Ok(())
        }
    }

    /// Record the kubeconfig of the cluster (saved at once).
    pub fn set_kubeconfig(&mut self, path: &Path) -> Result<(), Error> {
        if self.state.kubeconfig.as_deref() != Some(path) {
            self.state.kubeconfig = Some(path.to_owned());
            self.save()?;
        }
        Ok(())
    }

    /// Apply; a change is written behind (see [`StateFile`]).
    pub fn apply(&mut self, mac: MacAddr, event: &NodeEvent) -> Result<bool, Error> {
        let changed = self.state.apply(mac, event, now_unix())?;
        if changed {
            self.dirty = true;
            self.save_if_due()?;
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mac(i: u8) -> MacAddr {
        MacAddr::new([2, 0, 0, 0, 0, i])
    }

    #[test]
    fn names_are_fixed_words_and_reasons_separate() {
        let failed = NodeState::Failed {
            stage: Stage::Installed,
            reason: "no OS".into(),
        };
        assert_eq!(failed.name(), "failed");
        assert_eq!(failed.reason(), Some("no OS"));
        assert_eq!(failed.label(), "failed after installed: no OS");
        let active = NodeState::Active { stage: Stage::OsUp };
        assert_eq!((active.name(), active.reason()), ("os-up", None));
        let excluded = NodeState::Excluded {
            stage: Stage::Planned,
        };
        assert_eq!((excluded.name(), excluded.reason()), ("excluded", None));
    }

    fn state(n: u8) -> BootstrapState {
        let mut s = BootstrapState::new("flatcar", Path::new("/c"));
        for i in 0..n {
            s.ensure_node(mac(i), mac(100 + i), &format!("node-{i}"), 0);
        }
        s
    }

    #[test]
    fn forward_only_idempotent_and_counts_attempts() {
        let mut s = state(1);
        let m = mac(0);
        assert!(
            s.apply(m, &NodeEvent::Reached(Stage::BmcReachable), 1)
                .unwrap()
        );
        assert!(
            s.apply(m, &NodeEvent::Reached(Stage::PxeRequested), 2)
                .unwrap()
        );
        assert!(
            !s.apply(m, &NodeEvent::Reached(Stage::PxeRequested), 3)
                .unwrap()
        );
        assert!(
            !s.apply(m, &NodeEvent::Reached(Stage::BmcReachable), 3)
                .unwrap()
        );
        assert_eq!(s.nodes[&m].attempts, 1);
        assert!(
            s.apply(m, &NodeEvent::Failed("install failed".into()), 4)
                .unwrap()
        );
        assert_eq!(
            s.nodes[&m].state.label(),
            "failed after pxe-requested: install failed"
        );
        assert!(
            s.apply(m, &NodeEvent::Reached(Stage::Installed), 5)
                .is_err()
        );
        assert!(s.apply(m, &NodeEvent::Reset, 6).unwrap());
        assert!(
            s.apply(m, &NodeEvent::Reached(Stage::PxeRequested), 7)
                .unwrap()
        );
        assert_eq!(s.nodes[&m].attempts, 2);
        assert!(s.apply(m, &NodeEvent::Exclude, 8).unwrap());
        assert!(
            s.apply(m, &NodeEvent::Reached(Stage::Installed), 9)
                .is_err()
        );
        assert!(s.apply(mac(9), &NodeEvent::Exclude, 9).is_err());
    }

    #[test]
    fn retry_after_the_install_keeps_the_install() {
        let mut s = state(1);
        let m = mac(0);
        s.apply(m, &NodeEvent::Reached(Stage::Installed), 1)
            .unwrap();
        s.apply(m, &NodeEvent::Failed("no OS up".into()), 2)
            .unwrap();
        assert_eq!(
            s.nodes[&m].state.label(),
            "failed after installed: no OS up"
        );
        assert!(s.apply(m, &NodeEvent::Reset, 3).unwrap());
        assert_eq!(
            s.nodes[&m].state,
            NodeState::Active {
                stage: Stage::Installed
            }
        );
        assert!(s.apply(m, &NodeEvent::Reached(Stage::OsUp), 4).unwrap());
    }

    /// Node events are written behind: a burst costs one write, pending
    /// events reach the disk when due, on flush and on drop.
    #[test]
    fn events_are_written_behind_and_never_lost_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let on_disk = || StateFile::load(dir.path()).unwrap().unwrap();
        let mut f = StateFile::new(dir.path(), state(3)).unwrap();
        let reached = |s| NodeEvent::Reached(s);
        f.apply(mac(0), &reached(Stage::BmcReachable)).unwrap();
        f.apply(mac(1), &reached(Stage::BmcReachable)).unwrap();
        // Within the interval of the first write: still pending.
        assert_ne!(on_disk(), f.state);
        f.save_if_due().unwrap();
        assert_ne!(on_disk(), f.state);
        std::thread::sleep(SAVE_INTERVAL);
        f.save_if_due().unwrap();
        assert_eq!(on_disk(), f.state);
        f.apply(mac(2), &reached(Stage::BmcReachable)).unwrap();
        let expected = f.state.clone();
        drop(f);
        assert_eq!(on_disk(), expected);
    }

    /// What a writer killed between create and rename left goes when the
    /// next bootstrap opens the state file (not at every save); a state
    /// directory that does not exist yet is created.
    #[test]
    fn a_dead_writers_temporary_goes_when_the_state_file_opens() {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = dir.path().join("state");
        StateFile::new(&state_dir, state(1)).unwrap();
        // No process has pid 4194305 (above the kernel's pid_max limit).
        let dead = state_dir.join(".bootstrap.json.tmp.4194305");
        std::fs::write(&dead, b"torn").unwrap();
        let f = StateFile::new(&state_dir, state(2)).unwrap();
        assert!(!dead.exists(), "the dead writer's temporary file stays");
        assert_eq!(
            StateFile::load(&state_dir).unwrap().as_ref(),
            Some(f.state())
        );
    }

    #[test]
    fn persisted_state_survives_reload() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = StateFile::new(dir.path(), state(2)).unwrap();
        f.apply(mac(1), &NodeEvent::Reached(Stage::Installed))
            .unwrap();
        f.flush().unwrap();
        let loaded = StateFile::load(dir.path()).unwrap().unwrap();
        assert_eq!(loaded, f.state);
        assert_eq!(
            loaded.nodes[&mac(1)].state,
            NodeState::Active {
                stage: Stage::Installed
            }
        );
        // Resuming never resets a known node.
        let mut again = loaded.clone();
        again.ensure_node(mac(1), mac(101), "node-1", 99);
        assert_eq!(again, loaded);
    }

    fn arb_event() -> impl Strategy<Value = NodeEvent> {
        prop_oneof![
            prop::sample::select(vec![
                Stage::Planned,
                Stage::BmcReachable,
                Stage::PxeRequested,
                Stage::InstallerBooted,
                Stage::Installed,
                Stage::OsUp,
                Stage::Joined
            ])
            .prop_map(NodeEvent::Reached),
            "[a-z]{1,5}".prop_map(NodeEvent::Failed),
            Just(NodeEvent::Exclude),
            Just(NodeEvent::Reset),
        ]
    }

    proptest! {
        #[test]
        fn invariants_hold_under_any_event_sequence(events in proptest::collection::vec((0u8..3, arb_event()), 0..60)) {
            let mut s = state(3);
            for (i, (n, e)) in events.iter().enumerate() {
                let before = s.nodes[&mac(*n)].clone();
                let result = s.apply(mac(*n), e, i as u64);
                let after = &s.nodes[&mac(*n)];
                match result {
                    Err(_) | Ok(false) => prop_assert_eq!(&before.state, &after.state),
                    Ok(true) => prop_assert_ne!(&before.state, &after.state),
                }
                // Excluded is terminal.
                if matches!(before.state, NodeState::Excluded { .. }) {
                    prop_assert_eq!(&before.state, &after.state);
                }
                // Active stages never move backwards except through a reset of a failure.
                if let (NodeState::Active { stage: a }, NodeState::Active { stage: b }) = (&before.state, &after.state) {
                    prop_assert!(b >= a);
                }
                prop_assert!(after.attempts >= before.attempts);
                // A retry never undoes an install.
                if matches!(e, NodeEvent::Reset) && before.state.stage() >= Stage::Installed {
                    prop_assert!(after.state.stage() >= Stage::Installed);
                }
            }
            // The JSON form round-trips.
            let json = serde_json::to_string(&s).unwrap();
            prop_assert_eq!(serde_json::from_str::<BootstrapState>(&json).unwrap(), s);
        }
    }
}
