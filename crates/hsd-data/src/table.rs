//! Tables (JSON Lines, JSON arrays, CSV, parquet) read with polars, and a checked view of one
//! cell at a time whose every error says which file, record and field it is about.

use std::fs;
use std::path::{Path, PathBuf};

use polars::prelude::{
    AnyValue, CsvReadOptions, DataFrame, JsonFormat, JsonReader, ParquetReader, SerReader,
};

use crate::error::{DataError, Location};

/// One record's place in its file: every error about a field of it is built here.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordAt<'p> {
    pub path: &'p Path,
    pub location: Location,
}

impl RecordAt<'_> {
    pub fn missing(&self, field: &str) -> DataError {
        DataError::MissingField {
            path: self.path.to_owned(),
            location: self.location,
            field: field.to_owned(),
        }
    }

    pub fn empty_reference(&self, field: &str) -> DataError {
        DataError::EmptyReference {
            path: self.path.to_owned(),
            location: self.location,
            field: field.to_owned(),
        }
    }

    pub fn empty(&self, field: &str) -> DataError {
        DataError::EmptyField {
            path: self.path.to_owned(),
            location: self.location,
            field: field.to_owned(),
        }
    }

    pub fn malformed(&self, field: &str, reason: impl Into<String>) -> DataError {
        DataError::Malformed {
            path: self.path.to_owned(),
            location: self.location,
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    fn wrong_type(&self, field: &str, expected: &'static str, found: &Cell) -> DataError {
        DataError::WrongType {
            path: self.path.to_owned(),
            location: self.location,
            field: field.to_owned(),
            expected,
            found: found.kind(),
        }
    }

    /// A reference must carry text: a blank one would silently score as a miss.
    pub fn reference(&self, field: &str, text: String) -> Result<String, DataError> {
        if text.trim().is_empty() {
            Err(self.empty_reference(field))
        } else {
            Ok(text)
        }
    }

    /// An input field must carry text too.
    pub fn non_empty(&self, field: &str, text: String) -> Result<String, DataError> {
        if text.trim().is_empty() {
            Err(self.empty(field))
        } else {
            Ok(text)
        }
    }
}

/// A cell copied out of polars into plain Rust values, so nested HF columns (lists, structs,
/// lists of structs) can be walked without caring how polars laid them out.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Text(String),
    Integer(i128),
    Float(f64),
    Bool(bool),
    List(Vec<Cell>),
    Struct(Vec<(String, Cell)>),
    Other(String),
}

impl Cell {
    fn from_polars(value: AnyValue<'_>) -> Cell {
        match value {
            AnyValue::Null => Cell::Null,
            AnyValue::String(text) => Cell::Text(text.to_owned()),
            AnyValue::StringOwned(text) => Cell::Text(text.to_string()),
            AnyValue::Boolean(b) => Cell::Bool(b),
            AnyValue::Int8(v) => Cell::Integer(v.into()),
            AnyValue::Int16(v) => Cell::Integer(v.into()),
            AnyValue::Int32(v) => Cell::Integer(v.into()),
            AnyValue::Int64(v) => Cell::Integer(v.into()),
            AnyValue::Int128(v) => Cell::Integer(v),
            AnyValue::UInt8(v) => Cell::Integer(v.into()),
            AnyValue::UInt16(v) => Cell::Integer(v.into()),
            AnyValue::UInt32(v) => Cell::Integer(v.into()),
            AnyValue::UInt64(v) => Cell::Integer(v.into()),
            AnyValue::Float32(v) => Cell::Float(v.into()),
            AnyValue::Float64(v) => Cell::Float(v),
            AnyValue::List(series) => {
                if series.is_empty() {
                    return Cell::List(Vec::new());
                }
                let series = series.rechunk();
                Cell::List(series.iter().map(Cell::from_polars).collect())
            }
            AnyValue::Struct(_, _, fields) => Cell::Struct(
                fields
                    .iter()
                    .map(|f| f.name().to_string())
                    .zip(value._iter_struct_av().map(Cell::from_polars))
                    .collect(),
            ),
            AnyValue::StructOwned(payload) => {
                let (values, fields) = *payload;
                Cell::Struct(
                    fields
                        .iter()
                        .map(|f| f.name().to_string())
                        .zip(values.into_iter().map(Cell::from_polars))
                        .collect(),
                )
            }
            other => Cell::Other(other.dtype().to_string()),
        }
    }

    fn kind(&self) -> String {
        match self {
            Cell::Null => "null".into(),
            Cell::Text(_) => "a string".into(),
            Cell::Integer(_) => "an integer".into(),
            Cell::Float(_) => "a float".into(),
            Cell::Bool(_) => "a boolean".into(),
            Cell::List(_) => "a list".into(),
            Cell::Struct(_) => "an object".into(),
            Cell::Other(dtype) => format!("a {dtype} value"),
        }
    }
}

