//! What the plan executor needs from an architecture: embeddings, blocks that either run or
//! only fill K/V, and a head.

use burn::tensor::{Device, Int, Tensor};
use hsd_skip::ModelShapes;

use crate::attention::LayerStep;
use crate::layers::Linear;
use crate::rope::Rope;

/// One transformer block.
pub(crate) trait Block {
    /// The full layer: attention (writing this pass's K/V) and MLP, residuals included.
    fn forward(&self, h: Tensor<3>, step: &mut LayerStep<'_>) -> Tensor<3>;

    /// Only the K/V this layer would write for `h` (norm, k/v projection, RoPE).
    fn fill_kv(&self, h: Tensor<3>, step: &mut LayerStep<'_>);

    /// The block's projections, attention first.
    fn linears(&self) -> Vec<&Linear>;

    fn linears_mut(&mut self) -> Vec<&mut Linear>;
}

/// A decoder-only architecture.
pub(crate) trait Architecture {
    type Block: Block;

    fn blocks(&self) -> &[Self::Block];

    fn blocks_mut(&mut self) -> &mut [Self::Block];

    /// Every projection of every block, in layer order.
    fn linears(&self) -> Vec<&Linear> {
        self.blocks().iter().flat_map(Block::linears).collect()
    }

    fn linears_mut(&mut self) -> Vec<&mut Linear> {
        self.blocks_mut()
            .iter_mut()
            .flat_map(Block::linears_mut)
            .collect()
    }

    /// `[B, T, hidden]` for token ids (`B * T`, row-major) at `positions` (`[B, T]`).
    fn embed(&self, ids: &[u32], positions: &Tensor<2, Int>, device: &Device) -> Tensor<3>;

    /// The rotary embedding, `None` for an architecture with learned positions.
    fn rope(&self) -> Option<&Rope>;

    /// Final norm and LM head: `[N, hidden]` -> `[N, vocab]`.
    fn head(&self, h: Tensor<2>) -> Tensor<2>;

    /// The longest sequence the position scheme covers.
    fn max_positions(&self) -> usize;

    fn shapes(&self) -> ModelShapes;
}
