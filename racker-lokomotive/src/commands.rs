//! What rendered node configs run on the node, and the allowlist of what a
//! stock Flatcar Container Linux image provides (docs/rendering.md, "Commands
//! on the node").
//!
//! [`tree_commands`] extracts every command a rendered cluster directory
//! makes a node run: the `Exec*=` lines of systemd units (in Ignition
//! configs and Container Linux Configs), the scripts Ignition writes (the
//! installer), the OS config nested in the install config, the Terraform
//! installer template and the `install_pre_reboot_cmds` variable.
//! [`is_allowed`] checks one command against [`FLATCAR_COMMANDS`] and
//! [`SHELL_BUILTINS`]. The simulated firmware uses [`shell_commands`] to
//! run the same installer.

use crate::decode_data_url;
use crate::ignition::Config;
use crate::tree::Tree;

/// Programs a stock Flatcar Container Linux image ships (in `/usr/bin` or
/// `/usr/sbin`; `/bin` and `/sbin` link there), with what racker uses them
/// for. Keep in sync with the table in docs/rendering.md (a test checks).
pub const FLATCAR_COMMANDS: &[(&str, &str)] = &[
    ("bash", "interpreter of the installer script"),
    (
        "sh",
        "runs the resolv.conf loop of use-systemd-resolved.service",
    ),
    ("curl", "reports to racker's HTTP server"),
    (
        "flatcar-install",
        "writes Flatcar to the disk (Flatcar's own installer)",
    ),
    ("udevadm", "waits for the new partitions' device nodes"),
    ("blkid", "finds the OEM partition"),
    ("head", "keeps the first OEM partition blkid lists"),
    ("mkdir", "creates the OEM mount point"),
    ("mount", "mounts the OEM partition"),
    ("umount", "unmounts it"),
    ("systemctl", "reboots after the install"),
    ("sed", "points the resolved stub file at the extra listener"),
    ("ln", "links /etc/resolv.conf to the stub file"),
    ("sleep", "paces the resolv.conf loop"),
    (
        "modprobe",
        "loads the IPMI drivers for the management node's in-band disk-boot step",
    ),
];

/// Shell builtins and keywords the rendered scripts use (bash and sh).
pub const SHELL_BUILTINS: &[&str] = &[
    "set", "trap", "echo", "true", "false", "exit", "test", "[", "cd", "export", "local", "return",
];

/// One command a rendered config runs on a node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeCommand {
    /// Where it is: file of the cluster directory and the unit or script.
    pub source: String,
    /// The program as written (a name, or an absolute path).
    pub program: String,
}

/// Whether `program` exists on a stock Flatcar node: a name or a
/// `/usr/bin`, `/usr/sbin`, `/bin` or `/sbin` path of
/// [`FLATCAR_COMMANDS`], or a shell builtin.
pub fn is_allowed(program: &str) -> bool {
    let name = match program.rsplit_once('/') {
        Some((dir, name)) => {
            if !matches!(dir, "/usr/bin" | "/usr/sbin" | "/bin" | "/sbin") {
                return false;
            }
            name
        }
        None => program,
    };
    FLATCAR_COMMANDS.iter().any(|(c, _)| *c == name)
        || (!program.contains('/') && SHELL_BUILTINS.contains(&name))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    /// `;`, `&&`, `||`, `|`, `&`, newline.
    Sep,
    /// `>`, `>>`, `<`, `2>`, `2>&1`...: the next word is a file name
    /// (`dup` set when the operator already named its target, like `>&1`).
    Redirect {
        dup: bool,
    },
    /// `(` or `)` (subshells, function definitions).
    Paren,
}

