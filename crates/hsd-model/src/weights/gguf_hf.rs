//! A GGUF file served as a Hugging Face checkpoint: llama.cpp's tensor names mapped back to
//! PyTorch state-dict names with the q/k projection rows un-permuted, a `config.json` derived
//! from the metadata, and the tokenizer and chat template the metadata describes.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde_json::{Value, json};

use super::gguf_file::{GgmlType, GgufFile, GgufTensorInfo, MetadataValue};
use super::{BlockMatrix, HostTensor, TensorSource, WeightError};
use crate::tokenizer::{ByteLevelBpe, TextTokenizer};

/// Architectures whose tensors follow llama.cpp's llama naming and RoPE row permutation.
const LLAMA_ARCHITECTURES: &[&str] = &["llama"];

/// A GGUF file whose tensors are served under Hugging Face names.
///
/// For llama-architecture files that is `token_embd.weight` as `model.embed_tokens.weight`, ...,
/// with q/k projection rows restored to HF order; tensors outside that map
/// (`rope_freqs.weight`) and all tensors of other architectures keep their GGUF names.
pub struct GgufModel {
    file: GgufFile,
    /// The Hugging Face name of each tensor of the file's directory, in file order.
    hf_names: Vec<String>,
    by_hf_name: HashMap<String, usize>,
}

