//! The RMCP+ session setup messages: Open Session Request/Response and
//! RAKP Messages 1–4 (IPMI 2.0 §13.17–13.23), typed, both directions.
//!
//! Decoders return `None` when a message is too short to carry its fixed
//! fields; what a short or failed message means is the caller's business.

use super::crypto::CipherSuite;

fn le32(b: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(..4)?.try_into().ok()?))
}

fn arr16(b: &[u8]) -> Option<[u8; 16]> {
    b.get(..16)?.try_into().ok()
}

/// `[tag, status, 0, 0, id]`: the head every handshake message shares.
fn head(tag: u8, status: u8, id: u32) -> Vec<u8> {
    let mut m = vec![tag, status, 0, 0];
    m.extend_from_slice(&id.to_le_bytes());
    m
}

/// RMCP+ Open Session Request (console → BMC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSessionRequest {
    /// Message tag.
    pub tag: u8,
    /// Requested maximum privilege (0 = highest the user may have).
    pub max_privilege: u8,
    /// Remote console session id.
    pub sid_m: u32,
    /// Proposed (authentication, integrity, confidentiality) algorithms;
    /// `None` when the proposal payloads are not well formed.
    pub algorithms: Option<(u8, u8, u8)>,
}

impl OpenSessionRequest {
    /// A request proposing `suite`'s algorithms.
    pub fn new(tag: u8, max_privilege: u8, sid_m: u32, suite: CipherSuite) -> Self {
        OpenSessionRequest {
            tag,
            max_privilege,
            sid_m,
            algorithms: Some(suite.algorithms()),
        }
    }

    /// Encode the payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut m = vec![self.tag, self.max_privilege, 0, 0];
        m.extend_from_slice(&self.sid_m.to_le_bytes());
        let (a, i, c) = self.algorithms.unwrap_or((0, 0, 0));
        for (kind, alg) in [(0u8, a), (1, i), (2, c)] {
            m.extend_from_slice(&[kind, 0, 0, 0x08, alg, 0, 0, 0]);
        }
        m
    }

    /// Decode the payload; `None` when shorter than 32 bytes.
    pub fn decode(p: &[u8]) -> Option<Self> {
        if p.len() < 32 {
            return None;
        }
        let rec = |off: usize, kind: u8| -> Option<u8> {
            let r = p.get(off..off + 8)?;
            (r[0] == kind && r[3] == 8).then_some(r[4] & 0x3F)
        };
        let algorithms = match (rec(8, 0), rec(16, 1), rec(24, 2)) {
            (Some(a), Some(i), Some(c)) => Some((a, i, c)),
            _ => None,
        };
        Some(OpenSessionRequest {
            tag: p[0],
            max_privilege: p[1] & 0x0F,
            sid_m: le32(&p[4..])?,
            algorithms,
        })
    }
}

/// RMCP+ Open Session Response (BMC → console).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSessionResponse {
    /// Message tag (echoed).
    pub tag: u8,
    /// RMCP+ status code (0 = success; the fields below are then set).
    pub status: u8,
    /// Granted maximum privilege.
    pub max_privilege: u8,
    /// Remote console session id.
    pub sid_m: u32,
    /// Managed system session id.
    pub sid_c: u32,
    /// Accepted (authentication, integrity, confidentiality) algorithms.
    pub algorithms: (u8, u8, u8),
}

impl OpenSessionResponse {
    /// An error response.
    pub fn error(tag: u8, status: u8, sid_m: u32) -> Self {
        OpenSessionResponse {
            tag,
            status,
            max_privilege: 0,
            sid_m,
            sid_c: 0,
            algorithms: (0, 0, 0),
        }
    }

    /// Encode the payload (the short form for an error status).
    pub fn encode(&self) -> Vec<u8> {
        let mut m = head(self.tag, self.status, self.sid_m);
        if self.status != 0 {
            return m;
        }
        m[2] = self.max_privilege;
        m.extend_from_slice(&self.sid_c.to_le_bytes());
        let (a, i, c) = self.algorithms;
        for (kind, alg) in [(0u8, a), (1, i), (2, c)] {
            m.extend_from_slice(&[kind, 0, 0, 0x08, alg, 0, 0, 0]);
        }
        m
    }

    /// Decode the payload; `None` when shorter than the form its status needs.
    pub fn decode(p: &[u8]) -> Option<Self> {
        let (&tag, &status) = (p.first()?, p.get(1)?);
        if status != 0 {
            return Some(OpenSessionResponse::error(
                tag,
                status,
                p.get(4..8).and_then(le32).unwrap_or(0),
            ));
        }
        if p.len() < 36 {
            return None;
        }
        Some(OpenSessionResponse {
            tag,
            status,
            max_privilege: p[2],
            sid_m: le32(&p[4..])?,
            sid_c: le32(&p[8..])?,
            algorithms: (p[16], p[24], p[32]),
        })
    }
}

/// RAKP Message 1 (console → BMC).
#[derive(Clone, PartialEq, Eq)]
pub struct Rakp1 {
    /// Message tag.
    pub tag: u8,
    /// Managed system session id.
    pub sid_c: u32,
    /// Remote console random number.
    pub rm: [u8; 16],
    /// Requested role (privilege and name-only lookup bit).
    pub role: u8,
    /// User name (at most 16 bytes; longer is refused by the BMC).
    pub user: Vec<u8>,
}

