//! SkipDecode (Del Corro et al. 2023): a per-position depth that falls linearly with `t`.
//!
//! Token `t` of a budget `T` runs `n_t = clamp(round(max - (max-min)*t/(T-1)), min, max)`
//! layers: the `w` bottom (warm-up) layers and the top `n_t - w` layers, so the middle is what
//! is skipped. Since `n_t` never grows, a layer a later token runs was run by every earlier
//! token: the sets are nested and skipped layers need no K/V (`kv_fill = none` by default).

use serde::{Deserialize, Serialize};

use crate::knobs::{StrategyKnobs, name_and_target};
use crate::schedule::{Search, check_shape, check_target, ratio_of};
use crate::{KvFill, LayerPlan, LayerSet, Position, SkipError, StepContext, Strategy};

const NAME: &str = "skipdecode";

/// The manifest form of [`SkipDecode`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkipDecodeConfig {
    /// Bottom layers every token runs, `w` (default 1).
    #[serde(default = "default_warmup")]
    pub warmup: usize,
    /// Depth of the first token (default `L`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_layers: Option<usize>,
    /// Depth of the last token: required unless `target_skip_ratio` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_layers: Option<usize>,
    /// Default `none`: the sets are nested, so nothing is lost.
    #[serde(default = "default_kv_fill")]
    pub kv_fill: KvFill,
    #[serde(default)]
    pub position: Position,
    #[doc = crate::position::prompt_len_doc!()]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_len: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_skip_ratio: Option<f64>,
}

fn default_warmup() -> usize {
    1
}

fn default_kv_fill() -> KvFill {
    KvFill::None
}

impl Default for SkipDecodeConfig {
    fn default() -> Self {
        Self {
            warmup: default_warmup(),
            max_layers: None,
            min_layers: None,
            kv_fill: default_kv_fill(),
            position: Position::default(),
            prompt_len: None,
            target_skip_ratio: None,
        }
    }
}

impl SkipDecodeConfig {
    fn search(
        &self,
        target: f64,
        max_layers: Option<usize>,
        layers: usize,
        max_new_tokens: usize,
    ) -> Result<Self, SkipError> {
        let floor = self.warmup.max(1);
        let max_grid: Vec<usize> = max_layers.map_or((floor..=layers).rev().collect(), |n| vec![n]);
        let mut search = Search::new(NAME, target);
        for &max_layers in &max_grid {
            let min_grid: Vec<usize> = self
                .min_layers
                .map_or((floor..=max_layers).rev().collect(), |n| vec![n]);
            for &min_layers in &min_grid {
                let candidate = Self {
                    max_layers: Some(max_layers),
                    min_layers: Some(min_layers),
                    ..self.clone()
                };
                let Ok(strategy) = candidate.build(layers) else {
                    continue;
                };
                let run: usize = (0..max_new_tokens)
                    .map(|t| {
                        let (at, budget) =
                            self.position
                                .solver_clock(t, max_new_tokens, self.prompt_len);
                        strategy.depth(at, budget)
                    })
                    .sum();
                search.offer(candidate, ratio_of(run, layers, max_new_tokens));
            }
        }
        let (solved, _) = search.finish(layers, max_new_tokens)?;
        Ok(solved)
    }

    /// The strategy for an `L`-layer model.
    pub fn build(&self, layers: usize) -> Result<SkipDecode, SkipError> {
        let max_layers = self.max_layers.unwrap_or(layers);
        let Some(min_layers) = self.min_layers else {
            return Err(invalid(
                "min_layers",
                "is required unless target_skip_ratio is given",
            ));
        };
        if max_layers > layers {
            return Err(invalid(
                "max_layers",
                &format!("= {max_layers} exceeds the model's {layers} layers"),
            ));
        }
        if min_layers > max_layers {
            return Err(invalid(
                "min_layers",
                &format!("= {min_layers} exceeds max_layers = {max_layers}"),
            ));
        }
        if min_layers < self.warmup.max(1) {
            return Err(invalid(
                "min_layers",
                &format!("= {min_layers} is below max(1, warmup = {})", self.warmup),
            ));
        }
        Ok(SkipDecode {
            warmup: self.warmup,
            max_layers,
            min_layers,
            kv_fill: self.kv_fill,
            position: self.position,
        })
    }
}

impl StrategyKnobs for SkipDecodeConfig {
    name_and_target!(NAME);

