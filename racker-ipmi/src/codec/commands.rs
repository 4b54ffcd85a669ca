//! Typed IPMI command and response codecs: chassis status and control,
//! System Boot Options (boot flags), users, LAN configuration, device id,
//! Serial-over-LAN payloads (IPMI 2.0 §22, §23, §28, §15, docs/ipmi.md).
//!
//! Encoders and decoders are plain functions over bytes (property-tested);
//! the client sends them and the simulated BMC answers with them.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Power restore policy after AC loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestorePolicy {
    /// Stay off.
    AlwaysOff,
    /// Restore the previous state.
    Previous,
    /// Always power on.
    AlwaysOn,
    /// Not reported.
    Unknown,
}

/// Cause of the last power event (Get Chassis Status byte 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct LastPowerEvent {
    /// AC failed.
    pub ac_failed: bool,
    /// Power down caused by overload.
    pub overload: bool,
    /// Power down caused by interlock.
    pub interlock: bool,
    /// Power down caused by a power fault.
    pub fault: bool,
    /// Last power-on was commanded over IPMI.
    pub on_via_ipmi: bool,
}

/// Decoded Get Chassis Status reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChassisStatus {
    /// System power is on (serialised as `"power": "on"`/`"off"`, the
    /// vocabulary of docs/output.md).
    #[serde(rename = "power", serialize_with = "on_off")]
    pub power_on: bool,
    /// Power overload.
    pub power_overload: bool,
    /// Interlock active.
    pub interlock: bool,
    /// Main power fault.
    pub power_fault: bool,
    /// Power control fault.
    pub power_control_fault: bool,
    /// Restore policy.
    pub restore_policy: RestorePolicy,
    /// Last power event.
    pub last_power_event: LastPowerEvent,
    /// Chassis intrusion active.
    pub intrusion: bool,
    /// Front panel lockout active.
    pub front_panel_lockout: bool,
    /// Drive fault.
    pub drive_fault: bool,
    /// Cooling/fan fault.
    pub fan_fault: bool,
}

fn on_off<S: serde::Serializer>(on: &bool, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(if *on { "on" } else { "off" })
}

impl ChassisStatus {
    /// A powered-on or -off chassis with no faults and the given restore
    /// policy and last power event.
    pub fn new(power_on: bool, restore_policy: RestorePolicy, last: LastPowerEvent) -> Self {
        ChassisStatus {
            power_on,
            power_overload: false,
            interlock: false,
            power_fault: false,
            power_control_fault: false,
            restore_policy,
            last_power_event: last,
            intrusion: false,
            front_panel_lockout: false,
            drive_fault: false,
            fan_fault: false,
        }
    }

    /// Encode the response data (after the completion code): the three
    /// mandatory bytes and the optional front panel byte (0).
    pub fn encode(&self) -> Vec<u8> {
        let bit = |b: bool, v: u8| if b { v } else { 0 };
        let policy = match self.restore_policy {
            RestorePolicy::AlwaysOff => 0,
            RestorePolicy::Previous => 1,
            RestorePolicy::AlwaysOn => 2,
            RestorePolicy::Unknown => 3,
        };
        let l = &self.last_power_event;
        vec![
            bit(self.power_on, 0x01)
                | bit(self.power_overload, 0x02)
                | bit(self.interlock, 0x04)
                | bit(self.power_fault, 0x08)
                | bit(self.power_control_fault, 0x10)
                | (policy << 5),
            bit(l.ac_failed, 0x01)
                | bit(l.overload, 0x02)
                | bit(l.interlock, 0x04)
                | bit(l.fault, 0x08)
                | bit(l.on_via_ipmi, 0x10),
            bit(self.intrusion, 0x01)
                | bit(self.front_panel_lockout, 0x02)
                | bit(self.drive_fault, 0x04)
                | bit(self.fan_fault, 0x08),
            0x00,
        ]
    }

