//! What a bootstrap needs to know: plain data, no command-line types.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use racker_inventory::{AddressPlan, Inventory, MacAddr, Management, PublicIps, SelectionOptions};
use racker_lokomotive::RenderOptions;

use crate::lokoenv::LokomotiveEnv;
use crate::network::NetbootEndpoints;

/// The rack as racker sees it: nodes.csv, the management node found among
/// the local interfaces, and the address plan.
#[derive(Debug, Clone)]
pub struct Rack {
    /// The nodes.
    pub inventory: Inventory,
    /// The management node (this machine).
    pub management: Management,
    /// The internal addresses.
    pub plan: AddressPlan,
}

impl Rack {
    /// A rack from its parts.
    pub fn new(inventory: Inventory, management: Management, plan: AddressPlan) -> Self {
        Self {
            inventory,
            management,
            plan,
        }
    }
}

/// How the nodes reach racker's netboot services during the bootstrap.
#[derive(Debug, Clone)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // one per bootstrap; no boxing in the API
pub enum NetbootMode {
    /// Start DHCP, HTTP (and TFTP) in the bootstrap itself, here.
    Serve(NetbootEndpoints),
    /// A netboot service already runs (`racker netboot serve`) with the
    /// same state directory; its installer reports are read from there.
    External,
}

/// Everything a bootstrap needs. [`Config::new`] fills in the defaults of
/// `racker bootstrap`; set the public fields to change them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Racker's state directory (the state file, leases, reports, assets).
    pub state_dir: PathBuf,
    /// The rendered cluster configuration and the attempt logs
    /// (default: `<state-dir>/cluster`).
    pub cluster_dir: PathBuf,
    /// The rack.
    pub rack: Rack,
    /// What to install and how nodes are split into roles; its `exclude`
    /// list grows by the nodes an earlier run excluded.
    pub selection: SelectionOptions,
    /// BMC user and password.
    pub credentials: racker_ipmi::Credentials,
    /// How the cluster configuration is rendered.
    pub render: RenderOptions,
    /// Public addresses of the nodes (default: DHCP).
    pub public_ips: PublicIps,
    /// How many times failed nodes may be retried (default: 3).
    pub retries: u32,
    /// Nodes handled in parallel (default: 64).
    pub concurrency: usize,
    /// PXE request to installer report, per node (default: 30 min).
    pub install_timeout: Duration,
    /// Installed to OS up, per node; zero skips the wait (default: 15 min).
    pub os_timeout: Duration,
    /// Lokomotive: every node Ready after `lokoctl cluster apply` (default: 20 min).
    pub join_timeout: Duration,
    /// Lokomotive: the kubeconfig to follow joins with (default: the one
    /// lokoctl writes below `render.asset_dir`).
    pub kubeconfig: Option<PathBuf>,
    /// Lokomotive: the `lokoctl` binary (see [`find_lokoctl`](crate::find_lokoctl)).
    pub lokoctl: Option<PathBuf>,
    /// Lokomotive: the ssh-agent, hosts file and kubeconfig link lokoctl
    /// and kubectl rely on (default: none of them).
    pub lokomotive_env: LokomotiveEnv,
    /// IPMI: time per exchange, retransmissions included (default: 5 s).
    pub ipmi_timeout: Duration,
    /// IPMI UDP port of the BMCs (default: 623).
    pub ipmi_port: u16,
    /// Where BMCs answer instead of their lease or planned address (a
    /// simulated rack's loopback BMCs), by BMC MAC (default: none).
    pub bmc_overrides: BTreeMap<MacAddr, SocketAddr>,
    /// Netboot services (default: served on the PXE interface).
    pub netboot: NetbootMode,
    /// Check every boot file the nodes will request before any node is
    /// powered, and stop naming what is missing (default: on).
    pub preflight: bool,
    /// Hand the rack network over to a running `racker netboot serve`
    /// found in the state directory instead of binding a second server
    /// (default: on).
    pub use_running_service: bool,
}

