use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::chassis::{BootDevice, BootRequest};

#[path = "../../tests/support/console.rs"]
mod console;
use console::Console;

fn peer() -> SocketAddr {
    "127.0.0.1:40000".parse().unwrap()
}

fn bmc() -> Bmc {
    Bmc::new(BmcConfig::new([2, 0, 0, 0, 0, 1], "USER", Password::new("PASS")).seed(7))
}

fn exchange<'a>(bmc: &'a mut Bmc, now: Instant) -> impl FnMut(Vec<u8>) -> Vec<Vec<u8>> + 'a {
    move |p| {
        bmc.handle_datagram(now, peer(), &p)
            .into_iter()
            .map(|t| t.payload)
            .collect()
    }
}

fn login(bmc: &mut Bmc, suite: u8, now: Instant) -> Console {
    let mut c = Console::new(suite, "USER", "PASS");
    console::login(&mut c, exchange(bmc, now)).expect("login");
    c
}

fn call(
    bmc: &mut Bmc,
    c: &mut Console,
    now: Instant,
    netfn: u8,
    cmd: u8,
    data: &[u8],
) -> (u8, Vec<u8>) {
    let p = c.request(netfn, cmd, data);
    let out = bmc.handle_datagram(now, peer(), &p);
    assert_eq!(out.len(), 1, "one reply expected for {netfn:#x}/{cmd:#x}");
    c.response(&out[0].payload).expect("valid sealed response")
}

#[test]
fn auth_caps_in_v15_framing() {
    let mut b = bmc();
    let out = b.handle_datagram(
        Instant::now(),
        peer(),
        &console::get_channel_auth_caps_v15(),
    );
    let p = &out[0].payload;
    assert_eq!(p[4], 0x00, "IPMI 1.5 framing");
    let msg = &p[14..];
    // rqAddr, netfn 0x07<<2, chk, rsAddr, seq, cmd 0x38, cc, data...
    assert_eq!((msg[1] >> 2, msg[5], msg[6]), (0x07, 0x38, 0x00));
    assert_eq!(&msg[7..11], &[0x01, 0x80, 0x04, 0x02]);
}

#[test]
fn cipher_suite_records() {
    let mut b = bmc();
    let p = console::v20(
        0x00,
        0,
        0,
        &console::ipmi_msg(0x06, 0x54, 1, &[0x0E, 0x00, 0x80]),
    );
    let out = b.handle_datagram(Instant::now(), peer(), &p);
    let (_, _, _, m) = console::split(&out[0].payload).unwrap();
    assert_eq!(
        &m[6..m.len() - 1],
        &[
            0x00, 0x01, 0xC0, 0x03, 0x01, 0x41, 0x81, 0xC0, 0x11, 0x03, 0x44, 0x81
        ]
    );
}

#[test]
fn login_suites_3_and_17_and_chassis_status() {
    for suite in [3, 17] {
        let now = Instant::now();
        let mut b = bmc();
        let mut c = login(&mut b, suite, now);
        assert_eq!(b.active_session_count(), 1);
        let (cc, data) = call(&mut b, &mut c, now, 0x00, 0x01, &[]);
        assert_eq!(cc, 0);
        assert_eq!(data[0] & 1, 0, "powered off");
        let (cc, _) = call(&mut b, &mut c, now, 0x00, 0x02, &[0x01]);
        assert_eq!(cc, 0);
        let (_, data) = call(&mut b, &mut c, now, 0x00, 0x01, &[]);
        assert_eq!(data[0] & 1, 1, "powered on");
        let ev = b.drain_events();
        assert!(ev.contains(&Event::Power { on: true }));
        assert!(ev.contains(&Event::Boot(BootRequest {
            device: BootDevice::None,
            efi: false
        })));
    }
}

#[test]
fn unencrypted_requests_get_unencrypted_replies() {
    let now = Instant::now();
    let mut b = bmc();
    let mut c = login(&mut b, 3, now);
    c.encrypt = false;
    let p = c.request(0x06, 0x01, &[]);
    let out = b.handle_datagram(now, peer(), &p);
    assert_eq!(out[0].payload[5] & 0xC0, 0x40);
    assert_eq!(c.response(&out[0].payload).unwrap().0, 0);
}

