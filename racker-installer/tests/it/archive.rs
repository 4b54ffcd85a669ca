//! Reproducible archives and tar-slip refusal.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use racker_installer::{Error, unpack_archive, write_archive};

use crate::support::{Node, snapshot};

/// Materialise a tree description under `root`.
fn materialise(root: &Path, tree: &BTreeMap<PathBuf, Node>) {
    fs::create_dir_all(root).unwrap();
    for (path, node) in tree {
        let full = root.join(path);
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        match node {
            Node::Dir => fs::create_dir_all(&full).unwrap(),
            Node::File { content, exec } => {
                fs::write(&full, content).unwrap();
                let mode = if *exec { 0o755 } else { 0o644 };
                fs::set_permissions(&full, fs::Permissions::from_mode(mode)).unwrap();
            }
            Node::Link(target) => std::os::unix::fs::symlink(target, &full).unwrap(),
        }
    }
}

fn name() -> impl Strategy<Value = String> {
    // Includes long names to exercise GNU long-name records.
    prop_oneof!["[a-z][a-z0-9._-]{0,12}", "[a-z]{100,120}",]
        .prop_filter("not . or ..", |n| n != "." && n != "..")
}

/// Arbitrary trees: nested dirs, files (executable or not) and symlinks
/// whose targets stay inside the tree.
fn tree() -> impl Strategy<Value = BTreeMap<PathBuf, Node>> {
    let entry = (
        proptest::collection::vec(name(), 1..4),
        prop_oneof![
            3 => (proptest::collection::vec(any::<u8>(), 0..2000), any::<bool>())
                .prop_map(|(content, exec)| Node::File { content, exec }),
            1 => Just(Node::Dir),
            1 => name().prop_map(|t| Node::Link(PathBuf::from(t))),
        ],
    );
    proptest::collection::vec(entry, 0..12).prop_map(|entries| {
        let mut tree: BTreeMap<PathBuf, Node> = BTreeMap::new();
        'next: for (parts, node) in entries {
            let path: PathBuf = parts.iter().collect();
            // Parents must be directories; skip entries that clash.
            let mut parent = PathBuf::new();
            for part in &parts[..parts.len() - 1] {
                parent.push(part);
                match tree.get(&parent) {
                    Some(Node::Dir) | None => {}
                    Some(_) => continue 'next,
                }
            }
            if tree.keys().any(|k| k.starts_with(&path)) {
                continue;
            }
            let mut parent = PathBuf::new();
            for part in &parts[..parts.len() - 1] {
                parent.push(part);
                tree.insert(parent.clone(), Node::Dir);
            }
            tree.insert(path, node);
        }
        tree
    })
}

fn archive_of(root: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    write_archive(root, racker_installer::DEFAULT_MTIME, &mut bytes).unwrap();
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Unpacking any archive we build reproduces its input tree, and
    /// building the same tree twice (with different mtimes and
    /// permissions on disk) gives identical bytes.
    #[test]
    fn unpack_reproduces_tree_and_build_is_reproducible(tree in tree()) {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        let b = tmp.path().join("b");
        materialise(&a, &tree);
        materialise(&b, &tree);
        // Perturb b's metadata: mtimes and non-exec permission bits.
        for (path, node) in &tree {
            if let Node::File { exec, .. } = node {
                let full = b.join(path);
                let mode = if *exec { 0o700 } else { 0o600 };
                fs::set_permissions(&full, fs::Permissions::from_mode(mode)).unwrap();
                let f = fs::File::options().append(true).open(&full).unwrap();
                f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(12345)).unwrap();
            }
        }
        let bytes_a = archive_of(&a);
        let bytes_b = archive_of(&b);
        prop_assert!(bytes_a == bytes_b, "same tree, different archive bytes");

        let out = tmp.path().join("out");
        fs::create_dir(&out).unwrap();
        unpack_archive(&bytes_a[..], &out, "prop").unwrap();
        prop_assert_eq!(snapshot(&out), snapshot(&a));
    }

    /// Arbitrary bytes are refused cleanly, never a panic.
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let tmp = tempfile::tempdir().unwrap();
        let _ = unpack_archive(&bytes[..], tmp.path(), "garbage");
    }
}

/// Entry to put in a hand-made (malicious) archive.
enum Raw<'a> {
    File(&'a str),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    Fifo(&'a str),
}

