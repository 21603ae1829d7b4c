//! CSV text (or tab- or semicolon-separated): one sample per line, an optional header
//! row, the label in one column. The `csv` crate splits records into cells; this module
//! decides what the cells mean (header, pandas index column, label, decimal commas) and
//! says where a cell is wrong.

use std::borrow::Cow;
use std::path::Path;

use ndarray::Array2;

use super::labels::infer_labels;
use super::{
    FormatError, Header, LabelColumn, LoadOptions, RawLabels, as_text, beyond_float32,
    check_not_empty, fail, to_array,
};

pub(super) fn load_csv(
    path: &Path,
    bytes: &[u8],
    options: &LoadOptions,
    notes: &mut Vec<String>,
) -> Result<(Array2<f32>, Option<RawLabels>), FormatError> {
    let text = as_text(path, bytes)?;
    let delimiter = options.delimiter.unwrap_or_else(|| detect_delimiter(text));
    if options.delimiter.is_none() && delimiter != ',' {
        notes.push(format!("cells separated by {}", delimiter_name(delimiter)));
    }
    let mut records = Records::new(path, text, delimiter)?;
    let mut layout: Option<Layout> = None;
    // The first row was read as data, but a word above numeric labels makes it a header;
    // only the rows below can say, so it is decided at the end.
    let mut header_by_label = false;
    let mut rows = Rows::default();
    while let Some(line_no) = records.next(path)? {
        let record = &records.record;
        let Layout {
            first_line,
            width,
            label_col,
            skip,
            ..
        } = match layout {
            Some(layout) => layout,
            None => {
                let (first, header) = first_row(path, &records, line_no, delimiter, options)?;
                layout = Some(first);
                notes.extend(first.notes(line_no, header));
                match header {
                    FirstRow::Header(_) => continue,
                    FirstRow::Data { header_by_label: h } => header_by_label = h,
                }
                first
            }
        };
        let cells = record.len().saturating_sub(skip);
        if cells != width {
            return Err(fail(
                path,
                format_args!(
                    "row {line_no} has {} columns, expected {} (as in row {first_line}){}",
                    cells + skip,
                    width + skip,
                    delimiter_hint(records.line_text(), delimiter)
                ),
            ));
        }
        let row = Row {
            line_no,
            label_col,
            skip,
        };
        rows.push(path, row, record, delimiter, options)?;
    }
    finish(path, rows, layout, header_by_label, options, notes)
}

/// The matrix and labels of the rows read, once every row has been seen: the first row
/// dropped if its label turned out to be a header, the labels' kind decided.
fn finish(
    path: &Path,
    rows: Rows,
    layout: Option<Layout>,
    header_by_label: bool,
    options: &LoadOptions,
    notes: &mut Vec<String>,
) -> Result<(Array2<f32>, Option<RawLabels>), FormatError> {
    let n = layout.map_or(0, |layout| layout.n);
    let Rows {
        mut values,
        mut labels,
        mut label_rows,
        mut m,
        decimal_commas_seen,
    } = rows;
    if header_by_label && is_header_by_label(&labels) {
        values.drain(..n.min(values.len()));
        labels.remove(0);
        label_rows.remove(0);
        m -= 1;
        notes.push("row 1 read as a header (its label is a word above numbers)".into());
    }
    if decimal_commas_seen {
        notes.push("decimal commas read as decimal points".into());
    }
    check_not_empty(path, m, n)?;
    let x = to_array(path, m, n, values)?;
    // A labels file replaces the column's labels, so they are neither read nor judged.
    let labels = match layout {
        Some(Layout {
            label_col: Some(_), ..
        }) if options.labels.is_none() => {
            let hint = (options.header == Header::No)
                .then_some("; --header no reads the first row as data");
            Some(infer_labels(path, labels, &label_rows, "row", hint)?)
        }
        _ => None,
    };
    Ok((x, labels))
}

/// The CSV records of a text, split into cells by the `csv` crate, blank lines left out.
///
/// The crate follows RFC 4180: a cell in double quotes may hold the delimiter and `""`
/// for a quote, and a quote opens a cell only as its first character (as in Python's csv
/// module and pandas). A quoted line end is refused, as every sample is one line. Cells
/// are trimmed here, so spaces around a delimiter and the `\r` of a Windows line end are
/// not part of any cell.
struct Records<'a> {
    text: &'a str,
    reader: ::csv::Reader<&'a [u8]>,
    /// The record last read.
    record: ::csv::StringRecord,
    /// Where the record last read starts in `text`.
    start: usize,
}

