//! A minimal scripted RMCP+ remote console for the simulator's own unit
//! tests and benchmarks: racker-ipmi's codec with every step exposed, so a
//! test can send unencrypted requests, replay sequence numbers or stop a
//! handshake half-way. (Whole-session behaviour is checked against
//! racker-ipmi's client, ipmitool, FreeIPMI and ipmi_sim in tests/it.)
#![allow(dead_code, unreachable_pub)]

use racker_ipmi::codec::{
    self, CipherSuite, Frame, OpenSessionRequest, OpenSessionResponse, Rakp1, Rakp2, Rakp3, Rakp4,
    RakpParams, Sealing, SessionKeys, payload,
};

pub struct Console {
    pub suite: u8,
    user: Vec<u8>,
    password: Vec<u8>,
    pub sid_m: u32,
    pub sid_c: u32,
    rm: [u8; 16],
    rc: [u8; 16],
    guid: [u8; 16],
    role: u8,
    keys: Option<SessionKeys>,
    pub seq: u32,
    pub rq_seq: u8,
    pub encrypt: bool,
}

pub fn ipmi_msg(netfn: u8, cmd: u8, rq_seq: u8, data: &[u8]) -> Vec<u8> {
    codec::encode_request(netfn, cmd, rq_seq, data)
}

pub fn v20(ptype: u8, sid: u32, seq: u32, payload: &[u8]) -> Vec<u8> {
    codec::encode_v20_plain(ptype, sid, seq, payload)
}

/// Payload of an RMCP+ packet: (payload type byte, session id, seq, payload).
pub fn split(p: &[u8]) -> Option<(u8, u32, u32, &[u8])> {
    match codec::parse(p)? {
        Frame::V20(v) => Some((p[5], v.session_id, v.sequence, v.payload)),
        _ => None,
    }
}

pub fn get_channel_auth_caps_v15() -> Vec<u8> {
    codec::encode_v15_unauthenticated(&ipmi_msg(0x06, 0x38, 0, &[0x8E, 0x04]))
}

impl Console {
    pub fn new(suite: u8, user: &str, password: &str) -> Self {
        Console {
            suite,
            user: user.as_bytes().to_vec(),
            password: password.as_bytes().to_vec(),
            sid_m: 0xA0A2_A3A4,
            sid_c: 0,
            rm: [0x11; 16],
            rc: [0; 16],
            guid: [0; 16],
            role: 0x14,
            keys: None,
            seq: 2,
            rq_seq: 0,
            encrypt: true,
        }
    }

    fn cipher(&self) -> CipherSuite {
        CipherSuite::from_id(self.suite).expect("suite 3 or 17")
    }

