//! A searched static set (Draft & Verify's and SWIFT's way of choosing draft layers): the
//! layers leave in the order a greedy search removed them, and the first `skip` of that order
//! are skipped for every token. [`greedy_removal`] builds the order: it repeatedly removes the
//! layer whose removal keeps a score (e.g. teacher-forced top-1 agreement with the full model on
//! calibration examples) highest. The order is data, so `hsd search` writes it to a plan file
//! that manifests load; this file only applies it.

use serde::{Deserialize, Serialize};

use crate::knobs::{StrategyKnobs, name_and_target};
use crate::schedule::{Search, check_shape, check_target, ratio_of};
use crate::strategy::fixed_set::FixedSet;
use crate::{KvFill, LayerSet, SkipError, Strategy};

const NAME: &str = "searched";

/// The manifest form of a searched set, which runs as a [`FixedSet`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchedConfig {
    /// 0-based layers in the order the search removed them.
    #[serde(default)]
    pub removal_order: Vec<usize>,
    /// How many of `removal_order` are skipped (solved from the target when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<usize>,
    /// The search scores sets with K/V propagated at skipped layers, as decoding then does.
    #[serde(default)]
    pub kv_fill: KvFill,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_skip_ratio: Option<f64>,
}

impl SearchedConfig {
    pub fn build(&self, layers: usize) -> Result<FixedSet, SkipError> {
        let invalid = |knob, reason: String| SkipError::InvalidKnob {
            strategy: NAME,
            knob,
            reason,
        };
        let mut seen = LayerSet::empty(layers);
        for &layer in &self.removal_order {
            if layer >= layers {
                return Err(invalid(
                    "removal_order",
                    format!("names layer {layer} of a {layers}-layer model"),
                ));
            }
            if seen.contains(layer) {
                return Err(invalid(
                    "removal_order",
                    format!("names layer {layer} twice"),
                ));
            }
            seen.insert(layer);
        }
        let skip = self.skip.unwrap_or(0);
        if skip > self.removal_order.len() || skip >= layers {
            return Err(invalid(
                "skip",
                format!(
                    "= {skip}, but the removal order holds {} of {layers} layers and one must run",
                    self.removal_order.len()
                ),
            ));
        }
        let mut run = LayerSet::all(layers);
        for &layer in &self.removal_order[..skip] {
            run.remove(layer);
        }
        Ok(FixedSet::new(NAME, run, self.kv_fill))
    }
}

impl StrategyKnobs for SearchedConfig {
    name_and_target!(NAME);

    /// Fills `skip`; with a target, the prefix length of the removal order nearest it.
    fn solve(&self, layers: usize, max_new_tokens: usize) -> Result<Self, SkipError> {
        check_shape(NAME, layers, max_new_tokens)?;
        let Some(target) = self.target_skip_ratio else {
            let solved = Self {
                skip: Some(self.skip.unwrap_or(0)),
                ..self.clone()
            };
            solved.build(layers)?;
            return Ok(solved);
        };
        check_target(NAME, target)?;
        let mut search = Search::new(NAME, target);
        let most = self.removal_order.len().min(layers.saturating_sub(1));
        for skip in self.skip.map_or((0..=most).collect(), |s| vec![s]) {
            search.offer(
                Self {
                    skip: Some(skip),
                    ..self.clone()
                },
                ratio_of(layers - skip, layers, 1),
            );
        }
        let (solved, _) = search.finish(layers, max_new_tokens)?;
        solved.build(layers)?;
        Ok(solved)
    }

    fn strategy(
        &self,
        layers: usize,
        _max_new_tokens: usize,
    ) -> Result<Box<dyn Strategy + Send>, SkipError> {
        Ok(Box::new(self.build(layers)?))
    }
}

/// One removal of [`greedy_removal`]: the layer removed and the score of the set without it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Removal {
    pub layer: usize,
    pub score: f64,
}

