//! `x W^T` for a handful of rows on Flex: the verify pass of speculative decoding (`k + 1`
//! tokens) and batched decode steps. gemm packs `W` into tiles for every product, which at a
//! few rows costs as much as the product itself (a 2-token pass took 1.9x a 1-token one);
//! this kernel streams each weight row once and multiplies it into every input row while it
//! is in registers, so a pass over `r` rows costs about what one row does until compute binds.
//! One row stays on gemm's matrix-vector path, which vanilla decoding's numbers were made with.

use std::ops::RangeInclusive;

use burn::tensor::Tensor;
use burn_flex::Flex;
use pulp::{Arch, Simd, WithSimd};
use rayon::prelude::*;

use super::flex_host::{flex_tensor, host_f32, is_plain_f32, rows_first};

/// The row counts this kernel takes.
pub(crate) const FEW_ROWS: RangeInclusive<usize> = 2..=16;

/// Rows multiplied per sweep over `W`: one accumulator register each.
const ROWS_PER_SWEEP: usize = 8;

/// Output features per parallel task: large enough that a task streams a few hundred KB.
const OUTPUTS_PER_TASK: usize = 256;

/// `x W^T` as `[rows, out]`, or `None` when the tensors are not plain f32 Flex tensors (another
/// backend, autodiff, a strided or offset weight), for the caller's general path.
pub(crate) fn product(weight: &Tensor<2>, x: &Tensor<2>) -> Option<Tensor<2>> {
    let [out, inner] = weight.dims();
    let [rows, x_inner] = x.dims();
    if inner != x_inner || !FEW_ROWS.contains(&rows) {
        return None;
    }
    let w = weight.clone().try_into_primitive::<Flex>().ok()?;
    if !is_plain_f32(&w) {
        return None;
    }
    let x_host = host_f32(x)?;
    let w_host = &w.storage::<f32>()[..out * inner];
    let y = few_rows_product(w_host, &x_host, out, inner, rows);
    Some(flex_tensor(y, rows, out))
}

/// `y[r][o] = sum_i x[r][i] * w[o][i]` for `w` `[out, inner]` and `x` `[rows, inner]`, both
/// row-major; `y` is `[rows, out]`.
pub(crate) fn few_rows_product(
    w: &[f32],
    x: &[f32],
    out: usize,
    inner: usize,
    rows: usize,
) -> Vec<f32> {
    // Accumulate `[out, rows]` so parallel tasks own contiguous output, then transpose.
    let mut y_t = vec![0.0f32; out * rows];
    y_t.par_chunks_mut(OUTPUTS_PER_TASK * rows)
        .zip(w.par_chunks(OUTPUTS_PER_TASK * inner))
        .for_each(|(y_block, w_block)| {
            for (sweep, x_rows) in x.chunks(ROWS_PER_SWEEP * inner).enumerate() {
                Arch::new().dispatch(Sweep {
                    w: w_block,
                    x: x_rows,
                    inner,
                    rows,
                    first_row: sweep * ROWS_PER_SWEEP,
                    y_t: y_block,
                });
            }
        });
    rows_first(y_t, out, rows)
}

/// One pass over a block of weight rows against up to [`ROWS_PER_SWEEP`] input rows.
struct Sweep<'a> {
    w: &'a [f32],
    x: &'a [f32],
    inner: usize,
    /// All rows of the product (the stride of `y_t`).
    rows: usize,
    /// The product row of `x`'s first row.
    first_row: usize,
    y_t: &'a mut [f32],
}

impl WithSimd for Sweep<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        match self.x.len() / self.inner {
            1 => self.run::<S, 1>(simd),
            2 => self.run::<S, 2>(simd),
            3 => self.run::<S, 3>(simd),
            4 => self.run::<S, 4>(simd),
            5 => self.run::<S, 5>(simd),
            6 => self.run::<S, 6>(simd),
            7 => self.run::<S, 7>(simd),
            _ => self.run::<S, ROWS_PER_SWEEP>(simd),
        }
    }
}

impl Sweep<'_> {
    #[inline(always)]
    fn run<S: Simd, const R: usize>(self, simd: S) {
        let inner = self.inner;
        let x_rows: [(&[S::f32s], &[f32]); R] =
            std::array::from_fn(|r| S::as_simd_f32s(&self.x[r * inner..(r + 1) * inner]));
        for (o, w_row) in self.w.chunks_exact(inner).enumerate() {
            let (w_head, w_tail) = S::as_simd_f32s(w_row);
            let mut acc = [simd.splat_f32s(0.0); R];
            for (j, &w) in w_head.iter().enumerate() {
                for r in 0..R {
                    acc[r] = simd.mul_add_f32s(w, x_rows[r].0[j], acc[r]);
                }
            }
            let y = &mut self.y_t[o * self.rows + self.first_row..][..R];
            for r in 0..R {
                let tail: f32 = w_tail.iter().zip(x_rows[r].1).map(|(a, b)| a * b).sum();
                y[r] = simd.reduce_sum_f32s(acc[r]) + tail;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;
    use proptest::prelude::*;

    fn reference(w: &[f32], x: &[f32], out: usize, inner: usize, rows: usize) -> Vec<f32> {
        let mut y = vec![0.0f32; rows * out];
        for r in 0..rows {
            for o in 0..out {
                y[r * out + o] = (0..inner)
                    .map(|i| f64::from(x[r * inner + i]) * f64::from(w[o * inner + i]))
                    .sum::<f64>() as f32;
            }
        }
        y
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let h = (i as u32 ^ seed).wrapping_mul(2_654_435_761);
                (h >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    proptest! {
        #[test]
        fn equals_the_reference_for_any_shape(
            out in 1usize..600,
            inner in 1usize..100,
            rows in 1usize..=16,
            seed in any::<u32>(),
        ) {
            let w = values(out * inner, seed);
            let x = values(rows * inner, seed.rotate_left(7));
            let ours = few_rows_product(&w, &x, out, inner, rows);
            let want = reference(&w, &x, out, inner, rows);
            for (a, b) in ours.iter().zip(&want) {
                prop_assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn the_tensor_path_matches_burn_matmul() {
        let device = burn::tensor::Device::flex();
        let (out, inner, rows) = (300, 70, 5);
        let w = Tensor::<2>::from_data(
            TensorData::new(values(out * inner, 1), [out, inner]),
            &device,
        );
        let x = Tensor::<2>::from_data(
            TensorData::new(values(rows * inner, 2), [rows, inner]),
            &device,
        );
        let ours = product(&w, &x).expect("plain f32 Flex tensors take the kernel");
        let want = x.clone().matmul(w.clone().transpose());
        let diff: f32 = (ours - want).abs().max().into_scalar();
        assert!(diff < 1e-5, "max |diff| {diff}");
        // A strided input is read through a copy.
        let strided = Tensor::<2>::from_data(
            TensorData::new(values(inner * rows, 3), [inner, rows]),
            &device,
        )
        .transpose();
        let ours = product(&w, &strided).unwrap();
        let want = strided.matmul(w.clone().transpose());
        assert!((ours - want).abs().max().into_scalar::<f32>() < 1e-5);
        // One row and too many rows are not this kernel's.
        let one = x.clone().narrow(0, 0, 1);
        assert!(product(&w, &one).is_none());
    }
}
