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
        Sketch { count: 0, total: 0, minimum: 0, maximum: 0, zeros: 0, offset: 0, buckets: Vec::new() }
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

pub fn log_gamma_factor() -> f64 {
    INV_LOG_GAMMA.with(|value| *value)
}

/// Drop causes, in `LOST_CAUSES` order (the ledger's); counters keep the first five.
pub const LOSS: u8 = 0;
pub const PARTITION: u8 = 1;
pub const QUEUE_OVERFLOW: u8 = 2;
pub const REJECTED: u8 = 3;
pub const NODE_DOWN: u8 = 4;
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
        Counter { sent: 0, delivered: 0, dropped: [0; 5], redelivered: 0, bytes: 0, latency: Sketch::new() }
    }

    #[inline]
    pub fn drop(&mut self, cause: u8) {
        let slot = if (cause as usize) < 5 { cause as usize } else { REJECTED as usize };
        self.dropped[slot] += 1;
    }
}
