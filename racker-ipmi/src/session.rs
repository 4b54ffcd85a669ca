//! The sans-IO RMCP+ session state machine.
//!
//! [`SessionCore`] takes datagrams and the current time and produces
//! datagrams to send plus [`Event`]s. It never touches a socket or a clock;
//! [`crate::Session`] is the tokio loop around it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::codec::{
    self, CipherSuite, Frame, OpenSessionRequest, OpenSessionResponse, Password, Rakp1, Rakp2,
    Rakp3, Rakp4, RakpParams, RawRequest, RawResponse, Sealing, SessionKeys, SolPacket, V20Packet,
    command, ct_eq, payload, status,
};
use crate::error::Error;

/// User name and password for a BMC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// IPMI user name (at most 16 bytes).
    pub user: String,
    /// IPMI password (at most 20 bytes).
    pub password: Password,
}

impl Credentials {
    /// Build credentials.
    pub fn new(user: impl Into<String>, password: impl AsRef<[u8]>) -> Self {
        Credentials {
            user: user.into(),
            password: Password::new(password),
        }
    }
}

/// Which cipher suites to offer, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CipherPreference {
    /// Suite 17 (SHA-256), then suite 3 if the BMC rejects 17.
    #[default]
    Auto,
    /// Only this suite.
    Only(CipherSuite),
}

impl CipherPreference {
    fn suites(self) -> Vec<CipherSuite> {
        match self {
            CipherPreference::Auto => vec![CipherSuite::Suite17, CipherSuite::Suite3],
            CipherPreference::Only(s) => vec![s],
        }
    }
}

/// Session tuning. `timeout` bounds each exchange (request → reply) in
/// total; it is split evenly over `retries + 1` transmissions.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionOptions {
    /// Cipher suites to offer.
    pub cipher: CipherPreference,
    /// Total time allowed for one exchange, retransmissions included.
    pub timeout: Duration,
    /// Number of retransmissions of an unanswered packet.
    pub retries: u32,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            cipher: CipherPreference::Auto,
            timeout: Duration::from_secs(5),
            retries: 3,
        }
    }
}

impl SessionOptions {
    /// Set the cipher preference.
    pub fn cipher(mut self, cipher: CipherPreference) -> Self {
        self.cipher = cipher;
        self
    }

    /// Set the per-exchange timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Set the number of retransmissions.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    fn interval(&self) -> Duration {
        self.timeout / (self.retries.saturating_add(1)).max(1)
    }
}

/// Administrator privilege level.
const PRIV_ADMIN: u8 = 0x04;

/// What happened, reported by [`SessionCore::poll_event`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// The session is active at Administrator privilege.
    Established {
        /// The negotiated cipher suite.
        suite: CipherSuite,
    },
    /// The reply to the request started with [`SessionCore::send_request`].
    Response(RawResponse),
    /// Serial-over-LAN payload from the BMC (packet sequence, acked
    /// sequence, accepted count, status, characters).
    Sol(SolPacket),
    /// The session ended after [`SessionCore::close`].
    Closed,
    /// The session failed (handshake error, timeout...). No more events follow.
    Failed(Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AuthCaps,
    OpenSession(CipherSuite),
    Rakp1(CipherSuite),
    Rakp3(CipherSuite),
    SetPrivilege,
    Active,
    Closing,
    Closed,
    Failed,
}

#[derive(Debug, Clone)]
enum Resend {
    /// Handshake / pre-session packet: resend the same bytes.
    Bytes(Vec<u8>),
    /// IPMI request in the session: re-encode (same rqSeq, next session sequence).
    Ipmi { rq_seq: u8, req: RawRequest },
}

#[derive(Debug, Clone)]
struct Exchange {
    stage: &'static str,
    resend: Resend,
    started: Instant,
    deadline: Instant,
    attempts: u32,
    /// Internal request (auth caps, privilege, close) rather than the user's.
    internal: bool,
}

