//! Network namespaces for tests: created with a unique name, joined by veth
//! pairs, entered from a thread, deleted on drop (also when a test panics).
//! Only namespaces a test creates ever receive its traffic.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// A network namespace, deleted on drop. The field is its name.
#[derive(Debug)]
pub struct Netns(pub String);

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Netns {
    /// Create a namespace named `<prefix><pid>x<n>` (unique across
    /// parallel tests and processes) with its loopback up.
    pub fn create(prefix: &str) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let ns = Self::named(format!("{prefix}{}x{n}", std::process::id()));
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// Create the namespace `name` (deleted on drop).
    pub fn named(name: String) -> Self {
        run(&["ip", "netns", "add", &name]);
        Self(name)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// `ip -n <ns> ARGS...`; panics unless it succeeds.
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["ip", "-n", &self.0];
        all.extend_from_slice(args);
        run(&all);
    }

    /// `program` run inside the namespace (`ip netns exec`), stdin closed.
    pub fn exec(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0])
            .arg(program)
            .stdin(Stdio::null());
        c
    }

    /// Run `f` on a new thread that entered this namespace (network
    /// namespaces are per thread), so every socket it opens is in there.
    pub fn enter<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        enter(&self.0, f)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Run `f` on a new thread that entered the namespace `name`.
pub fn enter<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{name}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("netns file");
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .expect("netns thread")
}

/// A veth pair: `a_if` in `a`, `b_if` in `b`, both up.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) {
    run(&[
        "ip", "link", "add", a_if, "netns", &a.0, "type", "veth", "peer", "name", b_if, "netns",
        &b.0,
    ]);
    a.ip(&["link", "set", a_if, "up"]);
    b.ip(&["link", "set", b_if, "up"]);
}

/// Run `args` (program first) with stdin closed; panic unless it succeeds.
pub fn run(args: &[&str]) {
    let status = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(status.success(), "{args:?} failed: {status}");
}
