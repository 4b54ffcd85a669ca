//! The fixed words and time format racker's JSON documents use for IPMI
//! facts (docs/output.md, "One vocabulary"): sensor types, units and
//! chassis types as lowercase kebab-case words, points in time as RFC 3339
//! in UTC. The text forms (ipmitool's spellings) stay on the types.

use std::time::{Duration, UNIX_EPOCH};

/// IPMI timestamps below this are seconds since the BMC started, not
/// calendar time (IPMI 2.0 section 37.1).
pub const RELATIVE_LIMIT: u32 = 0x2000_0000;

/// `secs` since the Unix epoch as RFC 3339 UTC (`2026-12-02T09:15:00Z`).
pub fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// An IPMI timestamp as a point in time: `None` for 0xFFFFFFFF/0
/// (unspecified) and for times relative to the BMC's start.
pub fn ipmi_time_at(ts: u32) -> Option<String> {
    (ts != 0 && ts != u32::MAX && ts >= RELATIVE_LIMIT).then(|| rfc3339(u64::from(ts)))
}

/// An IPMI timestamp relative to the BMC's start, in seconds, if it is one.
pub fn ipmi_uptime_s(ts: u32) -> Option<u32> {
    (ts != 0 && ts < RELATIVE_LIMIT).then_some(ts)
}

/// The sensor type (IPMI 2.0 Table 42-3) as a fixed word: `temperature`,
/// `voltage`, `current`, `fan`, `power-supply`, `power-unit`,
/// `other-units`, ...; `oem` for 0xC0–0xFF, `reserved` otherwise.
pub fn sensor_type(code: u8) -> &'static str {
    match code {
        0x01 => "temperature",
        0x02 => "voltage",
        0x03 => "current",
        0x04 => "fan",
        0x05 => "physical-security",
        0x06 => "platform-security",
        0x07 => "processor",
        0x08 => "power-supply",
        0x09 => "power-unit",
        0x0A => "cooling-device",
        0x0B => "other-units",
        0x0C => "memory",
        0x0D => "drive-slot",
        0x0E => "post-memory-resize",
        0x0F => "system-firmware-progress",
        0x10 => "event-logging-disabled",
        0x11 => "watchdog-1",
        0x12 => "system-event",
        0x13 => "critical-interrupt",
        0x14 => "button-switch",
        0x15 => "module-board",
        0x16 => "microcontroller",
        0x17 => "add-in-card",
        0x18 => "chassis",
        0x19 => "chip-set",
        0x1A => "other-fru",
        0x1B => "cable-interconnect",
        0x1C => "terminator",
        0x1D => "system-boot-initiated",
        0x1E => "boot-error",
        0x1F => "os-boot",
        0x20 => "os-critical-stop",
        0x21 => "slot-connector",
        0x22 => "system-acpi-power-state",
        0x23 => "watchdog-2",
        0x24 => "platform-alert",
        0x25 => "entity-presence",
        0x26 => "monitor-asic",
        0x27 => "lan",
        0x28 => "management-subsystem-health",
        0x29 => "battery",
        0x2A => "session-audit",
        0x2B => "version-change",
        0x2C => "fru-state",
        0xC0..=0xFF => "oem",
        _ => "reserved",
    }
}

/// A unit as racker's text shows it (ipmitool's spelling, see
/// [`crate::sdr`]) → the fixed JSON word: `celsius`, `fahrenheit`,
/// `kelvin`, `volts`, `amps`, `watts`, `joules`, `rpm`, `hz`, `percent`,
/// `unspecified`; any other unit lowercased with `-` for spaces.
pub fn unit(text: &str) -> String {
    match text {
        "degrees C" => "celsius".into(),
        "degrees F" => "fahrenheit".into(),
        "degrees K" => "kelvin".into(),
        other => other
            .trim()
            .to_ascii_lowercase()
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join("-"),
    }
}

/// The FRU chassis type (SMBIOS 3.x Table 17) as a fixed word.
pub fn chassis_type(code: u8) -> &'static str {
    match code {
        0x01 => "other",
        0x02 => "unknown",
        0x03 => "desktop",
        0x04 => "low-profile-desktop",
        0x05 => "pizza-box",
        0x06 => "mini-tower",
        0x07 => "tower",
        0x08 => "portable",
        0x09 => "laptop",
        0x0A => "notebook",
        0x0B => "hand-held",
        0x0C => "docking-station",
        0x0D => "all-in-one",
        0x0E => "sub-notebook",
        0x0F => "space-saving",
        0x10 => "lunch-box",
        0x11 => "main-server-chassis",
        0x12 => "expansion-chassis",
        0x13 => "sub-chassis",
        0x14 => "bus-expansion-chassis",
        0x15 => "peripheral-chassis",
        0x16 => "raid-chassis",
        0x17 => "rack-mount-chassis",
        0x18 => "sealed-case-pc",
        0x19 => "multi-system-chassis",
        0x1A => "compact-pci",
        0x1B => "advanced-tca",
        0x1C => "blade",
        0x1D => "blade-enclosure",
        0x1E => "tablet",
        0x1F => "convertible",
        0x20 => "detachable",
        0x21 => "iot-gateway",
        0x22 => "embedded-pc",
        0x23 => "mini-pc",
        0x24 => "stick-pc",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn times() {
        assert_eq!(rfc3339(0x6000_0010), "2021-01-14T08:25:52Z");
        assert_eq!(
            ipmi_time_at(0x6000_0010).as_deref(),
            Some("2021-01-14T08:25:52Z")
        );
        assert_eq!(ipmi_time_at(5), None);
        assert_eq!(ipmi_time_at(0), None);
        assert_eq!(ipmi_time_at(u32::MAX), None);
        assert_eq!(ipmi_uptime_s(5), Some(5));
        assert_eq!(ipmi_uptime_s(0x6000_0010), None);
    }

    #[test]
    fn units_and_types() {
        assert_eq!(unit("degrees C"), "celsius");
        assert_eq!(unit("Volts"), "volts");
        assert_eq!(unit("RPM"), "rpm");
        assert_eq!(unit("cubic feet/min"), "cubic-feet-min");
        assert_eq!(sensor_type(1), "temperature");
        assert_eq!(sensor_type(0xC3), "oem");
        assert_eq!(chassis_type(0x17), "rack-mount-chassis");
    }

    proptest! {
        #[test]
        fn words_are_kebab_case(code in any::<u8>(), text in "\\PC{0,20}") {
            let kebab = |w: &str| w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            prop_assert!(kebab(sensor_type(code)));
            prop_assert!(kebab(chassis_type(code)));
            prop_assert!(kebab(&unit(&text)));
        }
    }
}
