//! The sans-IO BMC: datagrams and the current time in, datagrams out.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use racker_ipmi::codec::{
    self, ALL_SUITES, ChassisStatus, CipherSuite, Frame, LanRequest, LastPowerEvent,
    OpenSessionRequest, OpenSessionResponse, Password, Privilege, Rakp1, Rakp2, Rakp3, Rakp4,
    RakpParams, RestorePolicy, Sealing, SessionKeys, SolPacket, UserAccess, V20Packet, cc, command,
    encode_user_name, payload, status,
};

use crate::chassis::{BootFlags, Chassis, Event, MAX_USERS, User};
use crate::sel::Sel;

mod platform;
use platform::Identify;

/// Privilege levels.
const PRIV_USER: u8 = codec::privilege::USER;
const PRIV_OPERATOR: u8 = codec::privilege::OPERATOR;
const PRIV_ADMIN: u8 = codec::privilege::ADMINISTRATOR;

/// SOL characters per BMC → console packet.
const SOL_CHUNK: usize = 128;
/// SOL retransmission interval and attempts.
const SOL_RETRY: Duration = Duration::from_millis(500);
const SOL_ATTEMPTS: u8 = 6;
/// How long a response is kept to answer a retransmitted request.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(10);
/// Default lifetime of a session slot whose RAKP handshake is unfinished.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub to: SocketAddr,
    /// UDP payload.
    pub payload: Vec<u8>,
}

/// Static configuration of one simulated BMC.
#[derive(Debug, Clone)]
pub struct BmcConfig {
    mac: [u8; 6],
    ip: [u8; 4],
    user: String,
    password: Password,
    max_sessions: usize,
    idle_timeout: Duration,
    handshake_timeout: Duration,
    suites: Vec<CipherSuite>,
    sol_port: u16,
    seed: u64,
    clock: Option<(Instant, u32)>,
}

impl BmcConfig {
    /// A BMC with MAC `mac` and one administrator `user`/`password`; by
    /// default 8 session slots, 60-s idle timeout for established sessions,
    /// 5 s for handshakes that never finish RAKP, suites 3 and 17.
    pub fn new(mac: [u8; 6], user: &str, password: Password) -> Self {
        BmcConfig {
            mac,
            ip: [0; 4],
            user: user.to_owned(),
            password,
            max_sessions: 8,
            idle_timeout: Duration::from_secs(60),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            suites: ALL_SUITES.to_vec(),
            sol_port: 623,
            seed: u64::from_le_bytes([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], 0x5a, 0xa5]),
            clock: None,
        }
    }
    /// Number of concurrent sessions (pending handshakes included).
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = n;
        self
    }
    /// Idle session timeout.
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = d;
        self
    }
    /// How long a session slot is held for a handshake that does not
    /// finish RAKP (real BMCs drop them within seconds, so unauthenticated
    /// Open Session requests cannot lock everyone out).
    pub fn handshake_timeout(mut self, d: Duration) -> Self {
        self.handshake_timeout = d;
        self
    }
    /// Cipher suites offered.
    pub fn suites(mut self, suites: &[CipherSuite]) -> Self {
        self.suites = suites.to_vec();
        self
    }
    /// The BMC's own IP address (LAN configuration parameter 3).
    pub fn ip(mut self, ip: [u8; 4]) -> Self {
        self.ip = ip;
        self
    }
    /// UDP port reported in Activate Payload (the port clients reach us on).
    pub fn sol_port(mut self, port: u16) -> Self {
        self.sol_port = port;
        self
    }
    /// Seed for session IDs and random numbers (fresh entropy in servers).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// The SEL clock: at `at` the wall clock read `unix_secs` (seconds
    /// since 1970). Without it SEL timestamps count from the first event,
    /// which tools print as "pre-init" times.
    pub fn wall_clock(mut self, at: Instant, unix_secs: u32) -> Self {
        self.clock = Some((at, unix_secs));
        self
    }
}

#[derive(Debug, Clone)]
enum State {
    Opened,
    AwaitRakp3 {
        rm: [u8; 16],
        rc: [u8; 16],
        role: u8,
        uname: Vec<u8>,
        user: usize,
        /// The RAKP 1 payload and the RAKP 2 answered, for its
        /// retransmissions.
        rakp1: Vec<u8>,
        rakp2: Vec<u8>,
    },
    Active {
        keys: SessionKeys,
        rakp4: Vec<u8>,
        rakp3: Vec<u8>,
    },
}

#[derive(Debug, Clone)]
struct Sol {
    authenticated: bool,
    encrypted: bool,
    next_seq: u8,
    inflight: Option<(u8, Vec<u8>, Instant, u8)>,
    pending: VecDeque<u8>,
    last_in_seq: u8,
    last_in_len: u8,
}

#[derive(Debug, Clone)]
struct Cached {
    netfn: u8,
    cmd: u8,
    rq_seq: u8,
    data: Vec<u8>,
    response: Vec<u8>,
    at: Instant,
}

#[derive(Debug, Clone)]
struct Session {
    /// Get Session Info handle (1-255, unique among sessions).
    handle: u8,
    /// User ID (1-based) once RAKP 1 named the user.
    user_id: u8,
    sid_c: u32,
    sid_m: u32,
    peer: SocketAddr,
    suite: CipherSuite,
    max_priv: u8,
    priv_level: u8,
    state: State,
    last_activity: Instant,
    in_highest: u32,
    in_seen: u32,
    out_seq: u32,
    cached: Option<Cached>,
    sol: Option<Sol>,
    /// The Open Session Request payload and the response sent, for its
    /// retransmissions.
    opened: (Vec<u8>, Vec<u8>),
}

