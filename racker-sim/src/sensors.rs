//! The simulated server's sensors and their Sensor Data Records (SDR
//! repository, IPMI 2.0 §33, §43.1): a static table shared by every BMC,
//! readings computed from the node's power state and faults on demand, so
//! a BMC holds no per-sensor memory. See `docs/simulator.md` for the list.

/// SDR version byte (IPMI 2.0: 51h).
pub(crate) const SDR_VERSION: u8 = 0x51;
/// Record type of a full sensor record.
const FULL_SENSOR_RECORD: u8 = 0x01;
/// Sensor owner: the BMC's IPMB slave address.
const OWNER_ID: u8 = 0x20;

/// Sensor type codes (IPMI 2.0 Table 42-3).
pub(crate) mod sensor_type {
    pub(crate) const TEMPERATURE: u8 = 0x01;
    pub(crate) const VOLTAGE: u8 = 0x02;
    pub(crate) const FAN: u8 = 0x04;
    pub(crate) const OTHER_UNITS: u8 = 0x0B;
}

/// Base unit codes (IPMI 2.0 Table 43-15).
mod unit {
    pub(super) const DEGREES_C: u8 = 1;
    pub(super) const VOLTS: u8 = 4;
    pub(super) const WATTS: u8 = 6;
    pub(super) const RPM: u8 = 18;
}

/// Threshold bits as in the readable-threshold mask and the Get Sensor
/// Reading comparison byte (IPMI 2.0 Table 35-15).
pub(crate) mod threshold {
    pub(crate) const LNC: u8 = 0x01;
    pub(crate) const LCR: u8 = 0x02;
    pub(crate) const LNR: u8 = 0x04;
    pub(crate) const UNC: u8 = 0x08;
    pub(crate) const UCR: u8 = 0x10;
    pub(crate) const UNR: u8 = 0x20;
}

/// Raw threshold values of one sensor (`None` = not provided).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Thresholds {
    pub(crate) lnr: Option<u8>,
    pub(crate) lcr: Option<u8>,
    pub(crate) lnc: Option<u8>,
    pub(crate) unc: Option<u8>,
    pub(crate) ucr: Option<u8>,
    pub(crate) unr: Option<u8>,
}

impl Thresholds {
    const fn upper(unc: u8, ucr: u8, unr: u8) -> Self {
        Thresholds {
            lnr: None,
            lcr: None,
            lnc: None,
            unc: Some(unc),
            ucr: Some(ucr),
            unr: Some(unr),
        }
    }

    const fn lower(lcr: u8, lnc: u8) -> Self {
        Thresholds {
            lnr: None,
            lcr: Some(lcr),
            lnc: Some(lnc),
            unc: None,
            ucr: None,
            unr: None,
        }
    }

    const fn band(lcr: u8, lnc: u8, unc: u8, ucr: u8) -> Self {
        Thresholds {
            lnr: None,
            lcr: Some(lcr),
            lnc: Some(lnc),
            unc: Some(unc),
            ucr: Some(ucr),
            unr: None,
        }
    }

    /// The readable-threshold mask.
    pub(crate) fn mask(&self) -> u8 {
        let bit = |t: Option<u8>, b: u8| if t.is_some() { b } else { 0 };
        bit(self.lnc, threshold::LNC)
            | bit(self.lcr, threshold::LCR)
            | bit(self.lnr, threshold::LNR)
            | bit(self.unc, threshold::UNC)
            | bit(self.ucr, threshold::UCR)
            | bit(self.unr, threshold::UNR)
    }

    /// Which thresholds `raw` is at or beyond (linear, positive M: a higher
    /// raw value is a higher reading).
    pub(crate) fn status(&self, raw: u8) -> u8 {
        let le = |t: Option<u8>, b: u8| if t.is_some_and(|t| raw <= t) { b } else { 0 };
        let ge = |t: Option<u8>, b: u8| if t.is_some_and(|t| raw >= t) { b } else { 0 };
        le(self.lnc, threshold::LNC)
            | le(self.lcr, threshold::LCR)
            | le(self.lnr, threshold::LNR)
            | ge(self.unc, threshold::UNC)
            | ge(self.ucr, threshold::UCR)
            | ge(self.unr, threshold::UNR)
    }
}