/// Split a shell script (the subset racker writes: quotes, `\` escapes and
/// line continuations, comments, `$(...)`) into tokens; command
/// substitutions are returned separately.
fn tokenize(script: &str, subs: &mut Vec<String>) -> Vec<Tok> {
    let mut toks = Vec::new();
    let chars: Vec<char> = script.chars().collect();
    let mut i = 0;
    let mut word = String::new();
    let mut in_word = false;
    let flush = |toks: &mut Vec<Tok>, word: &mut String, in_word: &mut bool| {
        if *in_word {
            toks.push(Tok::Word(std::mem::take(word)));
            *in_word = false;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if chars.get(i + 1) == Some(&'\n') => i += 2,
            '\\' => {
                if let Some(n) = chars.get(i + 1) {
                    word.push(*n);
                }
                in_word = true;
                i += 2;
            }
            '#' if !in_word => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '\'' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    word.push(chars[i]);
                    i += 1;
                }
                i += 1;
            }
            '"' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        word.push(chars[i + 1]);
                        i += 2;
                        continue;
                    }
                    if chars[i] == '$' && chars.get(i + 1) == Some(&'(') {
                        let (inner, end) = substitution(&chars, i + 2);
                        subs.push(inner);
                        word.push_str("$(...)");
                        i = end;
                        continue;
                    }
                    word.push(chars[i]);
                    i += 1;
                }
                i += 1;
            }
            '$' if chars.get(i + 1) == Some(&'(') => {
                let (inner, end) = substitution(&chars, i + 2);
                subs.push(inner);
                word.push_str("$(...)");
                in_word = true;
                i = end;
            }
            ' ' | '\t' => {
                flush(&mut toks, &mut word, &mut in_word);
                i += 1;
            }
            '\n' | ';' => {
                flush(&mut toks, &mut word, &mut in_word);
                toks.push(Tok::Sep);
                i += 1;
            }
            '&' | '|' => {
                flush(&mut toks, &mut word, &mut in_word);
                toks.push(Tok::Sep);
                i += if chars.get(i + 1) == Some(&c) { 2 } else { 1 };
            }
            '(' | ')' => {
                flush(&mut toks, &mut word, &mut in_word);
                toks.push(Tok::Paren);
                i += 1;
            }
            '>' | '<' => {
                // A file descriptor number written just before belongs to
                // the redirection.
                if in_word && word.chars().all(|d| d.is_ascii_digit()) {
                    word.clear();
                    in_word = false;
                }
                flush(&mut toks, &mut word, &mut in_word);
                i += 1;
                if chars.get(i) == Some(&c) {
                    i += 1;
                }
                let mut dup = false;
                if chars.get(i) == Some(&'&') {
                    dup = true;
                    i += 1;
                    while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '-') {
                        i += 1;
                    }
                }
                toks.push(Tok::Redirect { dup });
            }
            c => {
                word.push(c);
                in_word = true;
                i += 1;
            }
        }
    }
    flush(&mut toks, &mut word, &mut in_word);
    toks
}

/// The text of `$(...)` starting at `start` (after the parenthesis) and the
/// index after its closing parenthesis.
fn substitution(chars: &[char], start: usize) -> (String, usize) {
    let mut depth = 1;
    let mut i = start;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth -= 1;
                if depth == 0 {
                    return (chars[start..i].iter().collect(), i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    (chars[start..].iter().collect(), chars.len())
}

/// Keywords after which the next word is again a command.
const COMMAND_KEYWORDS: &[&str] = &["while", "do", "then", "else", "if", "{", "!", "until"];

/// The programs a shell script runs, in order (duplicates kept): the first
/// word of every simple command, words after `while`/`do`/`then`/`{`, and
/// those of command substitutions. Assignments before a command are
/// skipped; functions the script defines are left out (their bodies are
/// listed).
pub fn shell_commands(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut functions = Vec::new();
    collect(script, &mut out, &mut functions, 0);
    out.retain(|c| !functions.contains(c));
    out
}

fn collect(script: &str, out: &mut Vec<String>, functions: &mut Vec<String>, depth: u32) {
    if depth > 8 {
        return;
    }
    let mut subs = Vec::new();
    let toks = tokenize(script, &mut subs);
    let mut at_start = true;
    let mut skip_next = false;
    let mut k = 0;
    while k < toks.len() {
        match &toks[k] {
            Tok::Sep => at_start = true,
            Tok::Paren => at_start = true,
            Tok::Redirect { dup } => skip_next = !dup,
            Tok::Word(w) => {
                if skip_next {
                    skip_next = false;
                } else if at_start {
                    let is_assignment = w
                        .split_once('=')
                        .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(is_name_char));
                    if is_assignment {
                        // Still at a command position.
                    } else if w == "}" || w == "done" || w == "fi" {
                        // Ends a block: what follows a separator is a command.
                        at_start = false;
                    } else if COMMAND_KEYWORDS.contains(&w.as_str()) {
                        // A command follows.
                    } else if matches!(toks.get(k + 1), Some(Tok::Paren))
                        && matches!(toks.get(k + 2), Some(Tok::Paren))
                    {
                        functions.push(w.clone());
                        k += 2;
                    } else {
                        out.push(w.clone());
                        at_start = false;
                    }
                }
            }
        }
        k += 1;
    }
    for s in subs {
        collect(&s, out, functions, depth + 1);
    }
}

/// One simple command of a script: its words (assignments before the
/// program and redirection targets left out) and every program it runs
/// (the first word, then those of its command substitutions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleCommand {
    /// 1-based line of the script where it starts.
    pub line: usize,
    /// The words, quotes removed; `$(...)` stands for a substitution.
    pub words: Vec<String>,
    /// Programs it runs.
    pub programs: Vec<String>,
}

