//! A directory that requested names cannot escape (shared by TFTP and the
//! HTTP `/assets/` route).

use std::path::{Component, Path, PathBuf};

/// Why a requested name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JailError {
    /// The name itself is not acceptable (traversal, absolute, NUL...).
    Refused(&'static str),
    /// No regular file of that name inside the root.
    NotFound,
}

impl std::fmt::Display for JailError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JailError::Refused(why) => write!(f, "refused: {why}"),
            JailError::NotFound => write!(f, "file not found"),
        }
    }
}

/// Check a requested name without touching the file system: returns the
/// normal components, or why the name is refused.
pub fn check_name(name: &str) -> Result<Vec<&str>, JailError> {
    if name.is_empty() {
        return Err(JailError::Refused("empty name"));
    }
    if name.contains('\0') {
        return Err(JailError::Refused("NUL byte in name"));
    }
    if name.contains('\\') {
        return Err(JailError::Refused("backslash in name"));
    }
    if name.starts_with('/') {
        return Err(JailError::Refused("absolute path"));
    }
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(JailError::Refused("parent directory (..) in name")),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(JailError::Refused("no file name"));
    }
    // Belt and braces: the components must be plain file names.
    if parts
        .iter()
        .any(|p| !matches!(Path::new(p).components().next(), Some(Component::Normal(_))))
    {
        return Err(JailError::Refused("unusual path component"));
    }
    Ok(parts)
}

/// A root directory; [`Jail::resolve`] maps names to files inside it only.
#[derive(Debug, Clone)]
pub struct Jail {
    root: PathBuf,
}

impl Jail {
    /// A jail at `root`, which must exist (it is canonicalised once).
    pub fn new(root: &Path) -> std::io::Result<Self> {
        Ok(Self {
            root: root.canonicalize()?,
        })
    }

    /// The canonical root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolve `name` to a regular file inside the root, following symlinks
    /// only while they stay inside.
    pub fn resolve(&self, name: &str) -> Result<PathBuf, JailError> {
        let parts = check_name(name)?;
        let mut candidate = self.root.clone();
        candidate.extend(parts);
        let real = candidate.canonicalize().map_err(|_| JailError::NotFound)?;
        if !real.starts_with(&self.root) {
            return Err(JailError::Refused("symbolic link leads outside the root"));
        }
        match real.metadata() {
            Ok(m) if m.is_file() => Ok(real),
            _ => Err(JailError::NotFound),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_checked() {
        assert_eq!(check_name("a/b.efi").unwrap(), vec!["a", "b.efi"]);
        assert_eq!(check_name("./a//b").unwrap(), vec!["a", "b"]);
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a\0b",
            "a\\..\\b",
            ".",
            "/",
        ] {
            assert!(
                matches!(check_name(bad), Err(JailError::Refused(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn symlinks_inside_ok_outside_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/file"), b"in").unwrap();
        std::fs::write(dir.path().join("secret"), b"out").unwrap();
        std::os::unix::fs::symlink("sub/file", root.join("inside")).unwrap();
        std::os::unix::fs::symlink("../secret", root.join("outside")).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("updir")).unwrap();
        let jail = Jail::new(&root).unwrap();
        assert_eq!(
            std::fs::read(jail.resolve("inside").unwrap()).unwrap(),
            b"in"
        );
        assert!(matches!(
            jail.resolve("outside"),
            Err(JailError::Refused(_))
        ));
        assert!(matches!(
            jail.resolve("updir/secret"),
            Err(JailError::Refused(_))
        ));
        assert_eq!(jail.resolve("sub"), Err(JailError::NotFound));
        assert_eq!(jail.resolve("missing"), Err(JailError::NotFound));
    }
}
