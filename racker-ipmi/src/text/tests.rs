use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::codec::{BootDevice, DeviceId, LastPowerEvent, PowerAction, RawResponse};
use crate::error::Error;
use crate::sdr::Thresholds;

fn sensor(name: &str, ty: &str, v: Option<f64>, unit: &str, st: SensorStatus) -> SensorReading {
    SensorReading {
        record_id: 1,
        number: 0x30,
        name: name.into(),
        sensor_type: ty.into(),
        type_code: 1,
        reading: v,
        unit: unit.into(),
        status: st,
        states: 0,
        thresholds: Thresholds {
            upper_non_critical: Some(85.0),
            upper_critical: Some(90.0),
            upper_non_recoverable: Some(95.0),
            ..Thresholds::default()
        },
    }
}

fn node() -> Node {
    let mut n = Node::new("02:52:4b:01:00:01", BmcAddress::new("127.98.7.3", 623));
    n.short_name = "node-0".into();
    n.address_source = "lease".into();
    n.bmc_mac = Some("02:52:4b:01:00:01".into());
    n.mac = Some("02:52:4b:00:00:01".into());
    n.ip = Some("172.24.213.2".into());
    n.hostname = Some("node-0.rack".into());
    n
}

fn ok(o: Output) -> FanOutResult<(), Output> {
    FanOutResult {
        key: (),
        bmc: BmcAddress::new("127.98.7.3", 623),
        result: Ok(o),
        elapsed: Duration::ZERO,
    }
}

fn power(on: bool) -> Output {
    Output::ChassisStatus(ChassisStatus::new(
        on,
        RestorePolicy::Previous,
        LastPowerEvent::default(),
    ))
}

/// `[tone:text]` marks what a terminal would colour.
fn brackets(tone: Tone, text: &str) -> String {
    format!("[{tone:?}:{text}]")
}

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
    assert_eq!(sel_time(0x6000_0010), "2021-01-14 08:25:52");
    assert_eq!(sel_time(5), "+5s after BMC start");
}

#[test]
fn sensor_table_in_ipmitool_columns_with_the_status_styled() {
    let list = [
        sensor(
            "CPU Temp",
            "Temperature",
            Some(25.0),
            "degrees C",
            SensorStatus::Ok,
        ),
        sensor(
            "12V",
            "Voltage",
            Some(12.345),
            "Volts",
            SensorStatus::Warning,
        ),
        sensor("PSU", "Power Supply", None, "", SensorStatus::Unavailable),
    ];
    let mut out = String::new();
    sensors(&mut out, &list, &Plain);
    assert_eq!(
        out,
        "Name             | Type           | Reading          | Status         | LNR LC LNC UNC UC UNR\n\
         CPU Temp         | Temperature    | 25 degrees C     | ok             | na na na 85.00 90.00 95.00\n\
         12V              | Voltage        | 12.35 Volts      | warning        | na na na 85.00 90.00 95.00\n\
         PSU              | Power Supply   | no reading       | unavailable    | na na na 85.00 90.00 95.00\n"
    );
    let mut out = String::new();
    sensors(&mut out, &list[..2], &brackets);
    assert!(out.contains("| [Good:ok            ] |"), "{out}");
    assert!(out.contains("| [Warn:warning       ] |"), "{out}");
}

#[test]
fn chassis_status_block() {
    let s = ChassisStatus::new(
        true,
        RestorePolicy::AlwaysOn,
        LastPowerEvent {
            ac_failed: true,
            on_via_ipmi: true,
            ..LastPowerEvent::default()
        },
    );
    let mut out = String::new();
    chassis_status(&mut out, &s);
    assert_eq!(
        out,
        "System Power         : on\n\
         Power Overload       : false\n\
         Power Interlock      : inactive\n\
         Main Power Fault     : false\n\
         Power Control Fault  : false\n\
         Power Restore Policy : always-on\n\
         Last Power Event     : ac-failed, command\n\
         Chassis Intrusion    : inactive\n\
         Front-Panel Lockout  : inactive\n\
         Drive Fault          : false\n\
         Cooling/Fan Fault    : false\n"
    );
}

