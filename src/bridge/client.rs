//! The client side of the bridge: which socket to use (config key `daemon_bridge`), and the
//! three exchanges the commands make. Blocking and short: one connection, a few lines.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::DEFAULT_SOCKET;
use super::protocol::{EntryStatus, MAX_LINE, Refusal, Request, Response};
use crate::config::Config;
use crate::secret::Secret;
use crate::session::TokenSink;
use crate::token_store::Session;

/// Longer than the bridge's own 5 s per line: it may have to fetch the issuer's keys.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The `daemon_bridge` setting.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DaemonBridge {
    /// `false`: never talk to a bridge.
    Off,
    /// Not set: the default socket, when one is there (a machine without the bridge is
    /// not an error).
    #[default]
    Auto,
    /// A socket path: it must answer.
    Socket(PathBuf),
}

impl DaemonBridge {
    /// From the config value: `false`, `true` (the default socket, required) or a path.
    pub fn from_toml(value: &toml::Value) -> Result<DaemonBridge, String> {
        match value {
            toml::Value::Boolean(false) => Ok(DaemonBridge::Off),
            toml::Value::Boolean(true) => Ok(DaemonBridge::Socket(PathBuf::from(DEFAULT_SOCKET))),
            toml::Value::String(p) if Path::new(p).is_absolute() => {
                Ok(DaemonBridge::Socket(PathBuf::from(p)))
            }
            toml::Value::String(p) => Err(format!("{p:?} must be an absolute socket path")),
            _ => Err("must be a socket path or false".into()),
        }
    }

    /// The socket to hand tokens to, if any.
    pub fn socket(&self) -> Option<PathBuf> {
        match self {
            DaemonBridge::Off => None,
            DaemonBridge::Socket(p) => Some(p.clone()),
            DaemonBridge::Auto => {
                let default = Path::new(DEFAULT_SOCKET);
                std::fs::symlink_metadata(default)
                    .is_ok_and(|m| m.file_type().is_socket())
                    .then(|| default.to_path_buf())
            }
        }
    }
}

/// Sends `requests` on one connection and reads one answer each.
pub fn exchange(socket: &Path, requests: &[Request]) -> Result<Vec<Response>> {
    let reach = || format!("cannot reach the daemon bridge at {}", socket.display());
    let mut stream = UnixStream::connect(socket).with_context(reach)?;
    stream.set_read_timeout(Some(TIMEOUT)).with_context(reach)?;
    stream
        .set_write_timeout(Some(TIMEOUT))
        .with_context(reach)?;
    let text: String = requests.iter().map(Request::to_line).collect();
    stream.write_all(text.as_bytes()).with_context(reach)?;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut reader = BufReader::new(stream);
    let mut answers = Vec::with_capacity(requests.len());
    for _ in requests {
        let mut line = Vec::new();
        (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .with_context(|| format!("no answer from the daemon bridge at {}", socket.display()))?;
        let answer = Response::parse(line.trim_ascii_end()).with_context(|| {
            format!(
                "the daemon bridge at {} answered something that is not an answer",
                socket.display()
            )
        })?;
        // A refusal of the connection as a whole (busy, a bad line) ends it.
        let last = matches!(
            answer.refused,
            Some(Refusal::Busy | Refusal::BadRequest | Refusal::TooLarge | Refusal::Timeout)
        );
        answers.push(answer);
        if last {
            break;
        }
    }
    Ok(answers)
}

/// The line every hand-over failure ends in, so the user knows what it means for Nix.
const CONSEQUENCE: &str = "Nix through the daemon will not see the new token \
     (your own netrc and session are updated)";

/// Hands `token` over for each of `hosts`. Any refusal or failure is an error naming the
/// host, the bridge's reason and what it means.
pub fn hand_over(socket: &Path, hosts: &[String], token: &Secret) -> Result<()> {
    let requests: Vec<Request> = hosts
        .iter()
        .map(|h| Request::Put {
            host: h.clone(),
            token: token.clone(),
        })
        .collect();
    let answers =
        exchange(socket, &requests).map_err(|e| anyhow::anyhow!("{e:#}: {CONSEQUENCE}"))?;
    for (host, answer) in hosts.iter().zip(answers_or_missing(&answers, hosts.len())) {
        match answer {
            Some(a) if a.ok => tracing::info!("daemon bridge: {}", a.message),
            Some(a) => bail!(
                "the daemon bridge refused the token for {host}: {}: {CONSEQUENCE}",
                crate::untrusted::clean(&a.message)
            ),
            None => bail!("the daemon bridge gave no answer for {host}: {CONSEQUENCE}"),
        }
    }
    Ok(())
}

/// What a [`take_back`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TakenBack {
    /// At least one entry was removed.
    pub removed: bool,
    /// Lines for the user (entries of other users, left alone).
    pub notes: Vec<String>,
}

