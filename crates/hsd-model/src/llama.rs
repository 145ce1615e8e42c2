//! The Llama family (Llama, Mistral, SmolLM, Qwen2): RMSNorm, RoPE, SwiGLU, grouped-query
//! attention, optional q/k/v bias, tied or untied head.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use hsd_skip::ModelShapes;
use serde::Deserialize;

use crate::ModelError;
use crate::arch::{Architecture, Block};
use crate::attention::{Attention, AttentionShape, LayerStep};
use crate::layers::{Linear, RmsNorm, VocabMatrix};
use crate::mlp::GatedMlp;
use crate::rope::{Rope, RopeParameters};
use crate::weight_scope::WeightScope;
use crate::weights::TensorSource;

/// The fields of a Hugging Face Llama/Qwen2 `config.json` that the math depends on.
#[derive(Clone, Debug, Deserialize)]
pub struct LlamaConfig {
    #[serde(default)]
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: Option<usize>,
    pub head_dim: Option<usize>,
    #[serde(default = "default_rms_eps")]
    pub rms_norm_eps: f64,
    pub rope_theta: Option<f64>,
    pub rope_parameters: Option<RopeParameters>,
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Llama's switch for q/k/v/o biases; Qwen2 always has q/k/v biases and no such field.
    pub attention_bias: Option<bool>,
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
    #[serde(default = "default_act")]
    pub hidden_act: String,
}

fn default_rms_eps() -> f64 {
    1e-6
}
fn default_max_positions() -> usize {
    2048
}
fn default_act() -> String {
    "silu".into()
}

impl LlamaConfig {
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads)
    }

    pub fn rope_theta(&self) -> f64 {
        RopeParameters::theta(self.rope_parameters.as_ref(), self.rope_theta)
    }

    fn qkv_bias(&self) -> bool {
        self.attention_bias.unwrap_or(self.model_type == "qwen2")
    }

    fn check(&self, path: &str) -> Result<(), ModelError> {
        let unsupported = |field, reason: String| {
            Err(ModelError::UnsupportedConfig {
                path: path.to_string(),
                field,
                reason,
            })
        };
        if let Some(scaling) = self.rope_scaling.as_ref().filter(|s| !s.is_null()) {
            let kind = scaling
                .get("rope_type")
                .or_else(|| scaling.get("type"))
                .and_then(|t| t.as_str());
            if kind != Some("default") {
                return unsupported("rope_scaling", format!("{scaling} is not implemented"));
            }
        }
        if let Some(kind) = self
            .rope_parameters
            .as_ref()
            .and_then(|p| p.rope_type.as_deref())
            .filter(|&k| k != "default")
        {
            return unsupported(
                "rope_parameters",
                format!("rope_type `{kind}` is not implemented"),
            );
        }
        if self.hidden_act != "silu" {
            return unsupported("hidden_act", format!("`{}` (only silu)", self.hidden_act));
        }
        if !self.num_attention_heads.is_multiple_of(self.kv_heads()) {
            return unsupported(
                "num_key_value_heads",
                format!(
                    "{} does not divide {} heads",
                    self.kv_heads(),
                    self.num_attention_heads
                ),
            );
        }
        Ok(())
    }
}

#[derive(Module, Debug)]
pub(crate) struct LlamaBlock {
    input_norm: RmsNorm,
    attention: Attention,
    post_attention_norm: RmsNorm,
    mlp: GatedMlp,
}

impl LlamaBlock {
    fn load(
        scope: &WeightScope<'_>,
        config: &LlamaConfig,
        shape: AttentionShape,
    ) -> Result<Self, ModelError> {
        let (d, eps) = (config.hidden_size, config.rms_norm_eps);
        Ok(Self {
            input_norm: RmsNorm::load(&scope.pp("input_layernorm"), d, eps)?,
            attention: Attention::load(
                &scope.pp("self_attn"),
                "o_proj",
                shape,
                config.qkv_bias(),
                config.attention_bias == Some(true),
            )?,
            post_attention_norm: RmsNorm::load(&scope.pp("post_attention_layernorm"), d, eps)?,
            mlp: GatedMlp::load(&scope.pp("mlp"), d, config.intermediate_size)?,
        })
    }
}

impl Block for LlamaBlock {
    fn forward(&self, h: Tensor<3>, step: &mut LayerStep<'_>) -> Tensor<3> {
        let attention = self
            .attention
            .forward(self.input_norm.forward(h.clone()), step);
        let h = h + attention;
        let mlp = self
            .mlp
            .forward(self.post_attention_norm.forward(h.clone()));
        h + mlp
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
pub(crate) struct Llama {
    embed: VocabMatrix,
    blocks: Vec<LlamaBlock>,
    norm: RmsNorm,
    /// `None` when tied to the embedding.
    lm_head: Option<VocabMatrix>,
    rope: Rope,
    #[module(skip)]
    shapes: ModelShapes,
}

impl Llama {
    pub(crate) fn load(
        config: &LlamaConfig,
        path: &str,
        source: &dyn TensorSource,
        device: &Device,
    ) -> Result<Self, ModelError> {
        config.check(path)?;
        let root = WeightScope::new(source, device);
        let d = config.hidden_size;
        let shape = AttentionShape {
            hidden: d,
            heads: config.num_attention_heads,
            kv_heads: config.kv_heads(),
            head_dim: config.head_dim(),
        };
        let blocks = (0..config.num_hidden_layers)
            .map(|i| LlamaBlock::load(&root.pp(format!("model.layers.{i}")), config, shape))
            .collect::<Result<Vec<_>, _>>()?;
        let (embed, lm_head) = VocabMatrix::load_embedding_and_head(
            &root,
            config.tie_word_embeddings,
            config.vocab_size,
            d,
        )?;
        Ok(Self {
            embed,
            blocks,
            norm: RmsNorm::load(&root.pp("model.norm"), d, config.rms_norm_eps)?,
            lm_head,
            rope: Rope::new(
                shape.head_dim,
                config.rope_theta(),
                config.max_position_embeddings,
                device,
            ),
            shapes: ModelShapes {
                layers: config.num_hidden_layers,
                hidden: d,
                intermediate: config.intermediate_size,
                heads: shape.heads,
                kv_heads: shape.kv_heads,
                head_dim: shape.head_dim,
                vocab: config.vocab_size,
                gated_mlp: true,
            },
        })
    }
}

impl Architecture for Llama {
    type Block = LlamaBlock;

    fn blocks(&self) -> &[LlamaBlock] {
        &self.blocks
    }

    fn blocks_mut(&mut self) -> &mut [LlamaBlock] {
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
        let h = self.norm.forward(h);
        self.lm_head.as_ref().unwrap_or(&self.embed).head(h)
    }

    fn max_positions(&self) -> usize {
        self.rope.max_positions()
    }

    fn shapes(&self) -> ModelShapes {
        self.shapes
    }
}
