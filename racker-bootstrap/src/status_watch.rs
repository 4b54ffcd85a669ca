//! `racker status` from a rack's files: loaded and collected once
//! ([`collect_rack_status`]) or every interval until stopped
//! ([`watch_rack_status`], `racker status --watch`).

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use racker_inventory::PlanOptions;

use crate::{
    BmcResolver, Event, EventSink, Rack, Result, StatusOptions, StatusReport, collect_status,
};

/// Where a rack's files are.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RackFiles {
    /// nodes.csv.
    pub nodes_csv: PathBuf,
    /// The BMC credentials (`ipmi_user`, `ipmi_password`).
    pub oem_dir: PathBuf,
    /// The local interfaces (`/sys/class/net` on a real machine).
    pub sys_class_net: PathBuf,
    /// racker's state directory.
    pub state_dir: PathBuf,
    /// The address plan's options.
    pub plan: PlanOptions,
}

impl RackFiles {
    /// The files of a rack: nodes.csv and the credentials in `oem_dir`.
    pub fn new(
        oem_dir: impl Into<PathBuf>,
        state_dir: impl Into<PathBuf>,
        sys_class_net: impl Into<PathBuf>,
        plan: PlanOptions,
    ) -> Self {
        let oem_dir = oem_dir.into();
        Self {
            nodes_csv: oem_dir.join("nodes.csv"),
            oem_dir,
            sys_class_net: sys_class_net.into(),
            state_dir: state_dir.into(),
            plan,
        }
    }
}

/// Load the rack and its BMC credentials from `files` and collect its
/// status ([`collect_status`]); credential warnings and leases that
/// disagree with the plan are [`Event::Warning`]s through `events`.
pub async fn collect_rack_status(
    files: &RackFiles,
    resolver: &BmcResolver,
    options: &StatusOptions,
    events: &dyn EventSink,
) -> Result<StatusReport> {
    let rack = Rack::load(&files.nodes_csv, &files.sys_class_net, &files.plan)?;
    let credentials = racker_inventory::Credentials::load(&files.oem_dir)?;
    for w in &credentials.warnings {
        events.event(&Event::Warning(w.to_string()));
    }
    let credentials =
        racker_ipmi::Credentials::new(credentials.user.clone(), credentials.password.expose());
    for p in rack.plan.nodes() {
        if let Some(w) = resolver
            .resolve(p, options.ipmi_port)
            .warning(p.node.bmc_mac)
        {
            events.event(&Event::Warning(w));
        }
    }
    collect_status(&rack, &credentials, &files.state_dir, resolver, options).await
}

/// [`collect_rack_status`] every `interval` until `stop` completes (also
/// during a round), each round's result handed to `round`; an error from
/// `round` ends the watch.
pub async fn watch_rack_status<E>(
    files: &RackFiles,
    resolver: &BmcResolver,
    options: &StatusOptions,
    interval: Duration,
    events: &dyn EventSink,
    stop: impl Future<Output = ()>,
    mut round: impl FnMut(Result<StatusReport>) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    tokio::pin!(stop);
    loop {
        let status = tokio::select! {
            r = collect_rack_status(files, resolver, options, events) => r,
            () = &mut stop => return Ok(()),
        };
        round(status)?;
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = &mut stop => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rounds_follow_the_interval_until_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let files = RackFiles::new(
            dir.path().join("oem"),
            dir.path().join("state"),
            dir.path().join("net"),
            PlanOptions::default(),
        );
        assert_eq!(files.nodes_csv, dir.path().join("oem/nodes.csv"));
        let resolver = BmcResolver::load(&files.state_dir).unwrap();
        let mut rounds = 0;
        let stop = tokio::time::sleep(Duration::from_millis(250));
        let result: std::result::Result<(), ()> = watch_rack_status(
            &files,
            &resolver,
            &StatusOptions::default(),
            Duration::from_millis(100),
            &crate::CollectEvents::new(),
            stop,
            |r| {
                // No nodes.csv: every round is an error, and the watch goes on.
                assert!(r.is_err());
                rounds += 1;
                Ok(())
            },
        )
        .await;
        assert_eq!(result, Ok(()));
        assert!((2..=3).contains(&rounds), "{rounds} rounds");
        let ended: std::result::Result<(), &str> = watch_rack_status(
            &files,
            &resolver,
            &StatusOptions::default(),
            Duration::from_secs(1),
            &crate::CollectEvents::new(),
            std::future::pending(),
            |_| Err("stop"),
        )
        .await;
        assert_eq!(ended, Err("stop"));
    }
}
