//! Many simulated BMCs in one tokio process: the IO edge around [`Bmc`].

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;

use racker_inventory::MacAddr;

use crate::Error;
use crate::bmc::{Bmc, BmcConfig, CoreFaults, Transmit};
use crate::chassis::{BootFlags, Event, Password};
use crate::fault::Faults;

/// Lower-case colon form of a MAC address (the [`MacAddr`] display form).
pub fn format_mac(mac: [u8; 6]) -> String {
    MacAddr::new(mac).to_string()
}

/// One node of the rack to start.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// BMC MAC address (identifies the node).
    pub bmc_mac: [u8; 6],
    /// The server's primary (PXE) MAC address, if known.
    pub primary_mac: Option<[u8; 6]>,
    /// Where the BMC listens (port 0 = any free port).
    pub addr: SocketAddr,
    /// Faults active from the start.
    pub faults: Faults,
}

impl NodeSpec {
    /// A node with BMC MAC `bmc_mac` listening on `addr`.
    pub fn new(bmc_mac: [u8; 6], addr: SocketAddr) -> Self {
        NodeSpec {
            bmc_mac,
            primary_mac: None,
            addr,
            faults: Faults::default(),
        }
    }
    /// Set the primary MAC.
    pub fn primary_mac(mut self, mac: [u8; 6]) -> Self {
        self.primary_mac = Some(mac);
        self
    }
    /// Set initial faults.
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }
}

/// An event of one node, tagged with its BMC MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEvent {
    /// The node's BMC MAC.
    pub bmc_mac: [u8; 6],
    /// What happened.
    pub event: Event,
}

/// Point-in-time view of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeSnapshot {
    /// BMC MAC.
    pub bmc_mac: [u8; 6],
    /// Primary MAC.
    pub primary_mac: Option<[u8; 6]>,
    /// Address the BMC listens on.
    pub ipmi_addr: SocketAddr,
    /// Chassis power.
    pub power_on: bool,
    /// Boot flags (parameter 5, all five bytes).
    pub boot_flags: BootFlags,
    /// Parameter 3 (boot-flag-valid clearing).
    pub boot_flag_clearing: u8,
    /// LAN IP address source (1 static, 2 DHCP).
    pub lan_ip_source: u8,
    /// Established IPMI sessions.
    pub active_sessions: usize,
    /// Faults in force.
    pub faults: Faults,
    /// The chassis identify light is on.
    pub identify: bool,
}

/// Events a node's own channel holds for a slow receiver.
const OWN_EVENTS: usize = 256;

struct Shared {
    bmc_mac: [u8; 6],
    primary_mac: Option<[u8; 6]>,
    addr: SocketAddr,
    bmc: Mutex<Bmc>,
    faults: Mutex<Faults>,
    socket: UdpSocket,
    wake: Notify,
    /// Every node's events (the rack's channel).
    events: broadcast::Sender<NodeEvent>,
    /// This node's events only: a node's firmware waits on these, and a
    /// rack-wide channel would wake all of a large rack's firmwares for
    /// every event.
    own: broadcast::Sender<Event>,
    rng: Mutex<StdRng>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means another task panicked mid-update; the
    // simulator keeps serving with whatever state is there.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn publish(&self, bmc: &mut Bmc) {
        for event in bmc.drain_events() {
            let _ = self.own.send(event.clone());
            let _ = self.events.send(NodeEvent {
                bmc_mac: self.bmc_mac,
                event,
            });
        }
    }

    fn send_now(&self, out: Vec<Transmit>) {
        for t in out {
            // UDP send on a non-blocking socket: a full buffer drops the
            // datagram exactly like a lossy network would.
            let _ = self.socket.try_send_to(&t.payload, t.to);
        }
    }

    async fn on_datagram(self: &Arc<Self>, peer: SocketAddr, data: &[u8]) {
        let faults = *lock(&self.faults);
        if faults.unreachable {
            return;
        }
        if faults.loss_percent > 0 && lock(&self.rng).gen_range(0..100u8) < faults.loss_percent {
            return;
        }
        let out = {
            let mut bmc = lock(&self.bmc);
            let out = bmc.handle_datagram(Instant::now(), peer, data);
            self.publish(&mut bmc);
            out
        };
        if !faults.latency.is_zero() {
            // Late replies, like a slow link: the BMC keeps receiving (and
            // sees the console's retransmissions) meanwhile.
            let shared = Arc::clone(self);
            tokio::spawn(async move {
                tokio::time::sleep(faults.latency).await;
                for t in out {
                    let _ = shared.socket.send_to(&t.payload, t.to).await;
                }
            });
            return;
        }
        for t in out {
            let _ = self.socket.send_to(&t.payload, t.to).await;
        }
    }
}

