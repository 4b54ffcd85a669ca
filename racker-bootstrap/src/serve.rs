//! A standing netboot service (`racker netboot serve`, docs/netboot.md)
//! built from plain settings through racker-netboot's service builder,
//! and what it tells the operator once it runs. The caller prints the
//! [`Notice`]s (the handover after a bootstrap, `crate::handover`, speaks
//! in them too).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use racker_netboot::ContentError;
use racker_netboot::dnsmasq::DnsmasqOptions;
use racker_netboot::iface::RouteSource;
use racker_netboot::service::{
    DhcpListen, NetbootService, NetbootServiceBuilder, ServiceError, ServiceMarker,
};

use crate::netboot_setup::{DhcpSettings, ServePreflight, dhcp_config, serve_preflight};
use crate::network::{ContentOptions, installer_console, node_entries, reservations};
use crate::{Rack, Result};

/// Something to tell the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Something was done (a check mark).
    Done(String),
    /// Progress or a note.
    Note(String),
    /// Something went wrong or needs attention.
    Warning(String),
}

/// What `racker netboot serve` serves and where.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ServeSettings {
    /// The DHCP server's settings.
    pub dhcp: DhcpSettings,
    /// Serve no DHCP, only the boot content (TFTP + HTTP).
    pub no_dhcp: bool,
    /// Serve DHCP on this plain UDP socket (any address and port, no
    /// root) instead of an interface.
    pub listen: Option<SocketAddr>,
    /// Serve DHCP on this interface, port 67 (default: the management
    /// node's PXE interface).
    pub interface: Option<String>,
    /// Serve DHCP even on an interface that carries the default route or
    /// whose MAC is not the management node's secondary MAC.
    pub force: bool,
    /// Read the routes from this file in `/proc/net/route` format instead
    /// of asking the kernel (tests).
    pub proc_net_route: Option<PathBuf>,
    /// Where HTTP and TFTP listen and what they serve.
    pub content: ContentOptions,
}