    /// Fills `max_layers` and `min_layers`. With a target, the free ones are searched for `T`
    /// tokens after `prompt_len` prompt tokens (0 when unset): `min_layers` at `max_layers = L` first, then both.
    fn solve(&self, layers: usize, max_new_tokens: usize) -> Result<Self, SkipError> {
        check_shape(NAME, layers, max_new_tokens)?;
        let Some(target) = self.target_skip_ratio else {
            let solved = Self {
                max_layers: Some(self.max_layers.unwrap_or(layers)),
                ..self.clone()
            };
            solved.build(layers)?;
            return Ok(solved);
        };
        check_target(NAME, target)?;
        // `max_layers = L` (SkipDecode's shape) first; lower only when that misses by 1/L.
        let outcome = self.search(
            target,
            Some(self.max_layers.unwrap_or(layers)),
            layers,
            max_new_tokens,
        );
        match (outcome, self.max_layers) {
            (Err(_), None) => self.search(target, None, layers, max_new_tokens),
            (outcome, _) => outcome,
        }
    }

    fn strategy(
        &self,
        layers: usize,
        _max_new_tokens: usize,
    ) -> Result<Box<dyn Strategy + Send>, SkipError> {
        Ok(Box::new(self.build(layers)?))
    }
}

fn invalid(knob: &'static str, reason: &str) -> SkipError {
    SkipError::InvalidKnob {
        strategy: NAME,
        knob,
        reason: reason.to_owned(),
    }
}

/// SkipDecode: see the module documentation for the rule.
#[derive(Clone, Debug, PartialEq)]
pub struct SkipDecode {
    warmup: usize,
    max_layers: usize,
    min_layers: usize,
    kv_fill: KvFill,
    position: Position,
}

impl SkipDecode {
    /// `n_t` for token `t` of a budget `T` (read through `position` by [`Strategy::plan`]).
    pub fn depth(&self, t: usize, budget: usize) -> usize {
        if budget <= 1 {
            return self.max_layers;
        }
        let span = (self.max_layers - self.min_layers) as f64;
        let depth = (self.max_layers as f64 - span * t as f64 / (budget - 1) as f64).round();
        (depth.max(0.0) as usize).clamp(self.min_layers, self.max_layers)
    }
}

impl Strategy for SkipDecode {
    fn name(&self) -> &str {
        NAME
    }

    fn plan(&mut self, cx: &StepContext) -> LayerPlan {
        let (t, budget) = self.position.clock(cx);
        let depth = self.depth(t, budget);
        let top_from = cx.layers - (depth - self.warmup);
        LayerPlan {
            run: LayerSet::from_fn(cx.layers, |j| j < self.warmup || j >= top_from),
            kv_fill: self.kv_fill,
            checks: LayerSet::empty(cx.layers),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::static_schedule;
    use proptest::prelude::*;

    #[test]
    fn depth_falls_from_max_to_min_keeping_warmup_and_top() {
        let config = SkipDecodeConfig {
            min_layers: Some(4),
            ..Default::default()
        };
        let plans = static_schedule(&mut config.build(12).unwrap(), 12, 9, 0);
        assert_eq!(plans[0].run.count(), 12);
        assert_eq!(plans[8].run.to_bits(), [1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1]);
        // round(12 - 8 * 4 / 8) = 8: the warm-up layer and the top seven.
        assert_eq!(
            plans[4].run.iter().collect::<Vec<_>>(),
            [0, 5, 6, 7, 8, 9, 10, 11]
        );
    }

    #[test]
    fn min_layers_is_required_without_a_target() {
        let err = SkipDecodeConfig::default().build(12).unwrap_err();
        assert!(
            matches!(
                err,
                SkipError::InvalidKnob {
                    knob: "min_layers",
                    ..
                }
            ),
            "{err}"
        );
    }

    proptest! {
        #[test]
        fn sets_are_nested_and_depth_never_grows(
            layers in 1usize..40, tokens in 1usize..80, warmup in 0usize..4, min in 1usize..40, max in 1usize..40,
        ) {
            let max = max.min(layers);
            let min = min.clamp(warmup.max(1), max.max(warmup.max(1)));
            prop_assume!(min <= max);
            let config = SkipDecodeConfig {
                warmup, max_layers: Some(max), min_layers: Some(min), ..Default::default()
            };
            let plans = static_schedule(&mut config.build(layers).unwrap(), layers, tokens, 0);
            for pair in plans.windows(2) {
                prop_assert_eq!(pair[1].run.universe(), layers);
                prop_assert!(pair[1].run.is_subset(&pair[0].run));
                prop_assert!(pair[1].run.count() <= pair[0].run.count());
            }
            // What `kv_fill = none` could lose: a layer that runs for token t but holds no K/V
            // for some earlier token. Nested sets leave no such layer.
            for (t, plan) in plans.iter().enumerate() {
                for layer in plan.run.iter() {
                    prop_assert!(plans[..t].iter().all(|earlier| earlier.run.contains(layer)));
                }
            }
            prop_assert_eq!(plans[0].run.count(), max);
            if tokens > 1 {
                prop_assert_eq!(plans[tokens - 1].run.count(), min);
            }
        }
    }
}
