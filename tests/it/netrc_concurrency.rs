//! Many writers on one netrc at once, as threads and as processes: every upsert lands, the
//! rest of the file stays as it was, and no temporary file is left behind.
//!
//! `flock` locks belong to an open file description, so threads that each open the lock file
//! already exclude each other; separate processes are the real case, forked from the test
//! (see `fork_writer`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use std::{fs, thread};

use nix_cache_login::netrc::{self, Entry, Netrc};

const WRITERS: usize = 20;
const ROUNDS: usize = 3;

/// Entries, comments and a macdef (whose body mentions a machine) that no writer touches.
const ORIGINAL: &str = "\
# written by hand
machine other.example.com
  login alice
  password secret

macdef init
machine hidden.example.com login x password y
cd /pub

machine one-line.example.com login bob password \"two words\"
";

fn host(writer: usize) -> String {
    format!("cache{writer}.example.com")
}

fn password(writer: usize, round: usize) -> String {
    format!("token-{writer}-{round}")
}

/// What every writer does: upsert its own host a few times, each through its own lock.
fn write_rounds(path: &Path, writer: usize) {
    for round in 0..ROUNDS {
        netrc::update(path, |netrc| {
            netrc.upsert(&host(writer), "nix", &password(writer, round));
            Ok(())
        })
        .unwrap_or_else(|e| panic!("writer {writer}: {e:#}"));
    }
}

fn start(dir: &Path) -> PathBuf {
    let path = dir.join("netrc");
    fs::write(&path, ORIGINAL).unwrap();
    path
}

fn check(path: &Path) {
    let bytes = fs::read(path).unwrap();
    assert!(
        bytes.starts_with(ORIGINAL.as_bytes()),
        "the original part changed:\n{}",
        String::from_utf8_lossy(&bytes)
    );
    let netrc = Netrc::parse(&bytes);
    let entry = |login: &str, password: &str| {
        Some(Entry {
            login: Some(login.into()),
            password: Some(password.into()),
        })
    };
    assert_eq!(netrc.get("other.example.com"), entry("alice", "secret"));
    assert_eq!(netrc.get("one-line.example.com"), entry("bob", "two words"));
    assert_eq!(netrc.get("hidden.example.com"), None);
    for writer in 0..WRITERS {
        assert_eq!(
            netrc.get(&host(writer)),
            entry("nix", &password(writer, ROUNDS - 1)),
            "writer {writer}"
        );
    }
    assert_eq!(
        netrc.machines().len(),
        2 + WRITERS,
        "{:?}",
        netrc.machines()
    );

    let mut names: Vec<_> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    // The lock file stays: deleting it could let two writers in at once.
    assert_eq!(names, ["netrc", "netrc.lock"]);
}

#[test]
fn threads_do_not_lose_updates() {
    let dir = tempfile::tempdir().unwrap();
    let path = start(dir.path());
    let barrier = Arc::new(Barrier::new(WRITERS));
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let path = path.clone();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                write_rounds(&path, writer);
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    check(&path);
}

#[test]
fn processes_do_not_lose_updates() {
    let dir = tempfile::tempdir().unwrap();
    let path = start(dir.path());
    // The start signal lives outside the netrc's directory, which must hold nothing else.
    let signals = tempfile::tempdir().unwrap();
    let go = signals.path().join("go");
    let children: Vec<libc::pid_t> = (0..WRITERS)
        .map(|writer| fork_writer(&path, writer, &go))
        .collect();
    fs::write(&go, b"").unwrap();
    for (writer, pid) in children.into_iter().enumerate() {
        let mut status = 0;
        // SAFETY: waits for a child this test forked.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(waited, pid, "waitpid for writer {writer}");
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "writer {writer} failed (wait status {status:#x})"
        );
    }
    check(&path);
}

/// Forks a process that waits for `go` and then does [`write_rounds`]. A fork, not a new
/// process image: the child needs nothing but the library, and must not be a test of its own.
/// It only opens, locks, writes and renames files, and leaves with `_exit`, so none of the
/// parent's other threads' state matters to it.
fn fork_writer(path: &Path, writer: usize, go: &Path) -> libc::pid_t {
    // SAFETY: the child runs only the code below and ends in `_exit` (no destructors, no
    // atexit handlers, no unwinding into the test harness).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid > 0 {
        return pid;
    }
    let ok = std::panic::catch_unwind(|| {
        let waiting = Instant::now();
        while !go.exists() {
            if waiting.elapsed() > Duration::from_secs(60) {
                return false;
            }
            thread::sleep(Duration::from_millis(1));
        }
        write_rounds(path, writer);
        true
    })
    .unwrap_or(false);
    // SAFETY: ends the forked child without running the parent's destructors.
    unsafe { libc::_exit(if ok { 0 } else { 1 }) }
}
