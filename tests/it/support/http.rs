//! Small HTTP helpers for tests: curl with the test CA, JWT claims, PKCE, and a loopback
//! listener that stands in for a redirect target.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::proc::output_with_timeout;

/// What curl got back.
#[derive(Debug, Clone)]
pub struct CurlResponse {
    pub status: u16,
    pub body: String,
}

impl CurlResponse {
    /// The body as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "response (HTTP {}) is not JSON ({e}): {}",
                self.status, self.body
            )
        })
    }
}

/// Runs `curl -sS` with `--cacert ca` and `args`; HTTP status and body come back
/// (no `--fail`: 4xx answers are what many tests look at).
pub fn curl(ca: &Path, args: &[&str]) -> CurlResponse {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "20", "--noproxy", "*", "--cacert"])
        .arg(ca)
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY");
    let out = output_with_timeout(&mut cmd, Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr),
        stdout
    );
    let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", stdout.as_str()));
    CurlResponse {
        status: code.trim().parse().unwrap_or(0),
        body: body.to_owned(),
    }
}

/// The claims (payload) of a JWT, not verified; panics when `token` is not a JWS.
pub fn jwt_claims(token: &str) -> serde_json::Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(
        parts.len(),
        3,
        "not a JWT (want 3 dot-separated parts): {token:.40}…"
    );
    let payload = URL_SAFE_NO_PAD
        .decode(parts[1])
        .unwrap_or_else(|e| panic!("JWT payload is not base64url: {e}"));
    serde_json::from_slice(&payload).expect("JWT payload is JSON")
}

/// The protected header of a JWT, not verified.
pub fn jwt_header(token: &str) -> serde_json::Value {
    let first = token.split('.').next().unwrap_or_default();
    let header = URL_SAFE_NO_PAD
        .decode(first)
        .expect("JWT header is base64url");
    serde_json::from_slice(&header).expect("JWT header is JSON")
}

/// `n` random bytes from the kernel.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    buf
}

/// A random URL-safe string carrying `bytes` bytes of randomness.
pub fn random_token(bytes: usize) -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(bytes))
}

/// A PKCE verifier and its S256 challenge (RFC 7636).
pub fn pkce_pair() -> (String, String) {
    let verifier = random_token(32);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// Percent-encodes a query component (RFC 3986 unreserved characters stay).
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Decodes a percent-encoded query component (`+` is a space).
pub fn urldecode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The decoded query parameters of a request target or URL.
pub fn query_params(target: &str) -> Vec<(String, String)> {
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let query = query.split('#').next().unwrap_or("");
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (urldecode(k), urldecode(v))
        })
        .collect()
}

/// The first value of query parameter `name`.
pub fn query_param(target: &str, name: &str) -> Option<String> {
    query_params(target)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// A loopback HTTP listener on 127.0.0.1:0 that records the request target of each GET
/// and answers 200 with a short text. Stands in for a redirect target in harness tests.
pub struct CallbackServer {
    port: u16,
    requests: mpsc::Receiver<String>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl CallbackServer {
    pub fn start() -> CallbackServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::channel();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = thread::spawn(move || {
            let give_up = Instant::now() + Duration::from_secs(300);
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < give_up {
                match listener.accept() {
                    Ok((stream, _)) => {
                        // One thread per connection: chromium opens speculative
                        // connections that may never carry a request.
                        let tx = tx.clone();
                        thread::spawn(move || {
                            if let Some(target) = serve_one(stream) {
                                let _ = tx.send(target);
                            }
                        });
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(10));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        CallbackServer {
            port,
            requests: rx,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/callback`
    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}/callback", self.port)
    }

    /// The next request target (path and query) received, waiting at most `timeout`.
    pub fn next_request(&self, timeout: Duration) -> Option<String> {
        self.requests.recv_timeout(timeout).ok()
    }

    /// The next request whose path is `/callback`, skipping others (a favicon).
    pub fn next_callback(&self, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let target = self.requests.recv_timeout(left).ok()?;
            if target == "/callback" || target.starts_with("/callback?") {
                return Some(target);
            }
        }
    }
}

impl Drop for CallbackServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_one(stream: TcpStream) -> Option<String> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    // Skip the headers.
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) if line == "\r\n" || line == "\n" => break,
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let body = "callback received by the test listener\n";
    let status = if method == "GET" {
        "200 OK"
    } else {
        "405 Method Not Allowed"
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = stream;
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
    (method == "GET").then_some(target)
}
