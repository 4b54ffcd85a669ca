//! Live progress: a counter per stage with ✓ / × lines, readable on a plain
//! terminal and in a log (no cursor tricks needed to follow it), plus an
//! `indicatif` bar when stdout is a terminal. The events come from
//! racker-bootstrap, which also writes every line to the attempt log.

use std::io::IsTerminal as _;
use std::sync::Mutex;

use racker_bootstrap::{Event, EventSink};

pub(crate) struct Progress {
    bar: Mutex<Option<indicatif::ProgressBar>>,
    tty: bool,
}

impl Progress {
    pub(crate) fn new() -> Self {
        Self {
            bar: Mutex::new(None),
            tty: std::io::stdout().is_terminal(),
        }
    }

    fn bar(&self) -> Option<indicatif::ProgressBar> {
        self.bar.lock().ok().and_then(|b| b.clone())
    }

    /// A line for the operator.
    fn say(&self, line: &str) {
        match self.bar() {
            Some(bar) => bar.println(line),
            None => println!("{line}"),
        }
    }
}

impl EventSink for Progress {
    fn event(&self, event: &Event) {
        match event {
            Event::Message(line) => self.say(line),
            Event::Warning(line) => eprintln!("warning: {line}"),
            Event::StageStarted { phase, total } => {
                self.say(&format!("{phase} (0/{total})"));
                if self.tty
                    && let Ok(mut b) = self.bar.lock()
                {
                    let bar = indicatif::ProgressBar::new(*total as u64);
                    if let Ok(style) = indicatif::ProgressStyle::with_template(
                        "{msg} ({pos}/{len}) {wide_bar} {elapsed}",
                    ) {
                        bar.set_style(style);
                    }
                    bar.set_message(phase.name());
                    *b = Some(bar);
                }
            }
            Event::NodeStep {
                phase,
                done,
                total,
                result,
                line,
                ..
            } => {
                let mark = if result.is_ok() { "✓" } else { "×" };
                let line = format!("  {mark} {line}");
                match self.bar() {
                    Some(bar) => {
                        bar.set_position(*done as u64);
                        bar.println(line);
                    }
                    None => println!("{phase} ({done}/{total}) {line}"),
                }
            }
            Event::StageFinished {
                phase,
                done,
                total,
                ok,
            } => {
                if let Ok(mut b) = self.bar.lock()
                    && let Some(bar) = b.take()
                {
                    bar.finish_and_clear();
                }
                let mark = if *ok { "✓" } else { "×" };
                self.say(&format!("{mark} {phase} ({done}/{total})"));
            }
            // Details and attempt changes are in the attempt log.
            _ => {}
        }
    }
}