impl<'a> Records<'a> {
    fn new(path: &Path, text: &'a str, delimiter: char) -> Result<Self, FormatError> {
        let Some(byte) = delimiter.is_ascii().then_some(delimiter as u8) else {
            return Err(fail(
                path,
                format_args!("the delimiter {delimiter:?} is not one ASCII character"),
            ));
        };
        let reader = ::csv::ReaderBuilder::new()
            .has_headers(false)
            // Rows of another width are refused by load_csv, in its own words.
            .flexible(true)
            .delimiter(byte)
            // Records end at `\n` alone, so the crate counts lines as an editor does;
            // the `\r` before it is trimmed off the last cell.
            .terminator(::csv::Terminator::Any(b'\n'))
            .buffer_capacity(1 << 16)
            .from_reader(text.as_bytes());
        Ok(Records {
            text,
            reader,
            record: ::csv::StringRecord::new(),
            start: 0,
        })
    }

    /// Reads the next record that is not blank; returns the 1-based line it starts on.
    fn next(&mut self, path: &Path) -> Result<Option<usize>, FormatError> {
        loop {
            match self.reader.read_record(&mut self.record) {
                Ok(true) => {}
                Ok(false) => return Ok(None),
                // The text is UTF-8 and in memory, so neither invalid text nor a read
                // error can come from the crate; a message still beats a panic.
                Err(e) => return Err(fail(path, format_args!("cannot be read as CSV: {e}"))),
            }
            let (byte, line) = self
                .record
                .position()
                .map_or((0, 1), |p| (p.byte(), p.line()));
            let byte = usize::try_from(byte).unwrap_or(usize::MAX);
            let line = usize::try_from(line).unwrap_or(usize::MAX);
            // The crate places a record where the empty lines it skipped before it begin.
            let rest = self.text.as_bytes().get(byte..).unwrap_or_default();
            let empty = rest.iter().take_while(|&&b| b == b'\n').count();
            self.start = byte + empty;
            let line = line.saturating_add(empty);
            // A line of blanks is one blank cell; `""` is one empty cell, and not blank.
            if self.record.len() == 1
                && self.record[0].trim().is_empty()
                && self.line_text().trim().is_empty()
            {
                continue;
            }
            // A sample is one line, so a cell over two lines is a quote left open, which
            // would otherwise swallow the rows below it. One left open on the last line
            // ends with the file, its line end trimmed off.
            if self.record.as_slice().contains('\n')
                && let Some(j) = self.record.iter().position(|c| c.trim().contains('\n'))
            {
                return Err(fail(
                    path,
                    format_args!(
                        "row {line}, column {}: a quoted cell runs past the end of its line; close its quote",
                        j + 1
                    ),
                ));
            }
            return Ok(Some(line));
        }
    }

    /// The first line of the record last read, as the file has it, for hints.
    fn line_text(&self) -> &'a str {
        let rest = self.text.get(self.start..).unwrap_or_default();
        let line = rest.split('\n').next().unwrap_or_default();
        line.strip_suffix('\r').unwrap_or(line)
    }

    /// The cells of the record last read, as [`cell_text`] reads them.
    fn cells(&self) -> impl Iterator<Item = Cow<'_, str>> {
        self.record.iter().map(cell_text)
    }
}

/// A cell as its writer meant it: trimmed, and unquoted when blanks before its opening
/// quote kept the crate from reading it as quoted, as in `1, "cat"` written by hand (a
/// delimiter inside such a cell still splits it).
fn cell_text(field: &str) -> Cow<'_, str> {
    let cell = field.trim();
    let padded_quote = cell.len() >= 2
        && cell.starts_with('"')
        && cell.ends_with('"')
        && field.starts_with(char::is_whitespace);
    if !padded_quote {
        return Cow::Borrowed(cell);
    }
    let inner = &cell[1..cell.len() - 1];
    if inner.contains('"') {
        Cow::Owned(inner.replace("\"\"", "\""))
    } else {
        Cow::Borrowed(inner)
    }
}

/// What the first non-blank row sets for every row below it.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// The line it is on.
    first_line: usize,
    /// Its cells, the pandas index column left out.
    width: usize,
    label_col: Option<usize>,
    /// 1 when column 1 is a pandas row index, left out of every row.
    skip: usize,
    /// The number of features.
    n: usize,
}

/// What the first non-blank row is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum FirstRow {
    /// A header: given (`false`) or told by its cells (`true`).
    Header(bool),
    /// Data, unless its label turns out to be a word above numeric labels.
    Data { header_by_label: bool },
}

impl Layout {
    /// The notes the first row gives rise to.
    fn notes(&self, line_no: usize, header: FirstRow) -> Vec<String> {
        let mut notes = Vec::new();
        if self.skip > 0 {
            notes.push(
                "column 1 (unnamed in the header) is a pandas row index, not a feature".into(),
            );
        }
        if header == FirstRow::Header(true) {
            notes.push(format!("row {line_no} read as a header"));
        }
        notes
    }
}

