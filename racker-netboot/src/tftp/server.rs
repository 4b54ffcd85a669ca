//! The tokio edge of the TFTP server: sockets and timers around
//! [`Transfer`](super::transfer::Transfer).

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::Semaphore;

use super::jail::{Jail, JailError};
use super::netascii::Netascii;
use super::packet::{ErrorCode, MAX_PACKET, Mode, error_packet};
use super::transfer::{
    BlockSource, Incoming, Progress, ReadRequest, TftpConfig, Transfer, classify_request,
};
use crate::profile::ContentError;

/// Files the default TFTP root must hold.
pub const IPXE_FILES: [&str; 2] = ["undionly.kpxe", "ipxe.efi"];

/// Where Debian's `ipxe` package installs its binaries.
pub const DEBIAN_IPXE_DIR: &str = "/usr/lib/ipxe";

/// The iPXE binaries, resolved once at start-up.
///
/// They are operator-chosen boot files, not content from the network:
/// each is followed through symbolic links wherever they lead (Debian's
/// `/usr/lib/ipxe/ipxe.efi` links to `/boot/ipxe.efi`) and opened once to
/// prove it readable. Other names under the directory stay jailed.
#[derive(Debug, Clone)]
pub struct BootFiles {
    dir: PathBuf,
    files: Vec<(&'static str, PathBuf)>,
}

impl BootFiles {
    /// Resolve `names` in `dir`: every one must lead to a readable regular
    /// file, else the error names it.
    pub fn resolve(dir: &Path, names: &[&'static str]) -> Result<Self, ContentError> {
        let mut files = Vec::new();
        for &name in names {
            let path = dir.join(name);
            let missing = || ContentError::BootFilesMissing {
                dir: dir.to_path_buf(),
                missing: name,
            };
            let real = match path.canonicalize() {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
                Err(source) => return Err(ContentError::BootFileUnreadable { path, source }),
            };
            let file =
                std::fs::File::open(&real).map_err(|source| ContentError::BootFileUnreadable {
                    path: path.clone(),
                    source,
                })?;
            let meta = file
                .metadata()
                .map_err(|source| ContentError::BootFileUnreadable {
                    path: path.clone(),
                    source,
                })?;
            if !meta.is_file() {
                return Err(missing());
            }
            files.push((name, real));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            files,
        })
    }

    /// The directory (also the TFTP root).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The resolved file for a requested name (`ipxe.efi`, `./ipxe.efi`),
    /// if it is one of the boot files.
    pub fn lookup(&self, requested: &str) -> Option<&Path> {
        let parts = super::jail::check_name(requested).ok()?;
        let [name] = parts.as_slice() else {
            return None;
        };
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.as_path())
    }
}

/// Pick the TFTP root: `configured` or Debian's `/usr/lib/ipxe`, and
/// resolve both iPXE binaries in it ([`BootFiles::resolve`]).
pub fn locate_boot_files(configured: Option<&Path>) -> Result<BootFiles, ContentError> {
    let dir = configured.map_or_else(|| PathBuf::from(DEBIAN_IPXE_DIR), Path::to_path_buf);
    BootFiles::resolve(&dir, &IPXE_FILES)
}

/// Counters exported on `/metrics`.
#[derive(Debug, Default)]
pub struct TftpStats {
    /// Read requests received.
    pub requests: AtomicU64,
    /// Requests refused (traversal, not found, write requests...).
    pub refused: AtomicU64,
    /// Transfers completed.
    pub completed: AtomicU64,
    /// Transfers that failed or timed out.
    pub failed: AtomicU64,
    /// Payload bytes sent (retransmissions included).
    pub bytes_sent: AtomicU64,
    /// Transfers in progress.
    pub active: AtomicU64,
}

/// Concurrent transfers; further requests wait for a slot.
const MAX_TRANSFERS: usize = 1024;

/// A read-only TFTP server jailed to one directory.
#[derive(Debug)]
pub struct TftpServer {
    socket: UdpSocket,
    local: SocketAddr,
    jail: Jail,
    config: TftpConfig,
    stats: Arc<TftpStats>,
    boot_files: Option<BootFiles>,
    trail: Option<crate::trail::EventTrail>,
}

enum Source {
    File(std::fs::File),
    Netascii(Netascii<std::fs::File>),
}

impl BlockSource for Source {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Source::File(f) => f.read_at(offset, buf),
            Source::Netascii(n) => n.read_at(offset, buf),
        }
    }
}

impl TftpServer {
    /// Bind `addr` and serve files from `root`.
    pub async fn bind(
        addr: SocketAddr,
        root: &Path,
        config: TftpConfig,
        stats: Arc<TftpStats>,
    ) -> Result<Self, ContentError> {
        let jail = Jail::new(root).map_err(|e| ContentError::io("opening TFTP root", root, e))?;
        let socket = UdpSocket::bind(addr)
            .await
            .map_err(|source| ContentError::Socket {
                what: "binding TFTP",
                addr,
                source,
            })?;
        let local = socket.local_addr().map_err(|source| ContentError::Socket {
            what: "binding TFTP",
            addr,
            source,
        })?;
        Ok(Self {
            socket,
            local,
            jail,
            config,
            stats,
            boot_files: None,
            trail: None,
        })
    }

    /// Serve these iPXE binaries under their names even when they lead
    /// outside the root (see [`BootFiles`]).
    pub fn with_boot_files(mut self, files: BootFiles) -> Self {
        self.boot_files = Some(files);
        self
    }

    /// Record each read request of a known node on `trail` (`0` served,
    /// `404` not found, `403` refused).
    pub fn with_trail(mut self, trail: crate::trail::EventTrail) -> Self {
        self.trail = Some(trail);
        self
    }

