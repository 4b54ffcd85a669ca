//! Every rendered file parses with a real parser of its language, and the
//! Ignition configs carry the right address for each MAC.

use std::path::Path;

use racker_lokomotive::{Tree, decode_data_url, ignition, os_ignition_path};

use crate::fixtures::{Scenario, inputs, render_scenario};

fn scenarios() -> Vec<Scenario> {
    std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/inputs"))
        .unwrap()
        .map(|e| {
            serde_json::from_str(&std::fs::read_to_string(e.unwrap().path()).unwrap()).unwrap()
        })
        .collect()
}

/// Parse every file of `tree` with the parser of its language.
pub(crate) fn check_tree(tree: &Tree) {
    for (path, file) in tree.files() {
        let name = path.to_string_lossy();
        let text = file.text();
        if name.ends_with(".lokocfg")
            || name.ends_with(".vars")
            || name.ends_with(".tf")
            || name.ends_with(".tfvars")
        {
            hcl::parse(text).unwrap_or_else(|e| panic!("{name} is not HCL: {e}\n{text}"));
        } else if name.ends_with(".yaml") || name.ends_with(".yaml.tmpl") {
            let _: serde_yaml_ng::Value = serde_yaml_ng::from_str(text)
                .unwrap_or_else(|e| panic!("{name} is not YAML: {e}\n{text}"));
        } else if name.ends_with(".ign") {
            let (config, warnings) = ignition_config::Config::parse_str(text)
                .unwrap_or_else(|e| panic!("{name} is not an Ignition config: {e}"));
            assert!(
                matches!(config, ignition_config::Config::V3_3(_)),
                "{name}: not spec 3.3"
            );
            assert!(warnings.is_empty(), "{name}: unknown keys {warnings:?}");
            let ours: ignition::Config = serde_json::from_str(text).unwrap();
            assert_eq!(ours.to_json().unwrap(), text, "{name}: not canonical");
        } else if name.ends_with(".json") {
            let _: serde_json::Value = serde_json::from_str(text).unwrap();
        }
    }
}

#[test]
fn every_file_of_every_scenario_parses() {
    for s in scenarios() {
        check_tree(&render_scenario(&s));
    }
}

fn file_text(config: &ignition::Config, path: &str) -> String {
    let f = config.file(path).unwrap_or_else(|| panic!("no {path}"));
    String::from_utf8(decode_data_url(&f.contents.as_ref().unwrap().source).unwrap()).unwrap()
}

#[test]
fn ignition_carries_each_nodes_address_and_public_unit() {
    let mut s = Scenario::flatcar("rack60");
    s.public_ips = true;
    let i = inputs(&s).unwrap();
    let tree = render_scenario(&s);
    let mut seen = 0;
    for sel in i.selection.active() {
        let node = &sel.planned.node;
        let text = tree.get(os_ignition_path(node.primary_mac)).unwrap().text();
        let os: ignition::Config = serde_json::from_str(text).unwrap();
        let unit = file_text(&os, "/etc/systemd/network/10-priv-stable.network");
        assert!(
            unit.contains(&format!("MACAddress={}\n", node.primary_mac)),
            "{unit}"
        );
        assert!(
            unit.contains(&format!("Address={}/24\n", sel.planned.ip)),
            "{unit}"
        );
        assert_eq!(
            file_text(&os, "/etc/hostname"),
            format!("{}\n", sel.hostname.as_deref().unwrap())
        );
        let public = os.file("/etc/systemd/network/10-public-stable.network");
        let index = sel.planned.index;
        // Every second generated node has a static public address.
        assert_eq!(public.is_some(), index % 2 == 0, "node {index}");
        if public.is_some() {
            let unit = file_text(&os, "/etc/systemd/network/10-public-stable.network");
            assert!(
                unit.contains(&format!("Address=198.51.100.{}/24", 10 + index)),
                "{unit}"
            );
            assert!(
                unit.contains("Gateway=198.51.100.1\n") && unit.contains("DNS=198.51.100.53\n"),
                "{unit}"
            );
        }
        assert_eq!(
            os.passwd.as_ref().unwrap().users[0].ssh_authorized_keys,
            vec![crate::fixtures::SSH_KEY]
        );
        assert_eq!(
            os.kernel_arguments.as_ref().unwrap().should_exist[0],
            "console=ttyS1,57600n8"
        );

        let install_text = tree
            .get(racker_lokomotive::install_ignition_path(node.primary_mac))
            .unwrap()
            .text();
        let install: ignition::Config = serde_json::from_str(install_text).unwrap();
        // The install profile carries exactly the OS config it installs.
        assert_eq!(file_text(&install, ignition::INSTALL_OS_CONFIG_PATH), text);
        let script = file_text(&install, ignition::INSTALL_SCRIPT_PATH);
        assert!(script.contains("flatcar-install -s "), "{script}");
        // Nothing on the node talks to the BMC (docs/rendering.md).
        assert!(!script.contains("ipmitool"), "{script}");
        assert!(
            script.contains(
                "echo 'set linux_console=\"console=ttyS1,57600n8 earlyprintk=serial,ttyS1,57600n8\"' >> /tmp/oemfs/grub.cfg"
            ),
            "{script}"
        );
        assert!(
            script.contains(&format!(
                "http://172.24.213.1:8080/report?mac={}&stage=$1",
                node.primary_mac
            )),
            "{script}"
        );
        let report = script.find("report installed").unwrap();
        assert!(script.find("umount /tmp/oemfs").unwrap() < report);
        assert!(report < script.find("systemctl reboot").unwrap());
        assert_eq!(
            install.unit(ignition::INSTALL_UNIT).unwrap().enabled,
            Some(true)
        );
        seen += 1;
    }
    assert_eq!(seen, 60);
}