/// A script split into the simple commands it runs in order, and the
/// functions it defines (name → body), for a simulator to follow. `&&`,
/// `||` and `|` separate commands like `;` does (a simulator runs each).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    /// Top-level commands in order.
    pub commands: Vec<SimpleCommand>,
    /// Function bodies by name.
    pub functions: Vec<(String, Vec<SimpleCommand>)>,
}

/// Split `script` into [`Script`]: the installer racker renders is a list
/// of simple commands and one function (`report`).
pub fn parse_script(script: &str) -> Script {
    let mut out = Script::default();
    let mut current: Vec<SimpleCommand> = Vec::new();
    let mut function: Option<String> = None;
    let mut line = 1;
    for raw in split_lines(script) {
        let (start_line, text) = raw;
        line = line.max(start_line);
        let mut subs = Vec::new();
        let toks = tokenize(&text, &mut subs);
        let sub_programs: Vec<String> = subs.iter().flat_map(|s| shell_commands(s)).collect();
        let mut words: Vec<String> = Vec::new();
        let mut skip_next = false;
        let mut k = 0;
        let flush = |words: &mut Vec<String>, current: &mut Vec<SimpleCommand>, subs: &[String]| {
            let ws: Vec<String> = std::mem::take(words)
                .into_iter()
                .skip_while(|w| {
                    w.split_once('=')
                        .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(is_name_char))
                })
                .collect();
            let has_sub = ws.iter().any(|w| w.contains("$(...)"));
            let mut programs: Vec<String> = ws.first().cloned().into_iter().collect();
            if has_sub {
                programs.extend(subs.iter().cloned());
            }
            if !programs.is_empty() {
                current.push(SimpleCommand {
                    line: start_line,
                    words: ws,
                    programs,
                });
            }
        };
        // Assignments with a substitution and no command (`x=$(blkid)`).
        let only_assignment_sub = !sub_programs.is_empty();
        while k < toks.len() {
            match &toks[k] {
                Tok::Word(w) if skip_next => {
                    let _ = w;
                    skip_next = false;
                }
                Tok::Word(w) if words.is_empty() && w == "}" => {
                    if let Some(name) = function.take() {
                        out.functions.push((name, std::mem::take(&mut current)));
                        current = std::mem::take(&mut out.commands);
                    }
                }
                Tok::Word(w)
                    if words.is_empty()
                        && matches!(toks.get(k + 1), Some(Tok::Paren))
                        && matches!(toks.get(k + 2), Some(Tok::Paren)) =>
                {
                    // `name() {`: commands until `}` are its body.
                    out.commands.append(&mut current);
                    function = Some(w.clone());
                    k += 2;
                    if matches!(toks.get(k + 1), Some(Tok::Word(b)) if b == "{") {
                        k += 1;
                    }
                }
                Tok::Word(w) => words.push(w.clone()),
                Tok::Redirect { dup } => skip_next = !dup,
                Tok::Sep | Tok::Paren => flush(&mut words, &mut current, &sub_programs),
            }
            k += 1;
        }
        let before = current.len();
        flush(&mut words, &mut current, &sub_programs);
        if current.len() == before && only_assignment_sub && function.is_none() {
            // `x=$(prog)` alone: the substitution still runs.
            current.push(SimpleCommand {
                line: start_line,
                words: Vec::new(),
                programs: sub_programs.clone(),
            });
        }
    }
    out.commands.append(&mut current);
    out
}

