//! BMC credentials (`ipmi_user`, `ipmi_password`).

use std::path::Path;

use crate::error::{Error, Result};
use crate::secret::Password;

/// The rack's BMC credentials (the same for every BMC).
#[derive(Debug, Clone)]
pub struct Credentials {
    /// IPMI user name.
    pub user: String,
    /// IPMI password.
    pub password: Password,
    /// Problems worth telling the operator that do not stop the load
    /// (e.g. a password file readable by other users).
    pub warnings: Vec<String>,
}

impl Credentials {
    /// Load `ipmi_user` and `ipmi_password` from `oem_dir`.
    pub fn load(oem_dir: &Path) -> Result<Self> {
        let user_path = oem_dir.join("ipmi_user");
        let password_path = oem_dir.join("ipmi_password");
        let user = read_value(&user_path)?;
        let password = read_value(&password_path)?;
        let mut warnings = Vec::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = std::fs::metadata(&password_path) {
                let mode = meta.permissions().mode();
                if mode & 0o077 != 0 {
                    warnings.push(format!(
                        "{} is readable by other users (mode {:o}); run: chmod 600 {}",
                        password_path.display(),
                        mode & 0o777,
                        password_path.display()
                    ));
                }
            }
        }
        Ok(Self {
            user,
            password: Password::new(password),
            warnings,
        })
    }
}

fn read_value(path: &Path) -> Result<String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::CredentialMissing {
                path: path.to_owned(),
            });
        }
        Err(source) => {
            return Err(Error::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    let value = text.strip_suffix('\n').unwrap_or(&text);
    let value = value.strip_suffix('\r').unwrap_or(value);
    if value.is_empty() {
        return Err(Error::CredentialEmpty {
            path: path.to_owned(),
        });
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_redacted() {
        let p = Password::new("hunter2");
        assert!(!format!("{p:?}").contains("hunter2"));
        assert!(!format!("{p}").contains("hunter2"));
        assert_eq!(p.expose(), "hunter2");
        let c = Credentials {
            user: "admin".into(),
            password: p,
            warnings: vec![],
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn loads_strips_newline_and_warns_on_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("racker-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ipmi_user"), "admin\n").unwrap();
        std::fs::write(dir.join("ipmi_password"), "s3cret\r\n").unwrap();
        std::fs::set_permissions(
            dir.join("ipmi_password"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let c = Credentials::load(&dir).unwrap();
        assert_eq!(c.user, "admin");
        assert_eq!(c.password.expose(), "s3cret");
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        std::fs::set_permissions(
            dir.join("ipmi_password"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        assert!(Credentials::load(&dir).unwrap().warnings.is_empty());

        std::fs::write(dir.join("ipmi_user"), "\n").unwrap();
        let e = Credentials::load(&dir).unwrap_err().to_string();
        assert!(e.ends_with("ipmi_user: credential file is empty"), "{e}");
        std::fs::remove_file(dir.join("ipmi_user")).unwrap();
        let e = Credentials::load(&dir).unwrap_err().to_string();
        assert!(e.ends_with("ipmi_user: credential file is missing"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