/// A checked view of one cell (or of something nested in it), with the dotted path of the
/// field it came from, e.g. `annotations[2].text`.
pub(crate) struct Value<'p> {
    at: RecordAt<'p>,
    field: String,
    cell: Cell,
}

impl<'p> Value<'p> {
    pub fn field(&self) -> &str {
        &self.field
    }

    pub fn at(&self) -> RecordAt<'p> {
        self.at
    }

    pub fn is_list(&self) -> bool {
        matches!(self.cell, Cell::List(_))
    }

    pub fn text(self) -> Result<String, DataError> {
        match self.cell {
            Cell::Text(text) => Ok(text),
            Cell::Null => Err(self.at.missing(&self.field)),
            other => Err(self.at.wrong_type(&self.field, "a string", &other)),
        }
    }

    /// Ids come as strings in some exports and as integers in others.
    pub fn id(self) -> Result<String, DataError> {
        match self.cell {
            Cell::Text(text) => self.at.non_empty(&self.field, text),
            Cell::Integer(n) => Ok(n.to_string()),
            Cell::Null => Err(self.at.missing(&self.field)),
            other => Err(self
                .at
                .wrong_type(&self.field, "a string or an integer", &other)),
        }
    }

    pub fn items(self) -> Result<Vec<Value<'p>>, DataError> {
        match self.cell {
            Cell::List(items) => Ok(items
                .into_iter()
                .enumerate()
                .map(|(i, cell)| Value {
                    at: self.at,
                    field: format!("{}[{i}]", self.field),
                    cell,
                })
                .collect()),
            Cell::Null => Err(self.at.missing(&self.field)),
            other => Err(self.at.wrong_type(&self.field, "a list", &other)),
        }
    }

    pub fn texts(self) -> Result<Vec<String>, DataError> {
        self.items()?.into_iter().map(Value::text).collect()
    }

    pub fn member(self, name: &str) -> Result<Value<'p>, DataError> {
        let field = format!("{}.{name}", self.field);
        match self.cell {
            Cell::Struct(members) => {
                let cell = members
                    .into_iter()
                    .find(|(member, _)| member == name)
                    .map_or(Cell::Null, |(_, cell)| cell);
                Ok(Value {
                    at: self.at,
                    field,
                    cell,
                })
            }
            Cell::Null => Err(self.at.missing(&field)),
            other => Err(self.at.wrong_type(&self.field, "an object", &other)),
        }
    }
}

enum Locations {
    Lines(Vec<usize>),
    Rows,
    Records,
}

/// A whole file as a polars frame, plus how to name each of its records in an error.
pub(crate) struct Table {
    path: PathBuf,
    frame: DataFrame,
    locations: Locations,
}

impl Table {
    pub fn read(path: &Path) -> Result<Table, DataError> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let table_error = |source| DataError::Table {
            path: path.to_owned(),
            source,
        };
        let bytes = || {
            fs::read(path).map_err(|source| DataError::Io {
                path: path.to_owned(),
                source,
            })
        };
        let (frame, locations) = match extension.as_deref() {
            Some("jsonl" | "ndjson") => read_json_lines(path, bytes()?)?,
            Some("json") => {
                let bytes = bytes()?;
                // `datasets.Dataset.to_json` writes JSON Lines under a `.json` name.
                if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
                    read_json_array(path, bytes)?
                } else {
                    read_json_lines(path, bytes)?
                }
            }
            Some("csv") => {
                let lines = csv_record_lines(&bytes()?);
                let frame = CsvReadOptions::default()
                    .with_has_header(true)
                    .with_infer_schema_length(Some(0))
                    .try_into_reader_with_file_path(Some(path.to_owned()))
                    .and_then(|reader| reader.finish())
                    .map_err(table_error)?;
                let locations = if lines.len() == frame.height() {
                    Locations::Lines(lines)
                } else {
                    Locations::Rows
                };
                (frame, locations)
            }
            Some("parquet") => {
                let file = fs::File::open(path).map_err(|source| DataError::Io {
                    path: path.to_owned(),
                    source,
                })?;
                let frame = ParquetReader::new(file).finish().map_err(table_error)?;
                (frame, Locations::Rows)
            }
            _ => {
                return Err(DataError::UnsupportedFormat {
                    path: path.to_owned(),
                });
            }
        };
        Ok(Table {
            path: path.to_owned(),
            frame,
            locations,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> usize {
        self.frame.height()
    }

    pub fn has(&self, field: &str) -> bool {
        self.frame.column(field).is_ok()
    }

    pub fn columns(&self) -> Vec<String> {
        self.frame
            .get_column_names()
            .into_iter()
            .map(|name| name.to_string())
            .collect()
    }

    pub fn at(&self, row: usize) -> RecordAt<'_> {
        let location = match &self.locations {
            Locations::Lines(lines) => Location::Line(lines[row]),
            Locations::Rows => Location::Row(row + 1),
            Locations::Records => Location::Record(row + 1),
        };
        RecordAt {
            path: &self.path,
            location,
        }
    }

    /// The cell in `field` of data row `row` (0-based); a column the file lacks reads as null,
    /// so the error names the first record that needed it.
    pub fn get(&self, row: usize, field: &str) -> Value<'_> {
        let cell = self
            .frame
            .column(field)
            .ok()
            .and_then(|column| column.get(row).ok())
            .map_or(Cell::Null, Cell::from_polars);
        Value {
            at: self.at(row),
            field: field.to_owned(),
            cell,
        }
    }
}

