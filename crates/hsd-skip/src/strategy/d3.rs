//! D3-style depth decay (after arXiv 2503.08524): token `t` keeps
//! `n_t = max(min_layers, floor(L * alpha^t))` layers. Layers are dropped from the middle of
//! the stack outwards (0-based index `j` ranks by `|j - (L-1)/2|`, the lower index first on
//! ties), and the `core` layers at each end are never dropped. `n_t` never grows and the drop
//! order is fixed, so the sets are nested and `kv_fill = none` by default loses nothing.
//!
//! The defaults (`alpha = 0.99`, `core = 2`, `min_layers = 2 * core`) are this crate's choice.

use serde::{Deserialize, Serialize};

use crate::knobs::{StrategyKnobs, name_and_target};
use crate::schedule::{Search, check_shape, check_target, ratio_of};
use crate::{KvFill, LayerPlan, LayerSet, Position, SkipError, StepContext, Strategy};

const NAME: &str = "d3";

/// The manifest form of [`D3`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct D3Config {
    /// Per-token depth decay in `(0, 1]` (default 0.99).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// Depth floor (default `2 * core`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_layers: Option<usize>,
    /// Layers protected at each end of the stack (default 2).
    #[serde(default = "default_core")]
    pub core: usize,
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

fn default_core() -> usize {
    2
}

fn default_kv_fill() -> KvFill {
    KvFill::None
}

impl Default for D3Config {
    fn default() -> Self {
        Self {
            alpha: None,
            min_layers: None,
            core: default_core(),
            kv_fill: default_kv_fill(),
            position: Position::default(),
            prompt_len: None,
            target_skip_ratio: None,
        }
    }
}

impl D3Config {
    pub const DEFAULT_ALPHA: f64 = 0.99;
    /// Bisection steps on `alpha`: far below one token's worth of ratio at any practical `T`.
    const BISECTION_STEPS: usize = 60;

    fn default_min_layers(&self, layers: usize) -> usize {
        (2 * self.core).clamp(1, layers)
    }

    pub fn build(&self, layers: usize) -> Result<D3, SkipError> {
        let invalid = |knob, reason: String| SkipError::InvalidKnob {
            strategy: NAME,
            knob,
            reason,
        };
        let alpha = self.alpha.unwrap_or(Self::DEFAULT_ALPHA);
        if !(alpha > 0.0 && alpha <= 1.0) {
            return Err(invalid("alpha", format!("= {alpha} is not in (0, 1]")));
        }
        let protected = (2 * self.core).min(layers);
        let min_layers = self.min_layers.unwrap_or(self.default_min_layers(layers));
        if min_layers < protected.max(1) || min_layers > layers {
            return Err(invalid(
                "min_layers",
                format!(
                    "= {min_layers} is not in {}..={layers} (at least the 2 * core protected layers)",
                    protected.max(1)
                ),
            ));
        }
        let middle = self.core..layers.saturating_sub(self.core);
        let centre = (layers as f64 - 1.0) / 2.0;
        let mut drop_order: Vec<usize> = middle.collect();
        drop_order.sort_by(|&a, &b| {
            (a as f64 - centre)
                .abs()
                .total_cmp(&(b as f64 - centre).abs())
                .then(a.cmp(&b))
        });
        Ok(D3 {
            alpha,
            min_layers,
            drop_order,
            kv_fill: self.kv_fill,
            position: self.position,
        })
    }
}

impl StrategyKnobs for D3Config {
    name_and_target!(NAME);

