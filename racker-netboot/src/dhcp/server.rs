//! The sans-IO DHCP server core.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

use dhcproto::v4::{DhcpOption, HType, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Encodable};
use racker_inventory::MacAddr;

use super::boot::{self, BootFile, BootRequest};
use super::{DhcpConfig, DhcpError, InstalledNodes, Mode, Reservation};
use crate::leases::{Lease, LeaseTable, unix_seconds};

/// How long an offered dynamic address stays set aside for its client.
const OFFER_HOLD: Duration = Duration::from_secs(60);

/// DHCP message types, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageKind {
    /// DHCPDISCOVER.
    Discover,
    /// DHCPOFFER.
    Offer,
    /// DHCPREQUEST.
    Request,
    /// DHCPDECLINE.
    Decline,
    /// DHCPACK.
    Ack,
    /// DHCPNAK.
    Nak,
    /// DHCPRELEASE.
    Release,
    /// DHCPINFORM.
    Inform,
    /// Any other message type.
    Other,
}

impl From<MessageType> for MessageKind {
    fn from(t: MessageType) -> Self {
        match t {
            MessageType::Discover => Self::Discover,
            MessageType::Offer => Self::Offer,
            MessageType::Request => Self::Request,
            MessageType::Decline => Self::Decline,
            MessageType::Ack => Self::Ack,
            MessageType::Nak => Self::Nak,
            MessageType::Release => Self::Release,
            MessageType::Inform => Self::Inform,
            _ => Self::Other,
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Discover => "DISCOVER",
            Self::Offer => "OFFER",
            Self::Request => "REQUEST",
            Self::Decline => "DECLINE",
            Self::Ack => "ACK",
            Self::Nak => "NAK",
            Self::Release => "RELEASE",
            Self::Inform => "INFORM",
            Self::Other => "OTHER",
        })
    }
}

/// Where a reply goes (RFC 2131 section 4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// To the relay agent at `giaddr`, port 67.
    Relay(Ipv4Addr),
    /// To the client's configured address (`ciaddr`), port 68.
    Unicast(Ipv4Addr),
    /// To 255.255.255.255, port 68, on the receiving interface.
    Broadcast,
}

/// An encoded reply and its destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The DHCP message.
    pub bytes: Vec<u8>,
    /// Where to send it.
    pub destination: Destination,
    /// OFFER, ACK or NAK.
    pub kind: MessageKind,
}

/// The [`Transaction::note`] of a request from a MAC the server does not
/// serve (the transport summarises these instead of logging each one).
pub(crate) const UNKNOWN_MAC: &str = "unknown MAC";

/// One line of log per handled request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// The client.
    pub mac: MacAddr,
    /// Transaction id.
    pub xid: u32,
    /// What the client sent.
    pub received: MessageKind,
    /// What we answered, if anything.
    pub sent: Option<MessageKind>,
    /// The address offered, acknowledged or released.
    pub ip: Option<Ipv4Addr>,
    /// The boot file or URL handed out.
    pub boot_file: Option<String>,
    /// The relay the request came through.
    pub relay: Option<Ipv4Addr>,
    /// Why nothing was sent, or other remarks.
    pub note: Option<&'static str>,
}

impl fmt::Display for Transaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.mac, self.received)?;
        match self.sent {
            Some(sent) => write!(f, " -> {sent}")?,
            None => f.write_str(" -> (no reply)")?,
        }
        if let Some(ip) = self.ip {
            write!(f, " {ip}")?;
        }
        if let Some(file) = &self.boot_file {
            write!(f, " boot={file}")?;
        }
        if let Some(relay) = self.relay {
            write!(f, " via {relay}")?;
        }
        if let Some(note) = self.note {
            write!(f, " ({note})")?;
        }
        write!(f, " xid={:#010x}", self.xid)
    }
}

/// The outcome of one datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    /// What to send, if anything.
    pub reply: Option<Reply>,
    /// The log record.
    pub transaction: Transaction,
}

#[derive(Debug, Clone, Copy)]
struct Offer {
    ip: Ipv4Addr,
    until: SystemTime,
}

