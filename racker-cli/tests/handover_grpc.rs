//! After a Lokomotive bootstrap the handed-over `racker-netboot.service`
//! keeps the matchbox gRPC API (docs/lokomotive.md, "Day 2"): the handover
//! writes `<state-dir>/netboot/service.env` with `RACKER_MATCHBOX_GRPC`,
//! the unit reads it (`EnvironmentFile=`), and `racker netboot serve` with
//! that environment answers a real gRPC call (curl over HTTP/2 with the
//! client certificate, as terraform-provider-matchbox connects); without
//! it (a Flatcar rack) nothing listens there.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

const NODES_CSV: &str = "\
Primary MAC address, BMC MAC address, Secondary MAC address, Node Type, Comments
02:11:22:33:66:00, 02:11:22:33:66:01, 02:11:22:33:66:30, red, mgmt node
02:11:22:33:66:10, 02:11:22:33:66:11, 02:11:22:33:66:40, red, node
";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `KEY=VALUE` settings of an environment file, as systemd reads them
/// (comments and blank lines skipped).
fn env_file(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// `racker netboot serve` (no DHCP) with `env`, until it prints `until`.
fn serve(dir: &Path, env: &[(String, String)], until: &str) -> (common::Killed, Vec<String>) {
    let mut cmd = common::racker_in(dir);
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    common::netboot_serve(cmd, &dir.join("boot"), until)
}

/// `rpcpb.Profiles/ProfileList` over HTTP/2 + mutual TLS with curl: the
/// response headers and trailers.
fn profile_list(state: &Path, addr: SocketAddr) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let headers = dir.path().join("headers");
    let out = Command::new("curl")
        .args(common::grpc_profile_list_args(
            state,
            &addr.to_string(),
            &dir.path().join("frame"),
            &headers,
            10,
        ))
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(std::fs::read_to_string(&headers).unwrap_or_default())
}

#[test]
fn lokomotive_handover_keeps_the_grpc_api_in_the_service_environment() {
    let test = "lokomotive_handover_keeps_the_grpc_api_in_the_service_environment";
    if racker_testsupport::require_tool(test, "curl").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (oem, state) = (dir.path().join("oem"), dir.path().join("state"));
    std::fs::create_dir_all(&oem).unwrap();
    std::fs::write(oem.join("nodes.csv"), NODES_CSV).unwrap();
    let eth1 = dir.path().join("net/eth1");
    std::fs::create_dir_all(&eth1).unwrap();
    std::fs::write(eth1.join("address"), "02:11:22:33:66:30\n").unwrap();
    let boot = dir.path().join("boot");
    std::fs::create_dir_all(&boot).unwrap();
    for f in ["undionly.kpxe", "ipxe.efi", "ipxe-arm64.efi"] {
        std::fs::write(boot.join(f), b"iPXE").unwrap();
    }

    // The unit reads the file the handover writes.
    let unit = std::fs::read_to_string(repo().join("installer/racker-netboot.service")).unwrap();
    let read = racker_bootstrap::service::netboot_env_path(Path::new("/opt/racker-state"));
    assert!(
        unit.lines()
            .any(|l| l == format!("EnvironmentFile=-{}", read.display())),
        "{unit}"
    );
    assert!(unit.contains("Environment=RACKER_STATE_DIR=/opt/racker-state"));

    // What a Lokomotive handover writes (the bootstrap's gRPC address).
    let grpc = racker_testsupport::free_tcp();
    let (path, changed) = racker_bootstrap::service::write_netboot_env(&state, Some(grpc)).unwrap();
    assert!(changed);
    let env = env_file(&path);
    assert_eq!(
        env,
        [("RACKER_MATCHBOX_GRPC".to_owned(), grpc.to_string())],
        "{path:?}"
    );

    // The service started with that environment answers gRPC.
    let (server, log) = serve(
        dir.path(),
        &env,
        &format!("matchbox gRPC API (mutual TLS) listening on {grpc}"),
    );
    let headers = profile_list(&state, grpc).unwrap_or_else(|e| panic!("{e}\n{log:?}"));
    assert!(headers.starts_with("HTTP/2 200"), "{headers}");
    assert!(headers.contains("grpc-status: 0"), "{headers}");
    drop(server);

    // A Flatcar rack's handover turns it off again: nothing listens.
    racker_bootstrap::service::write_netboot_env(&state, None).unwrap();
    let env = env_file(&path);
    assert!(env.is_empty(), "{env:?}");
    let (server, log) = serve(dir.path(), &env, "DHCP disabled");
    assert!(
        !log.iter().any(|l| l.contains("matchbox gRPC API")),
        "{log:?}"
    );
    assert!(profile_list(&state, grpc).is_err());
    drop(server);
}
