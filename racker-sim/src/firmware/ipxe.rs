//! Just enough of iPXE's script language for netboot scripts: `#!ipxe`,
//! `${var[:type]}` expansion, `set`, `echo`, `chain`, `kernel`, `initrd`,
//! `imgargs`, `boot`, `exit`, `sanboot` (to the local disk) and no-ops
//! such as `dhcp` and `sleep`. Anything else aborts the script, like an
//! iPXE that lacks the command.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use url::Url;

use super::ClientArch;

/// The settings iPXE knows after its DHCP exchange.
#[derive(Debug, Clone)]
pub(crate) struct Vars {
    pub(crate) mac: [u8; 6],
    pub(crate) arch: ClientArch,
    pub(crate) ip: Option<Ipv4Addr>,
    pub(crate) netmask: Option<Ipv4Addr>,
    pub(crate) next_server: Option<Ipv4Addr>,
    pub(crate) hostname: Option<String>,
    pub(crate) filename: Option<String>,
    /// Variables from `set`.
    pub(crate) user: BTreeMap<String, String>,
}

/// What a script asks for once it stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Load and run another script (absolute URL).
    Chain(Url),
    /// Boot a kernel with its command line and initrds (absolute URLs).
    Boot {
        kernel: Url,
        args: Vec<String>,
        initrds: Vec<Url>,
    },
    /// Leave iPXE: the firmware tries its next boot device (the disk).
    Exit,
    /// The script failed; iPXE gives up and exits too.
    Error(String),
}

/// A script run: what it echoed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Run {
    pub(crate) echoes: Vec<String>,
    pub(crate) outcome: Outcome,
}

fn hex(mac: [u8; 6], sep: &str) -> String {
    let mut s = String::new();
    for (i, b) in mac.iter().enumerate() {
        if i > 0 {
            s.push_str(sep);
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Percent-encode all but RFC 3986 unreserved characters (iPXE `:uristring`).
pub(crate) fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

impl Vars {
    fn lookup(&self, name: &str) -> Option<String> {
        // `net0/mac` and `mac` are the same setting on a one-NIC machine.
        let bare = name
            .strip_prefix("net0/")
            .or_else(|| name.strip_prefix("netX/"))
            .unwrap_or(name);
        if let Some(v) = self.user.get(name).or_else(|| self.user.get(bare)) {
            return Some(v.clone());
        }
        let ip = |a: Option<Ipv4Addr>| a.map(|a| a.to_string());
        match bare {
            "mac" => Some(hex(self.mac, ":")),
            "ip" => ip(self.ip),
            "netmask" => ip(self.netmask),
            "next-server" => ip(self.next_server),
            "hostname" => self.hostname.clone(),
            "filename" => self.filename.clone(),
            "buildarch" => Some(self.arch.ipxe_buildarch().to_owned()),
            "platform" => Some(self.arch.ipxe_platform().to_owned()),
            "uuid" => Some(format!("52534953-4d00-0000-0000-{}", hex(self.mac, ""))),
            "manufacturer" => Some("Racker".to_owned()),
            "product" => Some("Simulated Server".to_owned()),
            "serial" => Some(format!("SIM{}", hex(self.mac, "").to_uppercase())),
            "version" => Some("1.21.1+ (racker-sim)".to_owned()),
            _ => None,
        }
    }

    /// Expand `${name}` and `${name:type}`; unknown settings expand to
    /// nothing, like iPXE.
    pub(crate) fn expand(&self, s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            out.push_str(rest.get(..start).unwrap_or_default());
            let after = rest.get(start + 2..).unwrap_or_default();
            let Some(end) = after.find('}') else {
                out.push_str(rest.get(start..).unwrap_or_default());
                return out;
            };
            let spec = after.get(..end).unwrap_or_default();
            let (name, ty) = spec.split_once(':').unwrap_or((spec, ""));
            let value = match (name.strip_prefix("net0/").unwrap_or(name), ty) {
                ("mac", "hexhyp") => hex(self.mac, "-"),
                ("mac", "hexraw") => hex(self.mac, ""),
                (_, "uristring") => uri_encode(&self.lookup(name).unwrap_or_default()),
                _ => self.lookup(name).unwrap_or_default(),
            };
            out.push_str(&value);
            rest = after.get(end + 1..).unwrap_or_default();
        }
        out.push_str(rest);
        out
    }
}

/// Resolve a (possibly relative) URL against the script's own URL; only
/// HTTP(S) is supported.
fn resolve(base: &Url, target: &str) -> Result<Url, String> {
    let url = base
        .join(target)
        .map_err(|e| format!("invalid URI {target:?}: {e}"))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!(
            "URI scheme {other}:// is not supported by the simulated iPXE ({url})"
        )),
    }
}