#[test]
fn boot_parameter_5_keeps_all_five_bytes_and_param3_stops_timer() {
    let now = Instant::now();
    let config = BmcConfig::new([2, 0, 0, 0, 0, 1], "USER", Password::new("PASS"));
    let mut b = Bmc::new(config.idle_timeout(Duration::from_secs(3600)));
    let mut c = login(&mut b, 3, now);
    assert_eq!(
        call(
            &mut b,
            &mut c,
            now,
            0x00,
            0x08,
            &[0x05, 0xE0, 0x04, 0x00, 0x00, 0x07]
        )
        .0,
        0
    );
    let (cc, data) = call(&mut b, &mut c, now, 0x00, 0x09, &[0x05, 0, 0]);
    assert_eq!(
        (cc, data),
        (0, vec![0x01, 0x05, 0xE0, 0x04, 0x00, 0x00, 0x07])
    );
    // 61 s later the valid bit is gone (no parameter 3).
    let later = now + Duration::from_secs(61);
    let (_, data) = call(&mut b, &mut c, later, 0x00, 0x09, &[0x05, 0, 0]);
    assert_eq!(data[2], 0x60);
    // With parameter 3 = 0x1f it survives.
    assert_eq!(call(&mut b, &mut c, later, 0x00, 0x08, &[0x03, 0x1F]).0, 0);
    assert_eq!(
        call(
            &mut b,
            &mut c,
            later,
            0x00,
            0x08,
            &[0x05, 0xA0, 0x08, 0, 0, 0]
        )
        .0,
        0
    );
    let much_later = later + Duration::from_secs(600);
    let (_, data) = call(&mut b, &mut c, much_later, 0x00, 0x09, &[0x05, 0, 0]);
    assert_eq!(&data[2..4], &[0xA0, 0x08]);
    assert_eq!(
        call(&mut b, &mut c, much_later, 0x00, 0x09, &[0x03, 0, 0]).1,
        vec![0x01, 0x03, 0x1F]
    );
    // One-shot flag consumed by the next boot.
    call(&mut b, &mut c, much_later, 0x00, 0x02, &[0x01]);
    let ev = b.drain_events();
    assert!(ev.contains(&Event::Boot(BootRequest {
        device: BootDevice::Disk,
        efi: true
    })));
    let (_, data) = call(&mut b, &mut c, much_later, 0x00, 0x09, &[0x05, 0, 0]);
    assert_eq!(data[2] & 0x80, 0);
    // Unsupported parameter.
    assert_eq!(
        call(&mut b, &mut c, much_later, 0x00, 0x09, &[0x07, 0, 0]).0,
        0x80
    );
}

#[test]
fn wrong_password_unknown_user_and_suite_refused() {
    let now = Instant::now();
    let mut b = bmc();
    let mut c = Console::new(3, "USER", "WRONG");
    assert_eq!(console::login(&mut c, exchange(&mut b, now)), Err(0xFE));
    let mut c = Console::new(3, "NOBODY", "PASS");
    assert_eq!(console::login(&mut c, exchange(&mut b, now)), Err(0x0D));
    assert_eq!(
        b.session_count(),
        0,
        "refused handshakes release their slot"
    );
    let mut b = Bmc::new(
        BmcConfig::new([2, 0, 0, 0, 0, 1], "USER", Password::new("PASS"))
            .suites(&[CipherSuite::Suite17]),
    );
    let mut c = Console::new(3, "USER", "PASS");
    assert_eq!(console::login(&mut c, exchange(&mut b, now)), Err(0x11));
    // The wrong-credentials fault makes the right password fail.
    let mut b = bmc();
    b.set_core_faults(
        now,
        CoreFaults {
            wrong_credentials: true,
            ..CoreFaults::default()
        },
    );
    let mut c = Console::new(17, "USER", "PASS");
    assert_eq!(console::login(&mut c, exchange(&mut b, now)), Err(0xFE));
}

#[test]
fn rakp3_with_bad_code_gets_status_0f() {
    let now = Instant::now();
    let mut b = bmc();
    let mut c = Console::new(3, "USER", "PASS");
    let r = b.handle_datagram(now, peer(), &c.open_session_request());
    c.open_session_response(&r[0].payload).unwrap();
    let r = b.handle_datagram(now, peer(), &c.rakp1());
    c.rakp2(&r[0].payload).unwrap();
    let mut p = c.rakp3();
    let last = p.len() - 1;
    p[last] ^= 0xFF;
    let r = b.handle_datagram(now, peer(), &p);
    assert_eq!(c.rakp4(&r[0].payload), Err(0x0F));
    assert_eq!(b.session_count(), 0);
}

