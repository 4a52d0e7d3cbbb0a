//! A token bucket: `burst` messages at once, refilled at `per_second`.

use std::time::Duration;

/// The rate a client may send chat messages at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// How many messages may be sent at once.
    pub burst: u32,
    /// How many messages per second are allowed over time.
    pub per_second: f64,
}

impl RateLimit {
    /// 10 at once, then 2 a second.
    pub const DEFAULT: Self = Self {
        burst: 10,
        per_second: 2.0,
    };
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One client's bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenBucket {
    tokens: f64,
    last: Duration,
}

impl TokenBucket {
    /// A full bucket at time `now`.
    pub fn new(limit: RateLimit, now: Duration) -> Self {
        Self {
            tokens: f64::from(limit.burst),
            last: now,
        }
    }

    /// Takes a token if there is one.
    pub fn take(&mut self, limit: RateLimit, now: Duration) -> bool {
        let elapsed = now.saturating_sub(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * limit.per_second).min(f64::from(limit.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_then_the_rate() {
        let limit = RateLimit {
            burst: 3,
            per_second: 2.0,
        };
        let t = Duration::from_secs(100);
        let mut bucket = TokenBucket::new(limit, t);
        assert!((0..3).all(|_| bucket.take(limit, t)));
        assert!(!bucket.take(limit, t));
        assert!(!bucket.take(limit, t + Duration::from_millis(400)));
        assert!(bucket.take(limit, t + Duration::from_millis(500)));
        // Refill stops at the burst size.
        let later = t + Duration::from_secs(60);
        assert_eq!((0..5).filter(|_| bucket.take(limit, later)).count(), 3);
        // Time going backwards refills nothing.
        assert!(!bucket.take(limit, t));
    }
}
