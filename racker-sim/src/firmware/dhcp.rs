//! The DHCP client side of a PXE ROM and of iPXE: building DISCOVER and
//! REQUEST, and decoding the server's OFFER / ACK / NAK (sans-IO).

use std::net::Ipv4Addr;

use dhcproto::v4::{
    Architecture, DhcpOption, Flags, HType, Message, MessageType, Opcode, OptionCode,
};
use dhcproto::{Decodable, Encodable};

use super::ClientArch;

/// Who is asking: the NIC's PXE ROM or iPXE (which adds user class `iPXE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Client {
    /// The firmware's PXE ROM.
    PxeRom,
    /// iPXE, chain-loaded by the ROM.
    Ipxe,
}

/// What the firmware puts into each request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientId {
    pub(crate) mac: [u8; 6],
    pub(crate) arch: ClientArch,
    pub(crate) client: Client,
    pub(crate) xid: u32,
    pub(crate) secs: u16,
}

/// The class identifier a PXE client sends (option 60).
pub(crate) fn vendor_class(arch: ClientArch, client: Client) -> String {
    let undi = match (arch, client) {
        (ClientArch::Bios, _) => "002001",
        (_, Client::PxeRom) => "003016",
        (_, Client::Ipxe) => "003010",
    };
    format!("PXEClient:Arch:{:05}:UNDI:{undi}", arch.code())
}

/// Option 97: type 0 and a 16-byte GUID derived from the MAC.
fn machine_id(mac: [u8; 6]) -> Vec<u8> {
    let mut id = vec![0u8; 17];
    if let Some(guid) = id.get_mut(11..17) {
        guid.copy_from_slice(&mac);
    }
    if let Some(b) = id.get_mut(1..5) {
        b.copy_from_slice(b"RSIM");
    }
    id
}

fn base(id: &ClientId, kind: MessageType) -> Message {
    let mut msg = Message::new_with_id(
        id.xid,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        &id.mac,
    );
    msg.set_opcode(Opcode::BootRequest)
        .set_htype(HType::Eth)
        .set_secs(id.secs)
        .set_flags(Flags::default().set_broadcast());
    let opts = msg.opts_mut();
    opts.insert(DhcpOption::MessageType(kind));
    opts.insert(DhcpOption::MaxMessageSize(1472));
    opts.insert(DhcpOption::ParameterRequestList(vec![
        OptionCode::SubnetMask,
        OptionCode::Router,
        OptionCode::DomainNameServer,
        OptionCode::Hostname,
        OptionCode::VendorExtensions,
        OptionCode::ServerIdentifier,
        OptionCode::ClassIdentifier,
        OptionCode::TFTPServerName,
        OptionCode::BootfileName,
    ]));
    opts.insert(DhcpOption::ClassIdentifier(
        vendor_class(id.arch, id.client).into_bytes(),
    ));
    opts.insert(DhcpOption::ClientSystemArchitecture(Architecture::from(
        id.arch.code(),
    )));
    opts.insert(DhcpOption::ClientNetworkInterface(1, 3, 16));
    opts.insert(DhcpOption::ClientMachineIdentifier(machine_id(id.mac)));
    if id.client == Client::Ipxe {
        // iPXE sends the bare string, not the RFC 3004 length-prefixed form.
        opts.insert(DhcpOption::UserClass(b"iPXE".to_vec()));
    }
    msg
}

fn encode(msg: &Message) -> Vec<u8> {
    // Encoding a message we built ourselves into a Vec cannot fail; an
    // empty datagram would simply go unanswered.
    msg.to_vec().unwrap_or_default()
}

/// DHCPDISCOVER.
pub(crate) fn discover(id: &ClientId) -> Vec<u8> {
    encode(&base(id, MessageType::Discover))
}

/// DHCPREQUEST for `ip` offered by `server`.
pub(crate) fn request(id: &ClientId, ip: Ipv4Addr, server: Ipv4Addr) -> Vec<u8> {
    let mut msg = base(id, MessageType::Request);
    msg.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
    msg.opts_mut().insert(DhcpOption::ServerIdentifier(server));
    encode(&msg)
}

/// Kind of a server reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplyKind {
    Offer,
    Ack,
    Nak,
}

/// A decoded reply addressed to us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerReply {
    pub(crate) kind: ReplyKind,
    pub(crate) yiaddr: Ipv4Addr,
    pub(crate) siaddr: Ipv4Addr,
    pub(crate) server_id: Option<Ipv4Addr>,
    pub(crate) netmask: Option<Ipv4Addr>,
    pub(crate) hostname: Option<String>,
    /// Option 67, else the `file` header field; `None` when both are empty.
    pub(crate) boot_file: Option<String>,
}

