//! Property tests: TFTP packets and transfers never panic, the jail never
//! lets a name escape its root.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use racker_netboot::tftp::jail::{Jail, JailError, check_name};
use racker_netboot::tftp::packet::{Mode, Packet};
use racker_netboot::tftp::transfer::{
    Incoming, Progress, ReadRequest, TftpConfig, Transfer, classify_request,
};

fn option_pair() -> impl Strategy<Value = (String, String)> {
    (
        prop::sample::select(vec!["blksize", "tsize", "timeout", "windowsize", "x"]),
        prop_oneof![
            (0u32..70000).prop_map(|v| v.to_string()),
            "[a-z0-9 ]{0,6}".prop_map(|s| s),
        ],
    )
        .prop_map(|(a, b)| (a.to_owned(), b))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_datagrams_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = Packet::parse(&bytes);
        let _ = classify_request(&bytes);
    }

    #[test]
    fn requests_round_trip(
        name in "[a-zA-Z0-9._/-]{1,40}",
        netascii in any::<bool>(),
        opts in prop::collection::btree_map("[a-z]{1,8}", "[0-9]{1,5}", 0..4),
    ) {
        let p = Packet::Rrq {
            filename: name,
            mode: if netascii { Mode::Netascii } else { Mode::Octet },
            options: opts.into_iter().collect(),
        };
        let bytes = p.encode();
        prop_assert_eq!(Packet::parse(&bytes).unwrap(), p);
    }

    #[test]
    fn transfers_survive_arbitrary_input_and_send_correct_data(
        size in 0usize..5000,
        opts in prop::collection::vec(option_pair(), 0..4),
        events in prop::collection::vec(
            prop_oneof![
                (0u16..40).prop_map(|b| Packet::Ack { block: b }.encode()),
                prop::collection::vec(any::<u8>(), 0..20),
                Just(Vec::new()), // timeout marker
            ],
            0..60,
        ),
    ) {
        let mut dedup = std::collections::BTreeMap::new();
        for (k, v) in opts { dedup.entry(k).or_insert(v); }
        let file: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        let req = ReadRequest {
            filename: "f".into(),
            mode: Mode::Octet,
            options: dedup.into_iter().collect(),
        };
        let mut now = Instant::now();
        let mut src = file.as_slice();
        let mut t = Transfer::new(&req, size as u64, &TftpConfig::default(), now);
        let blksize = usize::from(t.negotiated().blksize);
        let mut out = Vec::new();
        let mut progress = t.start(now, &mut src, &mut out);
        for ev in events {
            if progress != Progress::Running { break; }
            if ev.is_empty() {
                now += Duration::from_secs(300);
                progress = t.on_timeout(now, &mut src, &mut out);
            } else {
                progress = t.on_datagram(&ev, now, &mut src, &mut out);
            }
        }
        // Every DATA block sent carries exactly the right bytes (block
        // numbers stay below 65536 here, so no wrap ambiguity).
        for pkt in &out {
            if let Ok(Packet::Data { block, data }) = Packet::parse(pkt) {
                prop_assert!(block >= 1);
                let start = (usize::from(block) - 1) * blksize;
                let end = (start + blksize).min(size);
                prop_assert_eq!(data, &file[start.min(size)..end]);
            }
        }
    }

    #[test]
    fn names_with_traversal_are_refused(
        parts in prop::collection::vec(prop::sample::select(vec!["..", ".", "a", "", "b.efi"]), 1..6),
        leading_slash in any::<bool>(),
    ) {
        let name = format!("{}{}", if leading_slash { "/" } else { "" }, parts.join("/"));
        match check_name(&name) {
            Ok(components) => {
                prop_assert!(!name.starts_with('/'));
                prop_assert!(components.iter().all(|c| *c != ".." && *c != "." && !c.is_empty()));
            }
            Err(JailError::Refused(_)) => {
                prop_assert!(
                    name.starts_with('/')
                        || parts.contains(&"..")
                        || parts.iter().all(|p| *p == "." || p.is_empty())
                );
            }
            Err(JailError::NotFound) => prop_assert!(false, "check_name never says NotFound"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn jail_never_escapes(
        parts in prop::collection::vec(
            prop::sample::select(vec!["..", ".", "in", "sub", "up", "out", "self", "secret", "file", "%2e%2e", "\0", "\\.."]),
            1..6,
        ),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("file"), b"inside").unwrap();
        std::fs::write(root.join("sub/file"), b"inside").unwrap();
        std::fs::write(dir.path().join("secret"), b"outside").unwrap();
        std::os::unix::fs::symlink("../secret", root.join("out")).unwrap();
        std::os::unix::fs::symlink("..", root.join("up")).unwrap();
        std::os::unix::fs::symlink(".", root.join("self")).unwrap();
        std::os::unix::fs::symlink("file", root.join("in")).unwrap();
        let jail = Jail::new(&root).unwrap();
        let name = parts.join("/");
        if let Ok(path) = jail.resolve(&name) {
            prop_assert!(path.starts_with(jail.root()), "{} escaped to {}", name, path.display());
            prop_assert_eq!(std::fs::read(&path).unwrap(), b"inside");
        }
    }
}

#[test]
fn classify_distinguishes_requests() {
    let rrq = Packet::Rrq {
        filename: "ipxe.efi".into(),
        mode: Mode::Octet,
        options: vec![],
    }
    .encode();
    assert!(matches!(classify_request(&rrq), Incoming::Read(_)));
}
