//! GPT-2: learned positions, pre-LayerNorm blocks, tanh GELU, fused `c_attn`, tied head.
//! Its `Conv1D` weights are stored `[in, out]`.

use burn::module::{Module, Param};
use burn::tensor::{Device, Int, Tensor};
use hsd_skip::ModelShapes;
use serde::Deserialize;

use crate::ModelError;
use crate::arch::{Architecture, Block};
use crate::attention::{LayerStep, split_heads};
use crate::layers::{Activation, LayerNorm, Linear, VocabMatrix, load_shaped, transpose};
use crate::rope::{Rope, RopeAngles};
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

#[derive(Module, Debug)]
pub(crate) struct Gpt2Block {
    ln_1: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    attn_proj: Linear,
    ln_2: LayerNorm,
    fc: Linear,
    mlp_proj: Linear,
    #[module(skip)]
    activation: Activation,
    heads: usize,
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

/// A `Conv1D` (`[in, out]` weight, `[out]` bias).
fn conv1d(
    source: &dyn TensorSource,
    prefix: &str,
    d_in: usize,
    d_out: usize,
    device: &Device,
) -> Result<Linear, ModelError> {
    let weight = load_shaped(source, &format!("{prefix}.weight"), &[d_in, d_out])?;
    let bias = load_shaped(source, &format!("{prefix}.bias"), &[d_out])?;
    Ok(Linear::from_in_out(
        &weight.data,
        Some(bias.data),
        d_in,
        d_out,
        device,
    ))
}

/// Splits the fused `c_attn` into q, k and v so a skipped layer can project only k and v.
fn split_c_attn(
    source: &dyn TensorSource,
    prefix: &str,
    d: usize,
    device: &Device,
) -> Result<[Linear; 3], ModelError> {
    let weight = load_shaped(source, &format!("{prefix}.weight"), &[d, 3 * d])?;
    let bias = load_shaped(source, &format!("{prefix}.bias"), &[3 * d])?;
    // `[3d, d]`: q, k and v are consecutive row blocks of the transposed `Conv1D` weight.
    let out_in = transpose(&weight.data, d, 3 * d);
    let part = |i: usize| {
        Linear::from_out_in(
            out_in[i * d * d..(i + 1) * d * d].to_vec(),
            Some(bias.data[i * d..(i + 1) * d].to_vec()),
            d,
            d,
            device,
        )
    };
    Ok([part(0), part(1), part(2)])
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
        // The Hub's gpt2 checkpoints name tensors without the `transformer.` prefix.
        let root = if source.contains("transformer.wte.weight") {
            "transformer."
        } else {
            ""
        };
        let (d, inner) = (config.n_embd, config.n_inner.unwrap_or(4 * config.n_embd));
        let eps = config.layer_norm_epsilon;
        let mut blocks = Vec::with_capacity(config.n_layer);
        for i in 0..config.n_layer {
            let p = format!("{root}h.{i}");
            let [q, k, v] = split_c_attn(source, &format!("{p}.attn.c_attn"), d, device)?;
            blocks.push(Gpt2Block {
                ln_1: LayerNorm::load(source, &format!("{p}.ln_1"), d, eps, device)?,
                q,
                k,
                v,
                attn_proj: conv1d(source, &format!("{p}.attn.c_proj"), d, d, device)?,
                ln_2: LayerNorm::load(source, &format!("{p}.ln_2"), d, eps, device)?,
                fc: conv1d(source, &format!("{p}.mlp.c_fc"), d, inner, device)?,
                mlp_proj: conv1d(source, &format!("{p}.mlp.c_proj"), inner, d, device)?,
                activation,
                heads: config.n_head,
            });
        }
        let wpe = load_shaped(
            source,
            &format!("{root}wpe.weight"),
            &[config.n_positions, d],
        )?;
        Ok(Self {
            wte: VocabMatrix::load(
                source,
                &format!("{root}wte.weight"),
                config.vocab_size,
                d,
                device,
            )?,
            wpe: Param::from_tensor(Tensor::from_data(
                burn::tensor::TensorData::new(wpe.data, [config.n_positions, d]),
                device,
            )),
            blocks,
            ln_f: LayerNorm::load(source, &format!("{root}ln_f"), d, eps, device)?,
            shapes: ModelShapes {
                layers: config.n_layer,
                hidden: d,
                intermediate: inner,
                heads: config.n_head,
                kv_heads: config.n_head,
                head_dim: d / config.n_head,
                vocab: config.vocab_size,
                gated_mlp: false,
            },
        })
    }
}

impl Gpt2Block {
    fn kv(&self, normed: Tensor<3>) -> (Tensor<4>, Tensor<4>) {
        (
            split_heads(self.k.forward(normed.clone()), self.heads),
            split_heads(self.v.forward(normed), self.heads),
        )
    }
}

impl Block for Gpt2Block {
    fn forward(
        &self,
        h: Tensor<3>,
        _rope: Option<&RopeAngles>,
        step: &mut LayerStep<'_>,
    ) -> Tensor<3> {
        let normed = self.ln_1.forward(h.clone());
        let q = split_heads(self.q.forward(normed.clone()), self.heads);
        let (k, v) = self.kv(normed);
        let h = h + self.attn_proj.forward(step.attend(q, k, v));
        let normed = self.ln_2.forward(h.clone());
        h + self
            .mlp_proj
            .forward(self.activation.apply(self.fc.forward(normed)))
    }

    fn fill_kv(&self, h: Tensor<3>, _rope: Option<&RopeAngles>, step: &mut LayerStep<'_>) {
        let (k, v) = self.kv(self.ln_1.forward(h));
        step.write(k, v);
    }
}

impl Architecture for Gpt2 {
    type Block = Gpt2Block;

    fn blocks(&self) -> &[Gpt2Block] {
        &self.blocks
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