#[test]
fn sequence_window_replay_and_duplicate_rqseq() {
    let now = Instant::now();
    let mut b = bmc();
    let mut c = login(&mut b, 3, now);
    // A replayed packet (same session sequence) that is not the last
    // request is ignored.
    let first = c.request(0x06, 0x01, &[]);
    assert_eq!(b.handle_datagram(now, peer(), &first).len(), 1);
    let _ = call(&mut b, &mut c, now, 0x00, 0x01, &[]);
    assert!(b.handle_datagram(now, peer(), &first).is_empty());
    // Far outside the window: ignored.
    let far = c.seal_with_seq(0x00, &console::ipmi_msg(0x06, 0x01, 9, &[]), c.seq + 1000);
    assert!(b.handle_datagram(now, peer(), &far).is_empty());
    // A retransmitted Chassis Control (same rqSeq, new session sequence) is
    // answered again without power-cycling twice.
    c.rq_seq = 20;
    let msg = console::ipmi_msg(0x00, 0x02, 21, &[0x01]);
    let a = c.seal(0x00, &msg);
    let b1 = b.handle_datagram(now, peer(), &a);
    let again = c.seal(0x00, &msg);
    let b2 = b.handle_datagram(now, peer(), &again);
    assert_eq!(c.response(&b1[0].payload), c.response(&b2[0].payload));
    let ons = b
        .drain_events()
        .iter()
        .filter(|e| **e == Event::Power { on: true })
        .count();
    assert_eq!(ons, 1);
    // Packets signed with a wrong key are ignored.
    let mut forged = c.request(0x00, 0x02, &[0x00]);
    let n = forged.len() - 1;
    forged[n] ^= 1;
    assert!(b.handle_datagram(now, peer(), &forged).is_empty());
    assert!(b.chassis().power());
}

#[test]
fn close_session_idle_timeout_slots_and_concurrency() {
    let now = Instant::now();
    let mut b =
        Bmc::new(BmcConfig::new([2, 0, 0, 0, 0, 1], "USER", Password::new("PASS")).max_sessions(2));
    let mut c1 = login(&mut b, 3, now);
    let mut c2 = Console::new(17, "USER", "PASS");
    c2.sid_m = 0x0102_0304;
    console::login(&mut c2, exchange(&mut b, now)).unwrap();
    assert_eq!(b.active_session_count(), 2);
    // Interleaved requests on both sessions.
    assert_eq!(call(&mut b, &mut c1, now, 0x00, 0x02, &[0x01]).0, 0);
    assert_eq!(call(&mut b, &mut c2, now, 0x00, 0x01, &[]).1[0] & 1, 1);
    // No third slot.
    let mut c3 = Console::new(3, "USER", "PASS");
    c3.sid_m = 7;
    assert_eq!(console::login(&mut c3, exchange(&mut b, now)), Err(0x01));
    // Close session 1: its packets are ignored afterwards.
    let sid = c1.sid_c.to_le_bytes();
    assert_eq!(call(&mut b, &mut c1, now, 0x06, 0x3C, &sid).0, 0);
    assert_eq!(b.active_session_count(), 1);
    let p = c1.request(0x00, 0x01, &[]);
    assert!(b.handle_datagram(now, peer(), &p).is_empty());
    // Session 2 idles out after 60 s.
    assert!(b.next_timeout().unwrap() <= now + Duration::from_secs(60));
    b.poll(now + Duration::from_secs(59));
    assert_eq!(b.session_count(), 1);
    b.poll(now + Duration::from_secs(61));
    assert_eq!(b.session_count(), 0);
}

/// Issue 18 item 5: Open Session requests that never go on with RAKP hold
/// their slot only for the handshake timeout, not the 60-s idle timeout.
#[test]
fn unfinished_handshakes_expire_after_the_handshake_timeout() {
    let t0 = Instant::now();
    let config = BmcConfig::new([2, 0, 0, 0, 0, 1], "USER", Password::new("PASS"))
        .handshake_timeout(Duration::from_secs(3));
    let mut b = Bmc::new(config);
    // An established session is not affected by the shorter timeout.
    let mut keep = login(&mut b, 17, t0);
    for i in 0..6u32 {
        let mut c = Console::new(3, "USER", "PASS");
        c.sid_m = 0x100 + i;
        let out = b.handle_datagram(t0, peer(), &c.open_session_request());
        assert_eq!(c.open_session_response(&out[0].payload), Ok(()));
    }
    // RAKP1 only, no RAKP3: still unfinished.
    let mut half = Console::new(3, "USER", "PASS");
    half.sid_m = 0x200;
    let out = b.handle_datagram(t0, peer(), &half.open_session_request());
    let _ = half.open_session_response(&out[0].payload);
    assert_eq!(b.session_count(), 8);
    let mut late = Console::new(17, "USER", "PASS");
    late.sid_m = 0x300;
    let t1 = t0 + Duration::from_secs(2);
    let out = b.handle_datagram(t1, peer(), &half.rakp1());
    assert_eq!(half.rakp2(&out[0].payload), Ok(()));
    assert_eq!(console::login(&mut late, exchange(&mut b, t1)), Err(0x01));
    assert_eq!(b.next_timeout(), Some(t0 + Duration::from_secs(3)));
    // The six bare Open Sessions expire at t0 + 3 s; the RAKP1 one at t1 + 3 s.
    let t2 = t0 + Duration::from_secs(3);
    b.poll(t2);
    assert_eq!(b.session_count(), 2);
    console::login(&mut late, exchange(&mut b, t2)).expect("a slot is free again");
    assert_eq!(b.session_count(), 3);
    b.poll(t1 + Duration::from_secs(3));
    assert_eq!(b.session_count(), 2, "the half-finished handshake is gone");
    assert_eq!(b.active_session_count(), 2);
    let later = t0 + Duration::from_secs(30);
    assert_eq!(call(&mut b, &mut keep, later, 0x00, 0x01, &[]).0, 0);
}

