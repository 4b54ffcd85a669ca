//! A simulated server's chassis: power, boot options, LAN settings, users
//! and serial console, with the semantics a BMC applies to them.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use racker_ipmi::codec::{BootDevice, BootFlags, Password};

/// How long a boot-flag-valid bit survives without a Chassis Control
/// (IPMI 2.0 §28.12, parameter 3 bit 3 disables the timer).
pub const BOOT_FLAG_TIMEOUT: Duration = Duration::from_secs(60);

/// Bytes of console output kept for observation.
const CONSOLE_LOG_LIMIT: usize = 64 * 1024;

/// What the node's firmware is told to boot from at a power-on or reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct BootRequest {
    /// Device from a valid boot-flag override; [`BootDevice::None`] means
    /// the firmware's own boot order.
    pub device: BootDevice,
    /// EFI boot requested by the override.
    pub efi: bool,
}

/// Something that happened to a node, for tests and the node firmware.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Power changed (on = true).
    Power {
        /// New power state.
        on: bool,
    },
    /// The node starts booting (power on, cycle or reset); this is the hook
    /// the simulated firmware reacts to.
    Boot(BootRequest),
    /// Boot flags (parameter 5) changed: set, consumed or timed out.
    BootFlags(BootFlags),
    /// Characters typed on the Serial-over-LAN console.
    ConsoleInput(Vec<u8>),
    /// A Serial-over-LAN session was activated.
    SolActivated,
    /// The Serial-over-LAN session ended.
    SolDeactivated,
    /// The BMC rebooted; every session was dropped.
    BmcReboot,
}

/// One entry of the BMC user table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct User {
    pub(crate) name: Vec<u8>,
    pub(crate) password: Password,
    pub(crate) enabled: bool,
    pub(crate) privilege: u8,
    pub(crate) ipmi_messaging: bool,
    pub(crate) link_auth: bool,
}

/// Number of user IDs the simulated BMC has (ID 1 is the null user).
pub(crate) const MAX_USERS: usize = 10;

/// Mutable state of one simulated server as its BMC sees it.
#[derive(Debug, Clone)]
pub struct Chassis {
    pub(crate) power: bool,
    pub(crate) last_on_by_ipmi: bool,
    pub(crate) boot_set_in_progress: u8,
    pub(crate) boot_param3: u8,
    pub(crate) boot_param4: [u8; 2],
    pub(crate) boot_param5: [u8; 5],
    pub(crate) valid_deadline: Option<Instant>,
    pub(crate) lan_set_in_progress: u8,
    pub(crate) lan_ip_source: u8,
    pub(crate) lan_ip: [u8; 4],
    pub(crate) lan_mask: [u8; 4],
    pub(crate) lan_gateway: [u8; 4],
    pub(crate) mac: [u8; 6],
    pub(crate) users: Vec<User>,
    pub(crate) console_log: VecDeque<u8>,
    /// Get System Restart Cause: 1 = chassis control command, 0 = unknown.
    pub(crate) restart_cause: u8,
    /// Power-on time accumulated before the current on period.
    powered: Duration,
    on_since: Option<Instant>,
}

impl Chassis {
    pub(crate) fn new(mac: [u8; 6], ip: [u8; 4], user: &str, password: &Password) -> Self {
        let mut users = vec![
            User {
                name: Vec::new(),
                password: Password::new(""),
                enabled: false,
                privilege: 0x0F,
                ipmi_messaging: false,
                link_auth: false,
            };
            MAX_USERS
        ];
        let pw = password.expose();
        users[1] = User {
            name: user.as_bytes()[..user.len().min(16)].to_vec(),
            // IPMI passwords are at most 20 bytes; longer is cut.
            password: Password::new(&pw[..pw.len().min(20)]),
            enabled: true,
            privilege: 4,
            ipmi_messaging: true,
            link_auth: true,
        };
        Chassis {
            power: false,
            last_on_by_ipmi: false,
            boot_set_in_progress: 0,
            boot_param3: 0,
            boot_param4: [0, 0],
            boot_param5: [0; 5],
            valid_deadline: None,
            lan_set_in_progress: 0,
            lan_ip_source: 2,
            lan_ip: ip,
            lan_mask: [255, 255, 255, 0],
            lan_gateway: [0; 4],
            mac,
            users,
            console_log: VecDeque::new(),
            restart_cause: 0,
            powered: Duration::ZERO,
            on_since: None,
        }
    }