#[test]
fn lokomotive_vars_line_up_macs_names_and_labels() {
    let mut s = Scenario::lokomotive("rack60");
    s.controller_type = "red".into();
    s.storage = "rook".into();
    s.storage_node_type = "blue".into();
    s.storage_count = Some(2);
    let i = inputs(&s).unwrap();
    let tree = render_scenario(&s);
    let vars: hcl::Body = hcl::from_str(tree.get("lokocfg.vars").unwrap().text()).unwrap();
    let attr = |name: &str| -> hcl::Expression {
        vars.attributes()
            .find(|a| a.key() == name)
            .unwrap_or_else(|| panic!("no {name}"))
            .expr()
            .clone()
    };
    let strings = |name: &str| -> Vec<String> {
        match attr(name) {
            hcl::Expression::Array(items) => items
                .into_iter()
                .map(|e| match e {
                    hcl::Expression::String(s) => s,
                    other => panic!("{other:?}"),
                })
                .collect(),
            other => panic!("{name}: {other:?}"),
        }
    };
    let controllers = i.selection.controllers();
    assert_eq!(
        strings("controller_macs"),
        controllers
            .iter()
            .map(|c| c.planned.node.primary_mac.to_string())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        strings("controller_names"),
        controllers
            .iter()
            .map(|c| c.hostname.clone().unwrap())
            .collect::<Vec<_>>()
    );
    let workers = i.selection.workers();
    assert_eq!(
        strings("worker_macs"),
        workers
            .iter()
            .map(|c| c.planned.node.primary_mac.to_string())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        strings("worker_names"),
        workers
            .iter()
            .map(|c| c.hostname.clone().unwrap())
            .collect::<Vec<_>>()
    );
    // Every variable docs/lokomotive.md lists is there.
    for name in [
        "cluster_name",
        "asset_dir",
        "k8s_domain_name",
        "controller_macs",
        "worker_macs",
        "controller_names",
        "worker_names",
        "matchbox_addr",
        "clc_snippets",
        "installer_clc_snippets",
        "node_specific_labels",
        "kernel_console",
        "install_pre_reboot_cmds",
        "pxe_commands",
    ] {
        attr(name);
    }
    // node_specific_labels, evaluated: name -> labels, exactly the selection's.
    let labels: serde_json::Value = serde_json::to_value(
        hcl::eval::Evaluate::evaluate(&attr("node_specific_labels"), &hcl::eval::Context::new())
            .unwrap(),
    )
    .unwrap();
    for sel in i.selection.active() {
        let expected = serde_json::to_value(&sel.labels).unwrap();
        assert_eq!(labels[sel.hostname.as_deref().unwrap()], expected);
    }
    assert_eq!(labels.as_object().unwrap().len(), 60);
    let storage = i.selection.nodes().iter().filter(|n| n.storage).count();
    assert_eq!(storage, 2);
    // Every node's /etc/hosts lists every controller with its names.
    for sel in i.selection.active() {
        let cl = tree
            .get(format!("cl/{}.yaml", sel.hostname.as_deref().unwrap()))
            .unwrap()
            .text();
        for c in &controllers {
            let line = format!(
                "{} lokomotive-etcd{}.k8s.localdomain {} lokomotive.k8s.localdomain",
                c.planned.ip,
                c.role_index.unwrap(),
                c.hostname.as_deref().unwrap()
            );
            assert!(cl.contains(&line), "{line} missing in\n{cl}");
        }
        assert!(cl.contains(&format!("MACAddress={}", sel.planned.node.primary_mac)));
    }
    assert!(tree.get("rook.lokocfg").is_some());
}

