//! The BMC's platform commands: sensors and the SDR repository, the SEL,
//! FRU inventory, channel/session information, identify and the small
//! management commands every real BMC answers (see `docs/simulator.md`).

use std::time::Instant;

use racker_ipmi::codec::{LanRequest, RestorePolicy, cc};

use super::{Bmc, PRIV_ADMIN, PRIV_OPERATOR, State};
use crate::chassis::Event;
use crate::sel::{SystemEvent, event, sensor_number};
use crate::sensors::{self, FAILING_FAN, SensorInputs, threshold};
use crate::{fru, sel};

/// Network functions.
const NETFN_CHASSIS: u8 = 0x00;
const NETFN_SENSOR: u8 = 0x04;
const NETFN_APP: u8 = 0x06;
const NETFN_STORAGE: u8 = 0x0A;

/// System firmware (BIOS) version in Get System Info Parameters: digits
/// and dots, as `ipmi_exporter` parses it (`bmc-info` prints any text).
pub(crate) const FIRMWARE_VERSION: &str = "1.0.0";

/// Default Chassis Identify interval (IPMI 2.0 §28.5).
const IDENTIFY_DEFAULT_SECS: u64 = 15;

/// Chassis identify state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Identify {
    #[default]
    Off,
    Until(Instant),
    On,
}

impl Identify {
    /// 0 off, 1 temporary on, 2 indefinite on (Get Chassis Status byte 3).
    pub(crate) fn state(&self, now: Instant) -> u8 {
        match *self {
            Identify::Off => 0,
            Identify::Until(t) if now < t => 1,
            Identify::Until(_) => 0,
            Identify::On => 2,
        }
    }
}

type Answer = (u8, Vec<u8>);

fn ok(v: Vec<u8>) -> Option<Answer> {
    Some((cc::OK, v))
}

fn code(c: u8) -> Option<Answer> {
    Some((c, Vec::new()))
}

fn is_lan_channel(c: u8) -> bool {
    matches!(c & 0x0F, 0x01 | 0x0E)
}

impl Bmc {
    /// Seconds on the SEL clock at `now` (the wall clock given in
    /// [`crate::BmcConfig::wall_clock`]; else seconds since the BMC first
    /// saw time pass, which tools show as "pre-init" timestamps).
    pub(crate) fn sel_time(&mut self, now: Instant) -> u32 {
        let (at, base) = *self.clock.get_or_insert((now, 0));
        let secs = now.saturating_duration_since(at).as_secs() as u32;
        base.wrapping_add(secs)
    }

    /// The inputs the sensor readings follow.
    pub(crate) fn sensor_inputs(&self) -> SensorInputs {
        SensorInputs {
            power_on: self.chassis.power,
            fan_fail: self.faults.fan_fail,
        }
    }

    /// Log the failing fan crossing (or recovering from) its lower
    /// non-critical and critical thresholds.
    pub(crate) fn log_fan_fault(&mut self, now: Instant, assert: bool) {
        let Some(fan) = sensors::sensor(FAILING_FAN) else {
            return;
        };
        let reading = fan.reading(self.sensor_inputs()).raw;
        let t = self.sel_time(now);
        for (offset, limit) in [(0x00, fan.thresholds.lnc), (0x02, fan.thresholds.lcr)] {
            if let Some(limit) = limit {
                self.sel.log(
                    t,
                    SystemEvent::threshold(
                        fan.sensor_type,
                        fan.number,
                        offset,
                        assert,
                        reading,
                        limit,
                    ),
                );
            }
        }
    }

