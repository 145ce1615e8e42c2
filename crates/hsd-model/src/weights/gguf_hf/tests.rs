//! Tests of the Hugging Face view of GGUF files written by the format tests' writer.

use proptest::prelude::*;

use super::*;
use crate::chat::{ChatMessage, ChatTemplate};
use crate::weights::gguf_file::GgmlType;
use crate::weights::gguf_file::tests::{GgufWriter, f32_bytes, string};

/// llama.cpp's `permute` of q/k rows, written from its numpy form:
/// `w.reshape(heads, 2, rows // heads // 2, cols).swapaxes(1, 2).reshape(rows, cols)`.
fn llama_cpp_permute(hf: &[f32], rows: usize, cols: usize, heads: usize) -> Vec<f32> {
    let half = rows / heads / 2;
    let mut out = Vec::with_capacity(hf.len());
    for h in 0..heads {
        for i in 0..half {
            for j in 0..2 {
                let row = h * 2 * half + j * half + i;
                out.extend_from_slice(&hf[row * cols..(row + 1) * cols]);
            }
        }
    }
    out
}

fn llama_writer(with_output: bool) -> GgufWriter {
    let (hidden, heads, kv_heads) = (8u64, 2, 1);
    let head_dim = hidden / heads;
    let q_hf: Vec<f32> = (0..hidden * hidden).map(|i| i as f32).collect();
    let k_hf: Vec<f32> = (0..head_dim * kv_heads * hidden)
        .map(|i| -(i as f32))
        .collect();
    let q_file = llama_cpp_permute(&q_hf, hidden as usize, hidden as usize, heads as usize);
    let k_file = llama_cpp_permute(
        &k_hf,
        (head_dim * kv_heads) as usize,
        hidden as usize,
        kv_heads as usize,
    );
    let tokens = [
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "h",
        "i",
        "hi",
        "Ġ",
        "Ġhi",
    ];
    let mut writer = GgufWriter::new()
        .kv("general.architecture", string("llama"))
        .kv("general.alignment", MetadataValue::U32(64))
        .kv("llama.block_count", MetadataValue::U32(1))
        .kv("llama.context_length", MetadataValue::U32(128))
        .kv("llama.embedding_length", MetadataValue::U32(hidden as u32))
        .kv("llama.feed_forward_length", MetadataValue::U32(16))
        .kv(
            "llama.attention.head_count",
            MetadataValue::U32(heads as u32),
        )
        .kv(
            "llama.attention.head_count_kv",
            MetadataValue::U32(kv_heads as u32),
        )
        .kv("llama.rope.freq_base", MetadataValue::F32(100_000.0))
        .kv(
            "llama.attention.layer_norm_rms_epsilon",
            MetadataValue::F32(1e-5),
        )
        .kv("tokenizer.ggml.model", string("gpt2"))
        .kv("tokenizer.ggml.pre", string("smollm"))
        .kv(
            "tokenizer.ggml.tokens",
            MetadataValue::Array(tokens.iter().map(|t| string(t)).collect()),
        )
        .kv(
            "tokenizer.ggml.token_type",
            MetadataValue::Array([3, 3, 3, 1, 1, 1, 1, 1].map(MetadataValue::I32).to_vec()),
        )
        .kv(
            "tokenizer.ggml.merges",
            MetadataValue::Array(vec![string("h i"), string("Ġ hi")]),
        )
        .kv("tokenizer.ggml.bos_token_id", MetadataValue::U32(1))
        .kv("tokenizer.ggml.eos_token_id", MetadataValue::U32(2))
        .kv("tokenizer.ggml.padding_token_id", MetadataValue::U32(2))
        .kv(
            "tokenizer.chat_template",
            string(
                "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}{{ eos_token }}",
            ),
        )
        .tensor(
            "token_embd.weight",
            &[hidden, 8],
            GgmlType::F32,
            f32_bytes(&[0.5; 64]),
        )
        .tensor(
            "output_norm.weight",
            &[hidden],
            GgmlType::F32,
            f32_bytes(&[1.0; 8]),
        )
        .tensor(
            "blk.0.attn_norm.weight",
            &[hidden],
            GgmlType::F32,
            f32_bytes(&[1.0; 8]),
        )
        .tensor(
            "blk.0.attn_q.weight",
            &[hidden, hidden],
            GgmlType::F32,
            f32_bytes(&q_file),
        )
        .tensor(
            "blk.0.attn_k.weight",
            &[hidden, head_dim],
            GgmlType::F32,
            f32_bytes(&k_file),
        )
        .tensor(
            "blk.0.attn_v.weight",
            &[hidden, head_dim],
            GgmlType::F32,
            f32_bytes(&k_file),
        )
        .tensor(
            "blk.0.attn_output.weight",
            &[hidden, hidden],
            GgmlType::F32,
            f32_bytes(&q_file),
        )
        .tensor(
            "blk.0.ffn_norm.weight",
            &[hidden],
            GgmlType::F32,
            f32_bytes(&[1.0; 8]),
        )
        .tensor(
            "blk.0.ffn_gate.weight",
            &[hidden, 16],
            GgmlType::F32,
            f32_bytes(&[0.0; 128]),
        )
        .tensor(
            "blk.0.ffn_up.weight",
            &[hidden, 16],
            GgmlType::F32,
            f32_bytes(&[0.0; 128]),
        )
        .tensor(
            "blk.0.ffn_down.weight",
            &[16, hidden],
            GgmlType::F32,
            f32_bytes(&[0.0; 128]),
        )
        .tensor(
            "rope_freqs.weight",
            &[2],
            GgmlType::F32,
            f32_bytes(&[1.0, 1.0]),
        );
    writer.alignment = 64;
    if with_output {
        writer = writer.tensor(
            "output.weight",
            &[hidden, 8],
            GgmlType::F32,
            f32_bytes(&[0.25; 64]),
        );
    }
    writer
}

