//! Handing the rack network over to `racker-netboot.service` after a
//! bootstrap that served DHCP on the PXE interface itself (docs/operating.md,
//! "Keeping the rack network up"): the interface's address is made
//! persistent and the unit enabled and started. Every step reports what
//! happened; failures leave the commands to run by hand to the caller.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::serve::Notice;
use crate::service::{NETBOOT_UNIT, enable_now, write_netboot_env, write_pxe_network};
use crate::{Config, Error, NetbootMode, Rack};

/// One step of [`handover`].
#[derive(Debug)]
#[non_exhaustive]
pub enum HandoverStep {
    /// The service's environment file changed: a Lokomotive rack keeps the
    /// matchbox gRPC API at this address for day-2 `lokoctl cluster apply`
    /// (`None`: the file no longer asks for it).
    EnvironmentWritten(PathBuf, Option<SocketAddr>),
    /// The environment file could not be written.
    EnvironmentFailed(Error),
    /// The service already ran and its environment changed: it needs a
    /// restart to read it.
    RestartNeeded(&'static str),
    /// The PXE interface's `.network` file was written (it changed).
    NetworkWritten(PathBuf),
    /// The `.network` file could not be written.
    NetworkFailed(Error),
    /// The unit is enabled and running.
    Enabled(&'static str),
    /// `systemctl enable --now` failed.
    EnableFailed(&'static str, Error),
    /// No systemctl to use: the rack network stopped with the bootstrap.
    NoSystemd(&'static str),
}

/// Hand the rack network over. First the service's environment file is
/// written (`matchbox_grpc`: the gRPC API a Lokomotive rack keeps). When a
/// netboot service of `state_dir` already runs (the bootstrap used it),
/// nothing else happens, except asking for a restart if that file changed.
/// `systemctl`: the program to enable the unit with, `None` without systemd.
pub fn handover(
    state_dir: &Path,
    rack: &Rack,
    networkd_dir: &Path,
    systemctl: Option<&Path>,
    matchbox_grpc: Option<SocketAddr>,
) -> Vec<HandoverStep> {
    let mut steps = Vec::new();
    let env_changed = match write_netboot_env(state_dir, matchbox_grpc) {
        Ok((path, changed)) => {
            if changed {
                steps.push(HandoverStep::EnvironmentWritten(path, matchbox_grpc));
            }
            changed
        }
        Err(e) => {
            steps.push(HandoverStep::EnvironmentFailed(e));
            false
        }
    };
    if racker_netboot::service::ServiceMarker::read(state_dir)
        .is_some_and(|m| Path::new(&format!("/proc/{}", m.pid)).exists())
    {
        if env_changed {
            steps.push(HandoverStep::RestartNeeded(NETBOOT_UNIT));
        }
        return steps;
    }
    match write_pxe_network(
        networkd_dir,
        &rack.management.pxe_interface,
        rack.plan.management_ip(),
        rack.plan.subnet().prefix_len(),
    ) {
        Ok((path, true)) => steps.push(HandoverStep::NetworkWritten(path)),
        Ok((_, false)) => {}
        Err(e) => steps.push(HandoverStep::NetworkFailed(e)),
    }
    steps.push(match systemctl {
        Some(systemctl) => match enable_now(systemctl, NETBOOT_UNIT) {
            Ok(()) => HandoverStep::Enabled(NETBOOT_UNIT),
            Err(e) => HandoverStep::EnableFailed(NETBOOT_UNIT, e),
        },
        None => HandoverStep::NoSystemd(NETBOOT_UNIT),
    });
    steps
}

/// Keep the rack network up after a bootstrap ends (docs/operating.md):
/// when `config` served DHCP on the PXE interface itself, hand it over to
/// `racker-netboot.service` (see [`handover`]; a Lokomotive rack keeps
/// the matchbox gRPC API for day-2 `lokoctl cluster apply`), and say what
/// happened as [`Notice`]s. Nothing happens for DHCP on a plain socket or an external
/// service. `systemctl`: the program to enable the unit with, `None`
/// without systemd.
pub fn after_bootstrap(
    config: &Config,
    networkd_dir: &Path,
    systemctl: Option<&Path>,
) -> Vec<Notice> {
    let on_interface = matches!(&config.netboot, NetbootMode::Serve(e) if e.dhcp_listen.is_none());
    if !on_interface {
        return Vec::new();
    }
    handover(
        &config.state_dir,
        &config.rack,
        networkd_dir,
        systemctl,
        config.matchbox_grpc(),
    )
    .into_iter()
    .filter_map(HandoverStep::notice)
    .collect()
}

impl HandoverStep {
    /// What to tell the operator about this step (nothing when the
    /// service's environment no longer asks for the gRPC API).
    pub fn notice(self) -> Option<Notice> {
        Some(match self {
            Self::EnvironmentWritten(path, Some(addr)) => Notice::Done(format!(
                "Network: {} keeps the matchbox gRPC API on {addr} for lokoctl",
                path.display()
            )),
            Self::EnvironmentWritten(_, None) => return None,
            Self::EnvironmentFailed(e) | Self::NetworkFailed(e) => Notice::Warning(e.to_string()),
            Self::RestartNeeded(unit) => Notice::Note(format!(
                "note: restart {unit} to apply its new settings: systemctl restart {unit}"
            )),
            Self::NetworkWritten(path) => Notice::Done(format!(
                "Network: {} keeps the PXE interface's address",
                path.display()
            )),
            Self::Enabled(unit) => Notice::Done(format!(
                "Network: handed over to {unit} (enabled; DHCP, TFTP and HTTP keep serving the rack)"
            )),
            Self::EnableFailed(unit, e) => Notice::Warning(format!(
                "{e}\n  The rack network is down until you run: systemctl enable --now {unit}"
            )),
            Self::NoSystemd(unit) => Notice::Note(format!(
                "note: the rack network stopped with this bootstrap; keep it up with: systemctl enable --now {unit}"
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rack(dir: &Path) -> Rack {
        crate::testutil::rack(dir, &[crate::testutil::MGMT])
    }

    #[test]
    fn steps_say_what_happened() {
        let dir = tempfile::tempdir().unwrap();
        let rack = rack(dir.path());
        let networkd = dir.path().join("networkd");
        let steps = handover(dir.path(), &rack, &networkd, None, None);
        assert!(
            matches!(&steps[..], [HandoverStep::EnvironmentWritten(_, None), HandoverStep::NetworkWritten(p), HandoverStep::NoSystemd(_)] if p.ends_with("10-pxe.network")),
            "{steps:?}"
        );
        // Written once; a systemctl that fails is reported.
        let steps = handover(
            dir.path(),
            &rack,
            &networkd,
            Some(Path::new("/bin/false")),
            None,
        );
        assert!(matches!(
            &steps[..],
            [HandoverStep::EnableFailed(NETBOOT_UNIT, _)]
        ));
        let steps = handover(
            dir.path(),
            &rack,
            &networkd,
            Some(Path::new("/bin/true")),
            None,
        );
        assert!(matches!(&steps[..], [HandoverStep::Enabled(NETBOOT_UNIT)]));
        // A Lokomotive rack: the environment file asks for the gRPC API.
        let grpc: SocketAddr = "172.24.213.1:8081".parse().unwrap();
        let steps = handover(
            dir.path(),
            &rack,
            &networkd,
            Some(Path::new("/bin/true")),
            Some(grpc),
        );
        assert!(
            matches!(&steps[..], [HandoverStep::EnvironmentWritten(_, Some(a)), HandoverStep::Enabled(_)] if *a == grpc),
            "{steps:?}"
        );
    }

    #[test]
    fn handover_steps_become_notices() {
        let step = HandoverStep::NoSystemd("racker-netboot.service");
        assert_eq!(
            step.notice(),
            Some(Notice::Note(
                "note: the rack network stopped with this bootstrap; keep it up with: systemctl enable --now racker-netboot.service".to_owned()
            ))
        );
        assert_eq!(
            HandoverStep::EnvironmentWritten(PathBuf::from("/x"), None).notice(),
            None
        );
        assert!(matches!(
            HandoverStep::NetworkWritten(PathBuf::from("/n/10-pxe.network")).notice(),
            Some(Notice::Done(t)) if t == "Network: /n/10-pxe.network keeps the PXE interface's address"
        ));
    }
}
