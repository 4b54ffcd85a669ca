//! The tokio edge of the firmware: one task per node reacting to its
//! chassis events, a UDP socket for DHCP, `reqwest` for HTTP and IPMI over
//! LAN for the boot device.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::machine::{
    Action, FirmwareMachine, FirmwareStatus, HttpMethod, HttpOutcome, HttpRequest,
};
use super::{BmcAccess, FirmwareConfig, FirmwareError, FirmwareFaults, Phase};
use crate::chassis::{BootDevice, BootFlags, Event};
use crate::rack::{NodeEvents, SimNode, format_mac};

/// An HTTP client shared by many nodes' firmware (one connection pool).
#[derive(Debug, Clone)]
pub struct HttpClient(reqwest::Client);

impl HttpClient {
    /// A client with `config`'s timeout; proxies from the environment are
    /// ignored (the netboot server is on the rack network).
    pub fn new(config: &FirmwareConfig) -> Result<Self, FirmwareError> {
        reqwest::Client::builder()
            .no_proxy()
            .timeout(config.http_timeout)
            .connect_timeout(config.http_timeout)
            .user_agent("iPXE/1.21.1+ (racker-sim)")
            // A PXE ROM holds no idle connections between its requests; a
            // simulated rack's pooled ones would all count against the
            // server's per-client connection cap (one address here).
            .pool_max_idle_per_host(0)
            .build()
            .map(HttpClient)
            .map_err(|e| FirmwareError::HttpClient { reason: chain(&e) })
    }
}

/// A running firmware task. Dropping it stops the task.
#[derive(Debug)]
pub struct Firmware {
    mac: [u8; 6],
    task: Option<JoinHandle<()>>,
    status: watch::Receiver<FirmwareStatus>,
    faults: watch::Sender<FirmwareFaults>,
}

impl Drop for Firmware {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl Firmware {
    /// Start `node`'s firmware with its own HTTP client. It reacts to the
    /// node's next boots (a node already powered on is left alone until it
    /// boots again). Must be called inside a tokio runtime.
    pub fn spawn(node: &SimNode, config: FirmwareConfig) -> Result<Firmware, FirmwareError> {
        let http = HttpClient::new(&config)?;
        Self::spawn_with(node, config, &http)
    }

    /// Like [`Firmware::spawn`], sharing `http` with other nodes.
    pub fn spawn_with(
        node: &SimNode,
        config: FirmwareConfig,
        http: &HttpClient,
    ) -> Result<Firmware, FirmwareError> {
        let mac = node
            .primary_mac()
            .ok_or_else(|| FirmwareError::NoPrimaryMac {
                bmc_mac: format_mac(node.bmc_mac()),
            })?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(FirmwareError::NoRuntime {
                mac: format_mac(mac),
            });
        }
        let bind_err = |source| FirmwareError::Bind {
            mac: format_mac(mac),
            addr: config.bind,
            source,
        };
        let std_socket =
            std::net::UdpSocket::bind(SocketAddr::new(config.bind, 0)).map_err(bind_err)?;
        std_socket.set_nonblocking(true).map_err(bind_err)?;
        let socket = UdpSocket::from_std(std_socket).map_err(bind_err)?;
        let events = node.subscribe();
        let mut machine = FirmwareMachine::new(config.machine(mac, rand::random()));
        machine.set_faults(config.faults);
        let (status_tx, status) = watch::channel(machine.status().clone());
        let (faults, faults_rx) = watch::channel(config.faults);
        let driver = Driver {
            node: node.clone(),
            events,
            socket,
            config,
            http: http.0.clone(),
            machine,
            status: status_tx,
            faults: faults_rx,
        };
        let task = tokio::spawn(driver.run());
        Ok(Firmware {
            mac,
            task: Some(task),
            status,
            faults,
        })
    }

    /// Let the task run on its own (until the runtime or the rack's event
    /// stream ends; the task keeps its [`SimNode`] alive): the handle to
    /// await or abort it.
    pub fn into_join_handle(mut self) -> JoinHandle<()> {
        match self.task.take() {
            Some(task) => task,
            // Only `into_join_handle` takes the task, and it consumes self.
            None => tokio::spawn(async {}),
        }
    }

