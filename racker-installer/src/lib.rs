//! Racker releases: build reproducible release archives from an installer
//! definition, publish them in a release index, and install, update or roll
//! back an installation atomically.
//!
//! Build side: [`Definition`] (TOML, see `docs/installer.md`) →
//! [`build`] → `racker-<version>-<arch>.tar.gz`, its `.sha256` and a
//! [`ReleaseEntry`] for the [`ReleaseIndex`].
//!
//! Install side: [`Layout::begin`] a [`Staging`] folder, receive the archive
//! into it (hashing), then [`Installer::install`] verifies, extracts (refusing
//! tar-slip entries), and switches `current` atomically.
//!
//! Command side: an [`Installation`] installs from a URL or a release
//! index, rolls back and says what it did ([`InstallReport::lines`],
//! [`VersionReport`]): the work of `racker install`, `update`, `upgrade`,
//! `get`, `rollback` and `version`, whose front end only prints.
//!
//! ```
//! use racker_installer::{Installer, Layout, Sha256Digest, write_archive};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tmp = std::env::temp_dir().join(format!("racker-doc-{}", std::process::id()));
//! let tree = tmp.join("tree");
//! std::fs::create_dir_all(tree.join("bin"))?;
//! std::fs::write(tree.join("bin/racker"), "#!/bin/sh\n")?;
//! std::fs::write(tree.join("RACKER_VERSION"), "1.0.0\n")?;
//! let mut archive = Vec::new();
//! write_archive(&tree, 0, &mut archive)?;
//! let archive_path = tmp.join("racker.tar.gz");
//! std::fs::write(&archive_path, &archive)?;
//!
//! let layout = Layout::new(tmp.join("opt/racker"), tmp.join("opt/bin"), tmp.join("units"));
//! let staging = layout.begin()?;
//! let actual = staging.receive_file(&archive_path)?;
//! let report = Installer::new(layout.clone(), None)
//!     .install(staging, actual, Sha256Digest::of(&archive), None, "racker.tar.gz")?;
//! assert_eq!(report.version.to_string(), "1.0.0");
//! assert!(tmp.join("opt/bin/racker").exists());
//! # std::fs::remove_dir_all(&tmp)?;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![deny(clippy::unwrap_used)]

mod archive;
mod builder;
mod definition;
mod digest;
mod error;
mod fetch;
mod index;
mod install;
mod release;
mod systemd;
mod update;

pub use archive::{
    DEFAULT_MTIME, check_entry_path, check_link_target, unpack_archive, write_archive,
};
pub use builder::{BuildOptions, BuildOutput, archive_name, build};
pub use definition::{Asset, AssetSource, Definition, Module, Step};
pub use digest::{Hasher, Sha256Digest};
pub use error::{Error, Result};
pub use fetch::{Fetcher, fetch_pinned, parse_url, resolve};
pub use index::{ReleaseEntry, ReleaseIndex, Selector};
pub use install::{
    InstallLock, InstallReport, Installed, InstalledState, Installer, LOCK_WAIT, Layout, Stage,
    Staging, read_version,
};
pub use release::{BuildInfo, Installation, ReleaseView, VersionReport};
pub use semver::Version;
pub use systemd::{ServiceManager, Systemctl, UNIT_SUFFIXES, is_unit_name, systemd_booted};
pub use update::{
    IndexChoice, SMALL_DOCUMENT_LIMIT, choose_from_index, fetch_and_install, published_checksum,
    url_or_path,
};
pub use url::Url;
