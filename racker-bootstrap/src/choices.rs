//! The rendering choices `racker render` and `racker bootstrap` share
//! (everything but the address plan and the selection) as plain values,
//! their defaults and validation, and the summary of a rendered cluster
//! directory (`racker render -o json`, kind `render`, docs/output.md).

use std::path::{Path, PathBuf};

use racker_inventory::{Inventory, Provision, PublicIps};
use racker_lokomotive::{Backup, BackupCredentials, RenderOptions, Secret, Storage, Tree};

use crate::Result;
use crate::config::ConfigError;
use crate::render_dir::{core_ssh_keys, load_public_ips, rendered_nodes};

/// Default AWS region of the backup bucket.
pub const DEFAULT_BACKUP_REGION: &str = "us-east-1";
/// Default name of the backup storage location.
pub const DEFAULT_BACKUP_NAME: &str = "lokomotive";

/// How a cluster configuration is rendered, as an operator chooses it.
/// [`RenderChoices::resolve`] turns it into [`RenderOptions`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RenderChoices {
    /// Public addresses: an INI file with `[<secondary MAC>]` sections, or
    /// `dhcp` (default: DHCP).
    pub public_ips: Option<PathBuf>,
    /// Render the Lokomotive web UI component (default: off).
    pub web_ui: bool,
    /// The Lokomotive storage component (default: none).
    pub storage: Storage,
    /// Velero backups to this S3 bucket (Lokomotive) (default: none).
    pub backup_bucket: Option<String>,
    /// AWS region of the backup bucket (default: [`DEFAULT_BACKUP_REGION`]).
    pub backup_region: String,
    /// Name of the backup storage location (default: [`DEFAULT_BACKUP_NAME`]).
    pub backup_name: String,
    /// AWS access key id for the backups (needed with a bucket).
    pub backup_access_key_id: Option<String>,
    /// AWS secret access key for the backups (needed with a bucket).
    pub backup_secret: Option<Secret>,
    /// SSH public key files for the `core` user (default: the management
    /// key, `<state-dir>/ssh/id_ed25519.pub`).
    pub ssh_public_keys: Vec<PathBuf>,
    /// Kernel console arguments of the installed nodes (default:
    /// [`racker_lokomotive::DEFAULT_KERNEL_CONSOLE`]).
    pub kernel_console: Vec<String>,
    /// Port of the netboot HTTP server on the management node's internal
    /// address (default: [`racker_lokomotive::DEFAULT_NETBOOT_PORT`]).
    pub netboot_port: u16,
    /// Lokomotive asset directory (default: `<out>/lokoctl-assets`).
    pub asset_dir: Option<String>,
    /// Render for a Lokomotive older than v0.9 (docs/lokomotive.md).
    pub old_lokomotive: bool,
}

impl Default for RenderChoices {
    fn default() -> Self {
        Self {
            public_ips: None,
            web_ui: false,
            storage: Storage::None,
            backup_bucket: None,
            backup_region: DEFAULT_BACKUP_REGION.to_owned(),
            backup_name: DEFAULT_BACKUP_NAME.to_owned(),
            backup_access_key_id: None,
            backup_secret: None,
            ssh_public_keys: Vec::new(),
            kernel_console: Vec::new(),
            netboot_port: racker_lokomotive::DEFAULT_NETBOOT_PORT,
            asset_dir: None,
            old_lokomotive: false,
        }
    }
}

impl RenderChoices {
    /// Defaults everywhere.
    pub fn new() -> Self {
        Self::default()
    }

    /// The backup settings: none without a bucket; with one, the access
    /// key id and the secret are required (and not empty).
    pub fn backup(&self) -> Result<Option<(Backup, BackupCredentials)>, ConfigError> {
        let Some(bucket) = &self.backup_bucket else {
            return Ok(None);
        };
        let Some(key_id) = self.backup_access_key_id.clone().filter(|k| !k.is_empty()) else {
            return Err(ConfigError::BackupKeyIdMissing);
        };
        let Some(secret) = self
            .backup_secret
            .clone()
            .filter(|s| !s.expose().is_empty())
        else {
            return Err(ConfigError::BackupSecretMissing);
        };
        Ok(Some((
            Backup {
                name: self.backup_name.clone(),
                bucket: bucket.clone(),
                region: self.backup_region.clone(),
            },
            BackupCredentials {
                access_key_id: Secret::new(key_id),
                secret_access_key: secret,
            },
        )))
    }

    /// The public addresses (validated against `inventory`) and the render
    /// options, for a cluster directory at `out` (absolute) of a rack whose
    /// state lives in `state_dir`.
    pub fn resolve(
        &self,
        state_dir: &Path,
        inventory: &Inventory,
        out: &Path,
    ) -> Result<(RenderOptions, PublicIps)> {
        let public = load_public_ips(self.public_ips.as_deref(), inventory)?;
        let mut options = RenderOptions::new(core_ssh_keys(state_dir, &self.ssh_public_keys)?);
        options.web_ui = self.web_ui;
        options.storage = self.storage;
        if !self.kernel_console.is_empty() {
            options.kernel_console.clone_from(&self.kernel_console);
        }
        options.netboot_port = self.netboot_port;
        options.old_lokomotive = self.old_lokomotive;
        options.matchbox_client_dir = state_dir.join("matchbox-client").display().to_string();
        options.asset_dir = self
            .asset_dir
            .clone()
            .unwrap_or_else(|| out.join("lokoctl-assets").display().to_string());
        options.backup = self.backup()?;
        Ok((options, public))
    }
}

