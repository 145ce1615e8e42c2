//! Teacher forcing feeds a strategy given tokens exactly as decoding would: along its own
//! greedy output a strategy agrees with every token, along vanilla's the full model agrees
//! with every token at zero KL, and a skipping strategy's distance shows. Steps that check no
//! layer run as one chunk: they match the same steps run one at a time.

mod backend;
mod common;

use common::{ARCHS, Rule, tiny};
use hsd_model::{Batch, Decoder, GenerateConfig};
use hsd_skip::{KvFill, LayerPlan, LayerSet, LayerSignal, StepContext, Strategy};

/// Prompts of different lengths, so the batch is left-padded.
fn prompts() -> Vec<Vec<u32>> {
    vec![
        vec![17, 201, 5, 88, 140, 9, 260],
        vec![3, 99, 250, 42, 7],
        vec![120],
    ]
}

const RULES: [Rule; 7] = [
    Rule::Full,
    Rule::SkipFirst(KvFill::Propagate),
    Rule::SkipFirst(KvFill::None),
    Rule::SkipOnOddSteps(KvFill::Propagate),
    Rule::SkipOnOddSteps(KvFill::None),
    Rule::ExitOnOddSteps,
    Rule::ExitFromStepThree,
];

/// `Rule` with a check after its last running layer at every step, which never exits: the
/// same layers and tokens, but every step runs alone.
#[derive(Clone, Copy, Debug)]
struct Stepped(Rule);

impl Strategy for Stepped {
    fn name(&self) -> &str {
        "stepped"
    }

    fn plan(&mut self, cx: &StepContext) -> LayerPlan {
        let plan = self.0.plan(cx);
        let last = plan.run.iter().last().unwrap();
        let checks = LayerSet::from_indices(cx.layers, plan.checks.iter().chain([last]));
        plan.with_checks(checks)
    }

    fn exit_after(&mut self, cx: &StepContext, layer: usize, signals: &[LayerSignal<'_>]) -> bool {
        self.0.exit_after(cx, layer, signals)
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

        for rule in RULES {
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
fn chunked_steps_equal_steps_run_one_at_a_time() {
    for arch in ARCHS {
        let model = tiny(arch);
        let decoder = &model.decoder;
        let config = config(vec![]);
        let batch = Batch::new(prompts(), 0).unwrap();
        let (_, cache) = decoder.prefill(&batch, config.max_new_tokens).unwrap();
        // Rows of different lengths, as a batch's vanilla outputs end at different steps.
        let vanilla = greedy(decoder, Rule::Full, &config);
        let tokens: Vec<Vec<u32>> = vanilla
            .iter()
            .zip([10, 6, 8])
            .map(|(row, len)| row[..len].to_vec())
            .collect();
        let reference = decoder
            .forced_reference(cache.clone(), &tokens, config.pad_id)
            .unwrap();
        for rule in RULES {
            let chunked = decoder
                .teacher_forced(cache.clone(), &mut rule.clone(), &config, &reference)
                .unwrap();
            let stepped = decoder
                .teacher_forced(cache.clone(), &mut Stepped(rule), &config, &reference)
                .unwrap();
            for (row, (chunked, stepped)) in chunked.iter().zip(&stepped).enumerate() {
                assert_eq!(chunked.positions, stepped.positions, "{arch}, {rule:?}");
                assert_eq!(
                    chunked.top1_agreement, stepped.top1_agreement,
                    "{arch}, {rule:?}, row {row}"
                );
                assert!(
                    (chunked.mean_kl - stepped.mean_kl).abs() < 1e-5,
                    "{arch}, {rule:?}, row {row}: {chunked:?} vs {stepped:?}"
                );
            }
        }
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
