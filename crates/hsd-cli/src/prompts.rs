//! Prompts as the model sees them: a dataset's template rendered for each example (with
//! few-shot examples drawn by seed), the model's chat template in chat mode, sources cut to
//! the truncation budget, then token ids. Evaluation and anything that must see the very same
//! prompts (calibration, fine-tuning) go through [`PromptEncoder`].

use std::path::Path;

use anyhow::{Context, bail};
use hsd_data::{
    DatasetSpec, Example, Mode, PromptBody, PromptTemplate, RenderOptions, Role, ShotPool,
};
use hsd_model::chat::{ChatMessage, ChatTemplate};
use hsd_model::tokenizer::{PromptMode, TextTokenizer};
use hsd_model::{GenerateConfig, LoadedModel};

use crate::manifest::DatasetBlock;

/// Renders and tokenizes prompts for one model in one prompt mode.
pub struct PromptEncoder<'a> {
    tokenizer: &'a TextTokenizer,
    mode: Mode,
    chat: Option<ChatTemplate>,
    /// Few-shot draws for example `i` use `seed + i`.
    seed: u64,
    data_root: &'a Path,
}

impl<'a> PromptEncoder<'a> {
    /// `model_name` only names the model in errors (e.g. chat mode without a chat template).
    pub fn new(
        model: &'a LoadedModel,
        model_name: &str,
        mode: Mode,
        seed: u64,
        data_root: &'a Path,
    ) -> anyhow::Result<Self> {
        let tokenizer = model.tokenizer()?;
        let chat = match mode {
            Mode::Chat => Some(model.chat().with_context(|| {
                format!("model '{model_name}' in chat mode; use prompt_mode = \"plain\"")
            })?),
            Mode::Plain => None,
        };
        Ok(Self {
            tokenizer,
            mode,
            chat,
            seed,
            data_root,
        })
    }

    /// The token ids of every example's prompt under `block`'s template and budget.
    pub fn encode(
        &self,
        block: &DatasetBlock,
        examples: &[Example],
    ) -> anyhow::Result<Vec<Vec<u32>>> {
        let template = match &block.template {
            Some(path) => PromptTemplate::from_file(path)?,
            None => PromptTemplate::builtin(block.name)?,
        };
        let pool = if block.shots > 0 {
            Some(ShotPool::for_evaluation(
                &dataset_spec(block, None),
                self.data_root,
                block.shots,
                None,
            )?)
        } else {
            None
        };
        let options = RenderOptions {
            mode: self.mode,
            max_source_tokens: block.max_source_tokens,
        };
        let count = |text: &str| {
            self.tokenizer
                .encode(text, false)
                .map_or(usize::MAX, |ids| ids.len())
        };
        let mut out = Vec::with_capacity(examples.len());
        for (i, example) in examples.iter().enumerate() {
            let shots = match &pool {
                Some(pool) => pool.draw(block.shots, self.seed.wrapping_add(i as u64))?,
                None => Vec::new(),
            };
            let prompt = template.render(example, &shots, &options, &count)?;
            let text = match (&prompt.body, &self.chat) {
                (PromptBody::Text(text), _) => text.clone(),
                (PromptBody::Messages(messages), Some(chat)) => {
                    let messages: Vec<ChatMessage> = messages
                        .iter()
                        .map(|m| {
                            let role = match m.role {
                                Role::System => "system",
                                Role::User => "user",
                                Role::Assistant => "assistant",
                            };
                            ChatMessage::new(role, m.content.clone())
                        })
                        .collect();
                    chat.render(&messages, true)?
                }
                (PromptBody::Messages(_), None) => bail!(
                    "{}: the template rendered chat messages in plain mode",
                    block.name
                ),
            };
            let mode = match self.mode {
                Mode::Plain => PromptMode::Plain,
                Mode::Chat => PromptMode::Chat,
            };
            let ids = self
                .tokenizer
                .encode_prompt(&text, mode)
                .map_err(|e| anyhow::anyhow!("tokenizing the prompt of {}: {e}", example.id))?;
            out.push(ids);
        }
        Ok(out)
    }
}

/// The loader's view of a dataset block, with an optional example limit.
pub fn dataset_spec(block: &DatasetBlock, limit: Option<usize>) -> DatasetSpec {
    DatasetSpec {
        name: block.name,
        split: block.split,
        path: block.path.clone(),
        limit,
    }
}

/// The first `limit` examples of `block`'s split (all of them for `None`).
pub fn load_examples(
    block: &DatasetBlock,
    limit: Option<usize>,
    data_root: &Path,
) -> anyhow::Result<Vec<Example>> {
    Ok(hsd_data::load(&dataset_spec(block, limit), data_root)?)
}

/// How a sweep decodes with `tokenizer`: greedy to `max_new_tokens`, stopping at its EOS ids,
/// padding with its pad id (its first EOS id when it has none).
pub fn decode_config(tokenizer: &TextTokenizer, max_new_tokens: usize) -> GenerateConfig {
    GenerateConfig {
        max_new_tokens,
        eos_ids: tokenizer.eos_ids().to_vec(),
        pad_id: tokenizer
            .pad_id()
            .or_else(|| tokenizer.eos_ids().first().copied())
            .unwrap_or(0),
    }
}
