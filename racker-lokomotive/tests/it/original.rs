//! Field-by-field comparison with the original racker.
//!
//! For every Lokomotive scenario of `tests/inputs/` (the example rack of
//! `docs/examples/` and the generated racks) this computes what the
//! original's `bootstrap/prepare.sh` (`gen_cluster_vars`, `add_to_etc_hosts`
//! and the copied `*.lokocfg` files) wrote for the same rack, from that
//! script's logic re-stated here, and compares every field of
//! `lokocfg.vars`, every attribute and variable of `baremetal.lokocfg`, the
//! component configs and the management node's hosts lines. The only
//! differences allowed are the deliberate ones listed in
//! `docs/migrating.md` ("Lokomotive rendering"), each named below.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value as Json, json};

use crate::fixtures::{Scenario, inputs, rack_csv};
use racker_lokomotive::{HOSTS_BEGIN, HOSTS_END, Tree, render_cluster};

/// The original's fixed values.
const SUBNET_PREFIX: &str = "172.24.213";
const KERNEL_CONSOLE: [&str; 2] = ["console=ttyS1,57600n8", "earlyprintk=serial,ttyS1,57600n8"];

/// What `prepare.sh create` wrote for one rack.
struct Original {
    /// `lokocfg.vars`, as values.
    vars: BTreeMap<String, Json>,
    /// The attributes of `cluster "bare-metal"` (expressions as HCL text).
    cluster: BTreeMap<String, String>,
    /// `variable` blocks of `baremetal.lokocfg` with their type.
    variables: BTreeMap<String, String>,
    /// The component files besides `baremetal.lokocfg`, as HCL text.
    components: BTreeMap<String, String>,
    /// Lines the original appended to the management node's `/etc/hosts`.
    hosts: Vec<String>,
}

/// `grep "[ ,]$TYPE"` on a CSV line (`TYPE` empty for `any`).
fn type_matches(line: &str, node_type: &str) -> bool {
    line.contains(&format!(" {node_type}")) || line.contains(&format!(",{node_type}"))
}

fn field(line: &str, i: usize) -> String {
    line.split(',').nth(i).unwrap_or("").trim().to_owned()
}

/// `prepare.sh`'s INI reader: sections with an `ip_addr`; gateway and DNS
/// are taken from the first section that has them (`${gateway:-...}`).
fn public_entries(ini: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut section: Option<String> = None;
    for line in ini.lines().map(str::trim) {
        if let Some(mac) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(mac.to_owned());
        } else if let (Some(mac), Some(v)) = (&section, line.strip_prefix("ip_addr")) {
            let v = v.trim_start().trim_start_matches('=').replace(' ', "");
            if !v.is_empty() {
                out.push((mac.clone(), v));
            }
        }
    }
    out
}

