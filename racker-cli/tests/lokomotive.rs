//! Lokomotive mode end to end on the simulated rack: a fake `lokoctl` that
//! checks the files it is given and, on `cluster apply`, writes a
//! kubeconfig where Lokomotive does (`<asset_dir>/cluster-assets/auth/`);
//! a fake Kubernetes API on HTTPS that demands the kubeconfig's client
//! certificate and lets nodes become Ready one list at a time. Joins must
//! come from that API.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use assert_cmd::Command;
use base64::Engine as _;
use predicates::prelude::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// One Kubernetes node the fake API will list.
#[derive(Clone)]
struct FakeNode {
    name: String,
    internal_ip: Option<String>,
}

/// The fake API server (HTTPS with client-certificate authentication).
struct FakeApi {
    addr: SocketAddr,
    ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
    /// Authenticated node lists served.
    lists: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

impl FakeApi {
    /// List `k` of `nodes`' first `k` entries Ready (k = lists so far, from
    /// 1); the rest NotReady. Nodes in `never` never turn Ready.
    fn start(nodes: Vec<FakeNode>, never: Vec<String>) -> FakeApi {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "fake-kubernetes-ca");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let server_cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&server_key, &ca_cert, &ca_key)
            .unwrap();
        let client_key = KeyPair::generate().unwrap();
        let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
        client
            .distinguished_name
            .push(DnType::CommonName, "kubernetes-admin");
        let client_cert = client.signed_by(&client_key, &ca_cert, &ca_key).unwrap();

        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca_cert.der().clone()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
            .build()
            .unwrap();
        let config = rustls::ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![server_cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let lists = Arc::new(AtomicUsize::new(0));
        let served = lists.clone();
        runtime.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let (nodes, never, served) = (nodes.clone(), never.clone(), served.clone());
                tokio::spawn(async move {
                    // A client without the certificate fails the handshake.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&request);
                    let (status, body) = if head.starts_with("GET /api/v1/nodes ") {
                        let k = served.fetch_add(1, Ordering::SeqCst) + 1;
                        ("200 OK", node_list(&nodes, &never, k))
                    } else {
                        ("404 Not Found", "{}".to_owned())
                    };
                    let response = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(response.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        FakeApi {
            addr,
            ca_pem: ca_cert.pem(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
            lists,
            _runtime: runtime,
        }
    }

    /// A kubeconfig for this server, as Lokomotive writes it (embedded
    /// base64 data).
    fn kubeconfig(&self) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: lokomotive
  cluster:
    server: https://{addr}
    certificate-authority-data: {ca}
contexts:
- name: lokomotive-admin@lokomotive
  context:
    cluster: lokomotive
    user: lokomotive-admin
current-context: lokomotive-admin@lokomotive
users:
- name: lokomotive-admin
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
",
            addr = self.addr,
            ca = b64(&self.ca_pem),
            cert = b64(&self.client_cert_pem),
            key = b64(&self.client_key_pem),
        )
    }
}

fn node_list(nodes: &[FakeNode], never: &[String], k: usize) -> String {
    let items: Vec<serde_json::Value> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let ready = i < k && !never.contains(&n.name);
            let mut addresses = vec![serde_json::json!({"type": "Hostname", "address": n.name})];
            if let Some(ip) = &n.internal_ip {
                addresses.push(serde_json::json!({"type": "InternalIP", "address": ip}));
            }
            serde_json::json!({
                "metadata": {"name": n.name},
                "status": {
                    "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
                    "addresses": addresses,
                }
            })
        })
        .collect();
    serde_json::json!({"kind": "NodeList", "apiVersion": "v1", "items": items}).to_string()
}

/// The demo's Lokomotive nodes: three controllers the API names like
/// Lokomotive does (`<host>.<domain>`), and a worker it knows only by its
/// internal address.
fn demo_cluster_nodes() -> Vec<FakeNode> {
    let mut nodes: Vec<FakeNode> = (0..3)
        .map(|i| FakeNode {
            name: format!("lokomotive-controller-{i}.k8s.localdomain"),
            internal_ip: None,
        })
        .collect();
    nodes.push(FakeNode {
        name: "ip-172-24-213-5".to_owned(),
        internal_ip: Some("172.24.213.5".to_owned()),
    });
    nodes
}

