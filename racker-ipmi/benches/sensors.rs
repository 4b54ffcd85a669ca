//! Sensors of many `ipmi_sim` BMCs with SDRs: racker (cold and with the SDR
//! cache) vs FreeIPMI `ipmi-sensors` (cold and with its SDR cache) over the
//! same host list, in the same run; then one exporter poll of every BMC
//! and one HTTP scrape, with the process's peak memory.
//!
//! `cargo bench -p racker-ipmi --bench sensors` (RACKER_BENCH_BMCS, default
//! 200; 63 is measured as well). Needs ipmi_sim; freeipmi-tools for the peer.
//! A measurement program (harness = false): it prints numbers and asserts
//! nothing about time.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::{Ipv4Addr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use racker_ipmi::exporter::{ExportTarget, Exporter, ExporterOptions};
use racker_ipmi::monitor;
use racker_ipmi::sdr::{SdrCache, full_sensor_record};
use racker_ipmi::{
    BmcAddress, CipherPreference, CipherSuite, Credentials, Session, SessionOptions,
};

const PER_PROCESS: usize = 25;

/// (number, type, unit, M, raw, name): a typical small server.
const SENSORS: [(u8, u8, u8, i16, u8, &str); 8] = [
    (0x30, 0x01, 1, 1, 45, "CPU1 Temp"),
    (0x31, 0x01, 1, 1, 47, "CPU2 Temp"),
    (0x32, 0x01, 1, 1, 24, "Inlet Temp"),
    (0x40, 0x04, 18, 50, 100, "FAN1"),
    (0x41, 0x04, 18, 50, 98, "FAN2"),
    (0x50, 0x02, 4, 6, 200, "12V"),
    (0x51, 0x02, 4, 2, 165, "3.3V"),
    (0x60, 0x08, 6, 2, 100, "PSU1 Power"),
];

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
    format!("127.0.{}.{}", 95 + i / 250, 1 + i % 250)
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:#04x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn start(bin: &std::path::Path, n: usize, port: u16) -> Sims {
    let dir = tempfile::tempdir().unwrap();
    // Like a real BMC, each answers Get Chassis Status from a chassis_control program.
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
            for (k, (num, ty, unit, m, raw, name)) in SENSORS.iter().enumerate() {
                let mut rec = full_sensor_record(
                    k as u16 + 1,
                    *num,
                    *ty,
                    *unit,
                    *m,
                    if *unit == 4 { -2 } else { 0 },
                    [250, 240, 230, 0, 1, 2],
                    name,
                );
                rec[5] = mc as u8;
                emu.push_str(&format!("main_sdr_add {mc:#x} {}\n", hex(&rec)));
                emu.push_str(&format!("sensor_add {mc:#x} 0 {num:#x} {ty:#x} 0x01\n"));
                emu.push_str(&format!("sensor_set_value {mc:#x} 0 {num:#x} {raw:#x} 0\n"));
            }
            emu.push_str(&format!("sel_enable {mc:#x} 1000 0x0a\n"));
            bmcs.push(BmcAddress::new(ip(*i), port));
        }
        let c = dir.path().join(format!("lan{p}.conf"));
        let e = dir.path().join(format!("bmc{p}.emu"));
        std::fs::write(&c, conf).unwrap();
        std::fs::write(&e, emu).unwrap();
        children.push(
            Command::new(bin)
                .args(["-n", "-c"])
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

fn opts() -> SessionOptions {
    SessionOptions::default()
        .cipher(CipherPreference::Only(CipherSuite::Suite3))
        .timeout(Duration::from_secs(5))
        .retries(3)
}

/// Connect, read every sensor, close, on every BMC at once.
fn racker_round(
    rt: &tokio::runtime::Runtime,
    bmcs: &[BmcAddress],
    cache: Option<&Arc<Mutex<SdrCache>>>,
) -> (Duration, usize, usize) {
    let creds = Credentials::new("admin", "secret");
    let targets: Vec<(usize, BmcAddress)> = bmcs.iter().cloned().enumerate().collect();
    let start = Instant::now();
    let results: Vec<_> = rt.block_on(async {
        racker_ipmi::fan_out(targets, bmcs.len(), |bmc| {
            let creds = creds.clone();
            let cache = cache.cloned();
            async move {
                let mut s = Session::connect(&bmc, &creds, &opts()).await?;
                let r = monitor::sensors(&mut s, cache.as_deref()).await?;
                s.close().await?;
                Ok(r.len())
            }
        })
        .collect()
        .await
    });
    let total = start.elapsed();
    let mut sensors = 0;
    let mut failures = 0;
    for r in results {
        match r.result {
            Ok(n) => sensors += n,
            Err(e) => {
                eprintln!("racker: {e}");
                failures += 1;
            }
        }
    }
    (total, sensors, failures)
}

fn ipmi_sensors(
    bin: &std::path::Path,
    bmcs: &[BmcAddress],
    cache_dir: &std::path::Path,
) -> (Duration, bool, usize) {
    let hosts: Vec<String> = bmcs
        .iter()
        .map(|b| format!("{}:{}", b.host(), b.port()))
        .collect();
    let fanout = bmcs.len().min(1024).to_string();
    let start = Instant::now();
    let out = Command::new(bin)
        .args([
            "-h",
            &hosts.join(","),
            "-u",
            "admin",
            "-p",
            "secret",
            "-l",
            "ADMIN",
        ])
        .args([
            "-D",
            "LAN_2_0",
            "-I",
            "3",
            "-W",
            "opensesspriv",
            "-F",
            &fanout,
        ])
        .args([
            "--quiet-cache",
            "--sdr-cache-recreate",
            "--sdr-cache-directory",
        ])
        .arg(cache_dir)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains('|') && !l.contains("ID  |") && !l.contains("Name"))
        .count();
    (start.elapsed(), out.status.success(), lines)
}

