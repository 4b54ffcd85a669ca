//! RMCP / ASF / IPMI 1.5 / RMCP+ framing, sealing and opening of session
//! packets, and IPMI LAN messages (IPMI 2.0 §13, docs/ipmi.md). No IO.

use super::crypto::{SessionKeys, ct_eq};

/// RMCP header for IPMI class messages: version 6, reserved, no ACK, class 7.
pub const RMCP_HEADER: [u8; 4] = [0x06, 0x00, 0xFF, 0x07];
/// Address of the BMC on the IPMB.
pub const BMC_ADDR: u8 = 0x20;
/// The remote console's software id.
pub const CONSOLE_ADDR: u8 = 0x81;

/// RMCP+ payload types (bits 5:0 of the payload type byte).
pub mod payload {
    /// IPMI message.
    pub const IPMI: u8 = 0x00;
    /// Serial over LAN.
    pub const SOL: u8 = 0x01;
    /// OEM explicit (not served).
    pub const OEM: u8 = 0x02;
    /// RMCP+ Open Session Request.
    pub const OPEN_SESSION_REQUEST: u8 = 0x10;
    /// RMCP+ Open Session Response.
    pub const OPEN_SESSION_RESPONSE: u8 = 0x11;
    /// RAKP Message 1.
    pub const RAKP1: u8 = 0x12;
    /// RAKP Message 2.
    pub const RAKP2: u8 = 0x13;
    /// RAKP Message 3.
    pub const RAKP3: u8 = 0x14;
    /// RAKP Message 4.
    pub const RAKP4: u8 = 0x15;
    /// Payload type bit: the payload is encrypted.
    pub const ENCRYPTED: u8 = 0x80;
    /// Payload type bit: the packet carries an integrity trailer.
    pub const AUTHENTICATED: u8 = 0x40;
}

/// IPMI completion codes (IPMI 2.0 table 5-2).
pub mod cc {
    /// Command completed normally.
    pub const OK: u8 = 0x00;
    /// First command-specific code (0x80..=0xBE).
    pub const COMMAND_SPECIFIC_80: u8 = 0x80;
    /// Command-specific code 0x81.
    pub const COMMAND_SPECIFIC_81: u8 = 0x81;
    /// Command-specific code 0x82.
    pub const COMMAND_SPECIFIC_82: u8 = 0x82;
    /// Command-specific code 0x87 (Close Session: invalid session id).
    pub const INVALID_SESSION_ID: u8 = 0x87;
    /// Node busy.
    pub const NODE_BUSY: u8 = 0xC0;
    /// Invalid command (also the answer to a response netFn).
    pub const INVALID_COMMAND: u8 = 0xC1;
    /// Request data length invalid.
    pub const REQUEST_DATA_LENGTH_INVALID: u8 = 0xC7;
    /// Parameter out of range.
    pub const PARAMETER_OUT_OF_RANGE: u8 = 0xC9;
    /// Invalid data field in request.
    pub const INVALID_DATA_FIELD: u8 = 0xCC;
    /// Cannot execute duplicated request.
    pub const DUPLICATED_REQUEST: u8 = 0xCF;
    /// Insufficient privilege level.
    pub const INSUFFICIENT_PRIVILEGE: u8 = 0xD4;
    /// Command not supported in present state.
    pub const NOT_IN_PRESENT_STATE: u8 = 0xD5;
    /// Unspecified error.
    pub const UNSPECIFIED: u8 = 0xFF;
}

/// RMCP+ handshake status codes (IPMI 2.0 table 13-15).
pub mod status {
    /// No errors.
    pub const OK: u8 = 0x00;
    /// Insufficient resources to create a session.
    pub const INSUFFICIENT_RESOURCES: u8 = 0x01;
    /// Invalid session ID.
    pub const INVALID_SESSION_ID: u8 = 0x02;
    /// Invalid role.
    pub const INVALID_ROLE: u8 = 0x09;
    /// Unauthorized role or privilege level requested.
    pub const UNAUTHORIZED_ROLE: u8 = 0x0A;
    /// Invalid name length.
    pub const INVALID_NAME_LENGTH: u8 = 0x0C;
    /// Unauthorized name.
    pub const UNAUTHORIZED_NAME: u8 = 0x0D;
    /// Invalid integrity check value.
    pub const INVALID_INTEGRITY_CHECK: u8 = 0x0F;
    /// No cipher suite match with proposed security algorithms.
    pub const NO_CIPHER_SUITE_MATCH: u8 = 0x11;
    /// Illegal or unrecognized parameter.
    pub const ILLEGAL_PARAMETER: u8 = 0x12;
}

