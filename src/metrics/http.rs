//! The `/metrics` endpoint: a minimal HTTP/1.x server on its own threads, so a scrape never
//! waits for the decision loop and the decision loop never waits for a scrape.
//!
//! Each connection gets one request: its head (request line and header lines) must arrive within
//! [`HEAD_TIMEOUT`] and fit in [`MAX_HEAD`] bytes, otherwise the client gets `408` or `431` and
//! the connection is closed. `GET /metrics` is answered with the metrics; other paths get `404`,
//! other methods `405`, anything unparsable `400`. At most [`MAX_CLIENTS`] connections are
//! served at once; more are closed at once, so a flood of idle connections costs no more than
//! that many threads.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Metrics;

/// Most bytes of a request head (request line and headers) read.
pub(crate) const MAX_HEAD: usize = 8 * 1024;
/// Time a client has to send its request head.
pub(crate) const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at the same time.
pub(crate) const MAX_CLIENTS: usize = 16;
/// The content type of OpenMetrics 1.0 text.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Binds `listen` (`HOST:PORT`; a name is resolved once, the first address that binds is used).
pub(crate) fn bind(listen: &str) -> io::Result<TcpListener> {
    let addresses: Vec<SocketAddr> = listen.to_socket_addrs()?.collect();
    let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address to listen on");
    for address in addresses {
        match TcpListener::bind(address) {
            Ok(listener) => return Ok(listener),
            Err(err) => last = err,
        }
    }
    Err(last)
}

/// Serves `metrics` on `listener` from a new thread, for as long as the process runs.
pub(crate) fn spawn(listener: TcpListener, metrics: Arc<Metrics>) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("metrics".to_string())
        .spawn(move || accept_loop(&listener, &metrics))
}

fn accept_loop(listener: &TcpListener, metrics: &Arc<Metrics>) {
    let active = Arc::new(AtomicUsize::new(0));
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of descriptors, most likely: wait instead of spinning.
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
            active.fetch_sub(1, Ordering::SeqCst);
            drop(stream);
            continue;
        }
        let (metrics, done) = (Arc::clone(metrics), Arc::clone(&active));
        let spawned = std::thread::Builder::new()
            .name("metrics-client".to_string())
            .spawn(move || {
                let _ = handle(stream, &metrics);
                done.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// `GET /metrics`.
    Metrics,
    /// Another path.
    NotFound,
    /// Another method.
    MethodNotAllowed,
    /// Not an HTTP/1.x request line.
    BadRequest,
}

/// Routes a request head by its first line.
pub(crate) fn route(head: &[u8]) -> Route {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let Ok(line) = std::str::from_utf8(line) else {
        return Route::BadRequest;
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Route::BadRequest;
    }
    if method != "GET" {
        return Route::MethodNotAllowed;
    }
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    if path == "/metrics" {
        Route::Metrics
    } else {
        Route::NotFound
    }
}

/// Why reading a head stopped short.
enum Head {
    Complete(Vec<u8>),
    TooLarge,
    TimedOut,
    Closed,
}

fn read_head(stream: &mut TcpStream) -> Head {
    let deadline = Instant::now() + HEAD_TIMEOUT;
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return Head::TimedOut;
        };
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Head::TimedOut;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Head::Closed,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Head::TimedOut;
            }
            Err(_) => return Head::Closed,
        }
        let end = head
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| p + 4)
            .or_else(|| head.windows(2).position(|w| w == b"\n\n").map(|p| p + 2));
        match end {
            Some(end) if end <= MAX_HEAD => {
                head.truncate(end);
                return Head::Complete(head);
            }
            _ if head.len() > MAX_HEAD => return Head::TooLarge,
            _ => {}
        }
    }
}

fn handle(mut stream: TcpStream, metrics: &Metrics) -> io::Result<()> {
    stream.set_write_timeout(Some(HEAD_TIMEOUT))?;
    let head = match read_head(&mut stream) {
        Head::Complete(head) => head,
        Head::TooLarge => return respond(&mut stream, "431 Request Header Fields Too Large", ""),
        Head::TimedOut => return respond(&mut stream, "408 Request Timeout", ""),
        Head::Closed => return Ok(()),
    };
    match route(&head) {
        Route::Metrics => {
            let body = metrics.encode();
            let header = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(header.as_bytes())?;
            stream.write_all(body.as_bytes())?;
            stream.flush()
        }
        Route::NotFound => respond(&mut stream, "404 Not Found", ""),
        Route::MethodNotAllowed => respond(&mut stream, "405 Method Not Allowed", "Allow: GET\r\n"),
        Route::BadRequest => respond(&mut stream, "400 Bad Request", ""),
    }
}

fn respond(stream: &mut TcpStream, status: &str, extra: &str) -> io::Result<()> {
    let body = format!("{status}\n");
    let text = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         {extra}Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(text.as_bytes())?;
    stream.flush()
}
