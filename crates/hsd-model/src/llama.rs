//! The Llama family (Llama, Mistral, SmolLM, Qwen2): RMSNorm, RoPE, SwiGLU, grouped-query
//! attention, optional q/k/v bias, tied or untied head.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, activation};
use hsd_skip::ModelShapes;
use serde::Deserialize;

use crate::ModelError;
use crate::arch::{Architecture, Block};
use crate::attention::{LayerStep, split_heads};
use crate::layers::{Linear, RmsNorm, VocabMatrix};
use crate::rope::{Rope, RopeAngles, RopeParameters};
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
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    post_attention_norm: RmsNorm,
    gate: Linear,
    up: Linear,
    down: Linear,
    heads: usize,
    kv_heads: usize,
}

impl LlamaBlock {
    fn kv(&self, normed: Tensor<3>, angles: &RopeAngles) -> (Tensor<4>, Tensor<4>) {
        let k = angles.apply(split_heads(self.k.forward(normed.clone()), self.kv_heads));
        (k, split_heads(self.v.forward(normed), self.kv_heads))
    }
}

/// The rotation the Llama family always has; a caller without one is a wiring bug.
fn rotary(rope: Option<&RopeAngles>) -> &RopeAngles {
    rope.expect("the layer loop passes RoPE angles to every RoPE architecture")
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
        let (d, inner) = (config.hidden_size, config.intermediate_size);
        let (heads, kv_heads, head_dim) = (
            config.num_attention_heads,
            config.kv_heads(),
            config.head_dim(),
        );
        let bias = config.qkv_bias();
        let mut blocks = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let p = format!("model.layers.{i}");
            let attn = format!("{p}.self_attn");
            blocks.push(LlamaBlock {
                input_norm: RmsNorm::load(
                    source,
                    &format!("{p}.input_layernorm.weight"),
                    d,
                    config.rms_norm_eps,
                    device,
                )?,
                q: Linear::torch(
                    source,
                    &format!("{attn}.q_proj"),
                    d,
                    heads * head_dim,
                    bias,
                    device,
                )?,
                k: Linear::torch(
                    source,
                    &format!("{attn}.k_proj"),
                    d,
                    kv_heads * head_dim,
                    bias,
                    device,
                )?,
                v: Linear::torch(
                    source,
                    &format!("{attn}.v_proj"),
                    d,
                    kv_heads * head_dim,
                    bias,
                    device,
                )?,
                o: Linear::torch(
                    source,
                    &format!("{attn}.o_proj"),
                    heads * head_dim,
                    d,
                    config.attention_bias == Some(true),
                    device,
                )?,
                post_attention_norm: RmsNorm::load(
                    source,
                    &format!("{p}.post_attention_layernorm.weight"),
                    d,
                    config.rms_norm_eps,
                    device,
                )?,
                gate: Linear::torch(
                    source,
                    &format!("{p}.mlp.gate_proj"),
                    d,
                    inner,
                    false,
                    device,
                )?,
                up: Linear::torch(source, &format!("{p}.mlp.up_proj"), d, inner, false, device)?,
                down: Linear::torch(
                    source,
                    &format!("{p}.mlp.down_proj"),
                    inner,
                    d,
                    false,
                    device,
                )?,
                heads,
                kv_heads,
            });
        }
        let (embed, lm_head) = VocabMatrix::load_embedding_and_head(
            source,
            config.tie_word_embeddings,
            config.vocab_size,
            d,
            device,
        )?;
        Ok(Self {
            embed,
            blocks,
            norm: RmsNorm::load(source, "model.norm.weight", d, config.rms_norm_eps, device)?,
            lm_head,
            rope: Rope::new(
                head_dim,
                config.rope_theta(),
                config.max_position_embeddings,
                device,
            ),
            shapes: ModelShapes {
                layers: config.num_hidden_layers,
                hidden: d,
                intermediate: inner,
                heads,
                kv_heads,
                head_dim,
                vocab: config.vocab_size,
                gated_mlp: true,
            },
        })
    }
}

impl Block for LlamaBlock {
    fn forward(
        &self,
        h: Tensor<3>,
        rope: Option<&RopeAngles>,
        step: &mut LayerStep<'_>,
    ) -> Tensor<3> {
        let angles = rotary(rope);
        let normed = self.input_norm.forward(h.clone());
        let q = angles.apply(split_heads(self.q.forward(normed.clone()), self.heads));
        let (k, v) = self.kv(normed, angles);
        let h = h + self.o.forward(step.attend(q, k, v));
        let normed = self.post_attention_norm.forward(h.clone());
        h + self
            .down
            .forward(activation::silu(self.gate.forward(normed.clone())) * self.up.forward(normed))
    }

    fn fill_kv(&self, h: Tensor<3>, rope: Option<&RopeAngles>, step: &mut LayerStep<'_>) {
        let (k, v) = self.kv(self.input_norm.forward(h), rotary(rope));
        step.write(k, v);
    }
}

impl Architecture for Llama {
    type Block = LlamaBlock;

    fn blocks(&self) -> &[LlamaBlock] {
        &self.blocks
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
