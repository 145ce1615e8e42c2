//! Causal grouped-query self-attention over the cache, shared by every architecture: the
//! projections (`Attention`) and one layer's view of the cache (`LayerStep`).

use burn::module::Module;
use burn::tensor::Tensor;

use crate::ModelError;
use crate::cache::Cache;
use crate::kernels::{attention_probs, fused_cache_attention};
use crate::layers::Linear;
use crate::rope::RopeAngles;
use crate::weight_scope::WeightScope;

/// The widths of an attention layer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AttentionShape {
    pub(crate) hidden: usize,
    pub(crate) heads: usize,
    pub(crate) kv_heads: usize,
    pub(crate) head_dim: usize,
}

/// Query, key, value and output projections; queries and keys are rotated by the pass's RoPE
/// angles when the architecture has them.
#[derive(Module, Debug)]
pub(crate) struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    heads: usize,
    kv_heads: usize,
}

impl Attention {
    pub(crate) fn new(q: Linear, k: Linear, v: Linear, out: Linear, shape: AttentionShape) -> Self {
        Self {
            q,
            k,
            v,
            out,
            heads: shape.heads,
            kv_heads: shape.kv_heads,
        }
    }

    /// Hugging Face's separate `q_proj`, `k_proj` and `v_proj` under `scope`, with biases if
    /// `qkv_bias`, and the output projection `out_name`, with a bias if `out_bias`.
    pub(crate) fn load(
        scope: &WeightScope<'_>,
        out_name: &str,
        shape: AttentionShape,
        qkv_bias: bool,
        out_bias: bool,
    ) -> Result<Self, ModelError> {
        let hidden = shape.hidden;
        let (q_width, kv_width) = (
            shape.heads * shape.head_dim,
            shape.kv_heads * shape.head_dim,
        );
        Ok(Self::new(
            Linear::load(&scope.pp("q_proj"), hidden, q_width, qkv_bias)?,
            Linear::load(&scope.pp("k_proj"), hidden, kv_width, qkv_bias)?,
            Linear::load(&scope.pp("v_proj"), hidden, kv_width, qkv_bias)?,
            Linear::load(&scope.pp(out_name), q_width, hidden, out_bias)?,
            shape,
        ))
    }

    /// Attends from the normed hidden states `x` (`[B, T, hidden]`) over the cache, writing this
    /// pass's K/V first; returns the output projection, `[B, T, hidden]`.
    pub(crate) fn forward(&self, x: Tensor<3>, step: &mut LayerStep<'_>) -> Tensor<3> {
        let q = step.rotate(split_heads(self.q.forward(x.clone()), self.heads));
        let (k, v) = self.kv(x, step);
        self.out.forward(step.attend(q, k, v))
    }

    /// Only writes the K/V `forward` would write for `x`: what a skipped layer does under
    /// `kv_fill = propagate`.
    pub(crate) fn fill_kv(&self, x: Tensor<3>, step: &mut LayerStep<'_>) {
        let (k, v) = self.kv(x, step);
        step.write(k, v);
    }

    pub(crate) fn linears(&self) -> [&Linear; 4] {
        [&self.q, &self.k, &self.v, &self.out]
    }

    pub(crate) fn linears_mut(&mut self) -> [&mut Linear; 4] {
        [&mut self.q, &mut self.k, &mut self.v, &mut self.out]
    }

    fn kv(&self, x: Tensor<3>, step: &LayerStep<'_>) -> (Tensor<4>, Tensor<4>) {
        let k = step.rotate(split_heads(self.k.forward(x.clone()), self.kv_heads));
        (k, split_heads(self.v.forward(x), self.kv_heads))
    }
}

/// How a pass attends over the cache.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) enum CacheAttention {
    /// burn's batched products around the fused probabilities: the reference, bit for bit
    /// what every `f32` result was made with.
    #[default]
    Reference,
    /// On Flex, without the score tensor ([`crate::kernels::fused_cache_attention`]): a pass of
    /// a few rows (decode, verify, draft) in one pass per query head, heads in parallel; a
    /// longer one (prefill) in tiles of query rows that score only the keys they see. The sums
    /// run in another order, so this is what the file's own blocks
    /// ([`crate::WeightMode::Native`]) decode with, never `f32`.
    Fused,
}

/// One layer's view of the cache during a forward pass over the slots `start..start + T`.
pub(crate) struct LayerStep<'a> {
    pub(crate) cache: &'a mut Cache,
    pub(crate) layer: usize,
    pub(crate) start: usize,
    /// `[B, 1, T, start + T]`, additive.
    pub(crate) bias: &'a Tensor<4>,
    /// The pass's rotary angles; `None` for learned positions (GPT-2).
    pub(crate) rope: Option<&'a RopeAngles>,
    pub(crate) attention: CacheAttention,
}

impl LayerStep<'_> {
    /// `x` (`[B, heads, T, head_dim]`) rotated to its positions, unchanged without RoPE.
    fn rotate(&self, x: Tensor<4>) -> Tensor<4> {
        match self.rope {
            Some(angles) => angles.apply(x),
            None => x,
        }
    }

    /// Writes this layer's K and V (`[B, kv_heads, T, head_dim]`, RoPE applied) into the cache.
    fn write(&mut self, k: Tensor<4>, v: Tensor<4>) {
        self.cache.write(self.layer, self.start, k, v);
    }

    /// Writes K/V, then attends with `q` (`[B, heads, T, head_dim]`) over every slot up to the
    /// current ones; returns `[B, T, heads * head_dim]`.
    fn attend(&mut self, q: Tensor<4>, k: Tensor<4>, v: Tensor<4>) -> Tensor<3> {
        let [b, heads, t, head_dim] = q.dims();
        self.write(k, v);
        let end = self.start + t;
        let (keys, values) = self.cache.keys_values(self.layer, end);
        let scale = 1.0 / (head_dim as f64).sqrt();
        if self.attention == CacheAttention::Fused
            && let Some(out) = fused_cache_attention(&q, &keys, &values, self.bias, scale as f32)
        {
            return out;
        }
        let kv_heads = keys.dims()[1];
        let group = heads / kv_heads;
        // Query head h reads KV head h / group: fold the group into the query axis instead of
        // repeating K and V.
        let q = q.reshape([b, kv_heads, group * t, head_dim]);
        let scores = q
            .matmul(keys.swap_dims(2, 3))
            .reshape([b, kv_heads, group, t, end]);
        let bias = self.bias.clone().unsqueeze_dim::<5>(1);
        let probs = attention_probs(scores, scale, &bias).reshape([b, kv_heads, group * t, end]);
        probs
            .matmul(values)
            .reshape([b, heads, t, head_dim])
            .swap_dims(1, 2)
            .reshape([b, t, heads * head_dim])
    }
}

/// `[B, T, heads * head_dim]` -> `[B, heads, T, head_dim]`.
fn split_heads(x: Tensor<3>, heads: usize) -> Tensor<4> {
    let [b, t, width] = x.dims();
    x.reshape([b, t, heads, width / heads]).swap_dims(1, 2)
}
