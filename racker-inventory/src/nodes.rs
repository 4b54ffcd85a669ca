//! Reading `nodes.csv`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::MacAddr;
use crate::error::{Error, Result};

/// Column names exactly as in the nodes.csv header.
pub(crate) const COL_PRIMARY: &str = "Primary MAC address";
pub(crate) const COL_BMC: &str = "BMC MAC address";
pub(crate) const COL_SECONDARY: &str = "Secondary MAC address";
pub(crate) const COL_TYPE: &str = "Node Type";
pub(crate) const COL_COMMENT: &str = "Comments";

/// Largest nodes.csv accepted (a rack of thousands of nodes is well below).
pub const MAX_NODES_CSV_BYTES: u64 = 4 << 20;

/// Longest Node Type, in characters.
pub const MAX_NODE_TYPE_CHARS: usize = 256;

/// Longest Comments value, in characters.
pub const MAX_COMMENT_CHARS: usize = 1024;

/// The header racker writes (e.g. on `factory reset`).
pub const NODES_CSV_HEADER: &str =
    "Primary MAC address, BMC MAC address, Secondary MAC address, Node Type, Comments";

/// One server of the rack, as listed in nodes.csv.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// Line number in nodes.csv (1-based).
    pub line: u64,
    /// MAC of the primary NIC.
    pub primary_mac: MacAddr,
    /// MAC of the BMC.
    pub bmc_mac: MacAddr,
    /// MAC of the secondary NIC (optional for ordinary nodes).
    pub secondary_mac: Option<MacAddr>,
    /// Node type ("hardware class"); empty when not given.
    pub node_type: String,
    /// Free-form comment; empty when not given.
    pub comment: String,
}

impl Node {
    /// All MACs of the node.
    pub fn macs(&self) -> impl Iterator<Item = MacAddr> + '_ {
        [
            Some(self.primary_mac),
            Some(self.bmc_mac),
            self.secondary_mac,
        ]
        .into_iter()
        .flatten()
    }

    /// True when `mac` is any of the node's MACs.
    pub fn has_mac(&self, mac: MacAddr) -> bool {
        self.macs().any(|m| m == mac)
    }
}

/// The validated contents of nodes.csv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    source: String,
    nodes: Vec<Node>,
}

impl Inventory {
    /// Read and validate a nodes.csv file.
    pub fn load(path: &Path) -> Result<Self> {
        use std::io::Read as _;
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        // Read at most one byte past the limit: a link to /dev/zero (or a
        // huge file) fails at once instead of filling memory.
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .map_err(io)?
            .take(MAX_NODES_CSV_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > MAX_NODES_CSV_BYTES {
            return Err(Error::TooLarge {
                path: path.to_owned(),
                limit: MAX_NODES_CSV_BYTES,
            });
        }
        Self::parse(&path.display().to_string(), &bytes)
    }

    /// Validate nodes.csv contents; `source` names the file in errors.
    ///
    /// ```
    /// let csv = "Primary MAC address, BMC MAC address, Secondary MAC address, Node Type, Comments\n\
    ///            00:11:22:33:44:00, 00:11:22:33:44:01, 00:11:22:33:44:30, red, mgmt\n";
    /// let inv = racker_inventory::Inventory::parse("nodes.csv", csv.as_bytes()).unwrap();
    /// assert_eq!(inv.nodes()[0].node_type, "red");
    /// ```
    pub fn parse(source: &str, bytes: &[u8]) -> Result<Self> {
        let file = source.to_owned();
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .comment(Some(b'#'))
            .from_reader(bytes);

        let mut nodes = Vec::new();
        let mut seen: BTreeMap<MacAddr, (u64, &'static str)> = BTreeMap::new();
        let mut header_seen = false;
        let mut record = csv::ByteRecord::new();
        // The csv crate's line counter skips blank lines; count newlines
        // ourselves so messages point at the line an editor shows.
        let mut lines = LineCounter::new(bytes);
        loop {
            let line = lines.line_at(reader.position().byte());
            match reader.read_byte_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    let line = e.position().map_or(line, |p| lines.line_at(p.byte()));
                    return Err(Error::Csv {
                        file,
                        line,
                        message: e.to_string(),
                    });
                }
            }
            let line = record.position().map_or(line, |p| lines.line_at(p.byte()));
            let fields: Vec<String> = record
                .iter()
                .map(|f| String::from_utf8_lossy(f).trim().to_owned())
                .collect();
            if fields.iter().all(String::is_empty) {
                continue;
            }
            if !header_seen {
                header_seen = true;
                if let Some(mac) = fields.iter().find(|f| f.parse::<MacAddr>().is_ok()) {
                    return Err(Error::HeaderContainsMac {
                        file,
                        line,
                        value: mac.clone(),
                    });
                }
                continue;
            }
            let node = parse_row(&file, line, &fields)?;
            for (mac, column) in [
                (Some(node.primary_mac), COL_PRIMARY),
                (Some(node.bmc_mac), COL_BMC),
                (node.secondary_mac, COL_SECONDARY),
            ] {
                let Some(mac) = mac else { continue };
                if let Some(&(first_line, first_column)) = seen.get(&mac) {
                    return Err(Error::DuplicateMac {
                        file,
                        mac,
                        line,
                        column,
                        first_line,
                        first_column,
                    });
                }
                seen.insert(mac, (line, column));
            }
            nodes.push(node);
        }
        if nodes.is_empty() {
            return Err(Error::TooFewLines { file });
        }
        Ok(Self {
            source: file,
            nodes,
        })
    }

