//! The opening handshake (RFC 6455 §4): HTTP/1.1 upgrade requests and
//! responses, for both roles.
//!
//! The server side reads a request head that may arrive in any number of
//! pieces ([`HeadReader`]), checks it ([`Request::parse`]) and answers with
//! [`accept_response`] or [`error_response`]. The client side builds a request
//! ([`ClientRequest`]) and checks the server's answer ([`ClientRequest::check_response`]).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use sha1::{Digest, Sha1};

/// The GUID that §1.3 appends to the key before hashing.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only protocol version this crate speaks (§4.1, §4.4).
pub const VERSION: &str = "13";

/// Default cap on the size of a request or response head.
pub const DEFAULT_MAX_HEAD_SIZE: usize = 8 * 1024;

/// Computes `Sec-WebSocket-Accept` from `Sec-WebSocket-Key` (§1.3, §4.2.2):
/// Base64(SHA-1(key + GUID)).
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(GUID.as_bytes());
    BASE64.encode(sha.finalize())
}

/// Why an opening handshake failed. On the server side each variant maps to
/// one HTTP status ([`HandshakeError::status`]); its message is the one-line
/// reason sent with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The head grew past the configured cap before it ended.
    #[error("request header fields are larger than {limit} bytes")]
    HeadTooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// The request line is not `METHOD SP /path SP HTTP/x.y`.
    #[error("malformed request line")]
    MalformedRequestLine,
    /// A header line is not `name: value` in visible ASCII or UTF-8.
    #[error("malformed header line")]
    MalformedHeader,
    /// §4.1: "The method of the request MUST be GET".
    #[error("a WebSocket upgrade must use GET")]
    MethodNotAllowed,
    /// §4.1: "the HTTP version MUST be at least 1.1".
    #[error("a WebSocket upgrade needs HTTP/1.1 or later")]
    HttpVersion,
    /// §4.1: the request must contain a Host header.
    #[error("missing Host header")]
    MissingHost,
    /// §4.2.1: `Upgrade` must include the token `websocket`.
    #[error("missing 'Upgrade: websocket' header")]
    MissingUpgrade,
    /// §4.2.1: `Connection` must include the token `Upgrade`.
    #[error("missing 'Connection: Upgrade' header")]
    MissingConnectionUpgrade,
    /// §4.2.2: a version other than 13; answered with 426 and
    /// `Sec-WebSocket-Version: 13`.
    #[error("unsupported Sec-WebSocket-Version (only 13 is supported)")]
    UnsupportedVersion,
    /// §4.2.1: no `Sec-WebSocket-Key`.
    #[error("missing Sec-WebSocket-Key header")]
    MissingKey,
    /// §4.2.1: the key must be the Base64 encoding of 16 bytes.
    #[error("Sec-WebSocket-Key is not the Base64 encoding of 16 bytes")]
    InvalidKey,
    /// A header that may appear once appeared more than once.
    #[error("duplicate {0} header")]
    DuplicateHeader(&'static str),
    /// Client side: the status line is not `HTTP/1.1 NNN reason`.
    #[error("malformed status line")]
    MalformedStatusLine,
    /// Client side: the server answered with a status other than 101.
    #[error("server answered {0} instead of 101 Switching Protocols")]
    UnexpectedStatus(u16),
    /// Client side: `Sec-WebSocket-Accept` is missing or wrong (§4.1).
    #[error("Sec-WebSocket-Accept does not match the key")]
    AcceptMismatch,
    /// Client side: a subprotocol the client did not offer (§4.1).
    #[error("server selected a subprotocol that was not offered")]
    UnexpectedProtocol,
    /// Client side: an extension the client did not offer, or parameters it
    /// cannot accept (§4.1, RFC 7692 §7.1).
    #[error("server selected an extension or parameters that were not offered")]
    UnexpectedExtension,
}

