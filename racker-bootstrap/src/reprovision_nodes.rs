//! Which nodes `racker reprovision NODE...` installs again
//! (docs/bootstrap.md, "Re-provisioning"): the recorded bootstrap it
//! resumes, and the nodes named by host name or MAC.

use std::path::Path;

use racker_inventory::{Inventory, MacAddr};

use crate::{BootstrapState, Error, Result, StateFile};

/// The bootstrap recorded in `state_dir`, which must have installed
/// Flatcar (a Lokomotive rack is reinstalled through lokoctl).
pub fn recorded_flatcar_bootstrap(state_dir: &Path) -> Result<BootstrapState> {
    let state = StateFile::load(state_dir)?.ok_or_else(|| {
        Error::Reprovision(format!(
            "no bootstrap is recorded in {}: run `racker bootstrap` first",
            StateFile::path(state_dir).display()
        ))
    })?;
    if state.provision != "flatcar" {
        return Err(Error::Reprovision(format!(
            "racker reprovision installs Flatcar nodes; this rack was provisioned with {} (reinstall through lokoctl)",
            state.provision
        )));
    }
    Ok(state)
}

/// Host names (full or the first label) of the recorded bootstrap's nodes
/// or MACs (primary, BMC, secondary) in `inventory` → primary MACs, each
/// once, in the order given.
pub fn resolve_nodes(
    names: &[String],
    state: &BootstrapState,
    inventory: &Inventory,
) -> Result<Vec<MacAddr>> {
    let mut out = Vec::new();
    for name in names {
        let by_mac = name.parse::<MacAddr>().ok().and_then(|mac| {
            inventory
                .nodes()
                .iter()
                .find(|n| n.primary_mac == mac || n.bmc_mac == mac || n.secondary_mac == Some(mac))
                .map(|n| n.primary_mac)
        });
        let by_name = state
            .nodes
            .iter()
            .find(|(_, r)| {
                !r.hostname.is_empty()
                    && (r.hostname == *name || r.hostname.split('.').next() == Some(name.as_str()))
            })
            .map(|(mac, _)| *mac);
        match by_mac.or(by_name) {
            Some(mac) if !out.contains(&mac) => out.push(mac),
            Some(_) => {}
            None => {
                return Err(Error::Reprovision(format!(
                    "{name} is neither a host name of the recorded bootstrap nor a MAC in nodes.csv"
                )));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rack() -> (BootstrapState, Inventory) {
        let inventory = Inventory::parse(
            "nodes.csv",
            format!(
                "{}\n00:11:22:33:44:00, 00:11:22:33:44:01, 00:11:22:33:44:02, mgmt,\n\
                 00:11:22:33:44:10, 00:11:22:33:44:11, 00:11:22:33:44:12, red,\n\
                 00:11:22:33:44:20, 00:11:22:33:44:21, , red,\n",
                racker_inventory::NODES_CSV_HEADER
            )
            .as_bytes(),
        )
        .unwrap();
        let mut state = BootstrapState::new("flatcar", Path::new("/c"));
        state.ensure_node(
            "00:11:22:33:44:10".parse().unwrap(),
            "00:11:22:33:44:11".parse().unwrap(),
            "node-0.example",
            1,
        );
        state.ensure_node(
            "00:11:22:33:44:20".parse().unwrap(),
            "00:11:22:33:44:21".parse().unwrap(),
            "",
            1,
        );
        (state, inventory)
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn names_and_macs_resolve_to_primary_macs_once() {
        let (state, inventory) = rack();
        let macs = resolve_nodes(
            &names(&[
                "00:11:22:33:44:21",
                "node-0",
                "00:11:22:33:44:12",
                "node-0.example",
            ]),
            &state,
            &inventory,
        )
        .unwrap();
        assert_eq!(
            macs,
            [
                "00:11:22:33:44:20".parse::<MacAddr>().unwrap(),
                "00:11:22:33:44:10".parse().unwrap()
            ]
        );
        let err = resolve_nodes(&names(&["node-9"]), &state, &inventory).unwrap_err();
        assert_eq!(
            err.to_string(),
            "node-9 is neither a host name of the recorded bootstrap nor a MAC in nodes.csv"
        );
    }

    #[test]
    fn only_a_recorded_flatcar_bootstrap_is_resumed() {
        let dir = tempfile::tempdir().unwrap();
        let err = recorded_flatcar_bootstrap(dir.path()).unwrap_err();
        assert!(
            err.to_string().starts_with("no bootstrap is recorded in "),
            "{err}"
        );
        let (mut state, _) = rack();
        state.provision = "lokomotive".into();
        StateFile::new(dir.path(), state).unwrap();
        let err = recorded_flatcar_bootstrap(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("provisioned with lokomotive"),
            "{err}"
        );
    }

    proptest! {
        /// Any names: never a panic, and what resolves is a primary MAC of
        /// the inventory, at most once.
        #[test]
        fn any_names(list in proptest::collection::vec("[0-9a-f:.node-]{0,20}", 0..6)) {
            let (state, inventory) = rack();
            if let Ok(macs) = resolve_nodes(&list, &state, &inventory) {
                for (i, mac) in macs.iter().enumerate() {
                    prop_assert!(inventory.nodes().iter().any(|n| n.primary_mac == *mac));
                    prop_assert!(!macs[i + 1..].contains(mac));
                }
            }
        }
    }
}
