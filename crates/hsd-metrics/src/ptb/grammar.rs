//! The rules of CoreNLP 3.4.1's PTB lexer (`PTBLexer.flex`), in the order the lexer tries
//! them, written as `regex-automata` patterns.
//!
//! The lexer is case-insensitive for the letters it spells out (`cannot`, `Jan`, `www`) but not
//! inside character classes (`[A-Z]`, `[A]bout`), so literal words go through [`ci`] and
//! classes stay as written. A rule may carry a trailing context: it must follow the token for
//! the rule to apply and counts towards the longest match, but is not part of the token.

/// What a rule's match becomes (see `normalize.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// The matched text as it is.
    Keep,
    /// The text minus its last `n` characters, which are read again (`cannot` is `can` +
    /// `not`).
    SplitTail(usize),
    /// Spaces inside the token become no-break spaces (markup, fractions like `1 1/2`).
    NoBreakSpaces,
    /// `&amp;` becomes `&`.
    Amp,
    /// Soft hyphens removed.
    SoftHyphens,
    /// Quotes in LaTeX style; `true` where the quote probably opens.
    Quote(bool),
    /// A vulgar fraction character in ASCII (`½` is `1/2`).
    VulgarFraction,
    /// `¢` is `cents`, `£` is `#`, the euro and generic currency signs are `$`.
    Currency,
    /// An acronym ending a sentence: a single letter loses its period, a longer one keeps it;
    /// either way the period is then read again as a token of its own.
    AcronymAtSentenceEnd,
    /// An abbreviation ending a sentence: it keeps its period, which is also read again.
    AbbreviationAtSentenceEnd,
    /// A phone number: spaces become no-break spaces and brackets are named.
    Phone,
    /// A fixed token (`-LRB-`, `<`, `...`, `--`).
    Replace(&'static str),
    /// An emoticon, round brackets named.
    Smiley,
    /// A run of hyphens: three or four are `--`.
    Hyphens,
    /// No token (spaces, deleted characters).
    Skip,
}

/// One lexer rule: the token's pattern, the trailing context if any, and the action.
pub(crate) struct Rule {
    pub(crate) token: String,
    pub(crate) context: Option<String>,
    pub(crate) action: Action,
}

/// Literal letters matched in either case (ASCII case folding, as the lexer's `%caseless`).
fn ci(literal: &str) -> String {
    format!("(?i-u:{literal})")
}

/// A word whose first letter must be as written and the rest in either case (`[A]bout`).
fn first_exact(word: &str) -> String {
    let (first, rest) = word.split_at(1);
    if rest.is_empty() {
        first.to_owned()
    } else {
        format!("{first}{}", ci(rest))
    }
}

/// Alternatives, each in either case, as one group.
fn ci_words(words: &[&str]) -> String {
    format!("(?:{})", ci(&words.join("|")))
}

