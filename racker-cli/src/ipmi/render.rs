//! Text rendering of the monitoring outputs (sensors, SEL, FRU, MC info,
//! LAN, chassis), one-line summaries and consolidation of identical results.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use racker_ipmi::Output;

use crate::output::{Tone, paint};
use racker_ipmi::fru::Fru;
use racker_ipmi::monitor::{ChassisCapabilities, LanConfig, McInfo, RestartCause};
use racker_ipmi::sdr::{SensorReading, SensorStatus, Thresholds};
use racker_ipmi::sel::{SelEntry, SelInfo};

fn reading(r: &SensorReading) -> String {
    match r.reading {
        Some(v) => {
            let v = if (v - v.round()).abs() < 1e-9 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            };
            format!("{v} {}", r.unit)
        }
        None if r.status == SensorStatus::Unavailable => "no reading".into(),
        None => format!("0x{:04x}", r.states),
    }
}

fn thr(v: Option<f64>) -> String {
    v.map_or_else(|| "na".into(), |v| format!("{v:.2}"))
}

fn thresholds(t: &Thresholds) -> String {
    format!(
        "{} {} {} {} {} {}",
        thr(t.lower_non_recoverable),
        thr(t.lower_critical),
        thr(t.lower_non_critical),
        thr(t.upper_non_critical),
        thr(t.upper_critical),
        thr(t.upper_non_recoverable)
    )
}

/// Green for ok, yellow for a warning, red beyond a critical threshold.
fn status_tone(status: SensorStatus) -> Tone {
    match status {
        SensorStatus::Ok => Tone::Good,
        SensorStatus::Warning => Tone::Warn,
        SensorStatus::Critical | SensorStatus::Nonrecoverable => Tone::Bad,
        _ => Tone::Plain,
    }
}

/// `ipmitool sensor`-like table: name | type | reading | status | thresholds.
pub(super) fn sensors(out: &mut String, list: &[SensorReading]) {
    let _ = writeln!(
        out,
        "{:<16} | {:<14} | {:<16} | {:<14} | LNR LC LNC UNC UC UNR",
        "Name", "Type", "Reading", "Status"
    );
    for r in list {
        // Padded first: the colour codes take no room on the terminal.
        let status = format!("{:<14}", r.status.as_str());
        let _ = writeln!(
            out,
            "{:<16} | {:<14} | {:<16} | {} | {}",
            r.name,
            r.sensor_type,
            reading(r),
            paint(status_tone(r.status), &status),
            thresholds(&r.thresholds)
        );
    }
}

fn time(ts: u32) -> String {
    use racker_ipmi::words;
    match (words::ipmi_time_at(ts), words::ipmi_uptime_s(ts)) {
        (Some(at), _) => at.trim_end_matches('Z').replacen('T', " ", 1),
        (None, Some(s)) => format!("+{s}s after BMC start"),
        (None, None) => "unknown".into(),
    }
}

/// `ipmitool sel list`-like lines.
pub(super) fn sel_entries(out: &mut String, list: &[SelEntry]) {
    if list.is_empty() {
        out.push_str("SEL has no entries\n");
    }
    for e in list {
        let _ = writeln!(
            out,
            "{:>4x} | {} | {} #0x{:02x} | {} | {}",
            e.id,
            time(e.timestamp),
            e.sensor_type,
            e.sensor_number,
            if e.event.is_empty() { "-" } else { &e.event },
            if e.direction.is_empty() {
                &e.record_type
            } else {
                &e.direction
            }
        );
    }
}

pub(super) fn sel_info(out: &mut String, i: &SelInfo) {
    let _ = writeln!(out, "Version          : {}", i.version_text());
    let _ = writeln!(out, "Entries          : {}", i.entries);
    let _ = writeln!(out, "Free Space       : {} bytes", i.free_bytes);
    let _ = writeln!(out, "Last Add Time    : {}", time(i.last_add));
    let _ = writeln!(out, "Last Del Time    : {}", time(i.last_erase));
    let _ = writeln!(out, "Overflow         : {}", super::yes_no(i.overflow));
}

pub(super) fn fru(out: &mut String, f: &Fru) {
    if let Some(c) = &f.chassis {
        let _ = writeln!(out, " Chassis Type          : {:#04x}", c.chassis_type);
        let _ = writeln!(out, " Chassis Part Number   : {}", c.part_number);
        let _ = writeln!(out, " Chassis Serial        : {}", c.serial);
    }
    if let Some(b) = &f.board {
        if let Some(t) = b.mfg_unix() {
            let _ = writeln!(out, " Board Mfg Date        : {}", time(t as u32));
        }
        let _ = writeln!(out, " Board Mfg             : {}", b.manufacturer);
        let _ = writeln!(out, " Board Product         : {}", b.product);
        let _ = writeln!(out, " Board Serial          : {}", b.serial);
        let _ = writeln!(out, " Board Part Number     : {}", b.part_number);
    }
    if let Some(p) = &f.product {
        let _ = writeln!(out, " Product Manufacturer  : {}", p.manufacturer);
        let _ = writeln!(out, " Product Name          : {}", p.name);
        let _ = writeln!(out, " Product Part Number   : {}", p.part_number);
        let _ = writeln!(out, " Product Version       : {}", p.version);
        let _ = writeln!(out, " Product Serial        : {}", p.serial);
        let _ = writeln!(out, " Product Asset Tag     : {}", p.asset_tag);
    }
    if f.chassis.is_none() && f.board.is_none() && f.product.is_none() {
        out.push_str("FRU has no chassis, board or product area\n");
    }
}