/// Issue 18 item 9: a request with a response network function is
/// answered at once with 0xC1 (invalid command), as ipmitool expects.
#[test]
fn response_netfn_is_an_invalid_command() {
    let now = Instant::now();
    let mut b = bmc();
    let mut c = login(&mut b, 3, now);
    let p = c.request(0x07, 0x01, &[]);
    let out = b.handle_datagram(now, peer(), &p);
    let (_, m) = c.open(&out[0].payload).unwrap();
    let r = racker_ipmi::codec::decode_response(&m).unwrap();
    assert_eq!((r.netfn, r.completion_code), (0x07, 0xC1));
}

#[test]
fn privilege_unknown_commands_users_and_lan() {
    let now = Instant::now();
    let mut b = bmc();
    let mut c = Console::new(3, "USER", "PASS");
    let mut ex = exchange(&mut b, now);
    let r = ex(c.open_session_request());
    c.open_session_response(&r[0]).unwrap();
    let r = ex(c.rakp1());
    c.rakp2(&r[0]).unwrap();
    let p = c.rakp3();
    let r = ex(p);
    c.rakp4(&r[0]).unwrap();
    drop(ex);
    // Sessions start at User level: Chassis Control needs Operator.
    assert_eq!(call(&mut b, &mut c, now, 0x00, 0x02, &[0x01]).0, 0xD4);
    assert_eq!(
        call(&mut b, &mut c, now, 0x06, 0x3B, &[0x04]),
        (0, vec![0x04])
    );
    assert_eq!(call(&mut b, &mut c, now, 0x06, 0x3B, &[0x05]).0, 0x81);
    assert_eq!(call(&mut b, &mut c, now, 0x2C, 0x3E, &[0x00]).0, 0xC1);
    assert_eq!(call(&mut b, &mut c, now, 0x06, 0x01, &[]).0, 0);
    // Users: name + password for ID 3, then log in with them.
    let mut name = b"ops".to_vec();
    name.resize(16, 0);
    assert_eq!(
        call(
            &mut b,
            &mut c,
            now,
            0x06,
            0x45,
            &[[3].as_slice(), &name].concat()
        )
        .0,
        0
    );
    let mut pw = b"s3cret".to_vec();
    pw.resize(16, 0);
    assert_eq!(
        call(
            &mut b,
            &mut c,
            now,
            0x06,
            0x47,
            &[[3, 0x02].as_slice(), &pw].concat()
        )
        .0,
        0
    );
    assert_eq!(call(&mut b, &mut c, now, 0x06, 0x47, &[3, 0x01]).0, 0);
    assert_eq!(call(&mut b, &mut c, now, 0x06, 0x43, &[0x91, 3, 0x04]).0, 0);
    assert_eq!(call(&mut b, &mut c, now, 0x06, 0x46, &[3]).1, name);
    let (_, access) = call(&mut b, &mut c, now, 0x06, 0x44, &[0x01, 3]);
    assert_eq!(access, vec![10, 0x40 | 2, 0x01, 0x14]);
    assert_eq!(
        call(
            &mut b,
            &mut c,
            now,
            0x06,
            0x47,
            &[[3, 0x03].as_slice(), &pw].concat()
        )
        .0,
        0
    );
    let mut ops = Console::new(17, "ops", "s3cret");
    ops.sid_m = 99;
    console::login(&mut ops, exchange(&mut b, now)).unwrap();
    // LAN IP address source back to DHCP.
    assert_eq!(
        call(&mut b, &mut c, now, 0x0C, 0x01, &[0x01, 0x04, 0x01]).0,
        0
    );
    assert_eq!(
        call(&mut b, &mut c, now, 0x0C, 0x02, &[0x01, 0x04, 0, 0]).1,
        vec![0x11, 0x01]
    );
    assert_eq!(
        call(&mut b, &mut c, now, 0x0C, 0x01, &[0x01, 0x04, 0x02]).0,
        0
    );
    assert_eq!(b.chassis().lan_ip_source(), 2);
}

