//! Lossless layer skipping: a strategy's plans draft tokens and one full forward over the
//! drafted chunk verifies them (self-speculative decoding, as in Draft & Verify and LayerSkip).
//! Every emitted token is the full model's greedy token, so the output is vanilla greedy
//! decoding's; what skipping buys is time.
//!
//! A round, per row: the tokens emitted but not yet in the cache (at least the last one) start
//! the chunk; draft steps under the strategy's plans extend it to `k + 1` tokens; the verify pass
//! rolls the cache back to the round's start and runs every layer over the chunk. A row accepts
//! its drafts up to the first one the full model would not have chosen, then emits the full
//! model's next token. Rows of a batch share cache slots, so the cache keeps the shortest
//! accepted prefix of the round; a row that accepted more carries its extra verified tokens into
//! the next round's chunk, where they are fed without being drafted or re-judged.
//!
//! The drafter may be another [`Decoder`] of the same shapes sharing the verifier's cache, e.g.
//! the same model reading the file's quantized blocks ([`crate::WeightMode::Native`]) while the
//! verifier reads `f32`: drafts then cost the bytes of the blocks, and the tokens are still
//! the `f32` model's, since the verifier judges every one of them and rewrites their K/V.

use std::time::{Duration, Instant};

use hsd_skip::{LayerSet, StepContext, StepTrace, Strategy};
use serde::Serialize;

use crate::ModelError;
use crate::cache::Cache;
use crate::decoder::{Batch, Decoder, Logits};
use crate::generate::{GenerateConfig, Generation, GenerationBatch, StopReason};

/// How many tokens to draft per round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SpeculativeConfig {
    /// Tokens drafted per round, `k`; where `adaptive`, the first round's.
    pub draft_tokens: usize,
    /// Whether `k` moves with acceptance: one more after a round in which every row accepted
    /// every draft, one fewer after a round in which some row accepted under half of its drafts.
    pub adaptive: bool,
    /// The largest `k` adaptation may reach (at least `draft_tokens`).
    pub max_draft_tokens: usize,
}

impl SpeculativeConfig {
    /// [`Self::adaptive`] or [`Self::fixed`].
    pub fn new(draft_tokens: usize, adaptive: bool) -> Self {
        if adaptive {
            Self::adaptive(draft_tokens)
        } else {
            Self::fixed(draft_tokens)
        }
    }

    /// A fixed `k`.
    pub fn fixed(draft_tokens: usize) -> Self {
        Self {
            draft_tokens,
            adaptive: false,
            max_draft_tokens: draft_tokens,
        }
    }

    /// An adaptive `k` starting at `draft_tokens` and reaching at most twice that.
    pub fn adaptive(draft_tokens: usize) -> Self {
        Self {
            draft_tokens,
            adaptive: true,
            max_draft_tokens: 2 * draft_tokens,
        }
    }

    fn check(&self) -> Result<(), ModelError> {
        if self.draft_tokens == 0 || self.max_draft_tokens < self.draft_tokens {
            return Err(ModelError::Batch(format!(
                "speculative decoding needs 1 <= draft_tokens ({}) <= max_draft_tokens ({})",
                self.draft_tokens, self.max_draft_tokens
            )));
        }
        Ok(())
    }
}

/// What the drafter and the verifier did over one generation.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SpeculativeStats {
    /// Verify passes.
    pub rounds: usize,
    /// Rows decoding in those rounds, summed over rounds.
    pub row_rounds: usize,
    /// Draft forward passes (one token per row each).
    pub draft_steps: usize,
    /// Layers the draft passes ran, summed over draft steps.
    pub draft_layers: usize,
    /// Drafted tokens put to the verifier, summed over rows.
    pub drafted: usize,
    /// Of those, the ones accepted.
    pub accepted: usize,
    /// Tokens emitted by the verifier itself (one per row and round, unless the row stopped
    /// inside its accepted drafts).
    pub verified: usize,
    pub draft_time: Duration,
    pub verify_time: Duration,
}

impl SpeculativeStats {
    /// Share of drafted tokens the full model agreed with.
    pub fn acceptance_rate(&self) -> Option<f64> {
        ratio(self.accepted, self.drafted)
    }

    /// Drafts accepted per row and round.
    pub fn mean_accepted(&self) -> Option<f64> {
        ratio(self.accepted, self.row_rounds)
    }

