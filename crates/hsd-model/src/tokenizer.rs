//! Text <-> token ids: a Hugging Face `tokenizers::Tokenizer` plus the special ids generation
//! needs (BOS, EOS, padding).
//!
//! Built from an HF `tokenizer.json` ([`TextTokenizer::from_file`]) or from a GGUF file's
//! byte-level BPE metadata ([`TextTokenizer::from_byte_level_bpe`], which builds what
//! transformers builds when it loads the same GGUF).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

/// llama.cpp's `tokenizer.ggml.token_type` codes that matter here.
const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// How much of an input text an error message quotes.
const QUOTED_CHARS: usize = 60;

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The `tokenizers` crate refused the file.
    #[error("{path}: {reason}")]
    Load { path: PathBuf, reason: String },
    /// A field of `tokenizer_config.json` / `generation_config.json` is not what HF writes.
    #[error("{path}: field {field:?}: {reason}")]
    Config {
        path: PathBuf,
        field: String,
        reason: String,
    },
    /// The byte-level BPE description (vocabulary, merges, ids) is inconsistent.
    #[error("byte-level BPE {field}: {reason}")]
    Vocabulary { field: String, reason: String },
    #[error("encoding {text:?}: {reason}")]
    Encode { text: String, reason: String },
    #[error("decoding {ids:?}: {reason}")]
    Decode { ids: Vec<u32>, reason: String },
}

/// A byte-level BPE vocabulary as a GGUF file states it (`tokenizer.ggml.*`).
#[derive(Debug, Clone, Default)]
pub struct ByteLevelBpe {
    /// Token strings by id.
    pub tokens: Vec<String>,
    /// llama.cpp token types by id (1 normal, 3 control, 4 user-defined, ...); may be empty.
    pub token_types: Vec<i64>,
    /// "left right" pairs, highest priority first.
    pub merges: Vec<String>,
    /// `tokenizer.ggml.pre`, which names the pre-tokenizer split.
    pub pre_tokenizer: Option<String>,
    pub bos_id: Option<u32>,
    pub eos_ids: Vec<u32>,
    pub pad_id: Option<u32>,
}

/// How a prompt's text was made, which decides who writes its special tokens.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PromptMode {
    /// Plain text: the tokenizer adds its special tokens (BOS, where its post-processor does).
    Plain,
    /// Rendered by the model's chat template, which wrote the special tokens itself.
    Chat,
}

/// A tokenizer with the special ids generation needs.
#[derive(Debug, Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    bos_id: Option<u32>,
    eos_ids: Vec<u32>,
    pad_id: Option<u32>,
}

