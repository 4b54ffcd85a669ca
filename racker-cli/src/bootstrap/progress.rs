//! Live progress on stderr: a counter per stage with ✓ / × lines, readable
//! on a plain terminal and in a log (no cursor tricks needed to follow it),
//! plus an `indicatif` bar when stderr is a terminal. The events come from
//! racker-bootstrap, which also writes them to the attempt log. The final
//! summary is data and goes to stdout in the `-o` format ([`print_summary`]).

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::Duration;

use racker_bootstrap::{Event, EventSink, Report};

use crate::output::{Format, Tone, fail_mark, ok_mark, paint};

pub(crate) struct Progress {
    bar: Mutex<Option<indicatif::ProgressBar>>,
    tty: bool,
}

impl Progress {
    pub(crate) fn new() -> Self {
        Self {
            bar: Mutex::new(None),
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn bar(&self) -> Option<indicatif::ProgressBar> {
        self.bar.lock().ok().and_then(|b| b.clone())
    }

    /// A line for the operator, on stderr (above the bar when there is one);
    /// a leading ✓ or × (racker-bootstrap's success and failure lines) is
    /// coloured.
    fn say(&self, line: &str) {
        let line = &coloured_marks(line);
        match self.bar() {
            Some(bar) => bar.println(crate::output::for_stderr(line)),
            None => anstream::eprintln!("{line}"),
        }
    }
}

/// `line` with a leading `✓ ` in green or `× ` in red (after indentation).
pub(crate) fn coloured_marks(line: &str) -> String {
    let text = line.trim_start();
    let indent = &line[..line.len() - text.len()];
    if let Some(rest) = text.strip_prefix("✓ ") {
        format!("{indent}{}", ok_mark(rest))
    } else if let Some(rest) = text.strip_prefix("× ") {
        format!("{indent}{}", fail_mark(rest))
    } else {
        line.to_owned()
    }
}

impl EventSink for Progress {
    fn event(&self, event: &Event) {
        match event {
            Event::Message(line) => self.say(line),
            Event::Warning(line) => match self.bar() {
                Some(bar) => bar.println(crate::output::for_stderr(&format!(
                    "{} {line}",
                    paint(Tone::Warn, "warning:")
                ))),
                None => crate::output::warn(line),
            },
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
                        bar.println(crate::output::for_stderr(&line));
                    }
                    None => anstream::eprintln!("{phase} ({done}/{total}) {line}"),
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
            // The netboot services' and IPMI events go into the
            // attempt log too, from the attempt's start.
            Event::AttemptStarted { log, .. } => crate::logging::copy_events_to(Some(log)),
            // Details and node changes are in the attempt log.
            _ => {}
        }
    }
}

impl Drop for Progress {
    /// The bootstrap is over: its attempt log gets no more events.
    fn drop(&mut self) {
        crate::logging::copy_events_to(None);
    }
}

/// The per-node table of a bootstrap's (or reprovision's) final summary
/// (racker-bootstrap's rows, states in colour).
pub(crate) fn print_node_table(nodes: &[racker_bootstrap::SummaryNode], wide: bool) {
    let header = racker_bootstrap::summary_header(wide);
    let mut rows = racker_bootstrap::summary_rows(nodes, wide);
    crate::status::paint_states(&header, &mut rows);
    crate::table::print_rows(&header, &rows);
}

/// Print how the bootstrap ended on stdout: a table of the nodes, or the
/// `bootstrap` document.
pub(crate) fn print_summary(
    format: Format,
    report: &Report,
    elapsed: Duration,
) -> anyhow::Result<()> {
    let doc = racker_bootstrap::BootstrapView::new(report, elapsed);
    crate::output::emit(format, "bootstrap", &doc, |wide| {
        print_node_table(&doc.summary.nodes, wide);
        crate::output::line(coloured_marks(&doc.closing_line()));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_marks_are_coloured() {
        assert_eq!(coloured_marks("✓ Network: up"), ok_mark("Network: up"));
        assert_eq!(
            coloured_marks("  × 2 failed"),
            format!("  {}", fail_mark("2 failed"))
        );
        assert_eq!(coloured_marks("plain ✓ line"), "plain ✓ line");
        assert_ne!(ok_mark("x"), "✓ x");
    }
}
