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
        let index = ((value as f64).ln() * inv_log_gamma).ceil() as i64;
        if self.buckets.is_empty() {
            self.offset = index;
            self.buckets.push(1);
            return;
        }
        if index < self.offset {
            let missing = (self.offset - index) as usize;
            let mut grown = vec![0u64; missing];
            grown.extend_from_slice(&self.buckets);
            self.buckets = grown;
            self.offset = index;
        } else if (index - self.offset) as usize >= self.buckets.len() {
            self.buckets.resize((index - self.offset) as usize + 1, 0);
        }
        self.buckets[(index - self.offset) as usize] += 1;
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
            let index = position as i64 + other.offset;
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
            self.buckets[(index - self.offset) as usize] += hits;
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
    // value * 10**6 exactly is `scaled + error` (fused multiply-add); its nearest integer,
    // ties to even, divided by 10**6 is the double nearest that decimal, as Python's is
    let scaled = value * 1e6;
    if scaled.abs() < 4.0e15 {
        let error = value.mul_add(1e6, -scaled);
        let floor = scaled.floor();
        let fraction = scaled - floor;
        let up = if fraction != 0.5 {
            fraction > 0.5
        } else if error != 0.0 {
            error > 0.0
        } else {
            floor % 2.0 != 0.0
        };
        let rounded = (floor + if up { 1.0 } else { 0.0 }) / 1e6;
        return if rounded == 0.0 {
            0.0f64.copysign(value) // (-0.0000001 rounds to -0.0)
        } else {
            rounded
        };
    }
    format!("{:.6}", value).parse().expect("a decimal number")
}

pub fn log_gamma_factor() -> f64 {
    INV_LOG_GAMMA.with(|value| *value)
}

/// Drop causes, in `LOST_CAUSES` order (the ledger's); counters keep the first five.
pub const LOSS: u8 = 0;
pub const PARTITION: u8 = 1;
pub const QUEUE_OVERFLOW: u8 = 2;
pub const REJECTED: u8 = 3;
pub const NO_SUBSCRIBER: u8 = 8;
pub const CAUSES: [&str; 9] = [
    "loss",
    "partition",
    "queue_overflow",
    "rejected",
    "node_down",
    "queue_full",
    "offline",
    "session_lost",
    "no_subscriber",
];

pub struct Counter {
    pub sent: u64,
    pub delivered: u64,
    pub dropped: [u64; 5],
    pub redelivered: u64,
    pub bytes: u64,
    pub latency: Sketch,
}

impl Counter {
    pub fn new() -> Counter {
        Counter {
            sent: 0,
            delivered: 0,
            dropped: [0; 5],
            redelivered: 0,
            bytes: 0,
            latency: Sketch::new(),
        }
    }

    #[inline]
    pub fn drop(&mut self, cause: u8) {
        let slot = if (cause as usize) < 5 {
            cause as usize
        } else {
            REJECTED as usize
        };
        self.dropped[slot] += 1;
    }
}
