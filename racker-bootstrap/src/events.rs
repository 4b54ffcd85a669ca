//! Progress as typed events, the failure decision as a callback, and the
//! attempt log every event line is also written to.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use racker_inventory::MacAddr;

use crate::Error;
use crate::state::{NodeEvent, NodeState, StateFile};

/// A counted stage of the bootstrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Every active node's BMC answers over IPMI.
    BmcConnectivity,
    /// PXE boot requested through the BMC, the installer reported.
    PxeInstall,
    /// The installed OS reported up.
    OsUp,
    /// Lokomotive: `lokoctl cluster apply`.
    KubernetesBringUp,
    /// Lokomotive: every node a Ready Kubernetes node, `lokoctl health`.
    ClusterHealth,
    /// Lokomotive: `lokoctl component apply`.
    Components,
}

impl Phase {
    /// The stage's name as the operator sees it.
    pub fn name(self) -> &'static str {
        match self {
            Self::BmcConnectivity => "Checking BMC connectivity",
            Self::PxeInstall => "OS installation via PXE",
            Self::OsUp => "Waiting for the installed OS",
            Self::KubernetesBringUp => "Kubernetes bring-up",
            Self::ClusterHealth => "Cluster health check",
            Self::Components => "Lokomotive component installation",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How one node's step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepResult {
    /// Done.
    Ok,
    /// Failed, for this reason.
    Failed {
        /// Why.
        reason: String,
    },
}

impl StepResult {
    /// True for [`StepResult::Ok`].
    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Ok)
    }
}

/// What happened, as the bootstrap goes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A line for the operator (also in the attempt log).
    Message(String),
    /// A detail written to the attempt log only (lokoctl runs, BMC
    /// requests); a front end may ignore it.
    Detail(String),
    /// A warning for the operator (also in the attempt log), e.g. a BMC
    /// whose DHCP lease disagrees with the plan.
    Warning(String),
    /// A counted stage started with `total` nodes.
    StageStarted {
        /// The stage.
        phase: Phase,
        /// Nodes in it.
        total: usize,
    },
    /// One node of a stage is done or failed.
    NodeStep {
        /// The stage.
        phase: Phase,
        /// The node (primary MAC).
        node: MacAddr,
        /// Nodes done so far, this one included.
        done: usize,
        /// Nodes in the stage.
        total: usize,
        /// How it ended.
        result: StepResult,
        /// The line describing it (`<mac> <host> installed`,
        /// `<mac> <host> <reason>`).
        line: String,
    },
    /// A stage ended.
    StageFinished {
        /// The stage.
        phase: Phase,
        /// Nodes that succeeded.
        done: usize,
        /// Nodes in the stage.
        total: usize,
        /// Every node succeeded.
        ok: bool,
    },
    /// A node's state changed (as recorded in the state file).
    NodeChanged {
        /// The node (primary MAC).
        node: MacAddr,
        /// Its new state.
        state: NodeState,
    },
    /// An attempt started (1 when the bootstrap starts, 2 for the first
    /// retry); its lines go to this attempt log.
    AttemptStarted {
        /// The attempt (1 = the first run, 2 = the first retry).
        attempt: u32,
        /// Its log file.
        log: PathBuf,
    },
}

/// Receives the bootstrap's [`Event`]s (a progress bar, a test's
/// collector, a channel). Called from the bootstrap's task; keep it quick.
pub trait EventSink: Send + Sync {
    /// One event.
    fn event(&self, event: &Event);
}

impl<F: Fn(&Event) + Send + Sync> EventSink for F {
    fn event(&self, event: &Event) {
        self(event);
    }
}

/// Events into a channel (a receiver on another task renders them).
impl EventSink for tokio::sync::mpsc::UnboundedSender<Event> {
    fn event(&self, event: &Event) {
        let _ = self.send(event.clone());
    }
}

/// Every event to each sink in turn (`&[&progress, &collector]`).
impl<const N: usize> EventSink for [&dyn EventSink; N] {
    fn event(&self, event: &Event) {
        for sink in self {
            sink.event(event);
        }
    }
}

