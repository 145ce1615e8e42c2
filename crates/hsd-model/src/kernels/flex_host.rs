//! What the Flex kernels share around their loops: an input's rows as host `f32` or read in
//! place, the `[out, rows]` accumulator turned into `[rows, out]`, and the result as a Flex
//! tensor.

use burn::tensor::{DType, Tensor, TensorData};
use burn_flex::{Flex, FlexTensor};

/// Whether `t` is contiguous f32 from its storage's start, so its storage is its data.
pub(super) fn is_plain_f32(t: &FlexTensor) -> bool {
    t.dtype() == DType::F32 && t.layout().is_contiguous() && t.layout().start_offset() == 0
}

/// `x`'s values, row-major, copied out of any layout; `None` when `x` is not a Flex f32 tensor
/// (another backend, autodiff).
pub(super) fn host_f32<const D: usize>(x: &Tensor<D>) -> Option<Vec<f32>> {
    let len = x.shape().num_elements();
    let x = x.clone().try_into_primitive::<Flex>().ok()?;
    if is_plain_f32(&x) {
        Some(x.storage::<f32>()[..len].to_vec())
    } else {
        x.into_data().try_into_vec::<f32>().ok()
    }
}

/// `y` (`[rows, out]`, row-major) as a Flex tensor.
pub(super) fn flex_tensor(y: Vec<f32>, rows: usize, out: usize) -> Tensor<2> {
    Tensor::from_primitive::<Flex>(FlexTensor::from_data(TensorData::new(y, [rows, out])))
}

/// `[rows, out]` from the `[out, rows]` accumulator that parallel tasks fill (each owns
/// contiguous outputs).
pub(super) fn rows_first(y_t: Vec<f32>, out: usize, rows: usize) -> Vec<f32> {
    if rows == 1 {
        return y_t;
    }
    let mut y = vec![0.0f32; rows * out];
    for (o, outputs) in y_t.chunks_exact(rows).enumerate() {
        for (r, &value) in outputs.iter().enumerate() {
            y[r * out + o] = value;
        }
    }
    y
}

/// A `[B, X, S, D]` Flex f32 tensor read in place (the cache's keys or values, a pass's query
/// heads, the attention bias): each slot's `D` values are contiguous in the storage, the other
/// axes strided.
pub(super) struct SlotRows {
    tensor: FlexTensor,
    /// Storage offsets of one step along B, X and S.
    strides: [usize; 3],
    start: usize,
    dim: usize,
}

impl SlotRows {
    /// `None` when `x` is not a Flex f32 tensor or its slots are not contiguous.
    pub(super) fn new(x: &Tensor<4>) -> Option<Self> {
        let dim = x.dims()[3];
        let tensor = x.clone().try_into_primitive::<Flex>().ok()?;
        if tensor.dtype() != DType::F32 {
            return None;
        }
        let layout = tensor.layout();
        let strides: Vec<usize> = layout
            .strides()
            .iter()
            .map(|&stride| usize::try_from(stride).ok())
            .collect::<Option<_>>()?;
        if strides.len() != 4 || (strides[3] != 1 && dim > 1) {
            return None;
        }
        let start = layout.start_offset();
        let last = start
            + (0..3)
                .map(|axis| (layout.shape()[axis].saturating_sub(1)) * strides[axis])
                .sum::<usize>()
            + dim;
        if last > tensor.storage::<f32>().len() {
            return None;
        }
        Some(Self {
            strides: [strides[0], strides[1], strides[2]],
            start,
            dim,
            tensor,
        })
    }

    /// The slots of `x[row, head]`.
    pub(super) fn head(&self, row: usize, head: usize) -> HeadRows<'_> {
        HeadRows {
            storage: self.tensor.storage::<f32>(),
            first: self.start + row * self.strides[0] + head * self.strides[1],
            slot_stride: self.strides[2],
            dim: self.dim,
        }
    }
}