/// Code points the lexer counts as letters beyond Unicode's letter category: soft hyphen,
/// combining marks and signs of several scripts (inclusive ranges).
#[rustfmt::skip]
const EXTRA_LETTERS: &[(u32, u32)] = &[
    (0xAD, 0xAD), (0x237, 0x24F), (0x2C2, 0x2C5), (0x2D2, 0x2DF), (0x2E5, 0x2FF),
    (0x300, 0x36F), (0x370, 0x37D), (0x384, 0x385), (0x3CF, 0x3CF), (0x3F6, 0x3F6),
    (0x3FC, 0x3FF), (0x483, 0x487), (0x4CF, 0x4CF), (0x4F6, 0x4FF), (0x510, 0x525),
    (0x55A, 0x55F), (0x591, 0x5BD), (0x5BF, 0x5BF), (0x5C1, 0x5C2), (0x5C4, 0x5C5),
    (0x5C7, 0x5C7), (0x615, 0x61A), (0x63B, 0x63F), (0x64B, 0x65E), (0x670, 0x670),
    (0x6D6, 0x6EF), (0x6FA, 0x6FF), (0x70F, 0x70F), (0x711, 0x711), (0x730, 0x74F),
    (0x750, 0x77F), (0x7A6, 0x7B1), (0x7CA, 0x7F5), (0x7FA, 0x7FA), (0x900, 0x903),
    (0x93C, 0x93C), (0x93E, 0x94E), (0x951, 0x955), (0x962, 0x963), (0x981, 0x983),
    (0x9BC, 0x9C4), (0x9C7, 0x9C8), (0x9CB, 0x9CD), (0x9D7, 0x9D7), (0x9E2, 0x9E3),
    (0xA01, 0xA03), (0xA3C, 0xA3C), (0xA3E, 0xA4F), (0xA81, 0xA83), (0xABC, 0xACF),
    (0xB82, 0xB82), (0xBBE, 0xBC2), (0xBC6, 0xBC8), (0xBCA, 0xBCD), (0xC01, 0xC03),
    (0xC3E, 0xC56), (0xD3E, 0xD44), (0xD46, 0xD48), (0xE30, 0xE3A), (0xE47, 0xE4E),
    (0xEB1, 0xEBC), (0xEC8, 0xECD),
];

/// Symbols that are tokens of their own (inclusive ranges).
#[rustfmt::skip]
const MISC_SYMBOLS: &[(u32, u32)] = &[
    (0x25, 0x26), (0x2B, 0x2B), (0x5C, 0x5C), (0x5E, 0x5E), (0x7C, 0x7C), (0x7E, 0x7E),
    (0xA6, 0xA9), (0xAC, 0xAC), (0xAE, 0xBA), (0xD7, 0xD7), (0xF7, 0xF7), (0x387, 0x387),
    (0x5BE, 0x5BE), (0x5C0, 0x5C0), (0x5C3, 0x5C3), (0x5C6, 0x5C6), (0x5F3, 0x5F4),
    (0x600, 0x603), (0x606, 0x60A), (0x60C, 0x60C), (0x614, 0x614), (0x61B, 0x61B),
    (0x61E, 0x61E), (0x66A, 0x66A), (0x66D, 0x66D), (0x703, 0x70D), (0x7F6, 0x7F8),
    (0x964, 0x965), (0xE4F, 0xE4F), (0x1FBD, 0x1FBD), (0x2016, 0x2017), (0x2020, 0x2023),
    (0x2030, 0x2038), (0x203B, 0x203B), (0x203E, 0x2042), (0x2044, 0x2044), (0x207A, 0x207F),
    (0x208A, 0x208E), (0x2100, 0x214F), (0x2190, 0x21FF), (0x2200, 0x2BFF), (0x3012, 0x3012),
    (0x30FB, 0x30FB), (0xFF01, 0xFF0F), (0xFF1A, 0xFF20), (0xFF3B, 0xFF40), (0xFF5B, 0xFF65),
];

/// The Unicode version of the lexer's tables (JFlex 1.5's): later letters and digits are not
/// letters and digits to it.
const UNICODE_VERSION: &str = "6.3";

/// The code points of a Unicode general category as the lexer knows them: assigned by
/// [`UNICODE_VERSION`] and in the Basic Multilingual Plane (it reads UTF-16 code units, so a
/// character beyond is two surrogates that no rule takes).
fn java_class(category: &str) -> String {
    format!(r"[\p{{{category}}}&&\p{{age:{UNICODE_VERSION}}}&&\x{{0}}-\x{{FFFF}}]")
}

/// The body of a character class holding `ranges`.
fn class_of(ranges: &[(u32, u32)]) -> String {
    ranges
        .iter()
        .map(|&(low, high)| {
            if low == high {
                format!("\\x{{{low:X}}}")
            } else {
                format!("\\x{{{low:X}}}-\\x{{{high:X}}}")
            }
        })
        .collect()
}