    /// Build an inventory from nodes already validated elsewhere (used by
    /// the simulator to generate racks). Duplicate MACs are still refused.
    pub fn from_nodes(source: &str, nodes: Vec<Node>) -> Result<Self> {
        let text = render_csv(&nodes);
        let parsed = Self::parse(source, text.as_bytes())?;
        Ok(parsed)
    }

    /// The name of the file this inventory came from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// All rows, in file order, the management node included.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The row holding `mac` in any column.
    pub fn find_by_mac(&self, mac: MacAddr) -> Option<&Node> {
        self.nodes.iter().find(|n| n.has_mac(mac))
    }

    /// Node types with their counts, most frequent first, then by name.
    pub fn node_type_counts(&self) -> Vec<(String, usize)> {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for n in &self.nodes {
            *counts.entry(n.node_type.as_str()).or_default() += 1;
        }
        let mut v: Vec<(String, usize)> =
            counts.into_iter().map(|(k, c)| (k.to_owned(), c)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }

    /// The inventory as nodes.csv text (header included).
    pub fn to_csv(&self) -> String {
        render_csv(&self.nodes)
    }
}

/// Maps byte offsets (visited in increasing order) to 1-based line numbers.
struct LineCounter<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            offset: 0,
            line: 1,
        }
    }

    fn line_at(&mut self, byte: u64) -> u64 {
        let target = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        if target < self.offset {
            self.offset = 0;
            self.line = 1;
        }
        let newlines = (self.offset..target).filter(|&i| self.ends_line(i)).count();
        self.line += newlines as u64;
        self.offset = target;
        // A record that starts right after blank lines: skip to its first
        // non-blank byte so the line is the record's own.
        let mut i = target;
        let mut line = self.line;
        while let Some(&b) = self.bytes.get(i) {
            match b {
                b'\n' | b'\r' if self.ends_line(i) => line += 1,
                b'\r' | b' ' | b'\t' => {}
                _ => break,
            }
            i += 1;
        }
        line
    }

    /// True when the byte at `i` ends a line: LF, or a CR not followed by
    /// LF (old Mac line endings, which the CSV reader accepts too).
    fn ends_line(&self, i: usize) -> bool {
        match self.bytes.get(i) {
            Some(b'\n') => true,
            Some(b'\r') => self.bytes.get(i + 1) != Some(&b'\n'),
            _ => false,
        }
    }
}

fn render_csv(nodes: &[Node]) -> String {
    let mut out = String::from(NODES_CSV_HEADER);
    out.push('\n');
    for n in nodes {
        let secondary = n.secondary_mac.map(|m| m.to_string()).unwrap_or_default();
        let quote = |s: &str| {
            if s.contains([',', '"', '#']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_owned()
            }
        };
        out.push_str(&format!(
            "{},{},{},{},{}\n",
            n.primary_mac,
            n.bmc_mac,
            secondary,
            quote(&n.node_type),
            quote(&n.comment)
        ));
    }
    out
}

