//! METEOR exactly as NLTK 3.10's `nltk.translate.meteor_score.meteor_score` computes it.
//!
//! NLTK takes pre-tokenized input; this metric tokenizes each text the way common evaluation
//! scripts call NLTK: Python's `text.lower().split()`. The alignment is NLTK's, stage by stage
//! and greedy: exact matches, then Porter stems of what is left, then WordNet synonyms of
//! those stems; each stage walks the hypothesis from its last word to its first and takes the
//! last unmatched reference position. Scores: `Fmean = P R / (alpha P + (1 - alpha) R)`,
//! penalty `gamma (chunks / matches)^beta`, with alpha 0.9, beta 3, gamma 0.5. With several
//! references the example takes the maximum; the corpus score is the mean over examples
//! (NLTK has no corpus METEOR).

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;

use crate::metric::{Metric, MetricError, Scores, check_corpus, mean_per_key};
use crate::porter;
use crate::wordnet::WordNet;

/// METEOR with WordNet synonyms. Corpus and per-example key: `meteor` (0..1).
#[derive(Debug)]
pub struct Meteor {
    wordnet: WordNet,
    alpha: f64,
    beta: f64,
    gamma: f64,
}

/// A word still to be aligned: its position in the original token list and its current form.
type Enumerated = Vec<(usize, String)>;

impl Meteor {
    /// METEOR with NLTK's default parameters.
    pub fn new(wordnet: WordNet) -> Self {
        Meteor {
            wordnet,
            alpha: 0.9,
            beta: 3.0,
            gamma: 0.5,
        }
    }

    /// NLTK's `single_meteor_score` on pre-tokenized, lowercased input.
    pub fn single(&self, reference: &[String], hypothesis: &[String]) -> f64 {
        let enumerate =
            |tokens: &[String]| -> Enumerated { tokens.iter().cloned().enumerate().collect() };
        let (mut hyp, mut reference_left) = (enumerate(hypothesis), enumerate(reference));
        let mut matches = match_enums(&mut hyp, &mut reference_left);
        let stem_all =
            |list: &mut Enumerated| list.iter_mut().for_each(|(_, w)| *w = porter::stem(w));
        stem_all(&mut hyp);
        stem_all(&mut reference_left);
        matches.extend(match_enums(&mut hyp, &mut reference_left));
        matches.extend(self.match_synonyms(&mut hyp, &mut reference_left));
        matches.sort_by_key(|&(h, _)| h);

        if matches.is_empty() || hypothesis.is_empty() || reference.is_empty() {
            return 0.0;
        }
        let m = matches.len() as f64;
        let precision = m / hypothesis.len() as f64;
        let recall = m / reference.len() as f64;
        let fmean = precision * recall / (self.alpha * precision + (1.0 - self.alpha) * recall);
        let fragmentation = count_chunks(&matches) as f64 / m;
        (1.0 - self.gamma * fragmentation.powf(self.beta)) * fmean
    }

    /// NLTK's `_enum_wordnetsyn_match`: for each hypothesis word from the last, the synonym
    /// (or the word itself) whose last unmatched reference position is greatest.
    fn match_synonyms(
        &self,
        hyp: &mut Enumerated,
        reference: &mut Enumerated,
    ) -> Vec<(usize, usize)> {
        let mut positions = positions_by_word(reference);
        let mut matched_hyp = vec![false; hyp.len()];
        let mut matched_ref = vec![false; reference.len()];
        let mut pairs = Vec::new();
        for i in (0..hyp.len()).rev() {
            let word = &hyp[i].1;
            let mut candidates = self.wordnet.synonyms(word);
            candidates.insert(word.clone());
            let best = candidates
                .iter()
                .filter_map(|syn| {
                    positions
                        .get(syn.as_str())
                        .and_then(|p| p.last())
                        .map(|&j| (j, syn.clone()))
                })
                .max_by_key(|&(j, _)| j);
            if let Some((j, syn)) = best {
                positions.get_mut(syn.as_str()).map(Vec::pop);
                matched_hyp[i] = true;
                matched_ref[j] = true;
                pairs.push((hyp[i].0, reference[j].0));
            }
        }
        retain_unmatched(hyp, &matched_hyp);
        retain_unmatched(reference, &matched_ref);
        pairs
    }
}

fn positions_by_word(list: &Enumerated) -> HashMap<String, Vec<usize>> {
    let mut positions: HashMap<String, Vec<usize>> = HashMap::new();
    for (j, (_, word)) in list.iter().enumerate() {
        positions.entry(word.clone()).or_default().push(j);
    }
    positions
}

fn retain_unmatched(list: &mut Enumerated, matched: &[bool]) {
    let mut flags = matched.iter();
    list.retain(|_| !flags.next().copied().unwrap_or(false));
}

/// NLTK's `_match_enums`: exact matches of the current forms, hypothesis from its last word,
/// each taking the last unmatched reference position of the same form.
fn match_enums(hyp: &mut Enumerated, reference: &mut Enumerated) -> Vec<(usize, usize)> {
    let mut positions = positions_by_word(reference);
    let mut matched_hyp = vec![false; hyp.len()];
    let mut matched_ref = vec![false; reference.len()];
    let mut pairs = Vec::new();
    for i in (0..hyp.len()).rev() {
        if let Some(j) = positions.get_mut(hyp[i].1.as_str()).and_then(Vec::pop) {
            matched_hyp[i] = true;
            matched_ref[j] = true;
            pairs.push((hyp[i].0, reference[j].0));
        }
    }
    retain_unmatched(hyp, &matched_hyp);
    retain_unmatched(reference, &matched_ref);
    pairs
}

/// NLTK's `_count_chunks` over matches sorted by hypothesis position.
fn count_chunks(matches: &[(usize, usize)]) -> usize {
    1 + matches
        .windows(2)
        .filter(|w| !(w[1].0 == w[0].0 + 1 && w[1].1 == w[0].1 + 1))
        .count()
}

/// `text.lower().split()`, what this metric hands NLTK's algorithm.
pub fn tokenize(text: &str) -> Vec<String> {
    crate::pytext::split(&crate::pytext::lower(text))
        .map(str::to_owned)
        .collect()
}

impl Metric for Meteor {
    fn name(&self) -> &str {
        "meteor"
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
                let hypothesis = tokenize(prediction);
                let best = refs
                    .iter()
                    .map(|r| self.single(&tokenize(r), &hypothesis))
                    .fold(f64::NEG_INFINITY, f64::max);
                BTreeMap::from([("meteor".to_owned(), best)])
            })
            .collect();
        Ok(Scores {
            corpus: mean_per_key(&per_example),
            per_example,
            signature: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::count_chunks;

    #[test]
    fn chunks_break_on_either_side() {
        assert_eq!(count_chunks(&[(0, 0), (1, 1), (2, 5), (3, 6), (5, 7)]), 3);
        assert_eq!(count_chunks(&[(0, 3)]), 1);
    }
}
