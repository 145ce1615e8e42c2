//! What every metric shares: the [`Metric`] trait, its [`Scores`] and [`MetricError`], and the
//! corpus checks and averaging the implementations use.

use std::collections::BTreeMap;

use crate::wordnet::WordNetError;

/// The sacreBLEU release whose behaviour [`Bleu`] and [`Chrf`] reproduce; it is part of
/// their signatures.
pub const SACREBLEU_VERSION: &str = "2.6.0";

/// The scores of one metric on one corpus.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scores {
    /// Corpus-level scores by name (e.g. `rouge1`, `bleu`).
    pub corpus: BTreeMap<String, f64>,
    /// One map per example, in input order, with the same names as the metric defines them
    /// per sentence.
    pub per_example: Vec<BTreeMap<String, f64>>,
    /// The reference implementation's signature string, where it has one (sacreBLEU).
    pub signature: Option<String>,
}

/// What goes wrong when scoring.
#[derive(Debug, thiserror::Error)]
pub enum MetricError {
    #[error(
        "{predictions} predictions but {references} reference lists: they must pair up one to one"
    )]
    LengthMismatch {
        predictions: usize,
        references: usize,
    },
    #[error("example {index} has no reference")]
    NoReference { index: usize },
    #[error("nothing to score: the corpus is empty")]
    EmptyCorpus,
    #[error("unknown metric {name:?}: expected one of rouge, bleu, chrf, meteor, cider")]
    UnknownMetric { name: String },
    #[error(transparent)]
    WordNet(#[from] WordNetError),
}

/// A corpus-level metric with per-example scores.
pub trait Metric: Sync {
    /// The metric's name, as `hsd score --metric` spells it.
    fn name(&self) -> &str;
    /// Scores `predictions[i]` against `references[i]` (one or more strings) for every `i`.
    fn score(
        &self,
        predictions: &[String],
        references: &[Vec<String>],
    ) -> Result<Scores, MetricError>;
}

/// Checks the shape every metric needs: as many reference lists as predictions, none empty,
/// and at least one example.
pub(crate) fn check_corpus(
    predictions: &[String],
    references: &[Vec<String>],
) -> Result<(), MetricError> {
    if predictions.len() != references.len() {
        return Err(MetricError::LengthMismatch {
            predictions: predictions.len(),
            references: references.len(),
        });
    }
    if predictions.is_empty() {
        return Err(MetricError::EmptyCorpus);
    }
    match references.iter().position(Vec::is_empty) {
        Some(index) => Err(MetricError::NoReference { index }),
        None => Ok(()),
    }
}

/// The arithmetic mean of each key over the per-example maps (all of which share keys).
pub(crate) fn mean_per_key(per_example: &[BTreeMap<String, f64>]) -> BTreeMap<String, f64> {
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    for row in per_example {
        for (key, value) in row {
            *sums.entry(key.clone()).or_default() += value;
        }
    }
    let n = per_example.len() as f64;
    sums.into_iter().map(|(key, sum)| (key, sum / n)).collect()
}
