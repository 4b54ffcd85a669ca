//! After a bootstrap: the rack network stays up as a service
//! (docs/operating.md, "Keeping the rack network up"). The PXE interface's
//! address is made persistent with a systemd-networkd `.network` file (as
//! the original racker's `10-pxe.network`), and the installed
//! `racker-netboot.service` is enabled and started. What the service needs
//! beyond the unit's defaults is in its environment file
//! `<state-dir>/netboot/service.env` ([`write_netboot_env`]): for a
//! Lokomotive rack the matchbox gRPC API (`RACKER_MATCHBOX_GRPC`, the
//! environment twin of `racker netboot serve --matchbox-grpc`), which day-2
//! `lokoctl cluster apply` talks to.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::Error;

/// The unit the release installs (installer/racker-netboot.service).
pub const NETBOOT_UNIT: &str = "racker-netboot.service";
/// File name of the PXE interface's `.network` file.
pub const PXE_NETWORK_FILE: &str = "10-pxe.network";

/// The `.network` file that keeps `ip/prefix_len` on `interface`: no DHCP
/// client, no link-local addresses, not required for "online".
pub fn pxe_network(interface: &str, ip: Ipv4Addr, prefix_len: u8) -> String {
    format!(
        "# Written by racker bootstrap: the rack-internal address of the PXE interface\n\
         # (docs/operating.md). racker-netboot.service serves DHCP, TFTP and HTTP on it.\n\
         [Match]\n\
         Name={interface}\n\
         [Link]\n\
         RequiredForOnline=no\n\
         [Network]\n\
         DHCP=no\n\
         LinkLocalAddressing=no\n\
         IPv6AcceptRA=no\n\
         [Address]\n\
         Address={ip}/{prefix_len}\n\
         Scope=link\n"
    )
}

/// Write [`pxe_network`] as `<dir>/10-pxe.network` (atomically, 0644);
/// returns its path and whether it changed.
pub fn write_pxe_network(
    dir: &Path,
    interface: &str,
    ip: Ipv4Addr,
    prefix_len: u8,
) -> Result<(PathBuf, bool), Error> {
    let path = dir.join(PXE_NETWORK_FILE);
    let text = pxe_network(interface, ip, prefix_len);
    if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
        return Ok((path, false));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
    racker_fsutil::write_atomic(&path, text.as_bytes(), 0o644)
        .map_err(|e| Error::io("writing", &path, e))?;
    Ok((path, true))
}

/// The environment file `racker-netboot.service` reads
/// (`EnvironmentFile=-/opt/racker-state/netboot/service.env`).
pub fn netboot_env_path(state_dir: &Path) -> PathBuf {
    state_dir.join("netboot").join("service.env")
}

/// The text of [`netboot_env_path`]: `RACKER_MATCHBOX_GRPC=ADDR:PORT` when
/// the rack was provisioned with Lokomotive (its gRPC API keeps serving
/// for `lokoctl cluster apply`), else no setting.
pub fn netboot_env(matchbox_grpc: Option<SocketAddr>) -> String {
    let mut text = String::from(
        "# Written by racker bootstrap (docs/operating.md, \"Keeping the rack network up\"):\n\
         # the settings of racker-netboot.service beyond its unit's defaults.\n",
    );
    match matchbox_grpc {
        Some(addr) => {
            text.push_str(
                "# Lokomotive: the matchbox gRPC API for day-2 `lokoctl cluster apply`.\n",
            );
            text.push_str(&format!("RACKER_MATCHBOX_GRPC={addr}\n"));
        }
        None => text.push_str("# Flatcar: no matchbox gRPC API.\n"),
    }
    text
}

/// Write [`netboot_env`] to [`netboot_env_path`] (atomically, 0644);
/// returns its path and whether it changed (a running service then needs
/// a restart to read it).
pub fn write_netboot_env(
    state_dir: &Path,
    matchbox_grpc: Option<SocketAddr>,
) -> Result<(PathBuf, bool), Error> {
    let path = netboot_env_path(state_dir);
    let text = netboot_env(matchbox_grpc);
    if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
        return Ok((path, false));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
    }
    racker_fsutil::write_atomic(&path, text.as_bytes(), 0o644)
        .map_err(|e| Error::io("writing", &path, e))?;
    Ok((path, true))
}

/// `systemctl enable --now <unit>` (argument vector, exit code only).
pub fn enable_now(systemctl: &Path, unit: &str) -> Result<(), Error> {
    let status = Command::new(systemctl)
        .args(["enable", "--now", "--", unit])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .map_err(|e| Error::io("running", systemctl, e))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Service(format!(
            "{} enable --now {unit}: {status}",
            systemctl.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_file_is_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let ip = Ipv4Addr::new(172, 24, 213, 1);
        let (path, changed) = write_pxe_network(dir.path(), "eno2", ip, 24).unwrap();
        assert!(changed);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("Name=eno2\n") && text.contains("Address=172.24.213.1/24\n"));
        assert!(!write_pxe_network(dir.path(), "eno2", ip, 24).unwrap().1);
    }

    #[test]
    fn environment_file_keeps_the_grpc_api_for_lokomotive_only() {
        let dir = tempfile::tempdir().unwrap();
        let grpc: SocketAddr = "172.24.213.1:8081".parse().unwrap();
        let (path, changed) = write_netboot_env(dir.path(), Some(grpc)).unwrap();
        assert!(changed);
        assert_eq!(path, dir.path().join("netboot/service.env"));
        let text = std::fs::read_to_string(&path).unwrap();
        let settings: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(settings, ["RACKER_MATCHBOX_GRPC=172.24.213.1:8081"]);
        assert!(!write_netboot_env(dir.path(), Some(grpc)).unwrap().1);
        // A later Flatcar rack turns it off again.
        assert!(write_netboot_env(dir.path(), None).unwrap().1);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.lines().all(|l| l.starts_with('#')), "{text}");
    }
}
