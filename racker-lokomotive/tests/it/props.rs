//! Properties over generated racks: every active node exactly once with a
//! unique name and address, excluded nodes nowhere, deterministic bytes,
//! hostile strings rejected or escaped.

use std::collections::BTreeSet;

use proptest::prelude::*;
use racker_inventory::{
    AddressPlan, Inventory, LocalInterface, PlanOptions, Provision, PublicIps, SelectionOptions,
    select,
};
use racker_lokomotive::{Backup, BackupCredentials, RenderOptions, Secret, render_cluster};

use crate::fixtures::{SSH_KEY, Scenario, generated_csv, inputs, render_scenario};
use crate::validity::check_tree;

fn macs_of(csv: &str) -> Vec<[String; 3]> {
    csv.lines()
        .skip(2)
        .map(|l| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            [f[0].to_owned(), f[1].to_owned(), f[2].to_owned()]
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn nodes_appear_once_and_excluded_nowhere(
        n in 1usize..24,
        excluded in proptest::collection::btree_set(0usize..24, 0..6),
        lokomotive: bool,
        public_ips: bool,
    ) {
        let rows = macs_of(&generated_csv(n));
        let excluded: Vec<usize> = excluded.into_iter().filter(|&i| i < n).collect();
        let mut s = if lokomotive { Scenario::lokomotive(&format!("rack{n}")) } else { Scenario::flatcar(&format!("rack{n}")) };
        s.num_controllers = Some(1);
        s.public_ips = public_ips;
        // Exclude by a different column each time.
        s.exclude = excluded.iter().map(|&i| rows.iter().find(|r| r[0] == format!("52:54:00:{:02x}:{:02x}:01", i / 256, i % 256)).unwrap()[i % 3].clone()).collect();
        let Ok(i) = inputs(&s) else {
            // Only when nothing is left to be a controller.
            prop_assert!(excluded.len() == n);
            return Ok(());
        };
        let rendered = render_cluster(&i.plan, &i.selection, &i.options, &i.public);
        if excluded.len() == n {
            // Flatcar with every node excluded: nothing to render, said so.
            prop_assert!(matches!(rendered, Err(racker_lokomotive::RenderError::NoNodes)));
            return Ok(());
        }
        let tree = rendered.unwrap();
        check_tree(&tree);
        let again = render_cluster(&i.plan, &i.selection, &i.options, &i.public).unwrap();
        prop_assert_eq!(&tree, &again);

        let vars = tree.get(if lokomotive { "lokocfg.vars" } else { "terraform.tfvars" }).unwrap().text();
        let hosts = tree.get("management-hosts").unwrap().text();
        let mut names = BTreeSet::new();
        let mut ips = BTreeSet::new();
        for sel in i.selection.active() {
            let name = sel.hostname.clone().unwrap();
            prop_assert!(names.insert(name.clone()));
            prop_assert!(ips.insert(sel.planned.ip));
            let mac = sel.planned.node.primary_mac.to_string();
            // In the MAC list exactly once, in the snippet map exactly once.
            prop_assert_eq!(vars.matches(&format!("\"{mac}\"")).count(), 1, "{}", vars);
            prop_assert_eq!(vars.matches(&format!("\"cl/{name}.yaml\"")).count(), 1);
            let cl = format!("cl/{name}.yaml");
            prop_assert!(tree.get(&cl).is_some());
            let line = format!("{} {name}", sel.planned.ip);
            prop_assert_eq!(hosts.lines().filter(|l| l.starts_with(&format!("{line} ")) || *l == line).count(), 1);
        }
        let cl_files = tree.files().filter(|(p, _)| p.starts_with("cl") && !p.to_string_lossy().ends_with("-custom.yaml")).count();
        prop_assert_eq!(cl_files, names.len());
        for sel in i.selection.nodes().iter().filter(|n| n.excluded) {
            let node = &sel.planned.node;
            let ip = format!("{} ", sel.planned.ip);
            for (path, file) in tree.files() {
                for mac in node.macs() {
                    prop_assert!(!file.text().contains(&mac.to_string()), "{} names excluded {}", path.display(), mac);
                }
                let addr = format!("Address={}/", sel.planned.ip);
                prop_assert!(!file.text().contains(&addr));
                if path.to_string_lossy() == "management-hosts" {
                    prop_assert!(!file.text().lines().any(|l| l.starts_with(&ip)));
                }
            }
        }
    }

    #[test]
    fn hostile_node_types_and_comments_never_reach_the_files(
        hostile in prop::sample::select(vec!["a\"b", "x${var.y}", "new\nline", "%{ if }", "q' ; rm -rf /", "#c", "a b"]),
        lokomotive: bool,
    ) {
        let csv = format!(
            "Primary, BMC, Secondary, Type, Comment\n\
             02:00:00:ff:00:00, 02:00:00:ff:00:01, 02:00:00:ff:00:02, mgmt, m\n\
             02:00:00:00:00:01, 02:00:00:00:00:02, 02:00:00:00:00:03, \"{hostile}\", \"{hostile}\"\n\
             02:00:00:00:01:01, 02:00:00:00:01:02, 02:00:00:00:01:03, red, \"{hostile}\"\n"
        );
        let Ok(inventory) = Inventory::parse("nodes.csv", csv.as_bytes()) else {
            // The inventory itself refused the value: nothing to render.
            return Ok(());
        };
        let m = inventory.management(&[LocalInterface { name: "eth1".into(), mac: "02:00:00:ff:00:02".parse().unwrap() }]).unwrap();
        let plan = AddressPlan::new(&inventory, &m, &PlanOptions::default()).unwrap();
        let selection = select(&plan, &SelectionOptions {
            provision: if lokomotive { Provision::Lokomotive } else { Provision::Flatcar },
            num_controllers: Some(1),
            ..SelectionOptions::default()
        }).unwrap();
        let options = RenderOptions::new(vec![SSH_KEY.to_owned()]);
        match render_cluster(&plan, &selection, &options, &PublicIps::dhcp()) {
            Err(e) => prop_assert!(lokomotive, "flatcar never uses node types, yet: {e}"),
            Ok(tree) => {
                check_tree(&tree);
                for (path, file) in tree.files() {
                    prop_assert!(!file.text().contains(hostile), "{} contains {hostile:?}", path.display());
                }
            }
        }
    }

    #[test]
    fn hostile_backup_settings_are_escaped_exactly(
        name in "[!-~]{1,12}",
    ) {
        // Printable ASCII without whitespace: allowed, so it must round-trip
        // through HCL exactly (quotes, `${`, `%{`, backslashes included).
        let mut s = Scenario::lokomotive("example");
        s.backup = true;
        let mut i = inputs(&s).unwrap();
        i.options.backup = Some((
            Backup { name: name.clone(), bucket: format!("{name}${{b}}"), region: "r".into() },
            BackupCredentials { access_key_id: Secret::new("AK"), secret_access_key: Secret::new("SK") },
        ));
        let tree = render_cluster(&i.plan, &i.selection, &i.options, &i.public).unwrap();
        let body: hcl::Body = hcl::from_str(tree.get("lokocfg.vars").unwrap().text()).unwrap();
        let get = |k: &str| body.attributes().find(|a| a.key() == k).unwrap().expr().clone();
        prop_assert_eq!(get("backup_name"), hcl::Expression::String(name.clone()));
        prop_assert_eq!(get("backup_s3_bucket_name"), hcl::Expression::String(format!("{name}${{b}}")));
    }
}

#[test]
fn hostile_cluster_names_domains_and_keys_are_rejected() {
    let base = Scenario::lokomotive("example");
    let i = inputs(&base).unwrap();
    for bad in [
        "a\"b",
        "x${y}",
        "new\nline",
        "UPPER",
        "dots.not.allowed",
        "",
    ] {
        let r = select(
            &i.plan,
            &SelectionOptions {
                provision: Provision::Lokomotive,
                cluster_name: bad.to_owned(),
                ..SelectionOptions::default()
            },
        );
        assert!(r.is_err(), "cluster name {bad:?} accepted");
    }
    // A spec edited on disk is validated again.
    let spec =
        racker_lokomotive::ClusterSpec::new(&i.plan, &i.selection, &i.options, &i.public).unwrap();
    let mut evil = spec.clone();
    evil.cluster_name = "x\"\n${y}".into();
    assert!(racker_lokomotive::render(&evil, None).is_err());
    let mut evil = spec.clone();
    evil.nodes[0]
        .labels
        .insert("metadata.node-type".into(), "a\"b".into());
    assert!(racker_lokomotive::render(&evil, None).is_err());
    let mut evil = spec.clone();
    evil.ssh_public_keys = vec!["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB\nmalicious: yes".into()];
    assert!(racker_lokomotive::render(&evil, None).is_err());
    let mut evil = spec.clone();
    evil.kernel_console = vec!["console=ttyS0 init=/bin/sh".into()];
    assert!(racker_lokomotive::render(&evil, None).is_err());
    let mut evil = spec;
    evil.ssh_public_keys.clear();
    assert!(racker_lokomotive::render(&evil, None).is_err());
}

#[test]
fn rendering_is_byte_identical_across_runs() {
    let mut s = Scenario::lokomotive("rack60");
    s.web_ui = true;
    s.backup = true;
    s.public_ips = true;
    assert_eq!(render_scenario(&s), render_scenario(&s));
}

#[test]
fn edited_manifests_with_duplicates_are_rejected() {
    let s = Scenario::flatcar("rack60");
    let i = inputs(&s).unwrap();
    let spec =
        racker_lokomotive::ClusterSpec::new(&i.plan, &i.selection, &i.options, &i.public).unwrap();
    let json = serde_json::to_string(&spec).unwrap();
    assert_eq!(
        racker_lokomotive::ClusterSpec::from_json(&json).unwrap(),
        spec
    );
    let mut dup = spec.clone();
    dup.nodes[1].ip = dup.nodes[0].ip;
    let e = racker_lokomotive::render(&dup, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("internal address 172.24.213.2 is used by two nodes"),
        "{e}"
    );
    let mut dup = spec.clone();
    dup.nodes[1].name = dup.nodes[0].name.clone();
    assert!(
        racker_lokomotive::render(&dup, None)
            .unwrap_err()
            .to_string()
            .contains("host name node-0")
    );
    let mut unknown = serde_json::to_value(&spec).unwrap();
    unknown["format"] = 99.into();
    assert!(racker_lokomotive::ClusterSpec::from_json(&unknown.to_string()).is_err());
}

#[test]
fn our_ignition_types_refuse_unknown_fields() {
    let ok = r#"{"ignition":{"version":"3.3.0"}}"#;
    assert!(serde_json::from_str::<racker_lokomotive::ignition::Config>(ok).is_ok());
    let bad = r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/x","bogus":1}]}}"#;
    assert!(serde_json::from_str::<racker_lokomotive::ignition::Config>(bad).is_err());
}

#[test]
fn hostile_node_type_is_rejected_for_lokomotive_and_ignored_for_flatcar() {
    let csv = "Primary, BMC, Secondary, Type, Comment\n\
               02:00:00:ff:00:00, 02:00:00:ff:00:01, 02:00:00:ff:00:02, mgmt, m\n\
               02:00:00:00:00:01, 02:00:00:00:00:02, 02:00:00:00:00:03, x${var.y}, \"a\"\"q ${z}\"\n\
               02:00:00:00:01:01, 02:00:00:00:01:02, 02:00:00:00:01:03, red, ok\n";
    let inventory = Inventory::parse("nodes.csv", csv.as_bytes()).unwrap();
    let m = inventory
        .management(&[LocalInterface {
            name: "eth1".into(),
            mac: "02:00:00:ff:00:02".parse().unwrap(),
        }])
        .unwrap();
    let plan = AddressPlan::new(&inventory, &m, &PlanOptions::default()).unwrap();
    let options = RenderOptions::new(vec![SSH_KEY.to_owned()]);
    let flatcar = select(&plan, &SelectionOptions::default()).unwrap();
    let tree = render_cluster(&plan, &flatcar, &options, &PublicIps::dhcp()).unwrap();
    check_tree(&tree);
    assert!(
        tree.files()
            .all(|(_, f)| !f.text().contains("var.y") && !f.text().contains("${z}"))
    );
    let loko = select(
        &plan,
        &SelectionOptions {
            provision: Provision::Lokomotive,
            num_controllers: Some(1),
            controller_type: "red".into(),
            ..SelectionOptions::default()
        },
    )
    .unwrap();
    let err = render_cluster(&plan, &loko, &options, &PublicIps::dhcp())
        .unwrap_err()
        .to_string();
    assert!(err.contains("x${var.y}") && err.contains("label"), "{err}");
}
