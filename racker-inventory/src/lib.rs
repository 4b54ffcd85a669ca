//! Racker's rack inventory: everything racker knows about a rack before it
//! touches the network.
//!
//! - [`MacAddr`]: typed MAC addresses.
//! - [`Inventory`]: a validated `nodes.csv` (errors name file, line, column).
//! - [`Credentials`]: the BMC user and [`Password`] (redacted in `Debug`).
//! - [`Inventory::management`]: the management node and PXE interface,
//!   found from this machine's [`LocalInterface`]s.
//! - [`AddressPlan`]: the deterministic internal addresses.
//! - [`select`]: exclusions, roles, host names, storage nodes, labels.
//! - [`PublicIps`]: the public-IP INI.
//! - [`HostList`]: pdsh/FreeIPMI host lists (`node-[0-7]`, MACs) and
//!   [`compress`] for consolidated output.
//!
//! ```
//! use racker_inventory::*;
//! let csv = "Primary MAC address, BMC MAC address, Secondary MAC address, Node Type, Comments\n\
//!            00:11:22:33:44:00, 00:11:22:33:44:01, 00:11:22:33:44:30, red, mgmt node\n\
//!            00:11:22:33:44:10, 00:11:22:33:44:11, 00:11:22:33:44:40, red, controller\n";
//! let inventory = Inventory::parse("nodes.csv", csv.as_bytes())?;
//! let eth1 = LocalInterface { name: "eth1".into(), mac: "00:11:22:33:44:30".parse()? };
//! let management = inventory.management(&[eth1])?;
//! let plan = AddressPlan::new(&inventory, &management, &PlanOptions::default())?;
//! assert_eq!(plan.nodes()[0].ip.to_string(), "172.24.213.2");
//! assert_eq!(plan.nodes()[0].bmc_ip.to_string(), "172.24.213.3");
//! let selection = select(&plan, &SelectionOptions::default())?;
//! assert_eq!(selection.nodes()[0].hostname.as_deref(), Some("node-0"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![deny(clippy::unwrap_used)]

mod credentials;
mod duration;
mod error;
mod hostlist;
mod interfaces;
mod mac;
mod nodes;
mod plan;
mod public_ips;
mod secret;
mod selection;

pub use credentials::Credentials;
pub use duration::{ParseDurationError, parse_duration};
pub use error::{Error, Result};
pub use hostlist::{Host, HostItem, HostList, MAX_HOSTS, Part, Range, compress};
pub use interfaces::{LocalInterface, Management, read_local_interfaces};
pub use mac::{MacAddr, ParseMacError};
pub use nodes::{
    Inventory, MAX_COMMENT_CHARS, MAX_NODE_TYPE_CHARS, MAX_NODES_CSV_BYTES, NODES_CSV_HEADER, Node,
};
pub use plan::{
    AddressPlan, DEFAULT_PREFIX_LEN, DEFAULT_SUBNET_PREFIX, PlanOptions, PlannedNode, Subnet,
};
pub use public_ips::{PublicAddress, PublicIps, StaticAddress};
pub use secret::{Password, Secret};
pub use selection::{
    ANY_NODE_TYPE, Provision, Role, SelectedNode, Selection, SelectionOptions, StorageCount,
    StorageProvider, parse_mac_list, select, validate_dns_name,
};
