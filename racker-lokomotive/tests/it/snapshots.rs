//! Snapshots of whole rendered directories, one per scenario in
//! `tests/inputs/`. Under CI (`CI=true`) insta never writes snapshots, so a
//! changed rendering fails until the new `.snap` is reviewed and committed.

use crate::fixtures::{Scenario, render_scenario, tree_text};

#[test]
fn rendered_directories() {
    insta::glob!(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests"),
        "inputs/*.json",
        |path| {
            let scenario: Scenario =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            let tree = render_scenario(&scenario);
            insta::assert_snapshot!(tree_text(&tree));
        }
    );
}
