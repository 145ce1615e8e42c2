//! A constant interleave: HSD with a single level. Of the layers `1..=L`, layer `i` runs iff
//! `i mod (s+1) == 0` for every token (0-based index `j` iff `(j+1) mod (s+1) == 0`), plus
//! layer `L` with `keep_last`. The set never changes, so a skipped layer is one no generated
//! token ever attends at: `kv_fill = none` by default loses nothing.

use serde::{Deserialize, Serialize};

use crate::knobs::{StrategyKnobs, name_and_target};
use crate::schedule::{Search, check_shape, check_target, ratio_of};
use crate::strategy::fixed_set::FixedSet;
use crate::strategy::hsd::forwarded;
use crate::{KvFill, SkipError, Strategy};

const NAME: &str = "static";

/// The manifest form of the static interleave, which runs as a [`FixedSet`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// Layers skipped between forwarded ones, `s` (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<usize>,
    #[serde(default)]
    pub keep_last: bool,
    #[serde(default = "default_kv_fill")]
    pub kv_fill: KvFill,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_skip_ratio: Option<f64>,
}

fn default_kv_fill() -> KvFill {
    KvFill::None
}

impl Default for StaticConfig {
    fn default() -> Self {
        Self {
            skip: None,
            keep_last: false,
            kv_fill: default_kv_fill(),
            target_skip_ratio: None,
        }
    }
}

impl StaticConfig {
    pub const DEFAULT_SKIP: usize = 1;

    pub fn build(&self, layers: usize) -> Result<FixedSet, SkipError> {
        let skip = self.skip.unwrap_or(Self::DEFAULT_SKIP);
        if skip >= layers {
            return Err(SkipError::InvalidKnob {
                strategy: NAME,
                knob: "skip",
                reason: format!("= {skip} would run no layer of {layers}"),
            });
        }
        Ok(FixedSet::new(
            NAME,
            forwarded(layers, skip, false, self.keep_last),
            self.kv_fill,
        ))
    }
}

impl StrategyKnobs for StaticConfig {
    name_and_target!(NAME);

    /// Fills `skip`; with a target, the `s` in `0..L` nearest it.
    fn solve(&self, layers: usize, max_new_tokens: usize) -> Result<Self, SkipError> {
        check_shape(NAME, layers, max_new_tokens)?;
        let Some(target) = self.target_skip_ratio else {
            let solved = Self {
                skip: Some(self.skip.unwrap_or(Self::DEFAULT_SKIP)),
                ..self.clone()
            };
            solved.build(layers)?;
            return Ok(solved);
        };
        check_target(NAME, target)?;
        let mut search = Search::new(NAME, target);
        for skip in self.skip.map_or((0..layers).collect(), |s| vec![s]) {
            let run = forwarded(layers, skip, false, self.keep_last).count();
            search.offer(
                Self {
                    skip: Some(skip),
                    ..self.clone()
                },
                ratio_of(run, layers, 1),
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
