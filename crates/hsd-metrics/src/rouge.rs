//! ROUGE-N, ROUGE-L and ROUGE-Lsum exactly as Google's `rouge-score` 0.1.2 computes them
//! with `RougeScorer([...], use_stemmer=True)`.
//!
//! Tokenization: lowercase, every run of characters outside `[a-z0-9]` becomes a space,
//! split, Porter-stem tokens longer than three characters. ROUGE-Lsum splits both texts into
//! sentences on `\n` (rouge-score's `split_summaries=False`), scores the union LCS of each
//! reference sentence against all prediction sentences, and clips hits by token counts.
//! With several references the example takes, per ROUGE type, the reference with the highest
//! F-measure (the first on ties), as `score_multi` does. The corpus score is the mean of the
//! per-example scores (rouge-score's `BootstrapAggregator` reports a resampled estimate of
//! the same mean).

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;

use crate::metric::{Metric, MetricError, Scores, check_corpus, mean_per_key};

/// Precision, recall and F1 of one ROUGE type on one prediction/reference pair.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Prf {
    pub precision: f64,
    pub recall: f64,
    pub fmeasure: f64,
}

impl Prf {
    fn new(precision: f64, recall: f64) -> Self {
        let fmeasure = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        Prf {
            precision,
            recall,
            fmeasure,
        }
    }
}

/// A ROUGE type, as rouge-score names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RougeType {
    /// `rougeN`: n-gram overlap.
    N(usize),
    /// `rougeL`: longest common subsequence over the whole text.
    L,
    /// `rougeLsum`: summary-level union LCS over `\n`-separated sentences.
    Lsum,
}

impl RougeType {
    pub fn name(self) -> String {
        match self {
            RougeType::N(n) => format!("rouge{n}"),
            RougeType::L => "rougeL".to_owned(),
            RougeType::Lsum => "rougeLsum".to_owned(),
        }
    }
}

/// ROUGE with Porter stemming. Per example and for the corpus it reports `rouge1`, `rouge2`,
/// `rougeL`, `rougeLsum` (F-measures in 0..1) and `<type>_precision`, `<type>_recall`.
#[derive(Debug, Clone)]
pub struct Rouge {
    types: Vec<RougeType>,
    use_stemmer: bool,
}

impl Default for Rouge {
    fn default() -> Self {
        Rouge {
            types: vec![
                RougeType::N(1),
                RougeType::N(2),
                RougeType::L,
                RougeType::Lsum,
            ],
            use_stemmer: true,
        }
    }
}

impl Rouge {
    /// ROUGE with the given types; `use_stemmer` as rouge-score's flag.
    pub fn new(types: Vec<RougeType>, use_stemmer: bool) -> Self {
        Rouge { types, use_stemmer }
    }

    /// rouge-score's `tokenize.tokenize(text, stemmer)`.
    pub fn tokenize(&self, text: &str) -> Vec<String> {
        let lowered = crate::pytext::lower(text);
        lowered
            .split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
            .filter(|token| !token.is_empty())
            .map(|token| {
                if self.use_stemmer && token.len() > 3 {
                    crate::porter::stem(token)
                } else {
                    token.to_owned()
                }
            })
            .collect()
    }

    /// rouge-score's `RougeScorer.score(target, prediction)`: one reference.
    pub fn score_pair(&self, reference: &str, prediction: &str) -> Vec<Prf> {
        let needs_tokens = self.types.iter().any(|t| *t != RougeType::Lsum);
        let (ref_tokens, pred_tokens) = if needs_tokens {
            (self.tokenize(reference), self.tokenize(prediction))
        } else {
            (Vec::new(), Vec::new())
        };
        self.types
            .iter()
            .map(|rouge_type| match rouge_type {
                RougeType::N(n) => score_ngrams(&ref_tokens, &pred_tokens, *n),
                RougeType::L => score_lcs(&ref_tokens, &pred_tokens),
                RougeType::Lsum => {
                    let sentences = |text: &str| -> Vec<Vec<String>> {
                        text.split('\n')
                            .filter(|s| !s.is_empty())
                            .map(|s| self.tokenize(s))
                            .collect()
                    };
                    summary_level_lcs(&sentences(reference), &sentences(prediction))
                }
            })
            .collect()
    }

    /// rouge-score's `score_multi(targets, prediction)`: per type, the best reference by F.
    pub fn score_multi(&self, references: &[String], prediction: &str) -> Vec<Prf> {
        let per_reference: Vec<Vec<Prf>> = references
            .iter()
            .map(|r| self.score_pair(r, prediction))
            .collect();
        (0..self.types.len())
            .map(|t| {
                let mut best = per_reference[0][t];
                for scores in &per_reference[1..] {
                    if scores[t].fmeasure > best.fmeasure {
                        best = scores[t];
                    }
                }
                best
            })
            .collect()
    }
}

impl Metric for Rouge {
    fn name(&self) -> &str {
        "rouge"
    }

