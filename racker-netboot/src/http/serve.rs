//! The HTTP/1.1 connection loop around the axum router.
//!
//! Hand-written rather than `axum::serve` for what a rack network needs
//! from a boot server under a flood (docs/netboot-content.md, "Limits"):
//! - a connection limit, globally and per client address, refusing the
//!   excess at accept with a 503;
//! - a header timeout (the first request head must arrive within it, so
//!   idle and slow-header connections are closed), an idle timeout between
//!   keep-alive requests, a body timeout and a send timeout (no progress
//!   writing for that long closes the connection);
//! - bounded buffers: a request head of at most [`HttpLimits::max_header_bytes`],
//!   a body of at most [`HttpLimits::max_body_bytes`], nothing else kept
//!   per idle connection;
//! - files sent with `sendfile(2)`, from the page cache to the socket
//!   without a copy through user space.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, Version, header};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout_at};

use super::files::SendFile;
use super::metrics::Metrics;

/// Connection limits and timeouts of the HTTP server.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpLimits {
    /// Connections open at once (further ones get a 503 and are closed).
    /// Also capped at half the process's descriptor limit, so a flood
    /// leaves descriptors for DHCP, TFTP and the lease table.
    pub max_connections: usize,
    /// Connections open at once from one client address (at most a
    /// quarter of the connection limit).
    pub max_connections_per_client: usize,
    /// Time from accepting a connection (or from the first byte of a
    /// later request) until the request head is complete.
    pub header_timeout: Duration,
    /// Time a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Time for a request body to arrive.
    pub body_timeout: Duration,
    /// Time a response may make no progress (client not reading).
    pub send_timeout: Duration,
    /// Largest request head (request line and headers).
    pub max_header_bytes: usize,
    /// Largest request body.
    pub max_body_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_connections_per_client: 256,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(30),
            max_header_bytes: 16 * 1024,
            max_body_bytes: 64 * 1024,
        }
    }
}

/// Raise the soft `RLIMIT_NOFILE` to the hard limit (call once at server
/// start-up). Returns the new soft limit (`None`: unlimited).
pub fn raise_nofile_limit() -> std::io::Result<Option<u64>> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        setrlimit(Resource::Nofile, limit)?;
    }
    Ok(limit.current)
}

/// `max_connections`, capped at half the soft descriptor limit.
fn connection_cap(configured: usize) -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    let half = soft.map_or(usize::MAX, |s| usize::try_from(s / 2).unwrap_or(usize::MAX));
    configured.min(half).max(1)
}

/// Open connections, per client address; a [`Slot`] gives its place back
/// when dropped.
#[derive(Debug, Default)]
struct Slots {
    per_client: Mutex<HashMap<IpAddr, usize>>,
}

