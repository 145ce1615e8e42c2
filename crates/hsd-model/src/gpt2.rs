//! GPT-2: learned positions, pre-LayerNorm blocks, tanh GELU, fused `c_attn`, tied head.
//! Its `Conv1D` weights are stored `[in, out]`.

use burn::module::{Module, Param};
use burn::tensor::{Device, Int, Tensor};
use hsd_skip::ModelShapes;
use serde::Deserialize;

use crate::ModelError;
use crate::arch::{Architecture, Block};
use crate::attention::{Attention, AttentionShape, LayerStep};
use crate::layers::{LayerNorm, Linear, VocabMatrix, transpose};
use crate::lora_term::LoraSite;
use crate::mlp::{Activation, Mlp};
use crate::rope::Rope;
use crate::weight_scope::WeightScope;
use crate::weights::TensorSource;

/// The fields of a Hugging Face GPT-2 `config.json` that the math depends on.
#[derive(Clone, Debug, Deserialize)]
pub struct Gpt2Config {
    pub vocab_size: usize,
    pub n_positions: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_inner: Option<usize>,
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    #[serde(default = "default_act")]
    pub activation_function: String,
}

fn default_eps() -> f64 {
    1e-5
}
fn default_act() -> String {
    "gelu_new".into()
}

impl Gpt2Config {
    /// The MLP's inner width: `n_inner`, 4 * `n_embd` when unset.
    fn inner(&self) -> usize {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }
}

#[derive(Module, Debug)]
pub(crate) struct Gpt2Block {
    ln_1: LayerNorm,
    attention: Attention,
    ln_2: LayerNorm,
    mlp: Mlp,
}

/// A `Conv1D`: `weight` (`[in, out]`) and `bias` (`[out]`) under `scope`.
fn conv1d(scope: &WeightScope<'_>, d_in: usize, d_out: usize) -> Result<Linear, ModelError> {
    let weight = scope.load("weight", &[d_in, d_out])?;
    let bias = scope.load("bias", &[d_out])?;
    Ok(
        Linear::from_in_out(&weight, Some(bias), d_in, d_out, scope.device())
            .at(LoraSite::whole(scope)),
    )
}

/// Splits the fused `c_attn` `Conv1D` under `scope` into q, k and v, so that a skipped layer
/// can project only k and v.
fn split_c_attn(scope: &WeightScope<'_>, d: usize) -> Result<[Linear; 3], ModelError> {
    let weight = scope.load("weight", &[d, 3 * d])?;
    let bias = scope.load("bias", &[3 * d])?;
    // `[3d, d]`: q, k and v are consecutive row blocks of the transposed `Conv1D` weight.
    let out_in = transpose(&weight, d, 3 * d);
    let part = |i: usize| {
        Linear::from_out_in(
            out_in[i * d * d..(i + 1) * d * d].to_vec(),
            Some(bias[i * d..(i + 1) * d].to_vec()),
            d,
            d,
            scope.device(),
        )
        .at(LoraSite::rows(scope, i * d, 3 * d))
    };
    Ok([part(0), part(1), part(2)])
}

impl Gpt2Block {
    fn load(
        scope: &WeightScope<'_>,
        config: &Gpt2Config,
        activation: Activation,
    ) -> Result<Self, ModelError> {
        let (d, inner) = (config.n_embd, config.inner());
        let eps = config.layer_norm_epsilon;
        let attn = scope.pp("attn");
        let [q, k, v] = split_c_attn(&attn.pp("c_attn"), d)?;
        let shape = AttentionShape {
            hidden: d,
            heads: config.n_head,
            kv_heads: config.n_head,
            head_dim: d / config.n_head,
        };
        Ok(Self {
            ln_1: LayerNorm::load(&scope.pp("ln_1"), d, eps)?,
            attention: Attention::new(q, k, v, conv1d(&attn.pp("c_proj"), d, d)?, shape),
            ln_2: LayerNorm::load(&scope.pp("ln_2"), d, eps)?,
            mlp: Mlp::new(
                conv1d(&scope.pp("mlp.c_fc"), d, inner)?,
                activation,
                conv1d(&scope.pp("mlp.c_proj"), inner, d)?,
            ),
        })
    }
}

