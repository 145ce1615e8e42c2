//! Building blocks shared by the architectures: projections, norms and the row-chunked
//! vocabulary matrices.

use std::sync::Arc;

use burn::module::{Module, Param};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::ModelError;
use crate::kernels::{block_weight_product, weight_product};
use crate::lora_term::{LoraSite, LoraTerm};
use crate::weight_scope::WeightScope;
use crate::weights::BlockMatrix;

/// The largest vocabulary chunk in bytes: the wgpu Mesa CPU driver caps a buffer at 128 MiB,
/// and a chunk must stay well under it.
const MAX_CHUNK_BYTES: usize = 64 << 20;

pub(crate) fn to_device<const D: usize>(
    data: Vec<f32>,
    shape: [usize; D],
    device: &Device,
) -> Tensor<D> {
    Tensor::from_data(TensorData::new(data, shape), device)
}

/// Transposes a row-major `[rows, cols]` matrix.
pub(crate) fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}

/// `y = x W^T + b`, with `W` stored `[out, in]` as in PyTorch, plus a LoRA term while one is
/// installed for training.
#[derive(Module, Debug)]
pub(crate) struct Linear {
    weight: Param<Tensor<2>>,
    bias: Option<Param<Tensor<1>>>,
    /// Which Hugging Face module this projection is (or is a row block of), for adapters.
    #[module(skip)]
    site: Option<LoraSite>,
    #[module(skip)]
    lora: Option<LoraTerm>,
    /// `W` in the file's quantized blocks too, with `--weights native`: decode passes read it,
    /// passes of many rows (prefill) multiply by `weight`, which holds the same values.
    #[module(skip)]
    native: Option<NativeWeight>,
}

/// A projection's weight in its file's quantized blocks, and the adapters merged into the
/// projection since loading, which the blocks cannot absorb and so keep as low-rank terms.
#[derive(Clone, Debug)]
struct NativeWeight {
    blocks: Arc<BlockMatrix>,
    merged: Vec<LoraTerm>,
}

impl Linear {
    /// From host data laid out `[out, in]`.
    pub(crate) fn from_out_in(
        weight: Vec<f32>,
        bias: Option<Vec<f32>>,
        d_in: usize,
        d_out: usize,
        device: &Device,
    ) -> Self {
        Self {
            weight: Param::from_tensor(to_device(weight, [d_out, d_in], device)),
            bias: bias.map(|b| Param::from_tensor(to_device(b, [d_out], device))),
            site: None,
            lora: None,
            native: None,
        }
    }

    /// This projection as (a row block of) the module `site` names.
    pub(crate) fn at(self, site: LoraSite) -> Self {
        Self {
            site: Some(site),
            ..self
        }
    }

    pub(crate) fn site(&self) -> Option<&LoraSite> {
        self.site.as_ref()
    }

    pub(crate) fn site_mut(&mut self) -> Option<&mut LoraSite> {
        self.site.as_mut()
    }

    /// `[in, out]` of the weight.
    pub(crate) fn dims(&self) -> [usize; 2] {
        let [d_out, d_in] = self.weight.val().dims();
        [d_in, d_out]
    }

    /// Adds `term` to every later forward (training); `None` removes it.
    pub(crate) fn set_lora(&mut self, term: Option<LoraTerm>) {
        self.lora = term;
    }

    /// The installed LoRA term, if any.
    pub(crate) fn lora_mut(&mut self) -> Option<&mut LoraTerm> {
        self.lora.as_mut()
    }

    /// Folds `scale * B A` (`a` `[rank, in]`, `b` `[out, rank]`) into the weight, so that
    /// decoding pays nothing for an adapter; quantized blocks keep it as a low-rank term.
    pub(crate) fn merge(&mut self, a: Tensor<2>, b: Tensor<2>, scale: f64) {
        let merged = self.weight.val() + b.clone().matmul(a.clone()) * scale;
        self.weight = Param::from_tensor(merged);
        if let Some(native) = &mut self.native {
            native.merged.push(LoraTerm {
                a,
                b,
                scale,
                dropout: 0.0,
                mask_seed: 0,
            });
        }
    }

