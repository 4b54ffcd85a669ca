//! Monitoring and inventory operations (sensors, SEL, FRU, MC info, LAN,
//! chassis capabilities, identify) over any [`Transport`]: an RMCP+
//! [`Session`] or, with the `local` feature, `/dev/ipmi0`.
//!
//! The one adapter between `ipmi-rs-core`'s typed commands and racker's
//! transports is [`command`] (typed) / [`request_of`] (message → raw
//! request): their request types give netfn, command and data, our
//! session carries them, their decoders read the reply.

use std::future::Future;
use std::num::NonZeroU16;
use std::sync::Mutex;

use ipmi_rs_core::connection::{IpmiCommand, Message};
use serde::Serialize;

use crate::client::Session;
use crate::codec::{RawRequest, RawResponse, RestorePolicy};
use crate::error::{Error, Result};
use crate::fru::{self, Fru};
use crate::sdr::{self, SdrCache, SdrStamp, SensorDef, SensorReading};
use crate::sel::{self, SelEntry, SelInfo};

/// Something that carries IPMI requests to a BMC and brings back replies.
pub trait Transport {
    /// The BMC's name for errors (`host:port` or `/dev/ipmi0`).
    fn label(&self) -> String;
    /// One request, one reply (any completion code).
    fn raw(&mut self, req: RawRequest) -> impl Future<Output = Result<RawResponse>> + Send;
}

impl Transport for Session {
    fn label(&self) -> String {
        self.address().to_string()
    }

    fn raw(&mut self, req: RawRequest) -> impl Future<Output = Result<RawResponse>> + Send {
        Session::raw(self, req)
    }
}

/// An `ipmi-rs-core` message as racker's raw request.
pub fn request_of(msg: impl Into<Message>) -> RawRequest {
    let m: Message = msg.into();
    RawRequest::new(m.netfn_raw(), m.cmd(), m.data().to_vec())
}

fn cmd_name(req: &RawRequest) -> String {
    crate::codec::command::name(req.netfn, req.cmd).to_string()
}

fn malformed(t: &impl Transport, command: &str, detail: impl Into<String>) -> Error {
    Error::Malformed {
        bmc: t.label(),
        command: command.into(),
        detail: detail.into(),
    }
}

/// Send `req`; a non-zero completion code becomes [`Error::CompletionCode`].
pub async fn request<T: Transport>(t: &mut T, req: RawRequest) -> Result<Vec<u8>> {
    let name = cmd_name(&req);
    let r = t.raw(req).await?;
    if r.completion_code != 0 {
        return Err(Error::CompletionCode {
            bmc: t.label(),
            command: name,
            code: r.completion_code,
        });
    }
    Ok(r.data)
}

/// Run one typed `ipmi-rs-core` command over `t` and decode its reply
/// with the command's own decoder.
pub async fn command<T: Transport, C>(t: &mut T, cmd: C) -> Result<C::Output>
where
    C: IpmiCommand,
    C::Error: std::fmt::Debug,
{
    let req = request_of(cmd);
    let name = cmd_name(&req);
    let data = request(t, req).await?;
    C::parse_success_response(&data).map_err(|e| malformed(t, &name, format!("{e:?}")))
}

/// Get SDR Repository Info: the stamp the SDR cache is keyed by.
pub async fn sdr_stamp<T: Transport>(t: &mut T) -> Result<SdrStamp> {
    let d = request(
        t,
        request_of(ipmi_rs_core::storage::sdr::GetSdrRepositoryInfo),
    )
    .await?;
    SdrStamp::decode(&d)
        .ok_or_else(|| malformed(t, "Get SDR Repository Info", "fewer than 14 bytes"))
}

/// Reserve SDR Repository (not in `ipmi-rs-core`); 0 when unsupported.
async fn reserve_sdr<T: Transport>(t: &mut T) -> Result<u16> {
    let r = t.raw(RawRequest::new(0x0A, 0x22, vec![])).await?;
    Ok(match (r.completion_code, r.data.get(..2)) {
        (0, Some(b)) => u16::from_le_bytes([b[0], b[1]]),
        _ => 0,
    })
}

