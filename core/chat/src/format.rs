//! How chat events look on the wire, in the two client formats.
//!
//! - Plain: readable text lines (`alice: hello`, `* bob joined #rust`), for
//!   clients that asked for no subprotocol.
//! - `tincan.v1` (the subprotocol): one JSON object per message,
//!   `{"type", "room", "from", "text", "ts", ...}`.

use std::fmt::Write;

/// The subprotocol that selects JSON envelopes.
pub const SUBPROTOCOL: &str = "tincan.v1";

/// A client's wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Readable text lines.
    Plain,
    /// `tincan.v1` JSON envelopes.
    Json,
}

/// What a chat message in the history or live stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A message: `alice: hello`.
    Message,
    /// An action (`/me waves`): `* alice waves`.
    Action,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Action => "action",
        }
    }
}

/// A message kept in a room's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Message or action.
    pub kind: Kind,
    /// The sender's nickname.
    pub from: String,
    /// The text.
    pub text: String,
    /// Unix time in milliseconds.
    pub ts: u64,
}

/// Something a client is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice<'a> {
    /// The first thing a client hears: its room and nickname.
    Welcome {
        /// The client's nickname.
        nick: &'a str,
    },
    /// A live message or action.
    Said(&'a Entry),
    /// Members joined the room, in this order (several when their joins
    /// were announced together: see [`ChatConfig::presence_delay`]).
    ///
    /// [`ChatConfig::presence_delay`]: crate::ChatConfig::presence_delay
    Join {
        /// Who.
        nicks: &'a [&'a str],
    },
    /// Members left the room, in this order.
    Leave {
        /// Who.
        nicks: &'a [&'a str],
    },
    /// Someone changed nickname.
    Nick {
        /// The old nickname.
        old: &'a str,
        /// The new nickname.
        new: &'a str,
    },
    /// The room's recent messages, oldest first. The chat renders it with
    /// the newest entry's `ts`, so that one encoding serves every join
    /// until the next message.
    History(&'a [&'a Entry]),
    /// Who is in the room.
    Who(&'a [&'a str]),
    /// Help or other information.
    Info(&'a str),
    /// A refused command or message.
    Error(&'a str),
}

/// Renders `notice` for a client in `room` in `format`: plain history gives
/// one line per entry, JSON joins and leaves one envelope per member,
/// everything else one message.
pub fn render(format: Format, room: &str, notice: &Notice<'_>, ts: u64) -> Vec<String> {
    match (format, notice) {
        (Format::Plain, _) => plain(room, notice),
        // One envelope per member, as for a join or leave of its own.
        (Format::Json, Notice::Join { nicks } | Notice::Leave { nicks }) => nicks
            .iter()
            .map(|nick| {
                let one = &[*nick][..];
                let single = match notice {
                    Notice::Join { .. } => Notice::Join { nicks: one },
                    _ => Notice::Leave { nicks: one },
                };
                json(room, &single, ts)
            })
            .collect(),
        (Format::Json, _) => vec![json(room, notice, ts)],
    }
}

/// `a`, `a and b`, `a, b and c`.
fn listed(nicks: &[&str]) -> String {
    match nicks {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn plain(room: &str, notice: &Notice<'_>) -> Vec<String> {
    let line = match notice {
        Notice::Welcome { nick } => {
            format!("* Welcome to #{room}, {nick}. Type /help for commands.")
        }
        Notice::Said(entry) => said_line(entry),
        Notice::Join { nicks } => format!("* {} joined #{room}", listed(nicks)),
        Notice::Leave { nicks } => format!("* {} left #{room}", listed(nicks)),
        Notice::Nick { old, new } => format!("* {old} is now known as {new}"),
        Notice::History(entries) => return entries.iter().map(|e| said_line(e)).collect(),
        Notice::Who(nicks) => format!("* In #{room} ({}): {}", nicks.len(), nicks.join(", ")),
        Notice::Info(text) => format!("* {text}"),
        Notice::Error(text) => format!("! {text}"),
    };
    vec![line]
}

fn said_line(entry: &Entry) -> String {
    match entry.kind {
        Kind::Message => format!("{}: {}", entry.from, entry.text),
        Kind::Action => format!("* {} {}", entry.from, entry.text),
    }
}

fn json(room: &str, notice: &Notice<'_>, ts: u64) -> String {
    let mut out = String::with_capacity(96);
    match notice {
        Notice::Welcome { nick } => {
            envelope(
                &mut out,
                "welcome",
                room,
                None,
                &format!("Welcome to #{room}, {nick}"),
                ts,
            );
            field(&mut out, "nick", nick);
        }
        Notice::Said(entry) => said_json(&mut out, room, entry),
        // One member's (see `render`).
        Notice::Join { nicks } | Notice::Leave { nicks } => {
            let (kind, verb) = match notice {
                Notice::Join { .. } => ("join", "joined"),
                _ => ("leave", "left"),
            };
            let nick = nicks.first().copied().unwrap_or_default();
            envelope(
                &mut out,
                kind,
                room,
                Some(nick),
                &format!("{nick} {verb}"),
                ts,
            );
        }
        Notice::Nick { old, new } => {
            envelope(
                &mut out,
                "nick",
                room,
                Some(old),
                &format!("{old} is now known as {new}"),
                ts,
            );
            field(&mut out, "nick", new);
        }
        Notice::History(entries) => {
            envelope(&mut out, "history", room, None, "", ts);
            out.push_str(",\"messages\":[");
            for (i, entry) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                said_json(&mut out, room, entry);
                out.push('}');
            }
            out.push(']');
        }
        Notice::Who(nicks) => {
            envelope(&mut out, "who", room, None, &nicks.join(", "), ts);
            out.push_str(",\"users\":[");
            for (i, nick) in nicks.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(&mut out, nick);
            }
            out.push(']');
        }
        Notice::Info(text) => envelope(&mut out, "info", room, None, text, ts),
        Notice::Error(text) => envelope(&mut out, "error", room, None, text, ts),
    }
    out.push('}');
    out
}

fn said_json(out: &mut String, room: &str, entry: &Entry) {
    envelope(
        out,
        entry.kind.name(),
        room,
        Some(&entry.from),
        &entry.text,
        entry.ts,
    );
}

/// Opens `{"type":…,"room":…,"from":…,"text":…,"ts":…` (without the closing brace).
fn envelope(out: &mut String, kind: &str, room: &str, from: Option<&str>, text: &str, ts: u64) {
    out.push_str("{\"type\":");
    string(out, kind);
    field(out, "room", room);
    out.push_str(",\"from\":");
    match from {
        Some(from) => string(out, from),
        None => out.push_str("null"),
    }
    field(out, "text", text);
    let _ = write!(out, ",\"ts\":{ts}");
}

fn field(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, ",\"{name}\":");
    string(out, value);
}

