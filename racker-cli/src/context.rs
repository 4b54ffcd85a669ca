//! Loading the rack (inventory, credentials, management node, address plan,
//! selection) from the global options. Shared by every subcommand.
use racker_inventory::{
    Credentials, PlanOptions, Provision, Selection, SelectionOptions, StorageCount,
    StorageProvider, parse_mac_list, select,
};

use crate::globals::Globals;

/// Address-plan options, accepted by every command that needs the plan.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct PlanArgs {
    /// First three octets of the rack-internal network.
    #[arg(long, global = true, env = "RACKER_SUBNET_PREFIX", default_value = racker_inventory::DEFAULT_SUBNET_PREFIX)]
    pub(crate) subnet_prefix: String,
    /// Prefix length of the rack-internal network (16-24); above 63 nodes use
    /// a larger network such as /22.
    #[arg(long, global = true, env = "RACKER_PREFIX_LENGTH", default_value_t = racker_inventory::DEFAULT_PREFIX_LEN)]
    pub(crate) prefix_length: u8,
    /// MACs (primary, BMC or secondary) of nodes to leave out, separated by
    /// spaces or commas.
    #[arg(long, global = true, env = "RACKER_EXCLUDE", default_value = "")]
    pub(crate) exclude: String,
}

impl PlanArgs {
    pub(crate) fn plan_options(&self) -> PlanOptions {
        PlanOptions {
            subnet_prefix: self.subnet_prefix.clone(),
            prefix_len: self.prefix_length,
        }
    }
}

/// What to install and how to split the nodes into roles.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SelectionArgs {
    /// What to provision.
    #[arg(long, value_enum, default_value = "flatcar")]
    pub(crate) provision: ProvisionArg,
    /// Number of Lokomotive controllers (1 or 3; default 3 when at least
    /// three nodes of the controller type exist, else 1).
    #[arg(long)]
    pub(crate) num_controllers: Option<usize>,
    /// Node type of the controllers ("any" matches all).
    #[arg(long, default_value = racker_inventory::ANY_NODE_TYPE)]
    pub(crate) controller_type: String,
    /// Lokomotive storage provider.
    #[arg(long, value_enum, default_value = "none")]
    pub(crate) storage_provider: StorageArg,
    /// Node type of the storage nodes ("any" matches all).
    #[arg(long, default_value = racker_inventory::ANY_NODE_TYPE)]
    pub(crate) storage_node_type: String,
    /// Number of storage nodes, or "all".
    #[arg(long, default_value = "all")]
    pub(crate) number_of_storage_nodes: String,
    /// Lokomotive cluster name.
    #[arg(long, default_value = "lokomotive")]
    pub(crate) cluster_name: String,
    /// Kubernetes domain.
    #[arg(long, default_value = "k8s.localdomain")]
    pub(crate) k8s_domain: String,
}

/// `--provision` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ProvisionArg {
    /// Plain Flatcar Container Linux on every node.
    Flatcar,
    /// A Lokomotive Kubernetes cluster.
    Lokomotive,
}

/// `--storage-provider` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum StorageArg {
    /// No storage.
    None,
    /// Rook (Ceph).
    Rook,
    /// OpenEBS.
    Openebs,
}

impl From<ProvisionArg> for Provision {
    fn from(p: ProvisionArg) -> Self {
        match p {
            ProvisionArg::Flatcar => Self::Flatcar,
            ProvisionArg::Lokomotive => Self::Lokomotive,
        }
    }
}

impl From<StorageArg> for StorageProvider {
    fn from(s: StorageArg) -> Self {
        match s {
            StorageArg::None => Self::None,
            StorageArg::Rook => Self::Rook,
            StorageArg::Openebs => Self::Openebs,
        }
    }
}

impl SelectionArgs {
    pub(crate) fn selection_options(&self, plan: &PlanArgs) -> anyhow::Result<SelectionOptions> {
        Ok(SelectionOptions {
            provision: self.provision.into(),
            exclude: parse_mac_list(&plan.exclude)?,
            num_controllers: self.num_controllers,
            controller_type: self.controller_type.clone(),
            storage_provider: self.storage_provider.into(),
            storage_node_type: self.storage_node_type.clone(),
            storage_count: self.number_of_storage_nodes.parse::<StorageCount>()?,
            cluster_name: self.cluster_name.clone(),
            domain: self.k8s_domain.clone(),
        })
    }
}

/// The rack as racker sees it.
pub(crate) use racker_bootstrap::Rack;

/// Load nodes.csv, find the management node among the local interfaces and
/// compute the address plan.
pub(crate) fn load_rack(globals: &Globals, plan_args: &PlanArgs) -> anyhow::Result<Rack> {
    Ok(Rack::load(
        &globals.nodes_csv(),
        &globals.sys_class_net,
        &plan_args.plan_options(),
    )?)
}

/// [`load_rack`] plus the cluster selection.
pub(crate) fn load_selection(
    globals: &Globals,
    plan_args: &PlanArgs,
    selection_args: &SelectionArgs,
) -> anyhow::Result<(Rack, Selection)> {
    let rack = load_rack(globals, plan_args)?;
    let selection = select(&rack.plan, &selection_args.selection_options(plan_args)?)?;
    Ok((rack, selection))
}

/// Load the BMC credentials, printing their warnings on stderr.
pub(crate) fn load_credentials(globals: &Globals) -> anyhow::Result<Credentials> {
    let credentials = Credentials::load(&globals.oem_dir)?;
    for w in &credentials.warnings {
        crate::output::warn(w);
    }
    Ok(credentials)
}

/// Finds BMC addresses (racker-bootstrap's resolver): the simulator's table
/// when a simulated rack runs with this state directory
/// ([`running_simulator_bmcs`]), else the BMC's active DHCP lease, else the
/// address plan. Loaded once, then queried per node.
#[derive(Debug)]
pub(crate) struct BmcResolver(racker_bootstrap::BmcResolver);

impl BmcResolver {
    /// Read the lease table (a missing file is empty; a corrupt lease table
    /// is an error) and, for a running simulated rack, its BMC table.
    pub(crate) fn load(globals: &Globals) -> anyhow::Result<Self> {
        Ok(Self(
            racker_bootstrap::BmcResolver::load(&globals.state_dir)?
                .with_overrides(running_simulator_bmcs(&globals.state_dir)),
        ))
    }

    /// The library's resolver.
    pub(crate) fn inner(&self) -> &racker_bootstrap::BmcResolver {
        &self.0
    }
}

pub(crate) use racker_sim::running_simulator_bmcs;
