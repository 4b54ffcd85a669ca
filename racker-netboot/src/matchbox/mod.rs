//! Profiles and groups in matchbox's on-disk format.
//!
//! A data directory holds `profiles/<id>.json` (kernel, initrds, kernel
//! arguments, Ignition template id), `groups/<name>.json` (a profile chosen
//! by label selectors such as `mac`, plus metadata) and `ignition/<id>`.
//! [`Catalog`] loads such a directory, selects like matchbox (most
//! selectors first, ties broken by the sorted `k=v` string descending) and
//! writes one back ([`Catalog::write_dir`]), so users migrating from
//! matchbox can drop their files in and `racker netboot render --matchbox`
//! produces files matchbox itself accepts.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use racker_inventory::MacAddr;
use serde::{Deserialize, Serialize};

use crate::profile::ContentError;

/// The `boot` block of a profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Boot {
    /// Kernel URL or `/assets/...` path.
    #[serde(default)]
    pub kernel: String,
    /// Initrd URLs or paths.
    #[serde(default)]
    pub initrd: Vec<String>,
    /// Kernel arguments, written verbatim (iPXE `${...}` variables allowed).
    #[serde(default)]
    pub args: Vec<String>,
}

/// A matchbox profile (`profiles/<id>.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Identifier; groups reference it and the file is named after it.
    pub id: String,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Network boot parameters.
    #[serde(default)]
    pub boot: Boot,
    /// File name in `ignition/`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ignition_id: String,
}

/// A matchbox group (`groups/<name>.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Identifier (also the file name).
    pub id: String,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Profile id.
    pub profile: String,
    /// Label selectors; `mac` is normalised to lower-case colon form.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
    /// Free-form metadata.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// One node to boot, as the address plan describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEntry {
    /// Primary (PXE) MAC.
    pub mac: MacAddr,
    /// Host name, when known.
    pub hostname: Option<String>,
    /// Internal address.
    pub ip: Option<Ipv4Addr>,
    /// Role ("controller", "worker", "flatcar"...).
    pub role: Option<String>,
}

/// Settings for the catalog racker generates itself.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FlatcarBoot {
    /// Base URL of racker's HTTP server as nodes reach it, e.g.
    /// `http://172.24.213.1:8080` (no trailing slash).
    pub base_url: String,
    /// Path of the Flatcar asset directory under `/assets/`.
    pub asset_path: String,
    /// Console arguments, e.g. `console=tty0 console=ttyS0,115200n8`.
    pub console: Vec<String>,
    /// Log in automatically on the console (`flatcar.autologin`).
    pub autologin: bool,
}

impl FlatcarBoot {
    /// Defaults for `base_url`: assets under `flatcar/current`, serial and
    /// VGA console, autologin.
    pub fn new(base_url: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            asset_path: "flatcar/current".into(),
            console: vec!["console=tty0".into(), "console=ttyS0,115200n8".into()],
            autologin: true,
        }
    }
}

/// Id of the installer profile racker generates.
pub const INSTALL_PROFILE: &str = "flatcar-install";
/// File names of Flatcar's PXE kernel and initrd.
pub const PXE_KERNEL: &str = "flatcar_production_pxe.vmlinuz";
/// See [`PXE_KERNEL`].
pub const PXE_INITRD: &str = "flatcar_production_pxe_image.cpio.gz";

/// Profiles and groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    /// Profiles by id.
    pub profiles: BTreeMap<String, Profile>,
    /// Groups by id.
    pub groups: BTreeMap<String, Group>,
    /// Directory of Ignition files referenced by `ignition_id`, if any.
    pub ignition_dir: Option<PathBuf>,
}

fn basename(url: &str) -> &str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    path.rsplit('/').next().unwrap_or(path)
}

