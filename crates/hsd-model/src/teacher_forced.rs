//! Teacher-forced agreement: what a strategy predicts at every position of given tokens (the
//! same model's vanilla output), fed as decoding feeds them, so that a skipped layer is
//! measured at every position without the drift of free decoding, where one early change
//! rewrites everything after it.
//!
//! The full model's distributions along the same tokens come from one pass over them
//! ([`Decoder::forced_reference`], shared by every strategy of a batch); the strategy's come
//! from [`Decoder::teacher_forced`], with its plans, exits and K/V fill exactly as in decoding.
//! Steps whose plans check no layer need nothing from the strategy while they run, so they go
//! through the stack as one chunk, each position under its own step's plan (the same tokens,
//! layers and K/V as steps; only the summation order of the batched products differs); from the
//! first step that may exit on, they run one at a time. The first generated token comes from
//! the prompt's pass, which runs every layer for every strategy, so positions start at the
//! second token.

use burn::tensor::activation;
use hsd_skip::{LayerPlan, StepContext, Strategy};

use crate::ModelError;
use crate::cache::Cache;
use crate::decoder::Decoder;
use crate::generate::GenerateConfig;
use crate::readback::read_f32;
use crate::stack::PassPlans;

/// The full model's log-probabilities along given tokens, per row and predicted position.
#[derive(Clone, Debug)]
pub struct ForcedReference {
    tokens: Vec<Vec<u32>>,
    pad_id: u32,
    /// `[row][position - 1][vocab]` for positions `1..tokens[row].len()`.
    log_probs: Vec<Vec<Vec<f32>>>,
}

/// One row's teacher-forced agreement with the full model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ForcedAgreement {
    /// Positions compared: the row's tokens after the first.
    pub positions: usize,
    /// Share of positions where the strategy's greedy token is the given (vanilla) token.
    pub top1_agreement: f64,
    /// Mean over positions of KL(full || strategy), in nats.
    pub mean_kl: f64,
}

impl ForcedReference {
    /// Decoding steps that feed the tokens: the longest row's length less one.
    fn steps(&self) -> usize {
        self.tokens
            .iter()
            .map(Vec::len)
            .max()
            .unwrap_or(0)
            .saturating_sub(1)
    }

    /// Row r's input at step `t` (1-based): its token `t - 1` while it has a token `t` to
    /// predict, then padding, as decoding feeds a row that stopped.
    fn input(&self, row: usize, t: usize) -> u32 {
        let tokens = &self.tokens[row];
        if t < tokens.len() {
            tokens[t - 1]
        } else {
            self.pad_id
        }
    }

    /// The batch's inputs at step `t`.
    fn inputs(&self, t: usize) -> Vec<u32> {
        (0..self.tokens.len())
            .map(|row| self.input(row, t))
            .collect()
    }

    /// The inputs of steps `1..=steps` as one chunk, per row.
    fn chunk(&self, steps: usize) -> Vec<Vec<u32>> {
        (0..self.tokens.len())
            .map(|row| (1..=steps).map(|t| self.input(row, t)).collect())
            .collect()
    }
}

/// Per row, the positions where the strategy's greedy token was the given one, and the sum of
/// KL(full || strategy) over positions.
struct Tally<'a> {
    reference: &'a ForcedReference,
    agreed: Vec<usize>,
    kl_sum: Vec<f64>,
}

impl<'a> Tally<'a> {
    fn new(reference: &'a ForcedReference) -> Self {
        let rows = reference.tokens.len();
        Self {
            reference,
            agreed: vec![0; rows],
            kl_sum: vec![0.0; rows],
        }
    }

    /// The strategy's log-probabilities for `row` at step `t`; steps past the row's tokens
    /// (a row that stopped) count nothing.
    fn add(&mut self, row: usize, t: usize, log_probs: &[f32]) {
        let given = &self.reference.tokens[row];
        if t >= given.len() {
            return;
        }
        if greedy(log_probs) == given[t] as usize {
            self.agreed[row] += 1;
        }
        self.kl_sum[row] += kl_divergence(&self.reference.log_probs[row][t - 1], log_probs);
    }

    fn agreements(self) -> Vec<ForcedAgreement> {
        self.reference
            .tokens
            .iter()
            .enumerate()
            .map(|(row, given)| {
                let positions = given.len().saturating_sub(1);
                let per = |total: f64| {
                    if positions == 0 {
                        0.0
                    } else {
                        total / positions as f64
                    }
                };
                ForcedAgreement {
                    positions,
                    top1_agreement: per(self.agreed[row] as f64),
                    mean_kl: per(self.kl_sum[row]),
                }
            })
            .collect()
    }
}

