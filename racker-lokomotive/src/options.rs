//! The cluster choices that are not part of the address plan or the
//! selection.

use std::collections::BTreeMap;
use std::fmt;

use racker_inventory::MacAddr;
use serde::{Deserialize, Serialize};

use crate::error::RenderError;
use crate::escape::is_token;

/// What is rendered: racker-inventory's provision type.
pub use racker_inventory::Provision;

/// Lokomotive storage component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    /// No storage component.
    #[default]
    None,
    /// Rook (Ceph), `rook.lokocfg`.
    Rook,
    /// OpenEBS, `openebs.lokocfg`.
    Openebs,
}

impl fmt::Display for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Rook => "rook",
            Self::Openebs => "openebs",
        })
    }
}

/// The storage component of the selection's storage provider.
impl From<racker_inventory::StorageProvider> for Storage {
    fn from(p: racker_inventory::StorageProvider) -> Self {
        match p {
            racker_inventory::StorageProvider::None => Self::None,
            racker_inventory::StorageProvider::Rook => Self::Rook,
            racker_inventory::StorageProvider::Openebs => Self::Openebs,
        }
    }
}

/// S3 keys are the workspace's one secret type (redacted, zeroed on drop);
/// never serialised.
pub use racker_inventory::Secret;

/// S3 credentials for Velero backups, written to `backup-credentials`
/// (mode 0600) and nowhere else.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BackupCredentials {
    /// AWS access key id.
    pub access_key_id: Secret,
    /// AWS secret access key.
    pub secret_access_key: Secret,
}

/// Velero backup settings (the non-secret part is kept in the manifest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    /// Backup storage location name.
    pub name: String,
    /// S3 bucket.
    pub bucket: String,
    /// AWS region.
    pub region: String,
}

/// A static public address for one node's secondary NIC: racker-inventory's
/// type, parsed from the public-IP INI.
pub use racker_inventory::StaticAddress;

/// The serial console arguments racker's racks use.
pub const DEFAULT_KERNEL_CONSOLE: [&str; 2] =
    ["console=ttyS1,57600n8", "earlyprintk=serial,ttyS1,57600n8"];

/// Default port of the netboot HTTP server.
pub const DEFAULT_NETBOOT_PORT: u16 = 8080;

/// Every rendering choice that the address plan and selection don't carry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RenderOptions {
    /// Lokomotive storage component (storage *nodes* come from the selection).
    pub storage: Storage,
    /// Render `web-ui.lokocfg`.
    pub web_ui: bool,
    /// Velero backups (`velero.lokocfg`) and their credentials.
    pub backup: Option<(Backup, BackupCredentials)>,
    /// Kernel console arguments for the installed nodes.
    pub kernel_console: Vec<String>,
    /// Racker version, recorded in the rendered files.
    pub racker_version: String,
    /// Port of the netboot HTTP server on the management node's internal
    /// address (matchbox's HTTP port for Lokomotive).
    pub netboot_port: u16,
    /// SSH public keys authorised for the `core` user.
    pub ssh_public_keys: Vec<String>,
    /// Lokomotive asset directory (absolute path recommended).
    pub asset_dir: String,
    /// Directory of the matchbox API client certificate, key and CA.
    pub matchbox_client_dir: String,
    /// Render for Lokomotive before v0.9 (the original's `OLD_LOKOMOTIVE=1`):
    /// `k8s_domain_name` prefixed with the cluster name and the cluster
    /// settings older lokoctl versions reject left out. Off by default:
    /// lokoctl v0.9 prefixes the domain itself (docs/migrating.md).
    pub old_lokomotive: bool,
    /// Per-node install-report tokens (primary MAC → token) that the
    /// installer and `racker-report-up.service` send with their reports
    /// (racker-netboot refuses reports without them; docs/netboot.md).
    pub report_tokens: BTreeMap<MacAddr, String>,
}

impl RenderOptions {
    /// Defaults: no storage, web UI or backups, the serial console of
    /// [`DEFAULT_KERNEL_CONSOLE`], port 8080, `./lokoctl-assets`, and the
    /// given SSH keys.
    pub fn new(ssh_public_keys: Vec<String>) -> Self {
        Self {
            storage: Storage::None,
            web_ui: false,
            backup: None,
            kernel_console: DEFAULT_KERNEL_CONSOLE
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            racker_version: env!("CARGO_PKG_VERSION").to_owned(),
            netboot_port: DEFAULT_NETBOOT_PORT,
            ssh_public_keys,
            asset_dir: "./lokoctl-assets".to_owned(),
            matchbox_client_dir: "/opt/racker-state/matchbox-client".to_owned(),
            old_lokomotive: false,
            report_tokens: BTreeMap::new(),
        }
    }
}