/// Strip iPXE's `--option` / `--option=value` / `-n name` arguments.
fn positional<'a>(words: &[&'a str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut skip_next = false;
    for w in words {
        if skip_next {
            skip_next = false;
            continue;
        }
        if let Some(opt) = w.strip_prefix("--") {
            if !opt.contains('=') && matches!(opt, "name" | "timeout" | "drive" | "filename") {
                skip_next = true;
            }
            continue;
        }
        if matches!(*w, "-n" | "-t" | "-d") {
            skip_next = true;
            continue;
        }
        out.push(*w);
    }
    out
}

/// Largest script accepted (bytes).
pub(crate) const MAX_SCRIPT: usize = 64 * 1024;
/// Most initrds one boot may load.
const MAX_INITRDS: usize = 8;

/// Run `script`, fetched from `base`, with `vars` (which `set` updates).
pub(crate) fn run(script: &str, base: &Url, vars: &mut Vars) -> Run {
    let mut echoes = Vec::new();
    let fail = |echoes: Vec<String>, why: String| Run {
        echoes,
        outcome: Outcome::Error(why),
    };
    let mut lines = script.lines();
    let first = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches('\u{feff}');
    if !first.trim_end().starts_with("#!ipxe") {
        return fail(echoes, "not an iPXE script (no #!ipxe line)".to_owned());
    }
    let mut kernel: Option<(Url, Vec<String>)> = None;
    let mut initrds = Vec::new();
    for line in lines {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(':') {
            continue;
        }
        // `cmd || fallback`: the simulated firmware never needs the fallback.
        let line = line.split("||").next().unwrap_or(line).trim();
        let expanded = vars.expand(line);
        let words: Vec<&str> = expanded.split_whitespace().collect();
        let Some((&cmd, args)) = words.split_first() else {
            continue;
        };
        match cmd {
            "echo" => {
                let text = positional(args).join(" ");
                echoes.push(text);
            }
            "set" => {
                if let Some((&name, value)) = args.split_first() {
                    vars.user.insert(name.to_owned(), value.join(" "));
                }
            }
            "dhcp" | "ifconf" | "ifopen" | "sleep" | "prompt" | "imgfree" | "ntp" | "cpuid" => {}
            "chain" | "chainload" => {
                let pos = positional(args);
                let Some(target) = pos.first() else {
                    return fail(echoes, "chain without a URI".to_owned());
                };
                return match resolve(base, target) {
                    Ok(url) => Run {
                        echoes,
                        outcome: Outcome::Chain(url),
                    },
                    Err(e) => fail(echoes, e),
                };
            }
            "kernel" | "imgexec" => {
                let pos = positional(args);
                let Some((target, cmdline)) = pos.split_first() else {
                    return fail(echoes, format!("{cmd} without a URI"));
                };
                match resolve(base, target) {
                    Ok(url) => {
                        kernel = Some((url, cmdline.iter().map(|s| (*s).to_owned()).collect()));
                    }
                    Err(e) => return fail(echoes, e),
                }
                if cmd == "imgexec" {
                    break;
                }
            }
            "imgargs" => {
                let pos = positional(args);
                if let Some((_, cmdline)) = pos.split_first()
                    && let Some((_, a)) = kernel.as_mut()
                {
                    *a = cmdline.iter().map(|s| (*s).to_owned()).collect();
                }
            }
            "initrd" | "module" | "imgfetch" => {
                let pos = positional(args);
                let Some(target) = pos.first() else {
                    return fail(echoes, format!("{cmd} without a URI"));
                };
                if initrds.len() >= MAX_INITRDS {
                    return fail(echoes, format!("more than {MAX_INITRDS} initrds"));
                }
                match resolve(base, target) {
                    Ok(url) => initrds.push(url),
                    Err(e) => return fail(echoes, e),
                }
            }
            "boot" => break,
            "exit" | "sanboot" | "goto_disk" => {
                return Run {
                    echoes,
                    outcome: Outcome::Exit,
                };
            }
            other => {
                return fail(
                    echoes,
                    format!("{other}: command not supported by the simulated iPXE"),
                );
            }
        }
    }
    match kernel {
        Some((kernel, args)) => Run {
            echoes,
            outcome: Outcome::Boot {
                kernel,
                args,
                initrds,
            },
        },
        // A script that returns without booting: iPXE exits.
        None => Run {
            echoes,
            outcome: Outcome::Exit,
        },
    }
}

