//! TFTP packet parsing and encoding (RFC 1350, option extension RFC 2347).

use std::fmt;

/// TFTP opcodes.
const OP_RRQ: u16 = 1;
const OP_WRQ: u16 = 2;
const OP_DATA: u16 = 3;
const OP_ACK: u16 = 4;
const OP_ERROR: u16 = 5;
const OP_OACK: u16 = 6;

/// Largest packet we ever accept or produce (blksize 65464 + 4 header bytes).
pub const MAX_PACKET: usize = 65468;

/// Transfer mode of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `octet`: bytes as they are.
    Octet,
    /// `netascii`: LF becomes CR LF, CR becomes CR NUL.
    Netascii,
}

/// A decoded TFTP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    /// Read request.
    Rrq {
        /// Requested file name (UTF-8, never contains NUL).
        filename: String,
        /// Transfer mode.
        mode: Mode,
        /// Options in request order, names lower-cased.
        options: Vec<(String, String)>,
    },
    /// Write request (always refused by this read-only server).
    Wrq {
        /// Requested file name.
        filename: String,
    },
    /// A data block.
    Data {
        /// Block number.
        block: u16,
        /// Payload.
        data: &'a [u8],
    },
    /// Acknowledgement of a block (0 acknowledges an OACK).
    Ack {
        /// Block number.
        block: u16,
    },
    /// An error sent by the peer.
    Error {
        /// Error code.
        code: u16,
        /// Message.
        message: String,
    },
    /// Option acknowledgement.
    Oack {
        /// Accepted options.
        options: Vec<(String, String)>,
    },
}

/// Why a datagram is not a valid TFTP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketError {
    /// Fewer than the 2 opcode bytes or a truncated header.
    Truncated,
    /// Opcode outside 1..=6.
    UnknownOpcode(u16),
    /// A string field without its terminating NUL.
    Unterminated,
    /// A string field that is not UTF-8.
    NotUtf8,
    /// A mode other than octet/netascii (mail is obsolete).
    UnsupportedMode(String),
    /// An option name without a value.
    DanglingOption(String),
    /// The same option given twice.
    DuplicateOption(String),
    /// An empty file name.
    EmptyFilename,
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketError::Truncated => write!(f, "truncated packet"),
            PacketError::UnknownOpcode(op) => write!(f, "unknown opcode {op}"),
            PacketError::Unterminated => write!(f, "string field without NUL terminator"),
            PacketError::NotUtf8 => write!(f, "string field is not UTF-8"),
            PacketError::UnsupportedMode(m) => write!(f, "unsupported transfer mode {m:?}"),
            PacketError::DanglingOption(o) => write!(f, "option {o:?} has no value"),
            PacketError::DuplicateOption(o) => write!(f, "option {o:?} given twice"),
            PacketError::EmptyFilename => write!(f, "empty file name"),
        }
    }
}

/// TFTP error codes (RFC 1350 + RFC 2347).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum ErrorCode {
    /// Not defined, see message.
    NotDefined = 0,
    /// File not found.
    FileNotFound = 1,
    /// Access violation.
    AccessViolation = 2,
    /// Illegal TFTP operation.
    IllegalOperation = 4,
    /// Unknown transfer ID.
    UnknownTransferId = 5,
    /// Option negotiation refused.
    OptionRefused = 8,
}

fn be16(buf: &[u8], at: usize) -> Result<u16, PacketError> {
    match (buf.get(at), buf.get(at + 1)) {
        (Some(&a), Some(&b)) => Ok(u16::from_be_bytes([a, b])),
        _ => Err(PacketError::Truncated),
    }
}

/// Split NUL-terminated strings; every field must be terminated.
fn strings(mut rest: &[u8]) -> Result<Vec<String>, PacketError> {
    let mut out = Vec::new();
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(PacketError::Unterminated)?;
        let (field, tail) = rest.split_at(end);
        let field = std::str::from_utf8(field).map_err(|_| PacketError::NotUtf8)?;
        out.push(field.to_owned());
        rest = tail.get(1..).unwrap_or_default();
    }
    Ok(out)
}

