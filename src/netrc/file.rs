//! The netrc file: read, and updated under its lock.

use std::path::Path;

use anyhow::Result;

use super::Netrc;
use crate::fs;

/// Locks `path` (the file a symlink points to, if it is one), reads it, lets `edit` change it and
/// writes it back atomically if the bytes changed. Returns whether the file was written; a file
/// that does not exist is not created for an edit that leaves it empty.
pub fn update(path: &Path, edit: impl FnOnce(&mut Netrc) -> Result<()>) -> Result<bool> {
    let target = fs::resolve_target(path)?;
    let _lock = fs::lock_for(&target)?;
    let before = fs::read_if_exists(&target)?.unwrap_or_default();
    let mut netrc = Netrc::parse(&before);
    edit(&mut netrc)?;
    let after = netrc.to_bytes();
    if after == before {
        return Ok(false);
    }
    fs::write_atomic(&target, &after)?;
    Ok(true)
}

/// Creates an empty netrc at `path` (where a symlink points, if it is one) when there is
/// none, for Nix flavours that refuse a `netrc-file` that does not exist (Lix, Determinate).
/// Returns whether it was created; a file that exists, or appears meanwhile, is not touched.
pub fn create_if_missing(path: &Path) -> Result<bool> {
    let target = fs::resolve_target(path)?;
    match fs::write_new(&target, b"") {
        Ok(()) => Ok(true),
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::AlreadyExists) =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Reads and parses `path`; `Ok(None)` when it does not exist.
pub fn read(path: &Path) -> Result<Option<Netrc>> {
    Ok(fs::read_if_exists(path)?.map(|bytes| Netrc::parse(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netrc::format::tests::entry;

    #[test]
    fn update_writes_only_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netrc");
        assert!(!update(&path, |_| Ok(())).unwrap());
        assert!(!path.exists());
        assert!(
            update(&path, |n| {
                n.upsert("a", "l", "t");
                Ok(())
            })
            .unwrap()
        );
        assert!(
            !update(&path, |n| {
                n.upsert("a", "l", "t");
                Ok(())
            })
            .unwrap()
        );
        let netrc = read(&path).unwrap().unwrap();
        assert_eq!(netrc.get("a"), entry("l", "t"));
        assert!(read(&dir.path().join("missing")).unwrap().is_none());
        let err = update(&path, |_| anyhow::bail!("no")).unwrap_err();
        assert_eq!(err.to_string(), "no");
    }

    #[test]
    fn create_if_missing_never_touches_a_netrc_that_exists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nix/netrc");
        assert!(create_if_missing(&path).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"");
        std::fs::write(&path, b"machine a password t\n").unwrap();
        assert!(!create_if_missing(&path).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"machine a password t\n");
    }
}