/// Removes `removals` of `layers` layers one at a time, each time the one whose removal leaves
/// the highest `score` of the remaining set (ties: the lower layer), and returns the removals
/// in order. `score` sees each candidate set once per step; its errors end the search.
pub fn greedy_removal<E>(
    layers: usize,
    removals: usize,
    mut score: impl FnMut(&LayerSet) -> Result<f64, E>,
) -> Result<Vec<Removal>, E> {
    let mut run = LayerSet::all(layers);
    let mut order = Vec::with_capacity(removals.min(layers.saturating_sub(1)));
    while order.len() < removals && run.count() > 1 {
        let mut best: Option<Removal> = None;
        for layer in run.iter().collect::<Vec<_>>() {
            let mut candidate = run.clone();
            candidate.remove(layer);
            let value = score(&candidate)?;
            if best.is_none_or(|b| value > b.score) {
                best = Some(Removal {
                    layer,
                    score: value,
                });
            }
        }
        let Some(removal) = best else { break };
        run.remove(removal.layer);
        order.push(removal);
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{StepContext, StrategyConfig};

    #[test]
    fn greedy_removal_takes_the_least_harmful_layer_each_time() {
        // Layer weights: removing a layer costs its weight; layer 3 only matters once 1 is gone.
        let weights = [5.0, 1.0, 4.0, 2.0, 3.0];
        let order = greedy_removal::<()>(5, 3, |set| {
            let lost: f64 = (0..5)
                .filter(|&l| !set.contains(l))
                .map(|l| {
                    if l == 3 && !set.contains(1) {
                        10.0
                    } else {
                        weights[l]
                    }
                })
                .sum();
            Ok(100.0 - lost)
        })
        .unwrap();
        let layers: Vec<usize> = order.iter().map(|r| r.layer).collect();
        assert_eq!(layers, [1, 4, 2]);
        assert_eq!(order[0].score, 99.0);
        assert_eq!(order[2].score, 92.0);
        // It stops with one layer left, and passes errors on.
        assert_eq!(greedy_removal::<()>(3, 9, |_| Ok(0.0)).unwrap().len(), 2);
        assert_eq!(greedy_removal(3, 1, |_| Err("broken")), Err("broken"));
    }

    #[test]
    fn a_target_skips_the_nearest_prefix_of_the_order() {
        let config = StrategyConfig::from_settings(
            "searched",
            &["removal_order=[7, 2, 5, 0]", "target_skip_ratio=0.25"],
        )
        .unwrap();
        let solved = config.solve(8, 16).unwrap();
        let StrategyConfig::Searched(knobs) = &solved else {
            panic!("{solved:?}")
        };
        assert_eq!(knobs.skip, Some(2));
        let mut strategy = solved.build(8, 16).unwrap();
        let cx = StepContext {
            t: 1,
            max_new_tokens: 16,
            prompt_len: 4,
            layers: 8,
        };
        let plan = strategy.plan(&cx);
        assert_eq!(plan.run.iter().collect::<Vec<_>>(), [0, 1, 3, 4, 5, 6]);
        assert_eq!(plan.kv_fill, KvFill::Propagate);
        // Beyond the order's reach the target is unreachable.
        let far = StrategyConfig::from_settings(
            "searched",
            &["removal_order=[7]", "target_skip_ratio=0.5"],
        )
        .unwrap();
        assert!(matches!(
            far.solve(8, 16),
            Err(SkipError::TargetUnreachable { .. })
        ));
    }

    #[test]
    fn bad_orders_are_errors_naming_the_knob() {
        for (order, message) in [("[8]", "layer 8 of a 8-layer"), ("[1, 1]", "layer 1 twice")] {
            let config = StrategyConfig::from_settings(
                "searched",
                &[format!("removal_order={order}"), "skip=1".into()],
            )
            .unwrap();
            let err = config.solve(8, 16).unwrap_err().to_string();
            assert!(
                err.contains("removal_order") && err.contains(message),
                "{err}"
            );
        }
        let config =
            StrategyConfig::from_settings("searched", &["removal_order=[1]", "skip=2"]).unwrap();
        assert!(
            config
                .solve(8, 16)
                .unwrap_err()
                .to_string()
                .contains("`skip`")
        );
    }
}
