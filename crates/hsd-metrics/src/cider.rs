//! CIDEr-D exactly as pycocoevalcap 1.2's `Cider` computes it: n-grams of orders 1..4,
//! TF-IDF weights with document frequencies counted over the evaluated corpus's references,
//! `idf = log(N) - log(max(1, df))`, hypothesis weights clipped by the reference's, a Gaussian
//! length penalty with sigma 6, the mean over orders and references, times 10.
//!
//! One quirk is kept on purpose: pycocoevalcap's length, which the penalty compares, counts
//! the bigrams of a sentence, not its words.
//!
//! pycocoevalcap tokenizes with Stanford CoreNLP's PTBTokenizer (Java) and drops punctuation
//! tokens; [`CiderTokenization::Ptb`] is this crate's Rust rendering of that ([`crate::ptb`]),
//! and [`CiderTokenization::Whitespace`] takes text that is already tokenized.

use std::collections::{BTreeMap, HashMap, HashSet};

use rayon::prelude::*;

use crate::metric::{Metric, MetricError, Scores, check_corpus};
use crate::ptb;

const MAX_ORDER: usize = 4;
const SIGMA: f64 = 6.0;

/// How [`Cider`] splits text into words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CiderTokenization {
    /// PTB tokens, lowercased, punctuation removed (pycocoevalcap's `PTBTokenizer`).
    #[default]
    Ptb,
    /// Split on whitespace: for text tokenized beforehand.
    Whitespace,
}

/// CIDEr-D. Corpus and per-example key: `cider`.
#[derive(Debug, Clone, Default)]
pub struct Cider {
    pub tokenization: CiderTokenization,
}

/// Ordered, so the floating-point sums over n-grams below run in the same order on every run
/// (a `HashMap`'s order is seeded per map, which moved CIDEr in its last bits between runs).
type Counts = BTreeMap<Vec<String>, f64>;

fn ngram_counts(tokens: &[String]) -> Counts {
    let mut counts = Counts::new();
    for n in 1..=MAX_ORDER {
        for window in tokens.windows(n) {
            *counts.entry(window.to_vec()).or_insert(0.0) += 1.0;
        }
    }
    counts
}

/// One sentence's TF-IDF vectors per order, their norms, and pycocoevalcap's length.
struct Weighted {
    vectors: [BTreeMap<Vec<String>, f64>; MAX_ORDER],
    norms: [f64; MAX_ORDER],
    length: f64,
}

fn weigh(
    counts: &Counts,
    document_frequency: &HashMap<Vec<String>, f64>,
    log_corpus_size: f64,
) -> Weighted {
    let mut vectors: [BTreeMap<Vec<String>, f64>; MAX_ORDER] = Default::default();
    let mut norms = [0.0; MAX_ORDER];
    let mut length = 0.0;
    for (gram, &tf) in counts {
        let df = document_frequency
            .get(gram)
            .copied()
            .unwrap_or(0.0)
            .max(1.0)
            .ln();
        let n = gram.len() - 1;
        let weight = tf * (log_corpus_size - df);
        norms[n] += weight * weight;
        vectors[n].insert(gram.clone(), weight);
        if n == 1 {
            length += tf;
        }
    }
    Weighted {
        vectors,
        norms: norms.map(f64::sqrt),
        length,
    }
}

fn similarity(hyp: &Weighted, reference: &Weighted) -> [f64; MAX_ORDER] {
    let delta = hyp.length - reference.length;
    let penalty = std::f64::consts::E.powf(-(delta * delta) / (2.0 * SIGMA * SIGMA));
    std::array::from_fn(|n| {
        let mut value: f64 = hyp.vectors[n]
            .iter()
            .map(|(gram, &h)| {
                let r = reference.vectors[n].get(gram).copied().unwrap_or(0.0);
                h.min(r) * r
            })
            .sum();
        if hyp.norms[n] != 0.0 && reference.norms[n] != 0.0 {
            value /= hyp.norms[n] * reference.norms[n];
        }
        value * penalty
    })
}

impl Cider {
    /// Words of each caption, `captions` read in order. pycocoevalcap's `COCOEvalCap` tokenizes
    /// the references in one CoreNLP call and the predictions in another, a caption a line, and
    /// a few of CoreNLP's rules look past a line's end into the next caption; so PTB tokens
    /// come from the whole sequence, as there.
    fn tokenize<S: AsRef<str> + Sync>(&self, captions: &[S]) -> Vec<Vec<String>> {
        // pycocoevalcap's scorer splits the tokenized caption with `str.split()`, which also
        // cuts the no-break spaces inside CoreNLP's `1 1/2` and phone numbers.
        let words = |text: &str| crate::pytext::split(text).map(str::to_owned).collect();
        match self.tokenization {
            CiderTokenization::Ptb => ptb::tokenize_captions_for_coco(captions)
                .iter()
                .map(|tokens| words(&tokens.join(" ")))
                .collect(),
            CiderTokenization::Whitespace => {
                captions.par_iter().map(|c| words(c.as_ref())).collect()
            }
        }
    }

