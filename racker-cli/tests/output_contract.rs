//! The output contract (docs/output.md): every reporting command, run with
//! `-o json` against a simulated rack (`racker sim up --pxe-dhcp`) before
//! and after a bootstrap, prints one document that
//! - validates against docs/output.schema.json,
//! - leads with `schema_version` and `kind`,
//! - uses none of the retired spellings (`primary_mac`, `bmc_address`,
//!   `power_on`, `{"Ok": ...}`, ...),
//!
//! and matches its reviewed insta snapshot (ports, times, paths redacted).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::Value;

/// Keys the contract replaced; none may appear anywhere in a document.
const RETIRED_KEYS: [&str; 11] = [
    "primary_mac",
    "node_mac",
    "internal_ip",
    "bmc_address",
    "ipmi_address",
    "power_on",
    "bmc_reached",
    "os_provisioned",
    "label",
    "Ok",
    "Err",
];

// ---------------------------------------------------------------- schema

/// A JSON Schema (2020-12) subset checker, enough for
/// docs/output.schema.json: `$ref` into `$defs`, `type` (one or a list),
/// `const`, `enum`, `pattern`, `minimum`/`maximum`, `required`,
/// `properties`, `items`, `oneOf`.
struct Schema {
    root: Value,
}

impl Schema {
    fn load() -> Self {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/output.schema.json");
        let root = serde_json::from_slice(&std::fs::read(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Self { root }
    }

    /// Every violation of the root schema by `doc`, with its JSON path.
    fn violations(&self, doc: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        self.check(&self.root, doc, "$", &mut errors);
        errors
    }

    fn check(&self, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            let name = r.strip_prefix("#/$defs/").expect("local $ref");
            let def = self.root["$defs"]
                .get(name)
                .unwrap_or_else(|| panic!("no $defs/{name}"));
            return self.check(def, v, at, errors);
        }
        if let Some(t) = schema.get("type") {
            let types: Vec<&str> = match t {
                Value::String(s) => vec![s.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => panic!("bad type {t}"),
            };
            if !types.iter().any(|t| is_type(v, t)) {
                errors.push(format!("{at}: {v} is not {types:?}"));
                return;
            }
        }
        if let Some(c) = schema.get("const")
            && v != c
        {
            errors.push(format!("{at}: {v} is not {c}"));
        }
        if let Some(e) = schema.get("enum").and_then(Value::as_array)
            && !e.contains(v)
        {
            errors.push(format!("{at}: {v} is not one of {e:?}"));
        }
        if let (Some(p), Some(s)) = (schema.get("pattern").and_then(Value::as_str), v.as_str())
            && !regex::Regex::new(p).unwrap().is_match(s)
        {
            errors.push(format!("{at}: {s:?} does not match {p}"));
        }
        if let Some(n) = v.as_f64() {
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                && n < min
            {
                errors.push(format!("{at}: {n} < {min}"));
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                && n > max
            {
                errors.push(format!("{at}: {n} > {max}"));
            }
        }
        if let Some(obj) = v.as_object() {
            for key in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !obj.contains_key(key) {
                    errors.push(format!("{at}: missing {key:?}"));
                }
            }
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (key, sub) in props {
                    if let Some(value) = obj.get(key) {
                        self.check(sub, value, &format!("{at}.{key}"), errors);
                    }
                }
            }
        }
        if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
            for (i, item) in arr.iter().enumerate() {
                self.check(items, item, &format!("{at}[{i}]"), errors);
            }
        }
        if let Some(alternatives) = schema.get("oneOf").and_then(Value::as_array) {
            let results: Vec<Vec<String>> = alternatives
                .iter()
                .map(|alt| {
                    let mut e = Vec::new();
                    self.check(alt, v, at, &mut e);
                    e
                })
                .collect();
            let matching = results.iter().filter(|e| e.is_empty()).count();
            if matching != 1 {
                // Report the alternative for this document's kind.
                let kind = v["kind"].as_str().unwrap_or_default();
                let own = alternatives
                    .iter()
                    .position(|a| a["$ref"].as_str() == Some(&format!("#/$defs/{kind}")));
                match own {
                    Some(i) if !results[i].is_empty() => errors.extend(results[i].clone()),
                    _ => errors.push(format!("{at}: {matching} of oneOf match")),
                }
            }
        }
    }
}