fn options(fields: &[String]) -> Result<Vec<(String, String)>, PacketError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for pair in fields.chunks(2) {
        match pair {
            [name, value] => {
                let name = name.to_ascii_lowercase();
                if out.iter().any(|(n, _)| *n == name) {
                    return Err(PacketError::DuplicateOption(name));
                }
                out.push((name, value.clone()));
            }
            [name] => return Err(PacketError::DanglingOption(name.clone())),
            _ => {}
        }
    }
    Ok(out)
}

impl<'a> Packet<'a> {
    /// Decode one datagram. Never panics, whatever the bytes.
    pub fn parse(buf: &'a [u8]) -> Result<Packet<'a>, PacketError> {
        let op = be16(buf, 0)?;
        let body = buf.get(2..).unwrap_or_default();
        match op {
            OP_RRQ | OP_WRQ => {
                let fields = strings(body)?;
                let (filename, mode) = match fields.as_slice() {
                    [f, m, ..] => (f.clone(), m.to_ascii_lowercase()),
                    _ => return Err(PacketError::Truncated),
                };
                if filename.is_empty() {
                    return Err(PacketError::EmptyFilename);
                }
                let mode = match mode.as_str() {
                    "octet" => Mode::Octet,
                    "netascii" => Mode::Netascii,
                    _ => return Err(PacketError::UnsupportedMode(mode)),
                };
                if op == OP_WRQ {
                    return Ok(Packet::Wrq { filename });
                }
                let options = options(fields.get(2..).unwrap_or_default())?;
                Ok(Packet::Rrq {
                    filename,
                    mode,
                    options,
                })
            }
            OP_DATA => Ok(Packet::Data {
                block: be16(buf, 2)?,
                data: buf.get(4..).unwrap_or_default(),
            }),
            OP_ACK => Ok(Packet::Ack {
                block: be16(buf, 2)?,
            }),
            OP_ERROR => {
                let code = be16(buf, 2)?;
                let rest = buf.get(4..).unwrap_or_default();
                // Be lenient with peers that forget the terminating NUL.
                let text = rest.split(|&b| b == 0).next().unwrap_or_default();
                Ok(Packet::Error {
                    code,
                    message: String::from_utf8_lossy(text).into_owned(),
                })
            }
            OP_OACK => Ok(Packet::Oack {
                options: options(&strings(body)?)?,
            }),
            other => Err(PacketError::UnknownOpcode(other)),
        }
    }

    /// Encode into a new buffer.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Packet::Rrq {
                filename,
                mode,
                options,
            } => {
                out.extend_from_slice(&OP_RRQ.to_be_bytes());
                push_str(&mut out, filename);
                push_str(
                    &mut out,
                    match mode {
                        Mode::Octet => "octet",
                        Mode::Netascii => "netascii",
                    },
                );
                for (n, v) in options {
                    push_str(&mut out, n);
                    push_str(&mut out, v);
                }
            }
            Packet::Wrq { filename } => {
                out.extend_from_slice(&OP_WRQ.to_be_bytes());
                push_str(&mut out, filename);
                push_str(&mut out, "octet");
            }
            Packet::Data { block, data } => encode_data(&mut out, *block, data),
            Packet::Ack { block } => {
                out.extend_from_slice(&OP_ACK.to_be_bytes());
                out.extend_from_slice(&block.to_be_bytes());
            }
            Packet::Error { code, message } => {
                out.extend_from_slice(&OP_ERROR.to_be_bytes());
                out.extend_from_slice(&code.to_be_bytes());
                push_str(&mut out, message);
            }
            Packet::Oack { options } => {
                out.extend_from_slice(&OP_OACK.to_be_bytes());
                for (n, v) in options {
                    push_str(&mut out, n);
                    push_str(&mut out, v);
                }
            }
        }
        out
    }
}

