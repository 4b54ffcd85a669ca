//! The inventory error type.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use crate::MacAddr;

/// Everything that can be wrong with the rack metadata, the address plan or
/// a selection. Each variant carries enough context (file, line, column,
/// MAC) for an operator to fix the input without reading code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A credential file is missing.
    #[error("{}: credential file is missing", path.display())]
    CredentialMissing {
        /// The file.
        path: PathBuf,
    },
    /// A credential file is empty.
    #[error("{}: credential file is empty", path.display())]
    CredentialEmpty {
        /// The file.
        path: PathBuf,
    },
    /// nodes.csv has fewer than two lines (a header and one node).
    #[error("{file}: has fewer than two lines (a header line and at least one node are needed)")]
    TooFewLines {
        /// The file.
        file: String,
    },
    /// The first line holds a MAC address: the header is missing.
    #[error(
        "{file}:{line}: the header line contains the MAC address \"{value}\"; the first line must be the header (Primary MAC address, BMC MAC address, Secondary MAC address, Node Type, Comments)"
    )]
    HeaderContainsMac {
        /// The file.
        file: String,
        /// Line number (1-based).
        line: u64,
        /// The MAC found.
        value: String,
    },
    /// A required column is empty or absent.
    #[error("{file}:{line}: \"{column}\" is not set")]
    MissingValue {
        /// The file.
        file: String,
        /// Line number (1-based).
        line: u64,
        /// Column name.
        column: &'static str,
    },
    /// A MAC column holds something that is not a MAC.
    #[error(
        "{file}:{line}: \"{column}\" is set as \"{value}\" and does not look like a MAC address"
    )]
    InvalidMac {
        /// The file.
        file: String,
        /// Line number (1-based).
        line: u64,
        /// Column name.
        column: &'static str,
        /// The offending value.
        value: String,
    },
    /// The node type is itself a MAC (columns shifted).
    #[error(
        "{file}:{line}: \"Node Type\" is set as \"{value}\", which is a MAC address; are the columns shifted?"
    )]
    NodeTypeIsMac {
        /// The file.
        file: String,
        /// Line number (1-based).
        line: u64,
        /// The offending value.
        value: String,
    },
    /// A value contains characters racker refuses (control characters).
    #[error("{file}:{line}: \"{column}\" contains a control character")]
    ControlCharacter {
        /// The file.
        file: String,
        /// Line number (1-based).
        line: u64,
        /// Column name.
        column: &'static str,
    },
    /// A file is larger than racker accepts (e.g. a link to `/dev/zero`).
    #[error("{}: larger than {limit} bytes; is this really the file meant?", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// A text value is longer than racker accepts.
    #[error("{file}:{line}: \"{column}\" is {len} characters long; at most {max} are allowed")]
    ValueTooLong {
        /// The file.
        file: String,
        /// Line number (1-based).
        line: u64,
        /// Column name.
        column: &'static str,
        /// Its length in characters.
        len: usize,
        /// The limit in characters.
        max: usize,
    },
    /// A MAC that cannot belong to a network card (all-zero, broadcast or
    /// multicast).
    #[error("{file}:{line}: \"{column}\" {mac} is {why}, not the address of a network card")]
    UnusableMac {
        /// The file.
        file: String,
        /// Line number (1-based).
        line: u64,
        /// Column name.
        column: &'static str,
        /// The MAC.
        mac: MacAddr,
        /// "all-zero", "the broadcast address" or "a multicast address".
        why: &'static str,
    },
    /// The same MAC appears twice.
    #[error(
        "{file}:{line}: \"{column}\" {mac} is already used on line {first_line} (\"{first_column}\")"
    )]
    DuplicateMac {
        /// The file.
        file: String,
        /// The MAC.
        mac: MacAddr,
        /// Line of the second occurrence.
        line: u64,
        /// Column of the second occurrence.
        column: &'static str,
        /// Line of the first occurrence.
        first_line: u64,
        /// Column of the first occurrence.
        first_column: &'static str,
    },
    /// The CSV itself is malformed (e.g. an unterminated quote).
    #[error("{file}:{line}: malformed CSV: {message}")]
    Csv {
        /// The file.
        file: String,
        /// Line number (1-based).
        line: u64,
        /// What the CSV reader said.
        message: String,
    },
    /// No row belongs to this machine.
    #[error(
        "{file}: no row matches a MAC address of this machine's network interfaces ({interfaces}); the management node must be listed (its secondary MAC names the PXE interface)"
    )]
    NoManagementNode {
        /// The file.
        file: String,
        /// The local interfaces that were compared, `name=mac` comma separated.
        interfaces: String,
    },
    /// More than one row belongs to this machine.
    #[error("{file}: lines {first_line} and {second_line} both match this machine's interfaces")]
    AmbiguousManagementNode {
        /// The file.
        file: String,
        /// First matching line.
        first_line: u64,
        /// Second matching line.
        second_line: u64,
    },
    /// The management row has no secondary MAC.
    #[error(
        "{file}:{line}: the management node needs a \"Secondary MAC address\" (it names the PXE interface on the rack-internal network)"
    )]
    ManagementWithoutSecondary {
        /// The file.
        file: String,
        /// Line of the management row.
        line: u64,
    },
    /// No local interface carries the management node's secondary MAC.
    #[error(
        "{file}:{line}: no local network interface has the management node's secondary MAC {mac}, so the PXE interface cannot be found"
    )]
    PxeInterfaceNotFound {
        /// The file.
        file: String,
        /// Line of the management row.
        line: u64,
        /// The secondary MAC.
        mac: MacAddr,
    },
    /// The subnet prefix is not three dotted octets.
    #[error("subnet prefix \"{value}\" must be three octets such as 172.24.213")]
    InvalidSubnetPrefix {
        /// The value given.
        value: String,
    },
    /// The prefix length is out of range.
    #[error("prefix length {value} is not supported (use 16 to 24)")]
    InvalidPrefixLength {
        /// The value given.
        value: u8,
    },
    /// The subnet prefix is not aligned to the prefix length.
    #[error(
        "{network}/{prefix_len} is not a network address; did you mean {aligned}/{prefix_len}?"
    )]
    UnalignedSubnet {
        /// The network given.
        network: Ipv4Addr,
        /// The prefix length.
        prefix_len: u8,
        /// The aligned network.
        aligned: Ipv4Addr,
    },
    /// Too many nodes for the subnet.
    #[error(
        "{nodes} nodes need {needed} static addresses but {subnet} has room for {available} below the dynamic range; use a larger --prefix-length (e.g. /22)"
    )]
    PlanCapacity {
        /// Number of nodes (management excluded).
        nodes: usize,
        /// Addresses the static plan needs (management included).
        needed: usize,
        /// Addresses available.
        available: usize,
        /// The subnet.
        subnet: String,
    },
    /// An excluded MAC belongs to no node.
    #[error("excluded MAC {mac} does not belong to any node in nodes.csv")]
    UnknownExcludedMac {
        /// The MAC.
        mac: MacAddr,
    },
    /// An excluded MAC is the management node's.
    #[error("excluded MAC {mac} belongs to the management node, which cannot be excluded")]
    ExcludedManagementNode {
        /// The MAC.
        mac: MacAddr,
    },
    /// An exclusion list entry is not a MAC.
    #[error("exclusion list entry \"{value}\" does not look like a MAC address")]
    InvalidExcludedMac {
        /// The value.
        value: String,
    },
    /// The number of controllers is not 1 or 3.
    #[error("the number of controllers must be 1 or 3, not {value}")]
    InvalidControllerCount {
        /// The value given.
        value: usize,
    },
    /// Too few nodes of the controller type.
    #[error(
        "{wanted} controller(s) of node type \"{node_type}\" are needed but only {found} (not excluded) node(s) match"
    )]
    NotEnoughControllers {
        /// Controllers wanted.
        wanted: usize,
        /// Node type asked for.
        node_type: String,
        /// Matching nodes.
        found: usize,
    },
    /// Too few workers of the storage type.
    #[error(
        "{wanted} storage node(s) of node type \"{node_type}\" are needed but only {found} worker(s) match"
    )]
    NotEnoughStorageNodes {
        /// Storage nodes wanted.
        wanted: usize,
        /// Node type asked for.
        node_type: String,
        /// Matching workers.
        found: usize,
    },
    /// A cluster name or domain is not a valid DNS name.
    #[error(
        "{what} \"{value}\" is not valid: use lower-case letters, digits and '-' (and '.' between labels in a domain), starting with a letter or digit"
    )]
    InvalidName {
        /// What was checked ("cluster name", "domain").
        what: &'static str,
        /// The value.
        value: String,
    },
    /// Storage count is neither a number nor `all`.
    #[error("number of storage nodes \"{value}\" must be a positive number or \"all\"")]
    InvalidStorageCount {
        /// The value.
        value: String,
    },
    /// A syntax or value error in the public-IP INI.
    #[error("{file}:{line}: {message}")]
    Ini {
        /// The file.
        file: String,
        /// Line number (1-based).
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// A public-IP INI section names a MAC that is no node's secondary MAC.
    #[error("{file}:{line}: section [{mac}] is not the secondary MAC of any node in nodes.csv")]
    IniUnknownMac {
        /// The file.
        file: String,
        /// Line number (1-based).
        line: u64,
        /// The MAC.
        mac: MacAddr,
    },
    /// A host list (`node-[0-7],00:11:22:33:44:55`) does not parse.
    #[error("host list \"{value}\": {reason}")]
    InvalidHostList {
        /// The text given.
        value: String,
        /// What is wrong.
        reason: String,
    },
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