fn read_json_lines(path: &Path, bytes: Vec<u8>) -> Result<(DataFrame, Locations), DataError> {
    let lines: Vec<usize> = bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, line)| line.iter().any(|b| !matches!(b, b' ' | b'\t' | b'\r')))
        .map(|(i, _)| i + 1)
        .collect();
    let frame = JsonReader::new(std::io::Cursor::new(&bytes))
        .with_json_format(JsonFormat::JsonLines)
        .infer_schema_len(None)
        .finish()
        .map_err(|source| first_bad_json_line(path, &bytes, source))?;
    let locations = if lines.len() == frame.height() {
        Locations::Lines(lines)
    } else {
        Locations::Rows
    };
    Ok((frame, locations))
}

fn read_json_array(path: &Path, bytes: Vec<u8>) -> Result<(DataFrame, Locations), DataError> {
    if let Err(source) = serde_json::from_slice::<serde_json::Value>(&bytes) {
        return Err(DataError::Json {
            path: path.to_owned(),
            location: Location::Line(source.line()),
            source,
        });
    }
    let frame = JsonReader::new(std::io::Cursor::new(&bytes))
        .with_json_format(JsonFormat::Json)
        .infer_schema_len(None)
        .finish()
        .map_err(|source| DataError::Table {
            path: path.to_owned(),
            source,
        })?;
    Ok((frame, Locations::Records))
}

/// polars reports a malformed JSON line without its number; find it with serde_json.
fn first_bad_json_line(path: &Path, bytes: &[u8], source: polars::error::PolarsError) -> DataError {
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        if let Err(json) = serde_json::from_slice::<serde_json::Value>(line) {
            return DataError::Json {
                path: path.to_owned(),
                location: Location::Line(i + 1),
                source: json,
            };
        }
    }
    DataError::Table {
        path: path.to_owned(),
        source,
    }
}

/// The 1-based line on which each CSV data record starts (quoted fields may span lines),
/// skipping the header and blank lines as polars does.
fn csv_record_lines(bytes: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut line = 1;
    let mut in_quotes = false;
    let mut at_record_start = true;
    for &byte in bytes {
        if at_record_start && !matches!(byte, b'\n' | b'\r') {
            starts.push(line);
            at_record_start = false;
        }
        match byte {
            b'"' => in_quotes = !in_quotes,
            b'\n' => {
                line += 1;
                if !in_quotes {
                    at_record_start = true;
                }
            }
            _ => {}
        }
    }
    starts.into_iter().skip(1).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_records_start_on_their_own_line_even_when_a_field_spans_lines() {
        let csv = b"id,text\n1,\"one\nline two\"\n\n2,plain\r\n3,\"a \"\"quoted\"\" word\"\n";
        assert_eq!(csv_record_lines(csv), vec![2, 5, 6]);
    }

    #[test]
    fn a_malformed_json_line_is_reported_by_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.jsonl");
        fs::write(&path, "{\"a\": \"x\"}\n\n{\"a\": \"y\"\n").unwrap();
        let err = Table::read(&path).err().unwrap();
        let message = err.to_string();
        assert!(matches!(err, DataError::Json { .. }), "{message}");
        assert!(message.contains("bad.jsonl: line 3"), "{message}");
    }

    /// polars types a JSON integer past `i64` as `Int128`, which it cannot hold without the
    /// `dtype-i128` feature: it panicked here (found by the `dataset` fuzz target).
    #[test]
    fn integers_past_i64_read_as_integers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wide.jsonl");
        fs::write(
            &path,
            "{\"id\": 88888888888888888888888888, \"text\": \"a\"}\n{\"id\": 7, \"text\": \"b\"}\n",
        )
        .unwrap();
        let table = Table::read(&path).unwrap();
        assert_eq!(
            table.get(0, "id").id().unwrap(),
            "88888888888888888888888888"
        );
        assert_eq!(table.get(1, "id").id().unwrap(), "7");
    }

    #[test]
    fn nested_values_name_their_path_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested.jsonl");
        fs::write(
            &path,
            "{\"ann\": {\"text\": [\"a\", \"b\"]}}\n{\"ann\": {\"text\": [\"c\"]}}\n",
        )
        .unwrap();
        let table = Table::read(&path).unwrap();
        let first = table.get(0, "ann").member("text").unwrap().texts().unwrap();
        assert_eq!(first, vec!["a", "b"]);
        let missing = table.get(1, "nope").text().unwrap_err().to_string();
        assert!(missing.contains("line 2: field `nope`"), "{missing}");
    }
}