fn is_type(v: &Value, t: &str) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => panic!("unknown type {t}"),
    }
}

fn retired_keys(v: &Value, at: &str, found: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, sub) in m {
                if RETIRED_KEYS.contains(&k.as_str()) {
                    found.push(format!("{at}.{k}"));
                }
                retired_keys(sub, &format!("{at}.{k}"), found);
            }
        }
        Value::Array(a) => {
            for (i, sub) in a.iter().enumerate() {
                retired_keys(sub, &format!("{at}[{i}]"), found);
            }
        }
        _ => {}
    }
}

/// Parse `stdout` as exactly one contract document of `kind`; panic with
/// every problem found.
fn check_document(schema: &Schema, what: &str, kind: &str, stdout: &[u8]) -> Value {
    let text = String::from_utf8(stdout.to_vec()).unwrap();
    let doc: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{what}: not one JSON document ({e}):\n{text}"));
    let compact: String = text.split_whitespace().collect();
    assert!(
        compact.starts_with(&format!("{{\"schema_version\":1,\"kind\":\"{kind}\",")),
        "{what}: must lead with schema_version and kind:\n{text}"
    );
    assert_eq!(doc["kind"], kind, "{what}");
    let mut problems = schema.violations(&doc);
    retired_keys(&doc, "$", &mut problems);
    assert!(
        problems.is_empty(),
        "{what}:\n{}\n{text}",
        problems.join("\n")
    );
    doc
}

#[test]
fn the_checker_rejects_what_the_contract_forbids() {
    let schema = Schema::load();
    let good = serde_json::json!({
        "schema_version": 1, "kind": "leases",
        "leases": [{"mac": "02:00:00:00:00:01", "ip": "10.0.0.2", "kind": "reserved",
                    "state": "active", "expires_at": "2026-12-02T09:00:00Z"}]
    });
    assert_eq!(schema.violations(&good), Vec::<String>::new());
    let bad_cases = [
        ("schema_version", serde_json::json!(2)),
        ("kind", serde_json::json!("lease")),
    ];
    for (key, value) in bad_cases {
        let mut doc = good.clone();
        doc[key] = value;
        assert!(!schema.violations(&doc).is_empty(), "{doc}");
    }
    let mut renamed = good.clone();
    let lease = renamed["leases"][0].as_object_mut().unwrap();
    let mac = lease.remove("mac").unwrap();
    lease.insert("primary_mac".into(), mac);
    assert!(!schema.violations(&renamed).is_empty(), "{renamed}");
    let mut found = Vec::new();
    retired_keys(&renamed, "$", &mut found);
    assert_eq!(found, ["$.leases[0].primary_mac"]);
    let mut shouting = good.clone();
    shouting["leases"][0]["state"] = "ACTIVE".into();
    assert!(!schema.violations(&shouting).is_empty());
    let mut boolean_power = serde_json::json!({
        "schema_version": 1, "kind": "sim-status", "nodes": [{
            "mac": null, "bmc_mac": "02:00:00:00:00:01", "bmc_ip": "127.0.0.1", "bmc_port": 623,
            "power": "on", "boot_device": "none", "persistent": false, "efi": false,
            "boot_valid": false, "boot_flags": "0000000000", "boot_flag_clearing": "00",
            "sessions": 0, "faults": []}]
    });
    assert_eq!(schema.violations(&boolean_power), Vec::<String>::new());
    boolean_power["nodes"][0]["power"] = true.into();
    assert!(!schema.violations(&boolean_power).is_empty());
}

// ---------------------------------------------------------------- the rack

mod common;
use common::SimRack;

/// The rack of these tests: BMCs on 127.97.0.x (the snapshots show them).
fn sim_rack(count: usize) -> SimRack {
    SimRack::start_on(count, Some("127.97.0"))
}

