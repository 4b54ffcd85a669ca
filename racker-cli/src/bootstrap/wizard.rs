//! The interactive wizard of `racker bootstrap`: when stdin is a terminal,
//! every choice not given as a flag is asked for. Non-interactive runs
//! never prompt (flags and defaults decide).

use std::collections::BTreeSet;

use dialoguer::{Confirm, Editor, Input, Password, Select};
use racker_inventory::{Inventory, PublicIps};

use super::BootstrapCmd;
use crate::context::{ProvisionArg, StorageArg};

/// Ask for every choice whose flag id is not in `given`.
pub(crate) fn ask(
    cmd: &mut BootstrapCmd,
    given: &BTreeSet<String>,
    inventory: &Inventory,
    state_dir: &std::path::Path,
) -> anyhow::Result<()> {
    let asked = |id: &str| !given.contains(id);
    if asked("provision") {
        let i = Select::new()
            .with_prompt("What do you want to provision?")
            .items(&[
                "Flatcar Container Linux on every node",
                "A Lokomotive Kubernetes cluster",
            ])
            .default(0)
            .interact()?;
        cmd.selection.provision = if i == 0 {
            ProvisionArg::Flatcar
        } else {
            ProvisionArg::Lokomotive
        };
    }
    if cmd.selection.provision == ProvisionArg::Lokomotive {
        if asked("cluster_name") {
            cmd.selection.cluster_name = Input::new()
                .with_prompt("Cluster name")
                .default(cmd.selection.cluster_name.clone())
                .validate_with(|s: &String| {
                    racker_inventory::validate_dns_name("cluster name", s, false)
                        .map_err(|e| e.to_string())
                })
                .interact_text()?;
        }
        if asked("num_controllers") {
            let i = Select::new()
                .with_prompt("Number of controllers")
                .items(&["3 (highly available)", "1"])
                .default(0)
                .interact()?;
            cmd.selection.num_controllers = Some(if i == 0 { 3 } else { 1 });
        }
        if asked("controller_type") {
            let mut types: Vec<String> = vec![racker_inventory::ANY_NODE_TYPE.to_owned()];
            types.extend(
                inventory
                    .node_type_counts()
                    .into_iter()
                    .map(|(t, _)| t)
                    .filter(|t| !t.is_empty()),
            );
            let i = Select::new()
                .with_prompt("Node type of the controllers")
                .items(&types)
                .default(0)
                .interact()?;
            cmd.selection.controller_type = types[i].clone();
        }
        if asked("k8s_domain") {
            cmd.selection.k8s_domain = Input::new()
                .with_prompt("Kubernetes domain")
                .default(cmd.selection.k8s_domain.clone())
                .validate_with(|s: &String| {
                    racker_inventory::validate_dns_name("domain", s, true)
                        .map_err(|e| e.to_string())
                })
                .interact_text()?;
        }
        if asked("web_ui") {
            cmd.choices.web_ui = Confirm::new()
                .with_prompt("Install the Lokomotive web UI?")
                .default(false)
                .interact()?;
        }
        if asked("storage_provider") {
            let i = Select::new()
                .with_prompt("Storage provider")
                .items(&["none", "openebs", "rook"])
                .default(0)
                .interact()?;
            cmd.selection.storage_provider =
                [StorageArg::None, StorageArg::Openebs, StorageArg::Rook][i];
            if i != 0 {
                cmd.selection.storage_node_type = Input::new()
                    .with_prompt("Node type of the storage nodes (any matches all)")
                    .default(cmd.selection.storage_node_type.clone())
                    .interact_text()?;
                cmd.selection.number_of_storage_nodes = Input::new()
                    .with_prompt("Number of storage nodes (a number or all)")
                    .default(cmd.selection.number_of_storage_nodes.clone())
                    .interact_text()?;
            }
        }
        if asked("backup_bucket")
            && Confirm::new()
                .with_prompt("Back up the cluster to S3 with Velero?")
                .default(false)
                .interact()?
        {
            ask_backup(cmd, &asked)?;
        }
    }
    if asked("subnet_prefix") {
        cmd.plan.subnet_prefix = Input::new()
            .with_prompt("Internal subnet (first three octets)")
            .default(cmd.plan.subnet_prefix.clone())
            .interact_text()?;
    }
    if asked("public_ips")
        && !Confirm::new()
            .with_prompt("Public addresses by DHCP? (no = edit static addresses in $EDITOR)")
            .default(true)
            .interact()?
    {
        let template =
            PublicIps::template(inventory.nodes().iter().filter_map(|n| n.secondary_mac));
        let mut text = template;
        loop {
            let Some(edited) = Editor::new().extension(".ini").edit(&text)? else {
                anyhow::bail!("the editor was closed without saving; cancelled");
            };
            let check = PublicIps::parse("public-ips.ini", &edited)
                .and_then(|ips| ips.check_against("public-ips.ini", &edited, inventory));
            match check {
                Ok(()) => {
                    let path = state_dir.join("public-ips.ini");
                    racker_bootstrap::fsutil::write_atomic(&path, edited.as_bytes(), 0o644)?;
                    cmd.choices.public_ips = Some(path);
                    break;
                }
                Err(e) => {
                    crate::output::error(e);
                    if !Confirm::new()
                        .with_prompt("Edit again?")
                        .default(true)
                        .interact()?
                    {
                        anyhow::bail!("cancelled");
                    }
                    text = edited;
                }
            }
        }
    }
    Ok(())
}

/// The Velero backup settings: bucket, region, location name, access key
/// id and secret (the secret hidden while typed, never put on argv).
fn ask_backup(cmd: &mut BootstrapCmd, asked: &dyn Fn(&str) -> bool) -> anyhow::Result<()> {
    let not_empty = |s: &String| {
        if s.trim().is_empty() {
            Err("must not be empty")
        } else {
            Ok(())
        }
    };
    cmd.choices.backup_bucket = Some(
        Input::new()
            .with_prompt("S3 bucket")
            .validate_with(not_empty)
            .interact_text()?,
    );
    if asked("backup_region") {
        cmd.choices.backup_region = Input::new()
            .with_prompt("AWS region of the bucket")
            .default(cmd.choices.backup_region.clone())
            .interact_text()?;
    }
    if asked("backup_name") {
        cmd.choices.backup_name = Input::new()
            .with_prompt("Backup name")
            .default(cmd.choices.backup_name.clone())
            .interact_text()?;
    }
    if asked("backup_access_key_id") {
        cmd.choices.backup_access_key_id = Some(
            Input::new()
                .with_prompt("AWS access key id")
                .validate_with(not_empty)
                .interact_text()?,
        );
    }
    if std::env::var_os("RACKER_BACKUP_SECRET_ACCESS_KEY").is_none() {
        cmd.choices.backup_secret = Some(
            Password::new()
                .with_prompt("AWS secret access key")
                .interact()?,
        );
    }
    Ok(())
}
