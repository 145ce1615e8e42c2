//! Arbitrary bytes as a safetensors file: parsing and loading every tensor must return errors,
//! never panic.
#![no_main]

use hsd_model::weights::{SafetensorsDir, TensorSource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(weights) = SafetensorsDir::from_bytes(data.to_vec(), "fuzz.safetensors") {
        for name in weights.names() {
            let _ = weights.load(&name);
        }
    }
});
