//! HTTP boot content against curl on loopback; `/metrics` checked with a
//! Prometheus text-format parser.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use racker_inventory::MacAddr;
use racker_netboot::IgnitionDir;
use racker_netboot::http::metrics::Metrics;
use racker_netboot::http::{HttpContent, HttpServer};
use racker_netboot::matchbox::{Catalog, FlatcarBoot, NodeEntry};
use racker_netboot::report::ReportStore;
use racker_testsupport::require_tool;
use tokio::process::Command;

const SECRET: &[u8] = b"TOP-SECRET-OUTSIDE-THE-ASSETS";
const NODE: &str = "00:11:22:33:44:10";
const OTHER: &str = "00:11:22:33:44:20";

struct Fixture {
    _dir: tempfile::TempDir,
    state: PathBuf,
    base: String,
    kernel: Vec<u8>,
    curl: PathBuf,
}

fn pseudo_random(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

async fn start(test: &str) -> Option<Fixture> {
    let curl = require_tool(test, "curl")?;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let version = state.join("assets/flatcar/4081.2.0");
    std::fs::create_dir_all(&version).unwrap();
    let kernel = pseudo_random(6 * 1024 * 1024 + 5, 11);
    std::fs::write(version.join("flatcar_production_pxe.vmlinuz"), &kernel).unwrap();
    std::fs::write(
        version.join("flatcar_production_pxe_image.cpio.gz"),
        b"initrd",
    )
    .unwrap();
    std::os::unix::fs::symlink("4081.2.0", state.join("assets/flatcar/current")).unwrap();
    std::fs::write(dir.path().join("secret"), SECRET).unwrap();
    std::os::unix::fs::symlink("../../secret", state.join("assets/out")).unwrap();
    let ign = IgnitionDir::in_state_dir(&state);
    let node: MacAddr = NODE.parse().unwrap();
    let p = ign.path(node, racker_netboot::IgnitionProfile::Install);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, br#"{"ignition":{"version":"3.4.0"},"stage":"install"}"#).unwrap();
    std::fs::write(
        ign.path(node, racker_netboot::IgnitionProfile::Os),
        br#"{"ignition":{"version":"3.4.0"},"stage":"os"}"#,
    )
    .unwrap();

    let listener_addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    // The base URL must be known before binding; bind first, then build.
    let probe = tokio::net::TcpListener::bind(listener_addr).await.unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let base = format!("http://{addr}");
    let nodes = vec![
        NodeEntry {
            mac: node,
            hostname: Some("node-0".into()),
            ip: Some(Ipv4Addr::new(172, 24, 213, 2)),
            role: Some("flatcar".into()),
        },
        NodeEntry {
            mac: OTHER.parse().unwrap(),
            hostname: Some("node-1".into()),
            ip: Some(Ipv4Addr::new(172, 24, 213, 3)),
            role: None,
        },
    ];
    let catalog = Catalog::flatcar(&nodes, &FlatcarBoot::new(&base));
    let content = HttpContent::new(
        catalog,
        ReportStore::open(&state).unwrap(),
        Arc::new(ign),
        &state.join("assets"),
        Arc::new(Metrics::default()),
    );
    let server = HttpServer::bind(addr, content).await.unwrap();
    tokio::spawn(server.run());
    Some(Fixture {
        _dir: dir,
        state,
        base,
        kernel,
        curl,
    })
}

struct Reply {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Fixture {
    async fn curl(&self, args: &[&str], path: &str) -> Reply {
        let out = Command::new(&self.curl)
            .args(["-sS", "--path-as-is", "-D", "/dev/stderr"])
            .args(args)
            .arg(format!("{}{}", self.base, path))
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "curl {args:?} {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let head = String::from_utf8_lossy(&out.stderr).to_string();
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Reply {
            status,
            headers,
            body: out.stdout,
        }
    }
}

fn text(r: &Reply) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipxe_scripts_ignition_and_reports() {
    let Some(f) = start("http_ipxe").await else {
        return;
    };
    let r = f.curl(&[], "/boot.ipxe").await;
    assert_eq!(r.status, 200);
    assert!(text(&r).starts_with("#!ipxe\nchain /ipxe?mac=${mac:hexhyp}"));
    assert_eq!(r.headers["content-length"], r.body.len().to_string());

    // iPXE sends the hyphenated form.
    let r = f.curl(&[], "/ipxe?mac=00-11-22-33-44-10").await;
    assert_eq!(r.status, 200);
    let script = text(&r);
    assert_eq!(r.headers["content-length"], r.body.len().to_string());
    assert!(script.starts_with("#!ipxe\nkernel "), "{script}");
    for needle in [
        "/assets/flatcar/current/flatcar_production_pxe.vmlinuz",
        "initrd=flatcar_production_pxe_image.cpio.gz",
        "flatcar.first_boot=1",
        &format!("ignition.config.url={}/ignition?mac=", f.base),
        "console=ttyS0,115200n8",
        "flatcar.autologin",
        "\ninitrd ",
        "\nboot\n",
    ] {
        assert!(script.contains(needle), "missing {needle:?} in {script}");
    }

    let r = f.curl(&[], "/ipxe?mac=00:11:22:33:44:99").await;
    assert_eq!(r.status, 404);
    assert!(text(&r).contains("no boot profile for MAC 00:11:22:33:44:99"));
    assert_eq!(r.headers["content-length"], r.body.len().to_string());
    assert_eq!(f.curl(&[], "/ipxe?mac=banana").await.status, 400);

    let r = f.curl(&[], &format!("/ignition?mac={NODE}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/json");
    assert!(text(&r).contains(r#""stage":"install""#));
    let r = f
        .curl(&[], &format!("/ignition?mac={NODE}&profile=os"))
        .await;
    assert!(text(&r).contains(r#""stage":"os""#));
    assert_eq!(
        f.curl(&[], &format!("/ignition?mac={OTHER}")).await.status,
        404
    );

    // The installer reports; the report is durable and idempotent.
    let post = ["-X", "POST"];
    let r = f
        .curl(&post, "/report?mac=00-11-22-33-44-10&stage=installing")
        .await;
    assert_eq!((r.status, text(&r).starts_with("recorded")), (200, true));
    let r = f
        .curl(&post, "/report?mac=00-11-22-33-44-10&stage=installed")
        .await;
    assert!(text(&r).starts_with("recorded"));
    let r = f
        .curl(&post, "/report?mac=00-11-22-33-44-10&stage=installed")
        .await;
    assert!(text(&r).starts_with("unchanged"), "{}", text(&r));
    let r = f
        .curl(
            &["--data-binary", "no disk found"],
            &format!("/report?mac={OTHER}&stage=failed"),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        f.curl(&post, "/report?mac=00:11:22:33:44:99&stage=installed")
            .await
            .status,
        404
    );
    assert_eq!(
        f.curl(&post, &format!("/report?mac={NODE}&stage=bogus"))
            .await
            .status,
        400
    );
    let store = ReportStore::open(&f.state).unwrap();
    assert!(store.is_installed(NODE.parse().unwrap()));
    assert_eq!(
        store.get(OTHER.parse().unwrap()).unwrap().reason.as_deref(),
        Some("no disk found")
    );

    // Installed: exit to disk, and Ignition defaults to the OS profile.
    let r = f.curl(&[], &format!("/ipxe?mac={NODE}")).await;
    assert_eq!(r.status, 200);
    let script = text(&r);
    assert!(
        script.contains("\nexit\n") && !script.contains("kernel"),
        "{script}"
    );
    let r = f.curl(&[], &format!("/ignition?mac={NODE}")).await;
    assert!(text(&r).contains(r#""stage":"os""#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_ranges_head_conditional_and_traversal() {
    let Some(f) = start("http_assets").await else {
        return;
    };
    let path = "/assets/flatcar/current/flatcar_production_pxe.vmlinuz";
    let full = f.curl(&[], path).await;
    assert_eq!(full.status, 200);
    assert_eq!(full.body, f.kernel);
    assert_eq!(full.headers["content-length"], f.kernel.len().to_string());
    assert_eq!(full.headers["accept-ranges"], "bytes");
    let etag = full.headers["etag"].clone();
    let last_modified = full.headers["last-modified"].clone();

    let head = f.curl(&["-I"], path).await;
    assert_eq!(head.status, 200);
    assert!(head.body.starts_with(b"HTTP/1.1 200"));
    assert_eq!(head.headers["content-length"], f.kernel.len().to_string());
    assert_eq!(head.headers["etag"], etag);

    let r = f.curl(&["-r", "100-199"], path).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &f.kernel[100..200]);
    let size = f.kernel.len();
    assert_eq!(r.headers["content-range"], format!("bytes 100-199/{size}"));
    let r = f.curl(&["-r", "-10"], path).await;
    assert_eq!(r.body, &f.kernel[size - 10..]);
    let r = f.curl(&["-r", &format!("{}-", size - 3)], path).await;
    assert_eq!(r.body, &f.kernel[size - 3..]);
    let r = f.curl(&["-r", &format!("{size}-")], path).await;
    assert_eq!(r.status, 416);
    assert_eq!(r.headers["content-range"], format!("bytes */{size}"));

    // Resume a partial download, the way an interrupted client would.
    let r = f.curl(&["-r", "1000000-"], path).await;
    let mut resumed = f.kernel[..1_000_000].to_vec();
    resumed.extend(&r.body);
    assert_eq!(resumed, f.kernel);

    let r = f
        .curl(&["-H", &format!("If-None-Match: {etag}")], path)
        .await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    let r = f
        .curl(
            &["-H", &format!("If-Modified-Since: {last_modified}")],
            path,
        )
        .await;
    assert_eq!(r.status, 304);
    // If-Range with a stale validator: the whole file, not the range.
    let r = f
        .curl(&["-r", "0-9", "-H", "If-Range: \"stale\""], path)
        .await;
    assert_eq!((r.status, r.body.len()), (200, size));

    for bad in [
        "/assets/../secret",
        "/assets/%2e%2e/%2e%2e/secret",
        "/assets/out",
        "/assets/flatcar/../../../secret",
        "/assets/%2Fetc%2Fpasswd",
        "/assets/a%00b",
    ] {
        let r = f.curl(&[], bad).await;
        assert!(
            r.status == 403 || r.status == 404 || r.status == 400,
            "{bad}: {}",
            r.status
        );
        assert!(
            !r.body.windows(SECRET.len()).any(|w| w == SECRET),
            "{bad} leaked"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_curl_downloads_arrive_intact() {
    let Some(f) = start("http_concurrent").await else {
        return;
    };
    let out = f.state.join("dl");
    std::fs::create_dir_all(&out).unwrap();
    let url = format!(
        "{}/assets/flatcar/4081.2.0/flatcar_production_pxe.vmlinuz",
        f.base
    );
    let mut children = Vec::new();
    for i in 0..16 {
        let dest = out.join(format!("k{i}"));
        let child = Command::new(&f.curl)
            .args(["-sS", "-o"])
            .arg(&dest)
            .arg(&url)
            .spawn()
            .unwrap();
        children.push((dest, child));
    }
    for (dest, mut child) in children {
        assert!(child.wait().await.unwrap().success());
        assert!(
            std::fs::read(&dest).unwrap() == f.kernel,
            "{}",
            dest.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_prometheus_text() {
    let Some(f) = start("http_metrics").await else {
        return;
    };
    f.curl(&[], &format!("/ipxe?mac={NODE}")).await;
    f.curl(&[], "/ipxe?mac=00:11:22:33:44:99").await;
    f.curl(
        &["-X", "POST"],
        &format!("/report?mac={OTHER}&stage=installed"),
    )
    .await;
    f.curl(
        &[],
        "/assets/flatcar/current/flatcar_production_pxe_image.cpio.gz",
    )
    .await;
    f.curl(&[], "/assets/../secret").await;
    let r = f.curl(&[], "/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r.headers["content-type"].starts_with("text/plain; version=0.0.4"));
    let body = text(&r);
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
            .unwrap_or_else(|| panic!("{name} {labels:?} missing in\n{body}"))
    };
    assert_eq!(
        value(
            "racker_http_requests_total",
            &[("route", "/ipxe"), ("code", "200")]
        ),
        1.0
    );
    assert_eq!(
        value(
            "racker_http_requests_total",
            &[("route", "/ipxe"), ("code", "404")]
        ),
        1.0
    );
    assert_eq!(value("racker_nodes", &[("stage", "installed")]), 1.0);
    assert_eq!(value("racker_nodes", &[("stage", "planned")]), 1.0);
    assert_eq!(value("racker_http_asset_bytes_sent_total", &[]), 6.0);
    assert_eq!(value("racker_http_refused_total", &[]), 1.0);
    assert_eq!(value("racker_tftp_requests_total", &[]), 0.0);
    assert!(
        scrape
            .docs
            .get("racker_nodes")
            .is_some_and(|d| d.contains("stage"))
    );
}

#[tokio::test]
async fn report_reason_in_the_query_is_capped_like_the_body() {
    let Some(f) = start("report_reason_in_the_query_is_capped_like_the_body").await else {
        return;
    };
    let post = ["-X", "POST"];
    let long = "r".repeat(12_000);
    let r = f
        .curl(
            &post,
            &format!("/report?mac={OTHER}&stage=failed&reason={long}"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", text(&r));
    let store = ReportStore::open(&f.state).unwrap();
    let kept = store.get(OTHER.parse().unwrap()).unwrap().reason.unwrap();
    assert_eq!(kept.len(), 4096);
    // A 60 KB query does not even fit the request-head limit.
    let huge = "r".repeat(60_000);
    let r = f
        .curl(
            &post,
            &format!("/report?mac={OTHER}&stage=failed&reason={huge}"),
        )
        .await;
    assert_eq!(r.status, 431);
    let r = f
        .curl(&post, &format!("/report?mac={NODE}&stage=bogus"))
        .await;
    assert_eq!(r.status, 400);
    assert!(
        text(&r).contains("installing, installed, up or failed"),
        "{}",
        text(&r)
    );
}
