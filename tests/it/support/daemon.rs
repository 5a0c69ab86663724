//! A real `nix-daemon` (Debian's nix-bin) on a private store and socket, the bridge
//! (`nix-cache-login bridge serve`) as root, and running things as an unprivileged user.
//!
//! The daemon gets its own `NIX_CONF_DIR`: the only substituter is the test cache, its
//! `netrc-file` is a root-only file (the one the bridge writes), and no user but root is
//! trusted. Seen with Nix 2.8 here: an untrusted client's `--option netrc-file` is
//! ignored by the daemon ("ignoring the client-specified setting"), and the daemon sends
//! its own netrc entry as Basic auth, as the single-user tests saw for the client.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::cache::CacheServer;
use super::cli_binary;
use super::nix::{NIX_CONF, NIX_TIMEOUT, NixLab, TestPath};
use super::proc::{output_with_timeout, stop_group};

/// The unprivileged user of the tests (Debian's `nobody`/`nogroup`).
pub const NOBODY: u32 = 65534;
/// A uid with no name in the user database: in no allowed list, ever.
pub const NAMELESS: u32 = 65533;
/// Debian's `daemon` user (uid 1): a second named unprivileged user.
pub const DAEMON_USER: u32 = 1;

/// Hands `path` and everything under it to `uid` (and the same gid).
pub fn give_to(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).expect("chown");
    if fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        for entry in fs::read_dir(path).expect("read dir").flatten() {
            give_to(&entry.path(), uid);
        }
    }
}

/// `cmd` (program, arguments, environment, directory) run as `uid` with no supplementary
/// groups, through util-linux's setpriv.
pub fn as_user(cmd: &Command, uid: u32) -> Command {
    let mut wrapped = Command::new("setpriv");
    wrapped
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .arg("--clear-groups")
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            wrapped.env(k, v);
        }
    }
    if let Some(dir) = cmd.get_current_dir() {
        wrapped.current_dir(dir);
    }
    wrapped
}

/// A directory others may enter (sockets and stores the unprivileged user must reach).
pub fn open_dir(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    fs::create_dir_all(&dir).expect("create dir");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod 0755");
    dir
}

/// A running `nix-daemon`; its process group is stopped on drop.
pub struct NixDaemon {
    child: Child,
    _dir: TempDir,
    socket: PathBuf,
    store: PathBuf,
    log: PathBuf,
}