#[test]
fn sol_carries_console_text_both_ways() {
    let now = Instant::now();
    let mut b = bmc();
    let mut c = login(&mut b, 3, now);
    let (cc, data) = call(
        &mut b,
        &mut c,
        now,
        0x06,
        0x48,
        &[0x01, 0x01, 0xC6, 0, 0, 0],
    );
    assert_eq!(cc, 0);
    assert_eq!(data.len(), 12);
    assert_eq!(u16::from_le_bytes([data[8], data[9]]), 623);
    assert!(b.drain_events().contains(&Event::SolActivated));
    // A second activation is refused.
    assert_eq!(
        call(
            &mut b,
            &mut c,
            now,
            0x06,
            0x48,
            &[0x01, 0x01, 0xC6, 0, 0, 0]
        )
        .0,
        0x80
    );
    // Node output reaches the console.
    let out = b.console_output(now, b"login: ");
    assert_eq!(out.len(), 1);
    let (t, sol) = c.open(&out[0].payload).unwrap();
    assert_eq!(t, 0x01);
    assert_eq!(&sol[4..], b"login: ");
    let seq = sol[0];
    // Unacked: retransmitted after the retry interval.
    let again = b.poll(now + Duration::from_secs(1));
    assert_eq!(c.open(&again[0].payload).unwrap().1, sol);
    // Console acks and types.
    let mut pkt = vec![1, seq, 7, 0];
    pkt.extend_from_slice(b"root\r");
    let p = c.seal(0x01, &pkt);
    let out = b.handle_datagram(now, peer(), &p);
    let (_, ack) = c.open(&out[0].payload).unwrap();
    assert_eq!(&ack[..3], &[0, 1, 5]);
    assert!(
        b.drain_events()
            .contains(&Event::ConsoleInput(b"root\r".to_vec()))
    );
    assert!(
        b.poll(now + Duration::from_secs(5)).is_empty(),
        "acked data is not resent"
    );
    // Deactivate.
    assert_eq!(
        call(&mut b, &mut c, now, 0x06, 0x49, &[0x01, 0x01, 0, 0, 0, 0]).0,
        0
    );
    assert!(b.drain_events().contains(&Event::SolDeactivated));
    assert!(b.console_output(now, b"more").is_empty());
    assert_eq!(b.chassis().console_log(), b"login: more");
}

#[test]
fn reboot_drops_sessions() {
    let now = Instant::now();
    let mut b = bmc();
    let mut c = login(&mut b, 3, now);
    b.reboot();
    assert_eq!(b.session_count(), 0);
    let p = c.request(0x00, 0x01, &[]);
    assert!(b.handle_datagram(now, peer(), &p).is_empty());
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_datagrams_never_panic_nor_open_sessions(
            packets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..120), 1..20),
            prefix in 0usize..4,
        ) {
            let now = Instant::now();
            let mut b = bmc();
            let heads: [&[u8]; 4] = [&[], &[0x06, 0x00, 0xFF, 0x07], &[0x06, 0x00, 0xFF, 0x07, 0x06], &[0x06, 0x00, 0xFF, 0x07, 0x06, 0x00, 0, 0, 0, 0]];
            for p in packets {
                let mut d = heads[prefix].to_vec();
                d.extend_from_slice(&p);
                let _ = b.handle_datagram(now, peer(), &d);
            }
            prop_assert_eq!(b.active_session_count(), 0);
        }

        #[test]
        fn arbitrary_bytes_inside_a_session_never_panic(
            payloads in proptest::collection::vec((0u8..3, proptest::collection::vec(any::<u8>(), 0..80)), 1..20),
        ) {
            let now = Instant::now();
            let mut b = bmc();
            let mut c = login(&mut b, 3, now);
            for (t, p) in payloads {
                let pkt = c.seal(t, &p);
                let _ = b.handle_datagram(now, peer(), &pkt);
            }
            prop_assert!(b.active_session_count() <= 1);
        }

        #[test]
        fn arbitrary_platform_requests_are_answered(
            requests in proptest::collection::vec(
                (prop_oneof![Just(0x00u8), Just(0x04), Just(0x06), Just(0x0A)], any::<u8>(), proptest::collection::vec(any::<u8>(), 0..24)),
                1..30,
            ),
            power: bool,
            fan_fail: bool,
        ) {
            let now = Instant::now();
            let mut b = bmc();
            b.node_power(now, power);
            b.set_core_faults(now, CoreFaults { fan_fail, ..CoreFaults::default() });
            let mut c = login(&mut b, 17, now);
            for (netfn, cmd, data) in requests {
                // Not the ones that end the session or change credentials.
                if netfn == 0x06 && matches!(cmd, 0x3C | 0x43 | 0x45 | 0x47 | 0x48) {
                    continue;
                }
                let p = c.request(netfn, cmd, &data);
                let out = b.handle_datagram(now, peer(), &p);
                prop_assert!(!out.is_empty(), "{netfn:#x}/{cmd:#x} {data:?} unanswered");
            }
            prop_assert!(b.sel_records().len() <= crate::sel::SEL_CAPACITY);
        }
    }
}

