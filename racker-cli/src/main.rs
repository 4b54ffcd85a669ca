//! The `racker` command line.

mod bootstrap;
mod compat;
mod completions;
mod context;
mod demo;
mod factory;
mod flags;
mod globals;
mod ipmi;
mod logging;
mod management_node;
mod netboot;
mod netboot_content;
mod output;
mod plan;
mod release;
mod render;
mod reprovision;
mod sim;
mod status;
mod table;

use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _, Subcommand};

use crate::globals::Globals;

/// `0.1.0 (commit abc123, built 2026-12-02, x86_64-unknown-linux-gnu)`.
pub(crate) const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("RACKER_BUILD_COMMIT"),
    ", built ",
    env!("RACKER_BUILD_DATE"),
    ", ",
    env!("RACKER_BUILD_TARGET"),
    ")"
);

/// Racker provisions a whole server rack from one of its own servers.
#[derive(Debug, clap::Parser)]
#[command(name = "racker", version = LONG_VERSION, about, long_about = None)]
pub(crate) struct Cli {
    #[command(flatten)]
    globals: Globals,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Release management: version, install, update, upgrade, get, rollback.
    #[command(flatten)]
    Release(release::ReleaseCommand),
    /// Validate or reset the rack metadata, create the management SSH key.
    #[command(subcommand)]
    Factory(factory::FactoryCmd),
    /// Show the address plan and roles without touching the network.
    Plan(plan::PlanCmd),
    /// DHCP/PXE server for the rack-internal network; dnsmasq.conf rendering.
    Netboot(netboot::NetbootCmd),
    /// Talk IPMI to one BMC or every BMC: console, power, boot device, users, raw.
    Ipmi(ipmi::IpmiCmd),
    /// Provision the whole rack: network, BMC check, PXE install of every node.
    Bootstrap(Box<bootstrap::BootstrapCmd>),
    /// Install nodes of a provisioned rack again (PXE), as bootstrap does.
    Reprovision(Box<reprovision::ReprovisionCmd>),
    /// What was provisioned and the state of every node.
    Status(status::StatusCmd),
    /// Try racker without hardware: a simulated rack provisioned end to end.
    Demo(demo::DemoCmd),
    /// Simulated rack: IPMI BMCs on loopback that ipmitool and racker can drive.
    #[command(subcommand)]
    Sim(sim::SimCmd),
    /// Render a cluster directory (`render`) or remove a node from one (`exclude`).
    #[command(flatten)]
    Render(render::RenderCommand),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions(completions::CompletionsCmd),
    /// Write man pages for racker and every subcommand into a directory.
    Manpages(completions::ManpagesCmd),
    // Each subcommand lives in its own module; add one variant per line below.
}

/// The command line with its environment twins (`RACKER_<FLAG>`), as
/// parsed and as completions and man pages describe it.
pub(crate) fn command() -> clap::Command {
    flags::with_env_twins(Cli::command())
}

/// Die quietly on a closed pipe (`racker plan | head`) like other Unix
/// tools, instead of panicking in `println!`.
#[allow(unsafe_code)]
fn restore_default_sigpipe() {
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL
    // is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The error and its causes, `: `-separated, leaving out a cause whose text
/// the message already carries (many library errors print their source).
pub(crate) fn error_chain(err: &anyhow::Error) -> String {
    let mut msg = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
    }
    msg
}

/// glibc gives every thread that allocates its own memory pool (up to 8 per
/// core); with racker's many tokio workers and writer threads that pushed a
/// 1,000-node bootstrap from 120 MB to 200 MB peak RSS. Two pools are
/// plenty for racker's allocation pattern. `RACKER_MALLOC_ARENAS` (1-64)
/// overrides the number.
#[allow(unsafe_code)]
fn limit_malloc_arenas() {
    let arenas = std::env::var("RACKER_MALLOC_ARENAS")
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|n| (1..=64).contains(n))
        .unwrap_or(2);
    // SAFETY: mallopt only sets an allocator tunable; it is called before
    // any thread is started.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

fn main() -> ExitCode {
    restore_default_sigpipe();
    limit_malloc_arenas();
    // The original racker's flag spellings (`-provision`, `-onfailure`,
    // ...) are hidden aliases (docs/migrating.md).
    let translated = match compat::translate(std::env::args_os(), &std::env::temp_dir()) {
        Ok(t) => t,
        Err(e) => {
            output::error(e.to_string());
            return ExitCode::from(2);
        }
    };
    for note in &translated.notes {
        output::progress(format_args!("note: {note}"));
    }
    let ini_files = translated.ini_files;
    let matches = command().get_matches_from(translated.args);
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    cli.globals.color.apply();
    // Services log what they do; other commands (bootstrap and the demo
    // show their progress instead) only what goes wrong.
    let service = matches!(
        matches.subcommand(),
        Some(("netboot" | "sim", m)) if matches!(m.subcommand_name(), Some("serve" | "up"))
    );
    logging::init(&cli.globals, service);
    let result: anyhow::Result<ExitCode> = match cli.command {
        Command::Release(cmd) => release::run(&cli.globals, cmd),
        Command::Factory(cmd) => factory::run(&cli.globals, cmd),
        Command::Plan(cmd) => plan::run(&cli.globals, cmd),
        Command::Render(cmd) => render::run(&cli.globals, cmd),
        Command::Sim(cmd) => sim::run(&cli.globals, cmd),
        Command::Bootstrap(cmd) => {
            let given = matches
                .subcommand_matches("bootstrap")
                .map(|m| {
                    m.ids()
                        .filter(|id| {
                            matches!(
                                m.value_source(id.as_str()),
                                Some(
                                    clap::parser::ValueSource::CommandLine
                                        | clap::parser::ValueSource::EnvVariable
                                )
                            )
                        })
                        .map(|id| id.as_str().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            bootstrap::run(&cli.globals, *cmd, &given)
        }
        Command::Reprovision(cmd) => reprovision::run(&cli.globals, *cmd),
        Command::Status(cmd) => status::run(&cli.globals, cmd),
        Command::Demo(cmd) => demo::run(&cli.globals, &demo::given_globals(&matches), cmd),
        Command::Ipmi(cmd) => ipmi::run(&cli.globals, cmd),
        Command::Netboot(cmd) => netboot::run(&cli.globals, cmd),
        Command::Completions(cmd) => completions::completions(cmd),
        Command::Manpages(cmd) => completions::manpages(cmd),
    };
    for file in &ini_files {
        let _ = std::fs::remove_file(file);
    }
    match result {
        Ok(code) => code,
        Err(err) => {
            output::error(error_chain(&err));
            ExitCode::FAILURE
        }
    }
}
