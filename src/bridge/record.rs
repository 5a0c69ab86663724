//! Which user put which entry into the daemon's netrc: `entries.json` in the bridge's state
//! directory, root's alone. A remove is allowed only to the user on record for the entry
//! there now (root may remove any); `status` tells a user whether the entry is theirs.
//!
//! Each record holds a SHA-256 of the token it is about, so a record that no longer matches
//! the netrc (root edited it, or the bridge was killed between the two writes) speaks for
//! nobody instead of for the wrong user.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fs;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub uid: u32,
    pub subject: String,
    pub host: String,
    pub expires_at: i64,
    pub put_at: i64,
    pub token_sha256: String,
}

impl Record {
    /// Whether this record speaks for `password`, the netrc entry's password now.
    pub fn is_for(&self, password: &[u8]) -> bool {
        self.token_sha256 == fingerprint(password)
    }
}

/// The records by netrc machine name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Records {
    pub entries: BTreeMap<String, Record>,
}

pub fn fingerprint(token: &[u8]) -> String {
    Sha256::digest(token)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn path_in(state_dir: &Path) -> PathBuf {
    state_dir.join("entries.json")
}

/// Reads the records; a missing file is none, a damaged one too (the netrc is what counts,
/// and a lost record only means that root must remove that entry).
pub fn read(path: &Path) -> Records {
    match fs::read_if_exists(path) {
        Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            eprintln!(
                "warning: ignoring the damaged record file {}: {e}",
                path.display()
            );
            Records::default()
        }),
        Ok(None) => Records::default(),
        Err(e) => {
            eprintln!("warning: {e:#}");
            Records::default()
        }
    }
}

/// Atomic, not fsynced: after a power loss an older record may come back, and speaks for
/// nobody then (its fingerprint does not match), which costs only a root-run remove.
pub fn write(path: &Path, records: &Records) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(records).context("cannot encode the records")?;
    fs::write_atomic_with(path, &bytes, fs::Durability::ProcessKill)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_match_only_their_token() {
        let r = Record {
            uid: 1000,
            subject: "alice".into(),
            host: "c".into(),
            expires_at: 1,
            put_at: 0,
            token_sha256: fingerprint(b"token-a"),
        };
        assert!(r.is_for(b"token-a"));
        assert!(!r.is_for(b"token-b"));
        assert_eq!(fingerprint(b"").len(), 64);
    }

    #[test]
    fn damaged_or_missing_files_are_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(dir.path());
        assert_eq!(read(&path), Records::default());
        std::fs::write(&path, b"{broken").unwrap();
        assert_eq!(read(&path), Records::default());
        let mut records = Records::default();
        records.entries.insert(
            "c".into(),
            Record {
                uid: 1,
                subject: "s".into(),
                host: "c:1".into(),
                expires_at: 2,
                put_at: 3,
                token_sha256: fingerprint(b"t"),
            },
        );
        write(&path, &records).unwrap();
        assert_eq!(read(&path), records);
    }
}
