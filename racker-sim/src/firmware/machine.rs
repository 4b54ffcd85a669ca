//! The sans-IO firmware state machine: PXE ROM, iPXE and the installer of
//! one simulated node. Events and the current time go in; console text,
//! DHCP datagrams, HTTP requests and BMC requests come out.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use racker_lokomotive::commands::{self, Script, SimpleCommand};
use racker_lokomotive::ignition::Config as IgnitionConfig;
use url::Url;

use super::dhcp::{self, Client, ClientId, ReplyKind};
use super::ipxe::{self, Outcome, Vars};
use super::{ClientArch, FirmwareFaults};
use crate::chassis::BootDevice;
use crate::rack::format_mac;

/// Text printed once the installed OS is up (after "booted from disk").
pub const OS_UP_MARKER: &str = "Reached target Multi-User System";

/// Deepest `chain` nesting followed.
const MAX_CHAIN_DEPTH: u32 = 8;
/// Largest Ignition config accepted (bytes).
const MAX_IGNITION: usize = 4 << 20;
/// Longest DHCP retransmission interval.
const MAX_DHCP_INTERVAL: Duration = Duration::from_secs(32);

/// Settings of the state machine.
#[derive(Debug, Clone)]
pub struct MachineConfig {
    /// The node's primary (PXE) MAC.
    pub mac: [u8; 6],
    /// Client architecture sent in option 93.
    pub arch: ClientArch,
    /// First DHCP retransmission timeout (doubles each time, like PXE ROMs'
    /// 4-8-16-32 s schedule).
    pub dhcp_timeout: Duration,
    /// Transmissions per DHCP phase before giving up (at least 1).
    pub dhcp_attempts: u32,
    /// HTTP retries after a failed download (connection error, 5xx,
    /// size mismatch); 4xx answers are not retried.
    pub http_retries: u32,
    /// Pause before an HTTP retry.
    pub retry_delay: Duration,
    /// How long the simulated installer writes the disk.
    pub install_delay: Duration,
    /// Whether the disk already holds an installed OS at start.
    pub preinstalled: bool,
    /// With `preinstalled`: base URL of the netboot server that OS was
    /// installed from; it reports `up` there on every boot. `None` (or an
    /// unparsable URL): the OS reports nothing.
    pub installed_from: Option<String>,
    /// Seed of the DHCP transaction ids.
    pub xid_seed: u32,
}

impl MachineConfig {
    /// Defaults for `mac`: UEFI x64, 1 s first DHCP timeout, 4 attempts,
    /// 3 HTTP retries 500 ms apart, no install delay.
    pub fn new(mac: [u8; 6]) -> Self {
        MachineConfig {
            mac,
            arch: ClientArch::EfiX64,
            dhcp_timeout: Duration::from_secs(1),
            dhcp_attempts: 4,
            http_retries: 3,
            retry_delay: Duration::from_millis(500),
            install_delay: Duration::ZERO,
            preinstalled: false,
            installed_from: None,
            xid_seed: 0,
        }
    }
}

/// HTTP method of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    /// GET.
    Get,
    /// POST with an empty body.
    Post,
}

/// An HTTP request the driver must perform, then answer with
/// [`FirmwareMachine::handle_http`] and the same `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpRequest {
    /// Matches the answer to the request.
    pub id: u64,
    /// GET or POST.
    pub method: HttpMethod,
    /// Absolute URL.
    pub url: String,
    /// Return the body (scripts, Ignition); otherwise only count bytes.
    pub keep_body: bool,
    /// Most body bytes to keep.
    pub max_body: usize,
    /// Fault injection: break the connection after the first chunk of
    /// the body and answer [`HttpOutcome::Failed`].
    pub break_connection: bool,
}

/// What came of an [`HttpRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpOutcome {
    /// A response was read to its end.
    Response {
        /// Status code.
        status: u16,
        /// The `Content-Length` header, if any.
        content_length: Option<u64>,
        /// Body bytes received.
        received: u64,
        /// The body when asked for (else empty).
        body: Vec<u8>,
    },
    /// Connection error, timeout, broken body.
    Failed(String),
}

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Write to the serial console.
    Console(String),
    /// Send a DHCP datagram to the server.
    SendDhcp(Vec<u8>),
    /// Perform an HTTP request.
    Http(HttpRequest),
    /// Set the next boot to the disk (persistent, EFI) through the node's
    /// BMC, and disable the 60-s boot-flag timeout; answer with
    /// [`FirmwareMachine::handle_bmc`].
    SetDiskBoot,
    /// Reboot the node (a power cycle through the chassis).
    Reboot,
}

/// Where the node is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Powered off (or never powered on).
    Off,
    /// PXE ROM DHCP exchange.
    PxeDhcp,
    /// iPXE DHCP exchange (user class `iPXE`).
    IpxeDhcp,
    /// Fetching iPXE scripts.
    IpxeScript,
    /// Downloading kernel and initrds.
    Downloading,
    /// Installer booted: fetching Ignition, reporting `installing`.
    InstallerBooted,
    /// Writing the disk (the install delay).
    Installing,
    /// Setting disk boot through the BMC and reporting `installed`.
    Finishing,
    /// Rebooting into the installed OS.
    Rebooting,
    /// Booted from disk; the OS is up.
    OsUp,
    /// Stopped responding (fault `hang`).
    Hung,
    /// Stopped with an error on the console (no bootable device, installer
    /// failure, emergency shell).
    Halted {
        /// What the console last said.
        reason: String,
    },
}

