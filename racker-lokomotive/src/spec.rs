//! The validated description of a cluster that every rendered file is
//! computed from. It is also written into the cluster directory as
//! [`MANIFEST`], so a node can be excluded later by re-rendering without it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use racker_inventory::{AddressPlan, MacAddr, PublicIps, Role, Selection};
use serde::{Deserialize, Serialize};

use crate::error::RenderError;
use crate::escape::{is_dns_name, is_label_value};
use crate::options::{
    Backup, Provision, RenderOptions, StaticAddress, Storage, validate_backup, validate_kernel_arg,
    validate_ssh_key, validate_version,
};

/// File name of the manifest in the cluster directory.
pub const MANIFEST: &str = "racker-cluster.json";

/// Version of the manifest format.
const MANIFEST_FORMAT: u32 = 1;

/// Role of a node in the rendered cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    /// Lokomotive controller.
    Controller,
    /// Lokomotive worker.
    Worker,
    /// Plain Flatcar node.
    Node,
}

/// One node of the rendered cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// Host name (`node-<i>` or the Lokomotive FQDN).
    pub name: String,
    /// Primary MAC (internal network, PXE).
    pub mac: MacAddr,
    /// BMC MAC.
    pub bmc_mac: MacAddr,
    /// Secondary MAC (public network), when known.
    pub secondary_mac: Option<MacAddr>,
    /// Static internal address.
    pub ip: Ipv4Addr,
    /// Role.
    pub role: NodeRole,
    /// Index within the role (controller 0..).
    pub index: usize,
    /// Extra names (controllers: `<cluster>-etcd<i>.<domain>`, API name).
    pub aliases: Vec<String>,
    /// Kubernetes labels (Lokomotive).
    pub labels: BTreeMap<String, String>,
    /// Static public address of the secondary NIC, if any (else DHCP).
    pub public: Option<StaticAddress>,
}

