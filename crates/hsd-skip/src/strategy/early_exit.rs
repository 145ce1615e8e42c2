//! Static early exit: every token runs the first `n` layers (0-based `0..n`) and no other. The
//! set never changes, so `kv_fill = none` by default loses nothing.

use serde::{Deserialize, Serialize};

use crate::knobs::{StrategyKnobs, name_and_target};
use crate::schedule::{Search, check_shape, check_target, ratio_of};
use crate::strategy::fixed_set::FixedSet;
use crate::{KvFill, LayerSet, SkipError, Strategy};

const NAME: &str = "early_exit";

/// The manifest form of a static early exit, which runs as a [`FixedSet`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyExitConfig {
    /// Layers run, `n`: required unless `target_skip_ratio` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_layers: Option<usize>,
    #[serde(default = "default_kv_fill")]
    pub kv_fill: KvFill,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_skip_ratio: Option<f64>,
}

fn default_kv_fill() -> KvFill {
    KvFill::None
}

impl Default for EarlyExitConfig {
    fn default() -> Self {
        Self {
            n_layers: None,
            kv_fill: default_kv_fill(),
            target_skip_ratio: None,
        }
    }
}

impl EarlyExitConfig {
    pub fn build(&self, layers: usize) -> Result<FixedSet, SkipError> {
        let invalid = |reason: String| SkipError::InvalidKnob {
            strategy: NAME,
            knob: "n_layers",
            reason,
        };
        let n_layers = self
            .n_layers
            .ok_or_else(|| invalid("is required unless target_skip_ratio is given".into()))?;
        if n_layers == 0 || n_layers > layers {
            return Err(invalid(format!("= {n_layers} is not in 1..={layers}")));
        }
        Ok(FixedSet::new(
            NAME,
            LayerSet::from_fn(layers, |j| j < n_layers),
            self.kv_fill,
        ))
    }
}

impl StrategyKnobs for EarlyExitConfig {
    name_and_target!(NAME);

    /// With a target, `n` in `1..=L` nearest `(1 - target) * L`.
    fn solve(&self, layers: usize, max_new_tokens: usize) -> Result<Self, SkipError> {
        check_shape(NAME, layers, max_new_tokens)?;
        let Some(target) = self.target_skip_ratio else {
            self.build(layers)?;
            return Ok(self.clone());
        };
        check_target(NAME, target)?;
        let mut search = Search::new(NAME, target);
        for n_layers in self
            .n_layers
            .map_or((1..=layers).rev().collect(), |n| vec![n])
        {
            search.offer(
                Self {
                    n_layers: Some(n_layers),
                    ..self.clone()
                },
                ratio_of(n_layers, layers, 1),
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