/// A fake `lokoctl`: logs its calls, checks its working directory holds
/// the rendered files, writes `kubeconfig` where Lokomotive does on
/// `cluster apply`, exits 1 on `fail_step`. On `cluster apply` it also
/// records what lokoctl would rely on: the keys in its ssh-agent
/// (`agent-keys`), the demo rack's hosts file (`hosts-at-apply`) and the
/// matchbox client certificate the rendered config names (`cert-at-apply`).
fn fake_lokoctl(dir: &Path, kubeconfig: &str, fail_step: &str) -> PathBuf {
    let path = dir.join("lokoctl");
    let calls = dir.join("lokoctl-calls");
    let source = dir.join("kubeconfig.yaml");
    std::fs::write(&source, kubeconfig).unwrap();
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\n\
             echo \"$*\" >> '{calls}'\n\
             test -s baremetal.lokocfg || {{ echo 'no baremetal.lokocfg' >&2; exit 3; }}\n\
             grep -q controller_macs lokocfg.vars || {{ echo 'bad lokocfg.vars' >&2; exit 3; }}\n\
             echo \"fake lokoctl output for $1\"\n\
             [ \"$1\" = '{fail_step}' ] && exit 1\n\
             if [ \"$1\" = cluster ]; then\n\
               ssh-add -L > '{seen}/agent-keys' 2>&1 || true\n\
               cp '{hosts}' '{seen}/hosts-at-apply' || true\n\
               cert=$(sed -n 's/^ *matchbox_client_cert_path *= *\"\\(.*\\)\"$/\\1/p' baremetal.lokocfg)\n\
               test -s \"$cert\" && echo \"$cert\" > '{seen}/cert-at-apply'\n\
               assets=$(sed -n 's/^asset_dir *= *\"\\(.*\\)\"$/\\1/p' lokocfg.vars)\n\
               mkdir -p \"$assets/cluster-assets/auth\" && cp '{source}' \"$assets/cluster-assets/auth/kubeconfig\"\n\
             fi\n\
             exit 0\n",
            calls = calls.display(),
            source = source.display(),
            seen = dir.display(),
            hosts = dir.join("rack/hosts").display(),
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The fake API over the demo's cluster nodes (the worker never Ready when
/// `worker_never_ready`), a temporary directory and a fake lokoctl in it
/// that fails `fail_step`.
fn lab(worker_never_ready: bool, fail_step: &str) -> (FakeApi, tempfile::TempDir, PathBuf) {
    let never = if worker_never_ready {
        vec!["ip-172-24-213-5".to_owned()]
    } else {
        Vec::new()
    };
    let api = FakeApi::start(demo_cluster_nodes(), never);
    let dir = tempfile::tempdir().unwrap();
    let lokoctl = fake_lokoctl(dir.path(), &api.kubeconfig(), fail_step);
    (api, dir, lokoctl)
}

fn demo(dir: &Path, lokoctl: &Path) -> Command {
    let mut cmd = Command::cargo_bin("racker").unwrap();
    cmd.env_clear()
        .env("RACKER_LOKOCTL", lokoctl)
        .arg("demo")
        .arg("--dir")
        .arg(dir)
        .args(["--install-delay-ms", "0", "--provision", "lokomotive"]);
    cmd
}

fn json(path: impl AsRef<Path>) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path.as_ref()).unwrap()).unwrap()
}