/// Everything the rendered files depend on (secrets excepted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSpec {
    /// Manifest format version.
    pub format: u32,
    /// Flatcar or Lokomotive.
    pub provision: Provision,
    /// Cluster name (Lokomotive).
    pub cluster_name: String,
    /// Kubernetes domain (Lokomotive).
    pub domain: String,
    /// Management node's internal address (netboot / matchbox server).
    pub management_ip: Ipv4Addr,
    /// Internal network prefix length.
    pub prefix_len: u8,
    /// Netboot HTTP port.
    pub netboot_port: u16,
    /// The nodes taking part, controllers first, each role in index order.
    pub nodes: Vec<NodeSpec>,
    /// MACs excluded after the first render (by `racker exclude`).
    #[serde(default)]
    pub excluded_after_render: Vec<MacAddr>,
    /// Storage component.
    pub storage: Storage,
    /// Web UI component.
    pub web_ui: bool,
    /// Velero backup settings (credentials live only in `backup-credentials`).
    pub backup: Option<Backup>,
    /// Kernel console arguments.
    pub kernel_console: Vec<String>,
    /// Racker version.
    pub racker_version: String,
    /// SSH public keys.
    pub ssh_public_keys: Vec<String>,
    /// Lokomotive asset directory.
    pub asset_dir: String,
    /// Directory of the matchbox API client certificate, key and CA.
    pub matchbox_client_dir: String,
    /// Render for Lokomotive before v0.9 ([`RenderOptions::old_lokomotive`]).
    #[serde(default, skip_serializing_if = "is_false")]
    pub old_lokomotive: bool,
    /// Per-node install-report tokens ([`RenderOptions::report_tokens`]);
    /// the node's rendered files carry its token anyway.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub report_tokens: BTreeMap<MacAddr, String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl ClusterSpec {
    /// Build and validate the spec from the address plan, the selection,
    /// the other choices and the static public addresses (keyed by
    /// secondary MAC; nodes without an entry use DHCP).
    pub fn new(
        plan: &AddressPlan,
        selection: &Selection,
        options: &RenderOptions,
        public: &PublicIps,
    ) -> Result<Self, RenderError> {
        let public: BTreeMap<MacAddr, StaticAddress> = public
            .entries()
            .iter()
            .filter_map(|(mac, addr)| match addr {
                racker_inventory::PublicAddress::Static(a) => Some((*mac, a.clone())),
                racker_inventory::PublicAddress::Dhcp => None,
            })
            .collect();
        let provision = selection.provision();
        let mut nodes = Vec::new();
        for sel in selection.active() {
            let (Some(role), Some(index), Some(name)) =
                (sel.role, sel.role_index, sel.hostname.clone())
            else {
                continue;
            };
            let role = match role {
                Role::Controller => NodeRole::Controller,
                Role::Worker => NodeRole::Worker,
                _ => NodeRole::Node,
            };
            let node = &sel.planned.node;
            let public_addr = node.secondary_mac.and_then(|m| public.get(&m).cloned());
            nodes.push(NodeSpec {
                name,
                mac: node.primary_mac,
                bmc_mac: node.bmc_mac,
                secondary_mac: node.secondary_mac,
                ip: sel.planned.ip,
                role,
                index,
                aliases: sel.aliases.clone(),
                labels: if provision == Provision::Lokomotive {
                    sel.labels.clone()
                } else {
                    BTreeMap::new()
                },
                public: public_addr,
            });
        }
        for mac in public.keys() {
            if !nodes.iter().any(|n| n.secondary_mac == Some(*mac)) {
                // Sections for excluded nodes are fine; unknown ones are not.
                let known = selection
                    .nodes()
                    .iter()
                    .any(|s| s.planned.node.secondary_mac == Some(*mac));
                if !known {
                    return Err(RenderError::UnknownPublicMac { mac: *mac });
                }
            }
        }
        let spec = Self {
            format: MANIFEST_FORMAT,
            provision,
            cluster_name: selection.cluster_name().to_owned(),
            domain: selection.domain().to_owned(),
            management_ip: plan.management_ip(),
            prefix_len: plan.subnet().prefix_len(),
            netboot_port: options.netboot_port,
            nodes,
            excluded_after_render: Vec::new(),
            storage: if provision == Provision::Lokomotive {
                options.storage
            } else {
                Storage::None
            },
            web_ui: options.web_ui && provision == Provision::Lokomotive,
            backup: options
                .backup
                .as_ref()
                .filter(|_| provision == Provision::Lokomotive)
                .map(|(b, _)| b.clone()),
            kernel_console: options.kernel_console.clone(),
            racker_version: options.racker_version.clone(),
            ssh_public_keys: options.ssh_public_keys.clone(),
            asset_dir: options.asset_dir.clone(),
            matchbox_client_dir: options.matchbox_client_dir.clone(),
            old_lokomotive: options.old_lokomotive && provision == Provision::Lokomotive,
            report_tokens: options.report_tokens.clone(),
        };
        spec.validate()?;
        if let Some((b, c)) = &options.backup {
            validate_backup(b, Some(c))?;
        }
        Ok(spec)
    }

    /// Check every value that ends up in a rendered file. Called by
    /// [`ClusterSpec::new`] and again on a manifest read from disk (it may
    /// have been edited).
    pub fn validate(&self) -> Result<(), RenderError> {
        if self.format != MANIFEST_FORMAT {
            return Err(RenderError::invalid(
                "manifest format",
                self.format.to_string(),
                "unsupported manifest format version",
            ));
        }
        if self.nodes.is_empty() {
            return Err(RenderError::NoNodes);
        }
        let lokomotive = self.provision == Provision::Lokomotive;
        if lokomotive {
            if !is_dns_name(&self.cluster_name, false) || self.cluster_name.len() > 40 {
                return Err(RenderError::invalid(
                    "cluster name",
                    self.cluster_name.as_str(),
                    "must be a DNS label of at most 40 characters: lower-case letters, digits and '-'",
                ));
            }
            if !is_dns_name(&self.domain, true) {
                return Err(RenderError::invalid(
                    "Kubernetes domain",
                    self.domain.as_str(),
                    "must be a DNS name: lower-case letters, digits, '-' and '.'",
                ));
            }
            if !self.nodes.iter().any(|n| n.role == NodeRole::Controller) {
                return Err(RenderError::NoController);
            }
        }
        if self.ssh_public_keys.is_empty() {
            return Err(RenderError::NoSshKey);
        }
        for key in &self.ssh_public_keys {
            validate_ssh_key(key)?;
        }
        for arg in &self.kernel_console {
            validate_kernel_arg(arg)?;
        }
        validate_version(&self.racker_version)?;
        for (what, dir) in [
            ("asset directory", &self.asset_dir),
            ("matchbox client directory", &self.matchbox_client_dir),
        ] {
            if dir.is_empty() || dir.chars().any(char::is_control) {
                return Err(RenderError::invalid(
                    what,
                    dir.as_str(),
                    "must be a non-empty path without control characters",
                ));
            }
        }
        if let Some(b) = &self.backup {
            validate_backup(b, None)?;
        }
        if !(8..=30).contains(&self.prefix_len) {
            return Err(RenderError::invalid(
                "internal prefix length",
                self.prefix_len.to_string(),
                "must be between 8 and 30",
            ));
        }
        let mut names = BTreeSet::new();
        let mut ips = BTreeSet::new();
        let mut macs = BTreeSet::new();
        for n in &self.nodes {
            if !is_dns_name(&n.name, lokomotive) {
                return Err(RenderError::invalid(
                    format!("host name of {}", n.mac),
                    n.name.as_str(),
                    "must be a DNS name",
                ));
            }
            for a in &n.aliases {
                if !is_dns_name(a, true) {
                    return Err(RenderError::invalid(
                        format!("alias of {}", n.mac),
                        a.as_str(),
                        "must be a DNS name",
                    ));
                }
            }
            for (k, v) in &n.labels {
                if !is_label_key(k) {
                    return Err(RenderError::invalid(
                        format!("label key of {}", n.mac),
                        k.as_str(),
                        "not a Kubernetes label key",
                    ));
                }
                if !is_label_value(v) {
                    return Err(RenderError::invalid(
                        format!("label {k} of {} (its node type)", n.mac),
                        v.as_str(),
                        "Kubernetes label values are at most 63 letters, digits, '-', '_' or '.', starting and ending alphanumeric",
                    ));
                }
            }
            if let Some(p) = &n.public
                && !(1..=32).contains(&p.prefix_len)
            {
                return Err(RenderError::invalid(
                    format!("public prefix length of {}", n.mac),
                    p.prefix_len.to_string(),
                    "must be between 1 and 32",
                ));
            }
            if !names.insert(n.name.as_str()) {
                return Err(RenderError::Duplicate {
                    what: "host name",
                    value: n.name.clone(),
                });
            }
            if !ips.insert(n.ip) {
                return Err(RenderError::Duplicate {
                    what: "internal address",
                    value: n.ip.to_string(),
                });
            }
            if !macs.insert(n.mac) {
                return Err(RenderError::Duplicate {
                    what: "MAC",
                    value: n.mac.to_string(),
                });
            }
        }
        Ok(())
    }

    /// The netboot server's base URL, e.g. `http://172.24.213.1:8080`.
    pub fn netboot_url(&self) -> String {
        format!("http://{}:{}", self.management_ip, self.netboot_port)
    }

    /// `&token=<hex>` for `mac`'s install reports, or nothing.
    pub fn report_token_query(&self, mac: MacAddr) -> String {
        self.report_tokens
            .get(&mac)
            // Hex only: it goes into shell words and URLs unescaped.
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(|t| format!("&token={t}"))
            .unwrap_or_default()
    }

    /// The API server name `<cluster>.<domain>` (Lokomotive).
    pub fn api_name(&self) -> String {
        format!("{}.{}", self.cluster_name, self.domain)
    }

    /// The controllers, in order.
    pub fn controllers(&self) -> impl Iterator<Item = &NodeSpec> {
        self.nodes.iter().filter(|n| n.role == NodeRole::Controller)
    }

    /// The node with primary (or BMC, or secondary) MAC `mac`.
    pub fn find(&self, mac: MacAddr) -> Option<&NodeSpec> {
        self.nodes
            .iter()
            .find(|n| n.mac == mac || n.bmc_mac == mac || n.secondary_mac == Some(mac))
    }

    /// The same cluster without the node holding `mac`: names and
    /// addresses of every other node stay as they are.
    pub fn without(&self, mac: MacAddr) -> Result<Self, RenderError> {
        let node = self.find(mac).ok_or(RenderError::NotInCluster { mac })?;
        if self.nodes.len() == 1 {
            return Err(RenderError::CannotExclude {
                mac,
                reason: "it is the last node of the cluster",
            });
        }
        if node.role == NodeRole::Controller && self.controllers().count() == 1 {
            return Err(RenderError::CannotExclude {
                mac,
                reason: "it is the only controller",
            });
        }
        let primary = node.mac;
        let mut out = self.clone();
        out.nodes.retain(|n| n.mac != primary);
        out.excluded_after_render.push(primary);
        Ok(out)
    }

    /// Parse a manifest (and validate it).
    pub fn from_json(text: &str) -> Result<Self, String> {
        let spec: Self = serde_json::from_str(text).map_err(|e| e.to_string())?;
        spec.validate().map_err(|e| e.to_string())?;
        Ok(spec)
    }
}

/// A Kubernetes label key: optional DNS-name prefix and `/`, then a name
/// like a label value (non-empty).
fn is_label_key(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    prefix.is_none_or(|p| is_dns_name(p, true)) && !name.is_empty() && is_label_value(name)
}
