//! Skip-aware training: the layer plan each target token of a sequence runs, drawn as
//! decoding would draw it from a strategy at a random target skip ratio.

use hsd_skip::{LayerSet, StepContext, StrategyConfig};

use crate::TrainError;
use crate::batches::{stream, unit};
use crate::config::SkipTraining;

const SKIP_STREAM: u64 = 2;

/// The layers each input position of a sequence runs. The prompt runs every layer, as a
/// prefill does; input `prompt_len + j` (the `j`-th target token fed back) runs the plan of
/// decoding step `t = j + 1`, whose logits predict target token `j + 1`.
pub(crate) fn sequence_runs(
    skip: &SkipTraining,
    seed: u64,
    draw: u64,
    layers: usize,
    prompt_len: usize,
    inputs: usize,
    max_new_tokens: usize,
) -> Result<Vec<LayerSet>, TrainError> {
    let mut runs = vec![LayerSet::all(layers); inputs];
    let mut rng = stream(seed, SKIP_STREAM, draw);
    if unit(&mut rng) < skip.full_share {
        return Ok(runs);
    }
    let [low, high] = skip.target_skip_ratio;
    let target = low + (high - low) * unit(&mut rng);
    let mut config = StrategyConfig::from_settings(&skip.strategy, &skip.settings)?;
    config.set_target_skip_ratio(target);
    let mut strategy = config.build(layers, max_new_tokens)?;
    for (j, run) in runs.iter_mut().enumerate().skip(prompt_len) {
        let cx = StepContext {
            t: j - prompt_len + 1,
            max_new_tokens,
            prompt_len,
            layers,
        };
        *run = strategy.plan(&cx).run;
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hsd(full_share: f64) -> SkipTraining {
        SkipTraining {
            strategy: "hsd".into(),
            target_skip_ratio: [0.4, 0.6],
            full_share,
            settings: vec![],
            max_new_tokens: 64,
        }
    }

    #[test]
    fn the_prompt_runs_fully_and_targets_skip_about_the_drawn_share() {
        let runs = sequence_runs(&hsd(0.0), 3, 0, 30, 20, 60, 64).unwrap();
        assert!(runs[..20].iter().all(|r| r.count() == 30));
        let skipped: usize = runs[20..].iter().map(|r| 30 - r.count()).sum();
        let ratio = skipped as f64 / (40.0 * 30.0);
        assert!((0.2..0.8).contains(&ratio), "{ratio}");
        assert_eq!(
            runs,
            sequence_runs(&hsd(0.0), 3, 0, 30, 20, 60, 64).unwrap()
        );
    }

    #[test]
    fn a_full_share_of_one_never_skips_and_unknown_strategies_are_errors() {
        let runs = sequence_runs(&hsd(1.0), 3, 5, 30, 2, 10, 16).unwrap();
        assert!(runs.iter().all(|r| r.count() == 30));
        let mut bad = hsd(0.0);
        bad.strategy = "hsdd".into();
        assert!(sequence_runs(&bad, 3, 5, 30, 2, 10, 16).is_err());
    }
}