/// Bytes of one Get SDR / Read FRU Data chunk: small enough for every BMC
/// (ipmitool starts at 16 too). `ipmi-rs-core`'s `GetDeviceSdr` always
/// asks for 0xFF ("whole record"), which BMCs may refuse with 0xCA.
const CHUNK: u8 = 16;

/// Read every SDR of the repository (record bytes, header included).
pub async fn read_sdrs<T: Transport>(t: &mut T) -> Result<Vec<Vec<u8>>> {
    let mut reservation = reserve_sdr(t).await?;
    let mut records = Vec::new();
    let mut id: u16 = 0;
    let mut seen = std::collections::HashSet::new();
    while id != 0xFFFF && seen.insert(id) && records.len() < 4096 {
        let mut record: Vec<u8> = Vec::new();
        let mut want = 5usize;
        let mut next = 0xFFFF;
        let mut retries = 0;
        while record.len() < want {
            let offset = record.len() as u8;
            let count = (want - record.len()).min(usize::from(CHUNK)) as u8;
            let [r0, r1] = reservation.to_le_bytes();
            let [i0, i1] = id.to_le_bytes();
            let r = t
                .raw(RawRequest::new(
                    0x0A,
                    0x23,
                    vec![r0, r1, i0, i1, offset, count],
                ))
                .await?;
            match r.completion_code {
                0 => {}
                0xC5 if retries < 3 => {
                    retries += 1;
                    reservation = reserve_sdr(t).await?;
                    record.clear();
                    want = 5;
                    continue;
                }
                code => {
                    return Err(Error::CompletionCode {
                        bmc: t.label(),
                        command: "Get SDR".into(),
                        code,
                    });
                }
            }
            let (Some(n), Some(chunk)) = (r.data.get(..2), r.data.get(2..)) else {
                return Err(malformed(t, "Get SDR", "no next record id"));
            };
            if chunk.is_empty() {
                return Err(malformed(t, "Get SDR", "empty record data"));
            }
            next = u16::from_le_bytes([n[0], n[1]]);
            record.extend_from_slice(&chunk[..chunk.len().min(usize::from(count))]);
            if record.len() >= 5 {
                want = 5 + usize::from(record[4]);
            }
        }
        records.push(record);
        id = next;
    }
    Ok(records)
}

/// The BMC's sensor definitions, from `cache` when its SDR repository is
/// unchanged since the last read (same record count and timestamps).
pub async fn sensor_defs<T: Transport>(
    t: &mut T,
    cache: Option<&Mutex<SdrCache>>,
) -> Result<std::sync::Arc<Vec<SensorDef>>> {
    let stamp = sdr_stamp(t).await?;
    let key = t.label();
    if let Some(defs) = cache.and_then(|c| c.lock().ok().and_then(|c| c.get(&key, &stamp))) {
        return Ok(defs);
    }
    // An empty repository has no record 0 to read (BMCs answer 0xCB).
    let defs = if stamp.records == 0 {
        Vec::new()
    } else {
        sdr::sensor_defs(&read_sdrs(t).await?)
    };
    Ok(match cache.and_then(|c| c.lock().ok()) {
        Some(mut c) => c.insert(&key, stamp, defs),
        None => std::sync::Arc::new(defs),
    })
}

/// Read every sensor of the SDR repository (Get Sensor Reading per sensor).
pub async fn sensors<T: Transport>(
    t: &mut T,
    cache: Option<&Mutex<SdrCache>>,
) -> Result<Vec<SensorReading>> {
    let defs = sensor_defs(t, cache).await?;
    let mut out = Vec::with_capacity(defs.len());
    for def in defs.iter() {
        if def.lun != 0 {
            continue; // other LUNs need bridging
        }
        let req = RawRequest::new(0x04, 0x2D, vec![def.number]);
        let r = t.raw(req).await?;
        let data: &[u8] = if r.completion_code == 0 { &r.data } else { &[] };
        out.push(sdr::interpret_reading(def, data));
    }
    Ok(out)
}