/// Strings must not contain NUL; any NUL is dropped so the frame stays valid.
fn push_str(out: &mut Vec<u8>, s: &str) {
    out.extend(s.bytes().filter(|&b| b != 0));
    out.push(0);
}

/// Write a DATA packet header and payload into `out` (cleared first).
pub fn encode_data(out: &mut Vec<u8>, block: u16, data: &[u8]) {
    out.clear();
    out.extend_from_slice(&OP_DATA.to_be_bytes());
    out.extend_from_slice(&block.to_be_bytes());
    out.extend_from_slice(data);
}

/// An ERROR packet.
pub fn error_packet(code: ErrorCode, message: &str) -> Vec<u8> {
    Packet::Error {
        code: code as u16,
        message: message.to_owned(),
    }
    .encode()
}

/// Convert octets to netascii: LF → CR LF, CR → CR NUL.
pub fn netascii_encode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + input.len() / 16);
    for &b in input {
        match b {
            b'\n' => out.extend_from_slice(b"\r\n"),
            b'\r' => out.extend_from_slice(b"\r\0"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrq_round_trip_with_options() {
        let p = Packet::Rrq {
            filename: "undionly.kpxe".into(),
            mode: Mode::Octet,
            options: vec![
                ("blksize".into(), "1468".into()),
                ("tsize".into(), "0".into()),
            ],
        };
        let bytes = p.encode();
        assert_eq!(&bytes[..2], &[0, 1]);
        assert_eq!(Packet::parse(&bytes).unwrap(), p);
    }

    #[test]
    fn options_are_case_insensitive_and_unique() {
        let raw = b"\x00\x01f\x00OCTET\x00BlkSize\x00512\x00";
        match Packet::parse(raw).unwrap() {
            Packet::Rrq { mode, options, .. } => {
                assert_eq!(mode, Mode::Octet);
                assert_eq!(options, vec![("blksize".into(), "512".into())]);
            }
            other => panic!("{other:?}"),
        }
        let dup = b"\x00\x01f\x00octet\x00blksize\x00512\x00BLKSIZE\x001024\x00";
        assert_eq!(
            Packet::parse(dup),
            Err(PacketError::DuplicateOption("blksize".into()))
        );
    }

    #[test]
    fn malformed_requests_are_errors() {
        assert_eq!(Packet::parse(b""), Err(PacketError::Truncated));
        assert_eq!(Packet::parse(b"\x00"), Err(PacketError::Truncated));
        assert_eq!(
            Packet::parse(b"\x00\x09"),
            Err(PacketError::UnknownOpcode(9))
        );
        assert_eq!(
            Packet::parse(b"\x00\x01file"),
            Err(PacketError::Unterminated)
        );
        assert_eq!(
            Packet::parse(b"\x00\x01\x00octet\x00"),
            Err(PacketError::EmptyFilename)
        );
        assert_eq!(
            Packet::parse(b"\x00\x01f\x00mail\x00"),
            Err(PacketError::UnsupportedMode("mail".into()))
        );
        assert_eq!(
            Packet::parse(b"\x00\x01f\x00octet\x00blksize\x00"),
            Err(PacketError::DanglingOption("blksize".into()))
        );
    }

    #[test]
    fn data_ack_error_decode() {
        assert_eq!(
            Packet::parse(b"\x00\x03\x00\x07abc").unwrap(),
            Packet::Data {
                block: 7,
                data: b"abc"
            }
        );
        assert_eq!(
            Packet::parse(b"\x00\x04\xff\xff").unwrap(),
            Packet::Ack { block: 65535 }
        );
        assert_eq!(
            Packet::parse(&error_packet(ErrorCode::FileNotFound, "nope")).unwrap(),
            Packet::Error {
                code: 1,
                message: "nope".into()
            }
        );
    }

    #[test]
    fn netascii_conversion() {
        assert_eq!(netascii_encode(b"a\nb\rc"), b"a\r\nb\r\0c");
    }
}
