//! The environment `lokoctl` needs on the management node
//! (docs/lokomotive.md, "What racker sets up for lokoctl"), as the original
//! racker's `lokoctl-wrapper` and `prepare.sh` provided it:
//!
//! - the management key in an ssh-agent (lokoctl's PXE helper and its SSH
//!   steps log in to the nodes as `core`): an agent the operator already
//!   runs (`SSH_AUTH_SOCK`) gets the key added, otherwise racker starts
//!   one for the bootstrap and stops it afterwards;
//! - the nodes' names resolvable from the management node: racker's block
//!   of host names (API name, etcd and controller names, every node) in the
//!   hosts file, between markers, the file's other lines untouched;
//! - the cluster's kubeconfig linked where kubectl looks
//!   (`~/.kube/config`), never replacing a file or a link to elsewhere.
//!
//! `ssh-agent` and `ssh-add` are run, never parsed: only their exit status
//! and the agent's socket count.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::Error;
use crate::events::Reporter;

/// What racker prepares for `lokoctl`; every part is optional (`None`
/// leaves that part alone). `racker bootstrap` sets all three.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct LokomotiveEnv {
    /// The management node's private SSH key, put into an ssh-agent.
    pub ssh_key: Option<PathBuf>,
    /// The hosts file that gets racker's block of cluster names
    /// (`/etc/hosts` on the management node).
    pub hosts_file: Option<PathBuf>,
    /// Where the cluster's kubeconfig is linked once lokoctl wrote it
    /// (`~/.kube/config`).
    pub kubeconfig_link: Option<PathBuf>,
}

impl LokomotiveEnv {
    /// Nothing prepared.
    pub fn new() -> Self {
        Self::default()
    }
}

/// How long a started ssh-agent may take to create its socket.
const AGENT_START: Duration = Duration::from_secs(10);

/// An ssh-agent started for the bootstrap; stopped (and its socket
/// removed) on drop.
#[derive(Debug)]
struct Agent {
    child: std::process::Child,
    socket: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// The prepared environment: the variables lokoctl runs with, and the
/// agent racker started (if any), alive as long as this value.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    vars: Vec<(OsString, OsString)>,
    _agent: Option<Agent>,
}

impl Prepared {
    /// Environment variables for lokoctl.
    pub(crate) fn vars(&self) -> &[(OsString, OsString)] {
        &self.vars
    }
}

/// Put racker's block (`block`, markers included) into `file`, replacing an
/// earlier block and keeping every other line; the file is replaced
/// atomically (mode 0644), or written in place when it is a mount point
/// (containers bind-mount `/etc/hosts`). Returns whether it changed.
pub fn update_hosts_file(file: &Path, block: &str) -> Result<bool, Error> {
    let existing = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io("reading", file, e)),
    };
    let updated = racker_lokomotive::apply_hosts_block(&existing, block);
    if updated == existing {
        return Ok(false);
    }
    match crate::fsutil::write_atomic(file, updated.as_bytes(), 0o644) {
        Ok(()) => Ok(true),
        // rename(2) over a bind mount fails with EBUSY.
        Err(Error::Io { source, .. }) if source.raw_os_error() == Some(16) => {
            std::fs::write(file, updated).map_err(|e| Error::io("writing", file, e))?;
            Ok(true)
        }
        Err(e) => Err(e),
    }
}

/// The hosts block of the rendered cluster directory, when it has one.
pub(crate) fn rendered_hosts_block(cluster_dir: &Path) -> Option<String> {
    std::fs::read_to_string(cluster_dir.join(racker_lokomotive::HOSTS_FILE)).ok()
}

/// Prepare `env` before lokoctl runs: the hosts block of `cluster_dir` and
/// the ssh-agent. Problems with the agent are warnings (lokoctl then says
/// what it misses); an unwritable hosts file is an error.
pub(crate) fn prepare(
    env: &LokomotiveEnv,
    state_dir: &Path,
    cluster_dir: &Path,
    progress: &Reporter<'_>,
) -> Result<Prepared, Error> {
    if let Some(file) = &env.hosts_file {
        sync_hosts(file, cluster_dir, progress)?;
    }
    let mut prepared = Prepared::default();
    if let Some(key) = &env.ssh_key {
        match agent_with_key(key, state_dir, progress) {
            Ok((socket, agent)) => {
                prepared
                    .vars
                    .push(("SSH_AUTH_SOCK".into(), socket.into_os_string()));
                prepared._agent = agent;
            }
            Err(why) => progress.warn(format!(
                "lokoctl will run without the management key in an ssh-agent: {why}"
            )),
        }
    }
    Ok(prepared)
}

/// Write the rendered hosts block of `cluster_dir` into `file`.
pub(crate) fn sync_hosts(
    file: &Path,
    cluster_dir: &Path,
    progress: &Reporter<'_>,
) -> Result<(), Error> {
    let Some(block) = rendered_hosts_block(cluster_dir) else {
        return Ok(());
    };
    if update_hosts_file(file, &block)? {
        progress.log(&format!("cluster names written to {}", file.display()));
    }
    Ok(())
}