/// One head's slots: slot `j` is `storage[first + j * slot_stride..][..dim]`.
#[derive(Clone, Copy)]
pub(super) struct HeadRows<'a> {
    storage: &'a [f32],
    first: usize,
    slot_stride: usize,
    dim: usize,
}

impl<'a> HeadRows<'a> {
    #[inline(always)]
    pub(super) fn slot(&self, j: usize) -> &'a [f32] {
        &self.storage[self.first + j * self.slot_stride..][..self.dim]
    }

    /// The storage from slot `j` on, for kernels that stride through the slots themselves
    /// (every slot of the tensor lies inside it: [`SlotRows::new`] checked the extent).
    pub(super) fn slots_from(&self, j: usize) -> &'a [f32] {
        &self.storage[self.first + j * self.slot_stride..]
    }

    /// Storage offset from one slot to the next.
    pub(super) fn slot_stride(&self) -> usize {
        self.slot_stride
    }
}

/// `dst = lhs rhs` for a row-major `dst` (`[m, n]`) and `lhs` (`[m, k]`) and `rhs` (`[k, n]`)
/// read at their (row, column) strides: `gemm::gemm` called as burn-flex calls it (the output
/// overwritten, unscaled), so a product through here is bit for bit burn's for the same
/// shapes, strides and parallelism.
///
/// # Safety
///
/// `dst` must hold `m * n` values, and `lhs` and `rhs` every element their shapes and strides
/// address.
pub(super) unsafe fn gemm_product(
    [m, n, k]: [usize; 3],
    dst: *mut f32,
    lhs: *const f32,
    (lhs_row, lhs_col): (isize, isize),
    rhs: *const f32,
    (rhs_row, rhs_col): (isize, isize),
    parallelism: gemm::Parallelism,
) {
    // SAFETY: the caller's extents.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            n as isize,
            false,
            lhs,
            lhs_col,
            lhs_row,
            rhs,
            rhs_col,
            rhs_row,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// f32 storage that burn-flex takes as it is: every tensor's bytes must be 16-byte aligned,
/// and a `Vec<f32>` (declared 4-byte aligned) is copied into a new allocation to get there,
/// which for a prefill's products was a memset and a copy of each output on the stepping
/// thread. Held as `u128` words, this allocation is declared 16-byte aligned.
pub(super) struct AlignedF32 {
    words: Vec<u128>,
    len: usize,
}

impl AlignedF32 {
    /// `len` values, every one written by `write` through the pointer it is given.
    ///
    /// # Safety
    ///
    /// `write` must initialize all `len` values.
    pub(super) unsafe fn written_by(len: usize, write: impl FnOnce(*mut f32)) -> Self {
        let words_len = len.div_ceil(4);
        let mut words: Vec<u128> = Vec::with_capacity(words_len);
        write(words.as_mut_ptr().cast::<f32>());
        // SAFETY: the caller's `write` initialized the first `len` values; a final partial word
        // keeps up to three uninitialized padding values, which no reader goes past `len` to.
        unsafe { words.set_len(words_len) };
        Self { words, len }
    }

    /// `len` zeros.
    pub(super) fn zeroed(len: usize) -> Self {
        Self {
            words: vec![0; len.div_ceil(4)],
            len,
        }
    }

    pub(super) fn values_mut(&mut self) -> &mut [f32] {
        // SAFETY: the words hold at least `len` initialized f32 (4 to a word), and f32 has
        // looser alignment than u128.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast::<f32>(), self.len) }
    }

    /// As a Flex tensor of `shape` (`len` values).
    pub(super) fn into_tensor<const D: usize>(self, shape: [usize; D]) -> Tensor<D> {
        debug_assert_eq!(shape.iter().product::<usize>(), self.len);
        let layout = burn_flex::Layout::contiguous(burn::tensor::Shape::from(shape.to_vec()));
        let bytes = burn::tensor::Bytes::from_elems(self.words);
        Tensor::from_primitive::<Flex>(FlexTensor::new(bytes, layout, DType::F32))
    }
}
