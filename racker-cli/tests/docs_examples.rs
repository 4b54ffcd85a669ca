//! Every shell example in README.md and docs/*.md runs (docs/testing.md,
//! "Documentation examples"): fenced `sh`/`bash`/`shell` blocks are
//! extracted and run with bash (`set -euo pipefail`), one block at a time,
//! document by document. Blocks preceded by `<!-- no-test: reason -->` are
//! skipped (a real rack, an interactive terminal, a server that runs until
//! Ctrl-C, network access).
//!
//! The docs' examples run against one simulated rack shared by every
//! document: `racker demo --keep-running` (BMCs, firmware, netboot server,
//! a finished bootstrap), with the `RACKER_*` exports it prints; the
//! examples of [`SELF_CONTAINED`] documents start from nothing and run
//! without them. `racker` is the
//! binary under test, first on `PATH`; `cargo run -p racker-cli -- ARGS`
//! runs it with ARGS, and `cargo test`/`cargo build`/`cargo install` (what
//! is running this test) only say so. Each document gets its own `HOME`,
//! `TMPDIR` and working directory (where `docs/` is the repository's).

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One fenced shell block.
#[derive(Debug)]
struct Block {
    doc: String,
    line: usize,
    script: String,
    skip: Option<String>,
}

/// The shell blocks of a Markdown document.
fn blocks(doc: &str, text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        let indent = lines[i].len() - trimmed.len();
        let lang = trimmed.strip_prefix("```").map(str::trim);
        if let Some(lang) = lang
            && ["sh", "bash", "shell"].contains(&lang)
        {
            let skip = lines[..i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .and_then(|l| l.trim().strip_prefix("<!-- no-test:"))
                .map(|r| r.trim_end_matches("-->").trim().to_owned());
            let start = i + 1;
            let mut j = start;
            while j < lines.len() && lines[j].trim() != "```" {
                j += 1;
            }
            let script = lines[start..j]
                .iter()
                .map(|l| {
                    l.get(indent.min(l.len() - l.trim_start().len())..)
                        .unwrap_or("")
                })
                .collect::<Vec<_>>()
                .join("\n");
            out.push(Block {
                doc: doc.to_owned(),
                line: i + 1,
                script,
                skip,
            });
            i = j;
        } else if lang.is_some() {
            // Another language's block: skip to its end.
            i += 1;
            while i < lines.len() && lines[i].trim() != "```" {
                i += 1;
            }
        }
        i += 1;
    }
    out
}

/// Documents whose examples start from nothing (a fresh machine, their own
/// demo), run without the shared rack's exports.
const SELF_CONTAINED: [&str; 2] = ["README.md", "docs/migrating.md"];

/// Longest a block may run.
const BLOCK_TIMEOUT_SECS: u64 = 60;

const PRELUDE: &str = r#"set -euo pipefail
cargo() {
  case "${1:-}" in
    run)
      local pkg=""
      while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
        if [ "$1" = "-p" ]; then pkg="$2"; fi
        shift
      done
      if [ "$pkg" != "racker-cli" ]; then echo "docs test: cargo run -p $pkg is not run" >&2; return 1; fi
      shift
      racker "$@" ;;
    test|build|install) echo "docs test: 'cargo $*' is what runs this test; not run again" ;;
    *) echo "docs test: unexpected 'cargo $*'" >&2; return 1 ;;
  esac
}
"#;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Run one block; its output on failure.
fn run_block(block: &Block, env: &BTreeMap<String, String>, cwd: &Path) -> Result<(), String> {
    let script = format!("{PRELUDE}\n{}\n", block.script);
    use std::os::unix::process::CommandExt as _;
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(&script)
        // Its own process group, so a timeout kills what it started too.
        .process_group(0)
        .env_clear()
        .envs(env)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    let ereader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).ok();
        s
    });
    let deadline = Instant::now() + Duration::from_secs(BLOCK_TIMEOUT_SECS);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (stdout, stderr) = (reader.join().unwrap(), ereader.join().unwrap());
    match status {
        Some(s) if s.success() => Ok(()),
        other => Err(format!(
            "{}:{} {}\n--- script ---\n{}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            block.doc,
            block.line,
            match other {
                Some(s) => format!("failed ({s})"),
                None => format!("timed out ({BLOCK_TIMEOUT_SECS} s)"),
            },
            block.script
        )),
    }
}

