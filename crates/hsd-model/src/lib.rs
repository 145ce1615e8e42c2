//! Backend-generic burn decoders (GPT-2, the Llama family, Phi-2) that execute per-token layer
//! plans from `hsd-skip`, with a preallocated KV cache that tracks which positions hold K/V at
//! each layer.
//!
//! ```no_run
//! use hsd_model::tokenizer::PromptMode;
//! use hsd_model::{Backend, GenerateConfig, load_model};
//! # fn run(strategy: &mut dyn hsd_skip::Strategy) -> Result<(), hsd_model::ModelError> {
//! let model = load_model("smollm2-135m", Backend::Flex)?;
//! let tokenizer = model.tokenizer()?;
//! let prompt = tokenizer.encode_prompt("The capital of France is", PromptMode::Plain).unwrap();
//! let config = GenerateConfig { max_new_tokens: 16, eos_ids: tokenizer.eos_ids().to_vec(), pad_id: 0 };
//! let out = model.decoder.generate(&[prompt], strategy, &config)?;
//! println!("{}", tokenizer.decode(&out.rows[0].tokens, true).unwrap());
//! # Ok(()) }
//! ```
//!
//! To decode one prompt with many strategies, [`Decoder::prefill`] once and hand clones of the
//! logits and [`Cache`] to [`Decoder::decode`]. [`Decoder::generate_speculative`] decodes
//! losslessly: the strategy drafts and every layer verifies, so the tokens are vanilla's.
//! [`Decoder::teacher_forced`] feeds a strategy given tokens (vanilla's) and measures, per
//! position, its agreement with the full model's distribution ([`Decoder::forced_reference`]).

mod arch;
mod attention;
mod backend;
mod cache;
pub mod chat;
mod decoder;
mod error;
mod generate;
mod gpt2;
mod kernels;
mod layers;
mod llama;
mod loader;
mod lora;
mod lora_term;
mod mlp;
mod phi;
mod readback;
mod rope;
mod sequence;
mod speculative;
mod stack;
mod teacher_forced;
pub mod tokenizer;
mod weight_scope;
pub mod weights;

pub use backend::Backend;
pub use cache::Cache;
pub use decoder::{Batch, Decoder, Logits};
pub use error::ModelError;
pub use generate::{GenerateConfig, Generation, GenerationBatch, StopReason};
pub use gpt2::Gpt2Config;
pub use llama::LlamaConfig;
pub use loader::{
    KNOWN_MODELS, LoadedModel, ModelSource, SourceFile, WeightMode, load_model, load_model_with,
    models_dir, resolve_model_path,
};
pub use lora::{LoraFactors, LoraModule, LoraScaling};
pub use phi::PhiConfig;
pub use rope::RopeParameters;
pub use sequence::TokenRuns;
pub use speculative::{RowSpeculation, SpeculativeBatch, SpeculativeConfig, SpeculativeStats};
pub use teacher_forced::{ForcedAgreement, ForcedReference};
