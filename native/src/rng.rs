//! The counter-based random streams of `pytest_edgesim.core.rng`, draw for draw.

use blake2::digest::{FixedOutput, KeyInit, Update, VariableOutput};
use blake2::{Blake2bMac512, Blake2bVar};

const INV_2_53: f64 = 1.0 / 9007199254740992.0;
const TWO_PI: f64 = 2.0 * std::f64::consts::PI;

/// `stream_key(root_seed, name)`: blake2b-256 of `edgesim/v1/{seed}/{name}`.
pub fn stream_key(seed: &str, name: &str) -> [u8; 32] {
    let mut hasher = Blake2bVar::new(32).expect("32 is a valid blake2b size");
    hasher.update(b"edgesim/v1/");
    hasher.update(seed.as_bytes());
    hasher.update(b"/");
    hasher.update(name.as_bytes());
    let mut key = [0u8; 32];
    hasher
        .finalize_variable(&mut key)
        .expect("the buffer has the digest's size");
    key
}

/// One named stream: blake2b-512 keyed by the stream key, of a block counter; eight 53-bit
/// floats a block, taken in order.
pub struct Stream {
    key: [u8; 32],
    block: u64,
    values: [f64; 8],
    next: u8,
}

impl Stream {
    pub fn new(seed: &str, name: &str) -> Stream {
        Stream {
            key: stream_key(seed, name),
            block: 0,
            values: [0.0; 8],
            next: 8,
        }
    }

    fn refill(&mut self) {
        self.block += 1;
        let mut mac = <Blake2bMac512 as KeyInit>::new_from_slice(&self.key).expect("a 32-byte key");
        Update::update(&mut mac, &self.block.to_le_bytes());
        let digest = mac.finalize_fixed();
        for (index, chunk) in digest.chunks_exact(8).enumerate() {
            let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            self.values[index] = (word >> 11) as f64 * INV_2_53;
        }
        self.next = 0;
    }

    #[inline]
    pub fn random(&mut self) -> f64 {
        if self.next >= 8 {
            self.refill();
        }
        let value = self.values[self.next as usize];
        self.next += 1;
        value
    }

    pub fn normal(&mut self, mean: f64, stddev: f64) -> f64 {
        let u1 = 1.0 - self.random();
        let u2 = self.random();
        mean + stddev * (-2.0 * u1.ln()).sqrt() * (TWO_PI * u2).cos()
    }

    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.random()).ln()
    }

    pub fn below(&mut self, n: i64) -> i64 {
        let value = (self.random() * n as f64) as i64;
        value.min(n - 1)
    }
}

/// Python's `round(x)` of a float: to the nearest integer, ties to even.
#[inline]
pub fn py_round(value: f64) -> i64 {
    value.round_ties_even() as i64
}

/// A delay distribution of the scenario schema (`core/models/delays.py`).
#[derive(Clone)]
pub enum Delay {
    Constant(i64),
    Uniform(i64, i64),
    Exponential(i64),
    Normal(i64, i64),
}

impl Delay {
    pub fn draw(&self, stream: &mut Stream) -> i64 {
        match *self {
            Delay::Constant(value) => value,
            Delay::Uniform(low, high) => {
                py_round(low as f64 + (high - low) as f64 * stream.random())
            }
            Delay::Exponential(mean) => py_round(-(mean as f64) * (1.0 - stream.random()).ln()),
            Delay::Normal(mean, stddev) => {
                for _ in 0..64 {
                    let value = stream.normal(mean as f64, stddev as f64);
                    if value >= 0.0 {
                        return py_round(value);
                    }
                }
                0
            }
        }
    }

    pub fn is_constant_zero(&self) -> bool {
        matches!(self, Delay::Constant(0))
    }
}
