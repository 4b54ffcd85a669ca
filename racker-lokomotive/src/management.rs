//! The management node's own install (docs/lokomotive.md, "Installing the
//! management node"): the counterpart of the original racker's
//! `management-node-ipxe/`. An iPXE script boots Flatcar's PXE image with an
//! Ignition config whose installer unit writes Flatcar to the smallest disk,
//! sets the installed system's kernel console (and autologin) in the OEM
//! partition's `grub.cfg`, sets persistent EFI disk boot in-band through
//! `/dev/ipmi0` with racker's own binary (downloaded by Ignition and checked
//! against its SHA-512; a stock Flatcar has no ipmitool), and reboots.
//!
//! Every program the installer runs is in a stock Flatcar image
//! ([`crate::commands`]) or is the verified racker binary.

use crate::error::RenderError;
use crate::escape::{data_url, is_token};
use crate::ignition::{
    Config, File, IGNITION_VERSION, IgnitionMeta, Passwd, Resource, Storage, Systemd, Unit, User,
    Verification,
};
use crate::options::validate_ssh_key;
use crate::tree::Tree;

/// Upstream Flatcar stable release (the original's default).
pub const FLATCAR_STABLE: &str = "https://stable.release.flatcar-linux.net/amd64-usr/current";
/// The iPXE script's file name.
pub const IPXE_FILE: &str = "install.ipxe";
/// The Ignition config's file name.
pub const IGNITION_FILE: &str = "install-ignition.json";
/// Where Ignition puts racker's binary on the PXE-booted system.
pub const RACKER_PATH: &str = "/opt/bin/racker";
/// Path of the installer script.
pub const INSTALLER_PATH: &str = "/opt/installer";

/// racker's binary for the in-band IPMI step: where the node downloads it
/// and its SHA-512 (lowercase hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RackerBinary {
    /// URL (`http(s)://`).
    pub url: String,
    /// SHA-512 of the file, 128 lowercase hex digits.
    pub sha512: String,
}

/// What the management node's install needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManagementInstall {
    /// Where Flatcar's PXE kernel and initrd are
    /// (`flatcar_production_pxe.vmlinuz`, `flatcar_production_pxe_image.cpio.gz`)
    /// [default: [`FLATCAR_STABLE`]].
    pub pxe_base_url: String,
    /// `flatcar-install -b`: where the disk image is [default: none,
    /// flatcar-install downloads the stable release itself].
    pub image_base_url: Option<String>,
    /// Where the node fetches [`IGNITION_FILE`] (the URL of the directory
    /// the two files are served from, no trailing slash).
    pub served_from: String,
    /// Kernel console arguments of the installer and the installed system
    /// [default: the original's `ttyS1,57600n8`].
    pub kernel_console: Vec<String>,
    /// Log in automatically on the console (the original did).
    pub autologin: bool,
    /// SSH keys for the `core` user.
    pub ssh_public_keys: Vec<String>,
    /// racker's binary for persistent EFI disk boot in-band; without it the
    /// installer says to set the boot order in the firmware setup.
    pub racker: Option<RackerBinary>,
}

impl ManagementInstall {
    /// An install served from `served_from`, with the original's defaults.
    pub fn new(served_from: impl Into<String>) -> Self {
        Self {
            pxe_base_url: FLATCAR_STABLE.to_owned(),
            image_base_url: None,
            served_from: served_from.into(),
            kernel_console: crate::options::DEFAULT_KERNEL_CONSOLE
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            autologin: true,
            ssh_public_keys: Vec::new(),
            racker: None,
        }
    }

    fn validate(&self) -> Result<(), RenderError> {
        let url = |what: &str, u: &str| {
            let ok = (u.starts_with("http://") || u.starts_with("https://"))
                && u.len() > 8
                && u.chars()
                    .all(|c| c.is_ascii_graphic() && !"'\"`\\$;<>|&".contains(c));
            if ok {
                Ok(())
            } else {
                Err(RenderError::InvalidValue {
                    what: what.to_owned(),
                    value: u.to_owned(),
                    reason: "must be an http(s) URL without quotes, spaces or shell characters",
                })
            }
        };
        url("PXE base URL", &self.pxe_base_url)?;
        url("served-from URL", &self.served_from)?;
        if let Some(u) = &self.image_base_url {
            url("image base URL", u)?;
        }
        if let Some(r) = &self.racker {
            url("racker binary URL", &r.url)?;
            if r.sha512.len() != 128 || !r.sha512.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(RenderError::InvalidValue {
                    what: "racker binary SHA-512".to_owned(),
                    value: r.sha512.clone(),
                    reason: "must be 128 hex digits",
                });
            }
        }
        for arg in &self.kernel_console {
            if !is_token(arg) {
                return Err(RenderError::InvalidValue {
                    what: "kernel console argument".to_owned(),
                    value: arg.clone(),
                    reason: "must be a single word without quotes or shell characters",
                });
            }
        }
        for key in &self.ssh_public_keys {
            validate_ssh_key(key)?;
        }
        Ok(())
    }
}