/// Reads the first non-blank row, the record last read: its width, label column and the
/// features it sets, whether a pandas index column leads, and whether it is a header.
fn first_row(
    path: &Path,
    records: &Records<'_>,
    line_no: usize,
    delimiter: char,
    options: &LoadOptions,
) -> Result<(Layout, FirstRow), FormatError> {
    let mut cells: Vec<Cow<'_, str>> = records.cells().collect();
    // pandas' to_csv() writes its row index first, under an empty name: not a feature.
    let skip = usize::from(
        options.header != Header::No
            && cells.len() > 1
            && cells
                .first()
                .is_some_and(|c| c.is_empty() || c == "Unnamed: 0"),
    );
    cells.drain(..skip);
    let width = cells.len();
    let (label_col, n) = columns(path, records.line_text(), width, delimiter, options)?;
    let layout = Layout {
        first_line: line_no,
        width,
        label_col,
        skip,
        n,
    };
    let header = match options.header {
        Header::Yes => FirstRow::Header(false),
        Header::No => FirstRow::Data {
            header_by_label: false,
        },
        Header::Auto if skip > 0 || is_header_by_cells(&cells, label_col) => FirstRow::Header(true),
        Header::Auto => FirstRow::Data {
            header_by_label: label_col.is_some(),
        },
    };
    Ok((layout, header))
}

/// The label column and the number of features that the first row, `width` cells wide,
/// sets for every row; a row without features, or without the features expected, is an
/// error.
fn columns(
    path: &Path,
    line: &str,
    width: usize,
    delimiter: char,
    options: &LoadOptions,
) -> Result<(Option<usize>, usize), FormatError> {
    // Rows exactly as wide as the features expected have no label column.
    let label_col = if options.csv_has_labels && options.n_features != Some(width) {
        Some(resolve_label_column(path, options.label_column, width)?)
    } else {
        None
    };
    let n = width.saturating_sub(usize::from(label_col.is_some()));
    if n == 0 {
        return Err(fail(
            path,
            format_args!("no feature columns{}", delimiter_hint(line, delimiter)),
        ));
    }
    if let Some(want) = options.n_features
        && n != want
    {
        return Err(fail(
            path,
            format_args!(
                "rows have {width} columns but the model has {want} features: expected {want} columns, or {} with the label column",
                want + 1
            ),
        ));
    }
    Ok((label_col, n))
}

/// Where one data row stands: its line, its label column, and the leading columns left
/// out of its cells (so that messages number columns as the file does).
#[derive(Debug, Clone, Copy)]
struct Row {
    line_no: usize,
    label_col: Option<usize>,
    skip: usize,
}

/// The data rows read so far.
#[derive(Debug, Default)]
struct Rows {
    values: Vec<f32>,
    labels: Vec<String>,
    label_rows: Vec<usize>,
    m: usize,
    decimal_commas_seen: bool,
}

impl Rows {
    /// Reads one data row's cells: the label from its label column, every other cell a
    /// feature.
    fn push(
        &mut self,
        path: &Path,
        row: Row,
        record: &::csv::StringRecord,
        delimiter: char,
        options: &LoadOptions,
    ) -> Result<(), FormatError> {
        let Row {
            line_no,
            label_col,
            skip,
        } = row;
        // Spreadsheets that separate cells with semicolons write decimal commas (5,1).
        let decimal_comma = delimiter == ';';
        for (j, cell) in record.iter().skip(skip).map(cell_text).enumerate() {
            let column = j + 1 + skip;
            if Some(j) == label_col {
                if cell.is_empty() {
                    return Err(fail(
                        path,
                        format_args!("row {line_no}, column {column}: the label is empty"),
                    ));
                }
                self.labels.push(cell.into_owned());
                self.label_rows.push(line_no);
            } else {
                let decimal = if decimal_comma && is_decimal_comma(&cell) {
                    self.decimal_commas_seen = true;
                    Cow::Owned(cell.replacen(',', ".", 1))
                } else {
                    Cow::Borrowed(cell.as_ref())
                };
                let value = parse_feature(path, &decimal, line_no, column).map_err(|mut e| {
                    if options.header == Header::No && self.m == 0 {
                        e.message
                            .push_str("; --header no reads the first row as data");
                    } else {
                        e.message.push_str(&delimiter_hint(&cell, delimiter));
                    }
                    e
                })?;
                self.values.push(value);
            }
        }
        self.m += 1;
        Ok(())
    }
}

/// The delimiter of a CSV whose delimiter was not given: a comma, unless the first
/// non-blank line has no comma outside quotes but has tabs or semicolons there (then the
/// more frequent of the two).
fn detect_delimiter(text: &str) -> char {
    let line = text
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or_default();
    let (mut commas, mut tabs, mut semicolons) = (0usize, 0usize, 0usize);
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => commas += 1,
            '\t' if !quoted => tabs += 1,
            ';' if !quoted => semicolons += 1,
            _ => {}
        }
    }
    if commas > 0 || tabs + semicolons == 0 {
        ','
    } else if tabs >= semicolons {
        '\t'
    } else {
        ';'
    }
}

