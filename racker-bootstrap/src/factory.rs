//! `racker factory reset --inventory` (docs/installer.md): the rack
//! metadata back to its factory state.

use std::path::Path;

use crate::fsutil::write_atomic;
use crate::{Error, Result};

/// What became of the state directory in [`reset_inventory`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateDirReset {
    /// It was removed.
    Removed,
    /// There was none.
    AlreadyAbsent,
}

/// Reset nodes.csv to its header line and remove the state directory.
pub fn reset_inventory(nodes_csv: &Path, state_dir: &Path) -> Result<StateDirReset> {
    write_atomic(
        nodes_csv,
        format!("{}\n", racker_inventory::NODES_CSV_HEADER).as_bytes(),
        0o644,
    )?;
    match std::fs::remove_dir_all(state_dir) {
        Ok(()) => Ok(StateDirReset::Removed),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StateDirReset::AlreadyAbsent),
        Err(e) => Err(Error::io("removing", state_dir, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_and_state_are_reset() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("oem/nodes.csv");
        let state = dir.path().join("state");
        std::fs::create_dir_all(state.join("assets")).unwrap();
        assert_eq!(
            reset_inventory(&csv, &state).unwrap(),
            StateDirReset::Removed
        );
        assert_eq!(
            std::fs::read_to_string(&csv).unwrap(),
            format!("{}\n", racker_inventory::NODES_CSV_HEADER)
        );
        assert!(!state.exists());
        assert_eq!(
            reset_inventory(&csv, &state).unwrap(),
            StateDirReset::AlreadyAbsent
        );
    }
}