    /// Record the chassis events produced since `from` in the SEL: power
    /// off (Power Unit "power off/down"), power on (ACPI "S0/G0 working"),
    /// power cycle (Power Unit "power cycle"), each boot (System Boot
    /// Initiated "by power up" / "by hard reset", plus "user requested PXE
    /// boot" for a PXE override) and boot flags set valid (System Event
    /// "system reconfigured", data 2 = boot parameter 5 data 2).
    pub(crate) fn log_events(&mut self, now: Instant, from: usize) {
        let mut logged: Vec<SystemEvent> = Vec::new();
        let mut powered_up = false;
        let mut events = self.events.get(from..).unwrap_or(&[]).iter().peekable();
        while let Some(e) = events.next() {
            match e {
                Event::Power { on: false } => {
                    if events.peek() == Some(&&Event::Power { on: true }) {
                        events.next();
                        powered_up = true;
                        logged.push(SystemEvent::specific(
                            event::POWER_UNIT,
                            sensor_number::POWER_UNIT,
                            0x01,
                        ));
                    } else {
                        logged.push(SystemEvent::specific(
                            event::POWER_UNIT,
                            sensor_number::POWER_UNIT,
                            0x00,
                        ));
                    }
                }
                Event::Power { on: true } => {
                    powered_up = true;
                    logged.push(SystemEvent::specific(
                        event::ACPI_POWER_STATE,
                        sensor_number::ACPI_POWER_STATE,
                        0x00,
                    ));
                }
                Event::Boot(req) => {
                    let offset = if powered_up { 0x00 } else { 0x01 };
                    logged.push(SystemEvent::specific(
                        event::BOOT_INITIATED,
                        sensor_number::BOOT_INITIATED,
                        offset,
                    ));
                    if req.device == crate::BootDevice::Pxe {
                        logged.push(SystemEvent::specific(
                            event::BOOT_INITIATED,
                            sensor_number::BOOT_INITIATED,
                            0x03,
                        ));
                    }
                }
                Event::BootFlags(flags) if flags.valid => {
                    let mut e = SystemEvent::specific(
                        event::SYSTEM_EVENT,
                        sensor_number::SYSTEM_EVENT,
                        0x00,
                    );
                    // Data 2 holds an OEM code: the boot device byte.
                    e.data = [0x80, flags.raw[1], 0xFF];
                    logged.push(e);
                }
                _ => {}
            }
        }
        if logged.is_empty() {
            return;
        }
        let t = self.sel_time(now);
        for e in logged {
            self.sel.log(t, e);
        }
    }

