//! Chassis status against many `ipmi_sim` BMCs on loopback addresses:
//! racker's fan-out vs FreeIPMI (`ipmipower --stat`, `ipmi-chassis
//! --get-chassis-status`) vs sequential `ipmitool`, in the same run.
//!
//! `cargo bench -p racker-ipmi --bench fanout` (RACKER_BENCH_BMCS=200 by
//! default; needs ipmi_sim, and freeipmi-tools / ipmitool for the peers).
//! Prints wall times, per-BMC session setup time and peak memory.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::{Ipv4Addr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use racker_ipmi::{
    BmcAddress, CipherPreference, CipherSuite, Credentials, Session, SessionOptions,
};

const PER_PROCESS: usize = 50;

struct Sims {
    children: Vec<Child>,
    _dir: tempfile::TempDir,
    bmcs: Vec<BmcAddress>,
}

impl Drop for Sims {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn ip(i: usize) -> String {
    format!("127.0.{}.{}", 91 + i / 250, 1 + i % 250)
}

fn start(bin: &std::path::Path, n: usize, port: u16) -> Sims {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("chassis.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\ncase \"$1\" in get) echo power:1;; esac\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut children = Vec::new();
    let mut bmcs = Vec::new();
    for (p, chunk) in (0..n).collect::<Vec<_>>().chunks(PER_PROCESS).enumerate() {
        let mut conf = String::from("name \"bench\"\n");
        let mut emu = String::from("mc_setbmc 0x20\n");
        for (j, i) in chunk.iter().enumerate() {
            let mc = 0x20 + 2 * j;
            conf.push_str(&format!(
                "set_working_mc {mc:#x}\n startlan 1\n  addr {} {port}\n  priv_limit admin\n  \
                 allowed_auths_admin none md5 straight\n  guid a123456789abcdefa1234567{i:08x}\n endlan\n \
                 chassis_control \"{}\"\n user 2 true \"admin\" \"secret\" admin 10 none md5 straight\n",
                ip(*i),
                script.display()
            ));
            emu.push_str(&format!(
                "mc_add {mc:#x} 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02\nmc_enable {mc:#x}\n"
            ));
            bmcs.push(BmcAddress::new(ip(*i), port));
        }
        let c = dir.path().join(format!("lan{p}.conf"));
        let e = dir.path().join(format!("bmc{p}.emu"));
        std::fs::write(&c, conf).unwrap();
        std::fs::write(&e, emu).unwrap();
        children.push(
            Command::new(bin)
                .arg("-n")
                .arg("-c")
                .arg(&c)
                .arg("-f")
                .arg(&e)
                .arg("-s")
                .arg(dir.path().join(format!("state{p}")))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
    }
    let sims = Sims {
        children,
        _dir: dir,
        bmcs,
    };
    let pkt: [u8; 23] = [
        0x06, 0x00, 0xff, 0x07, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x09, 0x20, 0x18, 0xc8, 0x81, 0x04,
        0x38, 0x8e, 0x04, 0xb1,
    ];
    let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    for b in &sims.bmcs {
        let ok = (0..100).any(|_| {
            let _ = sock.send_to(&pkt, (b.host(), b.port()));
            let mut buf = [0u8; 512];
            sock.recv_from(&mut buf).is_ok()
        });
        assert!(ok, "ipmi_sim not answering on {b}");
    }
    sims
}

fn peak_rss_kib() -> u64 {
    racker_testsupport::proc_status_kib("VmHWM")
}

fn racker_round(
    rt: &tokio::runtime::Runtime,
    bmcs: &[BmcAddress],
    concurrency: usize,
) -> (Duration, Vec<Duration>, usize) {
    let creds = Credentials::new("admin", "secret");
    let opts = SessionOptions::default()
        .cipher(CipherPreference::Only(CipherSuite::Suite3))
        .timeout(Duration::from_secs(5))
        .retries(3);
    let targets: Vec<(usize, BmcAddress)> = bmcs.iter().cloned().enumerate().collect();
    let start = Instant::now();
    let results: Vec<_> = rt.block_on(async {
        racker_ipmi::fan_out(targets, concurrency, |bmc| {
            let creds = creds.clone();
            let opts = opts.clone();
            async move {
                let t = Instant::now();
                let mut s = Session::connect(&bmc, &creds, &opts).await?;
                let setup = t.elapsed();
                let st = s.chassis_status().await?;
                s.close().await?;
                Ok((setup, st.power_on))
            }
        })
        .collect()
        .await
    });
    let total = start.elapsed();
    let mut setups = Vec::new();
    let mut failures = 0;
    for r in results {
        match r.result {
            Ok((setup, true)) => setups.push(setup),
            Ok((_, false)) => failures += 1,
            Err(e) => {
                eprintln!("racker: {e}");
                failures += 1
            }
        }
    }
    (total, setups, failures)
}

fn time_cmd(cmd: &mut Command) -> (Duration, bool) {
    let start = Instant::now();
    let ok = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    (start.elapsed(), ok)
}

fn main() {
    let n: usize = std::env::var("RACKER_BENCH_BMCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let Some(bin) = racker_testsupport::find_tool("ipmi_sim") else {
        eprintln!("fanout bench skipped: ipmi_sim is not installed");
        return;
    };
    let port = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sims = start(&bin, n, port);
    println!(
        "{n} ipmi_sim BMCs ({} processes) on 127.0.91.x:{port}",
        sims.children.len()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rss_before = peak_rss_kib();
    let mut best = Duration::MAX;
    for round in 0..3 {
        let (total, mut setups, failures) = racker_round(&rt, &sims.bmcs, n);
        setups.sort();
        let median = setups.get(setups.len() / 2).copied().unwrap_or_default();
        let mean = setups.iter().sum::<Duration>() / u32::try_from(setups.len().max(1)).unwrap();
        println!(
            "racker fan-out (concurrency {n}) round {round}: {:.3} s, {failures} failures; session setup per BMC mean {:.1} ms, median {:.1} ms, max {:.1} ms",
            total.as_secs_f64(),
            mean.as_secs_f64() * 1e3,
            median.as_secs_f64() * 1e3,
            setups.last().copied().unwrap_or_default().as_secs_f64() * 1e3
        );
        best = best.min(total);
    }
    let (seq_total, setups, failures) = racker_round(&rt, &sims.bmcs[..n.min(50)], 1);
    let mean = setups.iter().sum::<Duration>() / u32::try_from(setups.len().max(1)).unwrap();
    println!(
        "racker sequential over {} BMCs: {:.3} s ({:.1} ms per BMC, setup {:.1} ms), {failures} failures",
        n.min(50),
        seq_total.as_secs_f64(),
        seq_total.as_secs_f64() * 1e3 / n.min(50) as f64,
        mean.as_secs_f64() * 1e3
    );
    println!(
        "racker peak RSS: {} KiB (before fan-out {} KiB)",
        peak_rss_kib(),
        rss_before
    );

    let hosts: Vec<String> = sims
        .bmcs
        .iter()
        .map(|b| format!("{}:{}", b.host(), b.port()))
        .collect();
    let hostlist = hosts.join(",");
    if let Some(ipmipower) = racker_testsupport::find_tool("ipmipower") {
        for _ in 0..2 {
            let (t, ok) = time_cmd(Command::new(&ipmipower).args([
                "-h",
                &hostlist,
                "-u",
                "admin",
                "-p",
                "secret",
                "-D",
                "LAN_2_0",
                "-I",
                "3",
                "-W",
                "opensesspriv",
                "--stat",
            ]));
            println!(
                "FreeIPMI ipmipower --stat: {:.3} s (exit ok: {ok})",
                t.as_secs_f64()
            );
        }
    }
    if let Some(chassis) = racker_testsupport::find_tool("ipmi-chassis") {
        let fanout = n.min(1024).to_string();
        let (t, ok) = time_cmd(Command::new(&chassis).args([
            "-h",
            &hostlist,
            "-u",
            "admin",
            "-p",
            "secret",
            "-l",
            "ADMIN",
            "-D",
            "LAN_2_0",
            "-I",
            "3",
            "-W",
            "opensesspriv",
            "-F",
            &fanout,
            "--get-chassis-status",
        ]));
        println!(
            "FreeIPMI ipmi-chassis --get-chassis-status -F {fanout}: {:.3} s (exit ok: {ok})",
            t.as_secs_f64()
        );
    }
    if let Some(ipmitool) = racker_testsupport::find_tool("ipmitool") {
        let start = Instant::now();
        let mut fails = 0;
        for b in &sims.bmcs {
            let port = b.port().to_string();
            let (_, ok) = time_cmd(Command::new(&ipmitool).args([
                "-I",
                "lanplus",
                "-C",
                "3",
                "-H",
                b.host(),
                "-p",
                &port,
                "-U",
                "admin",
                "-P",
                "secret",
                "chassis",
                "status",
            ]));
            if !ok {
                fails += 1;
            }
        }
        println!(
            "sequential ipmitool x{n}: {:.3} s ({fails} failures)",
            start.elapsed().as_secs_f64()
        );
    }
    println!("best racker fan-out: {:.3} s", best.as_secs_f64());
}