impl Session {
    fn accept_seq(&mut self, seq: u32) -> bool {
        if seq == 0 {
            return false;
        }
        let d = seq.wrapping_sub(self.in_highest) as i32;
        if d > 0 && d <= 16 {
            self.in_seen = if d >= 32 { 0 } else { self.in_seen << d };
            self.in_seen |= 1;
            self.in_highest = seq;
            true
        } else if d <= 0 && d > -16 {
            let bit = 1u32 << (-d);
            if self.in_seen & bit != 0 {
                false
            } else {
                self.in_seen |= bit;
                true
            }
        } else {
            false
        }
    }

    fn next_out_seq(&mut self) -> u32 {
        self.out_seq = self.out_seq.wrapping_add(1);
        if self.out_seq == 0 {
            self.out_seq = 1;
        }
        self.out_seq
    }

    fn active_keys(&self) -> Option<&SessionKeys> {
        match &self.state {
            State::Active { keys, .. } => Some(keys),
            _ => None,
        }
    }

    /// Wrap `payload` in an RMCP+ packet for this session.
    fn seal(
        &mut self,
        ptype: u8,
        authenticated: bool,
        encrypted: bool,
        payload: &[u8],
        rng: &mut StdRng,
    ) -> Option<Vec<u8>> {
        let sequence = self.next_out_seq();
        let keys = self.active_keys()?;
        let how = Sealing {
            payload_type: ptype,
            session_id: self.sid_m,
            sequence,
            encrypt_iv: encrypted.then(|| rng.r#gen()),
            authenticate: authenticated,
        };
        Some(codec::seal(keys, &how, payload))
    }

    /// When this session's slot expires without traffic.
    fn expires(&self, config: &BmcConfig) -> Instant {
        let limit = match self.state {
            State::Active { .. } => config.idle_timeout,
            _ => config.handshake_timeout.min(config.idle_timeout),
        };
        self.last_activity + limit
    }
}

/// Fault switches the core itself applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CoreFaults {
    pub(crate) wrong_credentials: bool,
    pub(crate) fan_fail: bool,
}

/// One simulated BMC (sans-IO).
///
/// ```
/// use std::time::Instant;
/// use racker_sim::{Bmc, BmcConfig, Password};
/// let mut bmc = Bmc::new(BmcConfig::new([2, 0, 0, 0, 0, 1], "USER", Password::new("PASS")));
/// // An ASF presence ping is answered with a pong.
/// let ping = [0x06, 0x00, 0xFF, 0x06, 0x00, 0x00, 0x11, 0xBE, 0x80, 0x01, 0x00, 0x00];
/// let out = bmc.handle_datagram(Instant::now(), "127.0.0.1:40000".parse().unwrap(), &ping);
/// assert_eq!(out[0].payload[8], 0x40);
/// ```
#[derive(Debug)]
pub struct Bmc {
    config: BmcConfig,
    guid: [u8; 16],
    chassis: Chassis,
    sessions: Vec<Session>,
    rng: StdRng,
    events: Vec<Event>,
    faults: CoreFaults,
    sel: Sel,
    clock: Option<(Instant, u32)>,
    sdr_reservation: u16,
    identify: Identify,
    global_enables: u8,
    /// Power restore policy (Set Power Restore Policy; Get Chassis Status).
    restore_policy: RestorePolicy,
}

impl Bmc {
    /// A powered-off BMC.
    pub fn new(config: BmcConfig) -> Self {
        let m = config.mac;
        let guid = [
            0x52, 0x41, 0x43, 0x4B, 0x45, 0x52, 0x00, 0x40, 0x80, 0x00, m[0], m[1], m[2], m[3],
            m[4], m[5],
        ];
        let chassis = Chassis::new(config.mac, config.ip, &config.user, &config.password);
        let rng = StdRng::seed_from_u64(config.seed);
        let clock = config.clock;
        Bmc {
            config,
            guid,
            chassis,
            sessions: Vec::new(),
            rng,
            events: Vec::new(),
            faults: CoreFaults::default(),
            sel: Sel::default(),
            clock,
            sdr_reservation: 0,
            identify: Identify::Off,
            // System event logging enabled.
            global_enables: 0x08,
            restore_policy: RestorePolicy::Previous,
        }
    }

    /// The chassis state.
    pub fn chassis(&self) -> &Chassis {
        &self.chassis
    }

    /// Number of sessions (pending handshakes included).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Number of fully established sessions.
    pub fn active_session_count(&self) -> usize {
        self.sessions
            .iter()
            .filter(|s| matches!(s.state, State::Active { .. }))
            .count()
    }

    /// Take the events produced so far.
    pub fn drain_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// The System Event Log, oldest record first (16 bytes each, IPMI 2.0
    /// §32.1).
    pub fn sel_records(&self) -> Vec<[u8; 16]> {
        self.sel.records().copied().collect()
    }

    /// Whether the chassis identify light is on at `now`.
    pub fn identify_on(&self, now: Instant) -> bool {
        self.identify.state(now) != 0
    }

    pub(crate) fn set_core_faults(&mut self, now: Instant, f: CoreFaults) {
        let fan_changed = f.fan_fail != self.faults.fan_fail;
        if fan_changed && !f.fan_fail {
            self.faults = f;
            self.log_fan_fault(now, false);
        }
        self.faults = f;
        if fan_changed && f.fan_fail {
            self.log_fan_fault(now, true);
        }
    }

    /// The BMC restarts: every session (and SOL) is dropped; chassis power
    /// and boot flags survive, as on real hardware.
    pub fn reboot(&mut self) {
        self.sessions.clear();
        self.events.push(Event::BmcReboot);
    }

    /// The node itself changes power (OS shutdown, firmware reboot).
    pub fn node_power(&mut self, now: Instant, on: bool) {
        self.chassis.tick(now, &mut self.events);
        let mark = self.events.len();
        let op = if on { 1 } else { 0 };
        self.chassis.control(now, op, false, &mut self.events);
        self.log_events(now, mark);
    }

