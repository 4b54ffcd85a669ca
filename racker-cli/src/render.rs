//! `racker render` and `racker exclude`: write a cluster directory
//! (Lokomotive or Flatcar/Terraform + Ignition) without touching the
//! network, and remove a node from one afterwards.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use racker_bootstrap::RenderSummary;
use racker_bootstrap::lokoenv::update_hosts_file;
use racker_bootstrap::render_dir::{is_empty_dir, write_render};
use racker_inventory::{MacAddr, Provision, PublicIps, StorageProvider};
use racker_lokomotive::{HOSTS_FILE, RenderOptions, Secret, exclude_in_dir, render_cluster};

use crate::context::{PlanArgs, SelectionArgs, load_selection};
use crate::globals::Globals;

/// `racker render` and `racker exclude`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum RenderCommand {
    /// Render the cluster configuration (Lokomotive, or Flatcar/Terraform and
    /// Ignition) into a directory, without touching the network.
    Render(Box<RenderCmd>),
    /// Remove a node from a rendered cluster directory (its snippets, its
    /// Ignition configs, its host entries); every other file stays unchanged.
    Exclude(ExcludeCmd),
}

/// Arguments of `racker render`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  racker render --provision flatcar --out ~/flatcar-container-linux
  racker render --provision lokomotive --out ~/lokomotive --num-controllers 3 \\
      --controller-type red --storage-provider rook --storage-node-type blue --web-ui
  racker render --provision lokomotive --out ~/lokomotive --public-ips public-ips.ini \\
      --backup-bucket my-backups --backup-region eu-central-1
      (with RACKER_BACKUP_ACCESS_KEY_ID and RACKER_BACKUP_SECRET_ACCESS_KEY in the environment)
  racker render --provision flatcar --out DIR --force --update-hosts /etc/hosts")]
pub(crate) struct RenderCmd {
    #[command(flatten)]
    plan: PlanArgs,
    #[command(flatten)]
    selection: SelectionArgs,
    /// Directory to write; refused when it exists and is not empty, unless --force.
    #[arg(long)]
    out: PathBuf,
    /// Overwrite a non-empty directory (files of an earlier render that no
    /// longer belong to the cluster are removed; other files are kept).
    /// Files you edited since racker wrote them are overwritten too, and
    /// named.
    #[arg(long)]
    force: bool,
    /// Show what a render into --out would change (a diff per file) and
    /// write nothing.
    #[arg(long)]
    diff: bool,
    #[command(flatten)]
    choices: RenderChoices,
    /// Also put the cluster's host names into this hosts file (e.g.
    /// /etc/hosts), between racker's markers; the file's other lines stay.
    #[arg(long, value_name = "FILE")]
    update_hosts: Option<PathBuf>,
}

/// The rendering choices `racker render` and `racker bootstrap` share
/// (everything but the address plan and the selection).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RenderChoices {
    /// Public addresses: an INI file with `[<secondary MAC>]` sections
    /// (`ip_addr = a.b.c.d/len`, `gateway`, `dns`), or `dhcp` (the default;
    /// saying it keeps the wizard from asking).
    #[arg(long, value_name = "FILE")]
    pub(crate) public_ips: Option<PathBuf>,
    /// Render the Lokomotive web UI component.
    #[arg(long)]
    pub(crate) web_ui: bool,
    /// Velero backups to this S3 bucket (Lokomotive); needs
    /// RACKER_BACKUP_ACCESS_KEY_ID and RACKER_BACKUP_SECRET_ACCESS_KEY.
    #[arg(long)]
    pub(crate) backup_bucket: Option<String>,
    /// AWS region of the backup bucket.
    #[arg(long, default_value = racker_bootstrap::DEFAULT_BACKUP_REGION)]
    pub(crate) backup_region: String,
    /// Name of the backup storage location.
    #[arg(long, default_value = racker_bootstrap::DEFAULT_BACKUP_NAME)]
    pub(crate) backup_name: String,
    /// AWS access key id for the backups (prefer the environment variable).
    #[arg(long, env = "RACKER_BACKUP_ACCESS_KEY_ID", hide_env_values = true)]
    pub(crate) backup_access_key_id: Option<String>,
    /// The backup secret typed into the wizard (never a flag: argv is
    /// visible to every user of the machine).
    #[arg(skip)]
    pub(crate) backup_secret: Option<String>,
    /// SSH public key file for the `core` user (repeatable)
    /// [default: <state-dir>/ssh/id_ed25519.pub, see `racker factory gen-ssh-key`].
    #[arg(long, value_name = "FILE")]
    ssh_public_key: Vec<PathBuf>,
    /// Kernel console argument of the installed nodes (repeatable)
    /// [default: console=ttyS1,57600n8 earlyprintk=serial,ttyS1,57600n8].
    #[arg(long, value_name = "ARG")]
    pub(crate) kernel_console: Vec<String>,
    /// Port of the netboot (matchbox) HTTP server on the management node's
    /// internal address.
    #[arg(long, default_value_t = racker_lokomotive::DEFAULT_NETBOOT_PORT)]
    pub(crate) netboot_port: u16,
    /// Lokomotive asset directory [default: <out>/lokoctl-assets].
    #[arg(long)]
    pub(crate) asset_dir: Option<String>,
    /// Render for a Lokomotive older than v0.9: the cluster-prefixed
    /// `k8s_domain_name` and without the settings old lokoctl rejects (the
    /// original racker's OLD_LOKOMOTIVE=1; docs/lokomotive.md).
    #[arg(long, env = "RACKER_OLD_LOKOMOTIVE")]
    pub(crate) old_lokomotive: bool,
}