#[test]
fn render_picks_the_layout_of_the_operation() {
    let n = node();
    let text = |op: &Operation, o: &Output| {
        let mut out = String::new();
        render(&mut out, op, &n, o, &Plain);
        out
    };
    assert_eq!(
        text(&Operation::ChassisStatus, &power(true)),
        "Chassis Power is on\n"
    );
    assert!(text(&Operation::Diag, &power(false)).starts_with("System Power         : off\n"));
    assert_eq!(
        text(
            &Operation::Power(PowerAction::Cycle),
            &Output::Power(PowerOutcome::PoweredOn)
        ),
        "power cycle: chassis was off, powered on\n"
    );
    assert_eq!(
        text(
            &Operation::Power(PowerAction::Soft),
            &Output::Power(PowerOutcome::AlreadyInState)
        ),
        "power soft: already in that state\n"
    );
    let flags = Output::BootFlags(BootFlags::new(BootDevice::Pxe, true, true));
    let set = Operation::SetBootDevice {
        device: BootDevice::Pxe,
        persistent: true,
        efi: true,
    };
    assert!(text(&set, &flags).starts_with("Set boot device. Boot flags: valid=yes"));
    assert!(text(&Operation::BootFlags, &flags).starts_with("Boot flags: valid=yes"));
    let raw = Output::Raw(RawResponse {
        netfn: 7,
        cmd: 1,
        completion_code: 0,
        data: vec![0x20, 0x81, 0x01],
    });
    assert_eq!(text(&Operation::Diag, &raw), " 20 81 01\n");
    assert_eq!(one_line(&raw), "20 81 01");
    assert_eq!(text(&Operation::SelClear, &Output::Done), "done\n");
    assert_eq!(one_line(&power(false)), "power off");
}

#[test]
fn diag_names_the_node_and_summarises_sensors_and_sel() {
    let d = Diag {
        cipher_suite: 17,
        device: DeviceId {
            device_id: 0x20,
            revision: 1,
            firmware_major: 1,
            firmware_minor: 0,
            ipmi_version: 2,
            manufacturer: 0,
            product: 0x4b52,
        },
        chassis: ChassisStatus::new(false, RestorePolicy::Previous, LastPowerEvent::default()),
        boot_flags: Err("no reply".into()),
        sensors: Ok(vec![
            sensor(
                "CPU Temp",
                "Temperature",
                Some(91.0),
                "degrees C",
                SensorStatus::Critical,
            ),
            sensor("FAN1", "Fan", Some(4000.0), "RPM", SensorStatus::Ok),
        ]),
        sel: Ok(vec![]),
    };
    let mut out = String::new();
    diag(&mut out, &node(), &d);
    let head = "BMC MAC              : 02:52:4b:01:00:01\n\
                BMC address          : 127.98.7.3:623 (from lease)\n\
                Node MAC             : 02:52:4b:00:00:01\n\
                Internal IP          : 172.24.213.2\n\
                Host name            : node-0.rack\n\
                Cipher suite         : 17\n\
                BMC firmware         : 1.00 (manufacturer 0, product 0x4b52)\n\
                System Power         : off\n";
    assert!(out.starts_with(head), "{out}");
    assert!(
        out.ends_with(
            "Boot flags: unavailable (no reply)\n\
             Sensors              : 2 (1 ok, 0 warning, 1 critical, 0 unavailable)\n\
             \x20 CPU Temp: 91 degrees C (critical)\n\
             Last SEL entries     : 0\n"
        ),
        "{out}"
    );
}

