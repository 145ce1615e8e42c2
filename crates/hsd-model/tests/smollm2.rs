//! SmolLM2-135M-Instruct (Q4_1 GGUF) against transformers' reading of the same file
//! (`fixtures/smollm2_reference.json`, made by `fixtures/make_fixtures.py --smollm2`).
//! Skipped with a notice when the model file is absent. Runs on the backend
//! `backend::test_backend` picks.

mod backend;
mod model_file;

use std::path::PathBuf;

use hsd_model::weights::PeftAdapter;
use hsd_model::{
    Backend, Batch, GenerateConfig, LoadedModel, SpeculativeConfig, WeightMode, load_model,
    load_model_with,
};
use hsd_skip::{LayerPlan, StepContext, Strategy, StrategyConfig};
use serde::Deserialize;

#[derive(Deserialize)]
struct Prompt {
    text: String,
    ids: Vec<u32>,
    top_ids: Vec<u32>,
    top_logits: Vec<f32>,
}

#[derive(Deserialize)]
struct Reference {
    prompts: Vec<Prompt>,
    greedy: Vec<u32>,
}

struct Full;

impl Strategy for Full {
    fn name(&self) -> &str {
        "full"
    }
    fn plan(&mut self, cx: &StepContext) -> LayerPlan {
        LayerPlan::full(cx.layers)
    }
}

#[test]
fn smollm2_matches_transformers() {
    let Some(path) = model_file::smollm2_gguf() else {
        return;
    };
    let model = load_model(path.to_str().unwrap(), backend::test_backend()).unwrap();
    let tokenizer = model.tokenizer().unwrap();
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smollm2_reference.json"),
    )
    .unwrap();
    let reference: Reference = serde_json::from_str(&text).unwrap();
    for prompt in &reference.prompts {
        assert_eq!(
            tokenizer.encode(&prompt.text, false).unwrap(),
            prompt.ids,
            "{:?}",
            prompt.text
        );
        let (logits, _) = model
            .decoder
            .prefill(&Batch::new(vec![prompt.ids.clone()], 0).unwrap(), 0)
            .unwrap();
        let row = logits.to_rows().unwrap().remove(0);
        let mut order: Vec<usize> = (0..row.len()).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        let top: Vec<u32> = order[..5].iter().map(|&i| i as u32).collect();
        assert_eq!(top, prompt.top_ids, "{:?}", prompt.text);
        for (&id, &want) in prompt.top_ids.iter().zip(&prompt.top_logits) {
            let got = row[id as usize];
            assert!(
                (got - want).abs() <= 1e-3 * want.abs().max(1.0),
                "{:?}: id {id}: {got} vs {want}",
                prompt.text
            );
        }
    }
    let first = &reference.prompts[0];
    assert_eq!(first.text, "The capital of France is");
    assert_eq!(
        tokenizer.decode(&first.top_ids[..1], false).unwrap(),
        " Paris"
    );
    let config = GenerateConfig {
        max_new_tokens: reference.greedy.len(),
        eos_ids: vec![],
        pad_id: 0,
    };
    let out = model
        .decoder
        .generate(std::slice::from_ref(&first.ids), &mut Full, &config)
        .unwrap();
    assert_eq!(out.rows[0].tokens, reference.greedy);
}

/// Lossless decoding on the real model: whatever drafts, the tokens are vanilla's, alone and
/// in a left-padded batch.
#[test]
fn smollm2_speculative_tokens_equal_vanilla() {
    let Some(path) = model_file::smollm2_gguf() else {
        return;
    };
    let model = load_model(path.to_str().unwrap(), backend::test_backend()).unwrap();
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smollm2_reference.json"),
    )
    .unwrap();
    let reference: Reference = serde_json::from_str(&text).unwrap();
    let prompts: Vec<Vec<u32>> = reference.prompts.iter().map(|p| p.ids.clone()).collect();
    let config = GenerateConfig {
        max_new_tokens: 24,
        eos_ids: model.tokenizer().unwrap().eos_ids().to_vec(),
        pad_id: 0,
    };
    let layers = model.shapes.layers;
    for batch in [&prompts[..1], &prompts[..]] {
        let vanilla = model.decoder.generate(batch, &mut Full, &config).unwrap();
        for (name, target) in [("hsd", 0.5), ("skipdecode", 0.4), ("random", 0.5)] {
            let drafter =
                StrategyConfig::from_settings(name, &[format!("target_skip_ratio={target}")])
                    .unwrap();
            for speculative in [SpeculativeConfig::fixed(3), SpeculativeConfig::adaptive(2)] {
                let mut strategy = drafter.build(layers, config.max_new_tokens).unwrap();
                let out = model
                    .decoder
                    .generate_speculative(batch, strategy.as_mut(), &config, &speculative)
                    .unwrap();
                for (ours, theirs) in out.generation.rows.iter().zip(&vanilla.rows) {
                    assert_eq!(
                        ours.tokens,
                        theirs.tokens,
                        "{name}@{target}, {speculative:?}, batch of {}",
                        batch.len()
                    );
                }
                assert!(out.stats.drafted > 0);
            }
        }
    }
}

