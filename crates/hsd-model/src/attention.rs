//! Causal grouped-query attention over the cache, shared by every architecture.

use burn::tensor::{Tensor, activation};

use crate::cache::Cache;

/// One layer's view of the cache during a forward pass over the slots `start..start + T`.
pub(crate) struct LayerStep<'a> {
    pub(crate) cache: &'a mut Cache,
    pub(crate) layer: usize,
    pub(crate) start: usize,
    /// `[B, 1, T, start + T]`, additive.
    pub(crate) bias: &'a Tensor<4>,
}

impl LayerStep<'_> {
    /// Writes this layer's K and V (`[B, kv_heads, T, head_dim]`, RoPE applied) into the cache.
    pub(crate) fn write(&mut self, k: Tensor<4>, v: Tensor<4>) {
        self.cache.write(self.layer, self.start, k, v);
    }

    /// Writes K/V, then attends with `q` (`[B, heads, T, head_dim]`) over every slot up to the
    /// current ones; returns `[B, T, heads * head_dim]`.
    pub(crate) fn attend(&mut self, q: Tensor<4>, k: Tensor<4>, v: Tensor<4>) -> Tensor<3> {
        let [b, heads, t, head_dim] = q.dims();
        self.write(k, v);
        let end = self.start + t;
        let (keys, values) = self.cache.keys_values(self.layer, end);
        let kv_heads = keys.dims()[1];
        let group = heads / kv_heads;
        // Query head h reads KV head h / group: fold the group into the query axis instead of
        // repeating K and V.
        let q = q.reshape([b, kv_heads, group * t, head_dim]);
        let scores = q.matmul(keys.swap_dims(2, 3)) * (1.0 / (head_dim as f64).sqrt());
        let scores =
            scores.reshape([b, kv_heads, group, t, end]) + self.bias.clone().unsqueeze_dim::<5>(1);
        let probs = activation::softmax(scores, 4).reshape([b, kv_heads, group * t, end]);
        probs
            .matmul(values)
            .reshape([b, heads, t, head_dim])
            .swap_dims(1, 2)
            .reshape([b, t, heads * head_dim])
    }
}

/// `[B, T, heads * head_dim]` -> `[B, heads, T, head_dim]`.
pub(crate) fn split_heads(x: Tensor<3>, heads: usize) -> Tensor<4> {
    let [b, t, width] = x.dims();
    x.reshape([b, t, heads, width / heads]).swap_dims(1, 2)
}