pub(super) fn mc_info(out: &mut String, m: &McInfo) {
    let _ = writeln!(out, "Device ID                 : {}", m.device_id);
    let _ = writeln!(out, "Device Revision           : {}", m.device_revision);
    let _ = writeln!(out, "Firmware Revision         : {}", m.firmware);
    let _ = writeln!(out, "IPMI Version              : {}", m.ipmi_version);
    let _ = writeln!(out, "Manufacturer ID           : {}", m.manufacturer_id);
    let _ = writeln!(
        out,
        "Product ID                : {} ({:#06x})",
        m.product_id, m.product_id
    );
    let _ = writeln!(
        out,
        "Device Available          : {}",
        super::yes_no(m.available)
    );
    let _ = writeln!(
        out,
        "Supported Functions       : {}",
        m.capabilities.join(", ")
    );
    if let Some(a) = &m.aux_revision {
        let _ = writeln!(out, "Aux Firmware Rev Info     : {a}");
    }
    let _ = writeln!(
        out,
        "GUID                      : {}",
        m.guid.as_deref().unwrap_or("-")
    );
}

fn or_dash(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("-")
}

pub(super) fn lan(out: &mut String, l: &LanConfig) {
    let _ = writeln!(out, "Channel                 : {}", l.channel);
    let _ = writeln!(out, "IP Address Source       : {}", or_dash(&l.ip_source));
    let _ = writeln!(out, "IP Address              : {}", or_dash(&l.ip));
    let _ = writeln!(out, "Subnet Mask             : {}", or_dash(&l.netmask));
    let _ = writeln!(out, "MAC Address             : {}", or_dash(&l.mac));
    let _ = writeln!(out, "Default Gateway IP      : {}", or_dash(&l.gateway));
    let _ = writeln!(out, "Default Gateway MAC     : {}", or_dash(&l.gateway_mac));
    let _ = writeln!(
        out,
        "802.1q VLAN ID          : {}",
        l.vlan.map_or_else(|| "disabled".into(), |v| v.to_string())
    );
}

pub(super) fn capabilities(out: &mut String, c: &ChassisCapabilities) {
    let y = super::yes_no;
    let _ = writeln!(out, "Power Interlock         : {}", y(c.power_interlock));
    let _ = writeln!(
        out,
        "Diagnostic Interrupt    : {}",
        y(c.diagnostic_interrupt)
    );
    let _ = writeln!(
        out,
        "Front Panel Lockout     : {}",
        y(c.front_panel_lockout)
    );
    let _ = writeln!(out, "Intrusion Sensor        : {}", y(c.intrusion_sensor));
    let _ = writeln!(out, "FRU Info Device Address : {:#04x}", c.fru_device);
    let _ = writeln!(out, "SDR Device Address      : {:#04x}", c.sdr_device);
    let _ = writeln!(out, "SEL Device Address      : {:#04x}", c.sel_device);
    let _ = writeln!(out, "SM Device Address       : {:#04x}", c.sm_device);
}

pub(super) fn restart_cause(out: &mut String, r: &RestartCause) {
    let _ = writeln!(
        out,
        "System restart cause: {} (channel {})",
        r.cause, r.channel
    );
}

/// Sensor summary and newest SEL entries for `diag`.
pub(super) fn diag_extras(
    out: &mut String,
    sensors_r: &Result<Vec<SensorReading>, String>,
    sel: &Result<Vec<SelEntry>, String>,
) {
    match sensors_r {
        Ok(list) => {
            let count = |s: SensorStatus| list.iter().filter(|r| r.status == s).count();
            let _ = writeln!(
                out,
                "Sensors              : {} ({} ok, {} warning, {} critical, {} unavailable)",
                list.len(),
                count(SensorStatus::Ok),
                count(SensorStatus::Warning),
                count(SensorStatus::Critical) + count(SensorStatus::Nonrecoverable),
                count(SensorStatus::Unavailable)
            );
            for r in list.iter().filter(|r| {
                matches!(
                    r.status,
                    SensorStatus::Warning | SensorStatus::Critical | SensorStatus::Nonrecoverable
                )
            }) {
                let _ = writeln!(out, "  {}: {} ({})", r.name, reading(r), r.status.as_str());
            }
        }
        Err(e) => {
            let _ = writeln!(out, "Sensors              : unavailable ({e})");
        }
    }
    match sel {
        Ok(list) => {
            let _ = writeln!(out, "Last SEL entries     : {}", list.len());
            let mut t = String::new();
            sel_entries(&mut t, list);
            for l in t.lines().filter(|_| !list.is_empty()) {
                let _ = writeln!(out, "  {l}");
            }
        }
        Err(e) => {
            let _ = writeln!(out, "Last SEL entries     : unavailable ({e})");
        }
    }
}

