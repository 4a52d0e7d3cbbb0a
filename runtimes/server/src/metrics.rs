//! The server's Prometheus metrics, on `prometheus-client`: every counter and
//! gauge is an atomic, so counting a message, a read or a write is one
//! relaxed add, with no lock. Labelled families (refused handshakes by
//! status, closes by code, clients closed by reason) take a read lock, but
//! only once per connection event, never per message. The latency histogram
//! samples one chat message in [`SAMPLE_EVERY`].
//!
//! `GET /metrics` renders them in the text format ([`Metrics::render`]);
//! gauges that are a view of the hub (rooms, the largest room) are set just
//! before.

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tincan_core::CloseCode;

use crate::log::Log;

/// One chat message in this many is timed from its arrival to its last
/// write (see [`Sample`]).
pub const SAMPLE_EVERY: u64 = 64;

/// The content type of [`Metrics::render`]'s text (OpenMetrics, which
/// Prometheus scrapes as it does its own text format).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// Every metric the server keeps, and the registry that names them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Connections being served on the public port (in the handshake, open
    /// or closing).
    pub(crate) connections_open: Gauge,
    connections_accepted: Counter,
    websockets_open: Gauge,
    /// Idle WebSocket connections parked (see `serve/park.rs`).
    pub(crate) connections_parked: Gauge,
    /// Times the parking thread gave free memory back to the kernel.
    pub(crate) memory_given_back: Counter,
    handshakes_refused: Family<StatusLabel, Counter>,
    closes: Family<CodeLabel, Counter>,
    pub(crate) messages_in: Counter,
    pub(crate) deliveries_out: Counter,
    pub(crate) bytes_in: Counter,
    pub(crate) bytes_out: Counter,
    clients_closed: Family<ReasonLabel, Counter>,
    rooms: Gauge,
    largest_room: Gauge,
    latency: Histogram,
    redis_connected: Gauge,
    redis_reconnects: Counter,
    redis_dropped: Counter,
    history_dropped: Counter,
}

