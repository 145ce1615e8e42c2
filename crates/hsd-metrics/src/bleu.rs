//! BLEU exactly as sacreBLEU 2.6.0's `BLEU()` computes it: `13a` tokenization, n-grams up to
//! 4, counts clipped by the maximum over the references, the closest reference length
//! (the shorter on ties) for the brevity penalty, and `exp` smoothing. The corpus score sums
//! the statistics of all examples; per-example scores are sacreBLEU's sentence BLEU with
//! `effective_order=True`, its recommended setting for single sentences. Scores are in 0..100.

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;

use crate::metric::{Metric, MetricError, SACREBLEU_VERSION, Scores, check_corpus};
use crate::sacre;

const MAX_ORDER: usize = 4;

/// sacreBLEU's `my_log(0)`.
const LOG_ZERO: f64 = -9_999_999_999.0;

/// Corpus BLEU. Corpus keys: `bleu`, `bp`, `sys_len`, `ref_len`, `precision1..4`; per example:
/// `bleu`.
#[derive(Debug, Clone, Default)]
pub struct Bleu;

/// The sufficient statistics of one example (or, summed, of a corpus).
#[derive(Debug, Clone, Copy, Default)]
struct BleuStats {
    hyp_len: usize,
    ref_len: usize,
    correct: [usize; MAX_ORDER],
    total: [usize; MAX_ORDER],
}

impl BleuStats {
    fn add(mut self, other: BleuStats) -> BleuStats {
        self.hyp_len += other.hyp_len;
        self.ref_len += other.ref_len;
        for n in 0..MAX_ORDER {
            self.correct[n] += other.correct[n];
            self.total[n] += other.total[n];
        }
        self
    }
}

/// sacreBLEU's `compute_bleu` result.
struct BleuScore {
    score: f64,
    bp: f64,
    precisions: [f64; MAX_ORDER],
}

fn ngram_counts(tokens: &[&str]) -> HashMap<Vec<String>, usize> {
    let mut counts = HashMap::new();
    for n in 1..=MAX_ORDER {
        for window in tokens.windows(n) {
            *counts
                .entry(window.iter().map(|t| (*t).to_owned()).collect())
                .or_insert(0) += 1;
        }
    }
    counts
}

fn closest_ref_len(hyp_len: usize, ref_lens: &[usize]) -> usize {
    let mut closest: Option<(usize, usize)> = None;
    for &len in ref_lens {
        let diff = hyp_len.abs_diff(len);
        closest = match closest {
            Some((best_diff, best_len))
                if diff > best_diff || (diff == best_diff && len >= best_len) =>
            {
                Some((best_diff, best_len))
            }
            _ => Some((diff, len)),
        };
    }
    closest.map_or(0, |(_, len)| len)
}

fn segment_stats(hypothesis: &str, references: &[String]) -> BleuStats {
    let hyp = sacre::tokenize_13a(hypothesis);
    let hyp_tokens: Vec<&str> = crate::pytext::split(&hyp).collect();
    let mut max_ref_counts: HashMap<Vec<String>, usize> = HashMap::new();
    let mut ref_lens = Vec::with_capacity(references.len());
    for reference in references {
        let tokenized = sacre::tokenize_13a(reference);
        let tokens: Vec<&str> = crate::pytext::split(&tokenized).collect();
        ref_lens.push(tokens.len());
        for (gram, count) in ngram_counts(&tokens) {
            let slot = max_ref_counts.entry(gram).or_insert(0);
            *slot = (*slot).max(count);
        }
    }
    let mut stats = BleuStats {
        hyp_len: hyp_tokens.len(),
        ref_len: closest_ref_len(hyp_tokens.len(), &ref_lens),
        ..BleuStats::default()
    };
    for (gram, count) in ngram_counts(&hyp_tokens) {
        let n = gram.len() - 1;
        stats.total[n] += count;
        stats.correct[n] += count.min(max_ref_counts.get(&gram).copied().unwrap_or(0));
    }
    stats
}

fn compute_bleu(stats: &BleuStats, effective_order: bool) -> BleuScore {
    let (sys_len, ref_len) = (stats.hyp_len as f64, stats.ref_len as f64);
    let bp = if sys_len < ref_len {
        if sys_len > 0.0 {
            (1.0 - ref_len / sys_len).exp()
        } else {
            0.0
        }
    } else {
        1.0
    };
    let mut precisions = [0.0; MAX_ORDER];
    if stats.correct.iter().all(|&c| c == 0) {
        return BleuScore {
            score: 0.0,
            bp,
            precisions,
        };
    }
    let mut smooth_mteval = 1.0;
    let mut eff_order = MAX_ORDER;
    for (n, precision) in precisions.iter_mut().enumerate() {
        if stats.total[n] == 0 {
            break;
        }
        if effective_order {
            eff_order = n + 1;
        }
        *precision = if stats.correct[n] == 0 {
            smooth_mteval *= 2.0;
            100.0 / (smooth_mteval * stats.total[n] as f64)
        } else {
            100.0 * stats.correct[n] as f64 / stats.total[n] as f64
        };
    }
    let log_sum: f64 = precisions[..eff_order]
        .iter()
        .map(|&p| if p == 0.0 { LOG_ZERO } else { p.ln() })
        .sum();
    BleuScore {
        score: bp * (log_sum / eff_order as f64).exp(),
        bp,
        precisions,
    }
}

impl Bleu {
    /// The sacreBLEU signature of a corpus score over `references`.
    pub fn signature(references: &[Vec<String>]) -> String {
        format!(
            "nrefs:{}|case:mixed|eff:no|tok:13a|smooth:exp|version:{SACREBLEU_VERSION}",
            sacre::nrefs(references)
        )
    }
}

impl Metric for Bleu {
    fn name(&self) -> &str {
        "bleu"
    }

    fn score(
        &self,
        predictions: &[String],
        references: &[Vec<String>],
    ) -> Result<Scores, MetricError> {
        check_corpus(predictions, references)?;
        let stats: Vec<BleuStats> = predictions
            .par_iter()
            .zip(references.par_iter())
            .map(|(p, refs)| segment_stats(p, refs))
            .collect();
        let per_example = stats
            .iter()
            .map(|s| BTreeMap::from([("bleu".to_owned(), compute_bleu(s, true).score)]))
            .collect();
        let total = stats
            .iter()
            .fold(BleuStats::default(), |acc, s| acc.add(*s));
        let corpus_score = compute_bleu(&total, false);
        let mut corpus = BTreeMap::from([
            ("bleu".to_owned(), corpus_score.score),
            ("bp".to_owned(), corpus_score.bp),
            ("sys_len".to_owned(), total.hyp_len as f64),
            ("ref_len".to_owned(), total.ref_len as f64),
        ]);
        for (n, p) in corpus_score.precisions.iter().enumerate() {
            corpus.insert(format!("precision{}", n + 1), *p);
        }
        Ok(Scores {
            corpus,
            per_example,
            signature: Some(Bleu::signature(references)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_sentences_score_100() {
        let scores = Bleu.score(
            &["the cat sat on the mat".to_owned()],
            &[vec!["the cat sat on the mat".to_owned()]],
        );
        let scores = scores.unwrap();
        assert!((scores.corpus["bleu"] - 100.0).abs() < 1e-9);
        assert_eq!(
            scores.signature.as_deref(),
            Some("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0")
        );
    }

    #[test]
    fn closest_reference_length_prefers_the_shorter_on_ties() {
        assert_eq!(closest_ref_len(5, &[7, 3, 6]), 6);
        assert_eq!(closest_ref_len(5, &[7, 3]), 3);
    }
}
