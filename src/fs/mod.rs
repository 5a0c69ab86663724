//! The files this tool owns: crash-safe replacement, the locks that serialise their
//! read-modify-write, and the small facts about paths those need.
//!
//! - [`atomic`]: write a temp file, fsync, rename over the target, fsync the directory; a reader
//!   (Nix, curl, another run) sees the old file or the new one, never a mix.
//! - [`lock`]: an exclusive `flock` on a sidecar `<name>.lock`, never deleted.
//! - [`symlink`]: where a write to a path really lands.
//! - [`errno`]: an I/O error told as what the user must fix (read-only, disk full).
//! - [`name_hash`]: a stable hash for file names that tell configurations apart.
//! - [`read_guard`]: reading a file another program may have put there: regular files only,
//!   bounded.

pub mod atomic;
pub mod errno;
pub mod lock;
pub mod name_hash;
pub mod read_guard;
pub mod symlink;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub use atomic::{
    Durability, check_writable, create_private_dir, read_if_exists, write_atomic,
    write_atomic_with, write_new,
};
pub use lock::{FileLock, lock_for};
pub use name_hash::name_hash;
pub use symlink::resolve_target;

/// Files this tool writes hold credentials: only the owner may read them.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
const PRIVATE_DIR_MODE: u32 = 0o700;

pub(crate) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

pub(crate) fn sibling_name(path: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let name = path.file_name().unwrap_or_default();
    let mut s = OsString::from(prefix);
    s.push(name);
    s.push(suffix);
    parent_of(path).join(s)
}
