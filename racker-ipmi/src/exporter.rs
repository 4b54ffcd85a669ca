//! A Prometheus exporter for every BMC of a rack, with the metric names
//! and labels of the Prometheus `ipmi_exporter` (so its dashboards keep
//! working) plus `node` and `mac` labels.
//!
//! - [`Exporter::poll`] reads every BMC in parallel (bounded concurrency),
//!   each under its own timeout, and keeps the last good values with the
//!   time they were read. The SDR cache is reused between polls.
//! - [`Exporter::render`] (sans-IO) writes the text exposition format from
//!   that state: a scrape never talks to a BMC, so a dead one cannot block
//!   it; its `ipmi_up` is 0 and `ipmi_last_success_age_seconds` grows.
//! - [`serve`] is a small HTTP/1.1 server for `GET /metrics`.
//!
//! docs/ipmi.md lists the metrics.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::client::{BmcAddress, Session};
use crate::error::{Error, Result};
use crate::monitor::{self, McInfo};
use crate::sdr::{SdrCache, SensorReading, SensorStatus};
use crate::sel::SelInfo;
use crate::session::{Credentials, SessionOptions};

/// One BMC to export, with the labels naming its node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportTarget {
    /// `node` label (host name, or the BMC MAC when there is none).
    pub node: String,
    /// `mac` label (BMC MAC).
    pub mac: String,
    /// Where to reach the BMC.
    pub bmc: BmcAddress,
}

/// What one successful poll of a BMC read.
#[derive(Debug, Clone, PartialEq)]
pub struct BmcSnapshot {
    /// Sensor readings (`None`: the sensors could not be read this time).
    pub sensors: Option<Vec<SensorReading>>,
    /// Chassis power on.
    pub power_on: Option<bool>,
    /// SEL info.
    pub sel: Option<SelInfo>,
    /// MC info.
    pub mc: Option<McInfo>,
    /// System firmware version (Get System Info Parameters 1).
    pub system_firmware: Option<String>,
}

/// Per-BMC state between polls.
#[derive(Debug, Clone, Default)]
struct BmcState {
    last_good: Option<(Instant, BmcSnapshot)>,
    up: bool,
    last_error: Option<String>,
    last_duration: Duration,
}

/// Exporter options.
#[derive(Debug, Clone)]
pub struct ExporterOptions {
    /// Session options (timeouts per exchange, cipher).
    pub session: SessionOptions,
    /// Whole-poll budget per BMC; a BMC over it counts as down this round.
    pub bmc_timeout: Duration,
    /// BMCs polled at the same time.
    pub concurrency: usize,
}

impl Default for ExporterOptions {
    fn default() -> Self {
        ExporterOptions {
            session: SessionOptions::default()
                .timeout(Duration::from_secs(2))
                .retries(2),
            bmc_timeout: Duration::from_secs(10),
            concurrency: 64,
        }
    }
}

/// The exporter: targets, credentials, per-BMC state and the SDR cache.
#[derive(Debug)]
pub struct Exporter {
    targets: Vec<ExportTarget>,
    creds: Credentials,
    opts: ExporterOptions,
    state: Mutex<BTreeMap<String, BmcState>>,
    cache: Arc<Mutex<SdrCache>>,
    polls: Mutex<u64>,
}

async fn read_bmc(
    bmc: &BmcAddress,
    creds: &Credentials,
    opts: &SessionOptions,
    cache: &Mutex<SdrCache>,
) -> Result<BmcSnapshot> {
    let mut s = Session::connect(bmc, creds, opts).await?;
    let sensors = monitor::sensors(&mut s, Some(cache)).await.ok();
    let power_on = s.chassis_status().await.ok().map(|c| c.power_on);
    let sel = monitor::sel_info(&mut s).await.ok();
    let mc = monitor::mc_info(&mut s).await.ok();
    let system_firmware = match mc {
        Some(_) => monitor::system_firmware_version(&mut s)
            .await
            .ok()
            .flatten(),
        None => None,
    };
    let _ = s.close().await;
    Ok(BmcSnapshot {
        sensors,
        power_on,
        sel,
        mc,
        system_firmware,
    })
}

