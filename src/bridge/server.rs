//! `bridge serve`: the socket, the connections, and what each request does.
//!
//! One process, one thread: connections are tasks, and the file work (user lookups, the
//! netrc and record writes) runs on the blocking pool, one write at a time. Lock order for
//! a write: the record file's lock, then the netrc's (taken by the netrc writer).

use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::io::FromRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Mutex, Semaphore};

use super::caller::{Access, Caller};
use super::config::BridgeConfig;
use super::keys::KeyCache;
use super::protocol::{
    EntryStatus, Holder, MAX_LINE, MAX_REQUESTS_PER_CONNECTION, Refusal, Request, Response,
    parse_request,
};
use super::record::{self, Record};
use super::verify::{self, Rejection, Verified};
use crate::clock;
use crate::config::Environment;
use crate::fs;
use crate::http::HttpClient;
use crate::netrc;
use crate::secret::Secret;

/// How long a request line may take to arrive, and an answer to be taken.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more get a one-line "busy".
const MAX_CONNECTIONS: usize = 64;
/// systemd passes the first socket as fd 3 (SD_LISTEN_FDS_START).
const LISTEN_FDS_START: i32 = 3;

/// Where the bridge listens.
pub enum Listener {
    /// Handed over by systemd (`LISTEN_FDS`); systemd owns the file.
    Activated(std::os::unix::net::UnixListener),
    /// Bound here; the file is removed again on a clean stop.
    Bound(std::os::unix::net::UnixListener, PathBuf),
}

impl Listener {
    /// The socket systemd passed, else one bound at `path`.
    pub fn open(path: &Path, env: &dyn Environment) -> Result<Listener> {
        if let Some(listener) = activated(env)? {
            return Ok(Listener::Activated(listener));
        }
        Ok(Listener::Bound(bind(path)?, path.to_path_buf()))
    }

    fn describe(&self) -> String {
        match self {
            Listener::Activated(_) => "the socket systemd passed".to_string(),
            Listener::Bound(_, path) => path.display().to_string(),
        }
    }
}

/// The listening socket of socket activation, when `LISTEN_PID` names this process.
fn activated(env: &dyn Environment) -> Result<Option<std::os::unix::net::UnixListener>> {
    let for_us = env
        .var("LISTEN_PID")
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|pid| pid == std::process::id());
    if !for_us {
        return Ok(None);
    }
    let count: i32 = env
        .var("LISTEN_FDS")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if count != 1 {
        bail!(
            "socket activation passed {count} sockets (LISTEN_FDS); the bridge takes exactly one"
        );
    }
    // SAFETY: systemd passes the socket as fd 3 to this process (LISTEN_PID says so), and
    // nothing else in this process has taken ownership of that descriptor.
    let listener = unsafe { std::os::unix::net::UnixListener::from_raw_fd(LISTEN_FDS_START) };
    // SAFETY: fcntl on a descriptor we own; keeps it from children (there are none, but a
    // root socket must not leak by accident).
    unsafe { libc::fcntl(LISTEN_FDS_START, libc::F_SETFD, libc::FD_CLOEXEC) };
    listener
        .local_addr()
        .context("the socket systemd passed (fd 3) is not a Unix socket")?;
    Ok(Some(listener))
}

