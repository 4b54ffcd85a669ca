//! Running one operation against many BMCs with bounded concurrency.

use std::future::Future;
use std::time::{Duration, Instant};

use futures::stream::{Stream, StreamExt};
use serde::Serialize;

use crate::client::{BmcAddress, Session};
use crate::codec::{
    AddressSource, BootDevice, BootFlags, ChassisStatus, DeviceId, PowerAction, PowerOutcome,
    Privilege, UserInfo,
};
use crate::codec::{Password, RawRequest, RawResponse};
use crate::error::Result;
use crate::fru::Fru;
use crate::monitor::{
    self, ChassisCapabilities, Identify, LanConfig, McInfo, RestartCause, Transport,
};
use crate::sdr::SensorReading;
use crate::sel::{SelEntry, SelInfo};
use crate::session::{Credentials, SessionOptions};

/// One BMC's result, yielded as soon as it is known.
#[derive(Debug)]
pub struct FanOutResult<K, T> {
    /// The caller's key for this BMC (e.g. its MAC address).
    pub key: K,
    /// The BMC.
    pub bmc: BmcAddress,
    /// What happened.
    pub result: Result<T>,
    /// Time from start of this BMC's work to its result.
    pub elapsed: Duration,
}

/// Run `f` for every target, at most `concurrency` at a time, yielding
/// each result as it completes (not in input order).
pub fn fan_out<K, T, F, Fut>(
    targets: impl IntoIterator<Item = (K, BmcAddress)>,
    concurrency: usize,
    f: F,
) -> impl Stream<Item = FanOutResult<K, T>>
where
    F: Fn(BmcAddress) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let jobs: Vec<(K, BmcAddress)> = targets.into_iter().collect();
    futures::stream::iter(jobs)
        .map(move |(key, bmc)| {
            let fut = f(bmc.clone());
            async move {
                let start = Instant::now();
                let result = fut.await;
                FanOutResult {
                    key,
                    bmc,
                    result,
                    elapsed: start.elapsed(),
                }
            }
        })
        .buffer_unordered(concurrency.max(1))
}

/// The operations `racker ipmi` runs, as data (so one value can be fanned out).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// Get Chassis Status.
    ChassisStatus,
    /// Idempotent Chassis Control.
    Power(PowerAction),
    /// Set boot device (parameter 5).
    SetBootDevice {
        /// Device.
        device: BootDevice,
        /// All future boots.
        persistent: bool,
        /// EFI.
        efi: bool,
    },
    /// Parameter 3 = 0x1f.
    DisableBootFlagTimeout,
    /// Read parameter 5.
    BootFlags,
    /// LAN channel address source to DHCP.
    LanDhcp {
        /// LAN channel (usually 1).
        channel: u8,
    },
    /// List users on a channel.
    ListUsers {
        /// Channel.
        channel: u8,
    },
    /// Rename a user slot.
    SetUserName {
        /// User id.
        user: u8,
        /// New name.
        name: String,
    },
    /// Set a user's password.
    SetUserPassword {
        /// User id.
        user: u8,
        /// New password.
        password: Password,
    },
    /// Enable or disable a user.
    SetUserEnabled {
        /// User id.
        user: u8,
        /// Enable?
        enabled: bool,
    },
    /// Set a user's channel privilege limit.
    SetUserPrivilege {
        /// Channel.
        channel: u8,
        /// User id.
        user: u8,
        /// Privilege.
        privilege: Privilege,
    },
    /// Raw request.
    Raw(RawRequest),
    /// Device id, chassis status, boot flags, sensor summary, last SEL entries.
    Diag,
    /// Every sensor of the SDR repository, read.
    Sensors,
    /// Get SEL Info.
    SelInfo,
    /// SEL entries (the newest `last` when given).
    SelList {
        /// Keep only the newest N.
        last: Option<usize>,
    },
    /// Clear the SEL.
    SelClear,
    /// FRU device 0.
    Fru,
    /// Chassis identify.
    Identify(Identify),
    /// LAN configuration of a channel.
    LanPrint {
        /// Channel.
        channel: u8,
    },
    /// Device id, firmware, GUID.
    McInfo,
    /// Get Chassis Capabilities.
    ChassisCapabilities,
    /// Get System Restart Cause.
    RestartCause,
    /// Set Power Restore Policy (`Unknown`: list the supported ones).
    SetPolicy(crate::codec::RestorePolicy),
}