/// Handle on one simulated node (cheap to clone).
#[derive(Clone)]
pub struct SimNode {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SimNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimNode")
            .field("bmc_mac", &MacAddr::new(self.shared.bmc_mac))
            .field("addr", &self.shared.addr)
            .finish()
    }
}

impl SimNode {
    /// BMC MAC.
    pub fn bmc_mac(&self) -> [u8; 6] {
        self.shared.bmc_mac
    }
    /// Primary MAC.
    pub fn primary_mac(&self) -> Option<[u8; 6]> {
        self.shared.primary_mac
    }
    /// Where the BMC listens.
    pub fn ipmi_addr(&self) -> SocketAddr {
        self.shared.addr
    }

    fn with_bmc<R>(&self, f: impl FnOnce(&mut Bmc) -> R) -> R {
        let mut bmc = lock(&self.shared.bmc);
        let r = f(&mut bmc);
        self.shared.publish(&mut bmc);
        drop(bmc);
        self.shared.wake.notify_one();
        r
    }

    /// Current state.
    pub fn snapshot(&self) -> NodeSnapshot {
        let faults = *lock(&self.shared.faults);
        self.with_bmc(|bmc| {
            let _ = bmc.poll(Instant::now());
            let c = bmc.chassis();
            NodeSnapshot {
                bmc_mac: self.shared.bmc_mac,
                primary_mac: self.shared.primary_mac,
                ipmi_addr: self.shared.addr,
                power_on: c.power(),
                boot_flags: c.boot_flags(),
                boot_flag_clearing: c.boot_flag_clearing(),
                lan_ip_source: c.lan_ip_source(),
                active_sessions: bmc.active_session_count(),
                faults,
                identify: bmc.identify_on(Instant::now()),
            }
        })
    }

    /// The node writes `text` to its serial console (shown to an active SOL
    /// session and kept in [`SimNode::console_log`]).
    pub fn console_write(&self, text: &[u8]) {
        let out = self.with_bmc(|bmc| bmc.console_output(Instant::now(), text));
        self.shared.send_now(out);
    }

    /// Console output kept so far.
    pub fn console_log(&self) -> Vec<u8> {
        self.with_bmc(|bmc| bmc.chassis().console_log())
    }

    /// The node changes its own power (OS shutdown, firmware power-on).
    pub fn set_power(&self, on: bool) {
        self.with_bmc(|bmc| bmc.node_power(Instant::now(), on));
    }

    /// The node sets its own boot flags (in-band IPMI from the host OS).
    pub fn set_boot_flags(&self, flags: BootFlags) {
        self.with_bmc(|bmc| bmc.node_set_boot_flags(Instant::now(), flags));
    }

    /// The node writes boot option parameter 3 (0x1f disables every clearing).
    pub fn set_boot_flag_clearing(&self, param3: u8) {
        self.with_bmc(|bmc| bmc.node_set_boot_flag_clearing(Instant::now(), param3));
    }

    /// Replace the node's faults.
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.shared.faults) = faults;
        self.with_bmc(|bmc| {
            bmc.set_core_faults(
                Instant::now(),
                CoreFaults {
                    wrong_credentials: faults.wrong_credentials,
                    fan_fail: faults.fan_fail,
                },
            )
        });
    }

    /// Faults in force.
    pub fn faults(&self) -> Faults {
        *lock(&self.shared.faults)
    }

    /// The node's System Event Log, oldest record first.
    pub fn sel_records(&self) -> Vec<[u8; 16]> {
        self.with_bmc(|bmc| bmc.sel_records())
    }

    /// Reboot the BMC: all sessions are dropped.
    pub fn reboot_bmc(&self) {
        self.with_bmc(Bmc::reboot);
    }

    /// Events of this node only.
    pub fn subscribe(&self) -> NodeEvents {
        NodeEvents {
            rx: self.shared.own.subscribe(),
        }
    }
}

/// Receiver of one node's events.
#[derive(Debug)]
pub struct NodeEvents {
    rx: broadcast::Receiver<Event>,
}

