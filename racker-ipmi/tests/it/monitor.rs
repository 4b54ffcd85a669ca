//! Sensors, SEL, FRU and MC info read by racker from OpenIPMI's `ipmi_sim`
//! configured with SDRs, sensors, SEL entries and FRU data, compared with
//! ipmitool's reading of the same BMC.

use std::process::Command;
use std::sync::Mutex;

use racker_ipmi::fru::{BoardInfo, ProductInfo};
use racker_ipmi::monitor;
use racker_ipmi::sdr::{SdrCache, SensorStatus, full_sensor_record};
use racker_ipmi::{CipherPreference, CipherSuite, Session};

use crate::sim::{PASSWORD, Sim, USER};
use crate::{creds, opts};

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:#04x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// (number, type, unit, M, Rexp, raw value, name)
pub(crate) const SENSORS: [(u8, u8, u8, i16, i8, u8, &str); 5] = [
    (0x30, 0x01, 1, 1, 0, 45, "CPU Temp"),
    (0x31, 0x01, 1, 1, 0, 24, "Inlet Temp"),
    (0x40, 0x04, 18, 50, 0, 100, "FAN1"),
    (0x50, 0x02, 4, 6, -2, 200, "12V"),
    (0x60, 0x08, 6, 2, 0, 100, "PSU1 Power"),
];

pub(crate) fn board() -> BoardInfo {
    BoardInfo {
        mfg_minutes: 12_345_678,
        manufacturer: "Racker".into(),
        product: "Sim Board".into(),
        serial: "SN0001".into(),
        part_number: "PN-42".into(),
        ..Default::default()
    }
}

pub(crate) fn product() -> ProductInfo {
    ProductInfo {
        manufacturer: "Racker".into(),
        name: "Sim Node".into(),
        part_number: "RK-1".into(),
        version: "1.0".into(),
        serial: "NODE0001".into(),
        asset_tag: "rack-a".into(),
        ..Default::default()
    }
}

/// ipmi_sim emulator commands for controller `mc`: SDRs and sensors,
/// two SEL entries and FRU device 0.
pub(crate) fn emu_for(mc: usize) -> String {
    let mut e = String::new();
    for (i, (num, ty, unit, m, r, value, name)) in SENSORS.iter().enumerate() {
        let mut rec = full_sensor_record(
            i as u16 + 1,
            *num,
            *ty,
            *unit,
            *m,
            *r,
            [250, 240, 230, 0, 1, 2],
            name,
        );
        rec[5] = mc as u8;
        e.push_str(&format!("main_sdr_add {mc:#x} {}\n", hex(&rec)));
        e.push_str(&format!("sensor_add {mc:#x} 0 {num:#x} {ty:#x} 0x01\n"));
        e.push_str(&format!(
            "sensor_set_value {mc:#x} 0 {num:#x} {value:#x} 0\n"
        ));
    }
    e.push_str(&format!("sel_enable {mc:#x} 1000 0x0a\n"));
    for (num, dir) in [(0x30u8, 0x01u8), (0x40, 0x81)] {
        e.push_str(&format!(
            "sel_add {mc:#x} 0x02 0x10 0x00 0x00 0x60 {mc:#x} 0x00 0x04 {ty:#04x} {num:#04x} {dir:#04x} 0x09 0xff 0xff\n",
            ty = if num == 0x30 { 0x01 } else { 0x04 }
        ));
    }
    let fru = racker_ipmi::fru::encode(&board(), &product());
    e.push_str(&format!(
        "mc_add_fru_data {mc:#x} 0 {:#x} data {}\n",
        fru.len(),
        hex(&fru)
    ));
    e
}