/// The RMCP+ session state machine for one BMC (sans-IO).
pub struct SessionCore {
    bmc: String,
    creds: Credentials,
    opts: SessionOptions,
    rng: ChaCha20Rng,
    suites: VecDeque<CipherSuite>,
    tried: Vec<u8>,
    state: State,
    tag: u8,
    busy_retries: u32,
    /// Handshakes started over after RAKP 4 status 0x0f.
    restarts: u32,
    sid_m: u32,
    sid_c: u32,
    rm: [u8; 16],
    rc: [u8; 16],
    guid: [u8; 16],
    keys: Option<SessionKeys>,
    out_seq: u32,
    in_seq_max: u32,
    rq_seq: u8,
    exchange: Option<Exchange>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
}

impl std::fmt::Debug for SessionCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCore")
            .field("bmc", &self.bmc)
            .field("user", &self.creds.user)
            .field("state", &self.state)
            .field("sid_c", &self.sid_c)
            .finish_non_exhaustive()
    }
}

const ROLE: u8 = 0x10 | PRIV_ADMIN; // name-only lookup, Administrator

/// How often Open Session is asked again when the BMC answers
/// "insufficient resources" (every slot taken), and the pauses between.
const BUSY_RETRIES: u32 = 6;
const BUSY_BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BUSY_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How often a handshake starts over after RAKP 4 status 0x0f
/// ("invalid integrity check value") that follows a good RAKP 2.
const HANDSHAKE_RESTARTS: u32 = 2;

impl SessionCore {
    /// Start a session handshake. `bmc` is a label used in errors;
    /// `seed` feeds the generator for session ids, RAKP randoms and IVs.
    pub fn new(
        bmc: impl Into<String>,
        creds: Credentials,
        opts: SessionOptions,
        seed: [u8; 32],
        now: Instant,
    ) -> Self {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let mut sid_m = rng.next_u32();
        if sid_m == 0 {
            sid_m = 1;
        }
        let mut core = SessionCore {
            bmc: bmc.into(),
            creds,
            suites: opts.cipher.suites().into(),
            opts,
            rng,
            tried: Vec::new(),
            state: State::AuthCaps,
            tag: 0,
            busy_retries: 0,
            restarts: 0,
            sid_m,
            sid_c: 0,
            rm: [0; 16],
            rc: [0; 16],
            guid: [0; 16],
            keys: None,
            out_seq: 0,
            in_seq_max: 0,
            rq_seq: 0,
            exchange: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        };
        let user_len = core.creds.user.len();
        let pw_len = core.creds.password.len();
        if user_len > 16 || pw_len > 20 {
            core.fail(Error::InvalidArgument(format!(
                "{}: user name must be at most 16 bytes and password at most 20 bytes",
                core.bmc
            )));
            return core;
        }
        // Get Channel Authentication Capabilities, IPMI 2.0 extended data, Administrator.
        let rq_seq = core.next_rq_seq();
        let msg = codec::encode_request(0x06, 0x38, rq_seq, &[0x8E, PRIV_ADMIN]);
        let pkt = codec::encode_v15_unauthenticated(&msg);
        core.start_exchange(
            now,
            "Get Channel Authentication Capabilities",
            Resend::Bytes(pkt),
            true,
        );
        core
    }

    /// The BMC label given at construction.
    pub fn bmc(&self) -> &str {
        &self.bmc
    }

    /// True once the session is established and not closed or failed.
    pub fn is_active(&self) -> bool {
        self.state == State::Active
    }

    /// True when no request is outstanding (a new one may be sent).
    pub fn is_idle(&self) -> bool {
        self.state == State::Active && self.exchange.is_none()
    }

    /// The negotiated cipher suite, once keys exist.
    pub fn suite(&self) -> Option<CipherSuite> {
        self.keys.as_ref().map(|k| k.suite())
    }