struct Slot {
    slots: Arc<Slots>,
    ip: IpAddr,
    metrics: Arc<Metrics>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = self
            .slots
            .per_client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
        self.metrics
            .http
            .connections_open
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl Slots {
    fn take(
        self: &Arc<Self>,
        ip: IpAddr,
        cap: usize,
        per_client: usize,
        metrics: &Arc<Metrics>,
    ) -> Option<Slot> {
        let mut m = self
            .per_client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let open = metrics.http.connections_open.load(Ordering::Relaxed);
        let mine = m.get(&ip).copied().unwrap_or(0);
        if open >= cap as u64 || mine >= per_client {
            return None;
        }
        m.insert(ip, mine + 1);
        metrics
            .http
            .connections_open
            .fetch_add(1, Ordering::Relaxed);
        Some(Slot {
            slots: self.clone(),
            ip,
            metrics: metrics.clone(),
        })
    }
}

const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\
content-length: 29\r\nconnection: close\r\n\r\nracker: too many connections\n";

/// Accept and serve connections until the future is dropped (which also
/// drops every connection).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    metrics: Arc<Metrics>,
) -> std::io::Result<()> {
    let cap = connection_cap(limits.max_connections);
    // One client may hold at most a quarter of the connections, so a
    // single flooding address leaves room for everyone else.
    let per_client = limits.max_connections_per_client.min((cap / 4).max(1));
    let slots = Arc::new(Slots::default());
    let limits = Arc::new(limits);
    let mut tasks = tokio::task::JoinSet::new();
    let mut accept_errors = 0u64;
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(v) => v,
            Err(e) => {
                // Out of descriptors or memory: back off instead of spinning.
                accept_errors += 1;
                if accept_errors.is_power_of_two() {
                    tracing::warn!("http: accept failed ({accept_errors} times so far): {e}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = slots.take(peer.ip(), cap, per_client, &metrics) else {
            metrics
                .http
                .connections_refused
                .fetch_add(1, Ordering::Relaxed);
            let _ = stream.try_write(BUSY);
            continue;
        };
        let router = router.clone();
        let limits = limits.clone();
        let metrics = metrics.clone();
        tasks.spawn(async move {
            let outcome = connection(stream, peer, router, &limits).await;
            if let Err(Closed::TimedOut) = outcome {
                metrics
                    .http
                    .connections_timed_out
                    .fetch_add(1, Ordering::Relaxed);
            }
            drop(slot);
        });
    }
}

/// Why a connection ended early.
#[derive(Debug)]
enum Closed {
    TimedOut,
    Io,
}

impl From<std::io::Error> for Closed {
    fn from(_: std::io::Error) -> Self {
        Closed::Io
    }
}

/// A parsed request head.
struct Head {
    method: Method,
    target: String,
    version: Version,
    headers: HeaderMap,
}

enum HeadError {
    /// Clean end: the client closed between requests.
    Eof,
    TimedOut,
    TooLarge,
    Bad,
    Io,
}

/// Read one request head into `buf` (which may already hold pipelined
/// bytes); consumes it from `buf`.
async fn read_head(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    limits: &HttpLimits,
    idle_until: Instant,
) -> Result<Head, HeadError> {
    let mut deadline = if buf.is_empty() {
        idle_until
    } else {
        Instant::now() + limits.header_timeout
    };
    let mut chunk = [0u8; 4096];
    loop {
        if !buf.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let head = build_head(&req).ok_or(HeadError::Bad)?;
                    buf.drain(..len);
                    return Ok(head);
                }
                Ok(httparse::Status::Partial) => {}
                Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
                Err(_) => return Err(HeadError::Bad),
            }
            if buf.len() >= limits.max_header_bytes {
                return Err(HeadError::TooLarge);
            }
        }
        let room = chunk
            .len()
            .min(limits.max_header_bytes.saturating_sub(buf.len()).max(1));
        let n = match timeout_at(deadline, stream.read(&mut chunk[..room])).await {
            Err(_) => return Err(HeadError::TimedOut),
            Ok(Err(_)) => return Err(HeadError::Io),
            Ok(Ok(0)) if buf.is_empty() => return Err(HeadError::Eof),
            Ok(Ok(0)) => return Err(HeadError::Bad),
            Ok(Ok(n)) => n,
        };
        if buf.is_empty() {
            // The first byte of a request starts the header timeout.
            deadline = deadline.min(Instant::now() + limits.header_timeout);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn build_head(req: &httparse::Request<'_, '_>) -> Option<Head> {
    let method = Method::from_bytes(req.method?.as_bytes()).ok()?;
    let version = match req.version? {
        0 => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut headers = HeaderMap::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(h.value).ok()?;
        headers.append(name, value);
    }
    Some(Head {
        method,
        target: req.path?.to_owned(),
        version,
        headers,
    })
}

fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// Serve the requests of one connection.
async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: &HttpLimits,
) -> Result<(), Closed> {
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::new();
    // The first request must arrive within the header timeout.
    let mut idle_until = Instant::now() + limits.header_timeout;
    loop {
        let head = match read_head(&mut stream, &mut buf, limits, idle_until).await {
            Ok(h) => h,
            Err(HeadError::Eof) => return Ok(()),
            Err(HeadError::Io) => return Err(Closed::Io),
            Err(HeadError::TimedOut) => return Err(Closed::TimedOut),
            Err(HeadError::TooLarge) => {
                let r = simple(
                    431,
                    "Request Header Fields Too Large",
                    "request head too large",
                );
                let _ = send_bytes(&mut stream, &r, limits).await;
                return Ok(());
            }
            Err(HeadError::Bad) => {
                let _ = send_bytes(
                    &mut stream,
                    &simple(400, "Bad Request", "bad request"),
                    limits,
                )
                .await;
                return Ok(());
            }
        };
        let keep_alive = match head.version {
            Version::HTTP_10 => has_token(&head.headers, header::CONNECTION, "keep-alive"),
            _ => !has_token(&head.headers, header::CONNECTION, "close"),
        };
        // Body: Content-Length only (chunked request bodies are refused).
        if head.headers.contains_key(header::TRANSFER_ENCODING) {
            let r = simple(
                411,
                "Length Required",
                "chunked request bodies are not accepted",
            );
            let _ = send_bytes(&mut stream, &r, limits).await;
            return Ok(());
        }
        let length = match head.headers.get(header::CONTENT_LENGTH) {
            None => 0,
            Some(v) => match v.to_str().ok().and_then(|s| s.trim().parse::<usize>().ok()) {
                Some(n) => n,
                None => {
                    let r = simple(400, "Bad Request", "bad content-length");
                    let _ = send_bytes(&mut stream, &r, limits).await;
                    return Ok(());
                }
            },
        };
        if length > limits.max_body_bytes {
            let r = simple(413, "Content Too Large", "request body too large");
            let _ = send_bytes(&mut stream, &r, limits).await;
            return Ok(());
        }
        if length > buf.len() && has_token(&head.headers, header::EXPECT, "100-continue") {
            send_bytes(&mut stream, b"HTTP/1.1 100 Continue\r\n\r\n", limits).await?;
        }
        let body_deadline = Instant::now() + limits.body_timeout;
        let mut chunk = [0u8; 4096];
        while buf.len() < length {
            let want = (length - buf.len()).min(chunk.len());
            match timeout_at(body_deadline, stream.read(&mut chunk[..want])).await {
                Err(_) => return Err(Closed::TimedOut),
                Ok(Ok(0)) | Ok(Err(_)) => return Err(Closed::Io),
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf.drain(..length).collect();
        if buf.is_empty() {
            // Give back what a large head or body grew.
            buf = Vec::new();
        }

        let is_head = head.method == Method::HEAD;
        let mut request = Request::new(Body::from(body));
        *request.method_mut() = head.method;
        *request.version_mut() = head.version;
        *request.headers_mut() = head.headers;
        match head.target.parse() {
            Ok(uri) => *request.uri_mut() = uri,
            Err(_) => {
                let r = simple(400, "Bad Request", "bad request target");
                let _ = send_bytes(&mut stream, &r, limits).await;
                return Ok(());
            }
        }
        request.extensions_mut().insert(ConnectInfo(peer));
        let response = match tower_service::Service::call(&mut router.clone(), request).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        respond(&mut stream, response, is_head, keep_alive, limits).await?;
        if !keep_alive {
            let _ = stream.shutdown().await;
            return Ok(());
        }
        idle_until = Instant::now() + limits.idle_timeout;
    }
}

/// A complete short response that closes the connection.
fn simple(code: u16, reason: &str, text: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {code} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\nracker: {text}\n",
        text.len() + 8
    )
    .into_bytes()
}

/// Write `bytes`, closing when the client reads nothing for the send
/// timeout.
async fn send_bytes(
    stream: &mut TcpStream,
    bytes: &[u8],
    limits: &HttpLimits,
) -> Result<(), Closed> {
    let mut done = 0;
    while done < bytes.len() {
        let deadline = Instant::now() + limits.send_timeout;
        match timeout_at(deadline, stream.write(&bytes[done..])).await {
            Err(_) => return Err(Closed::TimedOut),
            Ok(Ok(0)) | Ok(Err(_)) => return Err(Closed::Io),
            Ok(Ok(n)) => done += n,
        }
    }
    Ok(())
}

/// Largest non-file response body buffered before sending.
const MAX_RESPONSE_BODY: usize = 64 << 20;

async fn respond(
    stream: &mut TcpStream,
    response: Response<Body>,
    is_head: bool,
    keep_alive: bool,
    limits: &HttpLimits,
) -> Result<(), Closed> {
    let (mut parts, body) = response.into_parts();
    let file = parts.extensions.remove::<SendFile>();
    let status = parts.status;
    let no_body = is_head
        || status.is_informational()
        || status == axum::http::StatusCode::NO_CONTENT
        || status == axum::http::StatusCode::NOT_MODIFIED;
    let payload = if file.is_some() || no_body {
        drop(body);
        Vec::new()
    } else {
        axum::body::to_bytes(body, MAX_RESPONSE_BODY)
            .await
            .map_err(|_| Closed::Io)?
            .to_vec()
    };
    if file.is_none() && !no_body {
        parts
            .headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(payload.len()));
    }
    let mut out = Vec::with_capacity(256 + payload.len());
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {} {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .as_bytes(),
    );
    if !parts.headers.contains_key(header::DATE) {
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    parts.headers.remove(header::CONNECTION);
    for (name, value) in &parts.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(if keep_alive {
        b"connection: keep-alive\r\n\r\n".as_slice()
    } else {
        b"connection: close\r\n\r\n".as_slice()
    });
    out.extend_from_slice(&payload);
    send_bytes(stream, &out, limits).await?;
    drop(out);
    if let Some(file) = file
        && !is_head
    {
        send_file(stream, &file, limits).await?;
    }
    Ok(())
}

/// `sendfile(2)` the file's range to the socket, waiting for the socket to
/// drain when it is full (at most the send timeout each time).
async fn send_file(stream: &TcpStream, file: &SendFile, limits: &HttpLimits) -> Result<(), Closed> {
    let mut offset = file.start;
    let end = file.start.saturating_add(file.len);
    while offset < end {
        let want = usize::try_from(end - offset)
            .unwrap_or(usize::MAX)
            .min(1 << 30);
        let deadline = Instant::now() + limits.send_timeout;
        // Counted before the bytes can reach the client (and corrected
        // after), so the metric never lags behind what a client has read.
        file.sent.fetch_add(want as u64, Ordering::Relaxed);
        let sent = timeout_at(
            deadline,
            stream.async_io(Interest::WRITABLE, || {
                rustix::fs::sendfile(stream, &*file.file, Some(&mut offset), want)
                    .map_err(std::io::Error::from)
            }),
        )
        .await;
        let n = match &sent {
            Ok(Ok(n)) => *n,
            _ => 0,
        };
        file.sent
            .fetch_sub((want - n.min(want)) as u64, Ordering::Relaxed);
        match sent {
            Err(_) => return Err(Closed::TimedOut),
            // The file shrank while being sent: the length promised cannot
            // be kept, close.
            Ok(Ok(0)) | Ok(Err(_)) => return Err(Closed::Io),
            Ok(Ok(_)) => {}
        }
    }
    Ok(())
}
