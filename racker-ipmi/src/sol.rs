//! Serial-over-LAN console on top of a [`Session`].

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::client::Session;
use crate::codec::{RawRequest, SolPacket};
use crate::error::{Error, Result};

/// An active SOL payload (instance 1) in a session.
#[derive(Debug)]
pub struct SolConsole {
    session: Session,
    tx_seq: u8,
    last_rx_seq: u8,
    max_chunk: usize,
    received: VecDeque<u8>,
    acked: Option<u8>,
}

/// Activate Payload request data: SOL, instance 1, encrypted +
/// authenticated, serial alerts deferred, no test mode.
const ACTIVATE: [u8; 6] = [0x01, 0x01, 0xC6, 0x00, 0x00, 0x00];
const DEACTIVATE: [u8; 6] = [0x01, 0x01, 0x00, 0x00, 0x00, 0x00];

impl SolConsole {
    /// Deactivate any dangling SOL payload (another console's), then
    /// activate SOL in `session`.
    pub async fn activate(mut session: Session) -> Result<SolConsole> {
        // 0x80 = payload already deactivated: fine.
        let r = session
            .raw(RawRequest::new(0x06, 0x49, DEACTIVATE.to_vec()))
            .await?;
        if r.completion_code != 0 && r.completion_code != 0x80 {
            return Err(cc(&session, "Deactivate Payload", r.completion_code));
        }
        let r = session
            .raw(RawRequest::new(0x06, 0x48, ACTIVATE.to_vec()))
            .await?;
        if r.completion_code != 0 {
            return Err(cc(&session, "Activate Payload (SOL)", r.completion_code));
        }
        if r.data.len() < 12 {
            return Err(Error::Malformed {
                bmc: session.address().to_string(),
                command: "Activate Payload (SOL)".into(),
                detail: format!("{} bytes instead of 12", r.data.len()),
            });
        }
        // Inbound payload size (what we may send), LS byte first.
        let inbound = usize::from(u16::from_le_bytes([r.data[4], r.data[5]]));
        let max_chunk = inbound.saturating_sub(4).clamp(1, 200);
        Ok(SolConsole {
            session,
            tx_seq: 0,
            last_rx_seq: 0,
            max_chunk,
            received: VecDeque::new(),
            acked: None,
        })
    }

    /// Console output received so far, waiting at most `wait` for some to
    /// arrive. Empty when nothing came.
    pub async fn read(&mut self, wait: Duration) -> Result<Vec<u8>> {
        if self.received.is_empty() {
            let deadline = Instant::now() + wait;
            while self.received.is_empty() {
                if !self.pump(deadline).await? {
                    break;
                }
            }
        }
        Ok(self.received.drain(..).collect())
    }

    /// Send console input; waits for the BMC's acknowledgement of each
    /// packet, retransmitting per the session's retry settings.
    pub async fn write(&mut self, data: &[u8], timeout: Duration, retries: u32) -> Result<()> {
        for chunk in data.chunks(self.max_chunk) {
            self.tx_seq = if self.tx_seq >= 15 {
                1
            } else {
                self.tx_seq + 1
            };
            let pkt = SolPacket {
                sequence: self.tx_seq,
                ack_sequence: 0,
                accepted: 0,
                status: 0,
                data: chunk.to_vec(),
            };
            let per_try = timeout / retries.saturating_add(1).max(1);
            let mut acked = false;
            for _ in 0..=retries {
                self.acked = None;
                self.session.send_sol(&pkt)?;
                let deadline = Instant::now() + per_try;
                while self.acked != Some(self.tx_seq) {
                    if !self.pump(deadline).await? {
                        break;
                    }
                }
                if self.acked == Some(self.tx_seq) {
                    acked = true;
                    break;
                }
            }
            if !acked {
                return Err(Error::Timeout {
                    bmc: self.session.address().to_string(),
                    stage: "SOL acknowledgement",
                    after: timeout,
                    attempts: retries + 1,
                });
            }
        }
        Ok(())
    }

    /// Keep the session alive while the console is idle (BMCs drop idle
    /// sessions after about a minute): one Get Device ID round trip.
    /// Console data arriving meanwhile is kept for [`SolConsole::read`].
    pub async fn keepalive(&mut self) -> Result<()> {
        self.session
            .request(RawRequest::new(0x06, 0x01, vec![]))
            .await?;
        Ok(())
    }

    /// Deactivate SOL and hand the session back.
    pub async fn deactivate(mut self) -> Result<Session> {
        let r = self
            .session
            .raw(RawRequest::new(0x06, 0x49, DEACTIVATE.to_vec()))
            .await?;
        if r.completion_code != 0 && r.completion_code != 0x80 {
            return Err(cc(&self.session, "Deactivate Payload", r.completion_code));
        }
        Ok(self.session)
    }