impl RenderChoices {
    /// The public addresses (validated against the inventory) and the
    /// render options, for a cluster directory at `out` (absolute).
    pub(crate) fn resolve(
        &self,
        globals: &Globals,
        rack: &crate::context::Rack,
        selection: &SelectionArgs,
        out: &Path,
    ) -> anyhow::Result<(RenderOptions, PublicIps)> {
        let mut c = racker_bootstrap::RenderChoices::new();
        c.public_ips.clone_from(&self.public_ips);
        c.web_ui = self.web_ui;
        c.storage = StorageProvider::from(selection.storage_provider).into();
        c.backup_bucket.clone_from(&self.backup_bucket);
        c.backup_region.clone_from(&self.backup_region);
        c.backup_name.clone_from(&self.backup_name);
        c.backup_access_key_id
            .clone_from(&self.backup_access_key_id);
        // The secret only ever comes from the environment or the wizard,
        // never argv.
        let secret = (self.backup_secret.clone())
            .or_else(|| std::env::var("RACKER_BACKUP_SECRET_ACCESS_KEY").ok());
        c.backup_secret = secret.map(Secret::new);
        c.ssh_public_keys.clone_from(&self.ssh_public_key);
        c.kernel_console.clone_from(&self.kernel_console);
        c.netboot_port = self.netboot_port;
        c.asset_dir.clone_from(&self.asset_dir);
        c.old_lokomotive = self.old_lokomotive;
        Ok(c.resolve(&globals.state_dir, &rack.inventory, out)?)
    }
}

/// Arguments of `racker exclude`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  racker exclude 00:11:22:33:44:20 --dir ~/lokomotive
  racker exclude 00:11:22:33:44:21 --dir ~/flatcar-container-linux --update-hosts /etc/hosts")]
pub(crate) struct ExcludeCmd {
    /// Primary, BMC or secondary MAC of the node to remove.
    mac: MacAddr,
    /// The rendered cluster directory.
    #[arg(long)]
    dir: PathBuf,
    /// Overwrite rendered files even if they were edited by hand.
    #[arg(long)]
    force: bool,
    /// Update racker's block in this hosts file (e.g. /etc/hosts).
    #[arg(long, value_name = "FILE")]
    update_hosts: Option<PathBuf>,
}

pub(crate) fn run(globals: &Globals, cmd: RenderCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RenderCommand::Render(cmd) => run_render(globals, *cmd),
        RenderCommand::Exclude(cmd) => run_exclude(cmd),
    }
}

fn run_render(globals: &Globals, cmd: RenderCmd) -> anyhow::Result<ExitCode> {
    if !cmd.diff && !cmd.force && !is_empty_dir(&cmd.out)? {
        bail!(
            "{} exists and is not empty; choose another --out, remove it, or pass --force to overwrite it",
            cmd.out.display()
        );
    }
    let (rack, selection) = load_selection(globals, &cmd.plan, &cmd.selection)?;
    let resolving = || format!("resolving {}", cmd.out.display());
    let out = if cmd.diff {
        std::path::absolute(&cmd.out).with_context(resolving)?
    } else {
        std::fs::create_dir_all(&cmd.out)
            .with_context(|| format!("creating {}", cmd.out.display()))?;
        std::fs::canonicalize(&cmd.out).with_context(resolving)?
    };
    let (options, public) = cmd.choices.resolve(globals, &rack, &cmd.selection, &out)?;
    let tree = render_cluster(&rack.plan, &selection, &options, &public)?;
    if cmd.diff {
        let changes = racker_bootstrap::rendered::diff(&tree, &out);
        for change in &changes {
            print!("{}", racker_bootstrap::rendered::render_change(change));
        }
        println!(
            "{} file(s) would change in {}",
            changes.len(),
            out.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let written = write_render(&tree, &out, cmd.force)?;
    for path in &written.overwritten {
        crate::output::progress(format_args!(
            "note: overwrote your edit of {} (--force)",
            path.display()
        ));
    }
    if let Some(hosts) = &cmd.update_hosts {
        let block = tree.get(HOSTS_FILE).map(|f| f.text().to_owned());
        update_hosts_file(hosts, &block.unwrap_or_default())?;
    }
    let provision = Provision::from(cmd.selection.provision);
    let doc = RenderSummary::new(provision, out, &tree, written.removed);
    crate::output::emit(globals.output, "render", &doc, |_wide| {
        let (headline, files) = doc.lines();
        crate::output::line(crate::output::ok_mark(&headline));
        for f in files {
            println!("{f}");
        }
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn run_exclude(cmd: ExcludeCmd) -> anyhow::Result<ExitCode> {
    let done = exclude_in_dir(&cmd.dir, cmd.mac, cmd.force)?;
    crate::output::line(crate::output::ok_mark(&format!(
        "excluded {} ({}) from {}",
        done.name,
        done.mac,
        cmd.dir.display()
    )));
    for path in done.write.files().map(|(p, _)| p) {
        println!("  updated {}", path.display());
    }
    for path in &done.remove {
        println!("  removed {}", path.display());
    }
    if let Some(hosts) = &cmd.update_hosts {
        update_hosts_file(hosts, &done.hosts_block)?;
        println!("  updated {}", hosts.display());
    }
    Ok(ExitCode::SUCCESS)
}
