//! racker-ipmi against a real BMC implementation: OpenIPMI's `ipmi_sim`
//! on loopback, with a chassis_control script recording power and boot
//! state in files.

// Test helpers outside #[test] functions may panic on setup failures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod concurrency;
mod exporter;
mod monitor;
mod rack_sim;
mod sim;
mod text;

use std::time::{Duration, Instant};

use futures::StreamExt;
use racker_ipmi::{
    BmcAddress, BootDevice, CipherPreference, CipherSuite, Credentials, Error, Operation, Output,
    PowerAction, PowerOutcome, Privilege, RawRequest, Session, SessionOptions,
};
use sim::{PASSWORD, Sim, USER};

pub(crate) fn creds() -> Credentials {
    Credentials::new(USER, PASSWORD)
}

pub(crate) fn opts() -> SessionOptions {
    SessionOptions::default()
        .timeout(Duration::from_secs(4))
        .retries(3)
}

#[tokio::test]
async fn auto_cipher_falls_back_to_3_and_reads_chassis_status() {
    let Some(sim) = Sim::start("auto_cipher_falls_back_to_3_and_reads_chassis_status") else {
        return;
    };
    // ipmi_sim rejects suite 17's algorithms; Auto must then use 3.
    let mut s = Session::connect(sim.bmc(), &creds(), &opts())
        .await
        .expect("connect");
    assert_eq!(s.cipher_suite(), CipherSuite::Suite3);
    let st = s.chassis_status().await.expect("status");
    assert!(!st.power_on);
    let id = s.device_id().await.expect("device id");
    // ipmitool's "mc info" on the same simulator: device 0, revision 3,
    // firmware 9.08, manufacturer 4753, product 0x0f02.
    assert_eq!(
        (
            id.device_id,
            id.revision,
            id.firmware_major,
            id.firmware_minor
        ),
        (0, 3, 9, 0x08)
    );
    assert_eq!(id.manufacturer, 4753);
    assert_eq!(id.product, 0x0f02);
    s.close().await.expect("close");

    // Only 17 requested: a typed "no cipher suite" error naming the BMC.
    let only17 = opts().cipher(CipherPreference::Only(CipherSuite::Suite17));
    let err = Session::connect(sim.bmc(), &creds(), &only17)
        .await
        .expect_err("17 unsupported");
    assert!(
        matches!(err, Error::NoCipherSuite { ref tried, .. } if tried == &vec![17]),
        "{err}"
    );
    assert!(err.to_string().contains(&sim.bmc().to_string()));
}

#[tokio::test]
async fn power_is_idempotent_and_recorded_by_the_bmc() {
    let Some(sim) = Sim::start("power_is_idempotent_and_recorded_by_the_bmc") else {
        return;
    };
    let o = opts().cipher(CipherPreference::Only(CipherSuite::Suite3));
    let mut s = Session::connect(sim.bmc(), &creds(), &o)
        .await
        .expect("connect");
    assert_eq!(
        s.power(PowerAction::On).await.expect("on"),
        PowerOutcome::Done
    );
    assert_eq!(sim.state(0, "power"), "1");
    assert!(s.chassis_status().await.expect("status").power_on);
    assert_eq!(
        s.power(PowerAction::On).await.expect("on again"),
        PowerOutcome::AlreadyInState
    );
    assert_eq!(
        s.power(PowerAction::Off).await.expect("off"),
        PowerOutcome::Done
    );
    assert_eq!(sim.state(0, "power"), "0");
    assert!(!s.chassis_status().await.expect("status").power_on);
    assert_eq!(
        s.power(PowerAction::Off).await.expect("off again"),
        PowerOutcome::AlreadyInState
    );
    assert_eq!(
        s.power(PowerAction::Soft).await.expect("soft when off"),
        PowerOutcome::AlreadyInState
    );
    // Cycle of an off chassis powers it on.
    assert_eq!(
        s.power(PowerAction::Cycle).await.expect("cycle"),
        PowerOutcome::PoweredOn
    );
    assert_eq!(sim.state(0, "power"), "1");
    s.close().await.expect("close");
}