#[test]
fn joins_are_followed_through_the_kubernetes_api() {
    let (api, dir, lokoctl) = lab(false, "none");
    let out = demo(&dir.path().join("rack"), &lokoctl)
        .args(["--nodes", "4"])
        .output()
        .unwrap();
    // Progress is on stderr.
    let stdout = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}");
    for expected in [
        "✓ Kubernetes bring-up (4/4)",
        // One node becomes Ready per list: the counter goes up one by one.
        "Cluster health check (1/4)",
        "Cluster health check (2/4)",
        "Cluster health check (3/4)",
        "joined as lokomotive-controller-0.k8s.localdomain",
        "joined as ip-172-24-213-5",
        "✓ Cluster health check (4/4)",
        "✓ Lokomotive component installation (1/1)",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} missing in\n{stdout}"
        );
    }
    assert!(api.lists.load(Ordering::SeqCst) >= 4);
    let calls = std::fs::read_to_string(dir.path().join("lokoctl-calls")).unwrap();
    assert_eq!(
        calls,
        "cluster apply --verbose --skip-components --confirm\nhealth\ncomponent apply\n"
    );
    let state_dir = dir.path().join("rack/state");
    let state = json(state_dir.join("bootstrap.json"));
    for (mac, n) in state["nodes"].as_object().unwrap() {
        assert_eq!(n["stage"], "joined", "{mac}: {n}");
    }
    let kubeconfig = state["kubeconfig"].as_str().unwrap();
    assert!(
        kubeconfig.ends_with("cluster/lokoctl-assets/cluster-assets/auth/kubeconfig"),
        "{kubeconfig}"
    );
    // lokoctl's output is captured in the attempt log.
    let logs = state_dir.join("cluster/logs");
    let log = std::fs::read_dir(&logs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(
        std::fs::read_to_string(log)
            .unwrap()
            .contains("fake lokoctl output for cluster")
    );

    // lokoctl's environment (docs/lokomotive.md): the management key in an
    // ssh-agent that racker started and stopped again, ...
    let public_key = std::fs::read_to_string(state_dir.join("ssh/id_ed25519.pub")).unwrap();
    let key_body: Vec<&str> = public_key.split_whitespace().take(2).collect();
    let agent_keys = std::fs::read_to_string(dir.path().join("agent-keys")).unwrap();
    assert!(
        agent_keys.contains(&key_body.join(" ")),
        "agent keys: {agent_keys}\nmanagement key: {public_key}"
    );
    let agents: Vec<_> = std::fs::read_dir(state_dir.join("ssh"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("agent."))
        .collect();
    assert!(agents.is_empty(), "agent socket left behind: {agents:?}");
    // ... the cluster's names in the hosts file before lokoctl ran, ...
    let hosts = std::fs::read_to_string(dir.path().join("hosts-at-apply")).unwrap();
    for name in [
        "lokomotive.k8s.localdomain",
        "lokomotive-etcd0.k8s.localdomain",
        "lokomotive-controller-0.k8s.localdomain",
    ] {
        assert!(hosts.contains(name), "{name} missing in\n{hosts}");
    }
    assert!(hosts.contains(racker_lokomotive::HOSTS_BEGIN), "{hosts}");
    // ... the matchbox gRPC API's client certificate where the rendered
    // config points, the API started by the bootstrap itself, ...
    let cert = std::fs::read_to_string(dir.path().join("cert-at-apply")).unwrap();
    assert!(
        cert.trim().ends_with("state/matchbox-client/client.crt"),
        "{cert}"
    );
    assert!(
        stdout.contains("matchbox gRPC API (mutual TLS) on 127.0.0.1:"),
        "{stdout}"
    );
    // ... and kubectl's kubeconfig linked to the cluster's.
    let link = dir.path().join("rack/kube/config");
    assert_eq!(
        std::fs::canonicalize(&link).unwrap(),
        std::fs::canonicalize(kubeconfig).unwrap()
    );
    // Every node lokoctl installed boots from its disk: persistent EFI
    // disk boot set over IPMI LAN after the bring-up.
    let sim = json(state_dir.join("sim-status.json"));
    let nodes = sim["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 4, "{sim}");
    for node in nodes {
        assert_eq!(node["boot_device"], "disk", "{node}");
        assert_eq!(node["persistent"], true, "{node}");
        assert_eq!(node["efi"], true, "{node}");
    }

    // `racker status` asks the same API.
    let mut status = Command::cargo_bin("racker").unwrap();
    let out = status
        .env_clear()
        .arg("--oem-dir")
        .arg(dir.path().join("rack/oem"))
        .arg("--state-dir")
        .arg(&state_dir)
        .arg("--sys-class-net")
        .arg(dir.path().join("rack/net"))
        .args(["status", "--output", "json", "--ipmi-timeout", "0.2"])
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["provisioned"], "lokomotive", "{status}");
    assert_eq!(status["kubernetes_api"], true, "{status}");
    for n in status["nodes"].as_array().unwrap() {
        assert_eq!(n["joined"], true, "{n}");
    }
}

#[test]
fn a_node_that_never_joins_fails_with_guidance() {
    let (_api, dir, lokoctl) = lab(true, "none");
    demo(&dir.path().join("rack"), &lokoctl)
        .args(["--nodes", "4", "--join-timeout", "6s"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("× Cluster health check (3/4)"))
        .stderr(predicate::str::contains(
            "02:00:00:01:00:03 lokomotive-worker-0.k8s.localdomain: not a Ready Kubernetes node within 6s",
        ))
        .stderr(predicate::str::contains("kubectl --kubeconfig"));
    let state = json(dir.path().join("rack/state/bootstrap.json"));
    assert_eq!(state["nodes"]["02:00:00:01:00:03"]["state"], "failed");
    assert_eq!(state["nodes"]["02:00:00:01:00:00"]["stage"], "joined");
    // No component installation after a failed join.
    let calls = std::fs::read_to_string(dir.path().join("lokoctl-calls")).unwrap();
    assert!(
        !calls.lines().any(|l| l.starts_with("component")),
        "{calls}"
    );
}

/// `--on-failure exclude`: the node that never joins leaves the rendered
/// configuration and the cluster goes on to its components; `retry` runs
/// `lokoctl cluster apply` again before giving up.
#[test]
fn a_node_that_never_joins_is_excluded_or_retried() {
    let (_api, dir, lokoctl) = lab(true, "none");
    demo(&dir.path().join("rack"), &lokoctl)
        .args([
            "--nodes",
            "4",
            "--join-timeout",
            "6s",
            "--on-failure",
            "exclude",
        ])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "Excluded 1 node(s) from the cluster: 02:00:00:01:00:03",
        ))
        .stderr(predicate::str::contains(
            "✓ Lokomotive component installation (1/1)",
        ));
    let state = json(dir.path().join("rack/state/bootstrap.json"));
    assert_eq!(state["nodes"]["02:00:00:01:00:03"]["state"], "excluded");
    let vars = std::fs::read_to_string(dir.path().join("rack/state/cluster/lokocfg.vars")).unwrap();
    assert!(!vars.contains("02:00:00:01:00:03"), "{vars}");
    assert!(vars.contains("02:00:00:01:00:02"), "{vars}");
    // The excluded worker's name left the hosts file; the others stayed.
    let hosts = std::fs::read_to_string(dir.path().join("hosts-at-apply")).unwrap();
    assert!(hosts.contains("172.24.213.5 "), "{hosts}");
    let hosts = std::fs::read_to_string(dir.path().join("rack/hosts")).unwrap();
    assert!(!hosts.contains("172.24.213.5 "), "{hosts}");
    assert!(
        hosts.contains("lokomotive-controller-0.k8s.localdomain"),
        "{hosts}"
    );

    let (_api, dir, lokoctl) = lab(true, "none");
    demo(&dir.path().join("rack"), &lokoctl)
        .args([
            "--nodes",
            "4",
            "--join-timeout",
            "3s",
            "--on-failure",
            "retry",
        ])
        .args(["--retries", "1"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "Retrying 1 node(s) (retry 1 of 1): lokoctl cluster apply again",
        ));
    let calls = std::fs::read_to_string(dir.path().join("lokoctl-calls")).unwrap();
    assert_eq!(
        calls
            .lines()
            .filter(|l| l.starts_with("cluster apply"))
            .count(),
        2,
        "{calls}"
    );
    let state = json(dir.path().join("rack/state/bootstrap.json"));
    assert_eq!(state["nodes"]["02:00:00:01:00:03"]["state"], "failed");
    assert_eq!(state["nodes"]["02:00:00:01:00:00"]["stage"], "joined");
}