    /// Power state (true = on).
    pub fn power(&self) -> bool {
        self.power
    }

    /// Current boot flags (parameter 5).
    pub fn boot_flags(&self) -> BootFlags {
        BootFlags::from_data(self.boot_param5)
    }

    /// Parameter 3 (boot flag valid bit clearing).
    pub fn boot_flag_clearing(&self) -> u8 {
        self.boot_param3
    }

    /// LAN IP address source (1 static, 2 DHCP).
    pub fn lan_ip_source(&self) -> u8 {
        self.lan_ip_source
    }

    /// The console output kept so far (newest 64 KiB).
    pub fn console_log(&self) -> Vec<u8> {
        self.console_log.iter().copied().collect()
    }

    /// Total time powered on up to `now` (the POH counter).
    pub(crate) fn powered_for(&self, now: Instant) -> Duration {
        self.powered
            + self
                .on_since
                .map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
    }

    fn account_power(&mut self, now: Instant, on: bool) {
        if on {
            self.on_since.get_or_insert(now);
        } else if let Some(t) = self.on_since.take() {
            self.powered += now.saturating_duration_since(t);
        }
    }

    pub(crate) fn log_console(&mut self, bytes: &[u8]) {
        self.console_log.extend(bytes.iter().copied());
        let excess = self.console_log.len().saturating_sub(CONSOLE_LOG_LIMIT);
        self.console_log.drain(..excess);
    }

    /// Store parameter 5 and (re)arm the 60-s timer.
    pub(crate) fn set_boot_flags(&mut self, now: Instant, raw: [u8; 5], events: &mut Vec<Event>) {
        self.boot_param5 = raw;
        self.valid_deadline = if raw[0] & 0x80 != 0 && self.boot_param3 & 0x08 == 0 {
            Some(now + BOOT_FLAG_TIMEOUT)
        } else {
            None
        };
        events.push(Event::BootFlags(self.boot_flags()));
    }

    pub(crate) fn set_param3(&mut self, now: Instant, v: u8) {
        self.boot_param3 = v & 0x1F;
        if v & 0x08 != 0 {
            self.valid_deadline = None;
        } else if self.boot_param5[0] & 0x80 != 0 && self.valid_deadline.is_none() {
            self.valid_deadline = Some(now + BOOT_FLAG_TIMEOUT);
        }
    }

    /// Apply the 60-s timer.
    pub(crate) fn tick(&mut self, now: Instant, events: &mut Vec<Event>) {
        if let Some(deadline) = self.valid_deadline
            && now >= deadline
        {
            self.valid_deadline = None;
            if self.boot_param5[0] & 0x80 != 0 {
                self.boot_param5[0] &= !0x80;
                events.push(Event::BootFlags(self.boot_flags()));
            }
        }
    }

    /// What the firmware boots from now; consumes a one-shot override.
    fn boot(&mut self, events: &mut Vec<Event>) {
        let flags = self.boot_flags();
        let request = if flags.valid {
            BootRequest {
                device: flags.device,
                efi: flags.efi,
            }
        } else {
            BootRequest {
                device: BootDevice::None,
                efi: false,
            }
        };
        events.push(Event::Boot(request));
        if flags.valid && !flags.persistent {
            self.boot_param5[0] &= !0x80;
            self.valid_deadline = None;
            events.push(Event::BootFlags(self.boot_flags()));
        }
    }

