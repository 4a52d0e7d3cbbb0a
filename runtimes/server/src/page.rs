//! The browser chat page's files, embedded so that every runtime serves the
//! same page with nothing to install: `GET /` and `GET /<room>` give the page
//! (it joins the room of its own path), `/static/…` its assets.

use tincan_chat::room_for_path;

/// A file to serve: its content type and bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// The `Content-Type` header.
    pub content_type: &'static str,
    /// The body.
    pub body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";

/// Header fields on every plain HTTP response. The policy lets the page load
/// its own scripts, styles and wasm codec (`'wasm-unsafe-eval'` allows
/// compiling wasm, nothing else), connect back to its own origin (`'self'`
/// covers `ws:`/`wss:` to it), and be framed by no one (clickjacking).
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
         connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
];

const STATIC: &[(&str, &str, &[u8])] = &[
    (
        "/static/app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../web/page/app.js"),
    ),
    (
        "/static/style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../web/page/style.css"),
    ),
    // The wasm codec of the inspector panel, built from web/ and committed
    // (scripts/wasm-test.sh check-pkg fails CI when it is stale).
    (
        "/static/pkg/tincan_web.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../web/pkg/tincan_web.js"),
    ),
    (
        "/static/pkg/tincan_web_bg.wasm",
        "application/wasm",
        include_bytes!("../../../web/pkg/tincan_web_bg.wasm"),
    ),
];

/// The page for a request path, if there is one.
pub fn asset(path: &str) -> Option<Asset> {
    if room_for_path(path).is_ok() {
        return Some(Asset {
            content_type: HTML,
            body: include_bytes!("../../../web/page/index.html"),
        });
    }
    STATIC
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|&(_, content_type, body)| Asset { content_type, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_served_for_every_room_and_nothing_else() {
        for path in ["/", "/rust"] {
            let page = asset(path).expect("page");
            assert_eq!(page.content_type, HTML);
            assert!(page.body.starts_with(b"<!doctype html>"));
        }
        assert!(
            asset("/static/app.js").is_some_and(|a| a.content_type.starts_with("text/javascript"))
        );
        let wasm = asset("/static/pkg/tincan_web_bg.wasm").expect("the codec");
        assert_eq!(wasm.content_type, "application/wasm");
        assert!(wasm.body.starts_with(b"\0asm"));
        for missing in ["/a/b", "/static/nope.js", "/../Cargo.toml"] {
            assert_eq!(asset(missing), None, "{missing}");
        }
    }
}