/// The DHCP server state machine: reservations, leases, pending offers.
///
/// ```
/// use racker_netboot::{DhcpConfig, DhcpServer, LeaseTable, NoneInstalled, Reservation};
/// use std::net::Ipv4Addr;
///
/// let config = DhcpConfig::new(Ipv4Addr::new(172, 24, 213, 1), 24);
/// let node = Reservation {
///     mac: "00:11:22:33:44:10".parse().expect("MAC"),
///     ip: Ipv4Addr::new(172, 24, 213, 2),
///     hostname: None,
/// };
/// let mut server = DhcpServer::new(config, [node], LeaseTable::new()).expect("valid");
/// // A datagram that is not DHCP is an error to log, never a panic.
/// assert!(server.handle(b"junk", std::time::SystemTime::now(), &NoneInstalled).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct DhcpServer {
    config: DhcpConfig,
    reservations: HashMap<MacAddr, Reservation>,
    reserved_ips: HashSet<Ipv4Addr>,
    leases: LeaseTable,
    offers: HashMap<MacAddr, Offer>,
    offered_ips: HashMap<Ipv4Addr, MacAddr>,
    declined: HashMap<Ipv4Addr, SystemTime>,
}

/// Offset of the options after the fixed BOOTP header and magic cookie.
const OPTIONS_OFFSET: usize = 240;

/// Checks dhcproto does not make, to run on every received datagram before
/// `dhcproto::Decodable::from_bytes`: the length and magic cookie, and the
/// lengths of the options whose decoders assume a length (a debug
/// assertion or an underflow there would panic on hostile input). `Err`
/// says why the datagram must be dropped.
///
/// It does not look at the hardware type and length: check `hlen == 6`
/// before `Message::chaddr` (which slices by it).
///
/// ```
/// assert!(racker_netboot::dhcp::precheck(b"junk").is_err());
/// let mut datagram = vec![0u8; 240];
/// datagram[236..240].copy_from_slice(&[99, 130, 83, 99]);
/// datagram.extend([53, 1, 1, 255]); // DHCPDISCOVER
/// assert_eq!(racker_netboot::dhcp::precheck(&datagram), Ok(()));
/// datagram.splice(240..240, [80, 1, 0]); // rapid commit must be empty
/// assert!(racker_netboot::dhcp::precheck(&datagram).is_err());
/// ```
pub fn precheck(datagram: &[u8]) -> Result<(), &'static str> {
    if datagram.len() < OPTIONS_OFFSET {
        return Err("shorter than a BOOTP header");
    }
    if datagram.get(236..240) != Some(&[99, 130, 83, 99][..]) {
        return Err("no DHCP magic cookie");
    }
    let mut seen = [false; 256];
    let mut rest = datagram.get(OPTIONS_OFFSET..).unwrap_or_default();
    while let Some((&code, tail)) = rest.split_first() {
        match code {
            0 => rest = tail,
            255 => break,
            _ => {
                let Some((&len, tail)) = tail.split_first() else {
                    return Err("option without length");
                };
                let len = usize::from(len);
                let ok = match code {
                    80 => len == 0,
                    94 => len == 3,
                    152..=155 => len == 4,
                    151 => len >= 1,
                    81 => len >= 3,
                    93 => len >= 2 && len % 2 == 0,
                    _ => true,
                };
                let slot = seen.get_mut(usize::from(code)).ok_or("option code")?;
                // Repeated options are concatenated (RFC 3396), which would
                // change the lengths checked above.
                if !ok || (*slot && matches!(code, 80 | 81 | 93 | 94 | 151..=155)) {
                    return Err("option with an invalid length");
                }
                *slot = true;
                rest = tail.get(len..).ok_or("option longer than the packet")?;
            }
        }
    }
    Ok(())
}

/// What the client told us, decoded once.
struct Request<'a> {
    msg: &'a Message,
    mac: MacAddr,
    kind: MessageKind,
    boot: BootRequest<'a>,
    requested_ip: Option<Ipv4Addr>,
    server_id: Option<Ipv4Addr>,
    wants_option_67: bool,
}

