//! The System Event Log (IPMI 2.0 §31, §32): a bounded ring of 16-byte
//! records. The oldest record is overwritten when the ring is full (the
//! overflow flag of Get SEL Info says so), so a BMC's log never holds more
//! than [`SEL_CAPACITY`] × 16 bytes.

use std::collections::VecDeque;

/// Records kept per BMC.
pub(crate) const SEL_CAPACITY: usize = 256;
/// Bytes per record.
pub(crate) const RECORD_LEN: usize = 16;
/// Record type of a system event record.
pub(crate) const SYSTEM_EVENT: u8 = 0x02;
/// Generator ID of events the BMC logs itself (IPMB slave address 20h).
const GENERATOR_BMC: [u8; 2] = [0x20, 0x00];
/// Event message format revision (IPMI 2.0).
const EVM_REV: u8 = 0x04;

/// Sensor types and offsets of the events the simulated BMC logs
/// (IPMI 2.0 Table 42-3).
pub(crate) mod event {
    /// Power Unit sensor type; offsets 00h power off/down, 01h power cycle.
    pub(crate) const POWER_UNIT: u8 = 0x09;
    /// System ACPI Power State; offset 00h S0/G0 working.
    pub(crate) const ACPI_POWER_STATE: u8 = 0x22;
    /// System Boot / Restart Initiated; 00h by power up, 01h by hard
    /// reset, 03h user requested PXE boot.
    pub(crate) const BOOT_INITIATED: u8 = 0x1D;
    /// System Event; offset 00h system reconfigured.
    pub(crate) const SYSTEM_EVENT: u8 = 0x12;
    /// Event Logging Disabled; offset 02h log area reset/cleared.
    pub(crate) const EVENT_LOGGING: u8 = 0x10;
    /// Event/reading type: sensor-specific.
    pub(crate) const SENSOR_SPECIFIC: u8 = 0x6F;
    /// Event/reading type: threshold.
    pub(crate) const THRESHOLD: u8 = 0x01;
}

/// Sensor numbers of the BMC's discrete (event-only) sensors.
pub(crate) mod sensor_number {
    pub(crate) const POWER_UNIT: u8 = 0x10;
    pub(crate) const ACPI_POWER_STATE: u8 = 0x11;
    pub(crate) const BOOT_INITIATED: u8 = 0x12;
    pub(crate) const SYSTEM_EVENT: u8 = 0x13;
    pub(crate) const EVENT_LOG: u8 = 0x14;
}

/// One event to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SystemEvent {
    pub(crate) sensor_type: u8,
    pub(crate) sensor_number: u8,
    /// Bit 7 = deassertion; bits 6:0 = event/reading type.
    pub(crate) dir_type: u8,
    pub(crate) data: [u8; 3],
}

impl SystemEvent {
    /// A sensor-specific assertion with `offset` and unspecified data 2/3.
    pub(crate) fn specific(sensor_type: u8, sensor_number: u8, offset: u8) -> Self {
        SystemEvent {
            sensor_type,
            sensor_number,
            dir_type: event::SENSOR_SPECIFIC,
            data: [offset & 0x0F, 0xFF, 0xFF],
        }
    }

    /// A threshold event: `offset` (e.g. 02h lower critical going low),
    /// the trigger reading and the threshold in data 2 and 3.
    pub(crate) fn threshold(
        sensor_type: u8,
        sensor_number: u8,
        offset: u8,
        assert: bool,
        reading: u8,
        threshold: u8,
    ) -> Self {
        SystemEvent {
            sensor_type,
            sensor_number,
            dir_type: event::THRESHOLD | if assert { 0 } else { 0x80 },
            data: [0x50 | (offset & 0x0F), reading, threshold],
        }
    }

    /// The 16-byte system event record.
    pub(crate) fn record(&self, id: u16, timestamp: u32) -> [u8; RECORD_LEN] {
        let id = id.to_le_bytes();
        let t = timestamp.to_le_bytes();
        [
            id[0],
            id[1],
            SYSTEM_EVENT,
            t[0],
            t[1],
            t[2],
            t[3],
            GENERATOR_BMC[0],
            GENERATOR_BMC[1],
            EVM_REV,
            self.sensor_type,
            self.sensor_number,
            self.dir_type,
            self.data[0],
            self.data[1],
            self.data[2],
        ]
    }
}

/// The log of one BMC.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sel {
    entries: VecDeque<[u8; RECORD_LEN]>,
    last_id: u16,
    reservation: u16,
    last_add: u32,
    last_erase: u32,
    overflow: bool,
}

