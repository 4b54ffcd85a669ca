//! Provision a whole server rack from one of its servers, as a library:
//! the orchestration behind `racker bootstrap`, `racker demo` and
//! `racker status` (docs/bootstrap.md).
//!
//! A bootstrap renders the cluster configuration, starts DHCP/HTTP(/TFTP)
//! netboot services, checks every BMC over IPMI, PXE-installs Flatcar on
//! every node through its BMC and waits for the installers' and the
//! installed OS's reports — or, for Lokomotive, drives `lokoctl` and
//! follows the Kubernetes joins. Every node moves through a persisted state
//! machine ([`BootstrapState`], `<state-dir>/bootstrap.json`), so a rerun
//! after a crash resumes where the last one stopped.
//!
//! The crate never prints and never asks: progress arrives as typed
//! [`Event`]s through an [`EventSink`] (every line also goes to the attempt
//! log in `<cluster-dir>/logs`), and what to do with failed nodes (retry,
//! exclude, cancel) is asked through a [`FailurePolicy`]. The `racker`
//! binary turns the events into progress bars and implements the policy
//! with an interactive prompt; a test collects the events
//! ([`CollectEvents`]) and answers with a fixed [`Decision`].
//!
//! # Embedding a bootstrap
//!
//! Load the rack (nodes.csv, the management node among the local
//! interfaces, the address plan), choose what to install, and run:
//!
//! ```no_run
//! use racker_bootstrap::{Config, Decision, Event, Rack, bootstrap};
//! use racker_inventory::{PlanOptions, Provision, SelectionOptions};
//! use racker_lokomotive::RenderOptions;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let rack = Rack::load(
//!     "/usr/share/oem/nodes.csv".as_ref(),
//!     "/sys/class/net".as_ref(),
//!     &PlanOptions::default(),
//! )?;
//!
//! let selection = SelectionOptions {
//!     provision: Provision::Flatcar,
//!     ..SelectionOptions::default()
//! };
//! let credentials = racker_ipmi::Credentials::new("ADMIN", "secret");
//! let render = RenderOptions::new(vec!["ssh-ed25519 AAAA... admin@example".into()]);
//! let mut config = Config::new("/opt/racker-state", rack, selection, credentials, render);
//! config.retries = 1;
//!
//! // Progress: print the operator lines, keep the rest.
//! let events = |event: &Event| {
//!     if let Event::Message(line) = event {
//!         println!("{line}");
//!     }
//! };
//! // Failed nodes are left out and the others go on.
//! let report = bootstrap(&config, &events, &Decision::Exclude).await?;
//! println!("provisioned: {}", report.succeeded());
//! for (mac, node) in &report.state.nodes {
//!     println!("{mac} {}", node.state.label());
//! }
//! # Ok(())
//! # }
//! ```
//!
//! [`NetbootMode::External`] uses a netboot service that already runs;
//! [`NetbootEndpoints::plain`] serves DHCP and HTTP on plain sockets, as
//! the simulated rack needs. [`collect_status`] gathers what `racker
//! status` shows ([`collect_rack_status`] and [`watch_rack_status`] from a
//! rack's files, once or every interval), and [`StatusReport::table_rows`]
//! its table.
//!
//! # Documents and tables
//!
//! What the CLI prints with `-o json` are this crate's `Serialize` types,
//! so an embedder gets the same documents: [`plan::PlanView`] (`racker
//! plan`), [`StatusReport`] (`racker status`), [`BootstrapView`] and
//! [`ReprovisionView`] (the end of a bootstrap or reprovision),
//! [`factory::CheckReport`] (`racker factory check`). Their text forms are
//! plain rows and lines ([`summary_rows`], [`plan::PlanView::rows`],
//! [`StatusReport::notes`], ...), with `✓ `/`× ` marking results; laying
//! out the columns and colouring them is the caller's.
//!
//! # The other commands' work
//!
//! The `racker` binary only parses, prompts and prints; what its other
//! commands do is here too:
//!
//! - [`render_dir`]: public addresses, SSH keys and writing a rendered
//!   cluster directory over an earlier one (`racker render`);
//! - [`netboot_setup`]: the DHCP configuration, served Ignition, preflight
//!   and matchbox layout of `racker netboot serve` / `render`;
//! - [`serve`]: the service builder, notices and handover of `racker
//!   netboot serve` and `racker bootstrap`;
//! - [`handover`]: the rack network handed to `racker-netboot.service`
//!   after a bootstrap;
//! - [`RenderChoices`], [`RenderSummary`]: the rendering choices of
//!   `racker render` and `racker bootstrap`, and what a render wrote;
//! - [`management_node`]: the management node's own install;
//! - [`ssh`]: the management SSH key pair and public key files;
//! - [`factory`]: `racker factory check` and `reset --inventory`;
//! - [`plan`]: the address plan as a document and table (`racker plan`);
//! - [`resolve_nodes`], [`recorded_flatcar_bootstrap`]: the nodes `racker
//!   reprovision NODE...` names;
//! - `demo` (feature `demo`): the simulated demo rack of `racker demo`,
//!   its bootstrap (`DemoRack::bootstrap`), status and sentences.
#![deny(missing_docs)]
#![deny(clippy::unwrap_used)]

mod bmc;
mod choices;
mod config;
#[cfg(feature = "demo")]
pub mod demo;
#[cfg(feature = "demo")]
mod demo_text;
mod error;
mod events;
pub mod factory;
pub mod fsutil;
pub mod handover;
mod kube;
mod load;
pub mod lokoenv;
mod lokomotive;
pub mod management_node;
pub mod netboot_setup;
pub mod network;
pub mod plan;
mod rack_status;
pub mod render_dir;
pub mod rendered;
mod reprovision_nodes;
mod run;
pub mod serve;
pub mod service;
pub mod ssh;
mod state;
mod status;
mod status_text;
mod status_watch;
mod summary;
mod summary_view;
#[cfg(test)]
mod testutil;

pub use bmc::{BmcResolver, BmcSource, BmcTarget, ResolvedBmc, TargetQuery, select_targets};
pub use choices::{
    DEFAULT_BACKUP_NAME, DEFAULT_BACKUP_REGION, RenderChoices, RenderSummary, RenderedFile,
};
pub use config::{
    Config, ConfigError, DEFAULT_CONCURRENCY, DEFAULT_RETRIES, MAX_IPMI_TIMEOUT, MAX_RETRIES,
    NetbootMode, Rack,
};
pub use error::{Error, Result};
pub use events::{
    CollectEvents, Decision, Event, EventSink, FailedNodes, FailurePolicy, Phase, StepResult,
};
pub use lokoenv::LokomotiveEnv;
pub use lokomotive::find_lokoctl;
pub use network::NetbootEndpoints;
pub use rack_status::{PowerReading, RackStatusOptions, RackStatusWriter, compose_rack_status};
pub use reprovision_nodes::{recorded_flatcar_bootstrap, resolve_nodes};
pub use run::{Outcome, Report, bootstrap, reprovision};
pub use state::{
    BootstrapState, NodeEvent, NodeRecord, NodeState, Stage, StateFile, TransitionError, now_unix,
};
pub use status::{NodeStatus, StatusOptions, StatusReport, UpSource, collect_status};
pub use status_watch::{RackFiles, collect_rack_status, watch_rack_status};
pub use summary::{Summary, SummaryNode};
pub use summary_view::{BootstrapView, ReprovisionView, summary_header, summary_rows};
