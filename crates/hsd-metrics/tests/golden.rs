//! Agreement with the reference implementations on the committed fixture corpus
//! (`tests/fixtures/make_fixtures.sh` made it: 900 real pairs from four datasets and 12 edge
//! cases).

use std::collections::BTreeMap;
use std::path::PathBuf;

use hsd_metrics::{
    Bleu, Chrf, Cider, CiderTokenization, Meteor, Metric, Rouge, Scores, WordNet, porter, ptb,
};
use serde_json::Value;

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct Corpus {
    predictions: Vec<String>,
    references: Vec<Vec<String>>,
    predictions_ptb: Vec<String>,
    references_ptb: Vec<Vec<String>>,
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .expect("a list of strings")
        .iter()
        .map(|s| s.as_str().expect("a string").to_owned())
        .collect()
}

fn corpus() -> Corpus {
    let rows: Vec<Value> = fixture("pairs.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    Corpus {
        predictions: rows
            .iter()
            .map(|r| r["prediction"].as_str().unwrap().to_owned())
            .collect(),
        references: rows.iter().map(|r| strings(&r["references"])).collect(),
        predictions_ptb: rows
            .iter()
            .map(|r| r["prediction_ptb"].as_str().unwrap().to_owned())
            .collect(),
        references_ptb: rows.iter().map(|r| strings(&r["references_ptb"])).collect(),
    }
}

fn expected(metric: &str) -> Scores {
    let all: Value =
        serde_json::from_str(&fixture("expected.json")).expect("expected.json is JSON");
    serde_json::from_value(all[metric].clone()).expect("expected scores have the Scores shape")
}

/// The largest absolute difference over every corpus and per-example value.
fn max_difference(actual: &Scores, expected: &Scores) -> f64 {
    assert_eq!(actual.per_example.len(), expected.per_example.len());
    let compare = |a: &BTreeMap<String, f64>, e: &BTreeMap<String, f64>| -> f64 {
        assert_eq!(a.keys().collect::<Vec<_>>(), e.keys().collect::<Vec<_>>());
        a.iter().map(|(k, v)| (v - e[k]).abs()).fold(0.0, f64::max)
    };
    let mut worst = compare(&actual.corpus, &expected.corpus);
    for (i, (a, e)) in actual
        .per_example
        .iter()
        .zip(&expected.per_example)
        .enumerate()
    {
        let d = compare(a, e);
        assert!(d.is_finite(), "example {i}: {a:?} vs {e:?}");
        worst = worst.max(d);
    }
    worst
}

fn assert_agrees(
    metric: &dyn Metric,
    predictions: &[String],
    references: &[Vec<String>],
    tolerance: f64,
) {
    let actual = metric.score(predictions, references).unwrap();
    let expected = expected(metric.name());
    let worst = max_difference(&actual, &expected);
    println!("{}: max |difference| = {worst:e}", metric.name());
    assert!(
        worst <= tolerance,
        "{}: max |difference| {worst} exceeds {tolerance}",
        metric.name()
    );
    assert_eq!(actual.signature, expected.signature);
}

#[test]
fn porter_equals_nltk_on_every_fixture_word() {
    let stems: BTreeMap<String, String> = serde_json::from_str(&fixture("porter.json")).unwrap();
    let wrong: Vec<_> = stems
        .iter()
        .filter(|(w, s)| porter::stem(w) != **s)
        .take(10)
        .collect();
    assert!(
        wrong.is_empty(),
        "{} words checked; first mismatches: {wrong:?}",
        stems.len()
    );
}

#[test]
fn rouge_equals_rouge_score() {
    let c = corpus();
    assert_agrees(&Rouge::default(), &c.predictions, &c.references, 1e-6);
}

#[test]
fn bleu_equals_sacrebleu() {
    let c = corpus();
    assert_agrees(&Bleu, &c.predictions, &c.references, 1e-6);
}

#[test]
fn chrf_equals_sacrebleu() {
    let c = corpus();
    assert_agrees(&Chrf, &c.predictions, &c.references, 1e-6);
}

/// WordNet as `WordNet::locate` finds it, or the workspace's `models/wordnet` (tests run in
/// the crate folder). Install it with `scripts/fetch-wordnet.sh`.
fn wordnet() -> WordNet {
    let workspace_copy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/wordnet");
    let dir = WordNet::locate().or_else(|e| {
        if workspace_copy.join("index.noun").is_file() {
            Ok(workspace_copy)
        } else {
            Err(e)
        }
    });
    WordNet::load(&dir.unwrap_or_else(|e| panic!("{e}"))).unwrap()
}

#[test]
fn meteor_equals_nltk() {
    let c = corpus();
    assert_agrees(&Meteor::new(wordnet()), &c.predictions, &c.references, 1e-4);
}

#[test]
fn cider_equals_pycocoevalcap_on_ptb_tokens() {
    let c = corpus();
    let cider = Cider {
        tokenization: CiderTokenization::Whitespace,
    };
    assert_agrees(&cider, &c.predictions_ptb, &c.references_ptb, 1e-4);
}

#[test]
fn rust_ptb_tokenizer_equals_corenlp() {
    let c = corpus();
    // As the fixture script (and COCOEvalCap) tokenize: the predictions in one CoreNLP call,
    // the references in another, a caption a line.
    let references: Vec<&String> = c.references.iter().flatten().collect();
    let ours = ptb::tokenize_captions_for_coco(&c.predictions)
        .into_iter()
        .chain(ptb::tokenize_captions_for_coco(&references));
    let java = c
        .predictions_ptb
        .iter()
        .chain(c.references_ptb.iter().flatten());
    let texts = c.predictions.iter().chain(references.iter().copied());
    let mismatches: Vec<String> = texts
        .zip(ours.zip(java))
        .filter(|(_, (ours, java))| ours.join(" ") != **java)
        .map(|(text, (ours, java))| {
            format!("{text:?}\n   rust: {}\n corenlp: {java}", ours.join(" "))
        })
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} of {} texts tokenize differently from CoreNLP, e.g.\n{}",
        mismatches.len(),
        c.predictions.len() + references.len(),
        mismatches[..mismatches.len().min(5)].join("\n")
    );
}

#[test]
fn cider_with_the_rust_ptb_tokenizer_equals_pycocoevalcap() {
    let c = corpus();
    assert_agrees(&Cider::default(), &c.predictions, &c.references, 1e-9);
}
