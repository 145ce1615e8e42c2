//! The Rust PTB tokenizer (CIDEr-D's) against Stanford CoreNLP 3.4.1's, as pycocoevalcap runs
//! it, on every reference of the nine datasets' splits and every committed prediction: every
//! text must give CoreNLP's tokens.
//!
//! `tests/fixtures/ptb/corenlp.tsv` holds, per distinct text (newlines as spaces, as
//! pycocoevalcap joins them), the first 16 hex digits of its SHA-256 and CoreNLP's tokens, made
//! by one CoreNLP call over all texts in sorted order, a text a line. A few of CoreNLP's rules
//! look past a line's end into the next line, so the texts are tokenized here as the same
//! sequence (`ptb::tokenize_captions_for_coco`). Predictions committed after the fixture was
//! made are counted, not checked, and can change a neighbour's lookahead: remake the fixture
//! when results change. To remake it: `HSD_PTB_DUMP=/tmp/ptb-texts.jsonl cargo test --release
//! -p hsd-cli --test ptb_exact`, then `python3 tests/fixtures/ptb/make_fixture.py
//! /tmp/ptb-texts.jsonl` (it installs pycocoevalcap into a venv and needs java).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use hsd_data::{DatasetName, DatasetSpec};
use hsd_metrics::ptb;
use sha2::{Digest, Sha256};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every reference of every split here, and every prediction of the committed results.
fn texts(data_root: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut texts = BTreeSet::new();
    for name in DatasetName::ALL {
        for split in name.splits() {
            let examples = hsd_data::load(&DatasetSpec::new(name, split), data_root)
                .unwrap_or_else(|e| panic!("{}/{split:?}: {e}", name.as_str()));
            for example in examples {
                texts.extend(example.references.iter().map(|r| r.replace('\n', " ")));
            }
        }
    }
    let references = texts.clone();
    let results = workspace().join("results");
    let mut folders = vec![results];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.file_name().is_some_and(|n| n == "records.jsonl") {
                for line in std::fs::read_to_string(&path).unwrap().lines() {
                    let record: serde_json::Value = serde_json::from_str(line).unwrap();
                    if let Some(prediction) = record["prediction"].as_str() {
                        texts.insert(prediction.replace('\n', " "));
                    }
                }
            }
        }
    }
    (references, texts)
}

fn key(text: &str) -> String {
    Sha256::digest(text.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn rust_ptb_tokens_equal_corenlp_on_every_reference_and_prediction() {
    let Ok(data_root) = hsd_data::data_root() else {
        eprintln!("skipped: no shared data root");
        return;
    };
    let (references, texts) = texts(&data_root);
    if let Some(dump) = std::env::var_os("HSD_PTB_DUMP") {
        let lines: Vec<String> = texts
            .iter()
            .map(|t| serde_json::to_string(t).unwrap())
            .collect();
        std::fs::write(&dump, lines.join("\n") + "\n").unwrap();
        eprintln!(
            "wrote {} texts to {}",
            texts.len(),
            Path::new(&dump).display()
        );
        return;
    }
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ptb/corenlp.tsv");
    let expected: BTreeMap<String, String> = std::fs::read_to_string(&fixture)
        .unwrap()
        .lines()
        .map(|line| {
            let (key, tokens) = line.split_once('\t').expect("key<TAB>tokens");
            (key.to_owned(), tokens.to_owned())
        })
        .collect();
    let (checked, newer): (Vec<&String>, Vec<&String>) = texts
        .iter()
        .partition(|text| expected.contains_key(&key(text)));
    let missing: Vec<&&String> = newer
        .iter()
        .filter(|text| references.contains(**text))
        .collect();
    assert!(
        missing.is_empty(),
        "{} references are not in {} (remake it, see the file's doc): first {:?}",
        missing.len(),
        fixture.display(),
        missing.first()
    );
    let differ: Vec<String> = checked
        .iter()
        .zip(ptb::tokenize_captions_for_coco(&checked))
        .filter_map(|(text, ours)| {
            let (ours, theirs) = (ours.join(" "), &expected[&key(text)]);
            (&ours != theirs).then(|| format!("{text:?}\n   rust: {ours}\n corenlp: {theirs}"))
        })
        .collect();
    assert!(
        differ.is_empty(),
        "{} of {} texts tokenize differently from CoreNLP, e.g.\n{}",
        differ.len(),
        checked.len(),
        differ[..differ.len().min(20)].join("\n")
    );
    eprintln!(
        "{} texts equal CoreNLP's tokens; {} predictions newer than the fixture",
        checked.len(),
        newer.len()
    );
}