impl DhcpServer {
    /// A server with `reservations` and previously persisted `leases`.
    pub fn new(
        config: DhcpConfig,
        reservations: impl IntoIterator<Item = Reservation>,
        leases: LeaseTable,
    ) -> Result<Self, DhcpError> {
        config.validate()?;
        let mut by_mac = HashMap::new();
        let mut reserved_ips = HashSet::new();
        for r in reservations {
            if !config.contains(r.ip) || r.ip == config.server_ip {
                return Err(DhcpError::Config(format!(
                    "reservation {} -> {} is outside {}/{} or is the server address",
                    r.mac, r.ip, config.server_ip, config.prefix_len
                )));
            }
            if let Some((first, last)) = config.dynamic_range
                && (first..=last).contains(&r.ip)
            {
                return Err(DhcpError::Config(format!(
                    "reservation {} -> {} lies in the dynamic range {first}-{last}",
                    r.mac, r.ip
                )));
            }
            if !reserved_ips.insert(r.ip) {
                return Err(DhcpError::Config(format!(
                    "address {} is reserved twice",
                    r.ip
                )));
            }
            if let Some(old) = by_mac.insert(r.mac, r) {
                return Err(DhcpError::Config(format!(
                    "MAC {} is reserved twice",
                    old.mac
                )));
            }
        }
        Ok(Self {
            config,
            reservations: by_mac,
            reserved_ips,
            leases,
            offers: HashMap::new(),
            offered_ips: HashMap::new(),
            declined: HashMap::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DhcpConfig {
        &self.config
    }

    /// The lease table (save it when its [`LeaseTable::generation`] moved).
    pub fn leases(&self) -> &LeaseTable {
        &self.leases
    }

    /// Handle one datagram received at `now`. `Err` means a malformed
    /// packet, to be dropped (and logged, rate-limited) by the caller.
    pub fn handle(
        &mut self,
        datagram: &[u8],
        now: SystemTime,
        installed: &dyn InstalledNodes,
    ) -> Result<Handled, DhcpError> {
        let malformed = |reason: String| DhcpError::Malformed {
            len: datagram.len(),
            reason,
        };
        precheck(datagram).map_err(|reason| malformed(reason.to_owned()))?;
        let msg = Message::from_bytes(datagram).map_err(|e| malformed(e.to_string()))?;
        if msg.opcode() != Opcode::BootRequest {
            return Err(malformed("not a BOOTREQUEST".to_owned()));
        }
        // Check hlen before `chaddr()`, which slices by it.
        if msg.htype() != HType::Eth || msg.hlen() != 6 {
            return Err(malformed(format!(
                "hardware type {:?} / length {} is not Ethernet",
                msg.htype(),
                msg.hlen()
            )));
        }
        let mut octets = [0u8; 6];
        octets.copy_from_slice(msg.chaddr().get(..6).unwrap_or(&[0; 6]));
        let mac = MacAddr::new(octets);
        let opts = msg.opts();
        let Some(msg_type) = opts.msg_type() else {
            return Err(malformed("no DHCP message type (plain BOOTP)".to_owned()));
        };
        let boot = BootRequest {
            arch: match opts.get(OptionCode::ClientSystemArchitecture) {
                Some(DhcpOption::ClientSystemArchitecture(a)) => Some(u16::from(*a)),
                _ => None,
            },
            vendor_class: match opts.get(OptionCode::ClassIdentifier) {
                Some(DhcpOption::ClassIdentifier(v)) => Some(v.as_slice()),
                _ => None,
            },
            user_class: match opts.get(OptionCode::UserClass) {
                Some(DhcpOption::UserClass(v)) => Some(v.as_slice()),
                _ => None,
            },
        };
        let req = Request {
            msg: &msg,
            mac,
            kind: msg_type.into(),
            boot,
            requested_ip: match opts.get(OptionCode::RequestedIpAddress) {
                Some(DhcpOption::RequestedIpAddress(ip)) => Some(*ip),
                _ => None,
            },
            server_id: match opts.get(OptionCode::ServerIdentifier) {
                Some(DhcpOption::ServerIdentifier(ip)) => Some(*ip),
                _ => None,
            },
            wants_option_67: matches!(
                opts.get(OptionCode::ParameterRequestList),
                Some(DhcpOption::ParameterRequestList(list)) if list.contains(&OptionCode::BootfileName)
            ),
        };
        let mut tx = Transaction {
            mac,
            xid: msg.xid(),
            received: req.kind,
            sent: None,
            ip: None,
            boot_file: None,
            relay: Some(msg.giaddr()).filter(|g| !g.is_unspecified()),
            note: None,
        };
        let reply = match self.config.mode {
            Mode::Full => self.handle_full(&req, now, installed, &mut tx)?,
            Mode::Proxy => self.handle_proxy(&req, installed, &mut tx)?,
        };
        tx.sent = reply.as_ref().map(|r| r.kind);
        Ok(Handled {
            reply,
            transaction: tx,
        })
    }

    fn handle_full(
        &mut self,
        req: &Request<'_>,
        now: SystemTime,
        installed: &dyn InstalledNodes,
        tx: &mut Transaction,
    ) -> Result<Option<Reply>, DhcpError> {
        let msg = req.msg;
        let ciaddr = Some(msg.ciaddr()).filter(|a| !a.is_unspecified());
        match req.kind {
            MessageKind::Discover => {
                let Some(ip) = self.address_for(req.mac, req.requested_ip, now) else {
                    tx.note = Some(self.no_address_note());
                    return Ok(None);
                };
                if !self.reserved_ips.contains(&ip) {
                    self.hold_offer(req.mac, ip, now);
                }
                tx.ip = Some(ip);
                self.build(req, MessageKind::Offer, Some(ip), installed, tx)
                    .map(Some)
            }
            MessageKind::Request => {
                if let Some(sid) = req.server_id
                    && sid != self.config.server_ip
                {
                    self.drop_offer(req.mac);
                    tx.note = Some("client chose another server");
                    return Ok(None);
                }
                let Some(wanted) = (if req.server_id.is_some() {
                    req.requested_ip.or(ciaddr)
                } else {
                    ciaddr.or(req.requested_ip)
                }) else {
                    tx.note = Some("REQUEST names no address");
                    return Ok(None);
                };
                tx.ip = Some(wanted);
                match self.address_for(req.mac, Some(wanted), now) {
                    Some(ip) if ip == wanted => {
                        self.commit(req.mac, ip, now);
                        self.build(req, MessageKind::Ack, Some(ip), installed, tx)
                            .map(Some)
                    }
                    Some(_) => {
                        tx.note = Some("not this client's address");
                        self.nak(req).map(Some)
                    }
                    None => {
                        tx.note = Some(self.no_address_note());
                        Ok(None)
                    }
                }
            }
            MessageKind::Release => {
                if req.server_id.is_some_and(|s| s != self.config.server_ip) {
                    tx.note = Some("for another server");
                    return Ok(None);
                }
                match self.leases.get(req.mac) {
                    Some(lease) if Some(lease.ip) == ciaddr => {
                        tx.ip = Some(lease.ip);
                        self.leases.remove(req.mac);
                        tx.note = Some("released");
                    }
                    _ => tx.note = Some("no such lease"),
                }
                Ok(None)
            }
            MessageKind::Decline => {
                if req.server_id.is_some_and(|s| s != self.config.server_ip) {
                    tx.note = Some("for another server");
                    return Ok(None);
                }
                let Some(ip) = req.requested_ip else {
                    tx.note = Some("DECLINE names no address");
                    return Ok(None);
                };
                tx.ip = Some(ip);
                if self.leases.get(req.mac).is_some_and(|l| l.ip == ip) {
                    self.leases.remove(req.mac);
                }
                self.drop_offer(req.mac);
                if self.reserved_ips.contains(&ip) {
                    tx.note = Some("reserved address declined: another host uses it");
                } else if self.in_dynamic_range(ip) {
                    self.declined.insert(ip, now + self.config.lease_time);
                    tx.note = Some("address quarantined");
                } else {
                    tx.note = Some("not our address");
                }
                Ok(None)
            }
            MessageKind::Inform => {
                let known =
                    self.reservations.contains_key(&req.mac) || self.config.dynamic_range.is_some();
                match ciaddr {
                    Some(ip) if known => {
                        tx.ip = Some(ip);
                        self.build(req, MessageKind::Ack, None, installed, tx)
                            .map(Some)
                    }
                    Some(_) => {
                        tx.note = Some(UNKNOWN_MAC);
                        Ok(None)
                    }
                    None => {
                        tx.note = Some("INFORM without ciaddr");
                        Ok(None)
                    }
                }
            }
            _ => {
                tx.note = Some("not a client message");
                Ok(None)
            }
        }
    }

    /// ProxyDHCP: boot information for known PXE clients, no address.
    fn handle_proxy(
        &mut self,
        req: &Request<'_>,
        installed: &dyn InstalledNodes,
        tx: &mut Transaction,
    ) -> Result<Option<Reply>, DhcpError> {
        let kind = match req.kind {
            MessageKind::Discover => MessageKind::Offer,
            MessageKind::Request | MessageKind::Inform => MessageKind::Ack,
            _ => {
                tx.note = Some("ignored in proxy mode");
                return Ok(None);
            }
        };
        if !self.reservations.contains_key(&req.mac) {
            tx.note = Some(UNKNOWN_MAC);
            return Ok(None);
        }
        if !req.boot.is_netboot() {
            tx.note = Some("not a netboot client");
            return Ok(None);
        }
        if req.kind == MessageKind::Request
            && req.server_id.is_some_and(|s| s != self.config.server_ip)
        {
            tx.note = Some("REQUEST for the address server");
            return Ok(None);
        }
        self.build(req, kind, None, installed, tx).map(Some)
    }

    fn no_address_note(&self) -> &'static str {
        if self.config.dynamic_range.is_some() {
            "no free dynamic address"
        } else {
            UNKNOWN_MAC
        }
    }

    fn in_dynamic_range(&self, ip: Ipv4Addr) -> bool {
        self.config
            .dynamic_range
            .is_some_and(|(first, last)| (first..=last).contains(&ip))
    }

    /// The address `mac` may have, preferring `requested` when it is free.
    fn address_for(
        &mut self,
        mac: MacAddr,
        requested: Option<Ipv4Addr>,
        now: SystemTime,
    ) -> Option<Ipv4Addr> {
        if let Some(r) = self.reservations.get(&mac) {
            return Some(r.ip);
        }
        let (first, last) = self.config.dynamic_range?;
        let current = self.leases.get(mac).map(|l| l.ip);
        let offered = self.offers.get(&mac).map(|o| o.ip);
        for candidate in [current, offered, requested].into_iter().flatten() {
            if self.is_free_for(candidate, mac, now) {
                return Some(candidate);
            }
        }
        (u32::from(first)..=u32::from(last))
            .map(Ipv4Addr::from)
            .find(|ip| self.is_free_for(*ip, mac, now))
    }

    fn is_free_for(&self, ip: Ipv4Addr, mac: MacAddr, now: SystemTime) -> bool {
        if !self.in_dynamic_range(ip)
            || self.reserved_ips.contains(&ip)
            || ip == self.config.server_ip
        {
            return false;
        }
        if self.declined.get(&ip).is_some_and(|until| *until > now) {
            return false;
        }
        if let Some(lease) = self.leases.by_ip(ip)
            && lease.mac != mac
            && lease.is_active(now)
        {
            return false;
        }
        match self.offered_ips.get(&ip) {
            Some(other) if *other != mac => self.offers.get(other).is_none_or(|o| o.until <= now),
            _ => true,
        }
    }

    fn hold_offer(&mut self, mac: MacAddr, ip: Ipv4Addr, now: SystemTime) {
        self.drop_offer(mac);
        if let Some(previous) = self.offered_ips.insert(ip, mac) {
            self.offers.remove(&previous);
        }
        self.offers.insert(
            mac,
            Offer {
                ip,
                until: now + OFFER_HOLD,
            },
        );
    }

    fn drop_offer(&mut self, mac: MacAddr) {
        if let Some(o) = self.offers.remove(&mac)
            && self.offered_ips.get(&o.ip) == Some(&mac)
        {
            self.offered_ips.remove(&o.ip);
        }
    }

    fn commit(&mut self, mac: MacAddr, ip: Ipv4Addr, now: SystemTime) {
        self.drop_offer(mac);
        self.declined.remove(&ip);
        self.leases.insert(Lease {
            mac,
            ip,
            expires: unix_seconds(now + self.config.lease_time),
            reserved: self.reserved_ips.contains(&ip),
        });
    }

    fn reply_header(&self, req: &Request<'_>, kind: MessageType) -> Message {
        let msg = req.msg;
        let mut out = Message::new_with_id(
            msg.xid(),
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            msg.giaddr(),
            &req.mac.octets(),
        );
        out.set_opcode(Opcode::BootReply).set_flags(msg.flags());
        out.opts_mut().insert(DhcpOption::MessageType(kind));
        out.opts_mut()
            .insert(DhcpOption::ServerIdentifier(self.config.server_ip));
        out
    }

    fn destination(&self, req: &Request<'_>, kind: MessageKind) -> Destination {
        let msg = req.msg;
        if !msg.giaddr().is_unspecified() {
            Destination::Relay(msg.giaddr())
        } else if kind != MessageKind::Nak && !msg.ciaddr().is_unspecified() {
            Destination::Unicast(msg.ciaddr())
        } else {
            Destination::Broadcast
        }
    }

    fn nak(&self, req: &Request<'_>) -> Result<Reply, DhcpError> {
        let out = self.reply_header(req, MessageType::Nak);
        self.encode(req, out, MessageKind::Nak)
    }

    /// OFFER or ACK; `yiaddr` is `None` for INFORM and proxy replies.
    fn build(
        &self,
        req: &Request<'_>,
        kind: MessageKind,
        yiaddr: Option<Ipv4Addr>,
        installed: &dyn InstalledNodes,
        tx: &mut Transaction,
    ) -> Result<Reply, DhcpError> {
        let wire_kind = if kind == MessageKind::Offer {
            MessageType::Offer
        } else {
            MessageType::Ack
        };
        let mut out = self.reply_header(req, wire_kind);
        let config = &self.config;
        if req.kind == MessageKind::Inform {
            out.set_ciaddr(req.msg.ciaddr());
        }
        if let Some(ip) = yiaddr {
            out.set_yiaddr(ip);
            let secs = u32::try_from(config.lease_time.as_secs()).unwrap_or(u32::MAX);
            let opts = out.opts_mut();
            opts.insert(DhcpOption::AddressLeaseTime(secs));
            opts.insert(DhcpOption::Renewal(secs / 2));
            opts.insert(DhcpOption::Rebinding(secs / 8 * 7));
        }
        if config.mode == Mode::Full {
            let opts = out.opts_mut();
            opts.insert(DhcpOption::SubnetMask(config.netmask()));
            if let Some(router) = config.router {
                opts.insert(DhcpOption::Router(vec![router]));
            }
            if !config.dns.is_empty() {
                opts.insert(DhcpOption::DomainNameServer(config.dns.clone()));
            }
            if let Some(name) = self
                .reservations
                .get(&req.mac)
                .and_then(|r| r.hostname.as_ref())
            {
                opts.insert(DhcpOption::Hostname(name.clone()));
            }
        }
        out.set_siaddr(config.boot.next_server.unwrap_or(config.server_ip));
        let decision = boot::choose(&config.boot, &req.boot, installed.is_installed(req.mac));
        if let Some(note) = decision.note {
            tx.note = Some(note);
        }
        if let Some(file) = &decision.file {
            let long = file.as_str().len() > 127;
            if !long {
                out.set_fname(file.as_str().as_bytes());
            }
            if req.wants_option_67 || long {
                out.opts_mut()
                    .insert(DhcpOption::BootfileName(file.as_str().as_bytes().to_vec()));
            }
            if matches!(file, BootFile::Http(_)) && req.boot.is_http_client() {
                // UEFI HTTP boot only accepts offers that echo its class.
                out.opts_mut()
                    .insert(DhcpOption::ClassIdentifier(b"HTTPClient".to_vec()));
            }
            tx.boot_file = Some(file.as_str().to_owned());
        }
        if config.mode == Mode::Proxy && !req.boot.is_http_client() {
            out.opts_mut()
                .insert(DhcpOption::ClassIdentifier(b"PXEClient".to_vec()));
            if req.boot.arch.unwrap_or(0) == 0 && !req.boot.is_ipxe() {
                // PXE discovery control: use the boot file of this offer.
                out.opts_mut()
                    .insert(DhcpOption::VendorExtensions(vec![6, 1, 8, 255]));
            }
        }
        self.encode(req, out, kind)
    }

    fn encode(
        &self,
        req: &Request<'_>,
        out: Message,
        kind: MessageKind,
    ) -> Result<Reply, DhcpError> {
        let bytes = out.to_vec().map_err(|e| DhcpError::Encode {
            mac: req.mac,
            reason: e.to_string(),
        })?;
        Ok(Reply {
            bytes,
            destination: self.destination(req, kind),
            kind,
        })
    }
}
