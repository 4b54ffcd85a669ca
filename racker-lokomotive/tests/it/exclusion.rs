//! Excluding a node after rendering.

use std::path::Path;

use racker_inventory::MacAddr;
use racker_lokomotive::{
    HOSTS_FILE, MANIFEST, RenderError, Tree, apply_hosts_block, exclude_in_dir, plan_exclusion,
    read_manifest, render,
};

use crate::fixtures::{Scenario, inputs, render_scenario};
use crate::validity::check_tree;

fn read_tree(dir: &Path) -> Tree {
    let mut tree = Tree::new();
    fn walk(root: &Path, dir: &Path, tree: &mut Tree) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, tree);
            } else {
                use std::os::unix::fs::PermissionsExt;
                let mode = p.metadata().unwrap().permissions().mode() & 0o777;
                tree.insert(
                    p.strip_prefix(root).unwrap(),
                    std::fs::read(&p).unwrap(),
                    mode,
                );
            }
        }
    }
    walk(dir, dir, &mut tree);
    tree
}

#[test]
fn excluding_a_worker_touches_only_its_files_and_the_lists() {
    let mut s = Scenario::lokomotive("rack60");
    s.backup = true;
    s.public_ips = true;
    s.num_controllers = Some(3);
    let before = render_scenario(&s);
    let dir = tempfile::tempdir().unwrap();
    before.write_to(dir.path()).unwrap();
    // Something that is not racker's: must survive.
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    std::fs::write(dir.path().join("logs/attempt-1"), "log").unwrap();

    let i = inputs(&s).unwrap();
    let victim = i.selection.workers()[5];
    let name = victim.hostname.clone().unwrap();
    let mac = victim.planned.node.bmc_mac; // any of the node's MACs works
    let done = exclude_in_dir(dir.path(), mac, false).unwrap();
    assert_eq!(done.name, name);

    let after = read_tree(dir.path());
    check_tree(&after);
    let primary = victim.planned.node.primary_mac.to_string();
    let changed: Vec<String> = after
        .files()
        .filter(|(p, f)| before.get(p).is_some_and(|b| b.contents != f.contents))
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert_eq!(changed, vec!["lokocfg.vars", HOSTS_FILE, MANIFEST]);
    for (p, f) in after.files() {
        if p.starts_with("logs") {
            continue;
        }
        assert!(before.get(p).is_some(), "new file {}", p.display());
        if p != Path::new(MANIFEST) {
            assert!(
                !f.text().contains(&primary),
                "{} still names {primary}",
                p.display()
            );
            assert!(
                !f.text().contains(&format!("{name}\"")),
                "{} still names {name}",
                p.display()
            );
        }
        assert_eq!(before.get(p).unwrap().mode, f.mode, "{}", p.display());
    }
    assert!(after.get(format!("cl/{name}.yaml")).is_none());
    assert!(after.get(format!("cl/{name}-custom.yaml")).is_none());
    assert_eq!(after.get("logs/attempt-1").unwrap().text(), "log");
    // Secrets survive the exclusion untouched.
    assert_eq!(
        after.get("backup-credentials"),
        before.get("backup-credentials")
    );

    // The result is exactly what rendering the reduced manifest gives.
    let spec = read_manifest(dir.path()).unwrap();
    assert_eq!(
        spec.excluded_after_render,
        vec![victim.planned.node.primary_mac]
    );
    let rerendered = render(&spec, None).unwrap();
    for (p, f) in rerendered.files() {
        assert_eq!(
            after.get(p).unwrap().contents,
            f.contents,
            "{}",
            p.display()
        );
    }
    // The management hosts block no longer names the node.
    let hosts = apply_hosts_block("127.0.0.1 localhost\n", &done.hosts_block);
    assert!(!hosts.contains(&name));

    // Excluding it again is refused.
    assert!(matches!(
        exclude_in_dir(dir.path(), mac, false),
        Err(RenderError::NotInCluster { .. })
    ));
}

