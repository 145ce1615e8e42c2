//! CALM (Schuster et al. 2022): exit the stack once the model is confident enough.
//!
//! After each allowed exit layer (1-based `i >= min_exit` with `(i - min_exit) mod
//! exit_interval == 0`, below `L`) the confidence of every sequence is measured; the stack stops
//! once the least confident sequence of the batch reaches the threshold
//! `0.9*lambda + 0.1*lambda*exp(-tau*t/T)`, which relaxes towards `0.9*lambda` as decoding goes
//! on. The measures: `softmax_max` (top probability) and `softmax_diff` (top-1 minus top-2
//! probability) read the LM head on the final-normed intermediate state, which the accounting
//! charges per check; `state` is the cosine between the states leaving and entering the layer.
//! The layers above an exit propagate their K/V by default.
//!
//! The skip ratio depends on the data, so `target_skip_ratio` cannot be solved from the knobs:
//! [`calibrate_threshold`] bisects `threshold` against a measured ratio in the runner.

use serde::{Deserialize, Serialize};

use crate::knobs::{StrategyKnobs, name_and_target};
use crate::{
    KvFill, LayerPlan, LayerSet, LayerSignal, Position, SignalKind, SkipError, StepContext,
    Strategy,
};

const NAME: &str = "calm";

/// The confidence a check computes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    #[default]
    SoftmaxMax,
    SoftmaxDiff,
    State,
}

/// The manifest form of [`Calm`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalmConfig {
    #[serde(default)]
    pub measure: Measure,
    /// `lambda`: required (see the module documentation for why a target cannot replace it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// `tau` (default 4).
    #[serde(default = "default_position_temp")]
    pub position_temp: f64,
    /// The lowest 1-based layer after which the stack may stop (default 1).
    #[serde(default = "one")]
    pub min_exit: usize,
    /// Layers between allowed exits (default 1: every layer).
    #[serde(default = "one")]
    pub exit_interval: usize,
    #[serde(default)]
    pub kv_fill: KvFill,
    #[serde(default)]
    pub position: Position,
    /// Kept for the record; the runner calibrates `threshold` towards it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_skip_ratio: Option<f64>,
}

fn default_position_temp() -> f64 {
    4.0
}

fn one() -> usize {
    1
}

impl Default for CalmConfig {
    fn default() -> Self {
        Self {
            measure: Measure::default(),
            threshold: None,
            position_temp: default_position_temp(),
            min_exit: one(),
            exit_interval: one(),
            kv_fill: KvFill::default(),
            position: Position::default(),
            target_skip_ratio: None,
        }
    }
}

impl CalmConfig {
    pub fn build(&self, layers: usize) -> Result<Calm, SkipError> {
        let Some(threshold) = self.threshold else {
            return Err(SkipError::NeedsCalibration {
                strategy: NAME,
                knob: "threshold",
            });
        };
        if !threshold.is_finite() {
            return Err(invalid("threshold", "must be finite"));
        }
        if !(self.position_temp.is_finite() && self.position_temp >= 0.0) {
            return Err(invalid("position_temp", "must be finite and non-negative"));
        }
        if self.min_exit == 0 || self.min_exit > layers {
            return Err(invalid(
                "min_exit",
                &format!("= {} is not a layer in 1..={layers}", self.min_exit),
            ));
        }
        if self.exit_interval == 0 {
            return Err(invalid("exit_interval", "must be at least 1"));
        }
        Ok(Calm {
            measure: self.measure,
            threshold,
            position_temp: self.position_temp,
            min_exit: self.min_exit,
            exit_interval: self.exit_interval,
            kv_fill: self.kv_fill,
            position: self.position,
        })
    }
}

impl StrategyKnobs for CalmConfig {
    name_and_target!(NAME);

    fn is_dynamic(&self) -> bool {
        true
    }

