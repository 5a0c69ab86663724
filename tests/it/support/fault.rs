//! A stand-in OpenID provider that misbehaves on request: plain HTTP on 127.0.0.1 (the CLI
//! takes `http` issuers on loopback hosts), one thread per connection, `Connection: close`
//! on every answer.
//!
//! It serves a discovery document with `Cache-Control: no-store` (tests that want every CLI
//! run to fetch it again, and so meet the current fault, set
//! `NIX_CACHE_LOGIN_DISCOVERY_MIN_TTL=0`) whose endpoints are itself: token, revocation
//! (`/revoke`), device authorization (`/device/auth`, whose `verification_uri_complete` is
//! deliberately not `...?user_code=`), an empty JWKS. It answers token requests with
//! unsigned fake JWTs (`healthy` mode) or with the chosen [`Fault`]. It exists
//! only to show the faults the real provider cannot be made to show; it checks no client
//! credentials and no refresh tokens. Every request is logged as `METHOD /path` plus
//! ` grant_type=...` for form posts.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What the server does wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Everything works.
    None,
    /// `500 Internal Server Error` with an HTML body.
    Status500,
    /// Waits this long before answering (longer than the client's timeout).
    Slow(Duration),
    /// Reads the request, then closes the connection without a word.
    Close,
    /// `200` with a body that is cut off in the middle of the JSON.
    MalformedJson,
    /// `200` with a token response that has no `access_token` (and no refresh token).
    NoAccessToken,
    /// `200` with a token response that has a new `refresh_token` but no `access_token`:
    /// the old refresh token is spent.
    NoAccessTokenRotated,
    /// The discovery document names another issuer.
    WrongIssuer,
    /// `200` and a JSON body that never ends (no length; streamed until the client hangs
    /// up, at most 30 s).
    Endless,
    /// This status (e.g. 400, 401, 403) with this JSON body ("" for none), as deployed
    /// providers answer outside RFC 6749 5.2.
    Answer(u16, &'static str),
}

/// Which endpoint misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Discovery,
    Token,
    Revocation,
    Device,
    Jwks,
}

struct State {
    fault: Fault,
    target: Target,
    log: Vec<String>,
    issued: u64,
    /// Every refresh token handed out, in order.
    refresh_tokens: Vec<String>,
    /// Every access token handed out, in order.
    access_tokens: Vec<String>,
    /// The refresh tokens of refresh requests, in order.
    refresh_tokens_received: Vec<String>,
}

pub struct FaultServer {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    accept: Option<thread::JoinHandle<()>>,
}