    /// [`Self::tokenize`] over every reference, in order, regrouped per example.
    fn tokenize_references(&self, references: &[Vec<String>]) -> Vec<Vec<Vec<String>>> {
        let flat: Vec<&String> = references.iter().flatten().collect();
        let mut words = self.tokenize(&flat).into_iter();
        references
            .iter()
            .map(|refs| words.by_ref().take(refs.len()).collect())
            .collect()
    }
}

impl Metric for Cider {
    fn name(&self) -> &str {
        "cider"
    }

    fn score(
        &self,
        predictions: &[String],
        references: &[Vec<String>],
    ) -> Result<Scores, MetricError> {
        check_corpus(predictions, references)?;
        let hyp_counts: Vec<Counts> = self
            .tokenize(predictions)
            .par_iter()
            .map(|words| ngram_counts(words))
            .collect();
        let ref_counts: Vec<Vec<Counts>> = self
            .tokenize_references(references)
            .par_iter()
            .map(|refs| refs.iter().map(|words| ngram_counts(words)).collect())
            .collect();
        let mut document_frequency: HashMap<Vec<String>, f64> = HashMap::new();
        for refs in &ref_counts {
            let grams: HashSet<&Vec<String>> = refs.iter().flat_map(|c| c.keys()).collect();
            for gram in grams {
                *document_frequency.entry(gram.clone()).or_insert(0.0) += 1.0;
            }
        }
        let log_corpus_size = (predictions.len() as f64).ln();
        let per_example: Vec<BTreeMap<String, f64>> = hyp_counts
            .par_iter()
            .zip(ref_counts.par_iter())
            .map(|(hyp, refs)| {
                let hyp = weigh(hyp, &document_frequency, log_corpus_size);
                let mut sum = [0.0; MAX_ORDER];
                for reference in refs {
                    let sim = similarity(
                        &hyp,
                        &weigh(reference, &document_frequency, log_corpus_size),
                    );
                    for (acc, s) in sum.iter_mut().zip(sim) {
                        *acc += s;
                    }
                }
                let mean = sum.iter().sum::<f64>() / MAX_ORDER as f64;
                BTreeMap::from([("cider".to_owned(), mean / refs.len() as f64 * 10.0)])
            })
            .collect();
        let corpus = crate::metric::mean_per_key(&per_example);
        Ok(Scores {
            corpus,
            per_example,
            signature: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hypothesis_equal_to_its_only_reference_scores_ten_when_ngrams_are_unique() {
        let cider = Cider {
            tokenization: CiderTokenization::Whitespace,
        };
        let preds = vec!["a b c d e".to_owned(), "f g h i j".to_owned()];
        let refs = vec![vec!["a b c d e".to_owned()], vec!["f g h i j".to_owned()]];
        let scores = cider.score(&preds, &refs).unwrap();
        assert!((scores.corpus["cider"] - 10.0).abs() < 1e-9);
    }

    #[test]
    fn ptb_words_are_split_at_no_break_spaces_as_pycocoevalcap_splits_them() {
        // CoreNLP keeps `1 1/2` as one token with a no-break space; the scorer's `split()`
        // makes it two words.
        let cider = Cider {
            tokenization: CiderTokenization::Ptb,
        };
        assert_eq!(cider.tokenize(&["1 1/2 cups"]), [["1", "1/2", "cups"]]);
    }

    #[test]
    fn ptb_references_are_read_in_sequence_as_coco_eval_cap_reads_them() {
        // CoreNLP splits an initial's period off before a capitalized word on the next line.
        let cider = Cider {
            tokenization: CiderTokenization::Ptb,
        };
        let refs = vec![
            vec!["He met Serie A.".to_owned()],
            vec!["The end".to_owned(), "Serie A.".to_owned()],
        ];
        assert_eq!(
            cider.tokenize_references(&refs),
            [
                vec![vec!["he", "met", "serie", "a"]],
                vec![vec!["the", "end"], vec!["serie", "a."]],
            ]
        );
    }

    #[test]
    fn scores_are_bit_identical_from_one_call_to_the_next() {
        let cider = Cider {
            tokenization: CiderTokenization::Whitespace,
        };
        let words = [
            "the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far", "away",
        ];
        let sentence = |seed: usize, len: usize| -> String {
            (0..len)
                .map(|i| words[(seed * 7 + i * i * 3 + i) % words.len()])
                .collect::<Vec<_>>()
                .join(" ")
        };
        let preds: Vec<String> = (0..40).map(|i| sentence(i, 8 + i % 9)).collect();
        let refs: Vec<Vec<String>> = (0..40)
            .map(|i| {
                (1..4)
                    .map(|r| sentence(i + 13 * r, 6 + (i + r) % 11))
                    .collect()
            })
            .collect();
        let first = cider.score(&preds, &refs).unwrap();
        for _ in 0..10 {
            let again = cider.score(&preds, &refs).unwrap();
            assert_eq!(
                again.corpus["cider"].to_bits(),
                first.corpus["cider"].to_bits()
            );
            assert_eq!(again.per_example, first.per_example);
        }
    }
}
