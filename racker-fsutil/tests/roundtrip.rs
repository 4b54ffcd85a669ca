//! Property: whatever the content and mode, a write leaves exactly that
//! content and mode and only the target in the directory.
use std::os::unix::fs::MetadataExt as _;

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_content_and_mode_round_trips(
        first in proptest::collection::vec(any::<u8>(), 0..4096),
        second in proptest::collection::vec(any::<u8>(), 0..4096),
        mode in 0o400u32..0o777,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        racker_fsutil::write_atomic(&path, &first, 0o644).unwrap();
        racker_fsutil::write_atomic(&path, &second, mode).unwrap();
        prop_assert_eq!(std::fs::read(&path).unwrap(), second);
        prop_assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, mode);
        prop_assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