impl FaultServer {
    pub fn start() -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault server");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            fault: Fault::None,
            target: Target::Token,
            log: Vec::new(),
            issued: 0,
            refresh_tokens: Vec::new(),
            access_tokens: Vec::new(),
            refresh_tokens_received: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let state = state.clone();
            let stop = stop.clone();
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let state = state.clone();
                    thread::spawn(move || serve(conn, port, &state));
                }
            })
        };
        FaultServer {
            port,
            state,
            stop,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.issuer())
    }

    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer())
    }

    pub fn set_fault(&self, fault: Fault, target: Target) {
        let mut s = self.state.lock().unwrap();
        s.fault = fault;
        s.target = target;
    }

    /// One line per request served so far.
    pub fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn clear_log(&self) {
        self.state.lock().unwrap().log.clear();
    }

    /// How many requests were `METHOD /path` exactly since the log was last cleared.
    pub fn count(&self, method: &str, path: &str) -> usize {
        let wanted = format!("{method} {path}");
        self.log()
            .iter()
            .filter(|l| **l == wanted || l.starts_with(&format!("{wanted} ")))
            .count()
    }

    /// The user code the device endpoint hands out, and where its
    /// `verification_uri_complete` points (not the RFC 8628 example's `?user_code=`).
    pub const USER_CODE: &'static str = "WDJB-MJHT";

    pub fn verification_uri_complete(&self) -> String {
        format!("{}/activate/WDJB-MJHT?otp=1#start", self.issuer())
    }

    /// How many `POST /token` requests were made since the log was last cleared.
    pub fn token_requests(&self) -> usize {
        self.log()
            .iter()
            .filter(|l| l.starts_with("POST /token"))
            .count()
    }

    /// The refresh tokens handed out so far (the last one is the current one).
    pub fn refresh_tokens(&self) -> Vec<String> {
        self.state.lock().unwrap().refresh_tokens.clone()
    }

    pub fn access_tokens(&self) -> Vec<String> {
        self.state.lock().unwrap().access_tokens.clone()
    }

    /// The refresh tokens that refresh requests presented, in order.
    pub fn refresh_tokens_received(&self) -> Vec<String> {
        self.state.lock().unwrap().refresh_tokens_received.clone()
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// An unsigned JWT-shaped token: the CLI only decodes its claims (for `exp` and `sub`).
pub fn fake_jwt(claims: &serde_json::Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.c2ln")
}

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

fn read_request(conn: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(conn.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length.min(1 << 20)];
    reader.read_exact(&mut body).ok()?;
    let path = target.split('?').next().unwrap_or("").to_string();
    Some(Request { method, path, body })
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    String::from_utf8_lossy(body).split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

fn respond(mut conn: &TcpStream, status: &str, content_type: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body);
    let _ = conn.flush();
    let _ = conn.shutdown(Shutdown::Both);
}

fn serve(conn: TcpStream, port: u16, state: &Mutex<State>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let Some(req) = read_request(&conn) else {
        return;
    };
    let grant = form_field(&req.body, "grant_type");
    let (fault, target) = {
        let mut s = state.lock().unwrap();
        let mut line = format!("{} {}", req.method, req.path);
        if let Some(g) = &grant {
            line.push_str(&format!(" grant_type={g}"));
        }
        s.log.push(line);
        if let Some(rt) = form_field(&req.body, "refresh_token") {
            s.refresh_tokens_received.push(super::http::urldecode(&rt));
        }
        (s.fault.clone(), s.target)
    };
    let issuer = format!("http://127.0.0.1:{port}");
    let endpoint = match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/.well-known/openid-configuration") => Target::Discovery,
        ("POST", "/token") => Target::Token,
        ("POST", "/revoke") => Target::Revocation,
        ("POST", "/device/auth") => Target::Device,
        ("GET", "/jwks") => Target::Jwks,
        _ => {
            respond(&conn, "404 Not Found", "text/plain", b"not found");
            return;
        }
    };
    let fault = if endpoint == target {
        fault
    } else {
        Fault::None
    };
    match fault {
        Fault::Status500 => {
            return respond(
                &conn,
                "500 Internal Server Error",
                "text/html",
                b"<html><body>Internal Server Error</body></html>",
            );
        }
        Fault::Slow(delay) => {
            thread::sleep(delay);
        }
        Fault::Close => {
            let _ = conn.shutdown(Shutdown::Both);
            return;
        }
        Fault::Endless => {
            let mut conn = &conn;
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{\"access_token\": \"",
            );
            let chunk = [b'x'; 64 * 1024];
            let until = std::time::Instant::now() + Duration::from_secs(30);
            while std::time::Instant::now() < until && conn.write_all(&chunk).is_ok() {}
            let _ = conn.shutdown(Shutdown::Both);
            return;
        }
        Fault::Answer(status, body) => {
            let line = match status {
                400 => "400 Bad Request",
                401 => "401 Unauthorized",
                403 => "403 Forbidden",
                _ => panic!("Fault::Answer: add a reason phrase for {status}"),
            };
            return respond(&conn, line, "application/json", body.as_bytes());
        }
        Fault::MalformedJson => {
            return respond(
                &conn,
                "200 OK",
                "application/json",
                b"{\"access_token\": \"eyJhbGciOi",
            );
        }
        _ => {}
    }
    match endpoint {
        Target::Discovery => {
            let advertised = if fault == Fault::WrongIssuer {
                format!("http://127.0.0.1:{port}/elsewhere")
            } else {
                issuer.clone()
            };
            let doc = serde_json::json!({
                "issuer": advertised,
                "authorization_endpoint": format!("{issuer}/auth"),
                "token_endpoint": format!("{issuer}/token"),
                "jwks_uri": format!("{issuer}/jwks"),
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "none"],
                "revocation_endpoint": format!("{issuer}/revoke"),
                "device_authorization_endpoint": format!("{issuer}/device/auth"),
            });
            respond(
                &conn,
                "200 OK",
                "application/json",
                doc.to_string().as_bytes(),
            );
        }
        Target::Revocation => respond(&conn, "200 OK", "application/json", b""),
        Target::Jwks => respond(&conn, "200 OK", "application/json", br#"{"keys":[]}"#),
        Target::Device => {
            let body = serde_json::json!({
                "device_code": format!("fault-device-{}", super::http::random_token(8)),
                "user_code": FaultServer::USER_CODE,
                "verification_uri": format!("{issuer}/activate"),
                "verification_uri_complete": format!("{issuer}/activate/WDJB-MJHT?otp=1#start"),
                "expires_in": 300,
                "interval": 1,
            });
            respond(
                &conn,
                "200 OK",
                "application/json",
                body.to_string().as_bytes(),
            );
        }
        Target::Token => {
            let body = {
                let mut s = state.lock().unwrap();
                s.issued += 1;
                let n = s.issued;
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let access = fake_jwt(&serde_json::json!({
                    "iss": issuer, "sub": "fake-user", "exp": now + 300, "iat": now,
                    "jti": format!("fault-{n}-{}", super::http::random_token(6)),
                }));
                let refresh = format!("fault-refresh-{n}-{}", super::http::random_token(12));
                let is_refresh = grant.as_deref() == Some("refresh_token");
                match fault {
                    Fault::NoAccessToken => {
                        serde_json::json!({"token_type": "Bearer", "expires_in": 300})
                    }
                    Fault::NoAccessTokenRotated => {
                        s.refresh_tokens.push(refresh.clone());
                        serde_json::json!({
                            "token_type": "Bearer", "expires_in": 300, "refresh_token": refresh,
                        })
                    }
                    _ => {
                        s.access_tokens.push(access.clone());
                        let mut body = serde_json::json!({
                            "access_token": access, "token_type": "Bearer", "expires_in": 300,
                        });
                        if is_refresh {
                            s.refresh_tokens.push(refresh.clone());
                            body["refresh_token"] = refresh.into();
                        }
                        body
                    }
                }
            };
            respond(
                &conn,
                "200 OK",
                "application/json",
                body.to_string().as_bytes(),
            );
        }
    }
}

