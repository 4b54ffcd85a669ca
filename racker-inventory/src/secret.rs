//! The workspace's one secret string type (BMC passwords, S3 keys).

use std::fmt;

use secrecy::{ExposeSecret as _, SecretString};

/// A secret string backed by `secrecy`: `Debug` and `Display` never show
/// it, and its memory is zeroed when it is dropped. racker-ipmi's byte
/// `Password` (the RAKP key) is backed by `secrecy` the same way.
#[derive(Clone)]
pub struct Secret(SecretString);

/// A BMC password is a [`Secret`].
pub type Password = Secret;

impl Secret {
    /// Wrap a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(SecretString::from(secret.into()))
    }

    /// The secret itself, for the one place that must send or write it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_shown_and_compared_by_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "Secret(<redacted>) <redacted>");
        assert_eq!(s.clone(), Secret::new(String::from("hunter2")));
        assert_ne!(s, Secret::new("hunter3"));
        assert_eq!(s.expose(), "hunter2");
    }
}
