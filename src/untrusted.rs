//! Text that came from outside (a provider's `error_description`, a callback parameter, an
//! error message that may echo an answer) made safe to print.
//!
//! Every such text goes through [`clean`] before it reaches a terminal, a log line, an error
//! chain or an HTML page: a control character (ESC starts the escape sequences that move the
//! cursor, clear the screen or rewrite the title) is replaced by a visible U+FFFD, and the
//! length is bounded, with a visible `…` where it was cut. One function, so that what "clean"
//! means is decided here and nowhere else.

/// More than this many characters is not a message meant for a human.
pub const MAX_CHARS: usize = 300;

/// Shown where a control character was.
pub const REPLACEMENT: char = '\u{FFFD}';

/// Shown where text was cut to [`MAX_CHARS`].
pub const CUT_MARKER: char = '…';

/// `text` with every control character replaced by [`REPLACEMENT`], cut after [`MAX_CHARS`]
/// characters with [`CUT_MARKER`] appended. Cleaning twice changes nothing.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_CHARS * 4 + 4));
    for (count, c) in text.chars().enumerate() {
        if count == MAX_CHARS {
            out.push(CUT_MARKER);
            break;
        }
        out.push(if c.is_control() { REPLACEMENT } else { c });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escape_sequences_are_neutralised() {
        assert_eq!(clean("no\x1b[2Jway"), "no\u{FFFD}[2Jway");
        assert_eq!(clean("a\nb\r\u{7f}"), "a\u{FFFD}b\u{FFFD}\u{FFFD}");
        assert_eq!(clean("plain words"), "plain words");
    }

    #[test]
    fn long_text_is_cut_visibly() {
        let cut = clean(&"é".repeat(10_000));
        assert_eq!(cut.chars().count(), MAX_CHARS + 1);
        assert!(cut.ends_with(CUT_MARKER));
        let exact = "x".repeat(MAX_CHARS);
        assert_eq!(clean(&exact), exact);
    }

    proptest! {
        #[test]
        fn output_is_bounded_free_of_controls_and_stable(s in "\\PC*|[\\x00-\\x1f\\x7f-\\x9f a-z]*") {
            let once = clean(&s);
            prop_assert!(once.chars().count() <= MAX_CHARS + 1);
            prop_assert!(!once.chars().any(char::is_control));
            prop_assert_eq!(clean(&once), once.clone());
        }
    }
}
