use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{Request, StatusCode};

use super::*;
use crate::http::HttpContent;
use crate::http::metrics::Metrics;
use crate::matchbox::{Catalog, FlatcarBoot};
use crate::report::ReportStore;
use crate::{IgnitionDir, IgnitionSource};

fn mac(i: u8) -> MacAddr {
    MacAddr::new([2, 0, 0, 1, 0, i])
}

fn entry(i: u8, host: &str) -> NodeEntry {
    NodeEntry {
        mac: mac(i),
        hostname: Some(host.to_owned()),
        ip: Some(Ipv4Addr::new(10, 0, 0, 10 + i)),
        role: Some("worker".to_owned()),
    }
}

fn report(i: u8, stage: Stage, at: u64) -> Report {
    Report {
        mac: mac(i),
        stage,
        reason: (stage == Stage::Failed).then(|| "disk error".to_owned()),
        first_unix: at,
        updated_unix: at,
        generation: None,
    }
}

#[test]
fn without_a_bootstrap_state_follows_the_reports() {
    // Plan order is by address, not by the order of the entries.
    let plan = RackPlan {
        nodes: vec![entry(3, "c"), entry(1, "a"), entry(2, "b")],
        reservations: vec![],
    };
    let reports = [report(1, Stage::Up, 50), report(3, Stage::Failed, 60)];
    let view = rack_view(&plan, &reports, None, 100);
    assert!(!view.bootstrap);
    assert_eq!(view.schema_version, SCHEMA_VERSION);
    let got: Vec<_> = view
        .nodes
        .iter()
        .map(|n| {
            (
                n.slot,
                n.hostname.as_deref().unwrap(),
                n.state.as_str(),
                n.step,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, "a", "os-up", 4),
            (2, "b", "waiting", 1),
            (3, "c", "failed", 2)
        ]
    );
    assert_eq!(view.nodes[2].reason.as_deref(), Some("disk error"));
    assert_eq!(view.nodes[0].power, None);
    assert_eq!(
        view.nodes[0].last_event,
        Some(LastEvent {
            unix: 50,
            text: "installer reported up".into()
        })
    );
    assert_eq!(view.nodes[1].last_event, None);
}

#[test]
fn bootstrap_status_gives_state_power_and_excluded_nodes() {
    let plan = RackPlan {
        nodes: vec![entry(1, "a")],
        // Node 2 is excluded: not booted, but reserved and in the status.
        reservations: vec![Reservation {
            mac: mac(2),
            ip: Ipv4Addr::new(10, 0, 0, 12),
            hostname: Some("b".into()),
        }],
    };
    let mut status = RackStatus::new(Some("flatcar".into()), 90);
    let mut a = NodeStatusEntry::new("installed", "installed", 5, 6);
    a.power = Some("on".into());
    a.updated_unix = 70;
    status.nodes.insert(mac(1), a);
    let mut b = NodeStatusEntry::new("excluded", "planned", 1, 6);
    b.bmc_error = Some("timeout".into());
    b.updated_unix = 20;
    status.nodes.insert(mac(2), b);
    // The installer's report is older than the bootstrap's transition.
    let view = rack_view(
        &plan,
        &[report(1, Stage::Installed, 65)],
        Some(&status),
        100,
    );
    assert!(view.bootstrap);
    assert_eq!(view.provisioned.as_deref(), Some("flatcar"));
    assert_eq!(view.nodes.len(), 2);
    let (n1, n2) = (&view.nodes[0], &view.nodes[1]);
    assert_eq!((n1.state.as_str(), n1.step, n1.steps), ("installed", 5, 6));
    assert_eq!(n1.power.as_deref(), Some("on"));
    assert_eq!(n1.report, Some("installed"));
    assert_eq!(n1.last_event.as_ref().unwrap().text, "bootstrap: installed");
    assert_eq!(n2.ip, Some(Ipv4Addr::new(10, 0, 0, 12)));
    assert_eq!(n2.hostname.as_deref(), Some("b"));
    assert_eq!(n2.state, "excluded");
    assert_eq!(n2.bmc_error.as_deref(), Some("timeout"));
}

