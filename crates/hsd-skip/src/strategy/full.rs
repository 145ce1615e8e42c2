//! Vanilla decoding: every layer runs for every token.

use serde::{Deserialize, Serialize};

use crate::knobs::{StrategyKnobs, name_and_target};
use crate::schedule::{check_shape, check_target};
use crate::{LayerPlan, SkipError, StepContext, Strategy};

const NAME: &str = "full";

/// The manifest form of [`Full`]: no knobs; a target is accepted only within `1/L` of 0.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FullConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_skip_ratio: Option<f64>,
}

impl StrategyKnobs for FullConfig {
    name_and_target!(NAME);

    fn solve(&self, layers: usize, max_new_tokens: usize) -> Result<Self, SkipError> {
        check_shape(NAME, layers, max_new_tokens)?;
        if let Some(target) = self.target_skip_ratio
            && check_target(NAME, target)? > 1.0 / layers as f64
        {
            return Err(SkipError::TargetUnreachable {
                strategy: NAME,
                target,
                layers,
                max_new_tokens,
                nearest: 0.0,
                knobs: "full skips nothing".into(),
            });
        }
        Ok(self.clone())
    }

    fn strategy(
        &self,
        _layers: usize,
        _max_new_tokens: usize,
    ) -> Result<Box<dyn Strategy + Send>, SkipError> {
        Ok(Box::new(Full))
    }
}

/// Vanilla decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Full;

impl Strategy for Full {
    fn name(&self) -> &str {
        NAME
    }

    fn plan(&mut self, cx: &StepContext) -> LayerPlan {
        LayerPlan::full(cx.layers)
    }
}