/// Build a tar.gz with raw names (bypassing the tar crate's own checks).
fn raw_archive(entries: &[Raw<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        let (name, kind, link) = match entry {
            Raw::File(n) => (*n, tar::EntryType::Regular, None),
            Raw::Dir(n) => (*n, tar::EntryType::Directory, None),
            Raw::Symlink(n, t) => (*n, tar::EntryType::Symlink, Some(*t)),
            Raw::HardLink(n, t) => (*n, tar::EntryType::Link, Some(*t)),
            Raw::Fifo(n) => (*n, tar::EntryType::Fifo, None),
        };
        let gnu = header.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(kind);
        header.set_mode(0o644);
        let data: &[u8] = if matches!(entry, Raw::File(_)) {
            b"pwned\n"
        } else {
            b""
        };
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    gz.finish().unwrap()
}

fn assert_refused(entries: &[Raw<'_>]) {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("a/b/dest");
    fs::create_dir_all(&dest).unwrap();
    let err = unpack_archive(&raw_archive(entries)[..], &dest, "evil").unwrap_err();
    assert!(matches!(err, Error::UnsafeArchiveEntry { .. }), "{err}");
    // Nothing was written outside dest.
    let outside: Vec<_> = snapshot(tmp.path())
        .into_keys()
        .filter(|p| !p.starts_with("a/b/dest") && p != Path::new("a") && p != Path::new("a/b"))
        .collect();
    assert!(outside.is_empty(), "wrote outside: {outside:?}");
    assert!(!Path::new("/tmp/racker-slip-test").exists());
}

#[test]
fn tar_slip_dotdot_refused() {
    assert_refused(&[Raw::File("../escaped")]);
    assert_refused(&[Raw::Dir("x/"), Raw::File("x/../../escaped")]);
}

#[test]
fn tar_slip_absolute_refused() {
    assert_refused(&[Raw::File("/tmp/racker-slip-test")]);
}

#[test]
fn tar_slip_symlink_escaping_refused() {
    assert_refused(&[Raw::Symlink("up", "../..")]);
    assert_refused(&[Raw::Symlink("abs", "/etc")]);
    // `..` after a name could climb out through another symlink.
    assert_refused(&[Raw::Symlink("here", "."), Raw::Symlink("out", "here/..")]);
}

#[test]
fn tar_slip_write_through_symlink_refused() {
    // An inside-pointing link is fine on its own, but writing through it
    // is refused (it could be retargeted by a later entry).
    assert_refused(&[Raw::Dir("d/"), Raw::Symlink("l", "d"), Raw::File("l/x")]);
}

#[test]
fn hard_links_devices_and_duplicates_refused() {
    assert_refused(&[Raw::File("a"), Raw::HardLink("b", "a")]);
    assert_refused(&[Raw::Fifo("fifo")]);
    assert_refused(&[Raw::File("a"), Raw::File("a")]);
    assert_refused(&[Raw::Symlink("a", "b"), Raw::File("a")]);
}

#[test]
fn safe_hand_made_archive_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    unpack_archive(
        &raw_archive(&[
            Raw::Dir("./"),
            Raw::Dir("bin/"),
            Raw::File("./bin/racker"),
            Raw::Dir("lib/"),
            Raw::Symlink("lib/racker", "../bin/racker"),
        ])[..],
        tmp.path(),
        "ok",
    )
    .unwrap();
    assert_eq!(fs::read(tmp.path().join("lib/racker")).unwrap(), b"pwned\n");
}

#[test]
fn archive_listing_is_sorted_and_normalised() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    fs::create_dir_all(root.join("z")).unwrap();
    fs::create_dir_all(root.join("a")).unwrap();
    fs::write(root.join("z/file"), "z").unwrap();
    fs::write(root.join("a/file"), "a").unwrap();
    fs::write(root.join("m"), "m").unwrap();
    fs::set_permissions(root.join("m"), fs::Permissions::from_mode(0o4775)).unwrap();
    let bytes = archive_of(&root);
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let mut seen = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let h = entry.header();
        assert_eq!(h.uid().unwrap(), 0);
        assert_eq!(h.gid().unwrap(), 0);
        assert_eq!(h.mtime().unwrap(), racker_installer::DEFAULT_MTIME);
        seen.push((
            entry.path().unwrap().display().to_string(),
            h.mode().unwrap(),
        ));
    }
    assert_eq!(
        seen,
        [
            ("a/".to_owned(), 0o755),
            ("a/file".to_owned(), 0o644),
            ("m".to_owned(), 0o755),
            ("z/".to_owned(), 0o755),
            ("z/file".to_owned(), 0o644),
        ]
    );
    // gzip header: mtime 0, no file name flag.
    assert_eq!(&bytes[3..8], &[0, 0, 0, 0, 0]);
}

/// Interoperability with GNU tar both ways: it extracts our archives to the
/// same tree, and we unpack what `tar -czf x -C dir .` writes.
#[test]
fn gnu_tar_interop() {
    let Some(tar_bin) = racker_testsupport::require_tool("gnu_tar_interop", "tar") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    crate::support::release_tree(&root, "3.1.4");
    fs::create_dir_all(root.join("lib/deep")).unwrap();
    std::os::unix::fs::symlink("../../bin/racker", root.join("lib/deep/racker")).unwrap();
    let long = "x".repeat(150);
    fs::write(root.join("lib").join(&long), "long name\n").unwrap();

    let ours = tmp.path().join("ours.tar.gz");
    fs::write(&ours, archive_of(&root)).unwrap();
    let by_gnu = tmp.path().join("by-gnu");
    fs::create_dir(&by_gnu).unwrap();
    let status = std::process::Command::new(&tar_bin)
        .arg("-xzf")
        .arg(&ours)
        .arg("-C")
        .arg(&by_gnu)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(snapshot(&by_gnu), snapshot(&root));

    let theirs = tmp.path().join("theirs.tar.gz");
    let status = std::process::Command::new(&tar_bin)
        .arg("-czf")
        .arg(&theirs)
        .arg("-C")
        .arg(&root)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let by_us = tmp.path().join("by-us");
    fs::create_dir(&by_us).unwrap();
    unpack_archive(fs::File::open(&theirs).unwrap(), &by_us, "theirs").unwrap();
    assert_eq!(snapshot(&by_us), snapshot(&root));
}
