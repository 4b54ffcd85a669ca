//! `installer/racker-netboot.service` under a real systemd.
//!
//! `systemd-analyze verify` checks the unit. Then a small Debian root
//! (`.ci/test-systemd-root`, cached under /var/cache/racker) boots with
//! `systemd-nspawn --boot --volatile=overlay`, the racker binary, the unit
//! and the rack metadata bind-mounted, and one end of a veth pair (carrying
//! the management node's secondary MAC) as its PXE interface. A oneshot
//! unit runs `racker bootstrap` (every node excluded: it serves the rack
//! network, then hands over and exits); the test waits until that process
//! has exited, then a DHCP client in another network namespace, as a BMC,
//! gets its reserved address — from `racker-netboot.service`, which the
//! bootstrap enabled and started. A second run does the same with a
//! Lokomotive bootstrap (a stand-in lokoctl, never reached): the handover
//! writes `RACKER_MATCHBOX_GRPC` into the service's environment file and
//! the service answers a gRPC call (curl, HTTP/2, mutual TLS) from the
//! rack network.
//!
//! Needs root, `ip`, `systemd-nspawn`, `udhcpc` and the cached root (built
//! here when missing: needs `mmdebstrap` and a Debian mirror); skips
//! otherwise, except under `RACKER_REQUIRE_PRIVILEGED_TESTS=1`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin;