impl HandshakeError {
    /// The variant's name, e.g. `MissingKey`, for programs that report errors
    /// by kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::HeadTooLarge { .. } => "HeadTooLarge",
            Self::MalformedRequestLine => "MalformedRequestLine",
            Self::MalformedHeader => "MalformedHeader",
            Self::MethodNotAllowed => "MethodNotAllowed",
            Self::HttpVersion => "HttpVersion",
            Self::MissingHost => "MissingHost",
            Self::MissingUpgrade => "MissingUpgrade",
            Self::MissingConnectionUpgrade => "MissingConnectionUpgrade",
            Self::UnsupportedVersion => "UnsupportedVersion",
            Self::MissingKey => "MissingKey",
            Self::InvalidKey => "InvalidKey",
            Self::DuplicateHeader(_) => "DuplicateHeader",
            Self::MalformedStatusLine => "MalformedStatusLine",
            Self::UnexpectedStatus(_) => "UnexpectedStatus",
            Self::AcceptMismatch => "AcceptMismatch",
            Self::UnexpectedProtocol => "UnexpectedProtocol",
            Self::UnexpectedExtension => "UnexpectedExtension",
        }
    }

    /// The HTTP status a server answers this error with.
    pub fn status(&self) -> u16 {
        match self {
            Self::HeadTooLarge { .. } => 431,
            Self::MethodNotAllowed => 405,
            Self::UnsupportedVersion => 426,
            _ => 400,
        }
    }
}

/// Collects an HTTP head (request or response) from pieces, up to a cap.
#[derive(Debug, Clone)]
pub struct HeadReader {
    buf: Vec<u8>,
    limit: usize,
}

impl HeadReader {
    /// A reader that fails once the head grows past `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            limit,
        }
    }

    /// Adds `bytes`. Once the head is complete, returns it and the number of
    /// bytes of `bytes` it used; the rest belongs to the connection.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<(Vec<u8>, usize)>, HandshakeError> {
        let searched = self.buf.len().saturating_sub(3);
        let room = self.limit.saturating_add(1).saturating_sub(self.buf.len());
        let before = self.buf.len();
        self.buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
        match find(&self.buf[searched..], b"\r\n\r\n") {
            Some(at) => {
                let end = searched + at + 4;
                self.buf.truncate(end);
                Ok(Some((std::mem::take(&mut self.buf), end - before)))
            }
            None if self.buf.len() > self.limit => {
                Err(HandshakeError::HeadTooLarge { limit: self.limit })
            }
            None => Ok(None),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A parsed HTTP request, as the application sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target, e.g. `/rust?x=1`.
    pub target: String,
    /// Every header, in order, with the names as sent.
    pub headers: Vec<(String, String)>,
    /// Whether this is a valid WebSocket upgrade (otherwise a plain HTTP
    /// request, which the application answers itself).
    pub is_upgrade: bool,
    /// The subprotocols the client offered, in its order of preference (§4.1).
    pub protocols: Vec<String>,
    key: Option<String>,
}

