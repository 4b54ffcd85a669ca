//! A small in-process HTTP server (axum) serving a folder, for tests of
//! fetching release indexes, archives and pinned assets (racker-installer's
//! tests and `racker-cli/tests/release.rs`).

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::State;
use axum::http::{StatusCode, Uri};

/// Serves files under a folder at `http://127.0.0.1:<port>/`.
pub struct FileServer {
    /// `http://127.0.0.1:<port>` (no trailing slash).
    pub base: String,
    hits: Arc<AtomicUsize>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Clone)]
struct Served {
    root: PathBuf,
    hits: Arc<AtomicUsize>,
}

async fn serve_file(State(served): State<Served>, uri: Uri) -> (StatusCode, Vec<u8>) {
    served.hits.fetch_add(1, Ordering::SeqCst);
    let Some(rel) = relative_path(uri.path()) else {
        return (StatusCode::BAD_REQUEST, Vec::new());
    };
    match std::fs::read(served.root.join(rel)) {
        Ok(bytes) => (StatusCode::OK, bytes),
        Err(_) => (StatusCode::NOT_FOUND, Vec::new()),
    }
}

/// The file a request path names below the served folder: `None` for a
/// path that is empty or leaves the folder (`..`, or anything but plain
/// names), so a test server never serves what is outside its root.
pub fn relative_path(uri_path: &str) -> Option<&Path> {
    let rel = Path::new(uri_path.trim_start_matches('/'));
    let mut names = 0;
    for c in rel.components() {
        if !matches!(c, Component::Normal(_)) {
            return None;
        }
        names += 1;
    }
    (names > 0).then_some(rel)
}

impl FileServer {
    /// Start serving `root` on an ephemeral loopback port.
    pub fn start(root: &Path) -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let served = Served {
            root: root.to_path_buf(),
            hits: hits.clone(),
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let app = axum::Router::new().fallback(serve_file).with_state(served);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let addr = addr_rx.recv().unwrap();
        Self {
            base: format!("http://{addr}"),
            hits,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// Requests served so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
