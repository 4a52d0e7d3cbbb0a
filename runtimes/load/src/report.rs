//! What the tool says: the one JSON line on stdout, and failures on stderr.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::client::Failure;

/// A flat JSON object, written by hand (numbers as numbers).
pub struct Json(String);

impl Default for Json {
    fn default() -> Self {
        Self::new()
    }
}

impl Json {
    /// An empty object.
    pub fn new() -> Self {
        Self(String::from("{"))
    }

    fn key(&mut self, key: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        let _ = write!(self.0, "\"{key}\":");
    }

    /// A string field.
    pub fn str(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        self.0.push('"');
        for c in value.chars() {
            match c {
                '"' => self.0.push_str("\\\""),
                '\\' => self.0.push_str("\\\\"),
                c if u32::from(c) < 0x20 => {
                    let _ = write!(self.0, "\\u{:04x}", u32::from(c));
                }
                c => self.0.push(c),
            }
        }
        self.0.push('"');
        self
    }

    /// An integer field.
    pub fn int(mut self, key: &str, value: u64) -> Self {
        self.key(key);
        let _ = write!(self.0, "{value}");
        self
    }

    /// A number field with `decimals` digits after the point (0 if it is
    /// not finite: JSON has no NaN).
    pub fn num(mut self, key: &str, value: f64, decimals: usize) -> Self {
        self.key(key);
        let value = if value.is_finite() { value } else { 0.0 };
        let _ = write!(self.0, "{value:.decimals$}");
        self
    }

    /// The object as one line.
    pub fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

/// Prints the result line at once: a script may be waiting for it while the
/// tool goes on (idle holds its connections after printing).
pub fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

static SHOWN: AtomicUsize = AtomicUsize::new(0);
static MORE_HINT: AtomicBool = AtomicBool::new(false);
static FD_HINT: AtomicBool = AtomicBool::new(false);
static PORT_HINT: AtomicBool = AtomicBool::new(false);

/// Says on stderr why a connection failed: the first few failures, and once
/// each a hint for running out of file descriptors or local ports. The JSON
/// line counts them all.
pub fn failure(failure: &Failure) {
    if let Failure::Connect {
        os_error: Some(code),
        ..
    } = failure
    {
        // EMFILE, ENFILE; EADDRNOTAVAIL.
        if matches!(code, 23 | 24) {
            if !FD_HINT.swap(true, Ordering::Relaxed) {
                eprintln!(
                    "tincan-load: {failure}: out of file descriptors; raise the limit with `ulimit -n`"
                );
            }
            return;
        }
        if *code == 99 {
            if !PORT_HINT.swap(true, Ordering::Relaxed) {
                eprintln!(
                    "tincan-load: {failure}: out of local ports (see net.ipv4.ip_local_port_range)"
                );
            }
            return;
        }
    }
    if SHOWN.fetch_add(1, Ordering::Relaxed) < 5 {
        eprintln!("tincan-load: {failure}");
    } else if !MORE_HINT.swap(true, Ordering::Relaxed) {
        eprintln!("tincan-load: more failures: see \"errors\" in the result");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_flat_and_escaped() {
        let line = Json::new()
            .str("url", "ws://h/\"a\"\\\n")
            .int("n", 3)
            .num("rate", 2.5, 2)
            .num("bad", f64::NAN, 1)
            .finish();
        assert_eq!(
            line,
            r#"{"url":"ws://h/\"a\"\\\u000a","n":3,"rate":2.50,"bad":0.0}"#
        );
    }
}
