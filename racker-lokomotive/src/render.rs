//! Rendering a whole cluster directory.

use minijinja::context;
use minijinja::value::Value;
use racker_inventory::{AddressPlan, MacAddr, PublicIps, Selection};

use crate::error::RenderError;
use crate::hosts::hosts_block;
use crate::ignition::{Common, install_config_with, os_config_with};
use crate::options::{BackupCredentials, Provision, RenderOptions, Storage};
use crate::spec::{ClusterSpec, MANIFEST, NodeRole, NodeSpec};
use crate::templates::{render as render_template, safe};
use crate::tree::Tree;
use crate::units::{self, clc_units};

/// Mode of ordinary rendered files.
pub const FILE_MODE: u32 = 0o644;
/// Mode of files holding secrets.
pub const SECRET_MODE: u32 = 0o600;
/// The management node's hosts block, in the cluster directory.
pub const HOSTS_FILE: &str = "management-hosts";
/// The Velero credentials file.
pub const BACKUP_CREDENTIALS: &str = "backup-credentials";

/// Commands run by the installer after writing the disk and before the
/// reboot: none. Stock Flatcar has no ipmitool, so nothing on the node
/// talks to its BMC; persistent EFI disk boot is set from the management
/// side over IPMI LAN (docs/rendering.md, "Commands on the node").
pub const INSTALL_PRE_REBOOT_CMDS: &str = "true";

/// Command Lokomotive runs (with `$mac` and `$domain` set) to PXE-boot a node.
pub const PXE_COMMANDS: &str = "racker ipmi \"$mac\" boot-timeout off && racker ipmi \"$mac\" power off && racker ipmi \"$mac\" bootdev pxe && racker ipmi \"$mac\" power on";

/// Path of a node's Container Linux Config.
pub fn clc_path(node: &NodeSpec) -> String {
    format!("cl/{}.yaml", node.name)
}

/// Path of a node's custom Container Linux Config.
pub fn custom_clc_path(node: &NodeSpec) -> String {
    format!("cl/{}-custom.yaml", node.name)
}

fn mac_file_stem(mac: MacAddr) -> String {
    mac.to_string().replace(':', "-")
}

/// Path of a node's install-time Ignition config (Flatcar mode).
pub fn install_ignition_path(mac: MacAddr) -> String {
    format!("ignition/{}-install.ign", mac_file_stem(mac))
}

/// Path of a node's installed-system Ignition config (Flatcar mode).
pub fn os_ignition_path(mac: MacAddr) -> String {
    format!("ignition/{}-os.ign", mac_file_stem(mac))
}

/// Render the cluster directory from the plan, the selection, the choices
/// and the static public addresses (by secondary MAC).
pub fn render_cluster(
    plan: &AddressPlan,
    selection: &Selection,
    options: &RenderOptions,
    public: &PublicIps,
) -> Result<Tree, RenderError> {
    let spec = ClusterSpec::new(plan, selection, options, public)?;
    render(&spec, options.backup.as_ref().map(|(_, c)| c))
}

