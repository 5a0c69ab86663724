//! The BROWSER hook (`tests/idp/browser.sh` → `browser.mjs`): headless chromium that logs
//! in at the test provider the way a user would.
//!
//! The CLI opens URLs with the `webbrowser` crate, which runs `$BROWSER URL` in the
//! background with stdout and stderr on /dev/null (a `%s` in $BROWSER would be replaced by
//! the URL; without one the URL is appended; `:` separates alternatives, so the hook's
//! path must not contain `:` or white space). The hook reports through files instead:
//! a log (BROWSER_LOG), a JSON result (BROWSER_RESULT) and pid files (BROWSER_PID_DIR)
//! that let [`BrowserHook`] stop whatever is still running on drop.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::idp_dir;
use super::proc::{output_with_timeout, pid_alive, signal_group, signal_pid};

/// What the hook does with the URL it is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrowserMode {
    /// Log in and consent; ends on the redirect target.
    Approve,
    /// Log in, then press Cancel at consent: the provider redirects with
    /// `error=access_denied`. (Device flow: press Abort on the confirm page.)
    Deny,
    /// Press Cancel on the login page already (`error=access_denied` as well).
    DenyAtLogin,
    /// Do nothing at all (for timeout tests).
    Ignore,
    /// First GET the redirect URI (from the URL's `redirect_uri`) with a wrong state and a
    /// fake code and record the status, then log in as in `Approve`.
    ForgeState,
    /// Device flow: the URL is `verification_uri_complete`, or `verification_uri` with
    /// the user code in [`BrowserHook::user_code`]. Confirms, logs in and consents.
    Device,
}

impl BrowserMode {
    fn env_value(&self) -> &'static str {
        match self {
            BrowserMode::Approve => "approve",
            BrowserMode::Deny | BrowserMode::DenyAtLogin => "deny",
            BrowserMode::Ignore => "ignore",
            BrowserMode::ForgeState => "forge-state",
            BrowserMode::Device => "device",
        }
    }
}

/// The path of the hook script, for `$BROWSER`.
pub fn hook_path() -> PathBuf {
    idp_dir().join("browser.sh")
}

/// The environment that makes the CLI's browser the hook in `mode`, logging into `dir`
/// (`browser.log`, `result.json`, `pids/`).
pub fn browser_hook_env(mode: &BrowserMode, dir: &Path) -> Vec<(String, String)> {
    let pid_dir = dir.join("pids");
    fs::create_dir_all(&pid_dir).expect("create the hook's pid dir");
    let hook = hook_path();
    let hook = hook.to_str().expect("hook path is UTF-8");
    assert!(
        !hook.contains(':') && !hook.contains(char::is_whitespace),
        "$BROWSER cannot hold a path with ':' or white space: {hook}"
    );
    let mut env = vec![
        ("BROWSER".to_owned(), hook.to_owned()),
        ("BROWSER_MODE".to_owned(), mode.env_value().to_owned()),
        ("BROWSER_LOG".to_owned(), path_str(&dir.join("browser.log"))),
        (
            "BROWSER_RESULT".to_owned(),
            path_str(&dir.join("result.json")),
        ),
        ("BROWSER_PID_DIR".to_owned(), path_str(&pid_dir)),
    ];
    if *mode == BrowserMode::DenyAtLogin {
        env.push(("BROWSER_DENY_AT".to_owned(), "login".to_owned()));
    }
    env
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("temp paths are UTF-8").to_owned()
}

/// A configured hook with its own directory for logs; stops any hook process (and its
/// chromium) still running when dropped.
pub struct BrowserHook {
    mode: BrowserMode,
    dir: TempDir,
    user: Option<String>,
    password: Option<String>,
    user_code: Option<String>,
    timeout_secs: u64,
}

impl BrowserHook {
    pub fn new(mode: BrowserMode) -> BrowserHook {
        let dir = tempfile::Builder::new()
            .prefix("ncl-browser-")
            .tempdir()
            .expect("temp dir for the browser hook");
        BrowserHook {
            mode,
            dir,
            user: None,
            password: None,
            user_code: None,
            timeout_secs: 60,
        }
    }

