//! Where a write to a path really lands.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::write_atomic;

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
}
