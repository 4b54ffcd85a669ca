//! A rack without hardware: simulated servers whose BMCs speak real IPMI 2.0
//! (RMCP+, cipher suites 3 and 17) over UDP, so `ipmitool -I lanplus` and
//! FreeIPMI drive them exactly like real machines.
//!
//! * [`Bmc`] is the sans-IO protocol core: datagrams and the current time
//!   go in, datagrams to send and [`Event`]s come out. The wire format
//!   (framing, RAKP messages, keys, integrity, AES, command layouts) is
//!   racker-ipmi's [`racker_ipmi::codec`]; this crate keeps only the BMC's
//!   behaviour. It keeps sessions
//!   (RAKP handshake, integrity, AES confidentiality, sequence window,
//!   duplicate requests, idle timeout, limited slots), the chassis (power,
//!   boot options with the 60-s valid-bit timer, LAN settings, users), the
//!   Serial-over-LAN console, and what monitoring tools read: an SDR
//!   repository of temperature, fan, voltage and power sensors whose
//!   readings follow power and faults, a bounded System Event Log and FRU
//!   inventory data (see `docs/simulator.md`).
//! * [`SimRack`] runs many BMCs in one tokio process, one UDP socket each,
//!   with per-node fault injection and a rack-wide event stream; [`SimNode`]
//!   is the handle a test or the simulated firmware uses to look at and
//!   act on one node.
//! * [`ServedRack`] is a simulated rack run as a service for other
//!   processes (`racker sim up`): the BMC table, live status and the
//!   running-rack marker in the state directory ([`running_simulator_bmcs`]
//!   finds a running rack's BMCs), with the helpers that set one up from a
//!   nodes.csv ([`generated_nodes_csv`], [`bmc_address`], [`FaultSpec`],
//!   [`node_specs`], [`up_inventory`], [`up_nodes`]).
//! * [`StatusView`] is `racker sim status`'s document and table rows;
//!   [`served_lines`] says where a served rack's BMCs answer.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), racker_sim::Error> {
//! use racker_sim::{NodeSpec, Password, SimRack};
//! let spec = NodeSpec::new([0x02, 0, 0, 0, 0, 0x01], "127.0.0.1:0".parse().unwrap());
//! let rack = SimRack::start(vec![spec], "USER", Password::new("PASS")).await?;
//! let node = &rack.nodes()[0];
//! assert!(!node.snapshot().power_on);
//! println!("ipmitool -I lanplus -H {} -p {} -U USER -P PASS chassis status",
//!          node.ipmi_addr().ip(), node.ipmi_addr().port());
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![deny(clippy::unwrap_used)]

mod bmc;
mod chassis;
mod error;
mod fault;
pub mod firmware;
mod fru;
mod rack;
mod sel;
mod sensors;
mod table;
mod up;
mod up_nodes;
mod view;

pub use bmc::{Bmc, BmcConfig, DEFAULT_HANDSHAKE_TIMEOUT, Transmit};
pub use chassis::{
    BOOT_FLAG_TIMEOUT, BootDevice, BootFlags, BootRequest, Chassis, Event, Password,
};
pub use error::Error;
pub use fault::{Fault, Faults};
pub use rack::{NodeEvent, NodeEvents, NodeSnapshot, NodeSpec, SimNode, SimRack, format_mac};
pub use racker_ipmi::codec::CipherSuite;
pub use table::{
    BMC_TABLE_FILE, BmcEntry, BmcTable, ChassisState, NodeStatus, STATUS_FILE, StatusFile,
    read_json, write_json_atomic,
};
pub use up::{
    FaultSpec, FirmwareFaultsByMac, FirmwareSetup, SIMULATED_RACK_MARKER, ServedRack, SplitFaults,
    bmc_address, default_ipmi_port, ensure_credentials, generated_nodes_csv, live_rack_pid,
    mark_simulated, node_specs, remove_rack_files, running_simulator_bmcs,
};
pub use up_nodes::{up_inventory, up_nodes};
pub use view::{NodeView, StatusView, served_lines};
