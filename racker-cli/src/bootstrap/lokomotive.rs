//! Stage 4 (Lokomotive): drive the external `lokoctl` against the rendered
//! cluster directory. Its output goes to the attempt log; only its exit
//! status is interpreted (never its text).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Context as _;
use racker_inventory::Selection;

use super::progress::Progress;
use super::state::{Event, NodeState, Stage, StateFile};

/// `lokoctl` on PATH (or `RACKER_LOKOCTL`).
pub(crate) fn find_lokoctl() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("RACKER_LOKOCTL") {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("lokoctl"))
        .find(|p| p.is_file())
        .context("lokoctl was not found on PATH; install Lokomotive's lokoctl (racker's installer can ship it) or set RACKER_LOKOCTL")
}

/// Run `lokoctl <args>` in `dir`, appending its output to `log`.
async fn lokoctl(
    lokoctl: &Path,
    dir: &Path,
    log: &Path,
    args: &[&str],
    progress: &Progress,
) -> anyhow::Result<bool> {
    progress.log(&format!("running {} {}", lokoctl.display(), args.join(" ")));
    let out = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(log)?;
    let err = out.try_clone()?;
    let status = tokio::process::Command::new(lokoctl)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .await
        .with_context(|| format!("starting {}", lokoctl.display()))?;
    progress.log(&format!("lokoctl {} exited with {status}", args.join(" ")));
    Ok(status.success())
}

/// Bring-up, health check, components. Returns `false` (after printing
/// guidance) when a step failed.
pub(crate) async fn stages(
    progress: &Progress,
    cluster_dir: &Path,
    log: &Path,
    selection: &Selection,
    file: &mut StateFile,
    retries: u32,
) -> anyhow::Result<bool> {
    let lokoctl_path = find_lokoctl()?;
    let active: Vec<_> = selection
        .active()
        .iter()
        .map(|n| n.planned.node.primary_mac)
        .collect();
    let total = active.len();
    let fail = |file: &mut StateFile, reason: &str| -> anyhow::Result<()> {
        for mac in &active {
            if matches!(
                file.state.nodes.get(mac).map(|r| &r.state),
                Some(NodeState::Active { .. })
            ) {
                file.apply(*mac, &Event::Failed(reason.to_owned()))?;
            }
        }
        Ok(())
    };

    let name = "Kubernetes bring-up";
    progress.stage(name, total);
    let ok = lokoctl(
        &lokoctl_path,
        cluster_dir,
        log,
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
        fail(file, "lokoctl cluster apply failed")?;
        progress.say(&format!(
            "lokoctl cluster apply failed; its output is in {}.\nTo debug: racker status, racker ipmi <node> sol, then rerun racker bootstrap (it resumes).",
            log.display()
        ));
        return Ok(false);
    }
    for mac in &active {
        file.apply(*mac, &Event::Reached(Stage::OsUp))?;
    }
    progress.finish(name, total, total, true);

    let name = "Cluster health check";
    progress.stage(name, total);
    let mut healthy = false;
    for attempt in 0..=retries {
        if lokoctl(&lokoctl_path, cluster_dir, log, &["health"], progress).await? {
            healthy = true;
            break;
        }
        progress.log(&format!("health check attempt {} failed", attempt + 1));
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    if !healthy {
        progress.finish(name, 0, total, false);
        fail(file, "the cluster did not become healthy (lokoctl health)")?;
        progress.say(&format!(
            "The cluster is not healthy; see {} and run `lokoctl health` in {}.",
            log.display(),
            cluster_dir.display()
        ));
        return Ok(false);
    }
    for (i, mac) in active.iter().enumerate() {
        file.apply(*mac, &Event::Reached(Stage::Joined))?;
        progress.step(name, i + 1, total, true, &format!("{mac} joined"));
    }
    progress.finish(name, total, total, true);

    let name = "Lokomotive component installation";
    progress.stage(name, 1);
    let ok = lokoctl(
        &lokoctl_path,
        cluster_dir,
        log,
        &["component", "apply"],
        progress,
    )
    .await?;
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