    /// Whether the weight is also held in the file's quantized blocks.
    pub(crate) fn is_native(&self) -> bool {
        self.native.is_some()
    }

    /// From host data laid out `[in, out]` (GPT-2's `Conv1D`).
    pub(crate) fn from_in_out(
        weight: &[f32],
        bias: Option<Vec<f32>>,
        d_in: usize,
        d_out: usize,
        device: &Device,
    ) -> Self {
        Self::from_out_in(transpose(weight, d_in, d_out), bias, d_in, d_out, device)
    }

    /// A PyTorch `nn.Linear`: `weight` (`[out, in]`) under `scope`, and `bias` if `with_bias`.
    pub(crate) fn load(
        scope: &WeightScope<'_>,
        d_in: usize,
        d_out: usize,
        with_bias: bool,
    ) -> Result<Self, ModelError> {
        let weight = scope.load("weight", &[d_out, d_in])?;
        let bias = if with_bias {
            Some(scope.load("bias", &[d_out])?)
        } else {
            None
        };
        let native = scope
            .load_blocks("weight", [d_out, d_in])?
            .map(|blocks| NativeWeight {
                blocks: Arc::new(blocks),
                merged: Vec::new(),
            });
        Ok(Self {
            native,
            ..Self::from_out_in(weight, bias, d_in, d_out, scope.device())
                .at(LoraSite::whole(scope))
        })
    }

    pub(crate) fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, t, d_in] = x.dims();
        let rows = x.reshape([b * t, d_in]);
        let y = self
            .native_product(&rows)
            .unwrap_or_else(|| weight_product(self.weight.val(), rows.clone()));
        let y = match &self.bias {
            Some(bias) => y + bias.val().unsqueeze_dim(0),
            None => y,
        };
        let y = match &self.lora {
            Some(term) => y + term.forward(rows),
            None => y,
        };
        let d_out = y.dims()[1];
        y.reshape([b, t, d_out])
    }

    /// `x W^T` (and merged adapters) over the quantized blocks, when there are blocks and a
    /// kernel takes `rows`.
    fn native_product(&self, rows: &Tensor<2>) -> Option<Tensor<2>> {
        let native = self.native.as_ref()?;
        let y = block_weight_product(&native.blocks, rows)?;
        Some(
            native
                .merged
                .iter()
                .fold(y, |y, term| y + term.forward(rows.clone())),
        )
    }
}

/// LayerNorm over the last dimension, with affine weight and bias.
#[derive(Module, Debug)]
pub(crate) struct LayerNorm {
    weight: Param<Tensor<1>>,
    bias: Param<Tensor<1>>,
    eps: f64,
}

impl LayerNorm {
    /// `weight` and `bias` under `scope`.
    pub(crate) fn load(scope: &WeightScope<'_>, dim: usize, eps: f64) -> Result<Self, ModelError> {
        Ok(Self {
            weight: Param::from_tensor(scope.tensor("weight", [dim])?),
            bias: Param::from_tensor(scope.tensor("bias", [dim])?),
            eps,
        })
    }

    pub(crate) fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let mean = x.clone().mean_dim(D - 1);
        let centered = x - mean;
        let var = centered.clone().powi_scalar(2).mean_dim(D - 1);
        let normed = centered / (var + self.eps).sqrt();
        normed * self.weight.val().unsqueeze::<D>() + self.bias.val().unsqueeze::<D>()
    }
}

/// RMSNorm over the last dimension (Llama): `x / rms(x) * w`.
#[derive(Module, Debug)]
pub(crate) struct RmsNorm {
    weight: Param<Tensor<1>>,
    eps: f64,
}

