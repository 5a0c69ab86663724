//! Many writers on one netrc at once, as threads and as processes: every upsert lands, the
//! rest of the file stays as it was, and no temporary file is left behind.
//!
//! `flock` locks belong to an open file description, so threads that each open the lock file
//! already exclude each other; separate processes are the real case, and the test binary plays
//! the writer process itself (see `writer_process`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use std::{env, fs, thread};

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

const WORKER_NETRC: &str = "NETRC_TEST_WORKER_NETRC";
const WORKER_INDEX: &str = "NETRC_TEST_WORKER_INDEX";
const WORKER_GO: &str = "NETRC_TEST_WORKER_GO";

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
    let exe = env::current_exe().unwrap();
    let children: Vec<Child> = (0..WRITERS)
        .map(|writer| {
            Command::new(&exe)
                .args([
                    "writer_process",
                    "--exact",
                    "--test-threads=1",
                    "--nocapture",
                ])
                .env(WORKER_NETRC, &path)
                .env(WORKER_INDEX, writer.to_string())
                .env(WORKER_GO, &go)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    fs::write(&go, b"").unwrap();
    for (writer, child) in children.into_iter().enumerate() {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "writer {writer}: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    check(&path);
}

/// The body of one writer process started by `processes_do_not_lose_updates`; run directly,
/// without its environment, it does nothing.
#[test]
fn writer_process() {
    let (Some(path), Some(writer), Some(go)) = (
        env::var_os(WORKER_NETRC),
        env::var(WORKER_INDEX).ok(),
        env::var_os(WORKER_GO),
    ) else {
        return;
    };
    // Wait for the others so that the writes overlap.
    let waiting = Instant::now();
    while !Path::new(&go).exists() {
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "no start signal"
        );
        thread::sleep(Duration::from_millis(1));
    }
    write_rounds(Path::new(&path), writer.parse().unwrap());
}
