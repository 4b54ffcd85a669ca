//! Typed IPMI operations: chassis, boot options, LAN, users.
//!
//! Encoders and decoders are plain functions over bytes (property-tested);
//! the `impl Session` block at the bottom sends them.

use serde::Serialize;

use crate::client::Session;
use crate::error::{Error, Result};
use crate::session::RawRequest;

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
    /// System power is on.
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

impl ChassisStatus {
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

/// What [`Session::power`] did.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
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

fn malformed(s: &Session, command: &str, detail: &str) -> Error {
    Error::Malformed {
        bmc: s.address().to_string(),
        command: command.into(),
        detail: detail.into(),
    }
}

impl Session {
    /// Get Chassis Status, decoded.
    pub async fn chassis_status(&mut self) -> Result<ChassisStatus> {
        let d = self.request(RawRequest::new(0x00, 0x01, vec![])).await?;
        ChassisStatus::decode(&d)
            .ok_or_else(|| malformed(self, "Get Chassis Status", "fewer than 3 bytes"))
    }

    /// Get Device ID, decoded.
    pub async fn device_id(&mut self) -> Result<DeviceId> {
        let d = self.request(RawRequest::new(0x06, 0x01, vec![])).await?;
        DeviceId::decode(&d).ok_or_else(|| malformed(self, "Get Device ID", "fewer than 11 bytes"))
    }

    /// Chassis Control, idempotently: `on` when on and `off`/`soft` when off
    /// succeed without sending anything; `cycle`/`reset` when off power on.
    /// A 0xD5 ("not supported in present state") reply is accepted when the
    /// chassis is in the requested state afterwards.
    pub async fn power(&mut self, action: PowerAction) -> Result<PowerOutcome> {
        let on = self.chassis_status().await?.power_on;
        let (code, outcome) = match (action, on) {
            (PowerAction::On, true) | (PowerAction::Off | PowerAction::Soft, false) => {
                return Ok(PowerOutcome::AlreadyInState);
            }
            (PowerAction::Cycle | PowerAction::Reset, false) => {
                (PowerAction::On.code(), PowerOutcome::PoweredOn)
            }
            _ => (action.code(), PowerOutcome::Done),
        };
        let r = self.raw(RawRequest::new(0x00, 0x02, vec![code])).await?;
        match r.completion_code {
            0 => Ok(outcome),
            0xD5 => {
                let now_on = self.chassis_status().await?.power_on;
                let wanted_on = !matches!(action, PowerAction::Off | PowerAction::Soft);
                if now_on == wanted_on {
                    Ok(PowerOutcome::AlreadyInState)
                } else {
                    Err(self.cc_error("Chassis Control", 0xD5))
                }
            }
            code => Err(self.cc_error("Chassis Control", code)),
        }
    }

    /// Set the boot device via System Boot Options parameter 5.
    pub async fn set_boot_device(
        &mut self,
        device: BootDevice,
        persistent: bool,
        efi: bool,
    ) -> Result<BootFlags> {
        let flags = BootFlags::new(device, persistent, efi);
        self.request(RawRequest::new(0x00, 0x08, flags.encode_request()))
            .await?;
        Ok(flags)
    }

    /// Stop the BMC from clearing the boot flags (parameter 3 = 0x1f: no
    /// 60-s timeout, keep them across power-button, reset, watchdog, PEF).
    pub async fn disable_boot_flag_timeout(&mut self) -> Result<()> {
        self.request(RawRequest::new(0x00, 0x08, vec![0x03, 0x1F]))
            .await?;
        Ok(())
    }

    /// Read System Boot Options parameter 5, decoded.
    pub async fn boot_flags(&mut self) -> Result<BootFlags> {
        let d = self
            .request(RawRequest::new(0x00, 0x09, vec![0x05, 0x00, 0x00]))
            .await?;
        BootFlags::decode_reply(&d)
            .ok_or_else(|| malformed(self, "Get System Boot Options", "not a parameter 5 reply"))
    }

    /// Read LAN parameter 4 (IP address source) on `channel`.
    pub async fn lan_address_source(&mut self, channel: u8) -> Result<AddressSource> {
        let d = self
            .request(RawRequest::new(0x0C, 0x02, vec![channel & 0x0F, 4, 0, 0]))
            .await?;
        match d.get(1) {
            Some(v) => Ok(AddressSource::from_value(*v)),
            None => Err(malformed(
                self,
                "Get LAN Configuration Parameters",
                "no parameter data",
            )),
        }
    }