    /// Layers a draft step ran, on average.
    pub fn draft_layers_per_token(&self) -> Option<f64> {
        ratio(self.draft_layers, self.draft_steps)
    }

    /// Mean seconds of one draft step and of one verify pass.
    pub fn step_costs(&self) -> (Option<f64>, Option<f64>) {
        let per = |time: Duration, n: usize| (n > 0).then(|| time.as_secs_f64() / n as f64);
        (
            per(self.draft_time, self.draft_steps),
            per(self.verify_time, self.rounds),
        )
    }

    /// Adds another generation's counts and times.
    pub fn absorb(&mut self, other: &Self) {
        self.rounds += other.rounds;
        self.row_rounds += other.row_rounds;
        self.draft_steps += other.draft_steps;
        self.draft_layers += other.draft_layers;
        self.drafted += other.drafted;
        self.accepted += other.accepted;
        self.verified += other.verified;
        self.draft_time += other.draft_time;
        self.verify_time += other.verify_time;
    }
}

fn ratio(num: usize, den: usize) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// What one row of a batch drafted and accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RowSpeculation {
    /// Verify passes the row was decoding in.
    pub rounds: usize,
    /// Drafted tokens put to the verifier.
    pub drafted: usize,
    /// Of those, the ones accepted.
    pub accepted: usize,
}

/// A speculative generation: the continuations (vanilla greedy's tokens) and how they came.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpeculativeBatch {
    /// Each token's trace is what produced it: the draft step for an accepted draft, a full
    /// pass for a token the verifier emitted.
    pub generation: GenerationBatch,
    pub stats: SpeculativeStats,
    /// Per row of the batch.
    pub rows: Vec<RowSpeculation>,
}

/// One row's state between rounds.
struct RowState {
    out: Generation,
    /// Tokens the row still feeds the cache, oldest first: while it decodes, the emitted tokens
    /// not yet in the cache (never none); once it stopped, those but the last, as vanilla
    /// decoding feeds every token but the last.
    pending: Vec<u32>,
    done: bool,
    speculation: RowSpeculation,
}

impl RowState {
    /// Appends an emitted token, stopping the row at an EOS or the budget.
    fn emit(&mut self, token: u32, trace: StepTrace, config: &GenerateConfig, budget: usize) {
        self.out.tokens.push(token);
        self.out.traces.push(trace);
        if config.eos_ids.contains(&token) {
            self.out.stop = StopReason::Eos;
            self.done = true;
        } else if self.out.tokens.len() >= budget {
            self.done = true;
        }
    }
}

impl Decoder {
    /// Prefills `prompts` and decodes them speculatively: `strategy` drafts, every layer
    /// verifies. The tokens equal [`Decoder::generate`] with a strategy that runs every layer.
    pub fn generate_speculative(
        &self,
        prompts: &[Vec<u32>],
        strategy: &mut dyn Strategy,
        config: &GenerateConfig,
        speculative: &SpeculativeConfig,
    ) -> Result<SpeculativeBatch, ModelError> {
        self.generate_speculative_with(self, prompts, strategy, config, speculative)
    }

    /// [`Self::generate_speculative`] with `drafter`'s passes drafting under `strategy`'s
    /// plans; `self` prefills and verifies, so the tokens are still `self`'s greedy ones.
    pub fn generate_speculative_with(
        &self,
        drafter: &Decoder,
        prompts: &[Vec<u32>],
        strategy: &mut dyn Strategy,
        config: &GenerateConfig,
        speculative: &SpeculativeConfig,
    ) -> Result<SpeculativeBatch, ModelError> {
        speculative.check()?;
        self.check_drafter(drafter)?;
        let batch = Batch::new(prompts.to_vec(), config.pad_id)?;
        // Room for the drafts of the last round beyond the generation budget, where the model's
        // positions allow it; rounds shrink to fit otherwise.
        let room = self
            .max_positions()
            .saturating_sub(batch.width() + config.max_new_tokens)
            .min(speculative.max_draft_tokens);
        let started = Instant::now();
        let (logits, cache) = self.prefill(&batch, config.max_new_tokens + room)?;
        let prefill_time = started.elapsed();
        let mut cache = cache;
        let mut out = self.decode_speculative_with(
            drafter,
            logits,
            &mut cache,
            strategy,
            config,
            speculative,
        )?;
        out.generation.prefill_time = Some(prefill_time);
        Ok(out)
    }

