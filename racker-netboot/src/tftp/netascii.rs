//! Netascii (RFC 764 line endings) converted while the file is sent: LF
//! becomes CR LF and CR becomes CR NUL, reading the raw file through a
//! small fixed buffer instead of converting it whole in memory.

use std::collections::BTreeMap;

use super::transfer::BlockSource;

/// Raw bytes read at a time; also the most a transfer buffers.
pub const RAW_BUFFER: usize = 4096;

/// Positions remembered for rewinds (retransmitting a window); a window is
/// at most 64 blocks, so this covers any rewind the transfer can ask for.
const MAX_MARKS: usize = 256;

/// A position in both views: `raw` bytes of the file produce `enc` bytes
/// of netascii, plus `pending` (the second byte of a pair split there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    enc: u64,
    raw: u64,
    pending: Option<u8>,
}

/// The netascii view of a raw [`BlockSource`].
#[derive(Debug)]
pub struct Netascii<S> {
    raw: S,
    raw_len: u64,
    len: u64,
    cursor: Cursor,
    marks: BTreeMap<u64, Cursor>,
    buf: Box<[u8; RAW_BUFFER]>,
    buf_start: u64,
    buf_len: usize,
}

impl<S: BlockSource> Netascii<S> {
    /// Wrap `raw` (of `raw_len` bytes); reads it once, in `RAW_BUFFER`
    /// pieces, to learn the converted length (for `tsize` and the end).
    pub fn new(mut raw: S, raw_len: u64) -> std::io::Result<Self> {
        let mut buf = Box::new([0u8; RAW_BUFFER]);
        let mut len = 0u64;
        let mut offset = 0u64;
        while offset < raw_len {
            let n = raw.read_at(offset, &mut buf[..])?;
            if n == 0 {
                break;
            }
            let extra = buf[..n]
                .iter()
                .filter(|&&b| b == b'\n' || b == b'\r')
                .count();
            len += (n + extra) as u64;
            offset += n as u64;
        }
        let start = Cursor {
            enc: 0,
            raw: 0,
            pending: None,
        };
        Ok(Self {
            raw,
            raw_len: offset,
            len,
            cursor: start,
            marks: BTreeMap::from([(0, start)]),
            buf,
            buf_start: 0,
            buf_len: 0,
        })
    }

    /// The converted length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty file.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes this source holds in memory for file data (bounded by
    /// [`RAW_BUFFER`] whatever the file size).
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Remembered rewind positions (bounded).
    pub fn marks(&self) -> usize {
        self.marks.len()
    }

    fn raw_byte(&mut self, at: u64) -> std::io::Result<Option<u8>> {
        if at >= self.raw_len {
            return Ok(None);
        }
        let in_buf = at
            .checked_sub(self.buf_start)
            .and_then(|d| usize::try_from(d).ok())
            .filter(|&d| d < self.buf_len);
        let idx = match in_buf {
            Some(d) => d,
            None => {
                self.buf_len = self.raw.read_at(at, &mut self.buf[..])?;
                self.buf_start = at;
                if self.buf_len == 0 {
                    return Ok(None);
                }
                0
            }
        };
        Ok(self.buf.get(idx).copied())
    }

    /// The next converted byte at the cursor, advancing it.
    fn next_byte(&mut self) -> std::io::Result<Option<u8>> {
        if let Some(p) = self.cursor.pending.take() {
            self.cursor.enc += 1;
            return Ok(Some(p));
        }
        let Some(b) = self.raw_byte(self.cursor.raw)? else {
            return Ok(None);
        };
        self.cursor.raw += 1;
        self.cursor.enc += 1;
        Ok(Some(match b {
            b'\n' => {
                self.cursor.pending = Some(b'\n');
                b'\r'
            }
            b'\r' => {
                self.cursor.pending = Some(0);
                b'\r'
            }
            other => other,
        }))
    }

