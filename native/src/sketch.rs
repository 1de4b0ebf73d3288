//! `LatencySketch` and `FlowCounter` of `core/metrics`, value for value.

pub struct Sketch {
    pub count: u64,
    pub total: i64,
    pub minimum: i64,
    pub maximum: i64,
    pub zeros: u64,
    pub offset: i64,
    pub buckets: Vec<u64>,
}

fn inv_log_gamma() -> f64 {
    let gamma = (1.0 + 0.01) / (1.0 - 0.01);
    1.0 / f64::ln(gamma)
}

thread_local! {
    static INV_LOG_GAMMA: f64 = inv_log_gamma();
}

impl Sketch {
    pub fn new() -> Sketch {
        Sketch {
            count: 0,
            total: 0,
            minimum: 0,
            maximum: 0,
            zeros: 0,
            offset: 0,
            buckets: Vec::new(),
        }
    }

    pub fn add(&mut self, value: i64, inv_log_gamma: f64) {
        self.total += value;
        let count = self.count;
        self.count = count + 1;
        if count > 0 {
            if value > self.maximum {
                self.maximum = value;
            } else if value < self.minimum {
                self.minimum = value;
            }
        } else {
            self.minimum = value;
            if value > self.maximum {
                self.maximum = value;
            }
        }
        if value <= 0 {
            self.zeros += 1;
            return;
        }
        // ceil of a non-negative scaled logarithm (value >= 1), without a libm call
        let scaled = (value as f64).ln() * inv_log_gamma;
        let whole = scaled as i64;
        let index = if (whole as f64) < scaled {
            whole + 1
        } else {
            whole
        };
        *self.bucket(index) += 1;
    }

    /// The count of bucket `index`, the buckets grown (either way) to hold it.
    #[inline]
    fn bucket(&mut self, index: i64) -> &mut u64 {
        if self.buckets.is_empty() {
            self.offset = index;
            self.buckets.push(0);
        } else if index < self.offset {
            let missing = (self.offset - index) as usize;
            let mut grown = vec![0u64; missing];
            grown.extend_from_slice(&self.buckets);
            self.buckets = grown;
            self.offset = index;
        } else if (index - self.offset) as usize >= self.buckets.len() {
            self.buckets.resize((index - self.offset) as usize + 1, 0);
        }
        &mut self.buckets[(index - self.offset) as usize]
    }
}

impl Sketch {
    /// `LatencySketch.merge`: add every value `other` has seen.
    pub fn merge(&mut self, other: &Sketch) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 || other.minimum < self.minimum {
            self.minimum = other.minimum;
        }
        self.maximum = self.maximum.max(other.maximum);
        self.count += other.count;
        self.total += other.total;
        self.zeros += other.zeros;
        for (position, &hits) in other.buckets.iter().enumerate() {
            if hits == 0 {
                continue;
            }
            *self.bucket(position as i64 + other.offset) += hits;
        }
    }

    /// `LatencySketch.quantile(q)` for a sketch with values.
    pub fn quantile(&self, q: f64) -> f64 {
        let gamma: f64 = (1.0 + 0.01) / (1.0 - 0.01);
        let rank = q * (self.count - 1) as f64;
        let mut seen = self.zeros;
        if rank < seen as f64 {
            return 0.0;
        }
        for (position, &hits) in self.buckets.iter().enumerate() {
            seen += hits;
            if rank < seen as f64 {
                let exponent = (position as i64 + self.offset) as f64;
                let estimate = 2.0 * gamma.powf(exponent) / (gamma + 1.0);
                let low = self.minimum as f64;
                let clamped = if low > estimate { low } else { estimate };
                let high = self.maximum as f64;
                return if high < clamped { high } else { clamped };
            }
        }
        self.maximum as f64
    }

    /// `summary_ms()` of a sketch with values: count, min, mean, p50, p95, p99, max (ms).
    pub fn summary_ms(&self) -> (u64, f64, f64, f64, f64, f64, f64) {
        let mean = self.total as f64 / self.count as f64;
        (
            self.count,
            self.minimum as f64 / 1000.0,
            round6(mean / 1000.0),
            round6(self.quantile(0.50) / 1000.0),
            round6(self.quantile(0.95) / 1000.0),
            round6(self.quantile(0.99) / 1000.0),
            self.maximum as f64 / 1000.0,
        )
    }
}

/// Python's `round(value, 6)`: the correctly rounded decimal (ties to even), read back.
pub fn round6(value: f64) -> f64 {
    if !value.is_finite() {
        return value;
    }
    // The usual case without text: below 2**39 the product is within 6.1e-5 of the exact
    // value * 10**6, so when it is clearly not near a tie its nearest integer n is the
    // decimal rounding's, and n / 1e6 (both exact) is the double nearest n * 10**-6.
    let scaled = value * 1e6;
    if scaled.abs() < (1u64 << 39) as f64 {
        let nearest = scaled.round();
        if (scaled - nearest).abs() < 0.4999 {
            return nearest / 1e6;
        }
    }
    format!("{:.6}", value).parse().expect("a decimal number")
}

pub fn log_gamma_factor() -> f64 {
    INV_LOG_GAMMA.with(|value| *value)
}

/// Drop causes, by name (the ledger's `LOST_CAUSES`); counters keep the first five and the
/// faults' two.
pub const LOSS: u8 = 0;
pub const PARTITION: u8 = 1;
pub const QUEUE_OVERFLOW: u8 = 2;
pub const REJECTED: u8 = 3;
pub const NODE_DOWN: u8 = 4;
pub const NO_SUBSCRIBER: u8 = 8;
/// the fault kinds' causes (a full store-and-forward buffer, a reading due asleep): kept
/// by counters in their own slots, after the first five
pub const STORAGE_FULL: u8 = 9;
pub const ASLEEP: u8 = 10;
pub const CAUSES: [&str; 11] = [
    "loss",
    "partition",
    "queue_overflow",
    "rejected",
    "node_down",
    "queue_full",
    "offline",
    "session_lost",
    "no_subscriber",
    "storage_full",
    "asleep",
];

pub struct Counter {
    pub sent: u64,
    pub delivered: u64,
    pub dropped: [u64; 7],
    pub redelivered: u64,
    pub bytes: u64,
    pub latency: Sketch,
}

impl Counter {
    /// Adds `other` in (the topics' totals: each count, the drops by cause, the sketch).
    pub fn add(&mut self, other: &Counter) {
        self.sent += other.sent;
        self.delivered += other.delivered;
        for (total, dropped) in self.dropped.iter_mut().zip(&other.dropped) {
            *total += dropped;
        }
        self.redelivered += other.redelivered;
        self.bytes += other.bytes;
        self.latency.merge(&other.latency);
    }

    pub fn new() -> Counter {
        Counter {
            sent: 0,
            delivered: 0,
            dropped: [0; 7],
            redelivered: 0,
            bytes: 0,
            latency: Sketch::new(),
        }
    }

    #[inline]
    pub fn drop(&mut self, cause: u8) {
        let slot = match cause {
            0..=4 => cause as usize,
            STORAGE_FULL => 5,
            ASLEEP => 6,
            _ => REJECTED as usize,
        };
        self.dropped[slot] += 1;
    }
}