impl Catalog {
    /// The catalog for plain Flatcar PXE installs of `nodes`: one installer
    /// profile and one group per node selected by MAC.
    pub fn flatcar(nodes: &[NodeEntry], boot: &FlatcarBoot) -> Self {
        let assets = format!("{}/assets/{}", boot.base_url, boot.asset_path);
        let mut args = vec![
            format!("initrd={PXE_INITRD}"),
            "flatcar.first_boot=1".to_owned(),
            format!(
                "ignition.config.url={}/ignition?mac=${{mac:hexhyp}}&profile=install",
                boot.base_url
            ),
        ];
        args.extend(boot.console.iter().cloned());
        if boot.autologin {
            args.push("flatcar.autologin".into());
        }
        let profile = Profile {
            id: INSTALL_PROFILE.into(),
            name: "Flatcar Container Linux installer (PXE)".into(),
            boot: Boot {
                kernel: format!("{assets}/{PXE_KERNEL}"),
                initrd: vec![format!("{assets}/{PXE_INITRD}")],
                args,
            },
            ignition_id: String::new(),
        };
        let mut groups = BTreeMap::new();
        for node in nodes {
            let id = format!("node-{}", node.mac.to_string().replace(':', ""));
            let mut metadata = serde_json::Map::new();
            metadata.insert("mac".into(), node.mac.to_string().into());
            if let Some(h) = &node.hostname {
                metadata.insert("hostname".into(), h.clone().into());
            }
            if let Some(ip) = node.ip {
                metadata.insert("ip".into(), ip.to_string().into());
            }
            if let Some(r) = &node.role {
                metadata.insert("role".into(), r.clone().into());
            }
            groups.insert(
                id.clone(),
                Group {
                    id,
                    name: node.hostname.clone().unwrap_or_default(),
                    profile: INSTALL_PROFILE.into(),
                    selector: BTreeMap::from([("mac".to_owned(), node.mac.to_string())]),
                    metadata,
                },
            );
        }
        Self {
            profiles: BTreeMap::from([(INSTALL_PROFILE.to_owned(), profile)]),
            groups,
            ignition_dir: None,
        }
    }

    /// Load a matchbox data directory (`profiles/`, `groups/`; `ignition/`
    /// is remembered). Unlike matchbox, broken files are errors, not
    /// skipped silently.
    pub fn load_dir(dir: &Path) -> Result<Self, ContentError> {
        let mut catalog = Catalog::default();
        for path in json_files(&dir.join("profiles"))? {
            let profile: Profile = read_json(&path)?;
            if profile.id.is_empty() {
                return Err(ContentError::Matchbox {
                    path,
                    reason: "profile has an empty id".into(),
                });
            }
            catalog.profiles.insert(profile.id.clone(), profile);
        }
        for path in json_files(&dir.join("groups"))? {
            let mut group: Group = read_json(&path)?;
            if let Some(mac) = group.selector.get_mut("mac") {
                let parsed: MacAddr = mac.parse().map_err(|_| ContentError::Matchbox {
                    path: path.clone(),
                    reason: format!("selector mac {mac:?} is not a MAC address"),
                })?;
                *mac = parsed.to_string();
            }
            if !catalog.profiles.contains_key(&group.profile) {
                return Err(ContentError::Matchbox {
                    path,
                    reason: format!("group references unknown profile {:?}", group.profile),
                });
            }
            catalog.groups.insert(group.id.clone(), group);
        }
        let ign = dir.join("ignition");
        catalog.ignition_dir = ign.is_dir().then_some(ign);
        Ok(catalog)
    }

    /// Write `profiles/<id>.json` and `groups/<id>.json` under `dir`
    /// (pretty JSON, deterministic order, atomic per file).
    pub fn write_dir(&self, dir: &Path) -> Result<Vec<PathBuf>, ContentError> {
        let mut written = Vec::new();
        for (sub, docs) in [
            (
                "profiles",
                self.profiles
                    .values()
                    .map(|p| (p.id.clone(), serde_json::to_value(p)))
                    .collect::<Vec<_>>(),
            ),
            (
                "groups",
                self.groups
                    .values()
                    .map(|g| (g.id.clone(), serde_json::to_value(g)))
                    .collect(),
            ),
        ] {
            let d = dir.join(sub);
            std::fs::create_dir_all(&d).map_err(|e| ContentError::io("creating", &d, e))?;
            for (id, value) in docs {
                let path = d.join(format!("{id}.json"));
                let value = value.map_err(|source| ContentError::Json {
                    path: path.clone(),
                    source,
                })?;
                let mut text =
                    serde_json::to_string_pretty(&value).map_err(|source| ContentError::Json {
                        path: path.clone(),
                        source,
                    })?;
                text.push('\n');
                crate::report::write_atomic(&path, text.as_bytes())?;
                written.push(path);
            }
        }
        Ok(written)
    }