    /// Commands beyond power, boot options, users, LAN and SOL; `None`
    /// when the command is unknown.
    pub(super) fn platform_command(
        &mut self,
        now: Instant,
        i: usize,
        req: &LanRequest<'_>,
    ) -> Option<Answer> {
        let priv_level = self.sessions[i].priv_level;
        let d = req.data;
        let short = code(cc::REQUEST_DATA_LENGTH_INVALID);
        let denied = code(cc::INSUFFICIENT_PRIVILEGE);
        match (req.netfn, req.cmd) {
            // Get Chassis Capabilities: no intrusion/lockout/interlock; FRU,
            // SDR, SEL and system management device all at the BMC (20h).
            (NETFN_CHASSIS, 0x00) => ok(vec![0x00, 0x20, 0x20, 0x20, 0x20, 0x20]),
            // Chassis Identify: [interval s (0 = off)] [force on].
            (NETFN_CHASSIS, 0x04) => {
                if priv_level < PRIV_OPERATOR {
                    return denied;
                }
                let secs = d.first().map_or(IDENTIFY_DEFAULT_SECS, |&s| u64::from(s));
                let force = d.get(1).is_some_and(|&f| f & 0x01 != 0);
                self.identify = if force {
                    Identify::On
                } else if secs == 0 {
                    Identify::Off
                } else {
                    Identify::Until(now + std::time::Duration::from_secs(secs))
                };
                ok(Vec::new())
            }
            // Set Power Restore Policy: 0 always off, 1 previous, 2 always
            // on, 3 no change; the reply lists the supported ones (all).
            (NETFN_CHASSIS, 0x06) => {
                if priv_level < PRIV_OPERATOR {
                    return denied;
                }
                let Some(&p) = d.first() else { return short };
                self.restore_policy = match p & 0x07 {
                    0 => RestorePolicy::AlwaysOff,
                    1 => RestorePolicy::Previous,
                    2 => RestorePolicy::AlwaysOn,
                    3 => self.restore_policy,
                    _ => return code(cc::INVALID_DATA_FIELD),
                };
                ok(vec![0x07])
            }
            // Get System Restart Cause: cause, channel.
            (NETFN_CHASSIS, 0x07) => ok(vec![self.chassis.restart_cause, 0x01]),
            // Get POH Counter: minutes per count, counter.
            (NETFN_CHASSIS, 0x0F) => {
                let hours = (self.chassis.powered_for(now).as_secs() / 3600) as u32;
                let mut r = vec![60];
                r.extend_from_slice(&hours.to_le_bytes());
                ok(r)
            }
            // Get Self Test Results: 55h = no error.
            (NETFN_APP, 0x04) => ok(vec![0x55, 0x00]),
            // Get ACPI Power State: S0/G0 or S5/G2; device D0.
            (NETFN_APP, 0x07) => ok(vec![if self.chassis.power { 0x00 } else { 0x05 }, 0x00]),
            // Get Device GUID.
            (NETFN_APP, 0x08) => ok(self.guid.to_vec()),
            // Set / Get BMC Global Enables.
            (NETFN_APP, 0x2E) => {
                if priv_level < PRIV_ADMIN {
                    return denied;
                }
                let Some(&b) = d.first() else { return short };
                self.global_enables = b & 0x0F;
                ok(Vec::new())
            }
            (NETFN_APP, 0x2F) => ok(vec![self.global_enables]),
            (NETFN_APP, 0x3D) => Some(self.session_info(i, d)),
            // Get System Info Parameters: set in progress, system firmware
            // version, system name; other strings empty.
            (NETFN_APP, 0x59) => {
                let (Some(&get), Some(&param), Some(&set)) = (d.first(), d.get(1), d.get(2)) else {
                    return short;
                };
                if get & 0x80 != 0 {
                    return ok(vec![0x11]);
                }
                let text = match param {
                    0 => return ok(vec![0x11, 0x00]),
                    1 => FIRMWARE_VERSION.to_owned(),
                    2 => fru::serial(self.config.mac),
                    3 | 4 => String::new(),
                    _ => return code(cc::COMMAND_SPECIFIC_80),
                };
                ok(system_info_block(text.as_bytes(), set))
            }
            // Get Channel Access: alerting disabled, per-message auth enabled
            // (as Get Channel Authentication Capabilities says), user-level auth
            // enabled, always available; limit Administrator.
            (NETFN_APP, 0x41) => {
                let (Some(&c), Some(&how)) = (d.first(), d.get(1)) else {
                    return short;
                };
                if !is_lan_channel(c) || how & 0xC0 == 0 || how & 0xC0 == 0xC0 {
                    return code(cc::INVALID_DATA_FIELD);
                }
                ok(vec![0x22, 0x04])
            }
            // Get Channel Payload Support: IPMI and SOL; session setup
            // payloads 10h-15h.
            (NETFN_APP, 0x4E) => {
                let Some(&c) = d.first() else { return short };
                if !is_lan_channel(c) {
                    return code(cc::INVALID_DATA_FIELD);
                }
                ok(vec![0x03, 0x00, 0x3F, 0x00, 0x00, 0x00, 0x00, 0x00])
            }
            // Get Channel Payload Version: 1.0 for IPMI and SOL.
            (NETFN_APP, 0x4F) => {
                let (Some(&c), Some(&t)) = (d.first(), d.get(1)) else {
                    return short;
                };
                if !is_lan_channel(c) {
                    return code(cc::INVALID_DATA_FIELD);
                }
                match t {
                    0x00 | 0x01 => ok(vec![0x10]),
                    _ => code(cc::COMMAND_SPECIFIC_80),
                }
            }
            // Get Event Receiver: the BMC itself.
            (NETFN_SENSOR, 0x01) => ok(vec![0x20, 0x00]),
            // Get Device SDR Info: sensor count, static population on LUN 0.
            (NETFN_SENSOR, 0x20) => ok(vec![sensors::record_count() as u8, 0x01]),
            // Get Device SDR = Get SDR on the same records.
            (NETFN_SENSOR, 0x21) | (NETFN_STORAGE, 0x23) => Some(self.get_sdr(d)),
            // Reserve (Device) SDR Repository.
            (NETFN_SENSOR, 0x22) | (NETFN_STORAGE, 0x22) => {
                self.sdr_reservation = self.sdr_reservation.wrapping_add(1).max(1);
                ok(self.sdr_reservation.to_le_bytes().to_vec())
            }
            // Get Sensor Hysteresis: none.
            (NETFN_SENSOR, 0x25) => self.with_sensor(d, |_| vec![0x00, 0x00]),
            (NETFN_SENSOR, 0x27) => self.with_sensor(d, |s| s.thresholds_response()),
            (NETFN_SENSOR, 0x29) => self.with_sensor(d, |s| s.event_enable_response()),
            (NETFN_SENSOR, 0x2B) => {
                let inputs = self.sensor_inputs();
                self.with_sensor(d, |s| event_status(s.reading(inputs).status))
            }
            (NETFN_SENSOR, 0x2D) => {
                let inputs = self.sensor_inputs();
                self.with_sensor(d, |s| s.reading(inputs).encode())
            }
            // Get Sensor Type: type, threshold reading type.
            (NETFN_SENSOR, 0x2F) => self.with_sensor(d, |s| vec![s.sensor_type, 0x01]),
            // Get FRU Inventory Area Info: size, byte access.
            (NETFN_STORAGE, 0x10) => {
                let Some(&id) = d.first() else { return short };
                if id != 0 {
                    return code(0xCB);
                }
                let size = (fru::size() as u16).to_le_bytes();
                ok(vec![size[0], size[1], 0x00])
            }
            // Read FRU Data: id, offset (2), count.
            (NETFN_STORAGE, 0x11) => {
                let [id, o0, o1, count] = *d else {
                    return short;
                };
                if id != 0 {
                    return code(0xCB);
                }
                Some(
                    match fru::read(self.config.mac, u16::from_le_bytes([o0, o1]), count) {
                        Ok(r) => (cc::OK, r),
                        Err(c) => (c, Vec::new()),
                    },
                )
            }
            // Get SDR Repository Info.
            (NETFN_STORAGE, 0x20) => {
                let n = sensors::record_count().to_le_bytes();
                let mut r = vec![sensors::SDR_VERSION, n[0], n[1], 0x00, 0x00];
                // Last addition / erase timestamps unspecified.
                r.extend_from_slice(&[0xFF; 8]);
                // Non-modal update, reserve supported.
                r.push(0x22);
                ok(r)
            }
            // Get SEL Info / Reserve SEL / Get SEL Entry.
            (NETFN_STORAGE, 0x40) => ok(self.sel.info()),
            (NETFN_STORAGE, 0x42) => ok(self.sel.reserve().to_le_bytes().to_vec()),
            (NETFN_STORAGE, 0x43) => Some(match self.sel.get(d) {
                Ok(r) => (cc::OK, r),
                Err(c) => (c, Vec::new()),
            }),
            // Add SEL Entry.
            (NETFN_STORAGE, 0x44) => {
                if priv_level < PRIV_OPERATOR {
                    return denied;
                }
                let Ok(record) = <[u8; sel::RECORD_LEN]>::try_from(d) else {
                    return short;
                };
                let t = self.sel_time(now);
                ok(self.sel.add(t, record).to_le_bytes().to_vec())
            }
            // Clear SEL.
            (NETFN_STORAGE, 0x47) => {
                if priv_level < PRIV_OPERATOR {
                    return denied;
                }
                let t = self.sel_time(now);
                Some(match self.sel.clear(t, d) {
                    Ok(r) => (cc::OK, r),
                    Err(c) => (c, Vec::new()),
                })
            }
            // Get / Set SEL Time.
            (NETFN_STORAGE, 0x48) => ok(self.sel_time(now).to_le_bytes().to_vec()),
            (NETFN_STORAGE, 0x49) => {
                if priv_level < PRIV_OPERATOR {
                    return denied;
                }
                let Some(b) = d.get(..4) else { return short };
                self.clock = Some((now, u32::from_le_bytes([b[0], b[1], b[2], b[3]])));
                ok(Vec::new())
            }
            // Get SEL Time UTC Offset: unspecified (7FFh).
            (NETFN_STORAGE, 0x5C) => ok(vec![0xFF, 0x07]),
            _ => None,
        }
    }