    /// Checks the knobs; there is nothing to solve.
    fn solve(&self, layers: usize, max_new_tokens: usize) -> Result<Self, SkipError> {
        crate::schedule::check_shape(NAME, layers, max_new_tokens)?;
        if let Some(target) = self.target_skip_ratio {
            crate::schedule::check_target(NAME, target)?;
        }
        self.build(layers)?;
        Ok(self.clone())
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

/// CALM: see the module documentation for the rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Calm {
    measure: Measure,
    threshold: f64,
    position_temp: f64,
    min_exit: usize,
    exit_interval: usize,
    kv_fill: KvFill,
    position: Position,
}

impl Calm {
    /// The confidence needed to exit for the token described by `cx`.
    pub fn threshold_at(&self, cx: &StepContext) -> f64 {
        let (t, budget) = self.position.clock(cx);
        let progress = t as f64 / budget.max(1) as f64;
        0.9 * self.threshold + 0.1 * self.threshold * (-self.position_temp * progress).exp()
    }

    /// The confidence of one sequence, or `None` when the signal lacks what the measure reads.
    pub fn confidence(&self, signal: &LayerSignal<'_>) -> Option<f64> {
        match self.measure {
            Measure::SoftmaxMax => top_two(signal.probs?).map(|(first, _)| first),
            Measure::SoftmaxDiff => top_two(signal.probs?).map(|(first, second)| first - second),
            Measure::State => cosine(signal.hidden, signal.previous),
        }
    }
}

/// The two largest probabilities (the second is 0 for a one-word vocabulary).
fn top_two(probs: &[f32]) -> Option<(f64, f64)> {
    let mut first = f64::NEG_INFINITY;
    let mut second = 0.0f64;
    for &p in probs {
        let p = f64::from(p);
        if p > first {
            second = first.max(0.0);
            first = p;
        } else if p > second {
            second = p;
        }
    }
    (first.is_finite()).then_some((first, second))
}

fn cosine(a: &[f32], b: &[f32]) -> Option<f64> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let (mut dot, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        dot += x * y;
        aa += x * x;
        bb += y * y;
    }
    let norms = (aa * bb).sqrt();
    (norms > 0.0 && norms.is_finite()).then(|| dot / norms)
}

impl Strategy for Calm {
    fn name(&self) -> &str {
        NAME
    }

    fn plan(&mut self, cx: &StepContext) -> LayerPlan {
        let checks = LayerSet::from_fn(cx.layers, |j| {
            let layer = j + 1;
            layer < cx.layers
                && layer >= self.min_exit
                && (layer - self.min_exit).is_multiple_of(self.exit_interval)
        });
        LayerPlan {
            run: LayerSet::all(cx.layers),
            kv_fill: self.kv_fill,
            checks,
        }
    }

    fn signal_kind(&self) -> SignalKind {
        match self.measure {
            Measure::SoftmaxMax | Measure::SoftmaxDiff => SignalKind::Probs,
            Measure::State => SignalKind::Hidden,
        }
    }

