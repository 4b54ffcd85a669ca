//! Cluster selection (docs/inventory.md): exclusions, roles, host names,
//! storage nodes and labels.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::{AddressPlan, MacAddr, PlannedNode};

/// What racker installs (also what racker-lokomotive renders).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provision {
    /// Plain Flatcar Container Linux on every node.
    Flatcar,
    /// A Lokomotive Kubernetes cluster.
    Lokomotive,
}

impl fmt::Display for Provision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Flatcar => "flatcar",
            Self::Lokomotive => "lokomotive",
        })
    }
}

/// Lokomotive storage provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StorageProvider {
    /// No storage component.
    #[default]
    None,
    /// Rook (Ceph).
    Rook,
    /// OpenEBS.
    Openebs,
}

impl fmt::Display for StorageProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Rook => "rook",
            Self::Openebs => "openebs",
        })
    }
}

/// How many storage nodes to pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorageCount {
    /// The first N matching workers.
    Count(usize),
    /// Every matching worker.
    #[default]
    All,
}

impl FromStr for StorageCount {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("all") {
            return Ok(Self::All);
        }
        match s.parse::<usize>() {
            Ok(n) if n > 0 => Ok(Self::Count(n)),
            _ => Err(Error::InvalidStorageCount {
                value: s.to_owned(),
            }),
        }
    }
}

/// The node type that matches every node.
pub const ANY_NODE_TYPE: &str = "any";

/// Inputs of the selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectionOptions {
    /// Flatcar or Lokomotive.
    pub provision: Provision,
    /// MACs (any column) of nodes to leave out.
    pub exclude: Vec<MacAddr>,
    /// 1 or 3; `None` picks 3 when at least three nodes match the
    /// controller type, else 1.
    pub num_controllers: Option<usize>,
    /// Node type of the controllers (`any` matches all).
    pub controller_type: String,
    /// Storage provider (Lokomotive).
    pub storage_provider: StorageProvider,
    /// Node type of the storage nodes (`any` matches all).
    pub storage_node_type: String,
    /// How many storage nodes.
    pub storage_count: StorageCount,
    /// Cluster name (Lokomotive), a DNS label.
    pub cluster_name: String,
    /// Kubernetes domain (Lokomotive).
    pub domain: String,
}

impl Default for SelectionOptions {
    fn default() -> Self {
        Self {
            provision: Provision::Flatcar,
            exclude: Vec::new(),
            num_controllers: None,
            controller_type: ANY_NODE_TYPE.to_owned(),
            storage_provider: StorageProvider::None,
            storage_node_type: ANY_NODE_TYPE.to_owned(),
            storage_count: StorageCount::All,
            cluster_name: "lokomotive".to_owned(),
            domain: "k8s.localdomain".to_owned(),
        }
    }
}

/// Parse a whitespace- (or comma-) separated list of MACs.
pub fn parse_mac_list(text: &str) -> Result<Vec<MacAddr>> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse().map_err(|_| Error::InvalidExcludedMac {
                value: s.to_owned(),
            })
        })
        .collect()
}

/// Role of a node in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Lokomotive controller.
    Controller,
    /// Lokomotive worker.
    Worker,
    /// Plain Flatcar node.
    Node,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Controller => "controller",
            Self::Worker => "worker",
            Self::Node => "node",
        })
    }
}

/// A planned node with its place in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SelectedNode {
    /// The node and its addresses.
    pub planned: PlannedNode,
    /// Its role; `None` when excluded.
    pub role: Option<Role>,
    /// Index within its role (controller 0, 1, 2; worker 0...; Flatcar
    /// nodes use their plan index); `None` when excluded.
    pub role_index: Option<usize>,
    /// Host name (FQDN for Lokomotive); `None` when excluded.
    pub hostname: Option<String>,
    /// Extra names (Lokomotive controllers: etcd name and the API name).
    pub aliases: Vec<String>,
    /// True for Lokomotive storage nodes.
    pub storage: bool,
    /// True when left out of the cluster.
    pub excluded: bool,
    /// Kubernetes node labels.
    pub labels: BTreeMap<String, String>,
}

/// The result of the selection: every planned node, excluded ones marked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    provision: Provision,
    cluster_name: String,
    domain: String,
    nodes: Vec<SelectedNode>,
}

impl Selection {
    /// Flatcar or Lokomotive.
    pub fn provision(&self) -> Provision {
        self.provision
    }

    /// Cluster name.
    pub fn cluster_name(&self) -> &str {
        &self.cluster_name
    }

