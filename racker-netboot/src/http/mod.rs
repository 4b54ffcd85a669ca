//! The HTTP side of netboot: iPXE scripts, Ignition, assets, installer
//! reports and Prometheus metrics (axum).
//!
//! Routes:
//! - `GET /boot.ipxe`: chains to `/ipxe?mac=${mac:hexhyp}`.
//! - `GET /ipxe?mac=..` (plus any matchbox labels): the node's script;
//!   an installed node gets a script that exits to its disk; unknown → 404.
//! - `GET /ignition?mac=..[&profile=install|os]`: the node's Ignition JSON
//!   (profile defaults to `os` once installed, else `install`).
//! - `GET|HEAD /assets/<path>`: files under the assets directory.
//! - `POST /report?mac=..&stage=installing|installed|up|failed&token=..[&reason=..]`
//!   (the token is checked when a report key is set, the client's address
//!   when report sources are set: 403 otherwise).
//! - `GET /metrics`: Prometheus text format.
//! - `GET /api/health`: `{"service":"racker-netboot","pid":N}`.
//! - `GET /api/events[?mac=..]`: the event trail ([`crate::trail`]) of one
//!   node (a JSON array) or of every node (an object by MAC).
//! - `GET /`: the rack view page (with `/rackview.css`, `/rackview.js`);
//!   `GET /api/rack`: its data as JSON ([`rackview`]).

pub mod files;
mod hook;
pub mod metrics;
pub mod rackview;
mod serve;

pub use hook::{BootHook, HOOK_ENDPOINTS, HookReply};
pub use serve::{HttpLimits, raise_nofile_limit};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use axum::routing::{get, post};
use racker_inventory::MacAddr;
use tokio::net::TcpListener;

use crate::matchbox::{Catalog, ipxe_script};
use crate::profile::{ContentError, IgnitionProfile, IgnitionSource};
use crate::report::{ReportKey, ReportSources, ReportStore, Stage};
use crate::tftp::jail::{Jail, JailError};
use crate::tftp::server::BootFiles;
use crate::trail::{EventTrail, TrailKind};
use metrics::Metrics;

/// Everything the HTTP server serves.
#[derive(Debug, Clone)]
pub struct HttpContent {
    catalog: Arc<Catalog>,
    reports: ReportStore,
    ignition: Arc<dyn IgnitionSource>,
    assets: PathBuf,
    boot_files: Option<BootFiles>,
    metrics: Arc<Metrics>,
    hook: Option<Arc<dyn BootHook>>,
    report_key: Option<ReportKey>,
    report_sources: Option<ReportSources>,
    trail: Option<EventTrail>,
    rack_plan: Arc<rackview::RackPlan>,
    rack_status: Option<Arc<dyn rackview::RackStatusSource>>,
}

