//! Live progress: a counter per stage with ✓ / × lines, readable on a plain
//! terminal and in a log (no cursor tricks needed to follow it), plus an
//! `indicatif` bar when stdout is a terminal. Every line also goes to the
//! attempt log.

use std::io::{IsTerminal as _, Write as _};
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context as _;

pub(crate) struct Progress {
    log: Mutex<std::fs::File>,
    bar: Mutex<Option<indicatif::ProgressBar>>,
    tty: bool,
}

impl Progress {
    pub(crate) fn new(log_path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = log_path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        Ok(Self {
            log: Mutex::new(log),
            bar: Mutex::new(None),
            tty: std::io::stdout().is_terminal(),
        })
    }

    /// A line for the log only.
    pub(crate) fn log(&self, line: &str) {
        if let Ok(mut f) = self.log.lock() {
            let _ = writeln!(f, "{} {line}", timestamp());
        }
    }

    /// A line for the operator (and the log).
    pub(crate) fn say(&self, line: &str) {
        self.log(line);
        match self.bar.lock().ok().and_then(|b| b.clone()) {
            Some(bar) => bar.println(line),
            None => println!("{line}"),
        }
    }

    /// Start a counted stage.
    pub(crate) fn stage(&self, name: &str, total: usize) {
        self.say(&format!("{name} (0/{total})"));
        if self.tty
            && let Ok(mut b) = self.bar.lock()
        {
            let bar = indicatif::ProgressBar::new(total as u64);
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{msg} ({pos}/{len}) {wide_bar} {elapsed}")
            {
                bar.set_style(style);
            }
            bar.set_message(name.to_owned());
            *b = Some(bar);
        }
    }

    /// One node of the current stage done (✓) or failed (×).
    pub(crate) fn step(&self, name: &str, done: usize, total: usize, ok: bool, what: &str) {
        let mark = if ok { "✓" } else { "×" };
        let line = format!("  {mark} {what}");
        self.log(&format!("{name} ({done}/{total}) {line}"));
        match self.bar.lock().ok().and_then(|b| b.clone()) {
            Some(bar) => {
                bar.set_position(done as u64);
                bar.println(line);
            }
            None => println!("{name} ({done}/{total}) {line}"),
        }
    }

    /// End the current stage.
    pub(crate) fn finish(&self, name: &str, done: usize, total: usize, ok: bool) {
        if let Ok(mut b) = self.bar.lock()
            && let Some(bar) = b.take()
        {
            bar.finish_and_clear();
        }
        let mark = if ok { "✓" } else { "×" };
        self.say(&format!("{mark} {name} ({done}/{total})"));
    }
}

fn timestamp() -> String {
    let secs = super::state::now_unix();
    format!("[{secs}]")
}
