//! RMCP / IPMI 1.5 / RMCP+ framing and IPMI LAN messages (no crypto, no IO).

/// RMCP header for IPMI class messages: version 6, reserved, no ACK, class 7.
pub(crate) const RMCP_HEADER: [u8; 4] = [0x06, 0x00, 0xFF, 0x07];
/// Address of the BMC on the IPMB.
pub(crate) const BMC_ADDR: u8 = 0x20;
/// Our (remote console) software id.
pub(crate) const CONSOLE_ADDR: u8 = 0x81;

/// RMCP+ payload types (bits 5:0 of the payload type byte).
pub(crate) mod payload {
    pub(crate) const IPMI: u8 = 0x00;
    pub(crate) const SOL: u8 = 0x01;
    pub(crate) const OPEN_SESSION_REQUEST: u8 = 0x10;
    pub(crate) const OPEN_SESSION_RESPONSE: u8 = 0x11;
    pub(crate) const RAKP1: u8 = 0x12;
    pub(crate) const RAKP2: u8 = 0x13;
    pub(crate) const RAKP3: u8 = 0x14;
    pub(crate) const RAKP4: u8 = 0x15;
}

/// Two's complement checksum: the bytes plus the checksum sum to zero.
pub(crate) fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |acc, b| acc.wrapping_add(*b))
        .wrapping_neg()
}

/// Encode an IPMI LAN request message (rsAddr … checksum 2).
pub(crate) fn encode_request(netfn: u8, cmd: u8, rq_seq: u8, data: &[u8]) -> Vec<u8> {
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

/// A decoded IPMI LAN response message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LanResponse {
    pub(crate) netfn: u8,
    pub(crate) rq_seq: u8,
    pub(crate) cmd: u8,
    pub(crate) completion_code: u8,
    pub(crate) data: Vec<u8>,
}

/// Decode an IPMI LAN response message; `None` when malformed.
pub(crate) fn decode_response(m: &[u8]) -> Option<LanResponse> {
    if m.len() < 8 {
        return None;
    }
    if checksum(&m[0..2]) != m[2] {
        return None;
    }
    let last = m.len() - 1;
    if checksum(&m[3..last]) != m[last] {
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

/// Wrap an IPMI message in an IPMI 1.5 session with authentication type
/// NONE (used only before the session exists: Get Channel Auth Caps).
pub(crate) fn encode_v15_unauthenticated(message: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(14 + message.len());
    p.extend_from_slice(&RMCP_HEADER);
    p.push(0x00); // auth type NONE
    p.extend_from_slice(&[0; 4]); // session sequence
    p.extend_from_slice(&[0; 4]); // session id
    p.push(u8::try_from(message.len()).unwrap_or(u8::MAX));
    p.extend_from_slice(message);
    p
}

/// An RMCP+ (IPMI 2.0) packet as received, before integrity checking and
/// decryption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct V20Packet<'a> {
    pub(crate) payload_type: u8,
    pub(crate) encrypted: bool,
    pub(crate) authenticated: bool,
    pub(crate) session_id: u32,
    pub(crate) sequence: u32,
    pub(crate) payload: &'a [u8],
    /// AuthType … end of payload (what the integrity trailer covers starts here).
    pub(crate) session_start: usize,
    /// The whole packet.
    pub(crate) raw: &'a [u8],
}

/// Any packet the BMC may send us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Inbound<'a> {
    /// IPMI 1.5 session wrapper (pre-session replies).
    V15 { message: &'a [u8] },
    /// RMCP+ session wrapper.
    V20(V20Packet<'a>),
}

fn le32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

/// Parse the RMCP and session headers; `None` for anything we don't handle.
pub(crate) fn parse_inbound(p: &[u8]) -> Option<Inbound<'_>> {
    if p.len() < 5 || p[0] != 0x06 || p[3] != 0x07 {
        return None;
    }
    match p[4] {
        0x00 => {
            // auth type none: seq(4) id(4) len(1) message
            let len = usize::from(*p.get(13)?);
            let message = p.get(14..14 + len)?;
            Some(Inbound::V15 { message })
        }
        0x06 => {
            let payload_type = *p.get(5)?;
            let pt = payload_type & 0x3F;
            if pt == 0x02 {
                return None; // OEM explicit payloads are not supported
            }
            let session_id = le32(p.get(6..10)?);
            let sequence = le32(p.get(10..14)?);
            let len_bytes = p.get(14..16)?;
            let len = usize::from(u16::from_le_bytes([len_bytes[0], len_bytes[1]]));
            let payload = p.get(16..16 + len)?;
            Some(Inbound::V20(V20Packet {
                payload_type: pt,
                encrypted: payload_type & 0x80 != 0,
                authenticated: payload_type & 0x40 != 0,
                session_id,
                sequence,
                payload,
                session_start: 4,
                raw: p,
            }))
        }
        _ => None,
    }
}

/// Encode an RMCP+ packet without integrity trailer (handshake messages).
pub(crate) fn encode_v20_plain(
    payload_type: u8,
    session_id: u32,
    seq: u32,
    payload: &[u8],
) -> Vec<u8> {
    let mut p = Vec::with_capacity(16 + payload.len());
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

/// Text for an RMCP+ handshake status code (IPMI 2.0 table 13-15).
pub(crate) fn rakp_status_text(status: u8) -> &'static str {
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
pub(crate) fn completion_code_text(code: u8) -> &'static str {
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

    #[test]
    fn request_matches_ipmitool_layout() {
        // Get Device ID, rqSeq 1: 20 18 c8 81 04 01 7a
        let m = encode_request(0x06, 0x01, 1, &[]);
        assert_eq!(m, vec![0x20, 0x18, 0xc8, 0x81, 0x04, 0x01, 0x7a]);
    }

    #[test]
    fn response_roundtrip_and_bad_checksum() {
        // Response to Get Chassis Status rqSeq 5: rqAddr 81, netfn 01<<2.
        let mut m = vec![0x81, 0x04];
        m.push(checksum(&m));
        m.extend_from_slice(&[0x20, 5 << 2, 0x01, 0x00, 0x01, 0x10, 0x00]);
        let c = checksum(&m[3..]);
        m.push(c);
        let r = decode_response(&m).expect("valid");
        assert_eq!(r.netfn, 0x01);
        assert_eq!(r.rq_seq, 5);
        assert_eq!(r.cmd, 0x01);
        assert_eq!(r.completion_code, 0);
        assert_eq!(r.data, vec![0x01, 0x10, 0x00]);
        let last = m.len() - 1;
        m[last] ^= 1;
        assert_eq!(decode_response(&m), None);
    }
}