impl Decoder {
    /// The full model's log-probabilities along `tokens` (per batch row, as generated after
    /// the prefill that `cache` holds), from one pass over them.
    pub fn forced_reference(
        &self,
        mut cache: Cache,
        tokens: &[Vec<u32>],
        pad_id: u32,
    ) -> Result<ForcedReference, ModelError> {
        if tokens.len() != cache.batch() {
            return Err(ModelError::Batch(format!(
                "{} token rows for a batch of {}",
                tokens.len(),
                cache.batch()
            )));
        }
        let mut reference = ForcedReference {
            tokens: tokens.to_vec(),
            pad_id,
            log_probs: vec![Vec::new(); tokens.len()],
        };
        let steps = reference.steps();
        if steps == 0 {
            return Ok(reference);
        }
        let logits = self.chunk_logits(
            &mut cache,
            &reference.chunk(steps),
            PassPlans::Shared(&LayerPlan::full(self.shapes().layers)),
        )?;
        let vocab = logits.dims()[1];
        let flat = read_f32(activation::log_softmax(logits, 1), "reference log-probs")?;
        for (row, (row_log_probs, row_tokens)) in flat
            .chunks_exact(steps * vocab)
            .zip(&reference.tokens)
            .enumerate()
        {
            reference.log_probs[row] = row_log_probs
                .chunks_exact(vocab)
                .take(row_tokens.len().saturating_sub(1))
                .map(<[f32]>::to_vec)
                .collect();
        }
        Ok(reference)
    }

    /// `strategy` fed the reference's tokens from the prefill that `cache` holds (the one the
    /// reference started from): per row, how often its greedy token is the given one and how
    /// far its distribution is from the full model's.
    pub fn teacher_forced(
        &self,
        mut cache: Cache,
        strategy: &mut dyn Strategy,
        config: &GenerateConfig,
        reference: &ForcedReference,
    ) -> Result<Vec<ForcedAgreement>, ModelError> {
        let rows = reference.tokens.len();
        if rows != cache.batch() {
            return Err(ModelError::Batch(format!(
                "a reference of {rows} rows for a batch of {}",
                cache.batch()
            )));
        }
        let layers = self.shapes().layers;
        let prompt_len = cache.len() - cache.min_padding();
        let cx = |t| StepContext {
            t,
            max_new_tokens: config.max_new_tokens,
            prompt_len,
            layers,
        };
        let steps = reference.steps();
        let mut tally = Tally::new(reference);
        // The strategy is asked for plans in step order, as decoding asks; the first plan that
        // checks a layer ends the chunk and runs as a step.
        let mut chunk_plans = Vec::new();
        let mut first_checking = None;
        for t in 1..=steps {
            let plan = strategy.plan(&cx(t));
            if plan.checks.is_empty() {
                chunk_plans.push(plan);
            } else {
                first_checking = Some(plan);
                break;
            }
        }
        let chunked = chunk_plans.len();
        if chunked > 0 {
            let logits = self.chunk_logits(
                &mut cache,
                &reference.chunk(chunked),
                PassPlans::PerPosition(&chunk_plans),
            )?;
            let vocab = logits.dims()[1];
            let log_probs = read_f32(activation::log_softmax(logits, 1), "strategy log-probs")?;
            for (row, row_log_probs) in log_probs.chunks_exact(chunked * vocab).enumerate() {
                for (i, ours) in row_log_probs.chunks_exact(vocab).enumerate() {
                    tally.add(row, i + 1, ours);
                }
            }
        }
        if let Some(plan) = first_checking {
            for t in chunked + 1..=steps {
                let inputs = reference.inputs(t);
                let (logits, _) = if t == chunked + 1 {
                    self.planned_step(&mut cache, &inputs, &plan, strategy, &cx(t))?
                } else {
                    self.step(&mut cache, &inputs, strategy, &cx(t))?
                };
                let [_, vocab] = logits.tensor().dims();
                let log_probs = read_f32(
                    activation::log_softmax(logits.tensor().clone(), 1),
                    "strategy log-probs",
                )?;
                for (row, ours) in log_probs.chunks_exact(vocab).enumerate() {
                    tally.add(row, t, ours);
                }
            }
        }
        Ok(tally.agreements())
    }
}

/// The first index of the largest value, as greedy decoding breaks ties.
fn greedy(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(best, top), (i, &v)| {
            if v > top { (i, v) } else { (best, top) }
        })
        .0
}

/// KL(p || q) from log-probabilities, in f64; terms where p is 0 contribute nothing.
fn kl_divergence(log_p: &[f32], log_q: &[f32]) -> f64 {
    log_p
        .iter()
        .zip(log_q)
        .map(|(&lp, &lq)| {
            let p = f64::from(lp).exp();
            if p == 0.0 {
                0.0
            } else {
                p * (f64::from(lp) - f64::from(lq))
            }
        })
        .sum::<f64>()
        .max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_first_maximum() {
        assert_eq!(greedy(&[0.1, 0.7, 0.7, -1.0]), 1);
        assert_eq!(greedy(&[-3.0]), 0);
    }

    #[test]
    fn kl_is_zero_for_equal_distributions_and_positive_otherwise() {
        let p = [0.5f32.ln(), 0.25f32.ln(), 0.25f32.ln()];
        let q = [0.25f32.ln(), 0.25f32.ln(), 0.5f32.ln()];
        assert!(kl_divergence(&p, &p).abs() < 1e-12);
        // 0.5 ln 2 + 0.25 ln 0.5 = 0.25 ln 2.
        assert!((kl_divergence(&p, &q) - 0.25 * 2f64.ln()).abs() < 1e-6);
    }
}