#[test]
fn backup_credentials_are_private_and_only_there() {
    let mut s = Scenario::lokomotive("example");
    s.backup = true;
    let tree = render_scenario(&s);
    let creds = tree.get(racker_lokomotive::BACKUP_CREDENTIALS).unwrap();
    assert_eq!(creds.mode, 0o600);
    assert!(
        creds
            .text()
            .contains("aws_secret_access_key=fixture/secret+key\n")
    );
    for (path, file) in tree.files() {
        if path != Path::new(racker_lokomotive::BACKUP_CREDENTIALS) {
            assert!(
                !file.text().contains("fixture/secret"),
                "secret leaked into {}",
                path.display()
            );
            assert_eq!(file.mode, 0o644);
        }
    }
}

#[test]
fn large_prefix_renders_addresses_beyond_one_slash_24() {
    let mut s = Scenario::flatcar("rack300");
    s.prefix_len = Some(22);
    let tree = render_scenario(&s);
    check_tree(&tree);
    let cl = tree.get("cl/node-299.yaml").unwrap().text();
    // 172.24.208.0/22: node 299 is network + 2 + 299 = 172.24.209.45.
    assert!(cl.contains("Address=172.24.209.45/22"), "{cl}");
}

#[test]
fn container_linux_configs_and_ignition_carry_the_same_units() {
    let mut s = Scenario::flatcar("rack60");
    s.public_ips = true;
    let i = inputs(&s).unwrap();
    let spec =
        racker_lokomotive::ClusterSpec::new(&i.plan, &i.selection, &i.options, &i.public).unwrap();
    let tree = racker_lokomotive::render(&spec, None).unwrap();
    for node in &spec.nodes {
        let cl: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(tree.get(racker_lokomotive::clc_path(node)).unwrap().text())
                .unwrap();
        let os: ignition::Config =
            serde_json::from_str(tree.get(os_ignition_path(node.mac)).unwrap().text()).unwrap();
        let units = cl["networkd"]["units"].as_sequence().unwrap();
        assert_eq!(units.len(), 3);
        for u in units {
            let name = u["name"].as_str().unwrap();
            let contents = u["contents"].as_str().unwrap();
            assert_eq!(
                contents,
                file_text(&os, &format!("/etc/systemd/network/{name}")),
                "{name}"
            );
        }
        let files = cl["storage"]["files"].as_sequence().unwrap();
        for f in files {
            let path = f["path"].as_str().unwrap();
            assert_eq!(
                f["contents"]["inline"].as_str().unwrap(),
                file_text(&os, path),
                "{path}"
            );
        }
        let boot = &cl["systemd"]["units"][0];
        let unit = os.unit(boot["name"].as_str().unwrap()).unwrap();
        assert_eq!(boot["contents"].as_str(), unit.contents.as_deref());
        let custom: serde_yaml_ng::Value = serde_yaml_ng::from_str(
            tree.get(racker_lokomotive::custom_clc_path(node))
                .unwrap()
                .text(),
        )
        .unwrap();
        match os.file("/etc/systemd/network/10-public-stable.network") {
            Some(_) => assert_eq!(
                custom["networkd"]["units"][0]["contents"].as_str().unwrap(),
                file_text(&os, "/etc/systemd/network/10-public-stable.network")
            ),
            None => assert!(custom.is_null(), "{custom:?}"),
        }
    }
}

/// `ignition-validate` (Debian's `ignition` package: the real CoreOS
/// validator) accepts every rendered Ignition config and the OS config
/// nested in each install config.
#[test]
fn real_ignition_validate_accepts_every_config() {
    let test = "real_ignition_validate_accepts_every_config";
    let Some(tool) = racker_testsupport::require_tool(test, "ignition-validate") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for scenario in [crate::fixtures::Scenario::flatcar("example"), {
        let mut s = crate::fixtures::Scenario::flatcar("example");
        s.public_ips = true;
        s
    }] {
        let tree = crate::fixtures::render_scenario(&scenario);
        for (path, file) in tree.files() {
            if path.extension().is_none_or(|e| e != "ign") {
                continue;
            }
            let mut texts = vec![file.text().to_owned()];
            let config: ignition::Config = serde_json::from_str(file.text()).unwrap();
            if config.file(ignition::INSTALL_OS_CONFIG_PATH).is_some() {
                texts.push(file_text(&config, ignition::INSTALL_OS_CONFIG_PATH));
            }
            for text in texts {
                let f = dir.path().join(format!("{checked}.ign"));
                std::fs::write(&f, &text).unwrap();
                let out = std::process::Command::new(&tool).arg(&f).output().unwrap();
                assert!(
                    out.status.success(),
                    "ignition-validate refused {} ({}):\n{}{}\n{text}",
                    path.display(),
                    f.display(),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                checked += 1;
            }
        }
    }
    // 2 scenarios × 2 nodes × (install + nested OS + OS).
    assert_eq!(checked, 12);
}
