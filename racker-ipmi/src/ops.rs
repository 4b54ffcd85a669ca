//! Typed IPMI operations on a [`Session`]: chassis, boot options, LAN,
//! users. The byte layouts live in [`crate::codec`].

use crate::client::Session;
use crate::codec::{
    AddressSource, BootDevice, BootFlags, ChassisStatus, DeviceId, PowerAction, PowerOutcome,
    Privilege, RawRequest, UserAccess, UserInfo, decode_user_name,
};
use crate::error::{Error, Result};

fn malformed(s: &Session, command: &str, detail: &str) -> Error {
    Error::Malformed {
        bmc: s.address().to_string(),
        command: command.into(),
        detail: detail.into(),
    }
}

impl Session {
    /// Get Chassis Status, decoded.
    pub async fn chassis_status(&mut self) -> Result<ChassisStatus> {
        let d = self.request(RawRequest::new(0x00, 0x01, vec![])).await?;
        ChassisStatus::decode(&d)
            .ok_or_else(|| malformed(self, "Get Chassis Status", "fewer than 3 bytes"))
    }

    /// Get Device ID, decoded.
    pub async fn device_id(&mut self) -> Result<DeviceId> {
        let d = self.request(RawRequest::new(0x06, 0x01, vec![])).await?;
        DeviceId::decode(&d).ok_or_else(|| malformed(self, "Get Device ID", "fewer than 11 bytes"))
    }

    /// Chassis Control, idempotently: `on` when on and `off`/`soft` when off
    /// succeed without sending anything; `cycle`/`reset` when off power on.
    /// A 0xD5 ("not supported in present state") reply is accepted when the
    /// chassis is in the requested state afterwards.
    pub async fn power(&mut self, action: PowerAction) -> Result<PowerOutcome> {
        let on = self.chassis_status().await?.power_on;
        let (code, outcome) = match (action, on) {
            (PowerAction::On, true) | (PowerAction::Off | PowerAction::Soft, false) => {
                return Ok(PowerOutcome::AlreadyInState);
            }
            (PowerAction::Cycle | PowerAction::Reset, false) => {
                (PowerAction::On.code(), PowerOutcome::PoweredOn)
            }
            _ => (action.code(), PowerOutcome::Done),
        };
        let r = self.raw(RawRequest::new(0x00, 0x02, vec![code])).await?;
        match r.completion_code {
            0 => Ok(outcome),
            0xD5 => {
                let now_on = self.chassis_status().await?.power_on;
                let wanted_on = !matches!(action, PowerAction::Off | PowerAction::Soft);
                if now_on == wanted_on {
                    Ok(PowerOutcome::AlreadyInState)
                } else {
                    Err(self.cc_error("Chassis Control", 0xD5))
                }
            }
            code => Err(self.cc_error("Chassis Control", code)),
        }
    }

    /// Set the boot device via System Boot Options parameter 5.
    pub async fn set_boot_device(
        &mut self,
        device: BootDevice,
        persistent: bool,
        efi: bool,
    ) -> Result<BootFlags> {
        let flags = BootFlags::new(device, persistent, efi);
        self.request(RawRequest::new(0x00, 0x08, flags.encode_request()))
            .await?;
        Ok(flags)
    }

    /// Stop the BMC from clearing the boot flags (parameter 3 = 0x1f: no
    /// 60-s timeout, keep them across power-button, reset, watchdog, PEF).
    pub async fn disable_boot_flag_timeout(&mut self) -> Result<()> {
        self.request(RawRequest::new(0x00, 0x08, vec![0x03, 0x1F]))
            .await?;
        Ok(())
    }

    /// Read System Boot Options parameter 5, decoded.
    pub async fn boot_flags(&mut self) -> Result<BootFlags> {
        let d = self
            .request(RawRequest::new(0x00, 0x09, vec![0x05, 0x00, 0x00]))
            .await?;
        BootFlags::decode_reply(&d)
            .ok_or_else(|| malformed(self, "Get System Boot Options", "not a parameter 5 reply"))
    }

    /// Read LAN parameter 4 (IP address source) on `channel`.
    pub async fn lan_address_source(&mut self, channel: u8) -> Result<AddressSource> {
        let d = self
            .request(RawRequest::new(0x0C, 0x02, vec![channel & 0x0F, 4, 0, 0]))
            .await?;
        match d.get(1) {
            Some(v) => Ok(AddressSource::from_value(*v)),
            None => Err(malformed(
                self,
                "Get LAN Configuration Parameters",
                "no parameter data",
            )),
        }
    }

