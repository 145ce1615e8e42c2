//! The early-exit oracle (analysis, beyond the paper): every layer runs and is checked with the
//! LM head, nothing exits, and for every token and batch row the strategy records the first
//! layer whose argmax equals the last layer's. Exiting there gives the full model's token, so
//! the record bounds what any early-exit rule could skip. It also records the layer from which
//! the argmax stays equal to the last layer's up to the top.

use serde::{Deserialize, Serialize};

use crate::exits::{ExitObservations, OracleToken};
use crate::knobs::{StrategyKnobs, name_and_target};
use crate::schedule::check_shape;
use crate::{LayerPlan, LayerSet, LayerSignal, SignalKind, SkipError, StepContext, Strategy};

const NAME: &str = "oracle";

/// The manifest form of [`Oracle`]: no knobs, and no target (it never skips).
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OracleConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_skip_ratio: Option<f64>,
}

impl StrategyKnobs for OracleConfig {
    name_and_target!(NAME);

    fn is_dynamic(&self) -> bool {
        true
    }

    fn solve(&self, layers: usize, max_new_tokens: usize) -> Result<Self, SkipError> {
        check_shape(NAME, layers, max_new_tokens)?;
        match self.target_skip_ratio {
            Some(target) => Err(SkipError::TargetUnreachable {
                strategy: NAME,
                target,
                layers,
                max_new_tokens,
                nearest: 0.0,
                knobs: "the oracle runs every layer and records where it could have exited".into(),
            }),
            None => Ok(self.clone()),
        }
    }

    fn strategy(
        &self,
        _layers: usize,
        _max_new_tokens: usize,
    ) -> Result<Box<dyn Strategy + Send>, SkipError> {
        Ok(Box::new(Oracle::new()))
    }
}

/// The oracle: see the module documentation.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Oracle {
    /// The token whose checks are being collected, and each checked layer's argmax per row.
    current: Option<(usize, Vec<Vec<Option<usize>>>)>,
    observations: ExitObservations,
}

impl Oracle {
    pub fn new() -> Self {
        Self::default()
    }

    /// One entry per token whose last layer was checked, in order.
    pub fn tokens(&self) -> &[OracleToken] {
        self.observations.tokens()
    }

    fn finish(&mut self, t: usize, argmax: &[Vec<Option<usize>>]) {
        let Some(last) = argmax.last() else { return };
        let mut first_match = Vec::with_capacity(last.len());
        let mut settled = Vec::with_capacity(last.len());
        for (row, &top) in last.iter().enumerate() {
            let agrees = |layer: &Vec<Option<usize>>| {
                top.is_some() && layer.get(row).copied().flatten() == top
            };
            first_match.push(top.and_then(|_| argmax.iter().position(agrees)));
            settled.push(top.map(|_| {
                argmax
                    .iter()
                    .rposition(|layer| !agrees(layer))
                    .map_or(0, |l| l + 1)
            }));
        }
        self.observations.push(OracleToken {
            t,
            first_match,
            settled,
        });
    }
}

fn argmax(probs: &[f32]) -> Option<usize> {
    probs
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
        .map(|(i, _)| i)
}

impl Strategy for Oracle {
    fn name(&self) -> &str {
        NAME
    }

    fn plan(&mut self, cx: &StepContext) -> LayerPlan {
        LayerPlan::full(cx.layers).with_checks(LayerSet::all(cx.layers))
    }

    fn signal_kind(&self) -> SignalKind {
        SignalKind::Probs
    }

    fn exit_after(&mut self, cx: &StepContext, layer: usize, signals: &[LayerSignal<'_>]) -> bool {
        if self.current.as_ref().is_none_or(|(t, _)| *t != cx.t) {
            self.current = Some((cx.t, vec![Vec::new(); cx.layers]));
        }
        if let Some((_, table)) = self.current.as_mut()
            && let Some(entry) = table.get_mut(layer)
        {
            *entry = signals.iter().map(|s| s.probs.and_then(argmax)).collect();
        }
        if layer + 1 == cx.layers
            && let Some((t, table)) = self.current.take()
        {
            self.finish(t, &table);
        }
        false
    }

    fn exit_observations(&self) -> Option<&ExitObservations> {
        Some(&self.observations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_the_first_agreeing_and_the_settled_layer_per_row() {
        let mut oracle = Oracle::new();
        let cx = StepContext {
            t: 3,
            max_new_tokens: 8,
            prompt_len: 5,
            layers: 4,
        };
        let plan = oracle.plan(&cx);
        assert_eq!((plan.run.count(), plan.checks.count()), (4, 4));
        let hidden = [0.0f32];
        // Row 0's argmax per layer: 1, 0, 1, 1; row 1's: 0, 0, 0, 0.
        let per_layer: [[&[f32]; 2]; 4] = [
            [&[0.2, 0.8], &[0.9, 0.1]],
            [&[0.7, 0.3], &[0.6, 0.4]],
            [&[0.1, 0.9], &[0.8, 0.2]],
            [&[0.3, 0.7], &[0.5, 0.4]],
        ];
        for (layer, rows) in per_layer.iter().enumerate() {
            let signals: Vec<_> = rows
                .iter()
                .map(|&p| LayerSignal {
                    hidden: &hidden,
                    previous: &hidden,
                    probs: Some(p),
                })
                .collect();
            assert!(!oracle.exit_after(&cx, layer, &signals));
        }
        assert_eq!(
            oracle.tokens(),
            [OracleToken {
                t: 3,
                first_match: vec![Some(0), Some(0)],
                settled: vec![Some(2), Some(0)]
            }]
        );
        let observations = oracle.exit_observations().unwrap();
        assert_eq!(observations.tokens(), oracle.tokens());
        assert_eq!(observations.fewest_layers(0, 4)[3], Some(1));
    }
}