    /// Kubernetes domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The API server name `<cluster>.<domain>`.
    pub fn api_name(&self) -> String {
        format!("{}.{}", self.cluster_name, self.domain)
    }

    /// Every planned node (excluded ones included), in plan order.
    pub fn nodes(&self) -> &[SelectedNode] {
        &self.nodes
    }

    /// Nodes taking part, controllers first (in order), then the others.
    pub fn active(&self) -> Vec<&SelectedNode> {
        let mut v: Vec<&SelectedNode> = self.nodes.iter().filter(|n| !n.excluded).collect();
        v.sort_by_key(|n| (n.role, n.role_index));
        v
    }

    /// Controllers in order.
    pub fn controllers(&self) -> Vec<&SelectedNode> {
        self.with_role(Role::Controller)
    }

    /// Workers in order.
    pub fn workers(&self) -> Vec<&SelectedNode> {
        self.with_role(Role::Worker)
    }

    fn with_role(&self, role: Role) -> Vec<&SelectedNode> {
        let mut v: Vec<&SelectedNode> =
            self.nodes.iter().filter(|n| n.role == Some(role)).collect();
        v.sort_by_key(|n| n.role_index);
        v
    }

    /// The node holding `mac`.
    pub fn find_by_mac(&self, mac: MacAddr) -> Option<&SelectedNode> {
        self.nodes.iter().find(|n| n.planned.node.has_mac(mac))
    }

    /// The node answering to `name` (host name, short host name or alias).
    pub fn find_by_name(&self, name: &str) -> Option<&SelectedNode> {
        self.nodes.iter().find(|n| {
            n.hostname
                .as_deref()
                .is_some_and(|h| h == name || h.split('.').next() == Some(name))
                || n.aliases.iter().any(|a| a == name)
        })
    }
}

/// Check a DNS label or name (lower-case letters, digits, '-', '.').
pub fn validate_dns_name(what: &'static str, value: &str, allow_dots: bool) -> Result<()> {
    let bad = || Error::InvalidName {
        what,
        value: value.to_owned(),
    };
    if value.is_empty() || value.len() > 253 {
        return Err(bad());
    }
    for label in value.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(bad());
        }
    }
    if !allow_dots && value.contains('.') {
        return Err(bad());
    }
    Ok(())
}

fn type_matches(wanted: &str, node_type: &str) -> bool {
    wanted == ANY_NODE_TYPE || wanted == node_type
}