/// Every event to each sink in turn.
impl EventSink for Vec<Box<dyn EventSink>> {
    fn event(&self, event: &Event) {
        for sink in self {
            sink.event(event);
        }
    }
}

/// An [`EventSink`] that keeps every event (tests, reports).
#[derive(Debug, Default)]
pub struct CollectEvents {
    events: Mutex<Vec<Event>>,
}

impl CollectEvents {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// The events so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl EventSink for CollectEvents {
    fn event(&self, event: &Event) {
        if let Ok(mut e) = self.events.lock() {
            e.push(event.clone());
        }
    }
}

/// What to do with nodes that failed a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Try them again (up to [`Config::retries`](crate::Config) times;
    /// past that it is [`Decision::Cancel`]).
    Retry,
    /// Leave them out of the cluster and go on.
    Exclude,
    /// Stop with guidance.
    Cancel,
}

/// The question put to a [`FailurePolicy`].
#[derive(Debug)]
pub struct FailedNodes<'a> {
    /// The nodes that failed (primary MACs).
    pub nodes: &'a [MacAddr],
    /// The attempt that failed (1 = the first).
    pub attempt: u32,
    /// Retries allowed in all.
    pub retries: u32,
    pub(crate) reporter: &'a Reporter<'a>,
}

impl FailedNodes<'_> {
    /// Tell the operator (and the attempt log) why the policy decided as it did.
    pub fn note(&self, line: &str) {
        self.reporter.say(line);
    }
}

/// Decides what happens to failed nodes (retry, exclude, cancel). May
/// block (an interactive prompt).
pub trait FailurePolicy: Send + Sync {
    /// The decision for `failed`.
    fn decide(&self, failed: &FailedNodes<'_>) -> Decision;
}

/// The same decision every time.
impl FailurePolicy for Decision {
    fn decide(&self, _: &FailedNodes<'_>) -> Decision {
        *self
    }
}

/// Sends events to the sink and writes them to the current attempt's log.
pub(crate) struct Reporter<'a> {
    sink: &'a dyn EventSink,
    /// The current attempt's log file and its path.
    log: Mutex<(PathBuf, std::fs::File)>,
}

impl std::fmt::Debug for Reporter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("log", &self.log_path())
            .finish_non_exhaustive()
    }
}

impl<'a> Reporter<'a> {
    pub(crate) fn new(log_path: &Path, sink: &'a dyn EventSink) -> Result<Self, Error> {
        let log = open_log(log_path)?;
        Ok(Self {
            sink,
            log: Mutex::new((log_path.to_owned(), log)),
        })
    }

