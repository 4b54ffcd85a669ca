//! Public addresses: `DHCP` or an INI text keyed by secondary MAC
//! (docs/inventory.md, public addresses).
//!
//! ```ini
//! [00:11:22:33:44:40]
//! ip_addr = 203.0.113.10/24
//! gateway = 203.0.113.1
//! dns = 203.0.113.53
//! ```
//! A section without `ip_addr` (or with an empty `ip_addr =`, as the
//! original racker's prefill wrote) means DHCP for that node. `gateway` and `dns`
//! carry over from the previous section that set them; the first section
//! with an address must set both.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::{Inventory, MacAddr};

/// The public address of one node's secondary NIC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum PublicAddress {
    /// Address from the public network's DHCP server.
    Dhcp,
    /// A static address.
    Static(StaticAddress),
}

/// A static public address: what racker-lokomotive renders into the
/// node's network unit (docs/lokomotive.md, public addresses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticAddress {
    /// The address.
    pub address: Ipv4Addr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// The default gateway.
    pub gateway: Ipv4Addr,
    /// DNS servers.
    pub dns: Vec<Ipv4Addr>,
}

impl PublicAddress {
    /// A systemd-networkd unit for the secondary NIC `mac`.
    pub fn networkd_unit(&self, mac: MacAddr) -> String {
        match self {
            Self::Dhcp => format!("[Match]\nMACAddress={mac}\n\n[Network]\nDHCP=yes\n"),
            Self::Static(StaticAddress {
                address,
                prefix_len,
                gateway,
                dns,
            }) => {
                let mut s = format!(
                    "[Match]\nMACAddress={mac}\n\n[Network]\nDHCP=no\nAddress={address}/{prefix_len}\nGateway={gateway}\n"
                );
                for d in dns {
                    s.push_str(&format!("DNS={d}\n"));
                }
                s
            }
        }
    }
}

/// Public addresses by secondary MAC; MACs not listed use DHCP.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct PublicIps {
    entries: BTreeMap<MacAddr, PublicAddress>,
}

impl PublicIps {
    /// Every node on DHCP.
    pub fn dhcp() -> Self {
        Self::default()
    }

