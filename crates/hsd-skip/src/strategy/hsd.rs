//! Hierarchical Skip Decoding (Zhu et al. 2024), reconstructed with every choice a knob.
//!
//! With `H` levels, token `t` of a budget `T` sits at level `k = min(H-1, floor(H*t/T))` and
//! skips `s_k = s_min + round(k*(s_max-s_min)/(H-1))` layers between forwarded ones (`s_min`
//! when `H = 1`). Of the layers numbered `1..=L`, layer `i` runs iff `i mod (s_k+1) == 0`; in
//! code layers are 0-based, so index `j` runs iff `(j+1) mod (s_k+1) == 0`. `keep_last` also
//! runs layer `L`, `keep_first` layer 1 (which the rule drops at every level that skips: an
//! ablation knob, since a random choice of layers, which keeps layer 1 now and then, beat HSD
//! on the zero-shot model). The sets of different levels are not nested (level 1 with `s = 1` runs the
//! even layers, level 2 with `s = 2` runs multiples of 3), so skipped layers propagate K/V by
//! default.

use serde::{Deserialize, Serialize};

use crate::knobs::{StrategyKnobs, name_and_target};
use crate::schedule::{Search, check_shape, check_target, ratio_of};
use crate::{KvFill, LayerPlan, LayerSet, Position, SkipError, StepContext, Strategy};

const NAME: &str = "hsd";

/// The manifest form of [`Hsd`]. Unset knobs take their defaults, or are solved for when
/// `target_skip_ratio` is given.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HsdConfig {
    /// Number of levels `H` (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub levels: Option<usize>,
    /// Skip count of the first level `s_min` (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_skip: Option<usize>,
    /// Skip count of the last level `s_max` (default 3, or `L - 1` below 4 layers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_skip: Option<usize>,
    /// Always run the last layer (default false).
    #[serde(default)]
    pub keep_last: bool,
    /// Always run the first layer (default false; stated only when true, so that records made
    /// before the knob existed still read the same).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_first: bool,
    /// What skipped layers write to the cache (default `propagate`; `none` is the ablation).
    #[serde(default)]
    pub kv_fill: KvFill,
    #[serde(default)]
    pub position: Position,
    #[doc = crate::position::prompt_len_doc!()]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_len: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_skip_ratio: Option<f64>,
}

impl HsdConfig {
    pub const DEFAULT_LEVELS: usize = 4;
    pub const DEFAULT_MIN_SKIP: usize = 0;
    pub const DEFAULT_MAX_SKIP: usize = 3;
    fn default_max_skip(layers: usize) -> usize {
        Self::DEFAULT_MAX_SKIP.min(layers.saturating_sub(1))
    }

    /// The level counts the solver tries when `levels` is free, in order of preference.
    const LEVEL_GRID: [usize; 8] = [4, 3, 5, 2, 6, 1, 7, 8];

    /// The nearest setting with `levels` and `min_skip` fixed where given, free otherwise.
    fn search(
        &self,
        target: f64,
        levels: Option<usize>,
        min_skip: Option<usize>,
        layers: usize,
        max_new_tokens: usize,
    ) -> Result<Self, SkipError> {
        let level_grid: Vec<usize> = levels.map_or(Self::LEVEL_GRID.to_vec(), |h| vec![h]);
        let min_grid: Vec<usize> = min_skip.map_or((0..layers).collect(), |s| vec![s]);
        let mut search = Search::new(NAME, target);
        for &levels in &level_grid {
            if levels == 0 {
                return Err(invalid("levels", "must be at least 1"));
            }
            let mut tokens_at_level = vec![0usize; levels];
            for t in 0..max_new_tokens {
                let (at, budget) = self
                    .position
                    .solver_clock(t, max_new_tokens, self.prompt_len);
                tokens_at_level[level_of(levels, at, budget)] += 1;
            }
            for &min_skip in &min_grid {
                let max_grid: Vec<usize> = match self.max_skip {
                    Some(s) => vec![s],
                    None if levels == 1 => vec![min_skip],
                    None => (min_skip..layers).collect(),
                };
                for &max_skip in max_grid.iter().filter(|&&s| s >= min_skip && s < layers) {
                    let run: usize = (0..levels)
                        .map(|k| {
                            let skip = skip_of(levels, min_skip, max_skip, k);
                            tokens_at_level[k]
                                * forwarded_count(layers, skip, self.keep_first, self.keep_last)
                        })
                        .sum();
                    let candidate = Self {
                        levels: Some(levels),
                        min_skip: Some(min_skip),
                        max_skip: Some(max_skip),
                        ..self.clone()
                    };
                    search.offer(candidate, ratio_of(run, layers, max_new_tokens));
                }
            }
        }
        let (solved, _) = search.finish(layers, max_new_tokens)?;
        Ok(solved)
    }

