//! FRU inventory of the simulated server (IPMI Platform Management FRU
//! Information Storage Definition v1.0): common header, chassis, board and
//! product info areas. Built from the BMC MAC on each read, so no BMC keeps
//! a copy.

/// Manufacturer in the board and product areas.
pub(crate) const MANUFACTURER: &str = "Racker";
/// Product name.
pub(crate) const PRODUCT_NAME: &str = "Racker Simulated Server";
/// Board product name.
pub(crate) const BOARD_NAME: &str = "Racker Simulated Board";
/// Board manufacturing date: 2025-01-01 00:00 UTC in minutes since
/// 1996-01-01 00:00 UTC.
const MFG_MINUTES: u32 = 15_253_920;

/// Serial number of the product: `SIM-` and the BMC MAC in hex.
pub(crate) fn serial(mac: [u8; 6]) -> String {
    let hex: String = mac.iter().map(|b| format!("{b:02X}")).collect();
    format!("SIM-{hex}")
}

/// Append a type/length byte (8-bit ASCII + Latin 1) and the text.
fn field(out: &mut Vec<u8>, text: &str) {
    let bytes = &text.as_bytes()[..text.len().min(63)];
    out.push(0xC0 | bytes.len() as u8);
    out.extend_from_slice(bytes);
}

/// Close an info area: end marker, pad to a multiple of 8, zero checksum;
/// the length byte (index 1) counts 8-byte units.
fn finish_area(mut area: Vec<u8>) -> Vec<u8> {
    area.push(0xC1);
    while !(area.len() + 1).is_multiple_of(8) {
        area.push(0x00);
    }
    area[1] = ((area.len() + 1) / 8) as u8;
    area.push(checksum(&area));
    area
}

/// The byte that makes `bytes` sum to zero (mod 256).
pub(crate) fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |s, &b| s.wrapping_add(b))
        .wrapping_neg()
}

/// The whole FRU image of the node with BMC MAC `mac`.
pub(crate) fn image(mac: [u8; 6]) -> Vec<u8> {
    let serial = serial(mac);
    let mut chassis = vec![0x01, 0x00, 0x17]; // rack mount chassis
    field(&mut chassis, "RKR-CH-1U");
    field(&mut chassis, &format!("{serial}-C"));
    let chassis = finish_area(chassis);

    let m = MFG_MINUTES.to_le_bytes();
    let mut board = vec![0x01, 0x00, 0x00, m[0], m[1], m[2]];
    field(&mut board, MANUFACTURER);
    field(&mut board, BOARD_NAME);
    field(&mut board, &format!("{serial}-B"));
    field(&mut board, "RKR-MB-1");
    field(&mut board, "");
    let board = finish_area(board);

    let mut product = vec![0x01, 0x00, 0x00];
    field(&mut product, MANUFACTURER);
    field(&mut product, PRODUCT_NAME);
    field(&mut product, "RKR-1U-SIM");
    field(&mut product, "1.0");
    field(&mut product, &serial);
    field(&mut product, "");
    field(&mut product, "");
    let product = finish_area(product);

    let chassis_at = 1u8;
    let board_at = chassis_at + (chassis.len() / 8) as u8;
    let product_at = board_at + (board.len() / 8) as u8;
    let mut header = vec![0x01, 0x00, chassis_at, board_at, product_at, 0x00, 0x00];
    header.push(checksum(&header));
    let mut out = header;
    out.extend_from_slice(&chassis);
    out.extend_from_slice(&board);
    out.extend_from_slice(&product);
    out
}

/// Size of [`image`] (the same for every MAC).
pub(crate) fn size() -> usize {
    image([0; 6]).len()
}

/// Read FRU Data: `offset` and `count` into the image of `mac`; returns
/// the response data (count returned, bytes) or a completion code.
pub(crate) fn read(mac: [u8; 6], offset: u16, count: u8) -> Result<Vec<u8>, u8> {
    let image = image(mac);
    let start = usize::from(offset);
    if start >= image.len() {
        return Err(0xC9);
    }
    let end = (start + usize::from(count)).min(image.len());
    let mut r = vec![(end - start) as u8];
    r.extend_from_slice(&image[start..end]);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Fields of an info area, decoded independently: start after the
    /// fixed bytes, read type/length fields up to C1h.
    fn fields(area: &[u8], fixed: usize) -> Vec<String> {
        let mut i = fixed;
        let mut out = Vec::new();
        while area[i] != 0xC1 {
            assert_eq!(area[i] >> 6, 3);
            let n = usize::from(area[i] & 0x3F);
            out.push(String::from_utf8(area[i + 1..i + 1 + n].to_vec()).unwrap());
            i += 1 + n;
        }
        out
    }

    fn area(image: &[u8], offset_byte: usize) -> &[u8] {
        let start = usize::from(image[offset_byte]) * 8;
        let len = usize::from(image[start + 1]) * 8;
        let a = &image[start..start + len];
        assert_eq!(a.iter().fold(0u8, |s, &b| s.wrapping_add(b)), 0);
        a
    }

    #[test]
    fn header_and_areas() {
        let mac = [0x02, 0x52, 0x4B, 0x01, 0x00, 0x07];
        let img = image(mac);
        assert_eq!(img.len() % 8, 0);
        assert_eq!(img.len(), size());
        assert_eq!(img[..8].iter().fold(0u8, |s, &b| s.wrapping_add(b)), 0);
        assert_eq!(img[0], 0x01);
        let chassis = area(&img, 2);
        assert_eq!(chassis[2], 0x17);
        assert_eq!(fields(chassis, 3), ["RKR-CH-1U", "SIM-02524B010007-C"]);
        let board = area(&img, 3);
        assert_eq!(
            fields(board, 6),
            [
                "Racker",
                "Racker Simulated Board",
                "SIM-02524B010007-B",
                "RKR-MB-1",
                ""
            ]
        );
        let product = area(&img, 4);
        assert_eq!(
            fields(product, 3),
            [
                "Racker",
                "Racker Simulated Server",
                "RKR-1U-SIM",
                "1.0",
                "SIM-02524B010007",
                "",
                ""
            ]
        );
    }

    proptest! {
        #[test]
        fn reads_are_slices_of_the_image(mac: [u8; 6], offset in 0u16..300, count: u8) {
            let img = image(mac);
            match read(mac, offset, count) {
                Ok(r) => {
                    let s = usize::from(offset);
                    prop_assert_eq!(usize::from(r[0]), r.len() - 1);
                    prop_assert_eq!(&r[1..], &img[s..s + r.len() - 1]);
                }
                Err(cc) => {
                    prop_assert_eq!(cc, 0xC9);
                    prop_assert!(usize::from(offset) >= img.len());
                }
            }
        }
    }
}
