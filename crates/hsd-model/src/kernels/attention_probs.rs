//! Attention probabilities on Flex in one pass over the scores: `softmax(scores * scale + bias)`
//! along the key axis, written over the scores' own storage.
//!
//! burn's path runs three operations over the `[B, H, G, T, S]` scores (scale, bias, softmax)
//! and allocates the result. Here each row is scaled, biased and normalized while it is in
//! cache, with the same f32 operations in the same order, so the probabilities are bit for bit
//! burn's: the row's maximum, then `exp(x - max)` summed from the first key to the last, then
//! each times `1 / sum`. One thing is skipped: the exponential of a masked key (`x - max` below
//! -104) is 0.0 exactly, as libm's `expf` returns there, but reaching it costs libm's underflow
//! path (errno included), which was an eighth of a 512-token prefill's time: half of a causal
//! prefill's keys are masked.

use burn::tensor::{DType, Tensor};
use burn_flex::Flex;
use rayon::prelude::*;

use super::flex_host::is_plain_f32;

/// Below this, `expf` underflows to 0.0 (it returns a subnormal down to about -103.97).
const EXP_IS_ZERO_BELOW: f32 = -104.0;

/// A bias at or below this masks its key: the cache's masked score is -1e9, whose exponential
/// is 0.0 next to any unmasked key.
pub(super) const MASKED_BELOW: f32 = -1e8;

/// Rows per parallel task.
const ROWS_PER_TASK: usize = 64;

/// `softmax(scores * scale + bias)` over the last axis for Flex f32 tensors, `bias`
/// (`[B, 1, 1, T, S]`) broadcast over the scores' axes 1 and 2; `Err` gives `scores` back
/// when the kernel does not take them (another backend, autodiff, other shapes or types).
#[allow(
    clippy::result_large_err,
    reason = "the error is the caller's own tensor handed back by value, not an error report"
)]
pub(super) fn probs(
    scores: Tensor<5>,
    scale: f64,
    bias: &Tensor<5>,
) -> Result<Tensor<5>, Tensor<5>> {
    let [b, heads, group, t, keys] = scores.dims();
    if bias.dims() != [b, 1, 1, t, keys] || keys == 0 {
        return Err(scores);
    }
    let (Ok(scores_flex), Ok(bias_flex)) = (
        scores.clone().try_into_primitive::<Flex>(),
        bias.clone().try_into_primitive::<Flex>(),
    ) else {
        return Err(scores);
    };
    if scores_flex.dtype() != DType::F32 || !is_plain_f32(&bias_flex) {
        return Err(scores);
    }
    // The primitive is now the storage's only owner, so the rows are rewritten in place.
    drop(scores);
    let mut out = if is_plain_f32(&scores_flex) {
        scores_flex
    } else {
        scores_flex.to_contiguous()
    };
    let bias_rows = &bias_flex.storage::<f32>()[..b * t * keys];
    let scale = scale as f32;
    let rows_per_batch = heads * group * t;
    out.storage_mut::<f32>()[..b * rows_per_batch * keys]
        .par_chunks_mut(ROWS_PER_TASK * keys)
        .enumerate()
        .for_each(|(task, rows)| {
            for (i, row) in rows.chunks_exact_mut(keys).enumerate() {
                let r = task * ROWS_PER_TASK + i;
                let bias_row = (r / rows_per_batch) * t + r % t;
                softmax_row(row, scale, &bias_rows[bias_row * keys..][..keys]);
            }
        });
    Ok(Tensor::from_primitive::<Flex>(out))
}

/// One row in place, with burn-flex's f32 operations in its order.
pub(super) fn softmax_row(row: &mut [f32], scale: f32, bias: &[f32]) {
    let mut max = f32::NEG_INFINITY;
    for (x, &b) in row.iter_mut().zip(bias) {
        *x = *x * scale + b;
        max = max.max(*x);
    }
    let mut sum = 0.0f32;
    for x in row.iter_mut() {
        let d = *x - max;
        *x = if d < EXP_IS_ZERO_BELOW { 0.0 } else { d.exp() };
        sum += *x;
    }
    let inv = 1.0 / sum;
    for x in row.iter_mut() {
        *x *= inv;
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, Tensor, TensorData, activation};

    use super::*;

    #[test]
    fn equals_burns_scale_bias_softmax_bit_for_bit() {
        let device = burn::tensor::Device::flex();
        let [b, heads, group, t, keys] = [2, 3, 2, 5, 37];
        let scores = Tensor::<5>::random(
            [b, heads, group, t, keys],
            Distribution::Normal(0.0, 30.0),
            &device,
        );
        // Causal and padded, as the cache builds it: -1e9 where a key is hidden.
        let bias: Vec<f32> = (0..b * t * keys)
            .map(|i| {
                let (row, key) = (i / keys, i % keys);
                let (batch, query) = (row / t, row % t);
                if key > keys - t + query || key < batch * 3 {
                    -1e9
                } else {
                    0.0
                }
            })
            .collect();
        let bias = Tensor::<5>::from_data(TensorData::new(bias, [b, 1, 1, t, keys]), &device);
        let scale = 1.0 / 80f64.sqrt();
        let burns = activation::softmax(scores.clone() * scale + bias.clone(), 4)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        let ours = probs(scores, scale, &bias)
            .unwrap()
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&ours), bits(&burns));
    }

    #[test]
    fn another_bias_shape_is_given_back() {
        let device = burn::tensor::Device::flex();
        let scores = Tensor::<5>::zeros([1, 2, 1, 3, 4], &device);
        let bias = Tensor::<5>::zeros([1, 2, 1, 3, 4], &device);
        assert!(probs(scores, 1.0, &bias).is_err());
    }
}
