//! Static schedules: the plans a strategy gives for every token of a budget, before any data.

use crate::{LayerPlan, SkipError, StepContext, Strategy};

/// The plans for tokens `0..max_new_tokens` of a prompt of `prompt_len` tokens. Dynamic
/// strategies (CALM, the oracle) give their upper plan: what runs when nothing exits.
pub fn static_schedule(
    strategy: &mut dyn Strategy,
    layers: usize,
    max_new_tokens: usize,
    prompt_len: usize,
) -> Vec<LayerPlan> {
    (0..max_new_tokens)
        .map(|t| {
            strategy.plan(&StepContext {
                t,
                max_new_tokens,
                prompt_len,
                layers,
            })
        })
        .collect()
}

/// The fraction of layer applications a schedule skips: `1 - sum_t |run_t| / (L * T)`;
/// 0 for an empty schedule.
pub fn skip_ratio(plans: &[LayerPlan]) -> f64 {
    let slots: usize = plans.iter().map(|p| p.run.universe()).sum();
    if slots == 0 {
        return 0.0;
    }
    let run: usize = plans.iter().map(|p| p.run.count()).sum();
    1.0 - run as f64 / slots as f64
}

/// The skip ratio of a run count summed over `tokens` tokens of `layers` layers.
pub(crate) fn ratio_of(run: usize, layers: usize, tokens: usize) -> f64 {
    1.0 - run as f64 / (layers * tokens) as f64
}

/// Rejects targets outside `[0, 1)`.
pub(crate) fn check_target(strategy: &'static str, target: f64) -> Result<f64, SkipError> {
    if (0.0..1.0).contains(&target) {
        Ok(target)
    } else {
        Err(SkipError::TargetOutOfRange { strategy, target })
    }
}

/// Rejects a zero-layer model or a zero-token budget.
pub(crate) fn check_shape(
    strategy: &'static str,
    layers: usize,
    max_new_tokens: usize,
) -> Result<(), SkipError> {
    if layers == 0 || max_new_tokens == 0 {
        return Err(SkipError::EmptyShape {
            strategy,
            layers,
            max_new_tokens,
        });
    }
    Ok(())
}

/// A deterministic search over a knob grid: the candidate nearest the target, the earliest
/// one on ties (candidates come in order of preference), accepted only within `1/L`.
pub(crate) struct Search<C> {
    strategy: &'static str,
    target: f64,
    best: Option<(C, f64)>,
}

/// Two ratios closer than this are a tie (they differ by float noise, not by a layer).
const TIE: f64 = 1e-12;

impl<C: serde::Serialize> Search<C> {
    pub(crate) fn new(strategy: &'static str, target: f64) -> Self {
        Self {
            strategy,
            target,
            best: None,
        }
    }

    pub(crate) fn offer(&mut self, candidate: C, ratio: f64) {
        let better = match &self.best {
            None => true,
            Some((_, best)) => (ratio - self.target).abs() < (best - self.target).abs() - TIE,
        };
        if better {
            self.best = Some((candidate, ratio));
        }
    }

    /// The best candidate and its ratio, or why none is good enough.
    pub(crate) fn finish(
        self,
        layers: usize,
        max_new_tokens: usize,
    ) -> Result<(C, f64), SkipError> {
        let Some((candidate, ratio)) = self.best else {
            return Err(SkipError::TargetUnreachable {
                strategy: self.strategy,
                target: self.target,
                layers,
                max_new_tokens,
                nearest: f64::NAN,
                knobs: "no valid knob setting".into(),
            });
        };
        if (ratio - self.target).abs() <= 1.0 / layers as f64 + TIE {
            Ok((candidate, ratio))
        } else {
            Err(SkipError::TargetUnreachable {
                strategy: self.strategy,
                target: self.target,
                layers,
                max_new_tokens,
                nearest: ratio,
                knobs: serde_json::to_string(&candidate).unwrap_or_default(),
            })
        }
    }
}
