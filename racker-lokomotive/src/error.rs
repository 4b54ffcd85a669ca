//! The rendering error type.

use std::path::PathBuf;

use racker_inventory::MacAddr;

/// Everything that can stop a render, an exclusion or writing the result.
/// Variants name the offending value (and node) so an operator can fix the
/// input without reading code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// A choice or inventory value is not acceptable in the rendered files.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidValue {
        /// Which value (e.g. "cluster name", "node type of 00:11:22:33:44:10").
        what: String,
        /// The value as given.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// No node takes part in the cluster.
    #[error("no node left to render: every node is excluded")]
    NoNodes,
    /// A Lokomotive cluster without a controller.
    #[error("a Lokomotive cluster needs at least one controller")]
    NoController,
    /// No SSH public key was given.
    #[error("at least one SSH public key is needed so the nodes can be reached")]
    NoSshKey,
    /// Two nodes ended up with the same name or address.
    #[error("{what} {value} is used by two nodes")]
    Duplicate {
        /// "host name", "internal address" or "MAC".
        what: &'static str,
        /// The duplicated value.
        value: String,
    },
    /// A static public address names a secondary MAC that no active node has.
    #[error("public address section [{mac}] matches no node's secondary MAC")]
    UnknownPublicMac {
        /// The MAC of the section.
        mac: MacAddr,
    },
    /// The MAC to exclude is not part of the rendered cluster.
    #[error("{mac} is not a node of the rendered cluster (already excluded or unknown)")]
    NotInCluster {
        /// The MAC.
        mac: MacAddr,
    },
    /// Excluding the node would leave the cluster without any node or
    /// controller.
    #[error("cannot exclude {mac}: {reason}")]
    CannotExclude {
        /// The MAC.
        mac: MacAddr,
        /// Why.
        reason: &'static str,
    },
    /// A rendered file was edited by hand and exclusion would overwrite it.
    #[error(
        "{} was changed since it was rendered; exclusion would overwrite the change (use --force to overwrite)",
        path.display()
    )]
    ModifiedFile {
        /// The file (relative to the cluster directory).
        path: PathBuf,
    },
    /// The cluster manifest is missing or unreadable.
    #[error("{}: not a rendered cluster directory: {reason}", path.display())]
    BadManifest {
        /// The manifest path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A template failed to render (a bug in a template or a value the
    /// escaping refused).
    #[error("rendering {template}: {source}")]
    Template {
        /// The template name.
        template: String,
        /// The template engine's error.
        source: minijinja::Error,
    },
    /// Building JSON failed.
    #[error("encoding {what} as JSON: {source}")]
    Json {
        /// What was encoded.
        what: String,
        /// The serde error.
        source: serde_json::Error,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl RenderError {
    pub(crate) fn invalid(
        what: impl Into<String>,
        value: impl Into<String>,
        reason: &'static str,
    ) -> Self {
        Self::InvalidValue {
            what: what.into(),
            value: value.into(),
            reason,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
