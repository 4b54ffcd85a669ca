//! Property tests of the DHCP input pre-check (the one racker-sim's
//! firmware shares): whatever it lets through, dhcproto decodes without a
//! panic; what it refuses is refused for a stated reason.

use dhcproto::Decodable;
use dhcproto::v4::Message;
use proptest::prelude::*;
use racker_netboot::dhcp::precheck;

/// A BOOTP header with the magic cookie, then `options`.
fn with_header(options: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0u8; 240];
    bytes[0] = 1;
    bytes[1] = 1;
    bytes[2] = 6;
    bytes[236..240].copy_from_slice(&[99, 130, 83, 99]);
    bytes.extend_from_slice(options);
    bytes
}

fn decode_all(bytes: &[u8]) {
    if let Ok(msg) = Message::from_bytes(bytes) {
        // Touch what the server and the firmware read.
        let _ = msg.opts().msg_type();
        if msg.hlen() == 6 {
            let _ = msg.chaddr();
        }
        let _ = msg.fname();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..700)) {
        if precheck(&bytes).is_ok() {
            decode_all(&bytes);
        }
    }

    #[test]
    fn arbitrary_options_behind_a_valid_header_never_panic(
        options in prop::collection::vec(any::<u8>(), 0..400),
        hazard in prop::sample::select(vec![80u8, 81, 93, 94, 151, 152, 155]),
        hazard_len in 0u8..6,
    ) {
        let mut opts = vec![53, 1, 1, hazard, hazard_len];
        opts.extend(options);
        let bytes = with_header(&opts);
        match precheck(&bytes) {
            Ok(()) => decode_all(&bytes),
            Err(reason) => prop_assert!(!reason.is_empty()),
        }
    }
}

#[test]
fn short_packets_and_bad_option_lengths_are_refused() {
    assert_eq!(precheck(&[0u8; 100]), Err("shorter than a BOOTP header"));
    assert_eq!(precheck(&[0u8; 300]), Err("no DHCP magic cookie"));
    assert_eq!(precheck(&with_header(&[53, 1, 1, 255])), Ok(()));
    assert_eq!(
        precheck(&with_header(&[94, 2, 1, 2])),
        Err("option with an invalid length")
    );
    assert_eq!(
        precheck(&with_header(&[80, 0, 80, 0])),
        Err("option with an invalid length"),
        "a repeated option would be concatenated"
    );
    assert_eq!(
        precheck(&with_header(&[12, 9, b'x'])),
        Err("option longer than the packet")
    );
}