/// Two's complement checksum: the bytes plus the checksum sum to zero.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |acc, b| acc.wrapping_add(*b))
        .wrapping_neg()
}

fn le32(b: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(..4)?.try_into().ok()?))
}

/// Encode an IPMI LAN request message from the remote console to the BMC
/// (rsAddr … checksum 2).
pub fn encode_request(netfn: u8, cmd: u8, rq_seq: u8, data: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(7 + data.len());
    m.push(BMC_ADDR);
    m.push(netfn << 2);
    m.push(checksum(&m[0..2]));
    m.push(CONSOLE_ADDR);
    m.push((rq_seq & 0x3F) << 2);
    m.push(cmd);
    m.extend_from_slice(data);
    m.push(checksum(&m[3..]));
    m
}

/// A decoded IPMI LAN request message (what the BMC receives).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanRequest<'a> {
    /// Responder (BMC) address.
    pub rs_addr: u8,
    /// Network function.
    pub netfn: u8,
    /// Responder LUN.
    pub rs_lun: u8,
    /// Requester address.
    pub rq_addr: u8,
    /// Requester sequence number.
    pub rq_seq: u8,
    /// Requester LUN.
    pub rq_lun: u8,
    /// Command.
    pub cmd: u8,
    /// Request data.
    pub data: &'a [u8],
}

/// Decode an IPMI LAN request, verifying both checksums; `None` when malformed.
pub fn decode_request(m: &[u8]) -> Option<LanRequest<'_>> {
    if m.len() < 7 {
        return None;
    }
    let last = m.len() - 1;
    if checksum(&m[..2]) != m[2] || checksum(&m[3..last]) != m[last] {
        return None;
    }
    Some(LanRequest {
        rs_addr: m[0],
        netfn: m[1] >> 2,
        rs_lun: m[1] & 3,
        rq_addr: m[3],
        rq_seq: m[4] >> 2,
        rq_lun: m[4] & 3,
        cmd: m[5],
        data: &m[6..last],
    })
}

impl LanRequest<'_> {
    /// The response message to this request with completion code `cc`.
    pub fn response(&self, cc: u8, data: &[u8]) -> Vec<u8> {
        let mut m = Vec::with_capacity(8 + data.len());
        m.push(self.rq_addr);
        m.push(((self.netfn | 1) << 2) | self.rq_lun);
        m.push(checksum(&m));
        m.push(self.rs_addr);
        m.push((self.rq_seq << 2) | self.rs_lun);
        m.push(self.cmd);
        m.push(cc);
        m.extend_from_slice(data);
        let c = checksum(&m[3..]);
        m.push(c);
        m
    }
}

/// A decoded IPMI LAN response message (what the console receives).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanResponse {
    /// Network function (the request's + 1).
    pub netfn: u8,
    /// Requester sequence number echoed.
    pub rq_seq: u8,
    /// Command.
    pub cmd: u8,
    /// Completion code.
    pub completion_code: u8,
    /// Data after the completion code.
    pub data: Vec<u8>,
}

/// Decode an IPMI LAN response message; `None` when malformed.
pub fn decode_response(m: &[u8]) -> Option<LanResponse> {
    if m.len() < 8 {
        return None;
    }
    let last = m.len() - 1;
    if checksum(&m[0..2]) != m[2] || checksum(&m[3..last]) != m[last] {
        return None;
    }
    Some(LanResponse {
        netfn: m[1] >> 2,
        rq_seq: m[4] >> 2,
        cmd: m[5],
        completion_code: m[6],
        data: m[7..last].to_vec(),
    })
}

/// A datagram split into its framing layers. Nothing is trusted yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    /// ASF presence ping; `tag` must be echoed in the pong.
    AsfPing {
        /// Message tag.
        tag: u8,
    },
    /// IPMI 1.5 session wrapper.
    V15 {
        /// Authentication type (0 = none).
        auth_type: u8,
        /// Session id (0 outside a session).
        session_id: u32,
        /// The IPMI message.
        message: &'a [u8],
    },
    /// IPMI 2.0 / RMCP+ session wrapper.
    V20(V20Packet<'a>),
}

