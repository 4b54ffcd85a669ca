//! Per-node fault injection.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::Error;

/// One fault, as given on the command line (`unreachable`,
/// `wrong-password`, `loss:30`, `latency:250ms`, `fan-fail`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The BMC answers nothing.
    Unreachable,
    /// The BMC's password differs from the rack credentials.
    WrongCredentials,
    /// This percentage of incoming datagrams is dropped.
    PacketLoss(u8),
    /// Every answer is delayed by this much.
    Latency(Duration),
    /// FAN1 stops: it reads 0 RPM, below its lower critical threshold;
    /// the SEL records the threshold crossings and Get Chassis Status
    /// reports a cooling fault.
    FanFail,
}

/// The set of faults active on one node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Drop every datagram.
    pub unreachable: bool,
    /// Refuse the rack credentials (RAKP 2 HMAC will not verify).
    pub wrong_credentials: bool,
    /// Percentage (0–100) of incoming datagrams dropped.
    pub loss_percent: u8,
    /// Delay before each answer.
    pub latency: Duration,
    /// FAN1 has failed (reads 0 RPM).
    pub fan_fail: bool,
}

impl Faults {
    /// Add `fault` to the set.
    pub fn apply(&mut self, fault: Fault) {
        match fault {
            Fault::Unreachable => self.unreachable = true,
            Fault::WrongCredentials => self.wrong_credentials = true,
            Fault::PacketLoss(p) => self.loss_percent = p,
            Fault::Latency(d) => self.latency = d,
            Fault::FanFail => self.fan_fail = true,
        }
    }

    /// True when no fault is active.
    pub fn is_empty(&self) -> bool {
        *self == Faults::default()
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Unreachable => f.write_str("unreachable"),
            Fault::WrongCredentials => f.write_str("wrong-password"),
            Fault::PacketLoss(p) => write!(f, "loss:{p}"),
            Fault::Latency(d) => write!(f, "latency:{}ms", d.as_millis()),
            Fault::FanFail => f.write_str("fan-fail"),
        }
    }
}

impl FromStr for Fault {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::InvalidFault {
            spec: s.to_owned(),
            reason: reason.to_owned(),
        };
        let (kind, arg) = match s.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (s, None),
        };
        match (kind, arg) {
            ("unreachable", None) => Ok(Fault::Unreachable),
            ("fan-fail", None) => Ok(Fault::FanFail),
            ("wrong-password" | "wrong-credentials", None) => Ok(Fault::WrongCredentials),
            ("loss", Some(a)) => {
                let p: u8 = a
                    .trim_end_matches('%')
                    .parse()
                    .map_err(|_| bad("loss needs a percentage 0-100"))?;
                if p > 100 {
                    return Err(bad("loss needs a percentage 0-100"));
                }
                Ok(Fault::PacketLoss(p))
            }
            // racker's one duration syntax (a bare number is seconds).
            ("latency", Some(a)) => racker_inventory::parse_duration(a)
                .map(Fault::Latency)
                .map_err(|_| bad("latency needs a duration like 250ms or 2s")),
            _ => Err(bad(
                "expected unreachable, wrong-password, loss:PERCENT, latency:DURATION or fan-fail",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trip() {
        for f in [
            Fault::Unreachable,
            Fault::WrongCredentials,
            Fault::PacketLoss(30),
            Fault::Latency(Duration::from_millis(250)),
            Fault::FanFail,
        ] {
            assert_eq!(f.to_string().parse::<Fault>().unwrap(), f);
        }
        assert_eq!(
            "latency:2s".parse::<Fault>().unwrap(),
            Fault::Latency(Duration::from_secs(2))
        );
        assert_eq!("loss:5%".parse::<Fault>().unwrap(), Fault::PacketLoss(5));
        assert!("loss:101".parse::<Fault>().is_err());
        assert!("fire".parse::<Fault>().is_err());
        assert!("latency:soon".parse::<Fault>().is_err());
    }
}
