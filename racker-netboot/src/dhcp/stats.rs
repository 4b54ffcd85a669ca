//! DHCP counters for `/metrics` (Prometheus text format), fed by
//! `transport::serve_counted` (feature `net`).

use std::collections::BTreeMap;
#[cfg(feature = "http")]
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::server::{MessageKind, Transaction};
#[cfg(feature = "http")]
use crate::http::metrics::{MetricsSource, family};

/// What the DHCP server received and answered.
#[derive(Debug, Default)]
pub struct DhcpStats {
    received: Mutex<BTreeMap<&'static str, u64>>,
    sent: Mutex<BTreeMap<&'static str, u64>>,
    unanswered: AtomicU64,
    malformed: AtomicU64,
    send_failed: AtomicU64,
    leases: AtomicU64,
    trail: std::sync::OnceLock<crate::trail::EventTrail>,
}

fn label(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Discover => "discover",
        MessageKind::Offer => "offer",
        MessageKind::Request => "request",
        MessageKind::Decline => "decline",
        MessageKind::Ack => "ack",
        MessageKind::Nak => "nak",
        MessageKind::Release => "release",
        MessageKind::Inform => "inform",
        MessageKind::Other => "other",
    }
}

fn bump(map: &Mutex<BTreeMap<&'static str, u64>>, key: &'static str) {
    *map.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(key)
        .or_default() += 1;
}

impl DhcpStats {
    /// Also record each transaction of a known node on `trail` (once).
    pub fn attach_trail(&self, trail: crate::trail::EventTrail) {
        let _ = self.trail.set(trail);
    }

    /// Count one handled request and its answer (or the lack of one).
    pub fn transaction(&self, t: &Transaction) {
        if let Some(trail) = self.trail.get()
            && trail.knows(t.mac)
        {
            let mut what = format!("DHCP{}", t.received);
            match t.sent {
                Some(sent) => what.push_str(&format!(" -> DHCP{sent}")),
                None => what.push_str(" -> (no reply)"),
            }
            if let Some(ip) = t.ip {
                what.push_str(&format!(" {ip}"));
                if t.sent == Some(MessageKind::Ack) {
                    trail.leased(std::net::IpAddr::V4(ip), t.mac);
                }
            }
            if let Some(note) = t.note {
                what.push_str(&format!(" ({note})"));
            }
            trail.record(
                t.mac,
                crate::trail::TrailKind::Dhcp,
                what,
                None,
                std::time::SystemTime::now(),
            );
        }
        bump(&self.received, label(t.received));
        match t.sent {
            Some(kind) => bump(&self.sent, label(kind)),
            None => {
                self.unanswered.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Count one datagram that was not a DHCP request we could handle.
    pub fn malformed(&self) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
    }

    /// Count one reply the socket refused to send.
    pub fn send_failed(&self) {
        self.send_failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Set the number of leases in the table.
    pub fn set_leases(&self, n: usize) {
        self.leases.store(n as u64, Ordering::Relaxed);
    }

    /// Requests received of `kind` so far.
    pub fn received(&self, kind: MessageKind) -> u64 {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(label(kind))
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(feature = "http")]
impl MetricsSource for DhcpStats {
    fn write_metrics(&self, out: &mut String) {
        for (name, help, map) in [
            (
                "racker_dhcp_requests_total",
                "DHCP requests handled, by message type.",
                &self.received,
            ),
            (
                "racker_dhcp_replies_total",
                "DHCP replies sent, by message type.",
                &self.sent,
            ),
        ] {
            family(out, name, "counter", help);
            let map = map
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (kind, n) in map.iter() {
                let _ = writeln!(out, "{name}{{type=\"{kind}\"}} {n}");
            }
        }
        for (name, help, v) in [
            (
                "racker_dhcp_unanswered_total",
                "DHCP requests left unanswered (unknown MAC without a dynamic range, not for us, ...).",
                &self.unanswered,
            ),
            (
                "racker_dhcp_malformed_total",
                "Datagrams on the DHCP port that were not a DHCP request racker could handle.",
                &self.malformed,
            ),
            (
                "racker_dhcp_send_failed_total",
                "DHCP replies the socket refused to send.",
                &self.send_failed,
            ),
        ] {
            family(out, name, "counter", help);
            let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
        }
        family(
            out,
            "racker_dhcp_leases",
            "gauge",
            "Leases in the DHCP lease table (reserved and dynamic).",
        );
        let _ = writeln!(
            out,
            "racker_dhcp_leases {}",
            self.leases.load(Ordering::Relaxed)
        );
    }
}
