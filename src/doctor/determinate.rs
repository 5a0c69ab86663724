//! Determinate Nix's rules for a netrc: its daemon sends only what it merged from the files
//! listed in `additionalNetrcSources`, and it merges them once, when determinate-nixd starts
//! (DeterminateSystems/determinate#183): a token renewed on disk after that is not what the
//! daemon sends. [`restart_check`] compares the netrc's last change with the daemon's start;
//! `nix_checks` asks it of the user's netrc, `doctor::bridge` of the bridge's.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::Check;
use super::nix::{self, DETERMINATE_CONFIG};
use crate::clock;
use crate::config::Environment;
use crate::fs::read_guard;

pub const CHECK: &str = "determinate-nixd";
const DAEMON_NAME: &str = "determinate-nixd";
/// The unit of the start time in /proc/PID/stat: Linux reports it in USER_HZ, which is 100
/// on every architecture it exports to user space.
const USER_HZ: i64 = 100;

/// Determinate Nix's `additionalNetrcSources`: `None` when it is not installed, the reason
/// when its config cannot be read.
pub fn sources(env: &dyn Environment) -> Option<Result<Vec<PathBuf>, String>> {
    let path = env.system_path(Path::new(DETERMINATE_CONFIG));
    let bytes = match read_guard::read_regular(&path, read_guard::MAX_FILE_BYTES) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return None,
        Err(e) => return Some(Err(format!("cannot read it: {e:#}"))),
    };
    let text = String::from_utf8_lossy(&bytes);
    Some(nix::determinate_netrc_sources(&text).map_err(|e| format!("{e:#}")))
}

/// Whether Determinate merges `netrc` into the netrc its daemon reads.
pub fn merges(sources: &Result<Vec<PathBuf>, String>, netrc: &Path) -> bool {
    matches!(sources, Ok(listed)
        if listed.iter().any(|s| nix::canonical(s) == nix::canonical(netrc)))
}

/// What makes Determinate merge `netrc`.
pub fn add_source_fix(netrc: &Path) -> String {
    format!(
        "add \"{}\" to authentication.additionalNetrcSources in {DETERMINATE_CONFIG} and restart {DAEMON_NAME}",
        netrc.display()
    )
}

/// `None` when Determinate Nix is not installed or does not merge `netrc`; otherwise whether
/// the running daemon has read `netrc` since it last changed.
pub fn restart_check(env: &dyn Environment, netrc: &Path, merged: bool) -> Option<Check> {
    if !merged || !env.system_path(Path::new(DETERMINATE_CONFIG)).is_file() {
        return None;
    }
    let shown = netrc.display();
    let Some(changed) = modified_at(netrc) else {
        return Some(Check::skip(CHECK, format!("{shown} does not exist yet")));
    };
    let Some(started) = daemon_started_at(env) else {
        return Some(Check::skip(
            CHECK,
            format!("no {DAEMON_NAME} process found to compare {shown} with"),
        ));
    };
    let when = |t: i64| clock::format_utc(t);
    if changed <= started {
        return Some(Check::ok(
            CHECK,
            format!(
                "{DAEMON_NAME} started {} after {shown} last changed ({}): it has the current token",
                when(started),
                when(changed)
            ),
        ));
    }
    Some(Check::warn(
        CHECK,
        format!(
            "{shown} changed at {}, after {DAEMON_NAME} started ({}): Determinate reads \
             additionalNetrcSources only when it starts, so Nix still sends the token from before",
            when(changed),
            when(started)
        ),
        format!(
            "restart it: `sudo systemctl restart {DAEMON_NAME}` (macOS: `sudo launchctl \
             kickstart -k system/systems.determinate.nix-daemon`); to keep renewed tokens \
             reaching it, restart it after each refresh (e.g. ExecStartPost= of the refresh \
             unit) or point nix.conf's netrc-file at {shown} instead"
        ),
    ))
}

fn modified_at(path: &Path) -> Option<i64> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(modified.duration_since(UNIX_EPOCH).ok()?.as_secs() as i64)
}

/// When the oldest running determinate-nixd started, in Unix seconds, from /proc.
fn daemon_started_at(env: &dyn Environment) -> Option<i64> {
    let proc = env.system_path(Path::new("/proc"));
    let boot = boot_time(&read_proc(&proc.join("stat"))?)?;
    std::fs::read_dir(&proc)
        .ok()?
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .map(|e| e.path())
        .filter(|dir| is_daemon(dir.as_path()))
        .filter_map(|dir| start_ticks(&read_proc(&dir.join("stat"))?))
        .min()
        .map(|ticks| boot + ticks / USER_HZ)
}

fn is_daemon(proc_dir: &Path) -> bool {
    read_proc(&proc_dir.join("comm")).is_some_and(|comm| comm.trim() == DAEMON_NAME)
}

