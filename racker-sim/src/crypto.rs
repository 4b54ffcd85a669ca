//! Cipher-suite algorithms used by RMCP+ (server side).

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::NoPadding};
use hmac::{Hmac, Mac};

/// The RMCP+ cipher suites this simulator offers.
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

impl CipherSuite {
    /// The suite's number as used by `ipmitool -C`.
    pub fn id(self) -> u8 {
        match self {
            CipherSuite::Suite3 => 3,
            CipherSuite::Suite17 => 17,
        }
    }

    /// (authentication, integrity, confidentiality) algorithm numbers.
    pub(crate) fn algorithms(self) -> (u8, u8, u8) {
        match self {
            CipherSuite::Suite3 => (1, 1, 1),
            CipherSuite::Suite17 => (3, 4, 1),
        }
    }

    /// The suite with these algorithm numbers, if offered.
    pub(crate) fn from_algorithms(auth: u8, integrity: u8, conf: u8) -> Option<Self> {
        [CipherSuite::Suite3, CipherSuite::Suite17]
            .into_iter()
            .find(|s| s.algorithms() == (auth, integrity, conf))
    }

    /// HMAC with the suite's hash (full length).
    pub(crate) fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        match self {
            CipherSuite::Suite3 => {
                let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(key)
                    .unwrap_or_else(|_| unreachable_hmac());
                for p in parts {
                    mac.update(p);
                }
                mac.finalize().into_bytes().to_vec()
            }
            CipherSuite::Suite17 => {
                let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key)
                    .unwrap_or_else(|_| unreachable_hmac());
                for p in parts {
                    mac.update(p);
                }
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    /// Length of the truncated integrity code (AuthCode / RAKP4 ICV).
    pub(crate) fn icv_len(self) -> usize {
        match self {
            CipherSuite::Suite3 => 12,
            CipherSuite::Suite17 => 16,
        }
    }

    /// Length of the full RAKP HMAC.
    pub(crate) fn rakp_len(self) -> usize {
        match self {
            CipherSuite::Suite3 => 20,
            CipherSuite::Suite17 => 32,
        }
    }
}

fn unreachable_hmac() -> ! {
    // HMAC accepts keys of any length; new_from_slice cannot fail.
    unreachable!("HMAC accepts any key length")
}

type Aes128CbcEnc = cbc::Encryptor<aes::Aes128>;
type Aes128CbcDec = cbc::Decryptor<aes::Aes128>;

/// Encrypt `plain` with AES-CBC-128 using the IPMI confidentiality trailer
/// (`01 02 .. n n`); returns IV ‖ ciphertext.
pub(crate) fn aes_encrypt(key: &[u8; 16], iv: [u8; 16], plain: &[u8]) -> Vec<u8> {
    let pad = (16 - (plain.len() + 1) % 16) % 16;
    let mut buf = Vec::with_capacity(16 + plain.len() + pad + 1);
    buf.extend_from_slice(plain);
    buf.extend((1..=pad).map(|i| i as u8));
    buf.push(pad as u8);
    let len = buf.len();
    let enc = Aes128CbcEnc::new(key.into(), &iv.into());
    let cipher = enc
        .encrypt_padded_mut::<NoPadding>(&mut buf, len)
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    let mut out = iv.to_vec();
    out.extend_from_slice(&cipher);
    out
}

/// Decrypt IV ‖ ciphertext; `None` on any malformation.
pub(crate) fn aes_decrypt(key: &[u8; 16], data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < 32 || !data.len().is_multiple_of(16) {
        return None;
    }
    let (iv, cipher) = data.split_at(16);
    let iv: [u8; 16] = iv.try_into().ok()?;
    let mut buf = cipher.to_vec();
    let dec = Aes128CbcDec::new(key.into(), &iv.into());
    let plain = dec.decrypt_padded_mut::<NoPadding>(&mut buf).ok()?;
    let pad = usize::from(*plain.last()?);
    if pad > 15 || pad + 1 > plain.len() {
        return None;
    }
    let body = plain.len() - pad - 1;
    Some(plain[..body].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aes_round_trip_all_lengths() {
        let key = [7u8; 16];
        for len in 0..40 {
            let plain: Vec<u8> = (0..len as u8).collect();
            let enc = aes_encrypt(&key, [3u8; 16], &plain);
            assert_eq!(enc.len() % 16, 0);
            assert_eq!(aes_decrypt(&key, &enc).unwrap(), plain);
        }
    }

    #[test]
    fn hmac_sha1_known_vector() {
        // RFC 2202 test case 2.
        let mac = CipherSuite::Suite3.hmac(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            mac,
            [
                0xef, 0xfc, 0xdf, 0x6a, 0xe5, 0xeb, 0x2f, 0xa2, 0xd2, 0x74, 0x16, 0xd5, 0xf1, 0x84,
                0xdf, 0x9c, 0x25, 0x9a, 0x7c, 0x79
            ]
        );
        assert_eq!(CipherSuite::Suite17.hmac(b"k", &[b"x"]).len(), 32);
    }
}