/// Errors of SEL commands, as completion codes.
pub(crate) mod cc {
    /// Reservation cancelled or invalid.
    pub(crate) const RESERVATION: u8 = 0xC5;
    /// Requested record not present.
    pub(crate) const NOT_PRESENT: u8 = 0xCB;
    /// Parameter out of range (offset beyond the record).
    pub(crate) const OUT_OF_RANGE: u8 = 0xC9;
}

impl Sel {
    fn next_id(&mut self) -> u16 {
        loop {
            self.last_id = self.last_id.wrapping_add(1);
            if self.last_id != 0 && self.last_id != 0xFFFF {
                return self.last_id;
            }
        }
    }

    /// Number of records.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Append a record (its ID and timestamp are the BMC's); returns the ID.
    pub(crate) fn add(&mut self, timestamp: u32, mut record: [u8; RECORD_LEN]) -> u16 {
        let id = self.next_id();
        record[..2].copy_from_slice(&id.to_le_bytes());
        // System event and OEM timestamped records get the SEL time.
        if record[2] == SYSTEM_EVENT || (0xC0..=0xDF).contains(&record[2]) {
            record[3..7].copy_from_slice(&timestamp.to_le_bytes());
        }
        if self.entries.len() >= SEL_CAPACITY {
            self.entries.pop_front();
            self.overflow = true;
        }
        self.entries.push_back(record);
        self.last_add = timestamp;
        id
    }

    /// Log `event` at `timestamp`.
    pub(crate) fn log(&mut self, timestamp: u32, event: SystemEvent) -> u16 {
        self.add(timestamp, event.record(0, timestamp))
    }

    /// Reserve SEL: a new reservation cancels the previous one.
    pub(crate) fn reserve(&mut self) -> u16 {
        self.reservation = self.reservation.wrapping_add(1).max(1);
        self.reservation
    }

    fn check(&self, reservation: u16) -> Result<(), u8> {
        if reservation != 0 && reservation == self.reservation {
            Ok(())
        } else {
            Err(cc::RESERVATION)
        }
    }

    /// Get SEL Info response data.
    pub(crate) fn info(&self) -> Vec<u8> {
        let n = self.entries.len() as u16;
        let free = ((SEL_CAPACITY - self.entries.len()) * RECORD_LEN) as u16;
        let mut r = vec![0x51];
        r.extend_from_slice(&n.to_le_bytes());
        r.extend_from_slice(&free.to_le_bytes());
        r.extend_from_slice(&self.last_add.to_le_bytes());
        r.extend_from_slice(&self.last_erase.to_le_bytes());
        // Reserve SEL supported; overflow flag.
        r.push(0x02 | if self.overflow { 0x80 } else { 0 });
        r
    }

    /// Get SEL Entry: `data` is reservation (2), record ID (2), offset,
    /// bytes to read (FFh = all). Returns the response data or a
    /// completion code.
    pub(crate) fn get(&self, data: &[u8]) -> Result<Vec<u8>, u8> {
        let [r0, r1, i0, i1, offset, count] = *data else {
            return Err(0xC7);
        };
        let id = u16::from_le_bytes([i0, i1]);
        if offset != 0 {
            self.check(u16::from_le_bytes([r0, r1]))?;
        }
        let index = match id {
            0x0000 => 0,
            0xFFFF => self.entries.len().checked_sub(1).ok_or(cc::NOT_PRESENT)?,
            id => self
                .entries
                .iter()
                .position(|e| u16::from_le_bytes([e[0], e[1]]) == id)
                .ok_or(cc::NOT_PRESENT)?,
        };
        let entry = self.entries.get(index).ok_or(cc::NOT_PRESENT)?;
        let next = self
            .entries
            .get(index + 1)
            .map_or(0xFFFF, |e| u16::from_le_bytes([e[0], e[1]]));
        let offset = usize::from(offset);
        if offset > RECORD_LEN {
            return Err(cc::OUT_OF_RANGE);
        }
        let end = (offset + usize::from(count)).min(RECORD_LEN);
        let mut r = next.to_le_bytes().to_vec();
        r.extend_from_slice(&entry[offset..end]);
        Ok(r)
    }

    /// Clear SEL: reservation (2), 'C' 'L' 'R', AAh initiate / 00h status.
    /// A cleared log starts with a "log area reset/cleared" record.
    pub(crate) fn clear(&mut self, timestamp: u32, data: &[u8]) -> Result<Vec<u8>, u8> {
        let [r0, r1, b'C', b'L', b'R', op] = *data else {
            return Err(if data.len() == 6 { 0xCC } else { 0xC7 });
        };
        self.check(u16::from_le_bytes([r0, r1]))?;
        match op {
            0xAA => {
                self.entries.clear();
                self.overflow = false;
                self.last_erase = timestamp;
                self.log(
                    timestamp,
                    SystemEvent::specific(event::EVENT_LOGGING, sensor_number::EVENT_LOG, 0x02),
                );
                Ok(vec![0x01])
            }
            0x00 => Ok(vec![0x01]),
            _ => Err(0xCC),
        }
    }

