//! hsd's tokenizer and chat template for SmolLM2-135M-Instruct's GGUF against the golden outputs
//! of Hugging Face transformers (`fixtures/tokenizer/make_fixture.py`).
//!
//! Needs the model file (`scripts/fetch-model.sh`), found in `$HSD_MODELS` or `<repo>/models`;
//! without it the test prints a notice and passes.

mod model_file;

use hsd_model::chat::{ChatMessage, ChatTemplate};
use hsd_model::weights::GgufModel;
use serde_json::Value;

const FIXTURE: &str = include_str!("fixtures/tokenizer/smollm2_135m_instruct.json");

fn ids(value: &Value) -> Vec<u32> {
    value
        .as_array()
        .expect("ids array")
        .iter()
        .map(|id| id.as_u64().expect("id") as u32)
        .collect()
}

#[test]
fn smollm2_tokenizer_matches_transformers() {
    let Some(path) = model_file::smollm2_gguf() else {
        return;
    };
    let fixture: Value = serde_json::from_str(FIXTURE).unwrap();
    let model = GgufModel::open(&path).unwrap();
    let tokenizer = model.tokenizer().unwrap();

    assert_eq!(
        tokenizer.vocab_size() as u64,
        fixture["vocab_size"].as_u64().unwrap()
    );
    assert_eq!(
        tokenizer.bos_id().map(u64::from),
        fixture["bos_token_id"].as_u64()
    );
    assert_eq!(
        tokenizer.eos_ids(),
        [fixture["eos_token_id"].as_u64().unwrap() as u32]
    );
    assert_eq!(
        tokenizer.pad_id().map(u64::from),
        fixture["pad_token_id"].as_u64()
    );

    let cases = fixture["cases"].as_array().unwrap();
    let mut mismatches = Vec::new();
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let expected = ids(&case["ids"]);
        let got = tokenizer.encode(text, false).unwrap();
        if got != expected {
            mismatches.push(format!("encode {text:?}: got {got:?}, want {expected:?}"));
            continue;
        }
        for (field, skip) in [("decoded", false), ("decoded_skip_special", true)] {
            let decoded = tokenizer.decode(&expected, skip).unwrap();
            if decoded != case[field].as_str().unwrap() {
                mismatches.push(format!(
                    "{field} {text:?}: got {decoded:?}, want {:?}",
                    case[field]
                ));
            }
        }
    }
    for (id, text) in fixture["token_strs"].as_object().unwrap() {
        let got = tokenizer.token_str(id.parse().unwrap());
        if got.as_deref() != text.as_str() {
            mismatches.push(format!("token_str {id}: got {got:?}, want {text}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} strings differ:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n")
    );
}

#[test]
fn smollm2_chat_template_matches_transformers() {
    let Some(path) = model_file::smollm2_gguf() else {
        return;
    };
    let fixture: Value = serde_json::from_str(FIXTURE).unwrap();
    let model = GgufModel::open(&path).unwrap();
    let source = model
        .chat_template()
        .expect("the file carries a chat template");
    let template = ChatTemplate::for_tokenizer(source, &model.tokenizer().unwrap()).unwrap();
    for chat in fixture["chats"].as_array().unwrap() {
        let messages: Vec<ChatMessage> = chat["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| ChatMessage::new(m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
            .collect();
        let add_generation_prompt = chat["add_generation_prompt"].as_bool().unwrap();
        let rendered = template.render(&messages, add_generation_prompt).unwrap();
        assert_eq!(rendered, chat["rendered"].as_str().unwrap(), "{messages:?}");
    }
}

#[test]
fn smollm2_metadata_and_config() {
    let Some(path) = model_file::smollm2_gguf() else {
        return;
    };
    let model = GgufModel::open(&path).unwrap();
    assert_eq!(
        (model.file().version(), model.file().architecture()),
        (3, "llama")
    );
    let config = model.config_json().unwrap();
    let expect = [
        ("hidden_size", Value::from(576)),
        ("intermediate_size", Value::from(1536)),
        ("num_hidden_layers", Value::from(30)),
        ("num_attention_heads", Value::from(9)),
        ("num_key_value_heads", Value::from(3)),
        ("head_dim", Value::from(64)),
        ("rms_norm_eps", Value::from(1e-5)),
        ("rope_theta", Value::from(100_000.0)),
        ("vocab_size", Value::from(49_152)),
        ("max_position_embeddings", Value::from(8192)),
        ("tie_word_embeddings", Value::from(true)),
        ("bos_token_id", Value::from(1)),
        ("eos_token_id", Value::from(2)),
        ("pad_token_id", Value::from(2)),
    ];
    for (key, value) in expect {
        assert_eq!(config[key], value, "{key}");
    }
    assert_eq!(
        model
            .file()
            .metadata_value("tokenizer.ggml.pre")
            .and_then(|v| v.as_str()),
        Some("smollm")
    );
    // 30 layers of 9 tensors, the embedding and the final norm; no lm_head (tied)
    assert_eq!(model.file().tensor_infos().len(), 272);
}
