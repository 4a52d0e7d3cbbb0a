//! The two ends of a WebSocket connection (§4, §5.1): the client masks every
//! frame it sends and the server none, and each side checks the other.

/// Which end of the connection this is; it decides masking (§5.1) and the
/// handshake side (§4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Accepts connections; sends unmasked frames; expects masked ones.
    Server,
    /// Opens connections; masks every frame it sends.
    Client,
}
