//! The original racker 0.3's flag spellings (Go's `flag` package: one or
//! two dashes, `-flag=value` or `-flag value`), accepted as hidden aliases
//! and rewritten to racker's before parsing (docs/migrating.md, "Flag
//! spelling"). Each rewrite is named on stderr once, so scripts can be
//! updated.

use std::ffi::OsString;

/// What an original flag becomes.
enum Rewrite {
    /// The same option under racker's name (with its value, if any).
    Rename(&'static str),
    /// A boolean given as `-flag=true|false` (or bare): racker's switch when
    /// true, nothing when false.
    Switch(&'static str),
    /// `-ip-addrs "DHCP"|"<INI text>"`: `--public-ips dhcp` or the text in
    /// a file.
    IpAddrs,
    /// Dropped with a note (the original's `-config-backup`).
    Drop(&'static str),
    /// Refused with a reason (secrets never go on the command line).
    Refuse(&'static str),
}

/// The original's flags whose spelling differs from racker's, or that
/// racker only knows with two dashes.
const ORIGINAL: &[(&str, Rewrite)] = &[
    ("provision", Rewrite::Rename("--provision")),
    ("onfailure", Rewrite::Rename("--on-failure")),
    ("retries", Rewrite::Rename("--retries")),
    ("exclude", Rewrite::Rename("--exclude")),
    ("cluster-name", Rewrite::Rename("--cluster-name")),
    ("num-controllers", Rewrite::Rename("--num-controllers")),
    ("controller-type", Rewrite::Rename("--controller-type")),
    ("ip-addrs", Rewrite::IpAddrs),
    ("k8s-domain-name", Rewrite::Rename("--k8s-domain")),
    ("subnet-prefix", Rewrite::Rename("--subnet-prefix")),
    ("web-ui", Rewrite::Switch("--web-ui")),
    ("storage-provider", Rewrite::Rename("--storage-provider")),
    ("storage-node-type", Rewrite::Rename("--storage-node-type")),
    (
        "number-of-storage-nodes",
        Rewrite::Rename("--number-of-storage-nodes"),
    ),
    (
        "config-backup",
        Rewrite::Drop("backups are on when --backup-bucket is given"),
    ),
    ("aws-access-key", Rewrite::Rename("--backup-access-key-id")),
    (
        "aws-secret-key",
        Rewrite::Refuse(
            "a secret on the command line is visible to every user (ps); set RACKER_BACKUP_SECRET_ACCESS_KEY or type it into the wizard",
        ),
    ),
    ("backup-name", Rewrite::Rename("--backup-name")),
    ("backup-s3-bucket", Rewrite::Rename("--backup-bucket")),
    ("backup-aws-location", Rewrite::Rename("--backup-region")),
    ("full", Rewrite::Switch("--full")),
    ("racker-version", Rewrite::Switch("--racker-version")),
    ("nodes", Rewrite::Switch("--inventory")),
    ("confirm-reset", Rewrite::Switch("--yes")),
];

/// Original names that racker also has with two dashes, meaning its own
/// option (`racker demo --nodes 8` is the hidden alias of `--count`).
const RACKERS_OWN: &[&str] = &["nodes"];

/// Does the rewrite take a value (`-flag value` or `-flag=value`)?
fn takes_value(rewrite: &Rewrite) -> bool {
    matches!(rewrite, Rewrite::Rename(_) | Rewrite::IpAddrs)
}

/// The result of [`translate`]: racker's arguments and the notes to print.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Translated {
    /// The arguments for clap.
    pub(crate) args: Vec<OsString>,
    /// One line per original spelling seen.
    pub(crate) notes: Vec<String>,
    /// Files written for `-ip-addrs` INI text.
    pub(crate) ini_files: Vec<std::path::PathBuf>,
}

/// Why an original flag was refused.
#[derive(Debug, thiserror::Error)]
#[error("{flag}: {reason}")]
pub(crate) struct Refused {
    flag: String,
    reason: &'static str,
}

/// Rewrite the original's spellings in `args` (the program name first);
/// everything else passes unchanged, and nothing after `--` is touched.
/// `ini_dir` is where `-ip-addrs` INI text is written.
pub(crate) fn translate(
    args: impl IntoIterator<Item = OsString>,
    ini_dir: &std::path::Path,
) -> Result<Translated, Refused> {
    let mut out = Translated::default();
    let mut it = args.into_iter().peekable();
    let mut rest = false;
    while let Some(arg) = it.next() {
        let Some(text) = arg.to_str().filter(|_| !rest) else {
            out.args.push(arg);
            continue;
        };
        if text == "--" {
            rest = true;
            out.args.push(arg);
            continue;
        }
        let Some((name, inline, dashes)) = original_flag(text) else {
            out.args.push(arg);
            continue;
        };
        let Some((_, rewrite)) = ORIGINAL.iter().find(|(n, _)| *n == name) else {
            out.args.push(arg);
            continue;
        };
        // Racker's own spelling (two dashes, a name racker has itself):
        // nothing to do.
        if dashes == 2
            && (RACKERS_OWN.contains(&name)
                || matches!(rewrite, Rewrite::Rename(r) | Rewrite::Switch(r) if r.trim_start_matches('-') == name))
        {
            out.args.push(arg);
            continue;
        }
        let value = if takes_value(rewrite) && inline.is_none() {
            it.next()
                .map(|v| v.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else {
            inline.clone().unwrap_or_default()
        };
        let shown = format!("{}{name}", "-".repeat(dashes));
        match rewrite {
            Rewrite::Rename(to) => {
                out.notes
                    .push(format!("{shown} is the original racker's spelling of {to}"));
                out.args.push(OsString::from(*to));
                out.args.push(OsString::from(value));
            }
            Rewrite::Switch(to) => {
                let on = inline.as_deref().is_none_or(|v| {
                    matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "t" | "yes")
                });
                out.notes
                    .push(format!("{shown} is the original racker's spelling of {to}"));
                if on {
                    out.args.push(OsString::from(*to));
                }
            }
            Rewrite::IpAddrs => {
                if value.trim().eq_ignore_ascii_case("dhcp") || value.trim().is_empty() {
                    out.notes.push(format!(
                        "{shown} DHCP is the original racker's spelling of --public-ips dhcp"
                    ));
                    out.args.push("--public-ips".into());
                    out.args.push("dhcp".into());
                } else {
                    let file = ini_dir.join(format!("racker-ip-addrs-{}.ini", std::process::id()));
                    std::fs::write(&file, value.as_bytes()).map_err(|_| Refused {
                        flag: shown.clone(),
                        reason: "could not write its text to a file; pass --public-ips FILE",
                    })?;
                    out.notes.push(format!(
                        "{shown} TEXT is the original racker's spelling; the text was written to {} for --public-ips",
                        file.display()
                    ));
                    out.args.push("--public-ips".into());
                    out.args.push(file.clone().into_os_string());
                    out.ini_files.push(file);
                }
            }
            Rewrite::Drop(why) => out.notes.push(format!("{shown} is ignored: {why}")),
            Rewrite::Refuse(why) => {
                return Err(Refused {
                    flag: shown,
                    reason: why,
                });
            }
        }
    }
    Ok(out)
}

/// `-name`, `-name=value`, `--name`, `--name=value` with a multi-letter
/// name: the name, the inline value and the number of dashes.
fn original_flag(text: &str) -> Option<(&str, Option<String>, usize)> {
    let (dashes, body) = if let Some(b) = text.strip_prefix("--") {
        (2, b)
    } else {
        (1, text.strip_prefix('-')?)
    };
    let (name, value) = match body.split_once('=') {
        Some((n, v)) => (n, Some(v.to_owned())),
        None => (body, None),
    };
    (name.len() > 1
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
    .then_some((name, value, dashes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Translated {
        let dir = std::env::temp_dir();
        translate(args.iter().map(OsString::from), &dir).unwrap()
    }

    fn strings(t: &Translated) -> Vec<String> {
        t.args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn original_bootstrap_flags_become_rackers() {
        let t = run(&[
            "racker",
            "bootstrap",
            "-provision",
            "flatcar",
            "-onfailure=exclude",
            "-retries",
            "2",
            "-k8s-domain-name",
            "k8s.test",
            "-web-ui=false",
            "-config-backup=true",
            "-backup-s3-bucket",
            "b",
            "-backup-aws-location=eu-central-1",
            "-ip-addrs",
            "DHCP",
        ]);
        assert_eq!(
            strings(&t),
            [
                "racker",
                "bootstrap",
                "--provision",
                "flatcar",
                "--on-failure",
                "exclude",
                "--retries",
                "2",
                "--k8s-domain",
                "k8s.test",
                "--backup-bucket",
                "b",
                "--backup-region",
                "eu-central-1",
                "--public-ips",
                "dhcp"
            ]
        );
        assert_eq!(t.notes.len(), 9);
    }

    #[test]
    fn rackers_own_and_short_flags_pass_unchanged() {
        let args = [
            "racker",
            "-vv",
            "-o",
            "json",
            "status",
            "--full",
            "--provision",
            "x",
            "-q",
            "--nodes",
            "8",
        ];
        let t = run(&args);
        assert_eq!(strings(&t), args);
        assert!(t.notes.is_empty());
        // Nothing after `--` is touched.
        let t = run(&["racker", "ipmi", "--", "-provision"]);
        assert_eq!(strings(&t), ["racker", "ipmi", "--", "-provision"]);
    }

    #[test]
    fn factory_status_and_switches() {
        let t = run(&[
            "racker",
            "factory",
            "reset",
            "-racker-version",
            "-confirm-reset=true",
        ]);
        assert_eq!(
            strings(&t),
            ["racker", "factory", "reset", "--racker-version", "--yes"]
        );
        let t = run(&["racker", "status", "-full", "-web-ui"]);
        assert_eq!(strings(&t), ["racker", "status", "--full", "--web-ui"]);
    }

    #[test]
    fn ini_text_goes_to_a_file_and_secrets_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ini = "[00:11:22:33:44:30]\nip_addr = 10.0.0.5/24\n";
        let t = translate(
            ["racker", "bootstrap", "-ip-addrs", ini].map(OsString::from),
            dir.path(),
        )
        .unwrap();
        assert_eq!(t.ini_files.len(), 1);
        assert_eq!(std::fs::read_to_string(&t.ini_files[0]).unwrap(), ini);
        assert_eq!(strings(&t)[2], "--public-ips");
        let err = translate(
            ["racker", "bootstrap", "-aws-secret-key", "s3cr3t"].map(OsString::from),
            dir.path(),
        )
        .unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"));
        assert!(err.to_string().contains("RACKER_BACKUP_SECRET_ACCESS_KEY"));
    }
}