    /// One line of the attempt log: `[<RFC 3339 UTC, milliseconds>] line`.
    fn write(&self, line: &str) {
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now());
        // One write per line: other writers (the netboot services' events)
        // append to the same file, and `writeln!` on a file writes piece by
        // piece, which let their lines land inside ours.
        let text = format!("[{now}] {line}\n");
        if let Ok(mut f) = self.log.lock() {
            let _ = f.1.write_all(text.as_bytes());
        }
    }

    /// Start the first attempt: its log file is announced as
    /// [`Event::AttemptStarted`] with attempt 1.
    pub(crate) fn begin(&self) {
        let log = self.log_path();
        self.write("attempt 1");
        self.sink.event(&Event::AttemptStarted { attempt: 1, log });
    }

    /// A line for the log only.
    pub(crate) fn log(&self, line: &str) {
        self.write(line);
        self.sink.event(&Event::Detail(line.to_owned()));
    }

    /// A warning for the operator (and the log).
    pub(crate) fn warn(&self, line: String) {
        self.write(&format!("warning: {line}"));
        self.sink.event(&Event::Warning(line));
    }

    /// The current attempt's log file.
    pub(crate) fn log_path(&self) -> PathBuf {
        self.log.lock().map(|l| l.0.clone()).unwrap_or_default()
    }

    /// Start attempt `n` (a retry) in its own log file next to the first
    /// one: `<first>-attempt-<n>.log`.
    pub(crate) fn next_attempt(&self, n: u32) -> Result<PathBuf, Error> {
        let first = self.log_path();
        let stem = first
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stem = stem
            .split("-attempt-")
            .next()
            .unwrap_or_default()
            .to_owned();
        let path = first.with_file_name(format!("{stem}-attempt-{n}.log"));
        let file = open_log(&path)?;
        self.write(&format!("attempt {n} continues in {}", path.display()));
        if let Ok(mut l) = self.log.lock() {
            *l = (path.clone(), file);
        }
        self.write(&format!("attempt {n} (after {})", first.display()));
        self.sink.event(&Event::AttemptStarted {
            attempt: n,
            log: path.clone(),
        });
        Ok(path)
    }

    /// Apply `event` to node `mac` and persist it; a change is reported
    /// as [`Event::NodeChanged`].
    pub(crate) fn apply(
        &self,
        file: &mut StateFile,
        mac: MacAddr,
        event: &NodeEvent,
    ) -> Result<bool, Error> {
        let changed = file.apply(mac, event)?;
        if changed && let Some(record) = file.state.nodes.get(&mac) {
            let name = if record.hostname.is_empty() {
                String::new()
            } else {
                format!(" {}", record.hostname)
            };
            self.write(&match &record.state {
                NodeState::Failed { stage, reason } => format!(
                    "node {mac}{name}: failed (after {}): {reason}",
                    stage.as_str()
                ),
                state => format!("node {mac}{name}: {}", state.name()),
            });
            self.sink.event(&Event::NodeChanged {
                node: mac,
                state: record.state.clone(),
            });
        }
        Ok(changed)
    }

    /// A line for the operator (and the log).
    pub(crate) fn say(&self, line: &str) {
        self.write(line);
        self.sink.event(&Event::Message(line.to_owned()));
    }

    /// Start a counted stage.
    pub(crate) fn stage(&self, phase: Phase, total: usize) {
        self.write(&format!("{phase} (0/{total})"));
        self.sink.event(&Event::StageStarted { phase, total });
    }

    /// One node of the current stage done or failed.
    pub(crate) fn step(
        &self,
        phase: Phase,
        node: MacAddr,
        (done, total): (usize, usize),
        result: StepResult,
        line: String,
    ) {
        let mark = if result.is_ok() { "✓" } else { "×" };
        self.write(&format!("{phase} ({done}/{total})   {mark} {line}"));
        self.sink.event(&Event::NodeStep {
            phase,
            node,
            done,
            total,
            result,
            line,
        });
    }

    /// End the current stage.
    pub(crate) fn finish(&self, phase: Phase, done: usize, total: usize, ok: bool) {
        let mark = if ok { "✓" } else { "×" };
        self.write(&format!("{mark} {phase} ({done}/{total})"));
        self.sink.event(&Event::StageFinished {
            phase,
            done,
            total,
            ok,
        });
    }
}

