//! `hsd bench --speculative K`: the strategy drafts, the full model verifies, and the report
//! sets the measured speed-up beside the one that acceptance and the measured costs of a draft
//! step and a verify pass predict.

use anyhow::Result;
use hsd_model::{
    Cache, Decoder, GenerateConfig, GenerationBatch, Logits, SpeculativeConfig, SpeculativeStats,
    WeightMode,
};
use hsd_skip::StrategyConfig;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{ensure_fixed_work, ratio};

/// One speculative decode from a prefill, `drafter` drafting for `decoder`, checked to have
/// done the fixed work.
pub(super) fn checked_speculative_decode(
    decoder: &Decoder,
    drafter: &Decoder,
    (logits, mut cache): (Logits, Cache),
    strategy: &StrategyConfig,
    generate: &GenerateConfig,
    speculative: &SpeculativeConfig,
) -> Result<(GenerationBatch, SpeculativeStats)> {
    let mut built = strategy.build(decoder.shapes().layers, generate.max_new_tokens)?;
    let out = decoder.decode_speculative_with(
        drafter,
        logits,
        &mut cache,
        built.as_mut(),
        generate,
        speculative,
    )?;
    ensure_fixed_work(&out.generation, generate)?;
    Ok((out.generation, out.stats))
}

/// The speculative half of a batch's report.
#[derive(Debug, Serialize)]
pub(super) struct SpeculativeReport {
    strategy: String,
    knobs: Map<String, Value>,
    draft_tokens: usize,
    adaptive: bool,
    /// The weights the draft passes read (`f32` or `native`).
    draft_weights: WeightMode,
    /// Share of drafted tokens the full model accepted.
    acceptance_rate: f64,
    /// Accepted drafts per row and round.
    mean_accepted: f64,
    /// Tokens emitted per row and round (accepted drafts plus the verifier's own).
    tokens_per_round: f64,
    /// Draft steps per round: `k` where it is fixed.
    drafts_per_round: f64,
    draft_layers_per_token: f64,
    /// Mean seconds of a vanilla decode step, a draft step and a verify pass.
    full_step_s: f64,
    draft_step_s: f64,
    verify_s: f64,
    /// `tokens_per_round * full_step_s / (drafts_per_round * draft_step_s + verify_s)`: the
    /// speed-up the acceptance and the measured step costs predict.
    predicted_speedup: f64,
    /// The same at full acceptance (`k + 1` tokens a round): no drafter of these costs does
    /// better.
    ceiling_speedup: f64,
    full_decode_s: f64,
    full_decode_tok_s: f64,
    /// `full_decode_s / decode_s` (medians); the tokens are vanilla's.
    speedup: f64,
}

/// What the timed repetitions measured, for [`SpeculativeReport::new`].
pub(super) struct SpeculativeMeasure<'a> {
    pub strategy: &'a StrategyConfig,
    pub knobs: Map<String, Value>,
    pub config: &'a SpeculativeConfig,
    pub draft_weights: WeightMode,
    /// Pooled over the timed repetitions.
    pub stats: &'a SpeculativeStats,
    /// Vanilla decode steps per row over the same repetitions, and their seconds.
    pub full_steps: usize,
    pub full_s: f64,
    /// Medians of one repetition.
    pub full_decode_s: f64,
    pub decode_s: f64,
    pub decoded_tokens: f64,
}

impl SpeculativeReport {
    pub(super) fn new(m: SpeculativeMeasure<'_>) -> Self {
        let stats = m.stats;
        let (draft_step_s, verify_s) = stats.step_costs();
        let (draft_step_s, verify_s) = (draft_step_s.unwrap_or(0.0), verify_s.unwrap_or(0.0));
        let full_step_s = ratio(m.full_s, m.full_steps as f64);
        let rounds = stats.rounds as f64;
        let tokens_per_round = ratio(
            (stats.accepted + stats.verified) as f64,
            stats.row_rounds as f64,
        );
        let drafts_per_round = ratio(stats.draft_steps as f64, rounds);
        let round_s = drafts_per_round * draft_step_s + verify_s;
        Self {
            strategy: m.strategy.name().to_string(),
            knobs: m.knobs,
            draft_tokens: m.config.draft_tokens,
            adaptive: m.config.adaptive,
            draft_weights: m.draft_weights,
            acceptance_rate: stats.acceptance_rate().unwrap_or(0.0),
            mean_accepted: stats.mean_accepted().unwrap_or(0.0),
            tokens_per_round,
            drafts_per_round,
            draft_layers_per_token: stats.draft_layers_per_token().unwrap_or(0.0),
            full_step_s,
            draft_step_s,
            verify_s,
            predicted_speedup: ratio(tokens_per_round * full_step_s, round_s),
            ceiling_speedup: ratio((drafts_per_round + 1.0) * full_step_s, round_s),
            full_decode_s: m.full_decode_s,
            full_decode_tok_s: ratio(m.decoded_tokens, m.full_decode_s),
            speedup: ratio(m.full_decode_s, m.decode_s),
        }
    }

    pub(super) fn print(&self) {
        println!(
            "           {} drafting {}{} on {} weights for the full model: acceptance {:.3}, \
             {:.2} tokens a round, {:.1} layers a draft step",
            self.strategy,
            self.draft_tokens,
            if self.adaptive { " (adaptive)" } else { "" },
            self.draft_weights,
            self.acceptance_rate,
            self.tokens_per_round,
            self.draft_layers_per_token
        );
        println!(
            "           step costs: vanilla {:.1} ms, draft {:.1} ms, verify {:.1} ms; \
             speed-up {:.2}x over full at {:.1} tok/s (predicted {:.2}x, ceiling {:.2}x); \
             tokens identical",
            1e3 * self.full_step_s,
            1e3 * self.draft_step_s,
            1e3 * self.verify_s,
            self.speedup,
            self.full_decode_tok_s,
            self.predicted_speedup,
            self.ceiling_speedup
        );
    }
}