/// One finished download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    /// The URL.
    pub url: String,
    /// Bytes received (equal to `Content-Length`).
    pub bytes: u64,
}

/// Observable progress of a node's firmware, accumulated since start.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FirmwareStatus {
    /// Current phase.
    pub phase: Phase,
    /// Boots so far (power-ons and resets).
    pub boots: u32,
    /// Last address leased to the PXE ROM.
    pub lease: Option<Ipv4Addr>,
    /// Last address leased to iPXE.
    pub ipxe_lease: Option<Ipv4Addr>,
    /// Last TFTP boot file offered to the PXE ROM.
    pub boot_file: Option<String>,
    /// Last boot script URL offered to iPXE.
    pub script_url: Option<String>,
    /// Every successful download.
    pub downloads: Vec<Download>,
    /// Last Ignition config URL (from the kernel command line).
    pub ignition_url: Option<String>,
    /// Installs completed (disk written).
    pub installs: u32,
    /// Report stages the server accepted, in order (`installing`, ...).
    pub reports: Vec<String>,
    /// Whether the disk holds an installed OS.
    pub disk_installed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReportStage {
    Installing,
    Installed,
    Up,
    Failed,
}

impl ReportStage {
    fn as_str(self) -> &'static str {
        match self {
            ReportStage::Installing => "installing",
            ReportStage::Installed => "installed",
            ReportStage::Up => "up",
            ReportStage::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Purpose {
    Script {
        depth: u32,
    },
    Kernel,
    Initrd {
        index: usize,
    },
    Ignition,
    Report {
        stage: ReportStage,
        reason: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DhcpStage {
    Selecting,
    Requesting { ip: Ipv4Addr, server: Ipv4Addr },
}

#[derive(Debug, Clone)]
struct DhcpState {
    client: Client,
    xid: u32,
    stage: DhcpStage,
    sent: u32,
    interval: Duration,
    naks: u32,
}

#[derive(Debug, Clone)]
enum Step {
    Idle,
    Dhcp(DhcpState),
    Http {
        request: HttpRequest,
        purpose: Purpose,
        attempt: u32,
        waiting_retry: bool,
    },
    Installing,
    SettingBoot,
}

#[derive(Debug, Clone)]
struct BootPlan {
    args: Vec<String>,
    initrds: Vec<Url>,
}

/// The firmware of one node, sans IO.
///
/// Feed it [`FirmwareMachine::boot`] when the chassis boots,
/// [`FirmwareMachine::power_off`], DHCP datagrams, HTTP outcomes, the BMC
/// result and timeouts ([`FirmwareMachine::poll_timeout`]); drain
/// [`FirmwareMachine::poll_action`] after each.
#[derive(Debug)]
pub struct FirmwareMachine {
    cfg: MachineConfig,
    faults: FirmwareFaults,
    step: Step,
    deadline: Option<Instant>,
    boot_started: Option<Instant>,
    actions: VecDeque<Action>,
    status: FirmwareStatus,
    vars: Vars,
    plan: Option<BootPlan>,
    report_base: Option<Url>,
    /// The install-report token of the installer's report URLs (racker
    /// renders it into the node's own Ignition); sent with every report,
    /// also the installed OS's `up`.
    report_token: Option<String>,
    installer: Option<Installer>,
    xids: u32,
    next_id: u64,
}

/// The rendered installer script the Ignition config runs, being followed
/// step by step (docs/simulated-firmware.md).
#[derive(Debug, Clone)]
struct Installer {
    /// Its path (for messages like bash's).
    path: String,
    script: Script,
    /// Next top-level command.
    next: usize,
    /// Inside a function call (or the ERR trap): the body, the next
    /// command in it, the arguments.
    call: Option<(Vec<SimpleCommand>, usize, Vec<String>)>,
    /// The `trap ... ERR` command text.
    trap: Option<String>,
    /// Why it is failing (the ERR trap runs).
    failing: Option<String>,
}

impl Installer {
    /// The installer of an Ignition config: a unit whose `Exec*` runs a
    /// `#!` script the config itself writes.
    fn find(config: &IgnitionConfig) -> Option<Installer> {
        let units = config.systemd.as_ref()?;
        for unit in &units.units {
            let Some(contents) = &unit.contents else {
                continue;
            };
            for program in commands::unit_commands(contents) {
                let Some(text) = config
                    .file(&program)
                    .and_then(|f| f.contents.as_ref())
                    .and_then(|c| racker_lokomotive::decode_data_url(&c.source))
                    .and_then(|b| String::from_utf8(b).ok())
                else {
                    continue;
                };
                if text.starts_with("#!") {
                    return Some(Installer {
                        path: program,
                        script: commands::parse_script(&text),
                        next: 0,
                        call: None,
                        trap: None,
                        failing: None,
                    });
                }
            }
        }
        None
    }

    fn function(&self, name: &str) -> Option<&Vec<SimpleCommand>> {
        self.script
            .functions
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, body)| body)
    }

    /// The next command to run with the arguments of its function call.
    fn next_command(&mut self) -> Option<(SimpleCommand, Vec<String>)> {
        loop {
            if let Some((body, i, args)) = &mut self.call {
                if let Some(c) = body.get(*i) {
                    *i += 1;
                    return Some((c.clone(), args.clone()));
                }
                self.call = None;
                continue;
            }
            let c = self.script.commands.get(self.next)?.clone();
            self.next += 1;
            return Some((c, Vec::new()));
        }
    }
}

/// `$1`..`$9` of a function call replaced by its arguments.
fn substitute(word: &str, args: &[String]) -> String {
    let mut out = word.to_owned();
    for (i, a) in args.iter().enumerate().take(9).rev() {
        out = out.replace(&format!("${}", i + 1), a);
    }
    out
}

/// The `stage=` of a report URL.
fn report_stage(url: &str) -> Option<ReportStage> {
    let query = url.split_once('?')?.1;
    let stage = query.split('&').find_map(|kv| kv.strip_prefix("stage="))?;
    match stage {
        "installing" => Some(ReportStage::Installing),
        "installed" => Some(ReportStage::Installed),
        "up" => Some(ReportStage::Up),
        "failed" => Some(ReportStage::Failed),
        _ => None,
    }
}

impl FirmwareMachine {
    /// A powered-off node.
    pub fn new(cfg: MachineConfig) -> Self {
        let vars = Vars {
            mac: cfg.mac,
            arch: cfg.arch,
            ip: None,
            netmask: None,
            next_server: None,
            hostname: None,
            filename: None,
            user: Default::default(),
        };
        let status = FirmwareStatus {
            phase: Phase::Off,
            boots: 0,
            lease: None,
            ipxe_lease: None,
            boot_file: None,
            script_url: None,
            downloads: Vec::new(),
            ignition_url: None,
            installs: 0,
            reports: Vec::new(),
            disk_installed: cfg.preinstalled,
        };
        let report_base = cfg
            .installed_from
            .as_deref()
            .filter(|_| cfg.preinstalled)
            .and_then(|u| Url::parse(u).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https"));
        FirmwareMachine {
            cfg,
            faults: FirmwareFaults::default(),
            step: Step::Idle,
            deadline: None,
            boot_started: None,
            actions: VecDeque::new(),
            status,
            vars,
            plan: None,
            // A preinstalled OS reports with the token its URL carries.
            report_token: report_base.as_ref().and_then(|u| {
                u.query_pairs()
                    .find(|(k, _)| k == "token")
                    .map(|(_, v)| v.into_owned())
            }),
            report_base,
            installer: None,
            xids: 0,
            next_id: 0,
        }
    }

    /// Replace the faults (they take effect at once; set them before
    /// [`FirmwareMachine::boot`] to affect a whole boot).
    pub fn set_faults(&mut self, faults: FirmwareFaults) {
        self.faults = faults;
    }

    /// Progress so far.
    pub fn status(&self) -> &FirmwareStatus {
        &self.status
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`FirmwareMachine::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    fn say(&mut self, text: impl AsRef<str>) {
        let mut s = text.as_ref().replace('\n', "\r\n");
        s.push_str("\r\n");
        self.actions.push_back(Action::Console(s));
    }

    fn set_phase(&mut self, phase: Phase) {
        self.status.phase = phase;
    }

    fn mac_str(&self) -> String {
        format_mac(self.cfg.mac)
    }

    /// The chassis powered off: everything in flight is abandoned.
    pub fn power_off(&mut self, _now: Instant) {
        self.step = Step::Idle;
        self.deadline = None;
        self.plan = None;
        self.installer = None;
        self.set_phase(Phase::Off);
    }

    /// The chassis booted (power on, cycle or reset) with this boot-device
    /// override ([`BootDevice::None`] = the firmware's own order: the disk
    /// when it holds an OS, else the network).
    pub fn boot(&mut self, now: Instant, device: BootDevice, efi: bool) {
        self.power_off(now);
        self.status.boots = self.status.boots.saturating_add(1);
        self.boot_started = Some(now);
        self.vars.user.clear();
        let mode = if efi || self.cfg.arch.is_efi() {
            "UEFI"
        } else {
            "BIOS"
        };
        self.say(format!(
            "\nRacker simulated server {} ({mode}), boot #{}: boot device {}",
            self.mac_str(),
            self.status.boots,
            device
        ));
        match device {
            BootDevice::Pxe => self.start_dhcp(now, Client::PxeRom),
            BootDevice::None if !self.status.disk_installed => {
                self.say("No boot override; disk is empty, trying the network");
                self.start_dhcp(now, Client::PxeRom);
            }
            BootDevice::None | BootDevice::Disk | BootDevice::DiskSafe => self.boot_disk(),
            other => {
                self.say(format!(
                    "Boot device {other} is not present; trying the disk"
                ));
                self.boot_disk();
            }
        }
    }

    fn boot_disk(&mut self) {
        self.step = Step::Idle;
        self.deadline = None;
        if self.status.disk_installed {
            self.say(format!(
                "Booting from local disk (EFI)...\nbooted from disk\nFlatcar Container Linux (simulated) on {}",
                self.mac_str()
            ));
            // racker-report-up.service of the rendered OS config runs
            // before multi-user.target is reached (targets are ordered
            // after the units they want).
            if self.report_base.is_some() && !self.faults.no_os_up {
                self.report(ReportStage::Up, None);
                return;
            }
            if self.report_base.is_some() {
                self.say(
                    "racker-report-up.service: curl: (7) Failed to connect: Network is unreachable\n[FAILED] Failed to start racker-report-up.service.",
                );
            }
            self.os_up();
        } else {
            self.halt("No bootable device found on the local disk.".to_owned());
        }
    }

    /// The installed OS reached multi-user.target.
    fn os_up(&mut self) {
        self.step = Step::Idle;
        self.deadline = None;
        let host = self
            .vars
            .hostname
            .clone()
            .unwrap_or_else(|| "localhost".to_owned());
        self.say(format!("[  OK  ] {OS_UP_MARKER}.\n\n{host} login: "));
        self.set_phase(Phase::OsUp);
    }

    fn halt(&mut self, reason: String) {
        self.say(&reason);
        self.step = Step::Idle;
        self.deadline = None;
        self.set_phase(Phase::Halted { reason });
    }

    fn secs(&self, now: Instant) -> u16 {
        let s = self
            .boot_started
            .map(|t| now.saturating_duration_since(t).as_secs())
            .unwrap_or(0);
        u16::try_from(s).unwrap_or(u16::MAX)
    }

    fn client_id(&self, now: Instant, client: Client, xid: u32) -> ClientId {
        ClientId {
            mac: self.cfg.mac,
            arch: self.cfg.arch,
            client,
            xid,
            secs: self.secs(now),
        }
    }

    fn start_dhcp(&mut self, now: Instant, client: Client) {
        self.xids = self.xids.wrapping_add(1);
        let mac = self.cfg.mac;
        let xid = self
            .cfg
            .xid_seed
            .wrapping_add(u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]]))
            .wrapping_add(self.xids.wrapping_mul(0x9E37_79B9));
        match client {
            Client::PxeRom => {
                self.set_phase(Phase::PxeDhcp);
                self.say(format!(
                    ">>Start PXE over IPv4 on MAC {} (client arch {}).\n  PXE: DHCP DISCOVER ({})",
                    self.mac_str(),
                    self.cfg.arch.code(),
                    dhcp::vendor_class(self.cfg.arch, client)
                ));
            }
            Client::Ipxe => {
                self.set_phase(Phase::IpxeDhcp);
                self.say(format!(
                    "iPXE 1.21.1+ (racker-sim) -- Open Source Network Boot Firmware -- https://ipxe.org\nConfiguring (net0 {})... DHCP with user class iPXE",
                    self.mac_str()
                ));
            }
        }
        let state = DhcpState {
            client,
            xid,
            stage: DhcpStage::Selecting,
            sent: 0,
            interval: self.cfg.dhcp_timeout.max(Duration::from_millis(1)),
            naks: 0,
        };
        self.step = Step::Dhcp(state);
        self.transmit_dhcp(now);
    }

    /// Send (or, with the `no-lease` fault, lose) the current DHCP message
    /// and arm the retransmission timer.
    fn transmit_dhcp(&mut self, now: Instant) {
        let Step::Dhcp(state) = &mut self.step else {
            return;
        };
        state.sent = state.sent.saturating_add(1);
        let wait = state.interval;
        state.interval = (state.interval * 2).min(MAX_DHCP_INTERVAL);
        let (client, xid, stage) = (state.client, state.xid, state.stage.clone());
        let id = self.client_id(now, client, xid);
        let bytes = match stage {
            DhcpStage::Selecting => dhcp::discover(&id),
            DhcpStage::Requesting { ip, server } => dhcp::request(&id, ip, server),
        };
        if !self.faults.no_lease {
            self.actions.push_back(Action::SendDhcp(bytes));
        }
        self.deadline = Some(now + wait);
    }

    /// A datagram arrived on the firmware's DHCP socket.
    pub fn handle_dhcp(&mut self, now: Instant, datagram: &[u8]) {
        if self.faults.no_lease {
            return;
        }
        let Step::Dhcp(state) = &self.step else {
            return;
        };
        let Some(reply) = dhcp::parse_reply(datagram, self.cfg.mac, state.xid) else {
            return;
        };
        let state = state.clone();
        match (&state.stage, reply.kind) {
            (DhcpStage::Selecting, ReplyKind::Offer) => {
                let Some(server) = reply.server_id else {
                    return;
                };
                if reply.yiaddr.is_unspecified() {
                    return;
                }
                self.say(format!(
                    "  PXE: OFFER {} from {server}; DHCP REQUEST",
                    reply.yiaddr
                ));
                if let Step::Dhcp(s) = &mut self.step {
                    s.stage = DhcpStage::Requesting {
                        ip: reply.yiaddr,
                        server,
                    };
                    s.sent = 0;
                    s.interval = self.cfg.dhcp_timeout.max(Duration::from_millis(1));
                }
                self.transmit_dhcp(now);
            }
            (DhcpStage::Requesting { ip, .. }, ReplyKind::Ack) if reply.yiaddr == *ip => {
                self.deadline = None;
                self.step = Step::Idle;
                self.bound(now, state.client, reply);
            }
            (DhcpStage::Requesting { .. }, ReplyKind::Nak) => {
                self.say("  PXE: DHCP NAK; restarting DHCP");
                let naks = state.naks.saturating_add(1);
                if naks >= self.cfg.dhcp_attempts.max(1) {
                    self.dhcp_failed(state.client);
                    return;
                }
                if let Step::Dhcp(s) = &mut self.step {
                    s.stage = DhcpStage::Selecting;
                    s.sent = 0;
                    s.naks = naks;
                    s.interval = self.cfg.dhcp_timeout.max(Duration::from_millis(1));
                }
                self.transmit_dhcp(now);
            }
            _ => {}
        }
    }

    fn dhcp_failed(&mut self, client: Client) {
        self.step = Step::Idle;
        self.deadline = None;
        match client {
            Client::PxeRom => {
                self.say("PXE-E51: No DHCP or proxyDHCP offers were received.\nPXE-M0F: Exiting PXE ROM.");
            }
            Client::Ipxe => {
                self.say(
                    "No configuration methods succeeded (https://ipxe.org/040ee186)\niPXE exiting.",
                );
            }
        }
        self.boot_disk();
    }

    fn bound(&mut self, _now: Instant, client: Client, reply: dhcp::ServerReply) {
        self.vars.ip = Some(reply.yiaddr);
        self.vars.netmask = reply.netmask;
        self.vars.next_server = Some(reply.siaddr).filter(|a| !a.is_unspecified());
        if reply.hostname.is_some() {
            self.vars.hostname = reply.hostname.clone();
        }
        self.vars.filename = reply.boot_file.clone();
        match client {
            Client::PxeRom => {
                self.status.lease = Some(reply.yiaddr);
                self.say(format!(
                    "  Station IP address is {}\n  Server IP address is {}",
                    reply.yiaddr, reply.siaddr
                ));
                match reply.boot_file {
                    None => {
                        self.say("PXE-E53: No boot filename received.\nPXE-M0F: Exiting PXE ROM.");
                        self.boot_disk();
                    }
                    Some(file) if file.contains("://") => {
                        self.status.boot_file = Some(file.clone());
                        self.say(format!(
                            "PXE-E3B: boot file {file} is a URL, not a TFTP file name.\nPXE-M0F: Exiting PXE ROM."
                        ));
                        self.boot_disk();
                    }
                    Some(file) => {
                        self.status.boot_file = Some(file.clone());
                        self.say(format!(
                            "  NBP filename is {file}\n  Downloading NBP file tftp://{}/{file}... (simulated)\n  NBP file downloaded successfully.",
                            reply.siaddr
                        ));
                        self.start_dhcp(_now, Client::Ipxe);
                    }
                }
            }
            Client::Ipxe => {
                self.status.ipxe_lease = Some(reply.yiaddr);
                self.say(format!("net0: {} ok", reply.yiaddr));
                match reply.boot_file {
                    None => {
                        self.say("No boot filename from DHCP; nothing to boot\niPXE exiting.");
                        self.boot_disk();
                    }
                    Some(file) => match Url::parse(&file) {
                        Ok(url) if matches!(url.scheme(), "http" | "https") => {
                            self.status.script_url = Some(file.clone());
                            self.set_phase(Phase::IpxeScript);
                            self.say(format!("Next server: {}\nFilename: {file}", reply.siaddr));
                            self.fetch(url, Purpose::Script { depth: 0 }, true, ipxe::MAX_SCRIPT);
                        }
                        _ => {
                            self.say(format!(
                                "iPXE was offered {file:?}, not an HTTP script: a chainload loop; giving up\niPXE exiting."
                            ));
                            self.boot_disk();
                        }
                    },
                }
            }
        }
    }

    fn fetch(&mut self, url: Url, purpose: Purpose, keep_body: bool, max_body: usize) {
        self.next_id = self.next_id.wrapping_add(1);
        let method = if matches!(purpose, Purpose::Report { .. }) {
            HttpMethod::Post
        } else {
            HttpMethod::Get
        };
        let break_connection = self.faults.download_fail && purpose == Purpose::Kernel;
        let request = HttpRequest {
            id: self.next_id,
            method,
            url: url.to_string(),
            keep_body,
            max_body,
            break_connection,
        };
        self.deadline = None;
        self.actions.push_back(Action::Http(request.clone()));
        self.step = Step::Http {
            request,
            purpose,
            attempt: 0,
            waiting_retry: false,
        };
    }

    /// The answer to [`Action::Http`] with this `id`.
    pub fn handle_http(&mut self, now: Instant, id: u64, outcome: HttpOutcome) {
        let Step::Http {
            request,
            purpose,
            attempt,
            waiting_retry: false,
        } = &self.step
        else {
            return;
        };
        if request.id != id {
            return;
        }
        let (request, purpose, attempt) = (request.clone(), purpose.clone(), *attempt);
        let is_report = matches!(purpose, Purpose::Report { .. });
        let verdict: Result<Vec<u8>, (String, bool)> = match outcome {
            HttpOutcome::Failed(e) => Err((e, true)),
            HttpOutcome::Response {
                status,
                content_length,
                received,
                body,
            } => {
                if !(200..300).contains(&status) {
                    Err((format!("HTTP status {status}"), status >= 500))
                } else if is_report {
                    Ok(body)
                } else {
                    match content_length {
                        None => Err(("no Content-Length in the response".to_owned(), true)),
                        Some(n) if n != received => Err((
                            format!("size mismatch: Content-Length {n}, received {received} bytes"),
                            true,
                        )),
                        Some(_) => {
                            self.status.downloads.push(Download {
                                url: request.url.clone(),
                                bytes: received,
                            });
                            self.say(format!("http: {} ok ({received} bytes)", request.url));
                            Ok(body)
                        }
                    }
                }
            }
        };
        match verdict {
            Ok(body) => {
                self.step = Step::Idle;
                self.fetched(now, purpose, &request.url, body);
            }
            Err((why, retry)) if retry && attempt < self.cfg.http_retries => {
                self.say(format!(
                    "http: {} failed: {why}; retrying ({}/{})",
                    request.url,
                    attempt + 1,
                    self.cfg.http_retries
                ));
                self.step = Step::Http {
                    request,
                    purpose,
                    attempt: attempt + 1,
                    waiting_retry: true,
                };
                self.deadline = Some(now + self.cfg.retry_delay);
            }
            Err((why, _)) => {
                self.step = Step::Idle;
                self.gave_up(now, purpose, &request.url, why);
            }
        }
    }

    fn gave_up(&mut self, now: Instant, purpose: Purpose, url: &str, why: String) {
        if self.installer.is_some() && matches!(purpose, Purpose::Report { .. }) {
            // curl failed; the script's `|| true` goes on.
            self.say(format!("curl: {url}: {why}"));
            self.run_installer(now);
            return;
        }
        match purpose {
            Purpose::Script { .. } | Purpose::Kernel | Purpose::Initrd { .. } => {
                self.say(format!(
                    "Could not boot: {url}: {why} (https://ipxe.org/err/download)\niPXE exiting."
                ));
                self.boot_disk();
            }
            Purpose::Ignition => {
                self.halt(format!(
                    "ignition[fetch]: GET {url} failed: {why}\nGenerating \"/run/initramfs/rdsosreport.txt\"\nEntering emergency mode."
                ));
            }
            Purpose::Report {
                stage: ReportStage::Installing,
                ..
            } => {
                self.say(format!("installer: could not report progress: {why}"));
                self.start_install(now);
            }
            Purpose::Report {
                stage: ReportStage::Installed,
                ..
            } => {
                self.say(format!("installer: could not report completion: {why}"));
                self.reboot();
            }
            Purpose::Report {
                stage: ReportStage::Up,
                ..
            } => {
                self.say(format!(
                    "racker-report-up.service: could not report: {why}\n[FAILED] Failed to start racker-report-up.service."
                ));
                self.os_up();
            }
            Purpose::Report {
                stage: ReportStage::Failed,
                reason,
            } => {
                self.say(format!("installer: could not report the failure: {why}"));
                self.halt(format!("installer: failed: {}", reason.unwrap_or_default()));
            }
        }
    }

    fn fetched(&mut self, now: Instant, purpose: Purpose, url: &str, body: Vec<u8>) {
        match purpose {
            Purpose::Script { depth } => self.run_script(depth, url, &body),
            Purpose::Kernel => self.next_initrd(0),
            Purpose::Initrd { index } => self.next_initrd(index + 1),
            Purpose::Ignition => self.ignition_fetched(now, &body),
            Purpose::Report { stage, .. } if self.installer.is_some() => {
                self.status.reports.push(stage.as_str().to_owned());
                self.say(format!("installer: reported stage {}", stage.as_str()));
                self.run_installer(now);
            }
            Purpose::Report { stage, reason } => {
                self.status.reports.push(stage.as_str().to_owned());
                match stage {
                    ReportStage::Installing => {
                        self.say("installer: reported stage installing");
                        self.start_install(now);
                    }
                    ReportStage::Installed => {
                        self.say("installer: reported stage installed");
                        self.reboot();
                    }
                    ReportStage::Up => {
                        self.say("[  OK  ] Finished racker-report-up.service (reported up).");
                        self.os_up();
                    }
                    ReportStage::Failed => {
                        self.halt(format!(
                            "installer: reported stage failed: {}",
                            reason.unwrap_or_default()
                        ));
                    }
                }
            }
        }
    }

    fn run_script(&mut self, depth: u32, url: &str, body: &[u8]) {
        let Ok(base) = Url::parse(url) else {
            self.halt(format!("iPXE: bad script URL {url:?}"));
            return;
        };
        let text = String::from_utf8_lossy(body);
        let run = ipxe::run(&text, &base, &mut self.vars);
        for e in &run.echoes {
            self.say(e);
        }
        match run.outcome {
            Outcome::Chain(url) => {
                if depth + 1 > MAX_CHAIN_DEPTH {
                    self.say(format!(
                        "Could not boot: more than {MAX_CHAIN_DEPTH} chained scripts\niPXE exiting."
                    ));
                    self.boot_disk();
                    return;
                }
                self.say(format!("chain {url}"));
                self.fetch(
                    url,
                    Purpose::Script { depth: depth + 1 },
                    true,
                    ipxe::MAX_SCRIPT,
                );
            }
            Outcome::Boot {
                kernel,
                args,
                initrds,
            } => {
                self.set_phase(Phase::Downloading);
                self.say(format!("kernel {kernel} {}", args.join(" ")));
                self.plan = Some(BootPlan { args, initrds });
                self.fetch(kernel, Purpose::Kernel, false, 0);
            }
            Outcome::Exit => {
                self.say("iPXE exiting; trying the next boot device.");
                self.boot_disk();
            }
            Outcome::Error(e) => {
                self.say(format!("Could not boot: {e}\niPXE exiting."));
                self.boot_disk();
            }
        }
    }

    fn next_initrd(&mut self, index: usize) {
        let Some(plan) = &self.plan else {
            return;
        };
        if let Some(url) = plan.initrds.get(index).cloned() {
            self.say(format!("initrd {url}"));
            self.fetch(url, Purpose::Initrd { index }, false, 0);
            return;
        }
        let args = plan.args.clone();
        self.set_phase(Phase::InstallerBooted);
        self.say(format!(
            "Booting the kernel...\n[    0.000000] Linux version 6.6.0-flatcar (racker-sim)\n[    0.000000] Command line: {}",
            args.join(" ")
        ));
        let Some(ign) = ipxe::ignition_url(&args).map(str::to_owned) else {
            self.halt(
                "ignition: no ignition.config.url on the kernel command line\nEntering emergency mode."
                    .to_owned(),
            );
            return;
        };
        self.status.ignition_url = Some(ign.clone());
        match Url::parse(&ign) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {
                self.report_base = Some(url.clone());
                self.say(format!("ignition[fetch]: GET {url}"));
                self.fetch(url, Purpose::Ignition, true, MAX_IGNITION);
            }
            _ => self.halt(format!(
                "ignition: config URL {ign:?} is not an HTTP URL\nEntering emergency mode."
            )),
        }
    }

    fn ignition_fetched(&mut self, now: Instant, body: &[u8]) {
        let valid = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .is_some_and(|v| v.get("ignition").is_some());
        if !valid {
            self.halt(
                "ignition: the config is not Ignition JSON (no \"ignition\" section)\nEntering emergency mode."
                    .to_owned(),
            );
            return;
        }
        // Racker's install config: follow the installer it runs.
        if let Some(installer) = serde_json::from_slice::<IgnitionConfig>(body)
            .ok()
            .as_ref()
            .and_then(Installer::find)
        {
            self.say(format!(
                "ignition: config fetched and parsed\n[  OK  ] Started the installer {}.",
                installer.path
            ));
            self.installer = Some(installer);
            self.run_installer(now);
            return;
        }
        // Any other config: the built-in simulated installer.
        self.say("ignition: config fetched and parsed");
        self.report(ReportStage::Installing, None);
    }

    /// Follow the installer script until a step has to wait (a report, the
    /// disk write, the reboot) or it ends. Every program must be on a stock
    /// Flatcar image (`racker_lokomotive::commands`); another one fails
    /// like bash would (`command not found`, then the ERR trap).
    fn run_installer(&mut self, now: Instant) {
        loop {
            let Some(inst) = self.installer.as_mut() else {
                return;
            };
            let Some((cmd, args)) = inst.next_command() else {
                let why = inst
                    .failing
                    .take()
                    .unwrap_or_else(|| format!("{} ended without rebooting", inst.path));
                self.installer = None;
                self.halt(format!("installer: failed: {why}"));
                return;
            };
            let words: Vec<String> = cmd.words.iter().map(|w| substitute(w, &args)).collect();
            let unknown = cmd
                .programs
                .iter()
                .find(|p| !commands::is_allowed(p) && inst.function(p).is_none())
                .cloned();
            if let Some(program) = unknown {
                let why = format!(
                    "{}: line {}: {program}: command not found",
                    inst.path, cmd.line
                );
                self.installer_error(why);
                continue;
            }
            let Some(program) = words.first().cloned() else {
                continue;
            };
            if let Some(body) = inst.function(&program).cloned() {
                inst.call = Some((body, 0, words[1..].to_vec()));
                continue;
            }
            match program.rsplit('/').next().unwrap_or(&program) {
                "trap" => {
                    if words.last().is_some_and(|w| w == "ERR") {
                        inst.trap = words.get(1).cloned();
                    }
                }
                "flatcar-install" => {
                    self.say(format!("+ {}", words.join(" ")));
                    self.start_install(now);
                    return;
                }
                "curl" if words.iter().any(|w| w == "POST") => {
                    let Some(url) = words.iter().find(|w| w.contains("/report?")) else {
                        continue;
                    };
                    let Some(stage) = report_stage(url) else {
                        self.say(format!("installer: unknown report {url}"));
                        continue;
                    };
                    if let Some(token) = url
                        .split_once('?')
                        .and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix("token=")))
                    {
                        self.report_token = Some(token.trim_matches('"').to_owned());
                    }
                    let reason = if stage == ReportStage::Failed {
                        inst.failing.clone()
                    } else {
                        None
                    };
                    self.report(stage, reason);
                    if self.report_base.is_some() {
                        return;
                    }
                }
                "systemctl" if words.get(1).is_some_and(|w| w == "reboot") => {
                    if let Some(why) = self.installer.as_mut().and_then(|i| i.failing.take()) {
                        self.installer = None;
                        self.halt(format!("installer: failed: {why}"));
                        return;
                    }
                    self.installer = None;
                    self.reboot();
                    return;
                }
                _ => self.say(format!("+ {}", words.join(" "))),
            }
        }
    }

    /// A command of the installer failed: say why and run its ERR trap
    /// (once), as `set -e` with `trap ... ERR` does; without a trap the
    /// script stops.
    fn installer_error(&mut self, why: String) {
        self.say(&why);
        let Some(inst) = self.installer.as_mut() else {
            return;
        };
        if inst.failing.is_some() {
            return;
        }
        inst.failing = Some(why);
        inst.next = usize::MAX;
        inst.call = inst
            .trap
            .as_deref()
            .map(|t| (commands::parse_script(t).commands, 0, Vec::new()));
    }

    fn report(&mut self, stage: ReportStage, reason: Option<String>) {
        let Some(mut url) = self.report_base.clone() else {
            return;
        };
        url.set_path("/report");
        url.set_fragment(None);
        let mac = self.mac_str();
        {
            let mut q = url.query_pairs_mut();
            q.clear();
            q.append_pair("mac", &mac);
            q.append_pair("stage", stage.as_str());
            if let Some(r) = &reason {
                q.append_pair("reason", r);
            }
            if let Some(t) = &self.report_token {
                q.append_pair("token", t);
            }
        }
        self.fetch(url, Purpose::Report { stage, reason }, false, 0);
    }

    fn start_install(&mut self, now: Instant) {
        self.set_phase(Phase::Installing);
        self.say("flatcar-install: writing Flatcar Container Linux to /dev/sda...");
        if self.faults.hang {
            // Nothing more: no output, no timer, no report.
            self.step = Step::Idle;
            self.deadline = None;
            self.set_phase(Phase::Hung);
            return;
        }
        self.step = Step::Installing;
        self.deadline = Some(now + self.cfg.install_delay);
    }

    fn install_done(&mut self, now: Instant) {
        self.deadline = None;
        if self.installer.is_some() {
            self.step = Step::Idle;
            if self.faults.install_fail {
                self.installer_error(
                    "flatcar-install: writing /dev/sda failed: Input/output error (simulated)"
                        .to_owned(),
                );
            } else {
                self.status.disk_installed = true;
                self.status.installs = self.status.installs.saturating_add(1);
                self.set_phase(Phase::Finishing);
                self.say(
                    "flatcar-install: Success! Flatcar Container Linux is installed on /dev/sda",
                );
            }
            self.run_installer(now);
            return;
        }
        if self.faults.install_fail {
            let reason = "flatcar-install: writing /dev/sda failed: Input/output error (simulated)";
            self.say(format!("{reason}\ninstaller: reporting failure"));
            self.step = Step::Idle;
            self.report(ReportStage::Failed, Some(reason.to_owned()));
            return;
        }
        self.status.disk_installed = true;
        self.status.installs = self.status.installs.saturating_add(1);
        self.set_phase(Phase::Finishing);
        self.say("flatcar-install: Success! Flatcar Container Linux is installed on /dev/sda\ninstaller: ipmitool chassis bootdev disk options=persistent,efiboot");
        self.step = Step::SettingBoot;
        self.actions.push_back(Action::SetDiskBoot);
    }

    /// The answer to [`Action::SetDiskBoot`].
    pub fn handle_bmc(&mut self, _now: Instant, result: Result<(), String>) {
        if !matches!(self.step, Step::SettingBoot) {
            return;
        }
        self.step = Step::Idle;
        match result {
            Ok(()) => {
                self.say("installer: next boot set to disk (persistent, EFI)");
                self.report(ReportStage::Installed, None);
            }
            Err(e) => {
                let reason = format!("cannot set the boot device to disk through the BMC: {e}");
                self.say(format!("installer: {reason}"));
                self.report(ReportStage::Failed, Some(reason));
            }
        }
    }

    fn reboot(&mut self) {
        self.step = Step::Idle;
        self.deadline = None;
        self.set_phase(Phase::Rebooting);
        self.say("installer: rebooting\n[  OK  ] Reached target System Reboot.");
        self.actions.push_back(Action::Reboot);
    }

    /// Run timers that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.deadline else {
            return;
        };
        if now < deadline {
            return;
        }
        self.deadline = None;
        match &mut self.step {
            Step::Dhcp(state) => {
                if state.sent >= self.cfg.dhcp_attempts.max(1) {
                    let client = state.client;
                    self.dhcp_failed(client);
                } else {
                    self.transmit_dhcp(now);
                }
            }
            Step::Http {
                request,
                waiting_retry,
                ..
            } if *waiting_retry => {
                *waiting_retry = false;
                self.next_id = self.next_id.wrapping_add(1);
                request.id = self.next_id;
                request.break_connection = request.break_connection && self.faults.download_fail;
                let request = request.clone();
                self.actions.push_back(Action::Http(request));
            }
            Step::Installing => self.install_done(now),
            _ => {}
        }
    }
}
