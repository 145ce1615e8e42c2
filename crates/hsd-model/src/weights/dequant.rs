//! ggml tensor element types and their dequantization to `f32`.
//!
//! Block layouts follow ggml's `ggml-common.h` (`block_q4_0`, `block_q4_K`, ...) and the
//! reference dequantizers in `ggml-quants.c`. All multi-byte fields are little-endian.

use half::{bf16, f16};

/// Elements in one K-quant super-block.
const QK_K: usize = 256;

/// A ggml tensor type, by the id GGUF stores for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
    Q8K,
    I8,
    I16,
    I32,
    I64,
    F64,
    BF16,
}

impl GgmlType {
    /// The type with GGUF id `id`, for the types whose block layout is known here.
    pub fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            6 => Self::Q5_0,
            7 => Self::Q5_1,
            8 => Self::Q8_0,
            9 => Self::Q8_1,
            10 => Self::Q2K,
            11 => Self::Q3K,
            12 => Self::Q4K,
            13 => Self::Q5K,
            14 => Self::Q6K,
            15 => Self::Q8K,
            24 => Self::I8,
            25 => Self::I16,
            26 => Self::I32,
            27 => Self::I64,
            28 => Self::F64,
            30 => Self::BF16,
            _ => return None,
        })
    }

    pub fn id(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_0 => 2,
            Self::Q4_1 => 3,
            Self::Q5_0 => 6,
            Self::Q5_1 => 7,
            Self::Q8_0 => 8,
            Self::Q8_1 => 9,
            Self::Q2K => 10,
            Self::Q3K => 11,
            Self::Q4K => 12,
            Self::Q5K => 13,
            Self::Q6K => 14,
            Self::Q8K => 15,
            Self::I8 => 24,
            Self::I16 => 25,
            Self::I32 => 26,
            Self::I64 => 27,
            Self::F64 => 28,
            Self::BF16 => 30,
        }
    }

    /// ggml's name for the type.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "F32",
            Self::F16 => "F16",
            Self::Q4_0 => "Q4_0",
            Self::Q4_1 => "Q4_1",
            Self::Q5_0 => "Q5_0",
            Self::Q5_1 => "Q5_1",
            Self::Q8_0 => "Q8_0",
            Self::Q8_1 => "Q8_1",
            Self::Q2K => "Q2_K",
            Self::Q3K => "Q3_K",
            Self::Q4K => "Q4_K",
            Self::Q5K => "Q5_K",
            Self::Q6K => "Q6_K",
            Self::Q8K => "Q8_K",
            Self::I8 => "I8",
            Self::I16 => "I16",
            Self::I32 => "I32",
            Self::I64 => "I64",
            Self::F64 => "F64",
            Self::BF16 => "BF16",
        }
    }

    /// Elements per block (1 for plain element types).
    pub fn block_len(self) -> usize {
        match self {
            Self::Q4_0 | Self::Q4_1 | Self::Q5_0 | Self::Q5_1 | Self::Q8_0 | Self::Q8_1 => 32,
            Self::Q2K | Self::Q3K | Self::Q4K | Self::Q5K | Self::Q6K | Self::Q8K => QK_K,
            _ => 1,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            Self::F32 | Self::I32 => 4,
            Self::F16 | Self::BF16 | Self::I16 => 2,
            Self::I8 => 1,
            Self::I64 | Self::F64 => 8,
            Self::Q4_0 => 2 + 16,
            Self::Q4_1 => 2 + 2 + 16,
            Self::Q5_0 => 2 + 4 + 16,
            Self::Q5_1 => 2 + 2 + 4 + 16,
            Self::Q8_0 => 2 + 32,
            Self::Q8_1 => 2 + 2 + 32,
            Self::Q2K => QK_K / 16 + QK_K / 4 + 2 + 2,
            Self::Q3K => QK_K / 8 + QK_K / 4 + 12 + 2,
            Self::Q4K => 2 + 2 + 12 + QK_K / 2,
            Self::Q5K => 2 + 2 + 12 + QK_K / 8 + QK_K / 2,
            Self::Q6K => QK_K / 2 + QK_K / 4 + QK_K / 16 + 2,
            Self::Q8K => 4 + QK_K + QK_K / 16 * 2,
        }
    }

    /// Whether [`dequantize`] handles this type.
    pub fn is_supported(self) -> bool {
        matches!(
            self,
            Self::F32
                | Self::F16
                | Self::BF16
                | Self::Q4_0
                | Self::Q4_1
                | Self::Q5_0
                | Self::Q8_0
                | Self::Q4K
                | Self::Q6K
        )
    }
}

