//! Stage 4 (Lokomotive): drive the external `lokoctl` against the rendered
//! cluster directory. Its output goes to the attempt log; only its exit
//! status is interpreted (never its text).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use racker_inventory::{MacAddr, SelectedNode, Selection};

use crate::Error;
use crate::events::{Decision, FailedNodes, FailurePolicy, Phase, Reporter, StepResult};
use crate::lokoenv::{KubeconfigLink, LokomotiveEnv, Prepared};
use crate::state::{NodeEvent, Stage, StateFile};

/// `lokoctl` as a binary finds it: `RACKER_LOKOCTL`, else on `PATH`. A
/// Lokomotive bootstrap needs its path in [`Config::lokoctl`](crate::Config).
pub fn find_lokoctl() -> Result<PathBuf, Error> {
    if let Some(p) = std::env::var_os("RACKER_LOKOCTL").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            return Err(Error::LokoctlNotAFile(p));
        }
        return Ok(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("lokoctl"))
        .find(|p| p.is_file())
        .ok_or(Error::LokoctlNotFound)
}

/// Where and how lokoctl runs: its binary, the cluster directory, the
/// attempt log and the prepared environment (docs/lokomotive.md).
pub(crate) struct Lokoctl<'a> {
    pub(crate) path: &'a Path,
    pub(crate) cluster_dir: &'a Path,
    pub(crate) log: &'a Path,
    pub(crate) env: &'a LokomotiveEnv,
    pub(crate) prepared: &'a Prepared,
}

/// Run `lokoctl <args>` in the cluster directory with the prepared
/// environment, appending its output to the attempt log.
async fn lokoctl(run: &Lokoctl<'_>, args: &[&str], progress: &Reporter<'_>) -> Result<bool, Error> {
    let (lokoctl, dir, log) = (run.path, run.cluster_dir, run.log);
    let vars: &[(OsString, OsString)] = run.prepared.vars();
    progress.log(&format!("running {} {}", lokoctl.display(), args.join(" ")));
    let out = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(log)
        .map_err(|e| Error::io("opening", log, e))?;
    let err = out.try_clone().map_err(|e| Error::io("opening", log, e))?;
    let status = tokio::process::Command::new(lokoctl)
        .args(args)
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .await
        .map_err(|source| Error::Spawn {
            program: lokoctl.to_owned(),
            source,
        })?;
    progress.log(&format!("lokoctl {} exited with {status}", args.join(" ")));
    Ok(status.success())
}

/// How joins are followed.
#[derive(Debug, Clone)]
pub(crate) struct JoinOptions {
    /// The cluster's admin kubeconfig (written by `lokoctl cluster apply`).
    pub(crate) kubeconfig: PathBuf,
    /// How long every node may take to appear Ready.
    pub(crate) timeout: Duration,
    /// Pause between two node lists.
    pub(crate) interval: Duration,
}

/// The nodes of `selection` still in play (state `active`).
fn active_macs(selection: &Selection, file: &StateFile) -> Vec<MacAddr> {
    crate::run::active_nodes(selection, file, Stage::Planned)
        .iter()
        .map(|n| n.planned.node.primary_mac)
        .collect()
}