/// Diagnostics gathered by [`Operation::Diag`]. Serialised as
/// `cipher_suite`, `device`, `chassis`, `boot_flags`, `sensors`, `sel`
/// (each null when unreadable) and `boot_flags_error`, `sensors_error`,
/// `sel_error` (null when read), docs/output.md.
#[derive(Debug, Clone, PartialEq)]
pub struct Diag {
    /// Negotiated cipher suite.
    pub cipher_suite: u8,
    /// Get Device ID.
    pub device: DeviceId,
    /// Chassis status.
    pub chassis: ChassisStatus,
    /// Boot parameter 5, or why it could not be read.
    pub boot_flags: std::result::Result<BootFlags, String>,
    /// Sensors, or why they could not be read.
    pub sensors: std::result::Result<Vec<SensorReading>, String>,
    /// The newest SEL entries (up to [`DIAG_SEL_ENTRIES`]), or why not.
    pub sel: std::result::Result<Vec<SelEntry>, String>,
}

/// SEL entries [`Operation::Diag`] reports.
pub const DIAG_SEL_ENTRIES: usize = 5;

impl Serialize for Diag {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut m = s.serialize_struct("Diag", 9)?;
        m.serialize_field("cipher_suite", &self.cipher_suite)?;
        m.serialize_field("device", &self.device)?;
        m.serialize_field("chassis", &self.chassis)?;
        m.serialize_field("boot_flags", &self.boot_flags.as_ref().ok())?;
        m.serialize_field("boot_flags_error", &self.boot_flags.as_ref().err())?;
        m.serialize_field("sensors", &self.sensors.as_ref().ok())?;
        m.serialize_field("sensors_error", &self.sensors.as_ref().err())?;
        m.serialize_field("sel", &self.sel.as_ref().ok())?;
        m.serialize_field("sel_error", &self.sel.as_ref().err())?;
        m.end()
    }
}

/// The result of an [`Operation`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "value", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Output {
    /// Chassis status.
    ChassisStatus(ChassisStatus),
    /// Power outcome.
    Power(PowerOutcome),
    /// Boot flags (set or read).
    BootFlags(BootFlags),
    /// Address source read back.
    AddressSource(AddressSource),
    /// Users.
    Users(Vec<UserInfo>),
    /// Raw reply.
    Raw(RawResponse),
    /// Diagnostics.
    Diag(Box<Diag>),
    /// Sensor readings.
    Sensors(Vec<SensorReading>),
    /// SEL info.
    SelInfo(SelInfo),
    /// SEL entries.
    Sel(Vec<SelEntry>),
    /// FRU inventory.
    Fru(Box<Fru>),
    /// MC info.
    McInfo(Box<McInfo>),
    /// LAN configuration.
    Lan(Box<LanConfig>),
    /// Chassis capabilities.
    ChassisCapabilities(ChassisCapabilities),
    /// Restart cause.
    RestartCause(RestartCause),
    /// Supported power restore policies.
    Policies(Vec<String>),
    /// Done, nothing to report.
    Done,
}