/// The iPXE script (as the original's `install.ipxe`, with this rack's
/// console and URLs).
pub fn ipxe_script(install: &ManagementInstall) -> Result<String, RenderError> {
    install.validate()?;
    let base = install.pxe_base_url.trim_end_matches('/');
    let console = install.kernel_console.join(" ");
    let autologin = if install.autologin {
        " flatcar.autologin"
    } else {
        ""
    };
    Ok(format!(
        "#!ipxe
# Installs Flatcar on racker's management node (docs/lokomotive.md).
set base-url {base}
kernel ${{base-url}}/flatcar_production_pxe.vmlinuz initrd=flatcar_production_pxe_image.cpio.gz flatcar.first_boot=1 {console}{autologin} ignition.config.url={served}/{IGNITION_FILE}
initrd ${{base-url}}/flatcar_production_pxe_image.cpio.gz
boot
",
        served = install.served_from.trim_end_matches('/'),
    ))
}

/// The installer script the PXE-booted Flatcar runs.
pub fn installer_script(install: &ManagementInstall) -> Result<String, RenderError> {
    install.validate()?;
    let image = install
        .image_base_url
        .as_deref()
        .map(|u| format!(" -b {}", u.trim_end_matches('/')))
        .unwrap_or_default();
    let append = if install.autologin {
        "echo 'set linux_append=\"flatcar.autologin\"' >> /tmp/oemfs/grub.cfg\n"
    } else {
        ""
    };
    let console = install.kernel_console.join(" ");
    let disk_boot = if install.racker.is_some() {
        format!(
            "# Persistent EFI disk boot, in-band through /dev/ipmi0 with racker's
# own binary (Ignition checked its SHA-512): the boot-flag timer off
# first, or some BMCs drop the flags after 60 s.
modprobe ipmi_devintf || true
modprobe ipmi_si || true
{RACKER_PATH} ipmi --local boot-timeout off
{RACKER_PATH} ipmi --local bootdev disk
"
        )
    } else {
        "echo 'racker: set the boot order to the disk in the firmware setup (no racker binary was served for the in-band IPMI step)'\n".to_owned()
    };
    Ok(format!(
        "#!/bin/bash
# Rendered by racker {version}: installs Flatcar on the management node.
set -euxo pipefail
# Unmount leftovers of an earlier attempt before the disk is rewritten.
umount /tmp/oemfs || true
flatcar-install -s{image}
udevadm settle
oem=$(blkid -t LABEL=OEM -o device | head -n 1)
mkdir -p /tmp/oemfs
mount \"$oem\" /tmp/oemfs
{append}echo 'set linux_console=\"{console}\"' >> /tmp/oemfs/grub.cfg
umount /tmp/oemfs
{disk_boot}systemctl reboot
",
        version = env!("CARGO_PKG_VERSION"),
    ))
}

/// The Ignition config of the PXE-booted installer.
pub fn ignition_config(install: &ManagementInstall) -> Result<Config, RenderError> {
    let script = installer_script(install)?;
    let mut files = vec![File {
        path: INSTALLER_PATH.to_owned(),
        overwrite: Some(true),
        mode: Some(0o755),
        contents: Some(Resource {
            source: data_url(script.as_bytes()),
            verification: None,
        }),
    }];
    if let Some(r) = &install.racker {
        files.push(File {
            path: RACKER_PATH.to_owned(),
            overwrite: Some(true),
            mode: Some(0o755),
            contents: Some(Resource {
                source: r.url.clone(),
                verification: Some(Verification {
                    hash: format!("sha512-{}", r.sha512.to_ascii_lowercase()),
                }),
            }),
        });
    }
    let unit = format!(
        "[Unit]
Description=Install Flatcar Container Linux on the management node (racker)
Requires=network-online.target
After=network-online.target
[Service]
Type=oneshot
RemainAfterExit=true
Restart=on-failure
RestartSec=10s
ExecStart={INSTALLER_PATH}
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
        passwd: (!install.ssh_public_keys.is_empty()).then(|| Passwd {
            users: vec![User {
                name: "core".to_owned(),
                ssh_authorized_keys: install.ssh_public_keys.clone(),
            }],
        }),
        storage: Some(Storage { files }),
        systemd: Some(Systemd {
            units: vec![Unit {
                name: "installer.service".to_owned(),
                enabled: Some(true),
                contents: Some(unit),
            }],
        }),
    })
}