impl RmsNorm {
    /// `weight` under `scope`.
    pub(crate) fn load(scope: &WeightScope<'_>, dim: usize, eps: f64) -> Result<Self, ModelError> {
        Ok(Self {
            weight: Param::from_tensor(scope.tensor("weight", [dim])?),
            eps,
        })
    }

    pub(crate) fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let mean_square = x.clone().powi_scalar(2).mean_dim(D - 1);
        x / (mean_square + self.eps).sqrt() * self.weight.val().unsqueeze::<D>()
    }
}

/// A `[vocab, hidden]` matrix stored in row chunks of under [`MAX_CHUNK_BYTES`] each, serving
/// as a token embedding (row lookup), as an LM head (`h W^T`), or as both when they are tied.
#[derive(Module, Debug)]
pub(crate) struct VocabMatrix {
    /// `[rows_c, hidden]` per chunk.
    rows: Vec<Param<Tensor<2>>>,
    chunk_rows: usize,
    /// The whole matrix in the file's quantized blocks too, with `--weights native`: the head
    /// of a decode pass reads it.
    #[module(skip)]
    native: Option<Arc<BlockMatrix>>,
}

impl VocabMatrix {
    /// `weight` under `scope`.
    pub(crate) fn load(
        scope: &WeightScope<'_>,
        vocab: usize,
        hidden: usize,
    ) -> Result<Self, ModelError> {
        let matrix = scope.load("weight", &[vocab, hidden])?;
        Ok(Self {
            native: scope.load_blocks("weight", [vocab, hidden])?.map(Arc::new),
            ..Self::from_rows(&matrix, vocab, hidden, scope.device())
        })
    }

    /// The token embedding `model.embed_tokens.weight` and, unless the head is tied to it
    /// (`tie_word_embeddings`, or no `lm_head.weight` in the file), the LM head
    /// `lm_head.weight`: the Hugging Face names of the Llama family and Phi.
    pub(crate) fn load_embedding_and_head(
        root: &WeightScope<'_>,
        tie_word_embeddings: bool,
        vocab: usize,
        hidden: usize,
    ) -> Result<(Self, Option<Self>), ModelError> {
        let embed = Self::load(&root.pp("model.embed_tokens"), vocab, hidden)?;
        let tied = tie_word_embeddings || !root.contains("lm_head.weight");
        let head = if tied {
            None
        } else {
            Some(Self::load(&root.pp("lm_head"), vocab, hidden)?)
        };
        Ok((embed, head))
    }

    pub(crate) fn from_rows(data: &[f32], vocab: usize, hidden: usize, device: &Device) -> Self {
        let chunk_rows =
            (MAX_CHUNK_BYTES / (hidden * std::mem::size_of::<f32>())).clamp(1, vocab.max(1));
        Self::from_rows_in_chunks(data, vocab, hidden, chunk_rows, device)
    }

    fn from_rows_in_chunks(
        data: &[f32],
        vocab: usize,
        hidden: usize,
        chunk_rows: usize,
        device: &Device,
    ) -> Self {
        let rows = (0..vocab)
            .step_by(chunk_rows)
            .map(|start| {
                let n = chunk_rows.min(vocab - start);
                let chunk = data[start * hidden..(start + n) * hidden].to_vec();
                Param::from_tensor(to_device(chunk, [n, hidden], device))
            })
            .collect();
        Self {
            rows,
            chunk_rows,
            native: None,
        }
    }