/// Asks the bridge to remove the caller's entries for `hosts`. An entry of another user is
/// left alone and is no failure (it is not this user's token).
pub fn take_back(socket: &Path, hosts: &[String]) -> Result<TakenBack> {
    let requests: Vec<Request> = hosts
        .iter()
        .map(|h| Request::Remove { host: h.clone() })
        .collect();
    let consequence = "the Nix daemon's netrc may still hold your token";
    let answers =
        exchange(socket, &requests).map_err(|e| anyhow::anyhow!("{e:#}: {consequence}"))?;
    let mut done = TakenBack::default();
    for (host, answer) in hosts.iter().zip(answers_or_missing(&answers, hosts.len())) {
        match answer {
            Some(a) if a.ok => {
                tracing::info!("daemon bridge: {}", a.message);
                done.removed |= a.changed;
            }
            Some(a) if a.refused == Some(Refusal::NotYours) => done.notes.push(format!(
                "the Nix daemon's entry for {host} holds another user's token; left as it is"
            )),
            Some(a) => bail!(
                "the daemon bridge did not remove the entry for {host}: {}: {consequence}",
                crate::untrusted::clean(&a.message)
            ),
            None => bail!("the daemon bridge gave no answer for {host}: {consequence}"),
        }
    }
    Ok(done)
}

/// The bridge as a place for the token: told after the user's own netrc on every commit, and
/// on logout. A failure fails the command (exit 1) and undoes nothing: the user's own netrc
/// and store are right, only the daemon does not have the token.
pub struct BridgeSink {
    socket: PathBuf,
    hosts: Vec<String>,
}

impl BridgeSink {
    /// The sink for `config`, when its `daemon_bridge` names a socket that is to be used.
    pub fn for_config(config: &Config) -> Option<BridgeSink> {
        Some(BridgeSink {
            socket: config.daemon_bridge.socket()?,
            hosts: config.cache_hosts.clone(),
        })
    }
}

impl TokenSink for BridgeSink {
    fn describe(&self) -> String {
        format!("daemon bridge {}", self.socket.display())
    }

    fn publish(&self, session: &Session) -> Result<()> {
        hand_over(&self.socket, &self.hosts, &session.access_token)
    }

    fn withdraw(&self) -> Result<bool> {
        let done = take_back(&self.socket, &self.hosts)?;
        for note in &done.notes {
            eprintln!("{note}");
        }
        Ok(done.removed)
    }
}

/// What the daemon's netrc holds for the caller, host by host (never a token).
pub fn status(socket: &Path, host: Option<&str>) -> Result<Vec<EntryStatus>> {
    let answers = exchange(
        socket,
        &[Request::Status {
            host: host.map(str::to_string),
        }],
    )?;
    match answers.into_iter().next() {
        Some(a) if a.ok => Ok(a.entries),
        Some(a) => bail!(
            "the daemon bridge at {} refused: {}",
            socket.display(),
            crate::untrusted::clean(&a.message)
        ),
        None => bail!("no answer from the daemon bridge at {}", socket.display()),
    }
}

/// One line about one host's entry in the daemon's netrc, for people.
pub fn describe_entry(entry: &EntryStatus, now: i64) -> String {
    use super::protocol::Holder;
    use crate::clock;
    let what = match entry.holder {
        Holder::Caller => match entry.expires_at {
            Some(exp) if exp > now => format!(
                "your token, valid until {} ({})",
                clock::format_utc(exp),
                clock::relative(exp, now)
            ),
            Some(exp) => format!("your token, {}", clock::relative(exp, now)),
            None => "your token".to_string(),
        },
        Holder::OtherUser => {
            "another user's token (one entry per host: the last login wins)".to_string()
        }
        Holder::Unrecorded => "an entry the bridge did not put there".to_string(),
        Holder::Nobody => "no entry".to_string(),
    };
    format!("{}: {what}", entry.host)
}

/// Whether the daemon's netrc holds the caller's unexpired token for this host.
pub fn holds_yours(entry: &EntryStatus, now: i64) -> bool {
    entry.holder == super::protocol::Holder::Caller && entry.expires_at.is_some_and(|e| e > now)
}

fn answers_or_missing(answers: &[Response], n: usize) -> impl Iterator<Item = Option<&Response>> {
    (0..n).map(move |i| answers.get(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_bridge_values() {
        let v = |t: &str| toml::from_str::<toml::Table>(&format!("x = {t}")).unwrap()["x"].clone();
        assert_eq!(DaemonBridge::from_toml(&v("false")), Ok(DaemonBridge::Off));
        assert_eq!(
            DaemonBridge::from_toml(&v("true")),
            Ok(DaemonBridge::Socket(DEFAULT_SOCKET.into()))
        );
        assert_eq!(
            DaemonBridge::from_toml(&v("'/run/b.sock'")),
            Ok(DaemonBridge::Socket("/run/b.sock".into()))
        );
        assert!(DaemonBridge::from_toml(&v("'rel.sock'")).is_err());
        assert!(DaemonBridge::from_toml(&v("3")).is_err());
        assert_eq!(DaemonBridge::Off.socket(), None);
        assert_eq!(
            DaemonBridge::Socket("/x".into()).socket(),
            Some(PathBuf::from("/x"))
        );
    }

    #[test]
    fn an_absent_socket_is_a_failure_that_says_what_it_means() {
        let e = hand_over(
            Path::new("/nonexistent/bridge.sock"),
            &["c".into()],
            &Secret::new("t"),
        )
        .unwrap_err();
        let text = format!("{e:#}");
        assert!(
            text.contains("cannot reach the daemon bridge at /nonexistent/bridge.sock"),
            "{text}"
        );
        assert!(
            text.contains("Nix through the daemon will not see the new token"),
            "{text}"
        );
        assert!(!text.contains('\n'));
    }
}