/// The Ignition config URL on a kernel command line, if any.
pub(crate) fn ignition_url(args: &[String]) -> Option<&str> {
    args.iter().find_map(|a| {
        a.strip_prefix("ignition.config.url=")
            .or_else(|| a.strip_prefix("flatcar.config.url="))
            .or_else(|| a.strip_prefix("coreos.config.url="))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars {
            mac: [0x00, 0x11, 0x22, 0x33, 0x44, 0x10],
            arch: ClientArch::EfiX64,
            ip: Some(Ipv4Addr::new(172, 24, 213, 2)),
            netmask: None,
            next_server: None,
            hostname: None,
            filename: None,
            user: BTreeMap::new(),
        }
    }

    fn base() -> Url {
        Url::parse("http://127.0.0.1:8080/boot.ipxe").unwrap()
    }

    #[test]
    fn racker_boot_ipxe_chains_to_the_node_script() {
        let mut v = vars();
        let r = run(
            "#!ipxe\nchain /ipxe?mac=${mac:hexhyp}&arch=${buildarch:uristring}\n",
            &base(),
            &mut v,
        );
        assert_eq!(
            r.outcome,
            Outcome::Chain(
                Url::parse("http://127.0.0.1:8080/ipxe?mac=00-11-22-33-44-10&arch=x86_64").unwrap()
            )
        );
    }

    #[test]
    fn node_script_yields_kernel_initrd_and_ignition() {
        let script = "#!ipxe\n\
            kernel http://h:1/assets/flatcar/current/flatcar_production_pxe.vmlinuz initrd=flatcar_production_pxe_image.cpio.gz flatcar.first_boot=1 ignition.config.url=http://h:1/ignition?mac=${mac:hexhyp}&profile=install console=ttyS0,115200n8\n\
            initrd http://h:1/assets/flatcar/current/flatcar_production_pxe_image.cpio.gz\n\
            boot\n";
        let r = run(script, &base(), &mut vars());
        let Outcome::Boot {
            kernel,
            args,
            initrds,
        } = r.outcome
        else {
            panic!("{:?}", r.outcome)
        };
        assert_eq!(
            kernel.path(),
            "/assets/flatcar/current/flatcar_production_pxe.vmlinuz"
        );
        assert_eq!(initrds.len(), 1);
        assert_eq!(
            ignition_url(&args),
            Some("http://h:1/ignition?mac=00-11-22-33-44-10&profile=install")
        );
    }

    #[test]
    fn installed_script_exits_and_echoes() {
        let r = run(
            "#!ipxe\necho racker: 00:11:22:33:44:10 is installed, booting from its local disk\nexit\n",
            &base(),
            &mut vars(),
        );
        assert_eq!(r.outcome, Outcome::Exit);
        assert_eq!(
            r.echoes,
            vec!["racker: 00:11:22:33:44:10 is installed, booting from its local disk"]
        );
        assert_eq!(
            run(
                "#!ipxe\nsanboot --no-describe --drive 0x80\n",
                &base(),
                &mut vars()
            )
            .outcome,
            Outcome::Exit
        );
    }

    #[test]
    fn errors_and_variables() {
        assert!(matches!(
            run("kernel x\n", &base(), &mut vars()).outcome,
            Outcome::Error(_)
        ));
        assert!(matches!(
            run("#!ipxe\ngoto somewhere\n", &base(), &mut vars()).outcome,
            Outcome::Error(_)
        ));
        assert!(matches!(
            run("#!ipxe\nchain tftp://1.2.3.4/x\n", &base(), &mut vars()).outcome,
            Outcome::Error(_)
        ));
        let mut v = vars();
        let r = run(
            "#!ipxe\nset base http://other:9/\nchain ${base}x?u=${uuid}&s=${unknown}&m=${net0/mac}\n",
            &base(),
            &mut v,
        );
        assert_eq!(
            r.outcome,
            Outcome::Chain(
                Url::parse(
                    "http://other:9/x?u=52534953-4d00-0000-0000-001122334410&s=&m=00:11:22:33:44:10"
                )
                .unwrap()
            )
        );
        assert_eq!(v.expand("${mac:uristring}"), "00%3A11%3A22%3A33%3A44%3A10");
        assert_eq!(v.expand("a${unterminated"), "a${unterminated");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_scripts_never_panic(body in "(#!ipxe\n)?[ -~\n\\$\\{\\}:]{0,300}") {
            let _ = run(&body, &base(), &mut vars());
        }
    }
}
