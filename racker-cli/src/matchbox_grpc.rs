//! `racker netboot serve --matchbox-grpc ADDR`: the matchbox-compatible
//! gRPC API Lokomotive's Terraform stores its profiles in
//! (docs/lokomotive.md). Certificates are made on first use in
//! `<state-dir>/matchbox/certs` and `<state-dir>/matchbox-client`, the
//! stored objects live in `<state-dir>/matchbox`, and the HTTP boot
//! endpoints answer from them first.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::Context as _;
use racker_inventory::AddressPlan;
use racker_netboot::ContentError;
use racker_netboot::matchbox_api::{CertPaths, GrpcServer, Store, store_dir};
use tokio::task::JoinHandle;

use crate::globals::Globals;
use crate::netboot_content::ContentArgs;

/// Start the API on `addr` (when given) and make the HTTP server ask its
/// store first; the returned task serves it.
pub(crate) async fn start(
    globals: &Globals,
    addr: Option<SocketAddr>,
    plan: &AddressPlan,
    content: &mut ContentArgs,
) -> anyhow::Result<Option<JoinHandle<Result<(), ContentError>>>> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let certs = CertPaths::in_state_dir(&globals.state_dir);
    let mut ips = vec![IpAddr::V4(plan.management_ip())];
    if !addr.ip().is_unspecified() {
        ips.push(addr.ip());
    }
    if certs
        .ensure(&ips)
        .context("making the matchbox API certificates")?
    {
        eprintln!(
            "racker netboot: made the matchbox API certificates in {} and {}",
            certs.server_dir.display(),
            certs.client_dir.display()
        );
    }
    let store = Arc::new(Store::open(&store_dir(&globals.state_dir))?);
    content.boot_hook = Some(store.clone());
    let server = GrpcServer::bind(addr, store, &certs).await?;
    let local = server.local_addr();
    // Tests and scripts learn the bound port from this line.
    eprintln!("racker netboot: matchbox gRPC API (mutual TLS) listening on {local}");
    Ok(Some(tokio::spawn(async move {
        server.run().await.map_err(|e| ContentError::Socket {
            what: "serving the matchbox gRPC API",
            addr: local,
            source: std::io::Error::other(e),
        })
    })))
}