    fn params(&self) -> RakpParams<'_> {
        RakpParams {
            suite: self.cipher(),
            sid_m: self.sid_m,
            sid_c: self.sid_c,
            rm: self.rm,
            rc: self.rc,
            guid: self.guid,
            role: self.role,
            user: &self.user,
        }
    }

    pub fn open_session_request(&self) -> Vec<u8> {
        let m = OpenSessionRequest::new(0x01, 0x00, self.sid_m, self.cipher()).encode();
        v20(payload::OPEN_SESSION_REQUEST, 0, 0, &m)
    }

    /// Ok(()) or Err(status).
    pub fn open_session_response(&mut self, pkt: &[u8]) -> Result<(), u8> {
        let (t, _, _, p) = split(pkt).ok_or(0xFF)?;
        if t != payload::OPEN_SESSION_RESPONSE {
            return Err(0xFF);
        }
        let r = OpenSessionResponse::decode(p).ok_or(0xFF)?;
        if r.status != 0 {
            return Err(r.status);
        }
        self.sid_c = r.sid_c;
        Ok(())
    }

    pub fn rakp1(&self) -> Vec<u8> {
        let m = Rakp1 {
            tag: 0x02,
            sid_c: self.sid_c,
            rm: self.rm,
            role: self.role,
            user: self.user.clone(),
        };
        v20(payload::RAKP1, 0, 0, &m.encode())
    }

    /// Ok(()) or Err(status) (0xFE = HMAC mismatch, i.e. wrong password).
    pub fn rakp2(&mut self, pkt: &[u8]) -> Result<(), u8> {
        let (t, _, _, p) = split(pkt).ok_or(0xFF)?;
        if t != payload::RAKP2 {
            return Err(0xFF);
        }
        let r = Rakp2::decode(p).ok_or(0xFF)?;
        if r.status != 0 {
            return Err(r.status);
        }
        self.rc = r.rc;
        self.guid = r.guid;
        if r.code != self.params().rakp2_code(&self.password) {
            return Err(0xFE);
        }
        Ok(())
    }

    pub fn rakp3(&mut self) -> Vec<u8> {
        let params = self.params();
        let code = params.rakp3_code(&self.password);
        let keys = params.session_keys(&self.password);
        self.keys = Some(keys);
        let m = Rakp3 {
            tag: 0x03,
            status: 0,
            sid_c: self.sid_c,
            code,
        };
        v20(payload::RAKP3, 0, 0, &m.encode())
    }

    pub fn rakp4(&self, pkt: &[u8]) -> Result<(), u8> {
        let (t, _, _, p) = split(pkt).ok_or(0xFF)?;
        if t != payload::RAKP4 {
            return Err(0xFF);
        }
        let r = Rakp4::decode(p).ok_or(0xFF)?;
        if r.status != 0 {
            return Err(r.status);
        }
        let keys = self.keys.as_ref().ok_or(0xFF)?;
        if r.icv != self.params().rakp4_icv(keys) {
            return Err(0xFE);
        }
        Ok(())
    }

    /// Seal a payload of type `ptype` into the session.
    pub fn seal(&mut self, ptype: u8, payload: &[u8]) -> Vec<u8> {
        self.seq = self.seq.wrapping_add(1);
        self.seal_with_seq(ptype, payload, self.seq)
    }

    pub fn seal_with_seq(&self, ptype: u8, payload: &[u8], seq: u32) -> Vec<u8> {
        let how = Sealing {
            payload_type: ptype,
            session_id: self.sid_c,
            sequence: seq,
            encrypt_iv: self.encrypt.then_some([0x5A; 16]),
            authenticate: true,
        };
        codec::seal(self.keys.as_ref().expect("logged in"), &how, payload)
    }

    pub fn request(&mut self, netfn: u8, cmd: u8, data: &[u8]) -> Vec<u8> {
        self.rq_seq = (self.rq_seq + 1) % 64;
        let msg = ipmi_msg(netfn, cmd, self.rq_seq, data);
        self.seal(payload::IPMI, &msg)
    }

    /// Verify and open a sealed packet: (payload type, plaintext).
    pub fn open(&self, pkt: &[u8]) -> Option<(u8, Vec<u8>)> {
        let Frame::V20(v) = codec::parse(pkt)? else {
            return None;
        };
        if v.session_id != self.sid_m {
            return None;
        }
        Some((v.payload_type, codec::open(self.keys.as_ref()?, &v)?))
    }

    /// (completion code, data) of an IPMI response packet.
    pub fn response(&self, pkt: &[u8]) -> Option<(u8, Vec<u8>)> {
        let (t, m) = self.open(pkt)?;
        if t != payload::IPMI {
            return None;
        }
        let r = codec::decode_response(&m)?;
        Some((r.completion_code, r.data))
    }
}

/// Run the whole handshake through `exchange` (send one datagram, get the
/// replies). Err(status) on refusal.
pub fn login(
    console: &mut Console,
    mut exchange: impl FnMut(Vec<u8>) -> Vec<Vec<u8>>,
) -> Result<(), u8> {
    let r = exchange(console.open_session_request());
    console.open_session_response(r.first().ok_or(0xFD)?)?;
    let r = exchange(console.rakp1());
    console.rakp2(r.first().ok_or(0xFD)?)?;
    let p = console.rakp3();
    let r = exchange(p);
    console.rakp4(r.first().ok_or(0xFD)?)?;
    let p = console.request(0x06, 0x3B, &[0x04]);
    let r = exchange(p);
    let (cc, _) = console.response(r.first().ok_or(0xFD)?).ok_or(0xFC)?;
    if cc != 0 {
        return Err(cc);
    }
    Ok(())
}
