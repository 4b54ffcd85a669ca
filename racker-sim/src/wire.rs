//! RMCP / ASF / IPMI 1.5 / IPMI 2.0 (RMCP+) framing, server side.

/// A datagram split into its framing layers. Nothing is trusted yet.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// ASF presence ping; `tag` must be echoed.
    AsfPing { tag: u8 },
    /// IPMI 1.5 session header (only the unauthenticated, session-less form
    /// is served: Get Channel Authentication Capabilities).
    V15 {
        auth_type: u8,
        session_id: u32,
        msg: &'a [u8],
    },
    /// IPMI 2.0 / RMCP+ packet.
    V20(V20<'a>),
}

/// An RMCP+ packet as received.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct V20<'a> {
    pub(crate) payload_type: u8,
    pub(crate) authenticated: bool,
    pub(crate) encrypted: bool,
    pub(crate) session_id: u32,
    pub(crate) seq: u32,
    pub(crate) payload: &'a [u8],
    /// AuthType .. Next Header (what the AuthCode covers), when authenticated.
    pub(crate) signed: &'a [u8],
    /// The AuthCode bytes, when authenticated.
    pub(crate) auth_code: &'a [u8],
}

pub(crate) const RMCP_HEADER: [u8; 4] = [0x06, 0x00, 0xFF, 0x07];

fn u32_le(b: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(..4)?.try_into().ok()?))
}

/// Split a datagram. `None` for anything that is not a well-formed frame.
pub(crate) fn parse(d: &[u8]) -> Option<Frame<'_>> {
    if d.len() < 4 || d[0] != 0x06 || d[1] != 0x00 {
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
            let auth_type = *body.first()?;
            if auth_type == 0x06 {
                parse_v20(body).map(Frame::V20)
            } else {
                // 1.5: authtype, seq(4), session id(4), [authcode 16], len, msg
                let session_id = u32_le(body.get(5..9)?)?;
                let mut off = 9;
                if auth_type != 0 {
                    off += 16;
                }
                let len = usize::from(*body.get(off)?);
                let msg = body.get(off + 1..off + 1 + len)?;
                Some(Frame::V15 {
                    auth_type,
                    session_id,
                    msg,
                })
            }
        }
        _ => None,
    }
}

fn parse_v20(body: &[u8]) -> Option<V20<'_>> {
    let ptype = *body.get(1)?;
    let payload_type = ptype & 0x3F;
    if payload_type == 0x02 {
        // OEM explicit payloads carry extra header fields; not served.
        return None;
    }
    let authenticated = ptype & 0x40 != 0;
    let encrypted = ptype & 0x80 != 0;
    let session_id = u32_le(body.get(2..6)?)?;
    let seq = u32_le(body.get(6..10)?)?;
    let len = usize::from(u16::from_le_bytes(body.get(10..12)?.try_into().ok()?));
    let payload = body.get(12..12 + len)?;
    let (signed, auth_code) = if authenticated {
        // pad (0..3 x 0xFF), pad length, next header 0x07, auth code
        let pad = (4 - (12 + len + 2) % 4) % 4;
        let pad_len_at = 12 + len + pad;
        if usize::from(*body.get(pad_len_at)?) != pad || *body.get(pad_len_at + 1)? != 0x07 {
            return None;
        }
        let signed = body.get(..pad_len_at + 2)?;
        let auth_code = body.get(pad_len_at + 2..)?;
        (signed, auth_code)
    } else {
        (&body[..0], &body[..0])
    };
    Some(V20 {
        payload_type,
        authenticated,
        encrypted,
        session_id,
        seq,
        payload,
        signed,
        auth_code,
    })
}

/// ASF pong answering `tag`.
pub(crate) fn asf_pong(tag: u8) -> Vec<u8> {
    let mut p = vec![
        0x06, 0x00, 0xFF, 0x06, 0x00, 0x00, 0x11, 0xBE, 0x40, tag, 0x00, 0x10,
    ];
    // IANA 4542, OEM 0, supported entities (IPMI), interactions, reserved
    p.extend_from_slice(&[
        0x00, 0x00, 0x11, 0xBE, 0, 0, 0, 0, 0x81, 0x00, 0, 0, 0, 0, 0, 0,
    ]);
    p
}