/// Both files, [`IPXE_FILE`] and [`IGNITION_FILE`].
pub fn render_management_install(install: &ManagementInstall) -> Result<Tree, RenderError> {
    let mut tree = Tree::new();
    tree.insert(IPXE_FILE, ipxe_script(install)?, crate::render::FILE_MODE);
    tree.insert(
        IGNITION_FILE,
        ignition_config(install)?.to_json()?,
        crate::render::FILE_MODE,
    );
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn install() -> ManagementInstall {
        let mut i = ManagementInstall::new("http://192.168.1.10:8080/assets/management-node");
        i.racker = Some(RackerBinary {
            url: "http://192.168.1.10:8080/assets/management-node/racker".to_owned(),
            sha512: "ab".repeat(64),
        });
        i
    }

    #[test]
    fn ipxe_matches_the_original_with_this_racks_console() {
        let script = ipxe_script(&install()).unwrap();
        assert!(script.starts_with("#!ipxe\n"), "{script}");
        assert!(
            script.contains(
                "set base-url https://stable.release.flatcar-linux.net/amd64-usr/current"
            ),
            "{script}"
        );
        assert!(script.contains("flatcar.first_boot=1 console=ttyS1,57600n8 earlyprintk=serial,ttyS1,57600n8 flatcar.autologin ignition.config.url=http://192.168.1.10:8080/assets/management-node/install-ignition.json"), "{script}");
        assert!(script.contains("initrd ${base-url}/flatcar_production_pxe_image.cpio.gz\nboot\n"));
    }

    #[test]
    fn installer_sets_console_and_disk_boot_in_band() {
        let script = installer_script(&install()).unwrap();
        assert!(script.contains("flatcar-install -s\n"), "{script}");
        assert!(script.contains(
            "echo 'set linux_console=\"console=ttyS1,57600n8 earlyprintk=serial,ttyS1,57600n8\"' >> /tmp/oemfs/grub.cfg"
        ));
        assert!(script.contains("/opt/bin/racker ipmi --local boot-timeout off\n/opt/bin/racker ipmi --local bootdev disk\n"));
        assert!(script.ends_with("systemctl reboot\n"));
        let mut without = install();
        without.racker = None;
        without.image_base_url = Some("http://10.0.0.1:8080/assets/flatcar/".to_owned());
        let script = installer_script(&without).unwrap();
        assert!(!script.contains("ipmi"), "{script}");
        assert!(script.contains("flatcar-install -s -b http://10.0.0.1:8080/assets/flatcar\n"));
    }

    #[test]
    fn the_binary_is_verified_by_ignition() {
        let config = ignition_config(&install()).unwrap();
        let racker = config.file(RACKER_PATH).unwrap();
        let contents = racker.contents.as_ref().unwrap();
        assert_eq!(
            contents.verification.as_ref().unwrap().hash,
            format!("sha512-{}", "ab".repeat(64))
        );
        assert!(config.unit("installer.service").unwrap().enabled == Some(true));
    }

    #[test]
    fn the_installer_runs_only_flatcar_programs_and_the_verified_binary() {
        let config = ignition_config(&install()).unwrap();
        let commands = crate::commands::config_commands(IGNITION_FILE, &config);
        assert!(commands.iter().any(|c| c.program == "flatcar-install"));
        assert!(
            commands.iter().any(|c| c.program == RACKER_PATH),
            "{commands:#?}"
        );
        for c in &commands {
            assert!(
                crate::commands::is_allowed(&c.program) || c.program == RACKER_PATH,
                "{c:?}"
            );
        }
    }

    #[test]
    fn hostile_input_is_refused() {
        for bad in [
            "ftp://x/y",
            "http://x/'; rm -rf /",
            "http://x/$(reboot)",
            "http://x y",
        ] {
            let mut i = install();
            i.served_from = bad.to_owned();
            assert!(ipxe_script(&i).is_err(), "{bad}");
        }
        let mut i = install();
        i.racker.as_mut().unwrap().sha512 = "zz".repeat(64);
        assert!(ignition_config(&i).is_err());
        let mut i = install();
        i.kernel_console = vec!["console=ttyS0;reboot".to_owned()];
        assert!(installer_script(&i).is_err());
    }
}