/// Get SEL Info.
pub async fn sel_info<T: Transport>(t: &mut T) -> Result<SelInfo> {
    let d = request(t, request_of(ipmi_rs_core::storage::sel::GetSelInfo)).await?;
    SelInfo::decode(&d).ok_or_else(|| malformed(t, "Get SEL Info", "fewer than 14 bytes"))
}

/// Every SEL entry, oldest first (at most 4096). `last` keeps the newest N.
pub async fn sel_list<T: Transport>(t: &mut T, last: Option<usize>) -> Result<Vec<SelEntry>> {
    let info = sel_info(t).await?;
    if info.entries == 0 {
        return Ok(Vec::new());
    }
    let mut id: u16 = 0;
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    while id != 0xFFFF && seen.insert(id) && out.len() < 4096 {
        let [i0, i1] = id.to_le_bytes();
        let d = request(t, RawRequest::new(0x0A, 0x43, vec![0, 0, i0, i1, 0, 0xFF])).await?;
        let (Some(n), Some(rec)) = (d.get(..2), d.get(2..)) else {
            return Err(malformed(t, "Get SEL Entry", "fewer than 2 bytes"));
        };
        id = u16::from_le_bytes([n[0], n[1]]);
        if let Some(e) = sel::decode_entry(rec) {
            out.push(e);
        }
    }
    if let Some(n) = last {
        let skip = out.len().saturating_sub(n);
        out.drain(..skip);
    }
    Ok(out)
}

/// Clear the SEL (Reserve SEL + Clear SEL, then wait for completion).
pub async fn sel_clear<T: Transport>(t: &mut T) -> Result<()> {
    use ipmi_rs_core::storage::sel::{ClearSel, ErasureProgress, ReserveSel};
    let res: NonZeroU16 = command(t, ReserveSel).await?;
    let mut progress = command(t, ClearSel::initiate(Some(res))).await?;
    for _ in 0..50 {
        if matches!(progress, ErasureProgress::Completed) {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        progress = command(t, ClearSel::get_status(Some(res))).await?;
    }
    Err(malformed(
        t,
        "Clear SEL",
        "erasure did not complete within 5 s",
    ))
}

/// Read FRU device 0 and decode it.
pub async fn fru<T: Transport>(t: &mut T) -> Result<Fru> {
    let info = request(t, RawRequest::new(0x0A, 0x10, vec![0])).await?;
    let size = info
        .get(..2)
        .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
        .ok_or_else(|| malformed(t, "Get FRU Inventory Area Info", "fewer than 2 bytes"))?;
    let by_words = info.get(2).is_some_and(|b| b & 1 == 1);
    let size = size.min(4096);
    let mut image = Vec::with_capacity(size);
    while image.len() < size {
        let count = (size - image.len()).min(usize::from(CHUNK)) as u8;
        let off = if by_words {
            image.len() / 2
        } else {
            image.len()
        } as u16;
        let [o0, o1] = off.to_le_bytes();
        let cnt = if by_words { count / 2 } else { count };
        let d = request(t, RawRequest::new(0x0A, 0x11, vec![0, o0, o1, cnt.max(1)])).await?;
        let got = d.first().copied().unwrap_or(0);
        let bytes = d.get(1..).unwrap_or_default();
        let n = usize::from(if by_words { got * 2 } else { got }).min(bytes.len());
        if n == 0 {
            break;
        }
        image.extend_from_slice(&bytes[..n]);
    }
    fru::parse(&image).map_err(|e| malformed(t, "Read FRU Data", e.0))
}

/// Get Device ID and Get Device GUID, as `mc info` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct McInfo {
    /// Device id.
    pub device_id: u8,
    /// Device revision.
    pub device_revision: u8,
    /// Firmware revision, e.g. `9.08`.
    pub firmware: String,
    /// IPMI version, e.g. `2.0`.
    pub ipmi_version: String,
    /// IANA manufacturer id.
    pub manufacturer_id: u32,
    /// Product id.
    pub product_id: u16,
    /// Device available (not updating or initialising).
    pub available: bool,
    /// Supported device functions: `sensor`, `sdr`, `sel`, `fru`, `chassis`, ...
    pub capabilities: Vec<String>,
    /// Auxiliary firmware revision bytes, hex.
    pub aux_revision: Option<String>,
    /// Device GUID (8-4-4-4-12 hex), if the BMC answers Get Device GUID.
    pub guid: Option<String>,
}

