//! Fuzz the TFTP side: any datagram must parse or be refused without a
//! panic, a parsed packet must encode back to bytes that parse to the same
//! packet, and a read request drives a transfer through the rest of the
//! input (ACKs, errors, garbage, timeouts) whose DATA blocks always carry
//! the right bytes of the file.
//!
//! `cargo +nightly fuzz run tftp_packet` (from `racker-netboot/`).
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use racker_netboot::tftp::packet::Packet;
use racker_netboot::tftp::transfer::{Incoming, Progress, TftpConfig, Transfer, classify_request};

fuzz_target!(|data: &[u8]| {
    // Datagrams are length-prefixed (u16 big-endian); the first is the
    // request, the rest feed the transfer. An empty datagram is a timeout.
    let mut datagrams = Vec::new();
    let mut rest = data;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let body = &rest[2..];
        let (datagram, tail) = body.split_at(len.min(body.len()));
        datagrams.push(datagram);
        rest = tail;
    }
    let Some((first, events)) = datagrams.split_first() else {
        let _ = Packet::parse(data);
        let _ = classify_request(data);
        return;
    };
    for datagram in &datagrams {
        if let Ok(packet) = Packet::parse(datagram) {
            let bytes = packet.encode();
            assert_eq!(Packet::parse(&bytes).as_ref(), Ok(&packet), "re-encoding changed it");
        }
    }
    let Incoming::Read(request) = classify_request(first) else {
        return;
    };
    // A file whose size comes from the request's name.
    let size = request.filename.len() * 97 % 4099;
    let file: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    let mut now = Instant::now();
    let mut src = file.as_slice();
    let mut transfer = Transfer::new(&request, size as u64, &TftpConfig::default(), now);
    let blksize = usize::from(transfer.negotiated().blksize);
    let mut out = Vec::new();
    let mut progress = transfer.start(now, &mut src, &mut out);
    for event in events {
        if progress != Progress::Running {
            break;
        }
        if event.is_empty() {
            now += Duration::from_secs(300);
            progress = transfer.on_timeout(now, &mut src, &mut out);
        } else {
            now += Duration::from_millis(5);
            progress = transfer.on_datagram(event, now, &mut src, &mut out);
        }
    }
    for datagram in &out {
        if let Ok(Packet::Data { block, data }) = Packet::parse(datagram) {
            // Block numbers stay far below the 65,536 wrap for these sizes.
            assert!(block >= 1);
            let start = ((usize::from(block) - 1) * blksize).min(size);
            let end = (start + blksize).min(size);
            assert_eq!(data, &file[start..end], "block {block} carries wrong bytes");
        }
    }
});
