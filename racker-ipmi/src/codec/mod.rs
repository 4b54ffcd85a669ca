//! The sans-IO IPMI 2.0 codec shared by the client ([`crate::SessionCore`])
//! and racker-sim's simulated BMC: RMCP/RMCP+ framing, the session setup
//! messages, session keys, integrity and confidentiality, cipher suites,
//! typed command/response codecs and completion codes. No sockets, no
//! clock, no tokio: with `default-features = false` this (and the session
//! state machine) is all the crate compiles.
//!
//! ```
//! use racker_ipmi::codec::{self, CipherSuite, Frame, Sealing, SessionKeys, payload};
//! let keys = SessionKeys::derive(CipherSuite::Suite17, b"PASS", &[1; 16], &[2; 16], 0x14, b"USER");
//! let request = codec::encode_request(0x00, 0x01, 1, &[]); // Get Chassis Status
//! let how = Sealing {
//!     payload_type: payload::IPMI,
//!     session_id: 0x0102_0304,
//!     sequence: 1,
//!     encrypt_iv: Some([7; 16]),
//!     authenticate: true,
//! };
//! let packet = codec::seal(&keys, &how, &request);
//! let Some(Frame::V20(v)) = codec::parse(&packet) else { unreachable!() };
//! assert_eq!(codec::open(&keys, &v), Some(request));
//! ```

mod commands;
mod crypto;
mod rakp;
mod secret;
mod wire;

pub use commands::{
    AddressSource, BootDevice, BootFlags, ChassisStatus, DeviceId, LastPowerEvent, PowerAction,
    PowerOutcome, Privilege, RawRequest, RawResponse, RestorePolicy, SolPacket, UserAccess,
    UserInfo, decode_user_name, encode_user_name,
};
pub use crypto::{ALL_SUITES, CipherSuite, RakpParams, SessionKeys, ct_eq};
pub use rakp::{OpenSessionRequest, OpenSessionResponse, Rakp1, Rakp2, Rakp3, Rakp4};
pub use secret::Password;
pub use wire::{
    BMC_ADDR, CONSOLE_ADDR, Frame, LanRequest, LanResponse, RMCP_HEADER, Sealing, V20Packet,
    asf_pong, cc, checksum, completion_code_text, decode_request, decode_response, encode_request,
    encode_v15_unauthenticated, encode_v20_plain, open, parse, payload, rakp_status_text, seal,
    status,
};

/// Privilege levels as numbers (IPMI 2.0 table 6-1): see [`Privilege`].
pub mod privilege {
    /// Callback.
    pub const CALLBACK: u8 = 1;
    /// User.
    pub const USER: u8 = 2;
    /// Operator.
    pub const OPERATOR: u8 = 3;
    /// Administrator.
    pub const ADMINISTRATOR: u8 = 4;
}

/// Network functions and commands this crate speaks, as `(netfn, cmd)`.
pub mod command {
    /// Get Chassis Status.
    pub const GET_CHASSIS_STATUS: (u8, u8) = (0x00, 0x01);
    /// Chassis Control.
    pub const CHASSIS_CONTROL: (u8, u8) = (0x00, 0x02);
    /// Set System Boot Options.
    pub const SET_SYSTEM_BOOT_OPTIONS: (u8, u8) = (0x00, 0x08);
    /// Get System Boot Options.
    pub const GET_SYSTEM_BOOT_OPTIONS: (u8, u8) = (0x00, 0x09);
    /// Get Device ID.
    pub const GET_DEVICE_ID: (u8, u8) = (0x06, 0x01);
    /// Get System GUID.
    pub const GET_SYSTEM_GUID: (u8, u8) = (0x06, 0x37);
    /// Get Channel Authentication Capabilities.
    pub const GET_CHANNEL_AUTH_CAPS: (u8, u8) = (0x06, 0x38);
    /// Set Session Privilege Level.
    pub const SET_SESSION_PRIVILEGE: (u8, u8) = (0x06, 0x3B);
    /// Close Session.
    pub const CLOSE_SESSION: (u8, u8) = (0x06, 0x3C);
    /// Get Channel Info.
    pub const GET_CHANNEL_INFO: (u8, u8) = (0x06, 0x42);
    /// Set User Access.
    pub const SET_USER_ACCESS: (u8, u8) = (0x06, 0x43);
    /// Get User Access.
    pub const GET_USER_ACCESS: (u8, u8) = (0x06, 0x44);
    /// Set User Name.
    pub const SET_USER_NAME: (u8, u8) = (0x06, 0x45);
    /// Get User Name.
    pub const GET_USER_NAME: (u8, u8) = (0x06, 0x46);
    /// Set User Password.
    pub const SET_USER_PASSWORD: (u8, u8) = (0x06, 0x47);
    /// Activate Payload.
    pub const ACTIVATE_PAYLOAD: (u8, u8) = (0x06, 0x48);
    /// Deactivate Payload.
    pub const DEACTIVATE_PAYLOAD: (u8, u8) = (0x06, 0x49);
    /// Get Payload Activation Status.
    pub const GET_PAYLOAD_ACTIVATION_STATUS: (u8, u8) = (0x06, 0x4A);
    /// Get Channel Cipher Suites.
    pub const GET_CHANNEL_CIPHER_SUITES: (u8, u8) = (0x06, 0x54);
    /// Set LAN Configuration Parameters.
    pub const SET_LAN_CONFIG: (u8, u8) = (0x0C, 0x01);
    /// Get LAN Configuration Parameters.
    pub const GET_LAN_CONFIG: (u8, u8) = (0x0C, 0x02);
    /// Set SOL Configuration Parameters.
    pub const SET_SOL_CONFIG: (u8, u8) = (0x0C, 0x21);
    /// Get SOL Configuration Parameters.
    pub const GET_SOL_CONFIG: (u8, u8) = (0x0C, 0x22);

