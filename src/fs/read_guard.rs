//! Reading a file that another program (or another user) may have put in place: the token
//! store, the netrc, the discovery cache, the config.
//!
//! `fs::read` of a FIFO blocks until someone writes to it, and of a symlink to `/dev/zero`
//! reads until memory runs out. So only a regular file is read, and only up to a bound that
//! no file this tool reads or writes comes near.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// The most any file is read: a netrc curl still reads is at most 128 KiB, a token store a
/// few KiB, a cached discovery document and key set at most twice the 1 MiB HTTP cap.
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// The bytes of the regular file at `path` (symlinks followed); `Ok(None)` when there is
/// none. Anything else there (a FIFO, a device, a directory), or a file larger than `max`
/// bytes, is an error naming the path.
pub fn read_regular(path: &Path, max: u64) -> Result<Option<Vec<u8>>> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    check(path, &meta, max)?;
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    // What was opened may not be what was inspected: look again at the open file.
    check(path, &file.metadata()?, max)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > max {
        bail!(
            "{} grew past {} while being read",
            path.display(),
            size(max)
        );
    }
    Ok(Some(bytes))
}

/// Fails unless `meta` is a regular file of at most `max` bytes.
pub fn check(path: &Path, meta: &fs::Metadata, max: u64) -> Result<()> {
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    if meta.len() > max {
        bail!(
            "{} is {} bytes, more than the {} this tool reads",
            path.display(),
            meta.len(),
            size(max)
        );
    }
    Ok(())
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_regular_files_and_refuses_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, b"hello").unwrap();
        assert_eq!(read_regular(&file, 5).unwrap().unwrap(), b"hello");
        assert!(read_regular(&dir.path().join("none"), 5).unwrap().is_none());

        let e = read_regular(&file, 4).unwrap_err().to_string();
        assert!(e.contains("more than") && e.contains("/f"), "{e}");

        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let e = read_regular(&zero, MAX_FILE_BYTES).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");

        let e = read_regular(dir.path(), MAX_FILE_BYTES)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipped: mkfifo is not available");
            return;
        }
        let e = read_regular(&fifo, MAX_FILE_BYTES).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }
}
