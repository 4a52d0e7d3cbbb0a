//! The target of a run: `ws://host:port/path`, `wss://host:port/path`, or
//! `tcp://host:port` for a raw TCP echo server (no handshake, no framing).

use std::net::{SocketAddr, ToSocketAddrs};

use crate::tls::TlsTarget;

/// How to talk to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// WebSocket over TCP.
    Ws,
    /// WebSocket over TLS.
    Wss,
    /// Raw TCP: bytes out, the same bytes back.
    Tcp,
}

/// A parsed target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// WebSocket or raw TCP.
    pub scheme: Scheme,
    /// `host:port`, as the `Host` header says it.
    pub host: String,
    /// The request path (always `/` for TCP).
    pub path: String,
    /// Where to connect.
    pub addr: SocketAddr,
    /// For `wss://`: the TLS configuration, set once the command line's
    /// `--ca` is read ([`parse`] leaves it `None`).
    pub tls: Option<TlsTarget>,
    /// Offer permessage-deflate (RFC 7692), from the command line's
    /// `--deflate` ([`parse`] leaves it off).
    pub deflate: bool,
}

impl Target {
    /// The host without the port (an IPv6 address keeps its brackets).
    pub fn hostname(&self) -> &str {
        match self.host.rsplit_once(':') {
            Some((name, port)) if !port.contains(']') => name,
            _ => &self.host,
        }
    }
}

/// Parses `ws[s]://host[:port][/path]` or `tcp://host:port` and resolves
/// the host.
pub fn parse(url: &str) -> Result<Target, String> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("ws://") {
        (Scheme::Ws, rest)
    } else if let Some(rest) = url.strip_prefix("wss://") {
        (Scheme::Wss, rest)
    } else if let Some(rest) = url.strip_prefix("tcp://") {
        (Scheme::Tcp, rest)
    } else {
        return Err(format!(
            "'{url}': expected ws://host:port/path, wss://host:port/path or tcp://host:port"
        ));
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_owned()),
        None => (rest, "/".to_owned()),
    };
    if scheme == Scheme::Tcp && path != "/" {
        return Err(format!("'{url}': tcp:// takes no path"));
    }
    if authority.is_empty() {
        return Err(format!("'{url}': no host"));
    }
    let with_port = match (scheme, authority.rsplit_once(':')) {
        (_, Some((_, port))) if !port.contains(']') => {
            port.parse::<u16>()
                .map_err(|_| format!("'{url}': invalid port '{port}'"))?;
            authority.to_owned()
        }
        (Scheme::Ws, _) => format!("{authority}:80"),
        (Scheme::Wss, _) => format!("{authority}:443"),
        (Scheme::Tcp, _) => return Err(format!("'{url}': tcp:// needs a port")),
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| format!("'{url}': cannot resolve '{with_port}': {e}"))?
        .next()
        .ok_or_else(|| format!("'{url}': '{with_port}' has no address"))?;
    Ok(Target {
        scheme,
        host: authority.to_owned(),
        path,
        addr,
        tls: None,
        deflate: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_and_tcp_urls() {
        let t = parse("ws://127.0.0.1:8080/rust").expect("valid");
        assert_eq!(
            (t.scheme, t.host.as_str(), t.path.as_str()),
            (Scheme::Ws, "127.0.0.1:8080", "/rust")
        );
        assert_eq!(t.addr, "127.0.0.1:8080".parse().expect("addr"));
        let t = parse("ws://127.0.0.1:9").expect("valid");
        assert_eq!(t.path, "/");
        let t = parse("ws://127.0.0.1/x").expect("default port");
        assert_eq!(t.addr.port(), 80);
        let t = parse("tcp://127.0.0.1:7").expect("valid");
        assert_eq!(t.scheme, Scheme::Tcp);
        let t = parse("ws://localhost:8080?room=a").expect("query only");
        assert_eq!(
            (t.host.as_str(), t.path.as_str()),
            ("localhost:8080", "/?room=a")
        );
        let t = parse("ws://[::1]:9/x").expect("IPv6");
        assert_eq!((t.host.as_str(), t.addr.port()), ("[::1]:9", 9));
        assert_eq!(t.hostname(), "[::1]");
        let t = parse("wss://127.0.0.1/x").expect("wss");
        assert_eq!((t.scheme, t.addr.port()), (Scheme::Wss, 443));
        assert_eq!(t.hostname(), "127.0.0.1");
        let t = parse("wss://localhost:8443").expect("wss with a port");
        assert_eq!((t.hostname(), t.addr.port()), ("localhost", 8443));
    }

    #[test]
    fn bad_urls_say_why() {
        for (url, why) in [
            ("http://x:1/", "expected ws://"),
            ("ws://:1/", "cannot resolve"),
            ("ws:///", "no host"),
            ("ws://127.0.0.1:99999/", "invalid port"),
            ("tcp://127.0.0.1", "needs a port"),
            ("tcp://127.0.0.1:7/x", "no path"),
            ("ws://127.0.0.1:x/", "invalid port"),
        ] {
            let error = parse(url).expect_err(url);
            assert!(error.contains(why), "{url}: {error}");
        }
    }
}
