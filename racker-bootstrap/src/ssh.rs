//! The management node's SSH key pair (`<state-dir>/ssh/id_ed25519`,
//! docs/bootstrap.md) and SSH public key files.

use std::path::{Path, PathBuf};

use ssh_key::{Algorithm, LineEnding, PrivateKey};

use crate::fsutil::write_atomic;
use crate::{Error, Result};

/// The management key pair at a path (see [`ensure_key_pair`]).
#[derive(Debug)]
pub struct KeyPair {
    /// The private key.
    pub private: PrivateKey,
    /// It was created just now (it did not exist).
    pub created: bool,
}

fn key_error(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::SshKey {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// Load the management key pair at `path` (+ `.pub`), creating an ed25519
/// pair (comment `racker-management`) when the private key is missing and
/// the public key when only it is missing.
pub fn ensure_key_pair(path: &Path) -> Result<KeyPair> {
    let public_path = PathBuf::from(format!("{}.pub", path.display()));
    let (private, created) = if path.exists() {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
        let key = PrivateKey::from_openssh(&text)
            .map_err(|e| key_error(path, format!("not an OpenSSH private key: {e}")))?;
        (key, false)
    } else {
        let mut rng = rand_core::OsRng;
        let mut key = PrivateKey::random(&mut rng, Algorithm::Ed25519)
            .map_err(|e| key_error(path, format!("generating the key: {e}")))?;
        key.set_comment("racker-management");
        let text = key
            .to_openssh(LineEnding::LF)
            .map_err(|e| key_error(path, format!("encoding the key: {e}")))?;
        write_atomic(path, text.as_bytes(), 0o600)?;
        (key, true)
    };
    if !public_path.exists() {
        let public = private
            .public_key()
            .to_openssh()
            .map_err(|e| key_error(&public_path, format!("encoding the public key: {e}")))?;
        write_atomic(&public_path, format!("{public}\n").as_bytes(), 0o644)?;
    }
    Ok(KeyPair { private, created })
}

/// The keys of SSH public key files (one per line; blank lines and `#`
/// comments skipped).
pub fn read_public_keys(files: &[PathBuf]) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|e| Error::io("reading", file, e))?;
        keys.extend(public_keys_in(&text));
    }
    Ok(keys)
}

/// The keys of one public key file's text.
pub fn public_keys_in(text: &str) -> impl Iterator<Item = String> + '_ {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_pair_is_made_once_and_then_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ssh/id_ed25519");
        let made = ensure_key_pair(&path).unwrap();
        assert!(made.created);
        let public = std::fs::read_to_string(dir.path().join("ssh/id_ed25519.pub")).unwrap();
        assert!(
            public.starts_with("ssh-ed25519 ") && public.trim_end().ends_with("racker-management")
        );
        let loaded = ensure_key_pair(&path).unwrap();
        assert!(!loaded.created);
        assert_eq!(loaded.private, made.private);
        std::fs::write(&path, "not a key").unwrap();
        assert!(matches!(ensure_key_pair(&path), Err(Error::SshKey { .. })));
    }

    #[test]
    fn key_files_skip_comments_and_blank_lines() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys.pub");
        std::fs::write(
            &file,
            "# mine\n\nssh-ed25519 AAAA a@b\n  ssh-rsa BBBB c@d  \n",
        )
        .unwrap();
        assert_eq!(
            read_public_keys(&[file]).unwrap(),
            ["ssh-ed25519 AAAA a@b", "ssh-rsa BBBB c@d"]
        );
        assert!(read_public_keys(&[dir.path().join("missing")]).is_err());
    }
}