/// One analog (threshold-based) sensor of the simulated server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SensorDef {
    pub(crate) number: u8,
    pub(crate) name: &'static str,
    pub(crate) entity: u8,
    pub(crate) instance: u8,
    pub(crate) sensor_type: u8,
    pub(crate) unit: u8,
    /// Reading = (M × raw + B × 10^Bexp) × 10^Rexp.
    pub(crate) m: i16,
    pub(crate) b: i16,
    pub(crate) r_exp: i8,
    pub(crate) b_exp: i8,
    pub(crate) thresholds: Thresholds,
    /// Raw reading with the host powered on / off.
    pub(crate) on: u8,
    pub(crate) off: u8,
    /// Powered by the host: while it is off the BMC does not evaluate the
    /// thresholds (like real BMCs, which would otherwise flag every fan
    /// and rail of a switched-off server).
    pub(crate) host_powered: bool,
}

/// What the readings depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct SensorInputs {
    pub(crate) power_on: bool,
    pub(crate) fan_fail: bool,
}

/// Number of the fan the `fan-fail` fault stops.
pub(crate) const FAILING_FAN: u8 = 0x03;

/// Entity IDs (IPMI 2.0 Table 43-13).
const ENTITY_PROCESSOR: u8 = 0x03;
const ENTITY_SYSTEM_BOARD: u8 = 0x07;
const ENTITY_POWER_SUPPLY: u8 = 0x0A;
const ENTITY_FAN: u8 = 0x1D;
const ENTITY_AIR_INLET: u8 = 0x37;

/// The sensors of every simulated server, in SDR repository order.
pub(crate) static SENSORS: [SensorDef; 8] = [
    SensorDef {
        number: 0x01,
        name: "CPU Temp",
        entity: ENTITY_PROCESSOR,
        instance: 1,
        sensor_type: sensor_type::TEMPERATURE,
        unit: unit::DEGREES_C,
        m: 1,
        b: 0,
        r_exp: 0,
        b_exp: 0,
        thresholds: Thresholds::upper(85, 90, 95),
        on: 45,
        off: 25,
        host_powered: true,
    },
    SensorDef {
        number: 0x02,
        name: "Inlet Temp",
        entity: ENTITY_AIR_INLET,
        instance: 1,
        sensor_type: sensor_type::TEMPERATURE,
        unit: unit::DEGREES_C,
        m: 1,
        b: 0,
        r_exp: 0,
        b_exp: 0,
        thresholds: Thresholds::upper(38, 42, 45),
        on: 24,
        off: 24,
        host_powered: false,
    },
    SensorDef {
        number: FAILING_FAN,
        name: "FAN1",
        entity: ENTITY_FAN,
        instance: 1,
        sensor_type: sensor_type::FAN,
        unit: unit::RPM,
        m: 100,
        b: 0,
        r_exp: 0,
        b_exp: 0,
        thresholds: Thresholds::lower(5, 8),
        on: 54,
        off: 0,
        host_powered: true,
    },
    SensorDef {
        number: 0x04,
        name: "FAN2",
        entity: ENTITY_FAN,
        instance: 2,
        sensor_type: sensor_type::FAN,
        unit: unit::RPM,
        m: 100,
        b: 0,
        r_exp: 0,
        b_exp: 0,
        thresholds: Thresholds::lower(5, 8),
        on: 56,
        off: 0,
        host_powered: true,
    },
    SensorDef {
        number: 0x05,
        name: "12V",
        entity: ENTITY_SYSTEM_BOARD,
        instance: 1,
        sensor_type: sensor_type::VOLTAGE,
        unit: unit::VOLTS,
        m: 6,
        b: 0,
        r_exp: -2,
        b_exp: 0,
        thresholds: Thresholds::band(180, 190, 210, 220),
        on: 200,
        off: 0,
        host_powered: true,
    },
    SensorDef {
        number: 0x06,
        name: "5V",
        entity: ENTITY_SYSTEM_BOARD,
        instance: 1,
        sensor_type: sensor_type::VOLTAGE,
        unit: unit::VOLTS,
        m: 4,
        b: 0,
        r_exp: -2,
        b_exp: 0,
        thresholds: Thresholds::band(112, 119, 131, 138),
        on: 125,
        off: 0,
        host_powered: true,
    },
    SensorDef {
        number: 0x07,
        name: "3.3V",
        entity: ENTITY_SYSTEM_BOARD,
        instance: 1,
        sensor_type: sensor_type::VOLTAGE,
        unit: unit::VOLTS,
        m: 2,
        b: 0,
        r_exp: -2,
        b_exp: 0,
        thresholds: Thresholds::band(149, 157, 173, 181),
        on: 165,
        off: 0,
        host_powered: true,
    },
    SensorDef {
        number: 0x08,
        name: "PSU Power",
        entity: ENTITY_POWER_SUPPLY,
        instance: 1,
        sensor_type: sensor_type::OTHER_UNITS,
        unit: unit::WATTS,
        m: 2,
        b: 0,
        r_exp: 0,
        b_exp: 0,
        thresholds: Thresholds::upper(225, 250, 255),
        on: 90,
        off: 4,
        host_powered: false,
    },
];

