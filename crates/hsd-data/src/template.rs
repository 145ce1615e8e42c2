//! Prompt templates: one TOML file per dataset (shipped in `templates/`, overridable by a user
//! file of the same schema), rendered zero- or k-shot, as one string or as chat messages.

use std::path::{Path, PathBuf};

use rand_xoshiro::SplitMix64;
use rand_xoshiro::rand_core::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::dataset::{DatasetSpec, load};
use crate::error::DataError;
use crate::example::Example;
use crate::names::{DatasetName, Split};

/// A dataset's prompt. `instruction` and `answer_prefix` are literal; `input` shows one
/// example and may use `{source}` (any dataset), the dataset's own name for its input
/// (`{document}`, `{abstract}`, `{dialogue}`, `{mr}`, `{concepts}`, `{triples}`) and, for
/// WebNLG, `{category}`; `{{` and `}}` are literal braces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptTemplate {
    pub dataset: DatasetName,
    pub instruction: String,
    pub input: String,
    pub answer_prefix: String,
    /// Between the instruction, each shot and the query in plain prompts.
    #[serde(default = "default_separator")]
    pub separator: String,
    /// Where chat prompts put the instruction: a system message, or the first user message
    /// (for chat templates without a system role).
    #[serde(default)]
    pub instruction_role: InstructionRole,
}

fn default_separator() -> String {
    "\n\n".to_owned()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstructionRole {
    #[default]
    System,
    User,
}

/// One string for a base model, or messages for the model's own chat template to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Plain,
    Chat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptBody {
    Text(String),
    Messages(Vec<Message>),
}

/// How much of a source survived its token budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truncation {
    pub original_tokens: usize,
    pub kept_tokens: usize,
    pub original_words: usize,
    pub kept_words: usize,
}

/// A rendered prompt and what was done to fit it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    pub body: PromptBody,
    /// Set when the evaluated example's source was cut to the budget.
    pub truncated: Option<Truncation>,
    /// The ids of the shots, in prompt order.
    pub shot_ids: Vec<String>,
    /// How many shot sources were cut to the budget.
    pub truncated_shots: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RenderOptions {
    pub mode: Mode,
    /// The most tokens a source (the example's, and each shot's) may take; longer ones are
    /// cut at a word boundary.
    pub max_source_tokens: Option<usize>,
}

fn builtin_toml(dataset: DatasetName) -> &'static str {
    match dataset {
        DatasetName::CnnDailymail => include_str!("../templates/cnn_dailymail.toml"),
        DatasetName::Xsum => include_str!("../templates/xsum.toml"),
        DatasetName::E2e => include_str!("../templates/e2e.toml"),
        DatasetName::CommonGen => include_str!("../templates/common_gen.toml"),
        DatasetName::Samsum => include_str!("../templates/samsum.toml"),
        DatasetName::Dialogsum => include_str!("../templates/dialogsum.toml"),
        DatasetName::Dart => include_str!("../templates/dart.toml"),
        DatasetName::Webnlg2017 => include_str!("../templates/webnlg2017.toml"),
        DatasetName::Scitldr => include_str!("../templates/scitldr.toml"),
    }
}

/// The placeholders a dataset's `input` may use besides `{source}`.
fn placeholders(dataset: DatasetName) -> &'static [&'static str] {
    match dataset {
        DatasetName::CnnDailymail | DatasetName::Xsum => &["document"],
        DatasetName::Scitldr => &["abstract"],
        DatasetName::Samsum | DatasetName::Dialogsum => &["dialogue"],
        DatasetName::E2e => &["mr"],
        DatasetName::CommonGen => &["concepts"],
        DatasetName::Dart => &["triples"],
        DatasetName::Webnlg2017 => &["triples", "category"],
    }
}

