//! What `racker demo` says (feature `demo`), as lines for the caller to
//! print: which folder it uses, what is simulated and what is real, and
//! how it ended. [`choose_dir`] picks the folder from the folder options.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::demo::{DemoDirs, Prepared};
use crate::{Error, Result};

/// A folder option of the command line that must name a demo folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DemoFolder {
    /// `--oem-dir` (`DIR/oem`).
    Oem,
    /// `--state-dir` (`DIR/state`).
    State,
    /// `--sys-class-net` (`DIR/net`).
    Net,
}

impl DemoFolder {
    /// Its flag, environment variable and leaf in the demo folder.
    fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Oem => ("--oem-dir", "RACKER_OEM_DIR", "oem"),
            Self::State => ("--state-dir", "RACKER_STATE_DIR", "state"),
            Self::Net => ("--sys-class-net", "RACKER_SYS_CLASS_NET", "net"),
        }
    }
}

/// The demo folder and whether it is the default one: `dir`, else the
/// one the `given` folder options name (`DIR/oem`, `DIR/state`, `DIR/net`,
/// e.g. the demo's own exports), else `racker-demo` in `temp_dir`. Folder
/// options naming anything else are refused: the demo writes its own
/// nodes.csv and never touches a real rack's.
pub fn choose_dir(
    dir: Option<&Path>,
    given: &[(DemoFolder, &Path)],
    temp_dir: &Path,
) -> Result<(PathBuf, bool)> {
    let Some((_, first)) = given.first() else {
        return Ok(match dir {
            Some(d) => (d.to_owned(), false),
            None => (temp_dir.join("racker-demo"), true),
        });
    };
    let chosen = match dir {
        Some(d) => d.to_owned(),
        None => first.parent().map(Path::to_owned).unwrap_or_default(),
    };
    for (folder, path) in given {
        let (flag, env, leaf) = folder.names();
        if *path != chosen.join(leaf) {
            return Err(Error::Config(format!(
                "racker demo builds its own rack in --dir DIR (nodes.csv in DIR/oem, state in \
                 DIR/state, interfaces in DIR/net), so {flag}/{env} must be {} or left out (got {}); \
                 unset RACKER_OEM_DIR, RACKER_STATE_DIR and RACKER_SYS_CLASS_NET or pass --dir",
                chosen.join(leaf).display(),
                path.display()
            )));
        }
    }
    Ok((chosen, false))
}

/// "42 s", "3 min 5 s".
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s} s")
    } else {
        format!("{} min {} s", s / 60, s % 60)
    }
}

/// The sentences of a demo of `nodes` nodes in `dir` (`default`: the
/// default folder, cleared and reused by the next demo).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DemoText {
    /// The demo folder.
    pub dir: PathBuf,
    /// It is the default folder.
    pub default: bool,
    /// Number of nodes.
    pub nodes: usize,
}

impl DemoText {
    /// The sentences of this demo.
    pub fn new(dir: &Path, default: bool, nodes: usize) -> Self {
        Self {
            dir: dir.to_owned(),
            default,
            nodes,
        }
    }

    fn dirs(&self) -> DemoDirs {
        DemoDirs::in_dir(&self.dir)
    }

    /// What [`crate::demo::prepare_dir`] found, when worth saying.
    pub fn prepared(&self, prepared: Prepared) -> Option<String> {
        let dir = self.dir.display();
        match prepared {
            Prepared::Resumed => Some(format!(
                "Resuming the demo rack in {dir} (installed nodes stay installed)"
            )),
            Prepared::Cleared => Some(format!(
                "Reusing {dir} (the previous demo's rack was cleared)"
            )),
            _ => None,
        }
    }

