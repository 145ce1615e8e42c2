//! The KV cache: per layer, K and V preallocated `[B, kv_heads, capacity, head_dim]` and
//! written in place, plus which (row, slot) pairs hold K/V at that layer.
//!
//! Slots are columns of the left-padded batch, shared by all rows; a row's position id is its
//! slot minus its padding. A slot is invalid at a layer when it is padding or when that layer
//! was skipped there with `kv_fill = none`; attention never looks at invalid slots.

use burn::tensor::{Device, Tensor, TensorData};

/// The attention score given to a masked slot. Finite, so that a fully masked query row (a
/// padding position of the prompt) softmaxes to a harmless uniform row instead of NaN.
const MASKED_SCORE: f32 = -1e9;

#[derive(Clone, Debug)]
struct LayerKv {
    k: Tensor<4>,
    v: Tensor<4>,
    /// `[B * capacity]`, row-major.
    valid: Vec<bool>,
    /// Whether some non-padding slot lacks K/V here, so this layer needs its own mask.
    has_holes: bool,
}

/// The decoding state of a batch after some prefix: clone it to decode the same prefix with
/// several strategies (the tensors are shared until written).
#[derive(Clone, Debug)]
pub struct Cache {
    layers: Vec<LayerKv>,
    /// Left padding per row.
    padding: Vec<usize>,
    batch: usize,
    capacity: usize,
    /// Slots written so far.
    len: usize,
    kv_heads: usize,
    head_dim: usize,
}

impl Cache {
    pub(crate) fn new(
        layers: usize,
        padding: Vec<usize>,
        capacity: usize,
        kv_heads: usize,
        head_dim: usize,
        device: &Device,
    ) -> Self {
        let batch = padding.len();
        let empty = LayerKv {
            k: Tensor::zeros([batch, kv_heads, capacity, head_dim], device),
            v: Tensor::zeros([batch, kv_heads, capacity, head_dim], device),
            valid: vec![false; batch * capacity],
            has_holes: false,
        };
        // Each layer needs its own buffers: a shared one would be copied on the first write.
        let layers = (0..layers)
            .map(|_| LayerKv {
                k: empty.k.zeros_like(),
                v: empty.v.zeros_like(),
                ..empty.clone()
            })
            .collect();
        Self {
            layers,
            padding,
            batch,
            capacity,
            len: 0,
            kv_heads,
            head_dim,
        }
    }

    /// Slots written so far (prompt columns plus generated tokens).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of slots the cache was allocated for.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Left padding of each row.
    pub fn padding(&self) -> &[usize] {
        &self.padding
    }

    /// The least left padding of any row: slots before it are padding in every row.
    pub(crate) fn min_padding(&self) -> usize {
        self.padding.iter().min().copied().unwrap_or(0)
    }

    /// Whether `layer` holds K/V for `row` at `slot`.
    pub fn is_valid(&self, layer: usize, row: usize, slot: usize) -> bool {
        slot < self.capacity
            && self
                .layers
                .get(layer)
                .is_some_and(|l| l.valid[row * self.capacity + slot])
    }

    /// Position ids of the `count` slots from `start`, per row: `[B, count]`, row-major.
    pub(crate) fn positions(&self, start: usize, count: usize) -> Vec<i64> {
        let mut ids = Vec::with_capacity(self.batch * count);
        for &pad in &self.padding {
            ids.extend((start..start + count).map(|slot| slot.saturating_sub(pad) as i64));
        }
        ids
    }

    /// Marks `count` slots from `start` as holding K/V at `layer` (padding stays invalid).
    pub(crate) fn mark_written(&mut self, layer: usize, start: usize, count: usize) {
        let capacity = self.capacity;
        let kv = &mut self.layers[layer];
        for (row, &pad) in self.padding.iter().enumerate() {
            for slot in start.max(pad)..start + count {
                kv.valid[row * capacity + slot] = true;
            }
        }
    }

    /// Records that `layer` wrote nothing for `count` slots from `start`.
    pub(crate) fn mark_skipped(&mut self, layer: usize, start: usize, count: usize) {
        let has_real_slot = self.padding.iter().any(|&pad| start + count > pad);
        self.layers[layer].has_holes |= has_real_slot;
    }