    /// Set LAN channel's IP address source to DHCP and read it back.
    pub async fn set_lan_dhcp(&mut self, channel: u8) -> Result<AddressSource> {
        self.request(RawRequest::new(0x0C, 0x01, vec![channel & 0x0F, 4, 0x02]))
            .await?;
        self.lan_address_source(channel).await
    }

    /// Get User Access for `user` (1-based) on `channel`.
    pub async fn user_access(&mut self, channel: u8, user: u8) -> Result<UserAccess> {
        let d = self
            .request(RawRequest::new(
                0x06,
                0x44,
                vec![channel & 0x0F, user & 0x3F],
            ))
            .await?;
        UserAccess::decode(&d)
            .ok_or_else(|| malformed(self, "Get User Access", "fewer than 4 bytes"))
    }

    /// Get User Name.
    pub async fn user_name(&mut self, user: u8) -> Result<String> {
        let d = self
            .request(RawRequest::new(0x06, 0x46, vec![user & 0x3F]))
            .await?;
        Ok(decode_user_name(&d))
    }

    /// Every user slot on `channel`.
    pub async fn list_users(&mut self, channel: u8) -> Result<Vec<UserInfo>> {
        let first = self.user_access(channel, 1).await?;
        let mut users = Vec::new();
        for id in 1..=first.max_users.max(1) {
            let access = if id == 1 {
                first
            } else {
                self.user_access(channel, id).await?
            };
            // Unnamed slots answer 0xCB or 0xCC on some BMCs.
            let name = match self.user_name(id).await {
                Ok(n) => n,
                Err(Error::CompletionCode { .. }) => String::new(),
                Err(e) => return Err(e),
            };
            users.push(UserInfo { id, name, access });
        }
        Ok(users)
    }

    /// Set User Name (at most 16 bytes).
    pub async fn set_user_name(&mut self, user: u8, name: &str) -> Result<()> {
        check_user_id(user)?;
        if name.len() > 16 {
            return Err(Error::InvalidArgument(format!(
                "user name {name:?} is longer than 16 bytes"
            )));
        }
        let mut data = vec![user];
        let mut n = name.as_bytes().to_vec();
        n.resize(16, 0);
        data.extend_from_slice(&n);
        self.request(RawRequest::new(0x06, 0x45, data)).await?;
        Ok(())
    }

    /// Set User Password (16-byte form up to 16 bytes, 20-byte form up to 20).
    pub async fn set_user_password(&mut self, user: u8, password: &crate::Password) -> Result<()> {
        check_user_id(user)?;
        let pw = password.expose();
        if pw.len() > 20 {
            return Err(Error::InvalidArgument(
                "password is longer than 20 bytes".into(),
            ));
        }
        let (flag, size) = if pw.len() > 16 {
            (0x80, 20)
        } else {
            (0x00, 16)
        };
        let mut data = vec![user | flag, 0x02];
        let mut p = pw.to_vec();
        p.resize(size, 0);
        data.extend_from_slice(&p);
        self.request(RawRequest::new(0x06, 0x47, data)).await?;
        Ok(())
    }

    /// Enable or disable a user (Set User Password operation 1 / 0).
    pub async fn set_user_enabled(&mut self, user: u8, enabled: bool) -> Result<()> {
        check_user_id(user)?;
        let data = vec![user, u8::from(enabled)];
        self.request(RawRequest::new(0x06, 0x47, data)).await?;
        Ok(())
    }

    /// Set a user's privilege limit on `channel` and allow IPMI messaging
    /// and link authentication.
    pub async fn set_user_privilege(
        &mut self,
        channel: u8,
        user: u8,
        privilege: Privilege,
    ) -> Result<()> {
        check_user_id(user)?;
        let data = vec![
            0x80 | 0x20 | 0x10 | (channel & 0x0F),
            user,
            privilege.level(),
            0,
        ];
        self.request(RawRequest::new(0x06, 0x43, data)).await?;
        Ok(())
    }

    fn cc_error(&self, command: &str, code: u8) -> Error {
        Error::CompletionCode {
            bmc: self.address().to_string(),
            command: command.into(),
            code,
        }
    }
}

fn check_user_id(user: u8) -> Result<()> {
    if user == 0 || user > 63 {
        return Err(Error::InvalidArgument(format!(
            "user id {user} (expected 1..=63)"
        )));
    }
    Ok(())
}