impl Session {
    /// Run one [`Operation`] in this session.
    pub async fn execute(&mut self, op: &Operation) -> Result<Output> {
        Ok(match op {
            Operation::ChassisStatus => Output::ChassisStatus(self.chassis_status().await?),
            Operation::Power(a) => Output::Power(self.power(*a).await?),
            Operation::SetBootDevice {
                device,
                persistent,
                efi,
            } => Output::BootFlags(self.set_boot_device(*device, *persistent, *efi).await?),
            Operation::DisableBootFlagTimeout => {
                self.disable_boot_flag_timeout().await?;
                Output::Done
            }
            Operation::BootFlags => Output::BootFlags(self.boot_flags().await?),
            Operation::LanDhcp { channel } => {
                Output::AddressSource(self.set_lan_dhcp(*channel).await?)
            }
            Operation::ListUsers { channel } => Output::Users(self.list_users(*channel).await?),
            Operation::SetUserName { user, name } => {
                self.set_user_name(*user, name).await?;
                Output::Done
            }
            Operation::SetUserPassword { user, password } => {
                self.set_user_password(*user, password).await?;
                Output::Done
            }
            Operation::SetUserEnabled { user, enabled } => {
                self.set_user_enabled(*user, *enabled).await?;
                Output::Done
            }
            Operation::SetUserPrivilege {
                channel,
                user,
                privilege,
            } => {
                self.set_user_privilege(*channel, *user, *privilege).await?;
                Output::Done
            }
            Operation::Raw(r) => Output::Raw(self.raw(r.clone()).await?),
            Operation::Diag => {
                let device = self.device_id().await?;
                let chassis = self.chassis_status().await?;
                let boot_flags = self.boot_flags().await.map_err(|e| e.to_string());
                let sensors = monitor::sensors(self, None)
                    .await
                    .map_err(|e| e.to_string());
                let sel = monitor::sel_list(self, Some(DIAG_SEL_ENTRIES))
                    .await
                    .map_err(|e| e.to_string());
                Output::Diag(Box::new(Diag {
                    cipher_suite: self.cipher_suite().id(),
                    device,
                    chassis,
                    boot_flags,
                    sensors,
                    sel,
                }))
            }
            other => match execute_over(self, other).await {
                Some(out) => out?,
                None => {
                    return Err(crate::Error::InvalidArgument(format!(
                        "{}: {other:?} is not an operation of a LAN session",
                        self.address()
                    )));
                }
            },
        })
    }
}

/// The operations any [`Transport`] runs the same way (the monitoring
/// commands, raw requests and the boot flags written raw); `None` for
/// those that need a LAN session (power, users, diag, ...).
pub(crate) async fn execute_over<T: Transport + Send>(
    t: &mut T,
    op: &Operation,
) -> Option<Result<Output>> {
    let run = async {
        Ok(match op {
            Operation::Sensors => Output::Sensors(monitor::sensors(t, None).await?),
            Operation::SelInfo => Output::SelInfo(monitor::sel_info(t).await?),
            Operation::SelList { last } => Output::Sel(monitor::sel_list(t, *last).await?),
            Operation::SelClear => {
                monitor::sel_clear(t).await?;
                Output::Done
            }
            Operation::Fru => Output::Fru(Box::new(monitor::fru(t).await?)),
            Operation::Identify(what) => {
                monitor::identify(t, *what).await?;
                Output::Done
            }
            Operation::LanPrint { channel } => {
                Output::Lan(Box::new(monitor::lan_print(t, *channel).await?))
            }
            Operation::McInfo => Output::McInfo(Box::new(monitor::mc_info(t).await?)),
            Operation::ChassisCapabilities => {
                Output::ChassisCapabilities(monitor::chassis_capabilities(t).await?)
            }
            Operation::RestartCause => Output::RestartCause(monitor::restart_cause(t).await?),
            Operation::SetPolicy(p) => Output::Policies(monitor::set_restore_policy(t, *p).await?),
            Operation::Raw(r) => Output::Raw(t.raw(r.clone()).await?),
            // The management node's own install sets its disk boot this
            // way (docs/lokomotive.md, "Installing the management node").
            Operation::SetBootDevice {
                device,
                persistent,
                efi,
            } => {
                let flags = BootFlags::new(*device, *persistent, *efi);
                t.raw(RawRequest::new(0x00, 0x08, flags.encode_request()))
                    .await?;
                Output::BootFlags(flags)
            }
            Operation::DisableBootFlagTimeout => {
                t.raw(RawRequest::new(0x00, 0x08, vec![0x03, 0x1F])).await?;
                Output::Done
            }
            _ => return Err(None),
        })
    };
    match run.await {
        Ok(out) => Some(Ok(out)),
        Err(Some(e)) => Some(Err(e)),
        Err(None) => None,
    }
}

