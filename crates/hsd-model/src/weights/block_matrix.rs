//! A 2-D weight kept in its file's quantized blocks, for the kernels that multiply by it without
//! dequantizing it to memory (`--weights native`).

use super::dequant::{GgmlType, dequantize_into};

/// `rows x cols` weights stored row-major as blocks of one ggml type, each row a whole number
/// of blocks (ggml quantizes along a row, so every GGUF matrix is stored this way).
#[derive(Clone, Debug, PartialEq)]
pub struct BlockMatrix {
    ty: GgmlType,
    rows: usize,
    cols: usize,
    bytes: Vec<u8>,
}

impl BlockMatrix {
    /// The matrix of `rows` rows of `cols` elements in `bytes`, or why `bytes` is not one: a type
    /// without a decoder here, a row that is not whole blocks, or a length that does not match.
    pub fn new(ty: GgmlType, rows: usize, cols: usize, bytes: Vec<u8>) -> Result<Self, String> {
        if !ty.is_supported() {
            return Err(format!("ggml type {} is not decoded here", ty.name()));
        }
        if !cols.is_multiple_of(ty.block_len()) {
            return Err(format!(
                "rows of {cols} elements are not whole {} blocks of {}",
                ty.name(),
                ty.block_len()
            ));
        }
        let expected = rows
            .checked_mul(cols / ty.block_len())
            .and_then(|blocks| blocks.checked_mul(ty.block_bytes()));
        if expected != Some(bytes.len()) {
            return Err(format!(
                "{} bytes for {rows} x {cols} {} elements, which take {}",
                bytes.len(),
                ty.name(),
                expected.map_or_else(|| "more than memory".into(), |n| n.to_string())
            ));
        }
        Ok(Self {
            ty,
            rows,
            cols,
            bytes,
        })
    }

    pub fn ggml_type(&self) -> GgmlType {
        self.ty
    }

    /// `[rows, cols]`: PyTorch's `[out, in]` for a projection.
    pub fn dims(&self) -> [usize; 2] {
        [self.rows, self.cols]
    }

    /// Bytes per row.
    pub fn row_bytes(&self) -> usize {
        self.cols / self.ty.block_len() * self.ty.block_bytes()
    }

    /// All rows' bytes, row-major.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Every element as `f32`, row-major: the reference the kernels are tested against, and
    /// what the `f32` weights path holds.
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.rows * self.cols];
        let decoded = dequantize_into(self.ty, &self.bytes, &mut out);
        debug_assert!(decoded, "new() admits only decodable whole-block matrices");
        out
    }

    /// The matrix whose row `to` is this one's row `from_of(to)`; `from_of` must be a
    /// permutation of `0..rows`.
    pub(crate) fn with_rows_from(&self, from_of: impl Fn(usize) -> usize) -> Self {
        let row_bytes = self.row_bytes();
        let mut bytes = Vec::with_capacity(self.bytes.len());
        for to in 0..self.rows {
            let from = from_of(to);
            bytes.extend_from_slice(&self.bytes[from * row_bytes..(from + 1) * row_bytes]);
        }
        Self { bytes, ..*self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_checked_and_rows_permute_as_whole_blocks() {
        let ty = GgmlType::Q8_0;
        assert!(BlockMatrix::new(ty, 2, 48, vec![0; 2 * 34]).is_err());
        assert!(BlockMatrix::new(ty, 2, 64, vec![0; 3 * 34]).is_err());
        assert!(BlockMatrix::new(GgmlType::Q5K, 1, 256, vec![0; 176]).is_err());
        // Row r: scale 1.0 (f16 0x3C00), every quant r + 1.
        let mut bytes = Vec::new();
        for r in 0..3u8 {
            bytes.extend([0x00, 0x3C]);
            bytes.extend([r + 1; 32]);
        }
        let m = BlockMatrix::new(ty, 3, 32, bytes).unwrap();
        assert_eq!(m.row_bytes(), 34);
        let values = m.dequantize();
        assert_eq!(&values[32..64], &[2.0; 32]);
        let reversed = m.with_rows_from(|to| 2 - to).dequantize();
        assert_eq!(&reversed[..32], &[3.0; 32]);
        assert_eq!(&reversed[64..], &[1.0; 32]);
    }
}
