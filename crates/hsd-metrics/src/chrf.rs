//! chrF2 exactly as sacreBLEU 2.6.0's `CHRF()` computes it: character n-grams of orders 1..6
//! over the text with all whitespace removed, no word n-grams, beta 2, precision and recall
//! averaged over the orders that both sides have (sacreBLEU's effective order, `eff:yes`).
//! With several references an example keeps the statistics of its best reference by
//! sentence chrF (the first on ties); the corpus score is computed from the summed
//! statistics. Scores are in 0..100.

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;

use crate::metric::{Metric, MetricError, SACREBLEU_VERSION, Scores, check_corpus};
use crate::sacre;

const CHAR_ORDER: usize = 6;
const BETA: f64 = 2.0;

/// chrF2. Corpus and per-example key: `chrf`.
#[derive(Debug, Clone, Default)]
pub struct Chrf;

/// Per order: hypothesis n-grams, reference n-grams, matches.
type ChrfStats = [[usize; 3]; CHAR_ORDER];

/// The character n-gram counts of `text` without whitespace, orders 1..=6.
fn char_ngrams(text: &str) -> Vec<HashMap<String, usize>> {
    let chars: Vec<char> = crate::pytext::split(text).flat_map(str::chars).collect();
    (1..=CHAR_ORDER)
        .map(|n| {
            let mut counts = HashMap::new();
            for window in chars.windows(n) {
                *counts.entry(window.iter().collect::<String>()).or_insert(0) += 1;
            }
            counts
        })
        .collect()
}

fn match_stats(hyp: &[HashMap<String, usize>], reference: &[HashMap<String, usize>]) -> ChrfStats {
    let mut stats = [[0; 3]; CHAR_ORDER];
    for (order, (h, r)) in hyp.iter().zip(reference).enumerate() {
        let hyp_count: usize = h.values().sum();
        let matches: usize = h
            .iter()
            .map(|(gram, &c)| r.get(gram).map_or(0, |&rc| c.min(rc)))
            .sum();
        stats[order] = [
            if r.is_empty() { 0 } else { hyp_count },
            r.values().sum(),
            matches,
        ];
    }
    stats
}

/// sacreBLEU's `CHRF._compute_f_score` without epsilon smoothing.
fn f_score(stats: &ChrfStats) -> f64 {
    let factor = BETA * BETA;
    let (mut avg_prec, mut avg_rec, mut effective_order) = (0.0, 0.0, 0usize);
    for &[n_hyp, n_ref, n_match] in stats {
        if n_hyp > 0 && n_ref > 0 {
            avg_prec += n_match as f64 / n_hyp as f64;
            avg_rec += n_match as f64 / n_ref as f64;
            effective_order += 1;
        }
    }
    if effective_order == 0 {
        return 0.0;
    }
    avg_prec /= effective_order as f64;
    avg_rec /= effective_order as f64;
    if avg_prec + avg_rec == 0.0 {
        return 0.0;
    }
    100.0 * (1.0 + factor) * avg_prec * avg_rec / (factor * avg_prec + avg_rec)
}

fn segment_stats(hypothesis: &str, references: &[String]) -> ChrfStats {
    let hyp = char_ngrams(hypothesis);
    let mut best = ([[0; 3]; CHAR_ORDER], -1.0);
    for reference in references {
        let stats = match_stats(&hyp, &char_ngrams(reference));
        let f = f_score(&stats);
        if f > best.1 {
            best = (stats, f);
        }
    }
    best.0
}

impl Chrf {
    /// The sacreBLEU signature of a corpus score over `references`.
    pub fn signature(references: &[Vec<String>]) -> String {
        format!(
            "nrefs:{}|case:mixed|eff:yes|nc:{CHAR_ORDER}|nw:0|space:no|version:{SACREBLEU_VERSION}",
            sacre::nrefs(references)
        )
    }
}

impl Metric for Chrf {
    fn name(&self) -> &str {
        "chrf"
    }

    fn score(
        &self,
        predictions: &[String],
        references: &[Vec<String>],
    ) -> Result<Scores, MetricError> {
        check_corpus(predictions, references)?;
        let stats: Vec<ChrfStats> = predictions
            .par_iter()
            .zip(references.par_iter())
            .map(|(p, refs)| segment_stats(p, refs))
            .collect();
        let per_example = stats
            .iter()
            .map(|s| BTreeMap::from([("chrf".to_owned(), f_score(s))]))
            .collect();
        let mut total = [[0; 3]; CHAR_ORDER];
        for s in &stats {
            for (acc, order) in total.iter_mut().zip(s) {
                for k in 0..3 {
                    acc[k] += order[k];
                }
            }
        }
        let corpus = BTreeMap::from([("chrf".to_owned(), f_score(&total))]);
        Ok(Scores {
            corpus,
            per_example,
            signature: Some(Chrf::signature(references)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_does_not_count() {
        let a = Chrf
            .score(&["a b c".to_owned()], &[vec!["abc".to_owned()]])
            .unwrap();
        assert!((a.corpus["chrf"] - 100.0).abs() < 1e-9);
    }

    #[test]
    fn unrelated_text_scores_zero() {
        let a = Chrf
            .score(&["xyz".to_owned()], &[vec!["abc".to_owned()]])
            .unwrap();
        assert_eq!(a.corpus["chrf"], 0.0);
    }
}
