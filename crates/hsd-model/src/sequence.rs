//! Whole-sequence forward passes for training: every position of a left-padded batch at once,
//! each token under its own layer plan.

use burn::tensor::{Bool, Tensor, TensorData};
use hsd_skip::{LayerPlan, LayerSet};

use crate::ModelError;
use crate::cache::Cache;
use crate::decoder::{Batch, Decoder};
use crate::stack::PassPlans;

/// The layers each token of a batch runs: `rows[row][position]` over the row's own (unpadded)
/// positions. A token that skips a layer keeps its hidden state there while the layer's K/V
/// for it are still computed from that state: `kv_fill = propagate`, as when decoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRuns {
    rows: Vec<Vec<LayerSet>>,
}

impl TokenRuns {
    pub fn new(rows: Vec<Vec<LayerSet>>) -> Self {
        Self { rows }
    }

    pub fn rows(&self) -> &[Vec<LayerSet>] {
        &self.rows
    }

    /// Per layer, `[B, width, hidden]`, true where a token skips the layer; padding runs.
    fn skip_masks(
        &self,
        batch: &Batch,
        layers: usize,
        hidden: usize,
        decoder: &Decoder,
    ) -> Result<Vec<Tensor<3, Bool>>, ModelError> {
        if self.rows.len() != batch.len() {
            return Err(ModelError::Batch(format!(
                "token runs for {} rows, the batch has {}",
                self.rows.len(),
                batch.len()
            )));
        }
        let width = batch.width();
        for (row, (runs, prompt)) in self.rows.iter().zip(batch.rows()).enumerate() {
            if runs.len() != prompt.len() {
                return Err(ModelError::Batch(format!(
                    "row {row}: token runs for {} positions, the row has {}",
                    runs.len(),
                    prompt.len()
                )));
            }
            if let Some(set) = runs.iter().find(|set| set.universe() != layers) {
                return Err(ModelError::PlanUniverse {
                    strategy: "token runs".into(),
                    found: set.universe(),
                    layers,
                });
            }
        }
        let padding = batch.padding();
        Ok((0..layers)
            .map(|layer| {
                let mut skip = Vec::with_capacity(batch.len() * width * hidden);
                for (runs, pad) in self.rows.iter().zip(&padding) {
                    skip.extend(std::iter::repeat_n(false, pad * hidden));
                    for set in runs {
                        skip.extend(std::iter::repeat_n(!set.contains(layer), hidden));
                    }
                }
                Tensor::from_data(
                    TensorData::new(skip, [batch.len(), width, hidden]),
                    decoder.device(),
                )
            })
            .collect())
    }
}

impl Decoder {
    /// The final hidden states (before the last norm) of every position of `batch`,
    /// `[B, width, hidden]`, left-padded as [`Batch`] pads; every token runs every layer, or
    /// the layers `runs` gives it. Differentiable when the installed LoRA factors are.
    pub fn sequence_hidden(
        &self,
        batch: &Batch,
        runs: Option<&TokenRuns>,
    ) -> Result<Tensor<3>, ModelError> {
        let shapes = self.shapes();
        let width = batch.width();
        if width > self.max_positions() {
            return Err(ModelError::TooLong {
                needed: width,
                limit: self.max_positions(),
            });
        }
        let skips = runs
            .map(|runs| runs.skip_masks(batch, shapes.layers, shapes.hidden, self))
            .transpose()?;
        let mut cache = Cache::new(
            shapes.layers,
            batch.padding(),
            width,
            shapes.kv_heads,
            shapes.head_dim,
            self.device(),
        );
        let (h, _) = self.forward(
            &batch.padded_ids(),
            &mut cache,
            PassPlans::Shared(&LayerPlan::full(shapes.layers)),
            None,
            skips.as_deref(),
        )?;
        Ok(h)
    }

    /// Final norm and LM head: hidden rows `[N, hidden]` to logits `[N, vocab]`.
    pub fn head(&self, h: Tensor<2>) -> Tensor<2> {
        self.head_of(h)
    }
}
