//! Ignition spec 3.3 configuration, as typed serde structs (the subset
//! racker writes; unknown fields are refused when reading one back), and the
//! two per-node profiles racker's netboot server hands out.
//!
//! * `install`: what the PXE-booted Flatcar runs: install Flatcar to the
//!   smallest disk with the node's OS config, set the kernel console of the
//!   installed system, report `installed` to the netboot server (which then
//!   sets persistent EFI disk boot over IPMI LAN: nothing on the node talks
//!   to its BMC, docs/rendering.md), reboot.
//! * `os`: the installed system: `core` user with the SSH keys, host name,
//!   `/etc/hosts`, the networkd units, resolv.conf on systemd-resolved and
//!   the up report.

use serde::{Deserialize, Serialize};

use crate::error::RenderError;
use crate::escape::data_url;
use crate::spec::{ClusterSpec, NodeSpec};
use crate::units;

/// The Ignition spec version racker writes (Flatcar ≥ 3185 reads it).
pub const IGNITION_VERSION: &str = "3.3.0";

/// A complete Ignition config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// Metadata (version).
    pub ignition: IgnitionMeta,
    /// Kernel arguments to ensure on the installed system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_arguments: Option<KernelArguments>,
    /// Users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passwd: Option<Passwd>,
    /// Files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<Storage>,
    /// systemd units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd: Option<Systemd>,
}

/// `ignition` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IgnitionMeta {
    /// Spec version, e.g. `3.3.0`.
    pub version: String,
}

/// `kernelArguments` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KernelArguments {
    /// Arguments that must be present.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub should_exist: Vec<String>,
}

/// `passwd` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Passwd {
    /// Users to create or amend.
    pub users: Vec<User>,
}

/// One user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct User {
    /// User name.
    pub name: String,
    /// Authorised SSH keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ssh_authorized_keys: Vec<String>,
}

/// `storage` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Storage {
    /// Files to write.
    pub files: Vec<File>,
}

/// One file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct File {
    /// Absolute path.
    pub path: String,
    /// Replace an existing file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overwrite: Option<bool>,
    /// Mode (decimal in JSON, e.g. 420 for 0644).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    /// Contents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contents: Option<Resource>,
}

/// A file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resource {
    /// URL (`data:` URLs for racker's own files).
    pub source: String,
    /// The expected hash of what `source` yields (downloads only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
}

/// A download's expected hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Verification {
    /// `sha512-<hex>` (or `sha256-<hex>`).
    pub hash: String,
}

/// `systemd` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Systemd {
    /// Units.
    pub units: Vec<Unit>,
}

/// One systemd unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Unit {
    /// Unit name.
    pub name: String,
    /// Enable it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Unit file contents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contents: Option<String>,
}

impl Config {
    /// Serialise as pretty JSON with a trailing newline.
    pub fn to_json(&self) -> Result<String, RenderError> {
        let mut s = serde_json::to_string_pretty(self).map_err(|source| RenderError::Json {
            what: "Ignition config".to_owned(),
            source,
        })?;
        s.push('\n');
        Ok(s)
    }

    /// The file at `path`, if any.
    pub fn file(&self, path: &str) -> Option<&File> {
        self.storage.as_ref()?.files.iter().find(|f| f.path == path)
    }

    /// The unit called `name`, if any.
    pub fn unit(&self, name: &str) -> Option<&Unit> {
        self.systemd.as_ref()?.units.iter().find(|u| u.name == name)
    }
}

fn file(path: &str, mode: u32, contents: &[u8]) -> File {
    File {
        path: path.to_owned(),
        overwrite: Some(true),
        mode: Some(mode),
        contents: Some(Resource {
            source: data_url(contents),
            verification: None,
        }),
    }
}

fn core_user(spec: &ClusterSpec) -> Passwd {
    Passwd {
        users: vec![User {
            name: "core".to_owned(),
            ssh_authorized_keys: spec.ssh_public_keys.clone(),
        }],
    }
}

/// The texts every node shares (rendered once per cluster).
#[derive(Debug, Clone)]
pub(crate) struct Common {
    pub(crate) hosts: String,
    pub(crate) resolve_netdev: String,
    pub(crate) resolve_network: String,
    pub(crate) resolved: String,
    pub(crate) resolv_conf: String,
}

