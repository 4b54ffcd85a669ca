//! Sensor Data Records and sensor readings (sans-IO).
//!
//! Records are decoded with `ipmi-rs-core` ([`ipmi_rs_core::storage::sdr::Record`])
//! behind one guard, [`parse_record`], because its parser indexes past the
//! end of short records (and panics on a compact record's reserved ID
//! string modifier). The reading conversion is our own: `ipmi-rs-core`
//! 0.6 decodes a negative M wrongly (only one of its two high bits is
//! kept), reads one's-complement values as their bitwise negation and
//! ignores the linearization; see the tests at the end of this file.
//! docs/ipmi.md describes what `racker ipmi sensors` prints.

use ipmi_rs_core::storage::sdr::record::{Record, RecordContents, WithSensorRecordCommon as _};
use serde::Serialize;

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError(pub String);

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Minimum record body length (after the 5-byte header) that
/// `ipmi-rs-core` 0.6 reads without indexing out of bounds, per type.
fn min_body_len(record_type: u8) -> usize {
    match record_type {
        0x01 => 43, // full sensor: ID type/length at body byte 42
        0x02 => 27, // compact sensor: ID type/length at body byte 26
        0x03 => 12,
        0x10..=0x12 => 11,
        _ => 0,
    }
}

/// Decode one complete SDR (header and body) with `ipmi-rs-core`, after
/// checking what its parser assumes. Never panics.
pub fn parse_record(bytes: &[u8]) -> Result<Record, RecordError> {
    if bytes.len() < 5 {
        return Err(RecordError(format!(
            "{} bytes: shorter than the 5-byte SDR header",
            bytes.len()
        )));
    }
    let (ty, len) = (bytes[3], usize::from(bytes[4]));
    let body = &bytes[5..];
    if body.len() != len {
        return Err(RecordError(format!(
            "record length byte says {len}, {} bytes follow",
            body.len()
        )));
    }
    if body.len() < min_body_len(ty) {
        return Err(RecordError(format!(
            "type {ty:#04x} record of {} bytes is too short",
            body.len()
        )));
    }
    if ty == 0x02 && (body[18] >> 4) & 0x3 > 1 {
        return Err(RecordError(
            "compact sensor record with a reserved ID string modifier".into(),
        ));
    }
    Record::parse(bytes).map_err(|e| RecordError(format!("{e:?}")))
}

/// The reading conversion of a full sensor record (IPMI 2.0 §36.3):
/// `y = L[(M·x + B·10^Bexp) · 10^Rexp]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Conversion {
    /// 0 unsigned, 1 one's complement, 2 two's complement, 3 no analog reading.
    pub format: u8,
    /// Linearization function code (0 linear … 11 cube root).
    pub linearization: u8,
    /// M (10-bit signed).
    pub m: i16,
    /// B (10-bit signed).
    pub b: i16,
    /// B exponent (4-bit signed).
    pub b_exp: i8,
    /// Result exponent (4-bit signed).
    pub r_exp: i8,
}

fn sign_extend(value: u16, bits: u32) -> i16 {
    let shift = 16 - bits;
    ((value << shift) as i16) >> shift
}

impl Conversion {
    /// The factors from a full sensor record's bytes (header included).
    pub fn from_full_record(bytes: &[u8]) -> Option<Conversion> {
        if bytes.len() < 30 || bytes[3] != 0x01 {
            return None;
        }
        let m = sign_extend(u16::from(bytes[24]) | (u16::from(bytes[25] >> 6) << 8), 10);
        let b = sign_extend(u16::from(bytes[26]) | (u16::from(bytes[27] >> 6) << 8), 10);
        let r_exp = sign_extend(u16::from(bytes[29] >> 4), 4) as i8;
        let b_exp = sign_extend(u16::from(bytes[29] & 0x0F), 4) as i8;
        Some(Conversion {
            format: bytes[20] >> 6,
            linearization: bytes[23] & 0x7F,
            m,
            b,
            b_exp,
            r_exp,
        })
    }