fn open_log(path: &Path) -> Result<std::fs::File, Error> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io("opening", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_go_to_the_log_and_typed_events_to_the_sink() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("logs/1-bootstrap.log");
        let sink = CollectEvents::new();
        let r = Reporter::new(&first, &sink).unwrap();
        let mac = MacAddr::new([2, 0, 0, 1, 0, 7]);
        r.say("hello");
        r.stage(Phase::PxeInstall, 2);
        r.step(
            Phase::PxeInstall,
            mac,
            (1, 2),
            StepResult::Ok,
            format!("{mac} node-7 installed"),
        );
        r.finish(Phase::PxeInstall, 1, 2, false);
        r.log("detail");
        r.warn("careful".into());
        let second = r.next_attempt(2).unwrap();
        assert_eq!(second, dir.path().join("logs/1-bootstrap-attempt-2.log"));
        r.say("again");
        let third = r.next_attempt(3).unwrap();
        assert_eq!(third, dir.path().join("logs/1-bootstrap-attempt-3.log"));

        let log = std::fs::read_to_string(&first).unwrap();
        let lines: Vec<&str> = log.lines().map(|l| l.split_once("] ").unwrap().1).collect();
        assert_eq!(
            lines,
            [
                "hello",
                "OS installation via PXE (0/2)",
                "OS installation via PXE (1/2)   ✓ 02:00:00:01:00:07 node-7 installed",
                "× OS installation via PXE (1/2)",
                "detail",
                "warning: careful",
                &format!("attempt 2 continues in {}", second.display()),
            ]
        );
        let log2 = std::fs::read_to_string(&second).unwrap();
        assert!(log2.contains("attempt 2 (after "), "{log2}");
        assert!(log2.contains("] again\n"), "{log2}");
        assert_eq!(r.log_path(), third);

        let events = sink.events();
        assert_eq!(events[0], Event::Message("hello".into()));
        assert_eq!(
            events[1],
            Event::StageStarted {
                phase: Phase::PxeInstall,
                total: 2
            }
        );
        assert!(matches!(
            &events[2],
            Event::NodeStep { node, done: 1, total: 2, result: StepResult::Ok, .. } if *node == mac
        ));
        assert_eq!(
            events[3],
            Event::StageFinished {
                phase: Phase::PxeInstall,
                done: 1,
                total: 2,
                ok: false
            }
        );
        assert_eq!(events[4], Event::Detail("detail".into()));
        assert_eq!(events[5], Event::Warning("careful".into()));
        assert_eq!(
            events[6],
            Event::AttemptStarted {
                attempt: 2,
                log: second
            }
        );
    }

    #[test]
    fn the_log_has_timestamps_node_changes_and_warnings() {
        use crate::state::{BootstrapState, Stage};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/1-bootstrap.log");
        let sink = CollectEvents::new();
        let r = Reporter::new(&path, &sink).unwrap();
        r.begin();
        let mac = MacAddr::new([2, 0, 0, 1, 0, 7]);
        let mut state = BootstrapState::new("flatcar", dir.path());
        state.ensure_node(mac, MacAddr::new([2, 0, 0, 2, 0, 7]), "node-7", 0);
        let mut file = StateFile::new(dir.path(), state).unwrap();
        r.apply(&mut file, mac, &NodeEvent::Reached(Stage::BmcReachable))
            .unwrap();
        r.apply(&mut file, mac, &NodeEvent::Failed("no lease".into()))
            .unwrap();
        r.warn("lease disagrees".into());
        let log = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<(&str, &str)> = log
            .lines()
            .map(|l| l.strip_prefix('[').unwrap().split_once("] ").unwrap())
            .collect();
        for (stamp, _) in &lines {
            // 2026-12-02T09:15:00.123Z
            let t = humantime::parse_rfc3339(stamp).unwrap();
            assert!(t <= std::time::SystemTime::now(), "{stamp}");
            assert_eq!(stamp.len(), 24, "{stamp}");
        }
        let texts: Vec<&str> = lines.iter().map(|(_, t)| *t).collect();
        assert_eq!(
            texts,
            [
                "attempt 1",
                "node 02:00:00:01:00:07 node-7: bmc-reachable",
                "node 02:00:00:01:00:07 node-7: failed (after bmc-reachable): no lease",
                "warning: lease disagrees",
            ]
        );
        assert_eq!(
            sink.events()[0],
            Event::AttemptStarted {
                attempt: 1,
                log: path
            }
        );
    }

    #[test]
    fn a_fixed_decision_and_fan_out() {
        let dir = tempfile::tempdir().unwrap();
        let a = CollectEvents::new();
        let b = CollectEvents::new();
        let both: [&dyn EventSink; 2] = [&a, &b];
        let r = Reporter::new(&dir.path().join("log"), &both).unwrap();
        let q = FailedNodes {
            nodes: &[],
            attempt: 1,
            retries: 0,
            reporter: &r,
        };
        assert_eq!(Decision::Exclude.decide(&q), Decision::Exclude);
        q.note("why");
        assert_eq!(a.events(), [Event::Message("why".into())]);
        assert_eq!(a.events(), b.events());
    }
}