impl TextTokenizer {
    /// Reads an HF `tokenizer.json`. BOS/EOS/padding come from `tokenizer_config.json` and
    /// `generation_config.json` beside it when present; a lone `tokenizer.json` (GPT-2 style)
    /// takes `<|endoftext|>` as BOS and EOS when it has that special token.
    pub fn from_file(path: &Path) -> Result<Self, TokenizerError> {
        let inner = Tokenizer::from_file(path).map_err(|e| TokenizerError::Load {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut tokenizer = Self {
            inner,
            bos_id: None,
            eos_ids: Vec::new(),
            pad_id: None,
        };
        let config_path = dir.join("tokenizer_config.json");
        if let Some(config) = read_json_if_present(&config_path)? {
            tokenizer.bos_id =
                tokenizer.special_id_from_config(&config, "bos_token", &config_path)?;
            tokenizer.pad_id =
                tokenizer.special_id_from_config(&config, "pad_token", &config_path)?;
            tokenizer.eos_ids.extend(tokenizer.special_id_from_config(
                &config,
                "eos_token",
                &config_path,
            )?);
        }
        let generation_path = dir.join("generation_config.json");
        if let Some(generation) = read_json_if_present(&generation_path)? {
            for id in ids_field(&generation, "eos_token_id", &generation_path)? {
                if !tokenizer.eos_ids.contains(&id) {
                    tokenizer.eos_ids.push(id);
                }
            }
            if tokenizer.bos_id.is_none() {
                tokenizer.bos_id = ids_field(&generation, "bos_token_id", &generation_path)?
                    .first()
                    .copied();
            }
        }
        if tokenizer.eos_ids.is_empty() && tokenizer.bos_id.is_none() {
            let end_of_text = tokenizer.inner.token_to_id("<|endoftext|>");
            tokenizer.eos_ids.extend(end_of_text);
            tokenizer.bos_id = end_of_text;
        }
        Ok(tokenizer)
    }

    /// Reads `DIR/tokenizer.json` (and the configs beside it, see [`Self::from_file`]).
    pub fn from_hf_dir(dir: &Path) -> Result<Self, TokenizerError> {
        Self::from_file(&dir.join("tokenizer.json"))
    }

    /// Builds the byte-level BPE a GGUF file describes, as transformers' GGUF loader does:
    /// tokens outside the GPT-2 byte alphabet are respelled in it, control tokens become special
    /// added tokens, user-defined ones plain added tokens, and `pre_tokenizer` picks the split
    /// regex (names transformers does not list, "smollm" among them, get GPT-2's).
    pub fn from_byte_level_bpe(spec: ByteLevelBpe) -> Result<Self, TokenizerError> {
        let vocab_error = |field: &str, reason: String| TokenizerError::Vocabulary {
            field: field.into(),
            reason,
        };
        let byte_chars = gpt2_byte_chars();
        let alphabet: HashSet<char> = byte_chars.iter().copied().collect();
        let in_alphabet = |token: &str| token.chars().all(|c| alphabet.contains(&c));
        let id_of = |index: usize| {
            u32::try_from(index)
                .map_err(|_| vocab_error("tokens", format!("{index} tokens do not fit u32 ids")))
        };

        let mut vocab = Vocab::default();
        for (index, token) in spec.tokens.iter().enumerate() {
            let spelled = if in_alphabet(token) {
                token.clone()
            } else {
                token.bytes().map(|b| byte_chars[usize::from(b)]).collect()
            };
            vocab.insert(spelled, id_of(index)?);
        }
        let merges = spec
            .merges
            .iter()
            .enumerate()
            .map(
                |(index, merge)| match merge.split(' ').collect::<Vec<_>>()[..] {
                    [left, right] => Ok((left.to_owned(), right.to_owned())),
                    _ => Err(vocab_error(
                        &format!("merges[{index}]"),
                        format!("{merge:?} is not two space-separated tokens"),
                    )),
                },
            )
            .collect::<Result<Vec<_>, _>>()?;
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| vocab_error("merges", e.to_string()))?;

        let mut inner = Tokenizer::new(bpe);
        inner.with_pre_tokenizer(Some(pre_tokenizer_for(spec.pre_tokenizer.as_deref())?));
        inner.with_decoder(Some(ByteLevel::default()));

        let typed = |wanted: i64| {
            spec.tokens
                .iter()
                .zip(&spec.token_types)
                .filter(move |&(_, &ty)| ty == wanted)
                .map(|(token, _)| token)
        };
        let special_ids = spec.bos_id.iter().chain(&spec.eos_ids).chain(&spec.pad_id);
        let mut specials: Vec<&String> = typed(TOKEN_TYPE_CONTROL).collect();
        for &id in special_ids {
            let token = spec.tokens.get(id as usize).ok_or_else(|| {
                vocab_error(
                    "special ids",
                    format!("id {id} is past the {} tokens", spec.tokens.len()),
                )
            })?;
            if !specials.contains(&token) {
                specials.push(token);
            }
        }
        // A control token spelled outside the byte alphabet is a llama.cpp mislabel; adding it
        // would grow the vocabulary past the embedding, so transformers skips it and so do we.
        let specials: Vec<AddedToken> = specials
            .into_iter()
            .filter(|token| in_alphabet(token))
            .map(|token| AddedToken::from(token.clone(), true).normalized(false))
            .collect();
        inner.add_special_tokens(&specials);
        let user_defined: Vec<AddedToken> = typed(TOKEN_TYPE_USER_DEFINED)
            .filter(|token| inner.token_to_id(token).is_some())
            .map(|token| AddedToken::from(token.clone(), false).normalized(false))
            .collect();
        inner.add_tokens(&user_defined);

        Ok(Self {
            inner,
            bos_id: spec.bos_id,
            eos_ids: spec.eos_ids,
            pad_id: spec.pad_id,
        })
    }

    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, TokenizerError> {
        self.inner
            .encode(text, add_special_tokens)
            .map(|encoding| encoding.get_ids().to_vec())
            .map_err(|e| TokenizerError::Encode {
                text: text.chars().take(QUOTED_CHARS).collect(),
                reason: e.to_string(),
            })
    }

    /// The ids of a prompt's `text`: with the tokenizer's special tokens in plain mode, without
    /// them in chat mode, so that a rendered template's BOS is not doubled.
    pub fn encode_prompt(&self, text: &str, mode: PromptMode) -> Result<Vec<u32>, TokenizerError> {
        self.encode(text, mode == PromptMode::Plain)
    }

    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String, TokenizerError> {
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| TokenizerError::Decode {
                ids: ids.iter().copied().take(QUOTED_CHARS).collect(),
                reason: e.to_string(),
            })
    }

