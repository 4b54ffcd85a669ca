//! racker-sim against real IPMI peers (ipmitool, FreeIPMI) over loopback.

mod freeipmi;
mod ipmitool;
mod platform;
mod rack;

use std::net::SocketAddr;

use racker_sim::{NodeSpec, Password, SimRack};

/// A rack of `n` BMCs on 127.0.0.1 with kernel-chosen ports.
pub(crate) async fn rack(n: usize) -> SimRack {
    let specs = (0..n)
        .map(|i| {
            let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
            NodeSpec::new([0x02, 0x52, 0x4B, 0, 0, i as u8 + 1], addr).primary_mac([
                0x02,
                0x52,
                0x4B,
                1,
                0,
                i as u8 + 1,
            ])
        })
        .collect();
    SimRack::start(specs, "USER", Password::new("PASS"))
        .await
        .unwrap()
}