#[tokio::test]
async fn boot_device_and_boot_flag_timeout() {
    let Some(sim) = Sim::start("boot_device_and_boot_flag_timeout") else {
        return;
    };
    let mut s = Session::connect(sim.bmc(), &creds(), &opts())
        .await
        .expect("connect");
    s.disable_boot_flag_timeout().await.expect("parameter 3");
    let set = s
        .set_boot_device(BootDevice::Pxe, true, true)
        .await
        .expect("bootdev pxe");
    assert_eq!(set.raw, [0xe0, 0x04, 0, 0, 0]);
    assert_eq!(sim.state(0, "boot"), "pxe");
    let got = s.boot_flags().await.expect("bootparam");
    // ipmi_sim keeps only the device (data1 reads back 0); it is the device we set.
    assert_eq!(got.device, BootDevice::Pxe);
    s.set_boot_device(BootDevice::Disk, true, true)
        .await
        .expect("bootdev disk");
    assert_eq!(sim.state(0, "boot"), "default");
    assert_eq!(
        s.boot_flags().await.expect("bootparam").device,
        BootDevice::Disk
    );
    drop(s);
}

#[tokio::test]
async fn wrong_password_is_an_authentication_error_naming_the_bmc() {
    let Some(sim) = Sim::start("wrong_password_is_an_authentication_error_naming_the_bmc") else {
        return;
    };
    let bad = Credentials::new(USER, "not-the-password");
    let err = Session::connect(sim.bmc(), &bad, &opts())
        .await
        .expect_err("must fail");
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    assert!(err.to_string().contains(&sim.bmc().to_string()), "{err}");
    let unknown = Credentials::new("nobody", PASSWORD);
    let err = Session::connect(sim.bmc(), &unknown, &opts())
        .await
        .expect_err("must fail");
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    // The password never shows up in Debug output.
    assert!(!format!("{:?}", creds()).contains(PASSWORD));
}

