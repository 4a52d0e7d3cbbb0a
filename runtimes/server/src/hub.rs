//! What all sessions share: the chat, behind one mutex that a session takes
//! only to decide the chat operation at hand and to take its room's turn
//! (the fan-out, and the members' outboxes, are in [`crate::fanout`]).

use std::sync::{Mutex, MutexGuard, PoisonError};

use async_channel::Sender;

use tincan_chat::{Appended, Chat, ChatConfig, ClientId, Now, Output, Presence};

use crate::broker::Link;
use crate::store::Writer;

/// State shared by all sessions: the chat, and what the server as a whole
/// is doing (draining, stopping), with where history and events go.
#[derive(Debug)]
pub struct Hub {
    pub(crate) chat: Chat,
    /// Shutdown has begun: no chat input or join is taken any more, and
    /// leaving is no longer announced (the whole room is going).
    pub(crate) stopping: bool,
    /// SIGTERM arrived: `/readyz` answers 503 and new upgrades are refused,
    /// while the clients there chat on until the drain grace ends.
    pub(crate) draining: bool,
    /// `--data-dir`: where appended history entries go.
    pub(crate) store: Option<Writer>,
    /// `--redis`: where events for the other nodes go.
    pub(crate) broker: Option<std::sync::Arc<Link>>,
    /// Rung when joins and leaves start to wait to be announced (see
    /// [`ChatConfig::presence_delay`]), for the task that announces them.
    pub(crate) presence_bell: Option<Sender<()>>,
    /// The bell was rung and the task has not yet found nothing waiting.
    pub(crate) presence_rung: bool,
}

impl Hub {
    /// An empty hub for a chat with these limits.
    pub fn new(config: ChatConfig) -> Self {
        Self {
            chat: Chat::new(config),
            stopping: false,
            draining: false,
            store: None,
            broker: None,
            presence_bell: None,
            presence_rung: false,
        }
    }

    /// Wakes the task that announces joins and leaves if some now wait and
    /// it was not told yet: called after each chat operation. (Later ones
    /// are due no sooner, so the task, asleep until the first, need not be
    /// woken for them.)
    pub(crate) fn ring_presence(&mut self) {
        if self.presence_rung || self.chat.poll_timeout().is_none() {
            return;
        }
        if let Some(bell) = &self.presence_bell {
            self.presence_rung = true;
            // Full: rung already.
            let _ = bell.try_send(());
        }
    }

    /// How many clients are in the chat.
    pub fn len(&self) -> usize {
        self.chat.len()
    }

    /// Whether the chat is empty.
    pub fn is_empty(&self) -> bool {
        self.chat.is_empty()
    }

    /// Shutdown begins: from now on no chat input is taken (see
    /// [`crate::serve`] for how every message taken before reaches its
    /// whole room).
    pub fn stop(&mut self) {
        self.stopping = true;
    }

    /// Whether shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        self.stopping
    }

    /// The drain begins (SIGTERM with a drain grace): see
    /// [`Hub::readiness`].
    pub fn drain(&mut self) {
        self.draining = true;
    }

    /// Whether an upgrade is taken (else 503 with `Retry-After`): not while
    /// draining or stopping. A lost broker does not refuse one: the node's
    /// rooms work locally, and only `/readyz` ([`Hub::readiness`]) steers
    /// new clients elsewhere.
    pub fn admission(&self) -> Result<(), NotReady> {
        match self.readiness() {
            Err(NotReady::BrokerLost) => Ok(()),
            other => other,
        }
    }

    /// What `/readyz` answers (200 or 503): [`Hub::admission`], and with
    /// `--redis` whether Redis answers.
    pub fn readiness(&self) -> Result<(), NotReady> {
        if self.stopping {
            Err(NotReady::Stopping)
        } else if self.draining {
            Err(NotReady::Draining)
        } else if self.broker.as_ref().is_some_and(|b| !b.is_connected()) {
            Err(NotReady::BrokerLost)
        } else {
            Ok(())
        }
    }

    /// Hands what a local client's chat output means beyond this process
    /// to the other nodes (`--redis`) and to the store (`--data-dir`).
    pub(crate) fn share(
        &self,
        appended: Option<Appended>,
        presence: Option<&(ClientId, Presence)>,
    ) {
        if let Some(broker) = &self.broker {
            broker.publish(appended.as_ref(), presence);
        }
        if let (Some(store), Some(appended)) = (&self.store, appended) {
            store.record(appended);
        }
    }

    pub(crate) fn leave(&mut self, id: ClientId, now: Now) -> Output {
        let out = self.chat.leave(id, now);
        if self.stopping {
            // Everyone is leaving: "X left" would reach only those not yet
            // closed, and costs O(N^2) in a full room. The other nodes are
            // still told.
            return Output {
                presence: out.presence,
                ..Output::default()
            };
        }
        out
    }
}

/// Why the server does not take new clients now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    /// SIGTERM: the clients there get a 1001 close when the drain grace
    /// ends.
    #[error("draining: the server is shutting down")]
    Draining,
    /// The clients are being closed with 1001.
    #[error("the server is shutting down")]
    Stopping,
    /// `--redis`: Redis is lost; local members chat on, but a new client
    /// is better served by a node that reaches the others.
    #[error("Redis is unreachable: rooms are not shared now")]
    BrokerLost,
}

/// Locks the hub only for the chat operation at hand, never across I/O or a
/// whole batch of events. A panic elsewhere cannot leave the chat half-updated
/// (its methods do not panic midway), so a poisoned lock is still usable.
pub fn lock(hub: &Mutex<Hub>) -> MutexGuard<'_, Hub> {
    hub.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_until_a_drain_then_not_until_the_end() {
        let mut hub = Hub::new(ChatConfig::DEFAULT);
        assert_eq!(hub.readiness(), Ok(()));
        hub.drain();
        assert_eq!(hub.readiness(), Err(NotReady::Draining));
        assert!(!hub.is_stopping(), "a drain still takes chat input");
        hub.stop();
        assert_eq!(hub.readiness(), Err(NotReady::Stopping));
    }
}
