//! Flatcar assets: download (resumable), OpenPGP signature check, atomic
//! install under `<assets>/flatcar/<version>` with a `current` link.
//!
//! Layout under the assets directory (served at `/assets/`):
//!
//! ```text
//! flatcar/4081.2.0/flatcar_production_pxe.vmlinuz (+ .sig)
//! flatcar/4081.2.0/flatcar_production_pxe_image.cpio.gz (+ .sig)
//! flatcar/4081.2.0/flatcar_production_image.bin.bz2 (+ .sig)
//! flatcar/4081.2.0/version.txt                    FLATCAR_VERSION=4081.2.0
//! flatcar/4081.2.0/Flatcar_Image_Signing_Key.asc  the key that verified it
//! flatcar/current -> 4081.2.0
//! flatcar/.partial-4081.2.0/   (downloads in progress, resumed next time)
//! ```
//!
//! A file whose signature does not verify makes the whole fetch fail and
//! its partial download is deleted: nothing is installed and `current` is
//! untouched.

use std::io::Write;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};

use crate::profile::ContentError;

/// File names fetched by default: PXE kernel, PXE initrd, disk image.
pub const FLATCAR_FILES: [&str; 3] = [
    "flatcar_production_pxe.vmlinuz",
    "flatcar_production_pxe_image.cpio.gz",
    "flatcar_production_image.bin.bz2",
];

/// Fingerprint of the primary key of Flatcar's image-signing key,
/// "Flatcar Buildbot (Official Builds) <buildbot@flatcar-linux.org>".
/// Releases are signed by rotating subkeys of it, so racker does not embed
/// a copy that would go stale: the operator installs the current
/// `Flatcar_Image_Signing_Key.asc` (see docs/netboot-content.md).
pub const FLATCAR_KEY_FINGERPRINT: &str = "F88CFEDEFF29A5B4D9523864E25D9AED0593B34A";

/// File name of the signing key under `<state-dir>/keys/`.
pub const SIGNING_KEY_FILE: &str = "Flatcar_Image_Signing_Key.asc";

/// What to fetch.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FetchOptions {
    /// Release channel (`stable`, `beta`, `alpha`, `lts`).
    pub channel: String,
    /// A version like `4081.2.0`, or `current`.
    pub version: String,
    /// Base URL holding `<version>/<file>`; default
    /// `https://<channel>.release.flatcar-linux.net/amd64-usr`.
    pub base_url: Option<String>,
    /// ASCII-armoured public key (certificate) to verify against.
    pub signing_key: String,
    /// Files to fetch (each with its `.sig`).
    pub files: Vec<String>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            channel: "stable".into(),
            version: "current".into(),
            base_url: None,
            signing_key: String::new(),
            files: FLATCAR_FILES.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

impl FetchOptions {
    /// The effective base URL.
    pub fn base(&self) -> String {
        self.base_url
            .clone()
            .unwrap_or_else(|| {
                format!(
                    "https://{}.release.flatcar-linux.net/amd64-usr",
                    self.channel
                )
            })
            .trim_end_matches('/')
            .to_owned()
    }
}

/// Result of a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// `current` already pointed at this version; nothing downloaded.
    AlreadyCurrent {
        /// The version.
        version: String,
    },
    /// Downloaded, verified and installed.
    Installed {
        /// The version.
        version: String,
        /// Its directory.
        dir: PathBuf,
    },
}

/// What the operator reads: `Flatcar <version> is already installed and
/// current` or `Flatcar <version> installed in <dir>`.
impl std::fmt::Display for FetchOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AlreadyCurrent { version } => {
                write!(f, "Flatcar {version} is already installed and current")
            }
            Self::Installed { version, dir } => {
                write!(f, "Flatcar {version} installed in {}", dir.display())
            }
        }
    }
}