/// Dequantizes whole blocks of `ty` to `f32`. `None` when the type is not supported or `bytes`
/// does not hold a whole number of blocks.
pub(crate) fn dequantize(ty: GgmlType, bytes: &[u8]) -> Option<Vec<f32>> {
    if !ty.is_supported() || !bytes.len().is_multiple_of(ty.block_bytes()) {
        return None;
    }
    let mut out = vec![0.0; bytes.len() / ty.block_bytes() * ty.block_len()];
    dequantize_into(ty, bytes, &mut out).then_some(out)
}

/// Decodes the whole blocks of `ty` in `bytes` into `out`, which must hold exactly their
/// elements; `false` (and `out` untouched) when it does not or the type is not supported.
///
/// The quantized kernels decode weight rows with this too, so a product over a file's blocks
/// sees bit for bit the weights that the `f32` path dequantized.
#[inline(always)]
pub(crate) fn dequantize_into(ty: GgmlType, bytes: &[u8], out: &mut [f32]) -> bool {
    if !ty.is_supported()
        || !bytes.len().is_multiple_of(ty.block_bytes())
        || bytes.len() / ty.block_bytes() * ty.block_len() != out.len()
    {
        return false;
    }
    match ty {
        GgmlType::F32 => each_block::<4, 1>(bytes, out, |b, o| o[0] = f32::from_le_bytes(*b)),
        GgmlType::F16 => {
            each_block::<2, 1>(bytes, out, |b, o| o[0] = f16::from_le_bytes(*b).to_f32());
        }
        GgmlType::BF16 => {
            each_block::<2, 1>(bytes, out, |b, o| o[0] = bf16::from_le_bytes(*b).to_f32());
        }
        GgmlType::Q4_0 => each_block::<18, 32>(bytes, out, q4_0),
        GgmlType::Q4_1 => each_block::<20, 32>(bytes, out, q4_1),
        GgmlType::Q5_0 => each_block::<22, 32>(bytes, out, q5_0),
        GgmlType::Q8_0 => each_block::<34, 32>(bytes, out, q8_0),
        GgmlType::Q4K => each_block::<144, QK_K>(bytes, out, q4_k),
        GgmlType::Q6K => each_block::<210, QK_K>(bytes, out, q6_k),
        _ => return false,
    }
    true
}

/// Runs `decode` over each block of `BYTES` bytes and its `LEN` outputs; fixed sizes let the
/// compiler unroll and vectorize the decoders.
#[inline(always)]
fn each_block<const BYTES: usize, const LEN: usize>(
    bytes: &[u8],
    out: &mut [f32],
    decode: impl Fn(&[u8; BYTES], &mut [f32; LEN]),
) {
    let (blocks, _) = bytes.as_chunks::<BYTES>();
    let (outs, _) = out.as_chunks_mut::<LEN>();
    for (block, out) in blocks.iter().zip(outs) {
        decode(block, out);
    }
}

#[inline(always)]
fn half_at(block: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([block[at], block[at + 1]]).to_f32()
}

/// `d: f16, qs: [u8; 16]`; element j is the low nibble of qs[j], element j + 16 the high
/// nibble, both offset by 8.
#[inline(always)]
fn q4_0(block: &[u8; 18], out: &mut [f32; 32]) {
    let d = half_at(block, 0);
    let (low, high) = out.split_at_mut(16);
    for ((&q, lo), hi) in block[2..].iter().zip(low).zip(high) {
        *lo = (f32::from(q & 0x0F) - 8.0) * d;
        *hi = (f32::from(q >> 4) - 8.0) * d;
    }
}

