//! The WebNLG-style benchmark XML that DART's test split and WebNLG 2017 share:
//! `<entry category eid>` holding a `<modifiedtripleset>` of `<mtriple>`s and `<lex>`s.
//! Read with quick-xml events rather than serde so every entry keeps its line number.

use std::path::Path;

use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};

use crate::error::{DataError, Location};
use crate::table::RecordAt;

pub(crate) struct XmlEntry {
    pub line: usize,
    pub eid: Option<String>,
    pub category: Option<String>,
    /// Each `<mtriple>` text with its line.
    pub triples: Vec<(String, usize)>,
    /// Each `<lex>` text with its line; an empty `<lex/>` reads as "".
    pub lexes: Vec<(String, usize)>,
}

impl XmlEntry {
    pub fn at<'p>(&self, path: &'p Path) -> RecordAt<'p> {
        RecordAt {
            path,
            location: Location::Line(self.line),
        }
    }
}

enum Collecting {
    Nothing,
    Triple,
    Lex,
}

pub(crate) fn read_entries(path: &Path) -> Result<Vec<XmlEntry>, DataError> {
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
        path: path.to_owned(),
        source,
    })?;
    let newlines: Vec<usize> = text
        .bytes()
        .enumerate()
        .filter(|(_, b)| *b == b'\n')
        .map(|(i, _)| i)
        .collect();
    let line_of = |position: u64| newlines.partition_point(|&n| (n as u64) < position) + 1;
    let xml_error = |position: u64, message: String| DataError::Xml {
        path: path.to_owned(),
        location: Location::Line(line_of(position)),
        message,
    };

    let mut reader = Reader::from_str(&text);
    let mut entries = Vec::new();
    let mut entry: Option<XmlEntry> = None;
    let mut in_modified_set = false;
    let mut collecting = Collecting::Nothing;
    let mut buffer = String::new();
    loop {
        let start = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| xml_error(reader.error_position(), e.to_string()))?;
        let line = line_of(start);
        match event {
            Event::Start(tag) => match tag.local_name().as_ref() {
                b"entry" => {
                    entry = Some(XmlEntry {
                        line,
                        eid: attribute(&tag, b"eid").map_err(|m| xml_error(start, m))?,
                        category: attribute(&tag, b"category").map_err(|m| xml_error(start, m))?,
                        triples: Vec::new(),
                        lexes: Vec::new(),
                    });
                }
                b"modifiedtripleset" => in_modified_set = true,
                b"mtriple" if in_modified_set => {
                    collecting = Collecting::Triple;
                    buffer.clear();
                }
                b"lex" => {
                    collecting = Collecting::Lex;
                    buffer.clear();
                }
                _ => {}
            },
            Event::Empty(tag) => {
                if let (b"lex", Some(entry)) = (tag.local_name().as_ref(), entry.as_mut()) {
                    entry.lexes.push((String::new(), line));
                }
            }
            Event::Text(content) if !matches!(collecting, Collecting::Nothing) => {
                let decoded = content
                    .xml10_content()
                    .map_err(|e| xml_error(start, e.to_string()))?;
                buffer.push_str(&decoded);
            }
            Event::CData(content) if !matches!(collecting, Collecting::Nothing) => {
                let decoded = content
                    .xml10_content()
                    .map_err(|e| xml_error(start, e.to_string()))?;
                buffer.push_str(&decoded);
            }
            Event::GeneralRef(reference) if !matches!(collecting, Collecting::Nothing) => {
                if let Some(ch) = reference
                    .resolve_char_ref()
                    .map_err(|e| xml_error(start, e.to_string()))?
                {
                    buffer.push(ch);
                } else {
                    let name = reference
                        .decode()
                        .map_err(|e| xml_error(start, e.to_string()))?;
                    let resolved = resolve_predefined_entity(&name)
                        .ok_or_else(|| xml_error(start, format!("unknown entity &{name};")))?;
                    buffer.push_str(resolved);
                }
            }
            Event::End(tag) => match tag.local_name().as_ref() {
                b"entry" => entries.extend(entry.take()),
                b"modifiedtripleset" => in_modified_set = false,
                b"mtriple" if matches!(collecting, Collecting::Triple) => {
                    if let Some(entry) = entry.as_mut() {
                        entry.triples.push((buffer.trim().to_owned(), line));
                    }
                    collecting = Collecting::Nothing;
                }
                b"lex" if matches!(collecting, Collecting::Lex) => {
                    if let Some(entry) = entry.as_mut() {
                        entry.lexes.push((buffer.trim().to_owned(), line));
                    }
                    collecting = Collecting::Nothing;
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(entries)
}

fn attribute(tag: &BytesStart<'_>, name: &[u8]) -> Result<Option<String>, String> {
    match tag.try_get_attribute(name).map_err(|e| e.to_string())? {
        Some(value) => Ok(Some(
            value
                .unescape_value()
                .map_err(|e| e.to_string())?
                .into_owned(),
        )),
        None => Ok(None),
    }
}