impl SimRack {
    fn run(&self, args: &[&str]) -> Output {
        self.racker().args(args).output().unwrap()
    }

    /// Replace the temporary directory, ports, times and build facts in
    /// `doc` for its snapshot.
    fn redact(&self, doc: &Value) -> Value {
        let tmp = self.dir.path().display().to_string();
        match doc {
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| {
                        let v = match k.as_str() {
                            "bmc_port" if v.is_number() => "[PORT]".into(),
                            "elapsed_ms" => "[MS]".into(),
                            "expires_at" | "updated_at" => "[TIME]".into(),
                            "commit" | "build_date" | "target" | "version" if v.is_string() => {
                                format!("[{}]", k.to_uppercase()).into()
                            }
                            "log" => "[LOG]".into(),
                            "last_event" | "logged_at" | "last_added_at" | "last_erased_at"
                                if v.is_string() =>
                            {
                                "[TIME]".into()
                            }
                            "bmc_uptime_s" if v.is_number() => "[S]".into(),
                            // The simulated nodes keep logging events (the
                            // schema has checked every entry already).
                            "sel" if v.is_array() => sel_shape(v),
                            "value" if m.get("type").is_some_and(|t| t == "sel") => sel_shape(v),
                            "entries" | "free_bytes" if v.is_number() => "[N]".into(),
                            // SEL records carry their time in their bytes.
                            "raw" if v.is_string() => "[RAW]".into(),
                            _ => self.redact(v),
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.redact(v)).collect()),
            Value::String(s) => s.replace(&tmp, "[TMP]").into(),
            other => other.clone(),
        }
    }
}

/// A SEL list for a snapshot: its first entry with each value replaced by
/// its JSON type (which events a simulated node logged by then varies).
fn sel_shape(list: &Value) -> Value {
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let first = list
        .as_array()
        .and_then(|a| a.first())
        .and_then(Value::as_object);
    Value::Array(
        first
            .map(|e| {
                Value::Object(
                    e.iter()
                        .map(|(k, v)| (k.clone(), format!("[{}]", kind(v)).into()))
                        .collect(),
                )
            })
            .into_iter()
            .collect(),
    )
}