#[test]
fn excluding_a_controller_removes_its_host_entries_everywhere() {
    let mut s = Scenario::lokomotive("rack60");
    s.num_controllers = Some(3);
    let i = inputs(&s).unwrap();
    let spec =
        racker_lokomotive::ClusterSpec::new(&i.plan, &i.selection, &i.options, &i.public).unwrap();
    let c1 = i.selection.controllers()[1];
    let ex = plan_exclusion(&spec, c1.planned.node.primary_mac, false, |_| None).unwrap();
    let etcd = "lokomotive-etcd1.k8s.localdomain";
    for (p, f) in ex.write.files() {
        if p != Path::new(MANIFEST) {
            assert!(!f.text().contains(etcd), "{}", p.display());
        }
    }
    assert!(
        ex.remove
            .iter()
            .any(|p| p.ends_with("lokomotive-controller-1.k8s.localdomain.yaml"))
    );
}

#[test]
fn flatcar_exclusion_removes_ignition_and_keeps_names() {
    let s = Scenario::flatcar("rack60");
    let i = inputs(&s).unwrap();
    let spec =
        racker_lokomotive::ClusterSpec::new(&i.plan, &i.selection, &i.options, &i.public).unwrap();
    let victim: MacAddr = i.selection.nodes()[7].planned.node.primary_mac;
    let ex = plan_exclusion(&spec, victim, false, |_| None).unwrap();
    let mut removed: Vec<String> = ex.remove.iter().map(|p| p.display().to_string()).collect();
    removed.sort();
    let stem = victim.to_string().replace(':', "-");
    assert_eq!(
        removed,
        vec![
            "cl/node-7-custom.yaml".to_owned(),
            "cl/node-7.yaml".to_owned(),
            format!("ignition/{stem}-install.ign"),
            format!("ignition/{stem}-os.ign"),
        ]
    );
    // node-8 keeps its name even though node-7 is gone.
    let vars = ex.write.get("terraform.tfvars").unwrap().text();
    assert!(
        vars.contains("\"node-8\"") && !vars.contains("\"node-7\""),
        "{vars}"
    );
}

#[test]
fn hand_edited_files_are_not_overwritten_without_force() {
    let s = Scenario::lokomotive("example");
    let tree = render_scenario(&s);
    let dir = tempfile::tempdir().unwrap();
    tree.write_to(dir.path()).unwrap();
    let vars = dir.path().join("lokocfg.vars");
    let edited = format!("{}# my tweak\n", std::fs::read_to_string(&vars).unwrap());
    std::fs::write(&vars, &edited).unwrap();
    let worker: MacAddr = "00:11:22:33:44:20".parse().unwrap();
    let err = exclude_in_dir(dir.path(), worker, false).unwrap_err();
    assert!(matches!(err, RenderError::ModifiedFile { .. }), "{err}");
    // Nothing was changed by the refused attempt.
    assert_eq!(std::fs::read_to_string(&vars).unwrap(), edited);
    assert!(
        dir.path()
            .join("cl/lokomotive-worker-0.k8s.localdomain.yaml")
            .exists()
    );
    exclude_in_dir(dir.path(), worker, true).unwrap();
    assert!(
        !dir.path()
            .join("cl/lokomotive-worker-0.k8s.localdomain.yaml")
            .exists()
    );
}

#[test]
fn the_last_controller_or_node_cannot_be_excluded() {
    let s = Scenario::lokomotive("example");
    let i = inputs(&s).unwrap();
    let spec =
        racker_lokomotive::ClusterSpec::new(&i.plan, &i.selection, &i.options, &i.public).unwrap();
    let controller: MacAddr = "00:11:22:33:44:10".parse().unwrap();
    assert!(matches!(
        plan_exclusion(&spec, controller, false, |_| None),
        Err(RenderError::CannotExclude { .. })
    ));
    let stranger: MacAddr = "00:11:22:33:44:99".parse().unwrap();
    assert!(matches!(
        plan_exclusion(&spec, stranger, false, |_| None),
        Err(RenderError::NotInCluster { .. })
    ));
}
