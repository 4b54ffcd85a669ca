//! The management node's own install (`racker netboot management-node`,
//! docs/lokomotive.md "Installing the management node"): racker-lokomotive
//! renders the iPXE script and Ignition; this writes them, with racker's
//! own binary, where the node fetches them.

use std::path::{Path, PathBuf};

use racker_lokomotive::management::{FLATCAR_STABLE, IGNITION_FILE, IPXE_FILE};
use racker_lokomotive::{ManagementInstall, RackerBinary, render_management_install};
use sha2::{Digest as _, Sha512};

use crate::fsutil::write_atomic;
use crate::{Error, Result};

/// Where the install files go and where the node fetches them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManagementTarget {
    /// Into `<state-dir>/assets/management-node/`, served by `racker
    /// netboot serve` at this base URL (its `/assets/` endpoint).
    Served {
        /// Base URL of the racker HTTP server, e.g. `http://192.168.1.10:8080`.
        base_url: String,
    },
    /// Into `out`, served by something else from `served_from`.
    Dir {
        /// The folder.
        out: PathBuf,
        /// The URL of that folder.
        served_from: String,
    },
}

impl ManagementTarget {
    /// The target the options name: `out` with `served_from`, or
    /// `base_url` (racker's own server); anything else is an error saying
    /// what to give.
    pub fn choose(
        out: Option<PathBuf>,
        served_from: Option<String>,
        base_url: Option<String>,
    ) -> Result<Self> {
        match (out, served_from, base_url) {
            (Some(out), Some(served_from), _) => Ok(Self::Dir { out, served_from }),
            (None, None, Some(base_url)) => Ok(Self::Served { base_url }),
            _ => Err(Error::Config(
                "say where the management node installs from: --base-url URL (racker netboot serve \
                 on another machine), or --out DIR with --served-from URL"
                    .to_owned(),
            )),
        }
    }
}

/// What to put into the management node's install.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ManagementNodeOptions {
    /// Where the files go.
    pub target: ManagementTarget,
    /// Where the Flatcar PXE kernel and initrd are (default: racker's
    /// `/assets/flatcar/current` when the state directory has them, else
    /// the upstream stable release).
    pub pxe_url: Option<String>,
    /// `flatcar-install -b` (default: racker's `/assets/flatcar` when the
    /// state directory has the image, else flatcar-install's own download).
    pub image_url: Option<String>,
    /// Kernel console arguments (empty: the rack's default).
    pub kernel_console: Vec<String>,
    /// Log in automatically on the console.
    pub autologin: bool,
    /// SSH public keys of the `core` user.
    pub ssh_public_keys: Vec<String>,
    /// racker's binary to ship for the in-band persistent EFI disk boot
    /// (`None`: leave it out).
    pub racker_binary: Option<PathBuf>,
}

impl ManagementNodeOptions {
    /// Options for `target`, everything else at its default (autologin on,
    /// no binary).
    pub fn new(target: ManagementTarget) -> Self {
        Self {
            target,
            pxe_url: None,
            image_url: None,
            kernel_console: Vec::new(),
            autologin: true,
            ssh_public_keys: Vec::new(),
            racker_binary: None,
        }
    }
}

/// What [`write_management_install`] wrote.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ManagementNodeWritten {
    /// The folder holding the files.
    pub out: PathBuf,
    /// The URL the node fetches that folder from.
    pub served_from: String,
    /// The install as rendered (PXE and image URLs).
    pub install: ManagementInstall,
    /// The files are served by racker's own HTTP server.
    pub served_by_racker: bool,
}

impl ManagementNodeWritten {
    /// What was written and how the node boots from it, for people (the
    /// first line marked `✓ `).
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![
            format!(
                "✓ management node install written to {} ({IPXE_FILE}, {IGNITION_FILE}{})",
                self.out.display(),
                if self.install.racker.is_some() {
                    ", racker"
                } else {
                    ""
                }
            ),
            format!("  Flatcar PXE image from {}", self.install.pxe_base_url),
            match &self.install.image_base_url {
                Some(u) => format!("  disk image from {u}"),
                None => "  disk image: flatcar-install downloads the stable release".to_owned(),
            },
            format!(
                "  In the management node's iPXE shell:\n    dhcp && chain {}/{IPXE_FILE}",
                self.served_from
            ),
        ];
        if self.served_by_racker {
            out.push("  Serve it with: racker netboot serve (the /assets/ endpoint)".to_owned());
        }
        out
    }
}

