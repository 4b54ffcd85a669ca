//! `racker bootstrap` against a separate `racker sim up --pxe-dhcp` rack
//! (the two-process setup an operator tries first), non-interactive and in a
//! real pseudo-terminal (rexpect) for the wizard: every choice not given as
//! a flag is asked, and the public-IP INI is edited in `$EDITOR`, prefilled
//! with one section per secondary MAC, validated, and edited again after an
//! error.

use std::path::Path;
use std::process::{Command, Stdio};

const STATIC_IP: &str = "203.0.113.77";

fn secondary_macs(nodes_csv: &str) -> Vec<String> {
    nodes_csv
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(',').nth(2).unwrap().trim().to_owned())
        .collect()
}

fn write_exec(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A simulated rack served by `racker sim up --pxe-dhcp` (killed on drop),
/// with this machine as its management node.
struct SimRack {
    dir: tempfile::TempDir,
    oem: std::path::PathBuf,
    state: std::path::PathBuf,
    net: std::path::PathBuf,
    dhcp: std::net::SocketAddr,
    http: std::net::SocketAddr,
    secondaries: Vec<String>,
    sim: std::process::Child,
}

impl Drop for SimRack {
    fn drop(&mut self) {
        let _ = self.sim.kill();
        let _ = self.sim.wait();
    }
}

impl SimRack {
    fn command(&self) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("racker"));
        cmd.env_clear()
            .env("RACKER_OEM_DIR", &self.oem)
            .env("RACKER_STATE_DIR", &self.state)
            .env("RACKER_SYS_CLASS_NET", &self.net);
        cmd
    }

    /// `racker bootstrap` in a pseudo-terminal.
    fn bootstrap(&self, extra: &[&str]) -> rexpect::session::PtySession {
        let mut cmd = self.command();
        cmd.env("TERM", "xterm")
            .arg("bootstrap")
            .args(["--install-timeout", "30"])
            .args(["--dhcp-listen", &self.dhcp.to_string()])
            .args(["--http-listen", &self.http.to_string()])
            .args(extra);
        rexpect::session::spawn_command(cmd, Some(60_000)).unwrap()
    }
}