/// Whether `cell` is a number written with a decimal comma: digits, one comma, digits
/// (with an optional sign and exponent), as spreadsheets in many locales write them.
fn is_decimal_comma(cell: &str) -> bool {
    let Some((whole, fraction)) = cell.split_once(',') else {
        return false;
    };
    let whole = whole.strip_prefix(['-', '+']).unwrap_or(whole);
    let fraction = fraction
        .split_once(['e', 'E'])
        .map_or(fraction, |(digits, exponent)| {
            let exponent = exponent.strip_prefix(['-', '+']).unwrap_or(exponent);
            if !exponent.is_empty() && exponent.bytes().all(|b| b.is_ascii_digit()) {
                digits
            } else {
                "x"
            }
        });
    !whole.is_empty()
        && !fraction.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

/// A delimiter as a user names it.
fn delimiter_name(delimiter: char) -> &'static str {
    match delimiter {
        ';' => "semicolons",
        '\t' => "tabs",
        '|' => "vertical bars",
        _ => "commas",
    }
}

/// A hint for a row or cell read with `delimiter` that holds another delimiter, which
/// may be the file's.
fn delimiter_hint(text: &str, delimiter: char) -> String {
    let other = [
        (';', "semicolons", "';'"),
        ('\t', "tabs", "tab"),
        (',', "commas", "','"),
    ]
    .into_iter()
    .find(|&(c, _, _)| c != delimiter && text.contains(c));
    match other {
        Some((_, what, flag)) => {
            format!("; if {what} separate the cells, pass --delimiter {flag}")
        }
        None => String::new(),
    }
}

