//! What skipping does to the text beyond the task metric, from the records alone: how far an
//! output follows the same model's vanilla output token for token, and whether it degenerates
//! (repeats itself, or says nothing). ROUGE can move little while outputs collapse
//! (FFN-SkipLLM, EMNLP 2024); these say when they do.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::records::TeacherForced;

/// The n-gram length of the repetition measure.
pub const REPEAT_NGRAM: usize = 4;

/// One output's tokens and text, as its record holds them.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    pub example: String,
    pub tokens: Vec<u32>,
    /// The prediction is empty once whitespace is trimmed.
    pub empty: bool,
    /// The record's teacher-forced agreement, when its run measured one.
    pub teacher_forced: Option<TeacherForced>,
}

/// A run's faithfulness, averaged over its examples. Every field is absent in summaries
/// written before these measures existed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Faithfulness {
    /// Mean share of token positions equal to the vanilla output's at the same position, over
    /// the longer of the two; `None` without a vanilla run of the same model and dataset.
    pub vanilla_agreement: Option<f64>,
    /// Mean index of the first token that differs from the vanilla output (its length when
    /// none does, the shorter length when one output is a prefix of the other).
    pub first_divergence: Option<f64>,
    /// Mean share of an output's 4-grams that repeat an earlier 4-gram of the same output.
    pub repeated_4grams: Option<f64>,
    /// Share of outputs that are empty.
    pub empty_share: Option<f64>,
    /// Mean over examples of the teacher-forced top-1 agreement with vanilla's tokens (the
    /// strategy fed vanilla's output, so one early change does not rewrite the rest).
    pub forced_agreement: Option<f64>,
    /// Mean over examples of the teacher-forced mean KL(full || strategy), in nats.
    pub forced_kl: Option<f64>,
}