/// A sensor by number.
pub(crate) fn sensor(number: u8) -> Option<&'static SensorDef> {
    SENSORS.iter().find(|s| s.number == number)
}

/// One Get Sensor Reading answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reading {
    pub(crate) raw: u8,
    /// Threshold comparison bits (see [`threshold`]).
    pub(crate) status: u8,
}

impl Reading {
    /// Get Sensor Reading response data (after the completion code):
    /// reading, event messages + scanning enabled, comparison status.
    pub(crate) fn encode(&self) -> Vec<u8> {
        vec![self.raw, 0xC0, self.status]
    }
}

impl SensorDef {
    /// The reading for the node's current state.
    pub(crate) fn reading(&self, inputs: SensorInputs) -> Reading {
        if inputs.fan_fail && self.number == FAILING_FAN {
            // A failed fan is failed whether the host is on or not.
            return Reading {
                raw: 0,
                status: self.thresholds.status(0),
            };
        }
        let raw = if inputs.power_on { self.on } else { self.off };
        let evaluated = inputs.power_on || !self.host_powered;
        Reading {
            raw,
            status: if evaluated {
                self.thresholds.status(raw)
            } else {
                0
            },
        }
    }

    /// Convert a raw value with this sensor's factors.
    #[cfg(test)]
    pub(crate) fn value(&self, raw: u8) -> f64 {
        let m = f64::from(self.m);
        let b = f64::from(self.b) * 10f64.powi(i32::from(self.b_exp));
        (m * f64::from(raw) + b) * 10f64.powi(i32::from(self.r_exp))
    }

    /// Assertion event mask with the lower threshold reading mask (bits
    /// 14:12) and the deassertion event mask with the upper one.
    fn event_masks(&self) -> (u16, u16) {
        let t = &self.thresholds;
        let has = |x: Option<u8>| x.is_some();
        let mut events = 0u16;
        // Going-low events for lower thresholds, going-high for upper.
        if has(t.lnc) {
            events |= 1 << 0;
        }
        if has(t.lcr) {
            events |= 1 << 2;
        }
        if has(t.lnr) {
            events |= 1 << 4;
        }
        if has(t.unc) {
            events |= 1 << 7;
        }
        if has(t.ucr) {
            events |= 1 << 9;
        }
        if has(t.unr) {
            events |= 1 << 11;
        }
        let bit = |x: Option<u8>, b: u16| if x.is_some() { b } else { 0 };
        let lower = bit(t.lnr, 1 << 14) | bit(t.lcr, 1 << 13) | bit(t.lnc, 1 << 12);
        let upper = bit(t.unr, 1 << 14) | bit(t.ucr, 1 << 13) | bit(t.unc, 1 << 12);
        (lower | events, upper | events)
    }

    /// Get Sensor Thresholds response data: readable mask, then LNC, LCR,
    /// LNR, UNC, UCR, UNR (0 where not readable).
    pub(crate) fn thresholds_response(&self) -> Vec<u8> {
        let t = &self.thresholds;
        let v = |x: Option<u8>| x.unwrap_or(0);
        vec![
            t.mask(),
            v(t.lnc),
            v(t.lcr),
            v(t.lnr),
            v(t.unc),
            v(t.ucr),
            v(t.unr),
        ]
    }

