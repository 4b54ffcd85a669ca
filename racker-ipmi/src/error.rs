//! The crate's error type.

use std::time::Duration;

/// Everything that can go wrong talking to a BMC. Every variant names the
/// BMC (`host:port`) it concerns so a fan-out over a rack reports which
/// node failed and why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No answer within the configured timeout (after all retransmissions).
    #[error("{bmc}: no answer to {stage} within {after:?} ({attempts} attempts)")]
    Timeout {
        /// The BMC.
        bmc: String,
        /// What was being waited for (e.g. "Open Session", "Get Chassis Status").
        stage: &'static str,
        /// Total time waited.
        after: Duration,
        /// Number of packets sent.
        attempts: u32,
    },
    /// The BMC rejected the user name or password (or we rejected the BMC's
    /// proof of knowing the password).
    #[error("{bmc}: authentication failed: {reason}")]
    Authentication {
        /// The BMC.
        bmc: String,
        /// Human-readable reason (RAKP status or HMAC mismatch).
        reason: String,
    },
    /// None of the requested cipher suites is accepted by the BMC.
    #[error("{bmc}: no common cipher suite (tried {tried:?})")]
    NoCipherSuite {
        /// The BMC.
        bmc: String,
        /// The suites that were offered.
        tried: Vec<u8>,
    },
    /// The BMC does not speak IPMI 2.0 / RMCP+.
    #[error("{bmc}: BMC does not support IPMI 2.0 (RMCP+)")]
    NotIpmi20 {
        /// The BMC.
        bmc: String,
    },
    /// An RMCP+ handshake message came back with an error status.
    #[error("{bmc}: {stage} failed with status {status:#04x} ({})", crate::codec::rakp_status_text(*status))]
    Handshake {
        /// The BMC.
        bmc: String,
        /// Handshake stage.
        stage: &'static str,
        /// RMCP+ status code.
        status: u8,
    },
    /// An IPMI command completed with a non-zero completion code.
    #[error("{bmc}: {command} failed with completion code {code:#04x} ({})", crate::codec::completion_code_text(*code))]
    CompletionCode {
        /// The BMC.
        bmc: String,
        /// The command, e.g. "Chassis Control".
        command: String,
        /// The completion code.
        code: u8,
    },
    /// A reply was too short or otherwise not what the command defines.
    #[error("{bmc}: malformed reply to {command}: {detail}")]
    Malformed {
        /// The BMC.
        bmc: String,
        /// The command.
        command: String,
        /// What was wrong.
        detail: String,
    },
    /// A socket operation failed.
    #[error("{bmc}: {op}: {source}")]
    Io {
        /// The BMC.
        bmc: String,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The host name did not resolve to an IPv4 or IPv6 address.
    #[error("{bmc}: cannot resolve address")]
    Resolve {
        /// The BMC as given.
        bmc: String,
    },
    /// The session is not established (closed, failed or still in handshake).
    #[error("{bmc}: session is not active")]
    NotActive {
        /// The BMC.
        bmc: String,
    },
    /// A caller-supplied value is out of range (user id, name length...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl Error {
    /// True for failures worth a fresh session (timeouts, dropped sessions).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// The BMC this error concerns, if any.
    pub fn bmc(&self) -> Option<&str> {
        match self {
            Error::Timeout { bmc, .. }
            | Error::Authentication { bmc, .. }
            | Error::NoCipherSuite { bmc, .. }
            | Error::NotIpmi20 { bmc }
            | Error::Handshake { bmc, .. }
            | Error::CompletionCode { bmc, .. }
            | Error::Malformed { bmc, .. }
            | Error::Io { bmc, .. }
            | Error::Resolve { bmc }
            | Error::NotActive { bmc } => Some(bmc),
            Error::InvalidArgument(_) => None,
        }
    }

    /// A short machine-readable kind, for JSON output.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Timeout { .. } => "timeout",
            Error::Authentication { .. } => "authentication",
            Error::NoCipherSuite { .. } => "no-cipher-suite",
            Error::NotIpmi20 { .. } => "not-ipmi20",
            Error::Handshake { .. } => "handshake",
            Error::CompletionCode { .. } => "completion-code",
            Error::Malformed { .. } => "malformed",
            Error::Io { .. } => "io",
            Error::Resolve { .. } => "resolve",
            Error::NotActive { .. } => "not-active",
            Error::InvalidArgument(_) => "invalid-argument",
        }
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
