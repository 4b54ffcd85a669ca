//! Sensors, SEL, FRU and the other platform commands of the simulated BMC
//! against real peers: ipmitool (`-C 3` and `-C 17`), FreeIPMI
//! (`ipmi-sensors`, `ipmi-sel`, `ipmi-fru`, `ipmiconsole`) and Debian's
//! `prometheus-ipmi-exporter`.

use std::time::Duration;

use racker_sim::{Event, Faults, SimNode};
use racker_testsupport::require_tool;

use crate::freeipmi::{common, ranged_rack, run};
use crate::ipmitool::{ipmitool, read_until};

/// The line of `out` that starts with `name` (a sensor / field row).
fn line<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name:?} line in\n{out}"))
}

/// The `|`-separated, trimmed cells of the row of `name`.
fn cells(out: &str, name: &str) -> Vec<String> {
    line(out, name)
        .split('|')
        .map(|c| c.trim().to_owned())
        .collect()
}

fn assert_contains(out: &str, needles: &[&str]) {
    for n in needles {
        assert!(out.contains(n), "missing {n:?} in\n{out}");
    }
}

async fn sdr_list_reads(node: &SimNode, suite: u8, expected: &[(&str, &str)]) {
    let out = ipmitool(node, suite, &["sdr", "list"]).await;
    for (name, reading) in expected {
        let row = cells(&out, name);
        assert_eq!(row[0], *name, "{out}");
        assert_eq!(row[1], *reading, "{name}: {out}");
        assert_eq!(row[2], "ok", "{name}: {out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmitool_sensors_sel_fru_channel_session_with_suites_3_and_17() {
    let test = "ipmitool_sensors_sel_fru_channel_session_with_suites_3_and_17";
    if require_tool(test, "ipmitool").is_none() {
        return;
    }
    let rack = crate::rack(1).await;
    let node = &rack.nodes()[0];
    // Powered off: the host's fans stop, the CPU cools, the PSU idles.
    sdr_list_reads(
        node,
        3,
        &[
            ("CPU Temp", "25 degrees C"),
            ("Inlet Temp", "24 degrees C"),
            ("FAN1", "0 RPM"),
            ("12V", "0 Volts"),
            ("PSU Power", "8 Watts"),
        ],
    )
    .await;
    ipmitool(node, 17, &["chassis", "power", "on"]).await;
    for suite in [3, 17] {
        sdr_list_reads(
            node,
            suite,
            &[
                ("CPU Temp", "45 degrees C"),
                ("Inlet Temp", "24 degrees C"),
                ("FAN1", "5400 RPM"),
                ("FAN2", "5600 RPM"),
                ("12V", "12 Volts"),
                ("5V", "5 Volts"),
                ("3.3V", "3.30 Volts"),
                ("PSU Power", "180 Watts"),
            ],
        )
        .await;
        // sensor list: reading, unit, status, then LNR LCR LNC UNC UCR UNR.
        let out = ipmitool(node, suite, &["sensor", "list"]).await;
        assert_eq!(
            cells(&out, "FAN1")[..7],
            ["FAN1", "5400.000", "RPM", "ok", "na", "500.000", "800.000"],
            "{out}"
        );
        assert_eq!(
            cells(&out, "12V")[1..9],
            [
                "12.000", "Volts", "ok", "na", "10.800", "11.400", "12.600", "13.200"
            ],
            "{out}"
        );
        assert_eq!(
            cells(&out, "CPU Temp")[1..4],
            ["45.000", "degrees C", "ok"],
            "{out}"
        );
        assert_eq!(cells(&out, "CPU Temp")[8], "90.000", "{out}");
        assert_eq!(cells(&out, "PSU Power")[1..3], ["180.000", "Watts"]);

        let out = ipmitool(node, suite, &["sel", "list"]).await;
        assert_contains(
            &out,
            &[
                "System ACPI Power State #0x11 | S0/G0: working | Asserted",
                "System Boot Initiated #0x12 | Initiated by power up | Asserted",
            ],
        );
        let out = ipmitool(node, suite, &["sel", "info"]).await;
        assert_contains(
            &out,
            &["Version          : 1.5", "Overflow         : false"],
        );
        let entries: usize = line(&out, "Entries")
            .split(':')
            .nth(1)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(entries, node.sel_records().len(), "{out}");

        let out = ipmitool(node, suite, &["fru", "print"]).await;
        assert_contains(
            &out,
            &[
                "Builtin FRU Device (ID 0)",
                "Chassis Type          : Rack Mount Chassis",
                "Board Mfg             : Racker",
                "Board Product         : Racker Simulated Board",
                "Product Manufacturer  : Racker",
                "Product Name          : Racker Simulated Server",
                "Product Serial        : SIM-02524B000001",
            ],
        );

        let out = ipmitool(node, suite, &["channel", "info"]).await;
        assert_contains(
            &out,
            &[
                "Channel 0x1 info:",
                "Channel Medium Type   : 802.3 LAN",
                "Session Support       : multi-session",
                "Active Session Count  : 1",
                "Access Mode         : always available",
            ],
        );
        let out = ipmitool(node, suite, &["mc", "selftest"]).await;
        assert_contains(&out, &["Selftest: passed"]);

        let out = ipmitool(node, suite, &["session", "info", "all"]).await;
        assert_contains(
            &out,
            &[
                "session handle                : 1",
                "slot count                    : 8",
                "active sessions               : 1",
                "user id                       : 2",
                "privilege level               : ADMINISTRATOR",
                "session type                  : IPMIv2/RMCP+",
                "console ip                    : 127.0.0.1",
            ],
        );
    }
    // chassis identify: 15 s by default, 0 = off, force = until told.
    assert!(!node.snapshot().identify);
    let out = ipmitool(node, 3, &["chassis", "identify"]).await;
    assert_contains(&out, &["Chassis identify interval: default (15 seconds)"]);
    assert!(node.snapshot().identify);
    let out = ipmitool(node, 17, &["chassis", "identify", "0"]).await;
    assert_contains(&out, &["Chassis identify interval: off"]);
    assert!(!node.snapshot().identify);
    let out = ipmitool(node, 17, &["chassis", "identify", "force"]).await;
    assert_contains(&out, &["Chassis identify interval: indefinite"]);
    assert!(node.snapshot().identify);
    // Power restore policy: every one supported, the one set is reported.
    let out = ipmitool(node, 17, &["chassis", "policy", "list"]).await;
    assert_contains(&out, &["always-on", "always-off", "previous"]);
    ipmitool(node, 3, &["chassis", "policy", "always-off"]).await;
    let out = ipmitool(node, 17, &["chassis", "status"]).await;
    assert_contains(&out, &["Power Restore Policy : always-off"]);
    ipmitool(node, 3, &["chassis", "policy", "previous"]).await;

    // Power off, a PXE boot override and a power cycle land in the SEL.
    ipmitool(node, 3, &["chassis", "power", "off"]).await;
    sdr_list_reads(node, 17, &[("FAN1", "0 RPM"), ("CPU Temp", "25 degrees C")]).await;
    ipmitool(node, 3, &["chassis", "bootdev", "pxe"]).await;
    ipmitool(node, 3, &["chassis", "power", "on"]).await;
    ipmitool(node, 3, &["chassis", "power", "cycle"]).await;
    ipmitool(node, 3, &["chassis", "power", "reset"]).await;
    let out = ipmitool(node, 17, &["sel", "list"]).await;
    assert_contains(
        &out,
        &[
            "Power Unit #0x10 | Power off/down | Asserted",
            "System Event #0x13 | System Reconfigured | Asserted",
            "System Boot Initiated #0x12 | User requested PXE boot | Asserted",
            "Power Unit #0x10 | Power cycle | Asserted",
            "System Boot Initiated #0x12 | Initiated by hard reset | Asserted",
        ],
    );
    // sel clear leaves the "log area reset/cleared" record.
    let out = ipmitool(node, 3, &["sel", "clear"]).await;
    assert_contains(&out, &["Clearing SEL"]);
    let out = ipmitool(node, 3, &["sel", "list"]).await;
    assert_eq!(out.trim().lines().count(), 1, "{out}");
    assert_contains(
        &out,
        &["Event Logging Disabled #0x14 | Log area reset/cleared"],
    );
    assert_eq!(node.snapshot().active_sessions, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_fail_fault_shows_in_sensor_list_chassis_status_and_sel() {
    let test = "fan_fail_fault_shows_in_sensor_list_chassis_status_and_sel";
    if require_tool(test, "ipmitool").is_none() {
        return;
    }
    let rack = crate::rack(1).await;
    let node = &rack.nodes()[0];
    node.set_power(true);
    node.set_faults(Faults {
        fan_fail: true,
        ..Faults::default()
    });
    for suite in [3, 17] {
        let out = ipmitool(node, suite, &["sensor", "list"]).await;
        assert_eq!(
            cells(&out, "FAN1")[..6],
            ["FAN1", "0.000", "RPM", "cr", "na", "500.000"],
            "{out}"
        );
        assert_eq!(
            cells(&out, "FAN2")[1..4],
            ["5600.000", "RPM", "ok"],
            "{out}"
        );
        let out = ipmitool(node, suite, &["chassis", "status"]).await;
        assert_contains(&out, &["Cooling/Fan Fault    : true"]);
        let out = ipmitool(node, suite, &["sel", "list"]).await;
        assert_contains(
            &out,
            &[
                "Fan #0x03 | Lower Non-critical going low  | Asserted",
                "Fan #0x03 | Lower Critical going low  | Asserted",
            ],
        );
    }
    node.set_faults(Faults::default());
    let out = ipmitool(node, 3, &["sensor", "list"]).await;
    assert_eq!(
        cells(&out, "FAN1")[1..4],
        ["5400.000", "RPM", "ok"],
        "{out}"
    );
    let out = ipmitool(node, 3, &["sel", "list"]).await;
    assert_contains(
        &out,
        &["Fan #0x03 | Lower Critical going low  | Deasserted"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lan_print_claims_no_auth_type_that_authcap_denies() {
    if require_tool(
        "lan_print_claims_no_auth_type_that_authcap_denies",
        "ipmitool",
    )
    .is_none()
    {
        return;
    }
    let rack = crate::rack(1).await;
    let node = &rack.nodes()[0];
    let authcap = ipmitool(node, 3, &["channel", "authcap", "1", "4"]).await;
    let lan = ipmitool(node, 17, &["lan", "print", "1"]).await;
    let value = |out: &str, key: &str| {
        line(out, key)
            .split_once(':')
            .map(|(_, v)| v.trim().to_owned())
            .unwrap()
    };
    assert_eq!(value(&authcap, "IPMI v1.5  auth types"), "", "{authcap}");
    assert_eq!(value(&authcap, "Channel supports IPMI v1.5"), "no");
    assert_eq!(value(&lan, "Auth Type Support"), "", "{lan}");
    for level in ["Callback", "User", "Operator", "Admin", "OEM"] {
        let row = lan
            .lines()
            .find(|l| l.contains(&format!(": {level}")))
            .unwrap_or_else(|| panic!("{level} in {lan}"));
        assert_eq!(row.rsplit(':').next().unwrap().trim(), "", "{lan}");
    }
    // Per-message authentication: channel info agrees with authcap.
    let info = ipmitool(node, 3, &["channel", "info"]).await;
    assert_eq!(value(&authcap, "Per message authentication"), "enabled");
    assert_eq!(value(&info, "    Per-message Auth"), "enabled", "{info}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeipmi_sensors_sel_and_fru_over_a_host_range() {
    let test = "freeipmi_sensors_sel_and_fru_over_a_host_range";
    for tool in ["ipmi-sensors", "ipmi-sel", "ipmi-fru"] {
        if require_tool(test, tool).is_none() {
            return;
        }
    }
    let (rack, port) = ranged_rack(3).await;
    rack.nodes()[0].set_power(true);
    rack.nodes()[1].set_power(true);
    rack.nodes()[1].set_faults(Faults {
        fan_fail: true,
        ..Faults::default()
    });
    let cache = tempfile::tempdir().unwrap();
    for suite in ["3", "17"] {
        let mut args = common(3, port);
        args.extend([
            "-I".to_owned(),
            suite.to_owned(),
            "--sdr-cache-directory".to_owned(),
            cache.path().display().to_string(),
            "--quiet-cache".to_owned(),
        ]);
        let out = run("ipmi-sensors", &args).await;
        let row = |host: u8, name: &str| {
            cells(
                &out,
                &format!("127.77.3.{host}:{port}: {}", sensor_id(name)),
            )
        };
        assert_eq!(
            row(2, "CPU Temp")[1..6],
            ["CPU Temp", "Temperature", "45.00", "C", "'OK'"]
        );
        assert_eq!(row(2, "FAN1")[3..6], ["5400.00", "RPM", "'OK'"]);
        assert_eq!(row(2, "12V")[3..6], ["12.00", "V", "'OK'"]);
        assert_eq!(row(2, "3.3V")[3..6], ["3.30", "V", "'OK'"]);
        assert_eq!(row(2, "PSU Power")[3..6], ["180.00", "W", "'OK'"]);
        assert_eq!(
            row(3, "FAN1")[3..6],
            ["0.00", "RPM", "'At or Below (<=) Lower Critical Threshold'"]
        );
        assert_eq!(row(4, "FAN1")[3..6], ["0.00", "RPM", "'OK'"], "powered off");
        assert_eq!(row(4, "CPU Temp")[3], "25.00");
    }
    let cached = || {
        let mut args = common(3, port);
        args.extend([
            "--sdr-cache-directory".to_owned(),
            cache.path().display().to_string(),
            "--quiet-cache".to_owned(),
        ]);
        args
    };
    let out = run("ipmi-sel", &cached()).await;
    assert_contains(
        &out,
        &[
            &format!("127.77.3.2:{port}: 1  |"),
            "System ACPI Power State  | S0/G0",
            "System Boot Initiated    | Initiated by power up",
            "| FAN1       | Fan                      | Lower Critical - going low ; Sensor Reading = 0.00 RPM ; Threshold = 500.00 RPM",
        ],
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with(&format!("127.77.3.3:{port}:"))
                && l.contains("Lower Critical - going low")),
        "{out}"
    );
    assert!(
        !out.lines()
            .any(|l| l.starts_with(&format!("127.77.3.4:{port}:")) && l.contains('|')),
        "{out}"
    );
    let out = run("ipmi-fru", &cached()).await;
    for i in 2..5 {
        let prefix = format!("127.77.3.{i}:{port}:");
        let host: Vec<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .map(str::trim)
            .collect();
        let serial = format!("FRU Product Serial Number: SIM-02524B0300{i:02X}");
        for field in [
            "FRU Product Manufacturer Name: Racker",
            "FRU Product Name: Racker Simulated Server",
            &serial,
            "FRU Board Manufacturer: Racker",
            "FRU Chassis Type: Rack Mount Chassis",
        ] {
            assert!(
                host.contains(&field),
                "missing {field:?} for {prefix} in\n{out}"
            );
        }
    }
}

/// `ipmi-sensors` prints the record ID before the name.
fn sensor_id(name: &str) -> String {
    let id = [
        "CPU Temp",
        "Inlet Temp",
        "FAN1",
        "FAN2",
        "12V",
        "5V",
        "3.3V",
        "PSU Power",
    ]
    .iter()
    .position(|n| *n == name)
    .unwrap()
        + 1;
    format!("{id} ")
}

/// One BMC on a port below 32768: FreeIPMI 1.6.10's ipmiconsole turns a
/// `-h HOST:PORT` port above 32767 into a negative number ("getaddrinfo:
/// Servname not supported", "hostname invalid"), and kernel-chosen ports
/// are all above it.
async fn low_port_rack() -> racker_sim::SimRack {
    let ip = std::net::Ipv4Addr::new(127, 77, 6, 2);
    for port in 6230..6330 {
        let spec = racker_sim::NodeSpec::new(
            [0x02, 0x52, 0x4B, 6, 0, 2],
            std::net::SocketAddr::from((ip, port)),
        );
        if let Ok(rack) =
            racker_sim::SimRack::start(vec![spec], "USER", racker_sim::Password::new("PASS")).await
        {
            return rack;
        }
    }
    panic!("no free port in 127.77.6.2:6230-6329");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmiconsole_connects_and_carries_sol_both_ways() {
    use tokio::io::AsyncWriteExt;
    let test = "ipmiconsole_connects_and_carries_sol_both_ways";
    if require_tool(test, "ipmiconsole").is_none() || require_tool(test, "script").is_none() {
        return;
    }
    let rack = low_port_rack().await;
    let node = &rack.nodes()[0];
    for suite in [3, 17] {
        let mut events = node.subscribe();
        let addr = node.ipmi_addr();
        let cmd = format!(
            "ipmiconsole -h {}:{} -u USER -p PASS -I {suite}",
            addr.ip(),
            addr.port()
        );
        let mut child = tokio::process::Command::new("script")
            .args(["-qfec", &cmd, "/dev/null"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut seen = Vec::new();
        read_until(&mut stdout, &mut seen, b"[SOL established]").await;
        assert_eq!(events.recv().await, Some(Event::SolActivated));
        node.console_write(b"Flatcar Container Linux\r\nnode-1 login: ");
        read_until(&mut stdout, &mut seen, b"node-1 login: ").await;
        stdin.write_all(b"core\r").await.unwrap();
        let mut typed = Vec::new();
        while !typed.ends_with(b"core\r") {
            match events.recv().await {
                Some(Event::ConsoleInput(b)) => typed.extend_from_slice(&b),
                other => panic!("unexpected event {other:?}"),
            }
        }
        // ipmiconsole's escape: '&' then '.'.
        stdin.write_all(b"&.").await.unwrap();
        let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .expect("ipmiconsole exits on &.")
            .unwrap();
        assert!(
            status.success(),
            "{status:?}: {}",
            String::from_utf8_lossy(&seen)
        );
        loop {
            match events.recv().await {
                Some(Event::SolDeactivated) => break,
                Some(Event::ConsoleInput(b)) => assert!(!b.contains(&b'&'), "escape leaked: {b:?}"),
                other => panic!("unexpected event {other:?}"),
            }
        }
    }
}

/// Kills the child process when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The value of the sample of `metric` whose labels include `labels`.
fn sample(text: &str, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let (name, rest) = series.split_once('{').unwrap_or((series, "}"));
        if name != metric {
            return None;
        }
        let rest = rest.strip_suffix('}')?;
        let matches = labels
            .iter()
            .all(|(k, v)| rest.split(',').any(|kv| kv == format!("{k}=\"{v}\"")));
        matches.then(|| value.parse().ok()).flatten()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_ipmi_exporter_reports_the_simulated_sensors() {
    let test = "prometheus_ipmi_exporter_reports_the_simulated_sensors";
    if require_tool(test, "prometheus-ipmi-exporter").is_none()
        || require_tool(test, "ipmi-sensors").is_none()
    {
        return;
    }
    let rack = crate::rack(2).await;
    let (healthy, failing) = (&rack.nodes()[0], &rack.nodes()[1]);
    healthy.set_power(true);
    failing.set_power(true);
    failing.set_faults(Faults {
        fan_fail: true,
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ipmi.yml");
    std::fs::write(
        &config,
        "modules:\n  default:\n    user: \"USER\"\n    pass: \"PASS\"\n    driver: \"LAN_2_0\"\n    \
         privilege: \"user\"\n    timeout: 10000\n    collectors:\n    - bmc\n    - ipmi\n    \
         - chassis\n    - sel\n",
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new("prometheus-ipmi-exporter")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--freeipmi.path=/usr/sbin")
        .env("HOME", dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let child = KillOnDrop(child);
    // Wait for its "Listening on" log line (EOF = it exited: fail).
    tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stderr).lines();
        let mut seen = String::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("Listening on") {
                std::thread::spawn(move || for _ in lines {});
                return;
            }
        }
        panic!("prometheus-ipmi-exporter exited:\n{seen}");
    })
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let scrape = |node: &SimNode| {
        let url = format!(
            "http://127.0.0.1:{port}/ipmi?module=default&target={}",
            node.ipmi_addr()
        );
        let client = client.clone();
        async move {
            let resp = client
                .get(url)
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .unwrap();
            assert!(resp.status().is_success(), "{resp:?}");
            resp.text().await.unwrap()
        }
    };
    let text = scrape(healthy).await;
    for collector in ["bmc", "ipmi", "chassis", "sel"] {
        assert_eq!(
            sample(&text, "ipmi_up", &[("collector", collector)]),
            Some(1.0),
            "{collector}:\n{text}"
        );
    }
    let value = |metric: &str, name: &str| {
        sample(&text, metric, &[("name", name)])
            .unwrap_or_else(|| panic!("no {metric}{{name={name:?}}} in\n{text}"))
    };
    assert_eq!(value("ipmi_temperature_celsius", "CPU Temp"), 45.0);
    assert_eq!(value("ipmi_temperature_celsius", "Inlet Temp"), 24.0);
    assert_eq!(value("ipmi_fan_speed_rpm", "FAN1"), 5400.0);
    assert_eq!(value("ipmi_fan_speed_rpm", "FAN2"), 5600.0);
    assert_eq!(value("ipmi_voltage_volts", "12V"), 12.0);
    assert_eq!(value("ipmi_voltage_volts", "5V"), 5.0);
    assert!((value("ipmi_voltage_volts", "3.3V") - 3.3).abs() < 1e-9);
    assert_eq!(value("ipmi_power_watts", "PSU Power"), 180.0);
    assert_eq!(value("ipmi_fan_speed_state", "FAN1"), 0.0, "nominal");
    assert_eq!(sample(&text, "ipmi_chassis_power_state", &[]), Some(1.0));
    assert_eq!(
        sample(
            &text,
            "ipmi_bmc_info",
            &[("system_firmware_version", "1.0.0")]
        ),
        Some(1.0),
        "{text}"
    );
    let entries = sample(&text, "ipmi_sel_logs_count", &[]).unwrap();
    assert_eq!(entries as usize, healthy.sel_records().len(), "{text}");
    let text = scrape(failing).await;
    assert_eq!(
        sample(&text, "ipmi_fan_speed_rpm", &[("name", "FAN1")]),
        Some(0.0)
    );
    // 2 = critical.
    assert_eq!(
        sample(&text, "ipmi_fan_speed_state", &[("name", "FAN1")]),
        Some(2.0),
        "{text}"
    );
    drop(child);
}