/// `d: f16, m: f16, qs: [u8; 16]`; unsigned nibbles as in Q4_0, value = q * d + m.
#[inline(always)]
fn q4_1(block: &[u8; 20], out: &mut [f32; 32]) {
    let d = half_at(block, 0);
    let m = half_at(block, 2);
    let (low, high) = out.split_at_mut(16);
    for ((&q, lo), hi) in block[4..].iter().zip(low).zip(high) {
        *lo = f32::from(q & 0x0F) * d + m;
        *hi = f32::from(q >> 4) * d + m;
    }
}

/// `d: f16, qh: u32, qs: [u8; 16]`; bit j of qh is the fifth bit of element j, bit j + 16 that
/// of element j + 16; values are offset by 16.
#[inline(always)]
fn q5_0(block: &[u8; 22], out: &mut [f32; 32]) {
    let d = half_at(block, 0);
    let qh = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
    let fifth_bit = |bit: usize| (((qh >> bit) & 1) << 4) as u8;
    for (j, &q) in block[6..].iter().enumerate() {
        out[j] = (f32::from((q & 0x0F) | fifth_bit(j)) - 16.0) * d;
        out[j + 16] = (f32::from((q >> 4) | fifth_bit(j + 16)) - 16.0) * d;
    }
}

/// `d: f16, qs: [i8; 32]`.
#[inline(always)]
fn q8_0(block: &[u8; 34], out: &mut [f32; 32]) {
    let d = half_at(block, 0);
    for (&q, o) in block[2..].iter().zip(out) {
        *o = f32::from(q as i8) * d;
    }
}

/// The 6-bit scale and min of sub-block `j` (of 8) from Q4_K's 12 packed scale bytes: sub-blocks
/// 0..4 keep theirs in the low 6 bits of bytes j and j + 4; sub-blocks 4..8 split theirs between
/// a nibble of bytes j + 4 and the top 2 bits of bytes j - 4 and j.
#[inline(always)]
fn q4_k_scale_min(j: usize, scales: &[u8]) -> (u8, u8) {
    if j < 4 {
        (scales[j] & 63, scales[j + 4] & 63)
    } else {
        (
            (scales[j + 4] & 0x0F) | ((scales[j - 4] >> 6) << 4),
            (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4),
        )
    }
}

/// `d: f16, dmin: f16, scales: [u8; 12], qs: [u8; 128]`: 8 sub-blocks of 32, each with a 6-bit
/// scale and min; value = d * scale * q - dmin * min. Each 32 bytes of qs hold two sub-blocks,
/// the first in the low nibbles.
#[inline(always)]
fn q4_k(block: &[u8; 144], out: &mut [f32; QK_K]) {
    let d = half_at(block, 0);
    let dmin = half_at(block, 2);
    let scales = &block[4..16];
    let qs = &block[16..144];
    for (pair, (q, y)) in qs
        .chunks_exact(32)
        .zip(out.chunks_exact_mut(64))
        .enumerate()
    {
        let (scale_lo, min_lo) = q4_k_scale_min(2 * pair, scales);
        let (scale_hi, min_hi) = q4_k_scale_min(2 * pair + 1, scales);
        let (d_lo, m_lo) = (d * f32::from(scale_lo), dmin * f32::from(min_lo));
        let (d_hi, m_hi) = (d * f32::from(scale_hi), dmin * f32::from(min_hi));
        let (low, high) = y.split_at_mut(32);
        for ((&b, lo), hi) in q.iter().zip(low).zip(high) {
            *lo = d_lo * f32::from(b & 0x0F) - m_lo;
            *hi = d_hi * f32::from(b >> 4) - m_hi;
        }
    }
}