    /// Writes K and V (`[B, kv_heads, T, head_dim]`) for the `T` slots from `start`.
    pub(crate) fn write(&mut self, layer: usize, start: usize, k: Tensor<4>, v: Tensor<4>) {
        let count = k.dims()[2];
        let range = [
            0..self.batch,
            0..self.kv_heads,
            start..start + count,
            0..self.head_dim,
        ];
        let kv = &mut self.layers[layer];
        kv.k = kv.k.extract().slice_assign(range.clone(), k);
        kv.v = kv.v.extract().slice_assign(range, v);
    }

    /// K and V over slots `0..end`.
    pub(crate) fn keys_values(&self, layer: usize, end: usize) -> (Tensor<4>, Tensor<4>) {
        let range = [0..self.batch, 0..self.kv_heads, 0..end, 0..self.head_dim];
        let kv = &self.layers[layer];
        (kv.k.clone().slice(range.clone()), kv.v.clone().slice(range))
    }

    /// K and V of `layer` read back to the host, each `[B, kv_heads, capacity, head_dim]`
    /// row-major; slots that are not [`Self::is_valid`] hold stale or zero values.
    pub fn layer_to_host(&self, layer: usize) -> Result<(Vec<f32>, Vec<f32>), crate::ModelError> {
        let kv = self.layers.get(layer).ok_or_else(|| {
            crate::ModelError::Batch(format!(
                "layer {layer} of a cache of {} layers",
                self.layers.len()
            ))
        })?;
        Ok((
            crate::readback::read_f32(kv.k.clone(), "cache keys")?,
            crate::readback::read_f32(kv.v.clone(), "cache values")?,
        ))
    }

    /// `(kv_heads, head_dim)`: with [`Self::batch`] and [`Self::capacity`], the shape of
    /// [`Self::layer_to_host`]'s buffers.
    pub fn head_shape(&self) -> (usize, usize) {
        (self.kv_heads, self.head_dim)
    }

    pub(crate) fn has_holes(&self, layer: usize) -> bool {
        self.layers[layer].has_holes
    }

    /// The additive attention mask for queries at the `count` slots from `start` over keys
    /// `0..start + count`: `[B, 1, count, start + count]`, 0 where a query may look (causal, not
    /// padding) and [`MASKED_SCORE`] elsewhere. Serves every layer without holes.
    pub(crate) fn padding_bias(&self, start: usize, count: usize, device: &Device) -> Tensor<4> {
        self.bias(start, count, device, |row, key| key >= self.padding[row])
    }

    /// [`Self::padding_bias`] that also hides the slots where `layer` holds no K/V.
    pub(crate) fn layer_bias(
        &self,
        layer: usize,
        start: usize,
        count: usize,
        device: &Device,
    ) -> Tensor<4> {
        let valid = &self.layers[layer].valid;
        self.bias(start, count, device, |row, key| {
            valid[row * self.capacity + key]
        })
    }

    fn bias(
        &self,
        start: usize,
        count: usize,
        device: &Device,
        has_kv: impl Fn(usize, usize) -> bool,
    ) -> Tensor<4> {
        let end = start + count;
        let mut bias = Vec::with_capacity(self.batch * count * end);
        for row in 0..self.batch {
            for query in start..end {
                bias.extend((0..end).map(|key| {
                    if key <= query && has_kv(row, key) {
                        0.0
                    } else {
                        MASKED_SCORE
                    }
                }));
            }
        }
        Tensor::from_data(TensorData::new(bias, [self.batch, 1, count, end]), device)
    }

    pub(crate) fn advance(&mut self, count: usize) {
        self.len += count;
    }

    /// Rolls the cache back to its first `len` slots: later slots lose their K/V at every layer
    /// and the next forward writes from slot `len`. Speculative decoding drops rejected drafts
    /// this way. Growing is not rolling back: a `len` beyond [`Self::len`] is an error.
    pub fn truncate(&mut self, len: usize) -> Result<(), crate::ModelError> {
        if len > self.len {
            return Err(crate::ModelError::Batch(format!(
                "cannot roll a cache of {} slots back to {len}",
                self.len
            )));
        }
        let capacity = self.capacity;
        for kv in &mut self.layers {
            for row in 0..self.batch {
                kv.valid[row * capacity + len..(row + 1) * capacity].fill(false);
            }
            kv.has_holes = self
                .padding
                .iter()
                .enumerate()
                .any(|(row, &pad)| (pad..len).any(|slot| !kv.valid[row * capacity + slot]));
        }
        self.len = len;
        Ok(())
    }
}
