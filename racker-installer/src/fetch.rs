//! Fetching release indexes, archives and assets over `http(s)://` and
//! `file://`, hashing while writing.

use std::io::Write;
use std::path::Path;

use url::Url;

use crate::digest::{Hasher, Sha256Digest};
use crate::error::{Error, IoContext, Result};

/// Parse a URL we can fetch: `http`, `https` or `file`.
pub fn parse_url(text: &str) -> Result<Url> {
    let url = Url::parse(text).map_err(|e| Error::BadUrl {
        url: text.to_owned(),
        reason: e.to_string(),
    })?;
    match url.scheme() {
        "http" | "https" | "file" => Ok(url),
        other => Err(Error::BadUrl {
            url: text.to_owned(),
            reason: format!("scheme {other:?} is not http, https or file"),
        }),
    }
}

/// Resolve `reference` (absolute, or relative to `base`).
pub fn resolve(base: &Url, reference: &str) -> Result<Url> {
    let joined = base.join(reference).map_err(|e| Error::BadUrl {
        url: reference.to_owned(),
        reason: e.to_string(),
    })?;
    parse_url(joined.as_str())
}

/// An HTTP client plus `file://` support.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
}

impl Default for Fetcher {
    fn default() -> Self {
        Self::new()
    }
}

impl Fetcher {
    /// A fetcher with a 30-second connect timeout.
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(30))
            .user_agent(concat!("racker-installer/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { client }
    }

    /// The whole body of `url`, refusing more than `limit` bytes.
    pub async fn bytes(&self, url: &Url, limit: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.stream(url, limit, &mut |chunk| {
            out.extend_from_slice(chunk);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Write the body of `url` to a new file `dest` (which must not exist)
    /// and return its SHA-256. On error the partial file is removed.
    pub async fn to_file(&self, url: &Url, dest: &Path) -> Result<Sha256Digest> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dest)
            .ctx("create", dest)?;
        let mut hasher = Hasher::default();
        let result = self
            .stream(url, u64::MAX, &mut |chunk| {
                hasher.update(chunk);
                file.write_all(chunk).ctx("write", dest)
            })
            .await
            .and_then(|()| file.sync_all().ctx("sync", dest));
        if let Err(e) = result {
            drop(file);
            let _ = std::fs::remove_file(dest);
            return Err(e);
        }
        Ok(hasher.finish())
    }

    async fn stream(
        &self,
        url: &Url,
        limit: u64,
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let too_large = || Error::TooLarge {
            url: url.to_string(),
            limit,
        };
        if url.scheme() == "file" {
            let path = url.to_file_path().map_err(|()| Error::BadUrl {
                url: url.to_string(),
                reason: "not a local file path".into(),
            })?;
            let mut file = std::fs::File::open(&path).ctx("open", &path)?;
            let mut buf = vec![0u8; 64 * 1024];
            let mut total = 0u64;
            loop {
                let n = std::io::Read::read(&mut file, &mut buf).ctx("read", &path)?;
                if n == 0 {
                    return Ok(());
                }
                total += n as u64;
                if total > limit {
                    return Err(too_large());
                }
                sink(&buf[..n])?;
            }
        }
        let http = |source| Error::Http {
            url: url.to_string(),
            source,
        };
        let mut response = self.client.get(url.clone()).send().await.map_err(http)?;
        if !response.status().is_success() {
            return Err(Error::HttpStatus {
                url: url.to_string(),
                status: response.status().as_u16(),
            });
        }
        let mut total = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(http)? {
            total += chunk.len() as u64;
            if total > limit {
                return Err(too_large());
            }
            sink(&chunk)?;
        }
        Ok(())
    }
}

/// Fetch `url` into the content-addressed cache `cache_dir/sha256/<hex>`
/// unless a cached copy with the pinned digest is already there. The cached
/// copy is re-hashed before use (a corrupt one is fetched again) and a
/// download is hashed before it enters the cache. Returns the cached path.
pub async fn fetch_pinned(
    fetcher: &Fetcher,
    cache_dir: &Path,
    url: &Url,
    expected: &Sha256Digest,
) -> Result<std::path::PathBuf> {
    let dir = cache_dir.join("sha256");
    std::fs::create_dir_all(&dir).ctx("create directory", &dir)?;
    let cached = dir.join(expected.to_string());
    if cached.exists() {
        if Sha256Digest::of_file(&cached)? == *expected {
            return Ok(cached);
        }
        std::fs::remove_file(&cached).ctx("remove corrupt cache entry", &cached)?;
    }
    let part = dir.join(format!(".{expected}.part-{}", std::process::id()));
    let _ = std::fs::remove_file(&part);
    let actual = fetcher.to_file(url, &part).await?;
    if actual != *expected {
        let _ = std::fs::remove_file(&part);
        return Err(Error::ChecksumMismatch {
            what: url.to_string(),
            expected: *expected,
            actual,
        });
    }
    std::fs::rename(&part, &cached).ctx("rename", &part)?;
    Ok(cached)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(parse_url("ftp://x/y").is_err());
        assert!(parse_url("not a url").is_err());
        let base = parse_url("http://h:1/releases/index.json").unwrap();
        assert_eq!(
            resolve(&base, "racker-1.0.0-x86_64.tar.gz")
                .unwrap()
                .as_str(),
            "http://h:1/releases/racker-1.0.0-x86_64.tar.gz"
        );
        assert_eq!(
            resolve(&base, "file:///tmp/a.tar.gz").unwrap().as_str(),
            "file:///tmp/a.tar.gz"
        );
    }
}