    /// Convert a raw reading; `None` for sensors without analog readings
    /// or results that are not finite.
    pub fn convert(&self, raw: u8) -> Option<f64> {
        let x = match self.format {
            0 => f64::from(raw),
            1 if raw & 0x80 != 0 => -f64::from(!raw),
            1 => f64::from(raw),
            2 => f64::from(raw as i8),
            _ => return None,
        };
        let y = (f64::from(self.m) * x + f64::from(self.b) * 10f64.powi(i32::from(self.b_exp)))
            * 10f64.powi(i32::from(self.r_exp));
        let y = match self.linearization {
            0 => y,
            1 => y.ln(),
            2 => y.log10(),
            3 => y.log2(),
            4 => y.exp(),
            5 => 10f64.powf(y),
            6 => y.exp2(),
            7 => 1.0 / y,
            8 => y * y,
            9 => y * y * y,
            10 => y.sqrt(),
            11 => y.cbrt(),
            _ => return None,
        };
        y.is_finite().then_some(y)
    }
}

/// Threshold values of a full sensor record, converted (only the readable ones).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Thresholds {
    /// Lower non-recoverable.
    pub lower_non_recoverable: Option<f64>,
    /// Lower critical.
    pub lower_critical: Option<f64>,
    /// Lower non-critical.
    pub lower_non_critical: Option<f64>,
    /// Upper non-critical.
    pub upper_non_critical: Option<f64>,
    /// Upper critical.
    pub upper_critical: Option<f64>,
    /// Upper non-recoverable.
    pub upper_non_recoverable: Option<f64>,
}

/// A sensor as its SDR describes it: what is needed to read and show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SensorDef {
    /// SDR record id.
    pub record_id: u16,
    /// Sensor number.
    pub number: u8,
    /// Sensor owner LUN.
    pub lun: u8,
    /// ID string.
    pub name: String,
    /// Sensor type code (0x01 temperature, 0x02 voltage, 0x04 fan …).
    pub sensor_type_code: u8,
    /// Sensor type name (from `ipmi-rs-core`).
    pub sensor_type: String,
    /// Event/reading type code (0x01 threshold, 0x6F sensor-specific …).
    pub event_reading_type: u8,
    /// Base unit code.
    pub unit_code: u8,
    /// Unit name, e.g. `degrees C`, `Volts`, `RPM`, `Watts`.
    pub unit: String,
    /// Analog conversion (full sensor records only).
    pub conversion: Option<Conversion>,
    /// Thresholds (full sensor records with readable thresholds).
    pub thresholds: Thresholds,
}

impl SensorDef {
    /// True for threshold-based sensors (event/reading type 0x01).
    pub fn is_threshold(&self) -> bool {
        self.event_reading_type == 0x01
    }
}

/// Unit names as ipmitool prints them for the common base units, else
/// `ipmi-rs-core`'s name.
fn unit_name(code: u8, percentage: bool) -> String {
    if percentage {
        return "percent".into();
    }
    match code {
        0 => "unspecified".into(),
        1 => "degrees C".into(),
        2 => "degrees F".into(),
        3 => "degrees K".into(),
        4 => "Volts".into(),
        5 => "Amps".into(),
        6 => "Watts".into(),
        7 => "Joules".into(),
        18 => "RPM".into(),
        19 => "Hz".into(),
        other => {
            let unit = ipmi_rs_core::storage::sdr::Unit::from(other);
            // "2.00 Xs" → "Xs"
            let text = unit.display(false, 2.0f32);
            text.split_once(' ')
                .map_or(text.clone(), |(_, u)| u.to_string())
        }
    }
}

/// The sensors described by a set of complete SDRs (full and compact
/// sensor records; others are skipped). Undecodable records are skipped too.
pub fn sensor_defs(records: &[Vec<u8>]) -> Vec<SensorDef> {
    records.iter().filter_map(|r| sensor_def(r).ok()).collect()
}

