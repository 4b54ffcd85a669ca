//! The tokio edge: a UDP socket driving a [`SessionCore`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::time::Instant;

use rand_core::{OsRng, RngCore};
use tokio::net::UdpSocket;

use crate::codec::{CipherSuite, RawRequest, RawResponse, SolPacket};
use crate::error::{Error, Result};
use crate::session::{Credentials, Event, SessionCore, SessionOptions};

/// Default IPMI-over-LAN (RMCP) port.
pub const DEFAULT_PORT: u16 = 623;

/// A BMC's network address: host name or IP, and UDP port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BmcAddress {
    host: String,
    port: u16,
}

impl BmcAddress {
    /// An address from host and port.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        BmcAddress {
            host: host.into(),
            port,
        }
    }

    /// An IP address and port.
    pub fn from_ip(ip: IpAddr, port: u16) -> Self {
        BmcAddress::new(ip.to_string(), port)
    }

    /// The host part.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The UDP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Same host, another port.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    async fn resolve(&self) -> Result<SocketAddr> {
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, self.port));
        }
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|_| Error::Resolve {
                bmc: self.to_string(),
            })?
            .collect();
        addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or_else(|| addrs.first())
            .copied()
            .ok_or_else(|| Error::Resolve {
                bmc: self.to_string(),
            })
    }
}

impl std::fmt::Display for BmcAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for BmcAddress {
    type Err = Error;

    /// `HOST`, `HOST:PORT`, `[V6]`, `[V6]:PORT` or a bare IPv6 address.
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let bad = || Error::InvalidArgument(format!("BMC address {s:?}: expected HOST[:PORT]"));
        if s.is_empty() {
            return Err(bad());
        }
        if let Some(rest) = s.strip_prefix('[') {
            let (host, tail) = rest.split_once(']').ok_or_else(bad)?;
            let port = match tail.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad())?,
                None if tail.is_empty() => DEFAULT_PORT,
                None => return Err(bad()),
            };
            return Ok(BmcAddress::new(host, port));
        }
        if s.parse::<Ipv6Addr>().is_ok() {
            return Ok(BmcAddress::new(s, DEFAULT_PORT));
        }
        match s.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() => {
                Ok(BmcAddress::new(host, port.parse().map_err(|_| bad())?))
            }
            Some(_) => Err(bad()),
            None => Ok(BmcAddress::new(s, DEFAULT_PORT)),
        }
    }
}

/// An authenticated RMCP+ session with one BMC, at Administrator privilege.
///
/// Dropping it sends Close Session (best effort); [`Session::close`] waits
/// for the BMC's answer. A request that times out on an established
/// session triggers one fresh handshake and one more try.
#[derive(Debug)]
pub struct Session {
    addr: BmcAddress,
    creds: Credentials,
    opts: SessionOptions,
    socket: UdpSocket,
    core: SessionCore,
    suite: CipherSuite,
    /// SOL packets that arrived while a request was outstanding.
    sol_backlog: std::collections::VecDeque<SolPacket>,
}

impl Session {
    /// Open a session: Get Channel Auth Caps, Open Session, RAKP 1–4, Set
    /// Session Privilege Level (Administrator).
    pub async fn connect(
        addr: &BmcAddress,
        creds: &Credentials,
        opts: &SessionOptions,
    ) -> Result<Session> {
        let peer = addr.resolve().await?;
        let local: SocketAddr = if peer.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let io = |op| {
            let bmc = addr.to_string();
            move |source| Error::Io { bmc, op, source }
        };
        let socket = UdpSocket::bind(local)
            .await
            .map_err(io("bind UDP socket"))?;
        socket
            .connect(peer)
            .await
            .map_err(io("connect UDP socket"))?;
        let core = new_core(addr, creds, opts);
        let mut session = Session {
            addr: addr.clone(),
            creds: creds.clone(),
            opts: opts.clone(),
            socket,
            core,
            suite: CipherSuite::Suite3,
            sol_backlog: std::collections::VecDeque::new(),
        };
        session.establish().await?;
        Ok(session)
    }

    /// The BMC this session talks to.
    pub fn address(&self) -> &BmcAddress {
        &self.addr
    }

    /// The negotiated cipher suite.
    pub fn cipher_suite(&self) -> CipherSuite {
        self.suite
    }

    /// Send a request and wait for its reply (any completion code).
    pub async fn raw(&mut self, req: RawRequest) -> Result<RawResponse> {
        let mut reconnected = false;
        loop {
            if !self.core.is_active() {
                self.reconnect().await?;
                reconnected = true;
            }
            tracing::trace!(
                bmc = %self.addr,
                command = crate::codec::command::name(req.netfn, req.cmd),
                "IPMI request"
            );
            self.core.send_request(Instant::now(), req.clone())?;
            match self.drive().await? {
                Event::Response(r) => return Ok(r),
                Event::Failed(e) if e.is_timeout() && !reconnected => {
                    // The BMC may have dropped the session: handshake again once.
                    tracing::debug!(bmc = %self.addr, "request timed out; new session");
                    self.reconnect().await?;
                    reconnected = true;
                }
                Event::Failed(e) => return Err(e),
                _ => {
                    return Err(Error::NotActive {
                        bmc: self.addr.to_string(),
                    });
                }
            }
        }
    }

    /// Send a request; a non-zero completion code becomes [`Error::CompletionCode`].
    pub async fn request(&mut self, req: RawRequest) -> Result<Vec<u8>> {
        let (netfn, cmd) = (req.netfn, req.cmd);
        let r = self.raw(req).await?;
        if r.completion_code != 0 {
            return Err(Error::CompletionCode {
                bmc: self.addr.to_string(),
                command: crate::codec::command::name(netfn, cmd).to_string(),
                code: r.completion_code,
            });
        }
        Ok(r.data)
    }

