//! The release index (JSON) and choosing a release from it.

use semver::Version;
use serde::{Deserialize, Serialize};

use crate::digest::Sha256Digest;
use crate::error::{Error, Result};

/// One release archive as listed in the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseEntry {
    /// The release version (also in the archive's `RACKER_VERSION`).
    pub version: Version,
    /// CPU architecture, as Rust names it (`x86_64`, `aarch64`).
    pub arch: String,
    /// Archive URL; relative URLs are resolved against the index URL.
    pub archive: String,
    /// SHA-256 of the archive bytes.
    pub sha256: Sha256Digest,
    /// Oldest installed version this release can be installed over by
    /// `racker update`.
    pub min_compatible_version: Version,
}

/// The release index: every published release, any order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseIndex {
    /// The releases.
    pub releases: Vec<ReleaseEntry>,
}

/// Which release `racker update` / `upgrade` / `get` wants.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Selector {
    /// Newest release with the installed major version whose minimum
    /// compatible version the installed one satisfies.
    Compatible(Version),
    /// Newest release.
    Newest,
    /// Exactly this version.
    Exact(Version),
}

impl ReleaseIndex {
    /// Parse index JSON fetched from `url`.
    pub fn parse(url: &str, bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|source| Error::IndexParse {
            url: url.to_owned(),
            source,
        })
    }

    /// Pretty JSON with releases sorted by version then architecture.
    pub fn to_json(&self) -> String {
        let mut sorted = self.clone();
        sorted.sort();
        let mut text = serde_json::to_string_pretty(&sorted).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Add `entry`, replacing any release with the same version and arch.
    pub fn insert(&mut self, entry: ReleaseEntry) {
        self.releases
            .retain(|r| !(r.version == entry.version && r.arch == entry.arch));
        self.releases.push(entry);
        self.sort();
    }

    fn sort(&mut self) {
        self.releases
            .sort_by(|a, b| (&a.version, &a.arch).cmp(&(&b.version, &b.arch)));
    }

    /// The release `selector` picks for `arch`. `Ok(None)` means nothing
    /// newer/compatible exists (for `Compatible`); an unknown exact version
    /// or an index without any release for `arch` is an error.
    pub fn select(&self, selector: &Selector, arch: &str) -> Result<Option<&ReleaseEntry>> {
        let for_arch = || self.releases.iter().filter(move |r| r.arch == arch);
        if for_arch().next().is_none() {
            return Err(Error::NoRelease {
                arch: arch.to_owned(),
            });
        }
        Ok(match selector {
            Selector::Newest => for_arch().max_by(|a, b| a.version.cmp(&b.version)),
            Selector::Compatible(installed) => for_arch()
                .filter(|r| r.version.major == installed.major)
                .filter(|r| r.version.pre.is_empty() || installed.pre == r.version.pre)
                .filter(|r| &r.min_compatible_version <= installed)
                .max_by(|a, b| a.version.cmp(&b.version)),
            Selector::Exact(version) => {
                Some(for_arch().find(|r| &r.version == version).ok_or_else(|| {
                    Error::UnknownVersion {
                        version: version.clone(),
                        arch: arch.to_owned(),
                    }
                })?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(v: &str, arch: &str, min: &str) -> ReleaseEntry {
        ReleaseEntry {
            version: v.parse().unwrap(),
            arch: arch.into(),
            archive: format!("racker-{v}-{arch}.tar.gz"),
            sha256: Sha256Digest::of(v.as_bytes()),
            min_compatible_version: min.parse().unwrap(),
        }
    }

    fn index() -> ReleaseIndex {
        ReleaseIndex {
            releases: vec![
                entry("1.0.0", "x86_64", "1.0.0"),
                entry("1.2.0", "x86_64", "1.0.0"),
                entry("1.3.0", "x86_64", "1.1.0"),
                entry("1.9.0", "aarch64", "1.0.0"),
                entry("2.0.0", "x86_64", "2.0.0"),
                entry("2.1.0-rc.1", "x86_64", "2.0.0"),
            ],
        }
    }

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn compatible_stays_in_major_and_honours_minimum() {
        let idx = index();
        let pick = |installed: &str| {
            idx.select(&Selector::Compatible(v(installed)), "x86_64")
                .unwrap()
                .map(|r| r.version.to_string())
        };
        assert_eq!(pick("1.0.0").as_deref(), Some("1.2.0"));
        assert_eq!(pick("1.2.0").as_deref(), Some("1.3.0"));
        assert_eq!(pick("2.0.0").as_deref(), Some("2.0.0"));
        assert_eq!(pick("3.0.0"), None);
    }

    #[test]
    fn newest_and_exact() {
        let idx = index();
        let newest = idx.select(&Selector::Newest, "x86_64").unwrap().unwrap();
        assert_eq!(newest.version, v("2.1.0-rc.1"));
        let old = idx
            .select(&Selector::Exact(v("1.0.0")), "x86_64")
            .unwrap()
            .unwrap();
        assert_eq!(old.version, v("1.0.0"));
        assert!(matches!(
            idx.select(&Selector::Exact(v("1.9.0")), "x86_64"),
            Err(Error::UnknownVersion { .. })
        ));
        assert!(matches!(
            idx.select(&Selector::Newest, "riscv64"),
            Err(Error::NoRelease { .. })
        ));
    }

    #[test]
    fn json_round_trip_and_insert_replaces() {
        let mut idx = index();
        let text = idx.to_json();
        assert_eq!(ReleaseIndex::parse("mem", text.as_bytes()).unwrap(), {
            let mut s = idx.clone();
            s.sort();
            s
        });
        let mut replacement = entry("1.2.0", "x86_64", "1.0.0");
        replacement.archive = "other.tar.gz".into();
        idx.insert(replacement.clone());
        assert_eq!(idx.releases.len(), 6);
        assert!(idx.releases.contains(&replacement));
        assert!(ReleaseIndex::parse("mem", b"{\"releases\": [{}]}").is_err());
    }
}
