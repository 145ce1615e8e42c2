//! Tensors read back to the host, with errors that name the tensor.

use burn::tensor::Tensor;

use crate::ModelError;

/// The values of `t` as host f32s, row-major; `tensor` names it in the error.
pub(crate) fn read_f32<const D: usize>(
    t: Tensor<D>,
    tensor: &'static str,
) -> Result<Vec<f32>, ModelError> {
    t.into_data()
        .try_into_vec::<f32>()
        .map_err(|e| ModelError::Readback {
            tensor,
            reason: format!("{e:?}"),
        })
}