/// One line summarising an output (`--one-line`).
pub(super) fn one_line(o: &Output) -> String {
    match o {
        Output::ChassisStatus(s) => format!("power {}", if s.power_on { "on" } else { "off" }),
        Output::Power(p) => format!("{p:?}").to_lowercase(),
        Output::BootFlags(f) => format!(
            "boot {} (persistent={} efi={})",
            f.device,
            super::yes_no(f.persistent),
            super::yes_no(f.efi)
        ),
        Output::AddressSource(s) => format!("address source {s:?}").to_lowercase(),
        Output::Users(u) => format!("{} users", u.len()),
        Output::Raw(r) => r
            .data
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" "),
        Output::Sensors(list) => {
            let bad: Vec<String> = list
                .iter()
                .filter(|r| r.status != SensorStatus::Ok)
                .map(|r| format!("{} {}", r.name, r.status.as_str()))
                .collect();
            if bad.is_empty() {
                format!("{} sensors ok", list.len())
            } else {
                format!("{} sensors, {}", list.len(), bad.join(", "))
            }
        }
        Output::SelInfo(i) => format!("{} entries, {} bytes free", i.entries, i.free_bytes),
        Output::Sel(list) => match list.last() {
            Some(e) => format!(
                "{} entries, newest: {} #0x{:02x} {} {}",
                list.len(),
                e.sensor_type,
                e.sensor_number,
                e.event,
                e.direction
            ),
            None => "no entries".into(),
        },
        Output::Fru(f) => match (&f.board, &f.product) {
            (_, Some(p)) => format!("{} {} serial {}", p.manufacturer, p.name, p.serial),
            (Some(b), None) => format!("{} {} serial {}", b.manufacturer, b.product, b.serial),
            _ => "no board or product area".into(),
        },
        Output::McInfo(m) => format!(
            "firmware {} IPMI {} manufacturer {} product {:#06x}",
            m.firmware, m.ipmi_version, m.manufacturer_id, m.product_id
        ),
        Output::Lan(l) => format!(
            "{} {} {}",
            or_dash(&l.ip_source),
            or_dash(&l.ip),
            or_dash(&l.mac)
        ),
        Output::ChassisCapabilities(c) => format!(
            "fru {:#04x} sdr {:#04x} sel {:#04x}",
            c.fru_device, c.sdr_device, c.sel_device
        ),
        Output::RestartCause(r) => r.cause.clone(),
        Output::Policies(p) => format!("supported: {}", p.join(", ")),
        Output::Diag(d) => format!(
            "power {}, firmware {}.{:02x}",
            if d.chassis.power_on { "on" } else { "off" },
            d.device.firmware_major,
            d.device.firmware_minor
        ),
        Output::Done => "done".into(),
        other => format!("{other:?}"),
    }
}

/// Group hosts with identical text: (host range, text), successes first
/// in host order, then failures.
pub(super) fn consolidate(lines: &[(String, String, bool)]) -> Vec<(String, String)> {
    let mut groups: BTreeMap<(bool, &str), Vec<&str>> = BTreeMap::new();
    for (host, text, ok) in lines {
        groups
            .entry((!ok, text.as_str()))
            .or_default()
            .push(host.as_str());
    }
    let mut out: Vec<(String, String)> = groups
        .into_iter()
        .map(|((_, text), hosts)| (racker_inventory::compress(&hosts), text.to_string()))
        .collect();
    // Stable order: by failure flag kept from the map, then host range.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consolidates_identical_results_into_ranges() {
        let lines = vec![
            ("node-1".to_string(), "power on".to_string(), true),
            ("node-0".to_string(), "power on".to_string(), true),
            ("node-2".to_string(), "power off".to_string(), true),
            ("node-3".to_string(), "power on".to_string(), true),
        ];
        let c = consolidate(&lines);
        assert_eq!(
            c,
            vec![
                ("node-2".to_string(), "power off".to_string()),
                ("node-[0-1,3]".to_string(), "power on".to_string()),
            ]
        );
    }

    #[test]
    fn sel_times() {
        assert_eq!(time(0x6000_0010), "2021-01-14 08:25:52");
        assert_eq!(time(5), "+5s after BMC start");
    }
}
