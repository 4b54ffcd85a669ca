//! A simulated rack for the CLI's day-2 tests (`racker sim up --pxe-dhcp`
//! plus this machine as its management node and every boot asset present),
//! and the matchbox gRPC call, shared by the day-2 tests. Included with `mod
//! common;`; not every test file uses every item.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use assert_cmd::cargo::cargo_bin;

/// The simulator process and its folders; stopped on drop.
pub(crate) struct SimRack {
    pub(crate) dir: tempfile::TempDir,
    /// Where the simulated firmware sends DHCP (bootstrap's `--dhcp-listen`).
    pub(crate) dhcp: SocketAddr,
    /// A free loopback port for bootstrap's `--http-listen`.
    pub(crate) http: SocketAddr,
    sim: Child,
}

impl Drop for SimRack {
    fn drop(&mut self) {
        stop(&mut self.sim);
    }
}

/// `racker` with only the rack's folders in its environment.
pub(crate) fn racker_in(dir: &Path) -> Command {
    let mut cmd = Command::new(cargo_bin("racker"));
    cmd.env_clear()
        .env("RACKER_OEM_DIR", dir.join("oem"))
        .env("RACKER_STATE_DIR", dir.join("state"))
        .env("RACKER_SYS_CLASS_NET", dir.join("net"))
        .stdin(Stdio::null());
    cmd
}

impl SimRack {
    /// `racker sim up --count COUNT` (the management node and COUNT-1
    /// nodes: primary MACs 02:52:4b:00:00:01.., BMC MACs 02:52:4b:01:00:01..).
    pub(crate) fn start(count: usize) -> Self {
        Self::start_on(count, None)
    }

    /// [`SimRack::start`] with the BMCs on `bind` (`sim up --bind`, e.g.
    /// `127.97.0`: one loopback address per BMC) instead of 127.0.0.1.
    pub(crate) fn start_on(count: usize, bind: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (dhcp, http) = (
            racker_testsupport::free_udp(),
            racker_testsupport::free_tcp(),
        );
        let (sim, _) = racker_testsupport::spawn_until_line(
            racker_in(dir.path())
                .args(["sim", "up", "--count", &count.to_string()])
                .args(bind.map(|b| ["--bind", b]).into_iter().flatten())
                .args(["--ipmi-port", "0", "--install-delay-ms", "0"])
                .args(["--pxe-dhcp", &dhcp.to_string()]),
            "press Ctrl-C",
        );
        let rack = Self {
            dir,
            dhcp,
            http,
            sim,
        };
        manage_from_here(rack.dir.path());
        rack
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `racker` against this rack's folders.
    pub(crate) fn racker(&self) -> Command {
        racker_in(self.dir.path())
    }
}

/// In the folders below `dir`: this machine is the management node that
/// `racker sim up` generates (first row: its secondary MAC on `eth1`), and
/// every boot asset the bootstrap's preflight asks for is there (small
/// stand-ins).
pub(crate) fn manage_from_here(dir: &Path) {
    let net = dir.join("net/eth1");
    std::fs::create_dir_all(&net).unwrap();
    std::fs::write(net.join("address"), "02:52:4b:02:00:00\n").unwrap();
    let assets = dir.join("state/assets/flatcar/current");
    std::fs::create_dir_all(&assets).unwrap();
    for (name, size) in [
        ("flatcar_production_pxe.vmlinuz", 4096),
        ("flatcar_production_pxe_image.cpio.gz", 8192),
        ("flatcar_production_image.bin.bz2", 1024),
        ("flatcar_production_image.bin.bz2.sig", 64),
    ] {
        std::fs::write(assets.join(name), vec![1u8; size]).unwrap();
    }
}

/// Ctrl-C, then SIGKILL after 20 s (a loaded machine stops slowly); never
/// panics, as it runs in drop.
pub(crate) fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `netboot serve --no-dhcp` with HTTP and TFTP on ephemeral loopback
/// ports and the iPXE boot files from `boot`, added to `cmd`.
pub(crate) fn serve_args<'c>(cmd: &'c mut Command, boot: &Path) -> &'c mut Command {
    cmd.args(["netboot", "serve", "--no-dhcp"])
        .args(["--http-listen", "127.0.0.1:0"])
        .args(["--tftp-listen", "127.0.0.1:0"])
        .arg("--boot-files")
        .arg(boot)
}

/// A child process killed (and reaped) when the test ends, whatever
/// happens.
pub(crate) struct Killed(pub(crate) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `cmd` (a `racker` with its environment) running [`serve_args`]; its
/// stderr is read up to the first line that
/// contains `until` (then drained in a thread, so the server never blocks
/// on a full pipe). The server and the lines read, that one last. Panics
/// when the server exits first.
pub(crate) fn netboot_serve(mut cmd: Command, boot: &Path, until: &str) -> (Killed, Vec<String>) {
    use std::io::{BufRead as _, BufReader};
    serve_args(&mut cmd, boot)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let server = Killed(child);
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    loop {
        let Some(Ok(line)) = lines.next() else {
            panic!("racker netboot serve exited before {until:?}: {seen:?}");
        };
        let done = line.contains(until);
        seen.push(line);
        if done {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    (server, seen)
}

/// curl's arguments for one matchbox gRPC `ProfileList` call with the
/// client certificate in `state`'s matchbox TLS folder: `frame` gets an
/// empty request (a gRPC frame, uncompressed, length 0), the response
/// headers go to `headers`, the body is dropped.
pub(crate) fn grpc_profile_list_args(
    state: &Path,
    url_authority: &str,
    frame: &Path,
    headers: &Path,
    max_time_s: u32,
) -> Vec<std::ffi::OsString> {
    std::fs::write(frame, [0u8; 5]).unwrap();
    let certs = racker_netboot::matchbox_api::CertPaths::in_state_dir(state);
    let mut args: Vec<std::ffi::OsString> = Vec::new();
    for a in ["-sS", "--http2", "--max-time", &max_time_s.to_string()] {
        args.push(a.into());
    }
    for (flag, path) in [
        ("--cacert", certs.client_ca()),
        ("--cert", certs.client_cert()),
        ("--key", certs.client_key()),
    ] {
        args.push(flag.into());
        args.push(path.into());
    }
    for a in ["-H", "content-type: application/grpc", "-H", "te: trailers"] {
        args.push(a.into());
    }
    args.push("--data-binary".into());
    args.push(format!("@{}", frame.display()).into());
    args.push("-D".into());
    args.push(headers.into());
    args.push("-o".into());
    args.push("/dev/null".into());
    args.push(format!("https://{url_authority}/rpcpb.Profiles/ProfileList").into());
    args
}
