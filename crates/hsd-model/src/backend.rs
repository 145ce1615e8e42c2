use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;

use crate::ModelError;

/// A burn execution backend; only those compiled in (cargo features of the same names) work.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Backend {
    /// Pure-Rust CPU backend with rayon and SIMD (the default feature).
    Flex,
    /// Pure-Rust CPU backend on `ndarray`, kept to compare kernels against.
    NdArray,
    /// LibTorch on the CPU; needs torch 2.9.0 at build and run time (`scripts/setup-tch.sh`).
    Tch,
    /// WebGPU through wgpu: Vulkan, Metal or DX12, including Mesa's CPU Vulkan driver.
    Wgpu,
}

impl Backend {
    /// Every backend, in order of preference for [`Backend::default`].
    pub const ALL: [Backend; 4] = [Backend::Flex, Backend::Tch, Backend::Wgpu, Backend::NdArray];

    /// Whether this backend's cargo feature was enabled when hsd-model was built.
    pub fn is_compiled(self) -> bool {
        match self {
            Backend::Flex => cfg!(feature = "flex"),
            Backend::NdArray => cfg!(feature = "ndarray"),
            Backend::Tch => cfg!(feature = "tch"),
            Backend::Wgpu => cfg!(feature = "wgpu"),
        }
    }

    /// The backends compiled in, in [`Backend::ALL`] order.
    pub fn compiled() -> impl Iterator<Item = Backend> {
        Self::ALL
            .into_iter()
            .filter(|backend| backend.is_compiled())
    }

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

/// The first compiled-in backend of [`Backend::ALL`], so that a build with only
/// `--features tch` defaults to LibTorch; Flex when none is compiled, whose
/// [`Backend::device`] then names the feature to enable.
impl Default for Backend {
    fn default() -> Self {
        Self::compiled().next().unwrap_or(Backend::Flex)
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
        for backend in Backend::ALL {
            assert_eq!(backend.name().parse::<Backend>().unwrap(), backend);
        }
        assert!(matches!(
            "cuda".parse::<Backend>(),
            Err(ModelError::UnknownBackend(_))
        ));
    }

    #[test]
    fn a_backend_left_out_names_its_feature() {
        for backend in Backend::ALL.into_iter().filter(|b| !b.is_compiled()) {
            let err = backend.device().unwrap_err();
            let feature = format!("--features {}", backend.name());
            assert!(err.to_string().contains(&feature), "{err}");
        }
    }

    #[test]
    fn the_default_is_compiled_in_and_yields_a_device() {
        let backend = Backend::default();
        assert!(backend.is_compiled(), "{backend}");
        backend.device().unwrap();
        assert_eq!(Backend::compiled().next(), Some(backend));
    }
}
