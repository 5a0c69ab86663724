//! Process helpers: run with a deadline, stop a process group for sure.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Sends `signal` to the process group `pgid` (a child started with `process_group(0)`
/// leads its own group whose id is its pid). Errors (group gone) are ignored.
pub fn signal_group(pgid: u32, signal: i32) {
    if pgid == 0 {
        return;
    }
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
    unsafe {
        libc::kill(-(pgid as libc::pid_t), signal);
    }
}

/// Sends `signal` to one process. Errors (process gone) are ignored.
pub fn signal_pid(pid: u32, signal: i32) {
    if pid == 0 {
        return;
    }
    // SAFETY: kill(2) on a pid; no memory is involved.
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

/// Whether a process with this pid exists (and is not a zombie of ours that was reaped).
pub fn pid_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    // A zombie still answers kill(0); look at its state too.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => match stat.rfind(')') {
            Some(i) => !stat[i + 1..].trim_start().starts_with('Z'),
            None => false,
        },
        Err(_) => false,
    }
}

/// Waits for `child` until `deadline`; `None` when it is still running then.
pub fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(_) => return None,
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Stops a child that leads its own process group: SIGTERM to the group, then SIGKILL
/// after `grace`, and reaps the child.
pub fn stop_group(child: &mut Child, grace: Duration) {
    let pid = child.id();
    if let Ok(Some(_)) = child.try_wait() {
        // The leader is gone; helpers it left in the group may not be.
        signal_group(pid, libc::SIGKILL);
        return;
    }
    signal_group(pid, libc::SIGTERM);
    if wait_until(child, Instant::now() + grace).is_none() {
        signal_group(pid, libc::SIGKILL);
        let _ = child.kill();
        let _ = child.wait();
    }
    // Anything left in the group (grandchildren) goes too.
    signal_group(pid, libc::SIGKILL);
}

/// Runs `cmd` in its own process group with stdout and stderr captured and stdin empty;
/// kills the group and panics if it runs longer than `timeout`.
pub fn output_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    use std::os::unix::process::CommandExt;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let program = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let status = wait_until(&mut child, Instant::now() + timeout);
    match status {
        Some(status) => {
            // Not killing the group here: a BROWSER hook the CLI started in the background
            // is in it and must be left to finish (BrowserHook stops leftovers on drop).
            Output {
                status,
                stdout: out.join().unwrap_or_default(),
                stderr: err.join().unwrap_or_default(),
            }
        }
        None => {
            stop_group(&mut child, Duration::from_secs(2));
            let stdout = out.join().unwrap_or_default();
            let stderr = err.join().unwrap_or_default();
            panic!(
                "{program} ran longer than {timeout:?} and was killed\n--- stdout ---\n{}\n--- stderr ---\n{}",
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            );
        }
    }
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

/// A Node script of `tests/idp` (the provider, the cache) running as a child process in
/// its own process group; the group is stopped on drop.
pub struct NodeService {
    child: Child,
    // Closing it tells the script to exit even if this process dies without dropping
    // (the script is started with its `*_EXIT_ON_STDIN_EOF=1` in `envs`).
    _stdin: ChildStdin,
}

impl NodeService {
    /// Runs `node SCRIPT` in `tests/idp` with a clean environment (`PATH`, `HOME` = `home`,
    /// and `envs`), its stderr going to `stderr_log` (created here), and waits at most
    /// `timeout` for the line `READY <rest>` on its stdout; returns the service and `rest`.
    /// Its stdout is drained on a thread afterwards. Panics with the stderr log, naming the
    /// service `what` (e.g. "the test provider"), when it does not come up.
    ///
    /// A start that has not printed READY within a third of `timeout` is stopped and tried
    /// again (three tries in all): it normally takes half a second, but a rare start seen
    /// under load never printed READY at all, and one hung start must not fail a test.
    pub fn start<I, K, V>(
        script: &str,
        what: &str,
        home: &Path,
        envs: I,
        stderr_log: &Path,
        timeout: Duration,
    ) -> (NodeService, String)
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        super::idp::ensure_node_modules();
        let envs: Vec<(OsString, OsString)> = envs
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
            .collect();
        const TRIES: u32 = 3;
        for attempt in 1..=TRIES {
            let last = attempt == TRIES;
            if let Some(started) =
                Self::try_start(script, what, home, &envs, stderr_log, timeout / TRIES, last)
            {
                return started;
            }
            eprintln!(
                "{what} was not ready within {:?}; starting it again",
                timeout / TRIES
            );
        }
        unreachable!("the last try panics instead of returning None")
    }

    fn try_start(
        script: &str,
        what: &str,
        home: &Path,
        envs: &[(OsString, OsString)],
        stderr_log: &Path,
        timeout: Duration,
        last: bool,
    ) -> Option<(NodeService, String)> {
        use std::os::unix::process::CommandExt;
        let stderr_file = fs::File::create(stderr_log).expect("create the stderr log");
        let mut cmd = Command::new("node");
        cmd.arg(script)
            .current_dir(super::idp_dir())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr_file))
            .process_group(0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `node {script}` (is node installed?): {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");

        // Read stdout on a thread: send the READY line, then keep draining.
        let (tx, rx) = mpsc::channel::<String>();
        thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("READY ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(rest.trim().to_owned());
                }
            }
        });

        let stderr_text = || fs::read_to_string(stderr_log).unwrap_or_default();
        let deadline = Instant::now() + timeout;
        let ready = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(rest) => break rest,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!(
                            "{what} exited ({status}) before it was ready:\n{}",
                            stderr_text()
                        );
                    }
                    if Instant::now() >= deadline {
                        stop_group(&mut child, Duration::from_secs(2));
                        if !last {
                            return None;
                        }
                        panic!(
                            "{what} was not ready within {timeout:?}:\n{}",
                            stderr_text()
                        );
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    stop_group(&mut child, Duration::from_secs(2));
                    panic!(
                        "{what} closed its stdout before it was ready:\n{}",
                        stderr_text()
                    );
                }
            }
        };
        let service = NodeService {
            child,
            _stdin: stdin,
        };
        Some((service, ready))
    }

    /// Stops the process group (SIGTERM, SIGKILL after 3 s).
    pub fn stop(&mut self) {
        stop_group(&mut self.child, Duration::from_secs(3));
    }
}

impl Drop for NodeService {
    fn drop(&mut self) {
        self.stop();
    }
}