/// An RMCP+ packet as received, before integrity checking and decryption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V20Packet<'a> {
    /// Payload type (bits 5:0).
    pub payload_type: u8,
    /// The payload is encrypted.
    pub encrypted: bool,
    /// The packet carries an integrity trailer.
    pub authenticated: bool,
    /// Session id of the receiver.
    pub session_id: u32,
    /// Session sequence number.
    pub sequence: u32,
    /// Payload as sent (still encrypted when `encrypted`).
    pub payload: &'a [u8],
    /// AuthType … Next Header: what the AuthCode covers (empty when not authenticated).
    pub signed: &'a [u8],
    /// The AuthCode (empty when not authenticated).
    pub auth_code: &'a [u8],
}

/// Split a datagram into its framing layers; `None` for anything that is
/// not a well-formed RMCP frame this crate handles.
pub fn parse(d: &[u8]) -> Option<Frame<'_>> {
    if d.len() < 5 || d[0] != 0x06 || d[1] != 0x00 {
        return None;
    }
    match d[3] {
        // ASF class
        0x06 => {
            let asf = d.get(4..12)?;
            if asf[..4] != [0x00, 0x00, 0x11, 0xBE] || asf[4] != 0x80 {
                return None;
            }
            Some(Frame::AsfPing { tag: asf[5] })
        }
        // IPMI class
        0x07 => {
            let body = &d[4..];
            let auth_type = body[0];
            if auth_type == 0x06 {
                return parse_v20(body).map(Frame::V20);
            }
            // 1.5: authtype, seq(4), session id(4), [authcode 16], len, msg
            let session_id = le32(body.get(5..9)?)?;
            let off = if auth_type != 0 { 9 + 16 } else { 9 };
            let len = usize::from(*body.get(off)?);
            let message = body.get(off + 1..off + 1 + len)?;
            Some(Frame::V15 {
                auth_type,
                session_id,
                message,
            })
        }
        _ => None,
    }
}

fn parse_v20(body: &[u8]) -> Option<V20Packet<'_>> {
    let ptype = *body.get(1)?;
    let payload_type = ptype & 0x3F;
    if payload_type == payload::OEM {
        // OEM explicit payloads carry extra header fields; not handled.
        return None;
    }
    let authenticated = ptype & payload::AUTHENTICATED != 0;
    let encrypted = ptype & payload::ENCRYPTED != 0;
    let session_id = le32(body.get(2..6)?)?;
    let sequence = le32(body.get(6..10)?)?;
    let len = usize::from(u16::from_le_bytes(body.get(10..12)?.try_into().ok()?));
    let payload = body.get(12..12 + len)?;
    let (signed, auth_code) = if authenticated {
        // pad (0..3 x 0xFF) so AuthType … Next Header is a multiple of 4,
        // pad length, next header 0x07, AuthCode.
        let pad = (4 - (12 + len + 2) % 4) % 4;
        let pad_len_at = 12 + len + pad;
        if usize::from(*body.get(pad_len_at)?) != pad || *body.get(pad_len_at + 1)? != 0x07 {
            return None;
        }
        (body.get(..pad_len_at + 2)?, body.get(pad_len_at + 2..)?)
    } else {
        (&body[..0], &body[..0])
    };
    Some(V20Packet {
        payload_type,
        encrypted,
        authenticated,
        session_id,
        sequence,
        payload,
        signed,
        auth_code,
    })
}

/// ASF pong answering `tag` (IANA 4542, IPMI supported).
pub fn asf_pong(tag: u8) -> Vec<u8> {
    let mut p = vec![
        0x06, 0x00, 0xFF, 0x06, 0x00, 0x00, 0x11, 0xBE, 0x40, tag, 0x00, 0x10,
    ];
    // IANA 4542, OEM 0, supported entities (IPMI), interactions, reserved
    p.extend_from_slice(&[
        0x00, 0x00, 0x11, 0xBE, 0, 0, 0, 0, 0x81, 0x00, 0, 0, 0, 0, 0, 0,
    ]);
    p
}