    /// The node's primary MAC.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Progress so far.
    pub fn status(&self) -> FirmwareStatus {
        self.status.borrow().clone()
    }

    /// A receiver of every status change.
    pub fn subscribe(&self) -> watch::Receiver<FirmwareStatus> {
        self.status.clone()
    }

    /// Replace the faults; they apply from the node's next boot.
    pub fn set_faults(&self, faults: FirmwareFaults) {
        self.faults.send_replace(faults);
    }

    /// Wait until `done` holds for the status, at most `timeout`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&FirmwareStatus) -> bool,
    ) -> Result<FirmwareStatus, FirmwareError> {
        let mut rx = self.status.clone();
        match tokio::time::timeout(timeout, rx.wait_for(|s| done(s))).await {
            Ok(Ok(s)) => Ok(s.clone()),
            Ok(Err(_)) => Err(FirmwareError::Stopped {
                mac: format_mac(self.mac),
            }),
            Err(_) => Err(FirmwareError::Timeout {
                mac: format_mac(self.mac),
                waited: timeout,
                phase: self.status.borrow().phase.clone(),
            }),
        }
    }

    /// Wait until the node stops somewhere: OS up, halted or hung.
    pub async fn wait_settled(&self, timeout: Duration) -> Result<FirmwareStatus, FirmwareError> {
        self.wait_for(timeout, |s| {
            matches!(s.phase, Phase::OsUp | Phase::Hung | Phase::Halted { .. })
        })
        .await
    }
}

/// What an operation in flight ended with.
enum Completion {
    Http(u64, HttpOutcome),
    Bmc(Result<(), String>),
}

type Pending = Pin<Box<dyn Future<Output = Completion> + Send>>;

struct Driver {
    node: SimNode,
    events: NodeEvents,
    socket: UdpSocket,
    config: FirmwareConfig,
    http: reqwest::Client,
    machine: FirmwareMachine,
    status: watch::Sender<FirmwareStatus>,
    faults: watch::Receiver<FirmwareFaults>,
}

async fn wait_pending(pending: &mut Option<Pending>) -> Completion {
    match pending {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

impl Driver {
    async fn run(mut self) {
        let mut buf = vec![0u8; 2048];
        let mut pending: Option<Pending> = None;
        loop {
            while let Some(action) = self.machine.poll_action() {
                match action {
                    Action::Console(text) => self.node.console_write(text.as_bytes()),
                    Action::SendDhcp(bytes) => {
                        // A lost datagram is retransmitted by the machine.
                        let _ = self.socket.send_to(&bytes, self.config.dhcp_server).await;
                    }
                    Action::Http(request) => {
                        pending = Some(Box::pin(http_request(self.http.clone(), request)));
                    }
                    Action::SetDiskBoot => {
                        pending = Some(Box::pin(set_disk_boot(
                            self.node.clone(),
                            self.config.bmc.clone(),
                            self.config.bmc_timeout,
                        )));
                    }
                    Action::Reboot => {
                        pending = None;
                        self.node.set_power(false);
                        self.node.set_power(true);
                    }
                }
            }
            let current = self.machine.status();
            self.status.send_if_modified(|s| {
                if s == current {
                    false
                } else {
                    *s = current.clone();
                    true
                }
            });
            let deadline = self.machine.poll_timeout();
            tokio::select! {
                event = self.events.recv() => {
                    let now = Instant::now();
                    match event {
                        None => return,
                        Some(Event::Boot(request)) => {
                            pending = None;
                            self.machine.set_faults(*self.faults.borrow());
                            self.machine.boot(now, request.device, request.efi);
                        }
                        Some(Event::Power { on: false }) => {
                            pending = None;
                            self.machine.power_off(now);
                        }
                        Some(_) => {}
                    }
                }
                received = self.socket.recv_from(&mut buf) => {
                    if let Ok((n, _)) = received {
                        self.machine.handle_dhcp(Instant::now(), buf.get(..n).unwrap_or_default());
                    }
                }
                done = wait_pending(&mut pending) => {
                    pending = None;
                    let now = Instant::now();
                    match done {
                        Completion::Http(id, outcome) => self.machine.handle_http(now, id, outcome),
                        Completion::Bmc(result) => self.machine.handle_bmc(now, result),
                    }
                }
                () = sleep_until(deadline) => self.machine.handle_timeout(Instant::now()),
            }
        }
    }
}

/// An error and its sources, one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = inner.source();
    }
    s
}

