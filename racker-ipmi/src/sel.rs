//! System Event Log entries and info (sans-IO), decoded with
//! `ipmi-rs-core` ([`ipmi_rs_core::storage::sel::Entry`] and its event
//! descriptions); plain serde structs for JSON.

use ipmi_rs_core::storage::sdr::SensorType;
use ipmi_rs_core::storage::sel::{Entry, EventDirection};
use serde::Serialize;

use crate::words;

/// One SEL entry.
///
/// JSON (docs/output.md, result type `sel`): `id`, `record_type`,
/// `logged_at` (RFC 3339, null when the BMC's clock was not set),
/// `bmc_uptime_s` (seconds since the BMC started for such entries, else
/// null), `sensor_type` (a fixed word, null for OEM records),
/// `sensor_type_code`, `sensor_number`, `event`, `direction`, `raw` (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelEntry {
    /// Record id.
    pub id: u16,
    /// Record type: `system`, `oem-timestamped`, `oem`.
    pub record_type: String,
    /// Unix timestamp (0: unknown; values below 0x20000000 are seconds since BMC start).
    pub timestamp: u32,
    /// Sensor type name as ipmitool prints it (system events).
    pub sensor_type: String,
    /// Sensor type code (system events; 0 otherwise).
    pub sensor_type_code: u8,
    /// Sensor number (system events).
    pub sensor_number: u8,
    /// Event description (from `ipmi-rs-core`).
    pub event: String,
    /// `asserted` or `deasserted`.
    pub direction: String,
    /// The 16 raw bytes.
    pub raw: Vec<u8>,
}

impl Serialize for SelEntry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let system = self.record_type == "system";
        let mut m = s.serialize_struct("SelEntry", 10)?;
        m.serialize_field("id", &self.id)?;
        m.serialize_field("record_type", &self.record_type)?;
        m.serialize_field("logged_at", &words::ipmi_time_at(self.timestamp))?;
        m.serialize_field("bmc_uptime_s", &words::ipmi_uptime_s(self.timestamp))?;
        m.serialize_field(
            "sensor_type",
            &system.then(|| words::sensor_type(self.sensor_type_code)),
        )?;
        m.serialize_field("sensor_type_code", &system.then_some(self.sensor_type_code))?;
        m.serialize_field("sensor_number", &system.then_some(self.sensor_number))?;
        m.serialize_field("event", &self.event)?;
        m.serialize_field(
            "direction",
            &(!self.direction.is_empty()).then_some(&self.direction),
        )?;
        let raw: String = self.raw.iter().map(|b| format!("{b:02x}")).collect();
        m.serialize_field("raw", &raw)?;
        m.end()
    }
}

struct Describe<'a>(&'a Entry);

impl std::fmt::Display for Describe<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.event_description(f)
    }
}

/// Decode a 16-byte SEL record (as returned by Get SEL Entry after the
/// next-record id). Unknown record types are kept with their raw bytes.
pub fn decode_entry(raw: &[u8]) -> Option<SelEntry> {
    let raw = raw.get(..16)?;
    let id = u16::from_le_bytes([raw[0], raw[1]]);
    let timestamp = u32::from_le_bytes([raw[3], raw[4], raw[5], raw[6]]);
    let mut e = SelEntry {
        id,
        record_type: "unknown".into(),
        timestamp,
        sensor_type: String::new(),
        sensor_type_code: 0,
        sensor_number: 0,
        event: String::new(),
        direction: String::new(),
        raw: raw.to_vec(),
    };
    match Entry::parse(raw) {
        Ok(entry) => {
            match &entry {
                Entry::System {
                    sensor_type,
                    sensor_number,
                    event_direction,
                    ..
                } => {
                    e.record_type = "system".into();
                    e.sensor_type = SensorType::from(*sensor_type).to_string();
                    e.sensor_type_code = *sensor_type;
                    e.sensor_number = *sensor_number;
                    e.direction = match event_direction {
                        EventDirection::Assert => "asserted",
                        EventDirection::Deassert => "deasserted",
                    }
                    .into();
                }
                Entry::OemTimestamped { .. } => e.record_type = "oem-timestamped".into(),
                Entry::OemNotTimestamped { .. } => {
                    e.record_type = "oem".into();
                    e.timestamp = 0;
                }
            }
            e.event = Describe(&entry).to_string();
        }
        Err(_) => {
            e.timestamp = 0;
        }
    }
    Some(e)
}