impl Common {
    pub(crate) fn new(spec: &ClusterSpec) -> Result<Self, RenderError> {
        Ok(Self {
            hosts: units::etc_hosts(spec)?,
            resolve_netdev: units::resolve_netdev(spec)?,
            resolve_network: units::resolve_network(spec)?,
            resolved: units::resolved_dropin(spec)?,
            resolv_conf: units::resolv_conf_service(spec)?,
        })
    }
}

/// The installed system's config for `node`.
pub fn os_config(spec: &ClusterSpec, node: &NodeSpec) -> Result<Config, RenderError> {
    os_config_with(&Common::new(spec)?, spec, node)
}

pub(crate) fn os_config_with(
    common: &Common,
    spec: &ClusterSpec,
    node: &NodeSpec,
) -> Result<Config, RenderError> {
    let net = |unit: &str| format!("/etc/systemd/network/{unit}");
    let mut files = vec![
        file(
            "/etc/hostname",
            0o644,
            format!("{}\n", node.name).as_bytes(),
        ),
        file("/etc/hosts", 0o644, common.hosts.as_bytes()),
        file(
            &net(units::INTERNAL_NETWORK_UNIT),
            0o644,
            units::internal_network(spec, node)?.as_bytes(),
        ),
        file(
            &net(units::RESOLVE_NETDEV_UNIT),
            0o644,
            common.resolve_netdev.as_bytes(),
        ),
        file(
            &net(units::RESOLVE_NETWORK_UNIT),
            0o644,
            common.resolve_network.as_bytes(),
        ),
        file(
            units::RESOLVED_DROPIN_PATH,
            0o644,
            common.resolved.as_bytes(),
        ),
    ];
    if let Some(unit) = units::public_network(spec, node)? {
        files.push(file(
            &net(units::PUBLIC_NETWORK_UNIT),
            0o644,
            unit.as_bytes(),
        ));
    }
    Ok(Config {
        ignition: IgnitionMeta {
            version: IGNITION_VERSION.to_owned(),
        },
        kernel_arguments: (!spec.kernel_console.is_empty()).then(|| KernelArguments {
            should_exist: spec.kernel_console.clone(),
        }),
        passwd: Some(core_user(spec)),
        storage: Some(Storage { files }),
        systemd: Some(Systemd {
            units: vec![
                Unit {
                    name: units::RESOLV_CONF_UNIT.to_owned(),
                    enabled: Some(true),
                    contents: Some(common.resolv_conf.clone()),
                },
                Unit {
                    name: REPORT_UP_UNIT.to_owned(),
                    enabled: Some(true),
                    contents: Some(report_up_unit(spec, node)),
                },
            ],
        }),
    })
}

/// The unit of the installed OS that tells racker it is up.
pub const REPORT_UP_UNIT: &str = "racker-report-up.service";

/// `racker-report-up.service` for `node`: once the network is online after
/// every boot, POST `stage=up` to the netboot server (`racker bootstrap`
/// waits for it; failures only delay it, never the boot).
pub fn report_up_unit(spec: &ClusterSpec, node: &NodeSpec) -> String {
    format!(
        "[Unit]
Description=Tell racker that this node is up
Wants=network-online.target
After=network-online.target
[Service]
Type=oneshot
ExecStart=/usr/bin/curl --silent --show-error --fail --retry 10 --retry-delay 3 --retry-connrefused -X POST \"{url}/report?mac={mac}&stage=up{token}\"
StandardOutput=journal+console
[Install]
WantedBy=multi-user.target
",
        url = spec.netboot_url(),
        mac = node.mac,
        token = spec.report_token_query(node.mac),
    )
}

/// Path of the installer script inside the install profile.
pub const INSTALL_SCRIPT_PATH: &str = "/opt/racker/install";
/// Path of the OS config handed to `flatcar-install` inside the install profile.
pub const INSTALL_OS_CONFIG_PATH: &str = "/opt/racker/os.ign";
/// Where the installer keeps the image-signing key it fetched from racker.
pub const INSTALL_KEY_PATH: &str = "/tmp/racker-image-signing-key.asc";
/// File name of the image-signing key next to each release in racker's
/// assets (`/assets/flatcar/<version>/`, written by `racker netboot
/// fetch-assets` with the key it verified the release with).
pub const IMAGE_SIGNING_KEY_FILE: &str = "Flatcar_Image_Signing_Key.asc";
/// The installer unit.
pub const INSTALL_UNIT: &str = "racker-install.service";

