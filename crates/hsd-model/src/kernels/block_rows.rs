//! `x W^T` for a weight kept in its file's quantized blocks (`--weights native`), for the few
//! rows of a decode step or a verify pass. A batch-1 step streams every weight once, so its
//! time is the bytes it reads: Q4_1 blocks are 0.625 bytes a weight against f32's 4.
//!
//! Q4_0, Q4_1 and Q8_0 blocks widen to `f32` in registers ([`super::block_fused`], AVX-512 or
//! AVX2); other formats, and CPUs without AVX2, decode one weight row at a time into a buffer
//! that stays in L1, with the decoders the `f32` path dequantizes with. Either way the weights
//! are bit for bit the `f32` path's, and activations stay `f32`, unlike llama.cpp, which
//! quantizes them to 8 bits: only the order of the sums differs from `f32` weights.

use std::ops::RangeInclusive;

use burn::tensor::Tensor;
use pulp::{Arch, Simd, WithSimd};
use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
use super::block_fused;
use super::flex_host::{flex_tensor, host_f32, rows_first};

/// The instruction set of the fused kernels, where the target has them.
#[cfg(target_arch = "x86_64")]
type Fused = block_fused::Isa;
#[cfg(not(target_arch = "x86_64"))]
type Fused = std::convert::Infallible;
use crate::weights::{BlockMatrix, GgmlType, dequantize_into};

/// The row counts this kernel takes: above them a pass is compute-bound, and gemm over the
/// `f32` weights is faster than decoding blocks.
pub(crate) const BLOCK_ROWS: RangeInclusive<usize> = 1..=16;

/// Weight bytes a parallel task streams: enough to pay for the task, few enough that the
/// output rows of a 576-wide projection still spread over every core.
const TASK_BYTES: usize = 32 << 10;

/// `x W^T` as `[rows, out]` for `matrix` `[out, in]`, or `None` when `x` is not an f32 Flex
/// tensor (another backend, autodiff) or has a row count this kernel does not take.
pub(crate) fn product(matrix: &BlockMatrix, x: &Tensor<2>) -> Option<Tensor<2>> {
    let [out, inner] = matrix.dims();
    let [rows, x_inner] = x.dims();
    if inner != x_inner || !BLOCK_ROWS.contains(&rows) {
        return None;
    }
    let x_host = host_f32(x)?;
    let y = block_rows_product(matrix, &x_host, rows);
    Some(flex_tensor(y, rows, out))
}

/// `y[r][o] = sum_i x[r][i] * W[o][i]` for `x` `[rows, in]` row-major; `y` is `[rows, out]`.
/// Q4_0, Q4_1 and Q8_0 take the fused x86 kernels where the CPU has AVX2 or AVX-512; every
/// other format, and every CPU without them, decodes a row at a time into a buffer.
pub(crate) fn block_rows_product(matrix: &BlockMatrix, x: &[f32], rows: usize) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    let fused = block_fused::Isa::detect();
    #[cfg(not(target_arch = "x86_64"))]
    let fused = None;
    product_with(matrix, x, rows, fused)
}

/// [`block_rows_product`] with the fused kernels on `fused`, or the portable path only.
fn product_with(matrix: &BlockMatrix, x: &[f32], rows: usize, fused: Option<Fused>) -> Vec<f32> {
    let [out, inner] = matrix.dims();
    let row_bytes = matrix.row_bytes();
    let outputs_per_task = (TASK_BYTES / row_bytes.max(1)).max(1);
    // Accumulate `[out, rows]` so parallel tasks own contiguous output, then transpose.
    let mut y_t = vec![0.0f32; out * rows];
    y_t.par_chunks_mut(outputs_per_task * rows)
        .zip(matrix.bytes().par_chunks(outputs_per_task * row_bytes))
        .for_each(|(y_block, w_block)| {
            for (sweep, x_rows) in x.chunks(ROWS_PER_SWEEP * inner).enumerate() {
                let first_row = sweep * ROWS_PER_SWEEP;
                #[cfg(target_arch = "x86_64")]
                if let Some(isa) = fused {
                    let ty = matrix.ggml_type();
                    if block_fused::sweep(isa, ty, w_block, x_rows, inner, rows, first_row, y_block)
                    {
                        continue;
                    }
                }
                Arch::new().dispatch(BlockSweep {
                    ty: matrix.ggml_type(),
                    row_bytes,
                    w_block,
                    x: x_rows,
                    inner,
                    rows,
                    first_row,
                    y_t: y_block,
                });
            }
        });
    rows_first(y_t, out, rows)
}

