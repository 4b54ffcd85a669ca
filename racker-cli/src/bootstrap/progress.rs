//! Live progress: a counter per stage with ✓ / × lines, readable on a plain
//! terminal and in a log (no cursor tricks needed to follow it), plus an
//! `indicatif` bar when stdout is a terminal. The events come from
//! racker-bootstrap, which also writes every line to the attempt log.

use std::io::IsTerminal as _;
use std::sync::Mutex;

use racker_bootstrap::{Event, EventSink};

use crate::output::{fail_mark, ok_mark};

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
            None => anstream::println!("{line}"),
        }
    }
}

impl EventSink for Progress {
    fn event(&self, event: &Event) {
        match event {
            Event::Message(line) => self.say(line),
            Event::Warning(line) => crate::output::warn(line),
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
                let line = if result.is_ok() {
                    format!("  {}", ok_mark(line))
                } else {
                    format!("  {}", fail_mark(line))
                };
                match self.bar() {
                    Some(bar) => {
                        bar.set_position(*done as u64);
                        bar.println(line);
                    }
                    None => anstream::println!("{phase} ({done}/{total}) {line}"),
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
                let text = format!("{phase} ({done}/{total})");
                self.say(&if *ok {
                    ok_mark(&text)
                } else {
                    fail_mark(&text)
                });
            }
            // Details and attempt changes are in the attempt log.
            _ => {}
        }
    }
}
