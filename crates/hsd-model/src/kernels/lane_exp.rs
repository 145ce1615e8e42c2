//! The exponential over SIMD lanes, and what the native path computes with it: softmax rows
//! and SwiGLU's `silu(gate) * up`.
//!
//! `f32` decoding calls libm's `expf` one value at a time (burn's sigmoid and softmax, and
//! [`super::attention_probs`], which is bit for bit burn's), and in a batch-8 prefill on the
//! file's blocks those calls were about a fifth of the time. Here `exp(x)` is `2^n p(r)` over 16
//! (AVX-512) or 8 (AVX2) lanes at once: `n = round(x log2 e)` by the 1.5 * 2^23 shifter,
//! `r = x - n ln 2` with ln 2 in two parts, `p` Cephes' degree-7 polynomial for `expf`, and
//! `2^n` added to the exponent bits. It is within 2 ulp of libm (the test measures it), but not
//! equal to it, so only decoders on the file's own blocks use it; `f32` keeps libm.

use burn::tensor::{DType, Tensor};
use burn_flex::Flex;
use pulp::{Arch, Simd, WithSimd};
use rayon::prelude::*;

/// Below this `exp` returns 0.0: the true value is under 4e-38, next to a softmax row's largest
/// term of 1 or a sigmoid's `1 + exp(-x)` of at least 1. Above `EXP_MAX` the input is clamped,
/// keeping `2^n` inside the exponent's range.
const EXP_MIN: f32 = -86.0;
const EXP_MAX: f32 = 88.0;
/// 1.5 * 2^23: adding it rounds to an integer and leaves that integer in the low mantissa bits.
const SHIFTER: f32 = 12_582_912.0;
const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// ln 2 as `LN2_HI + LN2_LO`, `LN2_HI` exact in 9 bits so `n * LN2_HI` is exact.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Cephes `expf`: `exp(r) = 1 + r + r^2 (P0 r^5 + ... + P5)` on `|r| <= ln 2 / 2`.
const P: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
];

/// Elements per parallel task of [`silu_product`].
const SILU_CHUNK: usize = 16 * 1024;

/// `exp` of every lane.
#[inline(always)]
fn exp_lanes<S: Simd>(simd: S, x: S::f32s) -> S::f32s {
    let underflow = simd.less_than_f32s(x, simd.splat_f32s(EXP_MIN));
    let x = simd.min_f32s(
        simd.max_f32s(x, simd.splat_f32s(EXP_MIN)),
        simd.splat_f32s(EXP_MAX),
    );
    let shifted = simd.mul_add_f32s(x, simd.splat_f32s(LOG2_E), simd.splat_f32s(SHIFTER));
    let n = simd.sub_f32s(shifted, simd.splat_f32s(SHIFTER));
    let r = simd.mul_add_f32s(n, simd.splat_f32s(-LN2_HI), x);
    let r = simd.mul_add_f32s(n, simd.splat_f32s(-LN2_LO), r);
    let mut p = simd.splat_f32s(P[0]);
    for &c in &P[1..] {
        p = simd.mul_add_f32s(p, r, simd.splat_f32s(c));
    }
    let y = simd.mul_add_f32s(
        p,
        simd.mul_f32s(r, r),
        simd.add_f32s(r, simd.splat_f32s(1.0)),
    );
    // `n` in the low bits of `shifted`, moved to the exponent field and added to `y`'s.
    let two_n = simd.wrapping_dyn_shl_u32s(simd.transmute_u32s_f32s(shifted), simd.splat_u32s(23));
    let y = simd.transmute_f32s_u32s(simd.add_u32s(simd.transmute_u32s_f32s(y), two_n));
    simd.select_f32s(underflow, simd.splat_f32s(0.0), y)
}

/// `silu(g) * u = g u / (1 + exp(-g))` of every lane.
#[inline(always)]
fn silu_times_lanes<S: Simd>(simd: S, g: S::f32s, u: S::f32s) -> S::f32s {
    let denominator = simd.add_f32s(simd.splat_f32s(1.0), exp_lanes(simd, simd.neg_f32s(g)));
    simd.div_f32s(simd.mul_f32s(g, u), denominator)
}

/// `tail` (shorter than a vector) in a 16-lane buffer, the remaining lanes `pad`, for the
/// vector loops' last step. (The loops call the lane functions in their own bodies: a closure
/// would not inherit the dispatched instruction set, and its intrinsics would become calls.)
#[inline(always)]
fn padded(tail: &[f32], pad: f32) -> [f32; 16] {
    let mut lanes = [pad; 16];
    lanes[..tail.len()].copy_from_slice(tail);
    lanes
}