    /// matchbox's group selection for request `labels` (query parameters;
    /// `mac` already normalised by the caller).
    ///
    /// Of the groups whose selector matches, the one with the most
    /// selector labels, then the greatest `k=v,...` selector, then the
    /// first by id. One pass over the groups, ordering only the matching
    /// ones (sorting every group per request made large racks quadratic).
    pub fn select(&self, labels: &BTreeMap<String, String>) -> Option<(&Group, &Profile)> {
        let mut best: Option<(&Group, Option<String>)> = None;
        for g in self.groups.values() {
            if !g.selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                continue;
            }
            best = match best {
                None => Some((g, None)),
                Some((b, b_key)) => {
                    if g.selector.len() != b.selector.len() {
                        if g.selector.len() > b.selector.len() {
                            Some((g, None))
                        } else {
                            Some((b, b_key))
                        }
                    } else {
                        let b_key = b_key.unwrap_or_else(|| selector_key(b));
                        let g_key = selector_key(g);
                        if g_key > b_key {
                            Some((g, Some(g_key)))
                        } else {
                            Some((b, Some(b_key)))
                        }
                    }
                }
            };
        }
        best.and_then(|(g, _)| self.profiles.get(&g.profile).map(|p| (g, p)))
    }

    /// The group selected by MAC alone.
    pub fn select_mac(&self, mac: MacAddr) -> Option<(&Group, &Profile)> {
        self.select(&BTreeMap::from([("mac".to_owned(), mac.to_string())]))
    }
}

fn selector_key(g: &Group) -> String {
    g.selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn json_files(dir: &Path) -> Result<Vec<PathBuf>, ContentError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ContentError::io("reading", dir, e)),
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
        .collect();
    out.sort();
    Ok(out)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ContentError> {
    let bytes = std::fs::read(path).map_err(|e| ContentError::io("reading", path, e))?;
    serde_json::from_slice(&bytes).map_err(|source| ContentError::Json {
        path: path.to_owned(),
        source,
    })
}