/// Get Device ID (decoded by `ipmi-rs-core`) and Get Device GUID.
pub async fn mc_info<T: Transport>(t: &mut T) -> Result<McInfo> {
    let id = command(t, ipmi_rs_core::app::GetDeviceId).await?;
    let guid = match request(t, RawRequest::new(0x06, 0x08, vec![])).await {
        Ok(d) if d.len() >= 16 => Some(format_guid(&d[..16])),
        _ => None,
    };
    let mut caps = Vec::new();
    for (on, name) in [
        (id.sensor_device_support, "sensor"),
        (id.sdr_repository_support, "sdr"),
        (id.sel_device_support, "sel"),
        (id.fru_inventory_support, "fru"),
        (id.ipmb_event_receiver_support, "ipmb-event-receiver"),
        (id.ipmb_event_generator_support, "ipmb-event-generator"),
        (id.bridge_support, "bridge"),
        (id.chassis_support, "chassis"),
    ] {
        if on {
            caps.push(name.to_string());
        }
    }
    Ok(McInfo {
        device_id: id.device_id,
        device_revision: id.device_revision,
        firmware: format!("{}.{:02}", id.major_fw_revision, id.minor_fw_revision),
        ipmi_version: format!("{}.{}", id.major_version, id.minor_version),
        manufacturer_id: id.manufacturer_id,
        product_id: id.product_id,
        available: id.device_available,
        capabilities: caps,
        aux_revision: id
            .aux_revision
            .map(|a| a.iter().map(|b| format!("{b:02x}")).collect()),
        guid,
    })
}

/// A GUID sent least-significant byte first, as 8-4-4-4-12 hex.
pub fn format_guid(wire: &[u8]) -> String {
    let b: Vec<u8> = wire.iter().rev().copied().collect();
    let hex = |r: std::ops::Range<usize>| -> String {
        b.get(r)
            .unwrap_or_default()
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect()
    };
    format!(
        "{}-{}-{}-{}-{}",
        hex(0..4),
        hex(4..6),
        hex(6..8),
        hex(8..10),
        hex(10..16)
    )
}

/// Chassis identify: blink for N seconds, on until turned off, or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Identify {
    /// Identify on until turned off (force).
    On,
    /// Identify off.
    Off,
    /// Identify for this many seconds (1–255).
    Seconds(u8),
}

/// Chassis Identify.
pub async fn identify<T: Transport>(t: &mut T, what: Identify) -> Result<()> {
    let data = match what {
        Identify::On => vec![0, 1],
        Identify::Off => vec![0],
        Identify::Seconds(s) => vec![s],
    };
    request(t, RawRequest::new(0x00, 0x04, data)).await?;
    Ok(())
}

/// A LAN channel's configuration, as `lan print` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LanConfig {
    /// Channel.
    pub channel: u8,
    /// `static`, `dhcp`, `bios`, `other` or `unspecified`.
    pub ip_source: Option<String>,
    /// IP address.
    #[serde(rename = "bmc_ip")]
    pub ip: Option<String>,
    /// Subnet mask.
    pub netmask: Option<String>,
    /// MAC address.
    #[serde(rename = "bmc_mac")]
    pub mac: Option<String>,
    /// Default gateway IP.
    #[serde(rename = "gateway_ip")]
    pub gateway: Option<String>,
    /// Default gateway MAC.
    pub gateway_mac: Option<String>,
    /// 802.1q VLAN id (None when disabled or not reported).
    pub vlan: Option<u16>,
}