/// Every reporting command, `-o json`, against one simulated rack.
#[test]
fn every_reporting_command_follows_the_documented_schema() {
    let schema = Schema::load();
    let rack = sim_rack(3);
    let mut kinds = BTreeSet::new();
    let mut check = |what: &str, kind: &str, args: &[&str], success: bool| -> Value {
        let out = rack.run(args);
        assert_eq!(
            out.status.success(),
            success,
            "racker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc = check_document(&schema, what, kind, &out.stdout);
        kinds.insert(kind.to_owned());
        insta::assert_snapshot!(
            what,
            serde_json::to_string_pretty(&rack.redact(&doc)).unwrap()
        );
        doc
    };

    check("plan", "plan", &["plan", "-o", "json"], true);
    check(
        "factory_check",
        "factory-check",
        &["factory", "check", "-o", "json"],
        true,
    );
    check(
        "sim_status",
        "sim-status",
        &["sim", "status", "-o", "json"],
        true,
    );
    let before = check("status_before", "status", &["status", "-o", "json"], true);
    assert_eq!(before["nodes"][0]["state"], "planned");
    assert_eq!(before["nodes"][0]["power"], "off");
    assert_eq!(before["nodes"][0]["up_source"], Value::Null);
    let all = check(
        "ipmi_all_power_status",
        "ipmi",
        &["ipmi", "--all", "power", "status", "-o", "json"],
        true,
    );
    assert_eq!(all["results"].as_array().unwrap().len(), 2);
    let diag = check(
        "ipmi_diag",
        "ipmi",
        // The global option before the subcommand works the same.
        &["-o", "json", "ipmi", "02:52:4b:01:00:01", "diag"],
        true,
    );
    assert_eq!(diag["results"][0]["result"]["type"], "diag");
    assert!(diag["results"][0]["result"]["value"]["boot_flags"].is_object());
    check("version", "version", &["version", "-o", "json"], true);

    let http = rack.http.to_string();
    let dhcp = rack.dhcp.to_string();
    let boot = check(
        "bootstrap",
        "bootstrap",
        &[
            "bootstrap",
            "--provision",
            "flatcar",
            "--install-timeout",
            "30s",
            "--dhcp-listen",
            &dhcp,
            "--http-listen",
            &http,
            "-o",
            "json",
        ],
        true,
    );
    assert_eq!(boot["outcome"], "provisioned");
    let after = check(
        "status_after",
        "status",
        &["status", "--full", "-o", "json"],
        true,
    );
    for n in after["nodes"].as_array().unwrap() {
        assert_eq!(n["state"], "os-up", "{n}");
        assert_eq!(n["power"], "on", "{n}");
        assert_eq!(n["reason"], Value::Null, "{n}");
        // Up by the report its simulated OS sent after booting from disk.
        assert_eq!(n["up_source"], "report", "{n}");
        assert!(n["diag"]["chassis"]["power"] == "on", "{n}");
    }
    // The monitoring commands of `racker ipmi` (after the bootstrap, so
    // the nodes are on and their SELs have power and boot events).
    let node = "02:52:4b:01:00:01";
    let mut result_types = BTreeSet::new();
    for (what, args, result_type) in [
        ("ipmi_sensors", &["sensors"][..], "sensors"),
        ("ipmi_sel_list", &["sel", "list", "--last", "2"][..], "sel"),
        ("ipmi_sel_info", &["sel", "info"][..], "sel-info"),
        ("ipmi_fru", &["fru"][..], "fru"),
        ("ipmi_identify", &["identify", "5"][..], "done"),
        ("ipmi_lan_print", &["lan", "print"][..], "lan"),
        ("ipmi_mc_info", &["mc", "info"][..], "mc-info"),
        (
            "ipmi_chassis_capabilities",
            &["chassis", "capabilities"][..],
            "chassis-capabilities",
        ),
        (
            "ipmi_chassis_restart_cause",
            &["chassis", "restart-cause"][..],
            "restart-cause",
        ),
        ("ipmi_diag_on", &["diag"][..], "diag"),
        ("ipmi_power_on", &["power", "on"][..], "power"),
        ("ipmi_bootparam", &["bootparam"][..], "boot-flags"),
        ("ipmi_lan_dhcp", &["lan", "dhcp"][..], "address-source"),
        ("ipmi_user_list", &["user", "list"][..], "users"),
        ("ipmi_raw", &["raw", "0x06", "0x01"][..], "raw"),
        (
            "ipmi_chassis_policy_list",
            &["chassis", "policy", "list"][..],
            "policies",
        ),
    ] {
        let args: Vec<&str> = ["ipmi", node]
            .into_iter()
            .chain(args.iter().copied())
            .chain(["-o", "json"])
            .collect();
        let doc = check(what, "ipmi", &args, true);
        let result = &doc["results"][0]["result"];
        assert_eq!(result["type"], result_type, "{what}: {doc}");
        result_types.insert(result_type);
    }
    assert_eq!(result_types.len(), 16);
    // A policy set is what Get Chassis Status reports.
    let policy = |args: &[&str]| -> Value {
        let args: Vec<&str> = ["ipmi", node]
            .iter()
            .chain(args)
            .chain(&["-o", "json"])
            .copied()
            .collect();
        serde_json::from_slice(&rack.run(&args).stdout).unwrap()
    };
    policy(&["chassis", "policy", "always-on"]);
    let status = policy(&["power", "status"]);
    assert_eq!(
        status["results"][0]["result"]["value"]["restore_policy"], "always-on",
        "{status}"
    );
    policy(&["chassis", "policy", "previous"]);
    // Every sensor type and unit is a fixed word; SEL times are RFC 3339.
    let sensors = rack.run(&["ipmi", node, "sensors", "-o", "json"]);
    let sensors: Value = serde_json::from_slice(&sensors.stdout).unwrap();
    let words: BTreeSet<(String, String)> = sensors["results"][0]["result"]["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["sensor_type"].as_str().unwrap().to_owned(),
                s["unit"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (ty, unit) in [
        ("temperature", "celsius"),
        ("fan", "rpm"),
        ("voltage", "volts"),
        ("other-units", "watts"),
    ] {
        assert!(words.contains(&(ty.into(), unit.into())), "{words:?}");
    }
    // jsonl: every BMC's result in one line; wide: the text table.
    let line = rack.run(&["ipmi", "--all", "sensors", "-o", "jsonl"]);
    assert!(line.status.success(), "{line:?}");
    let text = String::from_utf8(line.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    let doc = check_document(&schema, "ipmi sensors jsonl", "ipmi", text.as_bytes());
    assert_eq!(doc["results"].as_array().unwrap().len(), 2, "{doc}");
    let sel = rack.run(&["ipmi", node, "sel", "list", "-o", "jsonl"]);
    let sel = check_document(&schema, "ipmi sel jsonl", "ipmi", &sel.stdout);
    let entries = sel["results"][0]["result"]["value"].as_array().unwrap();
    assert!(!entries.is_empty(), "{sel}");
    let rfc3339 = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$").unwrap();
    for e in entries {
        assert!(rfc3339.is_match(e["logged_at"].as_str().unwrap()), "{e}");
    }
    for sub in [&["sensors"][..], &["sel", "info"][..], &["mc", "info"][..]] {
        let text_args: Vec<&str> = ["ipmi", node].iter().chain(sub).copied().collect();
        let text = rack.run(&text_args);
        let wide_args: Vec<&str> = text_args.iter().copied().chain(["-o", "wide"]).collect();
        let wide = rack.run(&wide_args);
        assert!(text.status.success() && wide.status.success(), "{wide:?}");
        assert!(!text.stdout.is_empty() && !text.stdout.starts_with(b"{"));
        assert_eq!(
            String::from_utf8_lossy(&wide.stdout).lines().next(),
            String::from_utf8_lossy(&text.stdout).lines().next(),
            "{sub:?}"
        );
    }

    let leases = check(
        "leases",
        "leases",
        &["netboot", "leases", "-o", "json"],
        true,
    );
    assert!(!leases["leases"].as_array().unwrap().is_empty());
    // The old spelling is the same document.
    let old = rack.run(&["netboot", "leases", "--json"]);
    assert_eq!(
        check_document(&schema, "leases --json", "leases", &old.stdout)["leases"],
        leases["leases"]
    );
    // The text forms of the same facts (no colour: not a terminal).
    let ports = regex::Regex::new(r"(127\.97\.0\.\d+):\d+").unwrap();
    for (name, args) in [
        ("status_text_after", &["status"][..]),
        ("leases_text", &["netboot", "leases"][..]),
        ("sim_status_text_after", &["sim", "status"][..]),
    ] {
        let out = rack.run(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(!text.contains('\u{1b}'), "{text}");
        insta::assert_snapshot!(name, ports.replace_all(&text, "$1:[PORT]"));
    }
    let out = rack.path("render");
    check(
        "render",
        "render",
        &["render", "--out", out.to_str().unwrap(), "-o", "json"],
        true,
    );

    // ---- reprovision (kind `reprovision`; its own section) ----
    let again = check(
        "reprovision",
        "reprovision",
        &[
            "reprovision",
            "node-1",
            "--install-timeout",
            "30s",
            "--dhcp-listen",
            &dhcp,
            "--http-listen",
            &http,
            "-o",
            "json",
        ],
        true,
    );
    assert_eq!(again["outcome"], "provisioned");
    assert_eq!(again["nodes"].as_array().unwrap().len(), 1, "{again}");
    assert_eq!(again["nodes"][0]["node"], "node-1", "{again}");
    assert_eq!(again["nodes"][0]["attempts"], 2, "{again}");
    // ---- end reprovision ----

    // A failed check is still one document, with the error in it.
    std::fs::rename(rack.path("oem/ipmi_password"), rack.path("oem/pw")).unwrap();
    let failed = check(
        "factory_check_failed",
        "factory-check",
        &["factory", "check", "-o", "json"],
        false,
    );
    assert_eq!(failed["ok"], false);
    assert_eq!(failed["error"]["kind"], "credentials");
    std::fs::rename(rack.path("oem/pw"), rack.path("oem/ipmi_password")).unwrap();

    // jsonl: the same document on one line.
    let line = rack.run(&["plan", "-o", "jsonl"]);
    let text = String::from_utf8(line.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    check_document(&schema, "plan jsonl", "plan", text.as_bytes());

    // Every kind the schema knows was seen.
    let documented: BTreeSet<String> = schema.root["properties"]["kind"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, documented);
}

/// Progress on stderr, data on stdout, no colour codes when not a
/// terminal; `CLICOLOR_FORCE` and `--color always` force them, `NO_COLOR`
/// wins over `CLICOLOR_FORCE`, JSON never has them.
#[test]
fn data_on_stdout_progress_on_stderr_and_colour_rules() {
    let rack = sim_rack(2);
    let http = rack.http.to_string();
    let dhcp = rack.dhcp.to_string();
    let out = rack.run(&[
        "bootstrap",
        "--provision",
        "flatcar",
        "--dhcp-listen",
        &dhcp,
        "--http-listen",
        &http,
    ]);
    assert!(out.status.success(), "{out:?}");
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    assert!(stderr.contains("OS installation via PXE (0/1)"), "{stderr}");
    assert!(!stdout.contains("OS installation via PXE"), "{stdout}");
    assert!(stdout.starts_with("NODE"), "{stdout}");
    assert!(stdout.contains("✓ flatcar provisioned in"), "{stdout}");
    assert!(!stdout.contains('\u{1b}') && !stderr.contains('\u{1b}'));

    // The attempt log has timestamps, node changes and the DHCP server's
    // own events.
    let logs = rack.path("state/cluster/logs");
    let log = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<String>();
    let stamped = regex::Regex::new(r"^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] ").unwrap();
    assert!(log.lines().all(|l| stamped.is_match(l)), "{log}");
    assert!(
        log.contains("node 02:52:4b:00:00:01 node-0: installed"),
        "{log}"
    );
    assert!(log.contains("REQUEST -> ACK"), "{log}");
    assert!(log.contains("installer report"), "{log}");

    // Colours: forced on, off with NO_COLOR, never in JSON.
    let forced = rack
        .racker()
        .env("CLICOLOR_FORCE", "1")
        .args(["status"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&forced.stdout).contains("\u{1b}[32mos-up"));
    let plain = rack
        .racker()
        .env("CLICOLOR_FORCE", "1")
        .env("NO_COLOR", "1")
        .args(["status"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&plain.stdout).contains('\u{1b}'));
    let always = rack
        .racker()
        .args(["--color", "always", "status", "-o", "json"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&always.stdout).contains('\u{1b}'));
    let forced_error = rack
        .racker()
        .args([
            "--color",
            "always",
            "ipmi",
            "no-such-node",
            "power",
            "status",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&forced_error.stderr);
    assert!(stderr.contains("error:\u{1b}[0m no node"), "{stderr:?}");
    assert!(stderr.starts_with('\u{1b}'), "{stderr:?}");

    // racker ipmi's [n/total] progress: successes green, failures red,
    // plain without a terminal or with NO_COLOR.
    let green_ok = "\u{1b}[32mok\u{1b}[0m";
    let red_failed = "\u{1b}[1m\u{1b}[31mFAILED\u{1b}[0m";
    let ok = rack
        .racker()
        .env("CLICOLOR_FORCE", "1")
        .args(["ipmi", "--all", "power", "status"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&ok.stderr);
    assert!(ok.status.success(), "{stderr}");
    // (One node: the other row of the two-row rack is this machine.)
    assert!(
        stderr.contains(&format!("[1/1] 02:52:4b:01:00:01 {green_ok}")),
        "{stderr:?}"
    );
    // An invalid command fails on every BMC (completion code 0xc1).
    let failed = rack
        .racker()
        .args(["--color", "always", "ipmi", "--all", "raw", "0x06", "0xff"])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&failed.stdout),
        String::from_utf8_lossy(&failed.stderr),
    );
    assert!(!failed.status.success());
    assert!(stderr.contains(red_failed), "{stderr:?}");
    assert!(stdout.contains("\u{1b}[31merror:\u{1b}[0m"), "{stdout:?}");
    // Sensor states in the table: ok in green.
    let sensors = rack
        .racker()
        .env("CLICOLOR_FORCE", "1")
        .args(["ipmi", "02:52:4b:01:00:01", "sensors"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&sensors.stdout);
    assert!(table.contains("| \u{1b}[32mok   "), "{table:?}");
    for env in [None, Some(("NO_COLOR", "1"))] {
        let mut cmd = rack.racker();
        if let Some((k, v)) = env {
            cmd.env(k, v).env("CLICOLOR_FORCE", "1");
        }
        let plain = cmd
            .args(["ipmi", "--all", "raw", "0x06", "0xff"])
            .output()
            .unwrap();
        let both = [plain.stdout, plain.stderr].concat();
        let both = String::from_utf8_lossy(&both);
        assert!(
            both.contains("FAILED") && !both.contains('\u{1b}'),
            "{both:?}"
        );
        let mut cmd = rack.racker();
        if let Some((k, v)) = env {
            cmd.env(k, v).env("CLICOLOR_FORCE", "1");
        }
        let table = cmd
            .args(["ipmi", "02:52:4b:01:00:01", "sensors"])
            .output()
            .unwrap();
        let table = String::from_utf8_lossy(&table.stdout);
        assert!(
            table.contains("| ok  ") && !table.contains('\u{1b}'),
            "{table:?}"
        );
    }
}

/// `racker status --watch`: piped, one status after the other until
/// Ctrl-C (exit 0); JSON formats one document per round.
#[test]
fn status_watch_prints_rounds_until_interrupted() {
    use std::io::Read as _;
    let rack = sim_rack(2);
    for (format, marker) in [
        ("text", "--- "),
        ("jsonl", "{\"schema_version\":1,\"kind\":\"status\""),
    ] {
        let mut child = rack
            .racker()
            .args(["status", "--watch", "200ms", "-o", format])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1200));
        let status = racker_testsupport::interrupt(&mut child, Duration::from_secs(10));
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert!(status.success(), "{status:?}\n{out}");
        let rounds = out.matches(marker).count();
        assert!(rounds >= 2, "{format}: {rounds} round(s):\n{out}");
        assert!(!out.contains('\u{1b}'), "{out}");
        if format == "jsonl" {
            for line in out.lines() {
                check_document(&Schema::load(), "status --watch", "status", line.as_bytes());
            }
        } else {
            assert!(out.contains("PRIMARY MAC"), "{out}");
        }
    }
    // A watch interval below 100ms is refused.
    let out = rack.run(&["status", "--watch", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 100ms"));
}

/// On a terminal the status is redrawn in place until Ctrl-C.
#[test]
fn status_watch_redraws_in_place_on_a_terminal() {
    let rack = sim_rack(2);
    let mut cmd = rack.racker();
    cmd.env("TERM", "xterm")
        .args(["status", "--watch", "200ms"]);
    let mut p = rexpect::session::spawn_command(cmd, Some(15_000)).unwrap();
    p.exp_string("Every 200ms: racker status").unwrap();
    let first = p.exp_string("Every 200ms: racker status").unwrap();
    assert!(first.contains("PRIMARY MAC"), "{first:?}");
    assert!(first.contains("planned"), "{first:?}");
    // Each line is cleared to its end, the rest of the screen after the
    // frame, and the next frame starts at the top left.
    assert!(first.contains("\u{1b}[K"), "{first:?}");
    assert!(first.ends_with("\u{1b}[J\u{1b}[H"), "{first:?}");
    p.send_control('c').unwrap();
    p.exp_eof().unwrap();
}
