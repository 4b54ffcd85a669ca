//! Host lists like FreeIPMI's and pdsh's: `node-[0-7]`,
//! `lokomotive-worker-[1,3-5]`, `node-[01-10]` (zero padding kept), comma
//! or space separated, MACs as they are. Parsed into a [`HostList`] whose
//! `Display` is its canonical text (parse → print → parse round-trips),
//! expanded with [`HostList::expand`], and the reverse for output:
//! [`compress`] folds names back into ranges (`node-[0-3,7]`), as
//! ipmipower's `-B` consolidation prints them.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::mac::MacAddr;

/// Most names one host list may expand to (guards against `n[0-999999999]`).
pub const MAX_HOSTS: usize = 65_536;

/// One range inside brackets: `lo-hi` (or a single number), printed with
/// `width` digits (zero padded) when the text had leading zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First value.
    pub lo: u64,
    /// Last value (inclusive, `>= lo`).
    pub hi: u64,
    /// Digits to pad to (0 = no padding).
    pub width: usize,
}

impl Range {
    fn len(&self) -> u64 {
        self.hi - self.lo + 1
    }

    fn fmt_value(&self, v: u64) -> String {
        format!("{v:0width$}", width = self.width)
    }
}

/// A piece of a host pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Literal text.
    Text(String),
    /// A bracket group: the union of its ranges, in order.
    Ranges(Vec<Range>),
}

/// One item of a host list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostItem {
    /// A MAC address.
    Mac(MacAddr),
    /// A name or a name pattern with bracket groups.
    Pattern(Vec<Part>),
}

/// A parsed host list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostList {
    items: Vec<HostItem>,
}

fn bad(value: &str, reason: impl Into<String>) -> Error {
    Error::InvalidHostList {
        value: value.to_owned(),
        reason: reason.into(),
    }
}

fn parse_number(whole: &str, s: &str) -> Result<(u64, usize)> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(whole, format!("{s:?} is not a number")));
    }
    let v = s
        .parse::<u64>()
        .map_err(|_| bad(whole, format!("{s} is too large")))?;
    let width = if s.len() > 1 && s.starts_with('0') {
        s.len()
    } else {
        0
    };
    Ok((v, width))
}

fn parse_ranges(whole: &str, inner: &str) -> Result<Vec<Range>> {
    let mut out = Vec::new();
    for piece in inner.split(',') {
        let (lo, hi) = match piece.split_once('-') {
            Some((a, b)) => (parse_number(whole, a)?, parse_number(whole, b)?),
            None => {
                let v = parse_number(whole, piece)?;
                (v, v)
            }
        };
        if hi.0 < lo.0 {
            return Err(bad(whole, format!("range {piece} runs backwards")));
        }
        out.push(Range {
            lo: lo.0,
            hi: hi.0,
            width: lo.1.max(if lo.1 > 0 { hi.1 } else { 0 }),
        });
    }
    Ok(out)
}

fn valid_text_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':')
}

fn parse_pattern(whole: &str, item: &str) -> Result<HostItem> {
    if let Ok(mac) = item.parse::<MacAddr>() {
        return Ok(HostItem::Mac(mac));
    }
    let mut parts = Vec::new();
    let mut rest = item;
    while !rest.is_empty() {
        match rest.find('[') {
            Some(0) => {
                let close = rest
                    .find(']')
                    .ok_or_else(|| bad(whole, "'[' without ']'"))?;
                parts.push(Part::Ranges(parse_ranges(whole, &rest[1..close])?));
                rest = &rest[close + 1..];
            }
            Some(i) => {
                parts.push(Part::Text(rest[..i].to_owned()));
                rest = &rest[i..];
            }
            None => {
                parts.push(Part::Text(rest.to_owned()));
                rest = "";
            }
        }
    }
    for p in &parts {
        if let Part::Text(t) = p
            && let Some(c) = t.chars().find(|c| !valid_text_char(*c))
        {
            return Err(bad(whole, format!("unexpected character {c:?}")));
        }
    }
    // Adjacent bracket groups with no text between them would not print
    // back unambiguously only if merged; they are kept as they are.
    Ok(HostItem::Pattern(parts))
}

impl FromStr for HostList {
    type Err = Error;

    /// Items separated by commas or whitespace outside brackets.
    fn from_str(text: &str) -> Result<HostList> {
        let mut items = Vec::new();
        let mut depth = 0usize;
        let mut cur = String::new();
        let flush = |cur: &mut String, items: &mut Vec<HostItem>| -> Result<()> {
            if !cur.is_empty() {
                items.push(parse_pattern(text, cur)?);
                cur.clear();
            }
            Ok(())
        };
        for c in text.chars() {
            match c {
                '[' => {
                    if depth > 0 {
                        return Err(bad(text, "nested '['"));
                    }
                    depth = 1;
                    cur.push(c);
                }
                ']' => {
                    if depth == 0 {
                        return Err(bad(text, "']' without '['"));
                    }
                    depth = 0;
                    cur.push(c);
                }
                ',' if depth == 0 => flush(&mut cur, &mut items)?,
                c if c.is_whitespace() => {
                    if depth > 0 {
                        return Err(bad(text, "space inside brackets"));
                    }
                    flush(&mut cur, &mut items)?;
                }
                c => cur.push(c),
            }
        }
        if depth > 0 {
            return Err(bad(text, "'[' without ']'"));
        }
        flush(&mut cur, &mut items)?;
        let list = HostList { items };
        let mut total: u64 = 0;
        for item in &list.items {
            total = total.saturating_add(item_count(item));
        }
        if total > MAX_HOSTS as u64 {
            return Err(bad(text, format!("expands to more than {MAX_HOSTS} hosts")));
        }
        Ok(list)
    }
}