/// `softmax(row * scale + bias)` in place, for each row of `rows` (rows of `width`), row `i`
/// with the `width` biases `bias(i)`; a bias at -1e9 (a masked key) gives exactly 0.
pub(super) fn softmax_rows<'b>(
    rows: &mut [f32],
    width: usize,
    scale: f32,
    bias: impl Fn(usize) -> &'b [f32],
) {
    struct Rows<'r, F> {
        rows: &'r mut [f32],
        width: usize,
        scale: f32,
        bias: F,
    }
    impl<'b, F: Fn(usize) -> &'b [f32]> WithSimd for Rows<'_, F> {
        type Output = ();

        #[inline(always)]
        fn with_simd<S: Simd>(self, simd: S) {
            let scale = simd.splat_f32s(self.scale);
            for (i, row) in self.rows.chunks_exact_mut(self.width).enumerate() {
                let (head, tail) = S::as_mut_simd_f32s(row);
                let (bias_head, bias_tail) = S::as_simd_f32s((self.bias)(i));
                let mut max_lanes = simd.splat_f32s(f32::NEG_INFINITY);
                for (x, &b) in head.iter_mut().zip(bias_head) {
                    *x = simd.mul_add_f32s(*x, scale, b);
                    max_lanes = simd.max_f32s(max_lanes, *x);
                }
                let mut max = simd.reduce_max_f32s(max_lanes);
                for (x, &b) in tail.iter_mut().zip(bias_tail) {
                    *x = x.mul_add(self.scale, b);
                    max = max.max(*x);
                }
                let max_lanes = simd.splat_f32s(max);
                let mut sum_lanes = simd.splat_f32s(0.0);
                for x in head.iter_mut() {
                    *x = exp_lanes(simd, simd.sub_f32s(*x, max_lanes));
                    sum_lanes = simd.add_f32s(sum_lanes, *x);
                }
                let mut last = padded(tail, f32::NEG_INFINITY);
                for x in S::as_mut_simd_f32s(&mut last).0 {
                    *x = exp_lanes(simd, simd.sub_f32s(*x, max_lanes));
                    sum_lanes = simd.add_f32s(sum_lanes, *x);
                }
                let inv = 1.0 / simd.reduce_sum_f32s(sum_lanes);
                let inv_lanes = simd.splat_f32s(inv);
                for x in head.iter_mut() {
                    *x = simd.mul_f32s(*x, inv_lanes);
                }
                for (x, &e) in tail.iter_mut().zip(&last) {
                    *x = e * inv;
                }
            }
        }
    }
    Arch::new().dispatch(Rows {
        rows,
        width,
        scale,
        bias,
    });
}

/// `silu(gate) * up` (`silu(x) = x / (1 + exp(-x))`) for Flex f32 tensors of one shape,
/// written over `gate`'s storage; burn's operations (libm's `expf`) for any others.
pub(super) fn silu_product(gate: Tensor<3>, up: Tensor<3>) -> Tensor<3> {
    if gate.dims() != up.dims() {
        return burn::tensor::activation::silu(gate) * up;
    }
    let (Ok(gate_flex), Ok(up_flex)) = (
        gate.clone().try_into_primitive::<Flex>(),
        up.clone().try_into_primitive::<Flex>(),
    ) else {
        return burn::tensor::activation::silu(gate) * up;
    };
    if gate_flex.dtype() != DType::F32 || !super::flex_host::is_plain_f32(&up_flex) {
        return burn::tensor::activation::silu(gate) * up;
    }
    // The primitive is now the storage's only owner, so it is rewritten in place.
    drop(gate);
    let mut out = if super::flex_host::is_plain_f32(&gate_flex) {
        gate_flex
    } else {
        gate_flex.to_contiguous()
    };
    let len = up.shape().num_elements();
    let up_values = &up_flex.storage::<f32>()[..len];
    out.storage_mut::<f32>()[..len]
        .par_chunks_mut(SILU_CHUNK)
        .zip(up_values.par_chunks(SILU_CHUNK))
        .for_each(|(gate, up)| Arch::new().dispatch(SiluProduct { gate, up }));
    Tensor::from_primitive::<Flex>(out)
}

struct SiluProduct<'a> {
    gate: &'a mut [f32],
    up: &'a [f32],
}

