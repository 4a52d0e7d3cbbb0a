//! The chat: who is connected and who receives what. Sans-io like the rest:
//! it decides recipients and encodes each message once; the runtime moves the
//! bytes.

use std::collections::BTreeSet;

use crate::message::PreparedMessage;

/// Identifies one client of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(pub u64);

/// One message for a set of clients, encoded once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broadcast {
    /// Who receives it, in join order.
    pub recipients: Vec<ClientId>,
    /// The encoded frame, shared by all recipients.
    pub message: PreparedMessage,
}

/// The chat's membership.
#[derive(Debug, Default)]
pub struct Chat {
    members: BTreeSet<ClientId>,
}

impl Chat {
    /// An empty chat.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a client.
    pub fn join(&mut self, id: ClientId) {
        self.members.insert(id);
    }

    /// Removes a client; returns whether it was a member.
    pub fn leave(&mut self, id: ClientId) -> bool {
        self.members.remove(&id)
    }

    /// How many clients are connected.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether no one is connected.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// A text message from `from`: every connected client gets it, the sender
    /// included.
    pub fn say(&self, from: ClientId, text: &str) -> Option<Broadcast> {
        self.members.contains(&from).then(|| Broadcast {
            recipients: self.members.iter().copied().collect(),
            message: PreparedMessage::text(text),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everyone_connected_gets_every_message() {
        let mut chat = Chat::new();
        for id in 1..=3 {
            chat.join(ClientId(id));
        }
        let b = chat.say(ClientId(2), "hi").expect("member");
        assert_eq!(b.recipients, [ClientId(1), ClientId(2), ClientId(3)]);
        assert_eq!(b.message.frame(), b"\x81\x02hi");
        assert!(chat.leave(ClientId(1)));
        assert!(!chat.leave(ClientId(1)));
        assert_eq!(
            chat.say(ClientId(3), "x").expect("member").recipients.len(),
            2
        );
        assert_eq!(chat.say(ClientId(1), "gone"), None);
    }
}
