//! The [`MacAddr`] newtype.

use std::fmt;
use std::str::FromStr;

/// A 48-bit Ethernet MAC address.
///
/// Parses `aa:bb:cc:dd:ee:ff`, `AA-BB-CC-DD-EE-FF` (any case, `:` or `-`,
/// surrounding whitespace ignored) and always displays in lower-case colon
/// form. Serialises through that string form.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddr([u8; 6]);

/// The input was not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} does not look like a MAC address")]
pub struct ParseMacError(pub String);

impl MacAddr {
    /// A MAC from its six octets.
    pub const fn new(octets: [u8; 6]) -> Self {
        Self(octets)
    }

    /// The six octets.
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// True for `00:00:00:00:00:00` (loopback and some virtual interfaces).
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }

    /// True for `ff:ff:ff:ff:ff:ff`.
    pub fn is_broadcast(&self) -> bool {
        self.0 == [0xff; 6]
    }

    /// True for group (multicast) addresses: the least significant bit of
    /// the first octet is set (broadcast included).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// Why this MAC cannot be a network card's own address (all-zero,
    /// broadcast or multicast), or `None` when it can.
    pub fn unusable_reason(&self) -> Option<&'static str> {
        if self.is_zero() {
            Some("all-zero")
        } else if self.is_broadcast() {
            Some("the broadcast address")
        } else if self.is_multicast() {
            Some("a multicast address")
        } else {
            None
        }
    }
}

impl FromStr for MacAddr {
    type Err = ParseMacError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseMacError(s.to_owned());
        let t = s.trim();
        // Exactly 17 bytes: six two-digit groups and five separators of one kind.
        let bytes = t.as_bytes();
        if bytes.len() != 17 {
            return Err(err());
        }
        let sep = bytes[2];
        if sep != b':' && sep != b'-' {
            return Err(err());
        }
        let mut out = [0u8; 6];
        for (i, octet) in out.iter_mut().enumerate() {
            let start = i * 3;
            if i < 5 && bytes[start + 2] != sep {
                return Err(err());
            }
            let hex = t.get(start..start + 2).ok_or_else(err)?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err());
            }
            *octet = u8::from_str_radix(hex, 16).map_err(|_| err())?;
        }
        Ok(Self(out))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MacAddr({self})")
    }
}

impl serde::Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_common_forms() {
        let want = MacAddr::new([0, 0x11, 0x22, 0x33, 0x44, 0xab]);
        for s in [
            "00:11:22:33:44:ab",
            "00-11-22-33-44-AB",
            "  00:11:22:33:44:Ab\t",
        ] {
            assert_eq!(s.parse::<MacAddr>(), Ok(want), "{s}");
        }
        assert_eq!(want.to_string(), "00:11:22:33:44:ab");
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "00:11:22:33:44",
            "00:11:22:33:44:55:66",
            "00:11-22:33:44:55",
            "0g:11:22:33:44:55",
            "001122334455",
            "00:11:22:33:44:5",
            "+0:11:22:33:44:55",
            "00:11:22:33:44:5é",
        ] {
            assert!(s.parse::<MacAddr>().is_err(), "{s:?} parsed");
        }
    }

    #[test]
    fn serde_round_trip() {
        let mac: MacAddr = "AA-BB-CC-DD-EE-FF".parse().unwrap();
        let json = serde_json::to_string(&mac).unwrap();
        assert_eq!(json, "\"aa:bb:cc:dd:ee:ff\"");
        assert_eq!(serde_json::from_str::<MacAddr>(&json).unwrap(), mac);
        assert!(serde_json::from_str::<MacAddr>("\"nope\"").is_err());
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(octets: [u8; 6], upper: bool, dash: bool) {
            let mac = MacAddr::new(octets);
            let mut s = mac.to_string();
            if upper { s = s.to_uppercase(); }
            if dash { s = s.replace(':', "-"); }
            prop_assert_eq!(s.parse::<MacAddr>(), Ok(mac));
        }

        #[test]
        fn arbitrary_strings_never_panic(s in ".{0,40}") {
            let _ = s.parse::<MacAddr>();
        }
    }
}
