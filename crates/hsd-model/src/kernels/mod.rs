//! CPU kernels the Flex backend lacks, behind one seam: [`weight_product`] computes `x W^T` for
//! the model's linear layers and takes a kernel here when one fits (for many rows, burn's own
//! `gemm` call without its output's extra memset and copy), burn's matmul otherwise;
//! [`block_weight_product`] does the same over a weight kept in its file's quantized blocks;
//! [`attention_probs`] fuses attention's scale, mask and softmax, bit for bit burn's. Decoders
//! on the file's blocks also take [`fused_cache_attention`] (attention over the cache without
//! the score tensor) and [`silu_product_lanes`] (SwiGLU with a SIMD `exp`), whose sums and
//! exponentials differ from burn's in the last bits. Other backends, and autodiff tensors in
//! training, always take burn's path.

#[cfg(feature = "flex")]
mod attention_probs;
#[cfg(all(feature = "flex", target_arch = "x86_64"))]
mod block_fused;
#[cfg(feature = "flex")]
mod block_rows;
#[cfg(feature = "flex")]
mod cache_attention;
#[cfg(feature = "flex")]
mod few_rows;
#[cfg(feature = "flex")]
mod flex_host;
#[cfg(feature = "flex")]
mod lane_exp;
#[cfg(feature = "flex")]
mod many_rows;
#[cfg(feature = "flex")]
mod prefill_attention;

use burn::tensor::{Tensor, activation};

use crate::weights::BlockMatrix;

/// Up to this many input rows (tokens in a pass) a weight product runs as `(W x^T)^T`, above it
/// as `x W^T`. With few rows, as in a decode step, putting the long output axis on gemm's row
/// axis lets Flex tile and stream the weights 1.5-3x faster; with many, as in a prefill, the
/// plain order is up to 1.5x faster (`bench/README.md` has the measurements).
const WEIGHT_FIRST_MAX_ROWS: usize = 64;

/// `x W^T` as `[rows, out]` for `W` stored `[out, in]`, with whichever kernel is fastest for
/// `x`'s row count on `x`'s backend.
pub(crate) fn weight_product(weight: Tensor<2>, x: Tensor<2>) -> Tensor<2> {
    let rows = x.dims()[0];
    #[cfg(feature = "flex")]
    if let Some(y) = few_rows::product(&weight, &x) {
        return y;
    }
    if rows <= WEIGHT_FIRST_MAX_ROWS {
        return weight.matmul(x.transpose()).transpose();
    }
    #[cfg(feature = "flex")]
    if let Some(y) = many_rows::product(&weight, &x) {
        return y;
    }
    x.matmul(weight.transpose())
}

/// `x W^T` as `[rows, out]` for `W` (`[out, in]`) in its file's quantized blocks, or `None` when
/// no kernel takes `x` (another backend, autodiff, more rows than a decode pass has), for the
/// caller's `f32` path.
pub(crate) fn block_weight_product(matrix: &BlockMatrix, x: &Tensor<2>) -> Option<Tensor<2>> {
    #[cfg(feature = "flex")]
    {
        block_rows::product(matrix, x)
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = (matrix, x);
        None
    }
}

/// `softmax(q K^T * scale + bias) V` as `[B, T, H * D]` for a pass's query rows `q`
/// (`[B, H, T, D]`) over the cache's `keys` and `values` (`[B, KV, S, D]`) with the additive
/// `bias` (`[B, 1, T, S]`), fused on Flex; `None` where no kernel takes the tensors, for burn's
/// path. Its sums run in another order than burn's.
pub(crate) fn fused_cache_attention(
    q: &Tensor<4>,
    keys: &Tensor<4>,
    values: &Tensor<4>,
    bias: &Tensor<4>,
    scale: f32,
) -> Option<Tensor<3>> {
    #[cfg(feature = "flex")]
    {
        cache_attention::attend(q, keys, values, bias, scale)
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = (q, keys, values, bias, scale);
        None
    }
}

/// SwiGLU's `silu(gate) * up`; on Flex over SIMD lanes with its own `exp` (within 2 ulp of
/// libm's, so for decoders on the file's own blocks only), burn's operations elsewhere.
pub(crate) fn silu_product_lanes(gate: Tensor<3>, up: Tensor<3>) -> Tensor<3> {
    #[cfg(feature = "flex")]
    {
        lane_exp::silu_product(gate, up)
    }
    #[cfg(not(feature = "flex"))]
    {
        activation::silu(gate) * up
    }
}

/// Attention probabilities `softmax(scores * scale + bias)` over the key axis, for `scores`
/// `[B, H, G, T, S]` and an additive `bias` `[B, 1, 1, T, S]`; on Flex in one pass over the
/// scores, bit for bit burn's operations.
pub(crate) fn attention_probs(scores: Tensor<5>, scale: f64, bias: &Tensor<5>) -> Tensor<5> {
    #[cfg(feature = "flex")]
    let scores = match attention_probs::probs(scores, scale, bias) {
        Ok(probs) => return probs,
        Err(scores) => scores,
    };
    activation::softmax(scores * scale + bias.clone(), 4)
}
