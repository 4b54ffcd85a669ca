//! The tokio edge of the DHCP server: sockets and the serve loop.
//!
//! Two transports:
//! - [`DhcpSocket::bind_plain`]: a UDP socket on any address and port, no
//!   root needed; replies go back to the datagram's source. For the
//!   simulator and tests.
//! - [`DhcpSocket::bind_interface`]: port 67 on one interface only
//!   (`SO_BINDTODEVICE`); replies go to the relay, to the client's address,
//!   or are broadcast on that interface. Check the interface first with
//!   [`check_interface`].
//!
//! The loop handles every datagram already queued and holds the replies
//! until the lease table they depend on is on disk (write temp, fsync,
//! rename): an acknowledged lease is always durable. One save runs at a
//! time on the blocking pool while later batches are handled; the next save
//! covers all of them (group commit).

use std::collections::VecDeque;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use racker_inventory::MacAddr;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use super::{Destination, DhcpError, DhcpServer, InstalledNodes};
use crate::leases::LeaseTable;

/// DHCP server port.
pub const SERVER_PORT: u16 = 67;
/// DHCP client port.
pub const CLIENT_PORT: u16 = 68;

/// Most datagrams handled between two lease-table saves.
const MAX_BATCH: usize = 256;

/// A bound DHCP server socket.
#[derive(Debug)]
pub struct DhcpSocket {
    socket: UdpSocket,
    interface: Option<String>,
    local: SocketAddr,
}

fn new_socket(what: &str) -> Result<Socket, DhcpError> {
    let bind_err = |source| DhcpError::Bind {
        what: what.to_owned(),
        source,
    };
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(bind_err)?;
    socket.set_reuse_address(true).map_err(bind_err)?;
    socket.set_broadcast(true).map_err(bind_err)?;
    socket.set_nonblocking(true).map_err(bind_err)?;
    // Room for a burst while the lease table is being fsynced; the kernel
    // caps this at net.core.rmem_max, so a failure is not fatal.
    let _ = socket.set_recv_buffer_size(4 << 20);
    Ok(socket)
}

impl DhcpSocket {
    /// A plain UDP socket on `addr` (any address and port). Must be called
    /// inside a tokio runtime.
    pub fn bind_plain(addr: SocketAddr) -> Result<Self, DhcpError> {
        let what = addr.to_string();
        let socket = new_socket(&what)?;
        socket
            .bind(&addr.into())
            .map_err(|source| DhcpError::Bind {
                what: what.clone(),
                source,
            })?;
        Self::finish(socket, None, &what)
    }

    /// Port `port` (67 in production) on all addresses of `interface` only,
    /// via `SO_BINDTODEVICE` (needs `CAP_NET_RAW`/root). Must be called
    /// inside a tokio runtime.
    pub fn bind_interface(interface: &str, port: u16) -> Result<Self, DhcpError> {
        let what = format!("interface {interface} port {port}");
        let socket = new_socket(&what)?;
        let bind_err = |source| DhcpError::Bind {
            what: what.clone(),
            source,
        };
        socket
            .bind_device(Some(interface.as_bytes()))
            .map_err(bind_err)?;
        let any = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port));
        socket.bind(&any.into()).map_err(bind_err)?;
        Self::finish(socket, Some(interface.to_owned()), &what)
    }

    fn finish(socket: Socket, interface: Option<String>, what: &str) -> Result<Self, DhcpError> {
        let err = |source| DhcpError::Bind {
            what: what.to_owned(),
            source,
        };
        let std_socket: std::net::UdpSocket = socket.into();
        let local = std_socket.local_addr().map_err(err)?;
        let socket = UdpSocket::from_std(std_socket).map_err(err)?;
        Ok(Self {
            socket,
            interface,
            local,
        })
    }

    /// The local address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The interface the socket is bound to, if any.
    pub fn interface(&self) -> Option<&str> {
        self.interface.as_deref()
    }

    fn target(&self, destination: Destination, source: SocketAddr) -> SocketAddr {
        if self.interface.is_none() {
            return source;
        }
        let v4 = match destination {
            Destination::Relay(giaddr) => SocketAddrV4::new(giaddr, SERVER_PORT),
            Destination::Unicast(ciaddr) => SocketAddrV4::new(ciaddr, CLIENT_PORT),
            Destination::Broadcast => SocketAddrV4::new(Ipv4Addr::BROADCAST, CLIENT_PORT),
        };
        SocketAddr::V4(v4)
    }
}