/// A JSON string literal (RFC 8259 §7).
fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: Kind, from: &str, text: &str) -> Entry {
        Entry {
            kind,
            from: from.into(),
            text: text.into(),
            ts: 7,
        }
    }

    #[test]
    fn plain_lines_are_readable() {
        let hello = entry(Kind::Message, "alice", "hello");
        let wave = entry(Kind::Action, "bob", "waves");
        let p = |n: &Notice<'_>| render(Format::Plain, "rust", n, 0);
        assert_eq!(p(&Notice::Said(&hello)), ["alice: hello"]);
        assert_eq!(p(&Notice::Said(&wave)), ["* bob waves"]);
        assert_eq!(
            p(&Notice::Join { nicks: &["carol"] }),
            ["* carol joined #rust"]
        );
        // Joins and leaves announced together: one line.
        assert_eq!(
            p(&Notice::Join {
                nicks: &["carol", "dave"]
            }),
            ["* carol and dave joined #rust"]
        );
        assert_eq!(
            p(&Notice::Leave {
                nicks: &["carol", "dave", "erin"]
            }),
            ["* carol, dave and erin left #rust"]
        );
        assert_eq!(
            p(&Notice::History(&[&hello, &wave])),
            ["alice: hello", "* bob waves"]
        );
        assert_eq!(
            p(&Notice::Who(&["alice", "bob"])),
            ["* In #rust (2): alice, bob"]
        );
        assert_eq!(p(&Notice::Error("no")), ["! no"]);
    }

    #[test]
    fn json_envelopes() {
        let hello = entry(Kind::Message, "alice", "say \"hi\"\n<b>");
        let j = |n: &Notice<'_>| render(Format::Json, "rust", n, 9).remove(0);
        assert_eq!(
            j(&Notice::Said(&hello)),
            r#"{"type":"message","room":"rust","from":"alice","text":"say \"hi\"\n<b>","ts":7}"#
        );
        assert_eq!(
            j(&Notice::Join { nicks: &["bob"] }),
            r#"{"type":"join","room":"rust","from":"bob","text":"bob joined","ts":9}"#
        );
        // Joins announced together: an envelope each, in order.
        let both = render(
            Format::Json,
            "rust",
            &Notice::Join {
                nicks: &["bob", "eve"],
            },
            9,
        );
        assert_eq!(
            both,
            [
                r#"{"type":"join","room":"rust","from":"bob","text":"bob joined","ts":9}"#,
                r#"{"type":"join","room":"rust","from":"eve","text":"eve joined","ts":9}"#
            ]
        );
        assert_eq!(
            j(&Notice::History(&[&hello])),
            r#"{"type":"history","room":"rust","from":null,"text":"","ts":9,"messages":[{"type":"message","room":"rust","from":"alice","text":"say \"hi\"\n<b>","ts":7}]}"#
        );
        assert_eq!(
            j(&Notice::Who(&["a", "b"])),
            r#"{"type":"who","room":"rust","from":null,"text":"a, b","ts":9,"users":["a","b"]}"#
        );
        // Every other envelope, to the letter.
        let wave = entry(Kind::Action, "bob", "waves");
        assert_eq!(
            j(&Notice::Welcome { nick: "guest-1" }),
            r#"{"type":"welcome","room":"rust","from":null,"text":"Welcome to #rust, guest-1","ts":9,"nick":"guest-1"}"#
        );
        assert_eq!(
            j(&Notice::Nick {
                old: "guest-1",
                new: "carol"
            }),
            r#"{"type":"nick","room":"rust","from":"guest-1","text":"guest-1 is now known as carol","ts":9,"nick":"carol"}"#
        );
        assert_eq!(
            j(&Notice::Leave { nicks: &["bob"] }),
            r#"{"type":"leave","room":"rust","from":"bob","text":"bob left","ts":9}"#
        );
        assert_eq!(
            j(&Notice::Said(&wave)),
            r#"{"type":"action","room":"rust","from":"bob","text":"waves","ts":7}"#
        );
        assert_eq!(
            j(&Notice::Info("commands: /nick")),
            r#"{"type":"info","room":"rust","from":null,"text":"commands: /nick","ts":9}"#
        );
        assert_eq!(
            j(&Notice::Error("x\u{1}")),
            r#"{"type":"error","room":"rust","from":null,"text":"x\u0001","ts":9}"#
        );
    }
}