/// The first row is a header by its cells alone (see [`Header::Auto`]): a feature cell
/// that is text, or feature cells that read 0, 1, 2, … (at least two of them), counted
/// among the features or among all the columns.
fn is_header_by_cells(cells: &[Cow<'_, str>], label_col: Option<usize>) -> bool {
    let features = || {
        cells
            .iter()
            .enumerate()
            .filter(move |&(j, _)| Some(j) != label_col)
    };
    // An empty cell is not text: a first data row may miss a value.
    let text = features().any(|(_, c)| !c.is_empty() && c.parse::<f32>().is_err());
    let among_features = features()
        .enumerate()
        .all(|(i, (_, c))| *c == i.to_string());
    let among_columns = features().all(|(j, c)| *c == j.to_string());
    text || (features().count() >= 2 && (among_features || among_columns))
}

/// The first row (labels[0]) is a header by its label (see [`Header::Auto`]): it is not
/// a number while every label below it is.
fn is_header_by_label(labels: &[String]) -> bool {
    let number = |s: &String| s.parse::<f64>().is_ok();
    match labels.split_first() {
        Some((first, rest)) => !rest.is_empty() && !number(first) && rest.iter().all(number),
        None => false,
    }
}

fn resolve_label_column(
    path: &Path,
    column: LabelColumn,
    width: usize,
) -> Result<usize, FormatError> {
    match column {
        LabelColumn::Last => Ok(width.saturating_sub(1)),
        LabelColumn::First => Ok(0),
        LabelColumn::Index(i) if i < width => Ok(i),
        LabelColumn::Index(i) => Err(fail(
            path,
            format_args!(
                "label column {i} does not exist (rows have {width} columns, numbered from 0 to {})",
                width.saturating_sub(1)
            ),
        )),
    }
}

pub(super) fn parse_feature(
    path: &Path,
    cell: &str,
    row: usize,
    column: usize,
) -> Result<f32, FormatError> {
    // fast-float2 reads the decimal syntax that std reads, to the same bits (a property
    // test below holds it to that), in less time on long files. Whatever it refuses or
    // reads as not finite goes to std, whose verdict and message stand.
    if let Ok(v) = fast_float2::parse::<f32, _>(cell)
        && v.is_finite()
    {
        return Ok(v);
    }
    match cell.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(v) => {
            let detail = if cell.parse::<f64>().is_ok_and(f64::is_finite) {
                beyond_float32(cell)
            } else {
                format!("value {v} is not finite")
            };
            Err(fail(
                path,
                format_args!("row {row}, column {column}: {detail}"),
            ))
        }
        Err(_) if cell.is_empty() => Err(fail(
            path,
            format_args!(
                "row {row}, column {column}: the cell is empty; every feature needs a number"
            ),
        )),
        Err(_) => Err(fail(
            path,
            format_args!("row {row}, column {column}: {cell:?} is not a number"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::test_files::*;
    use crate::formats::*;
    use proptest::prelude::*;

    /// A finite value from the fast parser is the value std reads from the same cell, so
    /// the fast path accepts nothing that std refuses.
    fn fast_agrees_with_std(cell: &str) -> Result<(), TestCaseError> {
        if let Ok(v) = fast_float2::parse::<f32, _>(cell)
            && v.is_finite()
        {
            let std = cell.parse::<f32>().map(f32::to_bits);
            prop_assert_eq!(std, Ok(v.to_bits()), "{:?}", cell);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn fast_float_parser_accepts_only_what_std_accepts(
            cell in "[0-9.eE+\\-naifNIFtyx_ ,]{0,12}",
        ) {
            fast_agrees_with_std(&cell)?;
        }

        #[test]
        fn fast_float_parser_rounds_long_numbers_as_std_does(
            cell in "[+-]?[0-9]{0,24}(\\.[0-9]{0,24})?([eE][+-]?[0-9]{0,3})?",
        ) {
            fast_agrees_with_std(&cell)?;
        }
    }

    #[test]
    fn fast_float_parser_edge_cells() {
        for cell in [
            "",
            ".",
            "+",
            "-",
            "1.",
            ".5",
            "+.5",
            "-.e1",
            "1e",
            "1e+",
            "e5",
            "1_0",
            "0x10",
            " 1",
            "1 ",
            "nan",
            "-NaN",
            "inf",
            "+Infinity",
            "infinit",
            "1e-50",
            "1e39",
            "3.4028236e38",
            "00012",
            "1,5",
            "1.5.2",
            "١",
        ] {
            fast_agrees_with_std(cell).unwrap();
        }
        let path = Path::new("w.csv");
        assert_eq!(parse_feature(path, "1.", 1, 1), Ok(1.0));
        assert_eq!(parse_feature(path, "-.5", 1, 1), Ok(-0.5));
        for (cell, message) in [
            ("0x10", "\"0x10\" is not a number"),
            (" 1", "\" 1\" is not a number"),
            ("1e", "\"1e\" is not a number"),
            ("-NaN", "value NaN is not finite"),
            ("+Infinity", "value inf is not finite"),
            ("1e39", "value 1e39 exceeds the float32 range"),
        ] {
            let err = parse_feature(path, cell, 3, 2).unwrap_err().message;
            assert!(
                err.contains(&format!("row 3, column 2: {message}")),
                "{err}"
            );
        }
    }

    #[test]
    fn csv_lines_after_blank_lines_and_a_quoted_line_end() {
        let dir = TempDir::new("csv-lines");
        let text = "\n\na,b,y\n\n1,2,\"one\"\n\n\n3,4,x\n5,6\n";
        let err = csv(&dir, text, &labelled()).unwrap_err();
        assert!(
            err.contains("row 9 has 2 columns, expected 3 (as in row 3)"),
            "{err}"
        );
        // A quote left open would take the rows below into its cell.
        let err = csv(&dir, "a,b,y\n\n1,\"2,x\n3,4,y\n", &labelled()).unwrap_err();
        assert!(
            err.contains(
                "data.csv: row 3, column 2: a quoted cell runs past the end of its line; close its quote"
            ),
            "{err}"
        );
        // On the last line it ends with the file.
        for text in ["1,2,x\n3,4,\"y", "1,2,x\n3,4,\"y\r\n\n"] {
            let (x, labels) = csv(&dir, text, &labelled()).unwrap();
            assert_eq!(x, vec![vec![1.0, 2.0], vec![3.0, 4.0]], "{text:?}");
            assert_eq!(
                labels,
                Some(RawLabels::Strings(vec!["x".into(), "y".into()])),
                "{text:?}"
            );
        }
        // `""` on a line of its own is an empty cell, not a blank line.
        let err = csv(&dir, "1,2,x\n\"\"\n3,4,y\n", &labelled()).unwrap_err();
        assert!(
            err.contains("row 2 has 1 columns, expected 3 (as in row 1)"),
            "{err}"
        );
    }

    #[test]
    fn csv_quoted_cells_after_blanks() {
        let dir = TempDir::new("csv-padded-quotes");
        let text = "x, y, label\n1, \"2\", \"cat\"\n3,  4 , \"say \"\"hi\"\"\"\n";
        let (x, labels) = csv(&dir, text, &labelled()).unwrap();
        assert_eq!(x, vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
        assert_eq!(
            labels,
            Some(RawLabels::Strings(vec!["cat".into(), "say \"hi\"".into()]))
        );
    }

    #[test]
    fn csv_delimiter_must_be_ascii() {
        let dir = TempDir::new("csv-delimiter-ascii");
        let options = LoadOptions {
            delimiter: Some('§'),
            ..labelled()
        };
        let err = csv(&dir, "1§2§0\n", &options).unwrap_err();
        assert!(
            err.contains("data.csv: the delimiter '§' is not one ASCII character"),
            "{err}"
        );
    }

    #[test]
    fn csv_with_header_and_string_labels() {
        let dir = TempDir::new("csv-header");
        let path = dir.write(
            "iris.csv",
            "sepal length, sepal width,species\n5.1,3.5,setosa\n\n7.0,3.2,versicolor\n6.3,3.3,setosa\n",
        );
        let loaded = load(&path, &labelled()).unwrap();
        assert_eq!(loaded.x.dim(), (3, 2));
        assert_eq!(loaded.x[[1, 0]], 7.0);
        assert_eq!(loaded.x[[2, 1]], 3.3);
        let raw = loaded.labels.unwrap();
        assert_eq!(
            raw,
            RawLabels::Strings(vec!["setosa".into(), "versicolor".into(), "setosa".into()])
        );
        let (classes, k, names) = encode_labels(&raw, None, &path).unwrap();
        assert_eq!(classes, vec![0, 1, 0]);
        assert_eq!(k, 2);
        assert_eq!(
            names,
            Some(vec!["setosa".to_string(), "versicolor".to_string()])
        );
    }

    #[test]
    fn csv_without_header_int_labels_first_column() {
        let dir = TempDir::new("csv-ints");
        let path = dir.write("digits.csv", "\r\n 2 , 0.5, 1e-3\r\n0,-1,  4\r\n\r\n");
        let options = LoadOptions {
            label_column: LabelColumn::First,
            ..labelled()
        };
        let loaded = load(&path, &options).unwrap();
        assert_eq!(loaded.x.dim(), (2, 2));
        assert_eq!(loaded.x.row(0).to_vec(), vec![0.5, 1e-3]);
        assert_eq!(loaded.x.row(1).to_vec(), vec![-1.0, 4.0]);
        assert_eq!(loaded.labels, Some(RawLabels::Ints(vec![2, 0])));
    }

    #[test]
    fn csv_label_column_by_index_and_whole_float_labels() {
        let dir = TempDir::new("csv-index");
        let path = dir.write("d.csv", "1,3.0,2\n4,1.0,5\n");
        let options = LoadOptions {
            label_column: LabelColumn::Index(1),
            ..labelled()
        };
        let loaded = load(&path, &options).unwrap();
        assert_eq!(loaded.x.row(1).to_vec(), vec![4.0, 5.0]);
        assert_eq!(loaded.labels, Some(RawLabels::Ints(vec![3, 1])));
    }

    #[test]
    fn csv_unlabelled_and_require_labels() {
        let dir = TempDir::new("csv-unlabelled");
        let path = dir.write("new.csv", "a,b\n1,2\n3,4\n");
        let loaded = load(&path, &LoadOptions::default()).unwrap();
        assert_eq!(loaded.x.dim(), (2, 2));
        assert_eq!(loaded.labels, None);

        let options = LoadOptions {
            require_labels: true,
            ..LoadOptions::default()
        };
        let err = load_err(&path, &options);
        assert!(
            err.contains("new.csv has no labels; pass --labels"),
            "{err}"
        );
    }

    #[test]
    fn csv_quoted_cells() {
        let dir = TempDir::new("csv-quoted");
        let path = dir.write(
            "q.csv",
            "\u{feff}\"width, cm\",\"height\",label\n1,\"2\",\"a, \"\"b\"\"\"\n3,4,c\n",
        );
        let loaded = load(&path, &labelled()).unwrap();
        assert_eq!(loaded.x.dim(), (2, 2));
        assert_eq!(loaded.x[[0, 1]], 2.0);
        assert_eq!(
            loaded.labels,
            Some(RawLabels::Strings(vec!["a, \"b\"".into(), "c".into()]))
        );
    }

    #[test]
    fn csv_gz_by_extension_and_by_magic() {
        let dir = TempDir::new("csv-gz");
        let text = b"x,y,label\n1,2,0\n3,4,1\n";
        for name in ["data.csv.gz", "data.csv"] {
            let path = dir.write(name, gzip(text));
            let loaded = load(&path, &labelled()).unwrap();
            assert_eq!(loaded.x.row(1).to_vec(), vec![3.0, 4.0], "{name}");
            assert_eq!(loaded.labels, Some(RawLabels::Ints(vec![0, 1])));
        }
        let path = dir.write("broken.csv.gz", "not gzip at all");
        let err = load_err(&path, &labelled());
        assert!(
            err.contains("broken.csv.gz") && err.contains("gzip"),
            "{err}"
        );
    }

    #[test]
    fn csv_nan_names_row_and_column() {
        let dir = TempDir::new("csv-nan");
        let path = dir.write("data.csv", "x,y,z,label\n1,2,3,0\n\n4,5,nan,1\n");
        let err = load_err(&path, &labelled());
        assert!(err.starts_with(&format!("{}:", path.display())), "{err}");
        assert!(
            err.contains("row 4, column 3: value NaN is not finite"),
            "{err}"
        );

        let path = dir.write("inf.csv", "1,-inf,0\n");
        let err = load_err(&path, &labelled());
        assert!(
            err.contains("row 1, column 2: value -inf is not finite"),
            "{err}"
        );

        let path = dir.write("big.csv", "1,1e40,0\n");
        let err = load_err(&path, &labelled());
        assert!(
            err.contains("row 1, column 2: value 1e40 exceeds the float32 range (±3.4e38)"),
            "{err}"
        );
    }

    #[test]
    fn csv_empty_and_header_only() {
        let dir = TempDir::new("csv-empty");
        for (name, text) in [
            ("empty.csv", ""),
            ("blank.csv", "\n  \n\r\n"),
            ("header.csv", "x,y,label\n\n"),
        ] {
            let path = dir.write(name, text);
            let err = load_err(&path, &labelled());
            assert!(err.contains(&format!("{name}: no data rows")), "{err}");
        }
    }

    #[test]
    fn csv_ragged_row() {
        let dir = TempDir::new("csv-ragged");
        let path = dir.write(
            "data.csv",
            "a,b,c,d,label\n1,2,3,4,0\n1,2,3,4,0\n\n1,2,3,4,1\n\n1,2,3,0\n",
        );
        let err = load_err(&path, &labelled());
        assert!(
            err.contains("data.csv: row 7 has 4 columns, expected 5 (as in row 1)"),
            "{err}"
        );
    }

    #[test]
    fn csv_non_numeric_and_empty_cells() {
        let dir = TempDir::new("csv-text");
        let path = dir.write(
            "data.csv",
            "a,b,c,label\n1,2,3,0\n1,2,3,0\n1,2,3,0\n1,2,abc,1\n",
        );
        let err = load_err(&path, &labelled());
        assert!(
            err.contains("data.csv: row 5, column 3: \"abc\" is not a number"),
            "{err}"
        );

        let path = dir.write("gap.csv", "1,,3,0\n");
        let err = load_err(&path, &labelled());
        assert!(
            err.contains("row 1, column 2") && err.contains("empty"),
            "{err}"
        );

        let path = dir.write("nolabel.csv", "1,2,\n");
        let err = load_err(&path, &labelled());
        assert!(err.contains("row 1, column 3: the label is empty"), "{err}");
    }

    #[test]
    fn csv_label_column_missing_and_no_features() {
        let dir = TempDir::new("csv-label-col");
        let path = dir.write("data.csv", "1,2,3,4,0\n");
        let options = LoadOptions {
            label_column: LabelColumn::Index(9),
            ..labelled()
        };
        let err = load_err(&path, &options);
        assert!(
            err.contains("data.csv: label column 9 does not exist (rows have 5 columns"),
            "{err}"
        );

        let path = dir.write("only.csv", "label\n1\n2\n");
        let err = load_err(&path, &labelled());
        assert!(err.contains("only.csv: no feature columns"), "{err}");
    }

    #[test]
    fn csv_not_utf8() {
        let dir = TempDir::new("csv-latin1");
        let path = dir.write("data.csv", b"a,b\n1,2\ncaf\xe9,3\n");
        let err = load_err(&path, &LoadOptions::default());
        assert!(err.contains("data.csv: line 3 is not UTF-8"), "{err}");
    }

    #[test]
    fn csv_header_of_column_numbers_or_a_word_above_numeric_labels() {
        let dir = TempDir::new("csv-header-rules");
        let ints = |v: &[i64]| Some(RawLabels::Ints(v.to_vec()));
        // pandas' names for unnamed columns, with the label named in words or by number.
        for text in [
            "0,1,2,y\n1,2,3,0\n4,5,6,1\n",
            "0,1,2,3\n1,2,3,0.0\n4,5,6,1.0\n",
        ] {
            let (x, labels) = csv(&dir, text, &labelled()).unwrap();
            assert_eq!(x, vec![vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]], "{text}");
            assert_eq!(labels, ints(&[0, 1]), "{text}");
        }
        // The label first, the features numbered among themselves or among all columns.
        let first = LoadOptions {
            label_column: LabelColumn::First,
            ..labelled()
        };
        for text in ["y,0,1\n0,1,2\n1,3,4\n", "0,1,2\n0,1,2\n1,3,4\n"] {
            let (x, labels) = csv(&dir, text, &first).unwrap();
            assert_eq!(x, vec![vec![1.0, 2.0], vec![3.0, 4.0]], "{text}");
            assert_eq!(labels, ints(&[0, 1]), "{text}");
        }
        // Without a label column every cell is a feature name.
        let (x, labels) = csv(&dir, "0,1,2\n7,8,9\n", &LoadOptions::default()).unwrap();
        assert_eq!((x, labels), (vec![vec![7.0, 8.0, 9.0]], None));
        // Numbers naming the features, a word naming the label column of integers.
        let (x, labels) = csv(&dir, "1990,1991,class\n1,2,0\n3,4,1\n", &labelled()).unwrap();
        assert_eq!((x.len(), labels), (2, ints(&[0, 1])));
        // Not headers: one feature numbered 0 (as likely data), numbers other than the
        // column numbers, and a numeric row above string labels.
        let (x, _) = csv(&dir, "0,1\n2,0\n3,1\n", &labelled()).unwrap();
        assert_eq!(x.len(), 3);
        let (x, _) = csv(&dir, "1,2,3,0\n4,5,6,1\n", &labelled()).unwrap();
        assert_eq!(x.len(), 2);
        let (x, labels) = csv(&dir, "1,2,cat\n3,4,dog\n", &labelled()).unwrap();
        assert_eq!(x.len(), 2);
        assert_eq!(
            labels,
            Some(RawLabels::Strings(vec!["cat".into(), "dog".into()]))
        );
    }

    #[test]
    fn csv_header_yes_and_no() {
        let dir = TempDir::new("csv-header-flag");
        let no = LoadOptions {
            header: Header::No,
            ..labelled()
        };
        let (x, labels) = csv(&dir, "0,1,2,2\n1,2,3,0\n4,5,6,1\n", &no).unwrap();
        assert_eq!(x.len(), 3);
        assert_eq!(labels, Some(RawLabels::Ints(vec![2, 0, 1])));
        let err = csv(&dir, "a,b,y\n1,2,0\n", &no).unwrap_err();
        assert!(
            err.contains("data.csv: row 1, column 1: \"a\" is not a number; --header no reads the first row as data"),
            "{err}"
        );
        let err = csv(&dir, "1,2,y\n1,2,0\n3,4,1\n", &no).unwrap_err();
        assert!(
            err.contains("row 1 has the name \"y\" but row 2 has the integer 0; the labels must be all integers or all names; --header no reads the first row as data"),
            "{err}"
        );
        let yes = LoadOptions {
            header: Header::Yes,
            ..labelled()
        };
        let (x, _) = csv(&dir, "1,2,0\n3,4,1\n5,6,1\n", &yes).unwrap();
        assert_eq!(x, vec![vec![3.0, 4.0], vec![5.0, 6.0]]);
        assert_eq!("no".parse::<Header>(), Ok(Header::No));
        assert_eq!("AUTO".parse::<Header>(), Ok(Header::Auto));
        assert!("maybe".parse::<Header>().is_err());
    }

    #[test]
    fn csv_tab_and_semicolon_delimiters() {
        let dir = TempDir::new("csv-delimiters");
        let want = (
            vec![vec![1.5, 2.0], vec![3.0, 4.0]],
            Some(RawLabels::Strings(vec!["a, b".into(), "c;d".into()])),
        );
        for text in [
            "x\ty\tlabel\n1.5\t2\t\"a, b\"\n3\t4\tc;d\n",
            "\"x,1\";y;label\n1.5;2;\"a, b\"\n3;4;\"c;d\"\n",
        ] {
            assert_eq!(csv(&dir, text, &labelled()).unwrap(), want, "{text:?}");
        }
        let explicit = LoadOptions {
            delimiter: Some('|'),
            ..labelled()
        };
        assert_eq!(csv(&dir, "1.5|2|a, b\n3|4|c;d\n", &explicit).unwrap(), want);
        // A file read with the wrong delimiter is one column, or has cells that hold the
        // right one; either way the message says which flag to pass.
        let commas = LoadOptions {
            delimiter: Some(','),
            ..labelled()
        };
        let err = csv(&dir, "1;2;0\n3;4;1\n", &commas).unwrap_err();
        assert!(
            err.contains("data.csv: no feature columns; if semicolons separate the cells, pass --delimiter ';'"),
            "{err}"
        );
        let err = csv(
            &dir,
            "1\t2\t0\n3\t4\t1\n",
            &LoadOptions {
                delimiter: Some(','),
                ..LoadOptions::default()
            },
        )
        .unwrap_err();
        assert!(
            err.contains("if tabs separate the cells, pass --delimiter tab"),
            "{err}"
        );
        for (flag, c) in [
            (",", ','),
            (";", ';'),
            ("tab", '\t'),
            ("\\t", '\t'),
            ("\t", '\t'),
            ("|", '|'),
        ] {
            assert_eq!(parse_delimiter(flag), Ok(c), "{flag:?}");
        }
        assert!(parse_delimiter("::").is_err());
        assert_eq!(Format::from_path(Path::new("x.tsv")), Some(Format::Csv));
    }
}