impl NodeEvents {
    /// The next event of this node; `None` when the rack is gone. Events
    /// missed because the receiver lagged are skipped.
    pub async fn recv(&mut self) -> Option<Event> {
        loop {
            match self.rx.recv().await {
                Ok(e) => return Some(e),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// A running rack of simulated BMCs. Dropping it stops every BMC.
#[derive(Debug)]
pub struct SimRack {
    nodes: Vec<SimNode>,
    events: broadcast::Sender<NodeEvent>,
    tasks: Vec<JoinHandle<()>>,
}

impl SimRack {
    /// Bind and start one BMC per spec, all with the same administrator
    /// credentials.
    pub async fn start(
        specs: Vec<NodeSpec>,
        user: &str,
        password: Password,
    ) -> Result<SimRack, Error> {
        Self::start_with(specs, |spec| {
            BmcConfig::new(spec.bmc_mac, user, password.clone())
        })
        .await
    }

    /// Like [`SimRack::start`] with a BMC configuration per node (session
    /// slots, idle timeout, cipher suites...). The IP and SOL port are
    /// filled in from the bound socket.
    pub async fn start_with(
        specs: Vec<NodeSpec>,
        config: impl Fn(&NodeSpec) -> BmcConfig,
    ) -> Result<SimRack, Error> {
        let mut seen = HashSet::new();
        for s in &specs {
            if !seen.insert(s.bmc_mac) {
                return Err(Error::DuplicateMac {
                    mac: MacAddr::new(s.bmc_mac).to_string(),
                });
            }
        }
        let (events, _) = broadcast::channel(4096);
        let mut nodes = Vec::with_capacity(specs.len());
        let mut tasks = Vec::with_capacity(specs.len());
        for spec in specs {
            let bind_err = |source| Error::Bind {
                mac: MacAddr::new(spec.bmc_mac).to_string(),
                addr: spec.addr,
                source,
            };
            let socket = UdpSocket::bind(spec.addr).await.map_err(bind_err)?;
            let addr = socket.local_addr().map_err(bind_err)?;
            let ip = match addr.ip() {
                IpAddr::V4(v4) => v4.octets(),
                IpAddr::V6(_) => [0; 4],
            };
            let seed: u64 = rand::random();
            let now = Instant::now();
            let unix = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as u32);
            let cfg = config(&spec)
                .ip(ip)
                .sol_port(addr.port())
                .seed(seed)
                .wall_clock(now, unix);
            let mut bmc = Bmc::new(cfg);
            bmc.set_core_faults(
                now,
                CoreFaults {
                    wrong_credentials: spec.faults.wrong_credentials,
                    fan_fail: spec.faults.fan_fail,
                },
            );
            let shared = Arc::new(Shared {
                bmc_mac: spec.bmc_mac,
                primary_mac: spec.primary_mac,
                addr,
                bmc: Mutex::new(bmc),
                faults: Mutex::new(spec.faults),
                socket,
                wake: Notify::new(),
                events: events.clone(),
                own: broadcast::channel(OWN_EVENTS).0,
                rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0x9E37_79B9_7F4A_7C15)),
            });
            tasks.push(tokio::spawn(serve(Arc::clone(&shared))));
            nodes.push(SimNode { shared });
        }
        Ok(SimRack {
            nodes,
            events,
            tasks,
        })
    }

    /// Every node, in the order given.
    pub fn nodes(&self) -> &[SimNode] {
        &self.nodes
    }

    /// The node with this BMC MAC.
    pub fn node(&self, bmc_mac: [u8; 6]) -> Option<&SimNode> {
        self.nodes.iter().find(|n| n.bmc_mac() == bmc_mac)
    }

    /// Every node's events.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    /// Stop every BMC and wait until their sockets are closed (unless a
    /// [`SimNode`] handle is still held elsewhere).
    pub async fn shutdown(mut self) {
        let tasks = std::mem::take(&mut self.tasks);
        self.nodes.clear();
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
    }
}

impl Drop for SimRack {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn serve(shared: Arc<Shared>) {
    let mut buf = vec![0u8; 2048];
    loop {
        let deadline = lock(&shared.bmc).next_timeout();
        let timer = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = shared.socket.recv_from(&mut buf) => {
                if let Ok((n, peer)) = r {
                    shared.on_datagram(peer, &buf[..n]).await;
                }
            }
            () = timer => {
                let out = {
                    let mut bmc = lock(&shared.bmc);
                    let out = bmc.poll(Instant::now());
                    shared.publish(&mut bmc);
                    out
                };
                shared.send_now(out);
            }
            () = shared.wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_mac_is_the_macaddr_form() {
        assert_eq!(
            format_mac([0x00, 0x1A, 0x2b, 0x3c, 0x4d, 0x5e]),
            "00:1a:2b:3c:4d:5e"
        );
    }
}
