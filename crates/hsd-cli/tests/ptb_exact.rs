//! The Rust PTB tokenizer (CIDEr-D's) against Stanford CoreNLP 3.4.1's, as pycocoevalcap runs
//! it, on every reference of the nine datasets' splits and every committed prediction.
//!
//! Predictions committed after the fixture was made are counted, not checked, until it is
//! remade; every reference must be in it. Not yet equal on every text: `tests/fixtures/ptb/known_differences.tsv` lists the texts
//! (key, then the text) where the tokens still differ. The test fails on any other difference,
//! and on a listed text that now agrees, so the list only shrinks (`HSD_PTB_BLESS=1` rewrites
//! it after a fix).
//!
//! `tests/fixtures/ptb/corenlp.tsv` holds, per distinct text (newlines as spaces, as
//! pycocoevalcap joins them), the first 16 hex digits of its SHA-256 and CoreNLP's tokens.
//! To remake it: `HSD_PTB_DUMP=/tmp/ptb-texts.jsonl cargo test --release -p hsd-cli --test
//! ptb_exact`, then `python3 tests/fixtures/ptb/make_fixture.py /tmp/ptb-texts.jsonl` (it
//! installs pycocoevalcap into a venv and needs java). `HSD_PTB_DIFFS=FILE` writes every
//! difference to FILE.

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
    let (references, all) = texts(&data_root);
    let texts = all;
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
    let known_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ptb/known_differences.tsv");
    let known: BTreeSet<String> = std::fs::read_to_string(&known_path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split('\t').next().map(str::to_owned))
        .collect();
    let mut missing = Vec::new();
    let mut differ = Vec::new();
    let mut differing = Vec::new();
    let mut newer = 0;
    for text in &texts {
        let Some(theirs) = expected.get(&key(text)) else {
            // Predictions committed after the fixture was made are checked once it is remade.
            if references.contains(text) {
                missing.push(text.clone());
            } else {
                newer += 1;
            }
            continue;
        };
        let ours = ptb::tokenize_for_coco(text).join(" ");
        if &ours != theirs {
            differing.push(format!("{}\t{}", key(text), text.replace('\t', " ")));
            if !known.contains(&key(text)) {
                differ.push(format!("{text:?}\n   rust: {ours}\n corenlp: {theirs}"));
            }
        }
    }
    if let Some(path) = std::env::var_os("HSD_PTB_DIFFS") {
        std::fs::write(&path, differ.join("\n")).unwrap();
    }
    if std::env::var_os("HSD_PTB_BLESS").is_some() {
        std::fs::write(&known_path, differing.join("\n") + "\n").unwrap();
        return;
    }
    assert!(
        missing.is_empty(),
        "{} references are not in {} (remake it, see the file's doc): first {:?}",
        missing.len(),
        fixture.display(),
        missing.first()
    );
    assert!(
        differ.is_empty(),
        "{} of {} texts tokenize differently and are not in {}, e.g.\n{}",
        differ.len(),
        texts.len(),
        known_path.display(),
        differ
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Listed texts no longer in the corpus (a results folder rerun) are not counted.
    let present: BTreeSet<String> = texts.iter().map(|t| key(t)).collect();
    let still_listed = known.intersection(&present).count();
    let now_equal = still_listed - (differing.len() - differ.len());
    assert_eq!(
        now_equal,
        0,
        "{now_equal} texts of {} now tokenize like CoreNLP: rerun with HSD_PTB_BLESS=1 to drop them",
        known_path.display()
    );
    let checked = texts.len() - newer;
    eprintln!(
        "{} of {checked} texts equal CoreNLP's tokens; {} known differences; {newer} predictions newer than the fixture",
        checked - differing.len(),
        differing.len()
    );
}