impl Request {
    /// Parses and checks a request head (§4.2.1).
    ///
    /// A request without `Upgrade`, `Sec-WebSocket-Key` or
    /// `Sec-WebSocket-Version` is a plain HTTP request: it parses with
    /// `is_upgrade == false`. Anything that tries to upgrade must satisfy all
    /// of §4.2.1 or gets the specific error.
    pub fn parse(head: &[u8]) -> Result<Self, HandshakeError> {
        let (start, headers) = split_head(head).ok_or(HandshakeError::MalformedRequestLine)?;
        let mut parts = start.split(' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(HandshakeError::MalformedRequestLine);
        };
        if !is_token(method) || target.bytes().any(|b| b <= b' ') {
            return Err(HandshakeError::MalformedRequestLine);
        }
        let target = origin_form(target).ok_or(HandshakeError::MalformedRequestLine)?;
        let (major, minor) = http_version(version).ok_or(HandshakeError::MalformedRequestLine)?;
        let headers = parse_headers(headers)?;
        let mut request = Self {
            method: method.to_owned(),
            target,
            headers,
            is_upgrade: false,
            protocols: Vec::new(),
            key: None,
        };
        let wants_upgrade = request.header("Upgrade").is_some()
            || request.header("Sec-WebSocket-Key").is_some()
            || request.header("Sec-WebSocket-Version").is_some();
        if !wants_upgrade {
            return Ok(request);
        }
        if method != "GET" {
            return Err(HandshakeError::MethodNotAllowed);
        }
        if (major, minor) < (1, 1) {
            return Err(HandshakeError::HttpVersion);
        }
        request.single("Host")?.ok_or(HandshakeError::MissingHost)?;
        if !request.has_token("Upgrade", "websocket") {
            return Err(HandshakeError::MissingUpgrade);
        }
        if !request.has_token("Connection", "upgrade") {
            return Err(HandshakeError::MissingConnectionUpgrade);
        }
        if request.single("Sec-WebSocket-Version")? != Some(VERSION) {
            return Err(HandshakeError::UnsupportedVersion);
        }
        let key = request
            .single("Sec-WebSocket-Key")?
            .ok_or(HandshakeError::MissingKey)?;
        match BASE64.decode(key) {
            Ok(bytes) if bytes.len() == 16 => {}
            _ => return Err(HandshakeError::InvalidKey),
        }
        request.key = Some(key.to_owned());
        request.protocols = request
            .tokens("Sec-WebSocket-Protocol")
            .map(str::to_owned)
            .collect();
        request.is_upgrade = true;
        Ok(request)
    }

    /// The path of the target, without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("/")
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The values of every `Sec-WebSocket-Extensions` header, in order
    /// (§9.1: several fields make one list).
    pub fn extensions(&self) -> impl Iterator<Item = &str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("Sec-WebSocket-Extensions"))
            .map(|(_, v)| v.as_str())
    }

    /// The `Host` header.
    pub fn host(&self) -> Option<&str> {
        self.header("Host")
    }

    /// The `Origin` header, which browsers send (§4.2.1, §10.2).
    pub fn origin(&self) -> Option<&str> {
        self.header("Origin")
    }

    /// The `Sec-WebSocket-Key`, on a valid upgrade.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    fn single(&self, name: &'static str) -> Result<Option<&str>, HandshakeError> {
        let mut values = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name));
        let first = values.next().map(|(_, v)| v.as_str());
        match values.next() {
            Some(_) => Err(HandshakeError::DuplicateHeader(name)),
            None => Ok(first),
        }
    }

    fn tokens<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        tokens(&self.headers, name)
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name).any(|t| t.eq_ignore_ascii_case(token))
    }
}

/// The 101 response that accepts `request` (§4.2.2), with an optional
/// subprotocol chosen from those it offered.
pub fn accept_response(key: &str, protocol: Option<&str>) -> Vec<u8> {
    accept_response_with_extensions(key, protocol, None)
}

