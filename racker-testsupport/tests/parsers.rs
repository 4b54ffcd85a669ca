//! Property tests of the helpers' parsers: the test file server never
//! serves outside its folder, and `/proc/<pid>/status` fields are read
//! exactly.

use std::path::Component;

use proptest::prelude::*;
use racker_testsupport::{http::relative_path, status_field_kib};

proptest! {
    /// Whatever the request path, what is served is a plain relative path
    /// of names below the root; paths of plain names are served as given.
    #[test]
    fn the_file_server_stays_in_its_folder(path in "[/a-z.]{0,24}") {
        if let Some(rel) = relative_path(&path) {
            prop_assert!(rel.components().all(|c| matches!(c, Component::Normal(_))));
            prop_assert!(rel.components().next().is_some());
        }
        let dotdot = path.split('/').any(|part| part == "..");
        if dotdot {
            prop_assert!(relative_path(&path).is_none());
        }
    }

    #[test]
    fn plain_names_are_served(names in proptest::collection::vec("[a-z0-9_-]{1,8}", 1..5)) {
        let path = format!("/{}", names.join("/"));
        prop_assert_eq!(relative_path(&path).map(|p| p.to_path_buf()), Some(names.iter().collect()));
    }

    /// A status text with the field anywhere among others gives its value;
    /// without it, nothing.
    #[test]
    fn status_fields_are_read_exactly(
        before in proptest::collection::vec(("[A-Z][a-z]{1,6}", 0u64..1 << 40), 0..6),
        value in 0u64..1 << 40,
        pad in 0usize..8,
    ) {
        let mut text = String::new();
        for (name, v) in &before {
            if name != "VmHWM" {
                text.push_str(&format!("{name}:\t{v} kB\n"));
            }
        }
        let without = text.clone();
        text.push_str(&format!("VmHWM:{}{value} kB\nVmRSS:\t1 kB\n", " ".repeat(pad + 1)));
        prop_assert_eq!(status_field_kib(&text, "VmHWM"), Some(value));
        prop_assert_eq!(status_field_kib(&without, "VmHWM"), None);
    }
}

#[test]
fn traversal_and_empty_paths_are_refused() {
    for bad in ["/", "", "/../etc/passwd", "/a/../../b", "/./a"] {
        assert_eq!(relative_path(bad), None, "{bad:?}");
    }
    assert_eq!(
        relative_path("/releases/index.json"),
        Some(std::path::Path::new("releases/index.json"))
    );
}