/// One record → sensor definition; `Err` for non-sensor or bad records.
pub fn sensor_def(bytes: &[u8]) -> Result<SensorDef, RecordError> {
    let record = parse_record(bytes)?;
    let (common, conversion) = match &record.contents {
        RecordContents::FullSensor(f) => (f.common(), Conversion::from_full_record(bytes)),
        RecordContents::CompactSensor(c) => (c.common(), None),
        _ => return Err(RecordError("not a full or compact sensor record".into())),
    };
    let units = &common.sensor_units;
    let unit_code = u8::from(units.base_unit);
    let mut thresholds = Thresholds::default();
    if let Some(conv) = conversion {
        // Readable threshold mask: body bytes 13 (record byte 18), bits 0–5.
        let readable = bytes[18];
        let access = (bytes[11] >> 2) & 0x3;
        if access == 1 || access == 2 {
            let get = |bit: u8, idx: usize| {
                (readable & (1 << bit) != 0)
                    .then(|| conv.convert(bytes[idx]))
                    .flatten()
            };
            thresholds = Thresholds {
                lower_non_critical: get(0, 41),
                lower_critical: get(1, 40),
                lower_non_recoverable: get(2, 39),
                upper_non_critical: get(3, 38),
                upper_critical: get(4, 37),
                upper_non_recoverable: get(5, 36),
            };
        }
    }
    let ty = *record
        .contents
        .sensor_type()
        .as_ref()
        .ok_or_else(|| RecordError("no sensor type".into()))?;
    Ok(SensorDef {
        record_id: record.header.id.value(),
        number: common.key.sensor_number.get(),
        lun: u8::from(common.key.owner_lun),
        name: common
            .sensor_id
            .to_string()
            .trim_end_matches('\0')
            .trim()
            .to_string(),
        sensor_type_code: u8::from(ty),
        sensor_type: ty.to_string(),
        event_reading_type: bytes[13],
        unit_code,
        unit: unit_name(unit_code, units.is_percentage),
        conversion,
        thresholds,
    })
}

/// A sensor's status, like ipmitool's `sdr list` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SensorStatus {
    /// Within thresholds (or a discrete sensor with no state asserted).
    Ok,
    /// At or beyond a non-critical threshold.
    Warning,
    /// At or beyond a critical threshold.
    Critical,
    /// At or beyond a non-recoverable threshold.
    Nonrecoverable,
    /// Reading unavailable or scanning disabled.
    Unavailable,
}

impl SensorStatus {
    /// The lowercase name used in JSON and text.
    pub fn as_str(self) -> &'static str {
        match self {
            SensorStatus::Ok => "ok",
            SensorStatus::Warning => "warning",
            SensorStatus::Critical => "critical",
            SensorStatus::Nonrecoverable => "non-recoverable",
            SensorStatus::Unavailable => "unavailable",
        }
    }
}

/// One sensor's reading: SDR definition plus Get Sensor Reading, converted.
///
/// JSON (docs/output.md, result type `sensors`): `record_id`,
/// `sensor_number`, `name`, `sensor_type` (a fixed word, [`words::sensor_type`]),
/// `sensor_type_code`, `reading`, `unit` (a fixed word, [`words::unit`]),
/// `status`, `states`, `thresholds`.
///
/// [`words::sensor_type`]: crate::words::sensor_type
/// [`words::unit`]: crate::words::unit
#[derive(Debug, Clone, PartialEq)]
pub struct SensorReading {
    /// SDR record id (ipmi_exporter's `id` label).
    pub record_id: u16,
    /// Sensor number.
    pub number: u8,
    /// ID string.
    pub name: String,
    /// Sensor type name as ipmitool prints it (`Temperature`).
    pub sensor_type: String,
    /// Sensor type code.
    pub type_code: u8,
    /// Converted reading (threshold sensors with an analog reading).
    pub reading: Option<f64>,
    /// Unit of `reading` as ipmitool prints it (`degrees C`).
    pub unit: String,
    /// Status.
    pub status: SensorStatus,
    /// For discrete sensors: the asserted state bits (offsets 0–14).
    pub states: u16,
    /// Thresholds from the SDR.
    pub thresholds: Thresholds,
}