    /// The hook's directory (logs, result, pid files): an unprivileged CLI must own it.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The login name typed in (default `alice`); it becomes `sub` and
    /// `preferred_username`.
    pub fn user(mut self, user: &str) -> Self {
        self.user = Some(user.to_owned());
        self
    }

    /// The user code to type in when the URL does not carry it (device flow).
    pub fn user_code(mut self, code: &str) -> Self {
        self.user_code = Some(code.to_owned());
        self
    }

    /// Environment for a process that should use this hook as its browser.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = browser_hook_env(&self.mode, self.dir.path());
        env.push(("BROWSER_TIMEOUT".to_owned(), self.timeout_secs.to_string()));
        if let Some(u) = &self.user {
            env.push(("BROWSER_USER".to_owned(), u.clone()));
        }
        if let Some(p) = &self.password {
            env.push(("BROWSER_PASSWORD".to_owned(), p.clone()));
        }
        if let Some(c) = &self.user_code {
            env.push(("BROWSER_USER_CODE".to_owned(), c.clone()));
        }
        env
    }

    /// Runs the hook on `url` in the foreground (as the CLI would in the background) and
    /// waits for it; for harness tests.
    pub fn run(&self, url: &str) -> Output {
        let mut cmd = Command::new(hook_path());
        cmd.arg(url)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .envs(self.env());
        output_with_timeout(&mut cmd, Duration::from_secs(self.timeout_secs + 20))
    }

    /// What the hook logged so far (every run appends).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("browser.log")).unwrap_or_default()
    }

    /// The JSON result of the last run that finished: `ok`, `why`, `callback` (`status`,
    /// `error`, `hasCode`, `state`, `text`), `forged` (`status`, `text`), `device`, `error`.
    pub fn result(&self) -> Option<serde_json::Value> {
        let text = fs::read_to_string(self.dir.path().join("result.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Whether a hook process is still running.
    pub fn running(&self) -> bool {
        !self.pid_files().is_empty()
    }

    /// Waits (at most `timeout`) until a result is written and no hook runs any more;
    /// the result of the last run that finished.
    pub fn wait_result(&self, timeout: Duration) -> Option<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = self.result()
                && !self.running()
            {
                return Some(r);
            }
            if Instant::now() >= deadline {
                return self.result();
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Pid files of hook runs still going; a file whose node process is gone (killed
    /// hard) is cleaned up here, with its chromium.
    fn pid_files(&self) -> Vec<(PathBuf, Vec<u32>)> {
        let mut found = Vec::new();
        let Ok(entries) = fs::read_dir(self.dir.path().join("pids")) else {
            return found;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let pids: Vec<u32> = fs::read_to_string(&path)
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
            if pids.first().is_some_and(|&node| pid_alive(node)) {
                found.push((path, pids));
            } else {
                for &pid in pids.iter().skip(1) {
                    signal_group(pid, libc::SIGKILL);
                }
                let _ = fs::remove_file(&path);
            }
        }
        found
    }

    /// Stops every hook run still going: SIGTERM (the hook closes chromium), then SIGKILL
    /// for the hook and chromium's process group.
    pub fn stop_all(&self) {
        let running = self.pid_files();
        if running.is_empty() {
            return;
        }
        for (_, pids) in &running {
            signal_pid(pids[0], libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && running.iter().any(|(_, p)| pid_alive(p[0])) {
            thread::sleep(Duration::from_millis(50));
        }
        for (path, pids) in &running {
            signal_pid(pids[0], libc::SIGKILL);
            for &pid in pids.iter().skip(1) {
                signal_group(pid, libc::SIGKILL);
            }
            let _ = fs::remove_file(path);
        }
    }
}

impl Drop for BrowserHook {
    fn drop(&mut self) {
        self.stop_all();
    }
}