impl Exporter {
    /// An exporter for `targets`.
    pub fn new(targets: Vec<ExportTarget>, creds: Credentials, opts: ExporterOptions) -> Exporter {
        Exporter {
            targets,
            creds,
            opts,
            state: Mutex::new(BTreeMap::new()),
            cache: Arc::new(Mutex::new(SdrCache::new())),
            polls: Mutex::new(0),
        }
    }

    /// The targets.
    pub fn targets(&self) -> &[ExportTarget] {
        &self.targets
    }

    /// BMCs whose sensor definitions are cached.
    pub fn cached_sdrs(&self) -> usize {
        self.cache.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Poll every BMC once (in parallel, each within `bmc_timeout`).
    pub async fn poll(&self) {
        let creds = &self.creds;
        let opts = &self.opts;
        let cache = &self.cache;
        let mut results = futures::stream::iter(self.targets.clone())
            .map(|t: ExportTarget| async move {
                let start = Instant::now();
                let r = tokio::time::timeout(
                    opts.bmc_timeout,
                    read_bmc(&t.bmc, creds, &opts.session, cache),
                )
                .await
                .unwrap_or_else(|_| {
                    Err(Error::Timeout {
                        bmc: t.bmc.to_string(),
                        stage: "exporter poll",
                        after: opts.bmc_timeout,
                        attempts: 1,
                    })
                });
                (t, r, start.elapsed())
            })
            .buffer_unordered(self.opts.concurrency.max(1));
        while let Some((t, r, elapsed)) = results.next().await {
            if let Ok(mut state) = self.state.lock() {
                let st = state.entry(t.bmc.to_string()).or_default();
                st.last_duration = elapsed;
                match r {
                    Ok(snap) => {
                        st.up = true;
                        st.last_error = None;
                        st.last_good = Some((Instant::now(), snap));
                    }
                    Err(e) => {
                        st.up = false;
                        st.last_error = Some(e.to_string());
                    }
                }
            }
        }
        if let Ok(mut p) = self.polls.lock() {
            *p += 1;
        }
    }

    /// Poll forever every `interval` (the first poll at once).
    pub async fn run(&self, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.poll().await;
        }
    }