/// Words after which an acronym's period ends a sentence (`U.S. The`), first letter as
/// written.
#[rustfmt::skip]
const SENTENCE_STARTS: &[&str] = &[
    "About", "According", "Additionally", "After", "An", "A", "As", "At", "But", "Earlier",
    "He", "Her", "Here", "However", "If", "In", "It", "Last", "Many", "More", r"Mr\.", r"Ms\.",
    "Now", "Once", "One", "Other", "Our", "She", "Since", "So", "Some", "Such", "That", "The",
    "Their", "Then", "There", "These", "They", "This", "We", "When", "While", "What", "Yet",
    "You",
];

/// The rules, in priority order (a longer match wins; at equal length, the earlier rule).
pub(crate) fn rules() -> Vec<Rule> {
    // Characters and small pieces.
    let digit = format!(r"[{}\x{{7C0}}-\x{{7C9}}]", java_class("Nd"));
    let space = r"[ \t\x{A0}\x{2000}-\x{200A}\x{3000}]";
    let newline = r"(?:\r|\r?\n|\x{2028}|\x{2029}|\x0B|\x0C|\x{85})";
    let spacenl = format!("(?:{space}|{newline})");
    let sgml = r#"<(?:[!?][A-Za-z\-][^>\r\n]*|[A-Za-z][A-Za-z0-9_:.\-]*(?:[ ]+(?:[A-Za-z][A-Za-z0-9_:.\-]*|[A-Za-z][A-Za-z0-9_:.\-]*[ ]*=[ ]*(?:'[^']*'|"[^"]*")))*[ ]*/?|/[A-Za-z][A-Za-z0-9_:.\-]*)[ ]*>"#;
    let sentend = format!("{spacenl}(?:{spacenl}|{}|{sgml})", java_class("Lu"));
    let amp = ci("&amp;");
    let letter_entity = format!("&[aeiouAEIOU]{}", ci_words(&["acute;", "grave;", "uml;"]));
    // Letters by the lexer's Unicode version, where a few have changed category since.
    let unicode_letter = &format!(
        r"[[{}--[\x{{19B0}}-\x{{19C0}}\x{{19C8}}\x{{19C9}}\x{{1CF2}}\x{{1CF3}}]]\x{{1885}}\x{{1886}}]",
        java_class("L")
    );
    let letter = format!(
        "(?:{unicode_letter}|{letter_entity}|[{}])",
        class_of(EXTRA_LETTERS)
    );
    let apos = format!("(?:['\\x{{92}}\\x{{2019}}]|{})", ci("&apos;"));
    let apos_etc = format!("(?:{apos}|[`\\x{{91}}\\x{{2018}}\\x{{201B}}])");
    let hyphen = r"[\-_\x{58A}\x{2010}\x{2011}]";
    let acro_tail = format!(
        "{}-U\\.S|U\\.S\\.-(?:U\\.K|U\\.S\\.S\\.R)",
        ci_words(&["Canada", "Sino", "Korean", "EU", "Japan", "non"])
    );
    let acro = format!(r"(?:[A-Za-z](?:\.[A-Za-z])*|{acro_tail})");
    let acro2 = format!(r"(?:[A-Za-z](?:\.[A-Za-z])+|{acro_tail})");

    // Numbers.
    let num = format!(r"(?:{digit}+|{digit}*(?:[.:,\x{{AD}}\x{{66B}}\x{{66C}}]{digit}+)+)");
    let number = format!(r"[\-+]?{num}");
    let date = format!(r"{digit}{{1,2}}[\-/]{digit}{{1,2}}[\-/]{digit}{{2,4}}");
    let subsupnum = r"[\x{207A}\x{207B}\x{208A}\x{208B}]?(?:[\x{2070}\x{B9}\x{B2}\x{B3}\x{2074}-\x{2079}]+|[\x{2080}-\x{2089}]+)";
    let frac =
        format!(r"(?:{digit}{{1,4}}[\- \x{{A0}}])?{digit}{{1,4}}(?:\\?/|\x{{2044}}){digit}{{1,4}}");
    let phone = r"(?:\([0-9]{2,3}\)[ \x{A0}]?|(?:\+\+?)?(?:[0-9]{2,4}[\- \x{A0}])?[0-9]{2,4}[\- \x{A0}])[0-9]{3,4}[\- \x{A0}]?[0-9]{3,5}|(?:(?:\+\+?)?[0-9]{2,4}\.)?[0-9]{2,4}\.[0-9]{3,4}\.[0-9]{3,5}";

    // Words.
    let word = format!(r"{letter}(?:{letter}|{digit})*(?:[.!?]{letter}(?:{letter}|{digit})*)*");
    let alnum = format!(r"(?:{unicode_letter}|{digit})");
    let filename_ext = ci_words(&[
        "bat", "bmp", "c", "class", "cgi", "cpp", "dll", "doc", "docx", "exe", "gif", "gz", "h",
        "htm", "html", "jar", "java", "jpeg", "jpg", "mov", "mp3", "pdf", "php", "pl", "png",
        "ppt", "ps", "py", "sql", "tar", "txt", "wav", "x", "xml", "zip",
    ]);
    let filename =
        format!(r"(?:{letter}|{digit})+(?:[.](?:{letter}|{digit})+)*(?:[.]{filename_ext})");
    let thing_part = format!(r"(?:[dDoOlL]{apos_etc}{alnum})?{alnum}+");
    let thing = format!(r"{thing_part}(?:{hyphen}{thing_part})*");
    let thinga = format!(r"[A-Z]+(?:(?:[+&]|{amp})[A-Z]+)+");
    let thing3 =
        r"[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\?/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}".to_owned();
    let hthing =
        format!(r"[A-Za-z0-9][A-Za-z0-9.,\x{{AD}}]*(?:-(?:[A-Za-z0-9\x{{AD}}]+|{acro2}\.))+");
    let redaux = format!(r"{apos}(?:[msdMSD]|{})", ci_words(&["re", "ve", "ll"]));
    let sword = r"[A-Za-z\x{AD}]*[A-MO-Za-mo-z]\x{AD}*";
    let sredaux = format!("{}{apos_etc}{}", ci("n"), ci("t"));
    let l = unicode_letter;
    let apoword = [
        format!("{apos}{}{apos}?", ci("n")),
        format!("[lLdDjJ]{apos}"),
        format!("{}{apos}", ci("Dunkin")),
        format!("{}{apos}", ci("somethin")),
        format!("{}{apos}", ci("ol")),
        format!("{apos}{}", ci("em")),
        format!("[A-HJ-XZn]{apos_etc}{l}{{2}}{l}*"),
        format!("{apos}[2-9]0{}", ci("s")),
        format!("{apos}{}", ci("till?")),
        format!("{l}{l}*[aeiouyAEIOUY]{apos_etc}[aeiouA-Z]{l}*"),
        format!("{apos}{}", ci("cause")),
        ci(r"cont'd\.?"),
        ci("'twas"),
        ci("nor'easter"),
        ci("c'mon"),
        ci("e'er"),
        ci("s'mores"),
        ci("ev'ry"),
        ci("li'l"),
        ci("nat'l"),
        format!("{}{apos_etc}{}", ci("O"), ci("o")),
    ]
    .join("|");
    let apoword2 = format!("{}{apos}", ci("y"));
    let full_url = format!(
        r#"{}://[^ \t\n\f\r"<>|(){{}}]+[^ \t\n\f\r"<>|.!?(){{}},\-]"#,
        ci("https?")
    );
    // `,-_` in the lexer's class is a range: the domain holds no digits, capitals or `.-/:;<=>?@[\]^_`.
    let likely_url = format!(
        r#"(?:(?:{}\.(?:[^ \t\n\f\r"<>|.!?(){{}},]+\.)+[a-zA-Z]{{2,4}})|(?:(?:[^ \t\n\f\r"`'<>|.!?(){{}},-_$]+\.)+{}))(?:/[^ \t\n\f\r"<>|()]+[^ \t\n\f\r"<>|.!?(){{}},\-])?"#,
        ci("www"),
        ci_words(&["com", "net", "org", "edu"])
    );
    let email = format!(
        r#"(?:{}|<)?[a-zA-Z0-9][^ \t\n\f\r"<>|()\x{{A0}}{{}}]*@(?:[^ \t\n\f\r"<>|(){{}}.\x{{A0}}]+\.)*(?:[^ \t\n\f\r"<>|(){{}}.\x{{A0}}]+)(?:{}|>)?"#,
        ci("&lt;"),
        ci("&gt;")
    );
    let twitter = format!(r"@[a-zA-Z_][a-zA-Z_0-9]*|#{letter}+");

    // Abbreviations.
    let abmonth = ci_words(&[
        "Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec",
    ]);
    let abdays = ci_words(&["Mon", "Tue", "Tues", "Wed", "Thu", "Thurs", "Fri"]);
    // A few states must be capitalized, being common words too.
    let abstate = format!(
        "(?:{}|{})",
        ci(
            "Ala|Ariz|Calif|Colo|Conn|Ct|Dak|Fla|Ga|Ind|Kans?|Ky|Md|Mich|Minn|Mo|Mont|Neb|Nev|\
             Okla|Penn|Tenn|Va|Vt|Wisc?|Wyo"
        ),
        [
            "Az", "Ark", "Del", "Ill", "La", "Mass", "Miss", "Ore", "Pa", "Tex", "Wash"
        ]
        .map(first_exact)
        .join("|")
    );
    let abcomp = format!(
        "(?:{}|{}[ye]{})",
        ci("Inc|Cos?|Corp|Ltd|Plc|Rt|Bancorp|Bhd|Assn|Univ|Intl|Sys"),
        ci("Pp?t"),
        ci("s?")
    );
    let abnum = ci_words(&["tel", "est", "ext", "sq"]);
    let abptit = ci(r"Jr|Sr|Bros|(?:Ed|Ph)\.D|Blvd|Rd|Esq");
    let abbrev1 = format!(
        r"(?:{abmonth}|{abdays}|{abstate}|{abcomp}|{abnum}|{abptit}|{})\.",
        ci("etc|al|seq|Bldg")
    );
    let abtitle = format!(
        "(?:{}|{})",
        ci(
            "Mr|Mrs|Ms|Drs?|Profs?|Sens?|Reps?|Attys?|Lt|Col|Gen|Messrs|Govs?|Adm|Rev|Maj|Sgt|\
            Cpl|Pvt|Capt|Ste?|Ave|Pres|Lieut|Hon|Brig|Co?mdr|Pfc|Spc|Supts?|Det|Mt|Ft|Adj|Adv|\
            Asst|Assoc|Ens|Insp|Mlle|Mme|Msgr|Sfc"
        ),
        first_exact("Miss")
    );
    let abcomp2 = format!(
        "(?:{}|{}[ft]{})",
        ci("Invt|Elec|Natl|Dept"),
        ci("M"),
        ci("g")
    );
    let abbrev4 = format!(
        r"(?:{abtitle}|{}|{acro}|{abcomp2})",
        ci(r"vs|Alex|Wm|Jos|Cie|a\.k\.a|cf|TREAS|Ph")
    );
    let abbrev2 = format!(r"{abbrev4}\.");
    let acronym = format!(r"{acro}\.");
    let abbrev3 = format!(
        r"{}\.",
        ci_words(&["ca", "figs?", "prop", "nos?", "art", "bldg", "pp", "op"])
    );
    let sentence_start = SENTENCE_STARTS
        .iter()
        .map(|w| first_exact(w))
        .collect::<Vec<_>>()
        .join("|");

    // Punctuation.
    let ldots = r"\.{3,5}|(?:\.[ \x{A0}]){2,4}\.|[\x{85}\x{2026}]";
    let insentp = r"[,;:\x{3001}]";
    let quotes = format!(
        r"{apos}|''|[`\x{{2018}}\x{{2019}}\x{{201A}}\x{{201B}}\x{{201C}}\x{{201D}}\x{{91}}\x{{92}}\x{{93}}\x{{94}}\x{{201E}}\x{{201F}}\x{{2039}}\x{{203A}}\x{{AB}}\x{{BB}}]{{1,2}}"
    );
    let dblquot = format!(r#"(?:"|{})"#, ci("&quot;"));
    let tbspec = format!(
        r"-{}-|{}|{}(?:&|{amp}){}|{}(?:&|{amp}){}|{}{apos}{}|{}{apos}{}",
        ci_words(&["RRB", "LRB", "RCB", "LCB", "RSB", "LSB"]),
        ci(r"C\.D\.s|pro-|anti-"),
        ci("S"),
        ci("P-500"),
        ci("S"),
        ci("Ls"),
        ci("Cap"),
        ci("n"),
        ci("c"),
        ci("est")
    );
    let tbspec2 = format!("{apos}[0-9][0-9]");
    let smiley = r"[<>]?[:;=][\-o*']?[()DPdpO\\{@|\[\]]";
    let asian_smiley = r"[\^x=~<>]\.\[\^(?i-u:x)=~<>\]|[\-\^x=~<>']_[\-\^x=~<>']|\([\-\^x=~<>'][_.]?[\-\^x=~<>']\)|\([\^x=~<>']-[\^x=~<>'`]\)";
    let misc_symbol = format!("[{}]", class_of(MISC_SYMBOLS));

    use Action::*;
    let rule = |token: &str, context: Option<&str>, action: Action| Rule {
        token: token.to_owned(),
        context: context.map(str::to_owned),
        action,
    };
    vec![
        rule(&ci(r"c\+\+"), None, Keep),
        rule(&ci("[cf]#"), None, Keep),
        rule(&ci("cannot"), None, SplitTail(3)),
        rule(&ci("'twas"), None, SplitTail(3)),
        rule(&ci("'tis"), None, SplitTail(2)),
        rule(
            &ci_words(&["gonna", "gotta", "lemme", "gimme", "wanna"]),
            None,
            SplitTail(2),
        ),
        rule(sgml, None, NoBreakSpaces),
        rule(
            &format!(
                r"&{};|[\x{{96}}\x{{97}}\x{{2013}}\x{{2014}}\x{{2015}}]",
                ci_words(&["MD", "mdash", "ndash"])
            ),
            None,
            Replace("--"),
        ),
        rule(&amp, None, Replace("&")),
        rule(
            &format!("&(?:{}|#[0-9]+);", ci("HT|TL|UR|LR|QC|QL|QR|odq|cdq")),
            None,
            Keep,
        ),
        rule(&word, Some(&redaux), SoftHyphens),
        rule(sword, Some(&sredaux), SoftHyphens),
        rule(&word, None, SoftHyphens),
        rule(&apoword, None, Keep),
        rule(&apoword2, Some(unicode_letter), Keep),
        rule(&full_url, None, Keep),
        rule(&likely_url, None, Keep),
        rule(&email, None, Keep),
        rule(&twitter, None, Keep),
        rule(&redaux, Some("[^A-Za-z]"), Quote(false)),
        rule(&sredaux, Some("[^A-Za-z]"), Quote(false)),
        rule(&date, None, Keep),
        rule(&number, None, SoftHyphens),
        rule(subsupnum, None, Keep),
        rule(&frac, None, NoBreakSpaces),
        rule(
            r"[\x{BC}\x{BD}\x{BE}\x{2153}-\x{215E}]",
            None,
            VulgarFraction,
        ),
        rule(&tbspec, None, Amp),
        rule(&thing3, None, Keep),
        rule(r"(?:[A-Z]*\$|#)", None, Keep),
        rule(
            r"[\x{A2}\x{A3}\x{A4}\x{A5}\x{80}\x{20A0}\x{20AC}\x{60B}\x{E3F}\x{20A4}\x{FFE0}\x{FFE1}\x{FFE5}\x{FFE6}]",
            None,
            Currency,
        ),
        rule(
            &acronym,
            Some(&format!("{spacenl}+(?:{sentence_start}|{sgml}){spacenl}")),
            AcronymAtSentenceEnd,
        ),
        rule(&abbrev3, Some(&format!("{spacenl}?{digit}")), Keep),
        rule(
            &format!(r"(?:{}[eyEY]|{})\.", ci("pt"), ci("co")),
            Some(&format!("{space}{}", ci_words(&["ltd", "lim"]))),
            Keep,
        ),
        rule(&abbrev1, Some(&sentend), AbbreviationAtSentenceEnd),
        rule(&abbrev1, Some("(?s:..)"), Keep),
        rule(&abbrev1, None, AbbreviationAtSentenceEnd),
        rule(&abbrev2, None, Keep),
        rule(&abbrev4, Some(space), Keep),
        rule(&acro, Some(&spacenl), Keep),
        rule(&tbspec2, Some(&spacenl), Keep),
        rule(&filename, Some(&format!("(?:{spacenl}|[.?!,])")), Keep),
        rule(&format!(r"{word}\."), Some(insentp), SoftHyphens),
        rule(phone, None, Phone),
        rule(&dblquot, Some("[A-Za-z0-9$]"), Quote(true)),
        rule(&dblquot, None, Quote(false)),
        rule(r"\x7F", None, Skip),
        rule(&format!("<|{}", ci("&lt;")), None, Replace("<")),
        rule(&format!(">|{}", ci("&gt;")), None, Replace(">")),
        rule(smiley, Some("[^A-Za-z0-9]"), Smiley),
        rule(asian_smiley, None, Smiley),
        rule(r"\{", None, Replace("-LCB-")),
        rule(r"\}", None, Replace("-RCB-")),
        rule(r"\[", None, Replace("-LSB-")),
        rule(r"\]", None, Replace("-RSB-")),
        rule(r"\(", None, Replace("-LRB-")),
        rule(r"\)", None, Replace("-RRB-")),
        rule(r"-+", None, Hyphens),
        rule(ldots, None, Replace("...")),
        rule("@+|#+|_+", None, Keep),
        rule(r"\*+|(?:\\\*){1,3}", None, Keep),
        rule(insentp, None, Keep),
        rule("[?!]+", None, Keep),
        rule(
            r"[.¡¿\x{37E}\x{589}\x{61F}\x{6D4}\x{700}-\x{702}\x{7FA}\x{3002}]",
            None,
            Keep,
        ),
        rule("=", None, Keep),
        rule("/", None, Keep),
        rule(&format!(r"{hthing}\."), Some(insentp), SoftHyphens),
        rule(&hthing, None, SoftHyphens),
        rule(&format!(r"{thing}\."), Some(insentp), Keep),
        rule(&thing, None, Keep),
        rule(&format!(r"{thinga}\."), Some(insentp), Amp),
        rule(&thinga, None, Amp),
        rule("'", Some(r"[A-Za-z][^ \t\n\r\x{A0}]"), Quote(true)),
        rule(&redaux, None, Quote(false)),
        rule(&sredaux, None, Quote(false)),
        rule(&quotes, None, Quote(false)),
        rule("<<|>>", None, Keep),
        rule(&misc_symbol, None, Keep),
        rule(
            &format!(r"\x00|{space}+|[\x{{200B}}\x{{200E}}\x{{200F}}\x{{FEFF}}]"),
            None,
            Skip,
        ),
        rule(newline, None, Skip),
        rule(&ci("&nbsp;"), None, Skip),
        // Anything else is deleted.
        rule(r"(?s:.)", None, Skip),
    ]
}