#[test]
fn llama_names_map_to_hf_and_rope_rows_are_unpermuted() {
    let model = GgufModel::from_bytes(llama_writer(false).build(), "llama.gguf").unwrap();
    let mut names = model.names();
    names.sort();
    let expected = [
        "model.embed_tokens.weight",
        "model.layers.0.input_layernorm.weight",
        "model.layers.0.mlp.down_proj.weight",
        "model.layers.0.mlp.gate_proj.weight",
        "model.layers.0.mlp.up_proj.weight",
        "model.layers.0.post_attention_layernorm.weight",
        "model.layers.0.self_attn.k_proj.weight",
        "model.layers.0.self_attn.o_proj.weight",
        "model.layers.0.self_attn.q_proj.weight",
        "model.layers.0.self_attn.v_proj.weight",
        "model.norm.weight",
        "rope_freqs.weight",
    ];
    assert_eq!(names, expected);
    assert!(!model.contains("lm_head.weight"));

    let q = model
        .load("model.layers.0.self_attn.q_proj.weight")
        .unwrap();
    assert_eq!(q.shape, [8, 8]);
    assert_eq!(q.data, (0..64).map(|i| i as f32).collect::<Vec<_>>());
    let k = model
        .load("model.layers.0.self_attn.k_proj.weight")
        .unwrap();
    assert_eq!(k.shape, [4, 8]);
    assert_eq!(k.data, (0..32).map(|i| -(i as f32)).collect::<Vec<_>>());
    // v and o are stored as written, so they keep llama.cpp's row order
    let o = model
        .load("model.layers.0.self_attn.o_proj.weight")
        .unwrap();
    assert_eq!(
        o.data[8..16],
        (16..24).map(|i| i as f32).collect::<Vec<_>>()
    );
    let down = model.load("model.layers.0.mlp.down_proj.weight").unwrap();
    assert_eq!(down.shape, [8, 16]);
}

#[test]
fn rope_rows_that_do_not_split_into_heads_are_an_error() {
    let mut writer = llama_writer(false);
    for (key, value) in &mut writer.metadata {
        if key == "llama.attention.head_count" {
            *value = MetadataValue::U32(3);
        }
    }
    let model = GgufModel::from_bytes(writer.build(), "heads.gguf").unwrap();
    let err = model
        .load("model.layers.0.self_attn.q_proj.weight")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("blk.0.attn_q.weight") && err.contains("3 heads"),
        "{err}"
    );
}

