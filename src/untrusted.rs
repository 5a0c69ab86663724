//! Text that came from outside (a provider's `error_description`, a callback parameter, an
//! error message that may echo an answer) made safe to print.
//!
//! Every such text goes through [`clean`] before it reaches a terminal, a log line, an error
//! chain or an HTML page: a control character (ESC starts the escape sequences that move the
//! cursor, clear the screen or rewrite the title) is replaced by a visible U+FFFD, as is a
//! bidi control or zero-width character (they reorder or hide what a terminal shows:
//! "Trojan Source", CVE-2021-42574), and the length is bounded, with a visible `…` where it
//! was cut. One function, so that what "clean" means is decided here and nowhere else.

/// More than this many characters is not a message meant for a human.
pub const MAX_CHARS: usize = 300;

/// Shown where a control character was.
pub const REPLACEMENT: char = '\u{FFFD}';

/// Shown where text was cut to [`MAX_CHARS`].
pub const CUT_MARKER: char = '…';

/// `text` with every control, bidi control and zero-width character replaced by
/// [`REPLACEMENT`], cut after [`MAX_CHARS`] characters with [`CUT_MARKER`] appended.
/// Cleaning twice changes nothing.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_CHARS * 4 + 4));
    for (count, c) in text.chars().enumerate() {
        if count == MAX_CHARS {
            out.push(CUT_MARKER);
            break;
        }
        out.push(if is_unsafe(c) { REPLACEMENT } else { c });
    }
    out
}

/// A character that changes what a terminal shows without being seen itself: a control
/// (C0, DEL, C1), or a bidi or zero-width format character.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || is_bidi_or_invisible(c)
}

/// Zero-width space, non-joiner and joiner, the directional marks (U+200B–U+200F); the
/// embeddings and overrides (U+202A–U+202E); the isolates (U+2066–U+2069); the byte-order
/// mark (U+FEFF); the Arabic letter mark (U+061C).
fn is_bidi_or_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
            | '\u{061C}'
    )
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
    fn bidi_controls_and_zero_width_characters_are_neutralised() {
        // The Trojan Source shape: an override that makes "admin" read as "nimda" and back.
        assert_eq!(
            clean("user\u{202E}nimda\u{202C}"),
            "user\u{FFFD}nimda\u{FFFD}"
        );
        for c in [
            '\u{200B}', '\u{200C}', '\u{200D}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}',
            '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
            '\u{FEFF}', '\u{061C}',
        ] {
            assert_eq!(clean(&format!("a{c}b")), "a\u{FFFD}b", "U+{:04X}", c as u32);
        }
        // Their neighbours are ordinary text.
        for c in [
            '\u{200A}', '\u{2010}', '\u{2029}', '\u{202F}', '\u{2065}', '\u{206A}',
        ] {
            let text = format!("a{c}b");
            assert_eq!(clean(&text), text, "U+{:04X}", c as u32);
        }
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

        #[test]
        fn output_is_free_of_bidi_and_zero_width_characters(
            s in "[a-z \u{200B}-\u{200F}\u{202A}-\u{202E}\u{2066}-\u{2069}\u{FEFF}\u{061C}\x00-\x1f\u{85}é]{0,400}"
        ) {
            let once = clean(&s);
            prop_assert!(once.chars().count() <= MAX_CHARS + 1);
            prop_assert!(!once.chars().any(is_unsafe));
            prop_assert_eq!(clean(&once), once.clone());
            // Only what was unsafe changed, one character for one.
            let kept: String = s.chars().take(MAX_CHARS).map(|c| if is_unsafe(c) { REPLACEMENT } else { c }).collect();
            prop_assert!(once.starts_with(&kept));
        }
    }
}