    fn with_sensor(
        &self,
        d: &[u8],
        f: impl FnOnce(&sensors::SensorDef) -> Vec<u8>,
    ) -> Option<Answer> {
        let Some(&n) = d.first() else {
            return code(cc::REQUEST_DATA_LENGTH_INVALID);
        };
        match sensors::sensor(n) {
            Some(s) => ok(f(s)),
            None => code(0xCB),
        }
    }

    /// Get SDR: reservation (2), record ID (2), offset, bytes to read.
    fn get_sdr(&self, d: &[u8]) -> Answer {
        let [r0, r1, i0, i1, offset, count] = *d else {
            return (cc::REQUEST_DATA_LENGTH_INVALID, Vec::new());
        };
        let reservation = u16::from_le_bytes([r0, r1]);
        if offset != 0 && (reservation == 0 || reservation != self.sdr_reservation) {
            return (sel::cc::RESERVATION, Vec::new());
        }
        let Some((next, record)) = sensors::record(u16::from_le_bytes([i0, i1])) else {
            return (sel::cc::NOT_PRESENT, Vec::new());
        };
        let offset = usize::from(offset);
        if offset > record.len() {
            return (sel::cc::OUT_OF_RANGE, Vec::new());
        }
        let end = (offset + usize::from(count)).min(record.len());
        let mut r = next.to_le_bytes().to_vec();
        r.extend_from_slice(&record[offset..end]);
        (cc::OK, r)
    }

