//! Crash-safe file updates shared by the netrc writer and the token store.
//!
//! A reader (Nix, curl, another run of this tool) must only ever see the old file or the new
//! one: we write a temp file in the same directory, fsync it, rename it over the target and
//! fsync the directory. Read-modify-write cycles hold an exclusive `flock` on a sidecar
//! `<name>.lock` file, which is never deleted: removing a lock file that another process may
//! hold open would let two writers in at once. A run killed mid-write (SIGKILL, power loss)
//! can leave its temp file behind; a later successful write removes those older than a minute.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::read_guard;

/// Files this tool writes hold credentials: only the owner may read them.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
const PRIVATE_DIR_MODE: u32 = 0o700;
const LOCK_TIMEOUT: Duration = Duration::from_secs(120);

/// The file a write to `path` really lands in: a symlink is followed to its target, so that
/// a netrc linked from elsewhere is updated where it lives rather than replaced by a file.
pub fn resolve_target(path: &Path) -> Result<PathBuf> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            let mut target = path.to_path_buf();
            // Follow a bounded chain by hand so a dangling link gets a message naming both ends.
            for _ in 0..40 {
                let link = fs::read_link(&target)
                    .with_context(|| format!("cannot read symlink {}", target.display()))?;
                let next = if link.is_absolute() {
                    link
                } else {
                    target.parent().unwrap_or(Path::new("/")).join(link)
                };
                match fs::symlink_metadata(&next) {
                    Ok(m) if m.file_type().is_symlink() => target = next,
                    Ok(_) => return Ok(next),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => bail!(
                        "{} is a symlink to {}, which does not exist",
                        path.display(),
                        next.display()
                    ),
                    Err(e) => {
                        return Err(e)
                            .with_context(|| format!("cannot inspect {}", next.display()));
                    }
                }
            }
            bail!("{} is a symlink loop", path.display())
        }
        _ => Ok(path.to_path_buf()),
    }
}

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

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn sibling_name(path: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let name = path.file_name().unwrap_or_default();
    let mut s = OsString::from(prefix);
    s.push(name);
    s.push(suffix);
    parent_of(path).join(s)
}

/// An exclusive lock on `<path>.lock`, released when dropped.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

/// Takes the lock that guards read-modify-write of `path` (already resolved by
/// [`resolve_target`]). Waits up to two minutes for another run to finish.
pub fn lock_for(path: &Path) -> Result<FileLock> {
    create_private_dir(parent_of(path))?;
    let (file, lock_path) = open_lock_file(path)?;
    let started = Instant::now();
    let mut told = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(FileLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) => {
                if !told {
                    tracing::info!("waiting for another run holding {}", lock_path.display());
                    told = true;
                }
                if started.elapsed() > LOCK_TIMEOUT {
                    bail!(
                        "timed out after {}s waiting for the lock {}",
                        LOCK_TIMEOUT.as_secs(),
                        lock_path.display()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", lock_path.display()));
            }
        }
    }
}

/// Opens (creating, 0600) the sidecar lock file of `path`; never truncates it, since others
/// may hold it.
fn open_lock_file(path: &Path) -> Result<(File, PathBuf)> {
    let lock_path = sibling_name(path, "", ".lock");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(PRIVATE_FILE_MODE)
        .open(&lock_path)
        .map_err(|e| describe_write_error(e, &lock_path))?;
    Ok((file, lock_path))
}

/// Reads the regular file `path` (bounded, see [`read_guard`]), `None` when it does not exist.
pub fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>> {
    read_guard::read_regular(path, read_guard::MAX_FILE_BYTES)
}

/// Replaces `path` (already resolved) with `contents`, atomically, mode 0600.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
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
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
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

fn describe_write_error(e: io::Error, path: &Path) -> anyhow::Error {
    let what = match e.raw_os_error() {
        Some(code) if code == libc_erofs() => "is on a read-only file system",
        Some(code) if code == libc_enospc() => "cannot be written: no space left on device",
        _ if e.kind() == io::ErrorKind::PermissionDenied => "cannot be written: permission denied",
        _ => "cannot be written",
    };
    anyhow::Error::new(e).context(format!("{} {what}", path.display()))
}

// The numbers are the same on every Linux and macOS target we build for.
const fn libc_erofs() -> i32 {
    30
}
const fn libc_enospc() -> i32 {
    28
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

/// A stable 64-bit FNV-1a hash of `parts` (each ended by a NUL), for file names that must
/// tell configurations apart. Not for security: whoever could pick a colliding config could
/// as well write the files directly.
pub fn name_hash<'a>(parts: impl IntoIterator<Item = &'a str>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0]) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
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
    fn symlink_is_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs::write(&real, b"old").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("real", &link).unwrap();
        let target = resolve_target(&link).unwrap();
        assert_eq!(target, real);
        write_atomic(&target, b"new").unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(&link).unwrap(), b"new");
    }

    #[test]
    fn dangling_symlink_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("missing/netrc", &link).unwrap();
        let err = resolve_target(&link).unwrap_err().to_string();
        assert!(
            err.contains("link") && err.contains("does not exist"),
            "{err}"
        );
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

    #[test]
    fn lock_excludes_a_second_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netrc");
        let first = lock_for(&path).unwrap();
        let f = OpenOptions::new()
            .write(true)
            .open(dir.path().join("netrc.lock"))
            .unwrap();
        assert!(matches!(f.try_lock(), Err(fs::TryLockError::WouldBlock)));
        drop(first);
        f.try_lock().unwrap();
    }
}
