//! Hugging Face chat templates (Jinja) rendered with minijinja, in the environment transformers
//! renders them in: `trim_blocks` and `lstrip_blocks` on, loop controls, Python string/dict
//! methods, `raise_exception`, and `bos_token` / `eos_token` / `add_generation_prompt` /
//! `messages` in the context.

use std::fs;
use std::path::{Path, PathBuf};

use minijinja::{Environment, Error, ErrorKind, context};
use serde::Serialize;
use serde_json::Value;

use crate::tokenizer::TextTokenizer;

const TEMPLATE_NAME: &str = "chat_template";

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: field {field:?}: {reason}")]
    Config {
        path: PathBuf,
        field: String,
        reason: String,
    },
    #[error("chat template does not parse: {0:#}")]
    Template(#[source] Error),
    #[error("chat template failed to render: {0:#}")]
    Render(#[source] Error),
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A compiled chat template with the special tokens it is rendered with.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .finish_non_exhaustive()
    }
}

impl ChatTemplate {
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self, ChatError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> Result<String, Error> {
                Err(Error::new(ErrorKind::InvalidOperation, message))
            },
        );
        env.add_template_owned(TEMPLATE_NAME, source.to_owned())
            .map_err(ChatError::Template)?;
        Ok(Self {
            env,
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
        })
    }

    /// The prompt text for `messages`; with `add_generation_prompt` the template appends the
    /// opening of an assistant turn.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, ChatError> {
        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(ChatError::Template)?;
        template
            .render(context! {
                messages => messages,
                add_generation_prompt => add_generation_prompt,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
            })
            .map_err(ChatError::Render)
    }

    /// `source` rendered with `tokenizer`'s special tokens: its BOS and its first EOS, as text
    /// (empty when it has none).
    pub fn for_tokenizer(source: &str, tokenizer: &TextTokenizer) -> Result<Self, ChatError> {
        let text = |id: Option<u32>| {
            id.and_then(|id| tokenizer.token_str(id))
                .unwrap_or_default()
        };
        Self::new(
            source,
            &text(tokenizer.bos_id()),
            &text(tokenizer.eos_ids().first().copied()),
        )
    }
}

/// The template source of an HF model directory: `chat_template.jinja` when present, else
/// `chat_template` of `tokenizer_config.json` (a string, or a list of `{name, template}` whose
/// "default" entry is taken). `None` when the directory has no template.
pub(crate) fn template_source_of_hf_dir(dir: &Path) -> Result<Option<String>, ChatError> {
    let jinja_path = dir.join("chat_template.jinja");
    match fs::read_to_string(&jinja_path) {
        Ok(text) => return Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(ChatError::Io {
                path: jinja_path,
                source,
            });
        }
    }
    let config_path = dir.join("tokenizer_config.json");
    let config = match fs::read_to_string(&config_path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| ChatError::Config {
            path: config_path.clone(),
            field: "(document)".into(),
            reason: e.to_string(),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ChatError::Io {
                path: config_path,
                source,
            });
        }
    };
    config_template(&config, &config_path)
}

fn config_template(config: &Value, path: &Path) -> Result<Option<String>, ChatError> {
    let bad = |reason: &str| ChatError::Config {
        path: path.to_owned(),
        field: "chat_template".into(),
        reason: reason.into(),
    };
    match config.get("chat_template") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(source)) => Ok(Some(source.clone())),
        Some(Value::Array(named)) => named
            .iter()
            .find(|entry| entry.get("name").and_then(Value::as_str) == Some("default"))
            .and_then(|entry| entry.get("template").and_then(Value::as_str))
            .map(|source| Some(source.to_owned()))
            .ok_or_else(|| bad("a list of templates without a \"default\" entry")),
        Some(_) => Err(bad("expected a string or a list of {name, template}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHATML: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nBe brief.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn chatml_renders_with_default_system_prompt() {
        let template = ChatTemplate::new(CHATML, "<|im_start|>", "<|im_end|>").unwrap();
        let messages = [ChatMessage::new("user", "hi")];
        assert_eq!(
            template.render(&messages, true).unwrap(),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert!(
            !template
                .render(&messages, false)
                .unwrap()
                .ends_with("assistant\n")
        );
    }

    #[test]
    fn python_methods_tokens_and_block_trimming() {
        let source = "{{ bos_token }}\n{% for m in messages %}\n  {{ m.content.strip() | upper }}{{ eos_token }}\n{% endfor %}";
        let template = ChatTemplate::new(source, "<s>", "</s>").unwrap();
        let out = template
            .render(&[ChatMessage::new("user", "  a b ")], false)
            .unwrap();
        assert_eq!(out, "<s>\n  A B</s>\n");
    }

    #[test]
    fn raise_exception_surfaces_the_message() {
        let source = "{% if messages[0].role != 'user' %}{{ raise_exception('first turn must be the user') }}{% endif %}";
        let template = ChatTemplate::new(source, "", "").unwrap();
        let err = template
            .render(&[ChatMessage::new("assistant", "x")], false)
            .unwrap_err();
        assert!(
            err.to_string().contains("first turn must be the user"),
            "{err}"
        );
        assert!(matches!(
            ChatTemplate::new("{% for %}", "", ""),
            Err(ChatError::Template(_))
        ));
    }

    #[test]
    fn hf_dir_reads_tokenizer_config_and_jinja_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(template_source_of_hf_dir(dir.path()).unwrap(), None);
        let config = serde_json::json!({
            "bos_token": {"content": "<s>"},
            "eos_token": "</s>",
            "chat_template": [{"name": "default", "template": "{{ bos_token }}{{ messages[0].content }}"}],
        });
        fs::write(dir.path().join("tokenizer_config.json"), config.to_string()).unwrap();
        assert_eq!(
            template_source_of_hf_dir(dir.path()).unwrap().as_deref(),
            Some("{{ bos_token }}{{ messages[0].content }}")
        );
        fs::write(
            dir.path().join("chat_template.jinja"),
            "[{{ messages | length }}]",
        )
        .unwrap();
        assert_eq!(
            template_source_of_hf_dir(dir.path()).unwrap().as_deref(),
            Some("[{{ messages | length }}]")
        );
        fs::remove_file(dir.path().join("chat_template.jinja")).unwrap();
        fs::write(
            dir.path().join("tokenizer_config.json"),
            r#"{"chat_template": [{"name": "tool_use", "template": ""}]}"#,
        )
        .unwrap();
        let err = template_source_of_hf_dir(dir.path()).unwrap_err();
        assert!(err.to_string().contains("\"default\""), "{err}");
    }
}