/// Render the cluster directory of `spec`. `backup-credentials` is only
/// written when `credentials` are given (an exclusion re-render leaves the
/// existing file alone).
pub fn render(
    spec: &ClusterSpec,
    credentials: Option<&BackupCredentials>,
) -> Result<Tree, RenderError> {
    spec.validate()?;
    let mut tree = Tree::new();
    let manifest = serde_json::to_string_pretty(spec).map_err(|source| RenderError::Json {
        what: MANIFEST.to_owned(),
        source,
    })?;
    tree.insert(MANIFEST, manifest + "\n", FILE_MODE);
    tree.insert(HOSTS_FILE, hosts_block(spec)?, FILE_MODE);

    let common = Common::new(spec)?;
    let flatcar = spec.provision == Provision::Flatcar;
    for node in &spec.nodes {
        let ctx = context! {
            version => &spec.racker_version,
            name => &node.name,
            mac => node.mac.to_string(),
            units => clc_units(&common, spec, node)?,
            hosts => safe(common.hosts.clone()),
            hostname => flatcar,
        };
        tree.insert(
            clc_path(node),
            render_template("cl/node.yaml.j2", ctx)?,
            FILE_MODE,
        );
        let public = units::public_network(spec, node)?;
        let ctx = context! {
            version => &spec.racker_version,
            name => &node.name,
            public_name => units::PUBLIC_NETWORK_UNIT,
            public => public.map(safe),
        };
        tree.insert(
            custom_clc_path(node),
            render_template("cl/custom.yaml.j2", ctx)?,
            FILE_MODE,
        );
        if flatcar {
            let os = os_config_with(&common, spec, node)?.to_json()?;
            let install = install_config_with(&os, spec, node)?;
            tree.insert(os_ignition_path(node.mac), os, FILE_MODE);
            tree.insert(
                install_ignition_path(node.mac),
                install.to_json()?,
                FILE_MODE,
            );
        }
    }

    let base = base_context(spec);
    if flatcar {
        for (template, path) in [
            ("flatcar/flatcar.tf.j2", "flatcar.tf"),
            ("flatcar/variables.tf.j2", "variables.tf"),
            ("flatcar/versions.tf.j2", "versions.tf"),
            ("flatcar/terraform.tfvars.j2", "terraform.tfvars"),
            ("flatcar/base.yaml.tmpl.j2", "templates/base.yaml.tmpl"),
            (
                "flatcar/install.yaml.tmpl.j2",
                "templates/install.yaml.tmpl",
            ),
        ] {
            tree.insert(path, render_template(template, base.clone())?, FILE_MODE);
        }
    } else {
        tree.insert(
            "baremetal.lokocfg",
            render_template("lokomotive/baremetal.lokocfg.j2", base.clone())?,
            FILE_MODE,
        );
        tree.insert(
            "lokocfg.vars",
            render_template("lokomotive/lokocfg.vars.j2", base.clone())?,
            FILE_MODE,
        );
        if spec.web_ui {
            tree.insert(
                "web-ui.lokocfg",
                render_template("lokomotive/web-ui.lokocfg.j2", base.clone())?,
                FILE_MODE,
            );
        }
        match spec.storage {
            Storage::None => {}
            Storage::Rook => {
                tree.insert(
                    "rook.lokocfg",
                    render_template("lokomotive/rook.lokocfg.j2", base.clone())?,
                    FILE_MODE,
                );
            }
            Storage::Openebs => {
                tree.insert(
                    "openebs.lokocfg",
                    render_template("lokomotive/openebs.lokocfg.j2", base.clone())?,
                    FILE_MODE,
                );
            }
        }
        if spec.backup.is_some() {
            tree.insert(
                "velero.lokocfg",
                render_template("lokomotive/velero.lokocfg.j2", base.clone())?,
                FILE_MODE,
            );
            if let Some(c) = credentials {
                let ctx = context! {
                    access_key_id => c.access_key_id.expose(),
                    secret_access_key => c.secret_access_key.expose(),
                };
                tree.insert(
                    BACKUP_CREDENTIALS,
                    render_template("lokomotive/backup-credentials.j2", ctx)?,
                    SECRET_MODE,
                );
            }
        }
    }
    Ok(tree)
}

fn base_context(spec: &ClusterSpec) -> Value {
    let role_list = |role: NodeRole, f: fn(&NodeSpec) -> String| -> Vec<String> {
        spec.nodes
            .iter()
            .filter(|n| n.role == role)
            .map(f)
            .collect()
    };
    let flatcar = spec.provision == Provision::Flatcar;
    let (main_role, other_role) = if flatcar {
        (NodeRole::Node, NodeRole::Node)
    } else {
        (NodeRole::Controller, NodeRole::Worker)
    };
    let nodes: Vec<Value> = spec
        .nodes
        .iter()
        .map(|n| {
            context! {
                name => &n.name,
                snippets => vec![clc_path(n), custom_clc_path(n)],
                installer_snippets => n.public.as_ref().map(|_| vec![custom_clc_path(n)]),
                labels => &n.labels,
            }
        })
        .collect();
    let storage_nodes = spec
        .nodes
        .iter()
        .filter(|n| n.labels.contains_key("storage.lokomotive.io"))
        .count();
    context! {
        // Validated as a token: safe to write bare, also in HCL comments.
        version => safe(spec.racker_version.clone()),
        cluster_name => &spec.cluster_name,
        domain => &spec.domain,
        old_lokomotive => spec.old_lokomotive,
        asset_dir => &spec.asset_dir,
        ssh_keys => &spec.ssh_public_keys,
        matchbox_addr => spec.management_ip.to_string(),
        matchbox_client_dir => &spec.matchbox_client_dir,
        netboot_port => spec.netboot_port,
        controller_macs => role_list(main_role, |n| n.mac.to_string()),
        controller_names => role_list(main_role, |n| n.name.clone()),
        worker_macs => role_list(other_role, |n| n.mac.to_string()),
        worker_names => role_list(other_role, |n| n.name.clone()),
        node_macs => spec.nodes.iter().map(|n| n.mac.to_string()).collect::<Vec<_>>(),
        node_names => spec.nodes.iter().map(|n| n.name.clone()).collect::<Vec<_>>(),
        nodes => nodes,
        kernel_console => &spec.kernel_console,
        install_pre_reboot_cmds => INSTALL_PRE_REBOOT_CMDS,
        pxe_commands => PXE_COMMANDS,
        backup => Value::from(minijinja::value::Serde(&spec.backup)),
        replica_count => storage_nodes.clamp(1, 3),
    }
}
