//! FRU inventory (IPMI Platform Management FRU Information Storage
//! Definition v1.0): chassis, board and product info areas. `ipmi-rs-core`
//! 0.6 has no FRU support, so this decoder is racker's own (sans-IO,
//! never panics on any input).

use serde::Serialize;

/// Decoded FRU inventory. Missing areas are `None`; missing fields empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Fru {
    /// Chassis info area.
    pub chassis: Option<ChassisInfo>,
    /// Board info area.
    pub board: Option<BoardInfo>,
    /// Product info area.
    pub product: Option<ProductInfo>,
}

/// Chassis info area. JSON: `chassis_type` (a fixed word,
/// [`crate::words::chassis_type`]), `part_number`, `serial`, `extra`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChassisInfo {
    /// SMBIOS chassis type code.
    #[serde(serialize_with = "chassis_type_word")]
    pub chassis_type: u8,
    /// Part number.
    pub part_number: String,
    /// Serial number.
    pub serial: String,
    /// Custom fields.
    pub extra: Vec<String>,
}

fn chassis_type_word<S: serde::Serializer>(code: &u8, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(crate::words::chassis_type(*code))
}

fn manufactured_at<S: serde::Serializer>(minutes: &u32, s: S) -> Result<S::Ok, S::Error> {
    let at = (*minutes != 0).then(|| crate::words::rfc3339(mfg_unix(*minutes)));
    serde::Serialize::serialize(&at, s)
}

fn mfg_unix(minutes: u32) -> u64 {
    // 1996-01-01T00:00:00Z
    820_454_400 + u64::from(minutes) * 60
}

/// Board info area. JSON: `manufactured_at` (RFC 3339 or null),
/// `manufacturer`, `product`, `serial`, `part_number`, `fru_file_id`,
/// `extra`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BoardInfo {
    /// Manufacturing date: minutes since 1996-01-01 00:00 UTC (0 = unspecified).
    #[serde(rename = "manufactured_at", serialize_with = "manufactured_at")]
    pub mfg_minutes: u32,
    /// Manufacturer.
    pub manufacturer: String,
    /// Product name.
    pub product: String,
    /// Serial number.
    pub serial: String,
    /// Part number.
    pub part_number: String,
    /// FRU file id.
    pub fru_file_id: String,
    /// Custom fields.
    pub extra: Vec<String>,
}

impl BoardInfo {
    /// The manufacturing date as a Unix timestamp, if given.
    pub fn mfg_unix(&self) -> Option<u64> {
        (self.mfg_minutes != 0).then(|| mfg_unix(self.mfg_minutes))
    }
}

/// Product info area.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProductInfo {
    /// Manufacturer.
    pub manufacturer: String,
    /// Product name.
    pub name: String,
    /// Part/model number.
    pub part_number: String,
    /// Version.
    pub version: String,
    /// Serial number.
    pub serial: String,
    /// Asset tag.
    pub asset_tag: String,
    /// FRU file id.
    pub fru_file_id: String,
    /// Custom fields.
    pub extra: Vec<String>,
}

/// Why a FRU image could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FruError(pub String);

impl std::fmt::Display for FruError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn checksum_ok(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b)) == 0
}

/// Decode one type/length field's data.
pub fn decode_field(type_length: u8, data: &[u8]) -> String {
    match type_length >> 6 {
        0 => data.iter().map(|b| format!("{b:02x}")).collect(),
        1 => data
            .iter()
            .flat_map(|b| [b & 0x0F, b >> 4])
            .map(|n| match n {
                0..=9 => char::from(b'0' + n),
                0xA => ' ',
                0xB => '-',
                0xC => '.',
                _ => '?',
            })
            .collect(),
        2 => {
            let mut out = String::new();
            for chunk in data.chunks(3) {
                let mut v: u32 = 0;
                for (i, b) in chunk.iter().enumerate() {
                    v |= u32::from(*b) << (8 * i);
                }
                let chars = (chunk.len() * 8) / 6;
                for i in 0..chars {
                    let c = ((v >> (6 * i)) & 0x3F) as u8 + 0x20;
                    out.push(char::from(c));
                }
            }
            out.trim_end().to_string()
        }
        _ => data
            .iter()
            .map(|b| char::from(*b))
            .collect::<String>()
            .trim_end_matches('\0')
            .trim_end()
            .to_string(),
    }
}

/// Read type/length fields from `data` until 0xC1 or the end.
fn fields(data: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&tl) = data.get(i) {
        if tl == 0xC1 {
            break;
        }
        let len = usize::from(tl & 0x3F);
        let Some(bytes) = data.get(i + 1..i + 1 + len) else {
            break;
        };
        out.push(decode_field(tl, bytes));
        i += 1 + len;
    }
    out
}

/// The area at header offset `off` (in 8-byte units), checksum verified.
fn area(image: &[u8], off: u8) -> Result<Option<&[u8]>, FruError> {
    if off == 0 {
        return Ok(None);
    }
    let start = usize::from(off) * 8;
    let len = image
        .get(start + 1)
        .map(|l| usize::from(*l) * 8)
        .ok_or_else(|| FruError(format!("area at byte {start} is past the end")))?;
    let a = image
        .get(start..start + len)
        .filter(|a| a.len() >= 2)
        .ok_or_else(|| FruError(format!("area at byte {start} ({len} bytes) is truncated")))?;
    if !checksum_ok(a) {
        return Err(FruError(format!("area at byte {start}: bad checksum")));
    }
    Ok(Some(a))
}

fn take(v: &mut std::vec::IntoIter<String>) -> String {
    v.next().unwrap_or_default()
}

