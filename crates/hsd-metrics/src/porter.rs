//! The Porter stemmer exactly as NLTK's `PorterStemmer()` runs it: the default
//! `NLTK_EXTENSIONS` mode, which both rouge-score 0.1.2 and NLTK's METEOR use.
//!
//! The extensions over Porter (1980): a pool of irregular forms, words of at most two
//! characters left alone, `ies`/`ied` on four-letter words, `y -> i` only after a
//! consonant, the `fulli` and `logi` step-2 rules and the recursive `alli` rule, and a
//! two-letter vowel-consonant word counting as consonant-vowel-consonant. Words are handled
//! as sequences of code points, as Python indexes them.

/// Stems one word (lowercasing it first, as NLTK's `stem(word)` does).
pub fn stem(word: &str) -> String {
    let lowered = crate::pytext::lower(word);
    if let Some(irregular) = irregular_form(&lowered) {
        return irregular.to_owned();
    }
    if word.chars().count() <= 2 {
        return lowered;
    }
    let mut w: Vec<char> = lowered.chars().collect();
    w = step1a(w);
    w = step1b(w);
    w = step1c(w);
    w = step2(w);
    w = step3(w);
    w = step4(w);
    w = step5a(w);
    w = step5b(w);
    w.into_iter().collect()
}

fn irregular_form(word: &str) -> Option<&'static str> {
    Some(match word {
        "sky" | "skies" => "sky",
        "dying" => "die",
        "lying" => "lie",
        "tying" => "tie",
        "news" => "news",
        "innings" | "inning" => "inning",
        "outings" | "outing" => "outing",
        "cannings" | "canning" => "canning",
        "howe" => "howe",
        "proceed" => "proceed",
        "exceed" => "exceed",
        "succeed" => "succeed",
        _ => return None,
    })
}

fn is_vowel(c: char) -> bool {
    matches!(c, 'a' | 'e' | 'i' | 'o' | 'u')
}

/// NLTK's `_is_consonant`: a `y` is a consonant after an even run of `y`s preceded by a vowel
/// (or at the start), decided by walking back through the run.
fn is_consonant(word: &[char], mut i: usize) -> bool {
    if is_vowel(word[i]) {
        return false;
    }
    if word[i] != 'y' {
        return true;
    }
    let mut negate = false;
    while i > 0 && word[i] == 'y' {
        negate = !negate;
        i -= 1;
    }
    // A consonant unless the parity of the `y` run says otherwise.
    is_vowel(word[i]) == negate
}

/// NLTK's `_consonant_flags`, used for the measure and the vowel test.
fn consonant_flags(word: &[char]) -> Vec<bool> {
    let mut flags: Vec<bool> = Vec::with_capacity(word.len());
    for (i, &c) in word.iter().enumerate() {
        let consonant = if is_vowel(c) {
            false
        } else if c == 'y' {
            i == 0 || !flags[i - 1]
        } else {
            true
        };
        flags.push(consonant);
    }
    flags
}

/// The number of vowel-consonant sequences (Porter's m).
fn measure(stem: &[char]) -> usize {
    consonant_flags(stem)
        .windows(2)
        .filter(|pair| !pair[0] && pair[1])
        .count()
}

fn contains_vowel(stem: &[char]) -> bool {
    consonant_flags(stem).iter().any(|&consonant| !consonant)
}

fn ends_double_consonant(word: &[char]) -> bool {
    let n = word.len();
    n >= 2 && word[n - 1] == word[n - 2] && is_consonant(word, n - 1)
}

fn ends_cvc(word: &[char]) -> bool {
    let n = word.len();
    (n >= 3
        && is_consonant(word, n - 3)
        && !is_consonant(word, n - 2)
        && is_consonant(word, n - 1)
        && !matches!(word[n - 1], 'w' | 'x' | 'y'))
        || (n == 2 && !is_consonant(word, 0) && is_consonant(word, 1))
}

fn ends_with(word: &[char], suffix: &str) -> bool {
    let n = suffix.chars().count();
    word.len() >= n && word[word.len() - n..].iter().copied().eq(suffix.chars())
}

fn replace_suffix(word: &[char], suffix_len: usize, replacement: &str) -> Vec<char> {
    let mut out = word[..word.len() - suffix_len].to_vec();
    out.extend(replacement.chars());
    out
}

/// One rule of a step: a suffix, its replacement, and the condition on the stem left once the
/// suffix is removed.
struct Rule<'a> {
    suffix: &'a str,
    replacement: &'a str,
    condition: &'a dyn Fn(&[char]) -> bool,
}

/// NLTK's `_apply_rule_list`: the first rule whose suffix matches decides, whether or not its
/// condition holds.
fn apply_rules(word: Vec<char>, rules: &[Rule]) -> Vec<char> {
    for rule in rules {
        let n = rule.suffix.chars().count();
        if ends_with(&word, rule.suffix) {
            let stem = &word[..word.len() - n];
            return if (rule.condition)(stem) {
                replace_suffix(&word, n, rule.replacement)
            } else {
                word
            };
        }
    }
    word
}

fn always(_: &[char]) -> bool {
    true
}

fn positive_measure(stem: &[char]) -> bool {
    measure(stem) > 0
}

fn step1a(word: Vec<char>) -> Vec<char> {
    if ends_with(&word, "ies") && word.len() == 4 {
        return replace_suffix(&word, 3, "ie");
    }
    apply_rules(
        word,
        &[
            Rule {
                suffix: "sses",
                replacement: "ss",
                condition: &always,
            },
            Rule {
                suffix: "ies",
                replacement: "i",
                condition: &always,
            },
            Rule {
                suffix: "ss",
                replacement: "ss",
                condition: &always,
            },
            Rule {
                suffix: "s",
                replacement: "",
                condition: &always,
            },
        ],
    )
}