/// Progress events for the CLI's progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchEvent {
    /// The version `current` resolved to.
    Resolved(String),
    /// A download starts (`resumed_from` > 0 when resuming).
    Start {
        /// File name.
        file: String,
        /// Bytes already on disk.
        resumed_from: u64,
        /// Total size when the server said.
        total: Option<u64>,
    },
    /// Bytes on disk so far.
    Progress {
        /// File name.
        file: String,
        /// Bytes so far.
        done: u64,
        /// Total size when known.
        total: Option<u64>,
    },
    /// A signature verified.
    Verified(String),
}

/// One progress line per event (sizes in MiB).
impl std::fmt::Display for FetchEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Resolved(v) => write!(f, "current release: {v}"),
            Self::Start {
                file,
                resumed_from,
                total,
            } => {
                write!(f, "downloading {file}")?;
                if let Some(t) = total {
                    write!(f, " ({} MiB)", t >> 20)?;
                }
                if *resumed_from > 0 {
                    write!(f, ", resuming at {resumed_from} bytes")?;
                }
                Ok(())
            }
            Self::Progress { file, done, total } => match total {
                Some(t) if *t > 0 => {
                    write!(f, "  {file}: {}% ({} MiB)", done * 100 / t, done >> 20)
                }
                _ => write!(f, "  {file}: {} MiB", done >> 20),
            },
            Self::Verified(file) => write!(f, "signature of {file} verified"),
        }
    }
}

/// Read the operator's copy of Flatcar's image-signing key (ASCII armour)
/// for [`FetchOptions::signing_key`].
pub fn read_signing_key(path: &Path) -> Result<String, ContentError> {
    std::fs::read_to_string(path).map_err(|source| ContentError::SigningKeyFile {
        path: path.to_owned(),
        source,
    })
}

fn is_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 32
        && v.split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Parse an armoured certificate.
pub fn parse_key(armored: &str) -> Result<SignedPublicKey, ContentError> {
    SignedPublicKey::from_armor_single(armored.as_bytes())
        .map(|(k, _)| k)
        .map_err(|e| ContentError::SigningKey(e.to_string()))
}

