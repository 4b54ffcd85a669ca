//! Installing a release from where it is published (`racker install`,
//! `update`, `upgrade`, `get`; docs/installer.md): an archive given by URL
//! or path with its checksum, or the release a release index offers for a
//! [`Selector`].

use semver::Version;
use url::Url;

use crate::{
    Error, Fetcher, InstallReport, Installer, Layout, ReleaseEntry, ReleaseIndex, Result, Selector,
    ServiceManager, Sha256Digest, parse_url, resolve,
};

/// Largest release index / checksum file accepted.
pub const SMALL_DOCUMENT_LIMIT: u64 = 16 * 1024 * 1024;

/// A URL (`http://`, `https://`, `file://`), or a local path turned into a
/// `file://` URL.
pub fn url_or_path(text: &str) -> Result<Url> {
    if text.contains("://") {
        return parse_url(text);
    }
    let bad = |reason: String| Error::BadUrl {
        url: text.to_owned(),
        reason,
    };
    let path = std::path::absolute(text).map_err(|e| bad(format!("resolve {text}: {e}")))?;
    Url::from_file_path(&path).map_err(|()| bad(format!("cannot use {text} as a file URL")))
}

/// The checksum published beside `url` (`URL.sha256`, sha256sum format).
pub async fn published_checksum(fetcher: &Fetcher, url: &Url) -> Result<Sha256Digest> {
    let sidecar = parse_url(&format!("{url}.sha256"))?;
    let bytes = fetcher
        .bytes(&sidecar, SMALL_DOCUMENT_LIMIT)
        .await
        .map_err(|e| Error::NoChecksum {
            url: url.to_string(),
            sidecar: sidecar.to_string(),
            source: Box::new(e),
        })?;
    Sha256Digest::from_checksum_file(&String::from_utf8_lossy(&bytes)).ok_or_else(|| {
        Error::BadChecksumFile {
            url: sidecar.to_string(),
        }
    })
}

/// Fetch the archive at `url` (a `file://` URL is copied) into a staging
/// folder of `layout` and install it, checking `expected` (and the
/// version, when the index named one).
pub async fn fetch_and_install(
    fetcher: &Fetcher,
    url: &Url,
    expected: Sha256Digest,
    expected_version: Option<&Version>,
    layout: Layout,
    services: Option<&mut dyn ServiceManager>,
) -> Result<InstallReport> {
    let staging = layout.begin()?;
    let actual = if url.scheme() == "file" {
        let path = url.to_file_path().map_err(|()| Error::BadUrl {
            url: url.to_string(),
            reason: "not a local path".to_owned(),
        })?;
        staging.receive_file(&path)?
    } else {
        fetcher.to_file(url, &staging.archive_path()).await?
    };
    Installer::new(layout, services).install(
        staging,
        actual,
        expected,
        expected_version,
        url.as_str(),
    )
}

/// What a release index offers for a [`Selector`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // one per command
pub enum IndexChoice {
    /// No release fits; `installed` stays.
    NoneCompatible {
        /// The installed version (none after a factory reset).
        installed: Option<Version>,
    },
    /// The installed version is the newest the index offers.
    UpToDate {
        /// The installed version.
        installed: Version,
        /// The newest release in the index.
        newest: Version,
    },
    /// Install this release.
    Install {
        /// The release.
        entry: ReleaseEntry,
        /// Its archive, resolved against the index URL.
        archive: Url,
        /// `Selector::Newest` crosses a compatibility boundary: the
        /// installed version and the release's minimum compatible one.
        incompatible: Option<(Version, Version)>,
    },
}

