//! RMCP+ cipher suites 3 and 17: the RAKP HMACs, session keys, the
//! integrity AuthCode (HMAC-SHA1-96, HMAC-SHA256-128) and AES-CBC-128
//! confidentiality (IPMI 2.0 §13.28–13.29, docs/ipmi.md).

use aes::Aes128;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::NoPadding};
use hmac::{Hmac, Mac};
use zeroize::Zeroize;

/// An RMCP+ cipher suite implemented by this crate (client and BMC side).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[non_exhaustive]
pub enum CipherSuite {
    /// Suite 3: RAKP-HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128.
    Suite3,
    /// Suite 17: RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128.
    Suite17,
}

/// Every suite this crate implements, in ascending id order.
pub const ALL_SUITES: [CipherSuite; 2] = [CipherSuite::Suite3, CipherSuite::Suite17];

impl CipherSuite {
    /// The suite's number (as used by `ipmitool -C`).
    pub fn id(self) -> u8 {
        match self {
            CipherSuite::Suite3 => 3,
            CipherSuite::Suite17 => 17,
        }
    }

    /// The suite with that number, if implemented.
    pub fn from_id(id: u8) -> Option<Self> {
        ALL_SUITES.into_iter().find(|s| s.id() == id)
    }

    /// (authentication, integrity, confidentiality) algorithm numbers.
    pub fn algorithms(self) -> (u8, u8, u8) {
        match self {
            CipherSuite::Suite3 => (0x01, 0x01, 0x01),
            CipherSuite::Suite17 => (0x03, 0x04, 0x01),
        }
    }

    /// The suite with these algorithm numbers, if implemented.
    pub fn from_algorithms(auth: u8, integrity: u8, confidentiality: u8) -> Option<Self> {
        ALL_SUITES
            .into_iter()
            .find(|s| s.algorithms() == (auth, integrity, confidentiality))
    }

    /// Length of the RAKP2/RAKP3 key exchange codes (the full HMAC).
    pub fn hmac_len(self) -> usize {
        match self {
            CipherSuite::Suite3 => 20,
            CipherSuite::Suite17 => 32,
        }
    }

    /// Length of the RAKP4 integrity check value and of the AuthCode.
    pub fn icv_len(self) -> usize {
        match self {
            CipherSuite::Suite3 => 12,
            CipherSuite::Suite17 => 16,
        }
    }

    /// HMAC over the concatenation of `parts` with this suite's hash.
    pub fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        match self {
            CipherSuite::Suite3 => hmac_with::<Hmac<sha1::Sha1>>(key, parts),
            CipherSuite::Suite17 => hmac_with::<Hmac<sha2::Sha256>>(key, parts),
        }
    }
}

impl std::fmt::Display for CipherSuite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.id())
    }
}

fn hmac_with<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for HMAC.
    match <M as hmac::digest::KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            for p in parts {
                mac.update(p);
            }
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// Constant-time comparison of two MACs.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What both ends of a RAKP exchange know once RAKP Message 2 is in: the
/// inputs of every key exchange code (IPMI 2.0 §13.31).
#[derive(Clone)]
pub struct RakpParams<'a> {
    /// The negotiated suite.
    pub suite: CipherSuite,
    /// Remote console session id.
    pub sid_m: u32,
    /// Managed system (BMC) session id.
    pub sid_c: u32,
    /// Remote console random number.
    pub rm: [u8; 16],
    /// Managed system random number.
    pub rc: [u8; 16],
    /// Managed system GUID.
    pub guid: [u8; 16],
    /// Requested maximum privilege level and lookup bit (RAKP1 byte 24).
    pub role: u8,
    /// User name as sent in RAKP1.
    pub user: &'a [u8],
}

impl std::fmt::Debug for RakpParams<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RakpParams")
            .field("suite", &self.suite)
            .field("sid_m", &self.sid_m)
            .field("sid_c", &self.sid_c)
            .finish_non_exhaustive()
    }
}

impl RakpParams<'_> {
    fn ulen(&self) -> [u8; 1] {
        [u8::try_from(self.user.len()).unwrap_or(0)]
    }

    /// RAKP Message 2 key exchange authentication code:
    /// HMAC_Kuid(SIDm ‖ SIDc ‖ Rm ‖ Rc ‖ GUIDc ‖ ROLEm ‖ ULENm ‖ UNAMEm).
    pub fn rakp2_code(&self, kuid: &[u8]) -> Vec<u8> {
        self.suite.hmac(
            kuid,
            &[
                &self.sid_m.to_le_bytes(),
                &self.sid_c.to_le_bytes(),
                &self.rm,
                &self.rc,
                &self.guid,
                &[self.role],
                &self.ulen(),
                self.user,
            ],
        )
    }

    /// RAKP Message 3 key exchange authentication code:
    /// HMAC_Kuid(Rc ‖ SIDm ‖ ROLEm ‖ ULENm ‖ UNAMEm).
    pub fn rakp3_code(&self, kuid: &[u8]) -> Vec<u8> {
        self.suite.hmac(
            kuid,
            &[
                &self.rc,
                &self.sid_m.to_le_bytes(),
                &[self.role],
                &self.ulen(),
                self.user,
            ],
        )
    }

    /// Session keys (SIK, K1, K2) from the user key `kuid`.
    pub fn session_keys(&self, kuid: &[u8]) -> SessionKeys {
        SessionKeys::derive(self.suite, kuid, &self.rm, &self.rc, self.role, self.user)
    }

    /// RAKP Message 4 integrity check value: HMAC_SIK(Rm ‖ SIDc ‖ GUIDc),
    /// truncated to the suite's ICV length.
    pub fn rakp4_icv(&self, keys: &SessionKeys) -> Vec<u8> {
        let mut icv = self.suite.hmac(
            &keys.sik,
            &[&self.rm, &self.sid_c.to_le_bytes(), &self.guid],
        );
        icv.truncate(self.suite.icv_len());
        icv
    }
}

