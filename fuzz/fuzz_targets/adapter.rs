//! Arbitrary bytes as a PEFT adapter directory: a little-endian u16 gives the length of
//! `adapter_config.json`, the rest is `adapter_model.safetensors`. Reading it, and merging what
//! reads into the tiny Llama fixture (shapes, ranks and targets checked against the base), must
//! return errors, never panic.
#![no_main]

mod scratch;

use std::path::PathBuf;
use std::sync::OnceLock;

use hsd_model::weights::{ADAPTER_CONFIG, ADAPTER_WEIGHTS, PeftAdapter};
use hsd_model::{Backend, load_model};
use libfuzzer_sys::fuzz_target;

fn adapter_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| scratch::scratch_dir("adapter"))
}

fn tiny_llama() -> &'static str {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/hsd-model/tests/fixtures/tiny/llama"
    )
}

fuzz_target!(|data: &[u8]| {
    let [low, high, rest @ ..] = data else {
        return;
    };
    let config_len = usize::from(u16::from_le_bytes([*low, *high])).min(rest.len());
    let (config, weights) = rest.split_at(config_len);
    let dir = adapter_dir();
    std::fs::write(dir.join(ADAPTER_CONFIG), config).expect("writing the fuzz config");
    std::fs::write(dir.join(ADAPTER_WEIGHTS), weights).expect("writing the fuzz weights");
    if let Ok(adapter) = PeftAdapter::read(dir) {
        let mut model = load_model(tiny_llama(), Backend::Flex).expect("the tiny Llama fixture");
        let _ = model.decoder.merge_adapter(&adapter);
    }
});
