//! Seeded, length-bucketed batches: each epoch shuffles the examples, sorts pools of
//! [`POOL_BATCHES`] batches by length (so a batch pads little), and shuffles the batches.
//! Micro-batch `k` of the whole run is a pure function of the seed and `k`, which is what lets
//! a resumed run see exactly the batches an uninterrupted one would.

use rand_xoshiro::SplitMix64;
use rand_xoshiro::rand_core::{Rng, SeedableRng};

/// Batches per length-sorted pool.
const POOL_BATCHES: usize = 16;

/// The seeded generator of one named stream (`what`) of a run.
pub(crate) fn stream(seed: u64, what: u64, index: u64) -> SplitMix64 {
    let mixed =
        SplitMix64::seed_from_u64(what ^ SplitMix64::seed_from_u64(index).next_u64()).next_u64();
    SplitMix64::seed_from_u64(seed ^ mixed)
}

/// A uniform draw from `0..bound` (`bound` > 0).
pub(crate) fn below(rng: &mut SplitMix64, bound: usize) -> usize {
    ((u128::from(rng.next_u64()) * bound as u128) >> 64) as usize
}

/// A uniform draw from `[0, 1)`.
pub(crate) fn unit(rng: &mut SplitMix64) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

pub(crate) fn shuffle<T>(items: &mut [T], rng: &mut SplitMix64) {
    for i in (1..items.len()).rev() {
        items.swap(i, below(rng, i + 1));
    }
}

const EPOCH_STREAM: u64 = 1;

/// The batch stream over examples of the given lengths.
pub(crate) struct Batches {
    lengths: Vec<usize>,
    batch_size: usize,
    seed: u64,
    epoch: Option<(usize, Vec<Vec<usize>>)>,
}

impl Batches {
    pub(crate) fn new(lengths: Vec<usize>, batch_size: usize, seed: u64) -> Self {
        Self {
            lengths,
            batch_size,
            seed,
            epoch: None,
        }
    }

    fn per_epoch(&self) -> usize {
        self.lengths.len().div_ceil(self.batch_size)
    }

    /// The example indices of micro-batch `k` of the run.
    pub(crate) fn get(&mut self, k: usize) -> &[usize] {
        let (epoch, within) = (k / self.per_epoch(), k % self.per_epoch());
        if self.epoch.as_ref().is_none_or(|(e, _)| *e != epoch) {
            self.epoch = Some((epoch, self.epoch_batches(epoch)));
        }
        &self.epoch.as_ref().expect("set above").1[within]
    }

    fn epoch_batches(&self, epoch: usize) -> Vec<Vec<usize>> {
        let mut rng = stream(self.seed, EPOCH_STREAM, epoch as u64);
        let mut order: Vec<usize> = (0..self.lengths.len()).collect();
        shuffle(&mut order, &mut rng);
        let mut batches: Vec<Vec<usize>> = Vec::with_capacity(self.per_epoch());
        for pool in order.chunks(self.batch_size * POOL_BATCHES) {
            let mut pool = pool.to_vec();
            pool.sort_by_key(|&i| self.lengths[i]);
            batches.extend(pool.chunks(self.batch_size).map(<[usize]>::to_vec));
        }
        shuffle(&mut batches, &mut rng);
        batches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_epoch_covers_every_example_once_and_depends_only_on_the_seed() {
        let lengths: Vec<usize> = (0..100).map(|i| (i * 37) % 61).collect();
        let mut a = Batches::new(lengths.clone(), 8, 7);
        let mut seen: Vec<usize> = (0..13).flat_map(|k| a.get(k).to_vec()).collect();
        seen.sort();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
        let mut b = Batches::new(lengths.clone(), 8, 7);
        assert_eq!(b.get(20).to_vec(), a.get(20).to_vec());
        assert_eq!(b.get(3).to_vec(), a.get(3).to_vec());
        let mut c = Batches::new(lengths, 8, 8);
        assert_ne!(c.get(3).to_vec(), a.get(3).to_vec());
    }

    #[test]
    fn pools_sort_by_length_so_batches_pad_little() {
        let lengths: Vec<usize> = (0..256).map(|i| (i * 97) % 200).collect();
        let mut batches = Batches::new(lengths.clone(), 8, 1);
        let spread: usize = (0..32)
            .map(|k| {
                let b = batches.get(k);
                let max = b.iter().map(|&i| lengths[i]).max().unwrap();
                let min = b.iter().map(|&i| lengths[i]).min().unwrap();
                max - min
            })
            .sum();
        assert!(spread < 32 * 40, "{spread}");
    }
}
