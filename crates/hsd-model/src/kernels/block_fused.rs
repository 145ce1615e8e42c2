//! Fused x86 kernels for the formats of 32-weight blocks (Q4_0, Q4_1, Q8_0): each block's bytes
//! widen to `f32` lanes in registers (16 lanes a half block with AVX-512, 8 with AVX2), scale as
//! `dequant.rs` scales them, so the weights are bit for bit the `f32` path's, and multiply into
//! every input row of the sweep while they are there. Nothing is written back but the sums.

use std::sync::LazyLock;

use half::f16;
use pulp::x86::{V3, V4};
use pulp::{Simd, cast, f32x8, f32x16};

use crate::weights::GgmlType;

/// Every f16 bit pattern's `f32` value: a block's scale converts with one load (`half`'s F16C
/// path is a call that the vectorized loop cannot absorb).
static HALF_TO_F32: LazyLock<Box<[f32]>> =
    LazyLock::new(|| (0..=u16::MAX).map(|b| f16::from_bits(b).to_f32()).collect());

/// The instruction set a fused kernel runs with.
#[derive(Clone, Copy)]
pub(super) enum Isa {
    Avx512(V4),
    Avx2(V3),
}

impl std::fmt::Debug for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Avx512(_) => "AVX-512",
            Self::Avx2(_) => "AVX2",
        })
    }
}

impl Isa {
    /// The widest this CPU has, `None` below AVX2.
    pub(super) fn detect() -> Option<Self> {
        V4::try_new()
            .map(Self::Avx512)
            .or_else(|| V3::try_new().map(Self::Avx2))
    }

    /// Every one this CPU has, for tests that cover each path.
    #[cfg(test)]
    pub(super) fn available() -> Vec<Self> {
        let mut all: Vec<Self> = V4::try_new().map(Self::Avx512).into_iter().collect();
        all.extend(V3::try_new().map(Self::Avx2));
        all
    }
}

/// Multiplies the weight rows in `w_block` (whole rows of `ty` blocks) into the sweep's input
/// rows `x` (`[n, inner]`, `n` up to 4) with `isa`, writing row `r`'s sums at
/// `y_t[o * rows + first_row + r]`; `false`, with nothing written, when `ty` has no fused kernel.
#[allow(clippy::too_many_arguments)]
pub(super) fn sweep(
    isa: Isa,
    ty: GgmlType,
    w_block: &[u8],
    x: &[f32],
    inner: usize,
    rows: usize,
    first_row: usize,
    y_t: &mut [f32],
) -> bool {
    if !matches!(ty, GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0) || !inner.is_multiple_of(32)
    {
        return false;
    }
    let job = Job {
        ty,
        w_block,
        x,
        inner,
        rows,
        first_row,
        y_t,
        halves: &HALF_TO_F32,
    };
    // The closures inline into `vectorize`'s function, which enables the instruction set.
    match isa {
        Isa::Avx512(simd) => simd.vectorize(
            #[inline(always)]
            || avx512(simd, job),
        ),
        Isa::Avx2(simd) => simd.vectorize(
            #[inline(always)]
            || avx2(simd, job),
        ),
    }
    true
}

struct Job<'a> {
    ty: GgmlType,
    w_block: &'a [u8],
    x: &'a [f32],
    inner: usize,
    rows: usize,
    first_row: usize,
    y_t: &'a mut [f32],
    halves: &'a [f32],
}

impl Job<'_> {
    #[inline(always)]
    fn scale(&self, block: &[u8], at: usize) -> f32 {
        self.halves[usize::from(u16::from_le_bytes([block[at], block[at + 1]]))]
    }
}

/// How far ahead of the block being decoded its stream is fetched into cache: the hardware
/// prefetcher alone left the kernel waiting on every new line.
const PREFETCH_BYTES: usize = 1024;

/// Asks for the cache line `PREFETCH_BYTES` past `block`; a prefetch never faults, so the
/// address may lie past the matrix.
#[inline(always)]
fn prefetch(simd: V3, block: &[u8]) {
    let ahead = block.as_ptr().wrapping_add(PREFETCH_BYTES).cast::<i8>();
    simd.sse
        ._mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(ahead);
}

/// Bytes `at..at + 16` of a block as a vector.
#[inline(always)]
fn bytes16(block: &[u8], at: usize) -> core::arch::x86_64::__m128i {
    let mut q = [0u8; 16];
    q.copy_from_slice(&block[at..at + 16]);
    cast(q)
}

