//! The counter-based random streams of `pytest_edgesim.core.rng`, draw for draw.

const INV_2_53: f64 = 1.0 / 9007199254740992.0;
const TWO_PI: f64 = 2.0 * std::f64::consts::PI;

/// `stream_key(root_seed, name)`: blake2b-256 of `edgesim/v1/{seed}/{name}`.
pub fn stream_key(seed: &str, name: &str) -> [u8; 32] {
    let material = [&b"edgesim/v1/"[..], seed.as_bytes(), b"/", name.as_bytes()].concat();
    let mut state = IV;
    state[0] ^= 0x0101_0000 ^ 32;
    // 128-byte blocks, the last one (never empty here) zero-padded and flagged
    let mut counted = 0;
    let mut chunks = material.chunks(128).peekable();
    while let Some(chunk) = chunks.next() {
        let mut padded = [0u8; 128];
        padded[..chunk.len()].copy_from_slice(chunk);
        let mut block = [0u64; 16];
        for (word, bytes) in block.iter_mut().zip(padded.chunks_exact(8)) {
            *word = u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
        }
        counted += chunk.len() as u64;
        compress(&mut state, &block, counted, chunks.peek().is_none());
    }
    let mut key = [0u8; 32];
    for (bytes, word) in key.chunks_exact_mut(8).zip(state) {
        bytes.copy_from_slice(&word.to_le_bytes());
    }
    key
}

/// BLAKE2b's initial state (SHA-512's).
const IV: [u64; 8] = [
    0x6a09e667f3bcc908,
    0xbb67ae8584caa73b,
    0x3c6ef372fe94f82b,
    0xa54ff53a5f1d36f1,
    0x510e527fade682d1,
    0x9b05688c2b3e6c1f,
    0x1f83d9abfb41bd6b,
    0x5be0cd19137e2179,
];