    /// Every record, oldest first (for tests and observers).
    pub(crate) fn records(&self) -> impl Iterator<Item = &[u8; RECORD_LEN]> {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn power_off() -> SystemEvent {
        SystemEvent::specific(event::POWER_UNIT, sensor_number::POWER_UNIT, 0)
    }

    #[test]
    fn walk_and_partial_reads() {
        let mut sel = Sel::default();
        let a = sel.log(100, power_off());
        let b = sel.log(101, SystemEvent::threshold(0x04, 0x03, 0x02, true, 0, 5));
        assert_eq!((a, b), (1, 2));
        let first = sel.get(&[0, 0, 0, 0, 0, 0xFF]).unwrap();
        assert_eq!(u16::from_le_bytes([first[0], first[1]]), b);
        let rec = &first[2..];
        assert_eq!(rec.len(), 16);
        assert_eq!(rec[2], SYSTEM_EVENT);
        assert_eq!(u32::from_le_bytes([rec[3], rec[4], rec[5], rec[6]]), 100);
        assert_eq!(&rec[10..13], &[0x09, 0x10, 0x6F]);
        let last = sel.get(&[0, 0, 0xFF, 0xFF, 0, 0xFF]).unwrap();
        assert_eq!(&last[..2], &[0xFF, 0xFF]);
        assert_eq!(&last[14..], &[0x01, 0x52, 0x00, 0x05]);
        // Partial reads need the current reservation.
        assert_eq!(sel.get(&[1, 0, 2, 0, 5, 5]), Err(cc::RESERVATION));
        let r = sel.reserve();
        let part = sel.get(&[r as u8, 0, 2, 0, 5, 5]).unwrap();
        assert_eq!(&part[2..], &last[7..12]);
        assert_eq!(sel.get(&[0, 0, 9, 0, 0, 0xFF]), Err(cc::NOT_PRESENT));
    }

    #[test]
    fn ring_is_bounded_and_clear_needs_a_reservation() {
        let mut sel = Sel::default();
        for t in 0..(SEL_CAPACITY as u32 + 10) {
            sel.log(t, power_off());
        }
        assert_eq!(sel.len(), SEL_CAPACITY);
        let info = sel.info();
        assert_eq!(info[0], 0x51);
        assert_eq!(
            u16::from_le_bytes([info[1], info[2]]) as usize,
            SEL_CAPACITY
        );
        assert_eq!(&info[3..5], &[0, 0]);
        assert_eq!(info[13], 0x82);
        assert_eq!(sel.clear(5, b"\x00\x00CLR\xAA"), Err(cc::RESERVATION));
        let r = sel.reserve().to_le_bytes();
        assert_eq!(
            sel.clear(5, &[r[0], r[1], b'C', b'L', b'R', 0xAA]),
            Ok(vec![1])
        );
        assert_eq!(sel.len(), 1);
        let rec = sel.records().next().unwrap();
        assert_eq!(&rec[10..14], &[0x10, 0x14, 0x6F, 0x02]);
        assert_eq!(sel.info()[13], 0x02);
    }

    #[test]
    fn ids_skip_0_and_ffff() {
        let mut sel = Sel {
            last_id: 0xFFFD,
            ..Sel::default()
        };
        assert_eq!(sel.log(0, power_off()), 0xFFFE);
        assert_eq!(sel.log(0, power_off()), 1);
    }

    proptest! {
        #[test]
        fn get_never_panics(data in proptest::collection::vec(any::<u8>(), 0..10), n in 0usize..5) {
            let mut sel = Sel::default();
            for _ in 0..n {
                sel.log(1, power_off());
            }
            sel.reserve();
            if let Ok(r) = sel.get(&data) {
                prop_assert!(r.len() >= 2 && r.len() <= 18);
            }
            let _ = sel.clear(2, &data);
        }

        #[test]
        fn add_keeps_the_payload(rec in proptest::array::uniform16(any::<u8>()), t: u32) {
            let mut sel = Sel::default();
            let id = sel.add(t, rec);
            let got = sel.get(&[0, 0, id as u8, (id >> 8) as u8, 0, 0xFF]).unwrap();
            prop_assert_eq!(&got[2 + 7..], &rec[7..]);
            prop_assert_eq!(got[2 + 2], rec[2]);
        }
    }
}