impl Serialize for SensorReading {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut m = s.serialize_struct("SensorReading", 10)?;
        m.serialize_field("record_id", &self.record_id)?;
        m.serialize_field("sensor_number", &self.number)?;
        m.serialize_field("name", &self.name)?;
        m.serialize_field("sensor_type", crate::words::sensor_type(self.type_code))?;
        m.serialize_field("sensor_type_code", &self.type_code)?;
        m.serialize_field("reading", &self.reading)?;
        m.serialize_field("unit", &crate::words::unit(&self.unit))?;
        m.serialize_field("status", &self.status)?;
        m.serialize_field("states", &self.states)?;
        m.serialize_field("thresholds", &self.thresholds)?;
        m.end()
    }
}

/// Interpret a Get Sensor Reading reply (completion code stripped) for `def`.
pub fn interpret_reading(def: &SensorDef, data: &[u8]) -> SensorReading {
    let mut out = SensorReading {
        record_id: def.record_id,
        number: def.number,
        name: def.name.clone(),
        sensor_type: def.sensor_type.clone(),
        type_code: def.sensor_type_code,
        reading: None,
        unit: def.unit.clone(),
        status: SensorStatus::Unavailable,
        states: 0,
        thresholds: def.thresholds,
    };
    let (Some(&raw), Some(&flags)) = (data.first(), data.get(1)) else {
        return out;
    };
    // Bit 6 clear: scanning disabled; bit 5 set: reading unavailable.
    if flags & 0x40 == 0 || flags & 0x20 != 0 {
        return out;
    }
    let s1 = data.get(2).copied().unwrap_or(0);
    let s2 = data.get(3).copied().unwrap_or(0) & 0x7F;
    if def.is_threshold() {
        out.reading = def.conversion.and_then(|c| c.convert(raw));
        out.status = if s1 & 0x24 != 0 {
            SensorStatus::Nonrecoverable
        } else if s1 & 0x12 != 0 {
            SensorStatus::Critical
        } else if s1 & 0x09 != 0 {
            SensorStatus::Warning
        } else {
            SensorStatus::Ok
        };
    } else {
        out.states = u16::from(s1) | (u16::from(s2) << 8);
        out.status = SensorStatus::Ok;
    }
    out
}

/// The SDR repository's identity for caching: record count and the most
/// recent addition and erase timestamps (Get SDR Repository Info).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct SdrStamp {
    /// Record count.
    pub records: u16,
    /// Most recent addition timestamp.
    pub added: u32,
    /// Most recent erase timestamp.
    pub erased: u32,
}

impl SdrStamp {
    /// From a Get SDR Repository Info reply (completion code stripped).
    /// `ipmi-rs-core`'s decoder indexes 14 bytes unchecked and keeps the
    /// timestamps private, so this reads them directly.
    pub fn decode(data: &[u8]) -> Option<SdrStamp> {
        if data.len() < 14 {
            return None;
        }
        let u32le = |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
        Some(SdrStamp {
            records: u16::from_le_bytes([data[1], data[2]]),
            added: u32le(5),
            erased: u32le(9),
        })
    }
}

/// A BMC's sensor definitions cached against its SDR repository stamp:
/// reused between polls until the repository changes.
#[derive(Debug, Clone, Default)]
pub struct SdrCache {
    entries: std::collections::HashMap<String, (SdrStamp, std::sync::Arc<Vec<SensorDef>>)>,
}

impl SdrCache {
    /// An empty cache.
    pub fn new() -> SdrCache {
        SdrCache::default()
    }

    /// The cached definitions of `bmc` when its stamp is still `stamp`.
    pub fn get(&self, bmc: &str, stamp: &SdrStamp) -> Option<std::sync::Arc<Vec<SensorDef>>> {
        self.entries
            .get(bmc)
            .filter(|(s, _)| s == stamp)
            .map(|(_, d)| d.clone())
    }

    /// Remember `defs` for `bmc` at `stamp`.
    pub fn insert(
        &mut self,
        bmc: &str,
        stamp: SdrStamp,
        defs: Vec<SensorDef>,
    ) -> std::sync::Arc<Vec<SensorDef>> {
        let defs = std::sync::Arc::new(defs);
        self.entries.insert(bmc.to_string(), (stamp, defs.clone()));
        defs
    }