// ------------------------------------------------------------------ reliability helpers

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Output;

use nix_cache_login::config::{Config, Environment};
use nix_cache_login::secret::Secret;
use nix_cache_login::token_store::{Grant, Session, TokenStore};

use super::cli::{TestEnv, describe};
use super::idp::Idp;

/// The cache hosts of the sessions kept against the fault server.
pub const USER_HOST: &str = "user.cache.test";
pub const SERVER_HOST: &str = "cache.test";

/// A user session (refresh) kept against the fault server, after one healthy refresh.
pub fn user_env_at_fault_server(idp: &Idp, server: &FaultServer) -> TestEnv {
    let mut env = TestEnv::new(idp);
    env.update_config(|c| {
        c.issuer = Some(server.issuer());
        c.cache_host = Some(USER_HOST.into());
    });
    env.set_env("NIX_CACHE_LOGIN_HTTP_TIMEOUT", "2");
    // Obey the fault server's `no-store`, so that every run meets the current fault.
    env.set_env("NIX_CACHE_LOGIN_DISCOVERY_MIN_TTL", "0");
    seed_netrc(&env.netrc_path(), USER_HOST, Some("seed-access"));
    seed_user_session(&env, &env.config_path(), "seed-access", "seed-refresh");
    server.set_fault(Fault::None, Target::Token);
    let out = env.cli(&["refresh"]);
    assert!(out.status.success(), "healthy refresh: {}", describe(&out));
    env
}

/// A server session (service-account) against the fault server, after one healthy run.
pub fn server_env_at_fault_server(idp: &Idp, server: &FaultServer) -> TestEnv {
    let mut env = TestEnv::new_server(idp);
    env.update_config(|c| c.issuer = Some(server.issuer()));
    env.set_env("NIX_CACHE_LOGIN_HTTP_TIMEOUT", "2");
    // Obey the fault server's `no-store`, so that every run meets the current fault.
    env.set_env("NIX_CACHE_LOGIN_DISCOVERY_MIN_TTL", "0");
    seed_netrc(&env.netrc_path(), SERVER_HOST, None);
    server.set_fault(Fault::None, Target::Token);
    let out = env.cli(&["service-account"]);
    assert!(
        out.status.success(),
        "healthy service-account: {}",
        describe(&out)
    );
    env
}

/// Other machines, a comment, a macdef and a `default`, as people write them: no command
/// may change these bytes.
pub const OTHER_ENTRIES: &str = "# managed by hand\nmachine github.com login me password ghp_x\n\nmachine other.example\n  login a\n  password b\n\nmacdef init\ncd /pub\n\n";
pub const DEFAULT_ENTRY: &str = "default login anonymous password guest\n";

/// The sandbox's environment as the library sees it (to find the store file of a config).
pub struct SandboxEnv(HashMap<String, String>);

impl SandboxEnv {
    pub fn of(env: &TestEnv) -> SandboxEnv {
        SandboxEnv(
            env.env_vars()
                .into_iter()
                .map(|(k, v)| (k, v.to_string_lossy().into_owned()))
                .collect(),
        )
    }
}

impl Environment for SandboxEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned().filter(|v| !v.is_empty())
    }
    fn home_dir(&self) -> Option<PathBuf> {
        self.0.get("HOME").map(PathBuf::from)
    }
}