fn rss(field: &str) -> u64 {
    racker_testsupport::proc_status_kib(field)
}

fn main() {
    let n: usize = std::env::var("RACKER_BENCH_BMCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let Some(bin) = racker_testsupport::find_tool("ipmi_sim") else {
        eprintln!("sensors bench skipped: ipmi_sim is not installed");
        return;
    };
    let port = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sims = start(&bin, n, port);
    println!(
        "{n} ipmi_sim BMCs ({} processes, {} SDRs/sensors each) on 127.0.95.x:{port}",
        sims.children.len(),
        SENSORS.len()
    );
    // Let ipmi_sim apply its sensor values.
    std::thread::sleep(Duration::from_secs(1));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let freeipmi = racker_testsupport::find_tool("ipmi-sensors");
    let sizes: Vec<usize> = if std::env::var_os("RACKER_BENCH_EXPORTER_ONLY").is_some() {
        Vec::new()
    } else {
        vec![63, n]
    };
    for size in sizes {
        let size = size.min(n);
        let bmcs = &sims.bmcs[..size];
        let cache = Arc::new(Mutex::new(SdrCache::new()));
        for round in 0..2 {
            let (t, sensors, failures) = racker_round(&rt, bmcs, None);
            println!(
                "[{size} BMCs] racker sensors, no SDR cache, round {round}: {:.3} s ({sensors} readings, {failures} failures)",
                t.as_secs_f64()
            );
        }
        let (t, _, f) = racker_round(&rt, bmcs, Some(&cache));
        println!(
            "[{size} BMCs] racker sensors, filling the SDR cache: {:.3} s ({f} failures)",
            t.as_secs_f64()
        );
        for round in 0..2 {
            let (t, sensors, failures) = racker_round(&rt, bmcs, Some(&cache));
            println!(
                "[{size} BMCs] racker sensors, SDR cache reused, round {round}: {:.3} s ({sensors} readings, {failures} failures)",
                t.as_secs_f64()
            );
        }
        if let Some(ipmi_sensors_bin) = &freeipmi {
            let dir = tempfile::tempdir().unwrap();
            let (t, ok, lines) = ipmi_sensors(ipmi_sensors_bin, bmcs, dir.path());
            println!(
                "[{size} BMCs] FreeIPMI ipmi-sensors -F {size}, empty SDR cache: {:.3} s (exit ok: {ok}, {lines} lines)",
                t.as_secs_f64()
            );
            for round in 0..2 {
                let (t, ok, lines) = ipmi_sensors(ipmi_sensors_bin, bmcs, dir.path());
                println!(
                    "[{size} BMCs] FreeIPMI ipmi-sensors -F {size}, SDR cache reused, round {round}: {:.3} s (exit ok: {ok}, {lines} lines)",
                    t.as_secs_f64()
                );
            }
        }
    }

    // The exporter: one poll of every BMC (cold, then with the SDR cache),
    // and one scrape over HTTP.
    let (t, sensors, failures) = racker_round(&rt, &sims.bmcs[..1], None);
    println!(
        "[1 BMC] racker sensors before the exporter: {:.3} s ({sensors} readings, {failures} failures)",
        t.as_secs_f64()
    );
    let rss_before = rss("VmHWM");
    let targets: Vec<ExportTarget> = sims
        .bmcs
        .iter()
        .enumerate()
        .map(|(i, b)| ExportTarget {
            node: format!("node-{i}"),
            mac: format!("02:00:00:00:{:02x}:{:02x}", i / 256, i % 256),
            bmc: b.clone(),
        })
        .collect();
    let exporter = Arc::new(Exporter::new(
        targets,
        Credentials::new("admin", "secret"),
        ExporterOptions {
            session: opts(),
            bmc_timeout: Duration::from_secs(10),
            concurrency: std::env::var("RACKER_BENCH_EXPORTER_CONCURRENCY")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(n),
        },
    ));
    for what in ["cold", "SDR cache reused", "SDR cache reused"] {
        let t = Instant::now();
        rt.block_on(exporter.poll());
        let text = exporter.render();
        let down = text
            .lines()
            .filter(|l| l.starts_with("ipmi_up{") && l.ends_with(" 0"))
            .count();
        let mut slow: Vec<f64> = text
            .lines()
            .filter(|l| l.starts_with("ipmi_scrape_duration_seconds{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect();
        slow.sort_by(|a, b| b.total_cmp(a));
        println!(
            "[{n} BMCs] exporter poll ({what}): {:.3} s; {down} ipmi_up series at 0; slowest BMCs {:?} s",
            t.elapsed().as_secs_f64(),
            &slow[..slow.len().min(5)]
        );
        if let Some((bmc, e)) = exporter.errors().first() {
            println!("  first failure: {bmc}: {e}");
        }
    }
    let (addr, body_len, scrape) = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(racker_ipmi::exporter::serve(listener, exporter.clone()));
        let url = format!("http://{addr}/metrics");
        let mut best = Duration::MAX;
        let mut len = 0;
        for _ in 0..5 {
            let t = Instant::now();
            let body = reqwest::get(&url).await.unwrap().text().await.unwrap();
            best = best.min(t.elapsed());
            len = body.len();
        }
        server.abort();
        (addr, len, best)
    });
    println!(
        "[{n} BMCs] exporter scrape of http://{addr}/metrics: {:.1} ms best of 5, {body_len} bytes",
        scrape.as_secs_f64() * 1e3
    );
    println!(
        "peak RSS of the bench process: {} KiB (before the exporter {} KiB); current {} KiB",
        rss("VmHWM"),
        rss_before,
        rss("VmRSS")
    );
}