    /// Run an interactive console until the user types `~.` at the start
    /// of a line or `input` ends and the BMC falls silent: `input` (the
    /// keyboard) goes to the node as typed, the node's output to `output`;
    /// an idle session is kept alive. Deactivates SOL and closes the
    /// session at the end.
    pub async fn attach<R, W>(
        mut self,
        mut input: R,
        mut output: W,
        timeout: Duration,
        retries: u32,
    ) -> Result<()>
    where
        R: tokio::io::AsyncRead + Unpin,
        W: tokio::io::AsyncWrite + Unpin,
    {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let io = |op: &'static str, bmc: &Session| {
            let bmc = bmc.address().to_string();
            move |source| Error::Io { bmc, op, source }
        };
        let mut scanner = EscapeScanner::new();
        let mut buf = [0u8; 512];
        let mut input_open = true;
        let mut keepalive = tokio::time::interval(Duration::from_secs(15));
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        keepalive.tick().await; // the first tick is immediate
        loop {
            tokio::select! {
                _ = keepalive.tick() => self.keepalive().await?,
                n = input.read(&mut buf), if input_open => {
                    let n = n.map_err(io("read the console input", &self.session))?;
                    if n == 0 {
                        input_open = false;
                        continue;
                    }
                    let (forward, detach) = scanner.feed(&buf[..n]);
                    if !forward.is_empty() {
                        self.write(&forward, timeout, retries).await?;
                    }
                    if detach {
                        break;
                    }
                }
                out = self.read(Duration::from_millis(200)) => {
                    let out = out?;
                    if !out.is_empty() {
                        let written = match output.write_all(&out).await {
                            Ok(()) => output.flush().await,
                            Err(e) => Err(e),
                        };
                        written.map_err(io("write the console output", &self.session))?;
                    }
                }
            }
        }
        self.deactivate().await?.close().await
    }

    /// Receive one packet (acking data); false when `deadline` passed.
    async fn pump(&mut self, deadline: Instant) -> Result<bool> {
        let Some(p) = self.session.next_sol(deadline).await? else {
            return Ok(false);
        };
        if p.ack_sequence != 0 {
            self.acked = Some(p.ack_sequence);
        }
        if p.sequence != 0 {
            let ack = SolPacket {
                sequence: 0,
                ack_sequence: p.sequence,
                accepted: u8::try_from(p.data.len()).unwrap_or(u8::MAX),
                status: 0,
                data: Vec::new(),
            };
            self.session.send_sol(&ack)?;
            // A retransmission repeats the sequence number: keep the data once.
            if p.sequence != self.last_rx_seq {
                self.last_rx_seq = p.sequence;
                self.received.extend(p.data);
            }
        }
        Ok(true)
    }
}

fn cc(s: &Session, command: &str, code: u8) -> Error {
    Error::CompletionCode {
        bmc: s.address().to_string(),
        command: command.into(),
        code,
    }
}

/// Detects the `~.` detach sequence (at the start of a line) in console
/// input, like ssh and ipmitool.
#[derive(Debug, Clone, Default)]
pub struct EscapeScanner {
    at_line_start: bool,
    tilde: bool,
    started: bool,
}

impl EscapeScanner {
    /// A scanner positioned at the start of a line.
    pub fn new() -> Self {
        EscapeScanner {
            at_line_start: true,
            tilde: false,
            started: true,
        }
    }

    /// Feed input; returns the bytes to forward and whether `~.` was seen
    /// (bytes after it are dropped). `~~` sends a single `~`.
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let _ = self.started;
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if self.tilde {
                self.tilde = false;
                match b {
                    b'.' => return (out, true),
                    b'~' => {
                        out.push(b'~');
                        self.at_line_start = false;
                        continue;
                    }
                    _ => out.push(b'~'),
                }
            } else if self.at_line_start && b == b'~' {
                self.tilde = true;
                continue;
            }
            out.push(b);
            self.at_line_start = b == b'\r' || b == b'\n';
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_detach_only_at_line_start() {
        let mut s = EscapeScanner::new();
        assert_eq!(s.feed(b"ls ~.\r"), (b"ls ~.\r".to_vec(), false));
        assert_eq!(s.feed(b"~"), (Vec::new(), false));
        assert_eq!(s.feed(b".rest"), (Vec::new(), true));
        let mut s = EscapeScanner::new();
        assert_eq!(s.feed(b"~~x\n~a"), (b"~x\n~a".to_vec(), false));
    }
}