/// Logical lines (continuations joined) with their first line number;
/// quotes spanning lines are kept together.
fn split_lines(script: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut start = 1;
    let mut quote: Option<char> = None;
    let mut line = 1;
    let mut chars = script.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '\\') if chars.peek() == Some(&'\n') => {
                chars.next();
                line += 1;
                buf.push(' ');
                continue;
            }
            (None, '\\') => {
                buf.push(c);
                if let Some(n) = chars.next() {
                    buf.push(n);
                }
                continue;
            }
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '\n') => {
                line += 1;
                if !buf.trim().is_empty() {
                    out.push((start, std::mem::take(&mut buf)));
                }
                buf.clear();
                start = line;
                continue;
            }
            (Some(_), '\n') => line += 1,
            _ => {}
        }
        buf.push(c);
    }
    if !buf.trim().is_empty() {
        out.push((start, buf));
    }
    out
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The programs the `Exec*=` lines of a systemd unit run (prefixes like
/// `-` and `@` removed); for `sh -c` / `bash -c` also the commands of the
/// script given.
pub fn unit_commands(unit: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in unit.lines() {
        let line = line.trim_start();
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if !key.starts_with("Exec") || key.contains(' ') {
            continue;
        }
        let value = value.trim_start_matches(['-', '@', ':', '+', '!', '|']);
        let mut subs = Vec::new();
        let words: Vec<String> = tokenize(value, &mut subs)
            .into_iter()
            .filter_map(|t| match t {
                Tok::Word(w) => Some(w),
                _ => None,
            })
            .collect();
        let Some(program) = words.first() else {
            continue;
        };
        out.push(program.clone());
        let base = program.rsplit('/').next().unwrap_or(program);
        if matches!(base, "sh" | "bash")
            && let Some(pos) = words.iter().position(|w| w == "-c")
            && let Some(script) = words.get(pos + 1)
        {
            out.extend(shell_commands(script));
        }
    }
    out
}

/// The interpreter of a script starting with `#!` (its first word).
fn shebang(text: &str) -> Option<String> {
    let line = text.strip_prefix("#!")?.lines().next()?;
    let interp = line.split_whitespace().next()?;
    Some(interp.to_owned())
}

/// Every command an Ignition config runs: its units' `Exec*` lines, the
/// scripts it writes (shebang interpreter and commands), and, for an Ignition
/// config it writes (the OS config inside the install config), that one's.
/// Commands that run a script the config itself writes are left out (the
/// script's own commands are listed).
pub fn config_commands(source: &str, config: &Config) -> Vec<NodeCommand> {
    let mut out = Vec::new();
    config_commands_into(source, config, &mut out, 0);
    out
}

fn config_commands_into(source: &str, config: &Config, out: &mut Vec<NodeCommand>, depth: u32) {
    let files = config.storage.as_ref().map(|s| &s.files[..]).unwrap_or(&[]);
    // Scripts the config writes inline are followed (their commands are
    // listed instead); a downloaded file it runs is listed itself.
    let written: Vec<&str> = files
        .iter()
        .filter(|f| {
            f.contents
                .as_ref()
                .is_some_and(|c| c.source.starts_with("data:"))
        })
        .map(|f| f.path.as_str())
        .collect();
    let mut push = |where_: String, program: String| {
        if !written.contains(&program.as_str()) {
            out.push(NodeCommand {
                source: where_,
                program,
            });
        }
    };
    for unit in config.systemd.iter().flat_map(|s| &s.units) {
        if let Some(contents) = &unit.contents {
            for p in unit_commands(contents) {
                push(format!("{source}: {}", unit.name), p);
            }
        }
    }
    let mut nested = Vec::new();
    for f in files {
        let Some(data) = f.contents.as_ref().and_then(|c| decode_data_url(&c.source)) else {
            continue;
        };
        let Ok(text) = String::from_utf8(data) else {
            continue;
        };
        if let Some(interp) = shebang(&text) {
            push(format!("{source}: {}", f.path), interp);
            for p in shell_commands(&text) {
                push(format!("{source}: {}", f.path), p);
            }
        } else if let Ok(inner) = serde_json::from_str::<Config>(&text) {
            nested.push((format!("{source}: {}", f.path), inner));
        }
    }
    if depth < 4 {
        for (s, inner) in nested {
            config_commands_into(&s, &inner, out, depth + 1);
        }
    }
}

/// The literal script inside a Container Linux Config / Terraform template
/// that starts with a `#!` line: the following lines indented at least as
/// deep, without that indentation.
fn inline_scripts(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        if trimmed.starts_with("#!") {
            let indent = line.len() - trimmed.len();
            let mut script = String::new();
            while i < lines.len() {
                let l = lines[i];
                let lt = l.trim_start();
                if !lt.is_empty() && l.len() - lt.len() < indent {
                    break;
                }
                script.push_str(l.get(indent..).unwrap_or(""));
                script.push('\n');
                i += 1;
            }
            out.push(script);
        } else {
            i += 1;
        }
    }
    out
}

