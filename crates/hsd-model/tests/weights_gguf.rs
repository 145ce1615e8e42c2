//! hsd's GGUF loader on SmolLM2-135M-Instruct against the tensors Hugging Face transformers
//! loads from the same file (`fixtures/gguf/make_fixture.py`): dequantization (Q8_0, Q4_1, F32),
//! PyTorch shapes, HF names, and the undone q/k row permutation.
//!
//! Needs the model file (`scripts/fetch-model.sh`), found in `$HSD_MODELS` or `<repo>/models`;
//! without it the test prints a notice and passes.

mod model_file;

use hsd_model::weights::{GgufModel, TensorSource};
use serde_json::Value;

const FIXTURE: &str = include_str!("fixtures/gguf/smollm2_135m_instruct_weights.json");

#[test]
fn smollm2_tensors_match_transformers() {
    let Some(path) = model_file::smollm2_gguf() else {
        return;
    };
    let fixture: Value = serde_json::from_str(FIXTURE).unwrap();
    let model = GgufModel::open(&path).unwrap();
    assert_eq!(
        model.contains("lm_head.weight"),
        !fixture["tied"].as_bool().unwrap()
    );
    for (name, want) in fixture["tensors"].as_object().unwrap() {
        let tensor = model.load(name).unwrap();
        let shape: Vec<usize> = want["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(tensor.shape, shape, "{name}");
        // Both sides compute d * q (+ m) in f32 from the same f16 scales, so the f32 values agree
        // exactly (compared as f32: serde_json may parse a decimal 1 ulp off in f64); the sums
        // differ only by summation order.
        for (index, value) in want["samples"].as_object().unwrap() {
            let index: usize = index.parse().unwrap();
            let value = value.as_f64().unwrap() as f32;
            assert_eq!(tensor.data[index], value, "{name}[{index}]");
        }
        let sum: f64 = tensor.data.iter().map(|&x| f64::from(x)).sum();
        let sum_sq: f64 = tensor
            .data
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum();
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
        assert!(
            close(sum, want["sum"].as_f64().unwrap()),
            "{name}: sum {sum} vs {}",
            want["sum"]
        );
        assert!(
            close(sum_sq, want["sum_sq"].as_f64().unwrap()),
            "{name}: sum_sq {sum_sq} vs {}",
            want["sum_sq"]
        );
    }
}

#[test]
fn smollm2_every_tensor_loads() {
    let Some(path) = model_file::smollm2_gguf() else {
        return;
    };
    let model = GgufModel::open(&path).unwrap();
    let mut elements = 0;
    for name in model.names() {
        let tensor = model.load(&name).unwrap();
        assert_eq!(tensor.data.len(), tensor.numel(), "{name}");
        assert!(tensor.data.iter().all(|x| x.is_finite()), "{name}");
        elements += tensor.numel();
    }
    // SmolLM2-135M: 134.5M parameters with the embedding stored once (tied)
    assert_eq!(elements, 134_515_008);
}