#[tokio::test]
async fn unreachable_bmc_times_out_within_the_configured_timeout() {
    // A loopback port nobody listens on.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bmc = BmcAddress::new("127.0.0.1", port);
    let o = SessionOptions::default()
        .timeout(Duration::from_millis(600))
        .retries(2);
    let start = Instant::now();
    let err = Session::connect(&bmc, &creds(), &o)
        .await
        .expect_err("nobody there");
    let took = start.elapsed();
    assert!(matches!(err, Error::Timeout { attempts: 3, .. }), "{err:?}");
    assert!(
        took >= Duration::from_millis(550) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    assert!(err.to_string().contains(&bmc.to_string()));
}

#[tokio::test]
async fn close_session_frees_the_bmc_slot() {
    let Some(sim) = Sim::start("close_session_frees_the_bmc_slot") else {
        return;
    };
    // ipmi_sim has 62 session slots. Holding sessions exhausts them...
    let quick = opts().timeout(Duration::from_millis(800)).retries(1);
    let mut held = Vec::new();
    let refusal = loop {
        match Session::connect(sim.bmc(), &creds(), &quick).await {
            Ok(s) => held.push(s),
            Err(e) => break e,
        }
        assert!(held.len() < 200, "BMC never ran out of session slots");
    };
    assert!(
        matches!(refusal, Error::Handshake { status: 0x01, .. }),
        "{refusal:?}"
    );
    let slots = held.len();
    // ...dropping them sends Close Session, so every slot is free again...
    drop(held);
    let mut again = Vec::new();
    for _ in 0..slots {
        again.push(
            Session::connect(sim.bmc(), &creds(), &quick)
                .await
                .expect("slot freed by drop"),
        );
    }
    for s in again {
        s.close().await.expect("close");
    }
    // ...and so does close(): more sequential sessions than slots all succeed.
    for _ in 0..slots + 5 {
        let mut s = Session::connect(sim.bmc(), &creds(), &quick)
            .await
            .expect("connect");
        s.chassis_status().await.expect("status");
        s.close().await.expect("close");
    }
}

#[tokio::test]
async fn users_can_be_listed_created_and_used() {
    let Some(sim) = Sim::start("users_can_be_listed_created_and_used") else {
        return;
    };
    let mut s = Session::connect(sim.bmc(), &creds(), &opts())
        .await
        .expect("connect");
    let users = s.list_users(1).await.expect("list");
    let admin = users.iter().find(|u| u.name == USER).expect("admin listed");
    assert_eq!(admin.id, 2);
    assert_eq!(admin.access.privilege, Privilege::Administrator);
    // Create user 4 "rotated", enable it. (ipmi_sim, like with ipmitool,
    // cannot log in with 20-byte-form passwords, so use 16 bytes.)
    s.set_user_name(4, "rotated").await.expect("name");
    let pw = racker_ipmi::Password::new("rotated-pw-16ch!");
    s.set_user_password(4, &pw).await.expect("password");
    s.set_user_privilege(1, 4, Privilege::Administrator)
        .await
        .expect("privilege");
    s.set_user_enabled(4, true).await.expect("enable");
    assert_eq!(s.user_name(4).await.expect("name back"), "rotated");
    s.close().await.expect("close");
    // The new credentials open an Administrator session.
    let mut s2 = Session::connect(
        sim.bmc(),
        &Credentials::new("rotated", pw.expose()),
        &opts(),
    )
    .await
    .expect("login as the new user");
    assert!(s2.power(PowerAction::On).await.is_ok());
    s2.close().await.expect("close");
}

#[tokio::test]
async fn raw_request_and_lan_dhcp() {
    let Some(sim) = Sim::start("raw_request_and_lan_dhcp") else {
        return;
    };
    let mut s = Session::connect(sim.bmc(), &creds(), &opts())
        .await
        .expect("connect");
    let r = s
        .raw(RawRequest::new(0x06, 0x01, vec![]))
        .await
        .expect("raw get device id");
    assert_eq!(r.completion_code, 0);
    assert_eq!(r.data[..5], [0x00, 0x03, 0x09, 0x08, 0x02]);
    // An unknown command comes back as a completion code, not an error.
    let r = s
        .raw(RawRequest::new(0x30, 0x99, vec![1, 2]))
        .await
        .expect("raw");
    assert_ne!(r.completion_code, 0);
    match s.set_lan_dhcp(1).await {
        Ok(src) => assert_eq!(src, racker_ipmi::AddressSource::Dhcp),
        Err(Error::CompletionCode { code, .. }) => {
            panic!("ipmi_sim refused LAN parameter 4 with {code:#x}")
        }
        Err(e) => panic!("{e}"),
    }
    s.close().await.expect("close");
}

#[tokio::test]
async fn session_survives_a_bmc_restart() {
    let Some(mut sim) = Sim::start("session_survives_a_bmc_restart") else {
        return;
    };
    let o = SessionOptions::default()
        .timeout(Duration::from_millis(800))
        .retries(2);
    let mut s = Session::connect(sim.bmc(), &creds(), &o)
        .await
        .expect("connect");
    s.chassis_status().await.expect("status");
    sim.restart(); // every session is gone
    let st = s.chassis_status().await.expect("reconnects and answers");
    assert!(!st.power_on);
    s.close().await.expect("close");
}

#[tokio::test]
async fn fan_out_streams_every_result_with_typed_errors() {
    let Some(sim) = Sim::start_many("fan_out_streams_every_result_with_typed_errors", 6) else {
        return;
    };
    let dead_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut targets: Vec<(usize, BmcAddress)> = sim.bmcs.iter().cloned().enumerate().collect();
    targets.push((99, BmcAddress::new("127.0.0.1", dead_port)));
    let o = SessionOptions::default()
        .timeout(Duration::from_millis(900))
        .retries(2);
    let c = creds();
    let op = Operation::Power(PowerAction::On);
    let results: Vec<_> = racker_ipmi::fan_out_operation(targets, &c, &o, &op, 3)
        .collect()
        .await;
    assert_eq!(results.len(), 7);
    for r in &results {
        if r.key == 99 {
            assert!(
                matches!(r.result, Err(Error::Timeout { .. })),
                "{:?}",
                r.result
            );
        } else {
            assert!(
                matches!(r.result, Ok(Output::Power(PowerOutcome::Done))),
                "{:?}",
                r.result
            );
            assert_eq!(sim.state(r.key, "power"), "1");
        }
    }
}