#[test]
fn listing_blocks_lines_and_consolidated_groups() {
    let op = Operation::ChassisStatus;
    let n = node();
    let mut other = node();
    other.short_name = "node-1".into();
    let failed = FanOutResult {
        key: (),
        bmc: BmcAddress::new("127.98.7.4", 623),
        result: Err::<Output, _>(Error::InvalidArgument("nope".into())),
        elapsed: Duration::ZERO,
    };

    let mut plain = Listing::new(&op, Layout::default(), &Plain);
    assert_eq!(plain.push(&n, &ok(power(true))), "Chassis Power is on\n");
    assert_eq!(plain.finish(), "");

    let mut headed = Listing::new(&op, Layout::default().headed(true), &brackets);
    assert_eq!(
        headed.push(&n, &ok(power(true))),
        "== 02:52:4b:01:00:01 (127.98.7.3:623) ==\nChassis Power is on\n\n"
    );
    assert_eq!(
        headed.push(&other, &failed),
        "== 02:52:4b:01:00:01 (127.98.7.3:623) ==\n[Bad:error:] invalid argument: nope\n\n"
    );

    let mut lines = Listing::new(&op, Layout::default().one_line(true).headed(true), &Plain);
    assert_eq!(lines.push(&n, &ok(power(false))), "node-0: power off\n");

    let mut grouped = Listing::new(&op, Layout::default().consolidate(true), &Plain);
    assert_eq!(grouped.push(&n, &ok(power(true))), "");
    assert_eq!(grouped.push(&other, &ok(power(true))), "");
    let mut third = node();
    third.short_name = "node-2".into();
    assert_eq!(grouped.push(&third, &failed), "");
    assert_eq!(
        grouped.finish(),
        "== node-2 ==\nerror: invalid argument: nope\n== node-[0-1] ==\nChassis Power is on\n"
    );

    let mut grouped = Listing::new(
        &op,
        Layout::default().consolidate(true).one_line(true),
        &Plain,
    );
    grouped.push(&n, &ok(power(true)));
    grouped.push(&other, &ok(power(true)));
    assert_eq!(grouped.finish(), "node-[0-1]: power on\n");
}

#[test]
fn a_raw_reply_with_a_completion_code_is_an_error() {
    let op = Operation::Raw(crate::RawRequest::new(6, 0xff, vec![]));
    let r = ok(Output::Raw(RawResponse {
        netfn: 7,
        cmd: 0xff,
        completion_code: 0xc1,
        data: vec![],
    }));
    let mut l = Listing::new(&op, Layout::default().one_line(true), &Plain);
    assert_eq!(
        l.push(&node(), &r),
        "node-0: error: 127.98.7.3:623: completion code 0xc1\n"
    );
}

fn arb_status() -> impl Strategy<Value = SensorStatus> {
    prop_oneof![
        Just(SensorStatus::Ok),
        Just(SensorStatus::Warning),
        Just(SensorStatus::Critical),
        Just(SensorStatus::Nonrecoverable),
        Just(SensorStatus::Unavailable),
    ]
}

fn arb_reading() -> impl Strategy<Value = SensorReading> {
    // Names and units as an SDR's ID string could hold them, minus the
    // column separator and line breaks.
    let text = "[^|\n\r]{0,24}";
    let value = prop_oneof![Just(None), any::<f64>().prop_map(Some)];
    let threshold = prop_oneof![Just(None), any::<f64>().prop_map(Some)];
    (
        text,
        text,
        value,
        text,
        arb_status(),
        any::<u16>(),
        proptest::collection::vec(threshold, 6),
    )
        .prop_map(
            |(name, ty, reading, unit, status, states, t)| SensorReading {
                record_id: 1,
                number: 1,
                name,
                sensor_type: ty,
                type_code: 1,
                reading,
                unit,
                status,
                states,
                thresholds: Thresholds {
                    lower_non_recoverable: t[0],
                    lower_critical: t[1],
                    lower_non_critical: t[2],
                    upper_non_critical: t[3],
                    upper_critical: t[4],
                    upper_non_recoverable: t[5],
                },
            },
        )
}

proptest! {
    /// Every line of the sensor table has the five columns, each sensor
    /// one line, and the one-line summary stays one line.
    #[test]
    fn sensor_table_has_fixed_columns(list in proptest::collection::vec(arb_reading(), 0..12)) {
        let mut out = String::new();
        sensors(&mut out, &list, &brackets);
        let lines: Vec<&str> = out.lines().collect();
        prop_assert_eq!(lines.len(), list.len() + 1);
        for line in &lines {
            prop_assert_eq!(line.matches(" | ").count(), 4, "{:?}", line);
            let thresholds = line.rsplit(" | ").next().unwrap_or_default();
            prop_assert_eq!(thresholds.split(' ').count(), 6, "{:?}", line);
        }
        for (line, r) in lines[1..].iter().zip(&list) {
            prop_assert!(line.starts_with(&r.name));
            let marked = format!("[{:?}:{:<14}]", Tone::of_sensor(r.status), r.status.as_str());
            prop_assert!(line.contains(&marked), "{:?}", line);
        }
        prop_assert!(!one_line(&Output::Sensors(list)).contains('\n'));
    }

    /// SEL lines keep their five columns for any entry.
    #[test]
    fn sel_lines_have_fixed_columns(
        entries in proptest::collection::vec(
            (any::<u16>(), any::<u32>(), "[^|\n\r]{0,16}", any::<u8>(), "[^|\n\r]{0,16}", "[^|\n\r]{0,10}"),
            1..8,
        )
    ) {
        let list: Vec<SelEntry> = entries
            .into_iter()
            .map(|(id, timestamp, sensor_type, sensor_number, event, direction)| SelEntry {
                id,
                record_type: "system".into(),
                timestamp,
                sensor_type,
                sensor_type_code: 0,
                sensor_number,
                event,
                direction,
                raw: vec![],
            })
            .collect();
        let mut out = String::new();
        sel_entries(&mut out, &list);
        prop_assert_eq!(out.lines().count(), list.len());
        for line in out.lines() {
            prop_assert_eq!(line.matches(" | ").count(), 4, "{:?}", line);
        }
    }
}

