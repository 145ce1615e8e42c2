//! A Rust rendering of what pycocoevalcap's `PTBTokenizer` produces: Stanford CoreNLP 3.4.1's
//! `PTBTokenizer -preserveLines -lowerCase`, then every token in pycocoevalcap's
//! `PUNCTUATIONS` list dropped.
//!
//! It follows the PTB conventions that decide the surviving tokens: clitics split off
//! (`do n't`, `it 's`, `can not`, `gon na`), hyphens, slashes, apostrophes, periods and
//! commas inside words and numbers kept (`e-mail`, `o'neil`, `u.s.`, `1,000`, `3.5`),
//! brackets renamed (`-lrb-`, which survives because pycocoevalcap's list holds only the
//! upper-case `-LRB-`), `£` as `#`, emoticons (`:-rrb-`, `:d`) kept whole, and other symbols
//! split into one token each. It is not the full CoreNLP lexer; the crate README reports its
//! agreement with the Java tokenizer on the fixture corpus.

/// pycocoevalcap's `PUNCTUATIONS` (after `-lowerCase`, the bracket names no longer match).
const PUNCTUATIONS: [&str; 17] = [
    "''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--",
    "...", ";",
];

/// Abbreviations that keep their final period in PTB tokenization.
const ABBREVIATIONS: [&str; 46] = [
    "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "inc", "co", "corp", "ltd", "vs", "etc",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "gen",
    "gov", "sen", "rep", "rev", "sgt", "capt", "col", "lt", "mt", "ft", "spc", "u.s", "u.k",
    "blvd", "adv", "plc", "al", "sq", "alex",
];

/// Words after which an initial's period ends a sentence (`Serie A. The club`).
const SENTENCE_STARTS: [&str; 13] = [
    "The", "This", "That", "These", "It", "He", "She", "They", "We", "There", "In", "A", "An",
];

/// Abbreviations that keep their period only before a number (`No. 5`, `Fig. 2`).
const NUMBER_ABBREVIATIONS: [&str; 8] = ["no", "nos", "fig", "figs", "art", "bldg", "pp", "op"];

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
    (c.is_alphanumeric() && fraction(c).is_none()) || is_combining_mark(c)
}