enum Piece<'t> {
    Literal(&'t str),
    Brace(char),
    Placeholder(&'t str),
}

/// Splits `{name}` placeholders from literal text; `{{`/`}}` are literal braces.
fn pieces(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(['{', '}']) {
        pieces.push(Piece::Literal(&rest[..i]));
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("{{") {
            pieces.push(Piece::Brace('{'));
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            pieces.push(Piece::Brace('}'));
            rest = after;
        } else if tail.starts_with('}') {
            return Err("unmatched `}` (write `}}` for a literal brace)".to_owned());
        } else {
            let end = tail
                .find('}')
                .ok_or_else(|| "unclosed `{` (write `{{` for a literal brace)".to_owned())?;
            pieces.push(Piece::Placeholder(&tail[1..end]));
            rest = &tail[end + 1..];
        }
    }
    pieces.push(Piece::Literal(rest));
    Ok(pieces)
}

impl PromptTemplate {
    /// The template shipped with this crate for `dataset`.
    pub fn builtin(dataset: DatasetName) -> Result<PromptTemplate, DataError> {
        PromptTemplate::from_toml(builtin_toml(dataset), &format!("templates/{dataset}.toml"))
    }

    /// A template from TOML text; `origin` names it in errors (a path, or `templates/x.toml`).
    pub fn from_toml(text: &str, origin: &str) -> Result<PromptTemplate, DataError> {
        let template: PromptTemplate =
            toml::from_str(text).map_err(|source| DataError::TemplateToml {
                origin: origin.to_owned(),
                source,
            })?;
        template.validate(origin)?;
        Ok(template)
    }

    pub fn from_file(path: &Path) -> Result<PromptTemplate, DataError> {
        let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
            path: path.to_owned(),
            source,
        })?;
        PromptTemplate::from_toml(&text, &path.display().to_string())
    }

    fn validate(&self, origin: &str) -> Result<(), DataError> {
        let error = |field: &str, reason: String| DataError::Template {
            origin: origin.to_owned(),
            field: field.to_owned(),
            reason,
        };
        let known = placeholders(self.dataset);
        for piece in pieces(&self.input).map_err(|reason| error("input", reason))? {
            if let Piece::Placeholder(name) = piece
                && name != "source"
                && !known.contains(&name)
            {
                return Err(error(
                    "input",
                    format!(
                        "unknown placeholder `{{{name}}}` for {}; known: {{source}}, {}",
                        self.dataset,
                        known
                            .iter()
                            .map(|k| format!("{{{k}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        if self.instruction.trim().is_empty() {
            return Err(error("instruction", "is empty".to_owned()));
        }
        Ok(())
    }

    /// Renders `example` after `shots` (none for zero-shot). Sources longer than the budget
    /// are cut at the last word boundary that fits, by binary search over words with
    /// `count_tokens` (the model's tokenizer, passed in so this crate stays model-free).
    pub fn render(
        &self,
        example: &Example,
        shots: &[&Example],
        options: &RenderOptions,
        count_tokens: &dyn Fn(&str) -> usize,
    ) -> Result<Prompt, DataError> {
        let fit = |e: &Example| fit_source(e, options.max_source_tokens, count_tokens);
        let (query_source, truncated) = fit(example)?;
        let query = self.fill_input(example, &query_source)?;
        let mut truncated_shots = 0;
        let mut shown = Vec::with_capacity(shots.len());
        for &shot in shots {
            let (source, cut) = fit(shot)?;
            truncated_shots += usize::from(cut.is_some());
            shown.push((self.fill_input(shot, &source)?, shot.references[0].clone()));
        }
        let body =
            match options.mode {
                Mode::Plain => {
                    let mut parts = vec![self.instruction.clone()];
                    parts.extend(shown.into_iter().map(|(input, answer)| {
                        format!("{input}\n{} {answer}", self.answer_prefix)
                    }));
                    parts.push(format!("{query}\n{}", self.answer_prefix));
                    PromptBody::Text(parts.join(&self.separator))
                }
                Mode::Chat => {
                    let message = |role, content| Message { role, content };
                    let mut messages = Vec::with_capacity(2 + 2 * shown.len());
                    let mut user_inputs: Vec<String> =
                        shown.iter().map(|(input, _)| input.clone()).collect();
                    user_inputs.push(query);
                    match self.instruction_role {
                        InstructionRole::System => {
                            messages.push(message(Role::System, self.instruction.clone()));
                        }
                        InstructionRole::User => {
                            user_inputs[0] =
                                format!("{}{}{}", self.instruction, self.separator, user_inputs[0]);
                        }
                    }
                    let mut answers = shown.into_iter().map(|(_, answer)| answer);
                    for input in user_inputs {
                        messages.push(message(Role::User, input));
                        if let Some(answer) = answers.next() {
                            messages.push(message(Role::Assistant, answer));
                        }
                    }
                    PromptBody::Messages(messages)
                }
            };
        Ok(Prompt {
            body,
            truncated,
            shot_ids: shots.iter().map(|s| s.id.clone()).collect(),
            truncated_shots,
        })
    }

    fn fill_input(&self, example: &Example, source: &str) -> Result<String, DataError> {
        let error = |reason: String| DataError::Template {
            origin: format!("for {}", self.dataset),
            field: "input".to_owned(),
            reason,
        };
        let mut out = String::with_capacity(self.input.len() + source.len());
        for piece in pieces(&self.input).map_err(error)? {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Brace(brace) => out.push(brace),
                Piece::Placeholder("category") => match example.source.category() {
                    Some(category) => out.push_str(&category.name),
                    None => {
                        return Err(error(format!("example {} has no category", example.id)));
                    }
                },
                Piece::Placeholder(name)
                    if name == "source" || name == example.source.placeholder() =>
                {
                    out.push_str(source);
                }
                Piece::Placeholder(name) => {
                    return Err(error(format!(
                        "`{{{name}}}` does not fit example {}, whose input is `{{{}}}`",
                        example.id,
                        example.source.placeholder()
                    )));
                }
            }
        }
        Ok(out)
    }
}

/// The source text, cut to `budget` tokens at a word boundary when it is longer.
fn fit_source(
    example: &Example,
    budget: Option<usize>,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Result<(String, Option<Truncation>), DataError> {
    let text = example.source.render();
    let Some(budget) = budget else {
        return Ok((text, None));
    };
    let original_tokens = count_tokens(&text);
    if original_tokens <= budget {
        return Ok((text, None));
    }
    let word_ends = word_ends(&text);
    // The largest word count whose prefix fits: prefixes only grow, so their counts do too.
    let (mut fits, mut too_many) = (0, word_ends.len());
    while too_many - fits > 1 {
        let middle = fits + (too_many - fits) / 2;
        if count_tokens(&text[..word_ends[middle - 1]]) <= budget {
            fits = middle;
        } else {
            too_many = middle;
        }
    }
    if fits == 0 {
        return Err(DataError::BudgetTooSmall {
            id: example.id.clone(),
            budget,
            first_word_tokens: word_ends
                .first()
                .map_or(0, |&end| count_tokens(&text[..end])),
        });
    }
    let kept = text[..word_ends[fits - 1]].to_owned();
    let truncation = Truncation {
        original_tokens,
        kept_tokens: count_tokens(&kept),
        original_words: word_ends.len(),
        kept_words: fits,
    };
    Ok((kept, Some(truncation)))
}

/// The byte offset just past each whitespace-separated word.
fn word_ends(text: &str) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut in_word = false;
    for (i, ch) in text.char_indices() {
        if ch.is_whitespace() {
            if in_word {
                ends.push(i);
            }
            in_word = false;
        } else {
            in_word = true;
        }
    }
    if in_word {
        ends.push(text.len());
    }
    ends
}

/// The examples k-shot prompts draw from: a dataset's dev split, or a file the user names.
/// Never the evaluated split.
#[derive(Debug, Clone)]
pub struct ShotPool {
    origin: PathBuf,
    examples: Vec<Example>,
}

impl ShotPool {
    /// The pool for evaluating `evaluated`: `shots_file` when given (any file this crate
    /// loads for the dataset), else the dataset's dev split under `data_root`.
    pub fn for_evaluation(
        evaluated: &DatasetSpec,
        data_root: &Path,
        shots: usize,
        shots_file: Option<&Path>,
    ) -> Result<ShotPool, DataError> {
        let no_pool = |why: &str| DataError::NoShotPool {
            dataset: evaluated.name.to_string(),
            shots,
            why: why.to_owned(),
        };
        let mut spec = DatasetSpec::new(evaluated.name, Split::Dev);
        match shots_file {
            Some(file) => {
                let evaluated_file = evaluated.file(data_root)?;
                if same_file(file, &evaluated_file) {
                    return Err(no_pool("the shots file is the evaluated file"));
                }
                spec.path = Some(file.to_owned());
            }
            None if evaluated.name.split_file(Split::Dev).is_none() => {
                return Err(no_pool("only a test split ships for it here"));
            }
            None if evaluated.split == Split::Dev && evaluated.path.is_none() => {
                return Err(no_pool("its dev split is the evaluated split"));
            }
            None => {}
        }
        let origin = spec.file(data_root)?;
        let examples = load(&spec, data_root)?;
        Ok(ShotPool { origin, examples })
    }

    pub fn len(&self) -> usize {
        self.examples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    /// `k` distinct examples, the same for the same seed on every platform (SplitMix64 driving
    /// a partial Fisher-Yates shuffle), in the order drawn.
    pub fn draw(&self, k: usize, seed: u64) -> Result<Vec<&Example>, DataError> {
        if k > self.examples.len() {
            return Err(DataError::TooFewShots {
                origin: self.origin.display().to_string(),
                wanted: k,
                available: self.examples.len(),
            });
        }
        let mut order: Vec<usize> = (0..self.examples.len()).collect();
        let mut rng = SplitMix64::seed_from_u64(seed);
        for i in 0..k {
            let remaining = (order.len() - i) as u64;
            let j = i + (rng.next_u64() % remaining) as usize;
            order.swap(i, j);
        }
        Ok(order[..k].iter().map(|&i| &self.examples[i]).collect())
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::example::Source;
    use crate::testing::shared_root;

    fn words(text: &str) -> usize {
        text.split_whitespace().count()
    }

    fn document(id: &str, text: &str, reference: &str) -> Example {
        Example {
            id: id.to_owned(),
            source: Source::Document {
                text: text.to_owned(),
            },
            references: vec![reference.to_owned()],
        }
    }

    #[test]
    fn every_builtin_template_parses() {
        for dataset in DatasetName::ALL {
            let template = PromptTemplate::builtin(dataset).unwrap();
            assert_eq!(template.dataset, dataset);
        }
    }

    #[test]
    fn an_unknown_placeholder_names_the_template_and_field() {
        let text = "dataset = \"xsum\"\ninstruction = \"Sum.\"\ninput = \"{concepts}\"\nanswer_prefix = \"S:\"";
        let err = PromptTemplate::from_toml(text, "mine.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("mine.toml: field `input`: unknown placeholder `{concepts}`"),
            "{err}"
        );
        let text = "dataset = \"xsum\"\ninstruction = \"Sum.\"\ninput = \"{source\"\nanswer_prefix = \"S:\"";
        assert!(PromptTemplate::from_toml(text, "mine.toml").is_err());
        let text = "dataset = \"xsum\"\ninstruction = \"Sum.\"\ninput = \"x\"\nanswer_prefix = \"S:\"\nextra = 1";
        assert!(PromptTemplate::from_toml(text, "mine.toml").is_err());
    }

    #[test]
    fn plain_k_shot_puts_shots_between_instruction_and_query() {
        let text = "dataset = \"xsum\"\ninstruction = \"Summarize.\"\ninput = \"Doc {{1}}: {document}\"\nanswer_prefix = \"Summary:\"";
        let template = PromptTemplate::from_toml(text, "t").unwrap();
        let query = document("q", "query text", "unused");
        let shot = document("s", "shot text", "shot summary");
        let prompt = template
            .render(&query, &[&shot], &RenderOptions::default(), &words)
            .unwrap();
        assert_eq!(
            prompt.body,
            PromptBody::Text(
                "Summarize.\n\nDoc {1}: shot text\nSummary: shot summary\n\nDoc {1}: query text\nSummary:"
                    .to_owned()
            )
        );
        assert_eq!(prompt.shot_ids, vec!["s"]);
    }

    #[test]
    fn chat_prompts_alternate_user_and_assistant() {
        let mut template = PromptTemplate::builtin(DatasetName::Xsum).unwrap();
        let query = document("q", "query", "unused");
        let shot = document("s", "shot", "answer");
        let options = RenderOptions {
            mode: Mode::Chat,
            max_source_tokens: None,
        };
        let PromptBody::Messages(messages) = template
            .render(&query, &[&shot], &options, &words)
            .unwrap()
            .body
        else {
            panic!("chat mode gives messages")
        };
        let roles: Vec<Role> = messages.iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            [Role::System, Role::User, Role::Assistant, Role::User]
        );
        assert_eq!(messages[3].content, "Article: query");
        template.instruction_role = InstructionRole::User;
        let PromptBody::Messages(messages) =
            template.render(&query, &[], &options, &words).unwrap().body
        else {
            panic!("chat mode gives messages")
        };
        assert_eq!(messages.len(), 1);
        assert!(messages[0].content.starts_with(&template.instruction));
    }

    #[test]
    fn long_sources_are_cut_at_the_last_word_that_fits() {
        let template = PromptTemplate::builtin(DatasetName::Xsum).unwrap();
        let example = document("q", "one two  three\nfour five six", "r");
        // Counts characters, so the cut must land exactly on a word end.
        let chars = |t: &str| t.chars().count();
        let options = RenderOptions {
            mode: Mode::Plain,
            max_source_tokens: Some(17),
        };
        let prompt = template.render(&example, &[], &options, &chars).unwrap();
        let PromptBody::Text(text) = &prompt.body else {
            panic!("plain gives text")
        };
        assert!(text.contains("Article: one two  three\n"), "{text}");
        assert!(!text.contains("four"), "{text}");
        assert_eq!(
            prompt.truncated,
            Some(Truncation {
                original_tokens: 28,
                kept_tokens: 14,
                original_words: 6,
                kept_words: 3,
            })
        );
        let options = RenderOptions {
            max_source_tokens: Some(100),
            ..options
        };
        assert_eq!(
            template
                .render(&example, &[], &options, &chars)
                .unwrap()
                .truncated,
            None
        );
        let options = RenderOptions {
            max_source_tokens: Some(2),
            ..options
        };
        assert!(matches!(
            template.render(&example, &[], &options, &chars),
            Err(DataError::BudgetTooSmall { .. })
        ));
    }

    #[test]
    fn draws_are_pinned_and_distinct() {
        let pool = ShotPool {
            origin: PathBuf::from("pool"),
            examples: (0..50)
                .map(|i| document(&i.to_string(), "t", "r"))
                .collect(),
        };
        let ids = |seed| -> Vec<String> {
            pool.draw(5, seed)
                .unwrap()
                .iter()
                .map(|e| e.id.clone())
                .collect()
        };
        // Committed sweeps hold prompts built from these exact draws: they must never change.
        assert_eq!(ids(7), ["37", "32", "20", "7", "34"]);
        assert_eq!(ids(8), ["22", "7", "3", "25", "38"]);
        assert_eq!(ids(u64::MAX), ["36", "2", "27", "41", "40"]);
        let mut distinct = ids(7);
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 5);
        assert!(matches!(
            pool.draw(51, 0),
            Err(DataError::TooFewShots { .. })
        ));
    }

    #[test]
    fn shots_never_come_from_the_evaluated_split() {
        let root = Path::new("/unused");
        let xsum = DatasetSpec::new(DatasetName::Xsum, Split::Test);
        let err = ShotPool::for_evaluation(&xsum, root, 3, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("xsum: no pool") && err.contains("only a test split"),
            "{err}"
        );
        let e2e_dev = DatasetSpec::new(DatasetName::E2e, Split::Dev);
        let err = ShotPool::for_evaluation(&e2e_dev, root, 3, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("its dev split is the evaluated split"),
            "{err}"
        );
        let Some(root) = shared_root() else { return };
        let e2e = DatasetSpec::new(DatasetName::E2e, Split::Test);
        let pool = ShotPool::for_evaluation(&e2e, &root, 3, None).unwrap();
        assert_eq!(pool.len(), 547);
        let test_file = e2e.file(&root).unwrap();
        assert!(ShotPool::for_evaluation(&e2e, &root, 3, Some(&test_file)).is_err());
    }
}