/// Render the iPXE script of a profile (`#!ipxe`, `kernel`, `initrd`
/// lines, `boot`). Each initrd's file name is added as `initrd=<name>` to
/// the kernel arguments when missing: UEFI kernels need it to find the
/// initrd.
pub fn ipxe_script(profile: &Profile) -> String {
    let mut args = profile.boot.args.clone();
    for initrd in &profile.boot.initrd {
        let arg = format!("initrd={}", basename(initrd));
        if !args.contains(&arg) {
            args.insert(0, arg);
        }
    }
    let mut s = String::from("#!ipxe\n");
    s.push_str(&format!("kernel {}", profile.boot.kernel));
    for a in &args {
        s.push(' ');
        s.push_str(a);
    }
    s.push('\n');
    for initrd in &profile.boot.initrd {
        s.push_str(&format!("initrd {initrd}\n"));
    }
    s.push_str("boot\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(s: &str) -> MacAddr {
        s.parse().unwrap()
    }

    fn nodes() -> Vec<NodeEntry> {
        vec![
            NodeEntry {
                mac: mac("00:11:22:33:44:10"),
                hostname: Some("node-0".into()),
                ip: Some(Ipv4Addr::new(172, 24, 213, 2)),
                role: Some("flatcar".into()),
            },
            NodeEntry {
                mac: mac("00:11:22:33:44:20"),
                hostname: None,
                ip: None,
                role: None,
            },
        ]
    }

    /// The selection as matchbox orders it: every group sorted by selector
    /// size, then selector, descending; the first that matches.
    fn select_by_sorting<'c>(
        c: &'c Catalog,
        labels: &BTreeMap<String, String>,
    ) -> Option<&'c Group> {
        let mut candidates: Vec<&Group> = c.groups.values().collect();
        candidates.sort_by(|a, b| {
            b.selector
                .len()
                .cmp(&a.selector.len())
                .then_with(|| selector_key(b).cmp(&selector_key(a)))
        });
        candidates
            .into_iter()
            .find(|g| g.selector.iter().all(|(k, v)| labels.get(k) == Some(v)))
    }

    #[test]
    fn selection_is_matchbox_order_without_sorting_every_group() {
        let c0 = Catalog::flatcar(&nodes(), &FlatcarBoot::new("http://10.0.0.1:8080/"));
        let profile = c0.profiles.keys().next().unwrap().clone();
        let pairs = [
            ("mac", "00:11:22:33:44:10"),
            ("mac", "00:11:22:33:44:20"),
            ("os", "installed"),
            ("os", "other"),
            ("uuid", "u1"),
        ];
        // Every subset of labels (one value per key) as a selector, twice
        // (ties go to the first id), and every subset as a request.
        let subsets: Vec<BTreeMap<String, String>> = (0u32..32)
            .map(|bits| {
                let mut m = BTreeMap::new();
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if bits & (1 << i) != 0 {
                        m.insert((*k).to_owned(), (*v).to_owned());
                    }
                }
                m
            })
            .collect();
        let mut c = Catalog {
            profiles: c0.profiles.clone(),
            groups: BTreeMap::new(),
            ignition_dir: None,
        };
        for (i, sel) in subsets.iter().enumerate() {
            for copy in ["a", "b"] {
                let id = format!("g{i:02}{copy}");
                let group = Group {
                    id: id.clone(),
                    name: String::new(),
                    profile: profile.clone(),
                    selector: sel.clone(),
                    metadata: serde_json::Map::new(),
                };
                c.groups.insert(id, group);
            }
        }
        for labels in &subsets {
            let want = select_by_sorting(&c, labels).map(|g| g.id.clone());
            assert_eq!(
                c.select(labels).map(|(g, _)| g.id.clone()),
                want,
                "{labels:?}"
            );
            // And with only some of the groups.
            let mut few = c.clone();
            few.groups
                .retain(|id, _| id.ends_with('b') && id.as_bytes()[2] % 3 != 0);
            let want = select_by_sorting(&few, labels).map(|g| g.id.clone());
            assert_eq!(
                few.select(labels).map(|(g, _)| g.id.clone()),
                want,
                "{labels:?}"
            );
        }
    }

    #[test]
    fn flatcar_catalog_selects_by_mac() {
        let c = Catalog::flatcar(&nodes(), &FlatcarBoot::new("http://10.0.0.1:8080/"));
        let (g, p) = c.select_mac(mac("00:11:22:33:44:10")).unwrap();
        assert_eq!(g.metadata["hostname"], "node-0");
        assert_eq!(p.id, INSTALL_PROFILE);
        assert!(c.select_mac(mac("00:11:22:33:44:99")).is_none());
        let script = ipxe_script(p);
        assert!(script.starts_with("#!ipxe\nkernel http://10.0.0.1:8080/assets/flatcar/current/flatcar_production_pxe.vmlinuz initrd=flatcar_production_pxe_image.cpio.gz flatcar.first_boot=1 ignition.config.url=http://10.0.0.1:8080/ignition?mac=${mac:hexhyp}&profile=install console=tty0 console=ttyS0,115200n8 flatcar.autologin\n"), "{script}");
        assert!(script.ends_with("initrd http://10.0.0.1:8080/assets/flatcar/current/flatcar_production_pxe_image.cpio.gz\nboot\n"));
    }

    #[test]
    fn initrd_argument_added_when_missing() {
        let p = Profile {
            id: "x".into(),
            boot: Boot {
                kernel: "/assets/k".into(),
                initrd: vec!["/assets/a/init.cpio.gz?x=1".into()],
                args: vec!["quiet".into()],
            },
            ..Profile::default()
        };
        assert!(ipxe_script(&p).contains("kernel /assets/k initrd=init.cpio.gz quiet\n"));
    }

    #[test]
    fn write_then_load_round_trips_and_matchbox_ordering() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::flatcar(&nodes(), &FlatcarBoot::new("http://h:8080"));
        let files = c.write_dir(dir.path()).unwrap();
        assert_eq!(files.len(), 3);
        let loaded = Catalog::load_dir(dir.path()).unwrap();
        assert_eq!(loaded.profiles, c.profiles);
        assert_eq!(loaded.groups, c.groups);

        // A catch-all group loses against a MAC-specific one, and a group
        // with more selectors wins over one with fewer.
        std::fs::write(
            dir.path().join("groups/default.json"),
            r#"{"id":"default","profile":"flatcar-install"}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("groups/installed.json"),
            r#"{"id":"installed","profile":"flatcar-install","selector":{"mac":"00-11-22-33-44-10","os":"installed"}}"#,
        )
        .unwrap();
        let loaded = Catalog::load_dir(dir.path()).unwrap();
        assert_eq!(
            loaded.select_mac(mac("00:11:22:33:44:99")).unwrap().0.id,
            "default"
        );
        let mut labels = BTreeMap::from([("mac".to_owned(), "00:11:22:33:44:10".to_owned())]);
        assert_eq!(loaded.select(&labels).unwrap().0.id, "node-001122334410");
        labels.insert("os".into(), "installed".into());
        assert_eq!(loaded.select(&labels).unwrap().0.id, "installed");
    }

    #[test]
    fn broken_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("groups")).unwrap();
        std::fs::write(
            dir.path().join("groups/g.json"),
            r#"{"id":"g","profile":"missing"}"#,
        )
        .unwrap();
        let err = Catalog::load_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("unknown profile"), "{err}");
        std::fs::write(
            dir.path().join("groups/g.json"),
            r#"{"id":"g","profile":"p","selector":{"mac":"zz"}}"#,
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("profiles")).unwrap();
        std::fs::write(dir.path().join("profiles/p.json"), r#"{"id":"p"}"#).unwrap();
        let err = Catalog::load_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a MAC"), "{err}");
    }
}