/// Binds `path` (mode 0666: the bridge checks each caller itself). A socket file left by a
/// stopped bridge is replaced; one that a running bridge answers on is not.
fn bind(path: &Path) -> Result<std::os::unix::net::UnixListener> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                bail!("another bridge is already listening on {}", path.display());
            }
            std::fs::remove_file(path)
                .with_context(|| format!("cannot remove the stale socket {}", path.display()))?;
        }
        Ok(_) => bail!("{} exists and is not a socket", path.display()),
        Err(_) => {}
    }
    let listener = std::os::unix::net::UnixListener::bind(path)
        .with_context(|| format!("cannot listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .with_context(|| format!("cannot make {} reachable to users", path.display()))?;
    Ok(listener)
}

/// The bridge's state: its config, the issuer's keys, and the write serializer.
pub struct Bridge {
    config: BridgeConfig,
    access: Access,
    http: HttpClient,
    keys: Mutex<KeyCache>,
    writes: Mutex<()>,
}

impl Bridge {
    /// Checks what can be checked before the first caller: the state directory, the
    /// daemon's netrc is writable, and (best effort) the issuer's keys.
    pub async fn start(config: BridgeConfig, env: &dyn Environment) -> Result<Arc<Bridge>> {
        fs::create_private_dir(&config.state_dir)
            .with_context(|| format!("state_dir {}", config.state_dir.display()))?;
        fs::check_writable(&config.netrc_path)
            .with_context(|| format!("netrc_path {}", config.netrc_path.display()))?;
        let keys = KeyCache::new(
            &config.policy.issuer,
            config.state_dir.join("issuer-documents.json"),
        );
        let bridge = Arc::new(Bridge {
            access: Access {
                users: config.allowed_users.clone(),
                groups: config.allowed_groups.clone(),
            },
            http: HttpClient::new(env)?,
            keys: Mutex::new(keys),
            writes: Mutex::new(()),
            config,
        });
        if let Err(e) = bridge.keys.lock().await.current(&bridge.http).await {
            // The issuer may be unreachable at boot; each hand-over tries again.
            eprintln!("warning: cannot fetch the issuer's keys yet: {e:#}");
        }
        Ok(bridge)
    }

    /// Answers one request of `caller`. Every refusal is logged (without the token).
    pub async fn answer(self: &Arc<Self>, caller: &Arc<Caller>, request: Request) -> Response {
        let op = request.op();
        let response = self.decide(caller, request).await;
        if !response.ok {
            eprintln!(
                "refused {} from {}: {}",
                op.as_str(),
                caller.describe(),
                response.message
            );
        }
        response
    }

    async fn decide(self: &Arc<Self>, caller: &Arc<Caller>, request: Request) -> Response {
        let allowed = {
            let (access, caller) = (self.access.clone(), Arc::clone(caller));
            blocking(move || Ok(access.allows(&caller))).await
        };
        if !matches!(allowed, Ok(true)) {
            return Response::refuse(
                Refusal::NotAllowed,
                format!(
                    "{} may not use the bridge (not in allowed_users or allowed_groups of {})",
                    caller.describe(),
                    self.config.source.display()
                ),
            );
        }
        match request {
            Request::Put { host, token } => self.put(caller, &host, token).await,
            Request::Remove { host } => self.remove(caller, &host).await,
            Request::Status { host } => self.status(caller, host.as_deref()).await,
        }
    }

    fn served(&self, host: &str) -> Result<String, Response> {
        self.config
            .served_host(host)
            .map(str::to_string)
            .ok_or_else(|| {
                Response::refuse(
                    Refusal::HostNotServed,
                    format!(
                        "{host} is not one of the cache_hosts of {}",
                        self.config.source.display()
                    ),
                )
            })
    }

    async fn put(self: &Arc<Self>, caller: &Arc<Caller>, host: &str, token: Secret) -> Response {
        let host = match self.served(host) {
            Ok(h) => h,
            Err(refusal) => return refusal,
        };
        let verified = match self.verify(&token).await {
            Ok(v) => v,
            Err(response) => return response,
        };
        let _serialized = self.writes.lock().await;
        let (bridge, caller2, host2, verified2) = (
            Arc::clone(self),
            Arc::clone(caller),
            host.clone(),
            verified.clone(),
        );
        let written =
            blocking(move || bridge.write_entry(&caller2, &host2, &token, &verified2)).await;
        match written {
            Ok(()) => {
                let until = clock::format_utc(verified.expires_at);
                eprintln!(
                    "put {host}: {} subject={} expires={until}",
                    caller.describe(),
                    verified.subject
                );
                Response {
                    changed: true,
                    expires_at: Some(verified.expires_at),
                    ..Response::done(format!(
                        "the daemon's netrc holds your token for {host} until {until}"
                    ))
                }
            }
            Err(e) => Response::refuse(Refusal::Failed, format!("{e:#}")),
        }
    }

    /// Checks the claims, then the signature with the cached keys; on an unknown key id,
    /// once more with a fresh JWKS.
    async fn verify(&self, token: &Secret) -> Result<Verified, Response> {
        let bad = |r: Rejection| Response::refuse(Refusal::BadToken, r.to_string());
        let failed = |e: anyhow::Error| {
            Response::refuse(
                Refusal::Failed,
                format!("cannot get the issuer's signing keys: {e:#}"),
            )
        };
        let checked =
            verify::check(token.expose(), &self.config.policy, clock::now()).map_err(bad)?;
        let keys = self
            .keys
            .lock()
            .await
            .current(&self.http)
            .await
            .map_err(failed)?;
        match checked.signed_by(&keys) {
            Err(Rejection::UnknownKey(kid)) => {
                let fresh = self
                    .keys
                    .lock()
                    .await
                    .refetch(&self.http)
                    .await
                    .map_err(failed)?;
                match fresh {
                    Some(keys) => checked.signed_by(&keys).map_err(bad),
                    None => Err(bad(Rejection::UnknownKey(kid))),
                }
            }
            other => other.map_err(bad),
        }
    }

    /// Blocking: the netrc entry, then its record.
    fn write_entry(&self, caller: &Caller, host: &str, token: &Secret, v: &Verified) -> Result<()> {
        let records_path = record::path_in(&self.config.state_dir);
        let _lock = fs::lock_for(&records_path)?;
        let machine = netrc::machine_name(host);
        netrc::update(&self.config.netrc_path, |file| {
            file.upsert(machine, &self.config.netrc_login, token.expose());
            Ok(())
        })
        .with_context(|| format!("cannot update {}", self.config.netrc_path.display()))?;
        let mut records = record::read(&records_path);
        records.entries.insert(
            machine.to_string(),
            Record {
                uid: caller.uid,
                subject: v.subject.clone(),
                host: host.to_string(),
                expires_at: v.expires_at,
                put_at: clock::now(),
                token_sha256: record::fingerprint(token.expose().as_bytes()),
            },
        );
        // The netrc is what the daemon reads; a lost record only means that root must
        // remove this entry, so the hand-over still counts as done.
        if let Err(e) = record::write(&records_path, &records) {
            eprintln!("warning: the entry for {host} is written but not recorded: {e:#}");
        }
        Ok(())
    }

    async fn remove(self: &Arc<Self>, caller: &Arc<Caller>, host: &str) -> Response {
        let host = match self.served(host) {
            Ok(h) => h,
            Err(refusal) => return refusal,
        };
        let _serialized = self.writes.lock().await;
        let (bridge, caller2, host2) = (Arc::clone(self), Arc::clone(caller), host.clone());
        match blocking(move || bridge.remove_entry(&caller2, &host2)).await {
            Ok(Removal::Removed) => {
                eprintln!("remove {host}: {}", caller.describe());
                Response {
                    changed: true,
                    ..Response::done(format!("removed the daemon's netrc entry for {host}"))
                }
            }
            Ok(Removal::NothingThere) => {
                Response::done(format!("the daemon's netrc has no entry for {host}"))
            }
            Ok(Removal::NotYours) => Response::refuse(
                Refusal::NotYours,
                format!(
                    "the daemon's netrc entry for {host} was not put there by you; left as it is"
                ),
            ),
            Err(e) => Response::refuse(Refusal::Failed, format!("{e:#}")),
        }
    }

    fn remove_entry(&self, caller: &Caller, host: &str) -> Result<Removal> {
        let records_path = record::path_in(&self.config.state_dir);
        let _lock = fs::lock_for(&records_path)?;
        let machine = netrc::machine_name(host);
        let password = netrc::read(&self.config.netrc_path)?
            .and_then(|f| f.get(machine))
            .and_then(|e| e.password);
        let mut records = record::read(&records_path);
        let Some(password) = password else {
            return Ok(Removal::NothingThere);
        };
        let owner = records
            .entries
            .get(machine)
            .filter(|r| r.is_for(&password))
            .map(|r| r.uid);
        if !caller.is_root() && owner != Some(caller.uid) {
            return Ok(Removal::NotYours);
        }
        netrc::update(&self.config.netrc_path, |file| {
            file.remove(machine);
            Ok(())
        })
        .with_context(|| format!("cannot update {}", self.config.netrc_path.display()))?;
        if records.entries.remove(machine).is_some()
            && let Err(e) = record::write(&records_path, &records)
        {
            eprintln!("warning: the entry for {host} is removed, its record not: {e:#}");
        }
        Ok(Removal::Removed)
    }

    async fn status(self: &Arc<Self>, caller: &Arc<Caller>, host: Option<&str>) -> Response {
        let hosts = match host {
            Some(h) => match self.served(h) {
                Ok(h) => vec![h],
                Err(refusal) => return refusal,
            },
            None => self.config.cache_hosts.clone(),
        };
        let (bridge, caller2) = (Arc::clone(self), Arc::clone(caller));
        match blocking(move || bridge.entries(&caller2, &hosts)).await {
            Ok(entries) => Response {
                entries,
                ..Response::done(
                    "on a shared machine the daemon has one entry per host: the last login wins",
                )
            },
            Err(e) => Response::refuse(Refusal::Failed, format!("{e:#}")),
        }
    }

    fn entries(&self, caller: &Caller, hosts: &[String]) -> Result<Vec<EntryStatus>> {
        let file = netrc::read(&self.config.netrc_path)?;
        let records = record::read(&record::path_in(&self.config.state_dir));
        Ok(hosts
            .iter()
            .map(|host| {
                let machine = netrc::machine_name(host).to_string();
                let password = file
                    .as_ref()
                    .and_then(|f| f.get(&machine))
                    .and_then(|e| e.password);
                let record = password
                    .as_ref()
                    .and_then(|p| records.entries.get(&machine).filter(|r| r.is_for(p)));
                let holder = match (&password, record) {
                    (None, _) => Holder::Nobody,
                    (Some(_), None) => Holder::Unrecorded,
                    (Some(_), Some(r)) if r.uid == caller.uid => Holder::Caller,
                    (Some(_), Some(_)) => Holder::OtherUser,
                };
                // Another user's subject and expiry are theirs; root sees everything.
                let visible = record.filter(|r| r.uid == caller.uid || caller.is_root());
                EntryStatus {
                    host: host.clone(),
                    machine,
                    holder,
                    expires_at: visible.map(|r| r.expires_at),
                    subject: visible.map(|r| r.subject.clone()),
                    uid: record.filter(|_| caller.is_root()).map(|r| r.uid),
                }
            })
            .collect())
    }
}

enum Removal {
    Removed,
    NothingThere,
    NotYours,
}

/// Runs file or user-database work off the runtime's one thread.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .context("a bridge worker failed")?
}

