//! The sans-IO state machine of one read transfer.
//!
//! Bytes and the current time go in, datagrams to send come out. File data
//! is read through [`BlockSource`] so tests can use a byte slice. Handles
//! option negotiation (blksize RFC 2348, tsize and timeout RFC 2349,
//! windowsize RFC 7440), block-number roll-over past 65535, retransmission
//! on timeout and the "sorcerer's apprentice" (duplicate ACKs never trigger
//! retransmission).

use std::time::{Duration, Instant};

use super::packet::{ErrorCode, Mode, Packet, encode_data, error_packet};

/// Where a transfer reads its file bytes from.
pub trait BlockSource {
    /// Fill `buf` from `offset`; returns the number of bytes read (short
    /// only at end of file).
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize>;
}

impl BlockSource for &[u8] {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.len());
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
}

impl BlockSource for Vec<u8> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        self.as_slice().read_at(offset, buf)
    }
}

impl BlockSource for std::fs::File {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let mut done = 0;
        while done < buf.len() {
            let n = FileExt::read_at(self, &mut buf[done..], offset + done as u64)?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }
}

/// Server-side limits for negotiated options.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TftpConfig {
    /// Retransmission timeout when the client asks for none.
    pub default_timeout: Duration,
    /// Retransmissions of the same window before giving up.
    pub max_retries: u32,
    /// Largest block size granted (RFC 2348 allows 8..=65464).
    pub max_blksize: u16,
    /// Largest window granted (RFC 7440 allows 1..=65535).
    pub max_windowsize: u16,
}

impl Default for TftpConfig {
    fn default() -> Self {
        Self {
            default_timeout: Duration::from_secs(1),
            max_retries: 5,
            max_blksize: 65464,
            max_windowsize: 64,
        }
    }
}

/// A parsed read request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequest {
    /// Requested file name, not yet checked against the jail.
    pub filename: String,
    /// Transfer mode.
    pub mode: Mode,
    /// Raw options (lower-case names).
    pub options: Vec<(String, String)>,
}

/// What the listening socket should do with a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A read request: resolve the file and start a [`Transfer`].
    Read(ReadRequest),
    /// Reply with this ERROR datagram and forget the peer.
    Reject(Vec<u8>, String),
    /// Not a request (stray ACK/DATA, garbage): drop silently.
    Ignore,
}

/// Classify a datagram received on the listening port.
pub fn classify_request(datagram: &[u8]) -> Incoming {
    match Packet::parse(datagram) {
        Ok(Packet::Rrq {
            filename,
            mode,
            options,
        }) => Incoming::Read(ReadRequest {
            filename,
            mode,
            options,
        }),
        Ok(Packet::Wrq { filename }) => Incoming::Reject(
            error_packet(ErrorCode::AccessViolation, "read-only server"),
            format!("write request for {filename:?} refused"),
        ),
        Ok(_) => Incoming::Ignore,
        Err(e) => {
            // Only answer things that look like requests (opcode 1/2).
            if matches!(datagram.get(..2), Some([0, 1]) | Some([0, 2])) {
                Incoming::Reject(
                    error_packet(ErrorCode::IllegalOperation, &e.to_string()),
                    format!("malformed request: {e}"),
                )
            } else {
                Incoming::Ignore
            }
        }
    }
}

/// Result of feeding the transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Still running; call again on the next datagram or at [`Transfer::deadline`].
    Running,
    /// The last block was acknowledged.
    Complete,
    /// The transfer ended without success.
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// OACK sent, waiting for ACK 0.
    AwaitOackAck,
    /// Data flowing.
    Sending,
    /// Finished (complete or failed).
    Done,
}

/// Negotiated transfer parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// Block size in bytes.
    pub blksize: u16,
    /// Blocks sent before waiting for an ACK.
    pub windowsize: u16,
    /// Retransmission timeout.
    pub timeout: Duration,
}

/// One read transfer.
#[derive(Debug)]
pub struct Transfer {
    params: Negotiated,
    size: u64,
    /// Total number of DATA blocks (the last one is shorter than blksize).
    total_blocks: u64,
    /// Highest block acknowledged (1-based; 0 = none).
    acked: u64,
    /// Highest block sent so far.
    sent_high: u64,
    oack: Option<Vec<u8>>,
    state: State,
    deadline: Instant,
    retries: u32,
    max_retries: u32,
    bytes_sent: u64,
    buf: Vec<u8>,
}

fn parse_num(v: &str) -> Option<u64> {
    v.trim().parse().ok()
}

