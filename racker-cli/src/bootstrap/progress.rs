//! Live progress: a counter per stage with ✓ / × lines, readable on a plain
//! terminal and in a log (no cursor tricks needed to follow it), plus an
//! `indicatif` bar when stdout is a terminal. Every line also goes to the
//! attempt log.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context as _;

pub(crate) struct Progress {
    /// The current attempt's log file and its path.
    log: Mutex<(PathBuf, std::fs::File)>,
    bar: Mutex<Option<indicatif::ProgressBar>>,
    tty: bool,
}

impl Progress {
    pub(crate) fn new(log_path: &Path) -> anyhow::Result<Self> {
        let log = open_log(log_path)?;
        Ok(Self {
            log: Mutex::new((log_path.to_owned(), log)),
            bar: Mutex::new(None),
            tty: std::io::stdout().is_terminal(),
        })
    }

    /// A line for the log only.
    pub(crate) fn log(&self, line: &str) {
        if let Ok(mut f) = self.log.lock() {
            let _ = writeln!(f.1, "{} {line}", timestamp());
        }
    }

    /// The current attempt's log file.
    pub(crate) fn log_path(&self) -> PathBuf {
        self.log.lock().map(|l| l.0.clone()).unwrap_or_default()
    }

    /// Start attempt `n` (a retry) in its own log file next to the first
    /// one: `<first>-attempt-<n>.log`.
    pub(crate) fn next_attempt(&self, n: u32) -> anyhow::Result<PathBuf> {
        let first = self.log_path();
        let stem = first
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stem = stem
            .split("-attempt-")
            .next()
            .unwrap_or_default()
            .to_owned();
        let path = first.with_file_name(format!("{stem}-attempt-{n}.log"));
        let file = open_log(&path)?;
        self.log(&format!("attempt {n} continues in {}", path.display()));
        if let Ok(mut l) = self.log.lock() {
            *l = (path.clone(), file);
        }
        self.log(&format!("attempt {n} (after {})", first.display()));
        Ok(path)
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

fn open_log(path: &Path) -> anyhow::Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}