    /// Get Sensor Event Enable response data: event messages and scanning
    /// enabled, then the assertion and deassertion enables.
    pub(crate) fn event_enable_response(&self) -> Vec<u8> {
        let (a, d) = self.event_masks();
        let (a, d) = (a & 0x0FFF, d & 0x0FFF);
        vec![0xC0, a as u8, (a >> 8) as u8, d as u8, (d >> 8) as u8]
    }

    /// The full sensor record (type 01h) with record ID `id`.
    pub(crate) fn full_record(&self, id: u16) -> Vec<u8> {
        let name = &self.name.as_bytes()[..self.name.len().min(16)];
        let (assert, deassert) = self.event_masks();
        let t = &self.thresholds;
        let v = |x: Option<u8>| x.unwrap_or(0);
        let ten = |x: i16| (x as u16) & 0x3FF;
        let (m, b) = (ten(self.m), ten(self.b));
        let nibble = |x: i8| (x as u8) & 0x0F;
        let mut r = Vec::with_capacity(48 + name.len());
        r.extend_from_slice(&id.to_le_bytes());
        r.extend_from_slice(&[SDR_VERSION, FULL_SENSOR_RECORD, (43 + name.len()) as u8]);
        r.extend_from_slice(&[OWNER_ID, 0x00, self.number]);
        r.extend_from_slice(&[self.entity, self.instance]);
        // Initialisation: scanning, events, thresholds, hysteresis, type;
        // events and scanning enabled.
        r.push(0x7F);
        // Capabilities: auto re-arm, no hysteresis, thresholds readable,
        // per-threshold event enables.
        r.push(0x44);
        r.extend_from_slice(&[self.sensor_type, 0x01]);
        r.extend_from_slice(&assert.to_le_bytes());
        r.extend_from_slice(&deassert.to_le_bytes());
        r.extend_from_slice(&[t.mask(), 0x00]);
        // Units: unsigned, no rate/modifier; base unit; linear.
        r.extend_from_slice(&[0x00, self.unit, 0x00, 0x00]);
        r.extend_from_slice(&[m as u8, ((m >> 8) as u8) << 6]);
        r.extend_from_slice(&[b as u8, ((b >> 8) as u8) << 6]);
        r.push(0x00);
        r.push((nibble(self.r_exp) << 4) | nibble(self.b_exp));
        // Nominal reading given.
        r.extend_from_slice(&[0x01, self.on, 0x00, 0x00, 0xFF, 0x00]);
        r.extend_from_slice(&[v(t.unr), v(t.ucr), v(t.unc), v(t.lnr), v(t.lcr), v(t.lnc)]);
        // Hysteresis, reserved, OEM.
        r.extend_from_slice(&[0, 0, 0, 0, 0]);
        r.push(0xC0 | name.len() as u8);
        r.extend_from_slice(name);
        r
    }
}

/// The SDR repository: record IDs 1..=N in [`SENSORS`] order.
pub(crate) fn record(id: u16) -> Option<(u16, Vec<u8>)> {
    // Record ID 0000h means "the first record".
    let index = usize::from(id.max(1)) - 1;
    let def = SENSORS.get(index)?;
    let next = if index + 1 < SENSORS.len() {
        (index + 2) as u16
    } else {
        0xFFFF
    };
    Some((next, def.full_record(index as u16 + 1)))
}