impl Transfer {
    /// Negotiate options for a request of a file of `size` bytes.
    pub fn new(request: &ReadRequest, size: u64, config: &TftpConfig, now: Instant) -> Self {
        let mut params = Negotiated {
            blksize: 512,
            windowsize: 1,
            timeout: config.default_timeout,
        };
        let mut accepted = Vec::new();
        for (name, value) in &request.options {
            match name.as_str() {
                "blksize" => {
                    if let Some(v) = parse_num(value).filter(|v| (8..=65464).contains(v)) {
                        let v = v.min(u64::from(config.max_blksize.max(8)));
                        params.blksize = u16::try_from(v).unwrap_or(512);
                        accepted.push((name.clone(), params.blksize.to_string()));
                    }
                }
                "tsize" => accepted.push((name.clone(), size.to_string())),
                "timeout" => {
                    if let Some(v) = parse_num(value).filter(|v| (1..=255).contains(v)) {
                        params.timeout = Duration::from_secs(v);
                        accepted.push((name.clone(), v.to_string()));
                    }
                }
                "windowsize" => {
                    if let Some(v) = parse_num(value).filter(|v| (1..=65535).contains(v)) {
                        let v = v.min(u64::from(config.max_windowsize.max(1)));
                        params.windowsize = u16::try_from(v).unwrap_or(1);
                        accepted.push((name.clone(), params.windowsize.to_string()));
                    }
                }
                _ => {}
            }
        }
        let oack = (!accepted.is_empty()).then(|| Packet::Oack { options: accepted }.encode());
        Self {
            params,
            size,
            total_blocks: size / u64::from(params.blksize) + 1,
            acked: 0,
            sent_high: 0,
            oack,
            state: State::AwaitOackAck,
            deadline: now + params.timeout,
            retries: 0,
            max_retries: config.max_retries,
            bytes_sent: 0,
            buf: Vec::new(),
        }
    }

    /// The negotiated parameters.
    pub fn negotiated(&self) -> Negotiated {
        self.params
    }

