//! Random skipping: each token runs as many layers as a reference schedule (by default HSD at
//! the same knobs or target) does for it, chosen uniformly at random. The draw for token `t`
//! depends only on `seed` and `t` (SplitMix64), so plans are reproducible in any call order.
//! The sets are not nested, so skipped layers propagate K/V by default.

use serde::{Deserialize, Serialize};

use crate::knobs::StrategyKnobs;
use crate::prng::SplitMix64;
use crate::schedule::check_shape;
use crate::{
    HsdConfig, KvFill, LayerPlan, LayerSet, SkipError, StepContext, Strategy, StrategyConfig,
};

const NAME: &str = "random";

/// The manifest form of [`RandomSkip`].
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomConfig {
    #[serde(default)]
    pub seed: u64,
    /// The static schedule whose layer counts are drawn (default `hsd` with its defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<Box<StrategyConfig>>,
    #[serde(default)]
    pub kv_fill: KvFill,
    /// Passed on to the reference when it has no target of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_skip_ratio: Option<f64>,
}

impl RandomConfig {
    pub fn build(&self, layers: usize, max_new_tokens: usize) -> Result<RandomSkip, SkipError> {
        let reference = self
            .solved_reference(layers, max_new_tokens)?
            .build(layers, max_new_tokens)?;
        Ok(RandomSkip {
            seed: self.seed,
            reference,
            kv_fill: self.kv_fill,
        })
    }

    fn solved_reference(
        &self,
        layers: usize,
        max_new_tokens: usize,
    ) -> Result<StrategyConfig, SkipError> {
        check_shape(NAME, layers, max_new_tokens)?;
        let mut reference = self
            .reference
            .as_deref()
            .cloned()
            .unwrap_or(StrategyConfig::Hsd(HsdConfig::default()));
        if reference.is_dynamic() {
            return Err(SkipError::DynamicReference {
                strategy: NAME,
                reference: reference.name().to_owned(),
            });
        }
        if reference.target_skip_ratio().is_none()
            && let Some(target) = self.target_skip_ratio
        {
            reference.set_target_skip_ratio(target);
        }
        reference.solve(layers, max_new_tokens)
    }
}

impl StrategyKnobs for RandomConfig {
    fn name(&self) -> &'static str {
        NAME
    }

    fn target_skip_ratio(&self) -> Option<f64> {
        self.target_skip_ratio
    }

    fn set_target_skip_ratio(&mut self, target: f64) {
        self.target_skip_ratio = Some(target);
    }

    /// Solves the reference (giving it this target when it has none).
    fn solve(&self, layers: usize, max_new_tokens: usize) -> Result<Self, SkipError> {
        let reference = self.solved_reference(layers, max_new_tokens)?;
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
        Ok(Box::new(self.build(layers, max_new_tokens)?))
    }
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
        let mut rng = SplitMix64::new(self.seed ^ SplitMix64::new(t as u64).next_u64());
        let mut order: Vec<usize> = (0..layers).collect();
        for i in 0..count.min(layers) {
            let j = i + rng.below(layers - i);
            order.swap(i, j);
        }
        LayerSet::from_indices(layers, order.into_iter().take(count))
    }
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

    #[test]
    fn matches_the_reference_counts_and_repeats_with_the_seed() {
        let config = RandomConfig {
            seed: 7,
            ..Default::default()
        };
        let reference = static_schedule(
            &mut *StrategyConfig::Hsd(HsdConfig::default())
                .build(12, 16)
                .unwrap(),
            12,
            16,
            0,
        );
        let first = static_schedule(&mut config.build(12, 16).unwrap(), 12, 16, 0);
        let again = static_schedule(&mut config.build(12, 16).unwrap(), 12, 16, 0);
        assert_eq!(first, again);
        for (drawn, reference) in first.iter().zip(&reference) {
            assert_eq!(drawn.run.count(), reference.run.count());
        }
        let other = RandomConfig {
            seed: 8,
            ..Default::default()
        };
        assert_ne!(
            first,
            static_schedule(&mut other.build(12, 16).unwrap(), 12, 16, 0)
        );
    }

    /// Committed sweeps hold runs drawn with these exact sets: the draw must never change.
    #[test]
    fn draws_are_pinned() {
        let rows = |seed: u64, layers: usize, tokens: usize| -> Vec<String> {
            let config = RandomConfig {
                seed,
                ..Default::default()
            };
            static_schedule(
                &mut config.build(layers, tokens).unwrap(),
                layers,
                tokens,
                0,
            )
            .iter()
            .map(|plan| {
                plan.run
                    .to_bits()
                    .iter()
                    .map(|b| char::from(b'0' + b))
                    .collect()
            })
            .collect()
        };
        assert_eq!(
            rows(7, 12, 16),
            [
                "111111111111",
                "111111111111",
                "111111111111",
                "111111111111",
                "100101110001",
                "100101101010",
                "001001111001",
                "101000011110",
                "000011100100",
                "001000111000",
                "001001000110",
                "110010100000",
                "000000110100",
                "100000010010",
                "100010000001",
                "010010001000",
            ]
        );
        assert_eq!(
            rows(0xDEAD_BEEF, 30, 8),
            [
                "111111111111111111111111111111",
                "111111111111111111111111111111",
                "010000110110110011100010011110",
                "010011011010010111000011010011",
                "101000001111000001000000001011",
                "001111001010001100000100000001",
                "010000100100000001001000100010",
                "101111000000001000000000100000",
            ]
        );
    }

    #[test]
    fn a_dynamic_reference_is_rejected() {
        let config = RandomConfig {
            reference: Some(Box::new(StrategyConfig::Oracle(Default::default()))),
            ..Default::default()
        };
        assert!(matches!(
            config.solve(12, 16),
            Err(SkipError::DynamicReference { .. })
        ));
    }
}