    /// Chassis Control; returns the completion code.
    pub(crate) fn control(
        &mut self,
        now: Instant,
        op: u8,
        by_ipmi: bool,
        events: &mut Vec<Event>,
    ) -> u8 {
        // Each Chassis Control restarts the 60-s countdown.
        if self.valid_deadline.is_some() {
            self.valid_deadline = Some(now + BOOT_FLAG_TIMEOUT);
        }
        let cause = if by_ipmi { 1 } else { 0 };
        match op & 0x0F {
            0 | 5 => {
                if self.power {
                    self.account_power(now, false);
                    self.power = false;
                    events.push(Event::Power { on: false });
                }
                0
            }
            1 => {
                if !self.power {
                    self.account_power(now, true);
                    self.power = true;
                    self.restart_cause = cause;
                    self.last_on_by_ipmi = by_ipmi;
                    events.push(Event::Power { on: true });
                    self.boot(events);
                }
                0
            }
            2 => {
                if !self.power {
                    // Like Dell and Supermicro: cycle while off is refused.
                    return 0xD5;
                }
                events.push(Event::Power { on: false });
                events.push(Event::Power { on: true });
                self.restart_cause = cause;
                self.last_on_by_ipmi = by_ipmi;
                self.boot(events);
                0
            }
            3 => {
                if self.power {
                    self.restart_cause = cause;
                    self.boot(events);
                }
                0
            }
            4 => 0,
            _ => 0xCC,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chassis() -> Chassis {
        Chassis::new(
            [2, 0, 0, 0, 0, 1],
            [127, 0, 0, 2],
            "USER",
            &Password::new("PASS"),
        )
    }

    #[test]
    fn valid_bit_clears_after_60s_unless_param3() {
        let t0 = Instant::now();
        let mut ev = Vec::new();
        let mut c = chassis();
        c.set_boot_flags(t0, BootFlags::new(BootDevice::Pxe, true, true).raw, &mut ev);
        c.tick(t0 + Duration::from_secs(59), &mut ev);
        assert!(c.boot_flags().valid);
        c.tick(t0 + Duration::from_secs(60), &mut ev);
        assert!(!c.boot_flags().valid);
        assert_eq!(c.boot_flags().device, BootDevice::Pxe);

        let mut c = chassis();
        c.set_param3(t0, 0x1f);
        c.set_boot_flags(t0, BootFlags::new(BootDevice::Pxe, true, true).raw, &mut ev);
        c.tick(t0 + Duration::from_secs(3600), &mut ev);
        assert!(c.boot_flags().valid);
    }

    #[test]
    fn chassis_control_restarts_countdown() {
        let t0 = Instant::now();
        let mut ev = Vec::new();
        let mut c = chassis();
        c.set_boot_flags(
            t0,
            BootFlags::new(BootDevice::Pxe, true, false).raw,
            &mut ev,
        );
        c.control(t0 + Duration::from_secs(50), 4, true, &mut ev);
        c.tick(t0 + Duration::from_secs(100), &mut ev);
        assert!(c.boot_flags().valid);
        c.tick(t0 + Duration::from_secs(110), &mut ev);
        assert!(!c.boot_flags().valid);
    }

    #[test]
    fn one_shot_flag_consumed_by_boot_persistent_kept() {
        let t0 = Instant::now();
        let mut ev = Vec::new();
        let mut c = chassis();
        c.set_boot_flags(
            t0,
            BootFlags::new(BootDevice::Pxe, false, true).raw,
            &mut ev,
        );
        ev.clear();
        assert_eq!(c.control(t0, 1, true, &mut ev), 0);
        assert!(ev.contains(&Event::Boot(BootRequest {
            device: BootDevice::Pxe,
            efi: true
        })));
        assert!(!c.boot_flags().valid);
        ev.clear();
        assert_eq!(c.control(t0, 3, true, &mut ev), 0);
        assert!(ev.contains(&Event::Boot(BootRequest {
            device: BootDevice::None,
            efi: false
        })));

        c.set_boot_flags(
            t0,
            BootFlags::new(BootDevice::Disk, true, false).raw,
            &mut ev,
        );
        c.control(t0, 2, true, &mut ev);
        c.control(t0, 2, true, &mut ev);
        assert!(c.boot_flags().valid);
        assert_eq!(c.boot_flags().device, BootDevice::Disk);
    }

    #[test]
    fn power_semantics() {
        let t0 = Instant::now();
        let mut ev = Vec::new();
        let mut c = chassis();
        assert_eq!(c.control(t0, 2, true, &mut ev), 0xD5);
        assert_eq!(c.control(t0, 0, true, &mut ev), 0);
        assert!(ev.is_empty());
        assert_eq!(c.control(t0, 1, true, &mut ev), 0);
        assert!(c.power());
        assert_eq!(c.control(t0, 5, true, &mut ev), 0);
        assert!(!c.power());
        assert_eq!(c.control(t0, 9, true, &mut ev), 0xCC);
    }

    #[test]
    fn password_debug_redacted() {
        assert!(!format!("{:?}", Password::new("secret")).contains("secret"));
    }
}
