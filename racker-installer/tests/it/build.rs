//! Building releases from a definition: assets (repository paths, pinned
//! URLs served over real HTTP, git tags), steps, cache, reproducibility.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use racker_installer::{
    BuildOptions, Definition, Error, Fetcher, ReleaseEntry, Sha256Digest, unpack_archive,
};

use crate::support::{Node, snapshot};
use racker_testsupport::http::FileServer;

const TOOL: &[u8] = b"terraform stand-in\n";

/// A repository with an installer definition, a racker binary stand-in and
/// a unit; a web folder serving a pinned download.
struct Source {
    tmp: tempfile::TempDir,
    server: FileServer,
}

impl Source {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        fs::create_dir_all(repo.join("target/release")).unwrap();
        fs::create_dir_all(repo.join("installer")).unwrap();
        let racker = repo.join("target/release/racker");
        fs::write(&racker, "#!/bin/sh\necho built\n").unwrap();
        fs::set_permissions(&racker, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(
            repo.join("installer/racker-netboot.service"),
            "[Service]\nExecStart=/opt/bin/racker netboot serve\n",
        )
        .unwrap();
        let web = tmp.path().join("web");
        fs::create_dir_all(&web).unwrap();
        fs::write(web.join("tool-1.0.txt"), TOOL).unwrap();
        let server = FileServer::start(&web);
        Self { tmp, server }
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    fn write_definition(&self, extra: &str) -> PathBuf {
        let sha = Sha256Digest::of(TOOL);
        let text = format!(
            r#"
version = "1.4.0"
min_compatible_version = "1.2.0"

[[module]]
name = "racker"
[[module.asset]]
path = "../target/release/racker"
target = "bin/racker"
[[module.asset]]
path = "racker-netboot.service"
target = "systemd/racker-netboot.service"

[[module]]
name = "tools"
[[module.asset]]
url = "{base}/tool-1.0.txt"
sha256 = "{sha}"
target = "tool.txt"
scratch = true
[[module.step]]
argv = ["install", "-m", "0755", "{{work}}/tool.txt", "bin/tool"]
[[module.step]]
argv = ["cp", "{{source}}/racker-netboot.service", "share-{{version}}-{{arch}}.txt"]

[[module]]
name = "extras"
optional = true
[[module.step]]
argv = ["touch", "EXTRA"]
{extra}
"#,
            base = self.server.base,
        );
        let path = self.path().join("repo/installer/racker.toml");
        fs::write(&path, text).unwrap();
        path
    }

    fn build(
        &self,
        def: &Path,
        out: &str,
        cache: &str,
    ) -> racker_installer::Result<racker_installer::BuildOutput> {
        self.build_with(def, out, cache, &[])
    }

    fn build_with(
        &self,
        def: &Path,
        out: &str,
        cache: &str,
        with: &[&str],
    ) -> racker_installer::Result<racker_installer::BuildOutput> {
        let def = Definition::load(def)?;
        let mut opts = BuildOptions::new(self.path().join(out), self.path().join(cache));
        opts.arch = "x86_64".into();
        opts.with = with.iter().map(|s| (*s).to_owned()).collect();
        block_on(racker_installer::build(&def, &opts, &Fetcher::new()))
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn build_is_reproducible_and_complete() {
    let src = Source::new();
    let def = src.write_definition("");
    let first = src.build(&def, "out1", "cache1").unwrap();
    // Touch the inputs' mtimes; use another cache and output folder.
    let racker = src.path().join("repo/target/release/racker");
    fs::File::options()
        .append(true)
        .open(&racker)
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH)
        .unwrap();
    let second = src.build(&def, "out2", "cache2").unwrap();
    let bytes1 = fs::read(&first.archive).unwrap();
    let bytes2 = fs::read(&second.archive).unwrap();
    assert!(bytes1 == bytes2, "two builds differ");
    assert_eq!(
        first.archive.file_name().unwrap(),
        "racker-1.4.0-x86_64.tar.gz"
    );

    // Checksum file and index entry.
    let digest = Sha256Digest::of(&bytes1);
    assert_eq!(
        fs::read_to_string(&first.checksum_file).unwrap(),
        format!("{digest}  racker-1.4.0-x86_64.tar.gz\n")
    );
    let entry: ReleaseEntry =
        serde_json::from_slice(&fs::read(&first.entry_file).unwrap()).unwrap();
    assert_eq!(entry.sha256, digest);
    assert_eq!(entry.version.to_string(), "1.4.0");
    assert_eq!(entry.min_compatible_version.to_string(), "1.2.0");
    assert_eq!(entry.archive, "racker-1.4.0-x86_64.tar.gz");

    // Contents: binary, unit, version file, step outputs; not the scratch
    // download nor the optional module.
    let out = src.path().join("unpacked");
    fs::create_dir(&out).unwrap();
    unpack_archive(&bytes1[..], &out, "built").unwrap();
    let tree = snapshot(&out);
    let names: Vec<String> = tree.keys().map(|p| p.display().to_string()).collect();
    assert_eq!(
        names,
        [
            "RACKER_VERSION",
            "bin",
            "bin/racker",
            "bin/tool",
            "share-1.4.0-x86_64.txt",
            "systemd",
            "systemd/racker-netboot.service"
        ]
    );
    assert_eq!(
        tree[Path::new("bin/tool")],
        Node::File {
            content: TOOL.to_vec(),
            exec: true
        }
    );
    assert_eq!(
        fs::read_to_string(out.join("RACKER_VERSION")).unwrap(),
        "1.4.0\n"
    );
    // The staging folder is gone.
    assert_eq!(fs::read_dir(src.path().join("out1")).unwrap().count(), 3);
}

#[test]
fn optional_modules_only_when_asked() {
    let src = Source::new();
    let def_path = src.write_definition("");
    let def = Definition::load(&def_path).unwrap();
    let mut opts = BuildOptions::new(src.path().join("out"), src.path().join("cache"));
    opts.with = vec!["extras".into()];
    let built = block_on(racker_installer::build(&def, &opts, &Fetcher::new())).unwrap();
    let out = src.path().join("unpacked");
    fs::create_dir(&out).unwrap();
    unpack_archive(fs::File::open(&built.archive).unwrap(), &out, "x").unwrap();
    assert!(out.join("EXTRA").is_file());

    opts.with = vec!["nope".into()];
    let err = block_on(racker_installer::build(&def, &opts, &Fetcher::new())).unwrap_err();
    assert!(matches!(err, Error::DefinitionInvalid { .. }), "{err}");
}

#[test]
fn download_cache_is_verified_before_use() {
    let src = Source::new();
    let def = src.write_definition("");
    src.build(&def, "out", "cache").unwrap();
    let hits = src.server.hits();
    assert_eq!(hits, 1);
    let cached = src
        .path()
        .join("cache/sha256")
        .join(Sha256Digest::of(TOOL).to_string());
    assert_eq!(fs::read(&cached).unwrap(), TOOL);

    // A good cache entry is used without a download.
    src.build(&def, "out", "cache").unwrap();
    assert_eq!(src.server.hits(), hits);

    // A corrupt cache entry is detected and fetched again.
    fs::write(&cached, b"corrupted").unwrap();
    src.build(&def, "out", "cache").unwrap();
    assert_eq!(src.server.hits(), hits + 1);
    assert_eq!(fs::read(&cached).unwrap(), TOOL);
}

#[test]
fn wrong_pin_is_rejected_and_not_cached() {
    let src = Source::new();
    fs::write(src.path().join("web/tool-1.0.txt"), b"tampered upstream").unwrap();
    let def = src.write_definition("");
    let err = src.build(&def, "out", "cache").unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
    let cache = snapshot(&src.path().join("cache"));
    assert!(
        cache.values().all(|n| *n == Node::Dir),
        "cache holds files: {cache:?}"
    );
    assert!(!src.path().join("out").exists());
}

#[test]
fn failing_step_and_missing_binary_are_errors() {
    let src = Source::new();
    let def = src.write_definition("[[module.step]]\nargv = [\"false\"]\n");
    // Steps of an optional module run only when it is asked for.
    src.build(&def, "out", "cache").unwrap();
    let err = src
        .build_with(&def, "out", "cache", &["extras"])
        .unwrap_err();
    assert!(matches!(err, Error::StepFailed { .. }), "{err}");

    let def = src.write_definition("[[module.step]]\nargv = [\"rm\", \"bin/racker\"]\n");
    let err = src
        .build_with(&def, "out", "cache", &["extras"])
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::IncompleteRelease {
                missing: "bin/racker",
                ..
            }
        ),
        "{err}"
    );
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn git_asset_at_tag_with_pinned_commit() {
    if racker_testsupport::require_tool("git_asset_at_tag_with_pinned_commit", "git").is_none() {
        return;
    }
    let src = Source::new();
    let upstream = src.path().join("upstream");
    fs::create_dir(&upstream).unwrap();
    git(&upstream, &["init", "-q"]);
    fs::write(upstream.join("README"), "v1\n").unwrap();
    git(&upstream, &["add", "README"]);
    git(&upstream, &["commit", "-q", "-m", "one"]);
    git(&upstream, &["tag", "v1"]);
    let commit = git(&upstream, &["rev-parse", "HEAD"]);
    fs::write(upstream.join("README"), "v2\n").unwrap();
    git(&upstream, &["commit", "-q", "-am", "two"]);

    let url = format!("file://{}", upstream.display());
    let def = src.write_definition(&format!(
        "[[module.asset]]\ngit = \"{url}\"\ntag = \"v1\"\ncommit = \"{commit}\"\ntarget = \"share/upstream\"\n"
    ));
    let text = fs::read_to_string(&def).unwrap();
    let built = src.build_with(&def, "out", "cache", &["extras"]).unwrap();
    let out = src.path().join("unpacked");
    fs::create_dir(&out).unwrap();
    unpack_archive(fs::File::open(&built.archive).unwrap(), &out, "x").unwrap();
    assert_eq!(
        fs::read_to_string(out.join("share/upstream/README")).unwrap(),
        "v1\n"
    );
    assert!(!out.join("share/upstream/.git").exists());

    // A tag that moved away from the pinned commit is refused.
    fs::write(&def, text.replace(&commit, &"0".repeat(40))).unwrap();
    let err = src
        .build_with(&def, "out", "cache", &["extras"])
        .unwrap_err();
    assert!(matches!(err, Error::GitCommitMismatch { .. }), "{err}");
}

/// The repository's own `installer/racker.toml` builds (with a stand-in
/// binary) into an archive that installs: binary linked, unit installed.
#[test]
fn repository_definition_builds_and_installs() {
    let repo_root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    for dir in ["installer", "docs", "target/release"] {
        fs::create_dir_all(repo.join(dir)).unwrap();
    }
    // installer/ with its sub-folders (grafana/), and the docs it ships.
    fn copy_dir(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for entry in fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    copy_dir(&repo_root.join("installer"), &repo.join("installer"));
    for doc in fs::read_dir(repo_root.join("docs")).unwrap() {
        let doc = doc.unwrap();
        if doc.file_type().unwrap().is_file() {
            fs::copy(doc.path(), repo.join("docs").join(doc.file_name())).unwrap();
        }
    }
    let racker = repo.join("target/release/racker");
    fs::write(&racker, "#!/bin/sh\necho stand-in\n").unwrap();
    fs::set_permissions(&racker, fs::Permissions::from_mode(0o755)).unwrap();

    let def = Definition::load(&repo.join("installer/racker.toml")).unwrap();
    let opts = BuildOptions::new(tmp.path().join("dist"), tmp.path().join("cache"));
    let built = block_on(racker_installer::build(&def, &opts, &Fetcher::new())).unwrap();
    assert_eq!(built.entry.version, def.version);

    let layout = racker_installer::Layout::new(
        tmp.path().join("opt/racker"),
        tmp.path().join("opt/bin"),
        tmp.path().join("units"),
    );
    let staging = layout.begin().unwrap();
    let actual = staging.receive_file(&built.archive).unwrap();
    let report = racker_installer::Installer::new(layout.clone(), None)
        .install(
            staging,
            actual,
            built.entry.sha256,
            Some(&def.version),
            "repo",
        )
        .unwrap();
    assert_eq!(
        report.units_written,
        ["racker-ipmi-exporter.service", "racker-netboot.service"]
    );
    let exporter =
        fs::read_to_string(tmp.path().join("units/racker-ipmi-exporter.service")).unwrap();
    assert!(
        exporter.contains("ExecStart=/opt/bin/racker ipmi"),
        "{exporter}"
    );
    let unit = fs::read_to_string(tmp.path().join("units/racker-netboot.service")).unwrap();
    assert!(unit.contains("ExecStart=/opt/bin/racker netboot serve"));
    let out = Command::new(tmp.path().join("opt/bin/racker"))
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"stand-in\n");
    assert!(
        tmp.path()
            .join("opt/racker/current/share/doc/racker/installer.md")
            .is_file()
    );
}

/// The `racker-installer` binary builds and maintains an index file.
#[test]
fn installer_binary_builds_and_indexes() {
    let src = Source::new();
    let def = src.write_definition("");
    let dist = src.path().join("dist");
    let index = dist.join("index.json");
    let out = Command::new(env!("CARGO_BIN_EXE_racker-installer"))
        .arg("build")
        .arg("--definition")
        .arg(&def)
        .arg("--out-dir")
        .arg(&dist)
        .arg("--cache-dir")
        .arg(src.path().join("cache"))
        .args(["--arch", "aarch64", "--index"])
        .arg(&index)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let parsed =
        racker_installer::ReleaseIndex::parse("index.json", &fs::read(&index).unwrap()).unwrap();
    assert_eq!(parsed.releases.len(), 1);
    assert_eq!(parsed.releases[0].arch, "aarch64");
    assert_eq!(
        parsed.releases[0].sha256,
        Sha256Digest::of_file(&dist.join("racker-1.4.0-aarch64.tar.gz")).unwrap()
    );

    // index-add merges another entry; re-adding the same one replaces it.
    let other = src.build(&def, "dist2", "cache").unwrap();
    for _ in 0..2 {
        let status = Command::new(env!("CARGO_BIN_EXE_racker-installer"))
            .arg("index-add")
            .arg("--index")
            .arg(&index)
            .arg(&other.entry_file)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let parsed =
        racker_installer::ReleaseIndex::parse("index.json", &fs::read(&index).unwrap()).unwrap();
    let arches: Vec<_> = parsed.releases.iter().map(|r| r.arch.as_str()).collect();
    assert_eq!(arches, ["aarch64", "x86_64"]);
}