    /// What the demo simulates and what is real racker, then where the
    /// rack is.
    pub fn explain(&self, keep_running: bool) -> Vec<String> {
        let (nodes, dir) = (self.nodes, &self.dir);
        let mut out = vec![
            format!(
                "racker demo: {nodes} simulated server(s) and a simulated management node, provisioned by the real racker, all on this machine."
            ),
            "  Simulated: every server's BMC (real IPMI 2.0 over UDP on 127.0.0.1, one port each: power, boot device, serial-over-LAN) \
             and its firmware (a PXE ROM and iPXE doing real DHCP and HTTP against racker, an installer that \"writes the disk\" \
             by waiting, then reports like Flatcar's and boots \"from disk\"); Flatcar's kernel and initrd are small stand-in files."
                .to_owned(),
            format!(
                "  Real: racker's own bootstrap, as on a rack: the address plan from {}, the rendered Flatcar configuration and Ignition, \
                 racker's DHCP and HTTP boot server (on 127.0.0.1 instead of the PXE interface), IPMI to every BMC, the state file and logs in {}.",
                dir.join("oem/nodes.csv").display(),
                dir.join("state").display()
            ),
        ];
        if !keep_running {
            out.push(
                "  The simulated rack stops when the demo ends; --keep-running keeps it up for racker status, racker ipmi and the rack view."
                    .to_owned(),
            );
        }
        out.push(String::new());
        out.push(format!("Demo rack of {nodes} node(s) in {}", dir.display()));
        out
    }

    /// The folder options of racker's other commands for this demo, with
    /// the address plan's.
    pub fn flags(&self) -> String {
        let dirs = self.dirs();
        let (subnet_prefix, prefix_length) = crate::demo::demo_network(self.nodes);
        format!(
            "--oem-dir {} --state-dir {} --sys-class-net {} --subnet-prefix {subnet_prefix} --prefix-length {prefix_length}",
            dirs.oem_dir.display(),
            dirs.state_dir.display(),
            dirs.sys_class_net.display()
        )
    }

    /// Ctrl-C during the bootstrap, `elapsed` after the start.
    pub fn interrupted(&self, elapsed: Duration) -> String {
        format!(
            "Interrupted during the bootstrap after {}: the simulated rack is stopped. What was done is in {}; \
             `racker demo --dir {}` resumes it (installed nodes stay installed).",
            human_duration(elapsed),
            self.dirs().state_dir.join("bootstrap.json").display(),
            self.dir.display()
        )
    }

    /// What is added to the bootstrap's error.
    pub fn bootstrap_failed(&self) -> String {
        format!(
            "the demo's bootstrap failed; its rack is in {} (look with `racker {} plan`, logs in {})",
            self.dir.display(),
            self.flags(),
            self.logs().display()
        )
    }

    fn logs(&self) -> PathBuf {
        self.dirs().state_dir.join("cluster/logs")
    }

    /// After the status table: where to look when nodes failed, and (not
    /// kept running) that the simulated rack stops.
    pub fn after_status(&self, succeeded: bool, keep_running: bool) -> Vec<String> {
        let mut out = Vec::new();
        if !succeeded {
            out.push(format!(
                "\nThe demo's commands take its folders: racker {} status (with --keep-running, while the rack runs); \
                 the logs are in {}; `racker demo --dir {}` resumes.",
                self.flags(),
                self.logs().display(),
                self.dir.display()
            ));
        }
        if !keep_running {
            out.push(format!(
                "\nThe simulated BMCs and firmware stop with the demo, so a later `racker status` finds them unreachable; \
                 `racker demo --keep-running` keeps them up. The demo's files stay in {}{}.",
                self.dir.display(),
                if self.default {
                    " (the next `racker demo` clears and reuses it)"
                } else {
                    ""
                }
            ));
        }
        out
    }

