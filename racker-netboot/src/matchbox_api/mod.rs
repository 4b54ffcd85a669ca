//! A matchbox-compatible gRPC API (feature `grpc`).
//!
//! Lokomotive's bare-metal platform (lokoctl v0.9, through Terraform and
//! terraform-provider-matchbox) stores its machine profiles, groups and
//! Ignition configs in matchbox over gRPC with TLS client certificates.
//! This module serves the same API, compiled from matchbox's own protos
//! (`proto/`): the services `Profiles`, `Groups` (put, get, delete, list),
//! `Ignition`, `Generic` (put, get, delete) and `Select`, over TLS that
//! requires a client certificate signed by racker's CA ([`CertPaths`]).
//!
//! What is stored ([`Store`], files under `<state-dir>/matchbox/`) is
//! served by racker's HTTP boot endpoints through [`crate::http::BootHook`]
//! with matchbox's rules: the most specific group whose selectors all match
//! the request's labels ([`select`]), its profile's iPXE script, raw
//! Ignition as stored and templates with the group's metadata substituted
//! ([`render`]). See docs/lokomotive.md.
//!
//! ```
//! use std::collections::BTreeMap;
//! use racker_netboot::matchbox_api::{Group, render, select, template_data};
//!
//! let group = Group {
//!     id: "node1".into(),
//!     profile: "worker".into(),
//!     selector: BTreeMap::from([("mac".into(), "52:54:00:00:00:01".into())]),
//!     metadata: serde_json::json!({"hostname": "node1"}).as_object().unwrap().clone(),
//!     ..Group::default()
//! };
//! let labels = BTreeMap::from([("mac".to_owned(), "52:54:00:00:00:01".to_owned())]);
//! let chosen = select([&group], &labels).unwrap();
//! let data = template_data(chosen, &labels, "mac=52:54:00:00:00:01");
//! assert_eq!(render("name={{.hostname}}", &data).unwrap(), "name=node1");
//! ```

mod grpc;
mod model;
mod select;
mod store;
mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use grpc::GrpcServer;
pub use model::{Group, NetBoot, Profile};
pub use select::{metadata_text, render, select, template_data};
pub use store::{Contents, Store, TemplateKind, check_name, normalize_group};
pub use tls::{CertPaths, GeneratedCerts, generate};

/// Default port of the gRPC API (matchbox's, and what `baremetal.lokocfg`
/// points at).
pub const DEFAULT_GRPC_PORT: u16 = 8081;

/// The store directory under a state directory.
pub fn store_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("matchbox")
}

/// Errors of the matchbox API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MatchboxApiError {
    /// A file could not be read or written.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A stored object is not valid JSON.
    #[error("{}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// A value sent by a client is not acceptable.
    #[error("{what} {value:?} is not valid: {reason}")]
    Invalid {
        /// Which value.
        what: &'static str,
        /// The value.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// A template could not be rendered.
    #[error("template: {reason}")]
    Template {
        /// Why.
        reason: String,
    },
    /// Certificates could not be made or loaded.
    #[error("TLS: {reason}")]
    Tls {
        /// Why.
        reason: String,
    },
    /// The listening socket could not be bound.
    #[error("binding the matchbox gRPC API on {addr}: {source}")]
    Socket {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The server stopped with an error.
    #[error("serving the matchbox gRPC API on {addr}: {reason}")]
    Serve {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
}

impl MatchboxApiError {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }
}