fn step1b(word: Vec<char>) -> Vec<char> {
    if ends_with(&word, "ied") {
        return replace_suffix(&word, 3, if word.len() == 4 { "ie" } else { "i" });
    }
    if ends_with(&word, "eed") {
        let stem = &word[..word.len() - 3];
        return if measure(stem) > 0 {
            replace_suffix(&word, 3, "ee")
        } else {
            word
        };
    }
    let intermediate = ["ed", "ing"].iter().find_map(|suffix| {
        let n = suffix.len();
        (ends_with(&word, suffix) && contains_vowel(&word[..word.len() - n]))
            .then(|| word[..word.len() - n].to_vec())
    });
    let Some(stem) = intermediate else {
        return word;
    };
    for (suffix, replacement) in [("at", "ate"), ("bl", "ble"), ("iz", "ize")] {
        if ends_with(&stem, suffix) {
            return replace_suffix(&stem, 2, replacement);
        }
    }
    if ends_double_consonant(&stem) {
        let last = stem[stem.len() - 1];
        return if matches!(last, 'l' | 's' | 'z') {
            stem
        } else {
            stem[..stem.len() - 1].to_vec()
        };
    }
    if measure(&stem) == 1 && ends_cvc(&stem) {
        let mut out = stem;
        out.push('e');
        return out;
    }
    stem
}

fn step1c(word: Vec<char>) -> Vec<char> {
    let after_consonant = |stem: &[char]| stem.len() > 1 && is_consonant(stem, stem.len() - 1);
    apply_rules(
        word,
        &[Rule {
            suffix: "y",
            replacement: "i",
            condition: &after_consonant,
        }],
    )
}

fn step2(word: Vec<char>) -> Vec<char> {
    if ends_with(&word, "alli") && positive_measure(&word[..word.len() - 4]) {
        return step2(replace_suffix(&word, 4, "al"));
    }
    // NLTK's `logi` rule tests the measure of the word less `ogi`, not less `logi`.
    let logi_stem_with_l = word
        .len()
        .checked_sub(3)
        .map(|n| word[..n].to_vec())
        .unwrap_or_default();
    let logi = move |_: &[char]| positive_measure(&logi_stem_with_l);
    let pm: &dyn Fn(&[char]) -> bool = &positive_measure;
    let rules = [
        ("ational", "ate"),
        ("tional", "tion"),
        ("enci", "ence"),
        ("anci", "ance"),
        ("izer", "ize"),
        ("bli", "ble"),
        ("alli", "al"),
        ("entli", "ent"),
        ("eli", "e"),
        ("ousli", "ous"),
        ("ization", "ize"),
        ("ation", "ate"),
        ("ator", "ate"),
        ("alism", "al"),
        ("iveness", "ive"),
        ("fulness", "ful"),
        ("ousness", "ous"),
        ("aliti", "al"),
        ("iviti", "ive"),
        ("biliti", "ble"),
        ("fulli", "ful"),
    ];
    let mut list: Vec<Rule> = rules
        .iter()
        .map(|&(suffix, replacement)| Rule {
            suffix,
            replacement,
            condition: pm,
        })
        .collect();
    list.push(Rule {
        suffix: "logi",
        replacement: "log",
        condition: &logi,
    });
    apply_rules(word, &list)
}

fn step3(word: Vec<char>) -> Vec<char> {
    let pm: &dyn Fn(&[char]) -> bool = &positive_measure;
    let rules = [
        ("icate", "ic"),
        ("ative", ""),
        ("alize", "al"),
        ("iciti", "ic"),
        ("ical", "ic"),
        ("ful", ""),
        ("ness", ""),
    ];
    let list: Vec<Rule> = rules
        .iter()
        .map(|&(suffix, replacement)| Rule {
            suffix,
            replacement,
            condition: pm,
        })
        .collect();
    apply_rules(word, &list)
}

fn step4(word: Vec<char>) -> Vec<char> {
    let gt1 = |stem: &[char]| measure(stem) > 1;
    let ion = |stem: &[char]| measure(stem) > 1 && matches!(stem.last(), Some('s' | 't'));
    let suffixes = [
        "al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent", "ion",
        "ou", "ism", "ate", "iti", "ous", "ive", "ize",
    ];
    let list: Vec<Rule> = suffixes
        .iter()
        .map(|&suffix| Rule {
            suffix,
            replacement: "",
            condition: if suffix == "ion" {
                &ion as &dyn Fn(&[char]) -> bool
            } else {
                &gt1
            },
        })
        .collect();
    apply_rules(word, &list)
}

fn step5a(word: Vec<char>) -> Vec<char> {
    if ends_with(&word, "e") {
        let stem = &word[..word.len() - 1];
        let m = measure(stem);
        if m > 1 || (m == 1 && !ends_cvc(stem)) {
            return stem.to_vec();
        }
    }
    word
}

fn step5b(word: Vec<char>) -> Vec<char> {
    if ends_with(&word, "ll") && measure(&word[..word.len() - 1]) > 1 {
        return word[..word.len() - 1].to_vec();
    }
    word
}

#[cfg(test)]
mod tests {
    use super::stem;

    #[test]
    fn classic_examples() {
        for (word, expected) in [
            ("caresses", "caress"),
            ("ponies", "poni"),
            ("ties", "tie"),
            ("agreed", "agre"),
            ("hopping", "hop"),
            ("filing", "file"),
            ("happy", "happi"),
            ("relational", "relat"),
            ("generalization", "gener"),
            ("dying", "die"),
            ("controll", "control"),
            ("analogi", "analog"),
            ("is", "is"),
        ] {
            assert_eq!(stem(word), expected, "{word}");
        }
    }
}