    /// The BMCs whose last poll failed, with the reason.
    pub fn errors(&self) -> Vec<(String, String)> {
        self.state
            .lock()
            .map(|st| {
                st.iter()
                    .filter_map(|(b, s)| s.last_error.clone().map(|e| (b.clone(), e)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The metrics as of now.
    pub fn render(&self) -> String {
        let now = Instant::now();
        let polls = self.polls.lock().map(|p| *p).unwrap_or(0);
        match self.state.lock() {
            Ok(state) => render(&self.targets, &state, now, polls),
            Err(_) => String::new(),
        }
    }
}

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

fn state_value(s: SensorStatus) -> f64 {
    match s {
        SensorStatus::Ok => 0.0,
        SensorStatus::Warning => 1.0,
        SensorStatus::Critical | SensorStatus::Nonrecoverable => 2.0,
        SensorStatus::Unavailable => f64::NAN,
    }
}

/// Metric families in output order: name, type, help.
const FAMILIES: &[(&str, &str, &str)] = &[
    (
        "ipmi_up",
        "gauge",
        "'1' if a scrape of the IPMI device was successful, '0' otherwise.",
    ),
    (
        "ipmi_scrape_duration_seconds",
        "gauge",
        "Returns how long the last poll of the BMC took to complete.",
    ),
    (
        "ipmi_last_success_age_seconds",
        "gauge",
        "Seconds since the values of this BMC were last read successfully (racker).",
    ),
    (
        "ipmi_bmc_info",
        "gauge",
        "Constant metric with value '1' providing details about the BMC.",
    ),
    (
        "ipmi_chassis_power_state",
        "gauge",
        "Current power state (1=on, 0=off).",
    ),
    (
        "ipmi_sel_entries_count",
        "gauge",
        "Current number of log entries in the SEL.",
    ),
    (
        "ipmi_sel_logs_count",
        "gauge",
        "Current number of log entries in the SEL.",
    ),
    (
        "ipmi_sel_free_space_bytes",
        "gauge",
        "Current free space remaining for new SEL entries.",
    ),
    (
        "ipmi_temperature_celsius",
        "gauge",
        "Temperature reading in degree Celsius.",
    ),
    (
        "ipmi_temperature_state",
        "gauge",
        "Reported state of a temperature sensor (0=nominal, 1=warning, 2=critical).",
    ),
    (
        "ipmi_fan_speed_rpm",
        "gauge",
        "Fan speed in rotations per minute.",
    ),
    (
        "ipmi_fan_speed_ratio",
        "gauge",
        "Fan speed as a proportion of the maximum speed.",
    ),
    (
        "ipmi_fan_speed_state",
        "gauge",
        "Reported state of a fan speed sensor (0=nominal, 1=warning, 2=critical).",
    ),
    ("ipmi_voltage_volts", "gauge", "Voltage reading in Volts."),
    (
        "ipmi_voltage_state",
        "gauge",
        "Reported state of a voltage sensor (0=nominal, 1=warning, 2=critical).",
    ),
    (
        "ipmi_current_amperes",
        "gauge",
        "Current reading in Ampere.",
    ),
    (
        "ipmi_current_state",
        "gauge",
        "Reported state of a current sensor (0=nominal, 1=warning, 2=critical).",
    ),
    ("ipmi_power_watts", "gauge", "Power reading in Watts."),
    (
        "ipmi_power_state",
        "gauge",
        "Reported state of a power sensor (0=nominal, 1=warning, 2=critical).",
    ),
    (
        "ipmi_sensor_value",
        "gauge",
        "Generic data read from an IPMI sensor of unknown type, relying on labels for context.",
    ),
    (
        "ipmi_sensor_state",
        "gauge",
        "Indicates the severity of the state reported by an IPMI sensor (0=nominal, 1=warning, 2=critical).",
    ),
];

/// Where a sensor goes: (value family, state family, value scale).
fn families_of(r: &SensorReading) -> (&'static str, &'static str, f64) {
    match r.unit.as_str() {
        "degrees C" => ("ipmi_temperature_celsius", "ipmi_temperature_state", 1.0),
        "RPM" => ("ipmi_fan_speed_rpm", "ipmi_fan_speed_state", 1.0),
        "percent" if r.type_code == 0x04 => ("ipmi_fan_speed_ratio", "ipmi_fan_speed_state", 0.01),
        "Volts" => ("ipmi_voltage_volts", "ipmi_voltage_state", 1.0),
        "Amps" => ("ipmi_current_amperes", "ipmi_current_state", 1.0),
        "Watts" => ("ipmi_power_watts", "ipmi_power_state", 1.0),
        _ => ("ipmi_sensor_value", "ipmi_sensor_state", 1.0),
    }
}

fn render(
    targets: &[ExportTarget],
    state: &BTreeMap<String, BmcState>,
    now: Instant,
    polls: u64,
) -> String {
    let mut lines: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut push = |family: &'static str, labels: String, value: f64| {
        lines
            .entry(family)
            .or_default()
            .push(format!("{family}{{{labels}}} {}", num(value)));
    };
    for t in targets {
        let base = format!("node=\"{}\",mac=\"{}\"", esc(&t.node), esc(&t.mac));
        let st = state.get(&t.bmc.to_string());
        let up = st.is_some_and(|s| s.up);
        let snap = st.and_then(|s| s.last_good.as_ref());
        let up_v = if up { 1.0 } else { 0.0 };
        for collector in ["ipmi", "chassis", "bmc", "sel"] {
            let v = match (collector, snap) {
                (_, None) => 0.0,
                ("ipmi", Some((_, s))) if s.sensors.is_none() => 0.0,
                ("chassis", Some((_, s))) if s.power_on.is_none() => 0.0,
                ("bmc", Some((_, s))) if s.mc.is_none() => 0.0,
                ("sel", Some((_, s))) if s.sel.is_none() => 0.0,
                _ => up_v,
            };
            push("ipmi_up", format!("{base},collector=\"{collector}\""), v);
        }
        if let Some(s) = st {
            push(
                "ipmi_scrape_duration_seconds",
                base.clone(),
                s.last_duration.as_secs_f64(),
            );
        }
        let Some((at, snap)) = snap else {
            continue;
        };
        push(
            "ipmi_last_success_age_seconds",
            base.clone(),
            now.saturating_duration_since(*at).as_secs_f64(),
        );
        if let Some(mc) = &snap.mc {
            push(
                "ipmi_bmc_info",
                format!(
                    "{base},firmware_revision=\"{}\",manufacturer_id=\"{}\",system_firmware_version=\"{}\"",
                    esc(&mc.firmware),
                    mc.manufacturer_id,
                    esc(snap.system_firmware.as_deref().unwrap_or("N/A"))
                ),
                1.0,
            );
        }
        if let Some(on) = snap.power_on {
            push(
                "ipmi_chassis_power_state",
                base.clone(),
                if on { 1.0 } else { 0.0 },
            );
        }
        if let Some(sel) = &snap.sel {
            push(
                "ipmi_sel_entries_count",
                base.clone(),
                f64::from(sel.entries),
            );
            push("ipmi_sel_logs_count", base.clone(), f64::from(sel.entries));
            push(
                "ipmi_sel_free_space_bytes",
                base.clone(),
                f64::from(sel.free_bytes),
            );
        }
        for r in snap.sensors.iter().flatten() {
            let (vf, sf, scale) = families_of(r);
            let mut labels = format!("{base},id=\"{}\",name=\"{}\"", r.record_id, esc(&r.name));
            if vf == "ipmi_sensor_value" {
                let _ = write!(labels, ",type=\"{}\"", esc(&r.sensor_type));
            }
            push(
                vf,
                labels.clone(),
                r.reading.map_or(f64::NAN, |v| v * scale),
            );
            push(sf, labels, state_value(r.status));
        }
    }
    let mut out = String::new();
    for (name, ty, help) in FAMILIES {
        let Some(ls) = lines.get(name) else {
            continue;
        };
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {ty}");
        for l in ls {
            out.push_str(l);
            out.push('\n');
        }
    }
    let _ = writeln!(
        out,
        "# HELP racker_ipmi_exporter_polls_total Completed polls of all BMCs."
    );
    let _ = writeln!(out, "# TYPE racker_ipmi_exporter_polls_total counter");
    let _ = writeln!(out, "racker_ipmi_exporter_polls_total {polls}");
    out
}

/// The whole exporter: poll every BMC every `interval` (the first poll at
/// once) and serve `GET /metrics` on `listener`, until this future is
/// dropped or accepting a connection fails.
pub async fn poll_and_serve(
    listener: tokio::net::TcpListener,
    exporter: Arc<Exporter>,
    interval: Duration,
) -> Result<()> {
    tokio::select! {
        () = exporter.run(interval) => Ok(()),
        r = serve(listener, exporter.clone()) => r,
    }
}

/// Serve `GET /metrics` (and `GET /` with a link) on `listener` until the
/// task is dropped. Each connection answers one request and closes.
pub async fn serve(listener: tokio::net::TcpListener, exporter: Arc<Exporter>) -> Result<()> {
    loop {
        let (mut conn, peer) = listener.accept().await.map_err(|source| Error::Io {
            bmc: "exporter listener".into(),
            op: "accept",
            source,
        })?;
        let exporter = exporter.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut n = 0;
            // Read the request head (bounded: 4 KiB, 5 s).
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                while n < buf.len() {
                    match conn.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(k) => {
                            n += k;
                            if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                                break;
                            }
                        }
                    }
                }
            })
            .await;
            if read.is_err() {
                return;
            }
            let head = String::from_utf8_lossy(&buf[..n]);
            let mut parts = head.split_whitespace();
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let (status, ctype, body) = match (method, path.split('?').next().unwrap_or("")) {
                ("GET", "/metrics") => (
                    "200 OK",
                    "text/plain; version=0.0.4; charset=utf-8",
                    exporter.render(),
                ),
                ("GET", "/") => (
                    "200 OK",
                    "text/html; charset=utf-8",
                    "<html><body><a href=\"/metrics\">metrics</a></body></html>\n".to_string(),
                ),
                ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
                _ => (
                    "405 Method Not Allowed",
                    "text/plain",
                    "method not allowed\n".to_string(),
                ),
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(resp.as_bytes()).await;
            let _ = conn.shutdown().await;
            let _ = peer;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdr::Thresholds;

    fn reading(name: &str, unit: &str, ty: u8, v: Option<f64>, st: SensorStatus) -> SensorReading {
        SensorReading {
            record_id: 7,
            number: 1,
            name: name.into(),
            sensor_type: "Temperature".into(),
            type_code: ty,
            reading: v,
            unit: unit.into(),
            status: st,
            states: 0,
            thresholds: Thresholds::default(),
        }
    }

    #[test]
    fn renders_ipmi_exporter_names_with_node_labels() {
        let t = ExportTarget {
            node: "node-0".into(),
            mac: "00:11:22:33:44:11".into(),
            bmc: "127.0.0.1:623".parse().unwrap(),
        };
        let dead = ExportTarget {
            node: "node-1".into(),
            mac: "00:11:22:33:44:21".into(),
            bmc: "127.0.0.2:623".parse().unwrap(),
        };
        let now = Instant::now();
        let mut state = BTreeMap::new();
        state.insert(
            t.bmc.to_string(),
            BmcState {
                last_good: Some((
                    now,
                    BmcSnapshot {
                        sensors: Some(vec![
                            reading("CPU Temp", "degrees C", 1, Some(45.0), SensorStatus::Ok),
                            reading(
                                "Odd \"x\"",
                                "unspecified",
                                0xC0,
                                None,
                                SensorStatus::Unavailable,
                            ),
                        ]),
                        power_on: Some(true),
                        sel: None,
                        mc: None,
                        system_firmware: None,
                    },
                )),
                up: true,
                last_error: None,
                last_duration: Duration::from_millis(20),
            },
        );
        let text = render(&[t, dead], &state, now, 3);
        assert!(text.contains(
            "ipmi_temperature_celsius{node=\"node-0\",mac=\"00:11:22:33:44:11\",id=\"7\",name=\"CPU Temp\"} 45"
        ), "{text}");
        assert!(text.contains("ipmi_temperature_state{node=\"node-0\",mac=\"00:11:22:33:44:11\",id=\"7\",name=\"CPU Temp\"} 0"));
        assert!(
            text.contains("name=\"Odd \\\"x\\\"\",type=\"Temperature\"} NaN"),
            "{text}"
        );
        assert!(
            text.contains(
                "ipmi_up{node=\"node-0\",mac=\"00:11:22:33:44:11\",collector=\"ipmi\"} 1"
            )
        );
        assert!(
            text.contains(
                "ipmi_up{node=\"node-1\",mac=\"00:11:22:33:44:21\",collector=\"ipmi\"} 0"
            )
        );
        assert!(
            text.contains("ipmi_up{node=\"node-0\",mac=\"00:11:22:33:44:11\",collector=\"sel\"} 0")
        );
        assert!(
            text.contains("ipmi_chassis_power_state{node=\"node-0\",mac=\"00:11:22:33:44:11\"} 1")
        );
        assert!(text.contains("racker_ipmi_exporter_polls_total 3"));
        // Every sample line belongs to a declared family.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            assert!(text.contains(&format!("# TYPE {name} ")), "{l}");
        }
    }

    #[tokio::test]
    async fn polls_and_serves_metrics_until_dropped() {
        let exporter = Arc::new(Exporter::new(
            Vec::new(),
            Credentials::new("admin", "secret"),
            ExporterOptions::default(),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(poll_and_serve(
            listener,
            exporter.clone(),
            Duration::from_millis(20),
        ));
        let mut polls = 0;
        for _ in 0..100 {
            let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
            conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let mut reply = String::new();
            conn.read_to_string(&mut reply).await.unwrap();
            assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
            polls = reply
                .lines()
                .find_map(|l| l.strip_prefix("racker_ipmi_exporter_polls_total "))
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
            if polls >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(polls >= 2, "the exporter did not poll every interval");
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        // Dropped: no more polls, no more connections.
        let after = *exporter.polls.lock().unwrap();
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(*exporter.polls.lock().unwrap(), after);
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
}
