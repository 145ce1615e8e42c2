//! Attention of a long pass (a prefill) over the cache on Flex, in tiles of query rows: per
//! tile and query head, the scores of the keys the tile can see, the softmax, and the weighted
//! sum of those keys' values: two small `gemm` products around a softmax over SIMD lanes
//! ([`super::lane_exp`]).
//!
//! burn's path multiplies every query row by every key, `[B, KV, G * T, S]` scores at once,
//! then runs the probabilities over that tensor. In a causal prefill half of those products
//! are masked, and at batch 8 with 512-token prompts the scores are 75 MB a layer: past
//! glibc's largest mmap threshold, so every layer faulted in and zeroed fresh pages for them,
//! and the probabilities' pass ran from memory rather than cache. Here a tile of 64 query rows
//! multiplies only the keys from the first one any of its rows sees to the last, so a causal
//! pass skips about 7/16 of the products (the masked triangle outside the diagonal tiles),
//! and its scores (at most 64 x S) stay in L2 between the two products. The sums run in
//! another order than burn's whole-tensor products, so, as with the decode kernel, only
//! decoders on the file's own blocks take this path.

use std::ops::Range;

use burn::tensor::Tensor;
use rayon::prelude::*;

use super::attention_probs::MASKED_BELOW;
use super::flex_host::{AlignedF32, HeadRows, SlotRows, gemm_product};
use super::lane_exp::softmax_rows;

/// Query rows per tile: a tile computes up to its diagonal, so smaller tiles skip more of the
/// masked triangle while larger ones give `gemm` longer products.
const TILE_ROWS: usize = 64;

/// The validated operands of one pass: `q` `[B, H, T, D]`, `keys` and `values` `[B, KV, S, D]`,
/// `bias` `[B, 1, T, S]` (its slots are query rows of `S` biases).
pub(super) struct LongPass<'a> {
    pub(super) q: &'a SlotRows,
    pub(super) keys: &'a SlotRows,
    pub(super) values: &'a SlotRows,
    pub(super) bias: &'a SlotRows,
    pub(super) scale: f32,
    /// `[B, H, KV, T, S, D]`.
    pub(super) dims: [usize; 6],
}

/// `softmax(q K^T * scale + bias) V` as `[B, T, H * D]`, tile by tile.
pub(super) fn attend(pass: &LongPass<'_>) -> Tensor<3> {
    let [b, heads, kv_heads, t, s, d] = pass.dims;
    let group = heads / kv_heads;
    let tiles = t.div_ceil(TILE_ROWS);
    // Task `i` is tile `i % tiles` of KV head `i / tiles % KV` of batch row `i / (tiles * KV)`.
    let tile_of = |task: usize| {
        let tile = task % tiles;
        (
            task / (kv_heads * tiles),
            task / tiles % kv_heads,
            tile * TILE_ROWS..((tile + 1) * TILE_ROWS).min(t),
        )
    };
    let per_tile: Vec<Vec<f32>> = (0..b * kv_heads * tiles)
        .into_par_iter()
        .map(|task| {
            let (row, kv_head, queries) = tile_of(task);
            let bias = pass.bias.head(row, 0);
            let seen = seen_keys(bias, queries.clone(), s);
            let tile_pass = TilePass {
                keys: pass.keys.head(row, kv_head),
                values: pass.values.head(row, kv_head),
                bias,
                queries,
                seen,
                scale: pass.scale,
                dim: d,
            };
            let rows = tile_pass.queries.len();
            let mut scores = vec![0.0f32; rows * tile_pass.seen.len()];
            let mut out = vec![0.0f32; group * rows * d];
            for (g, head_out) in out.chunks_exact_mut(rows * d).enumerate() {
                tile_pass.run(pass.q.head(row, kv_head * group + g), &mut scores, head_out);
            }
            out
        })
        .collect();
    // `[B, KV, tiles][G, rows, D]` -> `[B, T, H * D]`.
    let mut aligned = AlignedF32::zeroed(b * t * heads * d);
    let out = aligned.values_mut();
    for (task, tile_out) in per_tile.iter().enumerate() {
        let (row, kv_head, queries) = tile_of(task);
        for (g, head_out) in tile_out.chunks_exact(queries.len() * d).enumerate() {
            let head = kv_head * group + g;
            for (query, values) in queries.clone().zip(head_out.chunks_exact(d)) {
                out[((row * t + query) * heads + head) * d..][..d].copy_from_slice(values);
            }
        }
    }
    aligned.into_tensor([b, t, heads * d])
}

/// The keys a tile's query rows must score: from the first key any row sees to the last. A
/// row that sees no key at all (a padding query) has burn's uniform softmax over every key,
/// so its tile scores them all.
fn seen_keys(bias: HeadRows<'_>, queries: Range<usize>, keys: usize) -> Range<usize> {
    let mut seen = keys..0;
    for query in queries {
        let row = bias.slot(query);
        match (
            row.iter().position(|&b| b > MASKED_BELOW),
            row.iter().rposition(|&b| b > MASKED_BELOW),
        ) {
            (Some(first), Some(last)) => seen = seen.start.min(first)..seen.end.max(last + 1),
            _ => return 0..keys,
        }
    }
    seen
}

/// One tile of query rows of one batch row against its KV head's keys `seen`.
struct TilePass<'a> {
    keys: HeadRows<'a>,
    values: HeadRows<'a>,
    /// Query row `i`'s biases are slot `i`.
    bias: HeadRows<'a>,
    queries: Range<usize>,
    seen: Range<usize>,
    scale: f32,
    dim: usize,
}

impl TilePass<'_> {
    /// Attention of query head `q`'s rows `queries`, written to `out` (`[rows, D]`), with
    /// `scores` (`[rows, seen]`) as scratch.
    fn run(&self, q: HeadRows<'_>, scores: &mut [f32], out: &mut [f32]) {
        let (rows, n, d) = (self.queries.len(), self.seen.len(), self.dim);
        let keys = self.keys.slots_from(self.seen.start);
        let values = self.values.slots_from(self.seen.start);
        let queries = q.slots_from(self.queries.start);
        let stride = |rows: HeadRows<'_>| rows.slot_stride() as isize;
        // SAFETY: each operand's extent lies inside its slice: `queries` holds `rows` slots of
        // `d` values `stride(q)` apart and `keys`/`values` hold `n` (SlotRows::new checked the
        // tensors' extents, and the ranges lie inside their axes); `scores` is `rows * n` and
        // `out` `rows * d`, both row-major. The products run on this thread only.
        unsafe {
            // `K^T` is the keys read with their strides swapped.
            gemm_product(
                [rows, n, d],
                scores.as_mut_ptr(),
                queries.as_ptr(),
                (stride(q), 1),
                keys.as_ptr(),
                (1, stride(self.keys)),
                gemm::Parallelism::None,
            );
        }
        softmax_rows(scores, n, self.scale, |i| {
            &self.bias.slot(self.queries.start + i)[self.seen.clone()]
        });
        // SAFETY: as above.
        unsafe {
            gemm_product(
                [rows, d, n],
                out.as_mut_ptr(),
                scores.as_ptr(),
                (n as isize, 1),
                values.as_ptr(),
                (stride(self.values), 1),
                gemm::Parallelism::None,
            );
        }
    }
}