    /// Decode the response data (after the completion code).
    pub fn decode(data: &[u8]) -> Option<Self> {
        if data.len() < 3 {
            return None;
        }
        let (a, b, c) = (data[0], data[1], data[2]);
        Some(ChassisStatus {
            power_on: a & 0x01 != 0,
            power_overload: a & 0x02 != 0,
            interlock: a & 0x04 != 0,
            power_fault: a & 0x08 != 0,
            power_control_fault: a & 0x10 != 0,
            restore_policy: match (a >> 5) & 0x03 {
                0 => RestorePolicy::AlwaysOff,
                1 => RestorePolicy::Previous,
                2 => RestorePolicy::AlwaysOn,
                _ => RestorePolicy::Unknown,
            },
            last_power_event: LastPowerEvent {
                ac_failed: b & 0x01 != 0,
                overload: b & 0x02 != 0,
                interlock: b & 0x04 != 0,
                fault: b & 0x08 != 0,
                on_via_ipmi: b & 0x10 != 0,
            },
            intrusion: c & 0x01 != 0,
            front_panel_lockout: c & 0x02 != 0,
            drive_fault: c & 0x04 != 0,
            fan_fault: c & 0x08 != 0,
        })
    }
}

/// Chassis Control actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PowerAction {
    /// Power up.
    On,
    /// Hard power down.
    Off,
    /// Power cycle (power on when off).
    Cycle,
    /// Hard reset (power on when off).
    Reset,
    /// ACPI soft shutdown.
    Soft,
}

impl PowerAction {
    /// Chassis Control data byte.
    pub fn code(self) -> u8 {
        match self {
            PowerAction::Off => 0x00,
            PowerAction::On => 0x01,
            PowerAction::Cycle => 0x02,
            PowerAction::Reset => 0x03,
            PowerAction::Soft => 0x05,
        }
    }
}

impl std::str::FromStr for PowerAction {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "on" => PowerAction::On,
            "off" => PowerAction::Off,
            "cycle" => PowerAction::Cycle,
            "reset" => PowerAction::Reset,
            "soft" => PowerAction::Soft,
            _ => return Err(Error::InvalidArgument(format!("power action {s:?}"))),
        })
    }
}

/// What `Session::power` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PowerOutcome {
    /// The action was sent and accepted.
    Done,
    /// The chassis already was in the requested state; nothing was sent.
    AlreadyInState,
    /// Cycle/reset on a chassis that was off: it was powered on instead.
    PoweredOn,
}

/// Boot device selector (parameter 5, data 2 bits 5:2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BootDevice {
    /// No override.
    None,
    /// Network (PXE).
    Pxe,
    /// Default hard disk.
    Disk,
    /// Hard disk, safe mode.
    DiskSafe,
    /// Diagnostic partition.
    Diagnostic,
    /// CD/DVD.
    Cdrom,
    /// BIOS setup.
    BiosSetup,
    /// Remote floppy / primary removable media.
    Floppy,
    /// Any other selector value.
    Other(u8),
}

impl BootDevice {
    /// Selector value (4 bits).
    pub fn selector(self) -> u8 {
        match self {
            BootDevice::None => 0x0,
            BootDevice::Pxe => 0x1,
            BootDevice::Disk => 0x2,
            BootDevice::DiskSafe => 0x3,
            BootDevice::Diagnostic => 0x4,
            BootDevice::Cdrom => 0x5,
            BootDevice::BiosSetup => 0x6,
            BootDevice::Floppy => 0xF,
            BootDevice::Other(v) => v & 0x0F,
        }
    }

    /// From the 4-bit selector.
    pub fn from_selector(v: u8) -> Self {
        match v & 0x0F {
            0x0 => BootDevice::None,
            0x1 => BootDevice::Pxe,
            0x2 => BootDevice::Disk,
            0x3 => BootDevice::DiskSafe,
            0x4 => BootDevice::Diagnostic,
            0x5 => BootDevice::Cdrom,
            0x6 => BootDevice::BiosSetup,
            0xF => BootDevice::Floppy,
            v => BootDevice::Other(v),
        }
    }
}

impl std::fmt::Display for BootDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BootDevice::None => f.write_str("none"),
            BootDevice::Pxe => f.write_str("pxe"),
            BootDevice::Disk => f.write_str("disk"),
            BootDevice::DiskSafe => f.write_str("disk-safe"),
            BootDevice::Diagnostic => f.write_str("diagnostic"),
            BootDevice::Cdrom => f.write_str("cdrom"),
            BootDevice::BiosSetup => f.write_str("bios-setup"),
            BootDevice::Floppy => f.write_str("floppy"),
            BootDevice::Other(v) => write!(f, "other({v:#x})"),
        }
    }
}