#[test]
fn failing_cluster_apply_is_reported() {
    let (api, dir, lokoctl) = lab(false, "cluster");
    demo(&dir.path().join("rack"), &lokoctl)
        .args(["--nodes", "2"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("× Kubernetes bring-up (0/2)"))
        .stderr(predicate::str::contains("lokoctl cluster apply failed"));
    let state = json(dir.path().join("rack/state/bootstrap.json"));
    assert_eq!(state["nodes"]["02:00:00:01:00:01"]["state"], "failed");
    assert_eq!(api.lists.load(Ordering::SeqCst), 0);
}

/// The fake API refuses a client without the kubeconfig's certificate (so
/// the joins above really went through the client certificate).
#[test]
fn the_fake_api_demands_the_client_certificate() {
    let api = FakeApi::start(demo_cluster_nodes(), Vec::new());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ca = reqwest::Certificate::from_pem(api.ca_pem.as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let url = format!("https://{}/api/v1/nodes", api.addr);
    let result = rt.block_on(async { client.get(&url).send().await });
    assert!(result.is_err(), "{result:?}");
    assert_eq!(api.lists.load(Ordering::SeqCst), 0);
}

/// Without lokoctl nothing is installed: the check comes first.
#[test]
fn missing_lokoctl_stops_before_anything_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    demo(
        &dir.path().join("rack"),
        &dir.path().join("no-such-lokoctl"),
    )
    .args(["--nodes", "2"])
    .assert()
    .code(1)
    .stderr(predicate::str::contains("RACKER_LOKOCTL="))
    .stderr(predicate::str::contains("is not a file"));
    assert!(!dir.path().join("rack/state/bootstrap.json").exists());
}