/// Refuse to serve DHCP on `interface` when it does not exist, when its MAC
/// (read from `<sys_class_net>/<interface>/address`) is not `expected_mac`
/// (the management node's secondary MAC), or when `proc_net_route` (normally
/// `/proc/net/route`) shows it carries the default route.
///
/// This reads only the IPv4 main table: `racker_netboot::iface::check_interface`
/// (feature `iface`) asks the kernel for every table and both families.
pub fn check_interface(
    interface: &str,
    sys_class_net: &Path,
    proc_net_route: &Path,
    expected_mac: Option<MacAddr>,
) -> Result<(), DhcpError> {
    check_name_and_mac(interface, sys_class_net, expected_mac)?;
    // A missing route table (e.g. no /proc) cannot prove a default route.
    if let Ok(routes) = std::fs::read_to_string(proc_net_route) {
        // Columns: Iface Destination Gateway Flags RefCnt Use Metric Mask ...
        let default = routes.lines().skip(1).any(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            cols.first() == Some(&interface)
                && cols.get(1) == Some(&"00000000")
                && cols.get(7) == Some(&"00000000")
        });
        if default {
            return Err(DhcpError::RefusedInterface {
                interface: interface.to_owned(),
                reason: "it carries the default route (the public network?)".to_owned(),
            });
        }
    }
    Ok(())
}

/// The name and MAC part of the interface guard.
pub(crate) fn check_name_and_mac(
    interface: &str,
    sys_class_net: &Path,
    expected_mac: Option<MacAddr>,
) -> Result<(), DhcpError> {
    let refuse = |reason: String| DhcpError::RefusedInterface {
        interface: interface.to_owned(),
        reason,
    };
    if interface.is_empty() || interface.contains('/') || interface == "." || interface == ".." {
        return Err(refuse("not an interface name".to_owned()));
    }
    let address_file = sys_class_net.join(interface).join("address");
    let text = std::fs::read_to_string(&address_file)
        .map_err(|e| refuse(format!("cannot read {}: {e}", address_file.display())))?;
    let mac: MacAddr = text
        .trim()
        .parse()
        .map_err(|_| refuse(format!("{} holds no MAC address", address_file.display())))?;
    if let Some(expected) = expected_mac
        && mac != expected
    {
        return Err(refuse(format!(
            "its MAC {mac} is not the management node's secondary MAC {expected}"
        )));
    }
    Ok(())
}

