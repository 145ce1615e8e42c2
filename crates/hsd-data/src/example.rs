//! One evaluation example: a stable id, the structured input, and every reference.

use serde::{Deserialize, Serialize};

/// One input with all of its references, in the order the file lists them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// Taken from the file when it has one, else `dataset/split/index` (0-based, file order).
    pub id: String,
    pub source: Source,
    /// Never empty, and no reference is blank.
    pub references: Vec<String>,
}

/// The input as the dataset structures it, so a template can show it its own way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// A news article (CNN/DailyMail, XSum).
    Document { text: String },
    /// A paper abstract as its sentences (SciTLDR-A).
    Abstract { sentences: Vec<String> },
    /// A chat or spoken dialogue, one turn per line (SAMSum, DialogSum).
    Dialogue { text: String },
    /// An E2E meaning representation: `attribute[value]` pairs in file order.
    MeaningRepresentation { attributes: Vec<Attribute> },
    /// A CommonGen concept set, without part-of-speech tags.
    Concepts { concepts: Vec<String> },
    /// RDF-style triples (DART, WebNLG); WebNLG entries also carry their category.
    Triples {
        triples: Vec<Triple>,
        category: Option<Category>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribute {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Triple {
    pub subject: String,
    pub predicate: String,
    pub object: String,
}

/// A WebNLG DBpedia category and whether the 2017 training data covered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    pub name: String,
    pub seen: bool,
}

/// The ten categories of the WebNLG 2017 training data; the five others in its test set are
/// the "unseen" half (Gardent et al. 2017, the challenge report).
const WEBNLG_2017_SEEN: [&str; 10] = [
    "Airport",
    "Astronaut",
    "Building",
    "City",
    "ComicsCharacter",
    "Food",
    "Monument",
    "SportsTeam",
    "University",
    "WrittenWork",
];

impl Category {
    pub fn webnlg_2017(name: &str) -> Category {
        Category {
            name: name.to_owned(),
            seen: WEBNLG_2017_SEEN.contains(&name),
        }
    }
}

impl Triple {
    /// Splits `subject | predicate | object`, the form DART and WebNLG write triples in.
    pub fn parse(text: &str) -> Option<Triple> {
        let mut parts = text.split(" | ");
        let triple = Triple {
            subject: parts.next()?.trim().to_owned(),
            predicate: parts.next()?.trim().to_owned(),
            object: parts.next()?.trim().to_owned(),
        };
        parts.next().is_none().then_some(triple)
    }
}

impl Source {
    /// The input as one string, the way it is shown to a model: documents and dialogues as
    /// they are, abstract sentences joined by spaces, an MR as `name[value], ...`, concepts
    /// comma-separated, one `subject | predicate | object` triple per line.
    pub fn render(&self) -> String {
        match self {
            Source::Document { text } | Source::Dialogue { text } => text.clone(),
            Source::Abstract { sentences } => sentences.join(" "),
            Source::MeaningRepresentation { attributes } => attributes
                .iter()
                .map(|a| format!("{}[{}]", a.name, a.value))
                .collect::<Vec<_>>()
                .join(", "),
            Source::Concepts { concepts } => concepts.join(", "),
            Source::Triples { triples, .. } => triples
                .iter()
                .map(|t| format!("{} | {} | {}", t.subject, t.predicate, t.object))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    /// The template placeholder that names this kind of input, besides `{source}`.
    pub fn placeholder(&self) -> &'static str {
        match self {
            Source::Document { .. } => "document",
            Source::Abstract { .. } => "abstract",
            Source::Dialogue { .. } => "dialogue",
            Source::MeaningRepresentation { .. } => "mr",
            Source::Concepts { .. } => "concepts",
            Source::Triples { .. } => "triples",
        }
    }

    pub fn category(&self) -> Option<&Category> {
        match self {
            Source::Triples { category, .. } => category.as_ref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triple_parse_needs_exactly_three_parts() {
        let t = Triple::parse("Aarhus | leader | Jacob_Bundsgaard").unwrap();
        assert_eq!(t.subject, "Aarhus");
        assert_eq!(t.object, "Jacob_Bundsgaard");
        assert!(Triple::parse("a | b").is_none());
        assert!(Triple::parse("a | b | c | d").is_none());
    }

    #[test]
    fn webnlg_categories_split_ten_seen_five_unseen() {
        assert!(Category::webnlg_2017("Airport").seen);
        assert!(!Category::webnlg_2017("Athlete").seen);
    }

    #[test]
    fn render_shows_each_source_kind_in_its_usual_form() {
        let mr = Source::MeaningRepresentation {
            attributes: vec![
                Attribute {
                    name: "name".into(),
                    value: "Blue Spice".into(),
                },
                Attribute {
                    name: "area".into(),
                    value: "riverside".into(),
                },
            ],
        };
        assert_eq!(mr.render(), "name[Blue Spice], area[riverside]");
        let concepts = Source::Concepts {
            concepts: vec!["dog".into(), "frisbee".into()],
        };
        assert_eq!(concepts.render(), "dog, frisbee");
        let triples = Source::Triples {
            triples: vec![
                Triple::parse("a | b | c").unwrap(),
                Triple::parse("d | e | f").unwrap(),
            ],
            category: None,
        };
        assert_eq!(triples.render(), "a | b | c\nd | e | f");
    }
}
