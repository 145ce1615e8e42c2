//! What each lexer rule's match becomes as a token (CoreNLP's default PTB normalizations:
//! LaTeX quotes, named brackets, `--` dashes, `...` ellipses, ASCII currency and fractions).

use super::grammar::Action;

/// The token for `text` matched under `action` (`None`: no token) and how many bytes of it are
/// consumed; the rest is read again.
pub(crate) fn apply(action: Action, text: &str) -> (Option<String>, usize) {
    let all = text.len();
    let token = match action {
        Action::Keep => text.to_owned(),
        Action::SplitTail(n) => {
            let cut = text.char_indices().rev().nth(n - 1).map_or(0, |(i, _)| i);
            return (Some(text[..cut].to_owned()), cut);
        }
        Action::NoBreakSpaces => text.replace(' ', "\u{a0}"),
        Action::Amp => replace_amp(text),
        Action::SoftHyphens => remove_soft_hyphens(text),
        Action::Quote(opening) => latex_quotes(text, opening),
        Action::VulgarFraction => match text {
            "\u{bc}" => "1/4",
            "\u{bd}" => "1/2",
            "\u{be}" => "3/4",
            "\u{2153}" => "1/3",
            "\u{2154}" => "2/3",
            other => other,
        }
        .to_owned(),
        Action::Currency => match text {
            "\u{a2}" => "cents",
            "\u{a3}" => "#",
            "\u{80}" | "\u{a4}" | "\u{20a0}" | "\u{20ac}" => "$",
            other => other,
        }
        .to_owned(),
        Action::AcronymAtSentenceEnd => {
            // A single letter (`I.`) gives up its period; a longer acronym keeps it. Either
            // way the period is read again.
            let period = all - 1;
            if text.chars().count() == 2 {
                return (Some(text[..period].to_owned()), period);
            }
            return (Some(text.to_owned()), period);
        }
        Action::AbbreviationAtSentenceEnd => return (Some(text.to_owned()), all - 1),
        Action::Phone => text
            .replace(' ', "\u{a0}")
            .replace('(', "-LRB-")
            .replace(')', "-RRB-"),
        Action::Replace(token) => token.to_owned(),
        Action::Smiley => text.replace('(', "-LRB-").replace(')', "-RRB-"),
        Action::Hyphens => {
            if (3..=4).contains(&all) {
                "--".to_owned()
            } else {
                text.to_owned()
            }
        }
        Action::Skip => return (None, all),
    };
    (Some(token), all)
}

/// `&amp;`, in any case, as `&`.
fn replace_amp(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if tail.len() >= 5 && tail[..5].eq_ignore_ascii_case("&amp;") {
            out.push('&');
            rest = &tail[5..];
        } else {
            out.push('&');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// Soft hyphens dropped; a token of nothing but soft hyphens is `-`.
fn remove_soft_hyphens(text: &str) -> String {
    let out: String = text.chars().filter(|&c| c != '\u{ad}').collect();
    if out.is_empty() { "-".to_owned() } else { out }
}

/// CoreNLP's LaTeX quotes: ASCII quotes as opening (`` ` ``, ``` `` ```) or closing (`'`,
/// `''`), curly and angle quotes by their direction.
fn latex_quotes(text: &str, opening: bool) -> String {
    let (single, double) = if opening { ("`", "``") } else { ("'", "''") };
    let text = text
        .replace("&apos;", single)
        .replace('\'', single)
        .replace("&quot;", double)
        .replace('"', double);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\u{91}' | '\u{2018}' | '\u{201b}' | '\u{2039}' => out.push('`'),
            '\u{92}' | '\u{2019}' | '\u{203a}' => out.push('\''),
            '\u{93}' | '\u{201c}' | '\u{ab}' => out.push_str("``"),
            '\u{94}' | '\u{201d}' | '\u{bb}' => out.push_str("''"),
            c => out.push(c),
        }
    }
    out
}

/// Java's `toLowerCase` (CoreNLP's `-lowerCase`): per character, except that a capital sigma
/// is final (`ς`) when its word has a cased letter before it and none after it, words as Java's
/// word break iterator finds them.
pub(crate) fn java_lowercase(token: &str) -> String {
    if !token.contains('Σ') {
        return token.chars().flat_map(char::to_lowercase).collect();
    }
    let chars: Vec<char> = token.chars().collect();
    let mut out = String::with_capacity(token.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == 'Σ' {
            let before = word_has_cased(&chars, i, false);
            let after = word_has_cased(&chars, i, true);
            out.push(if before && !after { 'ς' } else { 'σ' });
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Whether the word around `chars[at]` has a cased letter after it (`forward`) or before it.
/// Java's words run over letters (not ideographs or kana) and digits, through combining marks,
/// through a dash, connector, `.`, `'` or `"` between two letters and through `.`, `,`, `'` or
/// `"` between two digits.
fn word_has_cased(chars: &[char], at: usize, forward: bool) -> bool {
    let step = |k: usize| {
        if forward {
            Some(k + 1).filter(|&k| k < chars.len())
        } else {
            k.checked_sub(1)
        }
    };
    // The iterator reads UTF-16: a character beyond U+FFFF is no letter or digit to it, but
    // clings to what precedes it (or, first in the token, to what follows).
    let bmp = |c: char| c.len_utf16() == 1;
    let letter = |c: char| bmp(c) && c.is_alphabetic() && !ideograph_or_kana(c);
    let digit = |c: char| bmp(c) && c.is_numeric();
    let mut k = at;
    while let Some(next) = step(k) {
        let (here, c) = (chars[k], chars[next]);
        let beyond = step(next).map(|k| chars[k]);
        let joins = if bmp(c) {
            // Past a character beyond U+FFFF, the word has ended.
            (bmp(here) || !forward)
                && (letter(c)
                    || digit(c)
                    || transparent(c)
                    || (letter(here)
                        && beyond.is_some_and(|b| letter(b) || !bmp(b))
                        && between_letters(c))
                    || (digit(here)
                        && beyond.is_some_and(digit)
                        && matches!(c, '.' | ',' | '\'' | '"')))
        } else {
            forward || next == 0
        };
        if !joins {
            return false;
        }
        if c.is_lowercase() || c.is_uppercase() {
            return true;
        }
        k = next;
    }
    false
}

/// Ideographs and kana, which Java's word breaks keep apart from letters.
fn ideograph_or_kana(c: char) -> bool {
    matches!(c, '\u{3005}' | '\u{4e00}'..='\u{9fa5}' | '\u{f900}'..='\u{fa2d}'
        | '\u{3041}'..='\u{309e}' | '\u{30a1}'..='\u{30fe}')
}

/// Combining marks and format characters, which words run through.
fn transparent(c: char) -> bool {
    matches!(c, '\u{300}'..='\u{36f}' | '\u{1ab0}'..='\u{1aff}' | '\u{1dc0}'..='\u{1dff}'
        | '\u{20d0}'..='\u{20ff}' | '\u{200b}'..='\u{200f}' | '\u{feff}')
}

/// Dashes, connectors and the marks that join two letters into a word.
#[rustfmt::skip]
fn between_letters(c: char) -> bool {
    matches!(c, '-' | '_' | '.' | '\'' | '"' | '\u{ad}' | '\u{2027}' | '\u{58a}' | '\u{5be}'
        | '\u{2010}'..='\u{2015}' | '\u{203f}' | '\u{2040}' | '\u{2054}' | '\u{2e17}'
        | '\u{301c}' | '\u{3030}' | '\u{fe58}' | '\u{fe63}' | '\u{ff0d}' | '\u{ff3f}')
}