/// Read every SDR record the way ipmitool does: reserve, read the 5-byte
/// header, then the body in chunks of `chunk` bytes at increasing offsets.
fn walk_sdr(b: &mut Bmc, c: &mut Console, now: Instant, chunk: u8) -> Vec<Vec<u8>> {
    let (cc, r) = call(b, c, now, 0x0A, 0x22, &[]);
    assert_eq!(cc, 0);
    let res = [r[0], r[1]];
    let mut id = [0u8, 0u8];
    let mut records = Vec::new();
    loop {
        let (cc, h) = call(b, c, now, 0x0A, 0x23, &[res[0], res[1], id[0], id[1], 0, 5]);
        assert_eq!(cc, 0);
        let next = [h[0], h[1]];
        let mut rec = h[2..].to_vec();
        let len = usize::from(rec[4]) + 5;
        while rec.len() < len {
            let n = chunk.min((len - rec.len()) as u8);
            let (cc, part) = call(
                b,
                c,
                now,
                0x0A,
                0x23,
                &[res[0], res[1], id[0], id[1], rec.len() as u8, n],
            );
            assert_eq!(cc, 0);
            rec.extend_from_slice(&part[2..]);
        }
        records.push(rec);
        if next == [0xFF, 0xFF] {
            return records;
        }
        id = next;
    }
}

#[test]
fn sdr_partial_reads_match_whole_records_and_need_the_reservation() {
    let now = Instant::now();
    let mut b = bmc();
    let mut c = login(&mut b, 17, now);
    let (cc, info) = call(&mut b, &mut c, now, 0x0A, 0x20, &[]);
    assert_eq!(cc, 0);
    assert_eq!((info[0], info[1], info[2]), (0x51, 8, 0));
    let whole = walk_sdr(&mut b, &mut c, now, 0xFF);
    assert_eq!(whole.len(), 8);
    for chunk in [1, 7, 16] {
        assert_eq!(walk_sdr(&mut b, &mut c, now, chunk), whole);
    }
    // A new reservation cancels the old one for partial reads.
    let (_, r1) = call(&mut b, &mut c, now, 0x0A, 0x22, &[]);
    let (_, r2) = call(&mut b, &mut c, now, 0x04, 0x22, &[]);
    assert_ne!(r1, r2);
    let (cc, _) = call(&mut b, &mut c, now, 0x0A, 0x23, &[r1[0], r1[1], 1, 0, 5, 4]);
    assert_eq!(cc, 0xC5);
    let (cc, _) = call(&mut b, &mut c, now, 0x0A, 0x23, &[r2[0], r2[1], 1, 0, 5, 4]);
    assert_eq!(cc, 0);
    let (cc, _) = call(&mut b, &mut c, now, 0x0A, 0x23, &[0, 0, 99, 0, 0, 0xFF]);
    assert_eq!(cc, 0xCB);
}