#[test]
fn status_file_round_trips_and_bad_files_read_as_none() {
    let dir = tempfile::tempdir().unwrap();
    let source = RackStatusFile::in_state_dir(dir.path());
    assert_eq!(source.status(), None);
    let mut status = RackStatus::new(Some("lokomotive".into()), 1);
    status
        .nodes
        .insert(mac(1), NodeStatusEntry::new("joined", "joined", 7, 7));
    RackStatusFile::write(dir.path(), &status).unwrap();
    assert_eq!(source.status(), Some(status));
    std::fs::write(RackStatusFile::path(dir.path()), b"{not json").unwrap();
    assert_eq!(source.status(), None);
}

async fn get(router: &axum::Router, path: &str) -> (StatusCode, String, String) {
    let req = Request::get(path).body(Body::empty()).unwrap();
    let resp = tower_service::Service::call(&mut router.clone(), req)
        .await
        .unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, ctype, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn api_rack_serves_the_plan_reports_and_status_file_live() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = vec![entry(1, "a"), entry(2, "b")];
    let catalog = Catalog::flatcar(&nodes, &FlatcarBoot::new("http://10.0.0.1:8080"));
    let reports = ReportStore::open(dir.path()).unwrap();
    let ignition: Arc<dyn IgnitionSource> = Arc::new(IgnitionDir::in_state_dir(dir.path()));
    let router = HttpContent::new(
        catalog,
        reports.clone(),
        ignition,
        &dir.path().join("assets"),
        Arc::new(Metrics::default()),
    )
    .with_rack_view(
        RackPlan {
            nodes,
            reservations: vec![],
        },
        Arc::new(RackStatusFile::in_state_dir(dir.path())),
    )
    .router();

    let (code, ctype, page) = get(&router, "/").await;
    assert_eq!(code, StatusCode::OK);
    assert!(ctype.starts_with("text/html"), "{ctype}");
    assert!(page.contains("/rackview.js") && page.contains("viewport"));
    for (path, kind) in [
        ("/rackview.js", "text/javascript"),
        ("/rackview.css", "text/css"),
    ] {
        let (code, ctype, body) = get(&router, path).await;
        assert_eq!(code, StatusCode::OK, "{path}");
        assert!(ctype.starts_with(kind), "{path}: {ctype}");
        assert!(!body.is_empty());
    }
    // Nothing refers to another host (no CDN).
    assert!(!page.contains("https://") && !PAGE_JS.contains("https://"));

    let json = |body: &str| serde_json::from_str::<serde_json::Value>(body).unwrap();
    let (code, ctype, body) = get(&router, "/api/rack").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(ctype, "application/json");
    let v = json(&body);
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["bootstrap"], false);
    assert_eq!(v["nodes"][0]["state"], "waiting");
    assert_eq!(v["nodes"][0]["mac"], mac(1).to_string());
    assert_eq!(v["nodes"][0]["ip"], "10.0.0.11");
    assert_eq!(v["nodes"][1]["hostname"], "b");

    // A report and then a bootstrap status show up on the next request.
    reports
        .record(
            mac(2),
            Stage::Installing,
            None,
            UNIX_EPOCH + Duration::from_secs(10),
        )
        .unwrap();
    let v = json(&get(&router, "/api/rack").await.2);
    assert_eq!(v["nodes"][1]["state"], "installing");
    assert_eq!(v["nodes"][1]["report"], "installing");
    assert_eq!(
        v["nodes"][1]["last_event"]["text"],
        "installer reported installing"
    );

    let mut status = RackStatus::new(Some("flatcar".into()), 20);
    let mut e = NodeStatusEntry::new("pxe-requested", "pxe-requested", 3, 6);
    e.power = Some("on".into());
    status.nodes.insert(mac(1), e);
    RackStatusFile::write(dir.path(), &status).unwrap();
    let v = json(&get(&router, "/api/rack").await.2);
    assert_eq!(v["bootstrap"], true);
    assert_eq!(v["provisioned"], "flatcar");
    assert_eq!(v["nodes"][0]["state"], "pxe-requested");
    assert_eq!(v["nodes"][0]["power"], "on");
    assert_eq!(v["nodes"][0]["step"], 3);
    // A node the bootstrap does not list keeps its report-derived state.
    assert_eq!(v["nodes"][1]["state"], "installing");
}