/// Bring-up, health check, components. Nodes that do not join go through
/// `policy` (the `--on-failure` policy): retry reruns `lokoctl cluster
/// apply` and waits again (up to `retries` times), exclude drops them from
/// the rendered configuration and goes on. Returns `false` (after telling
/// the operator what to do) when a step failed.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn stages(
    progress: &Reporter<'_>,
    run: &Lokoctl<'_>,
    selection: &Selection,
    file: &mut StateFile,
    retries: u32,
    join: &JoinOptions,
    policy: &dyn FailurePolicy,
) -> Result<bool, Error> {
    let (cluster_dir, log) = (run.cluster_dir, run.log);
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        // lokoctl runs for minutes: what happened so far is on disk first.
        file.flush()?;
        let up = bring_up(progress, run, selection, file).await?;
        file.flush()?;
        if !up {
            return Ok(false);
        }
        if let Some(link) = &run.env.kubeconfig_link {
            match crate::lokoenv::link_kubeconfig(link, &join.kubeconfig)? {
                KubeconfigLink::Created => progress.say(&format!(
                    "✓ kubectl uses the cluster: {} links to {}",
                    link.display(),
                    join.kubeconfig.display()
                )),
                KubeconfigLink::Kept => progress.say(&format!(
                    "{} exists and was kept; use kubectl --kubeconfig {}",
                    link.display(),
                    join.kubeconfig.display()
                )),
                KubeconfigLink::AlreadyThere | KubeconfigLink::NoKubeconfig => {}
            }
        }
        // Stage 4b: follow the joins through the Kubernetes API.
        let failed = follow_joins(progress, Phase::ClusterHealth, selection, file, join).await?;
        if failed.is_empty() {
            break;
        }
        let question = FailedNodes {
            nodes: &failed,
            attempt,
            retries,
            reporter: progress,
        };
        match policy.decide(&question) {
            Decision::Retry if attempt <= retries => {
                for mac in &failed {
                    progress.apply(file, *mac, &NodeEvent::Reset)?;
                }
                progress.say(&format!(
                    "Retrying {} node(s) (retry {attempt} of {retries}): lokoctl cluster apply again",
                    failed.len()
                ));
            }
            Decision::Exclude => {
                crate::run::exclude_nodes(progress, file, cluster_dir, &failed)?;
                // The excluded nodes' names leave the hosts file too.
                if let Some(hosts) = &run.env.hosts_file {
                    crate::lokoenv::sync_hosts(hosts, cluster_dir, progress)?;
                }
                progress.say(&format!(
                    "Run `lokoctl cluster apply` in {} later to drop them from Lokomotive's state too.",
                    cluster_dir.display()
                ));
                break;
            }
            _ => {
                progress.say(&format!(
                    "To debug: kubectl --kubeconfig {} get nodes -o wide; racker ipmi <node> sol (serial console); ssh core@<node ip> journalctl -u kubelet. Rerun racker bootstrap to resume, or leave the nodes out with --exclude.",
                    join.kubeconfig.display()
                ));
                return Ok(false);
            }
        }
    }
    let total = active_macs(selection, file).len();
    let name = Phase::ClusterHealth;
    let mut healthy = false;
    for attempt in 0..=retries {
        if lokoctl(run, &["health"], progress).await? {
            healthy = true;
            break;
        }
        progress.log(&format!("health check attempt {} failed", attempt + 1));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    if !healthy {
        progress.finish(name, total, total, false);
        progress.say(&format!(
            "Every node joined, but `lokoctl health` reports a problem; see {} and run `lokoctl health` in {}.",
            log.display(),
            cluster_dir.display()
        ));
        return Ok(false);
    }
    progress.finish(name, total, total, true);

    let name = Phase::Components;
    progress.stage(name, 1);
    let ok = lokoctl(run, &["component", "apply"], progress).await?;
    progress.finish(name, usize::from(ok), 1, ok);
    if !ok {
        progress.say(&format!(
            "lokoctl component apply failed; see {}. Rerun it in {} once fixed.",
            log.display(),
            cluster_dir.display()
        ));
    }
    Ok(ok)
}

/// `lokoctl cluster apply`: every active node moves to `os-up` when it
/// succeeds, to `failed` when it does not.
async fn bring_up(
    progress: &Reporter<'_>,
    run: &Lokoctl<'_>,
    selection: &Selection,
    file: &mut StateFile,
) -> Result<bool, Error> {
    let active = active_macs(selection, file);
    let total = active.len();
    let name = Phase::KubernetesBringUp;
    progress.stage(name, total);
    let ok = lokoctl(
        run,
        &[
            "cluster",
            "apply",
            "--verbose",
            "--skip-components",
            "--confirm",
        ],
        progress,
    )
    .await?;
    if !ok {
        progress.finish(name, 0, total, false);
        for mac in &active {
            progress.apply(
                file,
                *mac,
                &NodeEvent::Failed("lokoctl cluster apply failed".to_owned()),
            )?;
        }
        progress.say(&format!(
            "lokoctl cluster apply failed; its output is in {}.\nTo debug: racker status, racker ipmi <node> sol, then rerun racker bootstrap (it resumes).",
            run.log.display()
        ));
        return Ok(false);
    }
    for mac in &active {
        progress.apply(file, *mac, &NodeEvent::Reached(Stage::OsUp))?;
    }
    progress.finish(name, total, total, true);
    Ok(true)
}