/// The installer script for `node`: report `installing`, fetch the
/// image-signing key racker serves, install to the smallest disk, set the
/// installed system's kernel console in the OEM partition's `grub.cfg` (as
/// the original racker did), report `installed`, reboot. It runs only
/// programs of a stock Flatcar image ([`crate::commands`]); persistent EFI
/// disk boot is set by racker over IPMI LAN when the report arrives.
pub fn install_script(spec: &ClusterSpec, node: &NodeSpec) -> String {
    let url = spec.netboot_url();
    let mac = node.mac;
    // Kernel console arguments are validated tokens: safe inside quotes.
    let console = if spec.kernel_console.is_empty() {
        String::new()
    } else {
        format!(
            "# Kernel console of the installed system (Flatcar's GRUB reads the OEM
# partition's grub.cfg).
udevadm settle
oem=$(blkid -t LABEL=OEM -o device | head -n 1)
mkdir -p /tmp/oemfs
mount \"$oem\" /tmp/oemfs
echo 'set linux_console=\"{args}\"' >> /tmp/oemfs/grub.cfg
umount /tmp/oemfs
",
            args = spec.kernel_console.join(" ")
        )
    };
    format!(
        "#!/bin/bash
# Rendered by racker {version}: installs Flatcar on {name} ({mac}).
set -euo pipefail
# report STAGE [REASON]: the reason goes in the body (racker keeps it).
report() {{
  curl --silent --show-error --fail --retry 10 --retry-delay 3 -X POST \\
    --data-binary \"${{2:-}}\" \"{url}/report?mac={mac}&stage=$1{token}\" || true
}}
trap 'report failed \"line $LINENO: $BASH_COMMAND\"' ERR
report installing
# The key racker verified this release with: flatcar-install checks the
# signature of the image against it (its built-in key may be older than
# the release).
curl --silent --show-error --fail --retry 10 --retry-delay 3 \
  -o {key_path} {url}/assets/flatcar/current/{key_file}
flatcar-install -s -b {url}/assets/flatcar -V current -k {key_path} -i {os_config}
{console}# racker sets persistent EFI disk boot over IPMI LAN when it sees this report.
report installed
systemctl reboot
",
        version = spec.racker_version,
        name = node.name,
        os_config = INSTALL_OS_CONFIG_PATH,
        key_path = INSTALL_KEY_PATH,
        key_file = IMAGE_SIGNING_KEY_FILE,
        token = spec.report_token_query(mac),
    )
}

/// The install-time config for `node` (embeds its OS config).
pub fn install_config(spec: &ClusterSpec, node: &NodeSpec) -> Result<Config, RenderError> {
    install_config_with(&os_config(spec, node)?.to_json()?, spec, node)
}

/// The install-time config embedding the already serialised OS config.
pub(crate) fn install_config_with(
    os: &str,
    spec: &ClusterSpec,
    node: &NodeSpec,
) -> Result<Config, RenderError> {
    let unit = format!(
        "[Unit]
Description=Install Flatcar Container Linux to disk (racker)
Wants=network-online.target
After=network-online.target
[Service]
Type=oneshot
ExecStart={INSTALL_SCRIPT_PATH}
StandardOutput=journal+console
[Install]
WantedBy=multi-user.target
"
    );
    Ok(Config {
        ignition: IgnitionMeta {
            version: IGNITION_VERSION.to_owned(),
        },
        kernel_arguments: None,
        passwd: Some(core_user(spec)),
        storage: Some(Storage {
            files: vec![
                file(
                    INSTALL_SCRIPT_PATH,
                    0o755,
                    install_script(spec, node).as_bytes(),
                ),
                file(INSTALL_OS_CONFIG_PATH, 0o600, os.as_bytes()),
            ],
        }),
        systemd: Some(Systemd {
            units: vec![Unit {
                name: INSTALL_UNIT.to_owned(),
                enabled: Some(true),
                contents: Some(unit),
            }],
        }),
    })
}