/// `racker demo --keep-running`: the shared simulated rack; killed on drop.
struct Rack {
    child: std::process::Child,
    exports: BTreeMap<String, String>,
}

impl Drop for Rack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_rack(dir: &Path, base_env: &BTreeMap<String, String>) -> Rack {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("racker"))
        .env_clear()
        .envs(base_env)
        .arg("demo")
        .arg("--dir")
        .arg(dir)
        .args(["--nodes", "6", "--install-delay-ms", "0", "--keep-running"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut exports = BTreeMap::new();
    let mut seen = String::new();
    loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("the demo ended early:\n{seen}"))
            .unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if let Some(e) = line.trim().strip_prefix("export ") {
            for kv in e.split_whitespace() {
                let (k, v) = kv.split_once('=').unwrap();
                exports.insert(k.to_owned(), v.to_owned());
            }
        }
        if line.starts_with("Rack view: ") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Rack { child, exports }
}

#[test]
fn every_shell_example_in_the_docs_runs() {
    let started = Instant::now();
    let root = repo_root();
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(assert_cmd::cargo::cargo_bin("racker"), bin.join("racker")).unwrap();
    let path = format!(
        "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        bin.display()
    );
    let mut docs: Vec<PathBuf> = vec![root.join("README.md")];
    let mut more: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    more.sort();
    docs.extend(more);

    let base = |name: &str| {
        let area = tmp.path().join(name);
        for sub in ["home", "tmp", "cwd"] {
            std::fs::create_dir_all(area.join(sub)).unwrap();
        }
        std::os::unix::fs::symlink(root.join("docs"), area.join("cwd/docs")).unwrap();
        let env: BTreeMap<String, String> = [
            ("PATH", path.clone()),
            ("HOME", area.join("home").display().to_string()),
            ("TMPDIR", area.join("tmp").display().to_string()),
            ("LANG", "C.UTF-8".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        (env, area.join("cwd"))
    };
    let (rack_env, _) = base("rack");
    let rack = start_rack(&tmp.path().join("rack/demo"), &rack_env);

    let mut failures = Vec::new();
    let (mut ran, mut skipped) = (0, 0);
    for doc in &docs {
        let name = doc.strip_prefix(&root).unwrap().display().to_string();
        let text = std::fs::read_to_string(doc).unwrap();
        let (mut env, cwd) = base(&name.replace('/', "_"));
        if !SELF_CONTAINED.contains(&name.as_str()) {
            env.extend(rack.exports.clone());
        }
        for block in blocks(&name, &text) {
            if block.skip.is_some() {
                skipped += 1;
                continue;
            }
            ran += 1;
            if let Err(e) = run_block(&block, &env, &cwd) {
                failures.push(e);
            }
        }
    }
    eprintln!(
        "docs examples: {ran} run, {skipped} marked no-test, {} failed, {:.1} s",
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} example(s) fail as written:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn blocks_are_found_with_their_no_test_marks() {
    let md = "# T\n\n```sh\nracker plan\n```\n\n<!-- no-test: needs a real rack -->\n```sh\nracker bootstrap\n```\n\n```json\n{}\n```\n\n1. step\n   ```sh\n   racker status\n   ```\n";
    let b = blocks("t.md", md);
    assert_eq!(b.len(), 3, "{b:?}");
    assert_eq!(
        (b[0].script.as_str(), b[0].skip.as_deref()),
        ("racker plan", None)
    );
    assert_eq!(b[1].skip.as_deref(), Some("needs a real rack"));
    assert_eq!(b[2].script, "racker status");
    assert_eq!(b[0].line, 3);
}
