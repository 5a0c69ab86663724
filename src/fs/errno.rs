//! An I/O error told as what the user must fix.

use std::io;
use std::path::Path;

/// `path` plus what went wrong in words (read-only file system, disk full, permission), with
/// the OS error kept as the cause.
pub fn describe_write_error(e: io::Error, path: &Path) -> anyhow::Error {
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