    fn note(&self, peer: SocketAddr, file: &str, status: u16) {
        if let Some(t) = &self.trail {
            t.record_from(
                peer.ip(),
                crate::trail::TrailKind::Tftp,
                format!("RRQ {file}"),
                Some(status),
                std::time::SystemTime::now(),
            );
        }
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Serve until the task is dropped.
    pub async fn run(self) -> Result<(), ContentError> {
        let active: Arc<Mutex<HashSet<SocketAddr>>> = Arc::default();
        let slots = Arc::new(Semaphore::new(MAX_TRANSFERS));
        let mut buf = vec![0u8; MAX_PACKET];
        loop {
            let (n, peer) = match self.socket.recv_from(&mut buf).await {
                Ok(v) => v,
                Err(e) => {
                    tracing::debug!("tftp recv: {e}");
                    continue;
                }
            };
            let request = match classify_request(&buf[..n]) {
                Incoming::Read(r) => r,
                Incoming::Reject(reply, why) => {
                    self.stats.refused.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%peer, "tftp: {why}");
                    let _ = self.socket.send_to(&reply, peer).await;
                    continue;
                }
                Incoming::Ignore => continue,
            };
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let boot_file = self
                .boot_files
                .as_ref()
                .and_then(|b| b.lookup(&request.filename));
            let resolved = match boot_file {
                Some(p) => Ok(p.to_path_buf()),
                None => self.jail.resolve(&request.filename),
            };
            let path = match resolved {
                Ok(p) => p,
                Err(e) => {
                    self.stats.refused.fetch_add(1, Ordering::Relaxed);
                    let (code, msg) = match e {
                        JailError::NotFound => (ErrorCode::FileNotFound, "file not found"),
                        JailError::Refused(why) => {
                            tracing::warn!(%peer, file = ?request.filename, "tftp: refused: {why}");
                            (ErrorCode::AccessViolation, why)
                        }
                    };
                    if code == ErrorCode::FileNotFound {
                        tracing::info!(%peer, file = ?request.filename, "tftp: not found");
                    }
                    let status = if code == ErrorCode::FileNotFound {
                        404
                    } else {
                        403
                    };
                    self.note(peer, &request.filename, status);
                    let _ = self.socket.send_to(&error_packet(code, msg), peer).await;
                    continue;
                }
            };
            // A retransmitted RRQ for a transfer already running is ignored.
            if !lock(&active).insert(peer) {
                continue;
            }
            self.note(peer, &request.filename, 200);
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break Ok(());
            };
            let stats = self.stats.clone();
            let config = self.config.clone();
            let local_ip = self.local.ip();
            let active = active.clone();
            tokio::spawn(async move {
                stats.active.fetch_add(1, Ordering::Relaxed);
                let result = transfer(peer, local_ip, &request, &path, &config, &stats).await;
                stats.active.fetch_sub(1, Ordering::Relaxed);
                match result {
                    Ok(()) => {
                        stats.completed.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(%peer, file = %path.display(), "tftp: transfer complete");
                    }
                    Err(why) => {
                        stats.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%peer, file = %path.display(), "tftp: transfer failed: {why}");
                    }
                }
                lock(&active).remove(&peer);
                drop(permit);
            });
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn transfer(
    peer: SocketAddr,
    local_ip: IpAddr,
    request: &ReadRequest,
    path: &Path,
    config: &TftpConfig,
    stats: &TftpStats,
) -> Result<(), String> {
    let socket = UdpSocket::bind(SocketAddr::new(local_ip, 0))
        .await
        .map_err(|e| format!("binding transfer socket: {e}"))?;
    socket
        .connect(peer)
        .await
        .map_err(|e| format!("connecting to {peer}: {e}"))?;
    let file = std::fs::File::open(path).map_err(|e| format!("opening: {e}"))?;
    let size = file.metadata().map_err(|e| format!("stat: {e}"))?.len();
    // Netascii is converted while streaming (a block-sized buffer per
    // transfer, whatever the file size).
    let (mut source, size) = match request.mode {
        Mode::Octet => (Source::File(file), size),
        Mode::Netascii => {
            let n = Netascii::new(file, size).map_err(|e| format!("reading: {e}"))?;
            let len = n.len();
            (Source::Netascii(n), len)
        }
    };
    let mut t = Transfer::new(request, size, config, Instant::now());
    let mut out = Vec::new();
    let mut progress = t.start(Instant::now(), &mut source, &mut out);
    let mut buf = vec![0u8; MAX_PACKET];
    let mut reported = 0;
    loop {
        for pkt in out.drain(..) {
            if let Err(e) = socket.send(&pkt).await {
                return Err(format!("sending to {peer}: {e}"));
            }
        }
        let sent = t.bytes_sent();
        stats
            .bytes_sent
            .fetch_add(sent - reported, Ordering::Relaxed);
        reported = sent;
        match progress {
            Progress::Running => {}
            Progress::Complete => return Ok(()),
            Progress::Failed(why) => return Err(why),
        }
        let Some(deadline) = t.deadline() else {
            return Ok(());
        };
        tokio::select! {
            r = socket.recv(&mut buf) => match r {
                Ok(n) => progress = t.on_datagram(&buf[..n], Instant::now(), &mut source, &mut out),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    return Err(format!("client {peer} went away"));
                }
                Err(e) => return Err(format!("receiving: {e}")),
            },
            () = tokio::time::sleep_until(deadline.into()) => {
                progress = t.on_timeout(Instant::now(), &mut source, &mut out);
            }
        }
    }
}