/// Select the cluster's nodes from the plan.
pub fn select(plan: &AddressPlan, options: &SelectionOptions) -> Result<Selection> {
    for &mac in &options.exclude {
        if plan.management().node.has_mac(mac) {
            return Err(Error::ExcludedManagementNode { mac });
        }
        if plan.find_by_mac(mac).is_none() {
            return Err(Error::UnknownExcludedMac { mac });
        }
    }
    let lokomotive = options.provision == Provision::Lokomotive;
    if lokomotive {
        validate_dns_name("cluster name", &options.cluster_name, false)?;
        validate_dns_name("domain", &options.domain, true)?;
    }
    let excluded = |p: &PlannedNode| options.exclude.iter().any(|&m| p.node.has_mac(m));
    let active: Vec<&PlannedNode> = plan.nodes().iter().filter(|p| !excluded(p)).collect();

    let mut roles: BTreeMap<usize, (Role, usize)> = BTreeMap::new();
    let mut storage: Vec<usize> = Vec::new();
    if lokomotive {
        let matching: Vec<&PlannedNode> = active
            .iter()
            .copied()
            .filter(|p| type_matches(&options.controller_type, &p.node.node_type))
            .collect();
        let wanted = match options.num_controllers {
            Some(n @ (1 | 3)) => n,
            Some(n) => return Err(Error::InvalidControllerCount { value: n }),
            None if matching.len() >= 3 => 3,
            None => 1,
        };
        if matching.len() < wanted {
            return Err(Error::NotEnoughControllers {
                wanted,
                node_type: options.controller_type.clone(),
                found: matching.len(),
            });
        }
        for (i, p) in matching.iter().take(wanted).enumerate() {
            roles.insert(p.index, (Role::Controller, i));
        }
        let workers: Vec<&PlannedNode> = active
            .iter()
            .copied()
            .filter(|p| !roles.contains_key(&p.index))
            .collect();
        for (i, p) in workers.iter().enumerate() {
            roles.insert(p.index, (Role::Worker, i));
        }
        if options.storage_provider != StorageProvider::None {
            let candidates: Vec<usize> = workers
                .iter()
                .filter(|p| type_matches(&options.storage_node_type, &p.node.node_type))
                .map(|p| p.index)
                .collect();
            let want = match options.storage_count {
                StorageCount::All => candidates.len(),
                StorageCount::Count(n) => n,
            };
            if candidates.len() < want || want == 0 {
                return Err(Error::NotEnoughStorageNodes {
                    wanted: want.max(1),
                    node_type: options.storage_node_type.clone(),
                    found: candidates.len(),
                });
            }
            storage = candidates.into_iter().take(want).collect();
        }
    } else {
        for p in &active {
            roles.insert(p.index, (Role::Node, p.index));
        }
    }

    let cluster = &options.cluster_name;
    let domain = &options.domain;
    let nodes = plan
        .nodes()
        .iter()
        .map(|p| {
            let role = roles.get(&p.index).copied();
            let is_storage = storage.contains(&p.index);
            let (hostname, aliases) = match role {
                None => (None, Vec::new()),
                Some((Role::Controller, i)) => (
                    Some(format!("{cluster}-controller-{i}.{domain}")),
                    vec![
                        format!("{cluster}-etcd{i}.{domain}"),
                        format!("{cluster}.{domain}"),
                    ],
                ),
                Some((Role::Worker, i)) => {
                    (Some(format!("{cluster}-worker-{i}.{domain}")), Vec::new())
                }
                Some((Role::Node, i)) => (Some(format!("node-{i}")), Vec::new()),
            };
            let mut labels = BTreeMap::new();
            if role.is_some() {
                labels.insert("metadata.node-type".to_owned(), p.node.node_type.clone());
                if is_storage {
                    labels.insert(
                        "storage.lokomotive.io".to_owned(),
                        options.storage_provider.to_string(),
                    );
                }
            }
            SelectedNode {
                planned: p.clone(),
                role: role.map(|r| r.0),
                role_index: role.map(|r| r.1),
                hostname,
                aliases,
                storage: is_storage,
                excluded: role.is_none(),
                labels,
            }
        })
        .collect();
    Ok(Selection {
        provision: options.provision,
        cluster_name: cluster.clone(),
        domain: domain.clone(),
        nodes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Inventory, LocalInterface, PlanOptions};
    use proptest::prelude::*;

    fn plan(types: &[&str]) -> AddressPlan {
        let mut text = String::from("Primary, BMC, Secondary, Type, Comment\n");
        text.push_str("00:00:00:00:ff:00, 00:00:00:00:ff:01, 00:00:00:00:ff:02, mgmt, m\n");
        for (i, t) in types.iter().enumerate().rev() {
            text.push_str(&format!(
                "02:00:00:00:{i:02x}:01, 02:00:00:00:{i:02x}:02, 02:00:00:00:{i:02x}:03, {t}, \n"
            ));
        }
        let inv = Inventory::parse("nodes.csv", text.as_bytes()).unwrap();
        let m = inv
            .management(&[LocalInterface {
                name: "eth1".into(),
                mac: "00:00:00:00:ff:02".parse().unwrap(),
            }])
            .unwrap();
        AddressPlan::new(&inv, &m, &PlanOptions::default()).unwrap()
    }

    fn loko() -> SelectionOptions {
        SelectionOptions {
            provision: Provision::Lokomotive,
            ..Default::default()
        }
    }

    #[test]
    fn flatcar_names_and_exclusion() {
        let p = plan(&["a", "b", "c"]);
        let sel = select(
            &p,
            &SelectionOptions {
                exclude: parse_mac_list("02:00:00:00:01:03").unwrap(),
                ..Default::default()
            },
        )
        .unwrap();
        let names: Vec<Option<&str>> = sel.nodes().iter().map(|n| n.hostname.as_deref()).collect();
        assert_eq!(names, vec![Some("node-0"), None, Some("node-2")]);
        assert!(sel.nodes()[1].excluded);
        assert_eq!(sel.nodes()[2].planned.ip.to_string(), "172.24.213.4");
        assert_eq!(sel.active().len(), 2);
    }

    #[test]
    fn lokomotive_roles_storage_and_labels() {
        let p = plan(&["red", "blue", "red", "red", "blue", "red"]);
        let sel = select(
            &p,
            &SelectionOptions {
                controller_type: "red".into(),
                storage_provider: StorageProvider::Rook,
                storage_node_type: "blue".into(),
                storage_count: StorageCount::Count(1),
                ..loko()
            },
        )
        .unwrap();
        let c: Vec<usize> = sel.controllers().iter().map(|n| n.planned.index).collect();
        assert_eq!(c, vec![0, 2, 3]);
        let w: Vec<&str> = sel
            .workers()
            .iter()
            .map(|n| n.hostname.as_deref().unwrap())
            .collect();
        assert_eq!(
            w,
            vec![
                "lokomotive-worker-0.k8s.localdomain",
                "lokomotive-worker-1.k8s.localdomain",
                "lokomotive-worker-2.k8s.localdomain"
            ]
        );
        assert_eq!(
            sel.controllers()[1].hostname.as_deref(),
            Some("lokomotive-controller-1.k8s.localdomain")
        );
        assert_eq!(
            sel.controllers()[1].aliases,
            vec![
                "lokomotive-etcd1.k8s.localdomain",
                "lokomotive.k8s.localdomain"
            ]
        );
        let storage: Vec<usize> = sel
            .nodes()
            .iter()
            .filter(|n| n.storage)
            .map(|n| n.planned.index)
            .collect();
        assert_eq!(storage, vec![1]);
        assert_eq!(
            sel.nodes()[1]
                .labels
                .get("storage.lokomotive.io")
                .map(String::as_str),
            Some("rook")
        );
        assert_eq!(
            sel.nodes()[0]
                .labels
                .get("metadata.node-type")
                .map(String::as_str),
            Some("red")
        );
        assert_eq!(
            sel.find_by_name("lokomotive-worker-1")
                .unwrap()
                .planned
                .index,
            4
        );
    }

    #[test]
    fn lokomotive_defaults_and_errors() {
        let p = plan(&["red", "blue"]);
        let sel = select(&p, &loko()).unwrap();
        assert_eq!(sel.controllers().len(), 1);
        let e = select(
            &p,
            &SelectionOptions {
                num_controllers: Some(3),
                ..loko()
            },
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "3 controller(s) of node type \"any\" are needed but only 2 (not excluded) node(s) match"
        );
        let e = select(
            &p,
            &SelectionOptions {
                controller_type: "green".into(),
                ..loko()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("\"green\""), "{e}");
        assert!(
            select(
                &p,
                &SelectionOptions {
                    num_controllers: Some(2),
                    ..loko()
                }
            )
            .is_err()
        );
        let e = select(
            &p,
            &SelectionOptions {
                storage_provider: StorageProvider::Openebs,
                storage_node_type: "red".into(),
                ..loko()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("storage node"), "{e}");
        assert!(
            select(
                &p,
                &SelectionOptions {
                    cluster_name: "Bad\"name".into(),
                    ..loko()
                }
            )
            .is_err()
        );
        assert!(
            select(
                &p,
                &SelectionOptions {
                    domain: "a..b".into(),
                    ..loko()
                }
            )
            .is_err()
        );
        assert!(
            select(
                &p,
                &SelectionOptions {
                    exclude: parse_mac_list("00:00:00:00:ff:01").unwrap(),
                    ..loko()
                }
            )
            .is_err()
        );
        assert!(
            select(
                &p,
                &SelectionOptions {
                    exclude: parse_mac_list("00:00:00:00:aa:01").unwrap(),
                    ..loko()
                }
            )
            .is_err()
        );
        assert!(parse_mac_list("nope").is_err());
        assert!("0".parse::<StorageCount>().is_err());
        assert_eq!("ALL".parse::<StorageCount>().unwrap(), StorageCount::All);
    }

    proptest! {
        #[test]
        fn exclusions_never_move_addresses(n in 1usize..40, excl in proptest::collection::vec(any::<prop::sample::Index>(), 0..10), lok: bool) {
            let types: Vec<&str> = (0..n).map(|i| if i % 2 == 0 { "a" } else { "b" }).collect();
            let p = plan(&types);
            let exclude: Vec<MacAddr> = excl.iter().map(|i| p.nodes()[i.index(n)].node.bmc_mac).collect();
            let opts = SelectionOptions {
                provision: if lok { Provision::Lokomotive } else { Provision::Flatcar },
                num_controllers: Some(1),
                exclude,
                ..Default::default()
            };
            let full = select(&p, &SelectionOptions { exclude: vec![], ..opts.clone() }).unwrap();
            let Ok(sel) = select(&p, &opts) else {
                // Only possible when every node is excluded (no controller left).
                prop_assert!(lok);
                return Ok(());
            };
            let mut names = std::collections::BTreeSet::new();
            for (a, b) in sel.nodes().iter().zip(full.nodes()) {
                prop_assert_eq!(a.planned.ip, b.planned.ip);
                prop_assert_eq!(a.planned.bmc_ip, b.planned.bmc_ip);
                prop_assert_eq!(a.excluded, a.hostname.is_none());
                if let Some(h) = &a.hostname { prop_assert!(names.insert(h.clone())); }
            }
        }
    }
}