impl<K> FanOutResult<K, Output> {
    /// Why this result is a failure, as docs/output.md's `error`: its
    /// `kind` and `message`. A raw reply with a non-zero completion code
    /// is a failure too.
    pub fn failure(&self) -> Option<(&'static str, String)> {
        match &self.result {
            Ok(Output::Raw(raw)) if raw.completion_code != 0 => Some((
                "completion-code",
                format!("{}: completion code {:#04x}", self.bmc, raw.completion_code),
            )),
            Ok(_) => None,
            Err(e) => Some((e.kind(), e.to_string())),
        }
    }
}

/// One BMC's result as docs/output.md's `ipmi` kind has it: the key's own
/// keys (e.g. the node and BMC), then `ok`, `error` (`kind`, `message`),
/// `elapsed_ms` and `result` (null when not ok).
impl<K: Serialize> Serialize for FanOutResult<K, Output> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct JsonError {
            kind: &'static str,
            message: String,
        }
        #[derive(Serialize)]
        struct Json<'a, K> {
            #[serde(flatten)]
            key: &'a K,
            ok: bool,
            error: Option<JsonError>,
            elapsed_ms: u128,
            result: Option<&'a Output>,
        }
        let failure = self.failure();
        Json {
            key: &self.key,
            ok: failure.is_none(),
            result: self.result.as_ref().ok().filter(|_| failure.is_none()),
            error: failure.map(|(kind, message)| JsonError { kind, message }),
            elapsed_ms: self.elapsed.as_millis(),
        }
        .serialize(s)
    }
}

/// The results of one operation against many BMCs: docs/output.md's
/// `ipmi` document, `{"results": [...]}` with each result as
/// [`FanOutResult`] serialises it.
#[derive(Debug, Serialize)]
pub struct FanOutReport<K> {
    /// One entry per BMC.
    pub results: Vec<FanOutResult<K, Output>>,
}

impl<K> Default for FanOutReport<K> {
    fn default() -> Self {
        FanOutReport {
            results: Vec::new(),
        }
    }
}

impl<K> FanOutReport<K> {
    /// Add one BMC's result.
    pub fn push(&mut self, result: FanOutResult<K, Output>) {
        self.results.push(result);
    }

    /// Sort the results by their keys (stable: equal keys keep their
    /// order), e.g. by node so that the document does not depend on which
    /// BMC answered first.
    pub fn sort_by(&mut self, mut cmp: impl FnMut(&K, &K) -> std::cmp::Ordering) {
        self.results.sort_by(|a, b| cmp(&a.key, &b.key));
    }
}

/// Connect, run `op`, close: one BMC.
pub async fn run_operation(
    bmc: &BmcAddress,
    creds: &Credentials,
    opts: &SessionOptions,
    op: &Operation,
) -> Result<Output> {
    let mut s = Session::connect(bmc, creds, opts).await?;
    let out = s.execute(op).await;
    let _ = s.close().await;
    out
}

/// [`fan_out`] of [`run_operation`] over `targets`.
pub fn fan_out_operation<'a, K: 'a>(
    targets: Vec<(K, BmcAddress)>,
    creds: &'a Credentials,
    opts: &'a SessionOptions,
    op: &'a Operation,
    concurrency: usize,
) -> impl Stream<Item = FanOutResult<K, Output>> + 'a {
    fan_out(targets, concurrency, move |bmc| async move {
        run_operation(&bmc, creds, opts, op).await
    })
}