/// Serves until SIGTERM or SIGINT; then lets the write in progress finish.
pub async fn serve(config: BridgeConfig, listener: Listener, env: &dyn Environment) -> Result<()> {
    let bridge = Bridge::start(config, env).await?;
    let described = listener.describe();
    let (std_listener, bound) = match listener {
        Listener::Activated(l) => (l, None),
        Listener::Bound(l, path) => (l, Some(path)),
    };
    std_listener.set_nonblocking(true)?;
    let listener = UnixListener::from_std(std_listener)?;
    eprintln!(
        "listening on {described}; daemon netrc {}, issuer {}",
        bridge.config.netrc_path.display(),
        bridge.config.policy.issuer
    );
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("warning: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                match Arc::clone(&slots).try_acquire_owned() {
                    Ok(permit) => {
                        let bridge = Arc::clone(&bridge);
                        tokio::spawn(async move {
                            connection(bridge, stream).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        tokio::spawn(async move {
                            let mut stream = stream;
                            let busy = Response::refuse(Refusal::Busy, "the bridge is busy; try again");
                            let _ = tokio::time::timeout(IO_TIMEOUT, stream.write_all(busy.to_line().as_bytes())).await;
                        });
                    }
                }
            }
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    // A write in progress finishes; no new one starts.
    let _writes = bridge.writes.lock().await;
    if let Some(path) = bound {
        let _ = std::fs::remove_file(path);
    }
    eprintln!("stopped");
    Ok(())
}

/// One connection: up to [`MAX_REQUESTS_PER_CONNECTION`] request lines, one answer each.
async fn connection(bridge: Arc<Bridge>, stream: UnixStream) {
    let caller = match stream.peer_cred() {
        Ok(cred) => {
            let (uid, gid) = (cred.uid(), cred.gid());
            match blocking(move || Ok(Caller::new(uid, gid))).await {
                Ok(c) => Arc::new(c),
                Err(_) => return,
            }
        }
        Err(e) => {
            eprintln!("warning: cannot tell who is calling: {e}");
            return;
        }
    };
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::with_capacity(16 * 1024, read);
    for served in 0..=MAX_REQUESTS_PER_CONNECTION {
        let line = match tokio::time::timeout(IO_TIMEOUT, read_line(&mut reader)).await {
            Ok(Ok(Line::Complete(line))) => line,
            Ok(Ok(Line::End)) => return,
            Ok(Ok(Line::Unterminated)) => {
                let r =
                    Response::refuse(Refusal::BadRequest, "bad request: not ended by a newline");
                send_last(&caller, &mut write, r).await;
                return;
            }
            Ok(Ok(Line::TooLarge)) => {
                let r = Response::refuse(
                    Refusal::TooLarge,
                    format!("request longer than {MAX_LINE} bytes"),
                );
                send_last(&caller, &mut write, r).await;
                return;
            }
            Ok(Err(_)) => return,
            Err(_) => {
                let r = Response::refuse(
                    Refusal::Timeout,
                    format!("no complete request within {} s", IO_TIMEOUT.as_secs()),
                );
                send_last(&caller, &mut write, r).await;
                return;
            }
        };
        if served == MAX_REQUESTS_PER_CONNECTION {
            let r = Response::refuse(
                Refusal::TooManyRequests,
                format!("at most {MAX_REQUESTS_PER_CONNECTION} requests per connection"),
            );
            send_last(&caller, &mut write, r).await;
            return;
        }
        let response = match parse_request(&line) {
            Ok(request) => bridge.answer(&caller, request).await,
            Err(refusal) => {
                log_refusal(&caller, &refusal);
                refusal
            }
        };
        if send(&mut write, &response).await.is_err() {
            return;
        }
    }
}

fn log_refusal(caller: &Caller, response: &Response) {
    eprintln!(
        "refused a request from {}: {}",
        caller.describe(),
        response.message
    );
}

async fn send_last(
    caller: &Caller,
    write: &mut tokio::net::unix::OwnedWriteHalf,
    response: Response,
) {
    log_refusal(caller, &response);
    let _ = send(write, &response).await;
    let _ = write.shutdown().await;
}

async fn send(write: &mut tokio::net::unix::OwnedWriteHalf, response: &Response) -> Result<()> {
    tokio::time::timeout(IO_TIMEOUT, write.write_all(response.to_line().as_bytes()))
        .await
        .context("the caller did not take the answer in time")??;
    Ok(())
}

enum Line {
    Complete(Vec<u8>),
    /// The caller closed the connection between requests.
    End,
    /// The caller closed it in the middle of a line.
    Unterminated,
    TooLarge,
}

/// Reads one line, never holding more than [`MAX_LINE`] bytes of it.
async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<Line> {
    let mut line = Vec::new();
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(if line.is_empty() {
                Line::End
            } else {
                Line::Unterminated
            });
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if line.len() + chunk.len() >= MAX_LINE {
            return Ok(Line::TooLarge);
        }
        line.extend_from_slice(chunk);
        let used = done.unwrap_or(chunk.len());
        reader.consume(used);
        if done.is_some() {
            return Ok(Line::Complete(line));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8]) -> Vec<String> {
        let mut reader = BufReader::with_capacity(7, input);
        let mut out = Vec::new();
        loop {
            match read_line(&mut reader).await.unwrap() {
                Line::Complete(l) => out.push(String::from_utf8(l).unwrap()),
                Line::End => return out,
                Line::Unterminated => {
                    out.push("<unterminated>".into());
                    return out;
                }
                Line::TooLarge => {
                    out.push("<too large>".into());
                    return out;
                }
            }
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn lines_are_bounded_and_split_across_reads() {
        assert_eq!(lines(b"").await, Vec::<String>::new());
        assert_eq!(lines(b"a\nbcdefghijk\n").await, vec!["a", "bcdefghijk"]);
        assert_eq!(lines(b"a\nxyz").await, vec!["a", "<unterminated>"]);
        let big = vec![b'x'; MAX_LINE + 10];
        assert_eq!(lines(&big).await, vec!["<too large>"]);
        let mut just = vec![b'x'; MAX_LINE - 1];
        just.push(b'\n');
        assert_eq!(lines(&just).await.len(), 1);
    }
}
