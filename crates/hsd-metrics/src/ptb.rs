//! A Rust rendering of what pycocoevalcap's `PTBTokenizer` produces: Stanford CoreNLP 3.4.1's
//! `PTBTokenizer -preserveLines -lowerCase`, then every token in pycocoevalcap's
//! `PUNCTUATIONS` list dropped.
//!
//! It follows the PTB conventions that decide the surviving tokens: clitics split off
//! (`do n't`, `it 's`, `can not`, `gon na`), hyphens, slashes, apostrophes, periods and
//! commas inside words and numbers kept (`e-mail`, `o'neil`, `u.s.`, `1,000`, `3.5`),
//! brackets renamed (`-lrb-`, which survives because pycocoevalcap's list holds only the
//! upper-case `-LRB-`), `£` as `#`, and other symbols split into one token each. It is not the
//! full CoreNLP lexer; the crate README reports its agreement with the Java tokenizer on the
//! fixture corpus.

/// pycocoevalcap's `PUNCTUATIONS` (after `-lowerCase`, the bracket names no longer match).
const PUNCTUATIONS: [&str; 17] = [
    "''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--",
    "...", ";",
];

/// Abbreviations that keep their final period in PTB tokenization.
const ABBREVIATIONS: [&str; 40] = [
    "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "inc", "co", "corp", "ltd", "vs", "etc",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "gen",
    "gov", "sen", "rep", "rev", "sgt", "capt", "col", "lt", "mt", "ft", "spc", "u.s", "u.k",
];

/// CoreNLP's bracket tokens, lowercased.
const BRACKET_NAMES: [&str; 6] = ["-lrb-", "-rrb-", "-lcb-", "-rcb-", "-lsb-", "-rsb-"];

/// Clitics split off the end of a word, longest first.
const CLITICS: [&str; 7] = ["n't", "'s", "'re", "'ve", "'ll", "'d", "'m"];

/// Words PTB splits in two.
const SPLIT_WORDS: [(&str, &str, &str); 6] = [
    ("cannot", "can", "not"),
    ("gonna", "gon", "na"),
    ("gotta", "got", "ta"),
    ("wanna", "wan", "na"),
    ("lemme", "lem", "me"),
    ("gimme", "gim", "me"),
];

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() && fraction(c).is_none()
}

/// CoreNLP writes vulgar fractions as ASCII, as a token of their own.
fn fraction(c: char) -> Option<&'static str> {
    match c {
        '¼' => Some("1/4"),
        '½' => Some("1/2"),
        '¾' => Some("3/4"),
        '⅓' => Some("1/3"),
        '⅔' => Some("2/3"),
        _ => None,
    }
}

/// Double curly quotes and en/em dashes become the ASCII forms CoreNLP gives them (all of
/// which pycocoevalcap drops); single curly quotes stay, as CoreNLP keeps them inside words.
fn normalize(c: char) -> char {
    match c {
        '\u{201c}' | '\u{201d}' => '"',
        '\u{2013}' | '\u{2014}' => '-',
        _ => c,
    }
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}')
}

/// A clitic standing alone at `chars[i..]` (an apostrophe, `s`/`re`/`ve`/`ll`/`d`/`m`, then no
/// word character).
fn detached_clitic(chars: &[char], i: usize) -> Option<String> {
    if !is_apostrophe(chars[i]) {
        return None;
    }
    let letters: String = chars[i + 1..]
        .iter()
        .take_while(|c| is_word_char(**c))
        .collect();
    matches!(letters.as_str(), "s" | "re" | "ve" | "ll" | "d" | "m")
        .then(|| format!("{}{letters}", chars[i]))
}

/// Characters that stay inside a word when a word character follows (and, for `,` and `:`,
/// when digits surround them).
fn joins(prev: char, c: char, next: char) -> bool {
    match c {
        '-' | '/' | '&' | '.' | '_' => is_word_char(prev) && is_word_char(next),
        '\'' | '\u{2019}' => prev.is_alphabetic() && next.is_alphabetic(),
        ',' | ':' => prev.is_ascii_digit() && next.is_ascii_digit(),
        _ => false,
    }
}

fn push_word(word: String, tokens: &mut Vec<String>) {
    if let Some(&(_, first, second)) = SPLIT_WORDS.iter().find(|(whole, _, _)| *whole == word) {
        tokens.push(first.to_owned());
        tokens.push(second.to_owned());
        return;
    }
    // A number glued to a unit or word (`12.30am`, `5.14billion`) is two tokens.
    let number_end = word
        .char_indices()
        .take_while(|&(_, c)| c.is_ascii_digit() || matches!(c, '.' | ',' | ':'))
        .last()
        .map_or(0, |(i, c)| i + c.len_utf8());
    if number_end > 0
        && word[..number_end].contains(['.', ',', ':'])
        && word[number_end..].starts_with(|c: char| c.is_alphabetic())
    {
        tokens.push(word[..number_end].to_owned());
        return push_word(word[number_end..].to_owned(), tokens);
    }
    let ascii = word.replace('\u{2019}', "'");
    for clitic in CLITICS {
        if let Some(stem) = ascii.strip_suffix(clitic)
            && !stem.is_empty()
            && !stem.ends_with('\'')
        {
            // `can't` is `ca n't`, `won't` is `wo n't`: PTB cuts before the `n`.
            let stem_chars = stem.chars().count();
            tokens.push(word.chars().take(stem_chars).collect());
            tokens.push(clitic.to_owned());
            return;
        }
    }
    tokens.push(word);
}

