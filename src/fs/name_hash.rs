//! A stable hash for file names.

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
