//! Greedy decoding of a batch under a strategy.

use std::time::{Duration, Instant};

use hsd_skip::{LayerSet, StepContext, StepTrace, Strategy};
use serde::Serialize;

use crate::ModelError;
use crate::cache::Cache;
use crate::decoder::{Batch, Decoder, Logits};

/// How long to decode and when a row stops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenerateConfig {
    pub max_new_tokens: usize,
    /// A row stops after generating any of these.
    pub eos_ids: Vec<u32>,
    /// Fills left padding, and the input of rows that already stopped.
    pub pad_id: u32,
}

/// Why a row stopped.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Eos,
    MaxNewTokens,
}

/// One row's continuation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Generation {
    /// Generated ids, the stopping EOS included.
    pub tokens: Vec<u32>,
    /// What the decoder did for each token of `tokens`. The first token comes from the prompt's
    /// forward pass, which runs every layer.
    pub traces: Vec<StepTrace>,
    pub stop: StopReason,
}

/// The continuations of a batch with its wall-clock times.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GenerationBatch {
    pub rows: Vec<Generation>,
    /// The prompt's forward pass; `None` when decoding started from a given prefill.
    pub prefill_time: Option<Duration>,
    /// Every decoding step after the first token.
    pub decode_time: Duration,
}

impl Decoder {
    /// Prefills `prompts` and decodes them greedily under `strategy`.
    pub fn generate(
        &self,
        prompts: &[Vec<u32>],
        strategy: &mut dyn Strategy,
        config: &GenerateConfig,
    ) -> Result<GenerationBatch, ModelError> {
        let batch = Batch::new(prompts.to_vec(), config.pad_id)?;
        let started = Instant::now();
        let (logits, cache) = self.prefill(&batch, config.max_new_tokens)?;
        let prefill_time = started.elapsed();
        let mut out = self.decode(logits, cache, strategy, config)?;
        out.prefill_time = Some(prefill_time);
        Ok(out)
    }

    /// Decodes greedily from a prefill's logits and cache (clone both to reuse a prefill for
    /// several strategies).
    pub fn decode(
        &self,
        logits: Logits,
        mut cache: Cache,
        strategy: &mut dyn Strategy,
        config: &GenerateConfig,
    ) -> Result<GenerationBatch, ModelError> {
        let layers = self.shapes().layers;
        let batch = cache.batch();
        let prompt_len = cache.len() - cache.min_padding();
        let budget = config
            .max_new_tokens
            .min(cache.capacity() + 1 - cache.len());
        let started = Instant::now();
        let mut rows: Vec<Generation> = (0..batch)
            .map(|_| Generation {
                tokens: Vec::new(),
                traces: Vec::new(),
                stop: StopReason::MaxNewTokens,
            })
            .collect();
        if budget == 0 {
            return Ok(GenerationBatch {
                rows,
                prefill_time: None,
                decode_time: started.elapsed(),
            });
        }
        let prompt_trace = StepTrace {
            ran: LayerSet::all(layers),
            propagated: LayerSet::empty(layers),
            checks: 0,
            check_kind: strategy.signal_kind(),
            exited_after: None,
            context_len: prompt_len,
        };
        let mut next = logits.argmax()?;
        let mut trace = prompt_trace;
        let mut done = vec![false; batch];
        for t in 0.. {
            for (row, &token) in next.iter().enumerate() {
                if done[row] {
                    continue;
                }
                rows[row].tokens.push(token);
                rows[row].traces.push(trace.clone());
                if config.eos_ids.contains(&token) {
                    done[row] = true;
                    rows[row].stop = StopReason::Eos;
                }
            }
            if t + 1 >= budget || done.iter().all(|&d| d) {
                break;
            }
            let inputs: Vec<u32> = next
                .iter()
                .zip(&done)
                .map(|(&token, &d)| if d { config.pad_id } else { token })
                .collect();
            let cx = StepContext {
                t: t + 1,
                max_new_tokens: config.max_new_tokens,
                prompt_len,
                layers,
            };
            let (logits, step_trace) = self.step(&mut cache, &inputs, strategy, &cx)?;
            next = logits.argmax()?;
            trace = step_trace;
        }
        Ok(GenerationBatch {
            rows,
            prefill_time: None,
            decode_time: started.elapsed(),
        })
    }
}
