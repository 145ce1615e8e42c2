//! ROUGE-1/2/L/Lsum throughput on 10,000 CNN/DM-length pairs: the 250 lead-3/highlight pairs
//! of the fixture corpus, each repeated 40 times.

use criterion::{Criterion, criterion_group, criterion_main};
use hsd_metrics::{Metric, Rouge};

const PAIRS: usize = 10_000;

fn cnn_dailymail_pairs() -> (Vec<String>, Vec<Vec<String>>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pairs.jsonl");
    let text = std::fs::read_to_string(path).expect("the fixture corpus is committed");
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("fixture lines are JSON"))
        .filter(|row: &serde_json::Value| row["set"] == "cnn_dailymail")
        .collect();
    let (mut predictions, mut references) = (Vec::with_capacity(PAIRS), Vec::with_capacity(PAIRS));
    for row in rows.iter().cycle().take(PAIRS) {
        predictions.push(
            row["prediction"]
                .as_str()
                .expect("prediction is a string")
                .to_owned(),
        );
        references.push(
            row["references"]
                .as_array()
                .expect("references is a list")
                .iter()
                .map(|r| r.as_str().unwrap().to_owned())
                .collect(),
        );
    }
    (predictions, references)
}

fn rouge_10k(c: &mut Criterion) {
    let (predictions, references) = cnn_dailymail_pairs();
    let rouge = Rouge::default();
    let mut group = c.benchmark_group("rouge");
    group.sample_size(10);
    group.bench_function("cnn_dailymail_10k_pairs", |b| {
        b.iter(|| rouge.score(&predictions, &references).unwrap())
    });
    group.finish();
}

criterion_group!(benches, rouge_10k);
criterion_main!(benches);
