//! Random skipping: each token runs as many layers as a reference schedule (by default HSD at
//! the same knobs or target) does for it, chosen uniformly at random. The draw for token `t`
//! depends only on `seed` and `t` (SplitMix64), so plans are reproducible in any call order.
//! The sets are not nested, so skipped layers propagate K/V by default.
//!
//! The reference is any registered strategy, so its manifest form is the registry's
//! `StrategyConfig`, which itself lists this one. `RandomConfig` takes it as a type parameter
//! `R` instead of naming it, so that this file depends on the registry's contract
//! (`StrategyKnobs`) and not on the registry.

use rand_xoshiro::SplitMix64;
use rand_xoshiro::rand_core::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::knobs::{StrategyKnobs, name_and_target};
use crate::schedule::check_shape;
use crate::{HsdConfig, KvFill, LayerPlan, LayerSet, SkipError, StepContext, Strategy};

const NAME: &str = "random";

/// The manifest form of [`RandomSkip`], with `R` the reference's manifest form (the registry
/// instantiates it with `StrategyConfig`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
// Serde would ask `R: Default` for the defaulted `reference`; `None` needs no such bound.
#[serde(deny_unknown_fields, bound(deserialize = "R: Deserialize<'de>"))]
pub struct RandomConfig<R> {
    #[serde(default)]
    pub seed: u64,
    /// The static schedule whose layer counts are drawn (default `hsd` with its defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<Box<R>>,
    #[serde(default)]
    pub kv_fill: KvFill,
    /// Passed on to the reference when it has no target of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_skip_ratio: Option<f64>,
}

impl<R> Default for RandomConfig<R> {
    fn default() -> Self {
        Self {
            seed: 0,
            reference: None,
            kv_fill: KvFill::default(),
            target_skip_ratio: None,
        }
    }
}

impl<R: StrategyKnobs + Clone + From<HsdConfig>> StrategyKnobs for RandomConfig<R> {
    name_and_target!(NAME);

    /// Solves the reference (giving it this target when it has none).
    fn solve(&self, layers: usize, max_new_tokens: usize) -> Result<Self, SkipError> {
        let reference = solved_reference(self, layers, max_new_tokens)?;
        Ok(Self {
            reference: Some(Box::new(reference)),
            ..self.clone()
        })
    }

    fn strategy(
        &self,
        layers: usize,
        max_new_tokens: usize,
    ) -> Result<Box<dyn Strategy + Send>, SkipError> {
        let reference = solved_reference(self, layers, max_new_tokens)?
            .solved_strategy(layers, max_new_tokens)?;
        Ok(Box::new(RandomSkip {
            seed: self.seed,
            reference,
            kv_fill: self.kv_fill,
        }))
    }
}

/// The reference with `config`'s target passed on (when it has none of its own), solved.
fn solved_reference<R: StrategyKnobs + Clone + From<HsdConfig>>(
    config: &RandomConfig<R>,
    layers: usize,
    max_new_tokens: usize,
) -> Result<R, SkipError> {
    check_shape(NAME, layers, max_new_tokens)?;
    let mut reference = config
        .reference
        .as_deref()
        .cloned()
        .unwrap_or_else(|| R::from(HsdConfig::default()));
    if reference.is_dynamic() {
        return Err(SkipError::DynamicReference {
            strategy: NAME,
            reference: reference.name().to_owned(),
        });
    }
    if reference.target_skip_ratio().is_none()
        && let Some(target) = config.target_skip_ratio
    {
        reference.set_target_skip_ratio(target);
    }
    reference.solve(layers, max_new_tokens)
}

/// Random skipping: see the module documentation for the rule.
pub struct RandomSkip {
    seed: u64,
    reference: Box<dyn Strategy + Send>,
    kv_fill: KvFill,
}

impl RandomSkip {
    /// `count` distinct layers of `layers`, drawn for token `t`: a partial Fisher-Yates shuffle.
    fn draw(&self, t: usize, layers: usize, count: usize) -> LayerSet {
        let stream = self.seed ^ SplitMix64::seed_from_u64(t as u64).next_u64();
        let mut rng = SplitMix64::seed_from_u64(stream);
        let mut order: Vec<usize> = (0..layers).collect();
        for i in 0..count.min(layers) {
            let j = i + below(&mut rng, layers - i);
            order.swap(i, j);
        }
        LayerSet::from_indices(layers, order.into_iter().take(count))
    }
}

/// A uniform draw from `0..bound` (Lemire's multiply-shift; the bias is below 2^-32 for the
/// layer counts used here). `bound` must be positive.
fn below(rng: &mut SplitMix64, bound: usize) -> usize {
    ((u128::from(rng.next_u64()) * bound as u128) >> 64) as usize
}

impl Strategy for RandomSkip {
    fn name(&self) -> &str {
        NAME
    }

    fn plan(&mut self, cx: &StepContext) -> LayerPlan {
        let count = self.reference.plan(cx).run.count();
        LayerPlan {
            run: self.draw(cx.t, cx.layers, count),
            kv_fill: self.kv_fill,
            checks: LayerSet::empty(cx.layers),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::static_schedule;

    fn seeded(seed: u64) -> RandomConfig<HsdConfig> {
        RandomConfig {
            seed,
            ..Default::default()
        }
    }

    /// `SplitMix64::seed_from_u64` starts the state at the seed itself, as the reference does.
    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // First outputs for seed 1234567 from the authors' C reference (splitmix64.c).
        let mut rng = SplitMix64::seed_from_u64(1_234_567);
        let got: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        assert_eq!(
            got,
            [
                6_457_827_717_110_365_317,
                3_203_168_211_198_807_973,
                9_817_491_932_198_370_423
            ]
        );
    }

    #[test]
    fn matches_the_reference_counts_and_repeats_with_the_seed() {
        let schedule = |strategy: &mut dyn Strategy| static_schedule(strategy, 12, 16, 0);
        let reference = schedule(&mut HsdConfig::default().build(12).unwrap());
        let first = schedule(&mut *seeded(7).strategy(12, 16).unwrap());
        let again = schedule(&mut *seeded(7).strategy(12, 16).unwrap());
        assert_eq!(first, again);
        for (drawn, reference) in first.iter().zip(&reference) {
            assert_eq!(drawn.run.count(), reference.run.count());
        }
        assert_ne!(first, schedule(&mut *seeded(8).strategy(12, 16).unwrap()));
    }
}