    /// Next datagram to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// Next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`SessionCore::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.exchange.as_ref().map(|e| e.deadline)
    }

    /// Send one IPMI request in the active session. One request may be
    /// outstanding at a time; its reply arrives as [`Event::Response`].
    /// A response network function (odd) or one above 0x3F is refused at
    /// once: no BMC would answer it the way the request is matched.
    pub fn send_request(&mut self, now: Instant, req: RawRequest) -> Result<(), Error> {
        if req.netfn & 1 == 1 || req.netfn > 0x3F {
            return Err(Error::InvalidArgument(format!(
                "{}: network function {:#04x} is not a request network function (it must be even and at most 0x3e)",
                self.bmc, req.netfn
            )));
        }
        if self.state != State::Active || self.exchange.is_some() {
            return Err(Error::NotActive {
                bmc: self.bmc.clone(),
            });
        }
        let rq_seq = self.next_rq_seq();
        self.start_exchange(now, "request", Resend::Ipmi { rq_seq, req }, false);
        Ok(())
    }

    /// Send a SOL payload (fire and forget; SOL has its own acknowledgements).
    pub fn send_sol(&mut self, packet: &SolPacket) -> Result<(), Error> {
        if self.state != State::Active {
            return Err(Error::NotActive {
                bmc: self.bmc.clone(),
            });
        }
        let p = self.encode_authenticated(payload::SOL, &packet.encode());
        self.transmit.push_back(p);
        Ok(())
    }

    /// Close the session (Close Session command); [`Event::Closed`] follows.
    /// Any outstanding request is abandoned.
    pub fn close(&mut self, now: Instant) {
        match self.state {
            State::Active | State::SetPrivilege => {
                self.exchange = None;
                self.state = State::Closing;
                let rq_seq = self.next_rq_seq();
                let req = RawRequest::new(0x06, 0x3C, self.sid_c.to_le_bytes().to_vec());
                self.start_exchange(now, "Close Session", Resend::Ipmi { rq_seq, req }, true);
            }
            State::Closing | State::Closed | State::Failed => {}
            _ => {
                self.exchange = None;
                self.state = State::Closed;
                self.events.push_back(Event::Closed);
            }
        }
    }

    /// A Close Session datagram to send right away without waiting for the
    /// reply (used when a session is dropped). Marks the session closed.
    pub fn close_now(&mut self) -> Option<Vec<u8>> {
        match self.state {
            State::Active | State::SetPrivilege | State::Closing => {
                let rq_seq = self.next_rq_seq();
                let msg = codec::encode_request(0x06, 0x3C, rq_seq, &self.sid_c.to_le_bytes());
                let p = self.encode_authenticated(payload::IPMI, &msg);
                self.exchange = None;
                self.state = State::Closed;
                Some(p)
            }
            _ => None,
        }
    }

    /// Retransmit or give up when the current exchange's deadline passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(ex) = self.exchange.as_mut() else {
            return;
        };
        if now < ex.deadline {
            return;
        }
        if ex.attempts <= self.opts.retries {
            ex.attempts += 1;
            ex.deadline = now + self.opts.interval();
            let resend = ex.resend.clone();
            self.send_resend(&resend);
            return;
        }
        let Some(ex) = self.exchange.take() else {
            return;
        };
        if self.state == State::Closing {
            self.state = State::Closed;
            self.events.push_back(Event::Closed);
            return;
        }
        let stage = match &ex.resend {
            Resend::Ipmi { req, .. } if !ex.internal => command::name(req.netfn, req.cmd),
            _ => ex.stage,
        };
        self.fail(Error::Timeout {
            bmc: self.bmc.clone(),
            stage,
            after: now.saturating_duration_since(ex.started),
            attempts: ex.attempts,
        });
    }

    /// Feed a datagram received from the BMC.
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) {
        match codec::parse(datagram) {
            Some(Frame::V15 {
                auth_type: 0,
                message,
                ..
            }) if self.state == State::AuthCaps => self.on_auth_caps(now, message),
            Some(Frame::V20(pkt)) => {
                if pkt.authenticated || pkt.encrypted {
                    self.on_session_packet(now, &pkt);
                    return;
                }
                match (self.state, pkt.payload_type) {
                    (State::OpenSession(suite), payload::OPEN_SESSION_RESPONSE) => {
                        self.on_open_session(now, suite, pkt.payload)
                    }
                    (State::Rakp1(suite), payload::RAKP2) => self.on_rakp2(now, suite, pkt.payload),
                    (State::Rakp3(suite), payload::RAKP4) => self.on_rakp4(now, suite, pkt.payload),
                    _ => {}
                }
            }
            _ => {}
        }
    }

    // ---- internals ----

    fn next_rq_seq(&mut self) -> u8 {
        self.rq_seq = (self.rq_seq + 1) & 0x3F;
        if self.rq_seq == 0 {
            self.rq_seq = 1;
        }
        self.rq_seq
    }

    fn next_tag(&mut self) -> u8 {
        self.tag = self.tag.wrapping_add(1);
        self.tag
    }

    fn fail(&mut self, err: Error) {
        self.exchange = None;
        self.state = State::Failed;
        self.events.push_back(Event::Failed(err));
    }

    fn start_exchange(
        &mut self,
        now: Instant,
        stage: &'static str,
        resend: Resend,
        internal: bool,
    ) {
        self.send_resend(&resend);
        self.exchange = Some(Exchange {
            stage,
            resend,
            started: now,
            deadline: now + self.opts.interval(),
            attempts: 1,
            internal,
        });
    }

    fn send_resend(&mut self, resend: &Resend) {
        match resend {
            Resend::Bytes(b) => self.transmit.push_back(b.clone()),
            Resend::Ipmi { rq_seq, req } => {
                let msg = codec::encode_request(req.netfn, req.cmd, *rq_seq, &req.data);
                let p = self.encode_authenticated(payload::IPMI, &msg);
                self.transmit.push_back(p);
            }
        }
    }

    fn encode_authenticated(&mut self, payload_type: u8, plain: &[u8]) -> Vec<u8> {
        self.out_seq = self.out_seq.wrapping_add(1);
        if self.out_seq == 0 {
            self.out_seq = 1;
        }
        let Some(keys) = self.keys.as_ref() else {
            return Vec::new();
        };
        let mut iv = [0u8; 16];
        self.rng.fill_bytes(&mut iv);
        let how = Sealing {
            payload_type,
            session_id: self.sid_c,
            sequence: self.out_seq,
            encrypt_iv: Some(iv),
            authenticate: true,
        };
        codec::seal(keys, &how, plain)
    }

    fn on_auth_caps(&mut self, now: Instant, message: &[u8]) {
        let Some(r) = codec::decode_response(message) else {
            return;
        };
        // Only the reply to our request (the only rqSeq used so far).
        let (netfn, cmd) = command::GET_CHANNEL_AUTH_CAPS;
        if r.netfn != netfn | 1 || r.cmd != cmd || r.rq_seq != self.rq_seq {
            return;
        }
        if r.completion_code != 0 {
            self.fail(Error::CompletionCode {
                bmc: self.bmc.clone(),
                command: "Get Channel Authentication Capabilities".into(),
                code: r.completion_code,
            });
            return;
        }
        // [channel][auth types, b7 = extended][status][ext caps b1 = 2.0]...
        let ipmi20 = r.data.len() >= 4 && r.data[1] & 0x80 != 0 && r.data[3] & 0x02 != 0;
        if !ipmi20 {
            self.fail(Error::NotIpmi20 {
                bmc: self.bmc.clone(),
            });
            return;
        }
        self.exchange = None;
        self.next_suite(now);
    }

    fn open_session_packet(&mut self, suite: CipherSuite) -> Vec<u8> {
        let tag = self.next_tag();
        let m = OpenSessionRequest::new(tag, PRIV_ADMIN, self.sid_m, suite).encode();
        codec::encode_v20_plain(payload::OPEN_SESSION_REQUEST, 0, 0, &m)
    }

    fn next_suite(&mut self, now: Instant) {
        let Some(suite) = self.suites.pop_front() else {
            self.fail(Error::NoCipherSuite {
                bmc: self.bmc.clone(),
                tried: self.tried.clone(),
            });
            return;
        };
        self.tried.push(suite.id());
        self.state = State::OpenSession(suite);
        self.busy_retries = 0;
        let pkt = self.open_session_packet(suite);
        self.start_exchange(now, "Open Session", Resend::Bytes(pkt), true);
    }

    fn on_open_session(&mut self, now: Instant, suite: CipherSuite, p: &[u8]) {
        let Some(r) = OpenSessionResponse::decode(p) else {
            if p.len() >= 2 && p[0] == self.tag {
                self.malformed("Open Session", "response shorter than 36 bytes");
            }
            return;
        };
        if r.tag != self.tag {
            return;
        }
        if r.status == status::INSUFFICIENT_RESOURCES && self.busy_retries < BUSY_RETRIES {
            // Every session slot is taken (often by handshakes that never
            // finish): ask again after a growing pause, as the BMC expires
            // them. The retransmission timer sends the new request.
            self.busy_retries += 1;
            let pause = BUSY_BACKOFF_FIRST * (1 << (self.busy_retries - 1).min(3));
            let pkt = self.open_session_packet(suite);
            self.exchange = Some(Exchange {
                stage: "Open Session",
                resend: Resend::Bytes(pkt),
                started: now,
                deadline: now + pause.min(BUSY_BACKOFF_MAX),
                attempts: 0,
                internal: true,
            });
            return;
        }
        if r.status != 0 {
            // Algorithm / cipher suite rejections: try the next suite.
            if matches!(r.status, 0x03..=0x07 | 0x10 | 0x11 | 0x12) {
                self.exchange = None;
                self.next_suite(now);
            } else {
                self.fail(Error::Handshake {
                    bmc: self.bmc.clone(),
                    stage: "Open Session",
                    status: r.status,
                });
            }
            return;
        }
        if r.sid_m != self.sid_m {
            return;
        }
        if r.sid_c == 0 || r.algorithms != suite.algorithms() {
            return self.malformed(
                "Open Session",
                "BMC changed the proposed algorithms or gave session id 0",
            );
        }
        self.sid_c = r.sid_c;
        self.rng.fill_bytes(&mut self.rm);
        let rakp1 = Rakp1 {
            tag: self.next_tag(),
            sid_c: r.sid_c,
            rm: self.rm,
            role: ROLE,
            user: self.creds.user.as_bytes().to_vec(),
        };
        let pkt = codec::encode_v20_plain(payload::RAKP1, 0, 0, &rakp1.encode());
        self.state = State::Rakp1(suite);
        self.start_exchange(now, "RAKP Message 1", Resend::Bytes(pkt), true);
    }

    fn rakp_failure(&self, stage: &'static str, code: u8) -> Error {
        if matches!(
            code,
            status::UNAUTHORIZED_NAME
                | status::INVALID_INTEGRITY_CHECK
                | status::UNAUTHORIZED_ROLE
                | status::INVALID_ROLE
        ) {
            Error::Authentication {
                bmc: self.bmc.clone(),
                reason: format!(
                    "{} status {code:#04x} ({}) for user {:?}",
                    if stage == "RAKP Message 2" {
                        "RAKP2"
                    } else {
                        "RAKP4"
                    },
                    codec::rakp_status_text(code),
                    self.creds.user
                ),
            }
        } else {
            Error::Handshake {
                bmc: self.bmc.clone(),
                stage,
                status: code,
            }
        }
    }

    fn rakp_params(&self, suite: CipherSuite) -> RakpParams<'_> {
        RakpParams {
            suite,
            sid_m: self.sid_m,
            sid_c: self.sid_c,
            rm: self.rm,
            rc: self.rc,
            guid: self.guid,
            role: ROLE,
            user: self.creds.user.as_bytes(),
        }
    }

    fn on_rakp2(&mut self, now: Instant, suite: CipherSuite, p: &[u8]) {
        let Some(r) = Rakp2::decode(p) else {
            if p.len() >= 2 && p[0] == self.tag {
                self.malformed("RAKP Message 2", "too short");
            }
            return;
        };
        if r.tag != self.tag {
            return;
        }
        if r.status != 0 {
            return self.fail(self.rakp_failure("RAKP Message 2", r.status));
        }
        if r.code.len() < suite.hmac_len() {
            return self.malformed("RAKP Message 2", "too short");
        }
        if r.sid_m != self.sid_m {
            return;
        }
        self.rc = r.rc;
        self.guid = r.guid;
        let params = self.rakp_params(suite);
        let kuid = self.creds.password.expose();
        if !ct_eq(&params.rakp2_code(kuid), &r.code[..suite.hmac_len()]) {
            // Tell the BMC (so it frees the session slot), then fail.
            let tag = self.next_tag();
            let reject = Rakp3 {
                tag,
                status: status::INVALID_INTEGRITY_CHECK,
                sid_c: self.sid_c,
                code: Vec::new(),
            };
            self.transmit.push_back(codec::encode_v20_plain(
                payload::RAKP3,
                0,
                0,
                &reject.encode(),
            ));
            return self.fail(Error::Authentication {
                bmc: self.bmc.clone(),
                reason: format!(
                    "wrong password for user {:?} (RAKP2 key exchange code mismatch)",
                    self.creds.user
                ),
            });
        }
        let code = params.rakp3_code(kuid);
        let keys = params.session_keys(kuid);
        self.keys = Some(keys);
        let rakp3 = Rakp3 {
            tag: self.next_tag(),
            status: 0,
            sid_c: self.sid_c,
            code,
        };
        let pkt = codec::encode_v20_plain(payload::RAKP3, 0, 0, &rakp3.encode());
        self.state = State::Rakp3(suite);
        self.start_exchange(now, "RAKP Message 3", Resend::Bytes(pkt), true);
    }

    fn on_rakp4(&mut self, now: Instant, suite: CipherSuite, p: &[u8]) {
        let Some(r) = Rakp4::decode(p) else {
            return;
        };
        if r.tag != self.tag {
            return;
        }
        if r.status == status::INVALID_INTEGRITY_CHECK && self.restarts < HANDSHAKE_RESTARTS {
            // RAKP 2 proved the password, so the BMC's RAKP state is not
            // ours: it answered a retransmitted RAKP 1 with a new Rc (some
            // BMCs do, when their first RAKP 2 came late). Start over.
            self.restarts += 1;
            self.keys = None;
            self.state = State::OpenSession(suite);
            self.busy_retries = 0;
            let pkt = self.open_session_packet(suite);
            self.start_exchange(now, "Open Session", Resend::Bytes(pkt), true);
            return;
        }
        if r.status != 0 {
            return self.fail(self.rakp_failure("RAKP Message 4", r.status));
        }
        if r.icv.len() < suite.icv_len() {
            return self.malformed("RAKP Message 4", "too short");
        }
        let Some(keys) = self.keys.as_ref() else {
            return;
        };
        let icv = self.rakp_params(suite).rakp4_icv(keys);
        if !ct_eq(&icv, &r.icv[..suite.icv_len()]) {
            return self.fail(Error::Authentication {
                bmc: self.bmc.clone(),
                reason: "RAKP4 integrity check value mismatch".into(),
            });
        }
        self.state = State::SetPrivilege;
        let rq_seq = self.next_rq_seq();
        let (netfn, cmd) = command::SET_SESSION_PRIVILEGE;
        let req = RawRequest::new(netfn, cmd, vec![PRIV_ADMIN]);
        self.start_exchange(
            now,
            "Set Session Privilege Level",
            Resend::Ipmi { rq_seq, req },
            true,
        );
    }

    fn on_session_packet(&mut self, now: Instant, pkt: &V20Packet<'_>) {
        let Some(keys) = self.keys.as_ref() else {
            return;
        };
        if pkt.session_id != self.sid_m {
            return;
        }
        let Some(plain) = codec::open(keys, pkt) else {
            return;
        };
        // Replay window: drop packets far behind the newest seen.
        if pkt.sequence == 0 || (self.in_seq_max > 16 && pkt.sequence < self.in_seq_max - 16) {
            return;
        }
        self.in_seq_max = self.in_seq_max.max(pkt.sequence);
        match pkt.payload_type {
            payload::IPMI => self.on_ipmi_response(now, &plain),
            payload::SOL => {
                if let Some(sol) = SolPacket::decode(&plain) {
                    self.events.push_back(Event::Sol(sol));
                }
            }
            _ => {}
        }
    }

    fn on_ipmi_response(&mut self, now: Instant, message: &[u8]) {
        let _ = now;
        let Some(r) = codec::decode_response(message) else {
            return;
        };
        let Some(ex) = self.exchange.as_ref() else {
            return;
        };
        let Resend::Ipmi { rq_seq, req } = &ex.resend else {
            return;
        };
        if r.rq_seq != *rq_seq || r.cmd != req.cmd || r.netfn != req.netfn + 1 {
            return; // stale or unrelated reply
        }
        if r.completion_code == codec::cc::DUPLICATED_REQUEST {
            return; // duplicate of a retransmitted request: the real reply follows
        }
        let internal = ex.internal;
        self.exchange = None;
        match self.state {
            State::SetPrivilege => {
                if r.completion_code != 0 {
                    return self.fail(Error::CompletionCode {
                        bmc: self.bmc.clone(),
                        command: "Set Session Privilege Level (Administrator)".into(),
                        code: r.completion_code,
                    });
                }
                self.state = State::Active;
                let suite = self.suite().unwrap_or(CipherSuite::Suite3);
                self.events.push_back(Event::Established { suite });
            }
            State::Closing => {
                self.state = State::Closed;
                self.events.push_back(Event::Closed);
            }
            State::Active if !internal => {
                self.events.push_back(Event::Response(RawResponse {
                    netfn: r.netfn,
                    cmd: r.cmd,
                    completion_code: r.completion_code,
                    data: r.data,
                }));
            }
            _ => {}
        }
    }

    fn malformed(&mut self, command: &str, detail: &str) {
        self.fail(Error::Malformed {
            bmc: self.bmc.clone(),
            command: command.into(),
            detail: detail.into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn core(now: Instant) -> SessionCore {
        let opts = SessionOptions::default()
            .timeout(Duration::from_secs(4))
            .retries(3);
        SessionCore::new(
            "bmc:623",
            Credentials::new("admin", "pw"),
            opts,
            [7; 32],
            now,
        )
    }

    /// A Get Channel Auth Caps reply announcing IPMI 2.0.
    fn auth_caps_reply(rq_seq: u8) -> Vec<u8> {
        let mut m = vec![0x81, 0x07 << 2];
        m.push(codec::checksum(&m));
        m.extend_from_slice(&[
            0x20,
            rq_seq << 2,
            0x38,
            0x00,
            0x01,
            0x80 | 0x04,
            0x14,
            0x02,
            0,
            0,
            0,
            0,
        ]);
        let c = codec::checksum(&m[3..]);
        m.push(c);
        codec::encode_v15_unauthenticated(&m)
    }

    #[test]
    fn retransmits_identically_then_times_out() {
        let t0 = Instant::now();
        let mut c = core(t0);
        let first = c.poll_transmit().expect("auth caps");
        assert!(c.poll_transmit().is_none());
        for _ in 0..3 {
            let t = c.poll_timeout().expect("deadline");
            c.handle_timeout(t);
            assert_eq!(
                c.poll_transmit().as_ref(),
                Some(&first),
                "same packet, same rqSeq"
            );
        }
        let t = c.poll_timeout().expect("deadline");
        assert_eq!(t.duration_since(t0), Duration::from_secs(4));
        c.handle_timeout(t);
        assert!(c.poll_transmit().is_none());
        match c.poll_event() {
            Some(Event::Failed(Error::Timeout {
                attempts: 4, after, ..
            })) => {
                assert_eq!(after, Duration::from_secs(4))
            }
            other => panic!("{other:?}"),
        }
        assert!(c.poll_timeout().is_none());
    }

    #[test]
    fn auth_caps_reply_leads_to_open_session_for_suite_17_first() {
        let t0 = Instant::now();
        let mut c = core(t0);
        let _ = c.poll_transmit();
        c.handle_datagram(t0, &auth_caps_reply(1));
        let open = c.poll_transmit().expect("open session request");
        assert_eq!(open[5], payload::OPEN_SESSION_REQUEST);
        // Algorithms of suite 17: RAKP-HMAC-SHA256, HMAC-SHA256-128, AES.
        assert_eq!((open[16 + 12], open[16 + 20], open[16 + 28]), (3, 4, 1));
        // A reply with the wrong rqSeq is ignored.
        let mut c2 = core(t0);
        let _ = c2.poll_transmit();
        c2.handle_datagram(t0, &auth_caps_reply(9));
        assert!(c2.poll_transmit().is_none());
    }

    #[test]
    fn insufficient_resources_is_retried_with_back_off() {
        let t0 = Instant::now();
        let mut c = core(t0);
        let _ = c.poll_transmit();
        c.handle_datagram(t0, &auth_caps_reply(1));
        let open = c.poll_transmit().expect("open session request");
        let busy = |tag: u8| {
            let m = OpenSessionResponse::error(tag, status::INSUFFICIENT_RESOURCES, 0).encode();
            codec::encode_v20_plain(payload::OPEN_SESSION_RESPONSE, 0, 0, &m)
        };
        let mut now = t0;
        for (n, pause_ms) in [250u64, 500, 1000, 2000, 2000, 2000]
            .into_iter()
            .enumerate()
        {
            c.handle_datagram(now, &busy(open[16] + n as u8));
            assert!(c.poll_transmit().is_none(), "nothing sent during the pause");
            let at = c.poll_timeout().expect("retry timer");
            assert_eq!(at.duration_since(now), Duration::from_millis(pause_ms));
            c.handle_timeout(at);
            let again = c.poll_transmit().expect("Open Session again");
            assert_eq!(again[5], payload::OPEN_SESSION_REQUEST);
            now = at;
        }
        // The seventh refusal is final.
        c.handle_datagram(now, &busy(open[16] + 6));
        match c.poll_event() {
            Some(Event::Failed(Error::Handshake { status: 0x01, .. })) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn response_netfn_is_refused_before_sending() {
        let mut c = core(Instant::now());
        let err = c
            .send_request(Instant::now(), RawRequest::new(0x07, 0x01, vec![]))
            .expect_err("odd netFn");
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    }

    #[test]
    fn debug_never_shows_the_password() {
        let c = core(Instant::now());
        let shown = format!("{c:?} {:?}", Credentials::new("admin", "hunter2"));
        assert!(
            !shown.contains("hunter2") && !shown.contains("\"pw\""),
            "{shown}"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_datagrams_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            rmcp_plus in any::<bool>(),
            after_caps in any::<bool>(),
        ) {
            let t0 = Instant::now();
            let mut c = core(t0);
            let _ = c.poll_transmit();
            if after_caps {
                c.handle_datagram(t0, &auth_caps_reply(1));
            }
            let mut d = if rmcp_plus { vec![0x06, 0x00, 0xff, 0x07, 0x06] } else { Vec::new() };
            d.extend_from_slice(&bytes);
            c.handle_datagram(t0, &d);
            while c.poll_transmit().is_some() {}
            while c.poll_event().is_some() {}
        }
    }
}