/// What `racker render` wrote (kind `render`, docs/output.md).
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct RenderSummary {
    /// What the cluster installs.
    pub provision: Provision,
    /// The cluster directory.
    pub cluster_dir: PathBuf,
    /// How many nodes it configures.
    pub nodes: usize,
    /// Every rendered file, in order.
    pub files: Vec<RenderedFile>,
    /// Files of an earlier render that were removed.
    pub removed: Vec<PathBuf>,
}

/// One file of a [`RenderSummary`].
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct RenderedFile {
    /// Its path in the cluster directory.
    pub path: PathBuf,
    /// Its mode, four octal digits (`0644`).
    pub mode: String,
}

impl RenderSummary {
    /// The summary of `tree` rendered into `cluster_dir` (`removed`: the
    /// earlier render's files that no longer belong).
    pub fn new(
        provision: Provision,
        cluster_dir: PathBuf,
        tree: &Tree,
        removed: Vec<PathBuf>,
    ) -> Self {
        Self {
            provision,
            nodes: rendered_nodes(tree),
            cluster_dir,
            files: tree
                .files()
                .map(|(path, file)| RenderedFile {
                    path: path.to_owned(),
                    mode: format!("{:04o}", file.mode),
                })
                .collect(),
            removed,
        }
    }

    /// The headline (`rendered N files for M nodes into DIR`) and one line
    /// per file.
    pub fn lines(&self) -> (String, Vec<String>) {
        let headline = format!(
            "rendered {} files for {} nodes into {}",
            self.files.len(),
            self.nodes,
            self.cluster_dir.display()
        );
        let files = self
            .files
            .iter()
            .map(|f| {
                format!(
                    "  {} ({})",
                    f.path.display(),
                    f.mode.trim_start_matches('0')
                )
            })
            .collect();
        (headline, files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_bucket_needs_both_keys() {
        let mut c = RenderChoices::new();
        assert!(c.backup().unwrap().is_none());
        c.backup_bucket = Some("b".into());
        assert!(matches!(c.backup(), Err(ConfigError::BackupKeyIdMissing)));
        c.backup_access_key_id = Some("id".into());
        assert!(matches!(c.backup(), Err(ConfigError::BackupSecretMissing)));
        c.backup_secret = Some(Secret::new(String::new()));
        assert!(matches!(c.backup(), Err(ConfigError::BackupSecretMissing)));
        c.backup_secret = Some(Secret::new("s".to_owned()));
        let (backup, creds) = c.backup().unwrap().unwrap();
        assert_eq!(backup.region, DEFAULT_BACKUP_REGION);
        assert_eq!(backup.name, DEFAULT_BACKUP_NAME);
        assert_eq!(creds.access_key_id.expose(), "id");
        assert_eq!(
            ConfigError::BackupKeyIdMissing.to_string(),
            "--backup-bucket needs RACKER_BACKUP_ACCESS_KEY_ID (or --backup-access-key-id)"
        );
    }

    #[test]
    fn resolve_fills_in_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let ssh = dir.path().join("ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        std::fs::write(ssh.join("id_ed25519.pub"), "ssh-ed25519 AAAA key\n").unwrap();
        let inventory = crate::testutil::inventory(&[crate::testutil::MGMT]);
        let out = dir.path().join("out");
        let (options, _) = RenderChoices::new()
            .resolve(dir.path(), &inventory, &out)
            .unwrap();
        assert_eq!(options.ssh_public_keys, ["ssh-ed25519 AAAA key"]);
        assert_eq!(
            options.asset_dir,
            out.join("lokoctl-assets").display().to_string()
        );
        assert_eq!(
            options.netboot_port,
            racker_lokomotive::DEFAULT_NETBOOT_PORT
        );
        assert!(options.backup.is_none());
    }

    proptest! {
        /// Any combination of backup inputs is either refused with a
        /// typed error or accepted with exactly the values given.
        #[test]
        fn backup_choices_never_panic(
            bucket in proptest::option::of("[a-z]{0,8}"),
            key in proptest::option::of("[A-Z]{0,4}"),
            secret in proptest::option::of("[a-z]{0,4}"),
        ) {
            let mut c = RenderChoices::new();
            c.backup_bucket.clone_from(&bucket);
            c.backup_access_key_id.clone_from(&key);
            c.backup_secret = secret.clone().map(Secret::new);
            match c.backup() {
                Ok(None) => prop_assert!(bucket.is_none()),
                Ok(Some((b, creds))) => {
                    prop_assert_eq!(Some(b.bucket), bucket);
                    prop_assert_eq!(Some(creds.access_key_id.expose().to_owned()), key);
                    prop_assert_eq!(Some(creds.secret_access_key.expose().to_owned()), secret);
                }
                Err(_) => prop_assert!(bucket.is_some()),
            }
        }
    }
}