impl Faithfulness {
    /// The summary columns, in order, with each field's value.
    pub fn columns(&self) -> [(&'static str, Option<f64>); 6] {
        [
            ("vanilla_agreement", self.vanilla_agreement),
            ("first_divergence", self.first_divergence),
            ("repeated_4grams", self.repeated_4grams),
            ("empty_share", self.empty_share),
            ("forced_agreement", self.forced_agreement),
            ("forced_kl", self.forced_kl),
        ]
    }

    /// The fields from [`Self::columns`]' values, in the same order.
    pub fn from_columns(values: [Option<f64>; 6]) -> Self {
        let [
            vanilla_agreement,
            first_divergence,
            repeated_4grams,
            empty_share,
            forced_agreement,
            forced_kl,
        ] = values;
        Self {
            vanilla_agreement,
            first_divergence,
            repeated_4grams,
            empty_share,
            forced_agreement,
            forced_kl,
        }
    }
}

/// `outputs` against `vanilla` (the same model and dataset's full decoding), matched by
/// example; examples that vanilla lacks count toward the degeneration measures only.
pub fn faithfulness(outputs: &[Output], vanilla: Option<&[Output]>) -> Faithfulness {
    let by_example: BTreeMap<&str, &[u32]> = vanilla
        .unwrap_or_default()
        .iter()
        .map(|o| (o.example.as_str(), o.tokens.as_slice()))
        .collect();
    let paired: Vec<(f64, f64)> = outputs
        .iter()
        .filter_map(|o| {
            let reference = by_example.get(o.example.as_str())?;
            let (share, divergence) = agreement(&o.tokens, reference);
            Some((share, divergence as f64))
        })
        .collect();
    let (vanilla_agreement, first_divergence) = if vanilla.is_none() || paired.is_empty() {
        (None, None)
    } else {
        (
            Some(mean(paired.iter().map(|p| p.0))),
            Some(mean(paired.iter().map(|p| p.1))),
        )
    };
    let forced: Vec<TeacherForced> = outputs.iter().filter_map(|o| o.teacher_forced).collect();
    let forced_mean = |field: fn(&TeacherForced) -> f64| {
        (!forced.is_empty()).then(|| mean(forced.iter().map(field)))
    };
    Faithfulness {
        forced_agreement: forced_mean(|f| f.top1_agreement),
        forced_kl: forced_mean(|f| f.mean_kl),
        vanilla_agreement,
        first_divergence,
        repeated_4grams: Some(mean(
            outputs
                .iter()
                .map(|o| repeated_ngram_share(&o.tokens, REPEAT_NGRAM)),
        )),
        empty_share: Some(mean(outputs.iter().map(|o| f64::from(u8::from(o.empty))))),
    }
}

/// (share of positions `i < max(len)` where both outputs hold the same token, first index
/// where they differ or one ends). Two empty outputs agree fully.
pub fn agreement(ours: &[u32], vanilla: &[u32]) -> (f64, usize) {
    let longest = ours.len().max(vanilla.len());
    let equal = ours.iter().zip(vanilla).filter(|(a, b)| a == b).count();
    let first_divergence = ours
        .iter()
        .zip(vanilla)
        .position(|(a, b)| a != b)
        .unwrap_or(ours.len().min(vanilla.len()));
    let share = if longest == 0 {
        1.0
    } else {
        equal as f64 / longest as f64
    };
    (share, first_divergence)
}

/// The share of `tokens`' `n`-grams that equal an earlier `n`-gram of the same sequence; 0 when
/// it has fewer than `n` tokens.
pub fn repeated_ngram_share(tokens: &[u32], n: usize) -> f64 {
    if n == 0 || tokens.len() < n {
        return 0.0;
    }
    let mut seen = HashSet::new();
    let windows = tokens.windows(n);
    let total = windows.len();
    let repeated = windows.filter(|w| !seen.insert(*w)).count();
    repeated as f64 / total as f64
}

/// The mean of `values`, 0 when there are none.
fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    if count == 0 { 0.0 } else { sum / count as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(example: &str, tokens: &[u32]) -> Output {
        Output {
            example: example.into(),
            tokens: tokens.to_vec(),
            empty: tokens.is_empty(),
            teacher_forced: None,
        }
    }

    #[test]
    fn agreement_counts_positions_over_the_longer_output() {
        assert_eq!(agreement(&[1, 2, 3, 4], &[1, 2, 3, 4]), (1.0, 4));
        assert_eq!(agreement(&[1, 2, 9, 4], &[1, 2, 3, 4]), (0.75, 2));
        // A prefix diverges where it ends; positions past it count as different.
        assert_eq!(agreement(&[1, 2], &[1, 2, 3, 4]), (0.5, 2));
        assert_eq!(agreement(&[], &[]), (1.0, 0));
        assert_eq!(agreement(&[5], &[]), (0.0, 0));
    }

    #[test]
    fn repeated_four_grams() {
        assert_eq!(repeated_ngram_share(&[1, 2, 3], 4), 0.0);
        assert_eq!(repeated_ngram_share(&[1, 2, 3, 4, 5, 6], 4), 0.0);
        // 1 2 3 4 1 2 3 4: windows 1234 2341 3412 4123 1234 -> one of five repeats.
        assert_eq!(repeated_ngram_share(&[1, 2, 3, 4, 1, 2, 3, 4], 4), 0.2);
        // A collapsed output: every window after the first repeats it.
        assert_eq!(repeated_ngram_share(&[7; 10], 4), 6.0 / 7.0);
    }

    #[test]
    fn runs_are_matched_to_vanilla_by_example() {
        let vanilla = [output("a", &[1, 2, 3, 4]), output("b", &[5, 6])];
        let skipped = [
            output("b", &[5, 7]),
            output("a", &[1, 2, 3, 4]),
            output("c", &[]),
        ];
        let mut skipped = skipped;
        for (output, agreement) in skipped.iter_mut().zip([0.5, 1.0]) {
            output.teacher_forced = Some(TeacherForced {
                positions: 3,
                top1_agreement: agreement,
                mean_kl: 2.0 * (1.0 - agreement),
            });
        }
        let f = faithfulness(&skipped, Some(&vanilla));
        // Examples without a teacher-forced pass ("c") are left out of its means.
        assert_eq!((f.forced_agreement, f.forced_kl), (Some(0.75), Some(0.5)));
        assert_eq!(f.vanilla_agreement, Some(0.75));
        assert_eq!(f.first_divergence, Some(2.5));
        assert_eq!(f.empty_share, Some(1.0 / 3.0));
        assert_eq!(f.repeated_4grams, Some(0.0));
        assert_eq!(Faithfulness::from_columns(f.columns().map(|c| c.1)), f);
        let alone = faithfulness(&skipped, None);
        assert_eq!(
            (alone.vanilla_agreement, alone.first_divergence),
            (None, None)
        );
        assert_eq!(
            faithfulness(&vanilla, Some(&vanilla)).vanilla_agreement,
            Some(1.0)
        );
    }
}
