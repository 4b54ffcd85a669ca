//! The one error type of this crate.

use std::path::PathBuf;

use crate::digest::Sha256Digest;
use crate::install::Stage;

/// Everything that can go wrong while building, fetching or installing a
/// release. Every variant carries the file, URL or version it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A filesystem operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done ("read", "create directory", "rename"...).
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The installer definition is not valid TOML or misses a field.
    #[error("installer definition {}: {message}", path.display())]
    DefinitionParse {
        /// The definition file.
        path: PathBuf,
        /// What the TOML parser said.
        message: String,
    },
    /// The installer definition parses but says something impossible.
    #[error("installer definition {}: {reason}", path.display())]
    DefinitionInvalid {
        /// The definition file.
        path: PathBuf,
        /// Which module/asset/step is wrong and why.
        reason: String,
    },
    /// A SHA-256 digest string is malformed.
    #[error("invalid SHA-256 digest {text:?}: expected 64 hexadecimal digits")]
    InvalidDigest {
        /// The offending text.
        text: String,
    },
    /// Content does not have the SHA-256 it was pinned to.
    #[error("checksum mismatch for {what}: expected sha256 {expected}, got {actual}")]
    ChecksumMismatch {
        /// The file or URL that was checked.
        what: String,
        /// The pinned digest.
        expected: Sha256Digest,
        /// The digest of what was actually read.
        actual: Sha256Digest,
    },
    /// An archive entry would write outside the destination or is of a
    /// refused kind (tar-slip protection).
    #[error("refusing archive entry {entry:?}: {reason}")]
    UnsafeArchiveEntry {
        /// The entry's path as stored in the archive.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// The archive is not a readable gzip-compressed tar stream.
    #[error("corrupt archive {what}: {source}")]
    CorruptArchive {
        /// The archive.
        what: String,
        /// The tar/gzip error.
        source: std::io::Error,
    },
    /// A tree to archive holds something other than files, directories and
    /// relative symlinks.
    #[error("cannot archive {}: {reason}", path.display())]
    Unarchivable {
        /// The offending path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A release tree lacks a file every release must have.
    #[error("release {what} lacks {missing}")]
    IncompleteRelease {
        /// The archive or tree.
        what: String,
        /// The missing file (e.g. `bin/racker`, `RACKER_VERSION`).
        missing: &'static str,
    },
    /// `RACKER_VERSION` holds something that is not a semantic version.
    #[error("{what}: invalid version {text:?}: {source}")]
    InvalidVersion {
        /// Where the version was read.
        what: String,
        /// The text.
        text: String,
        /// The parser's complaint.
        source: semver::Error,
    },
    /// The archive carries another version than the index promised.
    #[error("archive {what} holds version {found}, the release index says {expected}")]
    VersionMismatch {
        /// The archive.
        what: String,
        /// Version from the index.
        expected: semver::Version,
        /// Version found in `RACKER_VERSION`.
        found: semver::Version,
    },
    /// A URL could not be parsed or has a scheme we do not fetch.
    #[error("unsupported URL {url:?}: {reason}")]
    BadUrl {
        /// The URL text.
        url: String,
        /// Why.
        reason: String,
    },
    /// An HTTP request failed before a response arrived (unreachable host,
    /// refused connection, TLS failure...).
    #[error("cannot fetch {url}: {source}")]
    Http {
        /// The URL.
        url: String,
        /// The client error.
        source: reqwest::Error,
    },
    /// The server answered with a non-success status.
    #[error("cannot fetch {url}: HTTP status {status}")]
    HttpStatus {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// A fetched document exceeded the size we accept for it.
    #[error("{url} is larger than {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// The release index is not the JSON we expect.
    #[error("release index {url} is invalid: {source}")]
    IndexParse {
        /// The index URL.
        url: String,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// A `.sha256` file does not start with a digest.
    #[error("checksum file {url} does not start with a SHA-256 digest")]
    BadChecksumFile {
        /// The checksum file.
        url: String,
    },
    /// The requested version is not in the index for this architecture.
    #[error("version {version} is not in the release index for {arch}")]
    UnknownVersion {
        /// Requested version.
        version: semver::Version,
        /// Architecture.
        arch: String,
    },
    /// The index has no release at all for this architecture.
    #[error("the release index has no release for {arch}")]
    NoRelease {
        /// Architecture.
        arch: String,
    },
    /// Nothing is installed under the prefix (update/rollback need it).
    #[error("racker is not installed under {}", prefix.display())]
    NotInstalled {
        /// The install prefix.
        prefix: PathBuf,
    },
    /// Another install, update or rollback holds the prefix's lock.
    #[error("another racker install, update or rollback is running on {} (lock {} is held); wait for it to finish", prefix.display(), lock.display())]
    Busy {
        /// The install prefix.
        prefix: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// `rollback` without a kept previous version.
    #[error("no previous version is kept under {} to roll back to", prefix.display())]
    NoPrevious {
        /// The install prefix.
        prefix: PathBuf,
    },
    /// A build step or git could not be started.
    #[error("cannot run {argv:?} (module {module}): {source}")]
    Spawn {
        /// Module the step belongs to.
        module: String,
        /// The argument vector.
        argv: Vec<String>,
        /// The spawn error.
        source: std::io::Error,
    },
    /// A build step or git exited unsuccessfully.
    #[error("{argv:?} (module {module}) failed: {status}")]
    StepFailed {
        /// Module the step belongs to.
        module: String,
        /// The argument vector.
        argv: Vec<String>,
        /// Exit status.
        status: std::process::ExitStatus,
    },
    /// A git checkout is not at the pinned commit.
    #[error("git source {url} at {tag} is commit {found}, pinned {expected}")]
    GitCommitMismatch {
        /// Repository.
        url: String,
        /// Tag.
        tag: String,
        /// Pinned commit.
        expected: String,
        /// Commit found.
        found: String,
    },
    /// `systemctl` could not be run or failed.
    #[error("systemctl {args:?}: {reason}")]
    Systemctl {
        /// Its arguments.
        args: Vec<String>,
        /// What went wrong.
        reason: String,
    },
    /// The install was stopped on purpose at a stage (see
    /// [`crate::Installer::stop_at`]), leaving the disk as a crash would.
    #[error("install interrupted after stage {0:?}")]
    Interrupted(Stage),
    /// No checksum was given and none is published beside the archive.
    #[error("no checksum for {url}: pass --sha256 or publish {sidecar}")]
    NoChecksum {
        /// The archive.
        url: String,
        /// Where its checksum was looked for.
        sidecar: String,
        /// Why it could not be fetched.
        #[source]
        source: Box<Error>,
    },
    /// The release index could not be fetched.
    #[error("release index {url} unreachable")]
    IndexUnreachable {
        /// The index URL.
        url: String,
        /// Why.
        #[source]
        source: Box<Error>,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attach path context to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, op: &'static str, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        })
    }
}
