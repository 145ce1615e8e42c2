//! Phi-2: one LayerNorm feeding attention and MLP in parallel, partial rotary embedding,
//! dense biases, a final LayerNorm and an LM head with bias.

use burn::module::{Module, Param};
use burn::tensor::{Device, Int, Tensor, TensorData};
use hsd_skip::ModelShapes;
use serde::Deserialize;

use crate::ModelError;
use crate::arch::{Architecture, Block};
use crate::attention::{LayerStep, split_heads};
use crate::layers::{Activation, LayerNorm, Linear, VocabMatrix, load_shaped};
use crate::rope::{Rope, RopeAngles, RopeParameters};
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
    q: Linear,
    k: Linear,
    v: Linear,
    dense: Linear,
    fc1: Linear,
    fc2: Linear,
    #[module(skip)]
    activation: Activation,
    heads: usize,
    kv_heads: usize,
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
        let (d, inner) = (config.hidden_size, config.intermediate_size);
        let heads = config.num_attention_heads;
        let kv_heads = config.num_key_value_heads.unwrap_or(heads);
        let head_dim = d / heads;
        let rotary_dim = (config.partial_rotary_factor() * head_dim as f64) as usize;
        if rotary_dim == 0 || !rotary_dim.is_multiple_of(2) {
            return Err(unsupported(
                "partial_rotary_factor",
                format!("gives an odd or empty rotary width {rotary_dim}"),
            ));
        }
        let eps = config.layer_norm_eps;
        let mut blocks = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let p = format!("model.layers.{i}");
            let attn = format!("{p}.self_attn");
            blocks.push(PhiBlock {
                input_norm: LayerNorm::load(
                    source,
                    &format!("{p}.input_layernorm"),
                    d,
                    eps,
                    device,
                )?,
                q: Linear::torch(
                    source,
                    &format!("{attn}.q_proj"),
                    d,
                    heads * head_dim,
                    true,
                    device,
                )?,
                k: Linear::torch(
                    source,
                    &format!("{attn}.k_proj"),
                    d,
                    kv_heads * head_dim,
                    true,
                    device,
                )?,
                v: Linear::torch(
                    source,
                    &format!("{attn}.v_proj"),
                    d,
                    kv_heads * head_dim,
                    true,
                    device,
                )?,
                dense: Linear::torch(
                    source,
                    &format!("{attn}.dense"),
                    heads * head_dim,
                    d,
                    true,
                    device,
                )?,
                fc1: Linear::torch(source, &format!("{p}.mlp.fc1"), d, inner, true, device)?,
                fc2: Linear::torch(source, &format!("{p}.mlp.fc2"), inner, d, true, device)?,
                activation,
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
        let bias = if source.contains("lm_head.bias") {
            load_shaped(source, "lm_head.bias", &[config.vocab_size])?.data
        } else {
            vec![0.0; config.vocab_size]
        };
        Ok(Self {
            embed,
            blocks,
            final_norm: LayerNorm::load(source, "model.final_layernorm", d, eps, device)?,
            lm_head,
            lm_head_bias: Param::from_tensor(Tensor::from_data(
                TensorData::new(bias, [config.vocab_size]),
                device,
            )),
            rope: Rope::new(
                rotary_dim,
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
                gated_mlp: false,
            },
        })
    }
}

impl PhiBlock {
    fn kv(&self, normed: Tensor<3>, angles: &RopeAngles) -> (Tensor<4>, Tensor<4>) {
        let k = angles.apply(split_heads(self.k.forward(normed.clone()), self.kv_heads));
        (k, split_heads(self.v.forward(normed), self.kv_heads))
    }
}

fn rotary(rope: Option<&RopeAngles>) -> &RopeAngles {
    rope.expect("the layer loop passes RoPE angles to every RoPE architecture")
}

impl Block for PhiBlock {
    fn forward(
        &self,
        h: Tensor<3>,
        rope: Option<&RopeAngles>,
        step: &mut LayerStep<'_>,
    ) -> Tensor<3> {
        let angles = rotary(rope);
        let normed = self.input_norm.forward(h.clone());
        let q = angles.apply(split_heads(self.q.forward(normed.clone()), self.heads));
        let (k, v) = self.kv(normed.clone(), angles);
        let attention = self.dense.forward(step.attend(q, k, v));
        let mlp = self
            .fc2
            .forward(self.activation.apply(self.fc1.forward(normed)));
        h + attention + mlp
    }

    fn fill_kv(&self, h: Tensor<3>, rope: Option<&RopeAngles>, step: &mut LayerStep<'_>) {
        let (k, v) = self.kv(self.input_norm.forward(h), rotary(rope));
        step.write(k, v);
    }
}

impl Architecture for Phi {
    type Block = PhiBlock;

    fn blocks(&self) -> &[PhiBlock] {
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
