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

mod client;
mod crypto;
mod error;
mod fanout;
mod ops;
mod session;
mod sol;
mod wire;

pub use client::{BmcAddress, DEFAULT_PORT, Session};
pub use crypto::CipherSuite;
pub use error::{Error, Result};
pub use fanout::{
    Diag, FanOutResult, Operation, Output, fan_out, fan_out_operation, run_operation,
};
pub use ops::{
    AddressSource, BootDevice, BootFlags, ChassisStatus, DeviceId, LastPowerEvent, PowerAction,
    PowerOutcome, Privilege, RestorePolicy, UserAccess, UserInfo, decode_user_name,
};
pub use session::{
    CipherPreference, Credentials, Event, Password, RawRequest, RawResponse, SessionCore,
    SessionOptions, SolPacket,
};
pub use sol::{EscapeScanner, SolConsole};
