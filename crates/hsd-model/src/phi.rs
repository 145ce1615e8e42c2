//! Phi-2: one LayerNorm feeding attention and MLP in parallel, partial rotary embedding,
//! dense biases, a final LayerNorm and an LM head with bias.

use burn::module::{Module, Param};
use burn::tensor::{Device, Int, Tensor, TensorData};
use hsd_skip::ModelShapes;
use serde::Deserialize;

use crate::ModelError;
use crate::arch::{Architecture, Block};
use crate::attention::{Attention, AttentionShape, LayerStep};
use crate::layers::{LayerNorm, Linear, VocabMatrix};
use crate::mlp::{Activation, Mlp};
use crate::rope::{Rope, RopeParameters};
use crate::weight_scope::WeightScope;
use crate::weights::TensorSource;

/// The fields of a Hugging Face Phi `config.json` that the math depends on.
#[derive(Clone, Debug, Deserialize)]
pub struct PhiConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: Option<usize>,
    pub partial_rotary_factor: Option<f64>,
    pub rope_theta: Option<f64>,
    pub rope_parameters: Option<RopeParameters>,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default)]
    pub qk_layernorm: bool,
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub tie_word_embeddings: bool,
}

fn default_eps() -> f64 {
    1e-5
}
fn default_act() -> String {
    "gelu_new".into()
}
fn default_max_positions() -> usize {
    2048
}

impl PhiConfig {
    pub fn rope_theta(&self) -> f64 {
        RopeParameters::theta(self.rope_parameters.as_ref(), self.rope_theta)
    }

    pub fn partial_rotary_factor(&self) -> f64 {
        self.rope_parameters
            .as_ref()
            .and_then(|p| p.partial_rotary_factor)
            .or(self.partial_rotary_factor)
            .unwrap_or(0.5)
    }
}

#[derive(Module, Debug)]
pub(crate) struct PhiBlock {
    input_norm: LayerNorm,
    attention: Attention,
    mlp: Mlp,
}

impl PhiBlock {
    fn load(
        scope: &WeightScope<'_>,
        config: &PhiConfig,
        shape: AttentionShape,
        activation: Activation,
    ) -> Result<Self, ModelError> {
        let (d, inner) = (config.hidden_size, config.intermediate_size);
        let mlp = scope.pp("mlp");
        Ok(Self {
            input_norm: LayerNorm::load(&scope.pp("input_layernorm"), d, config.layer_norm_eps)?,
            attention: Attention::load(&scope.pp("self_attn"), "dense", shape, true, true)?,
            mlp: Mlp::new(
                Linear::load(&mlp.pp("fc1"), d, inner, true)?,
                activation,
                Linear::load(&mlp.pp("fc2"), inner, d, true)?,
            ),
        })
    }
}

impl Block for PhiBlock {
    /// Attention and MLP read the same normed input and add to the residual together.
    fn forward(&self, h: Tensor<3>, step: &mut LayerStep<'_>) -> Tensor<3> {
        let normed = self.input_norm.forward(h.clone());
        let attention = self.attention.forward(normed.clone(), step);
        let mlp = self.mlp.forward(normed);
        h + attention + mlp
    }

    fn fill_kv(&self, h: Tensor<3>, step: &mut LayerStep<'_>) {
        self.attention.fill_kv(self.input_norm.forward(h), step);
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
pub(crate) struct Phi {
    embed: VocabMatrix,
    blocks: Vec<PhiBlock>,
    final_norm: LayerNorm,
    lm_head: Option<VocabMatrix>,
    lm_head_bias: Param<Tensor<1>>,
    rope: Rope,
    #[module(skip)]
    shapes: ModelShapes,
}

impl Phi {
    pub(crate) fn load(
        config: &PhiConfig,
        path: &str,
        source: &dyn TensorSource,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let unsupported = |field, reason: String| ModelError::UnsupportedConfig {
            path: path.to_string(),
            field,
            reason,
        };
        if config.qk_layernorm {
            return Err(unsupported(
                "qk_layernorm",
                "true is not implemented".into(),
            ));
        }
        let activation = Activation::from_hf(&config.hidden_act)
            .ok_or_else(|| unsupported("hidden_act", format!("`{}`", config.hidden_act)))?;
        let d = config.hidden_size;
        let heads = config.num_attention_heads;
        let shape = AttentionShape {
            hidden: d,
            heads,
            kv_heads: config.num_key_value_heads.unwrap_or(heads),
            head_dim: d / heads,
        };
        let rotary_dim = (config.partial_rotary_factor() * shape.head_dim as f64) as usize;
        if rotary_dim == 0 || !rotary_dim.is_multiple_of(2) {
            return Err(unsupported(
                "partial_rotary_factor",
                format!("gives an odd or empty rotary width {rotary_dim}"),
            ));
        }
        let root = WeightScope::new(source, device);
        let blocks = (0..config.num_hidden_layers)
            .map(|i| {
                let scope = root.pp(format!("model.layers.{i}"));
                PhiBlock::load(&scope, config, shape, activation)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (embed, lm_head) = VocabMatrix::load_embedding_and_head(
            &root,
            config.tie_word_embeddings,
            config.vocab_size,
            d,
        )?;
        let head = root.pp("lm_head");
        let lm_head_bias = if head.contains("bias") {
            head.tensor("bias", [config.vocab_size])?
        } else {
            Tensor::from_data(
                TensorData::new(vec![0.0f32; config.vocab_size], [config.vocab_size]),
                device,
            )
        };
        Ok(Self {
            embed,
            blocks,
            final_norm: LayerNorm::load(
                &root.pp("model.final_layernorm"),
                d,
                config.layer_norm_eps,
            )?,
            lm_head,
            lm_head_bias: Param::from_tensor(lm_head_bias),
            rope: Rope::new(
                rotary_dim,
                config.rope_theta(),
                config.max_position_embeddings,
                device,
            ),
            shapes: ModelShapes {
                layers: config.num_hidden_layers,
                hidden: d,
                intermediate: config.intermediate_size,
                heads,
                kv_heads: shape.kv_heads,
                head_dim: shape.head_dim,
                vocab: config.vocab_size,
                gated_mlp: false,
            },
        })
    }
}

impl Architecture for Phi {
    type Block = PhiBlock;

    fn blocks(&self) -> &[PhiBlock] {
        &self.blocks
    }

    fn blocks_mut(&mut self) -> &mut [PhiBlock] {
        &mut self.blocks
    }

    fn embed(&self, ids: &[u32], positions: &Tensor<2, Int>, device: &Device) -> Tensor<3> {
        let [b, t] = positions.dims();
        self.embed.embed(ids, b, t, device)
    }

    fn rope(&self) -> Option<&Rope> {
        Some(&self.rope)
    }

    fn head(&self, h: Tensor<2>) -> Tensor<2> {
        let logits = self
            .lm_head
            .as_ref()
            .unwrap_or(&self.embed)
            .head(self.final_norm.forward(h));
        logits + self.lm_head_bias.val().unsqueeze_dim(0)
    }

    fn max_positions(&self) -> usize {
        self.rope.max_positions()
    }

    fn shapes(&self) -> ModelShapes {
        self.shapes
    }
}