    /// A human name for a known command (for errors).
    pub fn name(netfn: u8, cmd: u8) -> &'static str {
        match (netfn, cmd) {
            GET_CHASSIS_STATUS => "Get Chassis Status",
            CHASSIS_CONTROL => "Chassis Control",
            SET_SYSTEM_BOOT_OPTIONS => "Set System Boot Options",
            GET_SYSTEM_BOOT_OPTIONS => "Get System Boot Options",
            GET_DEVICE_ID => "Get Device ID",
            GET_SYSTEM_GUID => "Get System GUID",
            GET_CHANNEL_AUTH_CAPS => "Get Channel Authentication Capabilities",
            SET_SESSION_PRIVILEGE => "Set Session Privilege Level",
            CLOSE_SESSION => "Close Session",
            GET_CHANNEL_INFO => "Get Channel Info",
            SET_USER_ACCESS => "Set User Access",
            GET_USER_ACCESS => "Get User Access",
            SET_USER_NAME => "Set User Name",
            GET_USER_NAME => "Get User Name",
            SET_USER_PASSWORD => "Set User Password",
            ACTIVATE_PAYLOAD => "Activate Payload",
            DEACTIVATE_PAYLOAD => "Deactivate Payload",
            GET_PAYLOAD_ACTIVATION_STATUS => "Get Payload Activation Status",
            GET_CHANNEL_CIPHER_SUITES => "Get Channel Cipher Suites",
            SET_LAN_CONFIG => "Set LAN Configuration Parameters",
            GET_LAN_CONFIG => "Get LAN Configuration Parameters",
            SET_SOL_CONFIG => "Set SOL Configuration Parameters",
            GET_SOL_CONFIG => "Get SOL Configuration Parameters",
            _ => "IPMI request",
        }
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn suite() -> impl Strategy<Value = CipherSuite> {
        prop_oneof![Just(CipherSuite::Suite3), Just(CipherSuite::Suite17)]
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..160),
            prefix in 0usize..4,
        ) {
            // Reach the inner parsers too: put a valid RMCP / session head in front.
            let heads: [&[u8]; 4] = [&[], &[0x06, 0x00, 0xFF, 0x07], &[0x06, 0x00, 0xFF, 0x07, 0x06], &[0x06, 0x00, 0xFF, 0x07, 0x00]];
            let mut d = heads[prefix].to_vec();
            d.extend_from_slice(&bytes);
            let keys = SessionKeys::derive(CipherSuite::Suite3, b"k", &[0; 16], &[0; 16], 0x14, b"u");
            if let Some(Frame::V20(v)) = parse(&d) {
                let _ = open(&keys, &v);
            }
            let _ = decode_request(&bytes);
            let _ = decode_response(&bytes);
            let _ = OpenSessionRequest::decode(&bytes);
            let _ = OpenSessionResponse::decode(&bytes);
            let _ = Rakp1::decode(&bytes);
            let _ = Rakp2::decode(&bytes);
            let _ = Rakp3::decode(&bytes);
            let _ = Rakp4::decode(&bytes);
            let _ = keys.decrypt(&bytes);
        }

        #[test]
        fn seal_then_open_round_trips(
            suite in suite(),
            kuid in proptest::collection::vec(any::<u8>(), 0..20),
            body in proptest::collection::vec(any::<u8>(), 0..300),
            payload_type in prop_oneof![Just(payload::IPMI), Just(payload::SOL)],
            session_id: u32,
            sequence: u32,
            iv in proptest::option::of(any::<[u8; 16]>()),
        ) {
            let keys = SessionKeys::derive(suite, &kuid, &[3; 16], &[4; 16], 0x14, b"admin");
            let how = Sealing { payload_type, session_id, sequence, encrypt_iv: iv, authenticate: true };
            let packet = seal(&keys, &how, &body);
            let Some(Frame::V20(v)) = parse(&packet) else {
                return Err(TestCaseError::fail("sealed packet does not parse"));
            };
            prop_assert_eq!((v.payload_type, v.session_id, v.sequence), (payload_type, session_id, sequence));
            prop_assert_eq!(v.encrypted, iv.is_some());
            prop_assert_eq!(open(&keys, &v), Some(body));
            // Any flipped bit in the covered part or the AuthCode is refused.
            let mut forged = packet.clone();
            let at = 4 + (sequence as usize % (forged.len() - 4));
            forged[at] ^= 1;
            if let Some(Frame::V20(f)) = parse(&forged) {
                prop_assert_eq!(open(&keys, &f), None);
            }
        }

        #[test]
        fn lan_request_response_round_trip(
            netfn in (0u8..32).prop_map(|n| n * 2),
            cmd: u8,
            rq_seq in 0u8..64,
            data in proptest::collection::vec(any::<u8>(), 0..40),
            code: u8,
        ) {
            let m = encode_request(netfn, cmd, rq_seq, &data);
            let req = decode_request(&m).expect("decodes");
            prop_assert_eq!((req.netfn, req.cmd, req.rq_seq, req.data), (netfn, cmd, rq_seq, &data[..]));
            let r = decode_response(&req.response(code, &data)).expect("decodes");
            prop_assert_eq!((r.netfn, r.cmd, r.rq_seq, r.completion_code), (netfn | 1, cmd, rq_seq, code));
            prop_assert_eq!(r.data, data);
        }
    }
}
