//! Tensor lookup scoped to a name prefix, as candle's `VarBuilder::pp`: a loader walks down the
//! checkpoint's naming (`layer.pp("self_attn").pp("q_proj")`) and asks for the last segment
//! (`"weight"`), while errors still name the tensor in full.

use std::fmt::Display;

use burn::tensor::{Device, Tensor, TensorData};

use crate::ModelError;
use crate::weights::{BlockMatrix, TensorSource};

/// The tensors of a source under one name prefix, and the device modules are built on.
#[derive(Clone)]
pub(crate) struct WeightScope<'a> {
    source: &'a dyn TensorSource,
    device: &'a Device,
    /// Empty at the root, else a full dotted name such as "model.layers.0".
    prefix: String,
}

impl<'a> WeightScope<'a> {
    /// The root scope: tensors under their full names.
    pub(crate) fn new(source: &'a dyn TensorSource, device: &'a Device) -> Self {
        Self {
            source,
            device,
            prefix: String::new(),
        }
    }

    /// The scope of `segment` (one or more dotted name segments) under this one.
    pub(crate) fn pp(&self, segment: impl Display) -> Self {
        Self {
            prefix: self.full_name(&segment.to_string()),
            ..self.clone()
        }
    }

    /// The full dotted name of this scope, empty at the root.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(crate) fn device(&self) -> &'a Device {
        self.device
    }

    /// The full name of `name` in this scope.
    fn full_name(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.source.contains(&self.full_name(name))
    }

    /// `name`'s data in host memory, row-major, checked to have `shape`.
    pub(crate) fn load(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        let full_name = self.full_name(name);
        let tensor = self.source.load(&full_name)?;
        if tensor.shape != shape {
            return Err(ModelError::Shape {
                tensor: full_name,
                expected: shape.to_vec(),
                found: tensor.shape,
            });
        }
        Ok(tensor.data)
    }

    /// `name` in the file's own quantized blocks, checked to have `shape`; `None` when the
    /// source keeps it as plain floats or serves `f32` only.
    pub(crate) fn load_blocks(
        &self,
        name: &str,
        shape: [usize; 2],
    ) -> Result<Option<BlockMatrix>, ModelError> {
        let full_name = self.full_name(name);
        let Some(matrix) = self.source.load_blocks(&full_name)? else {
            return Ok(None);
        };
        if matrix.dims() != shape {
            return Err(ModelError::Shape {
                tensor: full_name,
                expected: shape.to_vec(),
                found: matrix.dims().to_vec(),
            });
        }
        Ok(Some(matrix))
    }

    /// `name` on the device, checked to have `shape`.
    pub(crate) fn tensor<const D: usize>(
        &self,
        name: &str,
        shape: [usize; D],
    ) -> Result<Tensor<D>, ModelError> {
        let data = self.load(name, &shape)?;
        Ok(Tensor::from_data(TensorData::new(data, shape), self.device))
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::weights::{HostTensor, WeightError};

    /// One tensor, "model.layers.0.self_attn.q_proj.weight" of shape `[2]`, in "mem.safetensors".
    struct OneTensor;

    const NAME: &str = "model.layers.0.self_attn.q_proj.weight";

    impl TensorSource for OneTensor {
        fn names(&self) -> Vec<String> {
            vec![NAME.into()]
        }
        fn contains(&self, name: &str) -> bool {
            name == NAME
        }
        fn load(&self, name: &str) -> Result<HostTensor, WeightError> {
            if name != NAME {
                return Err(WeightError::MissingTensor {
                    path: PathBuf::from("mem.safetensors"),
                    tensor: name.into(),
                });
            }
            Ok(HostTensor {
                name: name.into(),
                shape: vec![2],
                data: vec![1.0, 2.0],
            })
        }
    }

    #[test]
    fn scopes_join_names_and_errors_name_the_tensor_in_full() {
        let device = Device::default();
        let root = WeightScope::new(&OneTensor, &device);
        let attention = root.pp(format_args!("model.layers.{}", 0)).pp("self_attn");
        assert!(attention.pp("q_proj").contains("weight"));
        assert!(!attention.contains("weight"));
        assert_eq!(
            attention.pp("q_proj").load("weight", &[2]).unwrap(),
            [1.0, 2.0]
        );
        assert_eq!(root.load(NAME, &[2]).unwrap(), [1.0, 2.0]);

        let missing = attention.pp("k_proj").load("weight", &[2]).unwrap_err();
        let text = missing.to_string();
        assert!(
            text.contains("mem.safetensors")
                && text.contains("\"model.layers.0.self_attn.k_proj.weight\""),
            "{text}"
        );
        let misshapen = attention.pp("q_proj").load("weight", &[3]).unwrap_err();
        assert!(
            matches!(misshapen, ModelError::Shape { ref tensor, .. } if tensor == NAME),
            "{misshapen}"
        );
    }
}