/// `ql: [u8; 128], qh: [u8; 64], scales: [i8; 16], d: f16`: 16 sub-blocks of 16 with an 8-bit
/// scale; each 6-bit value is a nibble of ql plus two bits of qh, offset by 32. A half of 128
/// elements uses 64 bytes of ql, 32 of qh and 8 scales; within it, element l + 32 k (k = 0..4)
/// takes the low/high nibble of ql[l] / ql[l + 32] and bits 2k, 2k+1 of qh[l].
#[inline(always)]
fn q6_k(block: &[u8; 210], out: &mut [f32; QK_K]) {
    let ql_all = &block[0..128];
    let qh_all = &block[128..192];
    let scales_all = &block[192..208];
    let d = half_at(block, 208);
    for (half, y) in out.chunks_exact_mut(128).enumerate() {
        let ql = &ql_all[64 * half..64 * half + 64];
        let qh = &qh_all[32 * half..32 * half + 32];
        let scales = &scales_all[8 * half..8 * half + 8];
        for l in 0..32 {
            let sub = l / 16;
            let six_bit = |low: u8, shift: u32| i32::from(low | (((qh[l] >> shift) & 3) << 4)) - 32;
            let q = [
                six_bit(ql[l] & 0x0F, 0),
                six_bit(ql[l + 32] & 0x0F, 2),
                six_bit(ql[l] >> 4, 4),
                six_bit(ql[l + 32] >> 4, 6),
            ];
            for (k, &qk) in q.iter().enumerate() {
                let scale = f32::from(scales[sub + 2 * k] as i8);
                y[l + 32 * k] = d * scale * qk as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f16_bytes(x: f32) -> [u8; 2] {
        f16::from_f32(x).to_le_bytes()
    }

    #[test]
    fn type_ids_round_trip_and_sizes_match_ggml() {
        for id in 0..40 {
            if let Some(ty) = GgmlType::from_id(id) {
                assert_eq!(ty.id(), id, "{}", ty.name());
            }
        }
        let sizes = [
            (GgmlType::Q4_0, 18),
            (GgmlType::Q4_1, 20),
            (GgmlType::Q5_0, 22),
            (GgmlType::Q5_1, 24),
            (GgmlType::Q8_0, 34),
            (GgmlType::Q8_1, 36),
            (GgmlType::Q2K, 84),
            (GgmlType::Q3K, 110),
            (GgmlType::Q4K, 144),
            (GgmlType::Q5K, 176),
            (GgmlType::Q6K, 210),
            (GgmlType::Q8K, 292),
        ];
        for (ty, bytes) in sizes {
            assert_eq!(ty.block_bytes(), bytes, "{}", ty.name());
        }
    }

    #[test]
    fn plain_types() {
        let f32s: Vec<u8> = [1.5f32, -2.25]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        assert_eq!(dequantize(GgmlType::F32, &f32s), Some(vec![1.5, -2.25]));
        let f16s: Vec<u8> = [0.5f32, -3.0].iter().flat_map(|&x| f16_bytes(x)).collect();
        assert_eq!(dequantize(GgmlType::F16, &f16s), Some(vec![0.5, -3.0]));
        let bf16s: Vec<u8> = [0.15625f32, -7.0]
            .iter()
            .flat_map(|&x| bf16::from_f32(x).to_le_bytes())
            .collect();
        assert_eq!(
            dequantize(GgmlType::BF16, &bf16s),
            Some(vec![0.15625, -7.0])
        );
    }

    #[test]
    fn q4_0_block() {
        let mut block = f16_bytes(0.5).to_vec();
        // qs[j] = low nibble j, high nibble 15 - j
        block.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let got = dequantize(GgmlType::Q4_0, &block).unwrap();
        for j in 0..16 {
            assert_eq!(got[j], (j as f32 - 8.0) * 0.5);
            assert_eq!(got[j + 16], (15.0 - j as f32 - 8.0) * 0.5);
        }
    }

    #[test]
    fn q4_1_block() {
        let mut block = f16_bytes(0.25).to_vec();
        block.extend(f16_bytes(-1.0));
        block.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let got = dequantize(GgmlType::Q4_1, &block).unwrap();
        for j in 0..16 {
            assert_eq!(got[j], j as f32 * 0.25 - 1.0);
            assert_eq!(got[j + 16], (15 - j) as f32 * 0.25 - 1.0);
        }
    }

    #[test]
    fn q5_0_block() {
        let d = 2.0;
        // fifth bit set for elements 1 and 17 and 31
        let qh: u32 = (1 << 1) | (1 << 17) | (1 << 31);
        let mut block = f16_bytes(d).to_vec();
        block.extend(qh.to_le_bytes());
        block.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let got = dequantize(GgmlType::Q5_0, &block).unwrap();
        let expected: Vec<f32> = (0..32)
            .map(|i| {
                let nibble = if i < 16 { i } else { 15 - (i - 16) };
                let fifth = if (qh >> i) & 1 == 1 { 16 } else { 0 };
                (nibble + fifth - 16) as f32 * d
            })
            .collect();
        assert_eq!(got, expected);
        assert_eq!((got[0], got[1], got[17], got[31]), (-32.0, 2.0, 28.0, 0.0));
    }

    #[test]
    fn q8_0_block() {
        let mut block = f16_bytes(0.125).to_vec();
        block.extend((0..32).map(|i| (i as i8 - 16) as u8));
        let got = dequantize(GgmlType::Q8_0, &block).unwrap();
        let expected: Vec<f32> = (0..32).map(|i| (i - 16) as f32 * 0.125).collect();
        assert_eq!(got, expected);
    }

    /// Packs eight 6-bit (scale, min) pairs the way ggml's `make_qkx2_quants` caller does.
    fn pack_q4_k_scales(scales: [u8; 8], mins: [u8; 8]) -> [u8; 12] {
        let mut packed = [0u8; 12];
        for j in 0..8 {
            if j < 4 {
                packed[j] = scales[j];
                packed[j + 4] = mins[j];
            } else {
                packed[j + 4] = (scales[j] & 0x0F) | ((mins[j] & 0x0F) << 4);
                packed[j - 4] |= (scales[j] >> 4) << 6;
                packed[j] |= (mins[j] >> 4) << 6;
            }
        }
        packed
    }

    #[test]
    fn q4_k_block() {
        let (d, dmin) = (0.5f32, 0.25f32);
        let scales = [1, 2, 3, 63, 17, 40, 5, 33];
        let mins = [0, 7, 63, 1, 50, 2, 31, 16];
        let mut block = f16_bytes(d).to_vec();
        block.extend(f16_bytes(dmin));
        block.extend(pack_q4_k_scales(scales, mins));
        let quants: Vec<u8> = (0..256).map(|i| ((i * 7 + 3) % 16) as u8).collect();
        // element 64 p + l (l < 32) is the low nibble of qs[32 p + l], 64 p + 32 + l the high
        let mut qs = vec![0u8; 128];
        for p in 0..4 {
            for l in 0..32 {
                qs[32 * p + l] = quants[64 * p + l] | (quants[64 * p + 32 + l] << 4);
            }
        }
        block.extend(qs);
        let got = dequantize(GgmlType::Q4K, &block).unwrap();
        for (i, &q) in quants.iter().enumerate() {
            let sub = i / 32;
            let want = d * f32::from(scales[sub]) * f32::from(q) - dmin * f32::from(mins[sub]);
            assert_eq!(got[i], want, "element {i}");
        }
    }

    #[test]
    fn q6_k_block() {
        let d = 0.5f32;
        let scales: [i8; 16] = [
            1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12, 13, -14, 127, -128,
        ];
        let quants: Vec<u8> = (0..256).map(|i| ((i * 13 + 5) % 64) as u8).collect();
        let mut ql = vec![0u8; 128];
        let mut qh = vec![0u8; 64];
        for (i, &q) in quants.iter().enumerate() {
            let (half, within) = (i / 128, i % 128);
            let (k, l) = (within / 32, within % 32);
            let low = q & 0x0F;
            let high = q >> 4;
            let ql_index = 64 * half + l + if k % 2 == 1 { 32 } else { 0 };
            ql[ql_index] |= if k >= 2 { low << 4 } else { low };
            qh[32 * half + l] |= high << (2 * k);
        }
        let mut block = ql;
        block.extend(qh);
        block.extend(scales.iter().map(|&s| s as u8));
        block.extend(f16_bytes(d));
        let got = dequantize(GgmlType::Q6K, &block).unwrap();
        for (i, &q) in quants.iter().enumerate() {
            let sub = i / 16;
            let want = d * f32::from(scales[sub]) * (i32::from(q) - 32) as f32;
            assert_eq!(got[i], want, "element {i}");
        }
    }

    #[test]
    fn partial_blocks_and_unsupported_types_are_refused() {
        assert_eq!(dequantize(GgmlType::Q8_0, &[0u8; 33]), None);
        assert_eq!(dequantize(GgmlType::Q5K, &[0u8; 176]), None);
    }
}