#[test]
fn llama_config_json() {
    let tied = GgufModel::from_bytes(llama_writer(false).build(), "tied.gguf").unwrap();
    let config = tied.config_json().unwrap();
    let expected = json!({
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": 8,
        "intermediate_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 4,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-5,
        "rope_theta": 100000.0,
        "vocab_size": 8,
        "max_position_embeddings": 128,
        "tie_word_embeddings": true,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 2,
    });
    assert_eq!(config, expected);
    let untied = GgufModel::from_bytes(llama_writer(true).build(), "untied.gguf").unwrap();
    assert_eq!(
        untied.config_json().unwrap()["tie_word_embeddings"],
        json!(false)
    );
    assert_eq!(untied.load("lm_head.weight").unwrap().data, vec![0.25; 64]);

    let other = GgufModel::from_bytes(
        GgufWriter::new()
            .kv("general.architecture", string("gpt2"))
            .build(),
        "gpt2.gguf",
    )
    .unwrap();
    let err = other.config_json().unwrap_err().to_string();
    assert!(
        err.contains("general.architecture") && err.contains("gpt2"),
        "{err}"
    );
}

#[test]
fn tokenizer_and_chat_template_from_metadata() {
    let model = GgufModel::from_bytes(llama_writer(false).build(), "llama.gguf").unwrap();
    let tokenizer = model.tokenizer().unwrap();
    assert_eq!(
        tokenizer.encode("hi hi<|im_end|>", false).unwrap(),
        vec![5, 7, 2]
    );
    assert_eq!(
        (tokenizer.bos_id(), tokenizer.eos_ids(), tokenizer.pad_id()),
        (Some(1), &[2][..], Some(2))
    );
    let source = model.chat_template().unwrap();
    let chat = ChatTemplate::for_tokenizer(source, &tokenizer).unwrap();
    let rendered = chat
        .render(&[ChatMessage::new("user", "hi")], true)
        .unwrap();
    assert_eq!(rendered, "<|im_start|>hi<|im_end|>");

    let repeated_key = llama_writer(false).kv("tokenizer.ggml.model", string("llama"));
    let err = GgufModel::from_bytes(repeated_key.build(), "twice.gguf")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tokenizer.ggml.model") && err.contains("appears twice"),
        "{err}"
    );
    let mut writer = llama_writer(false);
    for (key, value) in &mut writer.metadata {
        if key == "tokenizer.ggml.model" {
            *value = string("llama");
        }
    }
    let spm = GgufModel::from_bytes(writer.build(), "spm.gguf").unwrap();
    let err = spm.tokenizer().unwrap_err().to_string();
    assert!(
        err.contains("tokenizer.ggml.model") && err.contains("\"llama\""),
        "{err}"
    );
}

#[test]
fn unsupported_dtype_and_missing_tensor_are_load_errors() {
    let bytes = GgufWriter::new()
        .tensor("k5", &[256], GgmlType::Q5K, vec![0; 176])
        .build();
    let model = GgufModel::from_bytes(bytes, "q5k.gguf").unwrap();
    let err = model.load("k5").unwrap_err().to_string();
    assert!(
        err.contains("q5k.gguf") && err.contains("k5") && err.contains("Q5_K"),
        "{err}"
    );
    assert!(matches!(
        model.load("nope"),
        Err(WeightError::MissingTensor { .. })
    ));
}

/// Everything a caller may do with a parsed file; none of it may panic on any input.
fn exercise(bytes: Vec<u8>) {
    if let Ok(model) = GgufModel::from_bytes(bytes, "fuzz.gguf") {
        for name in model.names() {
            let _ = model.load(&name);
        }
        let _ = model.config_json();
        if let (Some(source), Ok(tokenizer)) = (model.chat_template(), model.tokenizer()) {
            let _ = ChatTemplate::for_tokenizer(source, &tokenizer);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn truncated_files_never_panic(cut in 0usize..2000) {
        let bytes = llama_writer(true).build();
        let cut = cut.min(bytes.len());
        exercise(bytes[..cut].to_vec());
    }

    #[test]
    fn bit_flips_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..8)) {
        let mut bytes = llama_writer(true).build();
        for (index, bit) in flips {
            let at = index.index(bytes.len());
            bytes[at] ^= 1 << bit;
        }
        exercise(bytes);
    }

    #[test]
    fn random_bytes_after_the_magic_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut bytes = b"GGUF\x03\0\0\0".to_vec();
        bytes.extend(tail);
        exercise(bytes);
    }
}