fn item_count(item: &HostItem) -> u64 {
    match item {
        HostItem::Mac(_) => 1,
        HostItem::Pattern(parts) => parts.iter().fold(1u64, |acc, p| match p {
            Part::Text(_) => acc,
            Part::Ranges(r) => {
                acc.saturating_mul(r.iter().fold(0u64, |a, r| a.saturating_add(r.len())))
            }
        }),
    }
}

impl fmt::Display for HostList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match item {
                HostItem::Mac(m) => write!(f, "{m}")?,
                HostItem::Pattern(parts) => {
                    for p in parts {
                        match p {
                            Part::Text(t) => f.write_str(t)?,
                            Part::Ranges(rs) => {
                                f.write_str("[")?;
                                for (j, r) in rs.iter().enumerate() {
                                    if j > 0 {
                                        f.write_str(",")?;
                                    }
                                    if r.lo == r.hi {
                                        f.write_str(&r.fmt_value(r.lo))?;
                                    } else {
                                        write!(f, "{}-{}", r.fmt_value(r.lo), r.fmt_value(r.hi))?;
                                    }
                                }
                                f.write_str("]")?;
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// A host list entry after expansion.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Host {
    /// A MAC address (any column of nodes.csv).
    Mac(MacAddr),
    /// A host name (full or short).
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Mac(m) => write!(f, "{m}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

impl HostList {
    /// The parsed items.
    pub fn items(&self) -> &[HostItem] {
        &self.items
    }

    /// True for an empty list.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Every host, in order, duplicates removed (first kept). A range
    /// expanding to a MAC-shaped name becomes a [`Host::Mac`].
    pub fn expand(&self) -> Vec<Host> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for item in &self.items {
            match item {
                HostItem::Mac(m) => {
                    if seen.insert(Host::Mac(*m)) {
                        out.push(Host::Mac(*m));
                    }
                }
                HostItem::Pattern(parts) => {
                    let mut names = vec![String::new()];
                    for p in parts {
                        names = match p {
                            Part::Text(t) => names.into_iter().map(|n| n + t).collect(),
                            Part::Ranges(rs) => names
                                .iter()
                                .flat_map(|n| {
                                    rs.iter().flat_map(move |r| {
                                        (r.lo..=r.hi).map(move |v| format!("{n}{}", r.fmt_value(v)))
                                    })
                                })
                                .collect(),
                        };
                    }
                    for n in names {
                        let h = match n.parse::<MacAddr>() {
                            Ok(m) => Host::Mac(m),
                            Err(_) => Host::Name(n),
                        };
                        if seen.insert(h.clone()) {
                            out.push(h);
                        }
                    }
                }
            }
        }
        out
    }
}

/// Fold names into a host list text: names ending in digits that share a
/// prefix (and padding) become one bracket group; others stay as they
/// are. Sorted; `expand(compress(names))` holds exactly the given names.
pub fn compress<S: AsRef<str>>(names: &[S]) -> String {
    // (prefix, width) → numbers; names without a numeric tail kept apart.
    let mut groups: BTreeMap<(String, usize), Vec<u64>> = BTreeMap::new();
    let mut plain: Vec<String> = Vec::new();
    for n in names {
        let n = n.as_ref();
        let digits = n.len() - n.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let (prefix, tail) = n.split_at(n.len() - digits);
        // A ':' in the prefix could make a MAC-like name: keep it literal.
        let num = if digits > 0 && digits <= 18 && !prefix.contains(':') {
            tail.parse::<u64>().ok()
        } else {
            None
        };
        match num {
            Some(v) => {
                let width = if tail.len() > 1 && tail.starts_with('0') {
                    tail.len()
                } else {
                    0
                };
                // Unpadded numbers must print back to the same text.
                if width == 0 && tail.len() != v.to_string().len() {
                    plain.push(n.to_owned());
                } else {
                    groups
                        .entry((prefix.to_owned(), width))
                        .or_default()
                        .push(v);
                }
            }
            None => plain.push(n.to_owned()),
        }
    }
    // "n10" joins "n[08-09]": unpadded numbers as wide as a padded group
    // print the same inside it.
    let padded: Vec<(String, usize)> = groups.keys().filter(|(_, w)| *w > 0).cloned().collect();
    for (prefix, w) in padded {
        if let Some(nums) = groups.get_mut(&(prefix.clone(), 0)) {
            let (wide, rest): (Vec<u64>, Vec<u64>) =
                nums.iter().partition(|v| v.to_string().len() == w);
            *nums = rest;
            if nums.is_empty() {
                groups.remove(&(prefix.clone(), 0));
            }
            groups.entry((prefix, w)).or_default().extend(wide);
        }
    }
    let mut items: Vec<String> = Vec::new();
    for ((prefix, width), mut nums) in groups {
        nums.sort_unstable();
        nums.dedup();
        let fmt = |v: u64| format!("{v:0width$}");
        if let [only] = nums[..] {
            items.push(format!("{prefix}{}", fmt(only)));
            continue;
        }
        let mut ranges = Vec::new();
        let mut i = 0;
        while i < nums.len() {
            let mut j = i;
            while j + 1 < nums.len() && nums[j + 1] == nums[j] + 1 {
                j += 1;
            }
            ranges.push(if i == j {
                fmt(nums[i])
            } else {
                format!("{}-{}", fmt(nums[i]), fmt(nums[j]))
            });
            i = j + 1;
        }
        items.push(format!("{prefix}[{}]", ranges.join(",")));
    }
    plain.sort();
    plain.dedup();
    items.extend(plain);
    items.sort();
    items.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn names(list: &str) -> Vec<String> {
        list.parse::<HostList>()
            .unwrap()
            .expand()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn ranges_and_lists() {
        assert_eq!(
            names("node-[0-3]"),
            ["node-0", "node-1", "node-2", "node-3"]
        );
        assert_eq!(
            names("lokomotive-worker-[1,3-5]"),
            [
                "lokomotive-worker-1",
                "lokomotive-worker-3",
                "lokomotive-worker-4",
                "lokomotive-worker-5"
            ]
        );
        assert_eq!(names("n[08-10]"), ["n08", "n09", "n10"]);
        assert_eq!(
            names("a,b c 00:11:22:33:44:55"),
            ["a", "b", "c", "00:11:22:33:44:55"]
        );
        assert_eq!(names("r[1-2]n[1-2]"), ["r1n1", "r1n2", "r2n1", "r2n2"]);
        let l: HostList = "00:11:22:33:44:55".parse().unwrap();
        assert!(matches!(l.expand()[0], Host::Mac(_)));
    }

    #[test]
    fn errors() {
        for bad in [
            "n[",
            "n]",
            "n[3-1]",
            "n[a]",
            "n[[1]]",
            "n[1-999999]",
            "n$",
            "n[1 ,2]",
        ] {
            assert!(bad.parse::<HostList>().is_err(), "{bad}");
        }
    }

    #[test]
    fn compress_folds_ranges() {
        assert_eq!(
            compress(&["node-3", "node-0", "node-1", "node-2", "node-7", "mgmt"]),
            "mgmt,node-[0-3,7]"
        );
        assert_eq!(compress(&["n08", "n09", "n10"]), "n[08-10]");
        assert_eq!(compress(&["x1"]), "x1");
    }

    fn host_list() -> impl Strategy<Value = String> {
        let item = prop_oneof![
            "[a-z][a-z0-9-]{0,8}",
            ("[a-z][a-z-]{0,6}", 0u64..50, 0u64..20, prop::bool::ANY).prop_map(
                |(p, lo, n, pad)| if pad {
                    format!("{p}[{lo:03}-{:03}]", lo + n)
                } else {
                    format!("{p}[{lo}-{},{}]", lo + n, lo + n + 5)
                }
            ),
            "([0-9a-f]{2}:){5}[0-9a-f]{2}",
        ];
        prop::collection::vec(item, 0..5).prop_map(|v| v.join(","))
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,40}") {
            let _ = s.parse::<HostList>().map(|l| l.expand());
        }

        #[test]
        fn bracket_soup_never_panics(s in "[a-z0-9,\\[\\]\\- ]{0,30}") {
            if let Ok(l) = s.parse::<HostList>() {
                let printed = l.to_string();
                let again: HostList = printed.parse().unwrap();
                prop_assert_eq!(again.expand(), l.expand());
            }
        }

        #[test]
        fn parse_print_parse_round_trips(s in host_list()) {
            let l: HostList = s.parse().unwrap();
            let again: HostList = l.to_string().parse().unwrap();
            prop_assert_eq!(&again, &l);
            prop_assert_eq!(again.to_string(), l.to_string());
        }

        #[test]
        fn compress_expands_back(names in prop::collection::btree_set("[a-z]{1,4}-?[0-9]{0,3}", 0..30)) {
            let names: Vec<String> = names.into_iter().collect();
            let text = compress(&names);
            let mut back: Vec<String> = if text.is_empty() {
                Vec::new()
            } else {
                text.parse::<HostList>().unwrap().expand().iter().map(ToString::to_string).collect()
            };
            back.sort();
            prop_assert_eq!(back, names);
        }
    }
}