/// The message schedule of BLAKE2b's twelve rounds (rounds 10 and 11 repeat 0 and 1).
const SIGMA: [[usize; 16]; 12] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
    [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
    [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
    [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
    [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
    [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
    [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
    [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
    [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
];

/// BLAKE2b's compression function F (RFC 7693, 3.2) of one 128-byte block `message`,
/// `counted` bytes hashed so far, `last` on the final block. Inlined, so a block that is
/// mostly zero words (a stream's counter block) folds to fewer additions.
#[inline(always)]
fn compress(state: &mut [u64; 8], message: &[u64; 16], counted: u64, last: bool) {
    let mut v = [0u64; 16];
    v[..8].copy_from_slice(state);
    v[8..].copy_from_slice(&IV);
    v[12] ^= counted;
    if last {
        v[14] = !v[14];
    }
    #[inline(always)]
    fn mix(v: &mut [u64; 16], a: usize, b: usize, c: usize, d: usize, x: u64, y: u64) {
        v[a] = v[a].wrapping_add(v[b]).wrapping_add(x);
        v[d] = (v[d] ^ v[a]).rotate_right(32);
        v[c] = v[c].wrapping_add(v[d]);
        v[b] = (v[b] ^ v[c]).rotate_right(24);
        v[a] = v[a].wrapping_add(v[b]).wrapping_add(y);
        v[d] = (v[d] ^ v[a]).rotate_right(16);
        v[c] = v[c].wrapping_add(v[d]);
        v[b] = (v[b] ^ v[c]).rotate_right(63);
    }
    // the rounds written out, so every message index is a constant
    macro_rules! round {
        ($($r:literal)*) => {$(
            let s = &SIGMA[$r];
            mix(&mut v, 0, 4, 8, 12, message[s[0]], message[s[1]]);
            mix(&mut v, 1, 5, 9, 13, message[s[2]], message[s[3]]);
            mix(&mut v, 2, 6, 10, 14, message[s[4]], message[s[5]]);
            mix(&mut v, 3, 7, 11, 15, message[s[6]], message[s[7]]);
            mix(&mut v, 0, 5, 10, 15, message[s[8]], message[s[9]]);
            mix(&mut v, 1, 6, 11, 12, message[s[10]], message[s[11]]);
            mix(&mut v, 2, 7, 8, 13, message[s[12]], message[s[13]]);
            mix(&mut v, 3, 4, 9, 14, message[s[14]], message[s[15]]);
        )*};
    }
    round!(0 1 2 3 4 5 6 7 8 9 10 11);
    for (index, word) in state.iter_mut().enumerate() {
        *word ^= v[index] ^ v[index + 8];
    }
}

/// The state of `blake2b(digest_size=64, key=key)` once the key block is compressed: every
/// block of a stream starts from it, so a block costs one compression, not two.
fn keyed_state(key: &[u8; 32]) -> [u64; 8] {
    let mut state = IV;
    state[0] ^= 0x0101_0000 ^ ((key.len() as u64) << 8) ^ 64;
    let mut block = [0u64; 16];
    for (word, chunk) in block.iter_mut().zip(key.chunks_exact(8)) {
        *word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
    }
    compress(&mut state, &block, 128, false);
    state
}

/// The digest of a stream's block `counter`: the keyed state, then the 8-byte little-endian
/// counter as the last block (128 + 8 bytes hashed); the digest's eight words are the state's.
#[inline]
fn counter_block(keyed: &[u64; 8], counter: u64) -> [u64; 8] {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { avx2::counter_block(keyed, counter) };
    }
    let mut state = *keyed;
    let mut block = [0u64; 16];
    block[0] = counter;
    compress(&mut state, &block, 128 + 8, true);
    state
}

/// `counter_block` with AVX2: the four columns (then the four diagonals) of the state mixed
/// at once, as the reference SIMD implementations do; the same digest as `compress`.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{IV, SIGMA};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2")]
    pub unsafe fn counter_block(keyed: &[u64; 8], counter: u64) -> [u64; 8] {
        let message = {
            let mut words = [0u64; 16];
            words[0] = counter;
            words
        };
        let load = |words: &[u64]| _mm256_loadu_si256(words.as_ptr() as *const __m256i);
        let rotate_24 = _mm256_setr_epi8(
            3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10, 3, 4, 5, 6, 7, 0, 1, 2, 11, 12,
            13, 14, 15, 8, 9, 10,
        );
        let rotate_16 = _mm256_setr_epi8(
            2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9, 2, 3, 4, 5, 6, 7, 0, 1, 10, 11,
            12, 13, 14, 15, 8, 9,
        );
        let state_low = load(&keyed[..4]);
        let state_high = load(&keyed[4..]);
        let mut a = state_low;
        let mut b = state_high;
        let mut c = load(&IV[..4]);
        // counted bytes (128 + 8) into v[12], the last-block flag into v[14]
        let mut d = _mm256_xor_si256(load(&IV[4..]), _mm256_setr_epi64x(128 + 8, 0, -1, 0));
        let words = |s: &[usize; 16], first: usize| {
            _mm256_setr_epi64x(
                message[s[first]] as i64,
                message[s[first + 2]] as i64,
                message[s[first + 4]] as i64,
                message[s[first + 6]] as i64,
            )
        };
        macro_rules! mix {
            ($x:expr, $y:expr) => {
                a = _mm256_add_epi64(_mm256_add_epi64(a, b), $x);
                d = _mm256_shuffle_epi32(_mm256_xor_si256(d, a), 0xB1);
                c = _mm256_add_epi64(c, d);
                b = _mm256_shuffle_epi8(_mm256_xor_si256(b, c), rotate_24);
                a = _mm256_add_epi64(_mm256_add_epi64(a, b), $y);
                d = _mm256_shuffle_epi8(_mm256_xor_si256(d, a), rotate_16);
                c = _mm256_add_epi64(c, d);
                let t = _mm256_xor_si256(b, c);
                b = _mm256_or_si256(_mm256_add_epi64(t, t), _mm256_srli_epi64(t, 63));
            };
        }
        macro_rules! round {
            ($($r:literal)*) => {$(
                let s = &SIGMA[$r];
                mix!(words(s, 0), words(s, 1));
                // diagonals into columns: rows b, c, d rotated left by 1, 2, 3 lanes
                b = _mm256_permute4x64_epi64(b, 0x39);
                c = _mm256_permute4x64_epi64(c, 0x4E);
                d = _mm256_permute4x64_epi64(d, 0x93);
                mix!(words(s, 8), words(s, 9));
                b = _mm256_permute4x64_epi64(b, 0x93);
                c = _mm256_permute4x64_epi64(c, 0x4E);
                d = _mm256_permute4x64_epi64(d, 0x39);
            )*};
        }
        round!(0 1 2 3 4 5 6 7 8 9 10 11);
        let low = _mm256_xor_si256(state_low, _mm256_xor_si256(a, c));
        let high = _mm256_xor_si256(state_high, _mm256_xor_si256(b, d));
        let mut out = [0u64; 8];
        _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, low);
        _mm256_storeu_si256(out.as_mut_ptr().add(4) as *mut __m256i, high);
        out
    }
}

/// One named stream: blake2b-512 keyed by the stream key, of a block counter; eight 53-bit
/// floats a block, taken in order.
pub struct Stream {
    keyed: [u64; 8],
    block: u64,
    values: [f64; 8],
    next: u8,
}

impl Stream {
    pub fn new(seed: &str, name: &str) -> Stream {
        Stream {
            keyed: keyed_state(&stream_key(seed, name)),
            block: 0,
            values: [0.0; 8],
            next: 8,
        }
    }

    /// The next block: the key block's state, then the 8-byte little-endian counter as the
    /// last block (128 + 8 bytes hashed); the digest's eight words are the state's.
    #[inline(never)]
    fn refill(&mut self) {
        self.block += 1;
        let state = counter_block(&self.keyed, self.block);
        for (value, word) in self.values.iter_mut().zip(state) {
            *value = (word >> 11) as f64 * INV_2_53;
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