    /// The rack kept running: the `export` lines that point racker at it,
    /// commands to try (`example`: a host name), and the rack view.
    pub fn kept(&self, example: &str, base_url: &str) -> Vec<String> {
        let dirs = self.dirs();
        let (subnet_prefix, prefix_length) = crate::demo::demo_network(self.nodes);
        let mut out = vec![
            String::new(),
            format!(
                "The demo rack keeps running: {} simulated BMC(s), their firmware and racker's netboot server. In another shell:",
                self.nodes
            ),
            String::new(),
            format!("  export RACKER_OEM_DIR={}", dirs.oem_dir.display()),
            format!("  export RACKER_STATE_DIR={}", dirs.state_dir.display()),
            format!(
                "  export RACKER_SYS_CLASS_NET={}",
                dirs.sys_class_net.display()
            ),
            format!(
                "  export RACKER_SUBNET_PREFIX={subnet_prefix} RACKER_PREFIX_LENGTH={prefix_length}"
            ),
        ];
        for (cmd, what) in [
            ("racker status".to_owned(), "every node: state, power, OS"),
            (
                format!("racker ipmi {example} sol"),
                "its serial console over SOL (detach with ~.)",
            ),
            (
                "racker ipmi --all sensors".to_owned(),
                "every BMC's sensors",
            ),
            (
                "racker ipmi --all power status".to_owned(),
                "every node's power",
            ),
        ] {
            out.push(format!("  {cmd:<32} # {what}"));
        }
        out.extend([
            String::new(),
            "Ctrl-C here stops the rack.".to_owned(),
            format!("Rack view: {base_url}/"),
        ]);
        out
    }

    /// The kept rack stopped `elapsed` after the start, its nodes' states
    /// counted (see [`crate::demo::state_counts`]).
    pub fn stopped(
        &self,
        elapsed: Duration,
        counts: &std::collections::BTreeMap<String, usize>,
    ) -> String {
        let counts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
        format!(
            "Demo stopped after {}: {} node(s) ({}); the simulated BMCs, their firmware and the netboot server are down. \
             The rack's files stay in {}{}.",
            human_duration(elapsed),
            self.nodes,
            counts.join(", "),
            self.dir.display(),
            if self.default {
                " (the next `racker demo` clears and reuses it)"
            } else {
                "; `racker demo --dir` with it resumes"
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folder_comes_from_dir_the_folder_options_or_the_default() {
        let tmp = Path::new("/tmp");
        assert_eq!(
            choose_dir(None, &[], tmp).unwrap(),
            (PathBuf::from("/tmp/racker-demo"), true)
        );
        assert_eq!(
            choose_dir(Some(Path::new("/d")), &[], tmp).unwrap(),
            (PathBuf::from("/d"), false)
        );
        let given = [
            (DemoFolder::State, Path::new("/x/state")),
            (DemoFolder::Oem, Path::new("/x/oem")),
        ];
        assert_eq!(
            choose_dir(None, &given, tmp).unwrap(),
            (PathBuf::from("/x"), false)
        );
        let err = choose_dir(Some(Path::new("/d")), &given, tmp).unwrap_err();
        assert!(
            err.to_string().contains(
                "so --state-dir/RACKER_STATE_DIR must be /d/state or left out (got /x/state)"
            ),
            "{err}"
        );
    }

    #[test]
    fn sentences_name_the_folder() {
        let text = DemoText::new(Path::new("/d"), true, 3);
        assert_eq!(human_duration(Duration::from_secs(185)), "3 min 5 s");
        assert_eq!(text.explain(true).len(), 5);
        assert_eq!(
            text.explain(false).last().unwrap(),
            "Demo rack of 3 node(s) in /d"
        );
        assert!(text.prepared(Prepared::Fresh).is_none());
        assert!(
            text.flags()
                .ends_with("--subnet-prefix 172.24.213 --prefix-length 24")
        );
        assert!(text.after_status(true, true).is_empty());
        assert_eq!(text.after_status(false, false).len(), 2);
        let kept = text.kept("node-3", "http://127.0.0.1:1");
        assert!(
            kept.iter()
                .any(|l| l.starts_with("  racker ipmi node-3 sol "))
        );
        let counts = [("os-up".to_owned(), 3)].into_iter().collect();
        assert!(
            text.stopped(Duration::ZERO, &counts)
                .starts_with("Demo stopped after 0 s: 3 node(s) (3 os-up)")
        );
    }
}
