//! What a chat message (or `/me` action) may contain.
//!
//! The rule, checked in this order:
//!
//! 1. **Not empty:** a text made only of whitespace (Unicode `White_Space`)
//!    and invisible format characters (see [`is_invisible`]) is refused
//!    ([`TextError::Empty`]).
//! 2. **Not too long:** at most `max_text_len` characters (Unicode scalar
//!    values) ([`TextError::TooLong`]).
//! 3. **One line, no controls:** C0 controls U+0000–U+001F (newline, CR and
//!    tab included), DEL U+007F, C1 controls U+0080–U+009F, and the line and
//!    paragraph separators U+2028 and U+2029 are refused
//!    ([`TextError::Control`]).
//! 4. **No bidirectional controls:** U+061C, U+200E, U+200F, U+202A–U+202E
//!    and U+2066–U+2069 (the explicit formatting characters of Unicode
//!    Standard Annex #9, §2) are refused ([`TextError::Bidi`]).
//!
//! For `/me ACTION`, steps 3 and 4 apply to everything after `/me`, the
//! separator and any leading or trailing whitespace included (`/me\n* x` and
//! `/me waves\n` are refused), steps 1 and 2 to the trimmed action that is
//! shown. A `//` message is checked without its first `/`.
//!
//! So a plain-format client, which shows each message as one line, is never
//! shown a second line that looks like a system line (`* …`, `! …`), a
//! terminal escape sequence (ECMA-48 starts them with ESC U+001B or CSI
//! U+009B), or a name or text reordered by bidi overrides ("Trojan Source",
//! CVE-2021-42574). JSON clients get the same rule, so both formats show the
//! same messages.

/// Why a chat message was refused; the text is what the sender is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Only whitespace or invisible format characters.
    #[error("empty message: only whitespace or invisible characters")]
    Empty,
    /// More than `max` characters.
    #[error("message too long: {len} characters, the limit is {max}")]
    TooLong {
        /// The message's length in characters.
        len: usize,
        /// The limit, `max_text_len`.
        max: usize,
    },
    /// A control character or line break.
    #[error(
        "message refused: U+{code:04X} is a control character; a message is one line \
         without U+0000-U+001F, U+007F-U+009F, U+2028 or U+2029",
        code = u32::from(*.0)
    )]
    Control(char),
    /// A bidirectional formatting character.
    #[error(
        "message refused: U+{code:04X} is a bidirectional control; U+061C, U+200E, U+200F, \
         U+202A-U+202E and U+2066-U+2069 are not allowed",
        code = u32::from(*.0)
    )]
    Bidi(char),
}

/// Checks `text` against the rule in the [module docs](self).
pub fn check_message(text: &str, max_len: usize) -> Result<(), TextError> {
    if text.chars().all(|c| c.is_whitespace() || is_invisible(c)) {
        return Err(TextError::Empty);
    }
    let len = text.chars().count();
    if len > max_len {
        return Err(TextError::TooLong { len, max: max_len });
    }
    check_chars(text)
}

/// Checks steps 3 and 4 of the rule only: no control or bidi character.
pub fn check_chars(text: &str) -> Result<(), TextError> {
    for c in text.chars() {
        if is_control(c) {
            return Err(TextError::Control(c));
        }
        if is_bidi_control(c) {
            return Err(TextError::Bidi(c));
        }
    }
    Ok(())
}

/// C0 controls, DEL, C1 controls (Unicode general category Cc), and the line
/// and paragraph separators (Zl, Zp), which some renderers break lines at.
pub fn is_control(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// The explicit bidirectional formatting characters (UAX #9 §2): ALM, LRM,
/// RLM, LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI and PDI.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Characters that show nothing on their own, so a message of only these
/// (and whitespace) looks empty: soft hyphen U+00AD, combining grapheme
/// joiner U+034F, Hangul fillers U+115F, U+1160, U+3164 and U+FFA0,
/// Mongolian vowel separator U+180E, zero-width space, non-joiner and joiner
/// U+200B–U+200D, word joiner and invisible operators U+2060–U+2064,
/// variation selectors U+FE00–U+FE0F, zero-width no-break space (BOM)
/// U+FEFF, and the tags U+E0000–U+E007F. They are allowed inside a message
/// with something visible (emoji sequences use several of them).
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200D}'
            | '\u{2060}'..='\u{2064}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_in_order() {
        let check = |text: &str| check_message(text, 5);
        assert_eq!(check("hi"), Ok(()));
        assert_eq!(check("ééééé"), Ok(()));
        assert_eq!(check("  a  "), Ok(()));
        for empty in [
            "",
            " ",
            "\t\n",
            "\u{200B}",
            "\u{FEFF}\u{00AD} \u{2060}",
            "\u{3000}",
        ] {
            assert_eq!(check(empty), Err(TextError::Empty), "{empty:?}");
        }
        assert_eq!(check("toolong"), Err(TextError::TooLong { len: 7, max: 5 }));
        for (text, c) in [
            ("a\nb", '\n'),
            ("a\rb", '\r'),
            ("a\tb", '\t'),
            ("\u{0}", '\u{0}'),
            ("\u{1b}[2J", '\u{1b}'),
            ("a\u{7f}", '\u{7f}'),
            ("a\u{85}", '\u{85}'),
            ("\u{9b}2J", '\u{9b}'),
            ("a\u{2028}b", '\u{2028}'),
            ("a\u{2029}b", '\u{2029}'),
        ] {
            assert_eq!(check(text), Err(TextError::Control(c)), "{text:?}");
        }
        for c in [
            '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}',
        ] {
            assert_eq!(check(&format!("a{c}b")), Err(TextError::Bidi(c)), "{c:?}");
        }
        // Next to the ranges, or visible enough: allowed.
        for c in ['\u{A0}', '\u{2065}', '\u{202F}', '\u{200D}', '\u{E0080}'] {
            assert_eq!(check(&format!("a{c}")), Ok(()), "{c:?}");
        }
    }

    #[test]
    fn error_texts() {
        assert_eq!(
            TextError::Control('\n').to_string(),
            "message refused: U+000A is a control character; a message is one line \
             without U+0000-U+001F, U+007F-U+009F, U+2028 or U+2029"
        );
        assert_eq!(
            TextError::Bidi('\u{202E}').to_string(),
            "message refused: U+202E is a bidirectional control; U+061C, U+200E, U+200F, \
             U+202A-U+202E and U+2066-U+2069 are not allowed"
        );
        assert_eq!(
            TextError::Empty.to_string(),
            "empty message: only whitespace or invisible characters"
        );
    }
}
