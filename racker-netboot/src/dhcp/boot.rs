//! Which boot file a PXE, iPXE or UEFI HTTP-boot client gets.

use std::net::Ipv4Addr;

use super::DhcpError;

/// Boot files and URLs handed to netbooting clients.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BootConfig {
    /// `siaddr` (TFTP server); `None` means the server's own address.
    pub next_server: Option<Ipv4Addr>,
    /// Base URL of the HTTP server, without a trailing slash
    /// (e.g. `http://172.24.213.1:8080`).
    pub http_base: String,
    /// Path of the iPXE boot script on the HTTP server.
    pub ipxe_script_path: String,
    /// TFTP file for legacy BIOS clients (option 93 = 0).
    pub bios_file: String,
    /// TFTP file for x86 UEFI clients (option 93 = 6, 7, 9).
    pub efi_file: String,
    /// TFTP file for ARM64 UEFI clients (option 93 = 11); `None` leaves them
    /// without a boot file.
    pub arm64_file: Option<String>,
    /// Path on the HTTP server of the EFI binary for UEFI HTTP-boot clients
    /// (vendor class `HTTPClient`).
    pub http_boot_path: String,
}

impl BootConfig {
    /// Defaults: `undionly.kpxe`, `ipxe.efi`, `ipxe-arm64.efi`, script
    /// `/boot.ipxe` and HTTP boot of `/ipxe.efi`, all under `http_base`.
    pub fn new(http_base: impl Into<String>) -> Self {
        let mut http_base = http_base.into();
        while http_base.ends_with('/') {
            http_base.pop();
        }
        Self {
            next_server: None,
            http_base,
            ipxe_script_path: "/boot.ipxe".to_owned(),
            bios_file: "undionly.kpxe".to_owned(),
            efi_file: "ipxe.efi".to_owned(),
            arm64_file: Some("ipxe-arm64.efi".to_owned()),
            http_boot_path: "/ipxe.efi".to_owned(),
        }
    }

    /// URL of the iPXE boot script.
    pub fn ipxe_script_url(&self) -> String {
        format!("{}{}", self.http_base, self.ipxe_script_path)
    }

    /// URL of the EFI binary for UEFI HTTP boot.
    pub fn http_boot_url(&self) -> String {
        format!("{}{}", self.http_base, self.http_boot_path)
    }

    pub(crate) fn validate(&self) -> Result<(), DhcpError> {
        if !self.http_base.starts_with("http://") && !self.http_base.starts_with("https://") {
            return Err(DhcpError::Config(format!(
                "HTTP base {:?} is not an http:// URL",
                self.http_base
            )));
        }
        for path in [&self.ipxe_script_path, &self.http_boot_path] {
            if !path.starts_with('/') {
                return Err(DhcpError::Config(format!(
                    "HTTP path {path:?} must start with '/'"
                )));
            }
        }
        let files = [
            Some(&self.bios_file),
            Some(&self.efi_file),
            self.arm64_file.as_ref(),
        ];
        for file in files.into_iter().flatten() {
            if file.is_empty() || file.len() > 127 {
                return Err(DhcpError::Config(format!(
                    "boot file name {file:?} must be 1-127 bytes"
                )));
            }
        }
        for url in [self.ipxe_script_url(), self.http_boot_url()] {
            if url.len() > 255 {
                return Err(DhcpError::Config(format!(
                    "boot URL {url:?} is longer than 255 bytes"
                )));
            }
        }
        Ok(())
    }
}

/// What a client asked for, as far as booting goes.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BootRequest<'a> {
    /// Option 93, first architecture only (dhcproto keeps one).
    pub(crate) arch: Option<u16>,
    /// Option 60.
    pub(crate) vendor_class: Option<&'a [u8]>,
    /// Option 77, raw bytes.
    pub(crate) user_class: Option<&'a [u8]>,
}

impl BootRequest<'_> {
    pub(crate) fn is_ipxe(&self) -> bool {
        // iPXE sends the bare string, not the RFC 3004 length-prefixed form.
        self.user_class == Some(b"iPXE".as_slice())
    }

    pub(crate) fn is_http_client(&self) -> bool {
        self.vendor_class
            .is_some_and(|v| v.starts_with(b"HTTPClient"))
    }

    pub(crate) fn is_pxe_client(&self) -> bool {
        self.vendor_class
            .is_some_and(|v| v.starts_with(b"PXEClient"))
    }

    /// True for any client that wants to netboot.
    pub(crate) fn is_netboot(&self) -> bool {
        self.is_ipxe() || self.is_http_client() || self.is_pxe_client() || self.arch.is_some()
    }
}

/// The boot file chosen for a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootFile {
    /// A file name on the TFTP server (`siaddr`).
    Tftp(String),
    /// An HTTP URL (iPXE script or UEFI HTTP boot).
    Http(String),
}

impl BootFile {
    /// The value for the `file` field / option 67.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Tftp(s) | Self::Http(s) => s,
        }
    }
}

/// The decision for one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BootDecision {
    pub(crate) file: Option<BootFile>,
    /// Why there is no file (for the log line).
    pub(crate) note: Option<&'static str>,
}

/// Choose the boot file. `installed` nodes get none.
pub(crate) fn choose(config: &BootConfig, req: &BootRequest<'_>, installed: bool) -> BootDecision {
    let none = |note| BootDecision {
        file: None,
        note: Some(note),
    };
    if !req.is_netboot() {
        return BootDecision {
            file: None,
            note: None,
        };
    }
    if installed {
        return none("installed, boot from disk");
    }
    if req.is_ipxe() {
        return BootDecision {
            file: Some(BootFile::Http(config.ipxe_script_url())),
            note: None,
        };
    }
    if req.is_http_client() {
        return BootDecision {
            file: Some(BootFile::Http(config.http_boot_url())),
            note: None,
        };
    }
    let tftp = |name: &String| BootDecision {
        file: Some(BootFile::Tftp(name.clone())),
        note: None,
    };
    match req.arch {
        // PXEClient without option 93: assume a legacy BIOS.
        None | Some(0) => tftp(&config.bios_file),
        Some(6 | 7 | 9) => tftp(&config.efi_file),
        Some(11) => match &config.arm64_file {
            Some(f) => tftp(f),
            None => none("ARM64 boot file not configured"),
        },
        // x86-64 / ARM64 UEFI HTTP boot (RFC 4578 registry 16, 19).
        Some(16 | 19) => BootDecision {
            file: Some(BootFile::Http(config.http_boot_url())),
            note: None,
        },
        Some(_) => none("unsupported client architecture"),
    }
}