/// Boot flags (System Boot Options parameter 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootFlags {
    /// Boot flags valid.
    pub valid: bool,
    /// Applies to all future boots (else next boot only).
    pub persistent: bool,
    /// EFI boot (else legacy BIOS).
    pub efi: bool,
    /// Boot device.
    pub device: BootDevice,
    /// The five raw data bytes.
    pub raw: [u8; 5],
}

impl BootFlags {
    /// Valid flags for `device`, as `racker` sets them.
    pub fn new(device: BootDevice, persistent: bool, efi: bool) -> Self {
        let raw = [
            0x80 | (u8::from(persistent) << 6) | (u8::from(efi) << 5),
            (device.selector() & 0x0F) << 2,
            0,
            0,
            0,
        ];
        BootFlags {
            valid: true,
            persistent,
            efi,
            device,
            raw,
        }
    }

    /// Decode the five data bytes.
    pub fn from_data(raw: [u8; 5]) -> Self {
        BootFlags {
            valid: raw[0] & 0x80 != 0,
            persistent: raw[0] & 0x40 != 0,
            efi: raw[0] & 0x20 != 0,
            device: BootDevice::from_selector(raw[1] >> 2),
            raw,
        }
    }

    /// Decode a Get System Boot Options (parameter 5) reply after the
    /// completion code: version, parameter, five data bytes.
    pub fn decode_reply(data: &[u8]) -> Option<Self> {
        if data.len() < 7 || data[1] & 0x7F != 5 {
            return None;
        }
        let mut raw = [0u8; 5];
        raw.copy_from_slice(&data[2..7]);
        Some(BootFlags::from_data(raw))
    }

    /// Set System Boot Options request data (parameter 5).
    pub fn encode_request(&self) -> Vec<u8> {
        let mut v = vec![0x05];
        v.extend_from_slice(&self.raw);
        v
    }
}

/// IPMI privilege levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Privilege {
    /// Callback.
    Callback,
    /// User.
    User,
    /// Operator.
    Operator,
    /// Administrator.
    Administrator,
    /// OEM proprietary.
    Oem,
    /// No access.
    NoAccess,
    /// Reserved value.
    Other(u8),
}

impl Privilege {
    /// Numeric level.
    pub fn level(self) -> u8 {
        match self {
            Privilege::Callback => 1,
            Privilege::User => 2,
            Privilege::Operator => 3,
            Privilege::Administrator => 4,
            Privilege::Oem => 5,
            Privilege::NoAccess => 0x0F,
            Privilege::Other(v) => v & 0x0F,
        }
    }

    /// From the numeric level.
    pub fn from_level(v: u8) -> Self {
        match v & 0x0F {
            1 => Privilege::Callback,
            2 => Privilege::User,
            3 => Privilege::Operator,
            4 => Privilege::Administrator,
            5 => Privilege::Oem,
            0x0F => Privilege::NoAccess,
            v => Privilege::Other(v),
        }
    }
}

impl std::str::FromStr for Privilege {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "callback" => Privilege::Callback,
            "user" => Privilege::User,
            "operator" => Privilege::Operator,
            "administrator" | "admin" => Privilege::Administrator,
            "oem" => Privilege::Oem,
            "no-access" | "none" => Privilege::NoAccess,
            _ => return Err(Error::InvalidArgument(format!("privilege {s:?}"))),
        })
    }
}

/// Get User Access reply, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct UserAccess {
    /// Maximum number of user ids.
    pub max_users: u8,
    /// Number of enabled user ids.
    pub enabled_users: u8,
    /// `Some(true)` enabled, `Some(false)` disabled, `None` unspecified.
    pub enabled: Option<bool>,
    /// IPMI messaging allowed.
    pub ipmi_messaging: bool,
    /// Link authentication allowed.
    pub link_auth: bool,
    /// Callback only.
    pub callback_only: bool,
    /// Channel privilege limit.
    pub privilege: Privilege,
}

