//! Exclusive locks that serialise read-modify-write of a file.
//!
//! The lock is an `flock` on a sidecar `<name>.lock` file, which is never deleted: removing a
//! lock file that another process may hold open would let two writers in at once.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::errno::describe_write_error;
use super::{PRIVATE_FILE_MODE, create_private_dir, parent_of, sibling_name};

const LOCK_TIMEOUT: Duration = Duration::from_secs(120);

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
pub(super) fn open_lock_file(path: &Path) -> Result<(File, PathBuf)> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