/// PTB tokens of `text`, lowercased, before punctuation removal.
pub fn tokenize(text: &str) -> Vec<String> {
    let lowered = crate::pytext::lower(&text.replace("&amp;", "&").replace("&quot;", "\""));
    let chars: Vec<char> = lowered.chars().map(normalize).collect();
    let at = |i: usize| chars.get(i).copied().unwrap_or(' ');
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if crate::pytext::is_space(c) {
            i += 1;
        } else if let Some(name) = BRACKET_NAMES
            .iter()
            .find(|name| chars[i..].starts_with(&name.chars().collect::<Vec<_>>()))
        {
            // Already-tokenized text spells brackets out.
            i += name.len();
            tokens.push((*name).to_owned());
        } else if let Some(clitic) = detached_clitic(&chars, i) {
            // Already-tokenized text: `we 're`, `it 's`.
            i += clitic.chars().count();
            tokens.push(clitic.replace('\u{2019}', "'"));
        } else if let Some(ascii) = fraction(c) {
            tokens.push(ascii.to_owned());
            i += 1;
        } else if is_word_char(c)
            || (matches!(c, '@' | '#') && is_word_char(at(i + 1)))
            || (c == '.' && at(i + 1).is_ascii_digit() && !is_word_char(at(i.wrapping_sub(1))))
        {
            let start = i;
            i += 1;
            while i < chars.len()
                && (is_word_char(chars[i]) || joins(chars[i - 1], chars[i], at(i + 1)))
            {
                i += 1;
            }
            let mut word: String = chars[start..i].iter().collect();
            let dotted_letters = word.contains('.')
                && word
                    .split('.')
                    .all(|part| part.chars().all(char::is_alphabetic));
            let single_letter = word.chars().count() == 1 && word.chars().all(char::is_alphabetic);
            let abbreviation = at(i) == '.'
                && is_word_char(at(i.wrapping_sub(1)))
                && (dotted_letters || single_letter || ABBREVIATIONS.contains(&word.as_str()));
            if abbreviation {
                word.push('.');
                i += 1;
            }
            push_word(word, &mut tokens);
        } else {
            let start = i;
            let group = |x: char| match x {
                '.' | '!' | '?' => 1,
                '-' => 2,
                _ => 0,
            };
            i += 1;
            // Runs of sentence punctuation, of dashes, or of one repeated symbol (not a separator)
            // stay together.
            let repeats = group(c) == 0 && !matches!(c, ',' | ';' | ':' | '"' | '\'' | '`');
            while i < chars.len()
                && ((group(c) != 0 && group(chars[i]) == group(c)) || (repeats && chars[i] == c))
            {
                i += 1;
            }
            let token: String = match c {
                '(' => "-lrb-".to_owned(),
                ')' => "-rrb-".to_owned(),
                '{' => "-lcb-".to_owned(),
                '}' => "-rcb-".to_owned(),
                '[' => "-lsb-".to_owned(),
                ']' => "-rsb-".to_owned(),
                '"' => "''".to_owned(),
                '\u{2018}' => "`".to_owned(),
                '\u{2019}' => "'".to_owned(),
                '£' => "#".to_owned(),
                _ => chars[start..i].iter().collect(),
            };
            tokens.push(token);
        }
    }
    tokens
}

/// pycocoevalcap's tokenization: [`tokenize`] with its punctuation tokens removed.
pub fn tokenize_for_coco(text: &str) -> Vec<String> {
    tokenize(text)
        .into_iter()
        .filter(|t| !PUNCTUATIONS.contains(&t.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::tokenize_for_coco;

    #[test]
    fn matches_corenlp_on_common_constructions() {
        let cases = [
            (
                "He said, \"It's 3.5% of $1,000 (approx.) - don't!\"",
                "he said it 's 3.5 % of $ 1,000 -lrb- approx -rrb- do n't",
            ),
            (
                "The U.S. colour e-mail/web 10:30 a.m. £5 cannot gonna A*B",
                "the u.s. colour e-mail/web 10:30 a.m. # 5 can not gon na a * b",
            ),
            (
                "Mr. Smith's cat isn't O'Neil's. 1990s",
                "mr. smith 's cat is n't o'neil 's 1990s",
            ),
            (
                "rock--yes!? well...no 50-year-old",
                "rock yes !? well no 50-year-old",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(tokenize_for_coco(text).join(" "), expected, "{text}");
        }
    }
}