impl UserAccess {
    /// Encode the reply data after the completion code.
    pub fn encode(&self) -> Vec<u8> {
        let status = match self.enabled {
            Some(true) => 0x40,
            Some(false) => 0x80,
            None => 0x00,
        };
        vec![
            self.max_users & 0x3F,
            status | (self.enabled_users & 0x3F),
            0x01,
            (u8::from(self.callback_only) << 6)
                | (u8::from(self.link_auth) << 5)
                | (u8::from(self.ipmi_messaging) << 4)
                | self.privilege.level(),
        ]
    }

    /// Decode the reply data after the completion code.
    pub fn decode(data: &[u8]) -> Option<Self> {
        if data.len() < 4 {
            return None;
        }
        Some(UserAccess {
            max_users: data[0] & 0x3F,
            enabled_users: data[1] & 0x3F,
            enabled: match data[1] >> 6 {
                0b01 => Some(true),
                0b10 => Some(false),
                _ => None,
            },
            callback_only: data[3] & 0x40 != 0,
            link_auth: data[3] & 0x20 != 0,
            ipmi_messaging: data[3] & 0x10 != 0,
            privilege: Privilege::from_level(data[3]),
        })
    }
}

/// One user slot on a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    /// User id (1-based).
    pub id: u8,
    /// Name (empty for an unnamed slot).
    pub name: String,
    /// Access on the channel.
    pub access: UserAccess,
}

/// Decode a 16-byte user name (NUL padded).
pub fn decode_user_name(data: &[u8]) -> String {
    let end = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    String::from_utf8_lossy(&data[..end]).into_owned()
}

/// Decoded Get Device ID reply (the fields diagnostics print).
///
/// JSON (docs/output.md, `diag`'s `device`), with `mc info`'s keys:
/// `device_id`, `device_revision`, `firmware` (`"1.00"`), `ipmi_version`
/// (`"2.0"`), `manufacturer_id`, `product_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceId {
    /// Device id.
    pub device_id: u8,
    /// Device revision.
    pub revision: u8,
    /// Firmware major.
    pub firmware_major: u8,
    /// Firmware minor (BCD as sent).
    pub firmware_minor: u8,
    /// IPMI version byte (0x02 = 2.0).
    pub ipmi_version: u8,
    /// IANA manufacturer id.
    pub manufacturer: u32,
    /// Product id.
    pub product: u16,
}

impl Serialize for DeviceId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut m = s.serialize_struct("DeviceId", 6)?;
        m.serialize_field("device_id", &self.device_id)?;
        m.serialize_field("device_revision", &self.revision)?;
        m.serialize_field(
            "firmware",
            &format!("{}.{:02x}", self.firmware_major, self.firmware_minor),
        )?;
        m.serialize_field(
            "ipmi_version",
            &format!("{}.{}", self.ipmi_version & 0x0F, self.ipmi_version >> 4),
        )?;
        m.serialize_field("manufacturer_id", &self.manufacturer)?;
        m.serialize_field("product_id", &self.product)?;
        m.end()
    }
}

impl DeviceId {
    /// Decode the reply data after the completion code.
    pub fn decode(d: &[u8]) -> Option<Self> {
        if d.len() < 11 {
            return None;
        }
        Some(DeviceId {
            device_id: d[0],
            revision: d[1] & 0x0F,
            firmware_major: d[2] & 0x7F,
            firmware_minor: d[3],
            ipmi_version: d[4],
            manufacturer: u32::from_le_bytes([d[6], d[7], d[8] & 0x0F, 0]),
            product: u16::from_le_bytes([d[9], d[10]]),
        })
    }
}

/// LAN IP address source (LAN parameter 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressSource {
    /// Unspecified.
    Unspecified,
    /// Static.
    Static,
    /// DHCP.
    Dhcp,
    /// BIOS or system software.
    Bios,
    /// Other protocol.
    Other(u8),
}

impl AddressSource {
    /// From the parameter value.
    pub fn from_value(v: u8) -> Self {
        match v & 0x0F {
            0 => AddressSource::Unspecified,
            1 => AddressSource::Static,
            2 => AddressSource::Dhcp,
            3 => AddressSource::Bios,
            v => AddressSource::Other(v),
        }
    }
}