/// Verify the detached signature `sig` (binary or armoured) over the file at
/// `path` against the primary key or any subkey of `key`.
pub fn verify_file(key: &SignedPublicKey, path: &Path, sig: &[u8]) -> Result<(), ContentError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bad = |reason: String| ContentError::BadSignature {
        file: name.clone(),
        reason,
    };
    let signature = if sig.starts_with(b"-----BEGIN") {
        DetachedSignature::from_armor_single(sig).map(|(s, _)| s)
    } else {
        DetachedSignature::from_bytes(sig)
    }
    .map_err(|e| bad(format!("unreadable signature: {e}")))?;
    let open = || {
        std::fs::File::open(path)
            .map(std::io::BufReader::new)
            .map_err(|e| ContentError::io("reading", path, e))
    };
    let mut last = match signature.signature.verify(&key.primary_key, open()?) {
        Ok(()) => return Ok(()),
        Err(e) => e.to_string(),
    };
    for sub in &key.public_subkeys {
        match signature.signature.verify(&sub.key, open()?) {
            Ok(()) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(bad(last))
}

/// Fetch, verify and install Flatcar assets under `assets_dir/flatcar`.
pub async fn fetch_flatcar(
    assets_dir: &Path,
    options: &FetchOptions,
    mut on_event: impl FnMut(FetchEvent),
) -> Result<FetchOutcome, ContentError> {
    let key = parse_key(&options.signing_key)?;
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(20))
        .build()
        .map_err(|e| ContentError::Download {
            url: options.base(),
            reason: e.to_string(),
        })?;
    let base = options.base();
    let version = if options.version == "current" {
        let url = format!("{base}/current/version.txt");
        let text = get_text(&client, &url).await?;
        let v = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("FLATCAR_VERSION="))
            .map(|v| v.trim().to_owned())
            .ok_or_else(|| ContentError::Download {
                url: url.clone(),
                reason: "no FLATCAR_VERSION= line".into(),
            })?;
        on_event(FetchEvent::Resolved(v.clone()));
        v
    } else {
        options.version.clone()
    };
    if !is_version(&version) {
        return Err(ContentError::Download {
            url: base,
            reason: format!("{version:?} is not a Flatcar version"),
        });
    }
    let root = assets_dir.join("flatcar");
    std::fs::create_dir_all(&root).map_err(|e| ContentError::io("creating", &root, e))?;
    let final_dir = root.join(&version);
    let current = root.join("current");
    if final_dir.is_dir() {
        // Releases installed before racker wrote these files get them now.
        write_mirror_files(&final_dir, &version, &options.signing_key)?;
        if std::fs::read_link(&current).is_ok_and(|t| t == Path::new(&version)) {
            return Ok(FetchOutcome::AlreadyCurrent { version });
        }
        // Installed earlier (complete by construction): just switch.
        link_current(&root, &version)?;
        return Ok(FetchOutcome::Installed {
            version,
            dir: final_dir,
        });
    }
    let partial = root.join(format!(".partial-{version}"));
    std::fs::create_dir_all(&partial).map_err(|e| ContentError::io("creating", &partial, e))?;
    for file in &options.files {
        if file.contains('/') || file.starts_with('.') {
            return Err(ContentError::Download {
                url: base.clone(),
                reason: format!("bad file name {file:?}"),
            });
        }
        let url = format!("{base}/{version}/{file}");
        download(&client, &url, &partial.join(file), file, &mut on_event).await?;
        let sig_name = format!("{file}.sig");
        let sig_path = partial.join(&sig_name);
        // Signatures are tiny: always fetch them afresh.
        let _ = std::fs::remove_file(&sig_path);
        download(
            &client,
            &format!("{url}.sig"),
            &sig_path,
            &sig_name,
            &mut on_event,
        )
        .await?;
        let sig =
            std::fs::read(&sig_path).map_err(|e| ContentError::io("reading", &sig_path, e))?;
        if let Err(e) = verify_file(&key, &partial.join(file), &sig) {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
        on_event(FetchEvent::Verified(file.clone()));
    }
    write_mirror_files(&partial, &version, &options.signing_key)?;
    // fsync the files, then publish the directory and the link.
    for entry in std::fs::read_dir(&partial)
        .map_err(|e| ContentError::io("reading", &partial, e))?
        .filter_map(Result::ok)
    {
        if let Ok(f) = std::fs::File::open(entry.path()) {
            let _ = f.sync_all();
        }
    }
    std::fs::rename(&partial, &final_dir)
        .map_err(|e| ContentError::io("installing", &final_dir, e))?;
    link_current(&root, &version)?;
    Ok(FetchOutcome::Installed {
        version,
        dir: final_dir,
    })
}

/// What a release directory holds besides the downloads, so that
/// `flatcar-install -b <racker>/assets/flatcar -V current -k <key>` works
/// against racker as against Flatcar's release server: `version.txt`
/// (`FLATCAR_VERSION=<version>`, which flatcar-install reads to resolve
/// `current`) and the signing key the release was verified with
/// ([`SIGNING_KEY_FILE`], which the rendered installer fetches).
fn write_mirror_files(dir: &Path, version: &str, key: &str) -> Result<(), ContentError> {
    for (name, text) in [
        ("version.txt", format!("FLATCAR_VERSION={version}\n")),
        (SIGNING_KEY_FILE, key.to_owned()),
    ] {
        let path = dir.join(name);
        if std::fs::read_to_string(&path).is_ok_and(|t| t == text) {
            continue;
        }
        std::fs::write(&path, text).map_err(|e| ContentError::io("writing", &path, e))?;
    }
    Ok(())
}

/// Point `root/current` at `version` atomically and durably.
fn link_current(root: &Path, version: &str) -> Result<(), ContentError> {
    let current = root.join("current");
    racker_fsutil::symlink_atomic(Path::new(version), &current)
        .map_err(|e| ContentError::io("linking", &current, e))
}