/// Wrap an IPMI message in an IPMI 1.5 session with authentication type
/// NONE (only used outside sessions: Get Channel Auth Caps and friends).
pub fn encode_v15_unauthenticated(message: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(14 + message.len());
    p.extend_from_slice(&RMCP_HEADER);
    p.push(0x00); // auth type NONE
    p.extend_from_slice(&[0; 4]); // session sequence
    p.extend_from_slice(&[0; 4]); // session id
    p.push(u8::try_from(message.len()).unwrap_or(u8::MAX));
    p.extend_from_slice(message);
    p
}

/// Encode an RMCP+ packet without integrity trailer (handshake messages
/// and pre-session requests). `payload_type` is the whole type byte.
pub fn encode_v20_plain(payload_type: u8, session_id: u32, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(16 + payload.len() + 34);
    p.extend_from_slice(&RMCP_HEADER);
    p.push(0x06);
    p.push(payload_type);
    p.extend_from_slice(&session_id.to_le_bytes());
    p.extend_from_slice(&seq.to_le_bytes());
    p.extend_from_slice(
        &u16::try_from(payload.len())
            .unwrap_or(u16::MAX)
            .to_le_bytes(),
    );
    p.extend_from_slice(payload);
    p
}

/// How to seal one session packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sealing {
    /// Payload type (bits 5:0).
    pub payload_type: u8,
    /// Session id of the receiver.
    pub session_id: u32,
    /// Session sequence number.
    pub sequence: u32,
    /// Encrypt with this IV (fresh random per packet), or send in clear.
    pub encrypt_iv: Option<[u8; 16]>,
    /// Append the integrity trailer (mandatory for suites 3 and 17).
    pub authenticate: bool,
}

/// Seal `payload` into an RMCP+ session packet with `keys`.
pub fn seal(keys: &SessionKeys, how: &Sealing, payload: &[u8]) -> Vec<u8> {
    let mut ptype = how.payload_type & 0x3F;
    let body = match how.encrypt_iv {
        Some(iv) => {
            ptype |= payload::ENCRYPTED;
            keys.encrypt(iv, payload)
        }
        None => payload.to_vec(),
    };
    if how.authenticate {
        ptype |= payload::AUTHENTICATED;
    }
    let mut p = encode_v20_plain(ptype, how.session_id, how.sequence, &body);
    if how.authenticate {
        let covered = p.len() - 4;
        let pad = (4 - (covered + 2) % 4) % 4;
        p.extend(std::iter::repeat_n(0xFF, pad));
        p.push(u8::try_from(pad).unwrap_or(0));
        p.push(0x07);
        let code = keys.auth_code(&p[4..]);
        p.extend_from_slice(&code);
    }
    p
}

/// Check the integrity trailer of an authenticated session packet and
/// decrypt its payload; `None` when unauthenticated, forged or malformed.
pub fn open(keys: &SessionKeys, packet: &V20Packet<'_>) -> Option<Vec<u8>> {
    if !packet.authenticated || !ct_eq(&keys.auth_code(packet.signed), packet.auth_code) {
        return None;
    }
    if packet.encrypted {
        keys.decrypt(packet.payload)
    } else {
        Some(packet.payload.to_vec())
    }
}

/// Text for an RMCP+ handshake status code (IPMI 2.0 table 13-15).
pub fn rakp_status_text(status: u8) -> &'static str {
    match status {
        0x00 => "no errors",
        0x01 => "insufficient resources to create a session",
        0x02 => "invalid session ID",
        0x03 => "invalid payload type",
        0x04 => "invalid authentication algorithm",
        0x05 => "invalid integrity algorithm",
        0x06 => "no matching authentication payload",
        0x07 => "no matching integrity payload",
        0x08 => "inactive session ID",
        0x09 => "invalid role",
        0x0A => "unauthorized role or privilege level requested",
        0x0B => "insufficient resources to create a session at the requested role",
        0x0C => "invalid name length",
        0x0D => "unauthorized name",
        0x0E => "unauthorized GUID",
        0x0F => "invalid integrity check value",
        0x10 => "invalid confidentiality algorithm",
        0x11 => "no cipher suite match with proposed security algorithms",
        0x12 => "illegal or unrecognized parameter",
        _ => "unknown status",
    }
}