/// Keys derived once RAKP succeeded. `Debug` shows only the suite; the
/// key bytes are zeroed on drop.
#[derive(Clone)]
pub struct SessionKeys {
    suite: CipherSuite,
    sik: Vec<u8>,
    k1: Vec<u8>,
    aes_key: [u8; 16],
}

impl Drop for SessionKeys {
    fn drop(&mut self) {
        self.sik.zeroize();
        self.k1.zeroize();
        self.aes_key.zeroize();
    }
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl SessionKeys {
    /// SIK = HMAC_Kg(Rm ‖ Rc ‖ ROLEm ‖ ULENm ‖ UNAMEm); K1, K2 from SIK.
    pub fn derive(
        suite: CipherSuite,
        kg: &[u8],
        rm: &[u8; 16],
        rc: &[u8; 16],
        role: u8,
        user: &[u8],
    ) -> Self {
        let ulen = [u8::try_from(user.len()).unwrap_or(0)];
        let sik = suite.hmac(kg, &[rm, rc, &[role], &ulen, user]);
        let k1 = suite.hmac(&sik, &[&[0x01; 20]]);
        let mut k2 = suite.hmac(&sik, &[&[0x02; 20]]);
        let mut aes_key = [0u8; 16];
        if let Some(k) = k2.get(..16) {
            aes_key.copy_from_slice(k);
        }
        k2.zeroize();
        SessionKeys {
            suite,
            sik,
            k1,
            aes_key,
        }
    }

    /// The suite these keys belong to.
    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    /// AuthCode of a packet: HMAC_K1(AuthType … Next Header), truncated.
    pub fn auth_code(&self, covered: &[u8]) -> Vec<u8> {
        let mut m = self.suite.hmac(&self.k1, &[covered]);
        m.truncate(self.suite.icv_len());
        m
    }

    /// IV ‖ AES-CBC-128(data ‖ 01 02 … n ‖ n).
    pub fn encrypt(&self, iv: [u8; 16], data: &[u8]) -> Vec<u8> {
        let pad = (16 - (data.len() + 1) % 16) % 16;
        let mut plain = Vec::with_capacity(data.len() + pad + 1);
        plain.extend_from_slice(data);
        for i in 1..=pad {
            plain.push(u8::try_from(i).unwrap_or(0));
        }
        plain.push(u8::try_from(pad).unwrap_or(0));
        let enc = cbc::Encryptor::<Aes128>::new(&self.aes_key.into(), &iv.into());
        let ct = enc.encrypt_padded_vec_mut::<NoPadding>(&plain);
        plain.zeroize();
        let mut out = Vec::with_capacity(16 + ct.len());
        out.extend_from_slice(&iv);
        out.extend_from_slice(&ct);
        out
    }

    /// Inverse of [`SessionKeys::encrypt`]; `None` when malformed.
    pub fn decrypt(&self, payload: &[u8]) -> Option<Vec<u8>> {
        if payload.len() < 32 || !payload.len().is_multiple_of(16) {
            return None;
        }
        let (iv, ct) = payload.split_at(16);
        let mut ivb = [0u8; 16];
        ivb.copy_from_slice(iv);
        let dec = cbc::Decryptor::<Aes128>::new(&self.aes_key.into(), &ivb.into());
        let mut plain = dec.decrypt_padded_vec_mut::<NoPadding>(ct).ok()?;
        let pad = usize::from(*plain.last()?);
        if pad > 15 || pad + 1 > plain.len() {
            return None;
        }
        plain.truncate(plain.len() - pad - 1);
        Some(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha1_rfc2202_case2() {
        let m = CipherSuite::Suite3.hmac(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            m,
            [
                0xef, 0xfc, 0xdf, 0x6a, 0xe5, 0xeb, 0x2f, 0xa2, 0xd2, 0x74, 0x16, 0xd5, 0xf1, 0x84,
                0xdf, 0x9c, 0x25, 0x9a, 0x7c, 0x79
            ]
        );
    }

    #[test]
    fn hmac_sha256_rfc4231_case2() {
        let m = CipherSuite::Suite17.hmac(b"Jefe", &[b"what do ya want for nothing?"]);
        assert_eq!(m[..4], [0x5b, 0xdc, 0xc1, 0x46]);
        assert_eq!(m.len(), 32);
    }

    #[test]
    fn suites_by_id_and_algorithms() {
        for s in ALL_SUITES {
            assert_eq!(CipherSuite::from_id(s.id()), Some(s));
            let (a, i, c) = s.algorithms();
            assert_eq!(CipherSuite::from_algorithms(a, i, c), Some(s));
        }
        assert_eq!(CipherSuite::from_id(0), None);
    }

    #[test]
    fn encrypt_decrypt_roundtrip_all_lengths() {
        let keys = SessionKeys::derive(
            CipherSuite::Suite17,
            b"pw",
            &[1; 16],
            &[2; 16],
            0x14,
            b"admin",
        );
        for len in 0..40 {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let ct = keys.encrypt([7; 16], &data);
            assert_eq!(ct.len() % 16, 0);
            assert_eq!(keys.decrypt(&ct), Some(data));
        }
    }
}
