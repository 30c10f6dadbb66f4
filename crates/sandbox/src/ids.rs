//! Deterministic ids, tokens and codes from the seed: the same seed and the same calls give the
//! same world.

use serde::{Deserialize, Serialize};

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A counter-based generator (SplitMix64), serialisable so that a restarted sandbox continues
/// where it stopped instead of repeating ids.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct IdGen {
    pub seed: u64,
    pub counter: u64,
}

impl IdGen {
    pub fn new(seed: u64) -> IdGen {
        IdGen { seed, counter: 0 }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.counter = self.counter.wrapping_add(1);
        mix(self.seed ^ self.counter.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// A Graph object id: 15 or 16 decimal digits, as Meta's ids are.
    pub fn object_id(&mut self) -> String {
        (100_000_000_000_000 + self.next_u64() % 900_000_000_000_000).to_string()
    }

    pub fn alnum(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(ALNUM[(self.next_u64() % ALNUM.len() as u64) as usize]))
            .collect()
    }

    pub fn digits(&mut self, len: usize) -> String {
        (0..len).map(|_| char::from(b'0' + (self.next_u64() % 10) as u8)).collect()
    }

    /// A WhatsApp message id in Meta's `wamid.` form.
    pub fn wamid(&mut self) -> String {
        format!("wamid.HBgL{}", self.alnum(48))
    }

    /// A business token in the shape of Meta's (`EAA…`).
    pub fn token(&mut self) -> String {
        format!("EAAG{}", self.alnum(120))
    }

    /// An Embedded Signup code.
    pub fn code(&mut self) -> String {
        format!("AQ{}", self.alnum(160))
    }

    pub fn fbtrace_id(&mut self) -> String {
        self.alnum(23)
    }
}

/// SplitMix64's finaliser; also used to derive stable values (BSUIDs) from names.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stable hash of a string (FNV-1a, then mixed).
pub fn hash_str(seed: u64, s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}