    /// The decoded text of one token (special tokens included), `None` for an unknown id.
    pub fn token_str(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)?;
        self.inner.decode(&[id], false).ok()
    }

    /// The id of a token given in the vocabulary's own spelling.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Ids that end generation.
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos_ids
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.bos_id
    }

    pub fn pad_id(&self) -> Option<u32> {
        self.pad_id
    }

    /// Vocabulary size, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The wrapped `tokenizers` tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    /// Replaces the special ids, for callers that know them from a model config.
    pub fn with_special_ids(
        mut self,
        bos_id: Option<u32>,
        eos_ids: Vec<u32>,
        pad_id: Option<u32>,
    ) -> Self {
        self.bos_id = bos_id;
        self.eos_ids = eos_ids;
        self.pad_id = pad_id;
        self
    }

    /// The id of `tokenizer_config.json`'s `field` (a string or `{"content": ...}`), if set.
    fn special_id_from_config(
        &self,
        config: &Value,
        field: &str,
        path: &Path,
    ) -> Result<Option<u32>, TokenizerError> {
        let Some(token) = special_token_text(config, field, path)? else {
            return Ok(None);
        };
        self.inner
            .token_to_id(&token)
            .map(Some)
            .ok_or_else(|| TokenizerError::Config {
                path: path.to_owned(),
                field: field.into(),
                reason: format!("{token:?} is not in the vocabulary"),
            })
    }
}

/// GPT-2's byte-to-character table: printable Latin-1 bytes stand for themselves, the rest map
/// in order onto U+0100 and up, so every byte has a visible, non-whitespace character.
fn gpt2_byte_chars() -> [char; 256] {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut table = ['\0'; 256];
    let mut next_extra = 0u32;
    for b in 0..=255u8 {
        table[usize::from(b)] = if printable(b) {
            char::from(b)
        } else {
            next_extra += 1;
            char::from_u32(0xFF + next_extra).unwrap_or(char::REPLACEMENT_CHARACTER)
        };
    }
    table
}

/// transformers' `GGUF_PRE_TOKENIZER_SPLITS`: the split regex each `tokenizer.ggml.pre` value
/// names. Values missing here keep GPT-2's byte-level regex, as they do there.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN35_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const TEKKEN_SPLIT: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const GPT4O_SPLIT: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";

fn split_regex(pre: &str) -> Option<&'static str> {
    Some(match pre {
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" | "jina-v5-nano" | "dbrx" | "smaug-bpe" => LLAMA3_SPLIT,
        "tekken" => TEKKEN_SPLIT,
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "megrez" => QWEN2_SPLIT,
        "qwen35" => QWEN35_SPLIT,
        "gpt-4o" | "llama4" | "kanana2" | "talkie" | "minimax-m2" => GPT4O_SPLIT,
        _ => return None,
    })
}

fn pre_tokenizer_for(pre: Option<&str>) -> Result<PreTokenizerWrapper, TokenizerError> {
    let Some(regex) = pre.and_then(split_regex) else {
        return Ok(ByteLevel::new(false, true, true).into());
    };
    let split = Split::new(
        SplitPattern::Regex(regex.into()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(|e| TokenizerError::Vocabulary {
        field: format!("pre-tokenizer {pre:?}"),
        reason: e.to_string(),
    })?;
    Ok(Sequence::new(vec![
        split.into(),
        ByteLevel::new(false, true, false).into(),
    ])
    .into())
}

fn read_json_if_present(path: &Path) -> Result<Option<Value>, TokenizerError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(TokenizerError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| TokenizerError::Config {
            path: path.to_owned(),
            field: "(document)".into(),
            reason: e.to_string(),
        })
}

/// The text of special token `field` in an HF `tokenizer_config.json`: a string, or an
/// `AddedToken` object with `content`; `None` when absent or null.
fn special_token_text(
    config: &Value,
    field: &str,
    path: &Path,
) -> Result<Option<String>, TokenizerError> {
    match config.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(token)) => Ok(Some(token.clone())),
        Some(Value::Object(object)) => match object.get("content") {
            Some(Value::String(token)) => Ok(Some(token.clone())),
            _ => Err(TokenizerError::Config {
                path: path.to_owned(),
                field: field.into(),
                reason: "an object without a string \"content\"".into(),
            }),
        },
        Some(other) => Err(TokenizerError::Config {
            path: path.to_owned(),
            field: field.into(),
            reason: format!("expected a string or an object, found {other}"),
        }),
    }
}