/// The key/value blocks byte for byte as `racker ipmi` printed them against
/// racker-sim's BMC before this module existed.
#[test]
fn key_value_blocks_in_ipmitool_layout() {
    let mut out = String::new();
    mc_info(
        &mut out,
        &McInfo {
            device_id: 32,
            device_revision: 1,
            firmware: "1.00".into(),
            ipmi_version: "2.0".into(),
            manufacturer_id: 0,
            product_id: 0x4b52,
            available: true,
            capabilities: vec!["sensor".into(), "sdr".into(), "chassis".into()],
            aux_revision: Some("00000000".into()),
            guid: Some("0100014b-5202-0080-4000-52454b434152".into()),
        },
    );
    assert_eq!(
        out,
        "Device ID                 : 32\n\
         Device Revision           : 1\n\
         Firmware Revision         : 1.00\n\
         IPMI Version              : 2.0\n\
         Manufacturer ID           : 0\n\
         Product ID                : 19282 (0x4b52)\n\
         Device Available          : yes\n\
         Supported Functions       : sensor, sdr, chassis\n\
         Aux Firmware Rev Info     : 00000000\n\
         GUID                      : 0100014b-5202-0080-4000-52454b434152\n"
    );

    let mut out = String::new();
    lan(
        &mut out,
        &LanConfig {
            channel: 1,
            ip_source: Some("dhcp".into()),
            ip: Some("127.98.7.3".into()),
            netmask: Some("255.255.255.0".into()),
            mac: Some("02:52:4b:01:00:01".into()),
            gateway: Some("0.0.0.0".into()),
            gateway_mac: None,
            vlan: None,
        },
    );
    assert_eq!(
        out,
        "Channel                 : 1\n\
         IP Address Source       : dhcp\n\
         IP Address              : 127.98.7.3\n\
         Subnet Mask             : 255.255.255.0\n\
         MAC Address             : 02:52:4b:01:00:01\n\
         Default Gateway IP      : 0.0.0.0\n\
         Default Gateway MAC     : -\n\
         802.1q VLAN ID          : disabled\n"
    );

    let mut out = String::new();
    capabilities(
        &mut out,
        &ChassisCapabilities {
            power_interlock: false,
            diagnostic_interrupt: false,
            front_panel_lockout: true,
            intrusion_sensor: false,
            fru_device: 0x20,
            sdr_device: 0x20,
            sel_device: 0x20,
            sm_device: 0x20,
            bridge_device: None,
        },
    );
    assert_eq!(
        out,
        "Power Interlock         : no\n\
         Diagnostic Interrupt    : no\n\
         Front Panel Lockout     : yes\n\
         Intrusion Sensor        : no\n\
         FRU Info Device Address : 0x20\n\
         SDR Device Address      : 0x20\n\
         SEL Device Address      : 0x20\n\
         SM Device Address       : 0x20\n"
    );

    let mut out = String::new();
    restart_cause(
        &mut out,
        &RestartCause {
            code: 0,
            cause: "unknown".into(),
            channel: 1,
        },
    );
    assert_eq!(out, "System restart cause: unknown (channel 1)\n");

    let mut out = String::new();
    sel_info(
        &mut out,
        &SelInfo {
            version: 0x51,
            entries: 0,
            free_bytes: 4096,
            last_add: 0xFFFF_FFFF,
            last_erase: 0x6000_0010,
            overflow: false,
        },
    );
    assert_eq!(
        out,
        "Version          : 1.5\n\
         Entries          : 0\n\
         Free Space       : 4096 bytes\n\
         Last Add Time    : unknown\n\
         Last Del Time    : 2021-01-14 08:25:52\n\
         Overflow         : no\n"
    );
}

