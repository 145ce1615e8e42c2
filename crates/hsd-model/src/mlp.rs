//! The feed-forward halves of the blocks: a two-matrix MLP with a GELU (GPT-2, Phi) and the
//! gated SwiGLU MLP of the Llama family.

use burn::module::Module;
use burn::tensor::{Tensor, activation};

use crate::ModelError;
use crate::kernels::silu_product_lanes;
use crate::layers::Linear;
use crate::weight_scope::WeightScope;

/// `down(act(up(x)))`.
#[derive(Module, Debug)]
pub(crate) struct Mlp {
    up: Linear,
    down: Linear,
    #[module(skip)]
    activation: Activation,
}

impl Mlp {
    pub(crate) fn new(up: Linear, activation: Activation, down: Linear) -> Self {
        Self {
            up,
            down,
            activation,
        }
    }

    pub(crate) fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.down.forward(self.activation.apply(self.up.forward(x)))
    }

    pub(crate) fn linears(&self) -> [&Linear; 2] {
        [&self.up, &self.down]
    }

    pub(crate) fn linears_mut(&mut self) -> [&mut Linear; 2] {
        [&mut self.up, &mut self.down]
    }
}

/// SwiGLU: `down(silu(gate(x)) * up(x))`, without biases.
#[derive(Module, Debug)]
pub(crate) struct GatedMlp {
    gate: Linear,
    up: Linear,
    down: Linear,
}

impl GatedMlp {
    /// Hugging Face's `gate_proj`, `up_proj` and `down_proj` under `scope`.
    pub(crate) fn load(
        scope: &WeightScope<'_>,
        hidden: usize,
        inner: usize,
    ) -> Result<Self, ModelError> {
        Ok(Self {
            gate: Linear::load(&scope.pp("gate_proj"), hidden, inner, false)?,
            up: Linear::load(&scope.pp("up_proj"), hidden, inner, false)?,
            down: Linear::load(&scope.pp("down_proj"), inner, hidden, false)?,
        })
    }

    pub(crate) fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let gate = self.gate.forward(x.clone());
        let up = self.up.forward(x);
        // A decoder on the file's blocks differs from f32 in its sums already; there the
        // activation's `exp` runs over SIMD lanes too, while f32 keeps burn's (libm's).
        let hidden = if self.gate.is_native() {
            silu_product_lanes(gate, up)
        } else {
            activation::silu(gate) * up
        };
        self.down.forward(hidden)
    }

    pub(crate) fn linears(&self) -> [&Linear; 3] {
        [&self.gate, &self.up, &self.down]
    }

    pub(crate) fn linears_mut(&mut self) -> [&mut Linear; 3] {
        [&mut self.gate, &mut self.up, &mut self.down]
    }
}

/// An MLP nonlinearity, by its Hugging Face `hidden_act` / `activation_function` name.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Activation {
    /// `gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`.
    GeluTanh,
    /// `gelu`: the exact erf form.
    Gelu,
}

impl Activation {
    pub(crate) fn from_hf(name: &str) -> Option<Self> {
        match name {
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Some(Self::GeluTanh),
            "gelu" => Some(Self::Gelu),
            _ => None,
        }
    }

    pub(crate) fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Self::GeluTanh => activation::gelu_approximate(x),
            Self::Gelu => activation::gelu(x),
        }
    }
}
