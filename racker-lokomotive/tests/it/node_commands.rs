//! Every command rendered node configs run exists on a stock Flatcar node
//! (docs/rendering.md, "Commands on the node").

use racker_lokomotive::Tree;
use racker_lokomotive::commands::{
    FLATCAR_COMMANDS, NodeCommand, SHELL_BUILTINS, is_allowed, tree_commands,
};

use crate::fixtures::{Scenario, render_scenario};

fn scenarios() -> Vec<(String, Scenario)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/inputs");
    let mut out: Vec<(String, Scenario)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let s: Scenario = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), s)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn offending(cmds: &[NodeCommand]) -> Vec<&NodeCommand> {
    cmds.iter().filter(|c| !is_allowed(&c.program)).collect()
}

#[test]
fn every_rendered_command_is_on_a_stock_flatcar_node() {
    let mut flatcar = 0;
    let mut lokomotive = 0;
    for (name, scenario) in scenarios() {
        let tree = render_scenario(&scenario);
        let cmds = tree_commands(&tree);
        let bad = offending(&cmds);
        assert!(
            bad.is_empty(),
            "{name}: not on a stock Flatcar node: {bad:#?}"
        );
        let programs: Vec<&str> = cmds.iter().map(|c| c.program.as_str()).collect();
        // The extraction sees the scripts and units (it is not vacuous).
        for expected in ["sed", "ln", "/bin/sh"] {
            assert!(
                programs.contains(&expected),
                "{name}: no {expected}: {programs:?}"
            );
        }
        if scenario.provision == "flatcar" {
            flatcar += 1;
            for expected in [
                "/bin/bash",
                "flatcar-install",
                "curl",
                "/usr/bin/curl",
                "blkid",
                "systemctl",
            ] {
                assert!(programs.contains(&expected), "{name}: no {expected}");
            }
            // Installer scripts of the nested Ignition and the Terraform
            // template, OS units of the nested OS config.
            assert!(
                cmds.iter().any(|c| c
                    .source
                    .contains("-install.ign: /opt/racker/os.ign: use-systemd-resolved.service")),
                "{name}: nested OS config not read"
            );
            assert!(cmds.iter().any(
                |c| c.source == "templates/install.yaml.tmpl" && c.program == "flatcar-install"
            ));
        } else {
            lokomotive += 1;
            assert!(
                cmds.iter()
                    .any(|c| c.source == "lokocfg.vars: install_pre_reboot_cmds"
                        && c.program == "true"),
                "{name}: install_pre_reboot_cmds not read"
            );
        }
    }
    assert!(flatcar >= 2 && lokomotive >= 2, "{flatcar} {lokomotive}");
}

#[test]
fn a_command_outside_the_allowlist_is_found_wherever_it_is() {
    let tree = render_scenario(&Scenario::flatcar("example"));
    let mut evil = Tree::new();
    for (path, file) in tree.files() {
        let text = file.text();
        let changed = if path.extension().is_some_and(|e| e == "ign") {
            // Inside the installer script (twice data-URL encoded in the
            // nested OS config would be the same path).
            text.replace(
                "report%20installed",
                "ipmitool%20raw%200x00%200x08%0Areport%20installed",
            )
        } else {
            text.replace(
                "ExecStart=/bin/sh -c \"while true; do sed",
                "ExecStart=/bin/sh -c \"while true; do docker run x; sed",
            )
            .replace(
                "install_pre_reboot_cmds = \"true\"",
                "install_pre_reboot_cmds = \"lvchange -an x\"",
            )
        };
        evil.insert(path, changed, file.mode);
    }
    let cmds = tree_commands(&evil);
    let bad: Vec<&str> = offending(&cmds)
        .iter()
        .map(|c| c.program.as_str())
        .collect();
    for expected in ["ipmitool", "docker", "lvchange"] {
        assert!(bad.contains(&expected), "{expected} not found in {bad:?}");
    }
}

#[test]
fn the_allowlist_is_the_documented_one() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/rendering.md"))
        .unwrap();
    let section = doc
        .split("## Commands on the node")
        .nth(1)
        .expect("docs/rendering.md has a 'Commands on the node' section");
    let section = section.split("\n## ").next().unwrap();
    let documented: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    let listed: Vec<&str> = FLATCAR_COMMANDS.iter().map(|(c, _)| *c).collect();
    assert_eq!(documented, listed, "the table in docs/rendering.md");
    for b in SHELL_BUILTINS {
        assert!(
            section.contains(&format!("`{b}`")),
            "builtin {b} undocumented"
        );
    }
}