fn original(s: &Scenario, controller_amount: usize, old_lokomotive: bool) -> Original {
    let cluster = "lokomotive";
    let domain = "k8s.localdomain";
    let (csv, pxe_mac, ini) = rack_csv(&s.rack);
    let pxe_mac = pxe_mac.to_string();
    // `tail -n +2 nodes.csv | grep -v -f <(cat /sys/class/net/*/address) | sort`
    let mut nodes: Vec<&str> = csv
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty() && !l.contains(&pxe_mac))
        .collect();
    nodes.sort_unstable();
    let full: Vec<String> = nodes
        .iter()
        .map(|l| field(l, 0))
        .chain(nodes.iter().map(|l| field(l, 1)))
        .collect();
    for mac in &s.exclude {
        nodes.retain(|l| !l.contains(mac.as_str()));
    }
    let any = |t: &str| {
        if t == "any" {
            String::new()
        } else {
            t.to_owned()
        }
    };
    let controller_type = any(&s.controller_type);
    let controllers: Vec<&str> = nodes
        .iter()
        .copied()
        .filter(|l| type_matches(l, &controller_type))
        .take(controller_amount)
        .collect();
    assert_eq!(
        controllers.len(),
        controller_amount,
        "original: wrong amount of controllers"
    );
    let workers: Vec<&str> = nodes
        .iter()
        .copied()
        .filter(|l| !controllers.contains(l))
        .collect();
    let storage_type = any(&s.storage_node_type);
    let storage: Vec<String> = if s.storage == "none" {
        Vec::new()
    } else {
        let matching = workers.iter().filter(|l| type_matches(l, &storage_type));
        let count = s.storage_count.unwrap_or(usize::MAX);
        matching.take(count).map(|l| field(l, 0)).collect()
    };
    let public = if s.public_ips {
        public_entries(&ini)
    } else {
        Vec::new()
    };
    let calc_ip = |mac: &str| {
        let nr = 2 + full
            .iter()
            .position(|m| m == mac)
            .expect("MAC in the full list");
        format!("{SUBNET_PREFIX}.{nr}")
    };

    let mut hosts = Vec::new();
    for (j, line) in controllers.iter().enumerate() {
        hosts.push(format!(
            "{} {cluster}.{domain} {cluster}-etcd{j}.{domain}",
            calc_ip(&field(line, 0))
        ));
    }
    let (mut controller_macs, mut worker_macs) = (Vec::new(), Vec::new());
    let (mut controller_names, mut worker_names) = (Vec::new(), Vec::new());
    let mut clc = serde_json::Map::new();
    let mut installer = serde_json::Map::new();
    let mut labels = serde_json::Map::new();
    let roles = controllers
        .iter()
        .enumerate()
        .map(|(i, l)| ("controller", i, *l))
        .chain(workers.iter().enumerate().map(|(i, l)| ("worker", i, *l)));
    for (role, count, line) in roles {
        let mac = field(line, 0);
        let id = format!("{cluster}-{role}-{count}.{domain}");
        hosts.push(format!("{} {id}", calc_ip(&mac)));
        if role == "controller" {
            controller_macs.push(mac.clone());
            controller_names.push(id.clone());
        } else {
            worker_macs.push(mac.clone());
            worker_names.push(id.clone());
        }
        let mut l = serde_json::Map::new();
        l.insert("metadata.node-type".into(), field(line, 3).into());
        if storage.contains(&mac) {
            l.insert("storage.lokomotive.io".into(), s.storage.clone().into());
        }
        labels.insert(id.clone(), l.into());
        clc.insert(
            id.clone(),
            json!([format!("cl/{id}.yaml"), format!("cl/{id}-custom.yaml")]),
        );
        // The original listed every node here once any address was static,
        // but only wrote `cl/<id>-custom.yaml` for the nodes with one.
        // Deliberate difference "installer snippets": racker lists those.
        let secondary = field(line, 2);
        if public.iter().any(|(m, _)| *m == secondary) {
            installer.insert(id.clone(), json!([format!("cl/{id}-custom.yaml")]));
        }
    }
    let mut vars: BTreeMap<String, Json> = BTreeMap::new();
    vars.insert("cluster_name".into(), cluster.into());
    // CLUSTER_DIR is $PWD, ~core/lokomotive on the management node.
    vars.insert(
        "asset_dir".into(),
        "/home/core/lokomotive/lokoctl-assets".into(),
    );
    let k8s_domain = if old_lokomotive {
        format!("{cluster}.{domain}")
    } else {
        domain.to_owned()
    };
    vars.insert("k8s_domain_name".into(), k8s_domain.into());
    vars.insert("controller_macs".into(), json!(controller_macs));
    vars.insert("worker_macs".into(), json!(worker_macs));
    vars.insert("controller_names".into(), json!(controller_names));
    vars.insert("worker_names".into(), json!(worker_names));
    vars.insert("matchbox_addr".into(), format!("{SUBNET_PREFIX}.1").into());
    vars.insert("clc_snippets".into(), clc.into());
    vars.insert("installer_clc_snippets".into(), installer.into());
    vars.insert("node_specific_labels".into(), labels.into());
    vars.insert("kernel_console".into(), json!(KERNEL_CONSOLE));
    // Deliberate differences "pxe_commands" and "install_pre_reboot_cmds":
    // the original ran pxe-boot.sh and ipmitool from its container image;
    // racker runs nothing on the node that stock Flatcar lacks (disk boot is
    // set from the management side, docs/rendering.md).
    vars.insert(
        "install_pre_reboot_cmds".into(),
        racker_lokomotive::INSTALL_PRE_REBOOT_CMDS.into(),
    );
    vars.insert("pxe_commands".into(), "<racker's own command>".into());
    if s.backup {
        vars.insert("backup_name".into(), "lokomotive".into());
        vars.insert("backup_s3_bucket_name".into(), "rack-backups".into());
        vars.insert("backup_aws_region".into(), "eu-central-1".into());
    }

    let mut cluster_attrs: BTreeMap<String, String> = [
        ("asset_dir", "var.asset_dir"),
        // Deliberate difference "SSH key": a literal list of keys instead
        // of file(pathexpand("~/.ssh/id_rsa.pub")).
        ("ssh_pubkeys", "<racker's keys>"),
        ("cached_install", "\"true\""),
        // pathexpand() of these absolute paths is the path itself.
        (
            "matchbox_ca_path",
            "\"/opt/racker-state/matchbox-client/ca.crt\"",
        ),
        (
            "matchbox_client_cert_path",
            "\"/opt/racker-state/matchbox-client/client.crt\"",
        ),
        (
            "matchbox_client_key_path",
            "\"/opt/racker-state/matchbox-client/client.key\"",
        ),
        ("matchbox_endpoint", "\"${var.matchbox_addr}:8081\""),
        ("matchbox_http_endpoint", "\"http://${var.matchbox_addr}:8080\""),
        ("cluster_name", "var.cluster_name"),
        ("k8s_domain_name", "var.k8s_domain_name"),
        ("controller_domains", "var.controller_names"),
        ("controller_macs", "var.controller_macs"),
        ("controller_names", "var.controller_names"),
        ("worker_domains", "var.worker_names"),
        ("worker_macs", "var.worker_macs"),
        ("worker_names", "var.worker_names"),
        (
            "clc_snippets",
            "{ for name, paths in var.clc_snippets : name => [ for path in paths : file(path)] }",
        ),
        (
            "installer_clc_snippets",
            "{ for name, paths in var.installer_clc_snippets : name => [ for path in paths : file(path)] }",
        ),
        (
            "network_ip_autodetection_method",
            "\"can-reach=${var.matchbox_addr}\"",
        ),
        ("kernel_args", "[\"flatcar.autologin\"]"),
        ("kernel_console", "var.kernel_console"),
        ("install_to_smallest_disk", "\"true\""),
        ("pxe_commands", "var.pxe_commands"),
        ("install_pre_reboot_cmds", "var.install_pre_reboot_cmds"),
        ("node_specific_labels", "var.node_specific_labels"),
        ("wipe_additional_disks", "true"),
        ("ignore_worker_changes", "false"),
        (
            "labels",
            "{ \"testing.io\" = \"yes\", \"roleofnode\" = \"testing\" }",
        ),
        ("conntrack_max_per_core", "65000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    if old_lokomotive {
        // prepare.sh's `sed -i "/.../d"` for OLD_LOKOMOTIVE=1.
        for gone in [
            "wipe_additional_disks",
            "node_specific_labels",
            "pxe_commands",
            "install_pre_reboot_cmds",
            "kernel_console",
            "installer_clc_snippets",
        ] {
            cluster_attrs.remove(gone);
        }
    }
    let variables: BTreeMap<String, String> = [
        ("cluster_name", "string"),
        ("asset_dir", "string"),
        ("matchbox_addr", "string"),
        ("controller_macs", "list(string)"),
        ("controller_names", "list(string)"),
        ("worker_macs", "list(string)"),
        ("worker_names", "list(string)"),
        ("clc_snippets", "map(list(string))"),
        ("installer_clc_snippets", "map(list(string))"),
        ("pxe_commands", "string"),
        // Deliberate difference "kernel_console type": the original
        // declared "string" for what is a list of arguments.
        ("kernel_console", "list(string)"),
        ("install_pre_reboot_cmds", "string"),
        ("k8s_domain_name", "string"),
        ("node_specific_labels", "map(map(string))"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();

    let mut components = BTreeMap::new();
    match s.storage.as_str() {
        "rook" => {
            components.insert("rook.lokocfg".to_owned(), ROOK.to_owned());
        }
        "openebs" => {
            // Deliberate difference "OpenEBS replicas": at most the number
            // of storage nodes (the original always asked for 3).
            let replicas = 3.min(storage.len().max(1));
            components.insert(
                "openebs.lokocfg".to_owned(),
                OPENEBS.replace("REPLICAS", &replicas.to_string()),
            );
        }
        _ => {}
    }
    if s.web_ui {
        components.insert("web-ui.lokocfg".to_owned(), WEB_UI.to_owned());
    }
    if s.backup {
        components.insert("velero.lokocfg".to_owned(), VELERO.to_owned());
    }
    Original {
        vars,
        cluster: cluster_attrs,
        variables,
        components,
        hosts,
    }
}

// The original's component files (copied unchanged by `copy_script`),
// re-typed; compared as parsed HCL, so layout and comments do not matter.
const ROOK: &str = r#"
component "rook" {
  node_selector = { "storage.lokomotive.io" = "rook" }
  csi_plugin_node_selector = { "storage.lokomotive.io" = "rook" }
}
component "rook-ceph" {
  storage_class {
    enable = true
    default = true
  }
  node_affinity {
    key = "storage.lokomotive.io"
    operator = "In"
    values = ["rook"]
  }
}
"#;
const OPENEBS: &str = r#"
component "openebs-operator" {
  ndm_selector_label = "storage.lokomotive.io"
  ndm_selector_value = "openebs"
}
component "openebs-storage-class" {
  storage-class "openebs-cstor" {
    replica_count = REPLICAS
    default = true
  }
}
"#;
const WEB_UI: &str = r#"
component "web-ui" {}
component "metrics-server" {}
"#;
const VELERO: &str = r#"
component "velero" {
  namespace = "velero"
  provider = "restic"
  restic {
    credentials = file("./backup-credentials")
    backup_storage_location {
      name = var.backup_name
      provider = "aws"
      bucket = var.backup_s3_bucket_name
      region = var.backup_aws_region
    }
  }
}
variable "backup_name" { type = "string" }
variable "backup_s3_bucket_name" { type = "string" }
variable "backup_aws_region" { type = "string" }
"#;

/// An HCL expression in one canonical text form.
fn expr_text(expr: &hcl::Expression) -> String {
    hcl::format::to_string(expr).unwrap()
}

fn canonical(expr: &str) -> String {
    let body = hcl::parse(&format!("x = {expr}\n"))
        .unwrap_or_else(|e| panic!("expected expression {expr:?}: {e}"));
    let attr = body.attributes().next().unwrap();
    expr_text(&attr.expr)
}

fn compare(scenario: &str, s: &Scenario, old_lokomotive: bool) {
    let mut i = inputs(s).unwrap();
    i.options.old_lokomotive = old_lokomotive;
    let tree: Tree = render_cluster(&i.plan, &i.selection, &i.options, &i.public).unwrap();
    let manifest: Json =
        serde_json::from_str(tree.get("racker-cluster.json").unwrap().text()).unwrap();
    let controllers = manifest["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["role"] == "controller")
        .count();
    let want = original(s, s.num_controllers.unwrap_or(controllers), old_lokomotive);
    let ctx = format!("{scenario} (old_lokomotive={old_lokomotive})");

    // lokocfg.vars, every field.
    let vars: Json = serde_json::to_value(
        hcl::from_str::<hcl::Value>(tree.get("lokocfg.vars").unwrap().text()).unwrap(),
    )
    .unwrap();
    let vars = vars.as_object().unwrap();
    assert_eq!(
        vars.keys().collect::<BTreeSet<_>>(),
        want.vars.keys().collect::<BTreeSet<_>>(),
        "{ctx}: lokocfg.vars fields"
    );
    for (key, expected) in &want.vars {
        if expected == "<racker's own command>" {
            assert!(
                vars[key].as_str().is_some_and(|c| c.contains("ipmi")),
                "{ctx}: {key}"
            );
            continue;
        }
        assert_eq!(&vars[key], expected, "{ctx}: lokocfg.vars {key}");
    }

    // baremetal.lokocfg: every attribute of the cluster block, the
    // component block and the variables.
    let body = hcl::parse(tree.get("baremetal.lokocfg").unwrap().text()).unwrap();
    let cluster = body
        .blocks()
        .find(|b| b.identifier() == "cluster")
        .expect("cluster block");
    assert_eq!(cluster.labels().len(), 1);
    assert_eq!(cluster.labels()[0].as_str(), "bare-metal");
    assert_eq!(
        cluster.body().blocks().count(),
        0,
        "{ctx}: no nested blocks"
    );
    let got: BTreeMap<String, String> = cluster
        .body()
        .attributes()
        .map(|a| (a.key().to_owned(), expr_text(&a.expr)))
        .collect();
    assert_eq!(
        got.keys().collect::<BTreeSet<_>>(),
        want.cluster.keys().collect::<BTreeSet<_>>(),
        "{ctx}: cluster attributes"
    );
    for (key, expected) in &want.cluster {
        if expected == "<racker's keys>" {
            assert_eq!(
                got[key],
                canonical(&format!("[\"{}\"]", crate::fixtures::SSH_KEY))
            );
            continue;
        }
        assert_eq!(got[key], canonical(expected), "{ctx}: cluster {key}");
    }
    let components: Vec<String> = body
        .blocks()
        .filter(|b| b.identifier() == "component")
        .map(|b| b.labels()[0].as_str().to_owned())
        .collect();
    assert_eq!(components, ["flatcar-linux-update-operator"], "{ctx}");
    let variables: BTreeMap<String, String> = body
        .blocks()
        .filter(|b| b.identifier() == "variable")
        .map(|b| {
            let ty = b.body().attributes().find(|a| a.key() == "type").unwrap();
            (
                b.labels()[0].as_str().to_owned(),
                expr_text(&ty.expr).trim_matches('"').to_owned(),
            )
        })
        .collect();
    assert_eq!(variables, want.variables, "{ctx}: variables");

    // The component files.
    let files: BTreeSet<String> = tree
        .files()
        .map(|(p, _)| p.display().to_string())
        .filter(|p| p.ends_with(".lokocfg") && p != "baremetal.lokocfg")
        .collect();
    assert_eq!(
        files,
        want.components.keys().cloned().collect(),
        "{ctx}: component files"
    );
    for (file, text) in &want.components {
        let got = hcl::parse(tree.get(file).unwrap().text()).unwrap();
        let expected = hcl::parse(text).unwrap();
        assert_eq!(got, expected, "{ctx}: {file}");
    }
    assert_eq!(
        tree.get("backup-credentials").is_some(),
        s.backup,
        "{ctx}: backup-credentials"
    );

    // The management node's /etc/hosts lines, in order.
    let block = tree.get("management-hosts").unwrap().text();
    let lines: Vec<&str> = block.lines().collect();
    assert_eq!(lines.first(), Some(&HOSTS_BEGIN));
    assert_eq!(lines.last(), Some(&HOSTS_END));
    assert_eq!(lines[1..lines.len() - 1], want.hosts[..], "{ctx}: hosts");
}

fn lokomotive_scenarios() -> Vec<(String, Scenario)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/inputs");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let s: Scenario = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        // The original only knew /24 networks (SUBNET_PREFIX).
        if s.provision == "lokomotive" && s.prefix_len.is_none() {
            out.push((path.file_name().unwrap().to_string_lossy().into_owned(), s));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn lokomotive_matches_the_original_field_by_field() {
    let scenarios = lokomotive_scenarios();
    assert!(scenarios.len() >= 3, "{}", scenarios.len());
    for (name, s) in &scenarios {
        compare(name, s, false);
    }
}

#[test]
fn old_lokomotive_matches_the_originals_compatibility_mode() {
    for (name, s) in lokomotive_scenarios() {
        compare(&name, &s, true);
    }
    // More storage node counts and exclusions on the example rack and a
    // generated one.
    let mut s = Scenario::lokomotive("rack12");
    s.storage = "openebs".into();
    s.storage_count = Some(2);
    s.exclude = vec!["52:54:00:00:03:01".into()];
    s.public_ips = true;
    compare("rack12 openebs 2", &s, false);
    s.storage_count = None;
    s.storage = "rook".into();
    s.num_controllers = Some(3);
    compare("rack12 rook all", &s, false);
}
