//! Talking to systemd: which units are active, reload, restart.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// What the installer needs from a service manager.
pub trait ServiceManager {
    /// Whether `unit` is active right now.
    fn is_active(&mut self, unit: &str) -> Result<bool>;
    /// Re-read unit files.
    fn daemon_reload(&mut self) -> Result<()>;
    /// Restart `unit`.
    fn restart(&mut self, unit: &str) -> Result<()>;
}

/// True when the machine runs systemd (the `sd_booted()` test:
/// `<run_dir>/systemd/system` is a directory; `run_dir` is `/run`).
pub fn systemd_booted(run_dir: &Path) -> bool {
    run_dir.join("systemd/system").is_dir()
}

/// [`ServiceManager`] that runs `systemctl` with argument vectors and looks
/// only at exit codes (`is-active --quiet`: 0 means active).
#[derive(Debug, Clone)]
pub struct Systemctl {
    program: PathBuf,
}

impl Systemctl {
    /// Use `program` (a path, or a name looked up on `PATH`).
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
        }
    }

    /// The `--systemctl` setting: `none` (no service manager), `auto`
    /// (`systemctl` when systemd runs, see [`systemd_booted`]) or the
    /// program to use.
    pub fn from_setting(setting: &str, run_dir: &Path) -> Option<Self> {
        match setting {
            "none" => None,
            "auto" => systemd_booted(run_dir).then(|| Self::new("systemctl")),
            program => Some(Self::new(program)),
        }
    }

    /// The program run.
    pub fn program(&self) -> &Path {
        &self.program
    }

    fn run(&self, args: &[&str]) -> Result<std::process::ExitStatus> {
        Command::new(&self.program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .map_err(|e| Error::Systemctl {
                args: args.iter().map(|s| (*s).to_owned()).collect(),
                reason: format!("cannot run {}: {e}", self.program.display()),
            })
    }

    fn run_ok(&self, args: &[&str]) -> Result<()> {
        let status = self.run(args)?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::Systemctl {
                args: args.iter().map(|s| (*s).to_owned()).collect(),
                reason: status.to_string(),
            })
        }
    }
}

impl ServiceManager for Systemctl {
    fn is_active(&mut self, unit: &str) -> Result<bool> {
        Ok(self.run(&["is-active", "--quiet", "--", unit])?.success())
    }
    fn daemon_reload(&mut self) -> Result<()> {
        self.run_ok(&["daemon-reload"])
    }
    fn restart(&mut self, unit: &str) -> Result<()> {
        self.run_ok(&["restart", "--", unit])
    }
}

/// File name suffixes treated as systemd units inside a release's
/// `systemd/` folder.
pub const UNIT_SUFFIXES: &[&str] = &[
    ".service", ".socket", ".timer", ".target", ".path", ".mount",
];

/// Whether `name` looks like a unit file name.
pub fn is_unit_name(name: &str) -> bool {
    UNIT_SUFFIXES
        .iter()
        .any(|s| name.len() > s.len() && name.ends_with(s))
        && !name.starts_with('.')
        && !name.contains('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemctl_settings() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Systemctl::from_setting("none", dir.path()).is_none());
        assert!(Systemctl::from_setting("auto", dir.path()).is_none());
        std::fs::create_dir_all(dir.path().join("systemd/system")).unwrap();
        let auto = Systemctl::from_setting("auto", dir.path()).unwrap();
        assert_eq!(auto.program(), Path::new("systemctl"));
        let fake = Systemctl::from_setting("/opt/fake-systemctl", dir.path()).unwrap();
        assert_eq!(fake.program(), Path::new("/opt/fake-systemctl"));
    }
}