/// Text for an IPMI completion code (IPMI 2.0 table 5-2).
pub fn completion_code_text(code: u8) -> &'static str {
    match code {
        0x00 => "success",
        0x80..=0xBE => "command-specific error",
        0xC0 => "node busy",
        0xC1 => "invalid command",
        0xC2 => "command invalid for given LUN",
        0xC3 => "timeout while processing command",
        0xC4 => "out of space",
        0xC5 => "reservation cancelled or invalid",
        0xC6 => "request data truncated",
        0xC7 => "request data length invalid",
        0xC8 => "request data field length limit exceeded",
        0xC9 => "parameter out of range",
        0xCA => "cannot return number of requested data bytes",
        0xCB => "requested sensor, data or record not present",
        0xCC => "invalid data field in request",
        0xCD => "command illegal for specified sensor or record type",
        0xCE => "command response could not be provided",
        0xCF => "cannot execute duplicated request",
        0xD0 => "SDR repository in update mode",
        0xD1 => "device in firmware update mode",
        0xD2 => "BMC initialization in progress",
        0xD3 => "destination unavailable",
        0xD4 => "insufficient privilege level",
        0xD5 => "command not supported in present state",
        0xD6 => "command sub-function disabled or unavailable",
        0xFF => "unspecified error",
        _ => "unknown completion code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::CipherSuite;

    #[test]
    fn request_matches_ipmitool_layout() {
        // Get Device ID, rqSeq 1: 20 18 c8 81 04 01 7a
        let m = encode_request(0x06, 0x01, 1, &[]);
        assert_eq!(m, vec![0x20, 0x18, 0xc8, 0x81, 0x04, 0x01, 0x7a]);
        let req = decode_request(&m).expect("valid");
        assert_eq!((req.netfn, req.cmd, req.rq_seq), (6, 1, 1));
        let rsp = req.response(0, &[1, 2]);
        assert_eq!(&rsp[..2], &[0x81, 0x1C]);
        let r = decode_response(&rsp).expect("valid response");
        assert_eq!((r.netfn, r.cmd, r.rq_seq, r.data), (7, 1, 1, vec![1, 2]));
        let mut bad = m.clone();
        bad[5] ^= 1;
        assert!(decode_request(&bad).is_none());
    }

    #[test]
    fn response_roundtrip_and_bad_checksum() {
        let mut m = vec![0x81, 0x04];
        m.push(checksum(&m));
        m.extend_from_slice(&[0x20, 5 << 2, 0x01, 0x00, 0x01, 0x10, 0x00]);
        let c = checksum(&m[3..]);
        m.push(c);
        let r = decode_response(&m).expect("valid");
        assert_eq!((r.netfn, r.rq_seq, r.cmd), (0x01, 5, 0x01));
        assert_eq!(r.data, vec![0x01, 0x10, 0x00]);
        let last = m.len() - 1;
        m[last] ^= 1;
        assert_eq!(decode_response(&m), None);
    }

    #[test]
    fn seal_aligns_and_opens() {
        let keys = SessionKeys::derive(CipherSuite::Suite3, b"k", &[1; 16], &[2; 16], 0x14, b"u");
        for len in 0..8 {
            for iv in [None, Some([9; 16])] {
                let payload = vec![0xAB; len];
                let how = Sealing {
                    payload_type: payload::IPMI,
                    session_id: 5,
                    sequence: 9,
                    encrypt_iv: iv,
                    authenticate: true,
                };
                let p = seal(&keys, &how, &payload);
                let Some(Frame::V20(v)) = parse(&p) else {
                    panic!("not parsed")
                };
                assert_eq!(v.signed.len() % 4, 0);
                assert_eq!(v.auth_code.len(), 12);
                assert_eq!((v.session_id, v.sequence), (5, 9));
                assert_eq!(open(&keys, &v), Some(payload));
            }
        }
    }

    #[test]
    fn asf_ping_pong() {
        let ping = [
            0x06, 0x00, 0xFF, 0x06, 0x00, 0x00, 0x11, 0xBE, 0x80, 0x2A, 0x00, 0x00,
        ];
        assert_eq!(parse(&ping), Some(Frame::AsfPing { tag: 0x2A }));
        let pong = asf_pong(0x2A);
        assert_eq!(pong.len(), 28);
        assert_eq!(pong[8], 0x40);
    }
}