async fn lan_param<T: Transport>(t: &mut T, channel: u8, param: u8) -> Option<Vec<u8>> {
    let d = request(
        t,
        RawRequest::new(0x0C, 0x02, vec![channel & 0x0F, param, 0, 0]),
    )
    .await
    .ok()?;
    d.get(1..).map(<[u8]>::to_vec)
}

fn ip4(b: &[u8]) -> Option<String> {
    b.get(..4)
        .map(|b| std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string())
}

fn mac6(b: &[u8]) -> Option<String> {
    b.get(..6).map(|b| {
        b.iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    })
}

/// Get LAN Configuration Parameters 3, 4, 5, 6, 12, 13 and 20; parameters
/// the BMC refuses stay `None`.
pub async fn lan_print<T: Transport>(t: &mut T, channel: u8) -> Result<LanConfig> {
    // The first one must work at all: a transport error is an error.
    let src = request(
        t,
        RawRequest::new(0x0C, 0x02, vec![channel & 0x0F, 4, 0, 0]),
    )
    .await?;
    let mut c = LanConfig {
        channel,
        ip_source: src.get(1).map(|v| {
            match v & 0x0F {
                0 => "unspecified",
                1 => "static",
                2 => "dhcp",
                3 => "bios",
                _ => "other",
            }
            .to_string()
        }),
        ..Default::default()
    };
    c.ip = lan_param(t, channel, 3).await.as_deref().and_then(ip4);
    c.mac = lan_param(t, channel, 5).await.as_deref().and_then(mac6);
    c.netmask = lan_param(t, channel, 6).await.as_deref().and_then(ip4);
    c.gateway = lan_param(t, channel, 12).await.as_deref().and_then(ip4);
    c.gateway_mac = lan_param(t, channel, 13).await.as_deref().and_then(mac6);
    c.vlan = lan_param(t, channel, 20).await.and_then(|b| {
        let v = u16::from_le_bytes([*b.first()?, *b.get(1)?]);
        (v & 0x8000 != 0).then_some(v & 0x0FFF)
    });
    Ok(c)
}

/// Get Chassis Capabilities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChassisCapabilities {
    /// Provides power interlock.
    pub power_interlock: bool,
    /// Provides diagnostic interrupt (FP NMI).
    pub diagnostic_interrupt: bool,
    /// Provides front panel lockout.
    pub front_panel_lockout: bool,
    /// Provides intrusion sensor.
    pub intrusion_sensor: bool,
    /// FRU info device address.
    pub fru_device: u8,
    /// SDR device address.
    pub sdr_device: u8,
    /// SEL device address.
    pub sel_device: u8,
    /// System management device address.
    pub sm_device: u8,
    /// Bridge device address (if given).
    pub bridge_device: Option<u8>,
}

/// Get Chassis Capabilities.
pub async fn chassis_capabilities<T: Transport>(t: &mut T) -> Result<ChassisCapabilities> {
    let d = request(t, RawRequest::new(0x00, 0x00, vec![])).await?;
    if d.len() < 5 {
        return Err(malformed(
            t,
            "Get Chassis Capabilities",
            "fewer than 5 bytes",
        ));
    }
    Ok(ChassisCapabilities {
        power_interlock: d[0] & 0x08 != 0,
        diagnostic_interrupt: d[0] & 0x04 != 0,
        front_panel_lockout: d[0] & 0x02 != 0,
        intrusion_sensor: d[0] & 0x01 != 0,
        fru_device: d[1],
        sdr_device: d[2],
        sel_device: d[3],
        sm_device: d[4],
        bridge_device: d.get(5).copied(),
    })
}

/// Get System Restart Cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestartCause {
    /// Cause code (low nibble).
    pub code: u8,
    /// Cause, e.g. `chassis-control`, `power-button`, `watchdog`.
    pub cause: String,
    /// Channel the restart came through.
    pub channel: u8,
}

