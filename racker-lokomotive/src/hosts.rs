//! The management node's `/etc/hosts` block: every node name of the
//! cluster between begin/end markers, so it can be replaced or removed
//! without touching the user's own lines.

use minijinja::context;
use minijinja::value::Value;

use crate::error::RenderError;
use crate::spec::ClusterSpec;
use crate::templates::{render, safe};

/// First line of the block.
pub const HOSTS_BEGIN: &str =
    "# BEGIN racker cluster (managed by racker: edits between these markers are replaced)";
/// Last line of the block.
pub const HOSTS_END: &str = "# END racker cluster";

/// The block (markers included, trailing newline) for `spec`.
///
/// The lines come in the order the original racker wrote them
/// (docs/migrating.md): first one line per Lokomotive controller with the
/// API name and the controller's etcd name, then one line per node with
/// its host name, controllers first.
pub fn hosts_block(spec: &ClusterSpec) -> Result<String, RenderError> {
    let controllers = spec.controllers().map(|c| {
        let (etcd, other): (Vec<&String>, Vec<&String>) =
            c.aliases.iter().partition(|a| a.contains("-etcd"));
        let names: Vec<String> = other.into_iter().chain(etcd).cloned().collect();
        context! { ip => c.ip.to_string(), names => names }
    });
    let nodes = spec
        .nodes
        .iter()
        .map(|n| context! { ip => n.ip.to_string(), names => vec![n.name.clone()] });
    let lines: Vec<Value> = controllers.chain(nodes).collect();
    render(
        "management-hosts.j2",
        context! { begin => safe(HOSTS_BEGIN.to_owned()), end => safe(HOSTS_END.to_owned()), nodes => lines },
    )
}

/// `existing` with every racker block removed (the user's lines untouched).
pub fn remove_hosts_block(existing: &str) -> String {
    let mut out = String::with_capacity(existing.len());
    let mut inside = false;
    for line in existing.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        if !inside && bare == HOSTS_BEGIN {
            inside = true;
        } else if inside && bare == HOSTS_END {
            inside = false;
        } else if !inside {
            out.push_str(line);
        }
    }
    out
}

/// `existing` with the racker block replaced by `block` (appended when there
/// was none). Applying the same block twice gives the same text.
pub fn apply_hosts_block(existing: &str, block: &str) -> String {
    let mut out = String::with_capacity(existing.len() + block.len());
    let mut inside = false;
    let mut placed = false;
    for line in existing.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        if !inside && bare == HOSTS_BEGIN {
            inside = true;
            if !placed {
                out.push_str(block);
                placed = true;
            }
        } else if inside && bare == HOSTS_END {
            inside = false;
        } else if !inside {
            out.push_str(line);
        }
    }
    if !placed {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(block);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BLOCK: &str = "# BEGIN racker cluster (managed by racker: edits between these markers are replaced)\n10.0.0.2 node-0\n# END racker cluster\n";

    #[test]
    fn apply_appends_then_replaces_in_place() {
        let user = "127.0.0.1 localhost\n192.168.1.5 printer";
        let once = apply_hosts_block(user, BLOCK);
        assert_eq!(
            once,
            format!("127.0.0.1 localhost\n192.168.1.5 printer\n{BLOCK}")
        );
        assert_eq!(apply_hosts_block(&once, BLOCK), once);
        let other = BLOCK.replace("node-0", "node-9");
        let mut with_tail = once.clone();
        with_tail.push_str("10.1.1.1 mine\n");
        let replaced = apply_hosts_block(&with_tail, &other);
        assert_eq!(
            replaced,
            format!("127.0.0.1 localhost\n192.168.1.5 printer\n{other}10.1.1.1 mine\n")
        );
        assert_eq!(
            remove_hosts_block(&replaced),
            "127.0.0.1 localhost\n192.168.1.5 printer\n10.1.1.1 mine\n"
        );
    }

    proptest! {
        #[test]
        fn user_lines_survive(lines in proptest::collection::vec("[a-z0-9. #]{0,20}", 0..8)) {
            let user: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let applied = apply_hosts_block(&user, BLOCK);
            prop_assert_eq!(apply_hosts_block(&applied, BLOCK), applied.clone());
            prop_assert_eq!(remove_hosts_block(&applied), user);
        }
    }
}