/// Get SEL Info, decoded.
///
/// JSON (docs/output.md, result type `sel-info`): `version` (`"1.5"`),
/// `entries`, `free_bytes`, `last_added_at`, `last_erased_at` (RFC 3339
/// or null), `overflow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelInfo {
    /// SEL version, e.g. `0x51` for 1.5.
    pub version: u8,
    /// Number of entries.
    pub entries: u16,
    /// Free space in bytes.
    pub free_bytes: u16,
    /// Most recent addition (Unix time).
    pub last_add: u32,
    /// Most recent erase (Unix time).
    pub last_erase: u32,
    /// Events were dropped because the SEL was full.
    pub overflow: bool,
}

impl Serialize for SelInfo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut m = s.serialize_struct("SelInfo", 6)?;
        m.serialize_field("version", &self.version_text())?;
        m.serialize_field("entries", &self.entries)?;
        m.serialize_field("free_bytes", &self.free_bytes)?;
        m.serialize_field("last_added_at", &words::ipmi_time_at(self.last_add))?;
        m.serialize_field("last_erased_at", &words::ipmi_time_at(self.last_erase))?;
        m.serialize_field("overflow", &self.overflow)?;
        m.end()
    }
}

impl SelInfo {
    /// The SEL version as text: `0x51` → `1.5`.
    pub fn version_text(&self) -> String {
        format!("{}.{}", self.version & 0x0F, self.version >> 4)
    }

    /// From a Get SEL Info reply (completion code stripped). Uses
    /// `ipmi-rs-core`'s decoder for counts and flags; it requires exactly
    /// 14 bytes and hides the timestamps, so those are read here.
    pub fn decode(data: &[u8]) -> Option<SelInfo> {
        let data = data.get(..14)?;
        let info = ipmi_rs_core::storage::sel::SelInfo::from_data(data)?;
        let u32le = |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
        Some(SelInfo {
            version: data[0],
            entries: info.entries,
            free_bytes: info.bytes_free,
            last_add: u32le(5),
            last_erase: u32le(9),
            overflow: info.overflow,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn system_event_is_described() {
        // Temperature sensor 0x30, threshold event "upper critical going high" asserted.
        let raw = [
            0x01, 0x00, 0x02, 0x10, 0x00, 0x00, 0x60, 0x20, 0x00, 0x04, 0x01, 0x30, 0x01, 0x09,
            0xFF, 0xFF,
        ];
        let e = decode_entry(&raw).unwrap();
        assert_eq!(e.id, 1);
        assert_eq!(e.record_type, "system");
        assert_eq!(e.sensor_type, "Temperature");
        assert_eq!(e.sensor_number, 0x30);
        assert_eq!(e.direction, "asserted");
        assert!(!e.event.is_empty());
        assert_eq!(e.timestamp, 0x6000_0010);
    }

    #[test]
    fn sel_info() {
        let d = [0x51, 2, 0, 0x00, 0x10, 1, 0, 0, 0, 2, 0, 0, 0, 0x80];
        let i = SelInfo::decode(&d).unwrap();
        assert_eq!(
            (i.entries, i.free_bytes, i.last_add, i.overflow),
            (2, 4096, 1, true)
        );
        assert!(SelInfo::decode(&d[..13]).is_none());
    }

    proptest! {
        #[test]
        fn arbitrary_entries_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..20)) {
            let _ = decode_entry(&bytes);
            let _ = SelInfo::decode(&bytes);
        }
    }
}
