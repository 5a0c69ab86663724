//! What curl and Nix make of a netrc: host names, words that read back as themselves, and the
//! limits of curl's two netrc parsers (before 8.7 and since).

/// curl before 8.7 (Debian 12 has 7.88) silently drops a netrc line of this many bytes or more,
/// not counting the line break.
pub const CURL_OLD_LINE_LIMIT: usize = 4095;

/// curl 8.7 and later fail the whole netrc on a token of this many bytes or more: its token
/// buffer holds 4096 bytes including the terminating NUL.
pub const CURL_TOKEN_LIMIT: usize = 4096;

/// What a line written by [`Netrc::upsert`](super::Netrc::upsert) holds besides the token itself: `password ` and, in a
/// file with CRLF line breaks, the `\r`.
const PASSWORD_LINE_OVERHEAD: usize = "password ".len() + "\r".len();

/// curl 8.7 and later refuse a netrc line of this many bytes or more.
pub const CURL_NEW_LINE_LIMIT: usize = 16 * 1024;
/// curl 8.7 and later refuse a netrc file of this many bytes or more.
pub const CURL_NEW_FILE_LIMIT: usize = 128 * 1024;

/// The netrc `machine` name for a cache host such as `cache.example.com:8443` or `[::1]:8080`:
/// curl matches by host name only and ignores the port.
pub fn machine_name(cache_host: &str) -> &str {
    if let Some(bracketed) = cache_host.strip_prefix('[') {
        return match bracketed.find(']') {
            Some(end) => &bracketed[..end],
            None => cache_host,
        };
    }
    match cache_host.split_once(':') {
        // More than one colon: an IPv6 address without brackets, which has no port.
        Some((host, port)) if !port.contains(':') => host,
        _ => cache_host,
    }
}

/// Whether curl reads `value` back as one and the same word wherever it stands in a netrc:
/// not empty, no white space, quotes or control characters, no leading `#` (a comment to
/// older curl), and not a keyword (curl reads `default` as a keyword even after `login`).
pub fn is_plain_word(value: &str) -> bool {
    const KEYWORDS: [&str; 6] = [
        "machine", "default", "login", "password", "account", "macdef",
    ];
    !value.is_empty()
        && !value.starts_with('#')
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\\')
        && !KEYWORDS.iter().any(|k| value.eq_ignore_ascii_case(k))
}

/// A one-line warning when curl may not use `password` from the netrc (it is written anyway).
pub fn long_token_warning(password: &str) -> Option<String> {
    let len = password.len();
    if len >= CURL_TOKEN_LIMIT {
        Some(format!(
            "the access token is {len} bytes long: curl 8.7 and later refuse a netrc with a \
             token of {CURL_TOKEN_LIMIT} bytes or more, so Nix may not authenticate"
        ))
    } else if len + PASSWORD_LINE_OVERHEAD >= CURL_OLD_LINE_LIMIT {
        Some(format!(
            "the access token is {len} bytes long: curl before 8.7 ignores netrc lines of \
             {CURL_OLD_LINE_LIMIT} bytes or more, so Nix may not authenticate"
        ))
    } else {
        None
    }
}

/// What curl before 8.7 and curl 8.7 or later would not accept in `bytes`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// 1-based numbers and lengths of lines curl < 8.7 drops.
    pub old_long_lines: Vec<(usize, usize)>,
    /// Lines curl >= 8.7 refuses.
    pub new_long_lines: Vec<(usize, usize)>,
    /// Lengths of words (tokens) curl >= 8.7 refuses.
    pub long_tokens: Vec<usize>,
    /// The file's length, when curl >= 8.7 refuses it.
    pub file_too_long: Option<usize>,
}

impl Limits {
    pub fn measure(bytes: &[u8]) -> Limits {
        let mut limits = Limits::default();
        for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
            // The `\r` of a CRLF file fills curl's buffer like any other byte.
            let len = line.len();
            if len >= CURL_OLD_LINE_LIMIT {
                limits.old_long_lines.push((index + 1, len));
            }
            if len >= CURL_NEW_LINE_LIMIT {
                limits.new_long_lines.push((index + 1, len));
            }
            limits.long_tokens.extend(
                line.split(|b| b.is_ascii_whitespace())
                    .map(<[u8]>::len)
                    .filter(|&len| len >= CURL_TOKEN_LIMIT),
            );
        }
        if bytes.len() >= CURL_NEW_FILE_LIMIT {
            limits.file_too_long = Some(bytes.len());
        }
        limits
    }

    pub fn old_curl_problems(&self) -> Vec<String> {
        self.old_long_lines
            .iter()
            .map(|(line, len)| {
                format!(
                    "line {line} is {len} bytes: curl before 8.7 silently drops lines of {CURL_OLD_LINE_LIMIT} bytes or more"
                )
            })
            .collect()
    }

    pub fn new_curl_problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = self
            .long_tokens
            .iter()
            .map(|len| {
                format!(
                    "a token is {len} bytes: curl 8.7 and later refuse a netrc with a token of {CURL_TOKEN_LIMIT} bytes or more"
                )
            })
            .collect();
        problems.extend(self.new_long_lines.iter().map(|(line, len)| {
            format!(
                "line {line} is {len} bytes: curl 8.7 and later refuse lines of {CURL_NEW_LINE_LIMIT} bytes or more"
            )
        }));
        if let Some(len) = self.file_too_long {
            problems.push(format!(
                "the file is {len} bytes: curl 8.7 and later refuse a netrc of {CURL_NEW_FILE_LIMIT} bytes or more"
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_name_drops_the_port() {
        assert_eq!(machine_name("cache.example.com"), "cache.example.com");
        assert_eq!(machine_name("cache.example.com:8443"), "cache.example.com");
        assert_eq!(machine_name("[::1]:8080"), "::1");
        assert_eq!(machine_name("[fe80::1]"), "fe80::1");
        assert_eq!(machine_name("::1"), "::1");
        assert_eq!(machine_name("10.0.0.1:80"), "10.0.0.1");
    }

    #[test]
    fn long_tokens_are_warned_about() {
        assert_eq!(long_token_warning("short"), None);
        assert_eq!(long_token_warning(&"x".repeat(4000)), None);
        let old = long_token_warning(&"x".repeat(4090)).unwrap();
        assert!(old.contains("before 8.7"), "{old}");
        let new = long_token_warning(&"x".repeat(CURL_TOKEN_LIMIT)).unwrap();
        assert!(
            new.contains("8.7 and later") && !new.contains('\n'),
            "{new}"
        );
    }

    #[test]
    fn measures_lines_tokens_and_size() {
        let token = "t".repeat(4090);
        let file = format!("machine a\nlogin b\npassword {token}\n");
        let l = Limits::measure(file.as_bytes());
        assert_eq!(l.old_long_lines, vec![(3, 4099)]);
        assert!(l.long_tokens.is_empty() && l.new_long_lines.is_empty());

        let token = "t".repeat(5000);
        let l = Limits::measure(format!("machine a login b password {token}\r\n").as_bytes());
        assert_eq!(l.long_tokens, vec![5000]);
        assert_eq!(l.old_long_lines.len(), 1);

        let l = Limits::measure(&vec![b'\n'; CURL_NEW_FILE_LIMIT]);
        assert_eq!(l.file_too_long, Some(CURL_NEW_FILE_LIMIT));
        assert_eq!(
            Limits::measure(b"machine a login b password c\n"),
            Limits::default()
        );
    }
}