impl WithSimd for SiluProduct<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let (gate_head, gate_tail) = S::as_mut_simd_f32s(self.gate);
        let (up_head, up_tail) = S::as_simd_f32s(self.up);
        for (g, &u) in gate_head.iter_mut().zip(up_head) {
            *g = silu_times_lanes(simd, *g, u);
        }
        let mut g_last = padded(gate_tail, 0.0);
        let u_last = padded(up_tail, 0.0);
        for (g, &u) in S::as_mut_simd_f32s(&mut g_last)
            .0
            .iter_mut()
            .zip(S::as_simd_f32s(&u_last).0)
        {
            *g = silu_times_lanes(simd, *g, u);
        }
        let len = gate_tail.len();
        gate_tail.copy_from_slice(&g_last[..len]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two finite f32 of one sign.
    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    fn exp_all(values: &[f32]) -> Vec<f32> {
        struct Exp<'a>(&'a mut [f32]);
        impl WithSimd for Exp<'_> {
            type Output = ();
            #[inline(always)]
            fn with_simd<S: Simd>(self, simd: S) {
                let (head, tail) = S::as_mut_simd_f32s(self.0);
                for x in head {
                    *x = exp_lanes(simd, *x);
                }
                let mut last = padded(tail, 0.0);
                for x in S::as_mut_simd_f32s(&mut last).0 {
                    *x = exp_lanes(simd, *x);
                }
                let len = tail.len();
                tail.copy_from_slice(&last[..len]);
            }
        }
        let mut out = values.to_vec();
        Arch::new().dispatch(Exp(&mut out));
        out
    }

    #[test]
    fn exp_is_within_two_ulp_of_libm_over_its_range() {
        // A million evenly spaced points over [-86, 88], and the ends.
        let xs: Vec<f32> = (0..=1_000_003)
            .map(|i| EXP_MIN + (EXP_MAX - EXP_MIN) * i as f32 / 1_000_003.0)
            .chain([0.0, -0.0, 1e-30, -1e-30, EXP_MIN, EXP_MAX])
            .collect();
        let ours = exp_all(&xs);
        let worst = xs
            .iter()
            .zip(&ours)
            .map(|(x, &y)| (ulps(y, x.exp()), *x))
            .max_by_key(|&(u, _)| u)
            .unwrap();
        assert!(worst.0 <= 2, "{} ulp at x = {}", worst.0, worst.1);
    }

    #[test]
    fn exp_underflows_to_zero_and_clamps_overflow() {
        let ours = exp_all(&[-86.5, -1e9, f32::NEG_INFINITY, 89.0, 1e9]);
        assert_eq!(&ours[..3], &[0.0, 0.0, 0.0]);
        assert!(ours[3..].iter().all(|y| y.is_finite() && *y >= 88f32.exp()));
    }

    #[test]
    fn softmax_rows_match_libm_softmax_with_masks() {
        let width = 37;
        let mut rows: Vec<f32> = (0..3 * width)
            .map(|i| ((i * 7919) % 113) as f32 - 56.0)
            .collect();
        let bias: Vec<f32> = (0..3 * width)
            .map(|i| if i % 5 == 1 { -1e9 } else { 0.0 })
            .collect();
        let want: Vec<f64> = rows
            .chunks_exact(width)
            .zip(bias.chunks_exact(width))
            .flat_map(|(row, bias)| {
                let x: Vec<f64> = row
                    .iter()
                    .zip(bias)
                    .map(|(&x, &b)| x as f64 * 0.1 + b as f64)
                    .collect();
                let max = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = x.iter().map(|v| (v - max).exp()).sum();
                x.into_iter()
                    .map(move |v| (v - max).exp() / sum)
                    .collect::<Vec<_>>()
            })
            .collect();
        softmax_rows(&mut rows, width, 0.1, |i| &bias[i * width..][..width]);
        for (i, (&ours, &want)) in rows.iter().zip(&want).enumerate() {
            if bias[i] < -1e8 {
                assert_eq!(ours, 0.0);
            }
            assert!(
                (ours as f64 - want).abs() <= 1e-6 * want.max(1e-3),
                "{i}: {ours} vs {want}"
            );
        }
    }

    #[test]
    fn silu_product_matches_burns_silu() {
        let device = burn::tensor::Device::flex();
        let shape = [2, 3, 41];
        let n = 2 * 3 * 41;
        let gate: Vec<f32> = (0..n).map(|i| (i as f32 - 120.0) * 0.9).collect();
        let up: Vec<f32> = (0..n)
            .map(|i| ((i * 31) % 17) as f32 * 0.25 - 2.0)
            .collect();
        let tensor =
            |v: Vec<f32>| Tensor::<3>::from_data(burn::tensor::TensorData::new(v, shape), &device);
        let burns = (burn::tensor::activation::silu(tensor(gate.clone())) * tensor(up.clone()))
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        let ours = silu_product(tensor(gate), tensor(up))
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        for (i, (a, b)) in ours.iter().zip(&burns).enumerate() {
            assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{i}: {a} vs {b}");
        }
    }
}