impl Config {
    /// A bootstrap of `rack` as `selection` says, with `racker bootstrap`'s
    /// defaults, state in `state_dir`.
    pub fn new(
        state_dir: impl Into<PathBuf>,
        rack: Rack,
        selection: SelectionOptions,
        credentials: racker_ipmi::Credentials,
        render: RenderOptions,
    ) -> Self {
        let state_dir = state_dir.into();
        Self {
            cluster_dir: state_dir.join("cluster"),
            state_dir,
            rack,
            selection,
            credentials,
            render,
            public_ips: PublicIps::dhcp(),
            retries: DEFAULT_RETRIES,
            concurrency: DEFAULT_CONCURRENCY,
            install_timeout: Duration::from_secs(30 * 60),
            os_timeout: Duration::from_secs(15 * 60),
            join_timeout: Duration::from_secs(20 * 60),
            kubeconfig: None,
            lokoctl: None,
            lokomotive_env: LokomotiveEnv::new(),
            ipmi_timeout: Duration::from_secs(5),
            ipmi_port: racker_ipmi::DEFAULT_PORT,
            bmc_overrides: BTreeMap::new(),
            netboot: NetbootMode::Serve(NetbootEndpoints::new("/sys/class/net")),
            preflight: true,
            use_running_service: true,
        }
    }

    /// Install Lokomotive through `lokoctl` (see
    /// [`find_lokoctl`](crate::find_lokoctl)), with what lokoctl's SSH steps
    /// and kubectl need (docs/lokomotive.md): the management key
    /// `<state-dir>/ssh/id_ed25519`, the cluster's names in `hosts_file`,
    /// and the kubeconfig linked at `kubeconfig_link` (default:
    /// `<home>/.kube/config`, none without a home directory).
    pub fn lokomotive(
        &mut self,
        lokoctl: PathBuf,
        hosts_file: PathBuf,
        kubeconfig_link: Option<PathBuf>,
        home: Option<&OsStr>,
    ) {
        let mut env = LokomotiveEnv::new();
        env.ssh_key = Some(self.state_dir.join("ssh").join("id_ed25519"));
        env.hosts_file = Some(hosts_file);
        env.kubeconfig_link = kubeconfig_link.or_else(|| {
            home.filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".kube").join("config"))
        });
        self.lokomotive_env = env;
        self.lokoctl = Some(lokoctl);
    }

    /// Serve the netboot services in the bootstrap at `endpoints`. On a
    /// plain DHCP socket (simulator, tests) TFTP only runs when given an
    /// address. A Lokomotive bootstrap (call [`Config::lokomotive`] first)
    /// serves the matchbox gRPC API lokoctl's Terraform stores its
    /// profiles in (default: `<management internal IP>:8081`); a Flatcar
    /// one does not.
    pub fn serve_netboot(&mut self, mut endpoints: NetbootEndpoints) {
        let content = &mut endpoints.content;
        if endpoints.dhcp_listen.is_some() && content.tftp_listen.is_none() {
            content.without_tftp = true;
        }
        content.matchbox_grpc = match self.lokoctl {
            Some(_) => Some(content.matchbox_grpc.unwrap_or(SocketAddr::from((
                self.rack.plan.management_ip(),
                racker_netboot::matchbox_api::DEFAULT_GRPC_PORT,
            )))),
            None => None,
        };
        self.netboot = NetbootMode::Serve(endpoints);
    }

    /// The matchbox gRPC API a Lokomotive bootstrap serves (and hands over
    /// to `racker-netboot.service` for day-2 `lokoctl cluster apply`).
    pub fn matchbox_grpc(&self) -> Option<SocketAddr> {
        match &self.netboot {
            NetbootMode::Serve(endpoints) if self.lokoctl.is_some() => {
                endpoints.content.matchbox_grpc
            }
            _ => None,
        }
    }

    /// Check the values no bootstrap can run with.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.retries > MAX_RETRIES {
            return Err(ConfigError::Retries {
                retries: self.retries,
            });
        }
        if self.ipmi_timeout.is_zero() || self.ipmi_timeout > MAX_IPMI_TIMEOUT {
            return Err(ConfigError::IpmiTimeout {
                timeout: self.ipmi_timeout,
            });
        }
        Ok(())
    }
}

/// Retries of failed nodes by default.
pub const DEFAULT_RETRIES: u32 = 3;

/// Nodes handled in parallel by default.
pub const DEFAULT_CONCURRENCY: usize = 64;

/// Most retries of failed nodes: each one waits out the install timeout
/// again.
pub const MAX_RETRIES: u32 = 20;

/// Longest IPMI exchange timeout.
pub const MAX_IPMI_TIMEOUT: Duration = Duration::from_secs(3600);

