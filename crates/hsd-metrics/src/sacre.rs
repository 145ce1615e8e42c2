//! What sacreBLEU's BLEU and chrF share: the `13a` tokenizer and the reference-count part of
//! the signature.

use std::sync::LazyLock;

use regex::Regex;

/// The regex passes of sacreBLEU's `TokenizerRegexp`, applied in order, each over the
/// whole line, left to right without overlap (as Python's `re.sub`).
static PASSES: LazyLock<[(Regex, &'static str); 4]> = LazyLock::new(|| {
    let compile = |pattern: &str| Regex::new(pattern).expect("the 13a patterns are valid");
    [
        // Punctuation and symbols, as the ASCII ranges mteval-v13a lists.
        (compile(r"([\{-\~\[-\x60 -\&\(-\+\:-\@/])"), " ${1} "),
        // Period and comma unless preceded by a digit.
        (compile(r"([^0-9])([\.,])"), "${1} ${2} "),
        // Period and comma unless followed by a digit.
        (compile(r"([\.,])([^0-9])"), " ${1} ${2}"),
        // Dash when preceded by a digit.
        (compile(r"([0-9])(-)"), "${1} ${2} "),
    ]
});

/// sacreBLEU's `Tokenizer13a`: mteval-v13a's normalisation and tokenization, tokens joined
/// by single spaces.
pub(crate) fn tokenize_13a(line: &str) -> String {
    let mut text = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if text.contains('&') {
        text = text
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    let mut text = format!(" {text} ");
    for (pattern, replacement) in PASSES.iter() {
        text = pattern.replace_all(&text, *replacement).into_owned();
    }
    crate::pytext::split(&text).collect::<Vec<_>>().join(" ")
}

/// The `nrefs` field of a sacreBLEU signature: the reference count when every example has the
/// same number, else `var`.
pub(crate) fn nrefs(references: &[Vec<String>]) -> String {
    let first = references.first().map_or(0, Vec::len);
    if references.iter().all(|refs| refs.len() == first) {
        first.to_string()
    } else {
        "var".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::tokenize_13a;

    #[test]
    fn splits_punctuation_but_not_numbers() {
        assert_eq!(
            tokenize_13a("Hello, world! It costs $3.50 (1,000-2)."),
            "Hello , world ! It costs $ 3.50 ( 1,000 - 2 ) ."
        );
        assert_eq!(tokenize_13a("a &amp; b&quot;"), "a & b \"");
    }
}
