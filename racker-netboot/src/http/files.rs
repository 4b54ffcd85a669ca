//! Static file responses: `Range` (single range), `HEAD`, conditional
//! requests, `ETag`/`Last-Modified`, streamed from disk.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use bytes::Bytes;

/// Read size per chunk of a streamed file.
const CHUNK: usize = 128 * 1024;

/// A response body to send with `sendfile(2)`: the server loop finds this
/// in the response's extensions and sends the range straight from the
/// page cache (the response body then holds the same bytes as a stream,
/// for routers embedded elsewhere; it is dropped unread).
#[derive(Debug, Clone)]
pub(crate) struct SendFile {
    pub(crate) file: Arc<std::fs::File>,
    pub(crate) start: u64,
    pub(crate) len: u64,
    /// Counts the bytes as they go out.
    pub(crate) sent: Arc<AtomicU64>,
}

/// A byte range request, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    /// No (usable) Range header: send everything.
    Full,
    /// Bytes `start..=end`.
    Part(u64, u64),
    /// Cannot be satisfied (start past the end).
    Unsatisfiable,
}

/// Parse a `Range` header against a file of `size` bytes. Multiple ranges
/// and malformed headers yield [`RangeSpec::Full`] (a server may ignore
/// Range, RFC 9110 §14.2).
pub fn parse_range(value: &str, size: u64) -> RangeSpec {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeSpec::Full;
    };
    if spec.contains(',') {
        return RangeSpec::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeSpec::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (a.is_empty(), b.is_empty()) {
        (true, true) => RangeSpec::Full,
        (true, false) => match num(b) {
            // Suffix range: the last n bytes.
            Some(0) => RangeSpec::Unsatisfiable,
            Some(_) if size == 0 => RangeSpec::Unsatisfiable,
            Some(n) => RangeSpec::Part(size.saturating_sub(n), size - 1),
            None => RangeSpec::Full,
        },
        (false, _) => {
            let Some(start) = num(a) else {
                return RangeSpec::Full;
            };
            let end = if b.is_empty() { Some(u64::MAX) } else { num(b) };
            match end {
                None => RangeSpec::Full,
                Some(end) if end < start => RangeSpec::Full,
                Some(_) if start >= size => RangeSpec::Unsatisfiable,
                Some(end) => RangeSpec::Part(start, end.min(size - 1)),
            }
        }
    }
}