fn sim_rack(count: usize, faults: &[&str]) -> SimRack {
    let dir = tempfile::tempdir().unwrap();
    let (oem, state, net) = (
        dir.path().join("oem"),
        dir.path().join("state"),
        dir.path().join("net"),
    );
    let (dhcp, http) = (
        racker_testsupport::free_udp(),
        racker_testsupport::free_tcp(),
    );
    let bin = assert_cmd::cargo::cargo_bin("racker");
    let env = |cmd: &mut Command| {
        cmd.env_clear()
            .env("RACKER_OEM_DIR", &oem)
            .env("RACKER_STATE_DIR", &state)
            .env("RACKER_SYS_CLASS_NET", &net);
    };
    let mut sim = Command::new(&bin);
    env(&mut sim);
    sim.args(["sim", "up", "--count", &count.to_string()])
        .args(["--ipmi-port", "0", "--install-delay-ms", "0"]);
    for f in faults {
        sim.args(["--fault", f]);
    }
    let sim = sim
        .arg("--pxe-dhcp")
        .arg(dhcp.to_string())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let table = state.join("sim-bmcs.json");
    let mut rack = SimRack {
        dir,
        oem,
        state,
        net,
        dhcp,
        http,
        secondaries: Vec::new(),
        sim,
    };
    // The marker that sends racker's IPMI to the table is written after
    // the table: wait for both (a loaded machine shows the gap).
    let marker = rack.state.join("sim-rack.pid");
    for _ in 0..400 {
        if table.exists() && marker.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert!(
        table.exists() && marker.exists(),
        "racker sim up did not write its BMC table and marker"
    );
    let csv = std::fs::read_to_string(rack.oem.join("nodes.csv")).unwrap();
    rack.secondaries = secondary_macs(&csv);
    // This machine is the generated management node (first row).
    std::fs::create_dir_all(rack.net.join("eth1")).unwrap();
    std::fs::write(rack.net.join("eth1/address"), &rack.secondaries[0]).unwrap();
    let assets = rack.state.join("assets/flatcar/current");
    std::fs::create_dir_all(&assets).unwrap();
    std::fs::write(
        assets.join("flatcar_production_pxe.vmlinuz"),
        vec![1u8; 4096],
    )
    .unwrap();
    std::fs::write(
        assets.join("flatcar_production_pxe_image.cpio.gz"),
        vec![2u8; 8192],
    )
    .unwrap();
    // What flatcar-install fetches: the bootstrap's preflight checks it.
    for (name, size) in [
        ("flatcar_production_image.bin.bz2", 1024),
        ("flatcar_production_image.bin.bz2.sig", 64),
    ] {
        std::fs::write(assets.join(name), vec![3u8; size]).unwrap();
    }
    rack
}

#[test]
fn wizard_asks_every_choice_and_edits_the_public_ip_ini() {
    let rack = sim_rack(3, &[]);
    let (state, secondaries) = (&rack.state, &rack.secondaries);
    // The editor: keeps what it was given, writes an invalid INI the first
    // time and a valid one (a static address for the first worker) after.
    let work = rack.dir.path().join("editor");
    std::fs::create_dir_all(&work).unwrap();
    let worker = &secondaries[1];
    std::fs::write(
        work.join("1.ini"),
        format!("[{worker}]\nip_addr = 999.0.113.77/24\n"),
    )
    .unwrap();
    std::fs::write(
        work.join("2.ini"),
        format!(
            "[{worker}]\nip_addr = {STATIC_IP}/24\ngateway = 203.0.113.1\ndns = 203.0.113.53\n"
        ),
    )
    .unwrap();
    let editor = work.join("editor.sh");
    write_exec(
        &editor,
        &format!(
            "#!/bin/sh\nd='{}'\nn=$(cat \"$d/count\" 2>/dev/null || echo 0)\nn=$((n+1))\necho $n > \"$d/count\"\ncp \"$1\" \"$d/seen-$n.ini\"\ncp \"$d/$n.ini\" \"$1\"\n",
            work.display()
        ),
    );

    let mut p = {
        let mut cmd = rack.command();
        cmd.env("TERM", "xterm")
            .env("EDITOR", &editor)
            .arg("bootstrap")
            .args(["--on-failure", "cancel", "--install-timeout", "30"])
            .args(["--dhcp-listen", &rack.dhcp.to_string()])
            .args(["--http-listen", &rack.http.to_string()]);
        rexpect::session::spawn_command(cmd, Some(60_000)).unwrap()
    };
    p.exp_string("What do you want to provision?").unwrap();
    p.send("\r").unwrap(); // the default: Flatcar
    p.flush().unwrap();
    p.exp_string("Internal subnet").unwrap();
    p.send("\r").unwrap(); // the default prefix
    p.flush().unwrap();
    p.exp_string("Public addresses by DHCP?").unwrap();
    p.send("n").unwrap(); // no: edit static addresses
    p.flush().unwrap();
    p.exp_string("999.0.113.77").unwrap(); // the error names the bad value
    p.exp_string("Edit again?").unwrap();
    p.send("y").unwrap();
    p.flush().unwrap();
    p.exp_string("provisioned with flatcar").unwrap();
    p.exp_eof().unwrap();

    // The editor saw the prefilled template: one section per secondary MAC.
    let seen = std::fs::read_to_string(work.join("seen-1.ini")).unwrap();
    for mac in secondaries {
        assert!(
            seen.contains(&format!("[{mac}]")),
            "{mac} missing in\n{seen}"
        );
    }
    // Its second text was kept and rendered into the worker's network unit.
    let saved = std::fs::read_to_string(state.join("public-ips.ini")).unwrap();
    assert!(saved.contains(STATIC_IP), "{saved}");
    let rendered = grep_dir(&state.join("cluster"), &format!("{STATIC_IP}/24"));
    assert!(!rendered.is_empty(), "the static address was not rendered");
    // And the state says every node was provisioned.
    let st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("bootstrap.json")).unwrap()).unwrap();
    assert_eq!(st["nodes"].as_object().unwrap().len(), 2, "{st}");
}

/// Files below `dir` containing `needle`.
fn grep_dir(dir: &Path, needle: &str) -> Vec<std::path::PathBuf> {
    let mut hits = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return hits;
    };
    for e in entries.filter_map(Result::ok) {
        let p = e.path();
        if p.is_dir() {
            hits.extend(grep_dir(&p, needle));
        } else if std::fs::read_to_string(&p).is_ok_and(|t| t.contains(needle)) {
            hits.push(p);
        }
    }
    hits
}

/// `--on-failure ask` on a terminal: the prompt names the failed node and
/// `e` excludes it; the rest completes.
#[test]
fn on_failure_ask_prompts_and_excludes() {
    // `racker sim up --count` numbers its nodes 02:52:4b:00:00:<row>.
    let failing = "02:52:4b:00:00:02".to_owned();
    let rack = sim_rack(4, &[&format!("{failing}=install-fail")]);
    let csv = std::fs::read_to_string(rack.oem.join("nodes.csv")).unwrap();
    assert!(csv.contains(&failing), "{csv}");
    // Every wizard choice given as a flag: no prompt but the failure's.
    let mut p = rack.bootstrap(&[
        "--provision",
        "flatcar",
        "--subnet-prefix",
        "172.24.213",
        "--public-ips",
        "dhcp",
    ]);
    let before = p
        .exp_string(&format!(
            "1 node(s) failed: {failing}. [r]etry, [e]xclude nodes, [c]ancel?"
        ))
        .unwrap();
    assert!(!before.contains("Public addresses"), "{before}");
    assert!(!before.contains("What do you want"), "{before}");
    p.send_line("e").unwrap();
    p.exp_string(&format!("Excluded 1 node(s) from the cluster: {failing}"))
        .unwrap();
    p.exp_string("2 node(s) provisioned with flatcar").unwrap();
    p.exp_eof().unwrap();
    let st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rack.state.join("bootstrap.json")).unwrap()).unwrap();
    assert_eq!(st["nodes"][&failing]["state"], "excluded", "{st}");
}