    fn exit_after(&mut self, cx: &StepContext, _layer: usize, signals: &[LayerSignal<'_>]) -> bool {
        let needed = self.threshold_at(cx);
        !signals.is_empty()
            && signals
                .iter()
                .all(|s| self.confidence(s).is_some_and(|c| c >= needed))
    }
}

/// One step of [`calibrate_threshold`]: a threshold and the skip ratio measured with it.
#[derive(Clone, Copy, PartialEq, Debug, Serialize, Deserialize)]
pub struct Calibration {
    pub threshold: f64,
    pub skip_ratio: f64,
}

/// Bisects `threshold` in `[low, high]` towards `target` skip ratio, assuming the measured
/// ratio falls as the threshold rises. `measure` runs CALM with a threshold (for instance on a
/// calibration split) and returns the skip ratio it measured. Stops after `steps` measurements
/// or once a ratio is within `tolerance`; returns the measurement nearest the target.
pub fn calibrate_threshold<E>(
    target: f64,
    (mut low, mut high): (f64, f64),
    tolerance: f64,
    steps: usize,
    mut measure: impl FnMut(f64) -> Result<f64, E>,
) -> Result<Option<Calibration>, E> {
    let mut best: Option<Calibration> = None;
    for _ in 0..steps {
        let threshold = 0.5 * (low + high);
        let skip_ratio = measure(threshold)?;
        let step = Calibration {
            threshold,
            skip_ratio,
        };
        if best.is_none_or(|b| (skip_ratio - target).abs() < (b.skip_ratio - target).abs()) {
            best = Some(step);
        }
        if (skip_ratio - target).abs() <= tolerance {
            break;
        }
        if skip_ratio > target {
            low = threshold;
        } else {
            high = threshold;
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calm(measure: Measure, threshold: f64) -> Calm {
        CalmConfig {
            measure,
            threshold: Some(threshold),
            ..Default::default()
        }
        .build(6)
        .unwrap()
    }

    fn cx(t: usize) -> StepContext {
        StepContext {
            t,
            max_new_tokens: 10,
            prompt_len: 0,
            layers: 6,
        }
    }

    #[test]
    fn threshold_decays_from_lambda_towards_nine_tenths() {
        let calm = calm(Measure::SoftmaxMax, 0.8);
        assert!((calm.threshold_at(&cx(0)) - 0.8).abs() < 1e-12);
        let expected = 0.72 + 0.08 * (-2.0f64).exp();
        assert!((calm.threshold_at(&cx(5)) - expected).abs() < 1e-12);
    }

    #[test]
    fn checks_start_at_min_exit_every_interval_below_the_top() {
        let config = CalmConfig {
            threshold: Some(0.5),
            min_exit: 2,
            exit_interval: 2,
            ..Default::default()
        };
        let plan = config.build(8).unwrap().plan(&StepContext {
            t: 0,
            max_new_tokens: 4,
            prompt_len: 0,
            layers: 8,
        });
        assert_eq!(plan.checks.iter().collect::<Vec<_>>(), [1, 3, 5]);
        assert_eq!(plan.run.count(), 8);
    }

    #[test]
    fn the_least_confident_row_decides_the_exit() {
        let mut calm = calm(Measure::SoftmaxDiff, 0.5);
        let hidden = [1.0f32, 0.0];
        let row = |probs| LayerSignal {
            hidden: &hidden,
            previous: &hidden,
            probs: Some(probs),
        };
        let confident: &[f32] = &[0.9, 0.05, 0.05];
        let unsure: &[f32] = &[0.5, 0.4, 0.1];
        assert!(calm.exit_after(&cx(0), 2, &[row(confident), row(confident)]));
        assert!(!calm.exit_after(&cx(0), 2, &[row(confident), row(unsure)]));
        assert!(!calm.exit_after(&cx(0), 2, &[]));
    }

    #[test]
    fn state_measure_is_the_cosine_and_needs_no_probs() {
        let mut calm = calm(Measure::State, 0.99);
        assert_eq!(calm.signal_kind(), SignalKind::Hidden);
        let same = LayerSignal {
            hidden: &[1.0, 2.0],
            previous: &[2.0, 4.0],
            probs: None,
        };
        let turned = LayerSignal {
            hidden: &[1.0, 0.0],
            previous: &[0.0, 1.0],
            probs: None,
        };
        assert!(calm.exit_after(&cx(0), 1, &[same]));
        assert!(!calm.exit_after(&cx(0), 1, &[turned]));
    }

    #[test]
    fn a_missing_threshold_asks_for_calibration() {
        let config = CalmConfig {
            target_skip_ratio: Some(0.5),
            ..Default::default()
        };
        assert!(matches!(
            config.solve(12, 8),
            Err(SkipError::NeedsCalibration { .. })
        ));
    }

    #[test]
    fn calibration_finds_the_threshold_of_a_monotone_response() {
        let response = |threshold: f64| Ok::<_, ()>(1.0 - threshold * threshold);
        let found = calibrate_threshold(0.36, (0.0, 1.0), 1e-4, 40, response)
            .unwrap()
            .unwrap();
        assert!((found.threshold - 0.8).abs() < 1e-3, "{found:?}");
    }
}