impl fmt::Debug for GgufModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GgufModel")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl GgufModel {
    /// Memory-maps and parses `path`.
    pub fn open(path: &Path) -> Result<Self, WeightError> {
        Self::new(GgufFile::open(path)?)
    }

    /// Parses a GGUF image held in memory; `label` stands for the path in errors.
    pub fn from_bytes(bytes: Vec<u8>, label: &str) -> Result<Self, WeightError> {
        Self::new(GgufFile::from_bytes(bytes, label)?)
    }

    /// Names the tensors of `file`; two tensors may not map to one name.
    fn new(file: GgufFile) -> Result<Self, WeightError> {
        let llama_names = LLAMA_ARCHITECTURES.contains(&file.architecture());
        let infos = file.tensor_infos();
        let mut hf_names = Vec::with_capacity(infos.len());
        let mut by_hf_name = HashMap::with_capacity(infos.len());
        for info in infos {
            let hf_name = if llama_names {
                llama_hf_name(&info.name).unwrap_or_else(|| info.name.clone())
            } else {
                info.name.clone()
            };
            if by_hf_name.insert(hf_name.clone(), hf_names.len()).is_some() {
                return Err(
                    file.tensor_error(info, format!("maps to {hf_name:?}, as another tensor does"))
                );
            }
            hf_names.push(hf_name);
        }
        Ok(Self {
            file,
            hf_names,
            by_hf_name,
        })
    }

    /// The file as GGUF states it: version, metadata, tensor directory.
    pub fn file(&self) -> &GgufFile {
        &self.file
    }

    /// The directory entry of the tensor served under Hugging Face name `hf_name`.
    pub fn tensor_info(&self, hf_name: &str) -> Option<&GgufTensorInfo> {
        self.by_hf_name
            .get(hf_name)
            .and_then(|&i| self.file.tensor_infos().get(i))
    }

    /// `tokenizer.chat_template`, when the file carries one; `ChatTemplate::for_tokenizer`
    /// compiles it with [`Self::tokenizer`].
    pub fn chat_template(&self) -> Option<&str> {
        self.file
            .metadata_value("tokenizer.chat_template")
            .and_then(MetadataValue::as_str)
    }

    /// An HF-style `config.json` derived from the metadata, as transformers derives it when it
    /// loads a GGUF. Only llama-architecture files are described.
    pub fn config_json(&self) -> Result<Value, WeightError> {
        let arch = self.file.architecture();
        if !LLAMA_ARCHITECTURES.contains(&arch) {
            return Err(self.file.metadata_error(
                "general.architecture",
                format!("a config is derived for {LLAMA_ARCHITECTURES:?} only, not {arch:?}"),
            ));
        }
        let key = |name: &str| format!("{arch}.{name}");
        let hidden = self.file.required_u64(&key("embedding_length"))?;
        let heads = self.file.required_u64(&key("attention.head_count"))?;
        if heads == 0 {
            return Err(self
                .file
                .metadata_error(&key("attention.head_count"), "is 0"));
        }
        let kv_heads = self
            .file
            .optional_u64(&key("attention.head_count_kv"))?
            .unwrap_or(heads);
        let head_dim = self
            .file
            .optional_u64(&key("attention.key_length"))?
            .unwrap_or(hidden / heads);
        let rms_norm_eps = self
            .file
            .optional_f64(&key("attention.layer_norm_rms_epsilon"))?
            .ok_or_else(|| {
                self.file
                    .metadata_error(&key("attention.layer_norm_rms_epsilon"), "missing")
            })?;
        // llama.cpp's default, used when a converter left the base out
        let rope_theta = self
            .file
            .optional_f64(&key("rope.freq_base"))?
            .unwrap_or(10_000.0);
        let vocab_size = match self.file.optional_u64(&key("vocab_size"))? {
            Some(v) => v,
            None => match self.file.string_array("tokenizer.ggml.tokens")? {
                Some(tokens) => tokens.len() as u64,
                None => self
                    .tensor_info("model.embed_tokens.weight")
                    .and_then(|t| t.ggml_dims.get(1).copied())
                    .ok_or_else(|| {
                        self.file.metadata_error(
                            &key("vocab_size"),
                            "missing, and no vocabulary or embedding to count",
                        )
                    })?,
            },
        };
        Ok(json!({
            "model_type": "llama",
            "architectures": ["LlamaForCausalLM"],
            "hidden_size": hidden,
            "intermediate_size": self.file.required_u64(&key("feed_forward_length"))?,
            "num_hidden_layers": self.file.required_u64(&key("block_count"))?,
            "num_attention_heads": heads,
            "num_key_value_heads": kv_heads,
            "head_dim": head_dim,
            "hidden_act": "silu",
            "rms_norm_eps": rms_norm_eps,
            "rope_theta": rope_theta,
            "vocab_size": vocab_size,
            "max_position_embeddings": self.file.required_u64(&key("context_length"))?,
            // llama.cpp writes the output projection only when it is not the embedding matrix
            "tie_word_embeddings": !self.contains("lm_head.weight"),
            "bos_token_id": self.file.optional_u64("tokenizer.ggml.bos_token_id")?,
            "eos_token_id": self.file.optional_u64("tokenizer.ggml.eos_token_id")?,
            "pad_token_id": self.file.optional_u64("tokenizer.ggml.padding_token_id")?,
        }))
    }

    /// The tokenizer the metadata describes. Only byte-level BPE (`tokenizer.ggml.model` =
    /// "gpt2") is built.
    pub fn tokenizer(&self) -> Result<TextTokenizer, WeightError> {
        let model_key = "tokenizer.ggml.model";
        let model = self
            .file
            .metadata_value(model_key)
            .and_then(MetadataValue::as_str)
            .ok_or_else(|| {
                self.file
                    .metadata_error(model_key, "missing or not a string")
            })?;
        if model != "gpt2" {
            return Err(self.file.metadata_error(
                model_key,
                format!("only byte-level BPE (\"gpt2\") tokenizers are built, not {model:?}"),
            ));
        }
        let tokens = self
            .file
            .string_array("tokenizer.ggml.tokens")?
            .ok_or_else(|| self.file.metadata_error("tokenizer.ggml.tokens", "missing"))?;
        let merges = self
            .file
            .string_array("tokenizer.ggml.merges")?
            .ok_or_else(|| self.file.metadata_error("tokenizer.ggml.merges", "missing"))?;
        let type_key = "tokenizer.ggml.token_type";
        let token_types = match self.file.metadata_value(type_key) {
            None => Vec::new(),
            Some(value) => value
                .as_array()
                .and_then(|items| {
                    items
                        .iter()
                        .map(MetadataValue::as_i64)
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| {
                    self.file
                        .metadata_error(type_key, "expected an array of integers")
                })?,
        };
        let eos_ids = ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"]
            .iter()
            .filter_map(|key| self.file.optional_u32(key).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        let spec = ByteLevelBpe {
            tokens,
            token_types,
            merges,
            pre_tokenizer: self
                .file
                .metadata_value("tokenizer.ggml.pre")
                .and_then(MetadataValue::as_str)
                .map(str::to_owned),
            bos_id: self.file.optional_u32("tokenizer.ggml.bos_token_id")?,
            eos_ids,
            pad_id: self.file.optional_u32("tokenizer.ggml.padding_token_id")?,
        };
        TextTokenizer::from_byte_level_bpe(spec).map_err(|source| WeightError::Tokenizer {
            path: self.file.path().to_owned(),
            source,
        })
    }

    /// Head count that llama.cpp's converter permuted the rows of `hf_name` with, if it did.
    fn rope_permutation_heads(&self, hf_name: &str) -> Result<Option<u64>, WeightError> {
        if !LLAMA_ARCHITECTURES.contains(&self.file.architecture()) {
            return Ok(None);
        }
        let arch = self.file.architecture();
        let heads_key = format!("{arch}.attention.head_count");
        if hf_name.contains(".self_attn.q_proj.") {
            self.file.required_u64(&heads_key).map(Some)
        } else if hf_name.contains(".self_attn.k_proj.") {
            let kv_key = format!("{arch}.attention.head_count_kv");
            match self.file.optional_u64(&kv_key)? {
                Some(kv_heads) => Ok(Some(kv_heads)),
                None => self.file.required_u64(&heads_key).map(Some),
            }
        } else {
            Ok(None)
        }
    }
}

impl TensorSource for GgufModel {
    fn names(&self) -> Vec<String> {
        self.hf_names.clone()
    }

    fn contains(&self, name: &str) -> bool {
        self.by_hf_name.contains_key(name)
    }

    fn load(&self, name: &str) -> Result<HostTensor, WeightError> {
        let info = self.directory_entry(name)?;
        let mut data = self.file.read(info)?;
        let shape = info.shape();
        if let Some(head_dim) = self.rope_head_dim(name, info)?
            && !data.is_empty()
        {
            let row_len = data.len() / shape[0];
            data = (0..shape[0])
                .flat_map(|to| {
                    let from = rope_source_row(to, head_dim);
                    data[from * row_len..(from + 1) * row_len].iter().copied()
                })
                .collect();
        }
        Ok(HostTensor {
            name: name.into(),
            shape,
            data,
        })
    }

    fn load_blocks(&self, name: &str) -> Result<Option<BlockMatrix>, WeightError> {
        let info = self.directory_entry(name)?;
        let shape = info.shape();
        if info.ggml_type == GgmlType::F32 || shape.len() != 2 {
            return Ok(None);
        }
        let matrix = BlockMatrix::new(
            info.ggml_type,
            shape[0],
            shape[1],
            self.file.raw(info)?.to_vec(),
        )
        .map_err(|reason| self.file.tensor_error(info, reason))?;
        Ok(Some(match self.rope_head_dim(name, info)? {
            Some(head_dim) => matrix.with_rows_from(|to| rope_source_row(to, head_dim)),
            None => matrix,
        }))
    }
}

impl GgufModel {
    fn directory_entry(&self, name: &str) -> Result<&GgufTensorInfo, WeightError> {
        self.tensor_info(name)
            .ok_or_else(|| WeightError::MissingTensor {
                path: self.file.path().to_owned(),
                tensor: name.into(),
            })
    }

    /// The head size of the RoPE row permutation that llama.cpp's converter applied to `name`,
    /// `None` when it applied none; an error when the rows do not split into the stated heads.
    fn rope_head_dim(
        &self,
        name: &str,
        info: &GgufTensorInfo,
    ) -> Result<Option<usize>, WeightError> {
        let Some(stated_heads) = self.rope_permutation_heads(name)? else {
            return Ok(None);
        };
        let rows = info.shape().first().copied().unwrap_or(1);
        let heads = usize::try_from(stated_heads).ok().filter(|&h| {
            h.checked_mul(2)
                .is_some_and(|pair_rows| pair_rows > 0 && rows.is_multiple_of(pair_rows))
        });
        match heads {
            Some(heads) => Ok(Some(rows / heads)),
            None => Err(self.file.tensor_error(
                info,
                format!("{rows} rows cannot be split into {stated_heads} heads of two RoPE halves"),
            )),
        }
    }
}

/// The file row that holds Hugging Face row `to` of a q/k projection whose rows llama.cpp's
/// converter permuted in heads of `head_dim`. Within each head of `2 * half` rows it stores HF
/// row `j * half + i` (RoPE half j, pair index i) at row `2 * i + j`, which interleaves the two
/// rotary halves; transformers reverses this the same way when it loads a GGUF.
fn rope_source_row(to: usize, head_dim: usize) -> usize {
    let half = head_dim / 2;
    let (head, within) = (to / head_dim, to % head_dim);
    let (j, i) = (within / half, within % half);
    head * head_dim + 2 * i + j
}

/// The Hugging Face name of a llama.cpp llama tensor, `None` for names outside the map.
fn llama_hf_name(gguf_name: &str) -> Option<String> {
    let fixed = match gguf_name {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(name) = fixed {
        return Some(name.into());
    }
    let rest = gguf_name.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, param) = rest.rsplit_once('.')?;
    if !matches!(param, "weight" | "bias") {
        return None;
    }
    let hf_module = match module {
        "attn_norm" => "input_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_norm" => "post_attention_layernorm",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf_module}.{param}"))
}

#[cfg(test)]
mod tests;