    fn score(
        &self,
        predictions: &[String],
        references: &[Vec<String>],
    ) -> Result<Scores, MetricError> {
        check_corpus(predictions, references)?;
        let per_example: Vec<BTreeMap<String, f64>> = predictions
            .par_iter()
            .zip(references.par_iter())
            .map(|(prediction, refs)| {
                let mut row = BTreeMap::new();
                for (rouge_type, prf) in self.types.iter().zip(self.score_multi(refs, prediction)) {
                    let name = rouge_type.name();
                    row.insert(format!("{name}_precision"), prf.precision);
                    row.insert(format!("{name}_recall"), prf.recall);
                    row.insert(name, prf.fmeasure);
                }
                row
            })
            .collect();
        Ok(Scores {
            corpus: mean_per_key(&per_example),
            per_example,
            signature: None,
        })
    }
}

fn ngram_counts(tokens: &[String], n: usize) -> HashMap<&[String], usize> {
    let mut counts = HashMap::new();
    if n > 0 && tokens.len() >= n {
        for window in tokens.windows(n) {
            *counts.entry(window).or_insert(0) += 1;
        }
    }
    counts
}

fn score_ngrams(reference: &[String], prediction: &[String], n: usize) -> Prf {
    let ref_counts = ngram_counts(reference, n);
    let pred_counts = ngram_counts(prediction, n);
    let overlap: usize = ref_counts
        .iter()
        .map(|(gram, &count)| count.min(pred_counts.get(gram).copied().unwrap_or(0)))
        .sum();
    let ref_total: usize = ref_counts.values().sum();
    let pred_total: usize = pred_counts.values().sum();
    Prf::new(
        overlap as f64 / pred_total.max(1) as f64,
        overlap as f64 / ref_total.max(1) as f64,
    )
}

/// The LCS length table, `(rows + 1) x (cols + 1)`, row-major.
fn lcs_table(reference: &[String], candidate: &[String]) -> Vec<u32> {
    let cols = candidate.len() + 1;
    let mut table = vec![0u32; (reference.len() + 1) * cols];
    for i in 1..=reference.len() {
        for j in 1..cols {
            table[i * cols + j] = if reference[i - 1] == candidate[j - 1] {
                table[(i - 1) * cols + j - 1] + 1
            } else {
                table[(i - 1) * cols + j].max(table[i * cols + j - 1])
            };
        }
    }
    table
}

fn score_lcs(reference: &[String], prediction: &[String]) -> Prf {
    if reference.is_empty() || prediction.is_empty() {
        return Prf::default();
    }
    let table = lcs_table(reference, prediction);
    let lcs = f64::from(table[table.len() - 1]);
    Prf::new(lcs / prediction.len() as f64, lcs / reference.len() as f64)
}

/// The reference indices of one LCS, read back the way rouge-score's `_backtrack_norec` does.
fn lcs_indices(reference: &[String], candidate: &[String]) -> Vec<usize> {
    let table = lcs_table(reference, candidate);
    let cols = candidate.len() + 1;
    let (mut i, mut j) = (reference.len(), candidate.len());
    let mut indices = Vec::new();
    while i > 0 && j > 0 {
        if reference[i - 1] == candidate[j - 1] {
            indices.push(i - 1);
            i -= 1;
            j -= 1;
        } else if table[i * cols + j - 1] > table[(i - 1) * cols + j] {
            j -= 1;
        } else {
            i -= 1;
        }
    }
    indices.reverse();
    indices
}

fn summary_level_lcs(reference: &[Vec<String>], prediction: &[Vec<String>]) -> Prf {
    let m: usize = reference.iter().map(Vec::len).sum();
    let n: usize = prediction.iter().map(Vec::len).sum();
    if m == 0 || n == 0 {
        return Prf::default();
    }
    let mut ref_counts: HashMap<&str, usize> = HashMap::new();
    let mut pred_counts: HashMap<&str, usize> = HashMap::new();
    for token in reference.iter().flatten() {
        *ref_counts.entry(token).or_insert(0) += 1;
    }
    for token in prediction.iter().flatten() {
        *pred_counts.entry(token).or_insert(0) += 1;
    }
    let mut hits = 0usize;
    for sentence in reference {
        let mut union: Vec<usize> = prediction
            .iter()
            .flat_map(|candidate| lcs_indices(sentence, candidate))
            .collect();
        union.sort_unstable();
        union.dedup();
        for token in union.into_iter().map(|i| sentence[i].as_str()) {
            let (Some(p), Some(r)) = (pred_counts.get_mut(token), ref_counts.get_mut(token)) else {
                continue;
            };
            if *p > 0 && *r > 0 {
                hits += 1;
                *p -= 1;
                *r -= 1;
            }
        }
    }
    Prf::new(hits as f64 / n as f64, hits as f64 / m as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_stems_only_long_tokens() {
        let rouge = Rouge::default();
        assert_eq!(
            rouge.tokenize("The cats' RUNNING, was 3.5x!"),
            ["the", "cat", "run", "was", "3", "5x"]
        );
    }

    #[test]
    fn lsum_uses_newline_sentences() {
        let rouge = Rouge::new(vec![RougeType::L, RougeType::Lsum], false);
        let scores = rouge.score_pair("a b c\nd e", "d e\na b c");
        assert!(scores[0].fmeasure < 1.0);
        assert_eq!(scores[1].fmeasure, 1.0);
    }

    #[test]
    fn multi_reference_takes_the_best_f() {
        let rouge = Rouge::new(vec![RougeType::N(1)], false);
        let scores = rouge.score_multi(&["x y".to_owned(), "a b".to_owned()], "a b");
        assert_eq!(scores[0].fmeasure, 1.0);
    }
}
