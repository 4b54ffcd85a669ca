//! Text in ipmitool's layout, for tools that replace ipmitool scripts.
//!
//! Every function formats typed results into a `String` (nothing is
//! printed): `Chassis Power is on`, the `chassis status` and `mc info`
//! key/value blocks, the `sensor list` table, `sel list` lines, FRU and LAN
//! blocks. [`render`] picks the layout for an [`Operation`]'s [`Output`],
//! [`one_line`] summarises it in one line, and a [`Listing`] lays out the
//! results of a fan-out (a block per BMC headed `== label (address) ==`,
//! `host: summary` lines, or hosts with identical results consolidated into
//! host ranges such as `node-[0-3]`).
//!
//! Colour is the caller's choice: the few spans that may stand out (a
//! sensor's status, the `error:` word) go through a [`Style`] with their
//! [`Tone`]; [`Plain`] leaves them as they are.
//!
//! ```
//! use racker_ipmi::text::{self, Plain};
//! use racker_ipmi::{BootDevice, BootFlags};
//!
//! let mut out = String::new();
//! text::boot_flags(&mut out, &BootFlags::new(BootDevice::Pxe, true, true));
//! assert!(out.starts_with("Boot flags: valid=yes persistent=yes efi=yes device=pxe"));
//! # let _ = Plain;
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::client::BmcAddress;
use crate::codec::{BootFlags, ChassisStatus, PowerOutcome, RestorePolicy, UserInfo};
use crate::fanout::{Diag, FanOutResult, Operation, Output};
use crate::fru::Fru;
use crate::monitor::{ChassisCapabilities, LanConfig, McInfo, RestartCause};
use crate::sdr::{SensorReading, SensorStatus};
use crate::sel::{SelEntry, SelInfo};
use crate::words;

/// How a span of text may stand out on a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tone {
    /// As is.
    Plain,
    /// Fine (a sensor within its thresholds).
    Good,
    /// A warning (a non-critical threshold crossed).
    Warn,
    /// Bad (a critical threshold crossed, an error).
    Bad,
}

impl Tone {
    /// Green for ok, yellow for a warning, red beyond a critical threshold.
    pub fn of_sensor(status: SensorStatus) -> Tone {
        match status {
            SensorStatus::Ok => Tone::Good,
            SensorStatus::Warning => Tone::Warn,
            SensorStatus::Critical | SensorStatus::Nonrecoverable => Tone::Bad,
            SensorStatus::Unavailable => Tone::Plain,
        }
    }
}

/// Marks up a span of the given tone (for example with terminal colour
/// codes). Any `Fn(Tone, &str) -> String` is a `Style`.
pub trait Style {
    /// `text` as it should appear.
    fn paint(&self, tone: Tone, text: &str) -> String;
}

impl<F: Fn(Tone, &str) -> String> Style for F {
    fn paint(&self, tone: Tone, text: &str) -> String {
        self(tone, text)
    }
}

/// No markup.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plain;

impl Style for Plain {
    fn paint(&self, _: Tone, text: &str) -> String {
        text.to_owned()
    }
}

/// What the caller knows about the node behind a BMC: `diag` prints it, a
/// [`Listing`] names results by it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Node {
    /// How block headers name the BMC (e.g. its MAC or the address given).
    pub label: String,
    /// How one-line and consolidated output name it (e.g. the short host
    /// name).
    pub short_name: String,
    /// Where IPMI goes.
    pub address: BmcAddress,
    /// Where the address came from (e.g. `lease`, `plan`, `host`).
    pub address_source: String,
    /// The BMC's MAC.
    pub bmc_mac: Option<String>,
    /// The node's primary MAC.
    pub mac: Option<String>,
    /// The node's IP.
    pub ip: Option<String>,
    /// The node's host name.
    pub hostname: Option<String>,
}

impl Node {
    /// A node known only by its BMC: `label` names it everywhere.
    pub fn new(label: impl Into<String>, address: BmcAddress) -> Node {
        let label = label.into();
        Node {
            short_name: label.clone(),
            label,
            address,
            address_source: String::new(),
            bmc_mac: None,
            mac: None,
            ip: None,
            hostname: None,
        }
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

fn active(b: bool) -> &'static str {
    if b { "active" } else { "inactive" }
}

fn opt(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("-")
}

fn hex(bytes: &[u8], sep: &str) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(sep)
}