fn text(bytes: &[u8]) -> Option<String> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let s = std::str::from_utf8(bytes.get(..end)?).ok()?.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// Decode `datagram` if it is a reply to transaction `xid` of `mac`;
/// anything else (garbage, other clients, requests) gives `None`.
pub(crate) fn parse_reply(datagram: &[u8], mac: [u8; 6], xid: u32) -> Option<ServerReply> {
    // The server's own pre-check: dhcproto's decoders would panic on some
    // hostile option lengths.
    racker_netboot::dhcp::precheck(datagram).ok()?;
    let msg = Message::from_bytes(datagram).ok()?;
    // hlen before `chaddr()`, which slices by it.
    if msg.opcode() != Opcode::BootReply
        || msg.xid() != xid
        || msg.htype() != HType::Eth
        || msg.hlen() != 6
    {
        return None;
    }
    if msg.chaddr().get(..6) != Some(&mac[..]) {
        return None;
    }
    let opts = msg.opts();
    let kind = match opts.msg_type()? {
        MessageType::Offer => ReplyKind::Offer,
        MessageType::Ack => ReplyKind::Ack,
        MessageType::Nak => ReplyKind::Nak,
        _ => return None,
    };
    let server_id = match opts.get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(ip)) => Some(*ip),
        _ => None,
    };
    let netmask = match opts.get(OptionCode::SubnetMask) {
        Some(DhcpOption::SubnetMask(ip)) => Some(*ip),
        _ => None,
    };
    let hostname = match opts.get(OptionCode::Hostname) {
        Some(DhcpOption::Hostname(h)) => Some(h.clone()),
        _ => None,
    };
    let boot_file = match opts.get(OptionCode::BootfileName) {
        Some(DhcpOption::BootfileName(b)) => text(b),
        _ => None,
    }
    .or_else(|| msg.fname().and_then(text));
    Some(ServerReply {
        kind,
        yiaddr: msg.yiaddr(),
        siaddr: msg.siaddr(),
        server_id,
        netmask,
        hostname,
        boot_file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];

    fn id(client: Client, arch: ClientArch) -> ClientId {
        ClientId {
            mac: MAC,
            arch,
            client,
            xid: 0x1234_5678,
            secs: 3,
        }
    }

    #[test]
    fn discover_carries_pxe_options() {
        let bytes = discover(&id(Client::PxeRom, ClientArch::EfiX64));
        let msg = Message::from_bytes(&bytes).unwrap();
        assert_eq!(msg.chaddr(), &MAC);
        assert_eq!(msg.xid(), 0x1234_5678);
        assert!(msg.flags().broadcast());
        let o = msg.opts();
        assert_eq!(o.msg_type(), Some(MessageType::Discover));
        assert_eq!(
            o.get(OptionCode::ClientSystemArchitecture),
            Some(&DhcpOption::ClientSystemArchitecture(Architecture::from(7)))
        );
        assert_eq!(
            o.get(OptionCode::ClassIdentifier),
            Some(&DhcpOption::ClassIdentifier(
                b"PXEClient:Arch:00007:UNDI:003016".to_vec()
            ))
        );
        assert!(o.get(OptionCode::UserClass).is_none());
        // The raw option 93 bytes on the wire: code, length 2, 0x0007.
        assert!(bytes.windows(4).any(|w| w == [93, 2, 0, 7]));
    }

    #[test]
    fn ipxe_request_sends_raw_user_class_and_server_id() {
        let bytes = request(
            &id(Client::Ipxe, ClientArch::Bios),
            Ipv4Addr::new(10, 0, 0, 5),
            Ipv4Addr::new(10, 0, 0, 1),
        );
        // Bare "iPXE", not RFC 3004's length-prefixed form.
        assert!(
            bytes
                .windows(6)
                .any(|w| w == [77, 4, b'i', b'P', b'X', b'E'])
        );
        assert!(bytes.windows(4).any(|w| w == [93, 2, 0, 0]));
        let msg = Message::from_bytes(&bytes).unwrap();
        let o = msg.opts();
        assert_eq!(o.msg_type(), Some(MessageType::Request));
        assert_eq!(
            o.get(OptionCode::RequestedIpAddress),
            Some(&DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 0, 0, 5)))
        );
        assert_eq!(
            o.get(OptionCode::ServerIdentifier),
            Some(&DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 0, 0, 1)))
        );
        assert_eq!(
            vendor_class(ClientArch::Bios, Client::Ipxe),
            "PXEClient:Arch:00000:UNDI:002001"
        );
    }

    fn reply(kind: MessageType, xid: u32, mac: [u8; 6], file: Option<&[u8]>) -> Vec<u8> {
        let mut m = Message::new_with_id(
            xid,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::new(10, 0, 0, 5),
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::UNSPECIFIED,
            &mac,
        );
        m.set_opcode(Opcode::BootReply);
        m.opts_mut().insert(DhcpOption::MessageType(kind));
        m.opts_mut()
            .insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 0, 0, 1)));
        if let Some(f) = file {
            m.set_fname(f);
        }
        m.to_vec().unwrap()
    }

    #[test]
    fn parse_reply_filters_other_transactions_and_macs() {
        let ok = reply(MessageType::Offer, 7, MAC, Some(b"ipxe.efi"));
        let r = parse_reply(&ok, MAC, 7).unwrap();
        assert_eq!(r.kind, ReplyKind::Offer);
        assert_eq!(r.yiaddr, Ipv4Addr::new(10, 0, 0, 5));
        assert_eq!(r.server_id, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(r.boot_file.as_deref(), Some("ipxe.efi"));
        assert!(parse_reply(&ok, MAC, 8).is_none());
        assert!(parse_reply(&ok, [2, 0, 0, 0, 0, 0x11], 7).is_none());
        let nak = reply(MessageType::Nak, 7, MAC, None);
        let r = parse_reply(&nak, MAC, 7).unwrap();
        assert_eq!(r.kind, ReplyKind::Nak);
        assert_eq!(r.boot_file, None);
        // Our own request is not a reply.
        let req = discover(&ClientId {
            xid: 7,
            ..id(Client::PxeRom, ClientArch::EfiX64)
        });
        assert!(parse_reply(&req, MAC, 7).is_none());
        assert!(parse_reply(b"garbage", MAC, 7).is_none());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = parse_reply(&data, MAC, 7);
        }

        #[test]
        fn mutated_replies_never_panic(pos in 0usize..400, byte in proptest::num::u8::ANY, len in 0usize..400) {
            let mut data = reply(MessageType::Ack, 7, MAC, Some(b"undionly.kpxe"));
            if let Some(b) = data.get_mut(pos) { *b = byte; }
            data.truncate(len.max(1));
            let _ = parse_reply(&data, MAC, 7);
        }
    }
}