    /// The strategy for an `L`-layer model; unset knobs take their defaults.
    pub fn build(&self, layers: usize) -> Result<Hsd, SkipError> {
        let levels = self.levels.unwrap_or(Self::DEFAULT_LEVELS);
        let min_skip = self.min_skip.unwrap_or(Self::DEFAULT_MIN_SKIP);
        let max_skip = self.max_skip.unwrap_or(Self::default_max_skip(layers));
        if levels == 0 {
            return Err(invalid("levels", "must be at least 1"));
        }
        if min_skip > max_skip {
            return Err(invalid(
                "min_skip",
                &format!("= {min_skip} exceeds max_skip = {max_skip}"),
            ));
        }
        if max_skip >= layers {
            return Err(invalid(
                "max_skip",
                &format!("= {max_skip} would run no layer of {layers}"),
            ));
        }
        Ok(Hsd {
            levels,
            min_skip,
            max_skip,
            keep_first: self.keep_first,
            keep_last: self.keep_last,
            kv_fill: self.kv_fill,
            position: self.position,
        })
    }
}

impl StrategyKnobs for HsdConfig {
    name_and_target!(NAME);

    /// Fills every knob: from the target when one is given, else from the defaults. The search
    /// runs for `T` tokens (after `prompt_len` prompt tokens under the sequence clock, else 0)
    /// over the free knobs, in stages: `max_skip` alone
    /// (the other knobs at their defaults), then also `levels` in 1..=8, then also `min_skip`;
    /// the first stage whose nearest ratio is within `1/L` wins.
    fn solve(&self, layers: usize, max_new_tokens: usize) -> Result<Self, SkipError> {
        check_shape(NAME, layers, max_new_tokens)?;
        let Some(target) = self.target_skip_ratio else {
            let solved = Self {
                levels: Some(self.levels.unwrap_or(Self::DEFAULT_LEVELS)),
                min_skip: Some(self.min_skip.unwrap_or(Self::DEFAULT_MIN_SKIP)),
                max_skip: Some(self.max_skip.unwrap_or(Self::default_max_skip(layers))),
                ..self.clone()
            };
            solved.build(layers)?;
            return Ok(solved);
        };
        check_target(NAME, target)?;
        // Widen the search one knob at a time, so a solution keeps the default shape (four
        // levels from the full stack) whenever that shape comes within 1/L.
        let default_levels = self.levels.or(Some(Self::DEFAULT_LEVELS));
        let default_min = self.min_skip.or(Some(Self::DEFAULT_MIN_SKIP));
        let stages = [
            (default_levels, default_min),
            (self.levels, default_min),
            (self.levels, self.min_skip),
        ];
        let mut outcome = Err(invalid("levels", "no search stage ran"));
        for (levels, min_skip) in stages {
            outcome = self.search(target, levels, min_skip, layers, max_new_tokens);
            if outcome.is_ok() {
                break;
            }
        }
        outcome
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

/// `k = min(H-1, floor(H*t/T))`.
fn level_of(levels: usize, t: usize, max_new_tokens: usize) -> usize {
    (levels * t / max_new_tokens).min(levels - 1)
}

/// `s_k = s_min + round(k*(s_max-s_min)/(H-1))`, rounding halves up, in integers.
fn skip_of(levels: usize, min_skip: usize, max_skip: usize, level: usize) -> usize {
    if levels == 1 {
        return min_skip;
    }
    let span = level * (max_skip - min_skip);
    let steps = levels - 1;
    min_skip + (2 * span + steps) / (2 * steps)
}

/// The layers (0-based) forwarded when skipping `skip` between forwarded ones, plus the first
/// and the last where `keep_first` and `keep_last` ask for them.
pub(crate) fn forwarded(layers: usize, skip: usize, keep_first: bool, keep_last: bool) -> LayerSet {
    LayerSet::from_fn(layers, |j| {
        (j + 1).is_multiple_of(skip + 1) || (keep_first && j == 0) || (keep_last && j + 1 == layers)
    })
}

/// `|forwarded(layers, skip, keep_first, keep_last)|` in closed form.
fn forwarded_count(layers: usize, skip: usize, keep_first: bool, keep_last: bool) -> usize {
    // The rule runs layer 1 itself only when nothing is skipped, and layer L when it is a
    // multiple of `skip + 1`; in a one-layer model the first layer is the last.
    let first = keep_first && skip > 0;
    let last = keep_last && !layers.is_multiple_of(skip + 1);
    layers / (skip + 1) + usize::from(first) + usize::from(last)
        - usize::from(first && last && layers == 1)
}

/// Hierarchical skip decoding: see the module documentation for the rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Hsd {
    levels: usize,
    min_skip: usize,
    max_skip: usize,
    keep_first: bool,
    keep_last: bool,
    kv_fill: KvFill,
    position: Position,
}

impl Hsd {
    /// The level of the token described by `cx`.
    pub fn level(&self, cx: &StepContext) -> usize {
        let (t, budget) = self.position.clock(cx);
        level_of(self.levels, t, budget.max(1))
    }