/// Poll `GET /api/v1/nodes` until every active node is a Ready Kubernetes
/// node (by name, host name or internal address), moving each to `joined`
/// as it appears; nodes still missing at the deadline fail (returned).
async fn follow_joins(
    progress: &Reporter<'_>,
    name: Phase,
    selection: &Selection,
    file: &mut StateFile,
    join: &JoinOptions,
) -> Result<Vec<MacAddr>, Error> {
    let nodes = crate::run::active_nodes(selection, file, Stage::Planned);
    let total = nodes.len();
    progress.stage(name, total);
    let started = Instant::now();
    let mut waiting: Vec<&SelectedNode> = nodes
        .into_iter()
        .filter(|n| {
            file.state
                .nodes
                .get(&n.planned.node.primary_mac)
                .is_some_and(|r| r.state.stage() < Stage::Joined)
        })
        .collect();
    let mut done = total - waiting.len();
    let mut client: Option<crate::kube::Client> = None;
    let mut last_error = String::new();
    while !waiting.is_empty() && started.elapsed() < join.timeout {
        if client.is_none() {
            match crate::kube::Client::from_file(
                &join.kubeconfig,
                join.interval.max(Duration::from_secs(2)),
            ) {
                Ok(c) => {
                    file.set_kubeconfig(&join.kubeconfig)?;
                    client = Some(c);
                }
                Err(e) => last_error = e.to_string(),
            }
        }
        if let Some(c) = &client {
            match c.nodes().await {
                Ok(seen) => {
                    let mut still = Vec::new();
                    for n in waiting {
                        let mac = n.planned.node.primary_mac;
                        let hostname = n.hostname.clone().unwrap_or_default();
                        match seen
                            .iter()
                            .find(|k| k.ready && k.is(&hostname, n.planned.ip))
                        {
                            Some(k) => {
                                progress.apply(file, mac, &NodeEvent::Reached(Stage::Joined))?;
                                done += 1;
                                progress.step(
                                    name,
                                    mac,
                                    (done, total),
                                    StepResult::Ok,
                                    format!("{mac} {hostname} joined as {}", k.name),
                                );
                            }
                            None => still.push(n),
                        }
                    }
                    waiting = still;
                    last_error.clear();
                }
                Err(e) => {
                    if e.to_string() != last_error {
                        progress.log(&format!("node list: {e}"));
                    }
                    last_error = e.to_string();
                }
            }
        }
        if !waiting.is_empty() {
            file.flush()?;
            tokio::time::sleep(join.interval).await;
        }
    }
    if waiting.is_empty() {
        return Ok(Vec::new());
    }
    progress.finish(name, done, total, false);
    let why = if last_error.is_empty() {
        format!(
            "not a Ready Kubernetes node within {}",
            humantime::format_duration(join.timeout)
        )
    } else {
        format!(
            "not a Ready Kubernetes node within {} (last API error: {last_error})",
            humantime::format_duration(join.timeout)
        )
    };
    let mut failed = Vec::new();
    for n in &waiting {
        let mac = n.planned.node.primary_mac;
        progress.apply(file, mac, &NodeEvent::Failed(why.clone()))?;
        progress.say(&format!(
            "  × {mac} {}: {why}",
            n.hostname.clone().unwrap_or_default()
        ));
        failed.push(mac);
    }
    Ok(failed)
}