/// Encode a user name as the 16 NUL-padded bytes of Get/Set User Name
/// (longer names are cut).
pub fn encode_user_name(name: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    let n = name.len().min(16);
    out[..n].copy_from_slice(&name[..n]);
    out
}

/// A request to send to the BMC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRequest {
    /// Network function (even, request form).
    pub netfn: u8,
    /// Command.
    pub cmd: u8,
    /// Request data.
    pub data: Vec<u8>,
}

impl RawRequest {
    /// Build a request.
    pub fn new(netfn: u8, cmd: u8, data: impl Into<Vec<u8>>) -> Self {
        RawRequest {
            netfn,
            cmd,
            data: data.into(),
        }
    }

    /// One byte of a raw request as `ipmitool raw` takes it: hex, with or
    /// without `0x` (`0x06`, `06`, `6`).
    pub fn parse_byte(text: &str) -> Option<u8> {
        let hex = text
            .strip_prefix("0x")
            .or_else(|| text.strip_prefix("0X"))
            .unwrap_or(text);
        u8::from_str_radix(hex, 16).ok()
    }
}

/// A BMC reply: completion code and data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawResponse {
    /// Network function of the reply (request netfn + 1).
    pub netfn: u8,
    /// Command.
    pub cmd: u8,
    /// Completion code (0 = success).
    pub completion_code: u8,
    /// Response data after the completion code.
    pub data: Vec<u8>,
}

/// A Serial-over-LAN payload (IPMI 2.0 §15.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SolPacket {
    /// Packet sequence number (0 = ack only).
    pub sequence: u8,
    /// Sequence number being acknowledged.
    pub ack_sequence: u8,
    /// Characters accepted from the acknowledged packet.
    pub accepted: u8,
    /// Operation/status byte.
    pub status: u8,
    /// Console characters.
    pub data: Vec<u8>,
}

impl SolPacket {
    /// Decode a SOL payload; `None` if shorter than its 4-byte header.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < 4 {
            return None;
        }
        Some(SolPacket {
            sequence: bytes[0] & 0x0F,
            ack_sequence: bytes[1] & 0x0F,
            accepted: bytes[2],
            status: bytes[3],
            data: bytes[4..].to_vec(),
        })
    }

    /// Encode the payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = vec![
            self.sequence & 0x0F,
            self.ack_sequence & 0x0F,
            self.accepted,
            self.status,
        ];
        v.extend_from_slice(&self.data);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spec_boot_flag_bytes() {
        assert_eq!(
            BootFlags::new(BootDevice::Pxe, true, true).encode_request(),
            vec![0x05, 0xe0, 0x04, 0, 0, 0]
        );
        assert_eq!(
            BootFlags::new(BootDevice::Disk, true, true).encode_request(),
            vec![0x05, 0xe0, 0x08, 0, 0, 0]
        );
        assert_eq!(BootFlags::new(BootDevice::Pxe, false, true).raw[0], 0xa0);
        let f = BootFlags::decode_reply(&[0x01, 0x05, 0xe0, 0x08, 0, 0, 0]).unwrap();
        assert!(f.valid && f.persistent && f.efi);
        assert_eq!(f.device, BootDevice::Disk);
    }

    #[test]
    fn chassis_status_decodes_fields() {
        let s = ChassisStatus::decode(&[0x21, 0x10, 0x08]).unwrap();
        assert!(s.power_on);
        assert_eq!(s.restore_policy, RestorePolicy::Previous);
        assert!(s.last_power_event.on_via_ipmi);
        assert!(s.fan_fault);
        assert!(!s.drive_fault);
        assert_eq!(ChassisStatus::decode(&[0x41, 0x10]), None);
    }

    fn device() -> impl Strategy<Value = BootDevice> {
        (0u8..16).prop_map(BootDevice::from_selector)
    }

    proptest! {
        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = ChassisStatus::decode(&data);
            let _ = BootFlags::decode_reply(&data);
            let _ = UserAccess::decode(&data);
            let _ = DeviceId::decode(&data);
            let _ = decode_user_name(&data);
            let _ = SolPacket::decode(&data);
        }

        #[test]
        fn boot_flags_roundtrip(dev in device(), persistent: bool, efi: bool) {
            let f = BootFlags::new(dev, persistent, efi);
            let mut reply = vec![0x01];
            reply.extend_from_slice(&f.encode_request());
            let back = BootFlags::decode_reply(&reply).unwrap();
            prop_assert_eq!(back, f);
            prop_assert_eq!(BootDevice::from_selector(dev.selector()), dev);
        }

        #[test]
        fn encoders_round_trip(bytes in proptest::array::uniform4(any::<u8>())) {
            if let Some(s) = ChassisStatus::decode(&bytes) {
                prop_assert_eq!(ChassisStatus::decode(&s.encode()), Some(s));
            }
            if let Some(u) = UserAccess::decode(&bytes) {
                prop_assert_eq!(UserAccess::decode(&u.encode()), Some(u));
            }
            let sol = SolPacket { sequence: bytes[0] & 0x0F, ack_sequence: bytes[1] & 0x0F, accepted: bytes[2], status: bytes[3], data: bytes.to_vec() };
            prop_assert_eq!(SolPacket::decode(&sol.encode()), Some(sol));
        }

        #[test]
        fn raw_bytes_parse_as_ipmitool_writes_them(b: u8, text in "\\PC{0,6}") {
            for form in [format!("{b:#04x}"), format!("{b:02x}"), format!("{b:x}"), format!("0X{b:02X}")] {
                prop_assert_eq!(RawRequest::parse_byte(&form), Some(b), "{}", form);
            }
            if let Some(v) = RawRequest::parse_byte(&text) {
                prop_assert_eq!(RawRequest::parse_byte(&format!("{v:#04x}")), Some(v));
            }
            // Three hex digits are more than a byte.
            prop_assert_eq!(RawRequest::parse_byte(&format!("{:x}", u16::from(b) + 0x100)), None);
        }

        #[test]
        fn privilege_roundtrip(v in 0u8..16) {
            prop_assert_eq!(Privilege::from_level(v).level(), v);
        }
    }
}

