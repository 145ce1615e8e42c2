//! Teacher forcing feeds a strategy given tokens exactly as decoding would: along its own
//! greedy output a strategy agrees with every token, along vanilla's the full model agrees
//! with every token at zero KL, and a skipping strategy's distance shows.

mod backend;

use std::path::PathBuf;

use hsd_model::{Batch, Decoder, GenerateConfig, LoadedModel, load_model};
use hsd_skip::{KvFill, LayerPlan, LayerSet, LayerSignal, SignalKind, StepContext, Strategy};

const ARCHS: [&str; 4] = ["gpt2", "llama", "qwen2", "phi"];

fn tiny(arch: &str) -> LoadedModel {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tiny")
        .join(arch);
    load_model(dir.to_str().unwrap(), backend::test_backend()).unwrap()
}

/// Prompts of different lengths, so the batch is left-padded.
fn prompts() -> Vec<Vec<u32>> {
    vec![
        vec![17, 201, 5, 88, 140, 9, 260],
        vec![3, 99, 250, 42, 7],
        vec![120],
    ]
}

/// Every layer; the first layer skipped with either K/V fill; a plan that changes with the
/// step; and an exit after the first layer on odd steps (a dynamic strategy).
#[derive(Clone, Copy, Debug)]
enum Rule {
    Full,
    SkipFirst(KvFill),
    SkipOnOddSteps,
    ExitOnOddSteps,
}

impl Strategy for Rule {
    fn name(&self) -> &str {
        "rule"
    }

    fn plan(&mut self, cx: &StepContext) -> LayerPlan {
        let layers = cx.layers;
        match *self {
            Rule::Full => LayerPlan::full(layers),
            Rule::SkipFirst(kv_fill) => LayerPlan {
                run: LayerSet::from_fn(layers, |l| l != 0),
                kv_fill,
                checks: LayerSet::empty(layers),
            },
            Rule::SkipOnOddSteps => LayerPlan {
                run: LayerSet::from_fn(layers, |l| cx.t.is_multiple_of(2) || l == layers - 1),
                kv_fill: KvFill::Propagate,
                checks: LayerSet::empty(layers),
            },
            Rule::ExitOnOddSteps => LayerPlan::full(layers).with_checks(LayerSet::all(layers)),
        }
    }

    fn signal_kind(&self) -> SignalKind {
        SignalKind::Hidden
    }

    fn exit_after(&mut self, cx: &StepContext, layer: usize, _: &[LayerSignal<'_>]) -> bool {
        matches!(self, Rule::ExitOnOddSteps) && layer == 0 && cx.t % 2 == 1
    }
}

fn config(eos_ids: Vec<u32>) -> GenerateConfig {
    GenerateConfig {
        max_new_tokens: 10,
        eos_ids,
        pad_id: 0,
    }
}

fn greedy(decoder: &Decoder, rule: Rule, config: &GenerateConfig) -> Vec<Vec<u32>> {
    decoder
        .generate(&prompts(), &mut rule.clone(), config)
        .unwrap()
        .rows
        .into_iter()
        .map(|r| r.tokens)
        .collect()
}

#[test]
fn a_strategy_agrees_with_its_own_output_and_the_full_model_with_vanilla() {
    let rules = [
        Rule::Full,
        Rule::SkipFirst(KvFill::Propagate),
        Rule::SkipFirst(KvFill::None),
        Rule::SkipOnOddSteps,
        Rule::ExitOnOddSteps,
    ];
    for arch in ARCHS {
        let model = tiny(arch);
        let decoder = &model.decoder;
        // Rows of different lengths: the fourth vanilla token of the first row is an EOS.
        let eos = greedy(decoder, Rule::Full, &config(vec![]))[0][3];
        let config = config(vec![eos]);
        let batch = Batch::new(prompts(), 0).unwrap();
        let (_, cache) = decoder.prefill(&batch, config.max_new_tokens).unwrap();
        let vanilla = greedy(decoder, Rule::Full, &config);
        assert!(
            vanilla[0].len() <= 4 && vanilla[0].last() == Some(&eos),
            "{arch}"
        );

        let reference = decoder
            .forced_reference(cache.clone(), &vanilla, config.pad_id)
            .unwrap();
        let full = decoder
            .teacher_forced(cache.clone(), &mut Rule::Full, &config, &reference)
            .unwrap();
        for (row, agreement) in full.iter().enumerate() {
            assert_eq!(agreement.positions, vanilla[row].len() - 1, "{arch}");
            assert_eq!(agreement.top1_agreement, 1.0, "{arch}, row {row}");
            assert!(agreement.mean_kl < 1e-5, "{arch}, row {row}: {agreement:?}");
        }

        for rule in rules {
            let own = greedy(decoder, rule, &config);
            let own_reference = decoder
                .forced_reference(cache.clone(), &own, config.pad_id)
                .unwrap();
            let forced = decoder
                .teacher_forced(cache.clone(), &mut rule.clone(), &config, &own_reference)
                .unwrap();
            for (row, agreement) in forced.iter().enumerate() {
                assert_eq!(agreement.positions, own[row].len() - 1, "{arch}, {rule:?}");
                assert_eq!(
                    agreement.top1_agreement, 1.0,
                    "{arch}, {rule:?}, row {row}: forced steps differ from decoding"
                );
            }
        }

        let skipped = decoder
            .teacher_forced(
                cache.clone(),
                &mut Rule::SkipFirst(KvFill::Propagate),
                &config,
                &reference,
            )
            .unwrap();
        let mean_kl: f64 = skipped.iter().map(|a| a.mean_kl).sum::<f64>();
        assert!(mean_kl > 1e-4, "{arch}: skipping layer 1 changed nothing");
    }
}

#[test]
fn a_row_with_one_token_has_no_position() {
    let model = tiny("llama");
    let decoder = &model.decoder;
    let batch = Batch::new(prompts(), 0).unwrap();
    let (_, cache) = decoder.prefill(&batch, 4).unwrap();
    let tokens = vec![vec![5], vec![6, 7, 8], vec![9, 10]];
    let reference = decoder.forced_reference(cache.clone(), &tokens, 0).unwrap();
    let forced = decoder
        .teacher_forced(cache, &mut Rule::Full, &config(vec![]), &reference)
        .unwrap();
    let positions: Vec<usize> = forced.iter().map(|a| a.positions).collect();
    assert_eq!(positions, [0, 2, 1]);
    assert_eq!(forced[0].top1_agreement, 0.0);
    assert_eq!(forced[0].mean_kl, 0.0);
}