    /// Set LAN channel's IP address source to DHCP and read it back.
    pub async fn set_lan_dhcp(&mut self, channel: u8) -> Result<AddressSource> {
        self.request(RawRequest::new(0x0C, 0x01, vec![channel & 0x0F, 4, 0x02]))
            .await?;
        self.lan_address_source(channel).await
    }

    /// Get User Access for `user` (1-based) on `channel`.
    pub async fn user_access(&mut self, channel: u8, user: u8) -> Result<UserAccess> {
        let d = self
            .request(RawRequest::new(
                0x06,
                0x44,
                vec![channel & 0x0F, user & 0x3F],
            ))
            .await?;
        UserAccess::decode(&d)
            .ok_or_else(|| malformed(self, "Get User Access", "fewer than 4 bytes"))
    }

    /// Get User Name.
    pub async fn user_name(&mut self, user: u8) -> Result<String> {
        let d = self
            .request(RawRequest::new(0x06, 0x46, vec![user & 0x3F]))
            .await?;
        Ok(decode_user_name(&d))
    }

    /// Every user slot on `channel`.
    pub async fn list_users(&mut self, channel: u8) -> Result<Vec<UserInfo>> {
        let first = self.user_access(channel, 1).await?;
        let mut users = Vec::new();
        for id in 1..=first.max_users.max(1) {
            let access = if id == 1 {
                first
            } else {
                self.user_access(channel, id).await?
            };
            // Unnamed slots answer 0xCB or 0xCC on some BMCs.
            let name = match self.user_name(id).await {
                Ok(n) => n,
                Err(Error::CompletionCode { .. }) => String::new(),
                Err(e) => return Err(e),
            };
            users.push(UserInfo { id, name, access });
        }
        Ok(users)
    }

    /// Set User Name (at most 16 bytes).
    pub async fn set_user_name(&mut self, user: u8, name: &str) -> Result<()> {
        check_user_id(user)?;
        if name.len() > 16 {
            return Err(Error::InvalidArgument(format!(
                "user name {name:?} is longer than 16 bytes"
            )));
        }
        let mut data = vec![user];
        let mut n = name.as_bytes().to_vec();
        n.resize(16, 0);
        data.extend_from_slice(&n);
        self.request(RawRequest::new(0x06, 0x45, data)).await?;
        Ok(())
    }

    /// Set User Password (16-byte form up to 16 bytes, 20-byte form up to 20).
    pub async fn set_user_password(&mut self, user: u8, password: &crate::Password) -> Result<()> {
        check_user_id(user)?;
        let pw = password.expose().as_bytes();
        if pw.len() > 20 {
            return Err(Error::InvalidArgument(
                "password is longer than 20 bytes".into(),
            ));
        }
        let (flag, size) = if pw.len() > 16 {
            (0x80, 20)
        } else {
            (0x00, 16)
        };
        let mut data = vec![user | flag, 0x02];
        let mut p = pw.to_vec();
        p.resize(size, 0);
        data.extend_from_slice(&p);
        self.request(RawRequest::new(0x06, 0x47, data)).await?;
        Ok(())
    }

    /// Enable or disable a user (Set User Password operation 1 / 0).
    pub async fn set_user_enabled(&mut self, user: u8, enabled: bool) -> Result<()> {
        check_user_id(user)?;
        let data = vec![user, u8::from(enabled)];
        self.request(RawRequest::new(0x06, 0x47, data)).await?;
        Ok(())
    }

    /// Set a user's privilege limit on `channel` and allow IPMI messaging
    /// and link authentication.
    pub async fn set_user_privilege(
        &mut self,
        channel: u8,
        user: u8,
        privilege: Privilege,
    ) -> Result<()> {
        check_user_id(user)?;
        let data = vec![
            0x80 | 0x20 | 0x10 | (channel & 0x0F),
            user,
            privilege.level(),
            0,
        ];
        self.request(RawRequest::new(0x06, 0x43, data)).await?;
        Ok(())
    }

    fn cc_error(&self, command: &str, code: u8) -> Error {
        Error::CompletionCode {
            bmc: self.address().to_string(),
            command: command.into(),
            code,
        }
    }
}

fn check_user_id(user: u8) -> Result<()> {
    if user == 0 || user > 63 {
        return Err(Error::InvalidArgument(format!(
            "user id {user} (expected 1..=63)"
        )));
    }
    Ok(())
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
        fn privilege_roundtrip(v in 0u8..16) {
            prop_assert_eq!(Privilege::from_level(v).level(), v);
        }
    }
}