/// A /proc file as text. A process names itself in `comm`, and `system_path` may point
/// elsewhere, so it is read as any file another program wrote: regular, bounded.
fn read_proc(path: &Path) -> Option<String> {
    let bytes = read_guard::read_regular(path, read_guard::MAX_FILE_BYTES).ok()??;
    String::from_utf8(bytes).ok()
}

/// `btime` of /proc/stat: when the machine booted.
fn boot_time(stat: &str) -> Option<i64> {
    stat.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Field 22 of /proc/PID/stat, the start time in ticks after boot. The command name (field
/// 2) is in parentheses and may hold spaces, so count from its closing parenthesis.
fn start_ticks(stat: &str) -> Option<i64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::doctor::Status;
    use std::fs;
    use std::path::PathBuf;
    use std::time::{Duration, SystemTime};

    /// A machine whose `/` is a temp dir: Determinate's config, a /proc and a netrc.
    pub(crate) struct FakeRoot {
        root: tempfile::TempDir,
    }

    impl Environment for FakeRoot {
        fn var(&self, _: &str) -> Option<String> {
            None
        }
        fn home_dir(&self) -> Option<PathBuf> {
            None
        }
        fn system_path(&self, path: &Path) -> PathBuf {
            self.root
                .path()
                .join(path.strip_prefix("/").unwrap_or(path))
        }
    }

    pub(crate) const BOOT: i64 = 1_700_000_000;

    impl FakeRoot {
        pub(crate) fn new() -> FakeRoot {
            let root = FakeRoot {
                root: tempfile::tempdir().unwrap(),
            };
            root.write(
                "/proc/stat",
                &format!("cpu  1 2 3\nbtime {BOOT}\nprocesses 9\n"),
            );
            root
        }

        pub(crate) fn write(&self, path: &str, text: &str) {
            let path = self.system_path(Path::new(path));
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }

        pub(crate) fn with_determinate(self, netrc: &Path) -> FakeRoot {
            self.write(
                DETERMINATE_CONFIG,
                &format!(
                    r#"{{"authentication":{{"additionalNetrcSources":["{}"]}}}}"#,
                    netrc.display()
                ),
            );
            self
        }

        /// A process `name` started `secs` after boot.
        pub(crate) fn process(&self, pid: u32, name: &str, secs: i64) {
            self.write(&format!("/proc/{pid}/comm"), &format!("{name}\n"));
            let ticks = secs * USER_HZ;
            // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt
            // cmajflt utime stime cutime cstime priority nice threads itrealvalue starttime
            self.write(
                &format!("/proc/{pid}/stat"),
                &format!(
                    "{pid} ({name}) S 1 1 1 0 -1 4194560 1 0 0 0 5 6 0 0 20 0 4 0 {ticks} 1 2\n"
                ),
            );
        }

        pub(crate) fn netrc(&self, changed: i64) -> PathBuf {
            let path = self.root.path().join("home/alice/.config/nix/netrc");
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, "machine cache login x password y\n").unwrap();
            let file = fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(changed as u64))
                .unwrap();
            path
        }
    }

    #[test]
    fn a_netrc_changed_after_the_daemon_started_is_not_seen() {
        let root = FakeRoot::new();
        let netrc = root.netrc(BOOT + 500);
        let root = root.with_determinate(&netrc);
        root.process(1, "systemd", 0);
        root.process(812, DAEMON_NAME, 100);
        let check = restart_check(&root, &netrc, true).unwrap();
        assert_eq!(check.status, Status::Warn, "{check:?}");
        assert!(
            check.detail.contains("only when it starts"),
            "{}",
            check.detail
        );
        assert!(
            check.detail.contains(&clock::format_utc(BOOT + 100)),
            "{}",
            check.detail
        );
        let fix = check.fix.unwrap();
        assert!(fix.contains("systemctl restart determinate-nixd"), "{fix}");
    }

    #[test]
    fn a_daemon_started_after_the_change_has_the_token() {
        let root = FakeRoot::new();
        let netrc = root.netrc(BOOT + 50);
        let root = root.with_determinate(&netrc);
        root.process(812, DAEMON_NAME, 100);
        let check = restart_check(&root, &netrc, true).unwrap();
        assert_eq!(check.status, Status::Ok, "{check:?}");
    }

    #[test]
    fn without_determinate_or_its_daemon_nothing_is_claimed() {
        let root = FakeRoot::new();
        let netrc = root.netrc(BOOT + 500);
        assert!(restart_check(&root, &netrc, true).is_none());
        let root = root.with_determinate(&netrc);
        assert!(restart_check(&root, &netrc, false).is_none());
        root.process(77, "nix-daemon", 10);
        let check = restart_check(&root, &netrc, true).unwrap();
        assert_eq!(check.status, Status::Skip, "{check:?}");
    }

    #[test]
    fn proc_stat_fields_are_read_past_the_command_name() {
        assert_eq!(boot_time("cpu 1\nbtime 42\n"), Some(42));
        let stat = "9 (a) b) c) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 12345 0 0";
        assert_eq!(start_ticks(stat), Some(12345));
        assert_eq!(start_ticks("garbage"), None);
    }
}
