//! IPMI 2.0 over LAN (RMCP+) client for racker.
//!
//! - [`SessionCore`]: the sans-IO session state machine (Get Channel Auth
//!   Caps, Open Session, RAKP 1–4 for cipher suites 17 and 3, Set Session
//!   Privilege Level, sequence numbers, retransmission, request/response
//!   matching, Close Session). Bytes and time in, bytes and events out.
//! - [`Session`]: the tokio UDP edge around it, with typed operations
//!   ([`Session::chassis_status`], [`Session::power`],
//!   [`Session::set_boot_device`], users, LAN, raw) and Serial-over-LAN
//!   ([`SolConsole`]).
//! - [`fan_out`] / [`fan_out_operation`]: one operation against many BMCs
//!   with bounded concurrency, results streamed as they arrive.
//! - [`codec`]: the sans-IO wire format both this client and racker-sim's
//!   simulated BMC use (framing, RAKP messages, keys, integrity,
//!   confidentiality, typed commands, completion codes).
//!
//! Cargo features: `client` (default) adds the tokio edge ([`Session`],
//! SOL, fan-out). With `default-features = false` the crate is the codec
//! and [`SessionCore`] only, without tokio.
//!
//! ```no_run
//! use racker_ipmi::{BmcAddress, Credentials, PowerAction, Session, SessionOptions};
//! # async fn demo() -> Result<(), racker_ipmi::Error> {
//! let bmc: BmcAddress = "172.24.213.10".parse()?;
//! let creds = Credentials::new("admin", "secret");
//! let mut s = Session::connect(&bmc, &creds, &SessionOptions::default()).await?;
//! let status = s.chassis_status().await?;
//! if !status.power_on {
//!     s.power(PowerAction::On).await?;
//! }
//! s.close().await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![deny(clippy::unwrap_used)]

#[cfg(feature = "client")]
mod client;
pub mod codec;
mod error;
#[cfg(feature = "client")]
mod fanout;
#[cfg(feature = "client")]
mod ops;
mod session;
#[cfg(feature = "client")]
mod sol;

#[cfg(feature = "client")]
pub use client::{BmcAddress, DEFAULT_PORT, Session};
pub use codec::{
    AddressSource, BootDevice, BootFlags, ChassisStatus, CipherSuite, DeviceId, LastPowerEvent,
    Password, PowerAction, PowerOutcome, Privilege, RawRequest, RawResponse, RestorePolicy,
    SolPacket, UserAccess, UserInfo, decode_user_name,
};
pub use error::{Error, Result};
#[cfg(feature = "client")]
pub use fanout::{
    Diag, FanOutResult, Operation, Output, fan_out, fan_out_operation, run_operation,
};
pub use session::{CipherPreference, Credentials, Event, SessionCore, SessionOptions};
#[cfg(feature = "client")]
pub use sol::{EscapeScanner, SolConsole};
