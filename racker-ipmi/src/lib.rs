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
//! - [`sdr`], [`sel`], [`fru`]: sans-IO decoders for sensors, the event
//!   log and FRU inventory. SDR records, sensor types, SEL entries and
//!   Device ID are decoded by `ipmi-rs-core`; where it is wrong or
//!   missing something (negative M, one's-complement readings,
//!   linearization, panics on short records, no FRU, private timestamps)
//!   these modules wrap or extend it, each case with a test.
//! - [`monitor`]: sensors (with an SDR cache keyed by the repository's
//!   change timestamps), SEL, FRU, MC info, LAN print, identify, chassis
//!   capabilities over any [`Transport`]; [`monitor::command`] is the one
//!   adapter running an `ipmi-rs-core` typed command over our session.
//! - JSON: every result type serialises in racker's output vocabulary
//!   (docs/output.md): fixed lowercase words for enums ([`words`]: sensor
//!   types, units, chassis types), RFC 3339 `*_at` times, and a
//!   [`FanOutResult`] of an [`Output`] as one BMC's `ok`/`error`/
//!   `elapsed_ms`/`result` after its key's own fields; a
//!   [`FanOutReport`] is the document of all of them.
//! - [`text`]: text in ipmitool's layout, for tools that replace ipmitool
//!   scripts (`chassis status`, `sensor list`, `sel list`, `mc info`, ...),
//!   and the block/one-line/consolidated layout of fan-out results.
//!
//! Why racker has its own RMCP+ layer instead of `ipmi-rs`'s: that one is
//! blocking (one thread per BMC for a rack-wide fan-out) and has no
//! Serial-over-LAN. `ipmi-rs` is used for what it does well: its typed
//! commands and decoders, and its `/dev/ipmi0` ioctl transport for local
//! use (feature `local`, [`LocalBmc`]).
//!
//! Cargo features: `client` (default) adds the tokio edge ([`Session`],
//! SOL, fan-out, [`monitor`]); `local` adds the in-band transport. With
//! `default-features = false` the crate is the codec, [`SessionCore`] and
//! the sans-IO decoders only, without tokio.
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
pub mod exporter;
#[cfg(feature = "client")]
mod fanout;
pub mod fru;
#[cfg(feature = "local")]
mod local;
#[cfg(feature = "client")]
pub mod monitor;
#[cfg(feature = "client")]
mod ops;
pub mod sdr;
pub mod sel;
mod session;
#[cfg(feature = "client")]
mod sol;
#[cfg(feature = "client")]
pub mod text;
pub mod words;

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
    DIAG_SEL_ENTRIES, Diag, FanOutReport, FanOutResult, Operation, Output, fan_out,
    fan_out_operation, run_operation,
};
#[cfg(feature = "local")]
pub use local::{DEFAULT_DEVICE, LocalBmc};
#[cfg(feature = "client")]
pub use monitor::Transport;
pub use session::{CipherPreference, Credentials, Event, SessionCore, SessionOptions};
#[cfg(feature = "client")]
pub use sol::{EscapeScanner, SolConsole};
