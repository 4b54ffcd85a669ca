//! System Event Log entries and info (sans-IO), decoded with
//! `ipmi-rs-core` ([`ipmi_rs_core::storage::sel::Entry`] and its event
//! descriptions); plain serde structs for JSON.

use ipmi_rs_core::storage::sdr::SensorType;
use ipmi_rs_core::storage::sel::{Entry, EventDirection};
use serde::Serialize;

/// One SEL entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SelEntry {
    /// Record id.
    pub id: u16,
    /// Record type: `system`, `oem-timestamped`, `oem`.
    pub record_type: String,
    /// Unix timestamp (0: unknown; values below 0x20000000 are seconds since BMC start).
    pub timestamp: u32,
    /// Sensor type name (system events).
    pub sensor_type: String,
    /// Sensor number (system events).
    pub sensor_number: u8,
    /// Event description (from `ipmi-rs-core`).
    pub event: String,
    /// `asserted` or `deasserted`.
    pub direction: String,
    /// The 16 raw bytes.
    pub raw: Vec<u8>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

impl SelInfo {
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
