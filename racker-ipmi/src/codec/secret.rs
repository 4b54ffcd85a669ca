//! The one secret type for BMC passwords (client and simulated BMC).

use secrecy::{ExposeSecret as _, SecretSlice};
use zeroize::Zeroize;

/// A BMC password (the RAKP user key K_UID), backed by `secrecy` like
/// racker-inventory's `Secret`: `Debug` shows `Password(<redacted>)`, the
/// bytes are zeroed when dropped, and comparison is constant-time. IPMI
/// allows at most 20 bytes; the session refuses longer ones with a clear
/// error.
#[derive(Clone)]
pub struct Password(SecretSlice<u8>);

impl Password {
    /// Wrap a password.
    pub fn new(password: impl AsRef<[u8]>) -> Self {
        Password(SecretSlice::from(password.as_ref().to_vec()))
    }

    /// The password bytes (only for handing them to the BMC or the HMAC).
    pub fn expose(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.expose().len()
    }

    /// True for the empty password.
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl PartialEq for Password {
    fn eq(&self, other: &Self) -> bool {
        super::crypto::ct_eq(self.expose(), other.expose())
    }
}

impl Eq for Password {}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl From<&str> for Password {
    fn from(s: &str) -> Self {
        Password::new(s)
    }
}

impl From<String> for Password {
    fn from(mut s: String) -> Self {
        let p = Password::new(&s);
        s.zeroize();
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_and_compared_by_value() {
        let p = Password::new("hunter2");
        assert_eq!(format!("{p:?}"), "Password(<redacted>)");
        assert_eq!(p, Password::from("hunter2".to_owned()));
        assert_ne!(p, Password::new("hunter3"));
        assert_eq!(p.expose(), b"hunter2");
    }
}