/// Input rows multiplied per pass over a task's weights: the fused kernels keep two vector
/// accumulators per row, which must stay in registers.
pub(super) const ROWS_PER_SWEEP: usize = 4;

/// One task: the weight rows in `w_block` against up to [`ROWS_PER_SWEEP`] input rows.
struct BlockSweep<'a> {
    ty: GgmlType,
    row_bytes: usize,
    w_block: &'a [u8],
    /// The sweep's input rows, `[n, inner]`.
    x: &'a [f32],
    inner: usize,
    /// All rows of the product (the stride of `y_t`).
    rows: usize,
    /// The product row of `x`'s first row.
    first_row: usize,
    y_t: &'a mut [f32],
}

impl WithSimd for BlockSweep<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        match self.x.len() / self.inner {
            1 => self.run::<S, 1>(simd),
            2 => self.run::<S, 2>(simd),
            3 => self.run::<S, 3>(simd),
            _ => self.run::<S, ROWS_PER_SWEEP>(simd),
        }
    }
}

impl BlockSweep<'_> {
    /// Each weight row decoded by the `f32` path's decoders into one buffer that stays in L1,
    /// then dotted with every input row. Plain loops: a closure (as in `array::from_fn`) would
    /// be compiled without the dispatched instruction set, and `dot` would not inline into it.
    #[inline(always)]
    fn run<S: Simd, const R: usize>(self, simd: S) {
        let inner = self.inner;
        let x: [&[f32]; R] = std::array::from_fn(|r| &self.x[r * inner..(r + 1) * inner]);
        let mut decoded = vec![0.0f32; inner];
        let weight_rows = self.w_block.chunks_exact(self.row_bytes);
        for (o, w_row) in weight_rows.enumerate() {
            let y = &mut self.y_t[o * self.rows + self.first_row..][..R];
            // Always true: `BlockMatrix::new` admits only whole rows of decodable blocks.
            if !dequantize_into(self.ty, w_row, &mut decoded) {
                y.fill(f32::NAN);
                continue;
            }
            for r in 0..R {
                y[r] = dot(simd, &decoded, x[r]);
            }
        }
    }
}