impl std::fmt::Debug for Rakp1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rakp1")
            .field("tag", &self.tag)
            .field("sid_c", &self.sid_c)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl Rakp1 {
    /// Encode the payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut m = head(self.tag, 0, self.sid_c);
        m.extend_from_slice(&self.rm);
        m.extend_from_slice(&[self.role, 0, 0]);
        m.push(u8::try_from(self.user.len()).unwrap_or(0));
        m.extend_from_slice(&self.user);
        m
    }

    /// Decode the payload; `None` when truncated.
    pub fn decode(p: &[u8]) -> Option<Self> {
        if p.len() < 28 {
            return None;
        }
        let ulen = usize::from(p[27]);
        Some(Rakp1 {
            tag: p[0],
            sid_c: le32(&p[4..])?,
            rm: arr16(&p[8..])?,
            role: p[24],
            user: p.get(28..28 + ulen)?.to_vec(),
        })
    }
}

/// RAKP Message 2 (BMC → console).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rakp2 {
    /// Message tag (echoed).
    pub tag: u8,
    /// RMCP+ status code.
    pub status: u8,
    /// Remote console session id.
    pub sid_m: u32,
    /// Managed system random number.
    pub rc: [u8; 16],
    /// Managed system GUID.
    pub guid: [u8; 16],
    /// Key exchange authentication code.
    pub code: Vec<u8>,
}

impl Rakp2 {
    /// An error message.
    pub fn error(tag: u8, status: u8, sid_m: u32) -> Self {
        Rakp2 {
            tag,
            status,
            sid_m,
            rc: [0; 16],
            guid: [0; 16],
            code: Vec::new(),
        }
    }

    /// Encode the payload (the short form for an error status).
    pub fn encode(&self) -> Vec<u8> {
        let mut m = head(self.tag, self.status, self.sid_m);
        if self.status == 0 {
            m.extend_from_slice(&self.rc);
            m.extend_from_slice(&self.guid);
            m.extend_from_slice(&self.code);
        }
        m
    }

    /// Decode the payload; `None` when truncated.
    pub fn decode(p: &[u8]) -> Option<Self> {
        let (&tag, &status) = (p.first()?, p.get(1)?);
        if status != 0 {
            return Some(Rakp2::error(tag, status, 0));
        }
        if p.len() < 40 {
            return None;
        }
        Some(Rakp2 {
            tag,
            status,
            sid_m: le32(&p[4..])?,
            rc: arr16(&p[8..])?,
            guid: arr16(&p[24..])?,
            code: p[40..].to_vec(),
        })
    }
}

/// RAKP Message 3 (console → BMC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rakp3 {
    /// Message tag.
    pub tag: u8,
    /// RMCP+ status code (non-zero: the console rejects RAKP2).
    pub status: u8,
    /// Managed system session id.
    pub sid_c: u32,
    /// Key exchange authentication code.
    pub code: Vec<u8>,
}

impl Rakp3 {
    /// Encode the payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut m = head(self.tag, self.status, self.sid_c);
        m.extend_from_slice(&self.code);
        m
    }

    /// Decode the payload; `None` when shorter than 8 bytes.
    pub fn decode(p: &[u8]) -> Option<Self> {
        if p.len() < 8 {
            return None;
        }
        Some(Rakp3 {
            tag: p[0],
            status: p[1],
            sid_c: le32(&p[4..])?,
            code: p[8..].to_vec(),
        })
    }
}

/// RAKP Message 4 (BMC → console).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rakp4 {
    /// Message tag (echoed).
    pub tag: u8,
    /// RMCP+ status code.
    pub status: u8,
    /// Remote console session id.
    pub sid_m: u32,
    /// Integrity check value.
    pub icv: Vec<u8>,
}

impl Rakp4 {
    /// Encode the payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut m = head(self.tag, self.status, self.sid_m);
        m.extend_from_slice(&self.icv);
        m
    }

    /// Decode the payload; `None` when truncated.
    pub fn decode(p: &[u8]) -> Option<Self> {
        let (&tag, &status) = (p.first()?, p.get(1)?);
        if status != 0 {
            return Some(Rakp4 {
                tag,
                status,
                sid_m: 0,
                icv: Vec::new(),
            });
        }
        if p.len() < 8 {
            return None;
        }
        Some(Rakp4 {
            tag,
            status,
            sid_m: le32(&p[4..])?,
            icv: p[8..].to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_messages_round_trip() {
        let o = OpenSessionRequest::new(1, 4, 0xA0A2_A3A4, CipherSuite::Suite17);
        let b = o.encode();
        assert_eq!((b[16 + 12 - 16], b.len()), (3, 32));
        assert_eq!(OpenSessionRequest::decode(&b), Some(o));
        let r = OpenSessionResponse {
            tag: 1,
            status: 0,
            max_privilege: 4,
            sid_m: 7,
            sid_c: 9,
            algorithms: (1, 1, 1),
        };
        assert_eq!(OpenSessionResponse::decode(&r.encode()), Some(r));
        let e = OpenSessionResponse::error(1, 0x01, 7);
        assert_eq!(e.encode().len(), 8);
        assert_eq!(OpenSessionResponse::decode(&e.encode()), Some(e));
        let r1 = Rakp1 {
            tag: 2,
            sid_c: 9,
            rm: [3; 16],
            role: 0x14,
            user: b"admin".to_vec(),
        };
        assert_eq!(Rakp1::decode(&r1.encode()), Some(r1));
        let r2 = Rakp2 {
            tag: 2,
            status: 0,
            sid_m: 7,
            rc: [4; 16],
            guid: [5; 16],
            code: vec![6; 20],
        };
        assert_eq!(Rakp2::decode(&r2.encode()), Some(r2));
        let r3 = Rakp3 {
            tag: 3,
            status: 0,
            sid_c: 9,
            code: vec![7; 32],
        };
        assert_eq!(Rakp3::decode(&r3.encode()), Some(r3));
        let r4 = Rakp4 {
            tag: 3,
            status: 0,
            sid_m: 7,
            icv: vec![8; 12],
        };
        assert_eq!(Rakp4::decode(&r4.encode()), Some(r4));
    }
}