/// Decode a FRU image (as read with Read FRU Data from offset 0).
pub fn parse(image: &[u8]) -> Result<Fru, FruError> {
    let header = image
        .get(..8)
        .ok_or_else(|| FruError(format!("{} bytes: no common header", image.len())))?;
    if header[0] & 0x0F != 1 {
        return Err(FruError(format!(
            "common header format version {:#04x} (expected 0x01)",
            header[0]
        )));
    }
    if !checksum_ok(header) {
        return Err(FruError("common header: bad checksum".into()));
    }
    let mut fru = Fru::default();
    if let Some(a) = area(image, header[2])? {
        let mut f = fields(a.get(3..).unwrap_or_default()).into_iter();
        fru.chassis = Some(ChassisInfo {
            chassis_type: a.get(2).copied().unwrap_or(0),
            part_number: take(&mut f),
            serial: take(&mut f),
            extra: f.collect(),
        });
    }
    if let Some(a) = area(image, header[3])? {
        let m = a.get(3..6).unwrap_or(&[0, 0, 0]);
        let mut f = fields(a.get(6..).unwrap_or_default()).into_iter();
        fru.board = Some(BoardInfo {
            mfg_minutes: u32::from_le_bytes([
                m.first().copied().unwrap_or(0),
                m.get(1).copied().unwrap_or(0),
                m.get(2).copied().unwrap_or(0),
                0,
            ]),
            manufacturer: take(&mut f),
            product: take(&mut f),
            serial: take(&mut f),
            part_number: take(&mut f),
            fru_file_id: take(&mut f),
            extra: f.collect(),
        });
    }
    if let Some(a) = area(image, header[4])? {
        let mut f = fields(a.get(3..).unwrap_or_default()).into_iter();
        fru.product = Some(ProductInfo {
            manufacturer: take(&mut f),
            name: take(&mut f),
            part_number: take(&mut f),
            version: take(&mut f),
            serial: take(&mut f),
            asset_tag: take(&mut f),
            fru_file_id: take(&mut f),
            extra: f.collect(),
        });
    }
    Ok(fru)
}

fn encode_area(prefix: &[u8], strings: &[&str]) -> Vec<u8> {
    let mut a = prefix.to_vec();
    for s in strings {
        let b = &s.as_bytes()[..s.len().min(63)];
        if b.len() == 1 {
            // 0xC1 is the end marker: a one-byte string gets a NUL pad.
            a.extend_from_slice(&[0xC2, b[0], 0]);
            continue;
        }
        a.push(0xC0 | b.len() as u8);
        a.extend_from_slice(b);
    }
    a.push(0xC1);
    while !(a.len() + 1).is_multiple_of(8) {
        a.push(0);
    }
    a.push(0);
    a[1] = (a.len() / 8) as u8;
    let sum = a.iter().fold(0u8, |x, y| x.wrapping_add(*y));
    if let Some(last) = a.last_mut() {
        *last = 0u8.wrapping_sub(sum);
    }
    a
}

/// Encode a FRU image with board and product areas (8-bit ASCII fields),
/// the inverse of [`parse`] for such images (tests, simulators).
pub fn encode(board: &BoardInfo, product: &ProductInfo) -> Vec<u8> {
    let m = board.mfg_minutes.to_le_bytes();
    let b = encode_area(
        &[1, 0, 0, m[0], m[1], m[2]],
        &[
            &board.manufacturer,
            &board.product,
            &board.serial,
            &board.part_number,
            &board.fru_file_id,
        ],
    );
    let p = encode_area(
        &[1, 0, 0],
        &[
            &product.manufacturer,
            &product.name,
            &product.part_number,
            &product.version,
            &product.serial,
            &product.asset_tag,
            &product.fru_file_id,
        ],
    );
    let mut header = vec![1, 0, 0, 1, 1 + (b.len() / 8) as u8, 0, 0, 0];
    let sum = header.iter().fold(0u8, |x, y| x.wrapping_add(*y));
    header[7] = 0u8.wrapping_sub(sum);
    let mut image = header;
    image.extend_from_slice(&b);
    image.extend_from_slice(&p);
    image
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn six_bit_ascii_and_bcd() {
        // "IPMI" in 6-bit packed ASCII: 0x29 0xDC 0xA6
        assert_eq!(decode_field(0x83, &[0x29, 0xDC, 0xA6]), "IPMI");
        assert_eq!(decode_field(0x42, &[0x21, 0x3B]), "12-3");
        assert_eq!(decode_field(0x02, &[0xde, 0xad]), "dead");
    }

    #[test]
    fn bad_checksum_is_an_error() {
        let mut img = encode(&BoardInfo::default(), &ProductInfo::default());
        img[7] ^= 1;
        assert!(parse(&img).is_err());
    }

    fn field() -> impl Strategy<Value = String> {
        "[A-Za-z0-9 .-]{0,20}".prop_map(|s| s.trim_end().to_string())
    }

    proptest! {
        #[test]
        fn round_trips(man in field(), prod in field(), serial in field(), part in field(),
                       name in field(), ver in field(), tag in field(), minutes in 0u32..0xFF_FFFF) {
            let board = BoardInfo { mfg_minutes: minutes, manufacturer: man.clone(), product: prod,
                serial: serial.clone(), part_number: part.clone(), ..Default::default() };
            let product = ProductInfo { manufacturer: man, name, part_number: part, version: ver,
                serial, asset_tag: tag, ..Default::default() };
            let fru = parse(&encode(&board, &product)).unwrap();
            prop_assert_eq!(fru.board, Some(board));
            prop_assert_eq!(fru.product, Some(product));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&bytes);
        }
    }
}
