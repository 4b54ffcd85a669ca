//! Helpers of the real-VM tests (`racker-cli/tests/vm*.rs`): the test
//! kernel `.ci/test-kernel` unpacks, its modules in load order, a `newc`
//! cpio writer for initramfs archives, and process/namespace guards.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Child;

/// Kills and reaps a child on drop.
#[derive(Debug)]
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub use crate::netns::{Netns, run};

/// Where `.ci/test-kernel` unpacked Debian's cloud kernel
/// (`RACKER_TEST_KERNEL_DIR`, default `/var/cache/racker/test-kernel`).
pub fn kernel_dir() -> PathBuf {
    std::env::var_os("RACKER_TEST_KERNEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/racker/test-kernel"))
}

/// `(vmlinuz, modules directory)` of the kernel package unpacked in `dir`.
pub fn find_kernel(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let vmlinuz = fs::read_dir(dir.join("boot"))
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })?;
    let version = vmlinuz
        .file_name()?
        .to_string_lossy()
        .trim_start_matches("vmlinuz-")
        .to_owned();
    let modules = dir.join("lib/modules").join(version).join("kernel");
    modules.is_dir().then_some((vmlinuz, modules))
}

/// Every `.ko` below `dir`, by module name (`-` and `_` are the same).
fn index_modules(dir: &Path, out: &mut BTreeMap<String, PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            index_modules(&path, out);
        } else if let Some(name) = path.file_name().and_then(|n| n.to_str())
            && let Some(stem) = name.strip_suffix(".ko")
        {
            out.insert(stem.replace('-', "_"), path);
        }
    }
}

/// The `depends=` entry of a module's `.modinfo` section.
fn module_depends(bytes: &[u8]) -> Vec<String> {
    let key = b"depends=";
    bytes
        .split(|b| *b == 0)
        .find_map(|s| s.strip_prefix(key.as_slice()))
        .map(|deps| {
            String::from_utf8_lossy(deps)
                .split(',')
                .filter(|d| !d.is_empty())
                .map(|d| d.replace('-', "_"))
                .collect()
        })
        .unwrap_or_default()
}

/// The modules `wanted` from the kernel's module directory `modules`, with
/// their dependencies, in load order (dependencies first): `(name, bytes)`.
pub fn load_order(modules: &Path, wanted: &[&str]) -> Vec<(String, Vec<u8>)> {
    fn visit(
        name: &str,
        index: &BTreeMap<String, PathBuf>,
        seen: &mut BTreeSet<String>,
        out: &mut Vec<(String, Vec<u8>)>,
    ) {
        if !seen.insert(name.to_owned()) {
            return;
        }
        let path = index
            .get(name)
            .unwrap_or_else(|| panic!("module {name} is not in the test kernel"));
        let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for dep in module_depends(&bytes) {
            visit(&dep, index, seen, out);
        }
        out.push((name.to_owned(), bytes));
    }
    let mut index = BTreeMap::new();
    index_modules(modules, &mut index);
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for name in wanted {
        visit(name, &index, &mut seen, &mut out);
    }
    out
}

/// Writer of the `newc` cpio format the kernel unpacks as initramfs.
#[derive(Debug, Default)]
pub struct Cpio {
    out: Vec<u8>,
    ino: u32,
}

impl Cpio {
    /// One entry: `mode` includes the file type bits.
    pub fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        self.ino += 1;
        let header = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() + 1,
            0
        );
        self.out.extend_from_slice(header.as_bytes());
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }
    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }
    /// A directory (mode 0755).
    pub fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, &[], (0, 0));
    }
    /// A regular file with permissions `perm`.
    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) {
        self.entry(name, 0o100000 | perm, data, (0, 0));
    }
    /// A symbolic link `name` → `target`.
    pub fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, 0o120777, target.as_bytes(), (0, 0));
    }
    /// The archive with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[], (0, 0));
        self.out
    }
}

/// QEMU's accelerator: `RACKER_TEST_QEMU_ACCEL`, else software emulation
/// (TCG). KVM is opt-in: nested KVM on CI machines has been seen to reset
/// the guest during early boot.
pub fn accelerator() -> String {
    std::env::var("RACKER_TEST_QEMU_ACCEL").unwrap_or_else(|_| "tcg".to_owned())
}

/// True when an ELF64 file has a PT_INTERP program header (is dynamically
/// linked).
pub fn has_interpreter(elf: &[u8]) -> bool {
    let u16_at = |o: usize| {
        elf.get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u64_at = |o: usize| {
        elf.get(o..o + 8).map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_le_bytes(a) as usize
        })
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return true;
    };
    (0..phnum).any(|i| {
        elf.get(phoff + i * phentsize..phoff + i * phentsize + 4)
            .is_some_and(|t| t == 3u32.to_le_bytes())
    })
}

/// `ipmi_sim`'s `chassis_control` program for the VM tests: power and boot
/// device kept in files of its directory (`boot`, `events`); power on starts
/// `<dir>/machine` in its own session, power off kills that session.
pub const IPMI_SIM_CHASSIS: &str = r#"#!/bin/sh
dir=$1; shift
op=$1; shift
pid() { cat "$dir/machine.pid" 2>/dev/null; }
running() {
  p=$(pid)
  [ -n "$p" ] && [ -e "/proc/$p" ] && ! grep -q ') Z ' "/proc/$p/stat"
}
case "$op" in
get)
  for p in "$@"; do
    case "$p" in
      power) if running; then echo power:1; else echo power:0; fi;;
      boot) echo "boot:$(cat "$dir/boot" 2>/dev/null || echo default)";;
    esac
  done;;
set)
  while [ $# -ge 2 ]; do
    echo "$1 $2" >> "$dir/events"
    case "$1" in
      power)
        if [ "$2" = 1 ]; then
          running || {
            setsid "$dir/machine" "$dir" </dev/null >>"$dir/machine.log" 2>&1 &
            echo $! > "$dir/machine.pid"
          }
        elif running; then
          kill -TERM -- "-$(pid)" 2>/dev/null || kill -TERM "$(pid)"
          i=0; while running && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
        fi;;
      boot) echo "$2" > "$dir/boot";;
    esac
    shift 2
  done;;
esac
"#;