/// A [`Config`] or [`RenderChoices`](crate::RenderChoices) value no
/// bootstrap or render can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// More retries than [`MAX_RETRIES`].
    #[error("{retries} retries: at most {MAX_RETRIES} (each waits out the install timeout again)")]
    Retries {
        /// The retries asked for.
        retries: u32,
    },
    /// An IPMI timeout of zero or above [`MAX_IPMI_TIMEOUT`].
    #[error("IPMI timeout {timeout:?}: expected more than 0 and at most 1h")]
    IpmiTimeout {
        /// The timeout asked for.
        timeout: Duration,
    },
    /// Backups to a bucket without an access key id.
    #[error("--backup-bucket needs RACKER_BACKUP_ACCESS_KEY_ID (or --backup-access-key-id)")]
    BackupKeyIdMissing,
    /// Backups to a bucket without the secret access key.
    #[error("--backup-bucket needs the RACKER_BACKUP_SECRET_ACCESS_KEY environment variable")]
    BackupSecretMissing,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::Path;

    fn config(dir: &Path) -> Config {
        Config::new(
            dir.join("state"),
            crate::testutil::rack(dir, &[crate::testutil::MGMT]),
            SelectionOptions::default(),
            racker_ipmi::Credentials::new("ADMIN", "secret"),
            RenderOptions::new(vec!["ssh-ed25519 AAAA key".into()]),
        )
    }

    #[test]
    fn defaults_are_racker_bootstraps() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path());
        assert_eq!(c.cluster_dir, dir.path().join("state/cluster"));
        assert_eq!((c.retries, c.concurrency), (3, 64));
        assert_eq!(c.install_timeout, Duration::from_secs(1800));
        assert_eq!(c.matchbox_grpc(), None);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn lokomotive_serves_the_matchbox_api_and_flatcar_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path());
        let mut endpoints = NetbootEndpoints::new("/sys/class/net");
        endpoints.content.matchbox_grpc = Some("127.0.0.1:9".parse().unwrap());
        c.serve_netboot(endpoints.clone());
        assert_eq!(c.matchbox_grpc(), None, "Flatcar serves no gRPC API");
        c.lokomotive(
            "/usr/bin/lokoctl".into(),
            "/etc/hosts".into(),
            None,
            Some(OsStr::new("/home/op")),
        );
        assert_eq!(
            c.lokomotive_env.kubeconfig_link,
            Some(PathBuf::from("/home/op/.kube/config"))
        );
        assert_eq!(
            c.lokomotive_env.ssh_key,
            Some(dir.path().join("state/ssh/id_ed25519"))
        );
        endpoints.content.matchbox_grpc = None;
        c.serve_netboot(endpoints.clone());
        assert_eq!(
            c.matchbox_grpc(),
            Some("172.24.213.1:8081".parse().unwrap())
        );
        let NetbootMode::Serve(e) = &c.netboot else {
            panic!("served")
        };
        assert!(!e.content.without_tftp, "TFTP on the interface");
        // DHCP on a plain socket: TFTP only when given an address.
        endpoints.dhcp_listen = Some("127.0.0.1:6767".parse().unwrap());
        c.serve_netboot(endpoints);
        let NetbootMode::Serve(e) = &c.netboot else {
            panic!("served")
        };
        assert!(e.content.without_tftp);
    }

    proptest! {
        /// Validation never panics, accepts exactly the values in range,
        /// and an accepted config keeps the values it was given.
        #[test]
        fn validation_accepts_exactly_the_ranges(
            retries in 0u32..100,
            timeout_ms in 0u64..4_000_000,
            concurrency in 0usize..1000,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut c = config(dir.path());
            c.retries = retries;
            c.ipmi_timeout = Duration::from_millis(timeout_ms);
            c.concurrency = concurrency;
            let in_range = retries <= MAX_RETRIES
                && timeout_ms > 0
                && Duration::from_millis(timeout_ms) <= MAX_IPMI_TIMEOUT;
            match c.validate() {
                Ok(()) => {
                    prop_assert!(in_range);
                    prop_assert_eq!(c.retries, retries);
                    prop_assert_eq!(c.ipmi_timeout, Duration::from_millis(timeout_ms));
                    prop_assert_eq!(c.concurrency, concurrency);
                }
                Err(e) => {
                    prop_assert!(!in_range);
                    prop_assert!(!e.to_string().is_empty());
                }
            }
        }
    }
}