/// [`accept_response`] with a `Sec-WebSocket-Extensions` value (§9.1), such
/// as [`DeflateParams::response`](crate::deflate::DeflateParams::response).
pub fn accept_response_with_extensions(
    key: &str,
    protocol: Option<&str>,
    extensions: Option<&str>,
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n",
        accept_key(key)
    );
    if let Some(protocol) = protocol {
        out.push_str(&format!("Sec-WebSocket-Protocol: {protocol}\r\n"));
    }
    if let Some(extensions) = extensions {
        out.push_str(&format!("Sec-WebSocket-Extensions: {extensions}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// A complete HTTP response that ends the connection: a status, a content type
/// and a body. A 405 names the one method served (RFC 9110 §15.5.6 requires
/// `Allow`).
pub fn http_response(status: u16, content_type: &str, body: &[u8], extra_headers: &str) -> Vec<u8> {
    let allow = if status == 405 { "Allow: GET\r\n" } else { "" };
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n{allow}{extra_headers}\r\n",
        reason_phrase(status),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// The response to a failed handshake: the status of `error` and its
/// one-line reason as a plain-text body.
pub fn error_response(error: &HandshakeError) -> Vec<u8> {
    let extra = match error {
        HandshakeError::UnsupportedVersion => "Sec-WebSocket-Version: 13\r\n",
        _ => "",
    };
    let body = format!("{error}\n");
    http_response(
        error.status(),
        "text/plain; charset=utf-8",
        body.as_bytes(),
        extra,
    )
}

/// The reason phrase for the statuses this crate sends.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// A client's opening handshake (§4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRequest {
    /// The `Host` header, e.g. `localhost:8080`.
    pub host: String,
    /// The request target, e.g. `/chat`.
    pub path: String,
    /// `Sec-WebSocket-Key`: Base64 of 16 bytes that should be random (§4.1).
    pub key: String,
    /// Subprotocols to offer, most preferred first.
    pub protocols: Vec<String>,
    /// An `Origin` header, as a browser would send.
    pub origin: Option<String>,
    /// A `Sec-WebSocket-Extensions` offer (§9.1), such as
    /// [`deflate::CLIENT_OFFER`](crate::deflate::CLIENT_OFFER). A
    /// [`Connection`](crate::Connection) configured for deflate sets it.
    pub extensions: Option<String>,
}

/// What a server's valid 101 response agreed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The subprotocol it selected.
    pub protocol: Option<String>,
    /// Its `Sec-WebSocket-Extensions` values, joined with commas; only when
    /// extensions were offered (an unasked answer fails the handshake). The
    /// extension's own rules check them (RFC 7692 §7.1).
    pub extensions: Option<String>,
}

impl ClientRequest {
    /// A request for `path` on `host` with a key made from `nonce`, which the
    /// caller takes from a random source.
    pub fn new(host: &str, path: &str, nonce: [u8; 16]) -> Self {
        Self {
            host: host.to_owned(),
            path: path.to_owned(),
            key: BASE64.encode(nonce),
            protocols: Vec::new(),
            origin: None,
            extensions: None,
        }
    }

    /// Whether every field can go into the request as it is (§4.1): a
    /// request target and host of visible ASCII, a key that is the Base64
    /// of 16 bytes, unique subprotocols that are tokens, and an origin and
    /// extension offer without control characters. Nothing a caller passes
    /// can add a header field or split the request.
    pub fn is_valid(&self) -> bool {
        let visible = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
        let value = |s: &str| {
            s.bytes()
                .all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
        };
        let key = BASE64.decode(&self.key).is_ok_and(|k| k.len() == 16);
        let protocols = self
            .protocols
            .iter()
            .enumerate()
            .all(|(i, p)| is_token(p) && !self.protocols[..i].contains(p));
        visible(&self.path)
            && visible(&self.host)
            && key
            && protocols
            && self.origin.as_deref().is_none_or(value)
            && self.extensions.as_deref().is_none_or(value)
    }

    /// The request head.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: {VERSION}\r\n",
            self.path, self.host, self.key
        );
        if !self.protocols.is_empty() {
            out.push_str(&format!(
                "Sec-WebSocket-Protocol: {}\r\n",
                self.protocols.join(", ")
            ));
        }
        if let Some(origin) = &self.origin {
            out.push_str(&format!("Origin: {origin}\r\n"));
        }
        if let Some(extensions) = &self.extensions {
            out.push_str(&format!("Sec-WebSocket-Extensions: {extensions}\r\n"));
        }
        out.push_str("\r\n");
        out.into_bytes()
    }

    /// Checks the server's response head (§4.1, "the client MUST validate the
    /// server's response"); returns the subprotocol it selected.
    pub fn check_response(&self, head: &[u8]) -> Result<Option<String>, HandshakeError> {
        self.check_response_accepted(head)
            .map(|accepted| accepted.protocol)
    }

    /// [`ClientRequest::check_response`], with the extension it agreed to.
    pub fn check_response_accepted(&self, head: &[u8]) -> Result<Accepted, HandshakeError> {
        let (start, headers) = split_head(head).ok_or(HandshakeError::MalformedStatusLine)?;
        let mut parts = start.splitn(3, ' ');
        let (Some(version), Some(status)) = (parts.next(), parts.next()) else {
            return Err(HandshakeError::MalformedStatusLine);
        };
        if http_version(version).is_none() || status.len() != 3 {
            return Err(HandshakeError::MalformedStatusLine);
        }
        let status: u16 = status
            .parse()
            .map_err(|_| HandshakeError::MalformedStatusLine)?;
        if status != 101 {
            return Err(HandshakeError::UnexpectedStatus(status));
        }
        let headers = parse_headers(headers)?;
        if !tokens(&headers, "Upgrade").any(|t| t.eq_ignore_ascii_case("websocket")) {
            return Err(HandshakeError::MissingUpgrade);
        }
        if !tokens(&headers, "Connection").any(|t| t.eq_ignore_ascii_case("upgrade")) {
            return Err(HandshakeError::MissingConnectionUpgrade);
        }
        if header(&headers, "Sec-WebSocket-Accept") != Some(accept_key(&self.key).as_str()) {
            return Err(HandshakeError::AcceptMismatch);
        }
        let values: Vec<&str> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("Sec-WebSocket-Extensions"))
            .map(|(_, v)| v.as_str())
            .collect();
        let extensions = match (values.is_empty(), &self.extensions) {
            (true, _) => None,
            (false, None) => return Err(HandshakeError::UnexpectedExtension),
            (false, Some(_)) => Some(values.join(", ")),
        };
        let protocol = match header(&headers, "Sec-WebSocket-Protocol") {
            None => None,
            Some(p) if self.protocols.iter().any(|o| o == p) => Some(p.to_owned()),
            Some(_) => return Err(HandshakeError::UnexpectedProtocol),
        };
        Ok(Accepted {
            protocol,
            extensions,
        })
    }
}

