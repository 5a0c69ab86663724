//! The lossless netrc reader and editor (see the module above for curl's reading of the file).

use std::fmt;
use std::ops::Range;

use super::lex::{Keyword, Kind, Token, decode, line_end_after, macro_end, render_entry, scan};

/// A parsed netrc file that remembers every byte it was made from.
#[derive(Clone)]
pub struct Netrc {
    bytes: Vec<u8>,
    /// Cover `bytes` from start to end, in order, without gaps.
    tokens: Vec<Token>,
    /// The `machine` and `default` entries, in file order.
    entries: Vec<Span>,
    /// The file ends inside a `macdef` body: anything appended would become part of it.
    ends_in_macro: bool,
}

/// The login and password of one entry, with quotes and escapes removed.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    pub login: Option<Vec<u8>>,
    pub password: Option<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Subject {
    /// `machine HOST`; `None` when the file ends before the host name.
    Machine(Option<Vec<u8>>),
    Default,
}

/// Where one entry sits among the tokens, and what it says.
#[derive(Clone, Debug)]
struct Span {
    subject: Subject,
    /// Token index of the `machine` or `default` keyword.
    first: usize,
    /// Token index of the last word that belongs to the entry (comments and white space after it
    /// do not).
    last: usize,
    login: Option<Vec<u8>>,
    password: Option<Vec<u8>>,
}

/// What the next word means, given the words before it.
#[derive(Clone, Copy)]
enum Expect {
    Keyword,
    Host,
    Value(Field),
}

#[derive(Clone, Copy)]
enum Field {
    Login,
    Password,
    Account,
}

impl Netrc {
    /// Never fails: any bytes make some `Netrc`, and [`Netrc::to_bytes`] gives them back.
    pub fn parse(bytes: &[u8]) -> Netrc {
        let mut tokens = Vec::new();
        let mut entries: Vec<Span> = Vec::new();
        // Whether words still belong to the last entry (a `macdef` closes it).
        let mut in_entry = false;
        let mut expect = Expect::Keyword;
        let mut ends_in_macro = false;
        let mut pos = 0;
        while pos < bytes.len() {
            let (kind, end) = scan(bytes, pos);
            tokens.push(Token {
                kind,
                span: pos..end,
            });
            pos = end;
            if kind != Kind::Word {
                continue;
            }
            let index = tokens.len() - 1;
            let word = decode(&bytes[tokens[index].span.clone()]);
            let keyword = Keyword::of(&word);
            match (expect, entries.last_mut()) {
                (Expect::Host, Some(entry)) => {
                    entry.subject = Subject::Machine(Some(word));
                    entry.last = index;
                    expect = Expect::Keyword;
                    continue;
                }
                (Expect::Value(field), Some(entry))
                    if !keyword.is_some_and(Keyword::starts_item) =>
                {
                    match field {
                        Field::Login => entry.login = Some(word),
                        Field::Password => entry.password = Some(word),
                        Field::Account => {}
                    }
                    entry.last = index;
                    expect = Expect::Keyword;
                    continue;
                }
                _ => expect = Expect::Keyword,
            }
            match keyword {
                Some(Keyword::Machine | Keyword::Default) => {
                    let machine = keyword == Some(Keyword::Machine);
                    entries.push(Span {
                        subject: if machine {
                            Subject::Machine(None)
                        } else {
                            Subject::Default
                        },
                        first: index,
                        last: index,
                        login: None,
                        password: None,
                    });
                    in_entry = true;
                    if machine {
                        expect = Expect::Host;
                    }
                }
                Some(Keyword::Macdef) => {
                    in_entry = false;
                    let (end, terminated) = macro_end(bytes, pos);
                    if end > pos {
                        tokens.push(Token {
                            kind: Kind::Macro,
                            span: pos..end,
                        });
                    }
                    ends_in_macro = !terminated;
                    pos = end;
                }
                _ if in_entry => {
                    let entry = entries.last_mut().expect("in_entry implies an entry");
                    entry.last = index;
                    expect = match keyword {
                        Some(Keyword::Login) => Expect::Value(Field::Login),
                        Some(Keyword::Password) => Expect::Value(Field::Password),
                        Some(Keyword::Account) => Expect::Value(Field::Account),
                        _ => Expect::Keyword,
                    };
                }
                // curl skips words outside any entry, and so do we.
                _ => {}
            }
        }
        Netrc {
            bytes: bytes.to_vec(),
            tokens,
            entries,
            ends_in_macro,
        }
    }