const NODES_CSV: &str = "\
Primary MAC address, BMC MAC address, Secondary MAC address, Node Type, Comments
02:11:22:33:55:00, 02:11:22:33:55:01, 02:11:22:33:55:30, red, mgmt node
02:11:22:33:55:10, 02:11:22:33:55:11, 02:11:22:33:55:40, red, node
";
const MGMT_SECONDARY: &str = "02:11:22:33:55:30";
const BMC_MAC: &str = "02:11:22:33:55:11";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn unit_text() -> String {
    fs::read_to_string(repo().join("installer/racker-netboot.service")).unwrap()
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    let test = "unit_passes_systemd_analyze_verify";
    let Some(analyze) = racker_testsupport::require_tool(test, "systemd-analyze") else {
        return;
    };
    let unit = unit_text();
    // Hardened as docs/operating.md says.
    for line in [
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_NET_RAW CAP_NET_ADMIN",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/opt/racker-state",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "ExecStart=/opt/bin/racker netboot serve",
    ] {
        assert!(unit.lines().any(|l| l == line), "missing {line:?}");
    }
    // verify also checks that ExecStart is executable: point it at the
    // binary under test.
    let dir = tempfile::tempdir().unwrap();
    let racker = cargo_bin("racker");
    let path = dir.path().join("racker-netboot.service");
    fs::write(
        &path,
        unit.replace("/opt/bin/racker", racker.to_str().unwrap()),
    )
    .unwrap();
    let out = Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Removes the network namespaces (and so the veth pair) on drop.
struct Net {
    ns: String,
    server_ns: String,
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in [&self.ns, &self.server_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Stops the container (SIGTERM: systemd halts) and reaps it.
struct Container(Child);

impl Drop for Container {
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(args: &[&str]) {
    let status = Command::new(args[0]).args(&args[1..]).status().unwrap();
    assert!(status.success(), "{args:?}: {status}");
}

fn systemd_root(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("RACKER_TEST_SYSTEMD_ROOT").map_or_else(
        || PathBuf::from("/var/cache/racker/test-systemd-root"),
        PathBuf::from,
    );
    if !dir.join(".racker-stamp").exists() {
        let built = Command::new(repo().join(".ci/test-systemd-root"))
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !built {
            racker_testsupport::skip_or_fail(
                test,
                "no systemd test root (.ci/test-systemd-root failed: mmdebstrap or the Debian mirror missing)",
            );
            return None;
        }
    }
    Some(dir)
}

const UDHCPC_SCRIPT: &str =
    "#!/bin/sh\ncase \"$1\" in bound|renew) echo \"$ip\" > \"$RACKER_LEASE_FILE\" ;; esac\n";

/// A booted container whose oneshot unit ran `racker bootstrap
/// <bootstrap_args>` to its end (every BMC unreachable: it serves the rack
/// network, hands over and exits); the PXE interface's peer waits in the
/// namespace `net.ns`.
struct Booted {
    /// Stopped on drop first (fields drop in order), then the namespaces
    /// go, then the files; the next test's container starts after that.
    _container: Container,
    net: Net,
    peer: String,
    log: PathBuf,
    state: PathBuf,
    started: Instant,
    exited: Instant,
    work: tempfile::TempDir,
    _turn: std::sync::MutexGuard<'static, u32>,
}

impl Booted {
    fn diag(&self) -> String {
        format!(
            "bootstrap: {}\ncontainer: {}",
            fs::read_to_string(self.state.join("bootstrap.out")).unwrap_or_default(),
            fs::read_to_string(&self.log).unwrap_or_default()
        )
    }
}

/// Boot the container and let its bootstrap run (`lokoctl`: a stand-in
/// bind-mounted at /opt/bin/lokoctl). `None`: skipped.
fn boot_and_bootstrap(test: &str, bootstrap_args: &str, lokoctl: Option<&str>) -> Option<Booted> {
    if !racker_testsupport::require_root(test) {
        return None;
    }
    racker_testsupport::require_tool(test, "ip")?;
    let nspawn = racker_testsupport::require_tool(test, "systemd-nspawn")?;
    let root = systemd_root(test)?;
    let work = tempfile::tempdir().unwrap();
    let oem = work.path().join("oem");
    let state = work.path().join("state");
    fs::create_dir_all(&oem).unwrap();
    fs::create_dir_all(&state).unwrap();
    fs::write(oem.join("nodes.csv"), NODES_CSV).unwrap();
    fs::write(oem.join("ipmi_user"), "admin\n").unwrap();
    fs::write(oem.join("ipmi_password"), "secret\n").unwrap();
    fs::set_permissions(
        oem.join("ipmi_password"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    // Stand-ins for the Flatcar files (the preflight checks them).
    let assets = state.join("assets/flatcar/current");
    fs::create_dir_all(&assets).unwrap();
    for name in [
        "flatcar_production_pxe.vmlinuz",
        "flatcar_production_pxe_image.cpio.gz",
        "flatcar_production_image.bin.bz2",
        "flatcar_production_image.bin.bz2.sig",
    ] {
        fs::write(assets.join(name), b"stand-in").unwrap();
    }
    let unit = work.path().join("racker-netboot.service");
    fs::write(&unit, unit_text()).unwrap();
    // "The operator runs racker bootstrap" (stdin not a terminal: no
    // wizard); its exit code lands in the state directory when it exited.
    // The node's BMC is not there: the bootstrap serves the rack network,
    // fails at the BMC check, hands the network over and exits.
    let bootstrap_unit = work.path().join("racker-test-bootstrap.service");
    fs::write(
        &bootstrap_unit,
        format!(
            "[Unit]\nDescription=racker bootstrap (test)\nAfter=systemd-networkd.service\n\
             [Service]\nType=oneshot\n\
             Environment=RACKER_OEM_DIR=/usr/share/oem RACKER_STATE_DIR=/opt/racker-state RACKER_LOKOCTL=/opt/bin/lokoctl\n\
             ExecStartPre=/bin/sh -c 'for i in $(seq 600); do ip -o link | grep -qi {MGMT_SECONDARY} && exit 0; sleep 0.1; done; exit 1'\n\
             ExecStart=/bin/sh -c '/opt/bin/racker bootstrap {bootstrap_args} --ipmi-timeout 1 --on-failure cancel > /opt/racker-state/bootstrap.out 2>&1; echo $? > /opt/racker-state/bootstrap.rc'\n"
        ),
    )
    .unwrap();
    let fake_lokoctl = work.path().join("lokoctl");
    fs::write(&fake_lokoctl, lokoctl.unwrap_or("#!/bin/sh\nexit 1\n")).unwrap();
    fs::set_permissions(
        &fake_lokoctl,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();

    // One container at a time (they share the cached root), and names
    // unique per test of this process.
    static SERIAL: std::sync::Mutex<u32> = std::sync::Mutex::new(0);
    let mut turn = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *turn += 1;
    let tag = (std::process::id() % 10_000) * 10 + *turn;
    let (link, peer) = (format!("rks{tag}a"), format!("rks{tag}b"));
    // The PXE interface waits in a namespace of its own until the
    // container (--private-network) is up, then moves into it.
    let net = Net {
        ns: format!("rksvc{tag}"),
        server_ns: format!("rksrv{tag}"),
    };
    run(&["ip", "netns", "add", &net.ns]);
    run(&["ip", "netns", "add", &net.server_ns]);
    run(&[
        "ip",
        "link",
        "add",
        &link,
        "address",
        MGMT_SECONDARY,
        "type",
        "veth",
        "peer",
        "name",
        &peer,
        "address",
        BMC_MAC,
    ]);
    run(&["ip", "link", "set", &peer, "netns", &net.ns]);
    run(&["ip", "link", "set", &link, "netns", &net.server_ns]);
    run(&["ip", "-n", &net.ns, "link", "set", "lo", "up"]);
    run(&["ip", "-n", &net.ns, "link", "set", &peer, "up"]);

    let bind = |host: &Path, inside: &str, ro: bool| {
        format!(
            "--bind{}={}:{inside}",
            if ro { "-ro" } else { "" },
            host.display()
        )
    };
    let log = work.path().join("container.log");
    let started = Instant::now();
    let container = Container(
        Command::new(nspawn)
            .arg("-D")
            .arg(&root)
            .args([
                "--volatile=overlay",
                "--boot",
                "--register=no",
                "--keep-unit",
                "--quiet",
            ])
            .arg("--private-network")
            .arg(bind(&cargo_bin("racker"), "/opt/bin/racker", true))
            .arg(bind(&fake_lokoctl, "/opt/bin/lokoctl", true))
            .arg(bind(&oem, "/usr/share/oem", true))
            .arg(bind(&state, "/opt/racker-state", false))
            .arg(bind(
                &unit,
                "/etc/systemd/system/racker-netboot.service",
                true,
            ))
            .arg(bind(
                &bootstrap_unit,
                "/etc/systemd/system/racker-test-bootstrap.service",
                true,
            ))
            .arg("systemd.wants=racker-test-bootstrap.service")
            .stdin(Stdio::null())
            .stdout(fs::File::create(&log).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    // Move the PXE interface into the container's network namespace (its
    // init is nspawn's child; nspawn's first child may be a short-lived
    // helper on a loaded machine, so retry with the child seen then).
    let deadline = Instant::now() + Duration::from_secs(30);
    let nspawn_pid = container.0.id();
    loop {
        let children = fs::read_to_string(format!("/proc/{nspawn_pid}/task/{nspawn_pid}/children"))
            .unwrap_or_default();
        if let Some(init) = children.split_whitespace().next() {
            let moved = Command::new("ip")
                .args(["-n", &net.server_ns, "link", "set", &link, "netns", init])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if moved {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the container never started (or its network namespace never took the link)"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let diag = || {
        format!(
            "bootstrap: {}\ncontainer: {}",
            fs::read_to_string(state.join("bootstrap.out")).unwrap_or_default(),
            fs::read_to_string(&log).unwrap_or_default()
        )
    };
    // The bootstrap process exits ...
    let deadline = Instant::now() + Duration::from_secs(120);
    while !state.join("bootstrap.rc").exists() {
        assert!(
            Instant::now() < deadline,
            "bootstrap never ended: {}",
            diag()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let exited = Instant::now();
    Some(Booted {
        work,
        state,
        log,
        net,
        peer,
        started,
        exited,
        _container: container,
        _turn: turn,
    })
}

/// The service the bootstrap started, a process of its own, serves:
/// `racker netboot serve`'s marker appears.
fn wait_for_service(b: &Booted) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(m) = fs::read(b.state.join("netboot/service.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "racker-netboot.service never served: {}",
            b.diag()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_service_keeps_serving_dhcp_after_bootstrap_exits() {
    let test = "the_service_keeps_serving_dhcp_after_bootstrap_exits";
    let Some(udhcpc) = racker_testsupport::require_tool(test, "udhcpc") else {
        return;
    };
    let Some(b) = boot_and_bootstrap(test, "--provision flatcar", None) else {
        return;
    };
    let (state, work, net, peer) = (&b.state, &b.work, &b.net, &b.peer);
    let diag = || b.diag();
    let deadline = Instant::now() + Duration::from_secs(120);
    let rc = fs::read_to_string(state.join("bootstrap.rc")).unwrap();
    assert_eq!(rc.trim(), "1", "{}", diag());
    let out = fs::read_to_string(state.join("bootstrap.out")).unwrap();
    assert!(out.contains("✓ Network: DHCP on 0.0.0.0:67"), "{}", diag());
    assert!(out.contains("BMC(s) could not be reached"), "{}", diag());
    assert!(
        out.contains("handed over to racker-netboot.service"),
        "{}",
        diag()
    );
    // The PXE interface's address is persistent.
    assert!(
        out.contains("/etc/systemd/network/10-pxe.network keeps the PXE interface's address"),
        "{}",
        diag()
    );
    // ... and the service it started, a process of its own, serves.
    let marker = wait_for_service(&b);
    // A Flatcar rack: no matchbox gRPC API in its environment.
    let env = fs::read_to_string(state.join("netboot/service.env")).unwrap();
    assert!(!env.contains("RACKER_MATCHBOX_GRPC="), "{env}");
    assert!(
        marker["dhcp"].as_str().is_some_and(|d| d.ends_with(":67")),
        "{marker}"
    );
    // A BMC on the rack network gets its reserved address.
    let script = work.path().join("udhcpc.sh");
    fs::write(&script, UDHCPC_SCRIPT).unwrap();
    fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let lease_file = work.path().join("lease");
    let mut leased = None;
    while Instant::now() < deadline {
        let status = Command::new("ip")
            .args(["netns", "exec", &net.ns])
            .arg(&udhcpc)
            .args(["-i", peer, "-f", "-q", "-n", "-t", "3", "-T", "1", "-s"])
            .arg(&script)
            .env("RACKER_LEASE_FILE", &lease_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        if status.success() {
            leased = fs::read_to_string(&lease_file).ok();
            break;
        }
    }
    let leased = leased.unwrap_or_else(|| panic!("no lease from the service: {}", diag()));
    let leases = fs::read_to_string(state.join("dhcp-leases.json")).unwrap_or_default();
    eprintln!(
        "{test}: container up to bootstrap exit {:.1} s; lease {} from racker-netboot.service {:.1} s after the bootstrap exited",
        (b.exited - b.started).as_secs_f64(),
        leased.trim(),
        b.exited.elapsed().as_secs_f64()
    );
    assert!(leases.contains(BMC_MAC), "{leases}");
    assert!(leases.contains(leased.trim()), "{leases}");
    drop(b);
}

/// A Lokomotive rack: the handover writes `RACKER_MATCHBOX_GRPC` into the
/// service's environment file, and `racker-netboot.service`, started by
/// systemd from the installed unit after the bootstrap exited, answers a
/// gRPC call (as lokoctl's Terraform provider would for day-2 `lokoctl
/// cluster apply`) on the management node's internal address.
#[test]
fn lokomotive_handover_keeps_the_grpc_api_under_systemd() {
    let test = "lokomotive_handover_keeps_the_grpc_api_under_systemd";
    let Some(curl) = racker_testsupport::require_tool(test, "curl") else {
        return;
    };
    // lokoctl is never reached (the BMC check fails first) but must exist.
    let Some(b) = boot_and_bootstrap(
        test,
        "--provision lokomotive --num-controllers 1",
        Some("#!/bin/sh\necho fake lokoctl \"$@\"\nexit 1\n"),
    ) else {
        return;
    };
    let (state, net, peer) = (&b.state, &b.net, &b.peer);
    let out = fs::read_to_string(state.join("bootstrap.out")).unwrap();
    assert!(
        out.contains("handed over to racker-netboot.service"),
        "{}",
        b.diag()
    );
    let env = fs::read_to_string(state.join("netboot/service.env")).unwrap();
    assert!(
        env.lines()
            .any(|l| l == "RACKER_MATCHBOX_GRPC=172.24.213.1:8081"),
        "{env}\n{}",
        b.diag()
    );
    wait_for_service(&b);
    // From the rack network: the API on 172.24.213.1:8081, mutual TLS with
    // the client certificate lokoctl uses, one ProfileList call.
    run(&[
        "ip",
        "-n",
        &net.ns,
        "addr",
        "add",
        "172.24.213.250/24",
        "dev",
        peer,
    ]);
    let headers = b.work.path().join("headers");
    let curl_args = common::grpc_profile_list_args(
        state,
        "172.24.213.1:8081",
        &b.work.path().join("frame"),
        &headers,
        5,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let answered = loop {
        let status = Command::new("ip")
            .args(["netns", "exec", &net.ns])
            .arg(&curl)
            .args(&curl_args)
            .status()
            .unwrap();
        if status.success() {
            break fs::read_to_string(&headers).unwrap_or_default();
        }
        assert!(
            Instant::now() < deadline,
            "no gRPC answer from racker-netboot.service: {}",
            b.diag()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(answered.starts_with("HTTP/2 200"), "{answered}");
    assert!(answered.contains("grpc-status: 0"), "{answered}");
    eprintln!(
        "{test}: gRPC answered by racker-netboot.service {:.1} s after the bootstrap exited",
        b.exited.elapsed().as_secs_f64()
    );
}