/// Connection attempts per request, as a PXE ROM retransmits its TCP SYN
/// when the server refuses or drops a connection (racker's HTTP server
/// caps connections per client, and a simulated rack connects from one
/// address only).
const HTTP_ATTEMPTS: u32 = 6;

async fn http_request(client: reqwest::Client, request: HttpRequest) -> Completion {
    let mut attempt = 1;
    let outcome = loop {
        match fetch(&client, &request).await {
            // The server's "busy" answer (connection cap) is retried like
            // a refused connection.
            Ok(HttpOutcome::Response { status: 503, .. })
                if !request.break_connection && attempt < HTTP_ATTEMPTS =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(100 << (attempt - 1))).await;
                attempt += 1;
            }
            Ok(o) => break o,
            Err(e) if request.break_connection || attempt >= HTTP_ATTEMPTS => {
                break HttpOutcome::Failed(e);
            }
            Err(_) => {
                // Backs off like a TCP retransmission (0.1 s, 0.2 s, ...).
                tokio::time::sleep(std::time::Duration::from_millis(100 << (attempt - 1))).await;
                attempt += 1;
            }
        }
    };
    Completion::Http(request.id, outcome)
}

async fn fetch(client: &reqwest::Client, request: &HttpRequest) -> Result<HttpOutcome, String> {
    let builder = match request.method {
        HttpMethod::Get => client.get(&request.url),
        HttpMethod::Post => client.post(&request.url).body(Vec::new()),
    };
    let mut response = builder.send().await.map_err(|e| chain(&e))?;
    let status = response.status().as_u16();
    let content_length = response
        .headers()
        .get(reqwest::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let mut received: u64 = 0;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| chain(&e))? {
        received = received.saturating_add(chunk.len() as u64);
        if request.keep_body {
            if body.len().saturating_add(chunk.len()) > request.max_body {
                return Err(format!("response larger than {} bytes", request.max_body));
            }
            body.extend_from_slice(&chunk);
        }
        if request.break_connection {
            return Err(format!(
                "connection reset after {received} of {} bytes (simulated fault download-fail)",
                content_length.map_or_else(|| "?".to_owned(), |n| n.to_string())
            ));
        }
    }
    Ok(HttpOutcome::Response {
        status,
        content_length,
        received,
        body,
    })
}

async fn set_disk_boot(node: SimNode, access: BmcAccess, timeout: Duration) -> Completion {
    let result = match access {
        BmcAccess::InBand => {
            node.set_boot_flag_clearing(0x1F);
            node.set_boot_flags(BootFlags::new(BootDevice::Disk, true, true));
            Ok(())
        }
        BmcAccess::Lan { user, password } => {
            let addr = node.ipmi_addr();
            let bmc = racker_ipmi::BmcAddress::from_ip(addr.ip(), addr.port());
            let creds = racker_ipmi::Credentials::new(
                user,
                String::from_utf8_lossy(password.expose()).into_owned(),
            );
            let opts = racker_ipmi::SessionOptions::default()
                .timeout(timeout)
                .retries(3);
            lan_disk_boot(&bmc, &creds, &opts)
                .await
                .map_err(|e| chain(&e))
        }
    };
    Completion::Bmc(result)
}

async fn lan_disk_boot(
    bmc: &racker_ipmi::BmcAddress,
    creds: &racker_ipmi::Credentials,
    opts: &racker_ipmi::SessionOptions,
) -> Result<(), racker_ipmi::Error> {
    let mut session = racker_ipmi::Session::connect(bmc, creds, opts).await?;
    session.disable_boot_flag_timeout().await?;
    session
        .set_boot_device(racker_ipmi::BootDevice::Disk, true, true)
        .await?;
    // The flags are set; a lost Close Session reply changes nothing.
    let _ = session.close().await;
    Ok(())
}