    /// The node sets its own boot flags (in-band, like `ipmitool` on the host).
    pub fn node_set_boot_flags(&mut self, now: Instant, flags: BootFlags) {
        self.chassis.tick(now, &mut self.events);
        let mark = self.events.len();
        self.chassis
            .set_boot_flags(now, flags.raw, &mut self.events);
        self.log_events(now, mark);
    }

    /// Disable (true) or enable the 60-s boot-flag timer, like parameter 3.
    pub fn node_set_boot_flag_clearing(&mut self, now: Instant, param3: u8) {
        self.chassis.set_param3(now, param3);
    }

    /// The node writes to its serial console; sent to an active SOL session.
    pub fn console_output(&mut self, now: Instant, bytes: &[u8]) -> Vec<Transmit> {
        self.chassis.log_console(bytes);
        if let Some(s) = self.sessions.iter_mut().find_map(|s| s.sol.as_mut()) {
            s.pending.extend(bytes.iter().copied());
        }
        self.poll(now)
    }

    /// When [`Bmc::poll`] next needs to run.
    pub fn next_timeout(&self) -> Option<Instant> {
        let idle = self.sessions.iter().map(|s| s.expires(&self.config)).min();
        let sol = self
            .sessions
            .iter()
            .filter_map(|s| {
                s.sol
                    .as_ref()
                    .and_then(|sol| sol.inflight.as_ref())
                    .map(|f| f.2 + SOL_RETRY)
            })
            .min();
        [idle, sol, self.chassis.valid_deadline]
            .into_iter()
            .flatten()
            .min()
    }

    /// Run timers: idle sessions, the boot-flag timer, SOL output.
    pub fn poll(&mut self, now: Instant) -> Vec<Transmit> {
        self.chassis.tick(now, &mut self.events);
        let before = self.sessions.len();
        let had_sol = self.sessions.iter().any(|s| s.sol.is_some());
        let config = &self.config;
        self.sessions.retain(|s| now < s.expires(config));
        if had_sol
            && before != self.sessions.len()
            && !self.sessions.iter().any(|s| s.sol.is_some())
        {
            self.events.push(Event::SolDeactivated);
        }
        let mut out = Vec::new();
        for i in 0..self.sessions.len() {
            self.sol_pump(i, now, &mut out);
        }
        out
    }

    fn sol_pump(&mut self, i: usize, now: Instant, out: &mut Vec<Transmit>) {
        let session = &mut self.sessions[i];
        let Some(sol) = session.sol.as_mut() else {
            return;
        };
        let mut send: Option<(u8, Vec<u8>)> = None;
        if let Some((seq, data, sent, attempts)) = &mut sol.inflight
            && now.saturating_duration_since(*sent) >= SOL_RETRY
        {
            if *attempts >= SOL_ATTEMPTS {
                sol.inflight = None;
            } else {
                *sent = now;
                *attempts += 1;
                send = Some((*seq, data.clone()));
            }
        }
        if sol.inflight.is_none() && !sol.pending.is_empty() {
            let n = sol.pending.len().min(SOL_CHUNK);
            let data: Vec<u8> = sol.pending.drain(..n).collect();
            let seq = sol.next_seq;
            sol.next_seq = if sol.next_seq >= 15 {
                1
            } else {
                sol.next_seq + 1
            };
            sol.inflight = Some((seq, data.clone(), now, 1));
            send = Some((seq, data));
        }
        if let Some((seq, data)) = send {
            let (a, e) = (sol.authenticated, sol.encrypted);
            let payload = SolPacket {
                sequence: seq,
                ack_sequence: 0,
                accepted: 0,
                status: 0,
                data,
            }
            .encode();
            let peer = session.peer;
            if let Some(p) = session.seal(payload::SOL, a, e, &payload, &mut self.rng) {
                out.push(Transmit {
                    to: peer,
                    payload: p,
                });
            }
        }
    }

