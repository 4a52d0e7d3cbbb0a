//! Nicknames: what one may be, and when two look too alike.
//!
//! A nickname is 1–24 ASCII letters, digits, `-`, `_` or `.`. Guests are
//! named `guest-N` by the chat; a chosen nickname may not look like one.
//!
//! Two nicknames *clash* when their [`skeleton`]s are equal: a client cannot
//! take `aIice` (capital i) or `a1ice` while `alice` is in the room. The
//! skeleton maps each character on its own:
//!
//! | characters            | become |
//! |-----------------------|--------|
//! | `A`–`Z`               | `a`–`z`, then as below |
//! | `0`, `o`              | `o`    |
//! | `1`, `i`, `l`, `\|`   | `l`    |
//! | `5`, `s`              | `s`    |
//! | `m`                   | `rn`   |
//! | `w`                   | `vv`   |
//! | `-`, `_`, `.`         | `-`    |
//! | anything else         | itself |
//!
//! Mapping `m` to `rn` and `w` to `vv` (rather than `rn` to `m` and `vv` to
//! `w`) gives the same clashes while keeping the skeleton a plain
//! character-by-character substitution that does not depend on where a scan
//! starts: `vvv`, `vw` and `wv` all become `vvv`, which contracting pairs
//! left to right would not give (`wv`, `vw`, `wv`). The separators stay one class rather than being dropped, so
//! `alice_` clashes with `alice.` but not with `alice`, and `guest1` does not
//! look like `guest-1`. Digits that do not look like letters keep their
//! meaning: `alice2` and `alice` do not clash.
//!
//! The skeleton is the idea of Unicode Technical Standard #39 §4
//! ("Confusable Detection") cut down to what ASCII nicknames need.
//!
//! Any nickname whose skeleton starts with `guest-` is reserved, so the
//! skeletons in a room are always distinct: guests' skeletons `guest-N`
//! differ from each other (the digit mapping is one-to-one) and from every
//! chosen nickname.

/// The longest nickname, in characters.
pub const MAX_NICK_LEN: usize = 24;

/// Why a `/nick` was refused; the text is what the client is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NickError {
    /// Not 1–24 letters, digits, `-`, `_` or `.`.
    #[error("a nickname is 1-24 letters, digits, '-', '_' or '.'")]
    Invalid,
    /// Looks like a guest's name.
    #[error("nicknames that look like 'guest-N' are reserved for guests")]
    Reserved,
    /// Someone in the room has this nickname, in any case.
    #[error("nickname '{nick}' is taken in #{room}")]
    Taken {
        /// The nickname asked for.
        nick: String,
        /// The room.
        room: String,
    },
    /// Someone in the room has a nickname with the same skeleton.
    #[error("nickname '{nick}' looks too much like '{other}', who is in #{room}")]
    Confusable {
        /// The nickname asked for.
        nick: String,
        /// The nickname in the room it looks like.
        other: String,
        /// The room.
        room: String,
    },
}

/// Checks the form of a nickname (not who else has it).
pub fn check_nick(nick: &str) -> Result<(), NickError> {
    if nick.is_empty()
        || nick.len() > MAX_NICK_LEN
        || !nick
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(NickError::Invalid);
    }
    if skeleton(nick).starts_with("guest-") {
        return Err(NickError::Reserved);
    }
    Ok(())
}

/// The skeleton of a nickname: the table in the [module docs](self).
pub fn skeleton(nick: &str) -> String {
    let mut out = String::with_capacity(nick.len() + 4);
    for c in nick.chars() {
        match c.to_ascii_lowercase() {
            '0' | 'o' => out.push('o'),
            '1' | 'i' | 'l' | '|' => out.push('l'),
            '5' | 's' => out.push('s'),
            'm' => out.push_str("rn"),
            'w' => out.push_str("vv"),
            '-' | '_' | '.' => out.push('-'),
            c => out.push(c),
        }
    }
    out
}

/// A nickname and its [`skeleton`], held together in one allocation (a
/// server keeps one per member: two strings each would cost a second
/// allocation and 24 more bytes for every client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Name {
    /// The nickname, then the skeleton.
    text: Box<str>,
    /// Where the skeleton starts.
    split: usize,
}

impl Name {
    /// `nick` with its skeleton.
    pub(crate) fn new(nick: &str) -> Self {
        let skeleton = skeleton(nick);
        let mut text = String::with_capacity(nick.len() + skeleton.len());
        text.push_str(nick);
        text.push_str(&skeleton);
        Self {
            text: text.into_boxed_str(),
            split: nick.len(),
        }
    }

    /// The nickname.
    pub(crate) fn nick(&self) -> &str {
        self.text.get(..self.split).unwrap_or_default()
    }

    /// Its skeleton.
    pub(crate) fn skeleton(&self) -> &str {
        self.text.get(self.split..).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skeletons() {
        assert_eq!(skeleton("alice"), "allce");
        assert_eq!(skeleton("Wim_05"), "vvlrn-os");
        let clash = |a: &str, b: &str| skeleton(a) == skeleton(b);
        for (a, b) in [
            ("aIice", "alice"),
            ("ALICE", "alice"),
            ("a1ice", "alice"),
            ("bob", "b0b"),
            ("rnary", "mary"),
            ("vvill", "will"),
            ("vw", "wv"),
            ("jes5", "jess"),
            ("a_b", "a.b"),
            ("a-b", "a_b"),
        ] {
            assert!(clash(a, b), "{a} {b}");
        }
        for (a, b) in [
            ("alice2", "alice"),
            ("alice_", "alice"),
            ("ab", "a.b"),
            ("guest1", "guest-1"),
            ("bob", "bop"),
        ] {
            assert!(!clash(a, b), "{a} {b}");
        }
    }

    #[test]
    fn forms() {
        assert_eq!(check_nick("alice.b-c_2"), Ok(()));
        assert_eq!(check_nick(&"n".repeat(24)), Ok(()));
        assert_eq!(check_nick("guest1"), Ok(()));
        assert_eq!(check_nick("guests"), Ok(()));
        for bad in ["", "a b", "<b>", "é", "a|b", &"n".repeat(25)] {
            assert_eq!(check_nick(bad), Err(NickError::Invalid), "{bad}");
        }
        for reserved in ["guest-9", "GUEST-1", "gue5t_1", "guest.x", "guest-"] {
            assert_eq!(check_nick(reserved), Err(NickError::Reserved), "{reserved}");
        }
    }

    #[test]
    fn a_name_holds_its_nick_and_skeleton() {
        for nick in ["alice", "Wim_05", "guest-12", "m", "x"] {
            let name = Name::new(nick);
            assert_eq!(name.nick(), nick);
            assert_eq!(name.skeleton(), skeleton(nick));
        }
    }

    #[test]
    fn guest_skeletons_are_distinct() {
        let skeletons: std::collections::HashSet<String> = (1..=10_000)
            .map(|n| skeleton(&format!("guest-{n}")))
            .collect();
        assert_eq!(skeletons.len(), 10_000);
    }
}
