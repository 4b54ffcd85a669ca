//! In-band access to the local BMC through the kernel's IPMI device
//! (`/dev/ipmi0`), using `ipmi-rs`'s ioctl transport (feature `local`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use ipmi_rs::connection::{
    IpmiConnection as _, LogicalUnit, Message, Request, RequestTargetAddress,
};

use crate::codec::{RawRequest, RawResponse};
use crate::error::{Error, Result};
use crate::monitor::Transport;

/// The default in-band device.
pub const DEFAULT_DEVICE: &str = "/dev/ipmi0";

/// The local BMC through `/dev/ipmiN`. Each request blocks the calling
/// thread until the kernel answers (or `timeout` passes); that is fine for
/// the one-BMC CLI use it exists for.
pub struct LocalBmc {
    path: PathBuf,
    file: ipmi_rs::File,
}

impl std::fmt::Debug for LocalBmc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBmc")
            .field("path", &self.path)
            .finish()
    }
}

impl LocalBmc {
    /// Open the device.
    pub fn open(path: impl AsRef<Path>, timeout: Duration) -> Result<LocalBmc> {
        let path = path.as_ref().to_path_buf();
        let file = ipmi_rs::File::new(&path, timeout).map_err(|source| Error::Io {
            bmc: path.display().to_string(),
            op: "open the IPMI device",
            source,
        })?;
        Ok(LocalBmc { path, file })
    }

    fn exchange(&mut self, req: RawRequest) -> Result<RawResponse> {
        let mut request = Request::new(
            Message::new_raw(req.netfn, req.cmd, req.data),
            RequestTargetAddress::Bmc(LogicalUnit::Zero),
        );
        let resp = self
            .file
            .send_recv(&mut request)
            .map_err(|source| Error::Io {
                bmc: self.path.display().to_string(),
                op: "IPMI ioctl",
                source,
            })?;
        Ok(RawResponse {
            netfn: resp.netfn_raw(),
            cmd: resp.cmd(),
            completion_code: resp.cc(),
            data: resp.data().to_vec(),
        })
    }
}

impl LocalBmc {
    /// Run `op` against this BMC: the monitoring commands, raw requests,
    /// boot device and boot-flag timeout. Power, users, diag and the other
    /// LAN-session operations are refused
    /// ([`Error::InvalidArgument`]).
    pub async fn execute(&mut self, op: &crate::Operation) -> Result<crate::Output> {
        match crate::fanout::execute_over(self, op).await {
            Some(out) => out,
            None => Err(Error::InvalidArgument(format!(
                "{}: only sensors, sel, fru, identify, lan print, mc info, chassis, bootdev, boot-timeout and raw work in-band",
                self.path.display()
            ))),
        }
    }
}

impl Transport for LocalBmc {
    fn label(&self) -> String {
        self.path.display().to_string()
    }

    fn raw(
        &mut self,
        req: RawRequest,
    ) -> impl std::future::Future<Output = Result<RawResponse>> + Send {
        let r = self.exchange(req);
        async move { r }
    }
}
