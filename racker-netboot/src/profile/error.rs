//! The error type of the boot-content side (TFTP, HTTP, assets, reports).

use std::path::PathBuf;

/// Errors of the netboot content services.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContentError {
    /// A file or directory could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What we were doing ("reading", "creating"...).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A socket could not be bound or used.
    #[error("{what} on {addr}: {source}")]
    Socket {
        /// "binding TFTP", "binding HTTP"...
        what: &'static str,
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The iPXE binaries are not where we looked.
    #[error(
        "iPXE boot file {missing} not found in {dir}: install Debian's `ipxe` package \
         (provides /usr/lib/ipxe) or pass --boot-files DIR holding undionly.kpxe and ipxe.efi"
    )]
    BootFilesMissing {
        /// Directory searched.
        dir: PathBuf,
        /// The file that is missing.
        missing: &'static str,
    },
    /// An iPXE boot file exists but cannot be opened.
    #[error("iPXE boot file {} cannot be read: {source}", path.display())]
    BootFileUnreadable {
        /// The file (as configured, before following links).
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON document (report, profile, group) is malformed.
    #[error("parsing {path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser error.
        #[source]
        source: serde_json::Error,
    },
    /// A matchbox profile or group is invalid.
    #[error("{path}: {reason}")]
    Matchbox {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A report with an unknown stage.
    #[error("unknown report stage {0:?} (expected installing, installed, up or failed)")]
    UnknownStage(String),
    /// Downloading a Flatcar asset failed.
    #[error("downloading {url}: {reason}")]
    Download {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// An OpenPGP signature did not verify; nothing was installed.
    #[error("signature check of {file} failed: {reason}")]
    BadSignature {
        /// The asset.
        file: String,
        /// Why.
        reason: String,
    },
    /// The signing key could not be read.
    #[error("signing key: {0}")]
    SigningKey(String),
    /// The signing key file could not be read (it is not shipped: the
    /// operator downloads it, docs/netboot-content.md).
    #[cfg(feature = "assets")]
    #[error(
        "reading the signing key {}: download Flatcar's image-signing key \
         (primary fingerprint {}) from \
         https://www.flatcar.org/security/image-signing-key/ and pass --signing-key FILE \
         or put it there",
        path.display(),
        crate::assets::FLATCAR_KEY_FINGERPRINT
    )]
    SigningKeyFile {
        /// The key file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl ContentError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        ContentError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
