//! Reconnect backoff with jitter (pure; seeded).
//!
//! Waits start at [`FIRST_S`] and double up to [`MAX_S`], each scaled by a uniform factor in
//! [1 − [`JITTER`], 1 + [`JITTER`]] so that sources (and daemons) that lost their devices at the
//! same moment do not retry in lockstep. The cap is short on purpose: opening a serial port that
//! is absent costs a failed `open(2)`, and a re-plugged device should be streaming again within
//! about a second and a half (the cap plus the start-up exchange).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// First wait, s.
pub const FIRST_S: f64 = 0.25;
/// Longest wait, s.
pub const MAX_S: f64 = 1.0;
/// Relative jitter of each wait.
pub const JITTER: f64 = 0.25;

/// The backoff of one source.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: f64,
    rng: ChaCha8Rng,
}

impl Backoff {
    /// A backoff starting at [`FIRST_S`].
    pub fn new(seed: u64) -> Self {
        Self {
            next: FIRST_S,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The next wait, s (then doubles, up to [`MAX_S`]).
    pub fn next_wait(&mut self) -> f64 {
        let base = self.next;
        self.next = (self.next * 2.0).min(MAX_S);
        base * self.rng.random_range((1.0 - JITTER)..=(1.0 + JITTER))
    }

    /// A connection worked: start again from [`FIRST_S`].
    pub fn reset(&mut self) {
        self.next = FIRST_S;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_to_the_cap_with_bounded_jitter_and_reset() {
        let mut b = Backoff::new(7);
        let waits: Vec<f64> = (0..8).map(|_| b.next_wait()).collect();
        let bases = [0.25, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
        for (w, base) in waits.iter().zip(bases) {
            assert!(
                (*w >= base * (1.0 - JITTER)) && (*w <= base * (1.0 + JITTER)),
                "{w} vs {base}"
            );
        }
        // Jitter is real: the capped waits are not all equal.
        assert!(waits[3..].windows(2).any(|w| w[0] != w[1]));
        b.reset();
        assert!(b.next_wait() <= FIRST_S * (1.0 + JITTER));
        // Two seeds do not retry in lockstep.
        let mut c = Backoff::new(8);
        assert_ne!(Backoff::new(7).next_wait(), c.next_wait());
    }
}
