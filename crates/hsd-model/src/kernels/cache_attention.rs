//! Attention of a pass's few query rows (a decode step, a verify pass) over the cache on Flex,
//! fused: per query head, each key's score, the softmax and the weighted sum of the values in
//! one pass over that head's keys and values, straight from the cache's storage.
//!
//! burn's path is two batched matrix products around the probabilities. At decode, the products
//! are a few query rows against hundreds of cached keys: `gemm` packs the keys and the values
//! for each product and runs on one thread, and at 512 tokens of context that was a quarter of
//! a native batch-1 step. Here the heads split over the pool, nothing is packed, and a masked
//! key costs neither its product nor its exponential. The sums run in another order than
//! `gemm`'s, so the result differs from burn's in the last bits: only decoders that read the
//! file's quantized blocks take this path (`CacheAttention::Fused`); `f32` stays the reference.
//! Longer passes (prefill) are compute-bound and go to [`super::prefill_attention`], which
//! tiles them for `gemm`.

use burn::tensor::Tensor;
use pulp::{Arch, Simd, WithSimd};
use rayon::prelude::*;

use super::attention_probs::{MASKED_BELOW, softmax_row};
use super::flex_host::{HeadRows, SlotRows, flex_tensor, host_f32};
use super::prefill_attention::{self, LongPass};

/// The most query rows a pass may have for the per-head loop, as for the block kernels: decode
/// steps and verify passes. Longer passes (prefill) are compute-bound, where gemm's blocking
/// pays for its packing.
const MAX_QUERY_ROWS: usize = 16;

/// `softmax(q K^T * scale + bias) V` for `q` `[B, H, T, D]`, `keys` and `values` `[B, KV, S, D]`
/// (query head `h` reads KV head `h / (H / KV)`) and an additive `bias` `[B, 1, T, S]`, as
/// `[B, T, H * D]`; `None` when the tensors are not Flex f32 ones this kernel reads (another
/// backend, autodiff, slots whose `D` values are not contiguous).
pub(crate) fn attend(
    q: &Tensor<4>,
    keys: &Tensor<4>,
    values: &Tensor<4>,
    bias: &Tensor<4>,
    scale: f32,
) -> Option<Tensor<3>> {
    let [b, heads, t, d] = q.dims();
    let [kb, kv_heads, s, kd] = keys.dims();
    if kb != b
        || kd != d
        || values.dims() != keys.dims()
        || bias.dims() != [b, 1, t, s]
        || kv_heads == 0
        || !heads.is_multiple_of(kv_heads)
        || s == 0
    {
        return None;
    }
    let keys = SlotRows::new(keys)?;
    let values = SlotRows::new(values)?;
    if t > MAX_QUERY_ROWS {
        return Some(prefill_attention::attend(&LongPass {
            q: &SlotRows::new(q)?,
            keys: &keys,
            values: &values,
            bias: &SlotRows::new(bias)?,
            scale,
            dims: [b, heads, kv_heads, t, s, d],
        }));
    }
    let q = host_f32(q)?;
    let bias = host_f32(bias)?;
    let group = heads / kv_heads;
    let per_head: Vec<Vec<f32>> = (0..b * heads)
        .into_par_iter()
        .map(|task| {
            let (row, head) = (task / heads, task % heads);
            let kv_head = head / group;
            let mut out = vec![0.0f32; t * d];
            Arch::new().dispatch(HeadPass {
                q: &q[task * t * d..][..t * d],
                keys: keys.head(row, kv_head),
                values: values.head(row, kv_head),
                bias: &bias[row * t * s..][..t * s],
                scale,
                keys_len: s,
                dim: d,
                out: &mut out,
            });
            out
        })
        .collect();
    // `[B, H, T, D]` -> `[B, T, H * D]`.
    let mut out = vec![0.0f32; b * t * heads * d];
    for (task, head_out) in per_head.iter().enumerate() {
        let (row, head) = (task / heads, task % heads);
        for (step, values) in head_out.chunks_exact(d).enumerate() {
            out[((row * t + step) * heads + head) * d..][..d].copy_from_slice(values);
        }
    }
    Some(flex_tensor(out, b * t, heads * d).reshape([b, t, heads * d]))
}

/// One query head's rows against its KV head.
struct HeadPass<'a> {
    /// `[T, D]`.
    q: &'a [f32],
    keys: HeadRows<'a>,
    values: HeadRows<'a>,
    /// `[T, S]`.
    bias: &'a [f32],
    scale: f32,
    keys_len: usize,
    dim: usize,
    /// `[T, D]`.
    out: &'a mut [f32],
}

impl WithSimd for HeadPass<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let (s, d) = (self.keys_len, self.dim);
        let mut scores = vec![0.0f32; s];
        for ((q, bias), out) in self
            .q
            .chunks_exact(d)
            .zip(self.bias.chunks_exact(s))
            .zip(self.out.chunks_exact_mut(d))
        {
            // A masked key's score stays 0, so its weight is its bias; it costs no product.
            for (j, (score, &bias)) in scores.iter_mut().zip(bias).enumerate() {
                *score = if bias <= MASKED_BELOW {
                    0.0
                } else {
                    dot(simd, q, self.keys.slot(j))
                };
            }
            softmax_row(&mut scores, self.scale, bias);
            out.fill(0.0);
            for (j, &weight) in scores.iter().enumerate() {
                if weight != 0.0 {
                    add_scaled(simd, weight, self.values.slot(j), out);
                }
            }
        }
    }
}

