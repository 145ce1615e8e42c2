//! `x W^T` for passes of many rows (prefill) on Flex: burn-flex's own `gemm` call, bit for bit,
//! written into storage burn takes as it is.
//!
//! burn-flex allocates each product's output zeroed, then copies it to realign it (see
//! [`AlignedF32`]): at batch 8 with 512-token prompts that is a memset and a copy of about
//! 84 MB a layer on the stepping thread, while `gemm` itself runs on both. Here the product
//! is the same `gemm::gemm` call with the same shapes, strides and parallelism (so every
//! output is the same f32, and f32 results stay bit for bit), writing straight into a
//! 16-byte-aligned buffer.

use burn::tensor::{DType, Tensor};
use burn_flex::Flex;

use super::flex_host::{AlignedF32, gemm_product};

/// burn-flex's threshold for running one product on every thread (`matmul.rs`): the same
/// here, so the same products split the same way.
const PARALLEL_MIN_MULTIPLY_ADDS: usize = 192 * 192 * 192;

/// `x W^T` as `[rows, out]` for `W` stored `[out, in]`, or `None` when the tensors are not
/// Flex f32 ones (another backend, autodiff) or their strides are negative.
pub(crate) fn product(weight: &Tensor<2>, x: &Tensor<2>) -> Option<Tensor<2>> {
    let [out, inner] = weight.dims();
    let [rows, x_inner] = x.dims();
    if inner != x_inner || rows == 0 || out == 0 || inner == 0 {
        return None;
    }
    let w = weight.clone().try_into_primitive::<Flex>().ok()?;
    let x = x.clone().try_into_primitive::<Flex>().ok()?;
    if w.dtype() != DType::F32 || x.dtype() != DType::F32 {
        return None;
    }
    let (w_row, w_col) = strides(&w)?;
    let (x_row, x_col) = strides(&x)?;
    let w_data = &w.storage::<f32>()[w.layout().start_offset()..];
    let x_data = &x.storage::<f32>()[x.layout().start_offset()..];
    if !reaches(w_data, out, inner, w_row, w_col) || !reaches(x_data, rows, inner, x_row, x_col) {
        return None;
    }
    let parallelism = if rows * out * inner >= PARALLEL_MIN_MULTIPLY_ADDS {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: `gemm` writes every one of the `rows * out` outputs (`read_dst` is false), and
    // reads `x` and `W` only inside the extents `reaches` checked.
    // `W^T` is `W` read with its strides swapped.
    let y = unsafe {
        AlignedF32::written_by(rows * out, |y| {
            gemm_product(
                [rows, out, inner],
                y,
                x_data.as_ptr(),
                (x_row, x_col),
                w_data.as_ptr(),
                (w_col, w_row),
                parallelism,
            )
        })
    };
    Some(y.into_tensor([rows, out]))
}

/// A 2-D tensor's (row, column) strides.
fn strides(t: &burn_flex::FlexTensor) -> Option<(isize, isize)> {
    match *t.layout().strides() {
        [row, col] => Some((row, col)),
        _ => None,
    }
}

/// Whether every element `(r, c)` of an `rows x cols` matrix at those (non-negative) strides
/// lies inside `data`.
fn reaches(data: &[f32], rows: usize, cols: usize, row: isize, col: isize) -> bool {
    let (Ok(row), Ok(col)) = (usize::try_from(row), usize::try_from(col)) else {
        return false;
    };
    (rows - 1) * row + (cols - 1) * col < data.len()
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution};

    use super::*;

    #[test]
    fn equals_burns_matmul_bit_for_bit() {
        let device = Device::flex();
        // Below and above burn-flex's parallel threshold, odd sizes, and a transposed input.
        for (rows, inner, out) in [(65, 33, 17), (512, 576, 192), (300, 1536, 576), (1, 7, 3)] {
            let weight = Tensor::<2>::random([out, inner], Distribution::Normal(0.0, 1.0), &device);
            let x = Tensor::<2>::random([rows, inner], Distribution::Normal(0.0, 1.0), &device);
            let x_t = Tensor::<2>::random([inner, rows], Distribution::Normal(0.0, 1.0), &device)
                .transpose();
            for x in [x, x_t] {
                let want = x.clone().matmul(weight.clone().transpose());
                let got = product(&weight, &x).expect("Flex f32 tensors");
                let bits = |t: Tensor<2>| -> Vec<u32> {
                    t.into_data()
                        .try_into_vec::<f32>()
                        .unwrap()
                        .iter()
                        .map(|v| v.to_bits())
                        .collect()
                };
                assert_eq!(bits(got), bits(want), "{rows} x {inner} x {out}");
            }
        }
    }
}