    /// The file as bytes: exactly what [`Netrc::parse`] was given, plus any edits.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Built from the tokens rather than copied, so that a tokenizer which lost a byte
        // would show up in the round-trip tests.
        let mut out = Vec::with_capacity(self.bytes.len());
        for token in &self.tokens {
            out.extend_from_slice(&self.bytes[token.span.clone()]);
        }
        out
    }

    /// The first `machine` entry for `host` (case-insensitive); never the `default` entry.
    pub fn get(&self, host: &str) -> Option<Entry> {
        let entry = &self.entries[self.matches(host).next()?];
        Some(Entry {
            login: entry.login.clone(),
            password: entry.password.clone(),
        })
    }

    /// Host names of the `machine` entries, in file order.
    pub fn machines(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter_map(|entry| match &entry.subject {
                Subject::Machine(Some(host)) => Some(String::from_utf8_lossy(host).into_owned()),
                _ => None,
            })
            .collect()
    }

    /// Sets the login and password for `host`.
    ///
    /// The first entry for `host` is replaced where it stands, from its `machine` keyword to its
    /// last value: anything else it held (`account`, unknown words, comments between its words)
    /// goes with it. Later entries for `host` are removed. Without one, a new entry goes before
    /// the `default` entry (curl takes the first entry that matches, and `default` matches
    /// everything), or at the end. The same happens when the only entries for `host` come after
    /// `default`, where curl never reaches them.
    ///
    /// The entry is written on three lines, `machine`, `login`, `password`, because curl < 8.7
    /// drops a line of 4095 bytes or more and an access token can be nearly that long; its line
    /// breaks follow the file's (CRLF or LF).
    pub fn upsert(&mut self, host: &str, login: &str, password: &str) {
        let line_break = self.line_break();
        let text = render_entry(host, login, password, line_break);
        let first_default = self
            .entries
            .iter()
            .position(|entry| entry.subject == Subject::Default);
        let found = self.matches(host).next();
        match found {
            Some(found) if first_default.is_none_or(|default| found < default) => {
                self.rewrite(found, text, line_break);
                self.remove_matches(host, 1);
            }
            _ => {
                self.remove_matches(host, 0);
                self.insert(text, line_break);
            }
        }
    }

    /// Removes every `machine` entry for `host`, with the line breaks that belonged to them.
    /// Every other byte stays as it was; comments above an entry stay, a comment on its last
    /// line goes with it.
    pub fn remove(&mut self, host: &str) -> bool {
        self.remove_matches(host, 0)
    }

    /// Indices into `entries` of the machine entries for `host`.
    fn matches<'a>(&'a self, host: &'a str) -> impl Iterator<Item = usize> + 'a {
        self.entries
            .iter()
            .enumerate()
            .filter(move |(_, entry)| match &entry.subject {
                Subject::Machine(Some(name)) => name.eq_ignore_ascii_case(host.as_bytes()),
                _ => false,
            })
            .map(|(index, _)| index)
    }

    /// Removes the entries for `host` after the first `keep` of them.
    fn remove_matches(&mut self, host: &str, keep: usize) -> bool {
        let mut removed = false;
        // One at a time, parsing again in between: what one removal takes (the white space
        // around an entry) can overlap with what the next would.
        loop {
            let Some(index) = self.matches(host).nth(keep) else {
                break;
            };
            let range = self.removal_range(index);
            self.splice(range, b"", None);
            removed = true;
        }
        removed
    }

    /// The bytes that go when entry `index` is removed.
    fn removal_range(&self, index: usize) -> Range<usize> {
        let Span { first, last, .. } = self.entries[index];
        let line_start = self.line_start(first);
        let line_break = self.line_break_after(last);
        let line_end = line_break.unwrap_or(self.tokens.len());
        let words_before = self.tokens[line_start..first]
            .iter()
            .any(|token| token.kind != Kind::Blank);
        let next_word = (last + 1..line_end).find(|&i| self.tokens[i].kind == Kind::Word);
        let line_break_end = line_break.map(|i| self.tokens[i].span.end);
        if let Some(next) = next_word {
            // `machine a ... machine b`: the next entry moves up to where this one started.
            self.tokens[first].span.start..self.tokens[next].span.start
        } else if !words_before {
            // The entry has its lines to itself: they go whole, with any comment on the last.
            let start = if self.ends_macro(line_start) {
                self.tokens[first].span.start
            } else {
                self.tokens[line_start].span.start
            };
            start..line_break_end.unwrap_or(self.bytes.len())
        } else {
            let start = self.tokens[first].span.start;
            match line_break_end {
                // The next line moves up behind the white space that came before the entry,
                // unless a `\r` there and an empty next line would become a CRLF.
                Some(end)
                    if end < self.bytes.len()
                        && !(self.bytes[start - 1] == b'\r' && self.bytes[end] == b'\n') =>
                {
                    start..end
                }
                // Keep the final line break: curl < 8.7 ignores a last line without one.
                _ => {
                    let previous = (line_start..first)
                        .rev()
                        .find(|&i| self.tokens[i].kind != Kind::Blank)
                        .expect("words_before");
                    self.tokens[previous].span.end..self.tokens[last].span.end
                }
            }
        }
    }

    /// Replaces entry `index` with `text` (which has no final line break).
    fn rewrite(&mut self, index: usize, mut text: Vec<u8>, line_break: &[u8]) {
        let Span { first, last, .. } = self.entries[index];
        let line_break_index = self.line_break_after(last);
        let line_end = line_break_index.unwrap_or(self.tokens.len());
        let next_word = (last + 1..line_end).find(|&i| self.tokens[i].kind == Kind::Word);
        let end = match next_word {
            // Whatever followed on the line starts a new one, so the password line stays short.
            Some(next) => {
                text.extend_from_slice(line_break);
                self.tokens[next].span.start
            }
            None => self.tokens[last].span.end,
        };
        // Without a line break after it, curl < 8.7 would ignore the password line.
        let final_line_break =
            (next_word.is_none() && line_break_index.is_none()).then_some(line_break);
        let range = self.tokens[first].span.start..end;
        self.splice(range, &text, final_line_break);
    }

    /// Adds `text` (which has no final line break) as a new entry.
    fn insert(&mut self, mut text: Vec<u8>, line_break: &[u8]) {
        text.extend_from_slice(line_break);
        // A `machine` at the very end is waiting for its host name: ours must not become it.
        let anchor = self
            .entries
            .iter()
            .find(|entry| entry.subject == Subject::Default)
            .or_else(|| {
                self.entries
                    .last()
                    .filter(|entry| entry.subject == Subject::Machine(None))
            })
            .map(|entry| entry.first);
        if let Some(first) = anchor {
            let at = self.insertion_point_before(first);
            self.splice(at..at, &text, None);
            return;
        }
        let mut addition = Vec::new();
        if !self.bytes.is_empty() && !self.bytes.ends_with(b"\n") {
            addition.extend_from_slice(line_end_after(&self.bytes, line_break));
        }
        if self.ends_in_macro {
            // An empty line ends the body.
            addition.extend_from_slice(line_break);
        }
        addition.extend_from_slice(&text);
        let end = self.bytes.len();
        self.splice(end..end, &addition, None);
    }

    /// Where to insert a new entry so that it comes just before the one whose keyword is token
    /// `first`: at the start of that keyword's line, above the comment lines right over it,
    /// when the keyword starts the line; just before the keyword otherwise.
    fn insertion_point_before(&self, first: usize) -> usize {
        let mut line_start = self.line_start(first);
        let words_before = self.tokens[line_start..first]
            .iter()
            .any(|token| token.kind != Kind::Blank);
        if words_before || self.ends_macro(line_start) {
            return self.tokens[first].span.start;
        }
        while line_start > 0 && self.tokens[line_start - 1].kind == Kind::LineBreak {
            let above = self.line_start(line_start - 1);
            let line = &self.tokens[above..line_start - 1];
            let is_comment_line = line.last().is_some_and(|token| token.kind == Kind::Comment)
                && line[..line.len() - 1]
                    .iter()
                    .all(|token| token.kind == Kind::Blank);
            if !is_comment_line || self.ends_macro(above) {
                break;
            }
            line_start = above;
        }
        self.tokens[line_start].span.start
    }

    /// Replaces `range` of the bytes with `replacement`, ends the last line with
    /// `final_line_break` if given, and parses the result again.
    fn splice(&mut self, range: Range<usize>, replacement: &[u8], final_line_break: Option<&[u8]>) {
        let mut bytes = std::mem::take(&mut self.bytes);
        bytes.splice(range, replacement.iter().copied());
        if let Some(line_break) = final_line_break {
            let end = line_end_after(&bytes, line_break);
            bytes.extend_from_slice(end);
        }
        *self = Netrc::parse(&bytes);
    }

    /// The file's line break: CRLF if its first line ends that way, else LF.
    fn line_break(&self) -> &'static [u8] {
        match self.bytes.iter().position(|&b| b == b'\n') {
            Some(i) if i > 0 && self.bytes[i - 1] == b'\r' => b"\r\n",
            // The `\n` that ends the last line will turn this `\r` into a CRLF: the next
            // reading of the file will see CRLF, so this one must too.
            None if self.bytes.ends_with(b"\r") => b"\r\n",
            _ => b"\n",
        }
    }

    /// Whether the line that starts with token `line_start` ends a `macdef` body. Such a line
    /// starts with `\r` (or is empty), so nothing may be inserted or removed at its start.
    fn ends_macro(&self, line_start: usize) -> bool {
        line_start > 0 && self.tokens[line_start - 1].kind == Kind::Macro
    }

    /// Whether token `index` is the last one on its line.
    fn ends_line(&self, index: usize) -> bool {
        let token = &self.tokens[index];
        match token.kind {
            Kind::LineBreak => true,
            Kind::Macro => self.bytes[token.span.end - 1] == b'\n',
            _ => false,
        }
    }

    /// Index of the first token on the line that holds token `index`.
    fn line_start(&self, index: usize) -> usize {
        let mut start = index;
        while start > 0 && !self.ends_line(start - 1) {
            start -= 1;
        }
        start
    }

    /// Index of the line break that ends the line holding token `index`; `None` when the file
    /// ends first.
    fn line_break_after(&self, index: usize) -> Option<usize> {
        (index + 1..self.tokens.len()).find(|&i| self.ends_line(i))
    }
}

