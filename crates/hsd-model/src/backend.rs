use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;

use crate::ModelError;

/// A burn execution backend; only those compiled in (cargo features of the same names) work.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum Backend {
    /// Pure-Rust CPU backend with rayon and SIMD (the default feature).
    #[default]
    Flex,
    NdArray,
    /// LibTorch on the CPU.
    Tch,
    Wgpu,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::NdArray => "ndarray",
            Backend::Tch => "tch",
            Backend::Wgpu => "wgpu",
        }
    }

    /// The burn device for this backend, or an error naming the cargo feature to enable.
    pub fn device(self) -> Result<Device, ModelError> {
        let not_compiled = || ModelError::BackendNotCompiled {
            backend: self.name(),
            feature: self.name(),
        };
        match self {
            #[cfg(feature = "flex")]
            Backend::Flex => Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            // still the only way to compare against the ndarray kernels
            Backend::NdArray => Ok(Device::ndarray()),
            #[cfg(feature = "tch")]
            #[allow(deprecated)]
            // still the only way to compare against LibTorch kernels
            Backend::Tch => Ok(Device::libtorch()),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Ok(Device::wgpu(Default::default())),
            #[allow(unreachable_patterns)] // reachable whenever a feature is off
            _ => Err(not_compiled()),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "flex" => Ok(Backend::Flex),
            "ndarray" => Ok(Backend::NdArray),
            "tch" | "libtorch" => Ok(Backend::Tch),
            "wgpu" => Ok(Backend::Wgpu),
            _ => Err(ModelError::UnknownBackend(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_name_and_rejects_others() {
        for backend in [Backend::Flex, Backend::NdArray, Backend::Tch, Backend::Wgpu] {
            assert_eq!(backend.name().parse::<Backend>().unwrap(), backend);
        }
        assert!(matches!(
            "cuda".parse::<Backend>(),
            Err(ModelError::UnknownBackend(_))
        ));
    }

    #[cfg(not(feature = "tch"))]
    #[test]
    fn a_backend_left_out_names_its_feature() {
        let err = Backend::Tch.device().unwrap_err();
        assert!(err.to_string().contains("--features tch"), "{err}");
    }
}