    /// Parse the INI text; `source` names it in errors.
    pub fn parse(source: &str, text: &str) -> Result<Self> {
        let err = |line: usize, message: String| Error::Ini {
            file: source.to_owned(),
            line: line as u64,
            message,
        };
        struct Section {
            mac: MacAddr,
            line: usize,
            ip: Option<(Ipv4Addr, u8)>,
            gateway: Option<Ipv4Addr>,
            dns: Option<Vec<Ipv4Addr>>,
        }
        let mut sections: Vec<Section> = Vec::new();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
                continue;
            }
            if let Some(rest) = l.strip_prefix('[') {
                let name = rest.strip_suffix(']').ok_or_else(|| {
                    err(
                        line,
                        format!("section header \"{l}\" lacks the closing ']'"),
                    )
                })?;
                let mac: MacAddr = name.parse().map_err(|_| {
                    err(
                        line,
                        format!("section [{}] is not a MAC address", name.trim()),
                    )
                })?;
                if let Some(prev) = sections.iter().find(|s| s.mac == mac) {
                    return Err(err(
                        line,
                        format!("section [{mac}] already appears on line {}", prev.line),
                    ));
                }
                sections.push(Section {
                    mac,
                    line,
                    ip: None,
                    gateway: None,
                    dns: None,
                });
                continue;
            }
            let (key, value) = l
                .split_once('=')
                .ok_or_else(|| err(line, format!("expected \"key = value\", found \"{l}\"")))?;
            let (key, value) = (key.trim(), value.trim());
            let section = sections
                .last_mut()
                .ok_or_else(|| err(line, format!("\"{key}\" appears before any [MAC] section")))?;
            // The original racker's wizard prefilled every section with
            // empty `ip_addr =`, `gateway =`, `dns =` lines: empty means
            // unset (so a section left as prefilled is DHCP).
            if value.is_empty() && matches!(key, "ip_addr" | "gateway" | "dns") {
                continue;
            }
            let addr = |v: &str| -> Result<Ipv4Addr> {
                v.parse()
                    .map_err(|_| err(line, format!("{key} \"{v}\" is not an IPv4 address")))
            };
            match key {
                "ip_addr" => {
                    let (a, len) = value.split_once('/').ok_or_else(|| {
                        err(
                            line,
                            format!(
                                "ip_addr \"{value}\" needs a prefix length, e.g. 203.0.113.10/24"
                            ),
                        )
                    })?;
                    let len: u8 = len
                        .trim()
                        .parse()
                        .ok()
                        .filter(|l| (1..=32).contains(l))
                        .ok_or_else(|| {
                            err(
                                line,
                                format!("ip_addr \"{value}\" has an invalid prefix length"),
                            )
                        })?;
                    section.ip = Some((addr(a.trim())?, len));
                }
                "gateway" => section.gateway = Some(addr(value)?),
                "dns" => {
                    let list = value
                        .split(|c: char| c.is_whitespace() || c == ',')
                        .filter(|s| !s.is_empty())
                        .map(addr)
                        .collect::<Result<Vec<_>>>()?;
                    if list.is_empty() {
                        return Err(err(line, "dns is empty".to_owned()));
                    }
                    section.dns = Some(list);
                }
                other => {
                    return Err(err(
                        line,
                        format!("unknown key \"{other}\" (expected ip_addr, gateway or dns)"),
                    ));
                }
            }
        }
        let mut entries = BTreeMap::new();
        let (mut gateway, mut dns): (Option<Ipv4Addr>, Option<Vec<Ipv4Addr>>) = (None, None);
        for s in sections {
            if s.gateway.is_some() {
                gateway = s.gateway;
            }
            if s.dns.is_some() {
                dns = s.dns.clone();
            }
            let entry = match s.ip {
                None => PublicAddress::Dhcp,
                Some((address, prefix_len)) => {
                    let (Some(gateway), Some(dns)) = (gateway, dns.clone()) else {
                        return Err(err(
                            s.line,
                            format!(
                                "section [{}] sets ip_addr but no gateway and dns were set in it or a section before it",
                                s.mac
                            ),
                        ));
                    };
                    PublicAddress::Static(StaticAddress {
                        address,
                        prefix_len,
                        gateway,
                        dns,
                    })
                }
            };
            entries.insert(s.mac, entry);
        }
        Ok(Self { entries })
    }

    /// Check that every section names some node's secondary MAC. Needs the
    /// original text's line numbers, so it re-reads `text`.
    pub fn check_against(&self, source: &str, text: &str, inventory: &Inventory) -> Result<()> {
        for (i, raw) in text.lines().enumerate() {
            let l = raw.trim();
            let Some(mac) = l
                .strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|m| m.parse::<MacAddr>().ok())
            else {
                continue;
            };
            if !inventory
                .nodes()
                .iter()
                .any(|n| n.secondary_mac == Some(mac))
            {
                return Err(Error::IniUnknownMac {
                    file: source.to_owned(),
                    line: i as u64 + 1,
                    mac,
                });
            }
        }
        Ok(())
    }

    /// The public address of the secondary NIC `mac` (DHCP when not listed).
    pub fn get(&self, mac: MacAddr) -> &PublicAddress {
        self.entries.get(&mac).unwrap_or(&PublicAddress::Dhcp)
    }

    /// Every listed entry, sorted by MAC.
    pub fn entries(&self) -> &BTreeMap<MacAddr, PublicAddress> {
        &self.entries
    }

    /// The INI template racker offers in the editor: one section per
    /// secondary MAC, commented out.
    pub fn template(secondary_macs: impl IntoIterator<Item = MacAddr>) -> String {
        let mut s = String::from(
            "# Public addresses by secondary MAC. Sections without ip_addr use DHCP.\n\
             # gateway and dns carry over from the previous section that set them.\n",
        );
        for mac in secondary_macs {
            s.push_str(&format!(
                "\n[{mac}]\n# ip_addr = a.b.c.d/len\n# gateway = x.x.x.x\n# dns = y.y.y.y\n"
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../docs/examples/public-ips.ini");

    /// The original racker's wizard prefill: one section per secondary MAC
    /// with empty values; the operator fills some and leaves the rest.
    #[test]
    fn original_prefill_with_empty_values_means_dhcp() {
        let text = "[00:11:22:33:44:40]\nip_addr =\ngateway =\ndns =\n\n\
                    [00:11:22:33:44:50]\nip_addr = 203.0.113.11/24\ngateway = 203.0.113.1\ndns = 203.0.113.53\n\n\
                    [00:11:22:33:44:60]\nip_addr = 203.0.113.12/24\ngateway =\ndns =\n";
        let ips = PublicIps::parse("prefill.ini", text).unwrap();
        let mac = |s: &str| -> MacAddr { s.parse().unwrap() };
        assert_eq!(ips.get(mac("00:11:22:33:44:40")), &PublicAddress::Dhcp);
        let carried = PublicAddress::Static(StaticAddress {
            address: Ipv4Addr::new(203, 0, 113, 12),
            prefix_len: 24,
            gateway: Ipv4Addr::new(203, 0, 113, 1),
            dns: vec![Ipv4Addr::new(203, 0, 113, 53)],
        });
        assert_eq!(ips.get(mac("00:11:22:33:44:60")), &carried);
        // An empty gateway does not satisfy a first static section.
        let err = PublicIps::parse(
            "p.ini",
            "[00:11:22:33:44:40]\nip_addr = 10.0.0.2/24\ngateway =\ndns =\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("no gateway and dns"), "{err}");
    }

    #[test]
    fn example_carries_gateway_and_dns_over() {
        let ips = PublicIps::parse("public-ips.ini", EXAMPLE).unwrap();
        let m: MacAddr = "00:11:22:33:44:50".parse().unwrap();
        assert_eq!(
            ips.get(m),
            &PublicAddress::Static(StaticAddress {
                address: Ipv4Addr::new(203, 0, 113, 11),
                prefix_len: 24,
                gateway: Ipv4Addr::new(203, 0, 113, 1),
                dns: vec![Ipv4Addr::new(203, 0, 113, 53)],
            })
        );
        assert_eq!(
            ips.get("00:11:22:33:44:99".parse().unwrap()),
            &PublicAddress::Dhcp
        );
        let unit = ips.get(m).networkd_unit(m);
        assert!(unit.contains("MACAddress=00:11:22:33:44:50\n"));
        assert!(unit.contains("Address=203.0.113.11/24\nGateway=203.0.113.1\nDNS=203.0.113.53\n"));
        let inv =
            Inventory::parse("nodes.csv", include_bytes!("../../docs/examples/nodes.csv")).unwrap();
        ips.check_against("public-ips.ini", EXAMPLE, &inv).unwrap();
        let bad = "[00:11:22:33:44:99]\n";
        let e = PublicIps::parse("x", bad)
            .unwrap()
            .check_against("x", bad, &inv)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "x:1: section [00:11:22:33:44:99] is not the secondary MAC of any node in nodes.csv"
        );
    }

    #[test]
    fn errors_carry_line_numbers() {
        let cases = [
            (
                "ip_addr = 1.2.3.4/24\n",
                "x:1: \"ip_addr\" appears before any [MAC] section",
            ),
            (
                "[00:11:22:33:44:40]\nip_addr = 1.2.3.4/24\n",
                "x:1: section [00:11:22:33:44:40] sets ip_addr but no gateway",
            ),
            (
                "[00:11:22:33:44:40]\n\nip_addr = 1.2.3.4\n",
                "x:3: ip_addr \"1.2.3.4\" needs a prefix length",
            ),
            (
                "[00:11:22:33:44:40]\ngateway = 1.2.3\n",
                "x:2: gateway \"1.2.3\" is not an IPv4 address",
            ),
            ("[00:11:22:33:44:40]\nfoo = 1\n", "x:2: unknown key \"foo\""),
            ("[nope]\n", "x:1: section [nope] is not a MAC address"),
            (
                "[00:11:22:33:44:40]\n[00-11-22-33-44-40]\n",
                "x:2: section [00:11:22:33:44:40] already appears on line 1",
            ),
        ];
        for (text, want) in cases {
            let e = PublicIps::parse("x", text).unwrap_err().to_string();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "(\\[|\\]|[0-9a-f:./= \n#]|ip_addr|gateway|dns){0,200}") {
            let _ = PublicIps::parse("x", &text);
        }
    }
}