/// The system firmware (BIOS) version from Get System Info Parameters
/// (parameter 1, IPMI 2.0 section 22.14a), as `bmc-info` and
/// `ipmi_exporter`'s `system_firmware_version` label show it; `None` when
/// the BMC does not keep one.
pub async fn system_firmware_version<T: Transport>(t: &mut T) -> Result<Option<String>> {
    let mut text = Vec::new();
    let mut want = None;
    for set in 0u8..16 {
        let d = request(t, RawRequest::new(0x06, 0x59, vec![0x00, 0x01, set, 0x00])).await?;
        // Parameter revision, set selector, then the block.
        let block = d.get(2..).unwrap_or_default();
        let data = if set == 0 {
            // Encoding (bits 3:0; 0 = ASCII+Latin1, 1 = UTF-8), length.
            let Some(&len) = block.get(1) else { break };
            want = Some(usize::from(len));
            block.get(2..).unwrap_or_default()
        } else {
            block
        };
        text.extend_from_slice(data);
        if want.is_some_and(|w| text.len() >= w) {
            break;
        }
    }
    text.truncate(want.unwrap_or(0));
    let text = String::from_utf8_lossy(&text)
        .trim_end_matches('\0')
        .trim()
        .to_string();
    Ok((!text.is_empty()).then_some(text))
}

/// Get System Restart Cause.
pub async fn restart_cause<T: Transport>(t: &mut T) -> Result<RestartCause> {
    let d = request(t, RawRequest::new(0x00, 0x07, vec![])).await?;
    let code = d
        .first()
        .map(|c| c & 0x0F)
        .ok_or_else(|| malformed(t, "Get System Restart Cause", "no data"))?;
    let cause = match code {
        0 => "unknown",
        1 => "chassis-control",
        2 => "reset-button",
        3 => "power-button",
        4 => "watchdog",
        5 => "oem",
        6 => "power-restore-always-on",
        7 => "power-restore-previous",
        8 => "pef-reset",
        9 => "pef-power-cycle",
        10 => "soft-reset",
        11 => "rtc-wakeup",
        _ => "reserved",
    };
    Ok(RestartCause {
        code,
        cause: cause.into(),
        channel: d.get(1).map_or(0, |c| c & 0x0F),
    })
}

/// Set Power Restore Policy; returns the policies the BMC supports.
pub async fn set_restore_policy<T: Transport>(
    t: &mut T,
    policy: RestorePolicy,
) -> Result<Vec<String>> {
    let code = match policy {
        RestorePolicy::AlwaysOff => 0,
        RestorePolicy::Previous => 1,
        RestorePolicy::AlwaysOn => 2,
        _ => 3, // no change: just ask what is supported
    };
    let d = request(t, RawRequest::new(0x00, 0x06, vec![code])).await?;
    let mask = d.first().copied().unwrap_or(0);
    Ok([(0, "always-off"), (1, "previous"), (2, "always-on")]
        .iter()
        .filter(|(bit, _)| mask & (1 << bit) != 0)
        .map(|(_, n)| (*n).to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapter_maps_ipmi_rs_messages() {
        let r = request_of(ipmi_rs_core::app::GetDeviceId);
        assert_eq!((r.netfn, r.cmd, r.data.len()), (0x06, 0x01, 0));
        let r = request_of(ipmi_rs_core::storage::sel::GetSelInfo);
        assert_eq!((r.netfn, r.cmd), (0x0A, 0x40));
        let r = request_of(ipmi_rs_core::storage::sdr::GetSdrRepositoryInfo);
        assert_eq!((r.netfn, r.cmd), (0x0A, 0x20));
    }

    #[test]
    fn guid_is_reversed() {
        let wire: Vec<u8> = (0u8..16).collect();
        assert_eq!(format_guid(&wire), "0f0e0d0c-0b0a-0908-0706-050403020100");
    }
}
