//! Crash-safe replacement of a file.
//!
//! A reader (Nix, curl, another run of this tool) must only ever see the old file or the new
//! one: we write a temp file in the same directory, fsync it, rename it over the target and
//! fsync the directory. A run killed mid-write (SIGKILL, power loss) can leave its temp file
//! behind; a later successful write removes those older than a minute.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use super::errno::describe_write_error;
use super::lock::open_lock_file;
use super::read_guard;
use super::{PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, parent_of, resolve_target, sibling_name};

/// Creates `dir` and any missing parents with mode 0700 (parents that exist keep their mode).
pub fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))
}

/// Reads the regular file `path` (bounded, see [`read_guard`]), `None` when it does not exist.
pub fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>> {
    read_guard::read_regular(path, read_guard::MAX_FILE_BYTES)
}

/// What a finished write must survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// A power loss: the file and its directory are fsynced (the netrc, the store).
    PowerLoss,
    /// A killed process only: the rename is still atomic, but after a power loss the old file
    /// may be back. For records that only advise (the bridge's entry records), where the
    /// fsyncs would double the cost of a write that is fsynced already.
    ProcessKill,
}

/// Replaces `path` (already resolved) with `contents`, atomically, mode 0600, durably.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    put_in_place(path, contents, Placement::Replace, Durability::PowerLoss)
}

/// [`write_atomic`] with the durability the caller needs.
pub fn write_atomic_with(path: &Path, contents: &[u8], durability: Durability) -> Result<()> {
    put_in_place(path, contents, Placement::Replace, durability)
}

/// Creates `path` with `contents`, mode 0600, atomically, and never over a file that exists,
/// not even one that appeared a moment ago: the temp file is linked into place, which fails
/// when the name is taken. Such a file is reported as [`io::ErrorKind::AlreadyExists`].
pub fn write_new(path: &Path, contents: &[u8]) -> Result<()> {
    put_in_place(path, contents, Placement::New, Durability::PowerLoss)
}

/// How the finished temp file takes the target's name.
#[derive(Clone, Copy)]
enum Placement {
    /// `rename`, over whatever is there.
    Replace,
    /// `link`, only where nothing is.
    New,
}

fn put_in_place(
    path: &Path,
    contents: &[u8],
    placement: Placement,
    durability: Durability,
) -> Result<()> {
    let synced = durability == Durability::PowerLoss;
    let dir = parent_of(path);
    create_private_dir(dir)?;
    let tmp = sibling_name(
        path,
        ".",
        &format!(".tmp.{}.{}", std::process::id(), unique_suffix()),
    );
    let result = (|| -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(PRIVATE_FILE_MODE)
            .open(&tmp)?;
        // The mode given to open() is filtered by the umask; set it again so 0600 holds even
        // under an odd umask (and never more open than that).
        file.set_permissions(fs::Permissions::from_mode(PRIVATE_FILE_MODE))?;
        file.write_all(contents)?;
        if synced {
            file.sync_all()?;
        }
        match placement {
            Placement::Replace => fs::rename(&tmp, path)?,
            Placement::New => {
                let linked = fs::hard_link(&tmp, path);
                fs::remove_file(&tmp)?;
                linked?
            }
        }
        if synced {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        if e.kind() == io::ErrorKind::AlreadyExists {
            return Err(anyhow::Error::from(e).context(format!("{} exists", path.display())));
        }
        return Err(describe_write_error(e, path));
    }
    remove_stale_siblings(path);
    Ok(())
}

/// How old a temp or probe file of ours must be before a later run takes it for the
/// leftover of a killed run: a live write takes milliseconds.
const STALE_AFTER: Duration = Duration::from_secs(60);

/// Removes the `.<name>.tmp.*` and `.<name>.probe.*` files that runs killed mid-write
/// (SIGKILL, power loss) left beside `path`, once they are a minute old. Best effort: a
/// file that cannot be looked at or removed stays.
fn remove_stale_siblings(path: &Path) {
    let Some(name) = path.file_name() else { return };
    let prefixes = [".tmp.", ".probe."].map(|kind| {
        let mut p = OsString::from(".");
        p.push(name);
        p.push(kind);
        p.into_encoded_bytes()
    });
    let Ok(entries) = fs::read_dir(parent_of(path)) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let bytes = file_name.as_encoded_bytes();
        if !prefixes.iter().any(|p| bytes.starts_with(p)) {
            continue;
        }
        let stale = entry
            .metadata()
            .ok()
            .filter(fs::Metadata::is_file)
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_AFTER);
        if stale {
            match fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::info!("removed {}, left by a killed run", entry.path().display())
                }
                Err(e) => tracing::debug!("cannot remove {}: {e}", entry.path().display()),
            }
        }
    }
}

