//! The words of a netrc file, as curl's lib/netrc.c cuts them.

use std::ops::Range;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// White space inside a line.
    Blank,
    /// `\n` or `\r\n`.
    LineBreak,
    /// From an unquoted `#` to the end of the line.
    Comment,
    Word,
    /// What a `macdef` hides: the rest of its line and the body, up to the empty line that ends
    /// it (which is not part of it) or the end of the file.
    Macro,
}

#[derive(Clone, Debug)]
pub(super) struct Token {
    pub(super) kind: Kind,
    pub(super) span: Range<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Keyword {
    Machine,
    Default,
    Macdef,
    Login,
    Password,
    Account,
}

impl Keyword {
    pub(super) fn of(word: &[u8]) -> Option<Keyword> {
        const ALL: [(&[u8], Keyword); 6] = [
            (b"machine", Keyword::Machine),
            (b"default", Keyword::Default),
            (b"macdef", Keyword::Macdef),
            (b"login", Keyword::Login),
            (b"password", Keyword::Password),
            (b"account", Keyword::Account),
        ];
        ALL.iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(word))
            .map(|&(_, keyword)| keyword)
    }

    /// Whether the keyword ends the entry before it, even where a value was expected.
    pub(super) fn starts_item(self) -> bool {
        matches!(self, Keyword::Machine | Keyword::Default | Keyword::Macdef)
    }
}

/// curl's ISSPACE.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

/// Where the line holding `from` ends: at its `\n`, or at the `\r` of its `\r\n`. A `\r` that
/// ends the file counts as the start of a CRLF too, so that a quoted word or a comment means
/// the same before and after an edit completes the line.
fn line_end(bytes: &[u8], from: usize) -> usize {
    let newline = bytes[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |offset| from + offset);
    if newline > from && bytes[newline - 1] == b'\r' {
        newline - 1
    } else {
        newline
    }
}

fn starts_line_break(bytes: &[u8], at: usize) -> bool {
    match bytes[at] {
        b'\n' => true,
        b'\r' => bytes.get(at + 1) == Some(&b'\n'),
        _ => false,
    }
}

/// The kind and end of the token that starts at `start`.
pub(super) fn scan(bytes: &[u8], start: usize) -> (Kind, usize) {
    match bytes[start] {
        b'\n' => (Kind::LineBreak, start + 1),
        b'\r' if starts_line_break(bytes, start) => (Kind::LineBreak, start + 2),
        b if is_space(b) => {
            let mut end = start + 1;
            while end < bytes.len() && is_space(bytes[end]) && !starts_line_break(bytes, end) {
                end += 1;
            }
            (Kind::Blank, end)
        }
        b'#' => (Kind::Comment, line_end(bytes, start)),
        b'"' => (Kind::Word, quoted_end(bytes, start)),
        _ => (Kind::Word, word_end(bytes, start)),
    }
}

fn word_end(bytes: &[u8], start: usize) -> usize {
    bytes[start..]
        .iter()
        .position(|&b| is_space(b))
        .map_or(bytes.len(), |offset| start + offset)
}

/// The end of a quoted word: its closing quote and whatever sticks to it, or the end of the
/// line when the quote is never closed.
fn quoted_end(bytes: &[u8], start: usize) -> usize {
    let line_end = line_end(bytes, start);
    let mut i = start + 1;
    while i < line_end {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return word_end(bytes, i + 1).min(line_end),
            _ => i += 1,
        }
    }
    line_end
}

/// A word's value: quoted words lose their quotes and escapes.
pub(super) fn decode(raw: &[u8]) -> Vec<u8> {
    let Some(quoted) = raw.strip_prefix(b"\"") else {
        return raw.to_vec();
    };
    let mut value = Vec::with_capacity(quoted.len());
    let mut bytes = quoted.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'"' => break,
            b'\\' => match bytes.next() {
                Some(b'n') => value.push(b'\n'),
                Some(b'r') => value.push(b'\r'),
                Some(b't') => value.push(b'\t'),
                Some(&other) => value.push(other),
                None => break,
            },
            _ => value.push(b),
        }
    }
    value
}

/// What ends the last line of `bytes`, which has no final `\n`: a `\r` already there becomes
/// the start of a CRLF.
pub(super) fn line_end_after<'a>(bytes: &[u8], line_break: &'a [u8]) -> &'a [u8] {
    if line_break == b"\r\n" && bytes.ends_with(b"\r") {
        &line_break[1..]
    } else {
        line_break
    }
}

/// `value` as one netrc word, quoted when it would otherwise not read back as itself.
fn encode(value: &str, out: &mut Vec<u8>) {
    let bytes = value.as_bytes();
    let plain =
        !bytes.is_empty() && bytes[0] != b'#' && !bytes.iter().any(|&b| b == b'"' || is_space(b));
    if plain {
        out.extend_from_slice(bytes);
        return;
    }
    out.push(b'"');
    for &b in bytes {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// `machine H`, `login L`, `password P` on lines of their own, without a final line break.
pub(super) fn render_entry(host: &str, login: &str, password: &str, line_break: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(host.len() + login.len() + password.len() + 32);
    out.extend_from_slice(b"machine ");
    encode(host, &mut out);
    out.extend_from_slice(line_break);
    out.extend_from_slice(b"login ");
    encode(login, &mut out);
    out.extend_from_slice(line_break);
    out.extend_from_slice(b"password ");
    encode(password, &mut out);
    out
}

/// The end of what a `macdef` whose keyword ends at `from` hides, and whether an empty line
/// ended it (rather than the end of the file).
pub(super) fn macro_end(bytes: &[u8], from: usize) -> (usize, bool) {
    let next_line = |pos: usize| {
        bytes[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|offset| pos + offset + 1)
    };
    // The rest of the keyword's line names the macro; the body starts on the next line.
    let Some(mut pos) = next_line(from) else {
        return (bytes.len(), false);
    };
    loop {
        match bytes.get(pos) {
            None => return (pos, false),
            // curl < 8.7 checks the first byte only; 8.7+ also skips blanks first.
            Some(b'\n' | b'\r') => return (pos, true),
            Some(_) => match next_line(pos) {
                Some(next) => pos = next,
                None => return (bytes.len(), false),
            },
        }
    }
}
