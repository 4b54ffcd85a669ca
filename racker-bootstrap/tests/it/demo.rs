//! The demo rack (feature `demo`) through the library alone: its folders,
//! simulated BMCs and firmware (with a fault), a bootstrap against them,
//! then the rack kept running with racker's netboot server and the rack
//! view, and stopped — what `racker demo --keep-running` does, without the
//! binary.

use std::time::Duration;

use racker_bootstrap::demo::{
    self, DEMO_PASSWORD, DEMO_USER, DemoOptions, DemoRack, Prepared, demo_macs,
};
use racker_bootstrap::{CollectEvents, Config, Decision, NetbootEndpoints, Rack};
use racker_inventory::{AddressPlan, Inventory, PlanOptions, SelectionOptions};

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGVpbnRlc3RrZXlmb3JyYWNrZXJib290c3RyYXA test";

fn load_rack(dirs: &demo::DemoDirs, nodes: usize) -> Rack {
    let inventory = Inventory::load(&dirs.oem_dir.join("nodes.csv")).unwrap();
    let interfaces = racker_inventory::read_local_interfaces(&dirs.sys_class_net).unwrap();
    let management = inventory.management(&interfaces).unwrap();
    let (subnet_prefix, prefix_len) = demo::demo_network(nodes);
    let options = PlanOptions {
        subnet_prefix: subnet_prefix.to_owned(),
        prefix_len,
    };
    let plan = AddressPlan::new(&inventory, &management, &options).unwrap();
    Rack::new(inventory, management, plan)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_rack_is_provisioned_kept_and_stopped_through_the_library() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rack");
    assert_eq!(demo::prepare_dir(&dir, false).unwrap(), Prepared::Fresh);
    let dirs = demo::write_demo_rack(&dir, 3).unwrap();
    let mut options = DemoOptions::new(3);
    options.install_delay = Duration::ZERO;
    // Node 2's installer fails.
    let failing = demo_macs(Some(2))[0];
    options.faults = vec![format!("{failing}=install-fail").parse().unwrap()];
    let lab = DemoRack::start(&dirs, &options).await.unwrap();
    assert_eq!(lab.bmcs().len(), 3);
    // Other racker processes find the running rack's BMCs.
    assert_eq!(
        &racker_sim::running_simulator_bmcs(&dirs.state_dir),
        lab.bmcs()
    );

    let rack = load_rack(&dirs, 3);
    let mut config = Config::new(
        &dirs.state_dir,
        rack.clone(),
        SelectionOptions::default(),
        racker_ipmi::Credentials::new(DEMO_USER, DEMO_PASSWORD),
        racker_lokomotive::RenderOptions::new(vec![KEY.into()]),
    );
    config.bmc_overrides = lab.bmcs().clone();
    config.netboot =
        racker_bootstrap::NetbootMode::Serve(NetbootEndpoints::plain(lab.dhcp(), lab.http()));
    config.install_timeout = Duration::from_secs(60);
    config.os_timeout = Duration::from_secs(30);
    config.ipmi_timeout = Duration::from_secs(2);
    config.retries = 0;
    let events = CollectEvents::new();
    let report = racker_bootstrap::bootstrap(&config, &events, &Decision::Exclude)
        .await
        .unwrap();
    assert_eq!(report.state.nodes.len(), 3);
    let failed = &report.state.nodes[&failing].state;
    assert!(
        matches!(
            failed,
            racker_bootstrap::NodeState::Excluded { .. }
                | racker_bootstrap::NodeState::Failed { .. }
        ),
        "{failed:?}"
    );
    lab.write_status().unwrap();
    assert!(dirs.state_dir.join(racker_sim::STATUS_FILE).is_file());

    // Kept running: racker's netboot server again on the bootstrap's
    // addresses, with the rack view.
    let kept = lab.keep_running(&rack).await.unwrap();
    let view = reqwest::get(format!("{}/", kept.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(view.contains("rack view"), "{view}");
    assert_ne!(demo::example_hostname(&dirs.state_dir), "");

    let state = kept.stop().await;
    let counts = demo::state_counts(state.as_ref());
    assert_eq!(counts.get("os-up"), Some(&2), "{counts:?}");
    assert_eq!(counts.values().sum::<usize>(), 3, "{counts:?}");
    // Stopped: no running rack claimed any more, and the default-folder
    // rule clears a demo folder that holds only the demo's files.
    assert!(racker_sim::running_simulator_bmcs(&dirs.state_dir).is_empty());
    assert_eq!(demo::prepare_dir(&dir, true).unwrap(), Prepared::Cleared);
}

/// `racker demo`'s own steps through the library: the demo's bootstrap
/// configuration ([`DemoRack::bootstrap`]), the status of its nodes and
/// the sentences saying how it ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_bootstraps_and_reports_its_status_through_the_library() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rack");
    let (chosen, default) = demo::choose_dir(Some(&dir), &[], tmp.path()).unwrap();
    assert_eq!((chosen.as_path(), default), (dir.as_path(), false));
    let dirs = demo::write_demo_rack(&dir, 2).unwrap();
    let mut options = DemoOptions::new(2);
    options.install_delay = Duration::ZERO;
    let lab = DemoRack::start(&dirs, &options).await.unwrap();
    let events = CollectEvents::new();
    let run = demo::DemoBootstrap::new(&dir);
    let report = lab
        .bootstrap(&run, &events, &Decision::Cancel)
        .await
        .unwrap();
    assert!(report.succeeded(), "{:?}", report.outcome);
    // The management key pair was made on first use, and said so.
    assert!(dirs.state_dir.join("ssh/id_ed25519").is_file());
    let said = |prefix: &str| {
        events
            .events()
            .iter()
            .any(|e| matches!(e, racker_bootstrap::Event::Message(m) if m.starts_with(prefix)))
    };
    assert!(said("Created the management SSH key"));
    let status = lab.status(&events).await.unwrap();
    assert_eq!(status.provisioned, "flatcar");
    assert_eq!(status.nodes.len(), 2);
    assert!(
        status
            .nodes
            .iter()
            .all(|n| n.bmc_reached && n.state == "os-up")
    );
    let rows = status.table_rows(false);
    assert!(
        rows.iter().all(|r| r[3] == "reached" && r[7] == "os-up"),
        "{rows:?}"
    );
    let text = demo::DemoText::new(&dir, false, 2);
    assert!(text.after_status(report.succeeded(), true).is_empty());
    lab.stop().await;
}