/// `sum a[i] b[i]` over equal-length slices, four vector accumulators wide.
#[inline(always)]
fn dot<S: Simd>(simd: S, a: &[f32], b: &[f32]) -> f32 {
    let (a_head, a_tail) = S::as_simd_f32s(a);
    let (b_head, b_tail) = S::as_simd_f32s(b);
    let mut acc = [simd.splat_f32s(0.0); 4];
    let (a4, a_rest) = a_head.as_chunks::<4>();
    let (b4, b_rest) = b_head.as_chunks::<4>();
    for (a, b) in a4.iter().zip(b4) {
        for k in 0..4 {
            acc[k] = simd.mul_add_f32s(a[k], b[k], acc[k]);
        }
    }
    for (&a, &b) in a_rest.iter().zip(b_rest) {
        acc[0] = simd.mul_add_f32s(a, b, acc[0]);
    }
    let acc = simd.add_f32s(simd.add_f32s(acc[0], acc[1]), simd.add_f32s(acc[2], acc[3]));
    let tail: f32 = a_tail.iter().zip(b_tail).map(|(a, b)| a * b).sum();
    simd.reduce_sum_f32s(acc) + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;
    use half::f16;
    use proptest::prelude::*;

    /// `x W^T` in f64 over the dequantized matrix: dequantize, then multiply.
    fn reference(matrix: &BlockMatrix, x: &[f32], rows: usize) -> Vec<f32> {
        let [out, inner] = matrix.dims();
        let w = matrix.dequantize();
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

    /// Random blocks of `ty` whose scales are finite halves, so every decoded weight is finite.
    fn random_blocks(ty: GgmlType, blocks: usize, bytes: &[u8]) -> Vec<u8> {
        let mut out: Vec<u8> = bytes
            .iter()
            .cycle()
            .take(blocks * ty.block_bytes())
            .copied()
            .collect();
        let half_at: &[usize] = match ty {
            GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => &[0],
            GgmlType::Q4_1 | GgmlType::Q4K => &[0, 2],
            GgmlType::Q6K => &[208],
            GgmlType::F16 => &[0],
            _ => &[],
        };
        for (b, block) in out.chunks_exact_mut(ty.block_bytes()).enumerate() {
            for &at in half_at {
                let scale = 0.01 + 0.001 * ((b * 7 + at) % 13) as f32;
                block[at..at + 2].copy_from_slice(&f16::from_f32(scale).to_le_bytes());
            }
        }
        out
    }

    /// The portable path and every fused instruction set this CPU has.
    fn paths() -> Vec<Option<Fused>> {
        #[cfg(target_arch = "x86_64")]
        let fused: Vec<Fused> = block_fused::Isa::available();
        #[cfg(not(target_arch = "x86_64"))]
        let fused: Vec<Fused> = Vec::new();
        std::iter::once(None)
            .chain(fused.into_iter().map(Some))
            .collect()
    }

    const FORMATS: [GgmlType; 7] = [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q8_0,
        GgmlType::Q4K,
        GgmlType::Q6K,
        GgmlType::F16,
    ];

    fn inputs(len: usize, seed: u64) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let h = (i as u64 ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                (h >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]
        #[test]
        fn equals_dequantize_then_multiply_for_every_format(
            format in 0..FORMATS.len(),
            out in 1usize..300,
            blocks_per_row in 1usize..5,
            rows in 1usize..=16,
            bytes in proptest::collection::vec(any::<u8>(), 1..512),
            seed in any::<u64>(),
        ) {
            let ty = FORMATS[format];
            let inner = blocks_per_row * ty.block_len();
            let data = random_blocks(ty, out * blocks_per_row, &bytes);
            let matrix = BlockMatrix::new(ty, out, inner, data).unwrap();
            let x = inputs(rows * inner, seed);
            let want = reference(&matrix, &x, rows);
            let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            for path in paths() {
                let ours = product_with(&matrix, &x, rows, path);
                for (a, b) in ours.iter().zip(&want) {
                    prop_assert!((a - b).abs() <= 1e-5 * scale, "{} {path:?} {a} vs {b}", ty.name());
                }
            }
        }
    }

    #[test]
    fn odd_widths_and_tails_of_every_format() {
        // Widths that leave a SIMD tail (F16: 1 element a block) and matrices whose rows do not
        // fill the last parallel task.
        for ty in FORMATS {
            for blocks_per_row in [1, 3, 7] {
                let inner = blocks_per_row * ty.block_len();
                let out = TASK_BYTES / (blocks_per_row * ty.block_bytes()) + 3;
                let bytes: Vec<u8> = (0..251).map(|i| (i * 37 % 256) as u8).collect();
                let data = random_blocks(ty, out * blocks_per_row, &bytes);
                let matrix = BlockMatrix::new(ty, out, inner, data).unwrap();
                for rows in [1, 2, 5, 16] {
                    let x = inputs(rows * inner, 7);
                    let want = reference(&matrix, &x, rows);
                    let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
                    for path in paths() {
                        let ours = product_with(&matrix, &x, rows, path);
                        for (a, b) in ours.iter().zip(&want) {
                            assert!(
                                (a - b).abs() <= 1e-5 * scale,
                                "{} {path:?} {a} vs {b}",
                                ty.name()
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_tensor_path_matches_burn_matmul_over_the_dequantized_weights() {
        let device = burn::tensor::Device::flex();
        let ty = GgmlType::Q4_1;
        let (out, inner) = (70, 96);
        let bytes: Vec<u8> = (0..97).map(|i| (i * 53 % 256) as u8).collect();
        let matrix = BlockMatrix::new(ty, out, inner, random_blocks(ty, out * 3, &bytes)).unwrap();
        let w = Tensor::<2>::from_data(TensorData::new(matrix.dequantize(), [out, inner]), &device);
        for rows in [1, 3] {
            let x = Tensor::<2>::from_data(
                TensorData::new(inputs(rows * inner, 5), [rows, inner]),
                &device,
            );
            let ours = product(&matrix, &x).expect("an f32 Flex input takes the kernel");
            let want = x.clone().matmul(w.clone().transpose());
            let diff: f32 = (ours - want).abs().max().into_scalar();
            assert!(diff < 1e-5, "max |diff| {diff}");
        }
        let many =
            Tensor::<2>::from_data(TensorData::new(inputs(17 * inner, 5), [17, inner]), &device);
        assert!(product(&matrix, &many).is_none());
    }
}