/// `ipmitool chassis status`.
pub fn chassis_status(out: &mut String, s: &ChassisStatus) {
    let _ = writeln!(out, "System Power         : {}", on_off(s.power_on));
    let _ = writeln!(out, "Power Overload       : {}", s.power_overload);
    let _ = writeln!(out, "Power Interlock      : {}", active(s.interlock));
    let _ = writeln!(out, "Main Power Fault     : {}", s.power_fault);
    let _ = writeln!(out, "Power Control Fault  : {}", s.power_control_fault);
    let policy = match s.restore_policy {
        RestorePolicy::AlwaysOff => "always-off",
        RestorePolicy::Previous => "previous",
        RestorePolicy::AlwaysOn => "always-on",
        _ => "unknown",
    };
    let _ = writeln!(out, "Power Restore Policy : {policy}");
    let e = &s.last_power_event;
    let events: Vec<&str> = [
        (e.ac_failed, "ac-failed"),
        (e.overload, "overload"),
        (e.interlock, "interlock"),
        (e.fault, "fault"),
        (e.on_via_ipmi, "command"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect();
    let _ = writeln!(out, "Last Power Event     : {}", events.join(", "));
    let _ = writeln!(out, "Chassis Intrusion    : {}", active(s.intrusion));
    let _ = writeln!(
        out,
        "Front-Panel Lockout  : {}",
        active(s.front_panel_lockout)
    );
    let _ = writeln!(out, "Drive Fault          : {}", s.drive_fault);
    let _ = writeln!(out, "Cooling/Fan Fault    : {}", s.fan_fault);
}

/// Boot parameter 5 in one line, with its raw bytes.
pub fn boot_flags(out: &mut String, f: &BootFlags) {
    let _ = writeln!(
        out,
        "Boot flags: valid={} persistent={} efi={} device={} (data {})",
        yes_no(f.valid),
        yes_no(f.persistent),
        yes_no(f.efi),
        f.device,
        hex(&f.raw, " ")
    );
}

/// `ipmitool user list`-like table.
pub fn users(out: &mut String, users: &[UserInfo]) {
    out.push_str("ID  Name              Enabled  IPMI Msg  Link Auth  Privilege\n");
    for u in users {
        let _ = writeln!(
            out,
            "{:<3} {:<17} {:<8} {:<9} {:<10} {:?}",
            u.id,
            u.name,
            u.access.enabled.map_or("-", yes_no),
            yes_no(u.access.ipmi_messaging),
            yes_no(u.access.link_auth),
            u.access.privilege
        );
    }
}

/// A sensor's reading with its unit (`45 degrees C`, `12.25 Volts`), its
/// state bits for discrete sensors, or `no reading`.
pub fn reading(r: &SensorReading) -> String {
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

/// A threshold: two decimals, or `na`.
struct Thr(Option<f64>);

impl std::fmt::Display for Thr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(v) => write!(f, "{v:.2}"),
            None => f.write_str("na"),
        }
    }
}

/// `ipmitool sensor`-like table: name | type | reading | status |
/// thresholds, the status painted in its [`Tone::of_sensor`].
pub fn sensors(out: &mut String, list: &[SensorReading], style: &dyn Style) {
    let _ = writeln!(
        out,
        "{:<16} | {:<14} | {:<16} | {:<14} | LNR LC LNC UNC UC UNR",
        "Name", "Type", "Reading", "Status"
    );
    for r in list {
        // Padded first: colour codes take no room on a terminal.
        let status = format!("{:<14}", r.status.as_str());
        let t = &r.thresholds;
        let _ = writeln!(
            out,
            "{:<16} | {:<14} | {:<16} | {} | {} {} {} {} {} {}",
            r.name,
            r.sensor_type,
            reading(r),
            style.paint(Tone::of_sensor(r.status), &status),
            Thr(t.lower_non_recoverable),
            Thr(t.lower_critical),
            Thr(t.lower_non_critical),
            Thr(t.upper_non_critical),
            Thr(t.upper_critical),
            Thr(t.upper_non_recoverable)
        );
    }
}