/// Read the release index at `index_url` and choose what to install for
/// `selector` on `arch`, given what `layout` has installed (nothing is "up
/// to date" after a factory reset).
pub async fn choose_from_index(
    fetcher: &Fetcher,
    index_url: &Url,
    selector: &Selector,
    arch: &str,
    layout: &Layout,
) -> Result<IndexChoice> {
    let bytes = fetcher
        .bytes(index_url, SMALL_DOCUMENT_LIMIT)
        .await
        .map_err(|e| Error::IndexUnreachable {
            url: index_url.to_string(),
            source: Box::new(e),
        })?;
    let index = ReleaseIndex::parse(index_url.as_str(), &bytes)?;
    let installed = if layout.factory_reset_pending() {
        None
    } else {
        layout.state()?.current.map(|c| c.version)
    };
    choose(&index, index_url, selector, arch, installed)
}

fn choose(
    index: &ReleaseIndex,
    index_url: &Url,
    selector: &Selector,
    arch: &str,
    installed: Option<Version>,
) -> Result<IndexChoice> {
    let Some(entry) = index.select(selector, arch)? else {
        return Ok(IndexChoice::NoneCompatible { installed });
    };
    let newer_needed = !matches!(selector, Selector::Exact(_));
    if let Some(installed) = &installed
        && newer_needed
        && &entry.version <= installed
    {
        return Ok(IndexChoice::UpToDate {
            installed: installed.clone(),
            newest: entry.version.clone(),
        });
    }
    let incompatible = match (selector, installed) {
        (Selector::Newest, Some(installed)) if entry.min_compatible_version > installed => {
            Some((installed, entry.min_compatible_version.clone()))
        }
        _ => None,
    };
    Ok(IndexChoice::Install {
        entry: entry.clone(),
        archive: resolve(index_url, &entry.archive)?,
        incompatible,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> ReleaseIndex {
        ReleaseIndex::parse(
            "index.json",
            br#"{"releases": [
                {"version": "1.1.0", "arch": "x86_64", "archive": "racker-1.1.0.tar.gz",
                 "sha256": "0000000000000000000000000000000000000000000000000000000000000000",
                 "min_compatible_version": "1.0.0"},
                {"version": "2.0.0", "arch": "x86_64", "archive": "racker-2.0.0.tar.gz",
                 "sha256": "0000000000000000000000000000000000000000000000000000000000000000",
                 "min_compatible_version": "2.0.0"}
            ]}"#,
        )
        .unwrap()
    }

    #[test]
    fn choices_follow_the_selector_and_the_installed_version() {
        let url = Url::parse("http://mirror/racker/index.json").unwrap();
        let v = |s: &str| Version::parse(s).unwrap();
        let index = index();
        match choose(
            &index,
            &url,
            &Selector::Compatible(v("1.0.0")),
            "x86_64",
            Some(v("1.0.0")),
        )
        .unwrap()
        {
            IndexChoice::Install {
                entry,
                archive,
                incompatible,
            } => {
                assert_eq!(entry.version, v("1.1.0"));
                assert_eq!(archive.as_str(), "http://mirror/racker/racker-1.1.0.tar.gz");
                assert_eq!(incompatible, None);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            choose(
                &index,
                &url,
                &Selector::Compatible(v("1.1.0")),
                "x86_64",
                Some(v("1.1.0"))
            )
            .unwrap(),
            IndexChoice::UpToDate {
                installed: v("1.1.0"),
                newest: v("1.1.0")
            }
        );
        match choose(&index, &url, &Selector::Newest, "x86_64", Some(v("1.1.0"))).unwrap() {
            IndexChoice::Install { incompatible, .. } => {
                assert_eq!(incompatible, Some((v("1.1.0"), v("2.0.0"))));
            }
            other => panic!("{other:?}"),
        }
        // An exact version is installed even when it is older.
        assert!(matches!(
            choose(
                &index,
                &url,
                &Selector::Exact(v("1.1.0")),
                "x86_64",
                Some(v("2.0.0"))
            )
            .unwrap(),
            IndexChoice::Install { .. }
        ));
    }

    #[test]
    fn paths_become_file_urls() {
        let url = url_or_path("/tmp/racker.tar.gz").unwrap();
        assert_eq!(url.as_str(), "file:///tmp/racker.tar.gz");
        assert_eq!(url_or_path("http://x/y").unwrap().as_str(), "http://x/y");
    }
}