/// An id field of `generation_config.json`: a number, a list of numbers, or absent.
fn ids_field(config: &Value, field: &str, path: &Path) -> Result<Vec<u32>, TokenizerError> {
    let bad = |reason: String| TokenizerError::Config {
        path: path.to_owned(),
        field: field.into(),
        reason,
    };
    let one = |value: &Value| {
        value
            .as_u64()
            .and_then(|id| u32::try_from(id).ok())
            .ok_or_else(|| bad(format!("{value} is not a token id")))
    };
    match config.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(one).collect(),
        Some(value) => one(value).map(|id| vec![id]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vocabulary over "a", "b", "c", " " (as "Ġ") with merges building "ab" and "Ġab".
    fn tiny_spec() -> ByteLevelBpe {
        let tokens = [
            "<|endoftext|>",
            "a",
            "b",
            "c",
            "Ġ",
            "ab",
            "Ġab",
            "<think>",
            "\n",
            "Ċ",
        ];
        ByteLevelBpe {
            tokens: tokens.iter().map(|t| t.to_string()).collect(),
            token_types: vec![3, 1, 1, 1, 1, 1, 1, 4, 1, 1],
            merges: vec!["a b".into(), "Ġ ab".into()],
            pre_tokenizer: Some("smollm".into()),
            bos_id: Some(0),
            eos_ids: vec![0],
            pad_id: None,
        }
    }

    #[test]
    fn byte_table_matches_gpt2() {
        let table = gpt2_byte_chars();
        assert_eq!(table[usize::from(b' ')], 'Ġ');
        assert_eq!(table[usize::from(b'\n')], 'Ċ');
        assert_eq!(table[usize::from(b'a')], 'a');
        assert_eq!(table[0xAD], 'Ń');
        assert_eq!(table.iter().collect::<HashSet<_>>().len(), 256);
    }

    #[test]
    fn byte_level_bpe_encodes_merges_specials_and_user_tokens() {
        let tokenizer = TextTokenizer::from_byte_level_bpe(tiny_spec()).unwrap();
        assert_eq!(tokenizer.encode("ab ab", false).unwrap(), vec![5, 6]);
        assert_eq!(
            tokenizer.encode("abc<|endoftext|>", false).unwrap(),
            vec![5, 3, 0]
        );
        assert_eq!(tokenizer.encode("<think>a", false).unwrap(), vec![7, 1]);
        assert_eq!(
            tokenizer.decode(&[5, 6, 0], false).unwrap(),
            "ab ab<|endoftext|>"
        );
        assert_eq!(tokenizer.decode(&[5, 6, 0], true).unwrap(), "ab ab");
        assert_eq!(tokenizer.token_str(6).as_deref(), Some(" ab"));
        assert_eq!(tokenizer.token_str(99), None);
        assert_eq!(
            (tokenizer.bos_id(), tokenizer.eos_ids(), tokenizer.pad_id()),
            (Some(0), &[0][..], None)
        );
        // ten ids, but "\n" (id 8) respelled is "Ċ" (id 9): one entry
        assert_eq!(tokenizer.vocab_size(), 9);
    }

    #[test]
    fn plain_prompts_get_the_post_processors_specials_and_chat_prompts_do_not() {
        let mut tokenizer = TextTokenizer::from_byte_level_bpe(tiny_spec()).unwrap();
        let bos_first = tokenizers::processors::template::TemplateProcessing::builder()
            .try_single("<|endoftext|> $A")
            .unwrap()
            .special_tokens(vec![("<|endoftext|>", 0)])
            .build()
            .unwrap();
        tokenizer.inner.with_post_processor(Some(bos_first));
        assert_eq!(
            tokenizer.encode_prompt("ab", PromptMode::Plain).unwrap(),
            [0, 5]
        );
        // a chat template renders the BOS itself
        assert_eq!(
            tokenizer
                .encode_prompt("<|endoftext|>ab", PromptMode::Chat)
                .unwrap(),
            [0, 5]
        );
    }

    #[test]
    fn tokens_outside_the_byte_alphabet_are_respelled() {
        // Id 8, "\n", is not spelled in the byte alphabet: respelled "Ċ" it collides with id 9,
        // and the later id wins, as in transformers' dict comprehension.
        let tokenizer = TextTokenizer::from_byte_level_bpe(tiny_spec()).unwrap();
        assert_eq!(tokenizer.encode("a\n", false).unwrap(), vec![1, 9]);
    }

    #[test]
    fn malformed_merges_and_ids_are_errors() {
        let mut spec = tiny_spec();
        spec.merges.push("a b c".into());
        let err = TextTokenizer::from_byte_level_bpe(spec).unwrap_err();
        assert!(err.to_string().contains("merges[2]"), "{err}");
        let mut spec = tiny_spec();
        spec.eos_ids = vec![1000];
        let err = TextTokenizer::from_byte_level_bpe(spec).unwrap_err();
        assert!(err.to_string().contains("1000"), "{err}");
    }

    #[test]
    fn llama3_split_keeps_digit_triples() {
        let mut spec = tiny_spec();
        spec.tokens.extend(["1", "2", "3", "4"].map(String::from));
        spec.token_types.extend([1, 1, 1, 1]);
        spec.merges.extend(["1 2".into(), "12 3".into()]);
        spec.tokens.extend(["12", "123"].map(String::from));
        spec.token_types.extend([1, 1]);
        spec.pre_tokenizer = Some("llama-bpe".into());
        let tokenizer = TextTokenizer::from_byte_level_bpe(spec).unwrap();
        // "1234" splits into "123" + "4" before BPE
        assert_eq!(tokenizer.encode("1234", false).unwrap(), vec![15, 13]);
    }

    #[test]
    fn shared_gpt2_tokenizer_json() {
        let data = std::env::var_os("HSD_DATA")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
            });
        let path = data.join("tokenizers/gpt2/tokenizer.json");
        if !path.is_file() {
            eprintln!("skipping: {} not found (set HSD_DATA)", path.display());
            return;
        }
        let gpt2 = TextTokenizer::from_file(&path).unwrap();
        assert_eq!(gpt2.encode("Hello world", false).unwrap(), vec![15496, 995]);
        assert_eq!(
            gpt2.encode(" Hello world<|endoftext|>", false).unwrap(),
            vec![18435, 995, 50256]
        );
        assert_eq!(
            (gpt2.bos_id(), gpt2.eos_ids(), gpt2.vocab_size()),
            (Some(50256), &[50256][..], 50257)
        );
    }

    #[test]
    fn hf_tokenizer_json_with_configs() {
        let dir = tempfile::tempdir().unwrap();
        let gpt2 = TextTokenizer::from_byte_level_bpe(tiny_spec()).unwrap();
        gpt2.inner()
            .save(dir.path().join("tokenizer.json"), false)
            .unwrap();
        let alone = TextTokenizer::from_hf_dir(dir.path()).unwrap();
        assert_eq!((alone.bos_id(), alone.eos_ids()), (Some(0), &[0][..]));
        assert_eq!(alone.encode("ab ab", false).unwrap(), vec![5, 6]);

        fs::write(
            dir.path().join("tokenizer_config.json"),
            r#"{"bos_token": {"content": "<|endoftext|>"}, "eos_token": "<think>", "pad_token": null}"#,
        )
        .unwrap();
        fs::write(
            dir.path().join("generation_config.json"),
            r#"{"eos_token_id": [7, 0]}"#,
        )
        .unwrap();
        let configured = TextTokenizer::from_hf_dir(dir.path()).unwrap();
        assert_eq!(configured.bos_id(), Some(0));
        assert_eq!(configured.eos_ids(), &[7, 0]);
        assert_eq!(configured.pad_id(), None);

        fs::write(
            dir.path().join("tokenizer_config.json"),
            r#"{"eos_token": "<nope>"}"#,
        )
        .unwrap();
        let err = TextTokenizer::from_hf_dir(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("eos_token") && err.to_string().contains("<nope>"),
            "{err}"
        );
    }
}