/// A SEL timestamp: UTC date and time, seconds since the BMC started, or
/// `unknown`.
pub fn sel_time(ts: u32) -> String {
    match (words::ipmi_time_at(ts), words::ipmi_uptime_s(ts)) {
        (Some(at), _) => at.trim_end_matches('Z').replacen('T', " ", 1),
        (None, Some(s)) => format!("+{s}s after BMC start"),
        (None, None) => "unknown".into(),
    }
}

/// `ipmitool sel list`-like lines.
pub fn sel_entries(out: &mut String, list: &[SelEntry]) {
    if list.is_empty() {
        out.push_str("SEL has no entries\n");
    }
    for e in list {
        let _ = writeln!(
            out,
            "{:>4x} | {} | {} #0x{:02x} | {} | {}",
            e.id,
            sel_time(e.timestamp),
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

/// `ipmitool sel info`.
pub fn sel_info(out: &mut String, i: &SelInfo) {
    let _ = writeln!(out, "Version          : {}", i.version_text());
    let _ = writeln!(out, "Entries          : {}", i.entries);
    let _ = writeln!(out, "Free Space       : {} bytes", i.free_bytes);
    let _ = writeln!(out, "Last Add Time    : {}", sel_time(i.last_add));
    let _ = writeln!(out, "Last Del Time    : {}", sel_time(i.last_erase));
    let _ = writeln!(out, "Overflow         : {}", yes_no(i.overflow));
}

/// `ipmitool fru print`.
pub fn fru(out: &mut String, f: &Fru) {
    if let Some(c) = &f.chassis {
        let _ = writeln!(out, " Chassis Type          : {:#04x}", c.chassis_type);
        let _ = writeln!(out, " Chassis Part Number   : {}", c.part_number);
        let _ = writeln!(out, " Chassis Serial        : {}", c.serial);
    }
    if let Some(b) = &f.board {
        if let Some(t) = b.mfg_unix() {
            let _ = writeln!(out, " Board Mfg Date        : {}", sel_time(t as u32));
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

/// `ipmitool mc info`.
pub fn mc_info(out: &mut String, m: &McInfo) {
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
    let _ = writeln!(out, "Device Available          : {}", yes_no(m.available));
    let _ = writeln!(
        out,
        "Supported Functions       : {}",
        m.capabilities.join(", ")
    );
    if let Some(a) = &m.aux_revision {
        let _ = writeln!(out, "Aux Firmware Rev Info     : {a}");
    }
    let _ = writeln!(out, "GUID                      : {}", opt(&m.guid));
}

/// `ipmitool lan print`.
pub fn lan(out: &mut String, l: &LanConfig) {
    let _ = writeln!(out, "Channel                 : {}", l.channel);
    let _ = writeln!(out, "IP Address Source       : {}", opt(&l.ip_source));
    let _ = writeln!(out, "IP Address              : {}", opt(&l.ip));
    let _ = writeln!(out, "Subnet Mask             : {}", opt(&l.netmask));
    let _ = writeln!(out, "MAC Address             : {}", opt(&l.mac));
    let _ = writeln!(out, "Default Gateway IP      : {}", opt(&l.gateway));
    let _ = writeln!(out, "Default Gateway MAC     : {}", opt(&l.gateway_mac));
    let _ = writeln!(
        out,
        "802.1q VLAN ID          : {}",
        l.vlan.map_or_else(|| "disabled".into(), |v| v.to_string())
    );
}

/// Get Chassis Capabilities.
pub fn capabilities(out: &mut String, c: &ChassisCapabilities) {
    let y = yes_no;
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

/// `ipmitool chassis restart_cause`.
pub fn restart_cause(out: &mut String, r: &RestartCause) {
    let _ = writeln!(
        out,
        "System restart cause: {} (channel {})",
        r.cause, r.channel
    );
}

/// What `diag` prints: the node, the BMC, chassis status, boot flags, a
/// sensor summary (with the sensors beyond a threshold) and the newest SEL
/// entries.
pub fn diag(out: &mut String, node: &Node, d: &Diag) {
    let _ = writeln!(out, "BMC MAC              : {}", opt(&node.bmc_mac));
    let _ = writeln!(
        out,
        "BMC address          : {} (from {})",
        node.address, node.address_source
    );
    let _ = writeln!(out, "Node MAC             : {}", opt(&node.mac));
    let _ = writeln!(out, "Internal IP          : {}", opt(&node.ip));
    let _ = writeln!(out, "Host name            : {}", opt(&node.hostname));
    let _ = writeln!(out, "Cipher suite         : {}", d.cipher_suite);
    let _ = writeln!(
        out,
        "BMC firmware         : {}.{:02x} (manufacturer {}, product {:#06x})",
        d.device.firmware_major, d.device.firmware_minor, d.device.manufacturer, d.device.product
    );
    chassis_status(out, &d.chassis);
    match &d.boot_flags {
        Ok(f) => boot_flags(out, f),
        Err(e) => {
            let _ = writeln!(out, "Boot flags: unavailable ({e})");
        }
    }
    match &d.sensors {
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
    match &d.sel {
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

/// The text block for `op`'s output `o` from the BMC of `node`.
pub fn render(out: &mut String, op: &Operation, node: &Node, o: &Output, style: &dyn Style) {
    match (op, o) {
        (Operation::ChassisStatus, Output::ChassisStatus(s)) => {
            let _ = writeln!(out, "Chassis Power is {}", on_off(s.power_on));
        }
        (Operation::Power(action), Output::Power(p)) => {
            let what = format!("{action:?}").to_lowercase();
            let _ = match p {
                PowerOutcome::Done => writeln!(out, "power {what}: done"),
                PowerOutcome::AlreadyInState => {
                    writeln!(out, "power {what}: already in that state")
                }
                PowerOutcome::PoweredOn => {
                    writeln!(out, "power {what}: chassis was off, powered on")
                }
            };
        }
        (_, Output::ChassisStatus(s)) => chassis_status(out, s),
        (Operation::SetBootDevice { .. }, Output::BootFlags(f)) => {
            out.push_str("Set boot device. ");
            boot_flags(out, f);
        }
        (_, Output::BootFlags(f)) => boot_flags(out, f),
        (_, Output::AddressSource(s)) => {
            let _ = writeln!(out, "IP address source: {s:?}");
        }
        (_, Output::Users(list)) => users(out, list),
        (_, Output::Raw(r)) => {
            let _ = writeln!(out, " {}", hex(&r.data, " "));
        }
        (_, Output::Diag(d)) => diag(out, node, d),
        (_, Output::Sensors(list)) => sensors(out, list, style),
        (_, Output::SelInfo(i)) => sel_info(out, i),
        (_, Output::Sel(list)) => sel_entries(out, list),
        (_, Output::Fru(f)) => fru(out, f),
        (_, Output::McInfo(m)) => mc_info(out, m),
        (_, Output::Lan(l)) => lan(out, l),
        (_, Output::ChassisCapabilities(c)) => capabilities(out, c),
        (_, Output::RestartCause(r)) => restart_cause(out, r),
        (_, Output::Policies(p)) => {
            let _ = writeln!(out, "Supported restore policies: {}", p.join(", "));
        }
        (_, Output::Done) => out.push_str("done\n"),
        // A power outcome of another operation does not happen.
        (_, other @ Output::Power(_)) => {
            let _ = writeln!(out, "{other:?}");
        }
    }
}

/// One line summarising an output (`power on`, `8 sensors ok`, ...).
pub fn one_line(o: &Output) -> String {
    match o {
        Output::ChassisStatus(s) => format!("power {}", on_off(s.power_on)),
        Output::Power(p) => format!("{p:?}").to_lowercase(),
        Output::BootFlags(f) => format!(
            "boot {} (persistent={} efi={})",
            f.device,
            yes_no(f.persistent),
            yes_no(f.efi)
        ),
        Output::AddressSource(s) => format!("address source {s:?}").to_lowercase(),
        Output::Users(u) => format!("{} users", u.len()),
        Output::Raw(r) => hex(&r.data, " "),
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
        Output::Lan(l) => format!("{} {} {}", opt(&l.ip_source), opt(&l.ip), opt(&l.mac)),
        Output::ChassisCapabilities(c) => format!(
            "fru {:#04x} sdr {:#04x} sel {:#04x}",
            c.fru_device, c.sdr_device, c.sel_device
        ),
        Output::RestartCause(r) => r.cause.clone(),
        Output::Policies(p) => format!("supported: {}", p.join(", ")),
        Output::Diag(d) => format!(
            "power {}, firmware {}.{:02x}",
            on_off(d.chassis.power_on),
            d.device.firmware_major,
            d.device.firmware_minor
        ),
        Output::Done => "done".into(),
    }
}

/// Group hosts with identical text: (host range, text), sorted by host
/// range (successes before failures for the same range).
pub fn consolidate(lines: &[(String, String, bool)]) -> Vec<(String, String)> {
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
    // Stable sort: groups with the same range keep the map's order.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// How a [`Listing`] lays results out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Layout {
    /// `short name: summary` lines instead of blocks.
    pub one_line: bool,
    /// Hold results back and print hosts with identical text once, as a
    /// host range, at the end.
    pub consolidate: bool,
    /// Head each block with `== label (address) ==` and end it with an
    /// empty line (for more than one BMC).
    pub headed: bool,
}

impl Layout {
    /// `short name: summary` lines.
    pub fn one_line(mut self, yes: bool) -> Self {
        self.one_line = yes;
        self
    }

    /// Consolidate identical results.
    pub fn consolidate(mut self, yes: bool) -> Self {
        self.consolidate = yes;
        self
    }

    /// Headed blocks.
    pub fn headed(mut self, yes: bool) -> Self {
        self.headed = yes;
        self
    }
}

/// Lays out the results of one operation against one or many BMCs: a
/// block (or line) per result as it arrives, then the consolidated groups.
pub struct Listing<'a> {
    op: &'a Operation,
    layout: Layout,
    style: &'a dyn Style,
    held: Vec<(String, String, bool)>,
}

impl std::fmt::Debug for Listing<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listing")
            .field("op", &self.op)
            .field("layout", &self.layout)
            .field("held", &self.held.len())
            .finish()
    }
}

impl<'a> Listing<'a> {
    /// A listing of `op`'s results.
    pub fn new(op: &'a Operation, layout: Layout, style: &'a dyn Style) -> Self {
        Listing {
            op,
            layout,
            style,
            held: Vec::new(),
        }
    }

    /// The text to show now for the result `r` from `node`'s BMC (empty
    /// when consolidating). A failure is `error: message`, `error:` in
    /// [`Tone::Bad`].
    pub fn push<K>(&mut self, node: &Node, r: &FanOutResult<K, Output>) -> String {
        let failure = r.failure();
        let text = match (&failure, r.result.as_ref().ok()) {
            (None, Some(o)) if self.layout.one_line => one_line(o),
            (None, Some(o)) => {
                let mut t = String::new();
                render(&mut t, self.op, node, o, self.style);
                t
            }
            (failure, _) => {
                let message = failure.as_ref().map(|f| f.1.as_str()).unwrap_or_default();
                format!("{} {message}\n", self.style.paint(Tone::Bad, "error:"))
            }
        };
        if self.layout.consolidate {
            self.held
                .push((node.short_name.clone(), text, failure.is_none()));
            String::new()
        } else if self.layout.one_line {
            format!("{}: {}\n", node.short_name, text.trim_end())
        } else if self.layout.headed {
            format!("== {} ({}) ==\n{text}\n", node.label, node.address)
        } else {
            text
        }
    }

    /// The consolidated groups (empty unless consolidating).
    pub fn finish(self) -> String {
        let mut out = String::new();
        for (hosts, text) in consolidate(&self.held) {
            if self.layout.one_line {
                let _ = writeln!(out, "{hosts}: {}", text.trim_end());
            } else {
                let _ = writeln!(out, "== {hosts} ==");
                out.push_str(&text);
                if !text.ends_with('\n') {
                    out.push('\n');
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