    fn seek(&mut self, offset: u64) -> std::io::Result<()> {
        if offset < self.cursor.enc {
            // Rewind to the nearest remembered position at or before it.
            if let Some((_, &c)) = self.marks.range(..=offset).next_back() {
                self.cursor = c;
            }
        }
        while self.cursor.enc < offset {
            if self.next_byte()?.is_none() {
                break;
            }
        }
        Ok(())
    }
}

impl<S: BlockSource> BlockSource for Netascii<S> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        self.seek(offset)?;
        if self.cursor.enc == offset {
            self.marks.insert(offset, self.cursor);
            while self.marks.len() > MAX_MARKS {
                // Keep the start (a full rewind is always possible).
                let Some((&k, _)) = self.marks.range(1..).next() else {
                    break;
                };
                self.marks.remove(&k);
            }
        }
        let mut n = 0;
        while n < buf.len() {
            match self.next_byte()? {
                Some(b) => {
                    buf[n] = b;
                    n += 1;
                }
                None => break,
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tftp::packet::netascii_encode;
    use proptest::prelude::*;

    fn read_all(src: &mut Netascii<&[u8]>, block: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; block];
        loop {
            let n = src.read_at(out.len() as u64, &mut buf).unwrap();
            out.extend_from_slice(&buf[..n]);
            if n < block {
                return out;
            }
        }
    }

    #[test]
    fn converts_like_the_whole_file_encoder() {
        let raw = b"a\nb\r\nc\rd\n\n\r\r".as_slice();
        let mut src = Netascii::new(raw, raw.len() as u64).unwrap();
        assert_eq!(src.len(), netascii_encode(raw).len() as u64);
        for block in [1, 2, 3, 512] {
            let mut s = Netascii::new(raw, raw.len() as u64).unwrap();
            assert_eq!(read_all(&mut s, block), netascii_encode(raw), "{block}");
        }
        assert_eq!(read_all(&mut src, 4), netascii_encode(raw));
    }

    #[test]
    fn large_file_windows_and_rewinds_stay_bounded() {
        let raw: Vec<u8> = b"abc\r\ndef\n"
            .iter()
            .copied()
            .cycle()
            .take(8 << 20)
            .collect();
        let want = netascii_encode(&raw);
        let mut src = Netascii::new(raw.as_slice(), raw.len() as u64).unwrap();
        let block = 65464;
        let mut buf = vec![0u8; block];
        let mut at = 0usize;
        let mut window = 0;
        while at < want.len() {
            let n = src.read_at(at as u64, &mut buf).unwrap();
            assert_eq!(&buf[..n], &want[at..at + n]);
            at += n;
            window += 1;
            // Every 64 blocks, resend the window (a lost ACK).
            if window % 64 == 0 {
                at -= 64 * block;
                window = 0;
                let n = src.read_at(at as u64, &mut buf).unwrap();
                assert_eq!(&buf[..n], &want[at..at + n]);
                at += 64 * block;
            }
            assert_eq!(src.buffered_bytes(), RAW_BUFFER);
            assert!(src.marks() <= MAX_MARKS);
        }
    }

    proptest! {
        #[test]
        fn random_reads_and_rewinds_match(
            raw in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), any::<u8>()], 0..20_000),
            reads in proptest::collection::vec((any::<u16>(), 1usize..1500), 1..40),
        ) {
            let want = netascii_encode(&raw);
            let mut src = Netascii::new(raw.as_slice(), raw.len() as u64).unwrap();
            prop_assert_eq!(src.len(), want.len() as u64);
            for (at, len) in reads {
                let at = u64::from(at) % (want.len() as u64 + 1);
                let mut buf = vec![0u8; len];
                let n = src.read_at(at, &mut buf).unwrap();
                let start = at as usize;
                let end = (start + len).min(want.len());
                prop_assert_eq!(&buf[..n], &want[start..end]);
            }
        }
    }
}
