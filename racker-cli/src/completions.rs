//! `racker completions` and `racker manpages`: shell completions
//! (clap_complete) and man pages (clap_mangen) generated from the same
//! clap definition the binary parses with, so they never drift. The release
//! archive carries both (installer/racker.toml).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

/// Arguments of `racker completions`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  racker completions bash > /etc/bash_completion.d/racker
  racker completions zsh > \"${fpath[1]}/_racker\"
  racker completions fish > ~/.config/fish/completions/racker.fish
  racker completions bash --dir /usr/share/bash-completion/completions")]
pub(crate) struct CompletionsCmd {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
    /// Write the file (named as the shell expects it: `racker`, `_racker`,
    /// `racker.fish`) into this directory instead of printing it.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Arguments of `racker manpages`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  racker manpages /usr/local/share/man/man1 && man racker-bootstrap")]
pub(crate) struct ManpagesCmd {
    /// Directory to write `racker.1` and one `racker-<command>.1` per
    /// subcommand into (created when missing).
    dir: PathBuf,
}

pub(crate) fn completions(cmd: CompletionsCmd) -> anyhow::Result<ExitCode> {
    let mut command = crate::command();
    match cmd.dir {
        None => clap_complete::generate(cmd.shell, &mut command, "racker", &mut std::io::stdout()),
        Some(dir) => {
            use clap_complete::Shell;
            // The names the shells' completion directories expect.
            let name = match cmd.shell {
                Shell::Bash => "racker",
                Shell::Zsh => "_racker",
                Shell::Fish => "racker.fish",
                Shell::Elvish => "racker.elv",
                Shell::PowerShell => "_racker.ps1",
                _ => "racker.completion",
            };
            let mut script = Vec::new();
            clap_complete::generate(cmd.shell, &mut command, "racker", &mut script);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let path = dir.join(name);
            std::fs::write(&path, script).with_context(|| format!("writing {}", path.display()))?;
            crate::output::progress(crate::output::ok_mark(&format!("wrote {}", path.display())));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn manpages(cmd: ManpagesCmd) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&cmd.dir).with_context(|| format!("creating {}", cmd.dir.display()))?;
    let command = crate::command();
    let mut written = 0usize;
    write_pages(&command, "racker", &cmd.dir, &mut written)?;
    crate::output::progress(crate::output::ok_mark(&format!(
        "wrote {written} man pages into {}",
        cmd.dir.display()
    )));
    Ok(ExitCode::SUCCESS)
}

/// `racker.1`, then `racker-<sub>.1`, `racker-<sub>-<subsub>.1`, ...
fn write_pages(
    command: &clap::Command,
    name: &str,
    dir: &Path,
    written: &mut usize,
) -> anyhow::Result<()> {
    let page = command.clone().name(name.to_owned());
    let path = dir.join(format!("{name}.1"));
    let mut bytes = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut bytes)
        .with_context(|| format!("rendering {}", path.display()))?;
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    *written += 1;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        if sub.get_name() == "help" {
            continue;
        }
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}