/// Check an OpenSSH public key line: `<algorithm> <base64> [comment]`,
/// one line, printable, with a known algorithm.
pub(crate) fn validate_ssh_key(key: &str) -> Result<(), RenderError> {
    let bad = |reason| RenderError::invalid("SSH public key", key, reason);
    if key.chars().any(|c| c.is_control()) {
        return Err(bad("must be a single line without control characters"));
    }
    if key.contains(['"', '\\', '$', '`']) {
        return Err(bad(
            "must not contain quotes, backslashes, `$` or backticks",
        ));
    }
    let mut parts = key.split(' ');
    let algo = parts.next().unwrap_or_default();
    let known = [
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    ];
    if !known.contains(&algo) {
        return Err(bad(
            "does not start with a known key algorithm (e.g. ssh-ed25519)",
        ));
    }
    let blob = parts.next().unwrap_or_default();
    if blob.len() < 16
        || !blob
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    {
        return Err(bad("the key data is not base64"));
    }
    Ok(())
}

/// Check a kernel argument (no whitespace or shell/YAML meta characters).
pub(crate) fn validate_kernel_arg(arg: &str) -> Result<(), RenderError> {
    if is_token(arg) {
        Ok(())
    } else {
        Err(RenderError::invalid(
            "kernel console argument",
            arg,
            "only letters, digits and . : / _ - + , = @ are allowed",
        ))
    }
}

/// Check the backup settings and credentials.
pub(crate) fn validate_backup(
    backup: &Backup,
    creds: Option<&BackupCredentials>,
) -> Result<(), RenderError> {
    for (what, value) in [
        ("backup name", &backup.name),
        ("backup bucket", &backup.bucket),
        ("backup region", &backup.region),
    ] {
        if value.is_empty() || value.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(RenderError::invalid(
                what,
                value.as_str(),
                "must be non-empty without whitespace",
            ));
        }
    }
    if let Some(c) = creds {
        for (what, value) in [
            ("backup access key id", c.access_key_id.expose()),
            ("backup secret access key", c.secret_access_key.expose()),
        ] {
            if value.is_empty() || value.chars().any(|c| c.is_control() || c.is_whitespace()) {
                // The value is a secret: never echo it.
                return Err(RenderError::invalid(
                    what,
                    "<redacted>",
                    "must be non-empty without whitespace",
                ));
            }
        }
    }
    Ok(())
}

/// Check the racker version string.
pub(crate) fn validate_version(version: &str) -> Result<(), RenderError> {
    if is_token(version) {
        Ok(())
    } else {
        Err(RenderError::invalid(
            "racker version",
            version,
            "must be a plain version string",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let c = BackupCredentials {
            access_key_id: Secret::new("AKIAEXAMPLE"),
            secret_access_key: Secret::new("very-secret"),
        };
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("very-secret") && !dbg.contains("AKIAEXAMPLE"),
            "{dbg}"
        );
        let opts = RenderOptions {
            backup: Some((
                Backup {
                    name: "b".into(),
                    bucket: "k".into(),
                    region: "r".into(),
                },
                c,
            )),
            ..RenderOptions::new(vec![])
        };
        assert!(!format!("{opts:?}").contains("very-secret"));
    }

    #[test]
    fn ssh_keys_are_checked() {
        assert!(
            validate_ssh_key("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOk8bU3XQ user@host").is_ok()
        );
        assert!(validate_ssh_key("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOk8bU3XQ").is_ok());
        assert!(validate_ssh_key("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOk8bU3XQ a\nb").is_err());
        assert!(validate_ssh_key("rm -rf / AAAAAAAAAAAAAAAAAAAAAA").is_err());
        assert!(validate_ssh_key("ssh-rsa short").is_err());
        assert!(validate_ssh_key("ssh-rsa AAAAB3NzaC1yc2EAAAADAQAB x\"y").is_err());
    }

    #[test]
    fn backup_secrets_are_never_echoed() {
        let b = Backup {
            name: "n".into(),
            bucket: "b".into(),
            region: "r".into(),
        };
        let c = BackupCredentials {
            access_key_id: Secret::new("AK"),
            secret_access_key: Secret::new("bad secret\n"),
        };
        let e = validate_backup(&b, Some(&c)).unwrap_err().to_string();
        assert!(!e.contains("bad secret"), "{e}");
        assert!(
            validate_backup(
                &Backup {
                    name: "a b".into(),
                    ..b.clone()
                },
                None
            )
            .is_err()
        );
        assert!(validate_backup(&b, None).is_ok());
    }
}