#[test]
fn sensor_readings_follow_power_and_fan_fail() {
    let now = Instant::now();
    let mut b = bmc();
    let mut c = login(&mut b, 3, now);
    let reading = |b: &mut Bmc, c: &mut Console, n: u8| call(b, c, now, 0x04, 0x2D, &[n]);
    assert_eq!(reading(&mut b, &mut c, 3), (0, vec![0, 0xC0, 0x00]));
    assert_eq!(reading(&mut b, &mut c, 1), (0, vec![25, 0xC0, 0x00]));
    b.node_power(now, true);
    assert_eq!(reading(&mut b, &mut c, 3), (0, vec![54, 0xC0, 0x00]));
    assert_eq!(reading(&mut b, &mut c, 8), (0, vec![90, 0xC0, 0x00]));
    assert_eq!(reading(&mut b, &mut c, 0x77).0, 0xCB);
    b.set_core_faults(
        now,
        CoreFaults {
            fan_fail: true,
            ..CoreFaults::default()
        },
    );
    // 0 RPM, at or below lower non-critical and critical.
    assert_eq!(reading(&mut b, &mut c, 3), (0, vec![0, 0xC0, 0x03]));
    let (cc, status) = call(&mut b, &mut c, now, 0x00, 0x01, &[]);
    assert_eq!(cc, 0);
    assert_eq!(status[2] & 0x08, 0x08, "cooling/fan fault");
    let (cc, t) = call(&mut b, &mut c, now, 0x04, 0x27, &[3]);
    assert_eq!((cc, t), (0, vec![0x03, 8, 5, 0, 0, 0, 0]));
    let (cc, e) = call(&mut b, &mut c, now, 0x04, 0x2B, &[3]);
    assert_eq!((cc, e), (0, vec![0xC0, 0x05, 0x00, 0x00, 0x00]));
    // The SEL: power on, boot, then the two threshold crossings.
    let sel = b.sel_records();
    assert_eq!(sel.len(), 4);
    assert_eq!(&sel[2][10..16], &[0x04, 0x03, 0x01, 0x50, 0x00, 0x08]);
    assert_eq!(&sel[3][10..16], &[0x04, 0x03, 0x01, 0x52, 0x00, 0x05]);
    b.set_core_faults(now, CoreFaults::default());
    let sel = b.sel_records();
    assert_eq!(&sel[5][10..14], &[0x04, 0x03, 0x81, 0x52], "deasserted");
}

#[test]
fn sel_entries_fru_session_info_and_small_commands() {
    let now = Instant::now();
    let mut b = Bmc::new(
        BmcConfig::new([2, 0, 0, 0, 0, 1], "USER", Password::new("PASS"))
            .seed(7)
            .wall_clock(now, 1_800_000_000),
    );
    let mut c = login(&mut b, 3, now);
    let later = now + Duration::from_secs(30);
    let (cc, _) = call(&mut b, &mut c, later, 0x00, 0x02, &[0x01]);
    assert_eq!(cc, 0);
    let (cc, t) = call(&mut b, &mut c, later, 0x0A, 0x48, &[]);
    assert_eq!(
        (cc, u32::from_le_bytes([t[0], t[1], t[2], t[3]])),
        (0, 1_800_000_030)
    );
    let (cc, info) = call(&mut b, &mut c, later, 0x0A, 0x40, &[]);
    assert_eq!((cc, info[1]), (0, 2));
    let (cc, e) = call(&mut b, &mut c, later, 0x0A, 0x43, &[0, 0, 0, 0, 0, 0xFF]);
    assert_eq!(cc, 0);
    assert_eq!(&e[..2], &[2, 0], "next record");
    assert_eq!(u32::from_le_bytes([e[5], e[6], e[7], e[8]]), 1_800_000_030);
    assert_eq!(&e[12..15], &[0x22, 0x11, 0x6F]);
    // Add SEL Entry keeps the event, sets ID and time.
    let mut rec = [0u8; 16];
    rec[2] = 0x02;
    rec[7..16].copy_from_slice(&[0x41, 0x00, 0x04, 0x01, 0x30, 0x01, 0x52, 0x00, 0x05]);
    let (cc, id) = call(&mut b, &mut c, later, 0x0A, 0x44, &rec);
    assert_eq!((cc, id), (0, vec![3, 0]));
    let (cc, e) = call(
        &mut b,
        &mut c,
        later,
        0x0A,
        0x43,
        &[0, 0, 0xFF, 0xFF, 0, 0xFF],
    );
    assert_eq!(cc, 0);
    assert_eq!(&e[2 + 7..], &rec[7..]);
    // Clear needs the reservation.
    let (cc, _) = call(&mut b, &mut c, later, 0x0A, 0x47, b"\x00\x00CLR\xAA");
    assert_eq!(cc, 0xC5);
    let (_, r) = call(&mut b, &mut c, later, 0x0A, 0x42, &[]);
    let (cc, done) = call(
        &mut b,
        &mut c,
        later,
        0x0A,
        0x47,
        &[r[0], r[1], b'C', b'L', b'R', 0xAA],
    );
    assert_eq!((cc, done), (0, vec![1]));
    assert_eq!(b.sel_records().len(), 1);

    // FRU: header via two partial reads.
    let (cc, area) = call(&mut b, &mut c, later, 0x0A, 0x10, &[0]);
    assert_eq!(cc, 0);
    let size = u16::from_le_bytes([area[0], area[1]]);
    assert_eq!(usize::from(size), crate::fru::size());
    let (cc, h) = call(&mut b, &mut c, later, 0x0A, 0x11, &[0, 0, 0, 8]);
    assert_eq!((cc, h[0], h[1]), (0, 8, 0x01));
    let (cc, _) = call(&mut b, &mut c, later, 0x0A, 0x11, &[1, 0, 0, 8]);
    assert_eq!(cc, 0xCB);
    let (cc, _) = call(&mut b, &mut c, later, 0x0A, 0x11, &[0, 0xFF, 0x0F, 8]);
    assert_eq!(cc, 0xC9);

    // Session info: this session, the 2nd (none), by handle.
    let (cc, s) = call(&mut b, &mut c, later, 0x06, 0x3D, &[0x00]);
    assert_eq!(cc, 0);
    assert_eq!(&s[..6], &[1, 8, 1, 2, 4, 0x11]);
    assert_eq!(&s[6..10], &[127, 0, 0, 1]);
    assert_eq!(&s[16..18], &40000u16.to_le_bytes());
    assert_eq!(
        call(&mut b, &mut c, later, 0x06, 0x3D, &[0x02]),
        (0, vec![0, 8, 1])
    );
    assert_eq!(call(&mut b, &mut c, later, 0x06, 0x3D, &[0xFE, 1]).1[0], 1);

    // System firmware version (set 0 holds encoding, length, 14 bytes).
    let (cc, v) = call(&mut b, &mut c, later, 0x06, 0x59, &[0, 1, 0, 0]);
    assert_eq!(cc, 0);
    assert_eq!(&v[..4], &[0x11, 0, 0, 5]);
    assert_eq!(&v[4..9], b"1.0.0");
    assert_eq!(&v[9..], &[0; 9]);
    let (_, v) = call(&mut b, &mut c, later, 0x06, 0x59, &[0, 2, 1, 0]);
    // System name SIM-020000000001: 16 bytes, set 1 holds the last two.
    assert_eq!(&v[2..4], b"01");
    assert_eq!(&v[4..], &[0; 14]);
    // Channel payload support: IPMI + SOL (ipmiconsole asks first).
    let (cc, p) = call(&mut b, &mut c, later, 0x06, 0x4E, &[0x01]);
    assert_eq!((cc, p[0]), (0, 0x03));
    assert_eq!(
        call(&mut b, &mut c, later, 0x06, 0x04, &[]),
        (0, vec![0x55, 0])
    );
    assert_eq!(
        call(&mut b, &mut c, later, 0x00, 0x07, &[]),
        (0, vec![1, 1])
    );
    // Identify: 15 s by default, visible in chassis status.
    assert_eq!(call(&mut b, &mut c, later, 0x00, 0x04, &[]).0, 0);
    assert!(b.identify_on(later + Duration::from_secs(14)));
    assert!(!b.identify_on(later + Duration::from_secs(15)));
    let (_, status) = call(&mut b, &mut c, later, 0x00, 0x01, &[]);
    assert_eq!(status[2] & 0x70, 0x50);
    // POH counter counts powered hours (a new session: the old one idled out).
    let t2 = later + Duration::from_secs(7200);
    let mut c2 = login(&mut b, 3, t2);
    let (cc, poh) = call(&mut b, &mut c2, t2, 0x00, 0x0F, &[]);
    assert_eq!((cc, poh), (0, vec![60, 2, 0, 0, 0]));
}