impl ServeSettings {
    /// Defaults everywhere.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Apply the boot content options (HTTP, TFTP, matchbox, the installer's
/// console) to `builder`.
pub fn with_content(
    mut builder: NetbootServiceBuilder,
    content: &ContentOptions,
) -> NetbootServiceBuilder {
    builder = builder
        .tftp(!content.without_tftp)
        .boot_files(content.boot_files.clone())
        .kernel_console(installer_console(&content.kernel_console));
    if let Some(addr) = content.http_listen {
        // A rack on loopback only (the simulator): every node reports from
        // 127.0.0.1 (docs/netboot.md, "Install reports").
        builder = builder
            .http_listen(addr)
            .loopback_reports(addr.ip().is_loopback());
    }
    if let Some(addr) = content.tftp_listen {
        builder = builder.tftp_listen(addr);
    }
    if let Some(dir) = &content.matchbox_data {
        builder = builder.matchbox_data(dir);
    }
    // The matchbox gRPC API's store answers the HTTP boot endpoints before
    // racker's own profiles (docs/lokomotive.md).
    builder.matchbox_grpc(content.matchbox_grpc)
}

/// The service builder of `racker netboot serve` for `rack` with state in
/// `state_dir` (interfaces listed in `sys_class_net`), and what the nodes
/// would miss from it. Ignition comes from the cluster directory of the
/// recorded bootstrap (so the service keeps serving what `racker
/// bootstrap` rendered), else `<state-dir>/ignition`.
pub fn serve_builder(
    state_dir: &Path,
    sys_class_net: &Path,
    rack: &Rack,
    settings: &ServeSettings,
) -> Result<(NetbootServiceBuilder, ServePreflight)> {
    let config = dhcp_config(&rack.plan, &settings.dhcp)?;
    let dhcp = match (settings.no_dhcp, settings.listen, &settings.interface) {
        (true, _, _) => DhcpListen::Off,
        (false, Some(addr), _) => DhcpListen::Socket(addr),
        (false, None, Some(iface)) => DhcpListen::Interface(iface.clone()),
        (false, None, None) => DhcpListen::Interface(rack.management.pxe_interface.clone()),
    };
    let ignition = crate::netboot_setup::served_ignition(state_dir);
    let preflight = serve_preflight(state_dir, &*ignition, &rack.plan);
    let builder = NetbootService::builder(state_dir, config)
        .ignition(ignition)
        .dhcp(dhcp)
        .reservations(reservations(&rack.plan, None))
        .sys_class_net(sys_class_net)
        .expected_mac(rack.management.secondary_mac)
        .force(settings.force)
        .route_source(match &settings.proc_net_route {
            Some(file) => RouteSource::ProcNetRoute(file.clone()),
            None => RouteSource::Kernel,
        })
        .base_url(settings.dhcp.http_base_url.clone())
        .nodes(node_entries(&rack.plan, None));
    Ok((with_content(builder, &settings.content), preflight))
}

/// Write `dnsmasq.conf` into `dir`: dnsmasq in place of `racker netboot
/// serve` for `rack` (docs/netboot.md), with every reservation, its lease
/// file in `state_dir`, installed nodes booting from disk, bound to
/// `interface` (default: the PXE interface) and serving TFTP from
/// `tftp_root` when given. Returns the file written.
pub fn write_dnsmasq(
    dir: &Path,
    state_dir: &Path,
    rack: &Rack,
    dhcp: &DhcpSettings,
    interface: Option<String>,
    tftp_root: Option<PathBuf>,
) -> Result<PathBuf> {
    let config = dhcp_config(&rack.plan, dhcp)?;
    let mut options = DnsmasqOptions::new();
    options.interface = Some(interface.unwrap_or_else(|| rack.management.pxe_interface.clone()));
    options.tftp_root = tftp_root;
    options.lease_file = Some(state_dir.join("dnsmasq.leases"));
    options.installed = crate::netboot_setup::installed_macs(state_dir);
    let reservations = reservations(&rack.plan, None);
    Ok(racker_netboot::dnsmasq::write(
        dir,
        &config,
        &reservations,
        &options,
    )?)
}

/// What a just started service says before it is announced: the interface
/// check `--force` overrode, the interface's address, and what the nodes
/// would miss (their `/ipxe` is refused until it is there).
pub fn started_notices(service: &NetbootService, preflight: &ServePreflight) -> Vec<Notice> {
    let mut notices = Vec::new();
    if let Some(refusal) = service.forced_past() {
        notices.push(Notice::Warning(format!(
            "{refusal}; serving anyway (--force)"
        )));
    }
    if let Some(address) = service.interface_address() {
        notices.push(Notice::Note(format!("racker netboot: {address}")));
    }
    notices.extend(
        preflight
            .files
            .iter()
            .map(|m| Notice::Warning(m.to_string())),
    );
    if !preflight.files.is_empty() {
        notices.push(Notice::Warning(
            "nodes cannot PXE-install until then (their iPXE script is refused): racker netboot fetch-assets".to_owned(),
        ));
    }
    if preflight.without_ignition > 0 {
        notices.push(Notice::Warning(format!(
            "{} of {} node(s) have no install Ignition yet (racker bootstrap or racker render writes it)",
            preflight.without_ignition, preflight.nodes
        )));
    }
    notices
}

/// Where a running service listens (tests and scripts learn the bound
/// ports from these lines).
pub fn listening_notices(service: &NetbootService) -> Vec<Notice> {
    let mut notices = vec![Notice::Note(format!(
        "racker netboot: HTTP listening on {} (nodes use {}), TFTP on {}",
        service.http_addr(),
        service.base_url(),
        service
            .tftp_addr()
            .map_or_else(|| "-".to_owned(), |a| a.to_string())
    ))];
    notices.push(Notice::Note(match service.dhcp_addr() {
        Some(addr) => format!("racker netboot: DHCP listening on {addr}"),
        None => "racker netboot: DHCP disabled (--no-dhcp)".to_owned(),
    }));
    if let Some(api) = service.matchbox_api() {
        if api.certs_made {
            notices.push(Notice::Note(format!(
                "racker netboot: made the matchbox API certificates in {} and {}",
                api.certs.server_dir.display(),
                api.certs.client_dir.display()
            )));
        }
        notices.push(Notice::Note(format!(
            "racker netboot: matchbox gRPC API (mutual TLS) listening on {}",
            api.addr
        )));
    }
    notices
}

/// Why [`run`] stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The services could not start (a port in use, a refused interface).
    #[error(transparent)]
    Start(ServiceError),
    /// The service marker (`racker status` and a bootstrap find the
    /// running service by it) could not be written.
    #[error("writing the service marker")]
    Marker(#[source] ContentError),
    /// A service failed while serving.
    #[error(transparent)]
    Serve(ServiceError),
}

/// Start the services of `builder` (from [`serve_builder`]) and serve
/// until `shutdown` completes. `notify` hears what the operator should
/// read: [`started_notices`], then, once the service marker of `state_dir`
/// is written, [`listening_notices`]. The marker is removed at the end.
pub async fn run(
    builder: NetbootServiceBuilder,
    state_dir: &Path,
    preflight: &ServePreflight,
    shutdown: impl Future<Output = ()>,
    mut notify: impl FnMut(Notice),
) -> Result<(), ServeError> {
    let service = builder.start().await.map_err(ServeError::Start)?;
    started_notices(&service, preflight)
        .into_iter()
        .for_each(&mut notify);
    ServiceMarker::of(&service)
        .write(state_dir)
        .map_err(ServeError::Marker)?;
    listening_notices(&service)
        .into_iter()
        .for_each(&mut notify);
    let served = service.run_until(shutdown).await;
    ServiceMarker::remove_own(state_dir);
    served.map_err(ServeError::Serve)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rack(dir: &Path) -> Rack {
        use crate::testutil::{MGMT, NODE};
        crate::testutil::rack(dir, &[MGMT, NODE])
    }

    /// A service on loopback sockets: the operator hears what nodes would
    /// miss, then where it listens once its marker is written; the marker
    /// goes with the service.
    #[tokio::test]
    async fn run_reports_serves_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let rack = rack(dir.path());
        let state = dir.path().join("state");
        let mut settings = ServeSettings::new();
        settings.listen = Some("127.0.0.1:0".parse().unwrap());
        settings.content.http_listen = Some("127.0.0.1:0".parse().unwrap());
        settings.content.without_tftp = true;
        let (builder, preflight) =
            serve_builder(&state, &dir.path().join("net"), &rack, &settings).unwrap();
        assert_eq!((preflight.nodes, preflight.without_ignition), (1, 1));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let mut stop = Some(stop);
        let mut notices = Vec::new();
        let mut marker_while_serving = false;
        let shutdown = async {
            // Stops when told to, at the latest after 30 s (no hang).
            let _ = tokio::time::timeout(std::time::Duration::from_secs(30), stopped).await;
        };
        run(builder, &state, &preflight, shutdown, |notice| {
            if matches!(&notice, Notice::Note(t) if t.contains("DHCP listening on 127.0.0.1:")) {
                marker_while_serving = ServiceMarker::read(&state).is_some();
                stop.take().map(|s| s.send(()));
            }
            notices.push(notice);
        })
        .await
        .unwrap();
        assert!(marker_while_serving, "{notices:?}");
        assert!(ServiceMarker::read(&state).is_none(), "marker removed");
        assert!(notices.contains(&Notice::Warning(
            "1 of 1 node(s) have no install Ignition yet (racker bootstrap or racker render writes it)".to_owned()
        )));
        assert!(
            notices.iter().any(|n| matches!(n, Notice::Note(t) if t.starts_with("racker netboot: HTTP listening on 127.0.0.1:") && t.ends_with("TFTP on -"))),
            "{notices:?}"
        );
    }

    #[test]
    fn dnsmasq_binds_the_pxe_interface_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let rack = rack(dir.path());
        let out = dir.path().join("dnsmasq");
        let state = dir.path().join("state");
        let settings = DhcpSettings::default();
        let path = write_dnsmasq(&out, &state, &rack, &settings, None, None).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("interface=eno2"), "{text}");
        assert!(text.contains("00:11:22:33:44:10"), "{text}");
        assert!(text.contains(&state.join("dnsmasq.leases").display().to_string()));
        let other = write_dnsmasq(&out, &state, &rack, &settings, Some("eth9".into()), None);
        let text = std::fs::read_to_string(other.unwrap()).unwrap();
        assert!(text.contains("interface=eth9"), "{text}");
    }
}