/// Render and write the management node's install (see
/// [`ManagementNodeOptions`]); `state_dir` holds racker's assets.
pub fn write_management_install(
    state_dir: &Path,
    options: &ManagementNodeOptions,
) -> Result<ManagementNodeWritten> {
    let assets = state_dir.join("assets");
    let (out, served_from, base) = match &options.target {
        ManagementTarget::Dir { out, served_from } => (
            out.clone(),
            served_from.trim_end_matches('/').to_owned(),
            None,
        ),
        ManagementTarget::Served { base_url } => {
            let base = base_url.trim_end_matches('/').to_owned();
            (
                assets.join("management-node"),
                format!("{base}/assets/management-node"),
                Some(base),
            )
        }
    };
    let mut install = ManagementInstall::new(served_from.clone());
    let flatcar = assets.join("flatcar").join("current");
    install.pxe_base_url = match (&options.pxe_url, &base) {
        (Some(url), _) => url.clone(),
        (None, Some(base)) if flatcar.join("flatcar_production_pxe.vmlinuz").is_file() => {
            format!("{base}/assets/flatcar/current")
        }
        _ => FLATCAR_STABLE.to_owned(),
    };
    install.image_base_url = match (&options.image_url, &base) {
        (Some(url), _) => Some(url.clone()),
        (None, Some(base)) if flatcar.join("flatcar_production_image.bin.bz2").is_file() => {
            Some(format!("{base}/assets/flatcar"))
        }
        _ => None,
    };
    if !options.kernel_console.is_empty() {
        install.kernel_console.clone_from(&options.kernel_console);
    }
    install.autologin = options.autologin;
    install
        .ssh_public_keys
        .extend(options.ssh_public_keys.iter().cloned());
    std::fs::create_dir_all(&out).map_err(|e| Error::io("creating", &out, e))?;
    if let Some(exe) = &options.racker_binary {
        // The node runs it for the in-band IPMI step.
        let bytes = std::fs::read(exe).map_err(|e| Error::io("reading", exe, e))?;
        let sha512 = Sha512::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        write_atomic(&out.join("racker"), &bytes, 0o755)?;
        install.racker = Some(RackerBinary {
            url: format!("{served_from}/racker"),
            sha512,
        });
    }
    let tree = render_management_install(&install)?;
    tree.write_to(&out)?;
    Ok(ManagementNodeWritten {
        out,
        served_from,
        install,
        served_by_racker: base.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_need_a_folder_and_its_url_or_a_base_url() {
        assert!(matches!(
            ManagementTarget::choose(None, None, Some("http://x".into())),
            Ok(ManagementTarget::Served { .. })
        ));
        assert!(matches!(
            ManagementTarget::choose(Some("o".into()), Some("http://y".into()), None),
            Ok(ManagementTarget::Dir { .. })
        ));
        let err = ManagementTarget::choose(None, None, None).unwrap_err();
        assert!(err.to_string().starts_with("say where the management node installs from: --base-url URL (racker netboot serve on another machine)"), "{err}");
    }

    #[test]
    fn served_installs_use_racker_assets_when_present() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path();
        let target = ManagementTarget::Served {
            base_url: "http://192.168.1.10:8080/".into(),
        };
        let written =
            write_management_install(state, &ManagementNodeOptions::new(target.clone())).unwrap();
        assert_eq!(
            written.served_from,
            "http://192.168.1.10:8080/assets/management-node"
        );
        assert_eq!(written.install.pxe_base_url, FLATCAR_STABLE);
        assert_eq!(written.install.image_base_url, None);
        assert!(written.out.join(IPXE_FILE).is_file() && written.out.join(IGNITION_FILE).is_file());
        let lines = written.lines();
        assert!(
            lines[0].starts_with("✓ management node install written to ")
                && lines[0].ends_with("ignition.json)")
                || lines[0].ends_with(')'),
            "{lines:?}"
        );
        assert_eq!(
            lines[2],
            "  disk image: flatcar-install downloads the stable release"
        );
        assert_eq!(lines.len(), 5);

        let flatcar = state.join("assets/flatcar/current");
        std::fs::create_dir_all(&flatcar).unwrap();
        std::fs::write(flatcar.join("flatcar_production_pxe.vmlinuz"), "k").unwrap();
        std::fs::write(flatcar.join("flatcar_production_image.bin.bz2"), "i").unwrap();
        let binary = state.join("racker-bin");
        std::fs::write(&binary, "#!/bin/sh\n").unwrap();
        let mut options = ManagementNodeOptions::new(target);
        options.racker_binary = Some(binary);
        let written = write_management_install(state, &options).unwrap();
        assert_eq!(
            written.install.pxe_base_url,
            "http://192.168.1.10:8080/assets/flatcar/current"
        );
        assert_eq!(
            written.install.image_base_url.as_deref(),
            Some("http://192.168.1.10:8080/assets/flatcar")
        );
        assert!(written.lines()[0].ends_with(", racker)"));
        let racker = written.install.racker.unwrap();
        assert_eq!(racker.sha512.len(), 128);
        assert!(written.out.join("racker").is_file());
    }

    #[test]
    fn a_folder_served_elsewhere_keeps_upstream_sources() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let options = ManagementNodeOptions::new(ManagementTarget::Dir {
            out: out.clone(),
            served_from: "http://files/mgmt/".into(),
        });
        let written = write_management_install(dir.path(), &options).unwrap();
        assert_eq!(written.out, out);
        assert_eq!(written.served_from, "http://files/mgmt");
        assert!(!written.served_by_racker);
        assert_eq!(written.lines().len(), 4);
    }
}
