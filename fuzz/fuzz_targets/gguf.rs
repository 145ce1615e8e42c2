//! Arbitrary bytes as a GGUF file: parsing, and everything a parsed file offers, must return
//! errors, never panic or allocate beyond what the input's size allows.
#![no_main]

use hsd_model::chat::ChatTemplate;
use hsd_model::weights::{GgufModel, TensorSource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = GgufModel::from_bytes(data.to_vec(), "fuzz.gguf") {
        for name in model.names() {
            let _ = model.load(&name);
            // The quantized blocks `--weights native` keeps, and their decoding.
            if let Ok(Some(blocks)) = model.load_blocks(&name) {
                let _ = blocks.dequantize();
            }
        }
        let _ = model.config_json();
        if let (Some(source), Ok(tokenizer)) = (model.chat_template(), model.tokenizer()) {
            let _ = ChatTemplate::for_tokenizer(source, &tokenizer);
        }
    }
});
