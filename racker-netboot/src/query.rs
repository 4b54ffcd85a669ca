//! The query strings of the HTTP endpoints, parsed without the HTTP stack
//! (sans-IO, so they can be fuzzed and property-tested on their own).
//!
//! `/ipxe`, `/ignition` and `/report` take matchbox-style labels
//! (`?mac=00-11-22-33-44-10&arch=x86_64&profile=os`): an
//! `application/x-www-form-urlencoded` string decoded into a sorted map,
//! invalid UTF-8 and percent escapes decoded lossily, a repeated key keeping
//! its last value.
//!
//! ```
//! use racker_netboot::query::{mac_label, parse_labels};
//!
//! let labels = parse_labels("mac=00-11-22-33-44-10&arch=x86%5F64");
//! assert_eq!(labels["arch"], "x86_64");
//! assert_eq!(mac_label(&labels)?.to_string(), "00:11:22:33:44:10");
//! assert!(mac_label(&parse_labels("arch=x86_64")).is_err());
//! # Ok::<(), racker_netboot::query::QueryError>(())
//! ```

use std::collections::BTreeMap;

use racker_inventory::MacAddr;

/// Labels of a request, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// Why a query cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// No `mac` label.
    #[error("missing ?mac= parameter")]
    MissingMac,
    /// The `mac` label is not a MAC address (colon or hyphen form).
    #[error("{0:?} is not a MAC address")]
    BadMac(String),
}

/// Decode the query part of a URL (after `?`, without it) into labels.
pub fn parse_labels(query: &str) -> Labels {
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// Encode labels back into a query string (the inverse of
/// [`parse_labels`]).
pub fn encode_labels(labels: &Labels) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(labels)
        .finish()
}

/// The node's MAC from the `mac` label (colon or hyphen form, as iPXE's
/// `${mac:hexhyp}` sends it).
pub fn mac_label(labels: &Labels) -> Result<MacAddr, QueryError> {
    let raw = labels.get("mac").ok_or(QueryError::MissingMac)?;
    raw.parse().map_err(|_| QueryError::BadMac(raw.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn repeated_keys_keep_the_last_value_and_escapes_decode() {
        let labels = parse_labels("mac=a&mac=00:11:22:33:44:10&x=%ZZ&y=a+b&%FF=1");
        assert_eq!(labels["mac"], "00:11:22:33:44:10");
        assert_eq!(labels["x"], "%ZZ");
        assert_eq!(labels["y"], "a b");
        assert_eq!(labels["\u{FFFD}"], "1");
        assert_eq!(
            mac_label(&parse_labels("mac=zz")),
            Err(QueryError::BadMac("zz".into()))
        );
    }

    proptest! {
        #[test]
        fn arbitrary_queries_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let query = String::from_utf8_lossy(&bytes);
            let labels = parse_labels(&query);
            let _ = mac_label(&labels);
            // Parsing what we encode gives the labels back.
            prop_assert_eq!(parse_labels(&encode_labels(&labels)), labels);
        }

        #[test]
        fn labels_round_trip(labels in proptest::collection::btree_map(".{0,12}", ".{0,12}", 0..6)) {
            prop_assert_eq!(parse_labels(&encode_labels(&labels)), labels);
        }
    }
}