/// Fails early, before a token is spent, when `path` could not be updated: files cannot be
/// written into its directory (read-only file system, no permission, disk full), it is not a
/// readable regular file, or its lock file cannot be opened.
pub fn check_writable(path: &Path) -> Result<()> {
    let target = resolve_target(path)?;
    let dir = parent_of(&target);
    create_private_dir(dir)?;
    match fs::metadata(&target) {
        Ok(meta) => {
            read_guard::check(&target, &meta, read_guard::MAX_FILE_BYTES)?;
            drop(File::open(&target).with_context(|| format!("cannot read {}", target.display()))?)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", target.display())),
    }
    // What lock_for will open; opening it takes no lock.
    open_lock_file(&target)?;
    let probe = sibling_name(&target, ".", &format!(".probe.{}", std::process::id()));
    let result = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE_MODE)
        .open(&probe)
        // A 4 KiB write notices a full disk where an empty create would not.
        .and_then(|mut f| f.write_all(&[b'\n'; 4096]).and_then(|()| f.sync_all()));
    let _ = fs::remove_file(&probe);
    result.map_err(|e| describe_write_error(e, &target))
}

fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (COUNTER.fetch_add(1, Ordering::Relaxed) << 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_creates_private_file_and_parents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/netrc");
        write_atomic(&path, b"hello").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"hello");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = fs::metadata(dir.path().join("a/b"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
        // Nothing but the file itself is left behind.
        let names: Vec<_> = fs::read_dir(dir.path().join("a/b")).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn write_new_never_replaces_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        write_new(&path, b"first").unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let e = write_new(&path, b"second").unwrap_err();
        let io = e.downcast_ref::<io::Error>().unwrap();
        assert_eq!(io.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"first");
        // No temp file is left behind either way.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn stale_temp_files_of_killed_runs_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netrc");
        let old = std::time::SystemTime::now() - Duration::from_secs(120);
        let make = |name: &str, stale: bool| {
            let p = dir.path().join(name);
            let f = File::create(&p).unwrap();
            if stale {
                f.set_modified(old).unwrap();
            }
            p
        };
        let stale_tmp = make(".netrc.tmp.4242.7", true);
        let stale_probe = make(".netrc.probe.4242", true);
        let fresh_tmp = make(".netrc.tmp.4243.8", false);
        let other = make(".other.tmp.4242.7", true);
        let lock = make("netrc.lock", true);
        write_atomic(&path, b"x").unwrap();
        assert!(!stale_tmp.exists() && !stale_probe.exists());
        assert!(fresh_tmp.exists(), "a write in progress is left alone");
        assert!(
            other.exists() && lock.exists(),
            "other files are left alone"
        );
    }

    #[test]
    fn check_writable_refuses_what_could_not_be_updated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netrc");
        check_writable(&path).unwrap();
        fs::write(&path, b"x").unwrap();
        check_writable(&path).unwrap();
        let not_a_file = dir.path().join("d");
        fs::create_dir(&not_a_file).unwrap();
        let err = format!("{:#}", check_writable(&not_a_file).unwrap_err());
        assert!(err.contains("not a regular file"), "{err}");
        let locked_out = dir.path().join("n2");
        fs::create_dir(dir.path().join("n2.lock")).unwrap();
        let err = format!("{:#}", check_writable(&locked_out).unwrap_err());
        assert!(err.contains("n2.lock"), "{err}");
        // No probe is left behind.
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["d", "n2.lock", "netrc", "netrc.lock"]);
    }
}
