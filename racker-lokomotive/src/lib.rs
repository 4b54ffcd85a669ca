//! Racker's cluster configuration rendering.
//!
//! From the address plan, the selection (roles, host names, storage nodes,
//! labels) and the remaining choices ([`RenderOptions`]), render a cluster
//! directory deterministically — same input, byte-identical output — into an
//! in-memory [`Tree`]:
//!
//! * Lokomotive: `baremetal.lokocfg`, `lokocfg.vars`, optional
//!   `web-ui.lokocfg`, `rook.lokocfg`, `openebs.lokocfg`, `velero.lokocfg` +
//!   `backup-credentials` (mode 0600);
//! * Flatcar: `flatcar.tf`, `variables.tf`, `versions.tf`,
//!   `terraform.tfvars`, `templates/*.yaml.tmpl`, and per node the native
//!   Ignition 3.3 configs `ignition/<mac>-install.ign` / `-os.ign`;
//! * per node `cl/<name>.yaml` and `cl/<name>-custom.yaml` (Container Linux
//!   Config);
//! * the management node's `/etc/hosts` block (`management-hosts`), applied
//!   with [`apply_hosts_block`];
//! * the manifest `racker-cluster.json`, from which [`exclude_in_dir`]
//!   removes a node later while every other file stays unchanged.
//!
//! Templates are minijinja files embedded at build time, rendered in strict
//! undefined mode, with every value escaped for (HCL) or checked against
//! (YAML, unit files, hosts) the target language; JSON is built from serde
//! types.
//!
//! ```
//! use racker_inventory::{select, AddressPlan, Inventory, LocalInterface, PlanOptions, SelectionOptions};
//! use racker_lokomotive::{render_cluster, RenderOptions};
//!
//! let csv = "Primary, BMC, Secondary, Type, Comment\n\
//!            00:11:22:33:44:00, 00:11:22:33:44:01, 00:11:22:33:44:30, red, mgmt\n\
//!            00:11:22:33:44:10, 00:11:22:33:44:11, 00:11:22:33:44:40, red, node\n";
//! let inventory = Inventory::parse("nodes.csv", csv.as_bytes())?;
//! let local = [LocalInterface { name: "eth1".into(), mac: "00:11:22:33:44:30".parse()? }];
//! let plan = AddressPlan::new(&inventory, &inventory.management(&local)?, &PlanOptions::default())?;
//! let selection = select(&plan, &SelectionOptions::default())?;
//! let options = RenderOptions::new(vec!["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ7example admin".into()]);
//! let tree = render_cluster(&plan, &selection, &options, &Default::default())?;
//! assert!(tree.get("cl/node-0.yaml").unwrap().text().contains("Address=172.24.213.2/24"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![deny(clippy::unwrap_used)]

pub mod commands;
mod error;
mod escape;
mod exclude;
mod hosts;
pub mod ignition;
pub mod management;
mod options;
mod render;
mod spec;
mod templates;
mod tree;
pub mod units;

pub use error::RenderError;
pub use escape::{data_url, decode_data_url, hcl_string, is_token};
pub use exclude::{Exclusion, exclude_in_dir, plan_exclusion, read_manifest};
pub use hosts::{HOSTS_BEGIN, HOSTS_END, apply_hosts_block, hosts_block, remove_hosts_block};
pub use management::{ManagementInstall, RackerBinary, render_management_install};
pub use options::{
    Backup, BackupCredentials, DEFAULT_KERNEL_CONSOLE, DEFAULT_NETBOOT_PORT, Provision,
    RenderOptions, Secret, StaticAddress, Storage,
};
pub use render::{
    BACKUP_CREDENTIALS, FILE_MODE, HOSTS_FILE, INSTALL_PRE_REBOOT_CMDS, PXE_COMMANDS, SECRET_MODE,
    clc_path, custom_clc_path, install_ignition_path, os_ignition_path, render, render_cluster,
};
pub use spec::{ClusterSpec, MANIFEST, NodeRole, NodeSpec};
pub use tree::{RenderedFile, Tree};