/// Splits a head into its start line and header block, checking that it is
/// UTF-8 and ends with an empty line.
fn split_head(head: &[u8]) -> Option<(&str, &str)> {
    let head = std::str::from_utf8(head).ok()?;
    let head = head.strip_suffix("\r\n\r\n")?;
    Some(head.split_once("\r\n").unwrap_or((head, "")))
}

fn http_version(version: &str) -> Option<(u8, u8)> {
    let digits = version.strip_prefix("HTTP/")?.as_bytes();
    match digits {
        [major @ b'0'..=b'9', b'.', minor @ b'0'..=b'9'] => Some((major - b'0', minor - b'0')),
        _ => None,
    }
}

fn parse_headers(block: &str) -> Result<Vec<(String, String)>, HandshakeError> {
    if block.is_empty() {
        return Ok(Vec::new());
    }
    block
        .split("\r\n")
        .map(|line| {
            let (name, value) = line
                .split_once(':')
                .ok_or(HandshakeError::MalformedHeader)?;
            let value = value.trim_matches([' ', '\t']);
            // Obsolete line folding (a line starting with whitespace) is not a
            // token, so it fails here too (RFC 7230 §3.2.4).
            if !is_token(name) || value.chars().any(|c| c.is_control() && c != '\t') {
                return Err(HandshakeError::MalformedHeader);
            }
            Ok((name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// The request target as `/path?query`. §4.2.1 (1) allows "an absolute
/// HTTP/HTTPS URI containing the /resource name/" as well as the plain path.
fn origin_form(target: &str) -> Option<String> {
    if target.starts_with('/') {
        return Some(target.to_owned());
    }
    let scheme = ["http://", "https://"].into_iter().find(|scheme| {
        target
            .get(..scheme.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
    })?;
    let rest = &target[scheme.len()..];
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    if end == 0 {
        return None; // no authority
    }
    match &rest[end..] {
        tail if tail.starts_with('/') => Some(tail.to_owned()),
        tail => Some(format!("/{tail}")),
    }
}

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The comma-separated tokens of every header called `name`.
fn tokens<'a>(
    headers: &'a [(String, String)],
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(','))
        .map(|t| t.trim_matches([' ', '\t']))
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client handshake of §1.3.
    const RFC_REQUEST: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\n\
        Upgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    fn with(headers: &str) -> String {
        format!("GET / HTTP/1.1\r\nHost: h\r\n{headers}\r\n")
    }

    const GOOD: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

    #[test]
    fn rfc_1_3_accept_key() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn rfc_1_3_request() {
        let request = Request::parse(RFC_REQUEST.as_bytes()).expect("valid");
        assert!(request.is_upgrade);
        assert_eq!(request.path(), "/chat");
        assert_eq!(request.host(), Some("server.example.com"));
        assert_eq!(request.origin(), Some("http://example.com"));
        assert_eq!(request.protocols, ["chat", "superchat"]);
        let response = accept_response(request.key().expect("key"), Some("chat"));
        assert_eq!(
            String::from_utf8(response).expect("ascii"),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
             Sec-WebSocket-Protocol: chat\r\n\r\n"
        );
    }

    #[test]
    fn tokens_are_case_insensitive_and_may_sit_in_lists() {
        let request = with(
            "upgrade: WebSocket\r\nconnection: keep-alive, UPGRADE\r\n\
             sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n",
        );
        assert!(
            Request::parse(request.as_bytes())
                .expect("valid")
                .is_upgrade
        );
    }

    #[test]
    fn each_missing_piece_has_its_own_error() {
        let cases: [(&str, HandshakeError); 7] = [
            ("Upgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n", HandshakeError::MissingUpgrade),
            ("Upgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n", HandshakeError::MissingConnectionUpgrade),
            ("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n", HandshakeError::UnsupportedVersion),
            ("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", HandshakeError::UnsupportedVersion),
            ("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n", HandshakeError::MissingKey),
            ("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n", HandshakeError::InvalidKey),
            ("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n", HandshakeError::DuplicateHeader("Sec-WebSocket-Key")),
        ];
        for (headers, expected) in cases {
            assert_eq!(
                Request::parse(with(headers).as_bytes()),
                Err(expected.clone())
            );
        }
        let no_host = format!("GET / HTTP/1.1\r\n{GOOD}\r\n");
        assert_eq!(
            Request::parse(no_host.as_bytes()),
            Err(HandshakeError::MissingHost)
        );
        let post = format!("POST / HTTP/1.1\r\nHost: h\r\n{GOOD}\r\n");
        assert_eq!(
            Request::parse(post.as_bytes()),
            Err(HandshakeError::MethodNotAllowed)
        );
        let old = format!("GET / HTTP/1.0\r\nHost: h\r\n{GOOD}\r\n");
        assert_eq!(
            Request::parse(old.as_bytes()),
            Err(HandshakeError::HttpVersion)
        );
        assert_eq!(HandshakeError::UnsupportedVersion.status(), 426);
        assert_eq!(HandshakeError::MethodNotAllowed.status(), 405);
        assert_eq!(HandshakeError::MissingKey.status(), 400);
    }

    #[test]
    fn absolute_uri_targets_name_the_resource() {
        // §4.2.1 (1): "or an absolute HTTP/HTTPS URI containing the
        // /resource name/".
        for (target, path, resource) in [
            ("http://server.example.com/chat", "/chat", "/chat"),
            (
                "HTTPS://server.example.com:443/chat?x=1",
                "/chat",
                "/chat?x=1",
            ),
            ("http://server.example.com", "/", "/"),
            ("http://server.example.com?x=1", "/", "/?x=1"),
        ] {
            let head = RFC_REQUEST.replacen("/chat", target, 1);
            let request = Request::parse(head.as_bytes()).expect(target);
            assert!(request.is_upgrade, "{target}");
            assert_eq!(request.path(), path, "{target}");
            assert_eq!(request.target, resource, "{target}");
        }
    }

    #[test]
    fn malformed_heads() {
        for head in [
            "GET\r\n\r\n",
            "GET / HTTP/1.1 extra\r\n\r\n",
            "GET nopath HTTP/1.1\r\n\r\n",
            "GET http:///chat HTTP/1.1\r\n\r\n",
            "GET ftp://h/chat HTTP/1.1\r\n\r\n",
            "GET / HTTX/1.1\r\n\r\n",
        ] {
            assert_eq!(
                Request::parse(head.as_bytes()),
                Err(HandshakeError::MalformedRequestLine)
            );
        }
        for head in [
            "GET / HTTP/1.1\r\nno colon\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        ] {
            assert_eq!(
                Request::parse(head.as_bytes()),
                Err(HandshakeError::MalformedHeader)
            );
        }
    }

    #[test]
    fn plain_http_requests_are_not_upgrades() {
        let request = Request::parse(b"GET /index.html?x HTTP/1.0\r\nAccept: */*\r\n\r\n")
            .expect("plain request");
        assert!(!request.is_upgrade);
        assert_eq!(request.path(), "/index.html");
    }

    #[test]
    fn error_responses_carry_status_and_reason() {
        let response =
            String::from_utf8(error_response(&HandshakeError::UnsupportedVersion)).expect("ascii");
        assert!(
            response.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
            "{response}"
        );
        assert!(response.contains("\r\nSec-WebSocket-Version: 13\r\n"));
        assert!(response
            .ends_with("\r\n\r\nunsupported Sec-WebSocket-Version (only 13 is supported)\n"));

        let response =
            String::from_utf8(error_response(&HandshakeError::MethodNotAllowed)).expect("ascii");
        assert!(
            response.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{response}"
        );
        assert!(response.contains("\r\nAllow: GET\r\n"), "{response}");
    }

    #[test]
    fn head_reader_handles_any_split_and_keeps_what_follows() {
        let mut bytes = RFC_REQUEST.as_bytes().to_vec();
        bytes.extend_from_slice(b"\x81\x80rest");
        for split in 0..bytes.len() {
            let mut reader = HeadReader::new(DEFAULT_MAX_HEAD_SIZE);
            let (head, used) = match reader.feed(&bytes[..split]).expect("fits") {
                Some((head, used)) => (head, used),
                None => {
                    let (head, used) = reader.feed(&bytes[split..]).expect("fits").expect("done");
                    (head, split + used)
                }
            };
            assert_eq!(head, RFC_REQUEST.as_bytes(), "split {split}");
            assert_eq!(&bytes[used..], b"\x81\x80rest", "split {split}");
        }
    }

    #[test]
    fn head_reader_caps_the_size() {
        let mut reader = HeadReader::new(16);
        assert_eq!(reader.feed(b"GET / HTTP/1.1\r\n"), Ok(None));
        assert_eq!(
            reader.feed(b"X"),
            Err(HandshakeError::HeadTooLarge { limit: 16 })
        );
        let mut reader = HeadReader::new(18);
        assert!(reader
            .feed(b"GET / HTTP/1.1\r\n\r\n")
            .expect("fits")
            .is_some());
        assert_eq!(HandshakeError::HeadTooLarge { limit: 1 }.status(), 431);
    }

    #[test]
    fn client_side_round_trip() {
        let mut client = ClientRequest::new("localhost:8080", "/chat", *b"the sample nonce");
        client.protocols = vec!["tincan.v1".into()];
        assert_eq!(client.key, "dGhlIHNhbXBsZSBub25jZQ==");
        let request = Request::parse(&client.to_bytes()).expect("our request is valid");
        assert!(request.is_upgrade);
        assert_eq!(request.protocols, ["tincan.v1"]);
        let response = accept_response(request.key().expect("key"), Some("tincan.v1"));
        assert_eq!(
            client.check_response(&response),
            Ok(Some("tincan.v1".to_owned()))
        );

        let wrong = accept_response("AAAAAAAAAAAAAAAAAAAAAA==", None);
        assert_eq!(
            client.check_response(&wrong),
            Err(HandshakeError::AcceptMismatch)
        );
        let other = accept_response(&client.key, Some("other"));
        assert_eq!(
            client.check_response(&other),
            Err(HandshakeError::UnexpectedProtocol)
        );
        let refused = error_response(&HandshakeError::MissingKey);
        let head_end = find(&refused, b"\r\n\r\n").expect("head") + 4;
        assert_eq!(
            client.check_response(&refused[..head_end]),
            Err(HandshakeError::UnexpectedStatus(400))
        );
    }
}