    /// Number of BMCs cached.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Build a full sensor record (for tests, benches and simulators): linear,
/// unsigned, `y = M·x·10^Rexp`, readable thresholds UC/UNC/LC/LNC.
#[allow(clippy::too_many_arguments)]
pub fn full_sensor_record(
    record_id: u16,
    number: u8,
    sensor_type: u8,
    unit: u8,
    m: i16,
    r_exp: i8,
    thresholds: [u8; 6],
    name: &str,
) -> Vec<u8> {
    let name = &name.as_bytes()[..name.len().min(16)];
    let mut r = vec![0u8; 48];
    r[0..2].copy_from_slice(&record_id.to_le_bytes());
    r[2] = 0x51;
    r[3] = 0x01;
    r[5] = 0x20; // owner: BMC
    r[7] = number;
    r[8] = 0x07; // entity: system board
    r[9] = 0x01;
    r[10] = 0x7F;
    r[11] = 0x44; // auto re-arm, readable thresholds
    r[12] = sensor_type;
    r[13] = 0x01; // threshold
    r[18] = 0x3F; // all six thresholds readable
    r[20] = 0x00; // unsigned, no rate, no modifier
    r[21] = unit;
    let m = (m as u16) & 0x3FF;
    r[24] = (m & 0xFF) as u8;
    r[25] = ((m >> 8) as u8) << 6;
    r[29] = ((r_exp as u8) & 0x0F) << 4;
    r[34] = 0xFF;
    // UNR, UC, UNC, LNR, LC, LNC
    r[36..42].copy_from_slice(&thresholds);
    r[47] = 0xC0 | name.len() as u8;
    r.extend_from_slice(name);
    r[4] = (r.len() - 5) as u8;
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cpu_temp() -> Vec<u8> {
        full_sensor_record(1, 0x30, 0x01, 1, 1, 0, [100, 95, 90, 0, 5, 10], "CPU Temp")
    }

    #[test]
    fn full_record_decodes_name_type_unit_thresholds() {
        let d = sensor_def(&cpu_temp()).unwrap();
        assert_eq!(d.name, "CPU Temp");
        assert_eq!(d.number, 0x30);
        assert_eq!(d.sensor_type, "Temperature");
        assert_eq!(d.unit, "degrees C");
        assert_eq!(d.thresholds.upper_critical, Some(95.0));
        assert_eq!(d.thresholds.lower_non_critical, Some(10.0));
        let r = interpret_reading(&d, &[45, 0xC0, 0x00]);
        assert_eq!(r.reading, Some(45.0));
        assert_eq!(r.status, SensorStatus::Ok);
        let r = interpret_reading(&d, &[96, 0xC0, 0x18]);
        assert_eq!(r.status, SensorStatus::Critical);
        let r = interpret_reading(&d, &[0, 0xE0, 0x00]);
        assert_eq!(r.status, SensorStatus::Unavailable);
        assert_eq!(r.reading, None);
    }

    /// ipmi-rs-core 0.6 keeps only one of M's two high bits: M = -2 (0x3FE)
    /// comes out as -514. Our conversion sign-extends the 10 bits.
    #[test]
    fn negative_m_is_sign_extended_unlike_ipmi_rs() {
        let rec = full_sensor_record(2, 1, 0x02, 4, -2, -2, [0; 6], "Neg M");
        let ours = Conversion::from_full_record(&rec).unwrap();
        assert_eq!(ours.m, -2);
        assert_eq!(ours.convert(100), Some(-2.0));
        let parsed = parse_record(&rec).unwrap();
        let theirs = parsed.full_sensor().unwrap();
        assert_eq!(
            theirs.m, -514,
            "ipmi-rs-core fixed its M decoding: drop our override"
        );
    }

    /// ipmi-rs-core 0.6 converts one's-complement readings as `!x`, so +5
    /// reads as -6; ours reads +5 and 0xFA (-5) as -5.
    #[test]
    fn ones_complement_readings() {
        let c = Conversion {
            format: 1,
            linearization: 0,
            m: 1,
            b: 0,
            b_exp: 0,
            r_exp: 0,
        };
        assert_eq!(c.convert(5), Some(5.0));
        assert_eq!(c.convert(0xFA), Some(-5.0));
        let mut rec = full_sensor_record(3, 2, 0x01, 1, 1, 0, [0; 6], "Ones");
        rec[20] = 0x40;
        let theirs = parse_record(&rec).unwrap();
        let shown = theirs.full_sensor().unwrap().display_reading(5).unwrap();
        assert!(shown.starts_with("-6"), "{shown}");
    }

    #[test]
    fn voltage_with_result_exponent() {
        // 12 V rail: M = 6, Rexp = -2 → raw 200 = 12.00 V
        let rec = full_sensor_record(4, 3, 0x02, 4, 6, -2, [0; 6], "12V");
        let d = sensor_def(&rec).unwrap();
        let r = interpret_reading(&d, &[200, 0xC0, 0]);
        assert!((r.reading.unwrap() - 12.0).abs() < 1e-9);
        assert_eq!(r.unit, "Volts");
    }

    /// ipmi-rs-core 0.6 indexes past the end of a 17-byte body and panics
    /// on a compact record with modifier bits 0b10; the guard refuses both.
    #[test]
    fn guard_refuses_what_ipmi_rs_would_panic_on() {
        let mut short = cpu_temp();
        short.truncate(5 + 17);
        short[4] = 17;
        assert!(parse_record(&short).is_err());
        let mut compact = vec![0u8; 5 + 27];
        compact[3] = 0x02;
        compact[4] = 27;
        compact[5 + 18] = 0x20;
        assert!(parse_record(&compact).is_err());
    }

    #[test]
    fn stamp_and_cache() {
        let mut data = vec![0x51, 3, 0, 0, 0];
        data.extend_from_slice(&100u32.to_le_bytes());
        data.extend_from_slice(&50u32.to_le_bytes());
        data.push(0);
        let s = SdrStamp::decode(&data).unwrap();
        assert_eq!((s.records, s.added, s.erased), (3, 100, 50));
        assert!(SdrStamp::decode(&data[..13]).is_none());
        let mut c = SdrCache::new();
        c.insert("b", s, sensor_defs(&[cpu_temp()]));
        assert_eq!(c.get("b", &s).unwrap().len(), 1);
        let newer = SdrStamp { added: 101, ..s };
        assert!(c.get("b", &newer).is_none());
    }

    proptest! {
        #[test]
        fn arbitrary_records_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = parse_record(&bytes);
            let _ = sensor_def(&bytes);
        }

        #[test]
        fn typed_records_never_panic(ty in prop_oneof![Just(1u8), Just(2), Just(3), Just(0x10), Just(0x11), Just(0x12)],
                                     body in proptest::collection::vec(any::<u8>(), 0..70)) {
            let mut bytes = vec![1, 0, 0x51, ty, body.len() as u8];
            bytes.extend_from_slice(&body);
            let _ = parse_record(&bytes);
            if let Ok(d) = sensor_def(&bytes) {
                let _ = interpret_reading(&d, &body);
            }
        }

        #[test]
        fn built_records_round_trip(number in 0u8..0xFF, m in -512i16..512, r_exp in -8i8..8, raw in any::<u8>()) {
            let rec = full_sensor_record(9, number, 0x01, 1, m, r_exp, [0; 6], "T");
            let d = sensor_def(&rec).unwrap();
            prop_assert_eq!(d.number, number);
            let c = d.conversion.unwrap();
            prop_assert_eq!((c.m, c.r_exp), (m, r_exp));
            let want = f64::from(m) * f64::from(raw) * 10f64.powi(i32::from(r_exp));
            let got = c.convert(raw).unwrap();
            prop_assert!((got - want).abs() <= want.abs() * 1e-12 + 1e-12);
        }
    }
}