impl HttpContent {
    /// Content from a catalog, the report store and an Ignition source.
    /// `assets_dir` (usually `<state-dir>/assets`) is served under
    /// `/assets/` (it may appear later, e.g. after `fetch-assets`).
    pub fn new(
        catalog: Catalog,
        reports: ReportStore,
        ignition: Arc<dyn IgnitionSource>,
        assets_dir: &Path,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            catalog: Arc::new(catalog),
            reports,
            ignition,
            assets: assets_dir.to_path_buf(),
            boot_files: None,
            metrics,
            hook: None,
            report_key: None,
            report_sources: None,
            trail: None,
            rack_plan: Arc::default(),
            rack_status: None,
        }
    }

    /// Accept install reports only with the node's token under `key`
    /// (refused: 403, logged, on the node's trail).
    pub fn with_report_key(mut self, key: ReportKey) -> Self {
        self.report_key = Some(key);
        self
    }

    /// Accept a node's install reports only from the addresses `sources`
    /// allows for it (refused: 403, logged with the reason, on the node's
    /// trail).
    pub fn with_report_sources(mut self, sources: ReportSources) -> Self {
        self.report_sources = Some(sources);
        self
    }

    /// Record every request of a known node on `trail` (and serve it at
    /// `/api/events`).
    pub fn with_trail(mut self, trail: EventTrail) -> Self {
        self.trail = Some(trail);
        self
    }

    /// Show these nodes in the rack view (`/`, `/api/rack`), with the
    /// bootstrap's view of them from `status` (see [`rackview`]).
    pub fn with_rack_view(
        mut self,
        plan: rackview::RackPlan,
        status: Arc<dyn rackview::RackStatusSource>,
    ) -> Self {
        self.rack_plan = Arc::new(plan);
        self.rack_status = Some(status);
        self
    }

    /// Also serve the iPXE binaries (and the rest of their directory, the
    /// TFTP root, jailed) over HTTP, for UEFI HTTP boot: `/ipxe.efi` and
    /// `/boot-files/<name>`. The binaries themselves are served even when
    /// they are links leading outside the directory (see [`BootFiles`]).
    pub fn with_boot_files(mut self, files: &BootFiles) -> Self {
        self.boot_files = Some(files.clone());
        self
    }

    /// The axum router (for embedding or tests).
    pub fn router(self) -> Router {
        let hook = self.hook.clone();
        let trail = self.trail.clone();
        let router = Router::new()
            .route("/boot.ipxe", get(boot_ipxe))
            .route("/boot.ipxe.0", get(boot_ipxe))
            .route("/ipxe", get(node_ipxe))
            .route("/ignition", get(ignition))
            .route("/report", post(report))
            .route("/metrics", get(metrics_text))
            .route("/assets/{*path}", get(asset))
            .route("/boot-files/{*path}", get(boot_file))
            .route("/ipxe.efi", get(ipxe_efi))
            .route("/api/health", get(health))
            .route("/api/events", get(events))
            .route("/", get(rack_page))
            .route("/rackview.css", get(rack_css))
            .route("/rackview.js", get(rack_js))
            .route("/api/rack", get(rack_api))
            .fallback(not_found)
            .with_state(Arc::new(self));
        let router = match trail {
            Some(t) => router.layer(axum::middleware::from_fn_with_state(t, trail_layer)),
            None => router,
        };
        match hook {
            Some(h) => router.layer(axum::middleware::from_fn_with_state(h, hook::layer)),
            None => router,
        }
    }
}

/// A bound HTTP server.
#[derive(Debug)]
pub struct HttpServer {
    listener: TcpListener,
    local: SocketAddr,
    content: HttpContent,
    limits: HttpLimits,
}

impl HttpServer {
    /// Bind `addr`.
    pub async fn bind(addr: SocketAddr, content: HttpContent) -> Result<Self, ContentError> {
        let err = |source| ContentError::Socket {
            what: "binding HTTP",
            addr,
            source,
        };
        let listener = TcpListener::bind(addr).await.map_err(err)?;
        let local = listener.local_addr().map_err(err)?;
        Ok(Self {
            listener,
            local,
            content,
            limits: HttpLimits::default(),
        })
    }

