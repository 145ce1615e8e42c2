//! The decoder: batches, prefill, decoding steps and chunk passes over the layer loop of
//! [`crate::stack`], for whichever architecture it holds.

use burn::tensor::{Bool, Device, Tensor};
use hsd_skip::{LayerPlan, ModelShapes, StepContext, StepTrace, Strategy};

use crate::ModelError;
use crate::arch::Architecture;
use crate::attention::CacheAttention;
use crate::cache::Cache;
use crate::gpt2::Gpt2;
use crate::llama::Llama;
use crate::phi::Phi;
use crate::readback::read_f32;
use crate::stack::{PassPlans, Stack, Steering, run_stack};

/// The architectures a [`Decoder`] can hold.
#[derive(Debug)]
pub(crate) enum Model {
    Gpt2(Gpt2),
    Llama(Llama),
    Phi(Phi),
}

/// Runs `$body` with `$arch` bound to the concrete architecture.
macro_rules! with_arch {
    ($model:expr, $arch:ident => $body:expr) => {
        match $model {
            Model::Gpt2($arch) => $body,
            Model::Llama($arch) => $body,
            Model::Phi($arch) => $body,
        }
    };
}

/// Prompts of one batch, left-padded to a common width.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    rows: Vec<Vec<u32>>,
    pad_id: u32,
}

impl Batch {
    /// Every prompt must hold at least one token.
    pub fn new(rows: Vec<Vec<u32>>, pad_id: u32) -> Result<Self, ModelError> {
        if rows.is_empty() {
            return Err(ModelError::Batch("no prompts".into()));
        }
        if let Some(row) = rows.iter().position(Vec::is_empty) {
            return Err(ModelError::Batch(format!("prompt {row} has no tokens")));
        }
        Ok(Self { rows, pad_id })
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn rows(&self) -> &[Vec<u32>] {
        &self.rows
    }

    /// The longest prompt, which is the padded width.
    pub fn width(&self) -> usize {
        self.rows.iter().map(Vec::len).max().unwrap_or(0)
    }

    pub fn padding(&self) -> Vec<usize> {
        let width = self.width();
        self.rows.iter().map(|r| width - r.len()).collect()
    }

    pub(crate) fn padded_ids(&self) -> Vec<u32> {
        let width = self.width();
        self.rows
            .iter()
            .flat_map(|r| {
                std::iter::repeat_n(self.pad_id, width - r.len()).chain(r.iter().copied())
            })
            .collect()
    }
}

/// Next-token logits of a batch, `[B, vocab]`, still on the device.
#[derive(Clone, Debug)]
pub struct Logits(Tensor<2>);

impl Logits {
    /// The greedy token of each row (the first maximum on ties).
    pub fn argmax(&self) -> Result<Vec<u32>, ModelError> {
        let ids = self.0.clone().argmax(1).into_data();
        Ok(ids.iter::<i64>().map(|id| id as u32).collect())
    }

    /// One host vector per row.
    pub fn to_rows(&self) -> Result<Vec<Vec<f32>>, ModelError> {
        let [_, vocab] = self.0.dims();
        let flat = read_f32(self.0.clone(), "logits")?;
        Ok(flat.chunks_exact(vocab).map(<[f32]>::to_vec).collect())
    }

    pub fn tensor(&self) -> &Tensor<2> {
        &self.0
    }
}

/// A decoder-only LM that executes per-token layer plans.
#[derive(Debug)]
pub struct Decoder {
    pub(crate) model: Model,
    pub(crate) device: Device,
    attention: CacheAttention,
}

impl Decoder {
    pub(crate) fn new(model: Model, device: Device, attention: CacheAttention) -> Self {
        Self {
            model,
            device,
            attention,
        }
    }