    /// Looks up `ids` (`[B, T]`, every id below the vocabulary size) as `[B, T, hidden]`.
    pub(crate) fn embed(
        &self,
        ids: &[u32],
        batch: usize,
        len: usize,
        device: &Device,
    ) -> Tensor<3> {
        let chunk_of = |id: u32| id as usize / self.chunk_rows;
        let mut parts = Vec::new();
        let mut order = Vec::with_capacity(ids.len());
        for (c, chunk) in self.rows.iter().enumerate() {
            let local: Vec<i64> = ids
                .iter()
                .filter(|&&id| chunk_of(id) == c)
                .map(|&id| (id as usize - c * self.chunk_rows) as i64)
                .collect();
            if local.is_empty() {
                continue;
            }
            order.extend(
                ids.iter()
                    .enumerate()
                    .filter(|&(_, &id)| chunk_of(id) == c)
                    .map(|(i, _)| i),
            );
            let n = local.len();
            parts.push(chunk.val().select(
                0,
                Tensor::<1, Int>::from_data(TensorData::new(local, [n]), device),
            ));
        }
        let gathered = if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            Tensor::cat(parts, 0)
        };
        let hidden = gathered.dims()[1];
        // `gathered` is grouped by chunk; put the rows back in token order.
        let restore = if order.iter().enumerate().all(|(i, &o)| i == o) {
            gathered
        } else {
            let mut inverse = vec![0i64; order.len()];
            for (at, &token) in order.iter().enumerate() {
                inverse[token] = at as i64;
            }
            let n = inverse.len();
            gathered.select(
                0,
                Tensor::<1, Int>::from_data(TensorData::new(inverse, [n]), device),
            )
        };
        restore.reshape([batch, len, hidden])
    }

    /// Logits `[N, vocab]` for hidden rows `[N, hidden]`.
    pub(crate) fn head(&self, h: Tensor<2>) -> Tensor<2> {
        if let Some(y) = self
            .native
            .as_ref()
            .and_then(|blocks| block_weight_product(blocks, &h))
        {
            return y;
        }
        let parts: Vec<Tensor<2>> = self
            .rows
            .iter()
            .map(|chunk| weight_product(chunk.val(), h.clone()))
            .collect();
        if parts.len() == 1 {
            parts.into_iter().next().expect("one chunk")
        } else {
            Tensor::cat(parts, 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> Device {
        Device::default()
    }

    #[test]
    fn chunked_embedding_and_head_equal_the_whole_matrix() {
        let (vocab, hidden) = (7, 3);
        let data: Vec<f32> = (0..vocab * hidden).map(|i| i as f32 * 0.5 - 3.0).collect();
        let matrix = VocabMatrix::from_rows_in_chunks(&data, vocab, hidden, 3, &device());
        let whole = VocabMatrix::from_rows(&data, vocab, hidden, &device());
        assert_eq!(matrix.rows.len(), 3);
        let ids = [6, 0, 4, 4, 1, 5];
        let a: Vec<f32> = matrix
            .embed(&ids, 2, 3, &device())
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        let b: Vec<f32> = whole
            .embed(&ids, 2, 3, &device())
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        assert_eq!(a, b);
        let expected: Vec<f32> = ids
            .iter()
            .flat_map(|&id| data[id as usize * hidden..(id as usize + 1) * hidden].to_vec())
            .collect();
        assert_eq!(a, expected);
        let h = to_device(vec![1.0, -2.0, 0.25, 0.0, 1.0, 3.0], [2, hidden], &device());
        let la: Vec<f32> = matrix
            .head(h.clone())
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        let lb: Vec<f32> = whole.head(h).into_data().try_into_vec::<f32>().unwrap();
        assert_eq!(la, lb);
        assert_eq!(la.len(), 2 * vocab);
    }

    #[test]
    fn the_gpt2_embedding_is_split_under_the_buffer_cap() {
        let (vocab, hidden) = (50_257, 768);
        let data = vec![0.0; vocab * hidden];
        let matrix = VocabMatrix::from_rows(&data, vocab, hidden, &device());
        assert!(matrix.chunk_rows * hidden * 4 <= MAX_CHUNK_BYTES);
        assert_eq!(matrix.rows.len(), 3);
        assert_eq!(
            matrix.rows.iter().map(|c| c.val().dims()[0]).sum::<usize>(),
            vocab
        );
    }
}