/// IPMI 1.5 session-less frame around `msg`.
pub(crate) fn v15_frame(msg: &[u8]) -> Vec<u8> {
    let mut p = RMCP_HEADER.to_vec();
    p.push(0x00);
    p.extend_from_slice(&[0; 8]);
    p.push(msg.len() as u8);
    p.extend_from_slice(msg);
    p
}

/// RMCP+ frame header + payload; the caller appends the integrity trailer
/// via [`v20_trailer`] when authenticated.
pub(crate) fn v20_frame(ptype: u8, session_id: u32, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = RMCP_HEADER.to_vec();
    p.push(0x06);
    p.push(ptype);
    p.extend_from_slice(&session_id.to_le_bytes());
    p.extend_from_slice(&seq.to_le_bytes());
    p.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    p.extend_from_slice(payload);
    p
}

/// Append integrity pad, pad length and next header; returns the offset
/// where the signed region starts (after the RMCP header).
pub(crate) fn v20_trailer(p: &mut Vec<u8>) {
    let signed_len = p.len() - 4 + 2;
    let pad = (4 - signed_len % 4) % 4;
    p.extend(std::iter::repeat_n(0xFF, pad));
    p.push(pad as u8);
    p.push(0x07);
}

/// An IPMI LAN request message (inside a session payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request<'a> {
    pub(crate) netfn: u8,
    pub(crate) rs_lun: u8,
    pub(crate) rq_addr: u8,
    pub(crate) rq_seq: u8,
    pub(crate) rq_lun: u8,
    pub(crate) rs_addr: u8,
    pub(crate) cmd: u8,
    pub(crate) data: &'a [u8],
}

fn checksum(b: &[u8]) -> u8 {
    b.iter().fold(0u8, |a, x| a.wrapping_add(*x)).wrapping_neg()
}

/// Parse an IPMI LAN request, verifying both checksums.
pub(crate) fn parse_request(m: &[u8]) -> Option<Request<'_>> {
    if m.len() < 7 {
        return None;
    }
    if checksum(&m[..2]) != m[2] || checksum(&m[3..m.len() - 1]) != m[m.len() - 1] {
        return None;
    }
    Some(Request {
        rs_addr: m[0],
        netfn: m[1] >> 2,
        rs_lun: m[1] & 3,
        rq_addr: m[3],
        rq_seq: m[4] >> 2,
        rq_lun: m[4] & 3,
        cmd: m[5],
        data: &m[6..m.len() - 1],
    })
}

/// Build the response to `req` with completion code `cc` and `data`.
pub(crate) fn build_response(req: &Request<'_>, cc: u8, data: &[u8]) -> Vec<u8> {
    let mut m = vec![req.rq_addr, ((req.netfn | 1) << 2) | req.rq_lun];
    m.push(checksum(&m));
    m.push(req.rs_addr);
    m.push((req.rq_seq << 2) | req.rs_lun);
    m.push(req.cmd);
    m.push(cc);
    m.extend_from_slice(data);
    let c = checksum(&m[3..]);
    m.push(c);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_response_checksums() {
        // Get Device ID from ipmitool: rsAddr 20, netfn 06, rqAddr 81, seq 1
        let mut m = vec![0x20, 0x18];
        m.push(checksum(&m));
        m.extend_from_slice(&[0x81, 0x04, 0x01]);
        let c = checksum(&m[3..]);
        m.push(c);
        let req = parse_request(&m).unwrap();
        assert_eq!((req.netfn, req.cmd, req.rq_seq), (6, 1, 1));
        let rsp = build_response(&req, 0, &[1, 2]);
        assert_eq!(&rsp[..2], &[0x81, 0x1C]);
        assert_eq!(rsp.iter().skip(3).fold(0u8, |a, x| a.wrapping_add(*x)), 0);
        let mut bad = m.clone();
        bad[5] ^= 1;
        assert!(parse_request(&bad).is_none());
    }

    #[test]
    fn v20_trailer_aligns_and_parses() {
        for len in 0..8 {
            let payload = vec![0xAB; len];
            let mut p = v20_frame(0xC0, 5, 9, &payload);
            v20_trailer(&mut p);
            assert_eq!((p.len() - 4) % 4, 0);
            p.extend_from_slice(&[0u8; 12]);
            let Some(Frame::V20(v)) = parse(&p) else {
                panic!("not parsed")
            };
            assert_eq!(v.payload, &payload[..]);
            assert_eq!(v.auth_code.len(), 12);
            assert_eq!((v.session_id, v.seq), (5, 9));
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
