//! The netrc file that Nix hands to curl, in three layers:
//!
//! - [`format`] (with [`lex`]): a lossless reader and editor. Nothing there knows about tokens,
//!   caches or curl versions.
//! - [`policy`]: what curl and Nix make of a netrc: the machine name of a cache host, which words
//!   read back as themselves, the line and token limits of curl's two parsers.
//! - [`file`]: the file itself, read and updated under its lock, written atomically.
//!
//! # The format
//!
//! The file is kept exactly as it was read, cut into tokens that point into the original bytes,
//! so writing it back without a change reproduces it byte for byte, whatever it holds, and an
//! edit touches only the entry it is about. Nothing here requires UTF-8.
//!
//! What counts as an entry follows curl's lib/netrc.c, since curl is what reads the file for Nix:
//!
//! - tokens are separated by any white space, so one-line and multi-line entries are the same;
//! - keywords and host names compare case-insensitively;
//! - an unquoted token starting with `#` comments out the rest of its line (curl < 8.7 reads a
//!   `#` token anywhere that way, 8.7 and later only at the start of a line);
//! - `macdef NAME` hides the rest of its line and every following line up to an empty one
//!   (curl < 8.7 ends the body only at a truly empty line; taking that stricter reading means
//!   an entry we append is never swallowed by a body);
//! - `"..."` quotes a value, with `\"`, `\\`, `\n`, `\r` and `\t` escapes (curl >= 7.84); a
//!   quoted token ends at the end of its line even when the closing quote is missing.
//!
//! curl's reading depends on the host it looks for: inside the entry of that host, the word after
//! `login` is taken as the login even when it is `machine`. We take the view of every other host:
//! `machine`, `default` and `macdef` always start something new, and the word after `machine` is
//! always the host name. A login or password spelled like one of those keywords therefore cannot
//! be stored in a netrc at all, quoted or not; callers should not try.

mod file;
mod format;
mod lex;
pub mod policy;

pub use file::{create_if_missing, read, update};
pub use format::{Entry, Netrc};
pub use policy::{
    CURL_OLD_LINE_LIMIT, CURL_TOKEN_LIMIT, is_plain_word, long_token_warning, machine_name,
};