/// Every handshake packet arrives twice, the copy right after the
/// original (a console that retransmitted because the answer was late):
/// the copy gets the same answer, no second session and no new Rc, so the
/// console's next step (computed from the first answer) still works.
/// Before, the copy of the Open Session Request opened another session
/// (RAKP 1 for the first went unanswered) and the copy of RAKP 1 drew a
/// new Rc (RAKP 4 status 0x0f).
#[test]
fn retransmitted_handshake_packets_get_the_first_answer() {
    for suite in [3, 17] {
        let mut b = bmc();
        let now = Instant::now();
        let mut c = Console::new(suite, "USER", "PASS");
        let mut handshake = 0;
        console::login(&mut c, |p| {
            let answer = |b: &mut Bmc| -> Vec<Vec<u8>> {
                b.handle_datagram(now, peer(), &p)
                    .into_iter()
                    .map(|t| t.payload)
                    .collect()
            };
            let first = answer(&mut b);
            let again = answer(&mut b);
            // Open Session, RAKP 1, RAKP 3 (in-session replies are sealed
            // anew: another sequence number and IV).
            if handshake < 3 {
                assert_eq!(first, again, "suite {suite}, step {handshake}");
            }
            handshake += 1;
            first
        })
        .unwrap_or_else(|code| panic!("suite {suite}: login failed with {code:#04x}"));
        assert_eq!(b.session_count(), 1, "suite {suite}");
    }
}