/// Enums with an `Other(code)` variant serialise as their fixed word
/// (docs/output.md: no externally tagged enums); any other code is
/// `"other"`.
fn serialize_word<S: serde::Serializer>(word: &str, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(word)
}

impl Serialize for BootDevice {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            BootDevice::Other(_) => serialize_word("other", s),
            known => serialize_word(&known.to_string(), s),
        }
    }
}

impl Serialize for Privilege {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let word = match self {
            Privilege::Callback => "callback",
            Privilege::User => "user",
            Privilege::Operator => "operator",
            Privilege::Administrator => "administrator",
            Privilege::Oem => "oem",
            Privilege::NoAccess => "no-access",
            Privilege::Other(_) => "other",
        };
        serialize_word(word, s)
    }
}

impl Serialize for AddressSource {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let word = match self {
            AddressSource::Unspecified => "unspecified",
            AddressSource::Static => "static",
            AddressSource::Dhcp => "dhcp",
            AddressSource::Bios => "bios",
            AddressSource::Other(_) => "other",
        };
        serialize_word(word, s)
    }
}

#[cfg(test)]
mod word_tests {
    use super::*;

    #[test]
    fn other_codes_are_the_word_other() {
        assert_eq!(
            serde_json::to_string(&BootDevice::Other(0x1f)).unwrap(),
            "\"other\""
        );
        assert_eq!(
            serde_json::to_string(&BootDevice::DiskSafe).unwrap(),
            "\"disk-safe\""
        );
        assert_eq!(
            serde_json::to_string(&Privilege::Other(9)).unwrap(),
            "\"other\""
        );
        assert_eq!(
            serde_json::to_string(&Privilege::NoAccess).unwrap(),
            "\"no-access\""
        );
        assert_eq!(
            serde_json::to_string(&AddressSource::Other(7)).unwrap(),
            "\"other\""
        );
        assert_eq!(
            serde_json::to_string(&AddressSource::Dhcp).unwrap(),
            "\"dhcp\""
        );
    }
}