/// Number of records in the repository.
pub(crate) fn record_count() -> u16 {
    SENSORS.len() as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An independent reading of a full sensor record, from the layout in
    /// IPMI 2.0 Table 43-1.
    struct Parsed {
        id: u16,
        number: u8,
        sensor_type: u8,
        unit: u8,
        m: i16,
        r_exp: i8,
        readable: u8,
        lcr: u8,
        ucr: u8,
        name: String,
    }

    fn parse(r: &[u8]) -> Parsed {
        assert_eq!(r[2], 0x51);
        assert_eq!(r[3], 0x01);
        assert_eq!(usize::from(r[4]) + 5, r.len());
        let sign10 = |lo: u8, hi: u8| {
            let v = u16::from(lo) | (u16::from(hi >> 6) << 8);
            ((v << 6) as i16) >> 6
        };
        let sign4 = |n: u8| ((n << 4) as i8) >> 4;
        let len = usize::from(r[47] & 0x1F);
        assert_eq!(r[47] >> 6, 3, "8-bit ASCII name");
        Parsed {
            id: u16::from_le_bytes([r[0], r[1]]),
            number: r[7],
            sensor_type: r[12],
            unit: r[21],
            m: sign10(r[24], r[25]),
            r_exp: sign4(r[29] >> 4),
            readable: r[18],
            lcr: r[40],
            ucr: r[37],
            name: String::from_utf8(r[48..48 + len].to_vec()).unwrap(),
        }
    }

    #[test]
    fn records_decode_to_the_table() {
        let mut id = 0;
        let mut seen = 0;
        loop {
            let (next, rec) = record(id).unwrap();
            let p = parse(&rec);
            let def = &SENSORS[seen];
            assert_eq!(p.id, seen as u16 + 1);
            assert_eq!(p.number, def.number);
            assert_eq!(p.name, def.name);
            assert_eq!(p.sensor_type, def.sensor_type);
            assert_eq!(p.unit, def.unit);
            assert_eq!(p.m, def.m);
            assert_eq!(p.r_exp, def.r_exp);
            assert_eq!(p.readable, def.thresholds.mask());
            assert_eq!(p.lcr, def.thresholds.lcr.unwrap_or(0));
            assert_eq!(p.ucr, def.thresholds.ucr.unwrap_or(0));
            seen += 1;
            if next == 0xFFFF {
                break;
            }
            id = next;
        }
        assert_eq!(seen, SENSORS.len());
        assert!(record(SENSORS.len() as u16 + 1).is_none());
    }

    #[test]
    fn typical_values() {
        let on = SensorInputs {
            power_on: true,
            fan_fail: false,
        };
        let value = |n: u8, i: SensorInputs| {
            let s = sensor(n).unwrap();
            s.value(s.reading(i).raw)
        };
        assert_eq!(value(1, on), 45.0);
        assert_eq!(value(3, on), 5400.0);
        assert!((value(5, on) - 12.0).abs() < 1e-9);
        assert!((value(6, on) - 5.0).abs() < 1e-9);
        assert!((value(7, on) - 3.3).abs() < 1e-9);
        assert_eq!(value(8, on), 180.0);
        let off = SensorInputs::default();
        assert_eq!(value(3, off), 0.0);
        assert_eq!(value(8, off), 8.0);
        // Nothing is flagged in normal operation, on or off.
        for s in &SENSORS {
            assert_eq!(s.reading(on).status, 0, "{}", s.name);
            assert_eq!(s.reading(off).status, 0, "{}", s.name);
        }
    }

    #[test]
    fn fan_fail_crosses_lower_critical() {
        let s = sensor(FAILING_FAN).unwrap();
        for power_on in [true, false] {
            let r = s.reading(SensorInputs {
                power_on,
                fan_fail: true,
            });
            assert_eq!(r.raw, 0);
            assert_eq!(r.status, threshold::LCR | threshold::LNC);
        }
        let other = sensor(0x04).unwrap().reading(SensorInputs {
            power_on: true,
            fan_fail: true,
        });
        assert_eq!(other.status, 0);
    }

    proptest! {
        #[test]
        fn status_agrees_with_the_thresholds(raw: u8, n in 0usize..8) {
            let def = &SENSORS[n];
            let t = def.thresholds;
            let status = t.status(raw);
            prop_assert_eq!(status & !t.mask(), 0);
            if let Some(ucr) = t.ucr {
                prop_assert_eq!(status & threshold::UCR != 0, def.value(raw) >= def.value(ucr));
            }
            if let Some(lcr) = t.lcr {
                prop_assert_eq!(status & threshold::LCR != 0, def.value(raw) <= def.value(lcr));
            }
        }

        #[test]
        fn any_record_id_is_answered_or_refused(id: u16) {
            match record(id) {
                Some((next, rec)) => {
                    prop_assert!(usize::from(id) <= SENSORS.len());
                    prop_assert_eq!(usize::from(rec[4]) + 5, rec.len());
                    prop_assert!(next == 0xFFFF || usize::from(next) <= SENSORS.len());
                }
                None => prop_assert!(usize::from(id) > SENSORS.len()),
            }
        }
    }
}
