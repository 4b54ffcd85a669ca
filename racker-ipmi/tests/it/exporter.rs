//! The exporter against ipmi_sim BMCs with sensors (and one dead BMC),
//! scraped over HTTP and parsed as Prometheus text.

use std::sync::Arc;
use std::time::{Duration, Instant};

use racker_ipmi::exporter::{ExportTarget, Exporter, ExporterOptions, serve};
use racker_ipmi::{BmcAddress, CipherPreference, CipherSuite};

use crate::creds;
use crate::monitor::{SENSORS, emu_for};
use crate::sim::Sim;

async fn scrape(url: &str) -> prometheus_parse::Scrape {
    let body = reqwest::get(url)
        .await
        .expect("GET")
        .text()
        .await
        .expect("body");
    if std::env::var_os("SHOW_SCRAPE").is_some() {
        eprintln!("{body}");
    }
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("parse")
}

fn value(s: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples
        .iter()
        .find(|x| x.metric == metric && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match x.value {
            prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

#[tokio::test]
async fn scrape_over_http_reports_sensors_and_dead_bmcs() {
    // One ipmi_sim per BMC: in one ipmi_sim the second controller's
    // sensors read with "scanning disabled".
    let mut sims = Vec::new();
    for _ in 0..2 {
        let Some(sim) =
            Sim::start_many_with("scrape_over_http_reports_sensors_and_dead_bmcs", 1, emu_for)
        else {
            return;
        };
        crate::monitor::wait_sensors_ready(sim.bmc()).await;
        sims.push(sim);
    }
    let mut targets: Vec<ExportTarget> = sims
        .iter()
        .map(|s| s.bmc())
        .enumerate()
        .map(|(i, b)| ExportTarget {
            node: format!("node-{i}"),
            mac: format!("00:11:22:33:44:{:02x}", 0x11 + i),
            bmc: b.clone(),
        })
        .collect();
    // Nothing listens there: must not block the scrape, reports ipmi_up 0.
    let dead_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    targets.push(ExportTarget {
        node: "node-dead".into(),
        mac: "00:11:22:33:44:99".into(),
        bmc: BmcAddress::new("127.0.0.1", dead_port),
    });
    let opts = ExporterOptions {
        session: crate::opts()
            .cipher(CipherPreference::Only(CipherSuite::Suite3))
            .timeout(Duration::from_millis(300))
            .retries(1),
        bmc_timeout: Duration::from_secs(3),
        concurrency: 8,
    };
    let exporter = Arc::new(Exporter::new(targets, creds(), opts));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let server = tokio::spawn(serve(listener, exporter.clone()));

    // Before any poll: every BMC down, scrape answers at once.
    let s = scrape(&url).await;
    assert_eq!(
        value(&s, "ipmi_up", &[("node", "node-0"), ("collector", "ipmi")]),
        Some(0.0)
    );

    let t = Instant::now();
    exporter.poll().await;
    let first = t.elapsed();
    assert_eq!(exporter.cached_sdrs(), 2);

    let t = Instant::now();
    let s = scrape(&url).await;
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "scrape took {:?}",
        t.elapsed()
    );
    for node in ["node-0", "node-1"] {
        assert_eq!(
            value(&s, "ipmi_up", &[("node", node), ("collector", "ipmi")]),
            Some(1.0),
            "{node}"
        );
        assert_eq!(
            value(&s, "ipmi_chassis_power_state", &[("node", node)]),
            Some(0.0)
        );
        assert_eq!(
            value(&s, "ipmi_sel_entries_count", &[("node", node)]),
            Some(2.0)
        );
        assert_eq!(
            value(
                &s,
                "ipmi_temperature_celsius",
                &[("node", node), ("name", "CPU Temp")]
            ),
            Some(45.0)
        );
        assert_eq!(
            value(
                &s,
                "ipmi_temperature_state",
                &[("node", node), ("name", "CPU Temp")]
            ),
            Some(0.0)
        );
        assert_eq!(
            value(
                &s,
                "ipmi_fan_speed_rpm",
                &[("node", node), ("name", "FAN1")]
            ),
            Some(5000.0)
        );
        assert_eq!(
            value(&s, "ipmi_voltage_volts", &[("node", node), ("name", "12V")]),
            Some(12.0)
        );
        assert_eq!(
            value(
                &s,
                "ipmi_power_watts",
                &[("node", node), ("name", "PSU1 Power")]
            ),
            Some(200.0)
        );
        assert!(value(&s, "ipmi_last_success_age_seconds", &[("node", node)]).unwrap() < 5.0);
        let info = s
            .samples
            .iter()
            .find(|x| x.metric == "ipmi_bmc_info" && x.labels.get("node") == Some(node))
            .expect("bmc info");
        assert_eq!(info.labels.get("firmware_revision"), Some("9.08"));
    }
    assert_eq!(
        value(
            &s,
            "ipmi_up",
            &[("node", "node-dead"), ("collector", "ipmi")]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(&s, "ipmi_temperature_celsius", &[("node", "node-dead")]),
        None
    );
    let sensors = s
        .samples
        .iter()
        .filter(|x| {
            x.metric.ends_with("_state")
                && x.metric != "ipmi_chassis_power_state"
                && x.labels.get("node") == Some("node-0")
        })
        .count();
    assert_eq!(sensors, SENSORS.len());

    // Second poll reuses the SDR cache (no repository change) and is not slower.
    let t = Instant::now();
    exporter.poll().await;
    eprintln!("first poll {first:?}, second poll {:?}", t.elapsed());
    let s = scrape(&url).await;
    assert_eq!(
        value(&s, "racker_ipmi_exporter_polls_total", &[]),
        Some(2.0)
    );
    server.abort();
}