fn parse_row(file: &str, line: u64, fields: &[String]) -> Result<Node> {
    let get = |i: usize| fields.get(i).map(String::as_str).unwrap_or("");
    for (i, column) in [COL_PRIMARY, COL_BMC, COL_SECONDARY, COL_TYPE, COL_COMMENT]
        .into_iter()
        .enumerate()
    {
        if get(i).chars().any(char::is_control) {
            return Err(Error::ControlCharacter {
                file: file.to_owned(),
                line,
                column,
            });
        }
    }
    let mac = |i: usize, column: &'static str| -> Result<Option<MacAddr>> {
        let value = get(i);
        if value.is_empty() {
            return Ok(None);
        }
        let mac: MacAddr = value.parse().map_err(|_| Error::InvalidMac {
            file: file.to_owned(),
            line,
            column,
            value: value.to_owned(),
        })?;
        if let Some(why) = mac.unusable_reason() {
            return Err(Error::UnusableMac {
                file: file.to_owned(),
                line,
                column,
                mac,
                why,
            });
        }
        Ok(Some(mac))
    };
    let required = |i: usize, column: &'static str| -> Result<MacAddr> {
        mac(i, column)?.ok_or_else(|| Error::MissingValue {
            file: file.to_owned(),
            line,
            column,
        })
    };
    let primary_mac = required(0, COL_PRIMARY)?;
    let bmc_mac = required(1, COL_BMC)?;
    let secondary_mac = mac(2, COL_SECONDARY)?;
    let node_type = get(3).to_owned();
    if node_type.parse::<MacAddr>().is_ok() {
        return Err(Error::NodeTypeIsMac {
            file: file.to_owned(),
            line,
            value: node_type,
        });
    }
    // A comment may itself contain commas: keep everything after the type.
    let comment = fields.get(4..).map(|c| c.join(", ")).unwrap_or_default();
    for (value, column, max) in [
        (&node_type, COL_TYPE, MAX_NODE_TYPE_CHARS),
        (&comment, COL_COMMENT, MAX_COMMENT_CHARS),
    ] {
        let len = value.chars().count();
        if len > max {
            return Err(Error::ValueTooLong {
                file: file.to_owned(),
                line,
                column,
                len,
                max,
            });
        }
    }
    Ok(Node {
        line,
        primary_mac,
        bmc_mac,
        secondary_mac,
        node_type,
        comment,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EXAMPLE: &str = include_str!("../../docs/examples/nodes.csv");

    fn err(text: &str) -> String {
        Inventory::parse("nodes.csv", text.as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn parses_example() {
        let inv = Inventory::parse("nodes.csv", EXAMPLE.as_bytes()).unwrap();
        assert_eq!(inv.nodes().len(), 3);
        let n = &inv.nodes()[1];
        assert_eq!(n.line, 3);
        assert_eq!(n.primary_mac.to_string(), "00:11:22:33:44:10");
        assert_eq!(n.node_type, "red");
        assert_eq!(n.comment, "controller");
        assert_eq!(
            inv.node_type_counts(),
            vec![("red".to_owned(), 2), ("purple".to_owned(), 1)]
        );
    }

    #[test]
    fn tolerates_bom_crlf_case_dashes_and_optional_columns() {
        let text = "\u{feff}Primary, BMC, Secondary, Type, Comments\r\n\
                    00-11-22-33-44-AA, 00:11:22:33:44:BB\r\n\
                    00:11:22:33:44:cc, 00:11:22:33:44:dd, , , \r\n";
        let inv = Inventory::parse("nodes.csv", text.as_bytes()).unwrap();
        assert_eq!(inv.nodes()[0].primary_mac.to_string(), "00:11:22:33:44:aa");
        assert_eq!(inv.nodes()[0].secondary_mac, None);
        assert_eq!(inv.nodes()[1].line, 3);
        assert_eq!(inv.nodes()[1].node_type, "");
    }

    #[test]
    fn reports_each_error_class_with_line_and_column() {
        let h =
            "Primary MAC address, BMC MAC address, Secondary MAC address, Node Type, Comments\n";
        assert_eq!(
            err(""),
            "nodes.csv: has fewer than two lines (a header line and at least one node are needed)"
        );
        assert!(err(h).contains("fewer than two lines"));
        assert!(
            err("00:11:22:33:44:00, 00:11:22:33:44:01\n00:11:22:33:44:02, 00:11:22:33:44:03\n")
                .starts_with(
                    "nodes.csv:1: the header line contains the MAC address \"00:11:22:33:44:00\""
                )
        );
        assert_eq!(
            err(&format!(
                "{h}00:11:22:33:44:00, 00:11:22:33:44:01\n00:11:22:33:44:10, 00:11:22:33:44\n"
            )),
            "nodes.csv:3: \"BMC MAC address\" is set as \"00:11:22:33:44\" and does not look like a MAC address"
        );
        assert_eq!(
            err(&format!("{h}, 00:11:22:33:44:01\n")),
            "nodes.csv:2: \"Primary MAC address\" is not set"
        );
        assert_eq!(
            err(&format!("{h}00:11:22:33:44:00\n")),
            "nodes.csv:2: \"BMC MAC address\" is not set"
        );
        assert!(
            err(&format!("{h}00:11:22:33:44:00, 00:11:22:33:44:01, zz\n"))
                .starts_with("nodes.csv:2: \"Secondary MAC address\" is set as \"zz\"")
        );
        assert!(
            err(&format!(
                "{h}00:11:22:33:44:00, 00:11:22:33:44:01, 00:11:22:33:44:02, 00:11:22:33:44:03\n"
            ))
            .starts_with(
                "nodes.csv:2: \"Node Type\" is set as \"00:11:22:33:44:03\", which is a MAC address"
            )
        );
        assert_eq!(
            err(&format!(
                "{h}00:11:22:33:44:00, 00:11:22:33:44:01\n\n00:11:22:33:44:10, 00:11:22:33:44:00\n"
            )),
            "nodes.csv:4: \"BMC MAC address\" 00:11:22:33:44:00 is already used on line 2 (\"Primary MAC address\")"
        );
        assert!(
            err(&format!("{h}\"00:11:22:33:44:00, 00:11:22:33:44:01\n")).contains("nodes.csv:2")
        );
    }

    #[test]
    fn cr_only_line_endings_give_editor_line_numbers() {
        let h = "Primary MAC address, BMC MAC address, Secondary MAC address, Node Type, Comments";
        let text = format!("{h}\r00:11:22:33:44:00, 00:11:22:33:44:01\r\r00:11:22:33:44:10, zz\r");
        assert_eq!(
            err(&text),
            "nodes.csv:4: \"BMC MAC address\" is set as \"zz\" and does not look like a MAC address"
        );
        // Mixed endings: CR LF, CR, LF.
        let text = format!(
            "{h}\r\n00:11:22:33:44:00, 00:11:22:33:44:01\r00:11:22:33:44:10, 00:11:22:33:44:11\n00:11:22:33:44:20, 00:11:22:33:44:00\n"
        );
        assert!(err(&text).starts_with(
            "nodes.csv:4: \"BMC MAC address\" 00:11:22:33:44:00 is already used on line 2"
        ));
        let inv = Inventory::parse(
            "nodes.csv",
            format!("{h}\r\r00:11:22:33:44:00, 00:11:22:33:44:01\r").as_bytes(),
        )
        .unwrap();
        assert_eq!(inv.nodes()[0].line, 3);
    }

    #[test]
    fn zero_broadcast_and_multicast_macs_refused() {
        let h =
            "Primary MAC address, BMC MAC address, Secondary MAC address, Node Type, Comments\n";
        assert_eq!(
            err(&format!("{h}00:00:00:00:00:00, 00:11:22:33:44:01\n")),
            "nodes.csv:2: \"Primary MAC address\" 00:00:00:00:00:00 is all-zero, not the address of a network card"
        );
        assert_eq!(
            err(&format!("{h}00:11:22:33:44:00, FF:FF:FF:FF:FF:FF\n")),
            "nodes.csv:2: \"BMC MAC address\" ff:ff:ff:ff:ff:ff is the broadcast address, not the address of a network card"
        );
        assert_eq!(
            err(&format!(
                "{h}00:11:22:33:44:00, 00:11:22:33:44:01, 01:00:5e:00:00:01\n"
            )),
            "nodes.csv:2: \"Secondary MAC address\" 01:00:5e:00:00:01 is a multicast address, not the address of a network card"
        );
        // Locally administered unicast (02:...) is fine.
        Inventory::parse(
            "n",
            format!("{h}02:00:00:00:00:01, 02:00:00:00:00:02\n").as_bytes(),
        )
        .unwrap();
    }

    #[test]
    fn long_values_refused_with_line() {
        let h =
            "Primary MAC address, BMC MAC address, Secondary MAC address, Node Type, Comments\n";
        let long = "x".repeat(65_536);
        assert_eq!(
            err(&format!(
                "{h}00:11:22:33:44:00, 00:11:22:33:44:01\n00:11:22:33:44:10, 00:11:22:33:44:11, , {long}\n"
            )),
            "nodes.csv:3: \"Node Type\" is 65536 characters long; at most 256 are allowed"
        );
        assert!(
            err(&format!(
                "{h}00:11:22:33:44:00, 00:11:22:33:44:01, , t, {}\n",
                "c".repeat(1025)
            ))
            .starts_with("nodes.csv:2: \"Comments\" is 1025 characters long; at most 1024")
        );
        let ok = format!(
            "{h}00:11:22:33:44:00, 00:11:22:33:44:01, , {}, {}\n",
            "t".repeat(256),
            "c".repeat(1024)
        );
        Inventory::parse("nodes.csv", ok.as_bytes()).unwrap();
    }

    #[test]
    fn oversized_file_refused_fast() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("nodes.csv");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let start = std::time::Instant::now();
        let e = Inventory::load(&link).unwrap_err().to_string();
        assert!(
            start.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(
            e,
            format!(
                "{}: larger than 4194304 bytes; is this really the file meant?",
                link.display()
            )
        );
        let big = dir.path().join("big.csv");
        let mut text = String::from(NODES_CSV_HEADER);
        text.push('\n');
        while text.len() as u64 <= MAX_NODES_CSV_BYTES {
            text.push_str("# padding padding padding padding padding padding padding\n");
        }
        std::fs::write(&big, text).unwrap();
        assert!(matches!(Inventory::load(&big), Err(Error::TooLarge { .. })));
    }

    fn arb_mac() -> impl Strategy<Value = MacAddr> {
        // Unicast and not all-zero: the only MACs a node may have.
        any::<[u8; 6]>().prop_map(|mut o| {
            o[0] &= 0xfe;
            o[5] |= (o == [0; 6]) as u8;
            MacAddr::new(o)
        })
    }

    fn arb_text() -> impl Strategy<Value = String> {
        // Free text as an operator would type it (commas and quotes included).
        "[a-zA-Z0-9 _,\"./-]{0,12}".prop_map(|s| s.trim().to_owned())
    }

    proptest! {
        #[test]
        fn generated_csv_parses_back(rows in proptest::collection::vec(
            (arb_mac(), arb_mac(), proptest::option::of(arb_mac()), arb_text(), arb_text()), 1..20)) {
            let mut used = std::collections::BTreeSet::new();
            let nodes: Vec<Node> = rows.into_iter().filter_map(|(p, b, s, t, c)| {
                let macs: Vec<MacAddr> = [Some(p), Some(b), s].into_iter().flatten().collect();
                let distinct: std::collections::BTreeSet<_> = macs.iter().copied().collect();
                if distinct.len() != macs.len() || macs.iter().any(|m| used.contains(m)) { return None; }
                // A type that parses as a MAC is an error by design; skip those.
                if t.parse::<MacAddr>().is_ok() { return None; }
                used.extend(macs);
                Some(Node { line: 0, primary_mac: p, bmc_mac: b, secondary_mac: s, node_type: t, comment: c })
            }).collect();
            prop_assume!(!nodes.is_empty());
            let text = render_csv(&nodes);
            let inv = Inventory::parse("nodes.csv", text.as_bytes()).unwrap();
            prop_assert_eq!(inv.nodes().len(), nodes.len());
            for (i, (got, want)) in inv.nodes().iter().zip(&nodes).enumerate() {
                prop_assert_eq!(got.line, i as u64 + 2);
                prop_assert_eq!(got.primary_mac, want.primary_mac);
                prop_assert_eq!(got.bmc_mac, want.bmc_mac);
                prop_assert_eq!(got.secondary_mac, want.secondary_mac);
                prop_assert_eq!(&got.node_type, &want.node_type);
                prop_assert_eq!(&got.comment, &want.comment);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Inventory::parse("nodes.csv", &bytes);
        }

        #[test]
        fn arbitrary_csvish_text_never_panics(text in "([0-9a-fA-F:, \"#\r\n-]|\u{feff}){0,300}") {
            let _ = Inventory::parse("nodes.csv", text.as_bytes());
        }
    }
}