    /// Handle one datagram from `peer` received at `now`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        datagram: &[u8],
    ) -> Vec<Transmit> {
        let mut out = self.poll(now);
        let reply = |payload: Vec<u8>| Transmit { to: peer, payload };
        match codec::parse(datagram) {
            Some(Frame::AsfPing { tag }) => out.push(reply(codec::asf_pong(tag))),
            Some(Frame::V15 {
                auth_type: 0,
                session_id: 0,
                message,
            }) => {
                if let Some(req) = codec::decode_request(message)
                    && let Some((cc, data)) = self.presession_command(&req)
                {
                    out.push(reply(codec::encode_v15_unauthenticated(
                        &req.response(cc, &data),
                    )));
                }
            }
            Some(Frame::V15 { .. }) => {}
            Some(Frame::V20(v)) => self.handle_v20(now, peer, &v, &mut out),
            None => {}
        }
        out
    }

    fn handle_v20(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        v: &V20Packet<'_>,
        out: &mut Vec<Transmit>,
    ) {
        if v.session_id == 0 {
            if v.authenticated || v.encrypted {
                return;
            }
            let response = match v.payload_type {
                payload::IPMI => codec::decode_request(v.payload).and_then(|req| {
                    let (cc, data) = self.presession_command(&req)?;
                    Some((payload::IPMI, req.response(cc, &data)))
                }),
                payload::OPEN_SESSION_REQUEST => self
                    .open_session(now, peer, v.payload)
                    .map(|p| (payload::OPEN_SESSION_RESPONSE, p)),
                payload::RAKP1 => self.rakp1(now, v.payload).map(|p| (payload::RAKP2, p)),
                payload::RAKP3 => self.rakp3(now, v.payload).map(|p| (payload::RAKP4, p)),
                _ => None,
            };
            if let Some((ptype, payload)) = response {
                out.push(Transmit {
                    to: peer,
                    payload: codec::encode_v20_plain(ptype, 0, 0, &payload),
                });
            }
            return;
        }
        let Some(i) = self.sessions.iter().position(|s| s.sid_c == v.session_id) else {
            return;
        };
        let session = &mut self.sessions[i];
        // Integrity is mandatory for our suites; confidentiality is optional
        // per packet (the reply mirrors the request).
        let Some(keys) = session.active_keys() else {
            return;
        };
        let Some(plain) = codec::open(keys, v) else {
            return;
        };
        let fresh = session.accept_seq(v.sequence);
        match v.payload_type {
            payload::IPMI => {
                let Some(req) = codec::decode_request(&plain) else {
                    return;
                };
                if let Some(c) = &session.cached
                    && c.netfn == req.netfn
                    && c.cmd == req.cmd
                    && c.rq_seq == req.rq_seq
                    && c.data == req.data
                    && now.saturating_duration_since(c.at) < DUPLICATE_WINDOW
                {
                    // A retransmission: answer again, do not execute twice.
                    let response = c.response.clone();
                    session.last_activity = now;
                    session.peer = peer;
                    if let Some(p) =
                        session.seal(payload::IPMI, true, v.encrypted, &response, &mut self.rng)
                    {
                        out.push(Transmit {
                            to: peer,
                            payload: p,
                        });
                    }
                    return;
                }
                if !fresh {
                    return;
                }
                session.last_activity = now;
                session.peer = peer;
                let mark = self.events.len();
                let (cc, data, close) = self.session_command(now, i, &req);
                self.log_events(now, mark);
                let response = req.response(cc, &data);
                let session = &mut self.sessions[i];
                session.cached = Some(Cached {
                    netfn: req.netfn,
                    cmd: req.cmd,
                    rq_seq: req.rq_seq,
                    data: req.data.to_vec(),
                    response: response.clone(),
                    at: now,
                });
                if let Some(p) =
                    session.seal(payload::IPMI, true, v.encrypted, &response, &mut self.rng)
                {
                    out.push(Transmit {
                        to: peer,
                        payload: p,
                    });
                }
                if let Some(target) = close {
                    self.close(target);
                } else {
                    self.sol_pump(i, now, out);
                }
            }
            payload::SOL => {
                if !fresh {
                    return;
                }
                session.last_activity = now;
                self.sol_packet(now, i, &plain, out);
            }
            _ => {}
        }
    }

    fn close(&mut self, sid_c: u32) {
        let before = self.sessions.iter().any(|s| s.sol.is_some());
        self.sessions.retain(|s| s.sid_c != sid_c);
        if before && !self.sessions.iter().any(|s| s.sol.is_some()) {
            self.events.push(Event::SolDeactivated);
        }
    }

    fn open_session(&mut self, now: Instant, peer: SocketAddr, p: &[u8]) -> Option<Vec<u8>> {
        let req = OpenSessionRequest::decode(p)?;
        let sid_m = req.sid_m;
        // A retransmission (the console did not see the response in time):
        // the same response again. A new session here would leave the
        // console's RAKP 1, sent for the first one, unanswered.
        if let Some(s) = self
            .sessions
            .iter()
            .find(|s| s.sid_m == sid_m && s.peer == peer && s.opened.0 == p)
        {
            return Some(s.opened.1.clone());
        }
        let error = |code: u8| Some(OpenSessionResponse::error(req.tag, code, sid_m).encode());
        let Some((a, ig, c)) = req.algorithms else {
            return error(status::ILLEGAL_PARAMETER);
        };
        let Some(suite) =
            CipherSuite::from_algorithms(a, ig, c).filter(|s| self.config.suites.contains(s))
        else {
            return error(status::NO_CIPHER_SUITE_MATCH);
        };
        if req.max_privilege > PRIV_ADMIN {
            return error(status::INVALID_ROLE);
        }
        // A console retrying its handshake reuses its session ID.
        self.sessions.retain(|s| {
            !(s.sid_m == sid_m && s.peer == peer && !matches!(s.state, State::Active { .. }))
        });
        if self.sessions.len() >= self.config.max_sessions {
            return error(status::INSUFFICIENT_RESOURCES);
        }
        let sid_c = loop {
            let id: u32 = self.rng.r#gen();
            if id != 0 && !self.sessions.iter().any(|s| s.sid_c == id) {
                break id;
            }
        };
        let granted = if req.max_privilege == 0 {
            PRIV_ADMIN
        } else {
            req.max_privilege
        };
        let handle = (1..=u8::MAX)
            .find(|h| !self.sessions.iter().any(|s| s.handle == *h))
            .unwrap_or(u8::MAX);
        self.sessions.push(Session {
            handle,
            user_id: 0,
            sid_c,
            sid_m,
            peer,
            suite,
            max_priv: granted,
            priv_level: PRIV_USER,
            state: State::Opened,
            last_activity: now,
            in_highest: 0,
            in_seen: 1,
            out_seq: 0,
            cached: None,
            sol: None,
            opened: (Vec::new(), Vec::new()),
        });
        let response = OpenSessionResponse {
            tag: req.tag,
            status: status::OK,
            max_privilege: granted,
            sid_m,
            sid_c,
            algorithms: suite.algorithms(),
        };
        let response = response.encode();
        if let Some(s) = self.sessions.last_mut() {
            s.opened = (p.to_vec(), response.clone());
        }
        Some(response)
    }

    fn user_password(&self, user: usize) -> Vec<u8> {
        let mut key = self
            .chassis
            .users
            .get(user)
            .map(|u| u.password.expose().to_vec())
            .unwrap_or_default();
        if self.faults.wrong_credentials {
            key.extend_from_slice(b"-not-the-configured-password");
        }
        key
    }

    fn rakp1(&mut self, now: Instant, p: &[u8]) -> Option<Vec<u8>> {
        // A retransmitted RAKP 1 gets the RAKP 2 already sent: a new Rc
        // would make the RAKP 3 the console computed from the first one
        // fail its check (RAKP 4 status 0x0f).
        let replay = self.sessions.iter().find_map(|s| match &s.state {
            State::AwaitRakp3 { rakp1, rakp2, .. } if rakp1 == p => Some(rakp2.clone()),
            _ => None,
        });
        if replay.is_some() {
            return replay;
        }
        let Rakp1 {
            tag,
            sid_c,
            rm,
            role,
            user: uname,
        } = Rakp1::decode(p)?;
        let i = self
            .sessions
            .iter()
            .position(|s| s.sid_c == sid_c && !matches!(s.state, State::Active { .. }))?;
        let sid_m = self.sessions[i].sid_m;
        let error = |code: u8| Some(Rakp2::error(tag, code, sid_m).encode());
        let requested = role & 0x0F;
        if uname.len() > 16 {
            self.sessions.remove(i);
            return error(status::INVALID_NAME_LENGTH);
        }
        let user = self.chassis.users.iter().position(|u: &User| {
            u.enabled
                && u.ipmi_messaging
                && !u.name.is_empty()
                && u.name == uname
                && u.privilege <= PRIV_ADMIN
        });
        let Some(user) = user else {
            self.sessions.remove(i);
            return error(status::UNAUTHORIZED_NAME);
        };
        let limit = self.chassis.users[user]
            .privilege
            .min(self.sessions[i].max_priv);
        if requested > PRIV_ADMIN || requested > limit || (requested == 0 && limit == 0) {
            self.sessions.remove(i);
            return error(status::INVALID_ROLE);
        }
        let rc: [u8; 16] = self.rng.r#gen();
        let key = self.user_password(user);
        let session = &mut self.sessions[i];
        let params = RakpParams {
            suite: session.suite,
            sid_m,
            sid_c,
            rm,
            rc,
            guid: self.guid,
            role,
            user: &uname,
        };
        let code = params.rakp2_code(&key);
        session.max_priv = if requested == 0 { limit } else { requested };
        session.user_id = (user + 1) as u8;
        session.state = State::AwaitRakp3 {
            rm,
            rc,
            role,
            uname,
            user,
            rakp1: Vec::new(),
            rakp2: Vec::new(),
        };
        session.last_activity = now;
        let reply = Rakp2 {
            tag,
            status: status::OK,
            sid_m,
            rc,
            guid: self.guid,
            code,
        }
        .encode();
        if let State::AwaitRakp3 { rakp1, rakp2, .. } = &mut session.state {
            *rakp1 = p.to_vec();
            rakp2.clone_from(&reply);
        }
        Some(reply)
    }

    fn rakp3(&mut self, now: Instant, p: &[u8]) -> Option<Vec<u8>> {
        let msg = Rakp3::decode(p)?;
        let i = self.sessions.iter().position(|s| s.sid_c == msg.sid_c)?;
        let sid_m = self.sessions[i].sid_m;
        if let State::Active { rakp4, rakp3, .. } = &self.sessions[i].state {
            // Retransmitted RAKP3: answer again.
            return (rakp3 == p).then(|| rakp4.clone());
        }
        let State::AwaitRakp3 {
            rm,
            rc,
            role,
            uname,
            user,
            ..
        } = self.sessions[i].state.clone()
        else {
            return None;
        };
        if msg.status != status::OK {
            self.sessions.remove(i);
            return None;
        }
        let key = self.user_password(user);
        let params = RakpParams {
            suite: self.sessions[i].suite,
            sid_m,
            sid_c: msg.sid_c,
            rm,
            rc,
            guid: self.guid,
            role,
            user: &uname,
        };
        if !codec::ct_eq(&msg.code, &params.rakp3_code(&key)) {
            self.sessions.remove(i);
            let reply = Rakp4 {
                tag: msg.tag,
                status: status::INVALID_INTEGRITY_CHECK,
                sid_m,
                icv: Vec::new(),
            };
            return Some(reply.encode());
        }
        let keys = params.session_keys(&key);
        let reply = Rakp4 {
            tag: msg.tag,
            status: status::OK,
            sid_m,
            icv: params.rakp4_icv(&keys),
        }
        .encode();
        let session = &mut self.sessions[i];
        session.priv_level = PRIV_USER.min(session.max_priv);
        session.state = State::Active {
            keys,
            rakp4: reply.clone(),
            rakp3: p.to_vec(),
        };
        session.last_activity = now;
        Some(reply)
    }

    /// Commands answered outside a session.
    fn presession_command(&self, req: &LanRequest<'_>) -> Option<(u8, Vec<u8>)> {
        match (req.netfn, req.cmd) {
            command::GET_CHANNEL_AUTH_CAPS => Some(self.auth_caps(req.data)),
            command::GET_CHANNEL_CIPHER_SUITES => {
                Some(cipher_suites(req.data, &self.config.suites))
            }
            command::GET_SYSTEM_GUID => Some((0, self.guid.to_vec())),
            _ => None,
        }
    }

    fn auth_caps(&self, data: &[u8]) -> (u8, Vec<u8>) {
        let Some(&chan) = data.first() else {
            return (cc::REQUEST_DATA_LENGTH_INVALID, Vec::new());
        };
        let ch = chan & 0x0F;
        if ch != 0x0E && ch != 0x01 {
            return (cc::INVALID_DATA_FIELD, Vec::new());
        }
        // channel 1; 2.0 extended data available (b7) + no 1.5 auth types;
        // non-null user names enabled; 2.0 connections supported.
        (0, vec![0x01, 0x80, 0x04, 0x02, 0, 0, 0, 0])
    }

    /// Execute a command inside session `i`; returns (cc, data, close-target).
    fn session_command(
        &mut self,
        now: Instant,
        i: usize,
        req: &LanRequest<'_>,
    ) -> (u8, Vec<u8>, Option<u32>) {
        let priv_level = self.sessions[i].priv_level;
        let need = |level: u8| priv_level >= level;
        let d = req.data;
        let short = (cc::REQUEST_DATA_LENGTH_INVALID, Vec::new(), None);
        let denied = (cc::INSUFFICIENT_PRIVILEGE, Vec::new(), None);
        let ok = |v: Vec<u8>| (0, v, None);
        match (req.netfn, req.cmd) {
            command::GET_CHANNEL_AUTH_CAPS
            | command::GET_CHANNEL_CIPHER_SUITES
            | command::GET_SYSTEM_GUID => match self.presession_command(req) {
                Some((cc, data)) => (cc, data, None),
                None => (cc::INVALID_COMMAND, Vec::new(), None),
            },
            command::GET_DEVICE_ID => ok(vec![
                0x20, 0x81, 0x01, 0x00, 0x02, 0xBF, 0x00, 0x00, 0x00, 0x52, 0x4B, 0, 0, 0, 0,
            ]),
            command::SET_SESSION_PRIVILEGE => {
                let Some(&b) = d.first() else { return short };
                let level = b & 0x0F;
                let session = &mut self.sessions[i];
                if level == 0 {
                    return ok(vec![session.priv_level]);
                }
                if level > session.max_priv || level > PRIV_ADMIN {
                    return (cc::COMMAND_SPECIFIC_81, Vec::new(), None);
                }
                if level < PRIV_USER {
                    return (cc::COMMAND_SPECIFIC_80, Vec::new(), None);
                }
                session.priv_level = level;
                ok(vec![level])
            }
            command::CLOSE_SESSION => {
                let Some(b) = d.get(..4) else { return short };
                let target = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                let target = if target == 0 {
                    self.sessions[i].sid_c
                } else {
                    target
                };
                if target != self.sessions[i].sid_c && !need(PRIV_ADMIN) {
                    return denied;
                }
                if !self.sessions.iter().any(|s| s.sid_c == target) {
                    return (cc::INVALID_SESSION_ID, Vec::new(), None);
                }
                (0, Vec::new(), Some(target))
            }
            command::GET_CHANNEL_INFO => {
                let Some(&c) = d.first() else { return short };
                if !matches!(c & 0x0F, 0x01 | 0x0E) {
                    return (cc::INVALID_DATA_FIELD, Vec::new(), None);
                }
                let active = self.active_session_count().min(63) as u8;
                ok(vec![
                    0x01,
                    0x04,
                    0x01,
                    0x80 | active,
                    0xF2,
                    0x1B,
                    0x00,
                    0x00,
                    0x00,
                ])
            }
            command::GET_USER_ACCESS => {
                let (Some(&c), Some(&u)) = (d.first(), d.get(1)) else {
                    return short;
                };
                let uid = usize::from(u & 0x3F);
                if !matches!(c & 0x0F, 0x01 | 0x0E) || uid == 0 || uid > MAX_USERS {
                    return (cc::INVALID_DATA_FIELD, Vec::new(), None);
                }
                let enabled = self.chassis.users.iter().filter(|u| u.enabled).count() as u8;
                let user = &self.chassis.users[uid - 1];
                let access = UserAccess {
                    max_users: MAX_USERS as u8,
                    enabled_users: enabled,
                    enabled: Some(user.enabled),
                    ipmi_messaging: user.ipmi_messaging,
                    link_auth: user.link_auth,
                    callback_only: false,
                    privilege: Privilege::from_level(user.privilege),
                };
                ok(access.encode())
            }
            command::GET_USER_NAME => {
                let Some(&u) = d.first() else { return short };
                let uid = usize::from(u & 0x3F);
                if uid == 0 || uid > MAX_USERS {
                    return (cc::INVALID_DATA_FIELD, Vec::new(), None);
                }
                ok(encode_user_name(&self.chassis.users[uid - 1].name).to_vec())
            }
            command::SET_USER_ACCESS => {
                if !need(PRIV_ADMIN) {
                    return denied;
                }
                let (Some(&c), Some(&u), Some(&lim)) = (d.first(), d.get(1), d.get(2)) else {
                    return short;
                };
                let uid = usize::from(u & 0x3F);
                if uid <= 1 || uid > MAX_USERS {
                    return (cc::INVALID_DATA_FIELD, Vec::new(), None);
                }
                let user = &mut self.chassis.users[uid - 1];
                if c & 0x80 != 0 {
                    user.link_auth = c & 0x20 != 0;
                    user.ipmi_messaging = c & 0x10 != 0;
                }
                user.privilege = lim & 0x0F;
                ok(Vec::new())
            }
            command::SET_USER_NAME => {
                if !need(PRIV_ADMIN) {
                    return denied;
                }
                let (Some(&u), Some(name)) = (d.first(), d.get(1..17)) else {
                    return short;
                };
                let uid = usize::from(u & 0x3F);
                if uid <= 1 || uid > MAX_USERS {
                    return (cc::INVALID_DATA_FIELD, Vec::new(), None);
                }
                let end = name.iter().position(|&b| b == 0).unwrap_or(16);
                self.chassis.users[uid - 1].name = name[..end].to_vec();
                ok(Vec::new())
            }
            command::SET_USER_PASSWORD => {
                if !need(PRIV_ADMIN) {
                    return denied;
                }
                let (Some(&u), Some(&op)) = (d.first(), d.get(1)) else {
                    return short;
                };
                let uid = usize::from(u & 0x3F);
                let pw_len = if u & 0x80 != 0 { 20 } else { 16 };
                if uid <= 1 || uid > MAX_USERS {
                    return (cc::INVALID_DATA_FIELD, Vec::new(), None);
                }
                let user = &mut self.chassis.users[uid - 1];
                match op & 0x03 {
                    0 => user.enabled = false,
                    1 => user.enabled = true,
                    2 | 3 => {
                        let Some(pw) = d.get(2..2 + pw_len) else {
                            return short;
                        };
                        let end = pw.iter().position(|&b| b == 0).unwrap_or(pw.len());
                        let pw = Password::new(&pw[..end]);
                        if op & 0x03 == 2 {
                            user.password = pw;
                        } else if user.password != pw {
                            return (cc::COMMAND_SPECIFIC_80, Vec::new(), None);
                        }
                    }
                    _ => {}
                }
                ok(Vec::new())
            }
            command::ACTIVATE_PAYLOAD => self.activate_payload(i, d),
            command::DEACTIVATE_PAYLOAD => {
                let Some(&t) = d.first() else { return short };
                if t & 0x3F != 0x01 {
                    return (cc::INVALID_DATA_FIELD, Vec::new(), None);
                }
                match self.sessions.iter().position(|s| s.sol.is_some()) {
                    Some(j) => {
                        self.sessions[j].sol = None;
                        self.events.push(Event::SolDeactivated);
                        ok(Vec::new())
                    }
                    None => (cc::COMMAND_SPECIFIC_80, Vec::new(), None),
                }
            }
            command::GET_PAYLOAD_ACTIVATION_STATUS => {
                let Some(&t) = d.first() else { return short };
                if t & 0x3F != 0x01 {
                    return ok(vec![0, 0, 0]);
                }
                let active = u8::from(self.sessions.iter().any(|s| s.sol.is_some()));
                ok(vec![0x01, active, 0x00])
            }
            command::GET_CHASSIS_STATUS => {
                let c = &self.chassis;
                let last = LastPowerEvent {
                    on_via_ipmi: c.last_on_by_ipmi,
                    ..LastPowerEvent::default()
                };
                let mut status = ChassisStatus::new(c.power, self.restore_policy, last);
                status.fan_fault = self.faults.fan_fail;
                let mut data = status.encode();
                // Identify command and state supported; the state.
                data[2] |= 0x40 | (self.identify.state(now) << 4);
                ok(data)
            }
            command::CHASSIS_CONTROL => {
                if !need(PRIV_OPERATOR) {
                    return denied;
                }
                let Some(&op) = d.first() else { return short };
                let cc = self.chassis.control(now, op, true, &mut self.events);
                (cc, Vec::new(), None)
            }
            command::SET_SYSTEM_BOOT_OPTIONS => {
                if !need(PRIV_OPERATOR) {
                    return denied;
                }
                let Some(&sel) = d.first() else { return short };
                let v = &d[1..];
                let c = &mut self.chassis;
                match sel & 0x7F {
                    0 => {
                        let Some(&b) = v.first() else { return short };
                        if b & 0x03 == 1 && c.boot_set_in_progress == 1 {
                            return (cc::COMMAND_SPECIFIC_81, Vec::new(), None);
                        }
                        c.boot_set_in_progress = b & 0x03;
                    }
                    3 => {
                        let Some(&b) = v.first() else { return short };
                        c.set_param3(now, b);
                    }
                    4 => {
                        let Some(b) = v.get(..2) else { return short };
                        c.boot_param4 = [b[0], b[1]];
                    }
                    5 => {
                        let Some(b) = v.get(..5) else { return short };
                        c.set_boot_flags(now, [b[0], b[1], b[2], b[3], b[4]], &mut self.events);
                    }
                    _ => return (cc::COMMAND_SPECIFIC_80, Vec::new(), None),
                }
                ok(Vec::new())
            }
            command::GET_SYSTEM_BOOT_OPTIONS => {
                let Some(&sel) = d.first() else { return short };
                let c = &self.chassis;
                let param = sel & 0x7F;
                let data: Vec<u8> = match param {
                    0 => vec![c.boot_set_in_progress],
                    3 => vec![c.boot_param3],
                    4 => c.boot_param4.to_vec(),
                    5 => c.boot_param5.to_vec(),
                    _ => return (cc::COMMAND_SPECIFIC_80, Vec::new(), None),
                };
                let mut r = vec![0x01, param];
                r.extend_from_slice(&data);
                ok(r)
            }
            command::GET_LAN_CONFIG => {
                let (Some(&c), Some(&param)) = (d.first(), d.get(1)) else {
                    return short;
                };
                if !matches!(c & 0x0F, 0x01 | 0x0E) {
                    return (cc::INVALID_DATA_FIELD, Vec::new(), None);
                }
                if c & 0x80 != 0 {
                    return ok(vec![0x11]);
                }
                let ch = &self.chassis;
                let data: Vec<u8> = match param {
                    0 => vec![ch.lan_set_in_progress],
                    // No IPMI 1.5 authentication types (RMCP+ only), as Get
                    // Channel Authentication Capabilities says.
                    1 => vec![0x00],
                    2 => vec![0x00, 0x00, 0x00, 0x00, 0x00],
                    3 => ch.lan_ip.to_vec(),
                    4 => vec![ch.lan_ip_source],
                    5 => ch.mac.to_vec(),
                    6 => ch.lan_mask.to_vec(),
                    12 => ch.lan_gateway.to_vec(),
                    _ => return (cc::COMMAND_SPECIFIC_80, Vec::new(), None),
                };
                let mut r = vec![0x11];
                r.extend_from_slice(&data);
                ok(r)
            }
            command::SET_LAN_CONFIG => {
                if !need(PRIV_ADMIN) {
                    return denied;
                }
                let (Some(&c), Some(&param)) = (d.first(), d.get(1)) else {
                    return short;
                };
                if !matches!(c & 0x0F, 0x01 | 0x0E) {
                    return (cc::INVALID_DATA_FIELD, Vec::new(), None);
                }
                let v = &d[2..];
                let ch = &mut self.chassis;
                let four = |v: &[u8]| v.get(..4).map(|b| [b[0], b[1], b[2], b[3]]);
                match param {
                    0 => match v.first() {
                        Some(&b) => ch.lan_set_in_progress = b & 0x03,
                        None => return short,
                    },
                    3 => match four(v) {
                        Some(ip) => ch.lan_ip = ip,
                        None => return short,
                    },
                    4 => match v.first() {
                        Some(&b) if b & 0x0F <= 4 => ch.lan_ip_source = b & 0x0F,
                        Some(_) => return (cc::INVALID_DATA_FIELD, Vec::new(), None),
                        None => return short,
                    },
                    6 => match four(v) {
                        Some(m) => ch.lan_mask = m,
                        None => return short,
                    },
                    12 => match four(v) {
                        Some(g) => ch.lan_gateway = g,
                        None => return short,
                    },
                    5 => return (cc::COMMAND_SPECIFIC_82, Vec::new(), None),
                    _ => return (cc::COMMAND_SPECIFIC_80, Vec::new(), None),
                }
                ok(Vec::new())
            }
            command::GET_SOL_CONFIG => {
                let Some(&param) = d.get(1) else { return short };
                let port = self.config.sol_port.to_le_bytes();
                let data: Vec<u8> = match param {
                    0 => vec![0],
                    1 => vec![1],
                    2 => vec![0x02],
                    3 => vec![0x05, 0x05],
                    4 => vec![3, 7],
                    5 | 6 => vec![0x0A],
                    7 => vec![0x00],
                    8 => port.to_vec(),
                    _ => return (cc::COMMAND_SPECIFIC_80, Vec::new(), None),
                };
                let mut r = vec![0x01];
                r.extend_from_slice(&data);
                ok(r)
            }
            command::SET_SOL_CONFIG => {
                if !need(PRIV_ADMIN) {
                    return denied;
                }
                ok(Vec::new())
            }
            _ => match self.platform_command(now, i, req) {
                Some((cc, data)) => (cc, data, None),
                None => (cc::INVALID_COMMAND, Vec::new(), None),
            },
        }
    }

    fn activate_payload(&mut self, i: usize, d: &[u8]) -> (u8, Vec<u8>, Option<u32>) {
        let (Some(&ptype), Some(&aux)) = (d.first(), d.get(2)) else {
            return (cc::REQUEST_DATA_LENGTH_INVALID, Vec::new(), None);
        };
        if ptype & 0x3F != 0x01 {
            return (cc::INVALID_DATA_FIELD, Vec::new(), None);
        }
        if self.sessions.iter().any(|s| s.sol.is_some()) {
            return (cc::COMMAND_SPECIFIC_80, Vec::new(), None);
        }
        let session = &mut self.sessions[i];
        session.sol = Some(Sol {
            authenticated: aux & 0x40 != 0,
            encrypted: aux & 0x80 != 0,
            next_seq: 1,
            inflight: None,
            pending: VecDeque::new(),
            last_in_seq: 0,
            last_in_len: 0,
        });
        self.events.push(Event::SolActivated);
        let size = (SOL_CHUNK as u16 + 4).to_le_bytes();
        let port = self.config.sol_port.to_le_bytes();
        (
            0,
            vec![
                0, 0, 0, 0, size[0], size[1], size[0], size[1], port[0], port[1], 0xFF, 0xFF,
            ],
            None,
        )
    }

    fn sol_packet(&mut self, now: Instant, i: usize, p: &[u8], out: &mut Vec<Transmit>) {
        let Some(SolPacket {
            sequence: seq,
            ack_sequence: ack,
            accepted,
            data,
            ..
        }) = SolPacket::decode(p)
        else {
            return;
        };
        let session = &mut self.sessions[i];
        let peer = session.peer;
        let Some(sol) = session.sol.as_mut() else {
            return;
        };
        if ack != 0
            && let Some((s, sent, _, _)) = &sol.inflight
            && *s == ack
        {
            let taken = usize::from(accepted).min(sent.len());
            for b in sent[taken..].iter().rev() {
                sol.pending.push_front(*b);
            }
            sol.inflight = None;
        }
        if seq != 0 && !data.is_empty() {
            let len = data.len().min(255) as u8;
            let repeat = seq == sol.last_in_seq && len == sol.last_in_len;
            sol.last_in_seq = seq;
            sol.last_in_len = len;
            let (a, e) = (sol.authenticated, sol.encrypted);
            if !repeat {
                self.events.push(Event::ConsoleInput(data));
            }
            let session = &mut self.sessions[i];
            let ack = SolPacket {
                sequence: 0,
                ack_sequence: seq,
                accepted: len,
                status: 0,
                data: Vec::new(),
            };
            if let Some(pkt) = session.seal(payload::SOL, a, e, &ack.encode(), &mut self.rng) {
                out.push(Transmit {
                    to: peer,
                    payload: pkt,
                });
            }
        }
        self.sol_pump(i, now, out);
    }
}

fn cipher_suites(data: &[u8], suites: &[CipherSuite]) -> (u8, Vec<u8>) {
    let (Some(&chan), Some(&ptype), Some(&index)) = (data.first(), data.get(1), data.get(2)) else {
        return (cc::REQUEST_DATA_LENGTH_INVALID, Vec::new());
    };
    if !matches!(chan & 0x0F, 0x01 | 0x0E) || ptype != 0 {
        return (cc::INVALID_DATA_FIELD, Vec::new());
    }
    let mut records = Vec::new();
    for s in suites {
        let (a, i, c) = s.algorithms();
        records.extend_from_slice(&[0xC0, s.id(), a, 0x40 | i, 0x80 | c]);
    }
    let start = usize::from(index & 0x3F) * 16;
    let mut r = vec![0x01];
    if let Some(chunk) = records.get(start..) {
        r.extend_from_slice(&chunk[..chunk.len().min(16)]);
    }
    (0, r)
}

#[cfg(test)]
mod tests;