#[test]
fn fru_users_and_sel_lines() {
    let f = Fru {
        chassis: Some(crate::fru::ChassisInfo {
            chassis_type: 0x17,
            part_number: "RKR-CH-1U".into(),
            serial: "SIM-C".into(),
            extra: vec![],
        }),
        board: Some(crate::fru::BoardInfo {
            manufacturer: "Racker".into(),
            product: "Racker Simulated Board".into(),
            serial: "SIM-B".into(),
            part_number: "RKR-MB-1".into(),
            ..Default::default()
        }),
        product: Some(crate::fru::ProductInfo {
            manufacturer: "Racker".into(),
            name: "Racker Simulated Server".into(),
            part_number: "RKR-1U-SIM".into(),
            version: "1.0".into(),
            serial: "SIM".into(),
            ..Default::default()
        }),
    };
    let mut out = String::new();
    fru(&mut out, &f);
    assert_eq!(
        out,
        " Chassis Type          : 0x17\n\
         \x20Chassis Part Number   : RKR-CH-1U\n\
         \x20Chassis Serial        : SIM-C\n\
         \x20Board Mfg             : Racker\n\
         \x20Board Product         : Racker Simulated Board\n\
         \x20Board Serial          : SIM-B\n\
         \x20Board Part Number     : RKR-MB-1\n\
         \x20Product Manufacturer  : Racker\n\
         \x20Product Name          : Racker Simulated Server\n\
         \x20Product Part Number   : RKR-1U-SIM\n\
         \x20Product Version       : 1.0\n\
         \x20Product Serial        : SIM\n\
         \x20Product Asset Tag     : \n"
    );
    assert_eq!(
        one_line(&Output::Fru(Box::new(f))),
        "Racker Racker Simulated Server serial SIM"
    );
    let mut out = String::new();
    fru(&mut out, &Fru::default());
    assert_eq!(out, "FRU has no chassis, board or product area\n");

    let access = |enabled, privilege| crate::codec::UserAccess {
        max_users: 10,
        enabled_users: 1,
        enabled,
        ipmi_messaging: enabled == Some(true),
        link_auth: enabled == Some(true),
        callback_only: false,
        privilege,
    };
    let list = [
        UserInfo {
            id: 1,
            name: String::new(),
            access: access(Some(false), crate::Privilege::NoAccess),
        },
        UserInfo {
            id: 2,
            name: "USER".into(),
            access: access(Some(true), crate::Privilege::Administrator),
        },
        UserInfo {
            id: 10,
            name: "x".into(),
            access: access(None, crate::Privilege::NoAccess),
        },
    ];
    let mut out = String::new();
    users(&mut out, &list);
    assert_eq!(
        out,
        "ID  Name              Enabled  IPMI Msg  Link Auth  Privilege\n\
         1                     no       no        no         NoAccess\n\
         2   USER              yes      yes       yes        Administrator\n\
         10  x                 -        no        no         NoAccess\n"
    );
    assert_eq!(one_line(&Output::Users(list.to_vec())), "3 users");

    let entry = |id, event: &str, direction: &str| SelEntry {
        id,
        record_type: "system".into(),
        timestamp: 0x6000_0010,
        sensor_type: "Power Unit".into(),
        sensor_type_code: 9,
        sensor_number: 0x10,
        event: event.into(),
        direction: direction.into(),
        raw: vec![],
    };
    let list = [
        entry(1, "Power Off / Power Down", "asserted"),
        entry(0x1a, "", ""),
    ];
    let mut out = String::new();
    sel_entries(&mut out, &list);
    assert_eq!(
        out,
        "   1 | 2021-01-14 08:25:52 | Power Unit #0x10 | Power Off / Power Down | asserted\n  \
         1a | 2021-01-14 08:25:52 | Power Unit #0x10 | - | system\n"
    );
    assert_eq!(
        one_line(&Output::Sel(list.to_vec())),
        "2 entries, newest: Power Unit #0x10  "
    );
    let mut out = String::new();
    sel_entries(&mut out, &[]);
    assert_eq!(out, "SEL has no entries\n");
    assert_eq!(one_line(&Output::Sel(vec![])), "no entries");
}
