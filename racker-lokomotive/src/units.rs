//! The unit files and `/etc/hosts` every node gets, shared by the Container
//! Linux Configs (`cl/*.yaml`) and the native Ignition configs so both say
//! exactly the same thing.

use minijinja::context;
use minijinja::value::Value;

use crate::error::RenderError;
use crate::ignition::Common;
use crate::spec::{ClusterSpec, NodeSpec};
use crate::templates::{render, safe};

/// networkd unit of the internal (primary) NIC.
pub const INTERNAL_NETWORK_UNIT: &str = "10-priv-stable.network";
/// networkd unit of the public (secondary) NIC with a static address.
pub const PUBLIC_NETWORK_UNIT: &str = "10-public-stable.network";
/// The dummy `resolve` interface.
pub const RESOLVE_NETDEV_UNIT: &str = "00-resolve.netdev";
/// Its address.
pub const RESOLVE_NETWORK_UNIT: &str = "00-resolve.network";
/// systemd-resolved drop-in adding the extra stub listener.
pub const RESOLVED_DROPIN_PATH: &str = "/etc/systemd/resolved.conf.d/racker-stub-listener.conf";
/// The service keeping `/etc/resolv.conf` on systemd-resolved's extra stub
/// listener (the original racker's `use-systemd-resolved.service`).
pub const RESOLV_CONF_UNIT: &str = "use-systemd-resolved.service";
/// Address of the extra systemd-resolved stub listener (TEST-NET-1).
pub const RESOLVE_ADDRESS: &str = "192.0.2.254";

/// The internal network unit of `node`.
pub fn internal_network(spec: &ClusterSpec, node: &NodeSpec) -> Result<String, RenderError> {
    render(
        "units/10-priv-stable.network.j2",
        context! {
            version => &spec.racker_version,
            mac => node.mac.to_string(),
            ip => node.ip.to_string(),
            prefix_len => spec.prefix_len,
        },
    )
}

/// The public static address unit of `node`, if it has one.
pub fn public_network(spec: &ClusterSpec, node: &NodeSpec) -> Result<Option<String>, RenderError> {
    let (Some(public), Some(mac)) = (&node.public, node.secondary_mac) else {
        return Ok(None);
    };
    render(
        "units/10-public-stable.network.j2",
        context! {
            version => &spec.racker_version,
            mac => mac.to_string(),
            address => public.address.to_string(),
            prefix_len => public.prefix_len,
            gateway => public.gateway.to_string(),
            dns => public.dns.iter().map(ToString::to_string).collect::<Vec<_>>(),
        },
    )
    .map(Some)
}

fn simple(spec: &ClusterSpec, name: &str) -> Result<String, RenderError> {
    render(
        name,
        context! { version => &spec.racker_version, resolve_ip => RESOLVE_ADDRESS },
    )
}

/// The dummy `resolve` netdev.
pub fn resolve_netdev(spec: &ClusterSpec) -> Result<String, RenderError> {
    simple(spec, "units/00-resolve.netdev.j2")
}

/// The `resolve` interface's address.
pub fn resolve_network(spec: &ClusterSpec) -> Result<String, RenderError> {
    simple(spec, "units/00-resolve.network.j2")
}

/// The systemd-resolved drop-in.
pub fn resolved_dropin(spec: &ClusterSpec) -> Result<String, RenderError> {
    simple(spec, "units/racker-resolved.conf.j2")
}

/// The resolv.conf service.
pub fn resolv_conf_service(spec: &ClusterSpec) -> Result<String, RenderError> {
    simple(spec, "units/use-systemd-resolved.service.j2")
}

/// A node's `/etc/hosts`: localhost and, for Lokomotive, every controller
/// with its etcd, controller and API names.
pub fn etc_hosts(spec: &ClusterSpec) -> Result<String, RenderError> {
    let controllers: Vec<Value> = spec
        .controllers()
        .map(|c| {
            // etcd name first (what etcd peers look up), then the host name
            // and the API name.
            let mut names: Vec<String> = c
                .aliases
                .iter()
                .filter(|a| a.contains("-etcd"))
                .cloned()
                .collect();
            names.push(c.name.clone());
            names.extend(c.aliases.iter().filter(|a| !a.contains("-etcd")).cloned());
            context! { ip => c.ip.to_string(), names => names }
        })
        .collect();
    render("units/hosts.j2", context! { controllers => controllers })
}

/// All the units of a node, ready for a Container Linux Config template
/// (the texts every node shares come from `common`, rendered once).
pub(crate) fn clc_units(
    common: &Common,
    spec: &ClusterSpec,
    node: &NodeSpec,
) -> Result<Value, RenderError> {
    Ok(context! {
        internal_name => INTERNAL_NETWORK_UNIT,
        internal => safe(internal_network(spec, node)?),
        resolve_netdev_name => RESOLVE_NETDEV_UNIT,
        resolve_netdev => safe(common.resolve_netdev.clone()),
        resolve_network_name => RESOLVE_NETWORK_UNIT,
        resolve_network => safe(common.resolve_network.clone()),
        resolved_path => RESOLVED_DROPIN_PATH,
        resolved => safe(common.resolved.clone()),
        resolv_conf_name => RESOLV_CONF_UNIT,
        resolv_conf => safe(common.resolv_conf.clone()),
    })
}