    /// [`Decoder::decode`], speculatively: from a prefill's logits and cache, `strategy`
    /// drafts and every layer verifies. The cache ends as vanilla decoding leaves it: every
    /// generated token but the last fed, each with the full model's K/V (a batch's rows that
    /// stopped earlier hold what they were fed after stopping, which nothing reads).
    pub fn decode_speculative(
        &self,
        logits: Logits,
        cache: &mut Cache,
        strategy: &mut dyn Strategy,
        config: &GenerateConfig,
        speculative: &SpeculativeConfig,
    ) -> Result<SpeculativeBatch, ModelError> {
        self.decode_speculative_with(self, logits, cache, strategy, config, speculative)
    }

    /// [`Self::decode_speculative`] with `drafter`'s passes drafting (see
    /// [`Self::generate_speculative_with`]).
    pub fn decode_speculative_with(
        &self,
        drafter: &Decoder,
        logits: Logits,
        cache: &mut Cache,
        strategy: &mut dyn Strategy,
        config: &GenerateConfig,
        speculative: &SpeculativeConfig,
    ) -> Result<SpeculativeBatch, ModelError> {
        speculative.check()?;
        self.check_drafter(drafter)?;
        let layers = self.shapes().layers;
        let min_padding = cache.min_padding();
        let origin = cache.len();
        let prompt_len = origin - min_padding;
        let budget = config
            .max_new_tokens
            .min(cache.capacity() + 1 - cache.len());
        let started = Instant::now();
        let mut stats = SpeculativeStats::default();
        let check_kind = strategy.signal_kind();
        let full_trace = |context_len: usize| StepTrace {
            ran: LayerSet::all(layers),
            propagated: LayerSet::empty(layers),
            checks: 0,
            check_kind,
            exited_after: None,
            context_len,
        };
        let first = logits.argmax()?;
        let mut rows: Vec<RowState> = first
            .iter()
            .map(|_| RowState {
                out: Generation {
                    tokens: Vec::new(),
                    traces: Vec::new(),
                    stop: StopReason::MaxNewTokens,
                },
                pending: Vec::new(),
                done: budget == 0,
                speculation: RowSpeculation::default(),
            })
            .collect();
        for (row, &token) in rows.iter_mut().zip(&first) {
            if !row.done {
                row.emit(token, full_trace(prompt_len), config, budget);
                if !row.done {
                    row.pending.push(token);
                }
            }
        }
        let mut k = speculative.draft_tokens;
        while rows.iter().any(|r| !r.done || !r.pending.is_empty()) {
            let start = cache.len();
            if start >= cache.capacity() {
                return Err(ModelError::Batch(format!(
                    "cache is full ({} slots)",
                    cache.capacity()
                )));
            }
            let decoding = rows.iter().any(|r| !r.done);
            let longest_pending = rows.iter().map(|r| r.pending.len()).max().unwrap_or(1);
            let k_round = if decoding {
                let remaining = rows
                    .iter()
                    .filter(|r| !r.done)
                    .map(|r| budget - r.out.tokens.len())
                    .max()
                    .unwrap_or(1);
                k.max(longest_pending - 1).min(remaining - 1)
            } else {
                longest_pending - 1
            }
            .min(cache.capacity() - start - 1);

            // Draft: extend each decoding row's chunk to k_round + 1 tokens under the strategy's
            // plans; stopped rows feed what they still owe the cache, then padding.
            let drafting = Instant::now();
            let mut chunks: Vec<Vec<u32>> = rows
                .iter()
                .map(|r| {
                    let mut chunk = r.pending.clone();
                    if r.done && chunk.len() <= k_round {
                        chunk.resize(k_round + 1, config.pad_id);
                    }
                    chunk
                })
                .collect();
            let mut draft_traces: Vec<Vec<Option<StepTrace>>> = chunks
                .iter()
                .map(|c| vec![None; c.len().max(k_round + 1)])
                .collect();
            let mut step = 0;
            while step < k_round && chunks.iter().any(|c| c.len() <= k_round) {
                let inputs: Vec<u32> = chunks.iter().map(|c| c[step]).collect();
                let cx = StepContext {
                    t: start + step - origin + 1,
                    max_new_tokens: config.max_new_tokens,
                    prompt_len,
                    layers,
                };
                let (logits, trace) = drafter.step(cache, &inputs, strategy, &cx)?;
                let drafts = logits.argmax()?;
                stats.draft_steps += 1;
                stats.draft_layers += trace.ran.count();
                for (row, chunk) in chunks.iter_mut().enumerate() {
                    if chunk.len() == step + 1 {
                        chunk.push(drafts[row]);
                        draft_traces[row][step + 1] = Some(trace.clone());
                    }
                }
                step += 1;
            }
            stats.draft_time += drafting.elapsed();

            // Verify: every layer over the chunk, from the round's first slot.
            let verifying = Instant::now();
            cache.truncate(start)?;
            let fed: Vec<Vec<u32>> = chunks.iter().map(|c| c[..=k_round].to_vec()).collect();
            let greedy = self.verify(cache, &fed)?;
            stats.verify_time += verifying.elapsed();
            stats.rounds += 1;

            // Accept and emit; then keep the slots every decoding row agrees on.
            let mut kept = usize::MAX;
            let mut full_acceptance = true;
            let mut poor_acceptance = false;
            for (row, state) in rows.iter_mut().enumerate() {
                if state.done {
                    continue;
                }
                stats.row_rounds += 1;
                let chunk = &fed[row];
                let known = state.pending.len();
                let accepted_to = (1..=k_round)
                    .take_while(|&j| j < known || chunk[j] == greedy[row][j - 1])
                    .last()
                    .unwrap_or(0);
                let drafted = (k_round + 1).saturating_sub(known);
                let accepted = (accepted_to + 1).saturating_sub(known);
                stats.drafted += drafted;
                stats.accepted += accepted;
                state.speculation.rounds += 1;
                state.speculation.drafted += drafted;
                state.speculation.accepted += accepted;
                full_acceptance &= accepted == drafted;
                poor_acceptance |= 2 * accepted < drafted;
                for j in known..=accepted_to {
                    let trace = draft_traces[row][j].take().ok_or_else(|| {
                        ModelError::Batch(format!("row {row}: position {j} was never drafted"))
                    })?;
                    state.emit(chunk[j], trace, config, budget);
                    if state.done {
                        // Vanilla feeds every token but the last.
                        state.pending = chunk[..j].to_vec();
                        break;
                    }
                }
                if state.done {
                    continue;
                }
                // A row whose chunk held only tokens it had emitted keeps them all to feed.
                if known <= k_round + 1 {
                    let token = greedy[row][accepted_to];
                    let context_len = start + accepted_to + 1 - min_padding;
                    state.emit(token, full_trace(context_len), config, budget);
                    stats.verified += 1;
                    state.pending = chunk[..=accepted_to].to_vec();
                    if state.done {
                        continue;
                    }
                    state.pending.push(token);
                }
                kept = kept.min(accepted_to + 1);
            }
            // Slots every decoding row agrees with the full model on; with none left, those
            // the stopped rows still owe, up to this chunk's end.
            let keep = if kept == usize::MAX {
                rows.iter()
                    .map(|r| r.pending.len())
                    .max()
                    .unwrap_or(0)
                    .min(k_round + 1)
            } else {
                kept
            };
            cache.truncate(start + keep)?;
            for state in &mut rows {
                let fed = keep.min(state.pending.len());
                state.pending.drain(..fed);
            }
            if speculative.adaptive {
                if full_acceptance && k_round == k {
                    k = (k + 1).min(speculative.max_draft_tokens);
                } else if poor_acceptance {
                    k = k.saturating_sub(1).max(1);
                }
            }
        }
        let speculation = rows.iter().map(|r| r.speculation).collect();
        Ok(SpeculativeBatch {
            generation: GenerationBatch {
                rows: rows.into_iter().map(|r| r.out).collect(),
                prefill_time: None,
                decode_time: started.elapsed(),
            },
            stats,
            rows: speculation,
        })
    }

    /// A drafter writes the verifier's cache, so it must have the verifier's shapes.
    fn check_drafter(&self, drafter: &Decoder) -> Result<(), ModelError> {
        let (ours, theirs) = (self.shapes(), drafter.shapes());
        if ours != theirs {
            return Err(ModelError::Drafter(format!(
                "the drafter's shapes {theirs:?} differ from the verifier's {ours:?}"
            )));
        }
        if drafter.device() != self.device() {
            return Err(ModelError::Drafter(
                "the drafter runs on another device than the verifier".into(),
            ));
        }
        Ok(())
    }
}