/// A 32-weight block format, decoded in registers.
trait Format {
    const BYTES: usize;
    /// Elements 0..16 and 16..32, 16 lanes each.
    fn avx512(simd: V4, job: &Job<'_>, block: &[u8]) -> [f32x16; 2];
    /// Elements 0..8, 8..16, 16..24 and 24..32.
    fn avx2(simd: V3, job: &Job<'_>, block: &[u8]) -> [f32x8; 4];
}

struct Q4_0;
struct Q4_1;
struct Q8_0;

/// The low and the high nibbles of 16 bytes, as bytes.
#[inline(always)]
fn nibbles(simd: V3, q: core::arch::x86_64::__m128i) -> [core::arch::x86_64::__m128i; 2] {
    let mask = simd.sse2._mm_set1_epi8(0x0F);
    [
        simd.sse2._mm_and_si128(q, mask),
        simd.sse2
            ._mm_and_si128(simd.sse2._mm_srli_epi16::<4>(q), mask),
    ]
}

/// 16 unsigned bytes as 16 `f32` lanes.
#[inline(always)]
fn u8_lanes16(simd: V4, q: core::arch::x86_64::__m128i) -> f32x16 {
    simd.convert_i32x16_to_f32x16(simd.convert_u8x16_to_i32x16(cast(q)))
}

/// 16 unsigned bytes as two vectors of 8 `f32` lanes.
#[inline(always)]
fn u8_lanes8(simd: V3, q: core::arch::x86_64::__m128i) -> [f32x8; 2] {
    let high = simd.sse2._mm_srli_si128::<8>(q);
    let low = simd.convert_i32x8_to_f32x8(simd.convert_u8x16_to_i32x8(cast(q)));
    [
        low,
        simd.convert_i32x8_to_f32x8(simd.convert_u8x16_to_i32x8(cast(high))),
    ]
}

/// `(q - 8) * d`.
impl Format for Q4_0 {
    const BYTES: usize = 18;

    #[inline(always)]
    fn avx512(simd: V4, job: &Job<'_>, block: &[u8]) -> [f32x16; 2] {
        let d = simd.splat_f32s(job.scale(block, 0));
        let eight = simd.splat_f32s(8.0);
        let [low, high] = nibbles(*simd, bytes16(block, 2));
        [
            simd.mul_f32s(simd.sub_f32s(u8_lanes16(simd, low), eight), d),
            simd.mul_f32s(simd.sub_f32s(u8_lanes16(simd, high), eight), d),
        ]
    }

    #[inline(always)]
    fn avx2(simd: V3, job: &Job<'_>, block: &[u8]) -> [f32x8; 4] {
        let d = simd.splat_f32s(job.scale(block, 0));
        let eight = simd.splat_f32s(8.0);
        let [low, high] = nibbles(simd, bytes16(block, 2));
        let ([a, b], [c, e]) = (u8_lanes8(simd, low), u8_lanes8(simd, high));
        [
            simd.mul_f32s(simd.sub_f32s(a, eight), d),
            simd.mul_f32s(simd.sub_f32s(b, eight), d),
            simd.mul_f32s(simd.sub_f32s(c, eight), d),
            simd.mul_f32s(simd.sub_f32s(e, eight), d),
        ]
    }
}

/// `q * d + m`.
impl Format for Q4_1 {
    const BYTES: usize = 20;

    #[inline(always)]
    fn avx512(simd: V4, job: &Job<'_>, block: &[u8]) -> [f32x16; 2] {
        let d = simd.splat_f32s(job.scale(block, 0));
        let m = simd.splat_f32s(job.scale(block, 2));
        let [low, high] = nibbles(*simd, bytes16(block, 4));
        [
            simd.add_f32s(simd.mul_f32s(u8_lanes16(simd, low), d), m),
            simd.add_f32s(simd.mul_f32s(u8_lanes16(simd, high), d), m),
        ]
    }

    #[inline(always)]
    fn avx2(simd: V3, job: &Job<'_>, block: &[u8]) -> [f32x8; 4] {
        let d = simd.splat_f32s(job.scale(block, 0));
        let m = simd.splat_f32s(job.scale(block, 2));
        let [low, high] = nibbles(simd, bytes16(block, 4));
        let ([a, b], [c, e]) = (u8_lanes8(simd, low), u8_lanes8(simd, high));
        [
            simd.add_f32s(simd.mul_f32s(a, d), m),
            simd.add_f32s(simd.mul_f32s(b, d), m),
            simd.add_f32s(simd.mul_f32s(c, d), m),
            simd.add_f32s(simd.mul_f32s(e, d), m),
        ]
    }
}

/// `q * d` for signed bytes.
impl Format for Q8_0 {
    const BYTES: usize = 34;

    #[inline(always)]
    fn avx512(simd: V4, job: &Job<'_>, block: &[u8]) -> [f32x16; 2] {
        let d = simd.splat_f32s(job.scale(block, 0));
        let low = simd.convert_i8x16_to_i32x16(cast(bytes16(block, 2)));
        let high = simd.convert_i8x16_to_i32x16(cast(bytes16(block, 18)));
        [
            simd.mul_f32s(simd.convert_i32x16_to_f32x16(low), d),
            simd.mul_f32s(simd.convert_i32x16_to_f32x16(high), d),
        ]
    }

    #[inline(always)]
    fn avx2(simd: V3, job: &Job<'_>, block: &[u8]) -> [f32x8; 4] {
        let d = simd.splat_f32s(job.scale(block, 0));
        let (low, high) = (bytes16(block, 2), bytes16(block, 18));
        let parts = [
            low,
            simd.sse2._mm_srli_si128::<8>(low),
            high,
            simd.sse2._mm_srli_si128::<8>(high),
        ];
        let mut out = [simd.splat_f32s(0.0); 4];
        for (out, q) in out.iter_mut().zip(parts) {
            let lanes = simd.convert_i32x8_to_f32x8(simd.convert_i8x16_to_i32x8(cast(q)));
            *out = simd.mul_f32s(lanes, d);
        }
        out
    }
}

#[inline(always)]
fn avx512(simd: V4, job: Job<'_>) {
    match (job.ty, job.x.len() / job.inner) {
        (GgmlType::Q4_0, r) => avx512_rows_dispatch::<Q4_0>(simd, job, r),
        (GgmlType::Q4_1, r) => avx512_rows_dispatch::<Q4_1>(simd, job, r),
        (_, r) => avx512_rows_dispatch::<Q8_0>(simd, job, r),
    }
}

#[inline(always)]
fn avx512_rows_dispatch<F: Format>(simd: V4, job: Job<'_>, rows: usize) {
    match rows {
        1 => avx512_rows::<F, 1>(simd, job),
        2 => avx512_rows::<F, 2>(simd, job),
        3 => avx512_rows::<F, 3>(simd, job),
        _ => avx512_rows::<F, 4>(simd, job),
    }
}

/// Two 16-lane accumulators per input row: one for each half block. Plain loops only: an
/// iterator adapter or array `map` would be a call compiled without AVX-512, which the
/// intrinsics inside could not inline into.
#[inline(always)]
fn avx512_rows<F: Format, const R: usize>(simd: V4, job: Job<'_>) {
    let inner = job.inner;
    let mut x: [&[[f32; 16]]; R] = [&[]; R];
    for (r, x) in x.iter_mut().enumerate() {
        *x = job.x[r * inner..(r + 1) * inner].as_chunks::<16>().0;
    }
    let row_bytes = inner / 32 * F::BYTES;
    let zero = simd.splat_f32s(0.0);
    for (o, w_row) in job.w_block.chunks_exact(row_bytes).enumerate() {
        let mut acc = [[zero; 2]; R];
        for (b, block) in w_row.chunks_exact(F::BYTES).enumerate() {
            prefetch(*simd, block);
            let w = F::avx512(simd, &job, block);
            for r in 0..R {
                for half in 0..2 {
                    let xs: f32x16 = cast(x[r][2 * b + half]);
                    acc[r][half] = simd.mul_add_f32s(w[half], xs, acc[r][half]);
                }
            }
        }
        let y = &mut job.y_t[o * job.rows + job.first_row..][..R];
        for r in 0..R {
            y[r] = simd.reduce_sum_f32s(simd.add_f32s(acc[r][0], acc[r][1]));
        }
    }
}

#[inline(always)]
fn avx2(simd: V3, job: Job<'_>) {
    match (job.ty, job.x.len() / job.inner) {
        (GgmlType::Q4_0, r) => avx2_rows_dispatch::<Q4_0>(simd, job, r),
        (GgmlType::Q4_1, r) => avx2_rows_dispatch::<Q4_1>(simd, job, r),
        (_, r) => avx2_rows_dispatch::<Q8_0>(simd, job, r),
    }
}

#[inline(always)]
fn avx2_rows_dispatch<F: Format>(simd: V3, job: Job<'_>, rows: usize) {
    match rows {
        1 => avx2_rows::<F, 1>(simd, job),
        2 => avx2_rows::<F, 2>(simd, job),
        3 => avx2_rows::<F, 3>(simd, job),
        _ => avx2_rows::<F, 4>(simd, job),
    }
}

/// Two 8-lane accumulators per input row (AVX2 has 16 vector registers); plain loops, as in
/// [`avx512_rows`].
#[inline(always)]
fn avx2_rows<F: Format, const R: usize>(simd: V3, job: Job<'_>) {
    let inner = job.inner;
    let mut x: [&[[f32; 8]]; R] = [&[]; R];
    for (r, x) in x.iter_mut().enumerate() {
        *x = job.x[r * inner..(r + 1) * inner].as_chunks::<8>().0;
    }
    let row_bytes = inner / 32 * F::BYTES;
    let zero = simd.splat_f32s(0.0);
    for (o, w_row) in job.w_block.chunks_exact(row_bytes).enumerate() {
        let mut acc = [[zero; 2]; R];
        for (b, block) in w_row.chunks_exact(F::BYTES).enumerate() {
            prefetch(simd, block);
            let w = F::avx2(simd, &job, block);
            for r in 0..R {
                for part in 0..4 {
                    let xs: f32x8 = cast(x[r][4 * b + part]);
                    acc[r][part % 2] = simd.mul_add_f32s(w[part], xs, acc[r][part % 2]);
                }
            }
        }
        let y = &mut job.y_t[o * job.rows + job.first_row..][..R];
        for r in 0..R {
            y[r] = simd.reduce_sum_f32s(simd.add_f32s(acc[r][0], acc[r][1]));
        }
    }
}