/// An agent holding `key`: the operator's (`SSH_AUTH_SOCK`, when it
/// answers) or one started here with its socket in `<state-dir>/ssh`.
fn agent_with_key(
    key: &Path,
    state_dir: &Path,
    progress: &Reporter<'_>,
) -> Result<(PathBuf, Option<Agent>), String> {
    if !key.is_file() {
        return Err(format!("the key {} does not exist", key.display()));
    }
    let existing = std::env::var_os("SSH_AUTH_SOCK")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .filter(|s| std::os::unix::net::UnixStream::connect(s).is_ok());
    let (socket, agent) = match existing {
        Some(socket) => (socket, None),
        None => {
            let agent = start_agent(state_dir)?;
            progress.log(&format!(
                "started ssh-agent (pid {}) on {}",
                agent.child.id(),
                agent.socket.display()
            ));
            (agent.socket.clone(), Some(agent))
        }
    };
    let status = std::process::Command::new("ssh-add")
        .arg(key)
        .env("SSH_AUTH_SOCK", &socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("running ssh-add: {e} (install openssh-client)"))?;
    if !status.success() {
        return Err(format!(
            "ssh-add {} failed ({status}); is it an unencrypted private key?",
            key.display()
        ));
    }
    progress.log(&format!(
        "{} added to the ssh-agent on {}",
        key.display(),
        socket.display()
    ));
    Ok((socket, agent))
}

/// Start `ssh-agent -D -a <state-dir>/ssh/agent.<pid>.sock` and wait (at
/// most [`AGENT_START`]) until its socket accepts connections.
fn start_agent(state_dir: &Path) -> Result<Agent, String> {
    let dir = state_dir.join("ssh");
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let socket = dir.join(format!("agent.{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&socket);
    let child = std::process::Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting ssh-agent: {e} (install openssh-client)"))?;
    let mut agent = Agent { child, socket };
    let started = Instant::now();
    // ssh-agent gives no other sign of readiness than its socket.
    while std::os::unix::net::UnixStream::connect(&agent.socket).is_err() {
        if let Ok(Some(status)) = agent.child.try_wait() {
            return Err(format!("ssh-agent exited ({status})"));
        }
        if started.elapsed() > AGENT_START {
            return Err(format!(
                "ssh-agent did not open {} within {}s",
                agent.socket.display(),
                AGENT_START.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(agent)
}

/// What [`link_kubeconfig`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeconfigLink {
    /// The link was made.
    Created,
    /// It already pointed at the kubeconfig.
    AlreadyThere,
    /// Something else is there (a file, or a link elsewhere): left alone.
    Kept,
    /// The kubeconfig does not exist (yet).
    NoKubeconfig,
}

/// Link `link` (e.g. `~/.kube/config`) to `kubeconfig`, unless something
/// else is already there.
pub fn link_kubeconfig(link: &Path, kubeconfig: &Path) -> Result<KubeconfigLink, Error> {
    if !kubeconfig.is_file() {
        return Ok(KubeconfigLink::NoKubeconfig);
    }
    let target = std::path::absolute(kubeconfig).unwrap_or_else(|_| kubeconfig.to_owned());
    match std::fs::symlink_metadata(link) {
        Ok(meta) if meta.file_type().is_symlink() => {
            let current = std::fs::read_link(link).map_err(|e| Error::io("reading", link, e))?;
            let resolved = link.parent().map_or(current.clone(), |p| p.join(&current));
            let same = std::fs::canonicalize(&resolved).ok() == std::fs::canonicalize(&target).ok();
            Ok(if same {
                KubeconfigLink::AlreadyThere
            } else {
                KubeconfigLink::Kept
            })
        }
        Ok(_) => Ok(KubeconfigLink::Kept),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = link.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
            }
            std::os::unix::fs::symlink(&target, link).map_err(|e| Error::io("linking", link, e))?;
            Ok(KubeconfigLink::Created)
        }
        Err(e) => Err(Error::io("inspecting", link, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_is_linked_once_and_never_over_something_else() {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("assets/auth/kubeconfig");
        let link = dir.path().join("home/.kube/config");
        assert_eq!(
            link_kubeconfig(&link, &kubeconfig).unwrap(),
            KubeconfigLink::NoKubeconfig
        );
        assert!(std::fs::symlink_metadata(&link).is_err());
        std::fs::create_dir_all(kubeconfig.parent().unwrap()).unwrap();
        std::fs::write(&kubeconfig, "apiVersion: v1\n").unwrap();
        assert_eq!(
            link_kubeconfig(&link, &kubeconfig).unwrap(),
            KubeconfigLink::Created
        );
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "apiVersion: v1\n");
        assert_eq!(
            link_kubeconfig(&link, &kubeconfig).unwrap(),
            KubeconfigLink::AlreadyThere
        );
        // An operator's own kubeconfig stays.
        let own = dir.path().join("home2/.kube/config");
        std::fs::create_dir_all(own.parent().unwrap()).unwrap();
        std::fs::write(&own, "mine").unwrap();
        assert_eq!(
            link_kubeconfig(&own, &kubeconfig).unwrap(),
            KubeconfigLink::Kept
        );
        assert_eq!(std::fs::read_to_string(&own).unwrap(), "mine");
    }

    #[test]
    fn hosts_block_replaces_only_its_own_lines() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = dir.path().join("hosts");
        std::fs::write(&hosts, "127.0.0.1 localhost\n10.0.0.9 mine\n").unwrap();
        let block = |ip: &str| {
            format!(
                "{}\n{ip} lokomotive.k8s.localdomain\n{}\n",
                racker_lokomotive::HOSTS_BEGIN,
                racker_lokomotive::HOSTS_END
            )
        };
        assert!(update_hosts_file(&hosts, &block("172.24.213.3")).unwrap());
        assert!(!update_hosts_file(&hosts, &block("172.24.213.3")).unwrap());
        assert!(update_hosts_file(&hosts, &block("172.24.213.4")).unwrap());
        let text = std::fs::read_to_string(&hosts).unwrap();
        assert!(
            text.starts_with("127.0.0.1 localhost\n10.0.0.9 mine\n"),
            "{text}"
        );
        assert!(text.contains("172.24.213.4 lokomotive"), "{text}");
        assert!(!text.contains("172.24.213.3"), "{text}");
    }
}