impl NixDaemon {
    /// Serves a new chroot store; substitutes only from `cache` with `lab`'s key, reading
    /// `netrc` (which should be root's, 0600).
    pub fn start(lab: &NixLab, cache: &CacheServer, netrc: &Path) -> NixDaemon {
        let dir = tempfile::Builder::new()
            .prefix("ncl-daemon-")
            .tempdir()
            .expect("temp dir for nix-daemon");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let conf_dir = dir.path().join("conf");
        fs::create_dir_all(&conf_dir).unwrap();
        let conf = NIX_CONF
            .replace(
                "substituters =\n",
                &format!("substituters = {}\n", cache.url()),
            )
            .replace(
                "trusted-public-keys =\n",
                &format!("trusted-public-keys = {}\n", lab.public_key()),
            );
        fs::write(
            conf_dir.join("nix.conf"),
            format!(
                "{conf}netrc-file = {}\ntrusted-users = root\nallowed-users = *\n",
                netrc.display()
            ),
        )
        .unwrap();
        let store = open_dir(dir.path(), "store");
        let socket = open_dir(dir.path(), "socket").join("daemon.sock");
        let home = dir.path().join("root-home");
        fs::create_dir_all(&home).unwrap();
        let log = dir.path().join("daemon.log");
        let child = Command::new("nix-daemon")
            .arg("--store")
            .arg(&store)
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
            )
            .env("HOME", &home)
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("NIX_CONF_DIR", &conf_dir)
            .env("NIX_DAEMON_SOCKET_PATH", &socket)
            .env("TMPDIR", std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(fs::File::create(&log).unwrap())
            .stderr(fs::File::create(dir.path().join("daemon.stderr")).unwrap())
            .process_group(0)
            .spawn()
            .expect("start nix-daemon (Debian's nix-bin)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while UnixStream::connect(&socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "nix-daemon did not listen on {}",
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = store.clone();
        NixDaemon {
            child,
            log: dir.path().join("daemon.stderr"),
            _dir: dir,
            socket,
            store,
        }
    }

    /// The daemon's stderr so far (its warnings, such as ignored client settings).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `nix-store --store unix://SOCKET --realise PATH` as `uid`, with a HOME it owns (under
    /// `home`) and `options` as `--option NAME VALUE`. Returns the run and whether the path
    /// is now in the daemon's store with the right text.
    pub fn realise_as(
        &self,
        uid: u32,
        home: &Path,
        lab: &NixLab,
        which: TestPath,
        options: &[(&str, &str)],
    ) -> (Output, bool) {
        let path = lab.path_of(which);
        let conf = home.join("nix-conf");
        fs::create_dir_all(&conf).unwrap();
        fs::write(conf.join("nix.conf"), NIX_CONF).unwrap();
        give_to(home, uid);
        let mut cmd = Command::new("nix-store");
        cmd.arg("--store")
            .arg(format!("unix://{}", self.socket.display()))
            .arg("--realise")
            .arg(path);
        for (k, v) in options {
            cmd.args(["--option", k, v]);
        }
        cmd.env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("HOME", home)
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("NIX_CONF_DIR", &conf)
        .env("LANG", "C.UTF-8")
        .current_dir(home);
        let output = output_with_timeout(&mut as_user(&cmd, uid), NIX_TIMEOUT);
        let file = self.store.join(path.trim_start_matches('/'));
        let fetched = output.status.success()
            && fs::read_to_string(&file).is_ok_and(|t| t == lab.text_of(which));
        (output, fetched)
    }
}

impl Drop for NixDaemon {
    fn drop(&mut self) {
        stop_group(&mut self.child, Duration::from_secs(2));
        // Store paths are read-only; let the temp dir go.
        let _ = Command::new("chmod")
            .args(["-R", "u+w"])
            .arg(&self.store)
            .status();
    }
}

use std::os::unix::process::CommandExt;

/// `nix-cache-login bridge serve` as root on a socket in a directory others can enter.
pub struct Bridge {
    child: Option<Child>,
    dir: PathBuf,
    socket: PathBuf,
    config: PathBuf,
    ca: PathBuf,
    log: PathBuf,
    starts: usize,
}

impl Bridge {
    /// Writes `config_toml` as the bridge's config (root's, 0644) under `dir` and starts
    /// the bridge, trusting `ca` for the issuer; waits until it listens.
    pub fn start(dir: &Path, config_toml: &str, ca: &Path) -> Bridge {
        let config = dir.join("bridge.toml");
        fs::write(&config, config_toml).unwrap();
        fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
        let socket = open_dir(dir, "run").join("bridge.sock");
        let mut bridge = Bridge {
            child: None,
            dir: dir.to_path_buf(),
            socket,
            config,
            ca: ca.to_path_buf(),
            log: dir.join("bridge.log"),
            starts: 0,
        };
        bridge.restart();
        bridge
    }

    /// Starts it (again, after a kill); its stderr is appended to the log.
    pub fn restart(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(cli_binary())
            .args(["bridge", "serve", "--config"])
            .arg(&self.config)
            .arg("--socket")
            .arg(&self.socket)
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
            )
            .env("SSL_CERT_FILE", &self.ca)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start the bridge");
        self.child = Some(child);
        self.starts += 1;
        let deadline = Instant::now() + Duration::from_secs(30);
        while UnixStream::connect(&self.socket).is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("the bridge exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "the bridge did not listen:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// SIGKILL, and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Everything the bridge wrote to stderr, all starts.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `bytes` as root and returns what came back (until the bridge closes or 10 s),
    /// tolerating a bridge that stops reading (an oversized request).
    pub fn send_raw(&self, bytes: &[u8]) -> String {
        let mut stream = UnixStream::connect(&self.socket).expect("connect to the bridge");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let _ = stream.write_all(bytes);
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    }

    /// One JSON request line as root; the answer parsed.
    pub fn request(&self, request: &serde_json::Value) -> serde_json::Value {
        self.request_raw(format!("{request}\n").as_bytes())
    }

    /// Sends `bytes` as root (see [`Bridge::send_raw`]); the answer, which must be one
    /// JSON line, parsed.
    pub fn request_raw(&self, bytes: &[u8]) -> serde_json::Value {
        let answer = self.send_raw(bytes);
        serde_json::from_str(answer.trim_end())
            .unwrap_or_else(|e| panic!("not one JSON answer ({e}): {answer:?}\n{}", self.log()))
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_group(&mut child, Duration::from_secs(2));
        }
    }
}