/// `sum a[i] b[i]` over equal-length slices.
#[inline(always)]
fn dot<S: Simd>(simd: S, a: &[f32], b: &[f32]) -> f32 {
    let (a_head, a_tail) = S::as_simd_f32s(a);
    let (b_head, b_tail) = S::as_simd_f32s(b);
    let mut acc = [simd.splat_f32s(0.0); 2];
    let (a2, a_rest) = a_head.as_chunks::<2>();
    let (b2, b_rest) = b_head.as_chunks::<2>();
    for (a, b) in a2.iter().zip(b2) {
        acc[0] = simd.mul_add_f32s(a[0], b[0], acc[0]);
        acc[1] = simd.mul_add_f32s(a[1], b[1], acc[1]);
    }
    for (&a, &b) in a_rest.iter().zip(b_rest) {
        acc[0] = simd.mul_add_f32s(a, b, acc[0]);
    }
    let tail: f32 = a_tail.iter().zip(b_tail).map(|(a, b)| a * b).sum();
    simd.reduce_sum_f32s(simd.add_f32s(acc[0], acc[1])) + tail
}

/// `out += w * v`.
#[inline(always)]
fn add_scaled<S: Simd>(simd: S, w: f32, v: &[f32], out: &mut [f32]) {
    let (v_head, v_tail) = S::as_simd_f32s(v);
    let (out_head, out_tail) = S::as_mut_simd_f32s(out);
    let w_lanes = simd.splat_f32s(w);
    for (o, &v) in out_head.iter_mut().zip(v_head) {
        *o = simd.mul_add_f32s(w_lanes, v, *o);
    }
    for (o, &v) in out_tail.iter_mut().zip(v_tail) {
        *o += w * v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData, activation};

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let h = (i as u32 ^ seed).wrapping_mul(2_654_435_761);
                (h >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    fn tensor<const D: usize>(data: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
        Tensor::from_data(TensorData::new(data, shape), &Device::flex())
    }

    /// burn's path, as `attention.rs` runs it.
    fn reference(
        q: Tensor<4>,
        keys: Tensor<4>,
        values: Tensor<4>,
        bias: Tensor<4>,
        scale: f32,
    ) -> Tensor<3> {
        let [b, heads, t, d] = q.dims();
        let [_, kv_heads, s, _] = keys.dims();
        let group = heads / kv_heads;
        let scores = q
            .reshape([b, kv_heads, group * t, d])
            .matmul(keys.swap_dims(2, 3))
            .reshape([b, kv_heads, group, t, s]);
        let probs = activation::softmax(scores * scale + bias.unsqueeze_dim::<5>(1), 4);
        probs
            .reshape([b, kv_heads, group * t, s])
            .matmul(values)
            .reshape([b, heads, t, d])
            .swap_dims(1, 2)
            .reshape([b, t, heads * d])
    }

    #[test]
    fn equals_burns_products_over_a_sliced_cache_with_masks() {
        let d = 16;
        for (b, heads, kv_heads) in [(1, 9, 3), (2, 4, 4), (3, 6, 1)] {
            // Decode and verify passes (the per-head loop), then prefills (the tiles): one tile,
            // a tile and a few rows, several tiles over a longer cache.
            for (t, s) in [
                (1, 1),
                (1, 37),
                (3, 5),
                (16, 70),
                (17, 17),
                (70, 70),
                (150, 163),
            ] {
                let capacity = s + 7;
                // Keys and values are the first `s` slots of a larger cache, as `keys_values`
                // slices them.
                let cache = |seed| {
                    tensor(
                        values(b * kv_heads * capacity * d, seed),
                        [b, kv_heads, capacity, d],
                    )
                    .slice([0..b, 0..kv_heads, 0..s, 0..d])
                };
                let (keys, vals) = (cache(3), cache(4));
                // Queries as the model hands them: heads swapped out of `[B, T, H, D]`.
                let q = tensor(values(b * t * heads * d, 5), [b, t, heads, d]).swap_dims(1, 2);
                // Causal masks with holes and left padding of 5 keys a batch row; the padding's
                // queries see no key at all, and neither does the first query of row 1.
                let mut bias = vec![0.0f32; b * t * s];
                for (i, value) in bias.iter_mut().enumerate() {
                    let (row, step, key) = (i / (t * s), i / s % t, i % s);
                    let position = s - t + step;
                    if key > position
                        || (key + row) % 4 == 1
                        || key < 5 * row
                        || position < 5 * row
                        || (step == 0 && row == 1)
                    {
                        *value = -1e9;
                    }
                }
                let bias = tensor(bias, [b, 1, t, s]);
                let scale = 0.25;
                let ours = attend(&q, &keys, &vals, &bias, scale).expect("Flex f32 tensors");
                let want = reference(q, keys, vals, bias, scale);
                assert_eq!(ours.dims(), want.dims());
                let diff: f32 = (ours - want).abs().max().into_scalar();
                assert!(
                    diff < 1e-5,
                    "B{b} H{heads} KV{kv_heads} T{t} S{s}: max |diff| {diff}"
                );
            }
        }
    }
}
