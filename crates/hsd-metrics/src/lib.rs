//! Text-generation metrics in pure Rust, each equal to the implementation the field reports:
//!
//! | metric | reference implementation |
//! |---|---|
//! | [`Rouge`] (1, 2, L, Lsum) | Google `rouge-score` 0.1.2, Porter stemming |
//! | [`Bleu`] | sacreBLEU 2.6.0 corpus BLEU, 13a tokenizer, exp smoothing |
//! | [`Chrf`] | sacreBLEU 2.6.0 chrF2 |
//! | [`Meteor`] | NLTK 3.10 `meteor_score`, WordNet 3.0 |
//! | [`Cider`] | pycocoevalcap 1.2 `Cider` (CIDEr-D) |
//!
//! Every metric scores a corpus of predictions, each against one or more references, and
//! returns the corpus score together with one score per example (for bootstrap intervals).
//! Examples are scored in parallel with rayon.

mod bleu;
mod chrf;
mod cider;
mod meteor;
pub mod porter;
pub mod ptb;
mod pytext;
mod rouge;
mod sacre;
pub mod wordnet;

use std::collections::BTreeMap;

pub use bleu::Bleu;
pub use chrf::Chrf;
pub use cider::{Cider, CiderTokenization};
pub use meteor::{Meteor, tokenize as meteor_tokenize};
pub use rouge::{Prf, Rouge, RougeType};
pub use wordnet::WordNet;

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
    WordNet(#[from] wordnet::WordNetError),
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

/// The metric `name` with its default (reference) configuration; METEOR loads WordNet from
/// the places [`WordNet::locate`] searches.
pub fn by_name(name: &str) -> Result<Box<dyn Metric>, MetricError> {
    Ok(match name {
        "rouge" => Box::new(Rouge::default()),
        "bleu" => Box::new(Bleu),
        "chrf" => Box::new(Chrf),
        "meteor" => Box::new(Meteor::new(WordNet::load_default()?)),
        "cider" => Box::new(Cider::default()),
        _ => {
            return Err(MetricError::UnknownMetric {
                name: name.to_owned(),
            });
        }
    })
}

/// Checks the shape every metric needs: as many reference lists as predictions, none empty,
/// and at least one example.
fn check_corpus(predictions: &[String], references: &[Vec<String>]) -> Result<(), MetricError> {
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
fn mean_per_key(per_example: &[BTreeMap<String, f64>]) -> BTreeMap<String, f64> {
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    for row in per_example {
        for (key, value) in row {
            *sums.entry(key.clone()).or_default() += value;
        }
    }
    let n = per_example.len() as f64;
    sums.into_iter().map(|(key, sum)| (key, sum / n)).collect()
}
