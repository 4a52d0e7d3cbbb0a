//! A fixed-size log-linear latency histogram: 64 sub-buckets per power of
//! two, so a percentile is within 1.6 % of the true value, and recording a
//! sample never allocates.

const SUB_BITS: u32 = 6;
const SUB: usize = 1 << SUB_BITS;
/// Values up to 2^40 µs (12 days) have their own bucket; larger ones share
/// the last.
const BUCKETS: usize = SUB * (40 - SUB_BITS as usize + 1);

/// Samples in microseconds.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }

    fn index(value: u64) -> usize {
        if value < SUB as u64 {
            return value as usize;
        }
        let magnitude = 63 - value.leading_zeros(); // >= SUB_BITS
        let shift = magnitude - SUB_BITS;
        let sub = (value >> shift) as usize - SUB; // 0..SUB
        (((shift + 1) as usize) * SUB + sub).min(BUCKETS - 1)
    }

    /// The smallest value of bucket `index` (and past the last one, the
    /// end of the range).
    fn lowest(index: usize) -> u64 {
        if index < SUB {
            return index as u64;
        }
        let shift = (index / SUB - 1) as u32;
        ((SUB + index % SUB) as u64) << shift
    }

    /// Adds one sample.
    pub fn record(&mut self, value: u64) {
        self.counts[Self::index(value)] += 1;
        self.total += 1;
        self.max = self.max.max(value);
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// The largest sample (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value below which `q` (0..=1) of the samples lie (0 when empty).
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                if index == BUCKETS - 1 {
                    return self.max; // the overflow bucket has no top
                }
                // The bucket's top, so that the 100th percentile is the max.
                let top = Self::lowest(index + 1) - 1;
                return top.min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_tight() {
        let mut last = 0;
        for v in (0..1_000_000u64).step_by(7) {
            let i = Histogram::index(v);
            assert!(i >= last, "{v}");
            last = i;
            let low = Histogram::lowest(i);
            assert!(low <= v && v - low <= v / 64, "{v} in bucket from {low}");
        }
    }

    #[test]
    fn quantiles_of_a_known_spread() {
        let mut h = Histogram::new();
        for v in 1..=1000 {
            h.record(v);
        }
        let near = |a: u64, b: u64| a.abs_diff(b) <= b / 50;
        assert!(near(h.quantile(0.5), 500), "{}", h.quantile(0.5));
        assert!(near(h.quantile(0.99), 990), "{}", h.quantile(0.99));
        assert_eq!(h.max(), 1000);
        h.record(5000);
        assert_eq!((h.max(), h.quantile(1.0)), (5000, 5000));
        assert_eq!(Histogram::new().quantile(0.5), 0);
    }

    #[test]
    fn merging_is_recording_into_one() {
        let (mut a, mut b, mut both) = (Histogram::new(), Histogram::new(), Histogram::new());
        for v in 0..500u64 {
            let sample = v * v;
            if v % 3 == 0 {
                a.record(sample)
            } else {
                b.record(sample)
            }
            both.record(sample);
        }
        a.merge(&b);
        assert_eq!(a.total, 500);
        for q in [0.0, 0.5, 0.9, 0.99, 1.0] {
            assert_eq!(a.quantile(q), both.quantile(q), "{q}");
        }
        assert_eq!(a.max(), 499 * 499);
    }

    #[test]
    fn huge_values_share_the_last_bucket() {
        let mut h = Histogram::new();
        h.record(u64::MAX);
        h.record(1 << 50);
        assert_eq!(h.max(), u64::MAX);
        assert_eq!(h.quantile(1.0), u64::MAX);
    }
}
