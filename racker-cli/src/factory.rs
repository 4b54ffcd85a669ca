//! `racker factory`: validate, reset and prepare the rack metadata.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};

use crate::bootstrap::progress::coloured_marks;
use crate::context::PlanArgs;
use crate::globals::Globals;
use racker_bootstrap::factory::{self, CheckLine, CheckReport, StateDirReset, reset_inventory};

/// `racker factory` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum FactoryCmd {
    /// Validate nodes.csv and the BMC credentials; exit 1 on the first problem.
    #[command(after_help = "Examples:
  racker factory check
  racker --oem-dir ./oem --sys-class-net ./sys-class-net factory check")]
    Check {
        #[command(flatten)]
        plan: PlanArgs,
    },
    /// Clear the recorded installed version and/or reset nodes.csv to its
    /// header and remove the state directory. Without --racker-version or
    /// --inventory, does both.
    #[command(after_help = "Examples:
  racker factory reset --inventory --yes
  racker factory reset --racker-version")]
    Reset {
        /// Clear the recorded installed racker version.
        #[arg(long)]
        racker_version: bool,
        /// Reset nodes.csv to the header line and remove the state directory.
        #[arg(long = "inventory", alias = "nodes")]
        nodes: bool,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Installation prefix (the layout `racker install` writes).
        #[arg(long, env = "RACKER_PREFIX", default_value = "/opt/racker")]
        prefix: PathBuf,
    },
    /// Create the management SSH key pair (ed25519) if missing and print the
    /// private key.
    #[command(after_help = "Examples:
  racker factory gen-ssh-key > /tmp/racker-key")]
    GenSshKey {
        /// Private key path [default: <state-dir>/ssh/id_ed25519].
        #[arg(long)]
        key: Option<PathBuf>,
    },
}

pub(crate) fn run(globals: &Globals, cmd: FactoryCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        FactoryCmd::Check { plan } => check(globals, &plan),
        FactoryCmd::Reset {
            racker_version,
            nodes,
            yes,
            prefix,
        } => {
            let (version, nodes) = if racker_version || nodes {
                (racker_version, nodes)
            } else {
                (true, true)
            };
            reset(globals, version, nodes, yes, &prefix)
        }
        FactoryCmd::GenSshKey { key } => gen_ssh_key(globals, key),
    }
}

/// `racker factory check`: racker-bootstrap's check, its findings printed
/// as they come (text) or its report at the end (`-o json`).
fn check(globals: &Globals, plan: &PlanArgs) -> anyhow::Result<ExitCode> {
    let text = !globals.output.is_json();
    let mut doc = CheckReport::new(&globals.nodes_csv());
    let result = factory::check(
        &globals.oem_dir,
        &globals.nodes_csv(),
        &globals.sys_class_net,
        &plan.plan_options(),
        &mut doc,
        &mut |line| match line {
            CheckLine::Warning(w) => crate::output::warn(w),
            CheckLine::Line(l) if text => crate::output::line(coloured_marks(&l)),
            _ => {}
        },
    )
    .map_err(anyhow::Error::from);
    if !text {
        if let Err(e) = &result {
            doc.fail(crate::error_chain(e));
        }
        crate::output::print_json(globals.output, "factory-check", &doc)?;
    }
    result.map(|()| ExitCode::SUCCESS)
}

fn confirm(question: &str, yes: bool) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "{question} — refusing without confirmation; pass --yes to proceed non-interactively"
        );
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES") {
        Ok(())
    } else {
        bail!("cancelled")
    }
}

fn reset(
    globals: &Globals,
    version: bool,
    nodes: bool,
    yes: bool,
    prefix: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    // The installer's layout keeps the version inside each release
    // (`current/RACKER_VERSION`); the reset is a marker beside it that the
    // next `racker update` reads (docs/installer.md).
    let layout = racker_installer::Layout::new(prefix, "/nonexistent", "/nonexistent");
    let mut what = Vec::new();
    if version {
        what.push(format!(
            "forget the installed racker version under {} (the next `racker update` installs the newest release)",
            prefix.display()
        ));
    }
    if nodes {
        what.push(format!(
            "reset {} to its header and remove {}",
            globals.nodes_csv().display(),
            globals.state_dir.display()
        ));
    }
    confirm(&format!("This will {}.", what.join(" and ")), yes)?;
    if version {
        layout
            .mark_factory_reset()
            .with_context(|| format!("recording the factory reset under {}", prefix.display()))?;
        crate::output::line(crate::output::ok_mark(&format!(
            "installed version forgotten ({}): the next `racker update` installs the newest release",
            layout.factory_reset_marker().display()
        )));
    }
    if nodes {
        let state = reset_inventory(&globals.nodes_csv(), &globals.state_dir)?;
        crate::output::line(crate::output::ok_mark(&format!(
            "{} reset to its header",
            globals.nodes_csv().display()
        )));
        crate::output::line(crate::output::ok_mark(&match state {
            StateDirReset::AlreadyAbsent => {
                format!("{} was already absent", globals.state_dir.display())
            }
            _ => format!("removed {}", globals.state_dir.display()),
        }));
    }
    Ok(ExitCode::SUCCESS)
}

fn gen_ssh_key(globals: &Globals, key: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    use ssh_key::LineEnding;
    let path = key.unwrap_or_else(|| globals.state_dir.join("ssh").join("id_ed25519"));
    let private = ensure_ssh_key(&path)?;
    let text = private
        .to_openssh(LineEnding::LF)
        .context("encoding the key")?;
    print!("{}", text.as_str());
    Ok(ExitCode::SUCCESS)
}

/// Load the management key pair at `path` (+ `.pub`), creating an ed25519
/// pair when missing (racker-bootstrap's), and say when it was made.
pub(crate) fn ensure_ssh_key(path: &std::path::Path) -> anyhow::Result<ssh_key::PrivateKey> {
    let pair = racker_bootstrap::ssh::ensure_key_pair(path)?;
    if pair.created {
        crate::output::progress(format_args!(
            "Created the management SSH key {}",
            path.display()
        ));
    }
    Ok(pair.private)
}
