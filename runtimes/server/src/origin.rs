//! Which web pages may open a WebSocket to this server (RFC 6455 §10.2):
//! browsers send the page's origin, and a server that accepted every origin
//! would let any site a user visits read and post to their local tincan.
//!
//! Allowed by default: a request with no `Origin` (not a browser: the
//! header is the browser's statement, §4.1 item 8), and the server's own
//! origin (its authority equals the `Host` header, as for the page that
//! tincan serves itself). `--allowed-origin` adds origins; `*` allows all.

use std::sync::Arc;

/// The origins a server accepts besides its own. Cheap to clone: each
/// session holds one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginPolicy {
    /// `None` when empty, so that the default needs no allocation.
    allowed: Option<Arc<[String]>>,
}

impl OriginPolicy {
    /// Only the server's own origin (and clients that send none).
    pub const EMPTY: Self = Self { allowed: None };

    /// A policy that accepts these origins (`https://chat.example.com`, or
    /// `*` for any) besides the server's own.
    pub fn new(allowed: impl IntoIterator<Item = String>) -> Self {
        let allowed: Arc<[String]> = allowed
            .into_iter()
            .map(|origin| origin.trim_end_matches('/').to_ascii_lowercase())
            .collect();
        Self {
            allowed: (!allowed.is_empty()).then_some(allowed),
        }
    }

    /// The origins given, as normalised.
    pub fn allowed(&self) -> &[String] {
        self.allowed.as_deref().unwrap_or_default()
    }

    /// Whether an upgrade with this `Origin` (if any) and `Host` may proceed.
    pub fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin.map(str::trim) else {
            return true;
        };
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        if self.allowed().iter().any(|a| a == "*" || *a == origin) {
            return true;
        }
        // The server's own page: scheme://<the Host header>.
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_origin_and_the_own_origin_are_allowed_by_default() {
        let policy = OriginPolicy::default();
        let host = Some("localhost:8080");
        assert!(policy.allows(None, host), "not a browser");
        assert!(policy.allows(Some("http://localhost:8080"), host));
        assert!(policy.allows(Some("https://LOCALHOST:8080/"), host));
        for other in [
            "http://evil.example",
            "http://localhost:8081",
            "http://localhost:8080.evil.example",
            "null",
            "file://",
            "localhost:8080",
        ] {
            assert!(!policy.allows(Some(other), host), "{other}");
        }
        assert!(!policy.allows(Some("http://localhost:8080"), None));
    }

    #[test]
    fn listed_origins_and_the_wildcard() {
        let policy = OriginPolicy::new(["https://Chat.Example.com/".to_owned()]);
        assert!(policy.allows(Some("https://chat.example.com"), Some("internal:9000")));
        assert!(!policy.allows(Some("http://chat.example.com"), Some("internal:9000")));
        let any = OriginPolicy::new(["*".to_owned()]);
        assert!(any.allows(Some("http://evil.example"), Some("localhost")));
    }
}