    /// The skip count `s_k` at `level`.
    pub fn skip_at(&self, level: usize) -> usize {
        skip_of(
            self.levels,
            self.min_skip,
            self.max_skip,
            level.min(self.levels - 1),
        )
    }
}

impl Strategy for Hsd {
    fn name(&self) -> &str {
        NAME
    }

    fn plan(&mut self, cx: &StepContext) -> LayerPlan {
        let skip = self.skip_at(self.level(cx));
        LayerPlan {
            run: forwarded(cx.layers, skip, self.keep_first, self.keep_last),
            kv_fill: self.kv_fill,
            checks: LayerSet::empty(cx.layers),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Strategy;
    use crate::schedule::{skip_ratio, static_schedule};
    use proptest::prelude::*;

    fn cx(t: usize, max_new_tokens: usize, layers: usize) -> StepContext {
        StepContext {
            t,
            max_new_tokens,
            prompt_len: 0,
            layers,
        }
    }

    #[test]
    fn default_levels_step_through_skips_zero_to_three() {
        let mut hsd = HsdConfig::default().build(12).unwrap();
        let mut ones = |t| hsd.plan(&cx(t, 64, 12)).run.to_bits();
        assert_eq!(ones(0), vec![1; 12]);
        assert_eq!(ones(16), [0, 1].repeat(6));
        assert_eq!(ones(32), [0, 0, 1].repeat(4));
        assert_eq!(ones(63), [0, 0, 0, 1].repeat(3));
    }

    #[test]
    fn keep_last_adds_only_the_last_layer() {
        let config = HsdConfig {
            levels: Some(1),
            min_skip: Some(3),
            keep_last: true,
            ..Default::default()
        };
        let plan = config.build(10).unwrap().plan(&cx(0, 8, 10));
        assert_eq!(plan.run.iter().collect::<Vec<_>>(), [3, 7, 9]);
    }

    #[test]
    fn keep_first_adds_only_the_first_layer_and_is_stated_only_when_set() {
        let config = HsdConfig {
            levels: Some(1),
            min_skip: Some(3),
            keep_first: true,
            ..Default::default()
        };
        let plan = config.build(10).unwrap().plan(&cx(0, 8, 10));
        assert_eq!(plan.run.iter().collect::<Vec<_>>(), [0, 3, 7]);
        let json = |c: &HsdConfig| serde_json::to_string(c).unwrap();
        assert!(json(&config).contains("\"keep_first\":true"));
        assert!(!json(&HsdConfig::default()).contains("keep_first"));
        let solved = HsdConfig {
            keep_first: true,
            target_skip_ratio: Some(0.5),
            ..Default::default()
        }
        .solve(30, 64)
        .unwrap();
        let plans = static_schedule(&mut solved.build(30).unwrap(), 30, 64, 0);
        assert!(plans.iter().all(|p| p.run.contains(0)));
        assert!((skip_ratio(&plans) - 0.5).abs() <= 1.0 / 30.0);
    }

    #[test]
    fn sequence_position_reads_the_prompt_into_the_clock() {
        let config = HsdConfig {
            position: Position::Sequence,
            ..Default::default()
        };
        let hsd = config.build(12).unwrap();
        let late = StepContext {
            t: 0,
            max_new_tokens: 10,
            prompt_len: 90,
            layers: 12,
        };
        assert_eq!(hsd.level(&late), 3);
    }

    #[test]
    fn a_sequence_target_is_solved_at_its_prompt_length() {
        let at = |prompt_len| HsdConfig {
            position: Position::Sequence,
            prompt_len,
            target_skip_ratio: Some(0.5),
            ..Default::default()
        };
        // After 400 prompt tokens every one of 32 generated tokens sits at the last level, so
        // the solved rule is the last level's skip alone: every other layer.
        let solved = at(Some(400)).solve(30, 32).unwrap();
        let plans = static_schedule(&mut solved.build(30).unwrap(), 30, 32, 400);
        assert!((skip_ratio(&plans) - 0.5).abs() <= 1.0 / 30.0);
        assert!(plans.iter().all(|p| p.run.count() == 15));
        // Knobs solved at P = 0 skip far more than asked after that prompt.
        let unaware = at(None).solve(30, 32).unwrap();
        let plans = static_schedule(&mut unaware.build(30).unwrap(), 30, 32, 400);
        assert!(skip_ratio(&plans) > 0.7, "{}", skip_ratio(&plans));
        // There, 0.25 lies between skipping nothing and every other layer.
        let quarter = HsdConfig {
            target_skip_ratio: Some(0.25),
            ..at(Some(400))
        };
        assert!(matches!(
            quarter.solve(30, 32),
            Err(SkipError::TargetUnreachable { .. })
        ));
    }

    #[test]
    fn the_generated_clock_ignores_the_prompt_length() {
        let at = |prompt_len| HsdConfig {
            prompt_len,
            target_skip_ratio: Some(0.4),
            ..Default::default()
        };
        let solved = at(Some(400)).solve(30, 32).unwrap();
        let plain = at(None).solve(30, 32).unwrap();
        assert_eq!(solved.max_skip, plain.max_skip);
        assert_eq!(solved.levels, plain.levels);
    }

    #[test]
    fn rejects_a_skip_that_runs_nothing() {
        let config = HsdConfig {
            max_skip: Some(12),
            ..Default::default()
        };
        assert!(matches!(
            config.build(12),
            Err(SkipError::InvalidKnob {
                knob: "max_skip",
                ..
            })
        ));
    }

    #[test]
    fn solved_ratio_is_the_planned_ratio() {
        let solved = HsdConfig {
            target_skip_ratio: Some(0.5),
            ..Default::default()
        }
        .solve(30, 64)
        .unwrap();
        let plans = static_schedule(&mut solved.build(30).unwrap(), 30, 64, 0);
        assert!((skip_ratio(&plans) - 0.5).abs() <= 1.0 / 30.0);
    }

    proptest! {
        #[test]
        fn skipped_layers_never_decrease_with_t(
            layers in 1usize..40, tokens in 1usize..80, levels in 1usize..9,
            min_skip in 0usize..6, extra in 0usize..6, keep_first: bool, keep_last: bool,
        ) {
            let max_skip = (min_skip + extra).min(layers - 1);
            let min_skip = min_skip.min(max_skip);
            let config = HsdConfig {
                levels: Some(levels), min_skip: Some(min_skip), max_skip: Some(max_skip),
                keep_first, keep_last,
                ..Default::default()
            };
            let plans = static_schedule(&mut config.build(layers).unwrap(), layers, tokens, 0);
            for pair in plans.windows(2) {
                prop_assert_eq!(pair[0].run.universe(), layers);
                prop_assert!(pair[1].run.count() <= pair[0].run.count());
            }
            let levels_seen = plans.iter().map(|p| p.run.count()).collect::<Vec<_>>();
            for (t, plan) in plans.iter().enumerate() {
                let hsd = config.build(layers).unwrap();
                let skip = hsd.skip_at(hsd.level(&cx(t, tokens, layers)));
                prop_assert_eq!(
                    plan.run.count(),
                    forwarded_count(layers, skip, keep_first, keep_last),
                    "{:?}",
                    levels_seen
                );
            }
        }
    }
}