impl fmt::Debug for Netrc {
    // Only the host names: the rest holds passwords.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Netrc")
            .field("machines", &self.machines())
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("login", &self.login.as_deref().map(String::from_utf8_lossy))
            .field("password", &self.password.as_ref().map(|_| Redacted))
            .finish()
    }
}

struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::netrc) fn entry(login: &str, password: &str) -> Option<Entry> {
        Some(Entry {
            login: Some(login.into()),
            password: Some(password.into()),
        })
    }

    fn upserted(file: &str, host: &str, login: &str, password: &str) -> String {
        let mut netrc = Netrc::parse(file.as_bytes());
        netrc.upsert(host, login, password);
        String::from_utf8(netrc.to_bytes()).unwrap()
    }

    fn removed(file: &str, host: &str) -> String {
        let mut netrc = Netrc::parse(file.as_bytes());
        netrc.remove(host);
        String::from_utf8(netrc.to_bytes()).unwrap()
    }

    const SAMPLES: &[&[u8]] = &[
        b"",
        b"\n",
        b"\r\n\r\n",
        b"machine a login u password p\n",
        b"machine a login u password p",
        b"machine a\n  login u\n  password p\n\nmachine b\n\tlogin v\n\tpassword q\n",
        b"# comment\n   # indented comment\nmachine a login u # trailing\npassword p\n",
        b"machine a login u password p machine b login v password q\n",
        b"default login anon password guest\nmachine a login u password p\n",
        b"machine a login u password p\ndefault login anon password guest",
        b"macdef init\ncd /pub\nmachine evil login x password y\n\nmachine a login u password p\n",
        b"macdef init\nbody without end",
        b"machine a login \"u s\" password \"p\\\"q\\\\r\\n\\t\"\n",
        b"machine a password \"unterminated\nmachine b login v\n",
        b"machine a\r\nlogin u\r\npassword p\r\n",
        b"machine \xff\xfe login \x80 password \xc3\x28\n",
        b"\t \x0b\x0c\r machine\ta\rlogin u\n",
        b"machine",
        b"machine a login",
        b"\"",
        b"\\\"\"#",
        b"#",
        b"macdef",
        b"macdef\r\n\r\n",
    ];

    #[test]
    fn round_trips_byte_for_byte() {
        for sample in SAMPLES {
            let netrc = Netrc::parse(sample);
            assert_eq!(
                netrc.to_bytes(),
                *sample,
                "{:?}",
                String::from_utf8_lossy(sample)
            );
        }
    }

    #[test]
    fn reads_one_line_and_multi_line_entries() {
        let netrc = Netrc::parse(SAMPLES[5]);
        assert_eq!(netrc.get("a"), entry("u", "p"));
        assert_eq!(netrc.get("B"), entry("v", "q"));
        assert_eq!(netrc.machines(), ["a", "b"]);
        let netrc = Netrc::parse(SAMPLES[7]);
        assert_eq!(netrc.get("b"), entry("v", "q"));
    }

    #[test]
    fn keywords_and_hosts_ignore_case() {
        let netrc = Netrc::parse(b"MACHINE Cache.Example.COM LOGIN u PassWord p\n");
        assert_eq!(netrc.get("cache.example.com"), entry("u", "p"));
    }

    #[test]
    fn comments_hide_the_rest_of_their_line() {
        let netrc = Netrc::parse(SAMPLES[6]);
        assert_eq!(netrc.get("a"), entry("u", "p"));
        let netrc = Netrc::parse(b"# machine x login no password no\nmachine a #password p\n");
        assert_eq!(netrc.machines(), ["a"]);
        assert_eq!(netrc.get("a").unwrap().password, None);
    }

    #[test]
    fn macdef_body_ends_at_an_empty_line() {
        let netrc = Netrc::parse(SAMPLES[10]);
        assert_eq!(netrc.machines(), ["a"]);
        assert_eq!(netrc.get("evil"), None);
        // A line of blanks is not empty to curl < 8.7.
        let netrc = Netrc::parse(b"macdef m\n  \nmachine x login u password p\n\nmachine a\n");
        assert_eq!(netrc.machines(), ["a"]);
    }

    #[test]
    fn default_is_not_a_machine() {
        let netrc = Netrc::parse(SAMPLES[8]);
        assert_eq!(netrc.machines(), ["a"]);
        assert_eq!(netrc.get("anything"), None);
        assert_eq!(netrc.get("a"), entry("u", "p"));
    }

    #[test]
    fn quoted_values_are_decoded() {
        let netrc = Netrc::parse(SAMPLES[12]);
        let found = netrc.get("a").unwrap();
        assert_eq!(found.login.unwrap(), b"u s");
        assert_eq!(found.password.unwrap(), b"p\"q\\r\n\t");
    }

    #[test]
    fn quoted_value_without_closing_quote_ends_with_its_line() {
        let netrc = Netrc::parse(SAMPLES[13]);
        assert_eq!(netrc.get("a").unwrap().password.unwrap(), b"unterminated");
        assert_eq!(netrc.machines(), ["a", "b"]);
    }

    #[test]
    fn non_utf8_bytes_are_kept() {
        let netrc = Netrc::parse(SAMPLES[15]);
        assert_eq!(netrc.machines(), ["\u{fffd}\u{fffd}"]);
    }

    #[test]
    fn keyword_where_a_value_belongs_starts_a_new_entry() {
        let netrc = Netrc::parse(b"machine a login machine b password p\n");
        assert_eq!(netrc.get("a").unwrap().login, None);
        assert_eq!(netrc.get("b").unwrap().password.unwrap(), b"p");
        // ... but the word after `machine` is always the host.
        let netrc = Netrc::parse(b"machine default login u\n");
        assert_eq!(netrc.machines(), ["default"]);
    }

    #[test]
    fn upsert_rewrites_in_place_and_keeps_the_rest() {
        let file = "# mine\nmachine a login old password old account acc\n# after\nmachine b login v password q\n";
        assert_eq!(
            upserted(file, "a", "nix", "tok"),
            "# mine\nmachine a\nlogin nix\npassword tok\n# after\nmachine b login v password q\n"
        );
    }

    #[test]
    fn upsert_rewrites_an_entry_sharing_its_line() {
        let file = "machine x login 1 machine a login old password old machine b login v\n";
        let out = upserted(file, "a", "nix", "tok");
        assert_eq!(
            out,
            "machine x login 1 machine a\nlogin nix\npassword tok\nmachine b login v\n"
        );
        let netrc = Netrc::parse(out.as_bytes());
        assert_eq!(netrc.get("x").unwrap().login.unwrap(), b"1");
        assert_eq!(netrc.get("b").unwrap().login.unwrap(), b"v");
    }

    #[test]
    fn upsert_ends_a_rewritten_last_line() {
        assert_eq!(
            upserted("machine a login u password p # note", "a", "l", "t"),
            "machine a\nlogin l\npassword t # note\n"
        );
    }

    #[test]
    fn upsert_appends_on_a_new_line() {
        assert_eq!(
            upserted("", "a", "l", "t"),
            "machine a\nlogin l\npassword t\n"
        );
        assert_eq!(
            upserted("machine b login v password q\n", "a", "l", "t"),
            "machine b login v password q\nmachine a\nlogin l\npassword t\n"
        );
        assert_eq!(
            upserted("# no final newline", "a", "l", "t"),
            "# no final newline\nmachine a\nlogin l\npassword t\n"
        );
    }

    #[test]
    fn upsert_keeps_crlf() {
        assert_eq!(
            upserted("machine b login v password q\r\n", "a", "l", "t"),
            "machine b login v password q\r\nmachine a\r\nlogin l\r\npassword t\r\n"
        );
        assert_eq!(
            upserted("machine a\r\nlogin u\r\npassword p\r\n", "a", "l", "t"),
            "machine a\r\nlogin l\r\npassword t\r\n"
        );
    }

    #[test]
    fn upsert_goes_before_default() {
        let file = "machine b login v password q\n# fallback\ndefault login anon password guest\n";
        assert_eq!(
            upserted(file, "a", "l", "t"),
            "machine b login v password q\nmachine a\nlogin l\npassword t\n# fallback\ndefault login anon password guest\n"
        );
        let file = "machine b login v default login anon\n";
        let out = upserted(file, "a", "l", "t");
        assert_eq!(
            out,
            "machine b login v machine a\nlogin l\npassword t\ndefault login anon\n"
        );
        assert_eq!(Netrc::parse(out.as_bytes()).get("a"), entry("l", "t"));
    }

    #[test]
    fn upsert_moves_an_entry_that_default_hides() {
        let file = "default login anon\nmachine a login u password p\n";
        assert_eq!(
            upserted(file, "a", "l", "t"),
            "machine a\nlogin l\npassword t\ndefault login anon\n"
        );
    }

    #[test]
    fn upsert_ends_an_open_macdef_first() {
        let out = upserted("macdef init\ncd /pub\n", "a", "l", "t");
        assert_eq!(
            out,
            "macdef init\ncd /pub\n\nmachine a\nlogin l\npassword t\n"
        );
        assert_eq!(Netrc::parse(out.as_bytes()).get("a"), entry("l", "t"));
        let out = upserted("macdef init", "a", "l", "t");
        assert_eq!(out, "macdef init\n\nmachine a\nlogin l\npassword t\n");
    }

    #[test]
    fn edits_keep_a_macdef_ended_by_a_line_starting_with_cr() {
        let file = "macdef m\nbody\n\rdefault login v\n";
        let out = upserted(file, "a", "l", "t");
        assert_eq!(
            out,
            "macdef m\nbody\n\rmachine a\nlogin l\npassword t\ndefault login v\n"
        );
        assert_eq!(Netrc::parse(out.as_bytes()).machines(), ["a"]);
        let file = "macdef m\nbody\n\rmachine a login u\nmachine b login v\n";
        let out = removed(file, "a");
        assert_eq!(out, "macdef m\nbody\n\rmachine b login v\n");
        assert_eq!(Netrc::parse(out.as_bytes()).machines(), ["b"]);
        let file = "macdef m\n\r# about default\ndefault login x\n";
        assert_eq!(
            upserted(file, "a", "l", "t"),
            "macdef m\n\r# about default\nmachine a\nlogin l\npassword t\ndefault login x\n"
        );
    }

    #[test]
    fn upsert_does_not_become_a_dangling_host() {
        let out = upserted("machine b login v\nmachine", "a", "l", "t");
        assert_eq!(
            out,
            "machine b login v\nmachine a\nlogin l\npassword t\nmachine"
        );
        assert_eq!(Netrc::parse(out.as_bytes()).get("a"), entry("l", "t"));
    }

    #[test]
    fn upsert_drops_duplicates() {
        let file =
            "machine a login 1 password 1\nmachine b login v\nmachine A login 2 password 2\n";
        assert_eq!(
            upserted(file, "a", "l", "t"),
            "machine a\nlogin l\npassword t\nmachine b login v\n"
        );
    }

    #[test]
    fn upsert_quotes_values_that_need_it() {
        let out = upserted("", "a", "with space", "#\"\\\t");
        assert_eq!(
            out,
            "machine a\nlogin \"with space\"\npassword \"#\\\"\\\\\\t\"\n"
        );
        assert_eq!(
            Netrc::parse(out.as_bytes()).get("a"),
            entry("with space", "#\"\\\t")
        );
        assert_eq!(
            Netrc::parse(upserted("", "a", "", "").as_bytes()).get("a"),
            entry("", "")
        );
    }

    #[test]
    fn upsert_twice_is_upsert_once() {
        for sample in SAMPLES {
            let mut once = Netrc::parse(sample);
            once.upsert("a", "l", "t");
            let mut twice = once.clone();
            twice.upsert("a", "l", "t");
            assert_eq!(once.to_bytes(), twice.to_bytes());
            assert_eq!(once.get("a"), entry("l", "t"));
        }
    }

    #[test]
    fn remove_takes_whole_lines_and_leaves_the_rest() {
        let file =
            "# about a\nmachine a\n  login u\n  password p # its comment\nmachine b login v\n";
        assert_eq!(removed(file, "a"), "# about a\nmachine b login v\n");
        assert_eq!(
            removed(file, "b"),
            "# about a\nmachine a\n  login u\n  password p # its comment\n"
        );
        assert_eq!(removed(file, "c"), file);
    }

    #[test]
    fn remove_within_a_line() {
        let file = "machine x login 1 machine a login u machine b login v\n";
        assert_eq!(removed(file, "a"), "machine x login 1 machine b login v\n");
        assert_eq!(removed(file, "b"), "machine x login 1 machine a login u\n");
        assert_eq!(removed(file, "x"), "machine a login u machine b login v\n");
        let file = "machine x login 1 machine a login u\nmachine b login v\n";
        assert_eq!(removed(file, "a"), "machine x login 1 machine b login v\n");
    }

    #[test]
    fn remove_keeps_the_final_line_break() {
        assert_eq!(removed("machine a\nmachine b", "b"), "machine a\n");
        assert_eq!(removed("machine a x machine b y\n", "b"), "machine a x\n");
        assert_eq!(removed("machine a", "a"), "");
    }

    #[test]
    fn remove_drops_every_duplicate() {
        let file =
            "machine a login 1\r\nmachine b login v\r\nmachine a login 2 machine a login 3\r\n";
        let mut netrc = Netrc::parse(file.as_bytes());
        assert!(netrc.remove("A"));
        assert_eq!(netrc.to_bytes(), b"machine b login v\r\n");
        assert!(!netrc.remove("a"));
    }

    #[test]
    fn remove_leaves_macdef_and_default() {
        let file = "machine a login u\nmacdef init\nmachine a\n\ndefault login x\n";
        assert_eq!(
            removed(file, "a"),
            "macdef init\nmachine a\n\ndefault login x\n"
        );
    }

    #[test]
    fn upsert_then_remove_restores_the_file() {
        for file in [
            "machine b login v\n",
            "# c\ndefault login x\n",
            "machine b login v default login x\n",
            "machine b\nmachine",
            "",
        ] {
            let mut netrc = Netrc::parse(file.as_bytes());
            netrc.upsert("a", "l", "t");
            assert!(netrc.remove("a"));
            assert_eq!(String::from_utf8(netrc.to_bytes()).unwrap(), file);
        }
    }

    #[test]
    fn debug_hides_passwords() {
        let netrc = Netrc::parse(b"machine a login u password secret\n");
        let shown = format!("{netrc:?} {:?}", netrc.get("a"));
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("(redacted)"), "{shown}");
    }
}