impl Metrics {
    /// The metrics of a server whose queued outbound bytes are counted by
    /// `queued_bytes` (the budget's own total) against `queued_limit`
    /// (0: no limit).
    pub fn new(queued_bytes: Gauge, queued_limit: usize) -> Self {
        let mut registry = Registry::with_prefix("tincan");
        let metrics = Self {
            connections_open: Gauge::default(),
            connections_accepted: Counter::default(),
            websockets_open: Gauge::default(),
            connections_parked: Gauge::default(),
            memory_given_back: Counter::default(),
            handshakes_refused: Family::default(),
            closes: Family::default(),
            messages_in: Counter::default(),
            deliveries_out: Counter::default(),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            clients_closed: Family::default(),
            rooms: Gauge::default(),
            largest_room: Gauge::default(),
            // 100 µs to about 3.3 s.
            latency: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            redis_connected: Gauge::default(),
            redis_reconnects: Counter::default(),
            redis_dropped: Counter::default(),
            history_dropped: Counter::default(),
            registry: Registry::default(),
        };
        let limit = Gauge::<i64>::default();
        limit.set(i64::try_from(queued_limit).unwrap_or(i64::MAX));
        let m = &metrics;
        let r = &mut registry;
        r.register(
            "connections_open",
            "TCP connections being served on the public port",
            m.connections_open.clone(),
        );
        r.register(
            "connections_accepted",
            "TCP connections accepted on the public port",
            m.connections_accepted.clone(),
        );
        r.register(
            "websockets_open",
            "WebSocket connections open (past the handshake) on the public port",
            m.websockets_open.clone(),
        );
        r.register(
            "connections_parked",
            "Idle WebSocket connections parked without a task, until they have traffic",
            m.connections_parked.clone(),
        );
        r.register(
            "memory_given_back",
            "Times the heap's free pages were given back to the kernel, after a burst of connections went idle",
            m.memory_given_back.clone(),
        );
        r.register(
            "handshakes_refused",
            "Upgrade requests refused, by HTTP status",
            m.handshakes_refused.clone(),
        );
        r.register(
            "closes",
            "WebSocket connections closed, by close code",
            m.closes.clone(),
        );
        r.register(
            "messages_in",
            "WebSocket messages received",
            m.messages_in.clone(),
        );
        r.register(
            "deliveries_out",
            "Messages queued to clients (a broadcast counts once per recipient)",
            m.deliveries_out.clone(),
        );
        r.register("bytes_in", "Bytes read from clients", m.bytes_in.clone());
        r.register("bytes_out", "Bytes written to clients", m.bytes_out.clone());
        r.register(
            "queued_bytes",
            "Outbound bytes queued on all connections now",
            queued_bytes,
        );
        r.register(
            "queued_bytes_limit",
            "The budget for queued outbound bytes (--max-queued-bytes; 0: none)",
            limit,
        );
        r.register(
            "clients_closed",
            "Clients closed by the server: slow, flooding, over_budget, idle, no_pong, \
             over_limit (before TLS)",
            m.clients_closed.clone(),
        );
        r.register("rooms", "Rooms with at least one client", m.rooms.clone());
        r.register(
            "largest_room_clients",
            "Clients in the largest room",
            m.largest_room.clone(),
        );
        r.register(
            "message_latency_seconds",
            "From a chat message's arrival to its last write to a recipient \
             (one message in 64)",
            m.latency.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }

    /// With `--redis`: also the broker's state, its reconnects and the
    /// events dropped while it was lost.
    pub fn with_redis(mut self) -> Self {
        let r = &mut self.registry;
        r.register(
            "redis_connected",
            "Whether Redis answers (1) or is lost (0)",
            self.redis_connected.clone(),
        );
        r.register(
            "redis_reconnects",
            "Times Redis answered again after being lost",
            self.redis_reconnects.clone(),
        );
        r.register(
            "redis_dropped_events",
            "Events for the other nodes dropped while Redis was lost (queue full)",
            self.redis_dropped.clone(),
        );
        self
    }

    /// With `--data-dir`: also the history entries the store's writer
    /// could not keep up with.
    pub fn with_store(mut self) -> Self {
        self.registry.register(
            "history_dropped_entries",
            "History entries served live but not kept (the writer's queue was full)",
            self.history_dropped.clone(),
        );
        self
    }

    /// A connection was accepted on the public port; returns how many are
    /// open now, this one included.
    pub fn connection_opened(&self) -> usize {
        self.connections_accepted.inc();
        usize::try_from(self.connections_open.inc() + 1).unwrap_or(0)
    }

    /// A connection on the public port ended.
    pub fn connection_ended(&self) {
        self.connections_open.dec();
    }

    /// An upgrade was accepted.
    pub fn websocket_opened(&self) {
        self.websockets_open.inc();
    }

    /// A WebSocket connection ended (its session was dropped).
    pub fn websocket_ended(&self) {
        self.websockets_open.dec();
    }

    /// WebSocket connections open now: the ones a shutdown closes with 1001.
    pub fn websockets(&self) -> usize {
        usize::try_from(self.websockets_open.get()).unwrap_or(0)
    }

    /// A WebSocket connection closed with `code`.
    pub fn closed(&self, code: CloseCode) {
        let code = code.as_u16();
        self.closes.get_or_create(&CodeLabel { code }).inc();
    }

    /// Counts what a log line reports: a refused handshake, a client
    /// closed by the server. Called for every line, printed or not.
    pub fn record(&self, line: &Log) {
        let reason = match line {
            Log::HandshakeRejected { status, .. } => {
                let status = *status;
                self.handshakes_refused
                    .get_or_create(&StatusLabel { status })
                    .inc();
                return;
            }
            Log::SlowClient { .. } => "slow",
            Log::Flooding { .. } => "flooding",
            Log::OverBudget { .. } => "over_budget",
            Log::Idle { .. } => "idle",
            Log::NoPong { .. } => "no_pong",
            Log::TlsRefused { .. } | Log::ConnectionRefused { .. } => "over_limit",
            Log::BrokerConnected { .. } => {
                self.redis_connected.set(1);
                return;
            }
            Log::BrokerLost { .. } => {
                self.redis_connected.set(0);
                return;
            }
            Log::BrokerBack { .. } => {
                self.redis_connected.set(1);
                self.redis_reconnects.inc();
                return;
            }
            Log::BrokerDropped { count } => {
                self.redis_dropped.inc_by(*count);
                return;
            }
            Log::StoreDropped { count } => {
                self.history_dropped.inc_by(*count);
                return;
            }
            _ => return,
        };
        self.clients_closed
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// A chat message arrived: counts it, and returns a [`Sample`] for one
    /// in [`SAMPLE_EVERY`].
    pub fn message_in(&self) -> Option<Arc<Sample>> {
        let n = self.messages_in.inc();
        (n % SAMPLE_EVERY == 0).then(|| {
            Arc::new(Sample {
                arrived: Instant::now(),
                histogram: self.latency.clone(),
            })
        })
    }

    /// The metrics in the text format, with the room gauges set from
    /// `rooms` (rooms in use and the size of the largest).
    pub fn render(&self, rooms: (usize, usize)) -> String {
        self.rooms.set(i64::try_from(rooms.0).unwrap_or(i64::MAX));
        self.largest_room
            .set(i64::try_from(rooms.1).unwrap_or(i64::MAX));
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(Gauge::default(), 0)
    }
}

/// A sampled chat message on its way: every recipient's task holds it until
/// the message is written, and the last to let go records the time since
/// it arrived.
#[derive(Debug)]
pub struct Sample {
    arrived: Instant,
    histogram: Histogram,
}

impl Drop for Sample {
    fn drop(&mut self) {
        self.histogram.observe(self.arrived.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_count_refusals_and_closes_by_reason() {
        let metrics = Metrics::default();
        let peer = || "127.0.0.1:1".to_owned();
        metrics.record(&Log::HandshakeRejected {
            peer: peer(),
            status: 503,
            reason: "full".into(),
        });
        metrics.record(&Log::SlowClient { peer: peer() });
        metrics.record(&Log::Flooding { peer: peer() });
        metrics.record(&Log::Flooding { peer: peer() });
        metrics.record(&Log::Joined {
            peer: peer(),
            nick: "a".into(),
            room: "lobby".into(),
        });
        metrics.closed(CloseCode::GoingAway);
        let text = metrics.render((2, 7));
        for line in [
            "tincan_handshakes_refused_total{status=\"503\"} 1",
            "tincan_clients_closed_total{reason=\"slow\"} 1",
            "tincan_clients_closed_total{reason=\"flooding\"} 2",
            "tincan_closes_total{code=\"1001\"} 1",
            "tincan_rooms 2",
            "tincan_largest_room_clients 7",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }

    /// How many latencies `metrics` recorded, as a scrape shows it.
    fn latencies(metrics: &Metrics) -> usize {
        let text = metrics.render((0, 0));
        let prefix = "tincan_message_latency_seconds_count ";
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix}in\n{text}"))
    }

    #[test]
    fn one_message_in_64_is_sampled_and_recorded_when_let_go() {
        let metrics = Metrics::default();
        let samples: Vec<_> = (0..128).filter_map(|_| metrics.message_in()).collect();
        assert_eq!(samples.len(), 2);
        assert_eq!(metrics.messages_in.get(), 128);
        assert_eq!(latencies(&metrics), 0);
        let held = samples[0].clone();
        drop(samples);
        // One recipient still holds the first: only the second is recorded.
        assert_eq!(latencies(&metrics), 1);
        drop(held);
        assert_eq!(latencies(&metrics), 2);
    }
}