fn ipmitool(sim: &Sim, args: &[&str]) -> Option<String> {
    let bin = racker_testsupport::find_tool("ipmitool")?;
    let bmc = sim.bmc();
    let out = Command::new(bin)
        .args(["-I", "lanplus", "-C", "3", "-H", bmc.host(), "-p"])
        .arg(bmc.port().to_string())
        .args(["-U", USER, "-P", PASSWORD])
        .args(args)
        .output()
        .expect("run ipmitool");
    assert!(
        out.status.success(),
        "ipmitool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// ipmi_sim applies `sensor_set_value` a moment after its LAN answers:
/// wait (bounded, 10 s) until the first sensor reads a value.
pub(crate) async fn wait_sensors_ready(bmc: &racker_ipmi::BmcAddress) {
    for _ in 0..100 {
        if let Ok(mut s) = Session::connect(bmc, &creds(), &suite3()).await {
            let ok = monitor::sensors(&mut s, None)
                .await
                .is_ok_and(|r| r.first().is_some_and(|x| x.reading.is_some()));
            s.close().await.ok();
            if ok {
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{bmc}: sensors never became readable");
}

pub(crate) fn suite3() -> racker_ipmi::SessionOptions {
    opts().cipher(CipherPreference::Only(CipherSuite::Suite3))
}

#[tokio::test]
async fn sensors_agree_with_ipmitool_sdr_list() {
    let Some(sim) = Sim::start_many_with("sensors_agree_with_ipmitool_sdr_list", 1, emu_for) else {
        return;
    };
    wait_sensors_ready(sim.bmc()).await;
    let mut s = Session::connect(sim.bmc(), &creds(), &suite3())
        .await
        .expect("connect");
    let cache = Mutex::new(SdrCache::new());
    let readings = monitor::sensors(&mut s, Some(&cache))
        .await
        .expect("sensors");
    assert_eq!(readings.len(), SENSORS.len(), "{readings:?}");
    for (num, _, _, m, r, raw, name) in SENSORS {
        let got = readings.iter().find(|x| x.number == num).expect(name);
        assert_eq!(got.name, name);
        let want = f64::from(m) * f64::from(raw) * 10f64.powi(i32::from(r));
        let v = got.reading.expect("reading");
        assert!((v - want).abs() < 1e-6, "{name}: {v} vs {want}");
        assert_eq!(got.status, SensorStatus::Ok, "{name}");
        assert!(got.thresholds.upper_critical.is_some());
    }
    let temp = readings.iter().find(|x| x.number == 0x30).unwrap();
    assert_eq!(
        (temp.unit.as_str(), temp.sensor_type.as_str()),
        ("degrees C", "Temperature")
    );
    // Second poll: same repository stamp, definitions from the cache.
    assert_eq!(cache.lock().unwrap().len(), 1);
    let again = monitor::sensors(&mut s, Some(&cache))
        .await
        .expect("sensors again");
    assert_eq!(again, readings);

    let Some(text) = ipmitool(&sim, &["sdr", "list"]) else {
        s.close().await.ok();
        return;
    };
    // "CPU Temp         | 45 degrees C      | ok"
    for r in &readings {
        let line = text
            .lines()
            .find(|l| l.split('|').next().is_some_and(|n| n.trim() == r.name))
            .unwrap_or_else(|| panic!("{} not in ipmitool sdr list:\n{text}", r.name));
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        let theirs: f64 = cols[1].split_whitespace().next().unwrap().parse().unwrap();
        assert!(
            (theirs - r.reading.unwrap()).abs() < 0.01,
            "{}: ipmitool {theirs}, racker {:?}",
            r.name,
            r.reading
        );
        assert!(cols[1].ends_with(&r.unit), "{line} vs unit {}", r.unit);
        assert_eq!(cols[2], "ok");
    }
    s.close().await.ok();
}

#[tokio::test]
async fn sel_and_fru_agree_with_ipmitool() {
    let Some(sim) = Sim::start_many_with("sel_and_fru_agree_with_ipmitool", 1, emu_for) else {
        return;
    };
    let mut s = Session::connect(sim.bmc(), &creds(), &suite3())
        .await
        .expect("connect");
    let info = monitor::sel_info(&mut s).await.expect("sel info");
    assert_eq!(info.entries, 2);
    let entries = monitor::sel_list(&mut s, None).await.expect("sel list");
    assert_eq!(entries.len(), 2);
    assert_eq!(
        (entries[0].sensor_type.as_str(), entries[0].sensor_number),
        ("Temperature", 0x30)
    );
    assert_eq!(entries[0].direction, "asserted");
    assert_eq!(
        (
            entries[1].sensor_type.as_str(),
            entries[1].direction.as_str()
        ),
        ("Fan", "deasserted")
    );
    let last = monitor::sel_list(&mut s, Some(1)).await.expect("sel last");
    assert_eq!(last, entries[1..].to_vec());

    let fru = monitor::fru(&mut s).await.expect("fru");
    assert_eq!(fru.board, Some(board()));
    assert_eq!(fru.product, Some(product()));

    let mc = monitor::mc_info(&mut s).await.expect("mc info");
    assert_eq!(
        (mc.firmware.as_str(), mc.manufacturer_id, mc.product_id),
        ("9.08", 4753, 0x0f02)
    );
    assert!(mc.capabilities.contains(&"sdr".to_string()));

    if let Some(text) = ipmitool(&sim, &["sel", "list"]) {
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), entries.len(), "{text}");
        assert!(lines[0].contains("Temperature #0x30"), "{text}");
        assert!(
            lines[0].contains("Asserted") && lines[1].contains("Deasserted"),
            "{text}"
        );
    }
    if let Some(text) = ipmitool(&sim, &["fru", "print", "0"]) {
        let field = |k: &str| {
            text.lines()
                .find(|l| l.trim_start().starts_with(k))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_else(|| panic!("{k} not in:\n{text}"))
        };
        let b = fru.board.as_ref().unwrap();
        let p = fru.product.as_ref().unwrap();
        assert_eq!(field("Board Mfg  "), b.manufacturer);
        assert_eq!(field("Board Product"), b.product);
        assert_eq!(field("Board Serial"), b.serial);
        assert_eq!(field("Board Part Number"), b.part_number);
        assert_eq!(field("Product Name"), p.name);
        assert_eq!(field("Product Serial"), p.serial);
        assert_eq!(field("Product Asset Tag"), p.asset_tag);
    }
    if let Some(text) = ipmitool(&sim, &["mc", "info"]) {
        assert!(text.contains("Firmware Revision         : 9.08"), "{text}");
    }
    monitor::sel_clear(&mut s).await.expect("sel clear");
    assert_eq!(monitor::sel_info(&mut s).await.expect("info").entries, 0);
    s.close().await.ok();
}
