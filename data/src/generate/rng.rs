//! Deterministic randomness for the generator.
//!
//! Every random choice is drawn from a stream seeded by a hash of *what it is about* (the seed,
//! a tag naming the kind of choice, the customer, the day, …) and never from a stream shared
//! between unrelated things. That is what lets each day be generated on its own, on any
//! thread, in any order, and still give the same bytes: a day only ever asks for streams keyed
//! by itself (or by earlier days whose orders it has to deliver).
//!
//! Quick yes/no questions asked for every customer on every day ("is this customer active
//! today?") use [`mix`] and [`unit`] directly, without seeding a full generator.

use rand::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Tags that keep the streams of different kinds of choices apart.
pub(crate) mod tag {
    pub(crate) const TRAITS: u64 = 0x7472_6169_7473;
    pub(crate) const PROFILE: u64 = 0x7072_6f66_696c;
    pub(crate) const DAY: u64 = 0x6461_7920_706c;
    pub(crate) const SESSION: u64 = 0x7365_7373_696f;
    pub(crate) const ORDER: u64 = 0x6f72_6465_7273;
    pub(crate) const DEVICE: u64 = 0x6465_7669_6365;
    pub(crate) const VISITOR: u64 = 0x7669_7369_746f;
    pub(crate) const VISITORS: u64 = 0x7669_7369_7473;
    pub(crate) const CAMPAIGN: u64 = 0x6361_6d70_6169;
    pub(crate) const REDELIVERY: u64 = 0x7265_6465_6c69;
    pub(crate) const UPDATE: u64 = 0x7570_6461_7465;
}

/// SplitMix64's finaliser: a fast, well-mixing bijection of 64-bit words.
#[inline]
pub(crate) const fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hashes a short key (seed, tag, ids…) into one well-mixed word.
#[inline]
pub(crate) fn mix<const N: usize>(parts: [u64; N]) -> u64 {
    let mut h = 0x243F_6A88_85A3_08D3_u64;
    for p in parts {
        h = splitmix(h ^ p);
    }
    h
}

/// A hash as a uniform number in `[0, 1)`.
#[inline]
pub(crate) fn unit(h: u64) -> f64 {
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A seeded generator with the handful of draws the generator needs.
///
/// The draws are written out here (rather than taken from `rand`'s distributions) so that the
/// numbers a seed gives can never change under a dependency update.
pub(crate) struct Rand(Xoshiro256PlusPlus);

impl Rand {
    /// A generator for the stream `seed` (usually a [`mix`] of what the stream is about).
    #[inline]
    pub(crate) fn new(seed: u64) -> Self {
        Self(Xoshiro256PlusPlus::seed_from_u64(seed))
    }

    /// The next raw 64-bit word.
    #[inline]
    pub(crate) fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub(crate) fn unit(&mut self) -> f64 {
        unit(self.next())
    }

    /// `true` with probability `p`.
    #[inline]
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in `0..n` (`n` ≥ 1).
    #[inline]
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    #[inline]
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        debug_assert!(lo <= hi);
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    /// A uniformly chosen element of a non-empty slice.
    #[inline]
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Index chosen with the given (non-empty, positive-sum) weights.
    #[inline]
    pub(crate) fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut x = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if x < u64::from(w) {
                return i;
            }
            x -= u64::from(w);
        }
        weights.len() - 1
    }

    /// A count ≥ 0 with the given mean, geometrically distributed (many small, a few large).
    #[inline]
    pub(crate) fn geometric(&mut self, mean: f64) -> u32 {
        if mean <= 0.0 {
            return 0;
        }
        let q = mean / (1.0 + mean);
        let mut n = 0;
        while n < 64 && self.chance(q) {
            n += 1;
        }
        n
    }

    /// Exponentially distributed with the given mean.
    #[inline]
    pub(crate) fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }
}

/// Picks an index in `0..n` skewed towards the front: index `i` is chosen about as often as
/// `1 / (i + 1)^k` — how a few bestsellers get most of the views.
#[inline]
pub(crate) fn skewed_index(u: f64, n: u32, power: f64) -> u32 {
    ((u.powf(power) * f64::from(n)) as u32).min(n - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(Rand::new(mix([1, 2])), |r, _: u64| Some(r.next()))
            .collect();
        let b: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(Rand::new(mix([1, 2])), |r, _: u64| Some(r.next()))
            .collect();
        let c: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(Rand::new(mix([2, 1])), |r, _: u64| Some(r.next()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn draws_stay_in_range() {
        let mut r = Rand::new(7);
        for _ in 0..10_000 {
            assert!(r.below(5) < 5);
            let x = r.range(-3, 3);
            assert!((-3..=3).contains(&x));
            assert!(r.weighted(&[0, 3, 1]) != 0);
            assert!((0.0..1.0).contains(&r.unit()));
        }
    }
}