    /// Payload bytes sent so far, retransmissions included.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent
    }

    /// File size being transferred.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// When [`Transfer::on_timeout`] must be called, `None` once finished.
    pub fn deadline(&self) -> Option<Instant> {
        (self.state != State::Done).then_some(self.deadline)
    }

    /// Produce the first datagrams (OACK, or the first window of data).
    pub fn start(
        &mut self,
        now: Instant,
        source: &mut impl BlockSource,
        out: &mut Vec<Vec<u8>>,
    ) -> Progress {
        self.deadline = now + self.params.timeout;
        match &self.oack {
            Some(oack) => {
                out.push(oack.clone());
                Progress::Running
            }
            None => {
                self.state = State::Sending;
                self.send_window(source, out)
            }
        }
    }

    /// Feed one datagram received from the client's transfer ID.
    pub fn on_datagram(
        &mut self,
        datagram: &[u8],
        now: Instant,
        source: &mut impl BlockSource,
        out: &mut Vec<Vec<u8>>,
    ) -> Progress {
        if self.state == State::Done {
            return Progress::Running;
        }
        match Packet::parse(datagram) {
            Ok(Packet::Ack { block }) => self.on_ack(block, now, source, out),
            Ok(Packet::Error { code, message }) => {
                self.state = State::Done;
                Progress::Failed(format!("client aborted with error {code}: {message}"))
            }
            Ok(Packet::Rrq { .. }) => Progress::Running, // duplicate request, ignore
            Ok(other) => {
                out.push(error_packet(
                    ErrorCode::IllegalOperation,
                    "unexpected packet during read transfer",
                ));
                self.state = State::Done;
                Progress::Failed(format!("unexpected packet from client: {other:?}"))
            }
            Err(_) => Progress::Running, // garbage: ignore, timeout will recover
        }
    }

    fn on_ack(
        &mut self,
        block: u16,
        now: Instant,
        source: &mut impl BlockSource,
        out: &mut Vec<Vec<u8>>,
    ) -> Progress {
        match self.state {
            State::AwaitOackAck => {
                if block != 0 {
                    return Progress::Running;
                }
                self.state = State::Sending;
            }
            State::Sending => {
                // Find the block in (acked, sent_high] with this 16-bit number.
                let base = self.acked;
                let span = self.sent_high.saturating_sub(base);
                let delta = u64::from(block.wrapping_sub(base as u16));
                if delta == 0 || delta > span {
                    return Progress::Running; // duplicate or stale ACK
                }
                self.acked = base + delta;
                if self.acked >= self.total_blocks {
                    self.state = State::Done;
                    return Progress::Complete;
                }
            }
            State::Done => return Progress::Running,
        }
        self.retries = 0;
        self.deadline = now + self.params.timeout;
        self.send_window(source, out)
    }

    /// Call when [`Transfer::deadline`] has passed: retransmit or give up.
    pub fn on_timeout(
        &mut self,
        now: Instant,
        source: &mut impl BlockSource,
        out: &mut Vec<Vec<u8>>,
    ) -> Progress {
        if self.state == State::Done || now < self.deadline {
            return Progress::Running;
        }
        self.retries += 1;
        if self.retries > self.max_retries {
            self.state = State::Done;
            out.push(error_packet(ErrorCode::NotDefined, "timed out"));
            return Progress::Failed(format!(
                "timed out after {} retransmissions",
                self.max_retries
            ));
        }
        self.deadline = now + self.params.timeout;
        match self.state {
            State::AwaitOackAck => {
                if let Some(oack) = &self.oack {
                    out.push(oack.clone());
                }
                Progress::Running
            }
            _ => self.send_window(source, out),
        }
    }

    /// Send blocks `acked+1 ..= acked+windowsize` (bounded by the last block).
    fn send_window(&mut self, source: &mut impl BlockSource, out: &mut Vec<Vec<u8>>) -> Progress {
        let blksize = usize::from(self.params.blksize);
        let last = (self.acked + u64::from(self.params.windowsize)).min(self.total_blocks);
        self.buf.resize(blksize, 0);
        for block in self.acked + 1..=last {
            let offset = (block - 1) * blksize as u64;
            let n = match source.read_at(offset, &mut self.buf[..blksize]) {
                Ok(n) => n,
                Err(e) => {
                    self.state = State::Done;
                    out.push(error_packet(ErrorCode::NotDefined, "read error"));
                    return Progress::Failed(format!("reading block {block}: {e}"));
                }
            };
            let expected = (self.size - offset.min(self.size)).min(blksize as u64) as usize;
            if n != expected {
                self.state = State::Done;
                out.push(error_packet(ErrorCode::NotDefined, "file changed"));
                return Progress::Failed(format!(
                    "file changed during transfer (block {block}: read {n}, expected {expected})"
                ));
            }
            let mut pkt = Vec::with_capacity(n + 4);
            encode_data(&mut pkt, block as u16, &self.buf[..n]);
            out.push(pkt);
            self.bytes_sent += n as u64;
        }
        self.sent_high = self.sent_high.max(last);
        Progress::Running
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(options: &[(&str, &str)]) -> ReadRequest {
        ReadRequest {
            filename: "f".into(),
            mode: Mode::Octet,
            options: options
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }

    fn ack(b: u16) -> Vec<u8> {
        Packet::Ack { block: b }.encode()
    }

    fn data_of(p: &[u8]) -> (u16, Vec<u8>) {
        match Packet::parse(p).unwrap() {
            Packet::Data { block, data } => (block, data.to_vec()),
            other => panic!("expected DATA, got {other:?}"),
        }
    }

    #[test]
    fn plain_transfer_without_options() {
        let file: Vec<u8> = (0..1300u32).map(|i| i as u8).collect();
        let mut src = file.as_slice();
        let now = Instant::now();
        let mut t = Transfer::new(&req(&[]), file.len() as u64, &TftpConfig::default(), now);
        let mut out = vec![];
        assert_eq!(t.start(now, &mut src, &mut out), Progress::Running);
        let mut got = Vec::new();
        for expected_block in 1..=3u16 {
            assert_eq!(out.len(), 1);
            let (b, d) = data_of(&out.remove(0));
            assert_eq!(b, expected_block);
            got.extend(d);
            let p = t.on_datagram(&ack(b), now, &mut src, &mut out);
            if expected_block == 3 {
                assert_eq!(p, Progress::Complete);
            }
        }
        assert_eq!(got, file);
    }

    #[test]
    fn exact_multiple_ends_with_empty_block() {
        let file = vec![7u8; 1024];
        let mut src = file.as_slice();
        let now = Instant::now();
        let mut t = Transfer::new(&req(&[]), 1024, &TftpConfig::default(), now);
        let mut out = vec![];
        t.start(now, &mut src, &mut out);
        t.on_datagram(&ack(1), now, &mut src, &mut out);
        t.on_datagram(&ack(2), now, &mut src, &mut out);
        let (b, d) = data_of(out.last().unwrap());
        assert_eq!((b, d.len()), (3, 0));
        assert_eq!(
            t.on_datagram(&ack(3), now, &mut src, &mut out),
            Progress::Complete
        );
    }

    #[test]
    fn options_negotiated_and_clamped() {
        let now = Instant::now();
        let cfg = TftpConfig {
            max_windowsize: 8,
            ..TftpConfig::default()
        };
        let t = Transfer::new(
            &req(&[
                ("blksize", "1468"),
                ("tsize", "0"),
                ("timeout", "3"),
                ("windowsize", "16"),
                ("bogus", "1"),
            ]),
            5000,
            &cfg,
            now,
        );
        let oack = Packet::parse(t.oack.as_ref().unwrap()).unwrap();
        assert_eq!(
            oack,
            Packet::Oack {
                options: vec![
                    ("blksize".into(), "1468".into()),
                    ("tsize".into(), "5000".into()),
                    ("timeout".into(), "3".into()),
                    ("windowsize".into(), "8".into()),
                ]
            }
        );
        assert_eq!(t.negotiated().timeout, Duration::from_secs(3));
        // Out-of-range values are ignored, not negotiated.
        let t = Transfer::new(
            &req(&[("blksize", "4"), ("timeout", "0"), ("windowsize", "x")]),
            10,
            &cfg,
            now,
        );
        assert!(t.oack.is_none());
        assert_eq!(t.negotiated().blksize, 512);
    }

    #[test]
    fn windowed_transfer_with_loss_and_rollover() {
        // 70000 blocks of 8 bytes: block numbers wrap past 65535.
        let file: Vec<u8> = (0..70_000u32 * 8 + 3).map(|i| (i % 251) as u8).collect();
        let mut src = file.as_slice();
        let now = Instant::now();
        let mut t = Transfer::new(
            &req(&[("blksize", "8"), ("windowsize", "4")]),
            file.len() as u64,
            &TftpConfig::default(),
            now,
        );
        let mut out = vec![];
        t.start(now, &mut src, &mut out);
        assert_eq!(out.len(), 1); // OACK
        out.clear();
        let mut p = t.on_datagram(&ack(0), now, &mut src, &mut out);
        let mut received = Vec::new();
        let mut expect: u64 = 1;
        let mut dropped_once = false;
        let mut rounds = 0;
        while p == Progress::Running {
            rounds += 1;
            assert!(rounds < 100_000, "no progress");
            let window = std::mem::take(&mut out);
            assert!(!window.is_empty());
            let mut last_good = None;
            for (i, pkt) in window.iter().enumerate() {
                // Simulate one loss in the middle of the window once.
                if !dropped_once && expect == 65_534 && i == 1 {
                    dropped_once = true;
                    break;
                }
                let (b, d) = data_of(pkt);
                if b == expect as u16 {
                    received.extend(d);
                    last_good = Some(b);
                    expect += 1;
                }
            }
            let a = last_good.unwrap_or((expect - 1) as u16);
            p = t.on_datagram(&ack(a), now, &mut src, &mut out);
        }
        assert_eq!(p, Progress::Complete);
        assert!(dropped_once);
        assert_eq!(received, file);
    }

    #[test]
    fn duplicate_acks_do_not_retransmit_and_timeouts_do() {
        let file = vec![1u8; 2000];
        let mut src = file.as_slice();
        let t0 = Instant::now();
        let mut t = Transfer::new(&req(&[]), 2000, &TftpConfig::default(), t0);
        let mut out = vec![];
        t.start(t0, &mut src, &mut out);
        t.on_datagram(&ack(1), t0, &mut src, &mut out);
        out.clear();
        t.on_datagram(&ack(1), t0, &mut src, &mut out);
        assert!(out.is_empty(), "duplicate ACK must not cause a resend");
        // Too early: nothing.
        t.on_timeout(t0, &mut src, &mut out);
        assert!(out.is_empty());
        let late = t.deadline().unwrap();
        t.on_timeout(late, &mut src, &mut out);
        assert_eq!(data_of(&out[0]).0, 2);
        // Give up after max_retries.
        let mut now = late;
        let mut result = Progress::Running;
        for _ in 0..10 {
            now += Duration::from_secs(2);
            result = t.on_timeout(now, &mut src, &mut out);
            if result != Progress::Running {
                break;
            }
        }
        assert!(matches!(result, Progress::Failed(_)));
        assert!(t.deadline().is_none());
    }

    #[test]
    fn client_error_aborts() {
        let file = vec![1u8; 10];
        let mut src = file.as_slice();
        let now = Instant::now();
        let mut t = Transfer::new(&req(&[("tsize", "0")]), 10, &TftpConfig::default(), now);
        let mut out = vec![];
        t.start(now, &mut src, &mut out);
        let err = error_packet(ErrorCode::OptionRefused, "no thanks");
        assert!(matches!(
            t.on_datagram(&err, now, &mut src, &mut out),
            Progress::Failed(_)
        ));
    }

    #[test]
    fn write_requests_rejected() {
        let wrq = Packet::Wrq {
            filename: "x".into(),
        }
        .encode();
        assert!(matches!(classify_request(&wrq), Incoming::Reject(..)));
        assert_eq!(classify_request(&ack(3)), Incoming::Ignore);
        assert!(matches!(
            classify_request(b"\x00\x01nonul"),
            Incoming::Reject(..)
        ));
    }
}