    /// Fills `alpha` and `min_layers`. With a target and `alpha` free, bisects `alpha` (the
    /// ratio falls as `alpha` rises) at the given or default floor; with only `min_layers`
    /// free, searches it from `L` down. Both for `T` tokens after `prompt_len` prompt tokens
    /// (0 when unset).
    fn solve(&self, layers: usize, max_new_tokens: usize) -> Result<Self, SkipError> {
        check_shape(NAME, layers, max_new_tokens)?;
        let min_layers = self.min_layers.unwrap_or(self.default_min_layers(layers));
        let Some(target) = self.target_skip_ratio else {
            let solved = Self {
                alpha: Some(self.alpha.unwrap_or(Self::DEFAULT_ALPHA)),
                min_layers: Some(min_layers),
                ..self.clone()
            };
            solved.build(layers)?;
            return Ok(solved);
        };
        check_target(NAME, target)?;
        let ratio_of_config = |config: &Self| -> Result<f64, SkipError> {
            let d3 = config.build(layers)?;
            let run: usize = (0..max_new_tokens)
                .map(|t| {
                    let (at, _) = self
                        .position
                        .solver_clock(t, max_new_tokens, self.prompt_len);
                    d3.depth(at, layers)
                })
                .sum();
            Ok(ratio_of(run, layers, max_new_tokens))
        };
        let mut search = Search::new(NAME, target);
        match self.alpha {
            None => {
                let (mut low, mut high) = (0.0f64, 1.0f64);
                let at_one = Self {
                    alpha: Some(1.0),
                    min_layers: Some(min_layers),
                    ..self.clone()
                };
                search.offer(at_one.clone(), ratio_of_config(&at_one)?);
                for _ in 0..Self::BISECTION_STEPS {
                    let alpha = 0.5 * (low + high);
                    let candidate = Self {
                        alpha: Some(alpha),
                        ..at_one.clone()
                    };
                    let ratio = ratio_of_config(&candidate)?;
                    search.offer(candidate, ratio);
                    if ratio > target {
                        low = alpha;
                    } else {
                        high = alpha;
                    }
                }
            }
            Some(alpha) => {
                let floor = self.default_min_layers(layers).min(min_layers);
                for min_layers in self
                    .min_layers
                    .map_or((floor..=layers).rev().collect(), |n| vec![n])
                {
                    let candidate = Self {
                        alpha: Some(alpha),
                        min_layers: Some(min_layers),
                        ..self.clone()
                    };
                    if let Ok(ratio) = ratio_of_config(&candidate) {
                        search.offer(candidate, ratio);
                    }
                }
            }
        }
        let (solved, _) = search.finish(layers, max_new_tokens)?;
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

/// Depth decay: see the module documentation for the rule.
#[derive(Clone, Debug, PartialEq)]
pub struct D3 {
    alpha: f64,
    min_layers: usize,
    /// Unprotected layers, the first to go first.
    drop_order: Vec<usize>,
    kv_fill: KvFill,
    position: Position,
}

impl D3 {
    /// `n_t` at clock position `t` for an `L`-layer model.
    pub fn depth(&self, t: usize, layers: usize) -> usize {
        let decayed = (layers as f64 * self.alpha.powf(t as f64)).floor() as usize;
        decayed.clamp(self.min_layers, layers)
    }
}

impl Strategy for D3 {
    fn name(&self) -> &str {
        NAME
    }

    fn plan(&mut self, cx: &StepContext) -> LayerPlan {
        let (t, _) = self.position.clock(cx);
        let dropped = (cx.layers - self.depth(t, cx.layers)).min(self.drop_order.len());
        let mut run = LayerSet::all(cx.layers);
        for &layer in &self.drop_order[..dropped] {
            run.remove(layer);
        }
        LayerPlan {
            run,
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
    fn drops_the_middle_first_and_keeps_the_core() {
        let config = D3Config {
            alpha: Some(0.5),
            ..Default::default()
        };
        let plans = static_schedule(&mut config.build(10).unwrap(), 10, 4, 0);
        assert_eq!(plans[0].run.count(), 10);
        // floor(10 * 0.5) = 5: layers 4, 5, 3, 6, 2... go in that order; five are dropped.
        assert_eq!(plans[1].run.to_bits(), [1, 1, 0, 0, 0, 0, 0, 1, 1, 1]);
        assert_eq!(plans[3].run.to_bits(), [1, 1, 0, 0, 0, 0, 0, 0, 1, 1]);
        for pair in plans.windows(2) {
            assert!(pair[1].run.is_subset(&pair[0].run));
        }
    }

    #[test]
    fn floor_below_the_protected_layers_is_rejected() {
        let config = D3Config {
            min_layers: Some(3),
            ..Default::default()
        };
        assert!(matches!(
            config.build(12),
            Err(SkipError::InvalidKnob {
                knob: "min_layers",
                ..
            })
        ));
    }
}
