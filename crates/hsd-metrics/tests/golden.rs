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
fn rust_ptb_tokenizer_agrees_with_corenlp() {
    let c = corpus();
    let texts = c.predictions.iter().chain(c.references.iter().flatten());
    let java = c
        .predictions_ptb
        .iter()
        .chain(c.references_ptb.iter().flatten());
    let (mut same, mut total) = (0usize, 0usize);
    let mut first_mismatches = Vec::new();
    for (text, expected) in texts.zip(java) {
        total += 1;
        let ours = ptb::tokenize_for_coco(&text.replace('\n', " ")).join(" ");
        if ours == *expected {
            same += 1;
        } else if first_mismatches.len() < 10 {
            let (a, b): (Vec<&str>, Vec<&str>) =
                (ours.split(' ').collect(), expected.split(' ').collect());
            let at = a
                .iter()
                .zip(&b)
                .position(|(x, y)| x != y)
                .unwrap_or(a.len().min(b.len()));
            let window = |t: &[&str]| t[at.saturating_sub(2)..(at + 3).min(t.len())].join(" ");
            first_mismatches.push((window(&a), window(&b)));
        }
    }
    let rate = same as f64 / total as f64;
    println!(
        "PTB: {same}/{total} texts tokenized identically ({rate:.4}); first mismatches: {first_mismatches:#?}"
    );
    assert!(rate >= 0.995, "PTB agreement {rate}");
}

#[test]
fn cider_with_the_rust_ptb_tokenizer_stays_close_to_pycocoevalcap() {
    let c = corpus();
    let actual = Cider::default()
        .score(&c.predictions, &c.references)
        .unwrap();
    let expected = expected("cider");
    let corpus_gap = (actual.corpus["cider"] - expected.corpus["cider"]).abs();
    let worst = max_difference(&actual, &expected);
    println!("cider (Rust PTB): corpus |difference| = {corpus_gap:e}, per-example max = {worst:e}");
    assert!(corpus_gap <= 1e-3, "corpus CIDEr moved by {corpus_gap}");
}