    pub fn shapes(&self) -> ModelShapes {
        with_arch!(&self.model, arch => arch.shapes())
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub(crate) fn head_of(&self, h: Tensor<2>) -> Tensor<2> {
        with_arch!(&self.model, arch => arch.head(h))
    }

    /// How many of the model's projections also hold their weight in the file's quantized
    /// blocks ([`crate::WeightMode::Native`]), of how many there are.
    pub fn native_projections(&self) -> (usize, usize) {
        let linears = with_arch!(&self.model, arch => arch.linears());
        (
            linears.iter().filter(|l| l.is_native()).count(),
            linears.len(),
        )
    }

    /// The longest sequence (prompt plus generated tokens) the model's positions cover.
    pub fn max_positions(&self) -> usize {
        with_arch!(&self.model, arch => arch.max_positions())
    }

    /// Runs the prompt through every layer and returns the next-token logits with a cache that
    /// has room for `max_new_tokens` more tokens.
    pub fn prefill(
        &self,
        batch: &Batch,
        max_new_tokens: usize,
    ) -> Result<(Logits, Cache), ModelError> {
        self.prefill_with_plan(
            batch,
            max_new_tokens,
            &LayerPlan::full(self.shapes().layers),
        )
    }

    /// [`Self::prefill`] with the prompt run under `plan` at every position. The methods of the
    /// paper always prefill fully; this exists to check the executor against references, e.g.
    /// a model with a layer removed.
    pub fn prefill_with_plan(
        &self,
        batch: &Batch,
        max_new_tokens: usize,
        plan: &LayerPlan,
    ) -> Result<(Logits, Cache), ModelError> {
        let (h, cache) = self.prefill_hidden(batch, max_new_tokens, plan)?;
        let [b, t, d] = h.dims();
        let last = h.narrow(1, t - 1, 1).reshape([b, d]);
        Ok((
            Logits(with_arch!(&self.model, arch => arch.head(last))),
            cache,
        ))
    }

    /// Logits at every position of every prompt, `[row][position][vocab]`, padding dropped.
    pub fn prompt_logits(&self, batch: &Batch) -> Result<Vec<Vec<Vec<f32>>>, ModelError> {
        let (h, _) = self.prefill_hidden(batch, 0, &LayerPlan::full(self.shapes().layers))?;
        let [b, t, d] = h.dims();
        let logits = with_arch!(&self.model, arch => arch.head(h.reshape([b * t, d])));
        let vocab = logits.dims()[1];
        let flat = read_f32(logits, "logits")?;
        let padding = batch.padding();
        Ok(flat
            .chunks_exact(t * vocab)
            .zip(padding)
            .map(|(row, pad)| {
                row.chunks_exact(vocab)
                    .skip(pad)
                    .map(<[f32]>::to_vec)
                    .collect()
            })
            .collect())
    }

    fn prefill_hidden(
        &self,
        batch: &Batch,
        max_new_tokens: usize,
        plan: &LayerPlan,
    ) -> Result<(Tensor<3>, Cache), ModelError> {
        let shapes = self.shapes();
        check_plan("prefill", plan, shapes.layers)?;
        let width = batch.width();
        let capacity = width + max_new_tokens;
        if capacity > self.max_positions() {
            return Err(ModelError::TooLong {
                needed: capacity,
                limit: self.max_positions(),
            });
        }
        let mut cache = Cache::new(
            shapes.layers,
            batch.padding(),
            capacity,
            shapes.kv_heads,
            shapes.head_dim,
            &self.device,
        );
        let (h, _) = self.forward(
            &batch.padded_ids(),
            &mut cache,
            PassPlans::Shared(plan),
            None,
            None,
        )?;
        Ok((h, cache))
    }

    /// One decoding step: feeds one token per row (`tokens`, `B` long) under `strategy`'s plan
    /// for `cx`, and returns the next-token logits with what ran.
    pub fn step(
        &self,
        cache: &mut Cache,
        tokens: &[u32],
        strategy: &mut dyn Strategy,
        cx: &StepContext,
    ) -> Result<(Logits, StepTrace), ModelError> {
        if tokens.len() != cache.batch() {
            return Err(ModelError::Batch(format!(
                "{} tokens for a batch of {}",
                tokens.len(),
                cache.batch()
            )));
        }
        if cache.len() >= cache.capacity() {
            return Err(ModelError::Batch(format!(
                "cache is full ({} slots)",
                cache.capacity()
            )));
        }
        let plan = strategy.plan(cx);
        self.planned_step(cache, tokens, &plan, strategy, cx)
    }

    /// [`Self::step`] under `plan`, which `strategy` gave for `cx` (it is not asked again).
    pub(crate) fn planned_step(
        &self,
        cache: &mut Cache,
        tokens: &[u32],
        plan: &LayerPlan,
        strategy: &mut dyn Strategy,
        cx: &StepContext,
    ) -> Result<(Logits, StepTrace), ModelError> {
        check_plan(strategy.name(), plan, self.shapes().layers)?;
        let (h, trace) = self.forward(
            tokens,
            cache,
            PassPlans::Shared(plan),
            Some(Steering { strategy, cx }),
            None,
        )?;
        let [b, _, d] = h.dims();
        Ok((
            Logits(with_arch!(&self.model, arch => arch.head(h.reshape([b, d])))),
            trace,
        ))
    }

    /// The verify pass of speculative decoding: runs every layer over `chunk` (per row, the
    /// same number of new tokens, fed at the cache's next slots; causal inside the chunk) and
    /// returns, for each row and chunk position, the full model's greedy next token.
    pub fn verify(
        &self,
        cache: &mut Cache,
        chunk: &[Vec<u32>],
    ) -> Result<Vec<Vec<u32>>, ModelError> {
        self.greedy_chunk(cache, chunk, &LayerPlan::full(self.shapes().layers))
    }

    /// [`Self::verify`] with every chunk token run under `plan` (skipped layers filling K/V as
    /// its `kv_fill` says): what decoding with a static plan predicts along given tokens,
    /// teacher-forced, in one pass.
    pub fn greedy_chunk(
        &self,
        cache: &mut Cache,
        chunk: &[Vec<u32>],
        plan: &LayerPlan,
    ) -> Result<Vec<Vec<u32>>, ModelError> {
        let count = chunk.first().map_or(0, Vec::len);
        let logits = self.chunk_logits(cache, chunk, PassPlans::Shared(plan))?;
        let greedy = Logits(logits).argmax()?;
        Ok(greedy.chunks_exact(count).map(<[u32]>::to_vec).collect())
    }

    /// The logits at every position of `chunk` run under `plans`, `[B * T, vocab]` row-major
    /// by batch row then chunk position; the chunk's K/V are written to `cache`.
    pub(crate) fn chunk_logits(
        &self,
        cache: &mut Cache,
        chunk: &[Vec<u32>],
        plans: PassPlans<'_>,
    ) -> Result<Tensor<2>, ModelError> {
        match plans {
            PassPlans::Shared(plan) => check_plan("chunk", plan, self.shapes().layers)?,
            PassPlans::PerPosition(plans) => {
                for plan in plans {
                    check_plan("chunk", plan, self.shapes().layers)?;
                }
            }
        }
        if chunk.len() != cache.batch() {
            return Err(ModelError::Batch(format!(
                "a chunk of {} rows for a batch of {}",
                chunk.len(),
                cache.batch()
            )));
        }
        let count = chunk[0].len();
        if count == 0 || chunk.iter().any(|row| row.len() != count) {
            return Err(ModelError::Batch(
                "a chunk needs the same number (>= 1) of tokens in every row".into(),
            ));
        }
        if cache.len() + count > cache.capacity() {
            return Err(ModelError::Batch(format!(
                "{count} tokens do not fit a cache holding {} of {} slots",
                cache.len(),
                cache.capacity()
            )));
        }
        let ids: Vec<u32> = chunk.concat();
        let (h, _) = self.forward(&ids, cache, plans, None, None)?;
        let [b, t, d] = h.dims();
        Ok(with_arch!(&self.model, arch => arch.head(h.reshape([b * t, d]))))
    }

    pub(crate) fn forward(
        &self,
        ids: &[u32],
        cache: &mut Cache,
        plans: PassPlans<'_>,
        steering: Option<Steering<'_>>,
        skips: Option<&[Tensor<3, Bool>]>,
    ) -> Result<(Tensor<3>, StepTrace), ModelError> {
        let vocab = self.shapes().vocab;
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(ModelError::Batch(format!(
                "token id {id} is outside the vocabulary of {vocab}"
            )));
        }
        with_arch!(&self.model, arch => {
            let stack = Stack { arch, device: &self.device, attention: self.attention };
            run_stack(stack, ids, cache, plans, steering, skips)
        })
    }
}

fn check_plan(strategy: &str, plan: &LayerPlan, layers: usize) -> Result<(), ModelError> {
    for set in [&plan.run, &plan.checks] {
        if set.universe() != layers {
            return Err(ModelError::PlanUniverse {
                strategy: strategy.to_string(),
                found: set.universe(),
                layers,
            });
        }
    }
    Ok(())
}