/// `--weights native` (the GGUF's Q4_1 and Q8_0 blocks read by the quantized kernels) against
/// the dequantized `f32` reference: every projection native on Flex, prompt logits within
/// 1e-3 relative, greedy tokens equal alone and in a batch, speculative verify passes (a few
/// rows) on blocks too, and the same for prompts long enough for the tiled prefill.
#[test]
fn smollm2_native_weights_match_f32() {
    let Some(path) = model_file::smollm2_gguf() else {
        return;
    };
    let backend = backend::test_backend();
    let spec = path.to_str().unwrap();
    let mut reference = load_model(spec, backend).unwrap();
    let mut native = load_model_with(spec, backend, WeightMode::Native).unwrap();
    assert_eq!(reference.decoder.native_projections(), (0, 210));
    if backend == Backend::Flex {
        assert_eq!(native.decoder.native_projections(), (210, 210));
    }
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smollm2_reference.json"),
    )
    .unwrap();
    let prompts: Vec<Vec<u32>> = serde_json::from_str::<Reference>(&text)
        .unwrap()
        .prompts
        .into_iter()
        .map(|p| p.ids)
        .collect();
    assert!(
        prompts.iter().all(|p| p.len() <= 16),
        "prefill must take the block kernel"
    );
    for ids in &prompts {
        assert_prompt_logits_close(&reference, &native, ids);
    }
    let config = GenerateConfig {
        max_new_tokens: 24,
        eos_ids: reference.tokenizer().unwrap().eos_ids().to_vec(),
        pad_id: 0,
    };
    for batch in [&prompts[..1], &prompts[..]] {
        let want = reference
            .decoder
            .generate(batch, &mut Full, &config)
            .unwrap();
        let got = native.decoder.generate(batch, &mut Full, &config).unwrap();
        for (g, w) in got.rows.iter().zip(&want.rows) {
            assert_eq!(g.tokens, w.tokens, "batch of {}", batch.len());
        }
        let drafter =
            StrategyConfig::from_settings("hsd", &["target_skip_ratio=0.5".to_string()]).unwrap();
        let mut strategy = drafter
            .build(native.shapes.layers, config.max_new_tokens)
            .unwrap();
        let lossless = native
            .decoder
            .generate_speculative(
                batch,
                strategy.as_mut(),
                &config,
                &SpeculativeConfig::fixed(3),
            )
            .unwrap();
        for (g, w) in lossless.generation.rows.iter().zip(&want.rows) {
            assert_eq!(g.tokens, w.tokens, "speculative, batch of {}", batch.len());
        }
        // Drafts on blocks for the f32 verifier: the tokens are f32's, skipping or not, and
        // the full plan on blocks (the same weight values) has nearly every draft accepted.
        let mut skipping = drafter
            .build(native.shapes.layers, config.max_new_tokens)
            .unwrap();
        for strategy in [&mut Full as &mut dyn Strategy, skipping.as_mut()] {
            let mixed = reference
                .decoder
                .generate_speculative_with(
                    &native.decoder,
                    batch,
                    strategy,
                    &config,
                    &SpeculativeConfig::fixed(4),
                )
                .unwrap();
            for (g, w) in mixed.generation.rows.iter().zip(&want.rows) {
                assert_eq!(
                    g.tokens,
                    w.tokens,
                    "native drafts, batch of {}",
                    batch.len()
                );
            }
            if strategy.name() == "full" && backend == Backend::Flex {
                let acceptance = mixed.stats.acceptance_rate().unwrap();
                assert!(acceptance > 0.9, "full-plan native drafts: {acceptance}");
            }
        }
    }
    // Prompts longer than a decode pass prefill with the tiled attention over the cache and the
    // SIMD SwiGLU: 150 and 97 tokens (the fixtures' ids over and over), over three and two
    // 64-row tiles, the shorter left-padded in a batch.
    let fixture_ids = prompts.concat();
    let long: Vec<Vec<u32>> = [150, 97]
        .iter()
        .map(|&len| fixture_ids.iter().copied().cycle().take(len).collect())
        .collect();
    for ids in &long {
        assert_prompt_logits_close(&reference, &native, ids);
    }
    let want = reference
        .decoder
        .generate(&long, &mut Full, &config)
        .unwrap();
    let got = native.decoder.generate(&long, &mut Full, &config).unwrap();
    for (g, w) in got.rows.iter().zip(&want.rows) {
        assert_eq!(g.tokens, w.tokens, "long prompts");
    }
    // An adapter merges into the f32 weights and rides beside the blocks as a low-rank term.
    let adapter = PeftAdapter::read(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../adapters/plain/e2e"),
    )
    .unwrap();
    reference.decoder.merge_adapter(&adapter).unwrap();
    native.decoder.merge_adapter(&adapter).unwrap();
    assert_prompt_logits_close(&reference, &native, &prompts[2]);
    let want = reference
        .decoder
        .generate(&prompts[..1], &mut Full, &config)
        .unwrap();
    let got = native
        .decoder
        .generate(&prompts[..1], &mut Full, &config)
        .unwrap();
    assert_eq!(got.rows[0].tokens, want.rows[0].tokens, "with the adapter");
}

/// The prompt's next-token logits from `native` within 1e-3 of the largest of `reference`'s.
fn assert_prompt_logits_close(reference: &LoadedModel, native: &LoadedModel, ids: &[u32]) {
    let batch = Batch::new(vec![ids.to_vec()], 0).unwrap();
    let want = reference
        .decoder
        .prefill(&batch, 0)
        .unwrap()
        .0
        .to_rows()
        .unwrap();
    let got = native
        .decoder
        .prefill(&batch, 0)
        .unwrap()
        .0
        .to_rows()
        .unwrap();
    let scale = want[0].iter().fold(1.0f32, |m, v| m.max(v.abs()));
    for (g, w) in got[0].iter().zip(&want[0]) {
        assert!((g - w).abs() <= 1e-3 * scale, "{ids:?}: {g} vs {w}");
    }
}