fn etag_of(meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    format!(
        "\"{:x}-{:x}-{:x}.{:x}\"",
        meta.ino(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec()
    )
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

fn simple(status: StatusCode, text: &str) -> Response<Body> {
    let mut r = Response::new(Body::from(text.to_owned()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Serve the file at `path` (already jailed) for a request.
pub async fn serve_file(
    path: &Path,
    method: &Method,
    headers: &HeaderMap,
    bytes_sent: Arc<AtomicU64>,
) -> Response<Body> {
    let path_owned = path.to_path_buf();
    let opened = tokio::task::spawn_blocking(move || {
        let f = std::fs::File::open(&path_owned)?;
        let m = f.metadata()?;
        Ok::<_, std::io::Error>((f, m))
    })
    .await;
    let (file, meta) = match opened {
        Ok(Ok(v)) => v,
        _ => return simple(StatusCode::NOT_FOUND, "not found\n"),
    };
    if !meta.is_file() {
        return simple(StatusCode::NOT_FOUND, "not found\n");
    }
    let size = meta.len();
    let etag = etag_of(&meta);
    let modified = meta.modified().unwrap_or(UNIX_EPOCH);
    let last_modified = httpdate::fmt_http_date(modified);
    // Whole seconds: HTTP dates have no sub-second precision.
    let modified_secs = modified
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);

    let not_modified = match header_str(headers, header::IF_NONE_MATCH) {
        Some(list) => etag_matches(list, &etag),
        None => header_str(headers, header::IF_MODIFIED_SINCE)
            .and_then(|d| httpdate::parse_http_date(d).ok())
            .and_then(|since| since.duration_since(UNIX_EPOCH).ok())
            .is_some_and(|since| modified_secs <= since.as_secs()),
    };

    let mut builder = Response::builder()
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, &etag)
        .header(header::LAST_MODIFIED, &last_modified)
        .header(header::CONTENT_TYPE, "application/octet-stream");
    if not_modified {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .unwrap_or_else(|_| simple(StatusCode::INTERNAL_SERVER_ERROR, "response error\n"));
    }

    // If-Range: only honour Range when the validator still matches.
    let range_ok = match header_str(headers, header::IF_RANGE) {
        None => true,
        Some(v) if v.starts_with('"') || v.starts_with("W/") => v == etag,
        Some(v) => v.trim() == last_modified,
    };
    let range = match header_str(headers, header::RANGE) {
        Some(v) if range_ok => parse_range(v, size),
        _ => RangeSpec::Full,
    };
    let (status, start, len) = match range {
        RangeSpec::Full => (StatusCode::OK, 0, size),
        RangeSpec::Part(s, e) => {
            builder = builder.header(header::CONTENT_RANGE, format!("bytes {s}-{e}/{size}"));
            (StatusCode::PARTIAL_CONTENT, s, e - s + 1)
        }
        RangeSpec::Unsatisfiable => {
            return builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                .header(header::CONTENT_LENGTH, 0)
                .body(Body::empty())
                .unwrap_or_else(|_| simple(StatusCode::INTERNAL_SERVER_ERROR, "response error\n"));
        }
    };
    builder = builder
        .status(status)
        .header(header::CONTENT_LENGTH, len.to_string());
    if *method == Method::HEAD || len == 0 {
        return builder
            .body(Body::empty())
            .unwrap_or_else(|_| simple(StatusCode::INTERNAL_SERVER_ERROR, "response error\n"));
    }
    let file = Arc::new(file);
    let send = SendFile {
        file: file.clone(),
        start,
        len,
        sent: bytes_sent.clone(),
    };
    builder
        .extension(send)
        .body(Body::from_stream(file_stream(file, start, len, bytes_sent)))
        .unwrap_or_else(|_| simple(StatusCode::INTERNAL_SERVER_ERROR, "response error\n"))
}

/// Stream `len` bytes from `start`, counting them as they go out.
///
/// Each chunk is read with `pread` on the blocking pool straight into the
/// buffer that is sent (no intermediate copy), and the next chunk is read
/// while the current one is being written to the socket.
fn file_stream(
    file: Arc<std::fs::File>,
    start: u64,
    len: u64,
    bytes_sent: Arc<AtomicU64>,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    type Pending = tokio::task::JoinHandle<std::io::Result<Vec<u8>>>;
    struct St {
        file: Arc<std::fs::File>,
        offset: u64,
        end: u64,
        next: Option<Pending>,
        sent: Arc<AtomicU64>,
    }
    fn spawn_read(st: &mut St) -> Option<Pending> {
        if st.offset >= st.end {
            return None;
        }
        let want = usize::try_from(st.end - st.offset)
            .unwrap_or(CHUNK)
            .min(CHUNK);
        let file = st.file.clone();
        let offset = st.offset;
        st.offset += want as u64;
        Some(tokio::task::spawn_blocking(move || {
            use std::os::unix::fs::FileExt;
            let mut buf = vec![0u8; want];
            let mut filled = 0;
            while filled < want {
                match file.read_at(&mut buf[filled..], offset + filled as u64)? {
                    0 => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "file shrank while being sent",
                        ));
                    }
                    n => filled += n,
                }
            }
            Ok(buf)
        }))
    }
    let st = St {
        file,
        offset: start,
        end: start.saturating_add(len),
        next: None,
        sent: bytes_sent,
    };
    // Nothing is read until the stream is first polled (the server loop
    // sends with sendfile and never polls it).
    futures::stream::unfold(st, |mut st| async move {
        if st.next.is_none() {
            st.next = spawn_read(&mut st);
        }
        let pending = st.next.take()?;
        let chunk = match pending.await {
            Ok(Ok(buf)) => buf,
            Ok(Err(e)) => return Some((Err(e), st)),
            Err(e) => return Some((Err(std::io::Error::other(e)), st)),
        };
        // Prefetch the next chunk while this one goes out.
        st.next = spawn_read(&mut st);
        st.sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        Some((Ok(Bytes::from(chunk)), st))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), RangeSpec::Part(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), RangeSpec::Part(90, 99));
        assert_eq!(parse_range("bytes=90-500", 100), RangeSpec::Part(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), RangeSpec::Part(90, 99));
        assert_eq!(parse_range("bytes=-1000", 100), RangeSpec::Part(0, 99));
        assert_eq!(parse_range("bytes=100-", 100), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), RangeSpec::Full);
        assert_eq!(parse_range("bytes=5-1", 100), RangeSpec::Full);
        assert_eq!(parse_range("items=0-1", 100), RangeSpec::Full);
        assert_eq!(parse_range("bytes=x-1", 100), RangeSpec::Full);
        assert_eq!(parse_range("bytes=0-0", 0), RangeSpec::Unsatisfiable);
    }
}
