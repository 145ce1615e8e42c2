//! What the Flex kernels share around their loops: an input's rows as host `f32`, the
//! `[out, rows]` accumulator turned into `[rows, out]`, and the result as a Flex tensor.

use burn::tensor::{Tensor, TensorData};
use burn_flex::{Flex, FlexTensor};

/// Whether `t` is contiguous f32 from its storage's start, so its storage is its data.
pub(super) fn is_plain_f32(t: &FlexTensor) -> bool {
    t.dtype() == burn::tensor::DType::F32
        && t.layout().is_contiguous()
        && t.layout().start_offset() == 0
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