/// Combining diacritics stay in their word (`İzmir` lowercases to `i` + U+0307 + `zmir`).
fn is_combining_mark(c: char) -> bool {
    matches!(c, '\u{0300}'..='\u{036f}' | '\u{1ab0}'..='\u{1aff}' | '\u{1dc0}'..='\u{1dff}' | '\u{20d0}'..='\u{20ff}')
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

/// Double curly quotes and guillemets become the ASCII forms CoreNLP gives them (all of which
/// pycocoevalcap drops); single curly quotes stay, as CoreNLP keeps them inside words.
fn normalize(c: char) -> char {
    match c {
        '\u{201c}' | '\u{201d}' | '«' | '»' => '"',
        '‹' => '\u{2018}',
        '›' => '\u{2019}',
        _ => c,
    }
}

/// Characters CoreNLP's lexer matches with no rule and deletes, ending the token before them:
/// the replacement character, variation selectors, zero-width characters, the byte-order mark
/// and control characters; and U+2012. Read as spaces.
fn deleted(c: char) -> bool {
    matches!(c,
        '\u{fffd}' | '\u{fe00}'..='\u{fe0f}' | '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}'
        | '\u{2012}')
        || (c.is_control() && !crate::pytext::is_space(c))
}

/// En, em and horizontal-bar dashes: a `--` token of their own, even inside a word.
fn long_dash(c: char) -> bool {
    matches!(c, '\u{2013}' | '\u{2014}' | '\u{2015}')
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
    matches!(
        letters.to_lowercase().as_str(),
        "s" | "re" | "ve" | "ll" | "d" | "m" | "em" | "n"
    )
    .then(|| format!("{}{letters}", chars[i]))
}

/// Characters that stay inside a word when a word character follows (and, for `,` and `:`,
/// when digits surround them). Apostrophes follow [`apostrophe_joins`].
fn joins(prev: char, c: char, next: char) -> bool {
    match c {
        '-' | '/' | '&' | '.' | '_' => is_word_char(prev) && is_word_char(next),
        ',' | ':' => prev.is_ascii_digit() && next.is_ascii_digit(),
        _ => false,
    }
}

/// Whether the apostrophe at `chars[i]` stays inside the word `chars[start..i]`, as CoreNLP's
/// apostrophe words have it (case matters, as in its lexer): one letter other than `I` and `Y`
/// (or `n`) before two letters or more (`O'Neil`, `D'Angelo`), `l'`, `d'` and `j'` before any
/// letters (`d'oeuvre`), `o'clock`; a word ending in a vowel before
/// a vowel or a capital (`Ya'ir`, `Mu'Ammar`); and `n't`. Other apostrophes split the word
/// (`Ya'kub` is `Ya ' kub`); a clitic after one is read on its own (`it 's`).
fn apostrophe_joins(chars: &[char], start: usize, i: usize) -> bool {
    let before = &chars[start..i];
    let after: Vec<char> = chars[i + 1..]
        .iter()
        .copied()
        .take_while(|c| c.is_alphabetic())
        .collect();
    if before.is_empty() || after.is_empty() || !before.iter().all(|c| c.is_alphabetic()) {
        return false;
    }
    let last = before[before.len() - 1];
    let one_letter = before.len() == 1
        && ((matches!(last, 'A'..='H' | 'J'..='X' | 'Z' | 'n') && after.len() >= 2)
            || matches!(last, 'l' | 'L' | 'd' | 'D' | 'j' | 'J')
            || (matches!(last, 'o' | 'O') && after.iter().collect::<String>() == "clock"));
    let vowels = before.len() >= 2
        && "aeiouyAEIOUY".contains(last)
        && (("aeiou".contains(after[0])) || after[0].is_ascii_uppercase());
    let negation = matches!(last, 'n' | 'N') && after.len() == 1 && matches!(after[0], 't' | 'T');
    one_letter || vowels || negation
}

/// An emoticon at `chars[i..]` and its length: an optional `<` or `>`, eyes `:`, `;` or `=`, an
/// optional nose `-`, `o`, `*` or `'`, and a mouth (`:-)`, `;)`, `=[`, `:|`, `:D`, `:p`), the
/// longest that fits, and no letter or digit after it, as CoreNLP's lexer matches it; round
/// brackets are renamed inside it (`:)` is `:-rrb-`).
fn smiley(chars: &[char], i: usize) -> Option<(usize, String)> {
    let at = |k: usize| chars.get(k).copied();
    let start = i + usize::from(matches!(at(i), Some('<' | '>')));
    if !matches!(at(start), Some(':' | ';' | '=')) {
        return None;
    }
    let mouth = |c: Option<char>| {
        matches!(
            c,
            Some(
                '(' | ')' | 'D' | 'd' | 'P' | 'p' | 'O' | 'o' | '\\' | '{' | '@' | '|' | '[' | ']'
            )
        )
    };
    let nose = matches!(at(start + 1), Some('-' | 'o' | 'O' | '*' | '\''));
    let end = if nose && mouth(at(start + 2)) {
        start + 3
    } else if mouth(at(start + 1)) {
        start + 2
    } else {
        return None;
    };
    // Not before a letter or digit: `:Dating` is `:` and `Dating`, `:[R]` is `: [ R ]`.
    if at(end).is_some_and(char::is_alphanumeric) {
        return None;
    }
    let text = chars[i..end]
        .iter()
        .map(|c| match c {
            '(' => "-lrb-".to_owned(),
            ')' => "-rrb-".to_owned(),
            c => c.to_string(),
        })
        .collect();
    Some((end - i, text))
}

fn push_word(word: String, tokens: &mut Vec<String>) {
    let word = crate::pytext::lower(&word);
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
    // A sentence's period between a number and the next word (`2006.It`) is a token of its
    // own.
    if number_end > 1
        && word[..number_end].ends_with('.')
        && word[number_end..].starts_with(|c: char| c.is_alphabetic())
    {
        tokens.push(word[..number_end - 1].to_owned());
        tokens.push(".".to_owned());
        return push_word(word[number_end..].to_owned(), tokens);
    }
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
    // The lexer reads the text as written and lowercases each token (`-lowerCase`).
    let text = text.replace("&amp;", "&").replace("&quot;", "\"");
    let chars: Vec<char> = text
        .chars()
        .map(|c| if deleted(c) { ' ' } else { normalize(c) })
        .collect();
    let at = |i: usize| chars.get(i).copied().unwrap_or(' ');
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if crate::pytext::is_space(c) {
            i += 1;
        } else if let Some(name) = BRACKET_NAMES.iter().find(|name| {
            let name: Vec<char> = name.chars().collect();
            chars.len() >= i + name.len()
                && chars[i..i + name.len()]
                    .iter()
                    .zip(&name)
                    .all(|(c, n)| c.to_ascii_lowercase() == *n)
        }) {
            // Already-tokenized text spells brackets out.
            i += name.len();
            tokens.push((*name).to_owned());
        } else if let Some(clitic) = detached_clitic(&chars, i) {
            // Already-tokenized text: `we 're`, `it 's`.
            i += clitic.chars().count();
            tokens.push(clitic.replace('\u{2019}', "'"));
        } else if let Some((length, emoticon)) = smiley(&chars, i) {
            tokens.push(emoticon);
            i += length;
        } else if let Some(ascii) = fraction(c) {
            tokens.push(ascii.to_owned());
            i += 1;
        } else if long_dash(c) {
            tokens.push("--".to_owned());
            i += 1;
        } else if c == '#' && at(i + 1).is_alphabetic() {
            // A hashtag is `#` and letters only: `#person1#` is `#person 1 #`.
            let start = i;
            i += 1;
            while i < chars.len() && chars[i].is_alphabetic() {
                i += 1;
            }
            tokens.push(chars[start..i].iter().collect());
        } else if (c == '-' || c == '.')
            && at(i + 1).is_ascii_digit()
            && !is_word_char(at(i.wrapping_sub(1)))
        {
            // A signed or bare-decimal number: `-3.35`, `.5`; it ends where the number does.
            let start = i;
            i += 1;
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || (matches!(chars[i], '.' | ',') && at(i + 1).is_ascii_digit()))
            {
                i += 1;
            }
            tokens.push(chars[start..i].iter().collect());
        } else if is_word_char(c) || (c == '@' && is_word_char(at(i + 1))) {
            let start = i;
            i += 1;
            while i < chars.len()
                && (is_word_char(chars[i])
                    || joins(chars[i - 1], chars[i], at(i + 1))
                    || (is_apostrophe(chars[i]) && apostrophe_joins(&chars, start, i)))
            {
                i += 1;
            }
            let mut word: String = chars[start..i].iter().collect();
            let lower = crate::pytext::lower(&word);
            let dotted_letters = word.contains('.')
                && word
                    .split('.')
                    .all(|part| part.chars().filter(|c| c.is_alphabetic()).count() == 1);
            let single_letter = word.chars().count() == 1 && word.chars().all(char::is_alphabetic);
            let rest: String = chars[(i + 1).min(chars.len())..]
                .iter()
                .skip_while(|c| crate::pytext::is_space(**c))
                .take_while(|c| c.is_alphabetic())
                .collect();
            let next_is_number = chars[(i + 1).min(chars.len())..]
                .iter()
                .find(|c| !crate::pytext::is_space(**c))
                .is_some_and(char::is_ascii_digit);
            // An initial keeps its period unless a sentence visibly starts after it.
            let sentence_follows = SENTENCE_STARTS.contains(&rest.as_str());
            let after_period = at(i + 1);
            let abbreviation = at(i) == '.'
                && is_word_char(at(i.wrapping_sub(1)))
                && (dotted_letters
                    || (single_letter && !sentence_follows)
                    || ABBREVIATIONS.contains(&lower.as_str())
                    || (NUMBER_ABBREVIATIONS.contains(&lower.as_str()) && next_is_number)
                    // A period before a comma stays with the word.
                    || (after_period == ',' && word.chars().all(char::is_alphabetic)));
            if abbreviation {
                word.push('.');
                i += 1;
            }
            push_word(word, &mut tokens);
        } else {
            let start = i;
            let group = |x: char| match x {
                '!' | '?' => 1,
                '-' => 2,
                '.' => 3,
                _ => 0,
            };
            i += 1;
            // Runs of `!` and `?`, of dashes, of periods, or of one of the symbols CoreNLP
            // reads as one token when repeated, stay together.
            let repeats = matches!(c, '*' | '<' | '>' | '_' | '@' | '#' | '`' | '\'');
            // `<<` and `>>` are one token each (`>>>` is `>> >`).
            let longest = if matches!(c, '<' | '>') {
                2
            } else {
                usize::MAX
            };
            while i < chars.len()
                && i - start < longest
                && ((group(c) != 0 && group(chars[i]) == group(c)) || (repeats && chars[i] == c))
            {
                i += 1;
            }
            let run = i - start;
            let token: String = match c {
                // Two periods are two tokens; three or more, an ellipsis.
                '.' if run == 2 => {
                    tokens.push(".".to_owned());
                    ".".to_owned()
                }
                '.' if run > 2 => "...".to_owned(),
                '-' if run > 2 => "--".to_owned(),
                '€' => "$".to_owned(),
                '¢' => "cents".to_owned(),
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
        .into_iter()
        .map(|token| crate::pytext::lower(&token))
        .collect()
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
            // Each case below is CoreNLP 3.4.1's output through pycocoevalcap.
            (
                "#Person1# met #Person2#. Madrid–Barajas 2014–15",
                "#person 1 # met #person 2 # madrid barajas 2014 15",
            ),
            (
                "is -3.3528 from x.. y....z the center., near",
                "is -3.3528 from x. y. z the center. near",
            ),
            (
                "Ya'kub Hook'em Al-Zawra'a o'clock d'oeuvre 2006.It €5 «a» ¢",
                "ya kub hook 'em al-zawra a o'clock d'oeuvre 2006 it $ 5 a cents",
            ),
            (
                "a\u{fffd}b\u{fe0f} a**b || Serie A. The",
                "a b a ** b | | serie a the",
            ),
            (
                "Bus No. 713 at Blvd., Sc.D. 1963",
                "bus no. 713 at blvd. sc.d 1963",
            ),
            ("RickleRe:)", "ricklere :-rrb-"),
            ("Adam:D:Karen,.", "adam :d karen"),
            ("Jack:C.Jack:O.k", "jack c.jack :o k"),
            ("Aadmin:||.occupation faits", "aadmin :| | occupation faits"),
            (
                "Joseph:DatingD@ The trial:prefLR.",
                "joseph datingd @ the trial preflr",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(tokenize_for_coco(text).join(" "), expected, "{text}");
        }
    }
}
