//! What the registry needs of a strategy's manifest form, its knobs: a name, a target skip
//! ratio, a solve that fills every knob in, and the strategy the knobs describe. Each
//! strategy's config implements it in its own file; `StrategyConfig` implements it by
//! dispatching to the config of its variant.

use crate::{SkipError, Strategy};

pub(crate) trait StrategyKnobs: Sized {
    /// The registry name, as a manifest's `name = "..."` gives it.
    fn name(&self) -> &'static str;

    /// Whether the layers that run depend on the data (the static plan is then an upper plan).
    fn is_dynamic(&self) -> bool {
        false
    }

    fn target_skip_ratio(&self) -> Option<f64>;

    fn set_target_skip_ratio(&mut self, target: f64);

    /// What tells this config's runs apart beyond the block's label and target, appended to
    /// the label (`drop` gives `L07` for its layer 7, so that a list of layers is a list of
    /// runs).
    fn run_suffix(&self) -> Option<String> {
        None
    }

    /// The same knobs with every one filled in: solved from `target_skip_ratio` when one is
    /// given (for `max_new_tokens` generated tokens after a prompt of the config's
    /// `prompt_len`, which only rules on the sequence clock have; 0 when unset), else defaulted.
    /// The target stays in the result for the record.
    fn solve(&self, layers: usize, max_new_tokens: usize) -> Result<Self, SkipError>;

    /// The strategy these knobs describe for an `L`-layer model generating up to
    /// `max_new_tokens` tokens; unset knobs take their defaults.
    fn strategy(
        &self,
        layers: usize,
        max_new_tokens: usize,
    ) -> Result<Box<dyn Strategy + Send>, SkipError>;

    /// The strategy for these knobs once solved: what the registry builds.
    fn solved_strategy(
        &self,
        layers: usize,
        max_new_tokens: usize,
    ) -> Result<Box<dyn Strategy + Send>, SkipError> {
        self.solve(layers, max_new_tokens)?
            .strategy(layers, max_new_tokens)
    }
}

/// The registry name and the `target_skip_ratio: Option<f64>` accessors, which every config
/// writes the same way; used inside an `impl StrategyKnobs for ...` block.
macro_rules! name_and_target {
    ($name:expr) => {
        fn name(&self) -> &'static str {
            $name
        }

        fn target_skip_ratio(&self) -> Option<f64> {
            self.target_skip_ratio
        }

        fn set_target_skip_ratio(&mut self, target: f64) {
            self.target_skip_ratio = Some(target);
        }
    };
}

pub(crate) use name_and_target;
