//! The nodes `racker sim up` serves: nodes.csv read or generated
//! ([`up_inventory`]), then one BMC spec per node with its faults and,
//! with a netboot server, every node's PXE firmware ([`up_nodes`]).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use racker_inventory::Inventory;

use crate::{
    Error, FaultSpec, FirmwareSetup, NodeSpec, SplitFaults, generated_nodes_csv, node_specs,
};

/// The inventory at `nodes_csv`, or with `count` one of `count` generated
/// nodes written there (an existing, different file is replaced only with
/// `force`).
pub fn up_inventory(
    nodes_csv: &Path,
    count: Option<usize>,
    force: bool,
) -> Result<Inventory, Error> {
    let inventory = |r: Result<Inventory, racker_inventory::Error>| {
        r.map_err(|e| Error::Inventory(Box::new(e)))
    };
    let Some(count) = count else {
        return inventory(Inventory::load(nodes_csv));
    };
    if count == 0 {
        return Err(Error::Options("--count must be at least 1".to_owned()));
    }
    let csv = generated_nodes_csv(count);
    if let Ok(existing) = std::fs::read_to_string(nodes_csv)
        && existing != csv
        && !force
    {
        return Err(Error::Options(format!(
            "{} exists with other content; pass --force to replace it",
            nodes_csv.display()
        )));
    }
    if let Some(dir) = nodes_csv.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| Error::Write {
            action: "creating",
            path: dir.to_owned(),
            source,
        })?;
    }
    racker_fsutil::write_atomic(nodes_csv, csv.as_bytes(), 0o644).map_err(|source| {
        Error::Write {
            action: "writing",
            path: nodes_csv.to_owned(),
            source,
        }
    })?;
    racker_fsutil::remove_stale_temporaries(nodes_csv);
    inventory(Inventory::parse(
        &nodes_csv.display().to_string(),
        csv.as_bytes(),
    ))
}

/// One BMC per node of `inventory` on `bind` (a loopback prefix or
/// address, see [`crate::bmc_address`]) and `port`, with its `faults`;
/// with `pxe_dhcp` (the netboot server's plain-UDP DHCP address) every
/// node also gets PXE firmware whose installer takes `install_delay`.
/// Firmware faults need `pxe_dhcp`.
pub fn up_nodes(
    inventory: &Inventory,
    bind: &str,
    port: u16,
    faults: &[FaultSpec],
    pxe_dhcp: Option<SocketAddr>,
    install_delay: Duration,
) -> Result<(Vec<NodeSpec>, Option<FirmwareSetup>), Error> {
    let faults = SplitFaults::of(faults);
    if !faults.firmware.is_empty() && pxe_dhcp.is_none() {
        return Err(Error::Options(
            "firmware faults (no-lease, download-fail, install-fail, hang, no-os-up) need --pxe-dhcp"
                .to_owned(),
        ));
    }
    let (specs, firmware_faults) =
        node_specs(inventory, bind, port, &faults).map_err(|e| match e {
            e @ Error::UnknownMac { .. } => Error::Options(format!("--fault: {e}")),
            e => Error::Options(format!("--bind: {e}")),
        })?;
    let firmware = pxe_dhcp.map(|dhcp| FirmwareSetup {
        dhcp,
        install_delay,
        faults: firmware_faults,
    });
    Ok((specs, firmware))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_inventory_is_written_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("oem/nodes.csv");
        assert!(up_inventory(&csv, None, false).is_err());
        assert_eq!(
            up_inventory(&csv, Some(0), false).unwrap_err().to_string(),
            "--count must be at least 1"
        );
        assert_eq!(up_inventory(&csv, Some(3), false).unwrap().nodes().len(), 3);
        assert_eq!(up_inventory(&csv, Some(3), false).unwrap().nodes().len(), 3);
        let err = up_inventory(&csv, Some(4), false).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("exists with other content; pass --force to replace it")
        );
        assert_eq!(up_inventory(&csv, Some(4), true).unwrap().nodes().len(), 4);
        assert_eq!(up_inventory(&csv, None, false).unwrap().nodes().len(), 4);
    }

    #[test]
    fn nodes_get_their_faults_and_firmware() {
        let inventory = Inventory::parse("nodes.csv", generated_nodes_csv(3).as_bytes()).unwrap();
        let node = inventory.nodes()[1].primary_mac;
        let hang: FaultSpec = format!("{node}=hang").parse().unwrap();
        let err = up_nodes(&inventory, "127.0.0.1", 0, &[hang], None, Duration::ZERO).unwrap_err();
        assert!(err.to_string().ends_with("need --pxe-dhcp"), "{err}");
        let dhcp = "127.0.0.1:6767".parse().unwrap();
        let (specs, firmware) = up_nodes(
            &inventory,
            "127.0.0.1",
            0,
            &[hang],
            Some(dhcp),
            Duration::ZERO,
        )
        .unwrap();
        assert_eq!(specs.len(), 3);
        assert_eq!(firmware.unwrap().faults.len(), 1);
        let stranger: FaultSpec = "02:99:00:00:00:01=unreachable".parse().unwrap();
        let err = up_nodes(
            &inventory,
            "127.0.0.1",
            0,
            &[stranger],
            None,
            Duration::ZERO,
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("--fault: no node has MAC"),
            "{err}"
        );
        let err = up_nodes(&inventory, "not an address", 0, &[], None, Duration::ZERO).unwrap_err();
        assert!(err.to_string().starts_with("--bind: "), "{err}");
    }
}