/// Every Lokomotive choice through the wizard (arrow keys, typed text, a
/// hidden secret) ends up in the rendered cluster directory. The fake
/// lokoctl fails `cluster apply`, so the run stops after the PXE stage.
#[test]
fn wizard_lokomotive_choices_reach_the_rendered_config() {
    let rack = sim_rack(5, &[]);
    let lokoctl = rack.dir.path().join("lokoctl");
    write_exec(&lokoctl, "#!/bin/sh\necho \"fake lokoctl $*\"\nexit 1\n");
    let mut p = {
        let mut cmd = rack.command();
        cmd.env("TERM", "xterm")
            .env("RACKER_LOKOCTL", &lokoctl)
            .arg("bootstrap")
            .args(["--on-failure", "cancel", "--install-timeout", "30"])
            .args(["--dhcp-listen", &rack.dhcp.to_string()])
            .args(["--http-listen", &rack.http.to_string()])
            // Lokomotive's gRPC API on loopback, the cluster's names and
            // kubeconfig link in the test's folder (never the machine's).
            .args(["--matchbox-grpc", "127.0.0.1:0"])
            .arg("--hosts-file")
            .arg(rack.dir.path().join("hosts"))
            .arg("--kubeconfig-link")
            .arg(rack.dir.path().join("kube/config"));
        rexpect::session::spawn_command(cmd, Some(60_000)).unwrap()
    };
    const DOWN: &str = "\x1b[B";
    let mut answer = |prompt: &str, keys: &str| {
        p.exp_string(prompt).unwrap();
        p.send(keys).unwrap();
        p.flush().unwrap();
    };
    answer("What do you want to provision?", &format!("{DOWN}\r"));
    answer("Cluster name", "rack7\r");
    answer("Number of controllers", &format!("{DOWN}\r")); // 1
    answer("Node type of the controllers", "\r"); // any
    answer("Kubernetes domain", "k8s.example.test\r");
    answer("Install the Lokomotive web UI?", "y");
    answer("Storage provider", &format!("{DOWN}{DOWN}\r")); // rook
    answer("Node type of the storage nodes", "\r");
    answer("Number of storage nodes", "1\r");
    answer("Back up the cluster to S3 with Velero?", "y");
    answer("S3 bucket", "rack7-backups\r");
    answer("AWS region of the bucket", "eu-central-1\r");
    answer("Backup name", "\r");
    answer("AWS access key id", "AKIATESTKEY\r");
    answer("AWS secret access key", "s3cr3t-value\r");
    answer("Internal subnet", "\r");
    answer("Public addresses by DHCP?", "y");
    p.exp_string("lokoctl cluster apply failed").unwrap();
    let rest = p.exp_eof().unwrap();
    assert!(!rest.contains("s3cr3t-value"), "the secret was echoed");

    let cluster = rack.state.join("cluster");
    let read = |name: &str| std::fs::read_to_string(cluster.join(name)).unwrap();
    let vars = read("lokocfg.vars");
    for expected in [
        "\"rack7\"",
        "\"k8s.example.test\"",
        "\"rack7-backups\"",
        "\"eu-central-1\"",
        "\"lokomotive\"",
    ] {
        assert!(vars.contains(expected), "{expected} not in\n{vars}");
    }
    // One controller.
    let controllers = vars
        .lines()
        .find(|l| l.starts_with("controller_macs"))
        .unwrap();
    assert_eq!(controllers.matches(':').count(), 5, "{controllers}");
    assert!(cluster.join("web-ui.lokocfg").exists());
    assert!(cluster.join("rook.lokocfg").exists());
    assert!(cluster.join("velero.lokocfg").exists());
    let credentials = read("backup-credentials");
    assert!(credentials.contains("AKIATESTKEY") && credentials.contains("s3cr3t-value"));
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(cluster.join("backup-credentials"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "backup-credentials is readable by others");
}

/// Plain (no terminal): the failed node is excluded, the others finish.
#[test]
fn bootstrap_against_racker_sim_up() {
    let rack = sim_rack(4, &["02:52:4b:00:00:02=install-fail"]);
    let out = rack
        .command()
        .arg("bootstrap")
        .args(["--provision", "flatcar", "--on-failure", "exclude"])
        .args(["--install-timeout", "30"])
        .args(["--dhcp-listen", &rack.dhcp.to_string()])
        .args(["--http-listen", &rack.http.to_string()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    // Progress is on stderr; stdout has the summary table.
    let stdout = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}");
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("✓ flatcar provisioned in"), "{summary}");
    assert!(summary.contains("excluded"), "{summary}");
    for expected in [
        "× OS installation via PXE (2/3)",
        "Excluded 1 node(s) from the cluster: 02:52:4b:00:00:02",
        "✓ 2 node(s) provisioned with flatcar, OS up on 2",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} missing in\n{stdout}"
        );
    }
}