/// The config at `config_path` as the CLI would load it in `env`.
pub fn load_config(env: &TestEnv, config_path: &Path) -> Config {
    nix_cache_login::config::load(Some(config_path), None, &SandboxEnv::of(env))
        .unwrap_or_else(|e| panic!("{}: {e}", config_path.display()))
}

/// The token store file of the config at `config_path`.
pub fn store_path(env: &TestEnv, config_path: &Path) -> PathBuf {
    let config = load_config(env, config_path);
    TokenStore::for_config(&config, &SandboxEnv::of(env))
        .unwrap()
        .path()
        .to_path_buf()
}

/// Writes a user session (as `login` would leave it) for the config at `config_path`, with
/// an access token that expired ten seconds ago.
pub fn seed_user_session(env: &TestEnv, config_path: &Path, access: &str, refresh: &str) {
    let config = load_config(env, config_path);
    let store = TokenStore::for_config(&config, &SandboxEnv::of(env)).unwrap();
    let now = nix_cache_login::clock::now();
    let mut session = Session::new(
        &config,
        Grant::AuthorizationCode,
        Secret::new(access),
        now - 70,
    );
    session.access_token_expires_at = Some(now - 10);
    session.refresh_token = Some(Secret::new(refresh));
    session.username = Some("fake-user".into());
    store.lock().unwrap().save(&session).unwrap();
}

/// Writes `OTHER_ENTRIES`, an entry for `host` holding `token` (if any) and `DEFAULT_ENTRY`
/// to `path`, mode 0600.
pub fn seed_netrc(path: &Path, host: &str, token: Option<&str>) {
    use std::os::unix::fs::PermissionsExt;
    let entry = token
        .map(|t| format!("machine {host}\nlogin nix-cache-login\npassword {t}\n"))
        .unwrap_or_default();
    std::fs::write(path, format!("{OTHER_ENTRIES}{entry}{DEFAULT_ENTRY}")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The password of `machine`'s entry in the netrc at `path`, by the crate's own parser.
pub fn netrc_password(path: &Path, machine: &str) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    let entry = nix_cache_login::netrc::Netrc::parse(&bytes).get(machine)?;
    entry
        .password
        .map(|p| String::from_utf8_lossy(&p).into_owned())
}

/// Every regular file under `dir` (recursively) and its bytes; lock files left out (they
/// are created on first use and never removed, by design).
pub fn snapshot_dir(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            files.extend(snapshot_dir(&path));
        } else if meta.is_file() && path.extension().is_none_or(|e| e != "lock") {
            files.insert(path.clone(), std::fs::read(&path).unwrap_or_default());
        }
    }
    files
}

/// Names of files under `dir` (recursively) that a write or a writability probe leaves
/// behind when it is killed: `.<name>.tmp.*` and `.<name>.probe.*`.
pub fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && !path.is_symlink() {
            found.extend(leftovers(&path));
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && (name.contains(".tmp.") || name.contains(".probe.")) {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// Checks a failed run: exit `code`, no panic, and a last stderr line that is the error
/// (one line, `error: ...`) naming every one of `needles`. Returns that line.
pub fn assert_failed(case: &str, out: &Output, code: i32, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{case}: exit code\n{}",
        super::cli::describe(out)
    );
    assert!(
        !stderr.contains("panicked"),
        "{case}: the CLI panicked\n{stderr}"
    );
    let last = stderr.trim_end().lines().last().unwrap_or("").to_string();
    assert!(
        last.starts_with("error: "),
        "{case}: the last line of stderr is not the error (one line expected)\n{stderr}"
    );
    for needle in needles {
        assert!(
            last.contains(needle),
            "{case}: the error should name {needle:?}: {last}"
        );
    }
    last
}

/// Whether this process runs as root (where permission bits do not stop writes).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A tmpfs mounted on a directory for as long as this lives (root only).
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `64k`) on `dir` (created if missing).
    pub fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs {
            dir: dir.to_path_buf(),
        })
    }

    /// Makes the mount read-only.
    pub fn remount_read_only(&self) -> Result<(), String> {
        self.remount("remount,ro")
    }

    /// Makes the mount writable again.
    pub fn remount_read_write(&self) -> Result<(), String> {
        self.remount("remount,rw")
    }

    fn remount(&self, options: &str) -> Result<(), String> {
        let out = std::process::Command::new("mount")
            .args(["-o", options])
            .arg(&self.dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "mount -o {options} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = std::process::Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.dir)
                .status();
        }
    }
}

/// Fills the file system holding `dir` with a file `filler` until it is full.
pub fn fill_up(dir: &Path) {
    let mut f = std::fs::File::create(dir.join("filler")).expect("create the filler");
    let chunk = [0u8; 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
    // A last few bytes, in case a partial block is left.
    while f.write_all(&[0u8]).is_ok() {}
}