/// Lets one log line of a kind through per interval and counts the rest,
/// so floods (malformed datagrams, requests from unknown MACs) cannot fill
/// the disk with log.
#[derive(Debug, Default)]
struct LogLimiter {
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimiter {
    const INTERVAL: Duration = Duration::from_secs(10);

    /// `Some(n)` when a line should be written now (`n` events were
    /// suppressed since the previous line), `None` when this one is counted.
    fn admit(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Self::INTERVAL)
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// A lease-table save running on the blocking pool: the generation it
/// writes and the outcome.
type SaveTask = tokio::task::JoinHandle<(u64, Result<(), DhcpError>)>;

enum Event {
    Shutdown,
    Packet(std::io::Result<(usize, SocketAddr)>),
    Saved(Result<(u64, Result<(), DhcpError>), tokio::task::JoinError>),
}

/// Serve DHCP on `socket` until `shutdown` completes, saving the lease table
/// into `state_dir` (when given) before any reply that depends on it.
/// Returns the server so its state can be inspected or reused.
pub async fn serve(
    socket: DhcpSocket,
    server: DhcpServer,
    state_dir: Option<PathBuf>,
    installed: Arc<dyn InstalledNodes + Send + Sync>,
    shutdown: impl Future<Output = ()>,
) -> Result<DhcpServer, DhcpError> {
    serve_counted(
        socket,
        server,
        state_dir,
        installed,
        Arc::default(),
        shutdown,
    )
    .await
}

/// [`serve`], counting requests, replies and leases into `stats` (which
/// `/metrics` can show: it is a [`crate::http::metrics::MetricsSource`]).
pub async fn serve_counted(
    socket: DhcpSocket,
    mut server: DhcpServer,
    state_dir: Option<PathBuf>,
    installed: Arc<dyn InstalledNodes + Send + Sync>,
    stats: Arc<super::DhcpStats>,
    shutdown: impl Future<Output = ()>,
) -> Result<DhcpServer, DhcpError> {
    stats.set_leases(server.leases().len());
    let local = socket.local_addr();
    let sock_err = |source| DhcpError::Socket { local, source };
    tracing::info!(
        "DHCP serving on {local}{} ({:?} mode, {} leases loaded)",
        socket
            .interface()
            .map(|i| format!(" interface {i}"))
            .unwrap_or_default(),
        server.config().mode,
        server.leases().len()
    );
    let mut durable = server.leases().generation();
    let mut saving: Option<SaveTask> = None;
    let mut failed_save = false;
    let mut malformed = LogLimiter::default();
    let mut unknown = LogLimiter::default();
    let mut buf = vec![0u8; 4096];
    // Replies waiting for the lease-table generation they depend on to be
    // on disk, oldest first.
    let mut pending: VecDeque<(u64, Vec<u8>, SocketAddr)> = VecDeque::new();
    let mut batch: Vec<(Vec<u8>, SocketAddr)> = Vec::with_capacity(MAX_BATCH);
    tokio::pin!(shutdown);
    loop {
        let event = tokio::select! {
            () = &mut shutdown => Event::Shutdown,
            r = socket.socket.recv_from(&mut buf) => Event::Packet(r),
            r = async {
                match saving.as_mut() {
                    Some(task) => task.await,
                    None => std::future::pending().await,
                }
            } => Event::Saved(r),
        };
        match event {
            Event::Shutdown => break,
            Event::Saved(result) => {
                saving = None;
                match result {
                    Ok((generation, Ok(()))) => durable = durable.max(generation),
                    Ok((_, Err(e))) => {
                        tracing::error!("{e}; withholding {} replies", pending.len());
                        failed_save = true;
                    }
                    Err(e) => {
                        tracing::error!("lease save task failed: {e}");
                        failed_save = true;
                    }
                }
            }
            Event::Packet(first) => {
                failed_save = false;
                let mut received = Some(first);
                let mut handled = 0;
                while let Some(result) = received.take() {
                    match result {
                        Ok((len, source)) => {
                            let datagram = buf.get(..len).unwrap_or_default();
                            match server.handle(datagram, SystemTime::now(), &*installed) {
                                Ok(h) => {
                                    if h.transaction.note != Some(super::server::UNKNOWN_MAC) {
                                        tracing::info!("{}", h.transaction);
                                    } else if let Some(n) = unknown.admit(Instant::now()) {
                                        tracing::info!(
                                            "{} ({n} more requests from unknown MACs ignored since the last report)",
                                            h.transaction
                                        );
                                    }
                                    stats.transaction(&h.transaction);
                                    if let Some(reply) = h.reply {
                                        let target = socket.target(reply.destination, source);
                                        batch.push((reply.bytes, target));
                                    }
                                }
                                Err(e) => {
                                    stats.malformed();
                                    if let Some(n) = malformed.admit(Instant::now()) {
                                        tracing::warn!(
                                            "dropped a malformed packet from {source}: {e} ({n} more dropped since the last report)"
                                        );
                                    }
                                }
                            }
                        }
                        // ICMP errors from earlier sends surface here; keep serving.
                        Err(e) => tracing::debug!("receive error on {local}: {e}"),
                    }
                    handled += 1;
                    if handled < MAX_BATCH {
                        match socket.socket.try_recv_from(&mut buf) {
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                            other => received = Some(other),
                        }
                    }
                }
                let generation = server.leases().generation();
                stats.set_leases(server.leases().len());
                pending.extend(
                    batch
                        .drain(..)
                        .map(|(bytes, target)| (generation, bytes, target)),
                );
            }
        }
        let current = server.leases().generation();
        match &state_dir {
            None => durable = current,
            // One save in flight at a time: batches handled meanwhile are
            // covered by the next save (group commit).
            Some(dir) if saving.is_none() && current != durable && !failed_save => {
                let json = server.leases().to_json();
                let dir = dir.clone();
                saving = Some(tokio::task::spawn_blocking(move || {
                    (current, LeaseTable::save_json(&dir, &json))
                }));
            }
            Some(_) => {}
        }
        while pending.front().is_some_and(|(g, _, _)| *g <= durable) {
            if let Some((_, bytes, target)) = pending.pop_front()
                && let Err(e) = socket.socket.send_to(&bytes, target).await
            {
                stats.send_failed();
                tracing::warn!("cannot send reply to {target}: {}", sock_err(e));
            }
        }
    }
    // Leave the table on disk as it is in memory.
    if let Some(task) = saving.take() {
        let _ = task.await;
    }
    if let Some(dir) = &state_dir
        && server.leases().generation() != durable
    {
        server.leases().save(dir)?;
    }
    Ok(server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_limiter_lets_one_line_per_interval_through() {
        let t0 = Instant::now();
        let mut l = LogLimiter::default();
        assert_eq!(l.admit(t0), Some(0));
        // A flood inside the interval writes nothing more...
        let written = (1..=1_000_000u64)
            .filter(|i| l.admit(t0 + Duration::from_micros(*i)).is_some())
            .count();
        assert_eq!(written, 0);
        // ...and the next line after it carries the count.
        assert_eq!(l.admit(t0 + LogLimiter::INTERVAL), Some(1_000_000));
        assert_eq!(l.admit(t0 + LogLimiter::INTERVAL), None);
        assert_eq!(l.admit(t0 + 2 * LogLimiter::INTERVAL), Some(1));
    }
}
