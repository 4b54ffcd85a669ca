//! A minimal RMCP+ remote console (client) used by the simulator's own tests
//! and benchmark. Independent of the BMC code it exercises: it is written
//! from the IPMI 2.0 specification's point of view of the console.
#![allow(dead_code, unreachable_pub)]

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::NoPadding};
use hmac::{Hmac, Mac};

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
    sik: Vec<u8>,
    k1: Vec<u8>,
    aes: [u8; 16],
    pub seq: u32,
    pub rq_seq: u8,
    pub encrypt: bool,
}

fn hmac(suite: u8, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    if suite == 17 {
        let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap();
        parts.iter().for_each(|p| m.update(p));
        m.finalize().into_bytes().to_vec()
    } else {
        let mut m = <Hmac<sha1::Sha1> as Mac>::new_from_slice(key).unwrap();
        parts.iter().for_each(|p| m.update(p));
        m.finalize().into_bytes().to_vec()
    }
}

fn checksum(b: &[u8]) -> u8 {
    b.iter().fold(0u8, |a, x| a.wrapping_add(*x)).wrapping_neg()
}

pub fn ipmi_msg(netfn: u8, cmd: u8, rq_seq: u8, data: &[u8]) -> Vec<u8> {
    let mut m = vec![0x20, netfn << 2];
    m.push(checksum(&m));
    m.extend_from_slice(&[0x81, rq_seq << 2, cmd]);
    m.extend_from_slice(data);
    let c = checksum(&m[3..]);
    m.push(c);
    m
}

pub fn v20(ptype: u8, sid: u32, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x06, 0x00, 0xFF, 0x07, 0x06, ptype];
    p.extend_from_slice(&sid.to_le_bytes());
    p.extend_from_slice(&seq.to_le_bytes());
    p.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    p.extend_from_slice(payload);
    p
}

/// Payload of an RMCP+ packet: (payload type byte, session id, payload).
pub fn split(p: &[u8]) -> Option<(u8, u32, u32, &[u8])> {
    if p.len() < 16 || p[..4] != [0x06, 0x00, 0xFF, 0x07] || p[4] != 0x06 {
        return None;
    }
    let sid = u32::from_le_bytes(p[6..10].try_into().ok()?);
    let seq = u32::from_le_bytes(p[10..14].try_into().ok()?);
    let len = u16::from_le_bytes([p[14], p[15]]) as usize;
    Some((p[5], sid, seq, p.get(16..16 + len)?))
}