async fn get_text(client: &reqwest::Client, url: &str) -> Result<String, ContentError> {
    let err = |reason: String| ContentError::Download {
        url: url.to_owned(),
        reason,
    };
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| err(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(err(format!("HTTP {}", resp.status())));
    }
    resp.text().await.map_err(|e| err(e.to_string()))
}

/// Download `url` into `dest`, resuming from what is already there.
async fn download(
    client: &reqwest::Client,
    url: &str,
    dest: &Path,
    name: &str,
    on_event: &mut impl FnMut(FetchEvent),
) -> Result<(), ContentError> {
    let err = |reason: String| ContentError::Download {
        url: url.to_owned(),
        reason,
    };
    let have = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
    let mut req = client.get(url);
    if have > 0 {
        req = req.header(reqwest::header::RANGE, format!("bytes={have}-"));
    }
    let resp = req.send().await.map_err(|e| err(e.to_string()))?;
    let status = resp.status();
    let (mut file, start) = match status.as_u16() {
        206 => {
            let f = std::fs::OpenOptions::new()
                .append(true)
                .open(dest)
                .map_err(|e| ContentError::io("opening", dest, e))?;
            (f, have)
        }
        200 => {
            let f =
                std::fs::File::create(dest).map_err(|e| ContentError::io("creating", dest, e))?;
            (f, 0)
        }
        416 if have > 0 => return Ok(()), // already complete
        _ => return Err(err(format!("HTTP {status}"))),
    };
    let total = resp.content_length().map(|l| l + start);
    on_event(FetchEvent::Start {
        file: name.to_owned(),
        resumed_from: start,
        total,
    });
    let mut done = start;
    let mut last_report = done;
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| err(e.to_string()))?;
        file.write_all(&chunk)
            .map_err(|e| ContentError::io("writing", dest, e))?;
        done += chunk.len() as u64;
        if done - last_report >= 8 << 20 {
            last_report = done;
            on_event(FetchEvent::Progress {
                file: name.to_owned(),
                done,
                total,
            });
        }
    }
    file.flush()
        .map_err(|e| ContentError::io("writing", dest, e))?;
    if let Some(t) = total
        && done != t
    {
        return Err(err(format!("connection closed after {done} of {t} bytes")));
    }
    on_event(FetchEvent::Progress {
        file: name.to_owned(),
        done,
        total,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_outcomes_read_as_lines() {
        let start = |resumed_from, total| FetchEvent::Start {
            file: "f".into(),
            resumed_from,
            total,
        };
        assert_eq!(start(0, None).to_string(), "downloading f");
        assert_eq!(
            start(5, Some(3 << 20)).to_string(),
            "downloading f (3 MiB), resuming at 5 bytes"
        );
        let progress = |done, total| FetchEvent::Progress {
            file: "f".into(),
            done,
            total,
        };
        assert_eq!(
            progress(1 << 20, Some(4 << 20)).to_string(),
            "  f: 25% (1 MiB)"
        );
        assert_eq!(progress(2 << 20, Some(0)).to_string(), "  f: 2 MiB");
        assert_eq!(
            FetchOutcome::Installed {
                version: "1.2.3".into(),
                dir: "/a/1.2.3".into()
            }
            .to_string(),
            "Flatcar 1.2.3 installed in /a/1.2.3"
        );
        let err = read_signing_key(Path::new("/nonexistent/key.asc")).unwrap_err();
        assert!(err.to_string().contains(FLATCAR_KEY_FINGERPRINT), "{err}");
    }

    #[test]
    fn versions_validated() {
        assert!(is_version("4081.2.0"));
        for bad in ["", "../x", "1..2", "current", "1.2.3/..", "1.2.a"] {
            assert!(!is_version(bad), "{bad}");
        }
    }

    #[test]
    fn default_base_url_uses_channel() {
        let o = FetchOptions {
            channel: "beta".into(),
            ..FetchOptions::default()
        };
        assert_eq!(o.base(), "https://beta.release.flatcar-linux.net/amd64-usr");
    }
}