impl Block for Gpt2Block {
    fn forward(&self, h: Tensor<3>, step: &mut LayerStep<'_>) -> Tensor<3> {
        let attention = self.attention.forward(self.ln_1.forward(h.clone()), step);
        let h = h + attention;
        let mlp = self.mlp.forward(self.ln_2.forward(h.clone()));
        h + mlp
    }

    fn fill_kv(&self, h: Tensor<3>, step: &mut LayerStep<'_>) {
        self.attention.fill_kv(self.ln_1.forward(h), step);
    }
    fn linears(&self) -> Vec<&Linear> {
        let mut linears = self.attention.linears().to_vec();
        linears.extend(self.mlp.linears());
        linears
    }

    fn linears_mut(&mut self) -> Vec<&mut Linear> {
        let mut linears: Vec<&mut Linear> = self.attention.linears_mut().into_iter().collect();
        linears.extend(self.mlp.linears_mut());
        linears
    }
}

#[derive(Module, Debug)]
pub(crate) struct Gpt2 {
    wte: VocabMatrix,
    wpe: Param<Tensor<2>>,
    blocks: Vec<Gpt2Block>,
    ln_f: LayerNorm,
    #[module(skip)]
    shapes: ModelShapes,
}

impl Gpt2 {
    pub(crate) fn load(
        config: &Gpt2Config,
        path: &str,
        source: &dyn TensorSource,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let activation = Activation::from_hf(&config.activation_function).ok_or_else(|| {
            ModelError::UnsupportedConfig {
                path: path.into(),
                field: "activation_function",
                reason: format!("`{}`", config.activation_function),
            }
        })?;
        let root = WeightScope::new(source, device);
        // The Hub's gpt2 checkpoints name tensors without the `transformer.` prefix.
        let prefixed = root.contains("transformer.wte.weight");
        let root = if prefixed {
            root.pp("transformer")
        } else {
            root
        };
        let d = config.n_embd;
        let mut blocks = (0..config.n_layer)
            .map(|i| Gpt2Block::load(&root.pp(format!("h.{i}")), config, activation))
            .collect::<Result<Vec<_>, _>>()?;
        if !prefixed {
            // Adapters name modules as in `GPT2LMHeadModel`, which always has `transformer.`.
            for site in blocks
                .iter_mut()
                .flat_map(Block::linears_mut)
                .filter_map(Linear::site_mut)
            {
                site.module = format!("transformer.{}", site.module);
            }
        }
        Ok(Self {
            wte: VocabMatrix::load(&root.pp("wte"), config.vocab_size, d)?,
            wpe: Param::from_tensor(root.pp("wpe").tensor("weight", [config.n_positions, d])?),
            blocks,
            ln_f: LayerNorm::load(&root.pp("ln_f"), d, config.layer_norm_epsilon)?,
            shapes: ModelShapes {
                layers: config.n_layer,
                hidden: d,
                intermediate: config.inner(),
                heads: config.n_head,
                kv_heads: config.n_head,
                head_dim: d / config.n_head,
                vocab: config.vocab_size,
                gated_mlp: false,
            },
        })
    }
}

impl Architecture for Gpt2 {
    type Block = Gpt2Block;

    fn blocks(&self) -> &[Gpt2Block] {
        &self.blocks
    }

    fn blocks_mut(&mut self) -> &mut [Gpt2Block] {
        &mut self.blocks
    }

    fn embed(&self, ids: &[u32], positions: &Tensor<2, Int>, device: &Device) -> Tensor<3> {
        let [b, t] = positions.dims();
        let d = self.shapes.hidden;
        let learned = self
            .wpe
            .val()
            .select(0, positions.clone().reshape([b * t]))
            .reshape([b, t, d]);
        self.wte.embed(ids, b, t, device) + learned
    }

    fn rope(&self) -> Option<&Rope> {
        None
    }

    fn head(&self, h: Tensor<2>) -> Tensor<2> {
        self.wte.head(self.ln_f.forward(h))
    }

    fn max_positions(&self) -> usize {
        self.wpe.val().dims()[0]
    }

    fn shapes(&self) -> ModelShapes {
        self.shapes
    }
}