pub fn get_channel_auth_caps_v15() -> Vec<u8> {
    let msg = ipmi_msg(0x06, 0x38, 0, &[0x8E, 0x04]);
    let mut p = vec![
        0x06,
        0x00,
        0xFF,
        0x07,
        0x00,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        msg.len() as u8,
    ];
    p.extend_from_slice(&msg);
    p
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
            sik: Vec::new(),
            k1: Vec::new(),
            aes: [0; 16],
            seq: 2,
            rq_seq: 0,
            encrypt: true,
        }
    }

    pub fn open_session_request(&self) -> Vec<u8> {
        let (a, i, c) = if self.suite == 17 {
            (3, 4, 1)
        } else {
            (1, 1, 1)
        };
        let mut p = vec![0x01, 0x00, 0, 0];
        p.extend_from_slice(&self.sid_m.to_le_bytes());
        for (kind, alg) in [(0u8, a), (1, i), (2, c)] {
            p.extend_from_slice(&[kind, 0, 0, 8, alg, 0, 0, 0]);
        }
        v20(0x10, 0, 0, &p)
    }

    /// Ok(()) or Err(status).
    pub fn open_session_response(&mut self, pkt: &[u8]) -> Result<(), u8> {
        let (t, _, _, p) = split(pkt).ok_or(0xFF)?;
        if t != 0x11 || p.len() < 2 {
            return Err(0xFF);
        }
        if p[1] != 0 {
            return Err(p[1]);
        }
        self.sid_c = u32::from_le_bytes(p[8..12].try_into().unwrap());
        Ok(())
    }

    pub fn rakp1(&self) -> Vec<u8> {
        let mut p = vec![0x02, 0, 0, 0];
        p.extend_from_slice(&self.sid_c.to_le_bytes());
        p.extend_from_slice(&self.rm);
        p.extend_from_slice(&[self.role, 0, 0, self.user.len() as u8]);
        p.extend_from_slice(&self.user);
        v20(0x12, 0, 0, &p)
    }

    /// Ok(()) or Err(status) (0xFE = HMAC mismatch, i.e. wrong password).
    pub fn rakp2(&mut self, pkt: &[u8]) -> Result<(), u8> {
        let (t, _, _, p) = split(pkt).ok_or(0xFF)?;
        if t != 0x13 || p.len() < 2 {
            return Err(0xFF);
        }
        if p[1] != 0 {
            return Err(p[1]);
        }
        self.rc = p[8..24].try_into().unwrap();
        self.guid = p[24..40].try_into().unwrap();
        let expect = hmac(
            self.suite,
            &self.password,
            &[
                &self.sid_m.to_le_bytes(),
                &self.sid_c.to_le_bytes(),
                &self.rm,
                &self.rc,
                &self.guid,
                &[self.role, self.user.len() as u8],
                &self.user,
            ],
        );
        if p[40..] != expect[..] {
            return Err(0xFE);
        }
        Ok(())
    }

    pub fn rakp3(&mut self) -> Vec<u8> {
        let code = hmac(
            self.suite,
            &self.password,
            &[
                &self.rc,
                &self.sid_m.to_le_bytes(),
                &[self.role, self.user.len() as u8],
                &self.user,
            ],
        );
        self.sik = hmac(
            self.suite,
            &self.password,
            &[
                &self.rm,
                &self.rc,
                &[self.role, self.user.len() as u8],
                &self.user,
            ],
        );
        self.k1 = hmac(self.suite, &self.sik, &[&[1u8; 20]]);
        let k2 = hmac(self.suite, &self.sik, &[&[2u8; 20]]);
        self.aes = k2[..16].try_into().unwrap();
        let mut p = vec![0x03, 0, 0, 0];
        p.extend_from_slice(&self.sid_c.to_le_bytes());
        p.extend_from_slice(&code);
        v20(0x14, 0, 0, &p)
    }

    pub fn rakp4(&self, pkt: &[u8]) -> Result<(), u8> {
        let (t, _, _, p) = split(pkt).ok_or(0xFF)?;
        if t != 0x15 || p.len() < 2 {
            return Err(0xFF);
        }
        if p[1] != 0 {
            return Err(p[1]);
        }
        let icv = hmac(
            self.suite,
            &self.sik,
            &[&self.rm, &self.sid_c.to_le_bytes(), &self.guid],
        );
        let n = if self.suite == 17 { 16 } else { 12 };
        if p[8..] != icv[..n] {
            return Err(0xFE);
        }
        Ok(())
    }

    fn icv_len(&self) -> usize {
        if self.suite == 17 { 16 } else { 12 }
    }

    /// Seal a payload of type `ptype` into the session.
    pub fn seal(&mut self, ptype: u8, payload: &[u8]) -> Vec<u8> {
        self.seq = self.seq.wrapping_add(1);
        self.seal_with_seq(ptype, payload, self.seq)
    }

    pub fn seal_with_seq(&self, ptype: u8, payload: &[u8], seq: u32) -> Vec<u8> {
        let body = if self.encrypt {
            let iv = [0x5Au8; 16];
            let pad = (16 - (payload.len() + 1) % 16) % 16;
            let mut buf = payload.to_vec();
            buf.extend((1..=pad).map(|i| i as u8));
            buf.push(pad as u8);
            let len = buf.len();
            let enc = cbc::Encryptor::<aes::Aes128>::new((&self.aes).into(), (&iv).into());
            let c = enc
                .encrypt_padded_mut::<NoPadding>(&mut buf, len)
                .unwrap()
                .to_vec();
            let mut out = iv.to_vec();
            out.extend_from_slice(&c);
            out
        } else {
            payload.to_vec()
        };
        let flags = ptype | 0x40 | if self.encrypt { 0x80 } else { 0 };
        let mut p = v20(flags, self.sid_c, seq, &body);
        let pad = (4 - (p.len() - 4 + 2) % 4) % 4;
        p.extend(std::iter::repeat_n(0xFF, pad));
        p.push(pad as u8);
        p.push(0x07);
        let code = hmac(self.suite, &self.k1, &[&p[4..]]);
        p.extend_from_slice(&code[..self.icv_len()]);
        p
    }

    pub fn request(&mut self, netfn: u8, cmd: u8, data: &[u8]) -> Vec<u8> {
        self.rq_seq = (self.rq_seq + 1) % 64;
        let msg = ipmi_msg(netfn, cmd, self.rq_seq, data);
        self.seal(0x00, &msg)
    }

    /// Verify and open a sealed packet: (payload type, plaintext).
    pub fn open(&self, pkt: &[u8]) -> Option<(u8, Vec<u8>)> {
        let (t, sid, _, body) = split(pkt)?;
        if sid != self.sid_m || t & 0x40 == 0 {
            return None;
        }
        let n = self.icv_len();
        let signed = &pkt[4..pkt.len() - n];
        let code = hmac(self.suite, &self.k1, &[signed]);
        if pkt[pkt.len() - n..] != code[..n] {
            return None;
        }
        let plain = if t & 0x80 != 0 {
            let iv: [u8; 16] = body[..16].try_into().ok()?;
            let mut buf = body[16..].to_vec();
            let dec = cbc::Decryptor::<aes::Aes128>::new((&self.aes).into(), (&iv).into());
            let p = dec.decrypt_padded_mut::<NoPadding>(&mut buf).ok()?.to_vec();
            let pad = *p.last()? as usize;
            p[..p.len() - pad - 1].to_vec()
        } else {
            body.to_vec()
        };
        Some((t & 0x3F, plain))
    }

    /// (completion code, data) of an IPMI response packet.
    pub fn response(&self, pkt: &[u8]) -> Option<(u8, Vec<u8>)> {
        let (t, m) = self.open(pkt)?;
        if t != 0 || m.len() < 8 || checksum(&m[..2]) != m[2] {
            return None;
        }
        Some((m[6], m[7..m.len() - 1].to_vec()))
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