    /// Close the session and wait for the BMC's answer (or the timeout).
    pub async fn close(mut self) -> Result<()> {
        if !self.core.is_active() {
            return Ok(()); // failed or never established: nothing to close
        }
        self.core.close(Instant::now());
        loop {
            match self.drive().await? {
                Event::Closed | Event::Failed(_) => return Ok(()),
                _ => continue,
            }
        }
    }

    /// Send one SOL packet.
    pub(crate) fn send_sol(&mut self, packet: &SolPacket) -> Result<()> {
        self.core.send_sol(packet)?;
        self.flush_now();
        Ok(())
    }

    /// Wait for the next SOL packet, up to `deadline`. `Ok(None)` on deadline.
    pub(crate) async fn next_sol(
        &mut self,
        deadline: tokio::time::Instant,
    ) -> Result<Option<SolPacket>> {
        if let Some(p) = self.sol_backlog.pop_front() {
            return Ok(Some(p));
        }
        loop {
            self.flush().await?;
            if let Some(ev) = self.core.poll_event() {
                match ev {
                    Event::Sol(p) => return Ok(Some(p)),
                    Event::Failed(e) => return Err(e),
                    _ => continue,
                }
            }
            let mut buf = [0u8; 2048];
            tokio::select! {
                r = self.socket.recv(&mut buf) => match r {
                    Ok(n) => self.core.handle_datagram(Instant::now(), &buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                    Err(source) => return Err(Error::Io { bmc: self.addr.to_string(), op: "receive", source }),
                },
                _ = tokio::time::sleep_until(deadline) => return Ok(None),
            }
        }
    }

    async fn reconnect(&mut self) -> Result<()> {
        if let Some(p) = self.core.close_now() {
            let _ = self.socket.try_send(&p);
        }
        self.core = new_core(&self.addr, &self.creds, &self.opts);
        self.establish().await
    }

    async fn establish(&mut self) -> Result<()> {
        let started = Instant::now();
        match self.drive().await? {
            Event::Established { suite } => {
                self.suite = suite;
                tracing::debug!(
                    bmc = %self.addr,
                    suite = ?suite,
                    ms = started.elapsed().as_millis() as u64,
                    "IPMI session established"
                );
                Ok(())
            }
            Event::Failed(e) => {
                tracing::debug!(bmc = %self.addr, error = %e, "IPMI session failed");
                Err(e)
            }
            _ => Err(Error::NotActive {
                bmc: self.addr.to_string(),
            }),
        }
    }

    fn flush_now(&mut self) {
        while let Some(p) = self.core.poll_transmit() {
            let _ = self.socket.try_send(&p);
        }
    }

    async fn flush(&mut self) -> Result<()> {
        while let Some(p) = self.core.poll_transmit() {
            match self.socket.send(&p).await {
                Ok(_) => {}
                // An ICMP error from an earlier datagram; the retransmission timer handles it.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                Err(source) => {
                    return Err(Error::Io {
                        bmc: self.addr.to_string(),
                        op: "send",
                        source,
                    });
                }
            }
        }
        Ok(())
    }

    /// Run the core until it reports an event other than SOL data.
    async fn drive(&mut self) -> Result<Event> {
        let mut buf = [0u8; 2048];
        loop {
            self.flush().await?;
            if let Some(ev) = self.core.poll_event() {
                if let Event::Sol(p) = ev {
                    // Keep console data for the SOL reader (bounded).
                    if self.sol_backlog.len() < 1024 {
                        self.sol_backlog.push_back(p);
                    }
                    continue;
                }
                return Ok(ev);
            }
            let Some(deadline) = self.core.poll_timeout() else {
                return Err(Error::NotActive {
                    bmc: self.addr.to_string(),
                });
            };
            let deadline = tokio::time::Instant::from_std(deadline);
            tokio::select! {
                r = self.socket.recv(&mut buf) => match r {
                    Ok(n) => self.core.handle_datagram(Instant::now(), &buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                    Err(source) => return Err(Error::Io { bmc: self.addr.to_string(), op: "receive", source }),
                },
                _ = tokio::time::sleep_until(deadline) => self.core.handle_timeout(Instant::now()),
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(p) = self.core.close_now() {
            let _ = self.socket.try_send(&p);
        }
    }
}

fn new_core(addr: &BmcAddress, creds: &Credentials, opts: &SessionOptions) -> SessionCore {
    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    SessionCore::new(
        addr.to_string(),
        creds.clone(),
        opts.clone(),
        seed,
        Instant::now(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_addresses() {
        let a: BmcAddress = "10.0.0.5".parse().unwrap();
        assert_eq!((a.host(), a.port()), ("10.0.0.5", 623));
        let a: BmcAddress = "bmc-1:9001".parse().unwrap();
        assert_eq!((a.host(), a.port()), ("bmc-1", 9001));
        let a: BmcAddress = "[fe80::1]:700".parse().unwrap();
        assert_eq!((a.host(), a.port()), ("fe80::1", 700));
        assert_eq!(a.to_string(), "[fe80::1]:700");
        let a: BmcAddress = "fe80::1".parse().unwrap();
        assert_eq!(a.port(), 623);
        assert!("host:notaport".parse::<BmcAddress>().is_err());
        assert!("".parse::<BmcAddress>().is_err());
    }
}
