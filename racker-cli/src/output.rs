//! The output contract (docs/output.md): every command that reports data
//! prints it on stdout through these helpers, as a table for people
//! (`-o text`, `-o wide`) or as one JSON document for programs (`-o json`,
//! `-o jsonl`) carrying `schema_version` and `kind`. Progress, warnings and
//! logs go to stderr. Colours go through `anstream`, which drops them for
//! `NO_COLOR`, non-terminals and `--color never`, and keeps them for
//! `CLICOLOR_FORCE` / `--color always`.

use std::io::Write as _;

use anstyle::{AnsiColor, Style};
use serde::Serialize;

/// Version of every JSON document's layout (docs/output.md). Bump it when a
/// key is renamed or removed or changes type; adding a key does not.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// `-o/--output`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// A table or summary for people.
    #[default]
    Text,
    /// The table with every column.
    Wide,
    /// One pretty-printed JSON document.
    Json,
    /// One JSON document per line (for `jq -c`, log shippers, `--watch`).
    Jsonl,
}

impl Format {
    /// `json` or `jsonl`.
    pub(crate) fn is_json(self) -> bool {
        matches!(self, Self::Json | Self::Jsonl)
    }

    /// `wide`.
    pub(crate) fn is_wide(self) -> bool {
        self == Self::Wide
    }
}

/// `--color`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ColorWhen {
    /// Colour on terminals unless `NO_COLOR` is set (`CLICOLOR_FORCE=1`
    /// forces it).
    #[default]
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

impl ColorWhen {
    /// Make the choice for every stream of this process.
    pub(crate) fn apply(self) {
        let choice = match self {
            Self::Auto => anstream::ColorChoice::Auto,
            Self::Always => anstream::ColorChoice::Always,
            Self::Never => anstream::ColorChoice::Never,
        };
        choice.write_global();
    }
}

/// A JSON document: `schema_version`, `kind`, then the data's own keys.
#[derive(Serialize)]
struct Document<'a, T: Serialize> {
    schema_version: u32,
    kind: &'a str,
    #[serde(flatten)]
    data: &'a T,
}

/// The document `data` (a struct or map) of `kind` as text: pretty for
/// `json`, one line for `jsonl`; ends with a newline.
pub(crate) fn to_json<T: Serialize>(
    format: Format,
    kind: &str,
    data: &T,
) -> anyhow::Result<String> {
    let doc = Document {
        schema_version: SCHEMA_VERSION,
        kind,
        data,
    };
    let mut text = if format == Format::Jsonl {
        serde_json::to_string(&doc)?
    } else {
        serde_json::to_string_pretty(&doc)?
    };
    text.push('\n');
    Ok(text)
}

/// Print `data` of `kind` as JSON on stdout (see [`to_json`]).
pub(crate) fn print_json<T: Serialize>(format: Format, kind: &str, data: &T) -> anyhow::Result<()> {
    let text = to_json(format, kind, data)?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Print `data` as JSON when the format asks for it, else call `text`
/// (which prints the human form, `wide` telling it to add every column).
pub(crate) fn emit<T: Serialize>(
    format: Format,
    kind: &str,
    data: &T,
    text: impl FnOnce(bool) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    if format.is_json() {
        print_json(format, kind, data)
    } else {
        text(format.is_wide())
    }
}

const GREEN: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Green)));
const RED: Style = Style::new()
    .fg_color(Some(anstyle::Color::Ansi(AnsiColor::Red)))
    .bold();
const YELLOW: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Yellow)));

/// How a piece of text reads: success, failure, warning or aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tone {
    /// Green.
    Good,
    /// Red.
    Bad,
    /// Yellow.
    Warn,
    /// As is.
    Plain,
}

impl Tone {
    fn style(self) -> Style {
        match self {
            Self::Good => GREEN,
            Self::Bad => RED,
            Self::Warn => YELLOW,
            Self::Plain => Style::new(),
        }
    }

    /// The tone of a node or BMC state word as racker prints it.
    pub(crate) fn of_state(word: &str) -> Tone {
        match word {
            "failed" | "unreachable" | "error" => Self::Bad,
            "excluded" | "unknown" | "expired" => Self::Warn,
            "joined" | "os-up" | "installed" | "reached" | "on" | "up" | "ok" | "active" => {
                Self::Good
            }
            _ => Self::Plain,
        }
    }
}

/// `text` wrapped in the tone's ANSI codes; print it with [`anstream`]'s
/// `println!`/`eprintln!` (re-exported below), which strips them where
/// colour is off.
pub(crate) fn paint(tone: Tone, text: &str) -> String {
    let style = tone.style();
    if style == Style::new() {
        return text.to_owned();
    }
    format!("{style}{text}{style:#}")
}

/// `✓ text` in green.
pub(crate) fn ok_mark(text: &str) -> String {
    format!("{} {text}", paint(Tone::Good, "✓"))
}

/// `× text` in red.
pub(crate) fn fail_mark(text: &str) -> String {
    format!("{} {text}", paint(Tone::Bad, "×"))
}

/// `warning: text` on stderr, `warning:` in yellow.
pub(crate) fn warn(text: impl std::fmt::Display) {
    anstream::eprintln!("{} {text}", paint(Tone::Warn, "warning:"));
}

/// `error: text` on stderr, `error:` in red.
pub(crate) fn error(text: impl std::fmt::Display) {
    anstream::eprintln!("{} {text}", paint(Tone::Bad, "error:"));
}

/// `text` as stderr shows it: colour codes removed where colour is off
/// there (for writers that are not `anstream`'s, e.g. a progress bar).
pub(crate) fn for_stderr(text: &str) -> String {
    match anstream::AutoStream::choice(&std::io::stderr()) {
        anstream::ColorChoice::Never => anstream::adapter::strip_str(text).to_string(),
        _ => text.to_owned(),
    }
}

/// A progress or note line on stderr (data goes to stdout), colour codes
/// removed where colour is off there.
pub(crate) fn progress(text: impl std::fmt::Display) {
    anstream::eprintln!("{text}");
}

/// Print `line` on stdout, colour codes removed where colour is off.
pub(crate) fn line(line: impl std::fmt::Display) {
    anstream::println!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Data {
        nodes: Vec<u8>,
    }

    #[test]
    fn documents_lead_with_schema_version_and_kind() {
        let d = Data { nodes: vec![1, 2] };
        let pretty = to_json(Format::Json, "plan", &d).unwrap();
        assert!(pretty.starts_with("{\n  \"schema_version\": 1,\n  \"kind\": \"plan\",\n"));
        let line = to_json(Format::Jsonl, "plan", &d).unwrap();
        assert_eq!(
            line,
            "{\"schema_version\":1,\"kind\":\"plan\",\"nodes\":[1,2]}\n"
        );
    }

    #[test]
    fn paint_wraps_and_resets() {
        let p = paint(Tone::Bad, "failed");
        assert!(p.contains("failed") && p.starts_with('\u{1b}') && p.ends_with("\u{1b}[0m"));
        assert_eq!(paint(Tone::Plain, "x"), "x");
        assert_eq!(Tone::of_state("failed"), Tone::Bad);
        assert_eq!(Tone::of_state("joined"), Tone::Good);
    }
}