    /// Serve on an already bound listener.
    pub fn from_listener(
        listener: TcpListener,
        content: HttpContent,
    ) -> Result<Self, ContentError> {
        let local = listener
            .local_addr()
            .map_err(|source| ContentError::Socket {
                what: "binding HTTP",
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                source,
            })?;
        Ok(Self {
            listener,
            local,
            content,
            limits: HttpLimits::default(),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Use these connection limits and timeouts instead of the defaults.
    pub fn with_limits(mut self, limits: HttpLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Serve until the task is dropped (which closes every connection).
    pub async fn run(self) -> Result<(), ContentError> {
        let local = self.local;
        let metrics = self.content.metrics.clone();
        serve::serve(self.listener, self.content.router(), self.limits, metrics)
            .await
            .map_err(|source| ContentError::Socket {
                what: "serving HTTP",
                addr: local,
                source,
            })
    }
}

type St = State<Arc<HttpContent>>;

/// The request's labels, decoded by the sans-IO [`crate::query`] parser.
fn labels(RawQuery(raw): RawQuery) -> BTreeMap<String, String> {
    crate::query::parse_labels(raw.as_deref().unwrap_or_default())
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn plain(status: StatusCode, body: String) -> Response<Body> {
    text(status, "text/plain; charset=utf-8", body)
}

impl HttpContent {
    fn done(&self, route: &'static str, r: Response<Body>) -> Response<Body> {
        self.metrics.http.count(route, r.status().as_u16());
        r
    }
}

/// Parse the `mac` label (colon or hyphen form).
fn mac_label(labels: &BTreeMap<String, String>) -> Result<MacAddr, Box<Response<Body>>> {
    crate::query::mac_label(labels)
        .map_err(|e| Box::new(plain(StatusCode::BAD_REQUEST, format!("racker: {e}\n"))))
}

async fn boot_ipxe(State(c): St) -> Response<Body> {
    let script = "#!ipxe\nchain /ipxe?mac=${mac:hexhyp}&arch=${buildarch:uristring}\n".to_owned();
    c.done(
        "/boot.ipxe",
        text(StatusCode::OK, "text/plain; charset=utf-8", script),
    )
}

async fn node_ipxe(State(c): St, query: RawQuery) -> Response<Body> {
    let mut labels = labels(query);
    let mac = match mac_label(&labels) {
        Ok(m) => m,
        Err(r) => return c.done("/ipxe", *r),
    };
    labels.insert("mac".into(), mac.to_string());
    let r = if c.reports.is_installed(mac) {
        plain(
            StatusCode::OK,
            format!("#!ipxe\necho racker: {mac} is installed, booting from its local disk\nexit\n"),
        )
    } else {
        match c.catalog.select(&labels) {
            Some((_, profile)) => match unservable(&c, mac, &labels, profile) {
                Some(missing) => {
                    tracing::warn!(%mac, "http: /ipxe refused: {missing}");
                    let mut r = plain(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!(
                            "#!ipxe\necho racker: cannot boot {mac}: {missing}\nsleep 30\nexit 1\n"
                        ),
                    );
                    // The node's trail (and so its failure reason) names
                    // what is missing.
                    r.extensions_mut().insert(TrailNote(missing));
                    r
                }
                None => plain(StatusCode::OK, ipxe_script(profile)),
            },
            None => {
                tracing::info!(%mac, "http: /ipxe for unknown MAC");
                plain(
                    StatusCode::NOT_FOUND,
                    format!(
                        "racker: no boot profile for MAC {mac}: it is not in nodes.csv, \
                         is excluded, or is not a primary MAC\n"
                    ),
                )
            }
        }
    };
    c.done("/ipxe", r)
}

/// What of `profile`'s boot the server cannot serve itself: its kernel or
/// initrd under `/assets/` missing, or its Ignition (when the kernel
/// command line points at `/ignition`) not there. `None`: bootable.
fn unservable(
    c: &HttpContent,
    mac: MacAddr,
    labels: &BTreeMap<String, String>,
    profile: &crate::matchbox::Profile,
) -> Option<String> {
    let boot = &profile.boot;
    for url in std::iter::once(&boot.kernel).chain(boot.initrd.iter()) {
        let Some((_, rel)) = url.split_once("/assets/") else {
            continue;
        };
        let rel = rel.split(['?', '#']).next().unwrap_or(rel);
        let ok = Jail::new(&c.assets)
            .ok()
            .is_some_and(|j| j.resolve(rel).is_ok());
        if !ok {
            return Some(format!(
                "assets/{rel} is missing (run `racker netboot fetch-assets`)"
            ));
        }
    }
    let wants_ignition = boot
        .args
        .iter()
        .any(|a| a.starts_with("ignition.config.url=") && a.contains("/ignition?"));
    if wants_ignition {
        let profile_kind = if c.reports.is_installed(mac) {
            IgnitionProfile::Os
        } else {
            IgnitionProfile::Install
        };
        let have = matches!(c.ignition.ignition(mac, profile_kind), Ok(Some(_)))
            || matchbox_ignition(&c.catalog, labels).is_some();
        if !have {
            return Some(format!(
                "no {} Ignition config for {mac} (render the cluster: racker bootstrap or racker render)",
                profile_kind.as_str()
            ));
        }
    }
    None
}

async fn health(State(c): St) -> Response<Body> {
    let body = serde_json::json!({"service": "racker-netboot", "pid": std::process::id()});
    c.done(
        "/api/health",
        text(StatusCode::OK, "application/json", body.to_string()),
    )
}

async fn events(State(c): St, query: RawQuery) -> Response<Body> {
    let labels = labels(query);
    let Some(trail) = &c.trail else {
        return c.done(
            "/api/events",
            plain(StatusCode::NOT_FOUND, "racker: no event trail\n".into()),
        );
    };
    let body = if labels.contains_key("mac") {
        match mac_label(&labels) {
            Ok(mac) => serde_json::to_string(&trail.events(mac)).unwrap_or_default(),
            Err(r) => return c.done("/api/events", *r),
        }
    } else {
        serde_json::to_string(&trail.all()).unwrap_or_default()
    };
    c.done(
        "/api/events",
        text(StatusCode::OK, "application/json", body),
    )
}

/// Why a request failed, added to its event on the trail (after
/// [`crate::trail::NOTE_SEPARATOR`]): a handler puts it into its
/// response's extensions.
#[derive(Debug, Clone)]
struct TrailNote(String);

/// Records each request of a known node on the trail, with its status:
/// by the `mac` label when the request has one, else by client address.
async fn trail_layer(
    State(trail): State<EventTrail>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response<Body> {
    let path = request.uri().path().to_owned();
    if path.starts_with("/api/") || path == "/metrics" {
        return next.run(request).await;
    }
    let query = request.uri().query().unwrap_or_default().to_owned();
    let method = request.method().clone();
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let labels = crate::query::parse_labels(&query);
    let mac = crate::query::mac_label(&labels).ok();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let (kind, what) = if path == "/report" {
        // Never the token.
        let stage = labels.get("stage").map_or("?", String::as_str);
        (TrailKind::Report, format!("{stage} ({status})"))
    } else if query.is_empty() {
        (TrailKind::Http, format!("{method} {path}"))
    } else {
        let shown: Vec<String> = labels
            .iter()
            .filter(|(k, _)| k.as_str() != "token")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        (
            TrailKind::Http,
            format!("{method} {path}?{}", shown.join("&")),
        )
    };
    let what = match response.extensions().get::<TrailNote>() {
        Some(TrailNote(note)) => format!("{what}{}{note}", crate::trail::NOTE_SEPARATOR),
        None => what,
    };
    let now = SystemTime::now();
    match (mac, peer) {
        (Some(mac), peer) => {
            if let Some(ip) = peer
                && (path == "/ipxe" || path.starts_with("/boot.ipxe"))
            {
                trail.ipxe_from(ip, mac);
            }
            trail.record(mac, kind, what, Some(status), now);
        }
        (None, Some(ip)) => trail.record_from(ip, kind, what, Some(status), now),
        (None, None) => {}
    }
    response
}

async fn ignition(State(c): St, query: RawQuery) -> Response<Body> {
    let mut labels = labels(query);
    let mac = match mac_label(&labels) {
        Ok(m) => m,
        Err(r) => return c.done("/ignition", *r),
    };
    labels.insert("mac".into(), mac.to_string());
    let profile = match labels.get("profile").map(|p| IgnitionProfile::parse(p)) {
        Some(Some(p)) => p,
        Some(None) => {
            return c.done(
                "/ignition",
                plain(
                    StatusCode::BAD_REQUEST,
                    "racker: profile must be install or os\n".into(),
                ),
            );
        }
        None if c.reports.is_installed(mac) => IgnitionProfile::Os,
        None => IgnitionProfile::Install,
    };
    let r = match c.ignition.ignition(mac, profile) {
        Ok(Some(bytes)) => text(StatusCode::OK, "application/json", bytes_string(bytes)),
        Ok(None) => match matchbox_ignition(&c.catalog, &labels) {
            Some(bytes) => text(StatusCode::OK, "application/json", bytes_string(bytes)),
            None => plain(
                StatusCode::NOT_FOUND,
                format!(
                    "racker: no {} Ignition config for MAC {mac}\n",
                    profile.as_str()
                ),
            ),
        },
        Err(e) => {
            tracing::error!(%mac, "http: ignition: {e}");
            plain(StatusCode::INTERNAL_SERVER_ERROR, format!("racker: {e}\n"))
        }
    };
    c.done("/ignition", r)
}

fn bytes_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// matchbox compatibility: the selected profile's `ignition_id` file.
fn matchbox_ignition(catalog: &Catalog, labels: &BTreeMap<String, String>) -> Option<Vec<u8>> {
    let (_, profile) = catalog.select(labels)?;
    if profile.ignition_id.is_empty() {
        return None;
    }
    let jail = Jail::new(catalog.ignition_dir.as_deref()?).ok()?;
    let path = jail.resolve(&profile.ignition_id).ok()?;
    std::fs::read(path).ok()
}

async fn report(
    State(c): St,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<SocketAddr>>>,
    query: RawQuery,
    body: Bytes,
) -> Response<Body> {
    let labels = labels(query);
    let mac = match mac_label(&labels) {
        Ok(m) => m,
        Err(r) => return c.done("/report", *r),
    };
    let stage: Stage = match labels.get("stage").map(|s| s.parse()) {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            return c.done(
                "/report",
                plain(StatusCode::BAD_REQUEST, format!("racker: {e}\n")),
            );
        }
        None => {
            return c.done(
                "/report",
                plain(StatusCode::BAD_REQUEST, "racker: missing stage\n".into()),
            );
        }
    };
    if let Some(key) = &c.report_key
        && !labels.get("token").is_some_and(|t| key.verify(mac, t))
    {
        tracing::warn!(
            %mac,
            stage = stage.as_str(),
            "http: install report refused: missing or wrong token"
        );
        return c.done(
            "/report",
            plain(
                StatusCode::FORBIDDEN,
                format!("racker: report for {mac} refused: missing or wrong token\n"),
            ),
        );
    }
    if let Some(sources) = &c.report_sources {
        let peer = peer.map(|axum::Extension(info)| info.0.ip());
        if let Err(refusal) = sources.check_from(mac, peer, SystemTime::now()) {
            tracing::warn!(
                %mac,
                stage = stage.as_str(),
                "http: install report refused: {refusal}"
            );
            let mut r = plain(
                StatusCode::FORBIDDEN,
                format!("racker: report for {mac} refused: {refusal}\n"),
            );
            r.extensions_mut()
                .insert(TrailNote(format!("refused: {refusal}")));
            return c.done("/report", r);
        }
    }
    if c.catalog.select_mac(mac).is_none() && c.reports.get(mac).is_none() {
        return c.done(
            "/report",
            plain(
                StatusCode::NOT_FOUND,
                format!("racker: {mac} is not a node of this rack\n"),
            ),
        );
    }
    let reason = labels.get("reason").cloned().or_else(|| {
        let b = String::from_utf8_lossy(&body[..body.len().min(4096)])
            .trim()
            .to_owned();
        (!b.is_empty()).then_some(b)
    });
    let r = match c
        .reports
        .record_checked_async(mac, stage, reason, SystemTime::now())
        .await
    {
        Ok(Err(refusal)) => {
            tracing::warn!(%mac, "http: install report refused: {refusal}");
            plain(
                StatusCode::CONFLICT,
                format!("racker: report for {mac} refused: {refusal}\n"),
            )
        }
        Ok(Ok(changed)) => {
            if changed {
                tracing::info!(%mac, stage = stage.as_str(), "http: installer report");
            }
            plain(
                StatusCode::OK,
                format!(
                    "{} {mac} {}\n",
                    if changed { "recorded" } else { "unchanged" },
                    stage.as_str()
                ),
            )
        }
        Err(e) => {
            tracing::error!(%mac, "http: recording report: {e}");
            plain(StatusCode::INTERNAL_SERVER_ERROR, format!("racker: {e}\n"))
        }
    };
    c.done("/report", r)
}

async fn metrics_text(State(c): St) -> Response<Body> {
    let body = c.metrics.render(&c.reports, &c.catalog);
    c.done(
        "/metrics",
        text(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            body,
        ),
    )
}

async fn asset(
    State(c): St,
    axum::extract::Path(path): axum::extract::Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Response<Body> {
    let r = jailed_file(&c, Some(&c.assets), &path, &method, &headers).await;
    c.done("/assets", r)
}

async fn boot_file(
    State(c): St,
    axum::extract::Path(path): axum::extract::Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Response<Body> {
    let r = boot_file_response(&c, &path, &method, &headers).await;
    c.done("/boot-files", r)
}

async fn ipxe_efi(State(c): St, method: Method, headers: HeaderMap) -> Response<Body> {
    let r = boot_file_response(&c, "ipxe.efi", &method, &headers).await;
    c.done("/ipxe.efi", r)
}

/// One of the resolved iPXE binaries, else a jailed file of their directory.
async fn boot_file_response(
    c: &HttpContent,
    path: &str,
    method: &Method,
    headers: &HeaderMap,
) -> Response<Body> {
    if let Some(file) = c.boot_files.as_ref().and_then(|b| b.lookup(path)) {
        return files::serve_file(file, method, headers, c.metrics.http.asset_bytes.clone()).await;
    }
    let dir = c.boot_files.as_ref().map(BootFiles::dir);
    jailed_file(c, dir, path, method, headers).await
}

async fn jailed_file(
    c: &HttpContent,
    root: Option<&Path>,
    path: &str,
    method: &Method,
    headers: &HeaderMap,
) -> Response<Body> {
    // Opened per request: the directory may appear after start-up.
    let Some(jail) = root.and_then(|r| Jail::new(r).ok()) else {
        return plain(
            StatusCode::NOT_FOUND,
            "racker: nothing served here (directory missing)\n".into(),
        );
    };
    match jail.resolve(path) {
        Ok(file) => {
            files::serve_file(&file, method, headers, c.metrics.http.asset_bytes.clone()).await
        }
        Err(JailError::NotFound) => plain(StatusCode::NOT_FOUND, "racker: not found\n".into()),
        Err(JailError::Refused(why)) => {
            tracing::warn!(path = ?path, "http: request refused: {why}");
            c.metrics.http.refused();
            plain(StatusCode::FORBIDDEN, format!("racker: refused: {why}\n"))
        }
    }
}

async fn rack_page(State(c): St) -> Response<Body> {
    let r = text(
        StatusCode::OK,
        "text/html; charset=utf-8",
        rackview::PAGE_HTML.to_owned(),
    );
    c.done("/", r)
}

async fn rack_css(State(c): St) -> Response<Body> {
    let r = text(
        StatusCode::OK,
        "text/css; charset=utf-8",
        rackview::PAGE_CSS.to_owned(),
    );
    c.done("/rackview.css", r)
}

async fn rack_js(State(c): St) -> Response<Body> {
    let r = text(
        StatusCode::OK,
        "text/javascript; charset=utf-8",
        rackview::PAGE_JS.to_owned(),
    );
    c.done("/rackview.js", r)
}

async fn rack_api(State(c): St) -> Response<Body> {
    let status = c.rack_status.as_ref().and_then(|s| s.status());
    let now = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Each node's latest event on the trail (DHCP, TFTP, HTTP, reports).
    let trail: BTreeMap<MacAddr, rackview::LastEvent> = c
        .trail
        .as_ref()
        .map(|t| {
            t.all()
                .into_iter()
                .filter_map(|(mac, events)| {
                    let e = events.last()?;
                    Some((
                        mac,
                        rackview::LastEvent {
                            unix: e.unix_ms / 1000,
                            text: e.label(),
                        },
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let view = rackview::rack_view(
        &c.rack_plan,
        &c.reports.reports(),
        status.as_ref(),
        &trail,
        now,
    );
    let r = match serde_json::to_string(&view) {
        Ok(json) => {
            let mut r = text(StatusCode::OK, "application/json", json);
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => plain(StatusCode::INTERNAL_SERVER_ERROR, format!("racker: {e}\n")),
    };
    c.done("/api/rack", r)
}

async fn not_found(State(c): St) -> Response<Body> {
    c.done(
        "other",
        plain(StatusCode::NOT_FOUND, "racker: no such endpoint\n".into()),
    )
}
