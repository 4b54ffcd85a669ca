//! `racker completions`, `racker manpages` and the long version.

use std::process::Command;

use assert_cmd::cargo::cargo_bin;

fn racker(args: &[&str]) -> String {
    let out = Command::new(cargo_bin("racker"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "racker {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// bash itself loads the generated script and registers the completion.
#[test]
fn bash_completion_loads_in_bash() {
    let dir = tempfile::tempdir().unwrap();
    let script = racker(&["completions", "bash"]);
    assert!(script.contains("bootstrap") && script.contains("--on-failure"));
    let path = dir.path().join("racker.bash");
    std::fs::write(&path, &script).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p racker", path.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("racker"),
        "{out:?}"
    );

    // --dir writes the file under the name each shell looks for.
    for (shell, name) in [
        ("bash", "racker"),
        ("zsh", "_racker"),
        ("fish", "racker.fish"),
    ] {
        let out = Command::new(cargo_bin("racker"))
            .args(["completions", shell, "--dir"])
            .arg(dir.path().join("c"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = std::fs::read_to_string(dir.path().join("c").join(name)).unwrap();
        assert!(text.contains("bootstrap"), "{shell}: {text}");
    }
}

#[test]
fn manpages_cover_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(cargo_bin("racker"))
        .arg("manpages")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let page = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    assert!(page("racker.1").contains(".TH racker 1"));
    let bootstrap = page("racker-bootstrap.1");
    assert!(bootstrap.contains(".TH racker-bootstrap"), "{bootstrap}");
    assert!(bootstrap.contains("on\\-failure"), "{bootstrap}");
    // Nested subcommands get their own page.
    assert!(page("racker-netboot-serve.1").contains("dynamic\\-range"));
    assert!(page("racker-factory-reset.1").contains("racker\\-version"));
}

#[test]
fn version_names_commit_date_and_target() {
    let version = racker(&["--version"]);
    assert!(
        version.starts_with(&format!("racker {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    assert!(version.contains(", built 20"), "{version}");
    assert!(version.contains("-linux-"), "{version}");
}