    /// Get Session Info: 00h this session, N = Nth active session, FEh by
    /// handle, FFh by session ID. Unused indices answer handle 0 and the
    /// counts only, as real BMCs do.
    fn session_info(&self, i: usize, d: &[u8]) -> Answer {
        let Some(&index) = d.first() else {
            return (cc::REQUEST_DATA_LENGTH_INVALID, Vec::new());
        };
        let active: Vec<usize> = (0..self.sessions.len())
            .filter(|&j| matches!(self.sessions[j].state, State::Active { .. }))
            .collect();
        let found = match index {
            0x00 => Some(i),
            0xFE => {
                let Some(&h) = d.get(1) else {
                    return (cc::REQUEST_DATA_LENGTH_INVALID, Vec::new());
                };
                active
                    .iter()
                    .copied()
                    .find(|&j| self.sessions[j].handle == h)
            }
            0xFF => {
                let Some(b) = d.get(1..5) else {
                    return (cc::REQUEST_DATA_LENGTH_INVALID, Vec::new());
                };
                let id = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                active
                    .iter()
                    .copied()
                    .find(|&j| self.sessions[j].sid_c == id)
            }
            n => active.get(usize::from(n) - 1).copied(),
        };
        let slots = self.config.max_sessions.min(63) as u8;
        let count = active.len().min(63) as u8;
        let Some(j) = found else {
            return (cc::OK, vec![0x00, slots, count]);
        };
        let s = &self.sessions[j];
        let mut r = vec![s.handle, slots, count, s.user_id, s.priv_level, 0x10 | 0x01];
        match s.peer.ip() {
            std::net::IpAddr::V4(ip) => r.extend_from_slice(&ip.octets()),
            std::net::IpAddr::V6(_) => r.extend_from_slice(&[0; 4]),
        }
        r.extend_from_slice(&[0; 6]);
        r.extend_from_slice(&s.peer.port().to_le_bytes());
        (cc::OK, r)
    }
}

/// Get Sensor Event Status data for a threshold sensor with comparison
/// status `status`: the going-low / going-high events now asserted.
fn event_status(status: u8) -> Vec<u8> {
    let mut a = 0u16;
    for (bit, event) in [
        (threshold::LNC, 0),
        (threshold::LCR, 2),
        (threshold::LNR, 4),
        (threshold::UNC, 7),
        (threshold::UCR, 9),
        (threshold::UNR, 11),
    ] {
        if status & bit != 0 {
            a |= 1 << event;
        }
    }
    vec![0xC0, a as u8, (a >> 8) as u8, 0x00, 0x00]
}

/// One set of a string-valued system info parameter (IPMI 2.0 §22.14a):
/// revision, set selector, then for set 0 the encoding (ASCII+Latin 1),
/// length and the first 14 bytes, for set N the 16 bytes from 14 + 16(N-1);
/// always 16 data bytes, zero-padded.
fn system_info_block(text: &[u8], set: u8) -> Vec<u8> {
    let mut r = vec![0x11, set];
    let (head, start) = if set == 0 {
        (vec![0x00, text.len().min(255) as u8], 0)
    } else {
        (Vec::new(), 14 + 16 * (usize::from(set) - 1))
    };
    r.extend_from_slice(&head);
    let room = 16 - head.len();
    let bytes = text.get(start..).unwrap_or(&[]);
    let n = bytes.len().min(room);
    r.extend_from_slice(&bytes[..n]);
    r.resize(2 + 16, 0);
    r
}