/// The value of the HCL string variable `name` in a `.vars` / `.tfvars`
/// file, unescaped.
fn hcl_var(text: &str, name: &str) -> Option<String> {
    let line = text
        .lines()
        .find(|l| l.split_once('=').is_some_and(|(k, _)| k.trim() == name))?;
    let (_, value) = line.split_once('=')?;
    let value = value.trim().strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(o) => out.push(o),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    Some(out.replace("$${", "${"))
}

/// Every command a rendered cluster directory makes its nodes run:
/// Ignition configs (`*.ign`, nested OS configs included), Container Linux
/// Configs and Terraform templates (`*.yaml`, `*.yaml.tmpl`: `Exec*` lines
/// and inline `#!` scripts), and `install_pre_reboot_cmds` of
/// `lokocfg.vars` / `terraform.tfvars`. Files that cannot be read as what
/// their name says are reported as the program `<unreadable: why>`, which
/// no allowlist accepts.
pub fn tree_commands(tree: &Tree) -> Vec<NodeCommand> {
    let mut out = Vec::new();
    // The Terraform installer template interpolates this variable.
    let pre_reboot = tree
        .get("terraform.tfvars")
        .and_then(|f| hcl_var(f.text(), "install_pre_reboot_cmds"));
    for (path, file) in tree.files() {
        let source = path.display().to_string();
        let text = file.text();
        if source.ends_with(".ign") {
            match serde_json::from_str::<Config>(text) {
                Ok(config) => out.extend(config_commands(&source, &config)),
                Err(e) => out.push(NodeCommand {
                    source,
                    program: format!("<unreadable: {e}>"),
                }),
            }
        } else if source.ends_with(".yaml") || source.ends_with(".yaml.tmpl") {
            // Scripts the config writes itself are listed by their contents.
            let written: Vec<&str> = text
                .lines()
                .filter_map(|l| l.trim_start().strip_prefix("- path:"))
                .map(str::trim)
                .collect();
            for p in unit_commands(text) {
                if written.contains(&p.as_str()) {
                    continue;
                }
                out.push(NodeCommand {
                    source: source.clone(),
                    program: p,
                });
            }
            for mut script in inline_scripts(text) {
                if let Some(cmds) = &pre_reboot {
                    script = script.replace("${install_pre_reboot_cmds}", cmds);
                }
                if let Some(interp) = shebang(&script) {
                    out.push(NodeCommand {
                        source: source.clone(),
                        program: interp,
                    });
                }
                for p in shell_commands(&script) {
                    out.push(NodeCommand {
                        source: source.clone(),
                        program: p,
                    });
                }
            }
        } else if (source.ends_with("lokocfg.vars") || source.ends_with("terraform.tfvars"))
            && let Some(cmds) = hcl_var(text, "install_pre_reboot_cmds")
        {
            for p in shell_commands(&cmds) {
                out.push(NodeCommand {
                    source: format!("{source}: install_pre_reboot_cmds"),
                    program: p,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_commands_of_the_subset_racker_writes() {
        let script = "#!/bin/bash\nset -euo pipefail\nreport() {\n  curl -X POST \\\n    \"u?stage=$1\" || true\n}\ntrap 'report failed' ERR\noem=$(blkid -t LABEL=OEM -o device)\necho 'x' >> /tmp/f 2>&1\nwhile true; do sed -i s/a/b/ f; ln -fs a b; sleep 1; done\n(modprobe x || true) && ipmitool raw 0 # comment: rm\nreport installed\n";
        assert_eq!(
            shell_commands(script),
            [
                "set", "curl", "true", "trap", "echo", "true", "sed", "ln", "sleep", "modprobe",
                "true", "ipmitool", "blkid"
            ]
        );
    }

    #[test]
    fn unit_exec_lines_and_sh_c() {
        let unit = "[Service]\nExecStartPre=-modprobe ipmi_devintf\nExecStart=/bin/sh -c \"while true; do sed -i 's/a/b/g' f; sleep 1; done\"\nExecStart=/usr/bin/curl -X POST \"u\"\nDescription=ExecStart=not\n";
        assert_eq!(
            unit_commands(unit),
            [
                "modprobe",
                "/bin/sh",
                "true",
                "sed",
                "sleep",
                "/usr/bin/curl"
            ]
        );
    }

    #[test]
    fn scripts_split_into_commands_and_functions() {
        let script = "#!/bin/bash\nset -e\nreport() {\n  curl -X POST \\\n    \"u?stage=$1\" || true\n}\ntrap 'report failed' ERR\noem=$(blkid -o device | head -n 1)\necho 'a b' >> /tmp/f\nreport installed\n";
        let s = parse_script(script);
        let words: Vec<Vec<&str>> = s
            .commands
            .iter()
            .map(|c| c.words.iter().map(String::as_str).collect())
            .collect();
        assert_eq!(
            words,
            vec![
                vec!["set", "-e"],
                vec!["trap", "report failed", "ERR"],
                vec![],
                vec!["echo", "a b"],
                vec!["report", "installed"],
            ]
        );
        assert_eq!(s.commands[2].programs, ["blkid", "head"]);
        assert_eq!(s.commands[4].line, 10);
        assert_eq!(s.functions.len(), 1);
        let (name, body) = &s.functions[0];
        assert_eq!(name, "report");
        assert_eq!(body[0].words, ["curl", "-X", "POST", "u?stage=$1"]);
        assert_eq!(body[1].words, ["true"]);
    }

    #[test]
    fn allowlist() {
        assert!(is_allowed("curl"));
        assert!(is_allowed("/usr/bin/curl"));
        assert!(is_allowed("set"));
        assert!(!is_allowed("/opt/bin/curl"));
        assert!(!is_allowed("/usr/bin/set"));
        assert!(!is_allowed("ipmitool"));
        assert!(!is_allowed("docker"));
        assert!(!is_allowed("apt-get"));
    }

    #[test]
    fn hcl_variable() {
        let text =
            "kernel_console = [\"a\"]\ninstall_pre_reboot_cmds = \"true && echo \\\"x\\\"\"\n";
        assert_eq!(
            hcl_var(text, "install_pre_reboot_cmds").as_deref(),
            Some("true && echo \"x\"")
        );
    }
}
