//! Readers for the training binary's input files: CSV, NPY, IDX and LIBSVM feature files
//! (CSV, IDX and LIBSVM optionally gzipped), separate label files, and the mapping of raw
//! labels to class numbers.
//!
//! Everything wrong with a file's contents comes back as a [`FormatError`]: one sentence
//! naming the file and, where it applies, the row (as an editor numbers lines, from 1)
//! and column (from 1). Nothing here panics on input, and sizes read from headers are
//! checked before anything is allocated from them.
//!
//! One file per stage: `read` bounds and decompresses what is read from a file or
//! standard input, against the memory `memory` finds; `csv`, `npy` (with `py_literal` for
//! its header), `idx` and `libsvm` parse one format each, over the packed element types
//! in `elements`; `npz` reads SciPy's sparse archives and `csr_dir` directories of CSR
//! arrays, whose arrays `sparse_arrays` checks and turns into rows, held in place by
//! `mapped`; `labels` reads label files and maps labels to classes; `weights` reads
//! per-sample weights. This file holds the options, the error type, the entry points and
//! the pieces they share.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ndarray::Array2;

mod csr_dir;
mod csv;
mod elements;
mod idx;
mod labels;
mod libsvm;
mod mapped;
mod memory;
mod npy;
mod npz;
mod py_literal;
mod read;
mod sparse_arrays;
#[cfg(test)]
mod test_files;
mod weights;

pub use labels::{MAX_CLASSES, encode_labels, labels_from_bytes, load_labels};
pub use mapped::CsrArray;
pub use memory::available_memory;
pub use npy::{NpyElement, NpyLayout, npy_header, npy_layout};
pub use read::MAX_TEXT_STREAM;
pub(crate) use read::read_bounded;
pub use weights::load_weights;

use csr_dir::load_csr_dir;
use csv::load_csv;
use idx::idx_features;
use labels::load_labels_file;
use libsvm::{load_libsvm, load_libsvm_sparse};
use npy::npy_features;
use npz::{load_npz_mapped, load_npz_sparse};
use read::{Contents, read_file, read_stdin};

/// File formats, chosen by extension unless given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated text (or tab- or semicolon-separated), one sample per line,
    /// optionally with a header row.
    Csv,
    /// NumPy `.npy` array.
    Npy,
    /// The IDX format of MNIST (`train-images-idx3-ubyte` and friends).
    Idx,
    /// LIBSVM / SVMlight sparse text: `label index:value ...`.
    Libsvm,
    /// SciPy's sparse `.npz` (`scipy.sparse.save_npz`): CSR, CSC or COO.
    Npz,
    /// A directory of SciPy's CSR arrays as `.npy` files: `data.npy`, `indices.npy`,
    /// `indptr.npy` and optionally `shape.npy` (what `synth --density` writes).
    CsrDir,
}

impl Format {
    /// By extension: `.csv`, `.tsv` (optionally `.gz`) → Csv; `.npy` → Npy; names containing `-idx` or
    /// `.idx` followed by `-ubyte` (`train-images-idx3-ubyte`, `t10k-labels-idx1-ubyte.gz`),
    /// or ending `.idx`/`.idx.gz` → Idx; `.svm`, `.libsvm` (optionally `.gz`) → Libsvm;
    /// `.npz` → Npz. An existing directory, whatever its name, → CsrDir. `None` otherwise.
    /// Case is ignored.
    pub fn from_path(path: &Path) -> Option<Format> {
        if path.is_dir() {
            return Some(Format::CsrDir);
        }
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        let (base, gzipped) = match name.strip_suffix(".gz") {
            Some(base) => (base, true),
            None => (name.as_str(), false),
        };
        if base.ends_with(".csv") || base.ends_with(".tsv") {
            return Some(Format::Csv);
        }
        // NumPy never writes compressed .npy, so a `.npy.gz` is something else.
        if base.ends_with(".npy") && !gzipped {
            return Some(Format::Npy);
        }
        if base.ends_with(".svm") || base.ends_with(".libsvm") {
            return Some(Format::Libsvm);
        }
        if base.ends_with(".npz") && !gzipped {
            return Some(Format::Npz);
        }
        let idx_ubyte = ["-idx", ".idx"].iter().any(|marker| {
            base.find(marker)
                .is_some_and(|at| base[at..].contains("-ubyte"))
        });
        if base.ends_with(".idx") || idx_ubyte {
            return Some(Format::Idx);
        }
        None
    }

    /// The name used on the command line: `"csv"`, `"npy"`, `"idx"`, `"libsvm"`, `"npz"`
    /// or `"csr-dir"`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Npy => "npy",
            Format::Idx => "idx",
            Format::Libsvm => "libsvm",
            Format::Npz => "npz",
            Format::CsrDir => "csr-dir",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;

    /// Accepts the names from [`Format::name`], ignoring case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "npy" => Ok(Format::Npy),
            "idx" => Ok(Format::Idx),
            "libsvm" => Ok(Format::Libsvm),
            "npz" => Ok(Format::Npz),
            "csr-dir" => Ok(Format::CsrDir),
            _ => Err(format!(
                "unknown format {s:?}; valid formats are csv, npy, idx, libsvm, npz and csr-dir"
            )),
        }
    }
}

/// Which column of a CSV holds the label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LabelColumn {
    /// The last column (the default).
    #[default]
    Last,
    /// The first column.
    First,
    /// The column with this 0-based index.
    Index(usize),
}

impl fmt::Display for LabelColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelColumn::Last => f.write_str("last"),
            LabelColumn::First => f.write_str("first"),
            LabelColumn::Index(i) => write!(f, "{i}"),
        }
    }
}

impl FromStr for LabelColumn {
    type Err = String;

    /// `"last"`, `"first"` (any case) or a 0-based column number.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        match t.to_ascii_lowercase().as_str() {
            "last" => Ok(LabelColumn::Last),
            "first" => Ok(LabelColumn::First),
            _ => t.parse::<usize>().map(LabelColumn::Index).map_err(|_| {
                format!(
                    "label column {s:?} is not valid; use \"first\", \"last\" or a column number counted from 0"
                )
            }),
        }
    }
}

/// Whether a CSV's first row names the columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Header {
    /// Decided from the file (the default). The first row is a header when
    /// - a feature cell in it is not a number (`sepal_length`), or
    /// - it has at least two feature cells and they read 0, 1, 2, … counted among the
    ///   features or among all the columns: the names pandas gives unnamed columns
    ///   (`pd.DataFrame(x).to_csv(index=False)` writes `0,1,2,3,y`), or
    /// - its label is not a number while every label below it is one (`1990,1991,class`
    ///   above integer classes): a column of numbers does not start with a word unless the
    ///   word is its name.
    ///
    /// Anything else is data, so numeric column names above string labels are not seen;
    /// [`Header::Yes`] says so.
    #[default]
    Auto,
    /// The first row is a header, whatever it holds.
    Yes,
    /// The first row is data.
    No,
}

impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Header::Auto => "auto",
            Header::Yes => "yes",
            Header::No => "no",
        })
    }
}

impl FromStr for Header {
    type Err = String;

    /// `"auto"`, `"yes"` or `"no"` (any case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Header::Auto),
            "yes" => Ok(Header::Yes),
            "no" => Ok(Header::No),
            _ => Err("use yes, no or auto".to_string()),
        }
    }
}

/// A CSV delimiter as the command line names it: `,` `;` `|`, or a tab as `tab`, `\t`
/// (backslash and t) or the character itself.
pub fn parse_delimiter(s: &str) -> Result<char, String> {
    match s {
        "," => Ok(','),
        ";" => Ok(';'),
        "|" => Ok('|'),
        "\t" | "\\t" => Ok('\t'),
        _ if s.eq_ignore_ascii_case("tab") => Ok('\t'),
        _ => Err("use ',', ';', '|' or tab".to_string()),
    }
}

/// How [`load`] reads a file.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The format; `None` picks it with [`Format::from_path`] on the data path.
    pub format: Option<Format>,
    /// A separate labels file: an integer (or string) `.npy` array of shape `(m,)`, an IDX
    /// file of one dimension, or text with one label per non-blank line. For CSV and
    /// LIBSVM it overrides the labels in the data file.
    pub labels: Option<PathBuf>,
    /// CSV only: the column holding the label.
    pub label_column: LabelColumn,
    /// LIBSVM: feature indices start at 0 (by default they start at 1 and 0 is an error).
    pub zero_based: bool,
    /// The number of features the reader must produce (a model's n, say). LIBSVM: rows
    /// are expanded to it, and an index beyond it is an error; by default the largest
    /// index seen. CSV: a file exactly n columns wide has no label column and one n + 1
    /// wide has one (at `label_column`); any other width is an error.
    pub n_features: Option<usize>,
    /// A file without labels is an error.
    pub require_labels: bool,
    /// CSV: the file has a label column at all. `false` by [`Default`], so callers set it.
    pub csv_has_labels: bool,
    /// CSV: whether the first row is a header.
    pub header: Header,
    /// CSV: the character between cells; `None` detects it from the first non-blank line
    /// (a comma unless that line has no comma outside quotes but has tabs or semicolons).
    pub delimiter: Option<char>,
}

/// Labels as read, before mapping to classes.
#[derive(Debug, Clone, PartialEq)]
pub enum RawLabels {
    /// Every label is an integer.
    Ints(Vec<i64>),
    /// At least one label is not an integer, so all are taken as names.
    Strings(Vec<String>),
}

impl RawLabels {
    /// The number of labels.
    pub fn len(&self) -> usize {
        match self {
            RawLabels::Ints(v) => v.len(),
            RawLabels::Strings(v) => v.len(),
        }
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What [`load`] read: the features and, when the files hold them, the labels.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Features, one row per sample.
    pub x: Array2<f32>,
    /// One label per row of `x`, if any were found.
    pub labels: Option<RawLabels>,
    /// What the reader decided that the file did not state, one phrase each (a CSV's
    /// header row, its delimiter, a pandas index column left out), for the user to check.
    pub notes: Vec<String>,
}

/// A sparse matrix as a file stores it, in CSR arrays: row r's entries are
/// `indices[indptr[r]..indptr[r + 1]]` (0-based columns, increasing within the row) and
/// the same range of `values`. [`crate::data::Csr`] takes these arrays as they are. Each
/// is owned or, where the file holds it in this layout, a view into the mapped file.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseRows {
    /// m.
    pub n_rows: usize,
    /// n: the largest column seen plus one, or `LoadOptions::n_features`.
    pub n_cols: usize,
    /// m + 1 offsets into `indices` and `values`.
    pub indptr: CsrArray<u64>,
    /// The column of every stored value.
    pub indices: CsrArray<u32>,
    /// Every stored value.
    pub values: CsrArray<f32>,
}

/// What [`load_sparse`] read: the features as stored and, when the files hold them, the
/// labels.
#[derive(Debug, Clone)]
pub struct LoadedSparse {
    /// Features, never expanded to a dense matrix.
    pub x: SparseRows,
    /// One label per row of `x`, if any were found.
    pub labels: Option<RawLabels>,
}

/// One clear sentence naming the file and, where it applies, the row (1-based line/row
/// numbers as a user sees them in an editor) and column (1-based).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct FormatError {
    /// The file at fault.
    pub path: PathBuf,
    /// The whole sentence, file name included.
    pub message: String,
}

/// An error whose message starts with the file's name (`stdin` for `-`).
fn fail(path: &Path, detail: impl fmt::Display) -> FormatError {
    FormatError {
        path: path.to_path_buf(),
        message: format!("{}: {detail}", shown(path)),
    }
}

/// A path as messages name it: `stdin` for `-`.
fn shown(path: &Path) -> Cow<'_, str> {
    if is_stdin(path) {
        Cow::Borrowed("stdin")
    } else {
        path.to_string_lossy()
    }
}

/// Whether `path` is `-`, which names standard input.
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// A data file's bytes as [`read_input`] read them, and the format to parse them in.
#[derive(Debug, Clone)]
pub struct Input {
    /// The format, as given or told from the name (or, for standard input, the bytes).
    pub format: Format,
    /// The whole file, decompressed.
    pub bytes: Vec<u8>,
}

/// Reads the data file at `path` (standard input for `-`) once, decompressed, in `format`
/// or else the format its name tells. Standard input has no name: without `format` it is
/// NPY when it starts with NumPy's magic, else CSV.
pub fn read_input(path: &Path, format: Option<Format>) -> Result<Input, FormatError> {
    if is_stdin(path) {
        return read_stdin(path, format);
    }
    let format = data_format(path, format)?;
    if format == Format::CsrDir {
        return Err(from_path_only(path));
    }
    let bytes = read_file(path, Contents::of(Some(format)))?;
    Ok(Input { format, bytes })
}

/// The format of the data file at `path` (not standard input): `format`, else what the
/// path tells.
fn data_format(path: &Path, format: Option<Format>) -> Result<Format, FormatError> {
    format.or_else(|| Format::from_path(path)).ok_or_else(|| {
        fail(
            path,
            "cannot tell the format from the file name; pass --format (csv, npy, idx, libsvm, npz or csr-dir)",
        )
    })
}

/// Why a directory of CSR arrays cannot be parsed from bytes.
fn from_path_only(path: &Path) -> FormatError {
    fail(
        path,
        "a directory of CSR arrays (csr-dir) is read from its path, not as one stream of bytes",
    )
}

/// Reads features (and labels, where the files hold them) from `path`; `-` reads
/// standard input.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Loaded, FormatError> {
    one_stdin(path, options)?;
    if !is_stdin(path) && data_format(path, options.format)? == Format::CsrDir {
        let LoadedSparse { x, labels } = load_sparse(path, options)?;
        let x = densify_rows(path, &x)?;
        return Ok(Loaded {
            x,
            labels,
            notes: Vec::new(),
        });
    }
    let input = read_input(path, options.format)?;
    load_input(path, &input, options)
}

/// Standard input can be read once, so the data and its labels cannot both be `-`.
fn one_stdin(path: &Path, options: &LoadOptions) -> Result<(), FormatError> {
    if is_stdin(path) && options.labels.as_deref().is_some_and(is_stdin) {
        return Err(fail(
            path,
            "the data and its labels cannot both be read from standard input; give one a file",
        ));
    }
    Ok(())
}

/// [`load`] on a data file [`read_input`] has read, so that its bytes can be parsed more
/// than one way without reading the file again (standard input reads only once).
/// `options.format` is not used: `input` has its format.
pub fn load_input(
    path: &Path,
    input: &Input,
    options: &LoadOptions,
) -> Result<Loaded, FormatError> {
    one_stdin(path, options)?;
    let Loaded {
        x,
        labels: in_file,
        notes,
    } = load_bytes(input.format, path, &input.bytes, options)?;
    let labels = labels_of(path, options, in_file, x.nrows())?;
    Ok(Loaded { x, labels, notes })
}

/// The labels of `rows` rows read from `path`: the labels file's when `options` names one
/// (it must have one per row), else those in the data file (`in_file`); refused when
/// there are none and `options` requires them.
fn labels_of(
    path: &Path,
    options: &LoadOptions,
    in_file: Option<RawLabels>,
    rows: usize,
) -> Result<Option<RawLabels>, FormatError> {
    let labels = match &options.labels {
        Some(labels_path) => {
            let labels = load_labels_file(labels_path)?;
            if labels.len() != rows {
                return Err(FormatError {
                    path: labels_path.clone(),
                    message: format!(
                        "{} has {} labels but {} has {} rows",
                        shown(labels_path),
                        labels.len(),
                        shown(path),
                        rows
                    ),
                });
            }
            Some(labels)
        }
        None => in_file,
    };
    if labels.is_none() && options.require_labels {
        return Err(FormatError {
            path: path.to_path_buf(),
            message: format!("{} has no labels; pass --labels", shown(path)),
        });
    }
    Ok(labels)
}

/// Reads a LIBSVM file's, a SciPy `.npz`'s or a directory of CSR arrays' features as the
/// sparse rows they store, never expanding them to a dense matrix (and so with no limit
/// on the largest index but u32's), with the labels of the file or of `options.labels`;
/// `-` reads standard input. An `.npz` file and the directory's files are memory-mapped,
/// and arrays already in the layout of the rows are viewed there rather than copied
/// ([`CsrArray`]). Other formats are dense and refused here: use [`load`].
pub fn load_sparse(path: &Path, options: &LoadOptions) -> Result<LoadedSparse, FormatError> {
    one_stdin(path, options)?;
    let mapped = if is_stdin(path) {
        None
    } else {
        match data_format(path, options.format)? {
            Format::CsrDir => Some(load_csr_dir(path, options.n_features)?),
            Format::Npz => npz_file_rows(path)?,
            _ => None,
        }
    };
    let LoadedSparse { x, labels: in_file } = match mapped {
        Some(x) => {
            check_width(path, &x, options)?;
            LoadedSparse { x, labels: None }
        }
        None => {
            let input = read_input(path, options.format)?;
            load_sparse_bytes(input.format, path, &input.bytes, options)?
        }
    };
    let labels = labels_of(path, options, in_file, x.n_rows)?;
    Ok(LoadedSparse { x, labels })
}

/// The rows of an `.npz` file, memory-mapped; `None` for a gzipped one, which is read.
fn npz_file_rows(path: &Path) -> Result<Option<SparseRows>, FormatError> {
    let map = mapped::map_file(path, path, "the file")?;
    if map.starts_with(&[0x1f, 0x8b]) {
        return Ok(None);
    }
    load_npz_mapped(path, &map).map(Some)
}

/// [`load_sparse`] on the (already decompressed) bytes of a data file; `path` only names
/// the file in errors, and `options.labels` is not read.
pub fn load_sparse_bytes(
    format: Format,
    path: &Path,
    bytes: &[u8],
    options: &LoadOptions,
) -> Result<LoadedSparse, FormatError> {
    let (x, labels) = match format {
        Format::Libsvm => load_libsvm_sparse(path, bytes, options)?,
        Format::Npz => (npz_rows(path, bytes, options)?, None),
        Format::CsrDir => return Err(from_path_only(path)),
        other => {
            return Err(fail(
                path,
                format_args!(
                    "{} files are dense; only LIBSVM and .npz files load as sparse rows",
                    other.name()
                ),
            ));
        }
    };
    Ok(LoadedSparse { x, labels })
}

/// An `.npz`'s rows, checked against `options.n_features` when given.
fn npz_rows(path: &Path, bytes: &[u8], options: &LoadOptions) -> Result<SparseRows, FormatError> {
    let x = load_npz_sparse(path, bytes)?;
    check_width(path, &x, options)?;
    Ok(x)
}

/// Refuses rows of a stated shape whose width is not `options.n_features`, when given.
fn check_width(path: &Path, x: &SparseRows, options: &LoadOptions) -> Result<(), FormatError> {
    if let Some(n) = options.n_features
        && x.n_cols != n
    {
        return Err(fail(
            path,
            format_args!("has {} columns but {n} features are expected", x.n_cols),
        ));
    }
    Ok(())
}

/// Sparse rows as a dense matrix, for the readers' dense callers; refused when it would
/// not fit in memory.
fn densify_rows(path: &Path, x: &SparseRows) -> Result<Array2<f32>, FormatError> {
    let total = x.n_rows.saturating_mul(x.n_cols);
    let mut values: Vec<f32> = Vec::new();
    memory::reserve(path, &mut values, total, "features as a dense matrix")?;
    values.resize(total, 0.0);
    for r in 0..x.n_rows {
        let (start, end) = (x.indptr[r] as usize, x.indptr[r + 1] as usize);
        for (&c, &v) in x.indices[start..end].iter().zip(&x.values[start..end]) {
            values[r * x.n_cols + c as usize] = v;
        }
    }
    to_array(path, x.n_rows, x.n_cols, values)
}

/// Parses the (already decompressed) bytes of a data file in `format`; `path` only names
/// the file in errors. `options.labels` is not read here: this sees the one file.
pub fn load_bytes(
    format: Format,
    path: &Path,
    bytes: &[u8],
    options: &LoadOptions,
) -> Result<Loaded, FormatError> {
    let mut notes = Vec::new();
    let (x, labels) = match format {
        Format::Csv => load_csv(path, bytes, options, &mut notes)?,
        Format::Npy => (npy_features(path, bytes)?, None),
        Format::Idx => (idx_features(path, bytes)?, None),
        Format::Libsvm => load_libsvm(path, bytes, options)?,
        Format::Npz => (densify_rows(path, &npz_rows(path, bytes, options)?)?, None),
        Format::CsrDir => return Err(from_path_only(path)),
    };
    Ok(Loaded { x, labels, notes })
}

/// The bytes as UTF-8 text, without a byte-order mark (spreadsheets like to add one).
fn as_text<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str, FormatError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let good = bytes.get(..e.valid_up_to()).unwrap_or_default();
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        fail(
            path,
            format_args!("line {line} is not UTF-8 text; save the file as UTF-8"),
        )
    })
}

/// Lines numbered from 1, without the `\r` of Windows line ends.
fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split('\n')
        .enumerate()
        .map(|(i, line)| (i + 1, line.strip_suffix('\r').unwrap_or(line)))
}

/// `v` as an integer when it is one exactly (and small enough for f64 to say so).
fn whole_number(v: f64) -> Option<i64> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    (v.is_finite() && v.fract() == 0.0 && v.abs() <= EXACT).then_some(v as i64)
}

/// A shape the way NumPy prints it: `(100,)`, `(100, 5)`.
fn shape_text(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => {
            let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("({})", dims.join(", "))
        }
    }
}

/// The product of `dims`, or `None` on overflow.
fn checked_product(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Fails unless the data after a header is exactly what the header promises.
fn check_data_len(
    path: &Path,
    shape: &[usize],
    dtype: &str,
    expected: usize,
    actual: usize,
) -> Result<(), FormatError> {
    let promise = format!(
        "header says {} {dtype} = {expected} bytes of data",
        shape_text(shape)
    );
    if actual < expected {
        Err(fail(
            path,
            format_args!("is truncated: {promise}, file has {actual}"),
        ))
    } else if actual > expected {
        Err(fail(
            path,
            format_args!("has {actual} bytes of data but its {promise}"),
        ))
    } else {
        Ok(())
    }
}

/// Fails on an empty matrix, so every reader reports it the same way.
fn check_not_empty(path: &Path, m: usize, n: usize) -> Result<(), FormatError> {
    if m == 0 {
        return Err(fail(path, "no data rows"));
    }
    if n == 0 {
        return Err(fail(path, "no feature columns"));
    }
    Ok(())
}

fn to_array(path: &Path, m: usize, n: usize, values: Vec<f32>) -> Result<Array2<f32>, FormatError> {
    Array2::from_shape_vec((m, n), values).map_err(|e| {
        fail(
            path,
            format_args!("cannot shape the data as {m} x {n}: {e}"),
        )
    })
}

/// What is wrong with a finite value that float32 cannot hold, `shown` as it was written.
fn beyond_float32(shown: impl fmt::Display) -> String {
    format!("value {shown} exceeds the float32 range (±3.4e38)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::test_files::*;

    #[test]
    fn format_from_path() {
        let f = |s: &str| Format::from_path(Path::new(s));
        assert_eq!(f("data.csv"), Some(Format::Csv));
        assert_eq!(f("dir/DATA.CSV.GZ"), Some(Format::Csv));
        assert_eq!(f("x.npy"), Some(Format::Npy));
        assert_eq!(f("x.npy.gz"), None);
        assert_eq!(f("train-images-idx3-ubyte"), Some(Format::Idx));
        assert_eq!(f("t10k-labels-idx1-ubyte.gz"), Some(Format::Idx));
        assert_eq!(f("train-images.idx3-ubyte"), Some(Format::Idx));
        assert_eq!(f("images.idx"), Some(Format::Idx));
        assert_eq!(f("images.idx.gz"), Some(Format::Idx));
        assert_eq!(f("a9a.svm"), Some(Format::Libsvm));
        assert_eq!(f("a9a.libsvm.gz"), Some(Format::Libsvm));
        assert_eq!(f("data.txt"), None);
        assert_eq!(f("idx-notes"), None);
        assert_eq!(f(""), None);
    }

    #[test]
    fn format_and_label_column_from_str() {
        for format in [
            Format::Csv,
            Format::Npy,
            Format::Idx,
            Format::Libsvm,
            Format::Npz,
            Format::CsrDir,
        ] {
            assert_eq!(format.name().parse::<Format>(), Ok(format));
            assert_eq!(format.to_string(), format.name());
        }
        assert_eq!("LIBSVM".parse::<Format>(), Ok(Format::Libsvm));
        let err = "parquet".parse::<Format>().unwrap_err();
        assert!(
            err.contains("parquet") && err.contains("csv, npy, idx, libsvm, npz and csr-dir"),
            "{err}"
        );

        assert_eq!("last".parse::<LabelColumn>(), Ok(LabelColumn::Last));
        assert_eq!("First".parse::<LabelColumn>(), Ok(LabelColumn::First));
        assert_eq!("3".parse::<LabelColumn>(), Ok(LabelColumn::Index(3)));
        let err = "-1".parse::<LabelColumn>().unwrap_err();
        assert!(err.contains("\"-1\"") && err.contains("first"), "{err}");
    }

    #[test]
    fn unknown_format_is_an_error() {
        let dir = TempDir::new("unknown");
        let path = dir.write("data.parquet", "PAR1");
        let err = load_err(&path, &LoadOptions::default());
        assert!(
            err.contains("data.parquet") && err.contains("--format"),
            "{err}"
        );
        let options = LoadOptions {
            format: Some(Format::Csv),
            ..LoadOptions::default()
        };
        let path = dir.write("data.txt", "1,2\n");
        assert_eq!(load(&path, &options).unwrap().x.dim(), (1, 2));
    }

    #[test]
    fn float64_beyond_float32_names_the_value_row_and_column() {
        let dir = TempDir::new("npy-f8-range");
        for (value, shown) in [(1e300f64, "1e300"), (-3.5e38, "-3.5e38")] {
            let data: Vec<u8> = [0.5f64, 2.0, value, 4.0]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            let path = dir.write("x.npy", npy(1, "<f8", false, "(2, 2)", &data));
            let err = load_err(&path, &LoadOptions::default());
            assert!(
                err.contains(&format!(
                    "x.npy: row 2, column 1: value {shown} exceeds the float32 range (±3.4e38)"
                )),
                "{err}"
            );
        }
        let path = dir.write("x.svm", "1 1:0.5\n0 1:2 3:1e300\n");
        let err = load_err(&path, &LoadOptions::default());
        assert!(
            err.contains("x.svm: line 2: value 1e300 in \"3:1e300\" exceeds the float32 range"),
            "{err}"
        );
        let path = dir.write("w.txt", "1\n1e300\n");
        let err = load_weights(&path, 2, Path::new("x.csv"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("w.txt: row 2, column 1: value 1e300 exceeds the float32 range"),
            "{err}"
        );
    }

    /// Cut short or corrupted, every kind of file gives an error or a result, never a panic.
    #[test]
    fn corrupted_files_do_not_panic() {
        let dir = TempDir::new("corrupt");
        let y: Vec<u8> = [0i64, 1].iter().flat_map(|v| v.to_le_bytes()).collect();
        let files: Vec<(&str, Vec<u8>)> = vec![
            ("a.csv", b"x,\"y\",label\n1,2,a\n3,4,b\n".to_vec()),
            (
                "a.npy",
                npy(1, "<f4", false, "(2, 2)", &f32_le(&[1.0, 2.0, 3.0, 4.0])),
            ),
            ("y.npy", npy(1, "<i8", false, "(2,)", &y)),
            ("a-idx3-ubyte", idx(0x08, &[2, 2, 1], &[0, 1, 2, 3])),
            ("a.svm", b"1 1:2 3:4\n0 2:1\n".to_vec()),
        ];
        for (name, bytes) in files {
            for cut in 0..=bytes.len() {
                let path = dir.write(name, &bytes[..cut]);
                let _ = load(&path, &labelled());
                let _ = load_labels_file(&path);
            }
            for at in 0..bytes.len() {
                for flip in [0x01u8, 0x80, 0xff] {
                    let mut bad = bytes.clone();
                    bad[at] ^= flip;
                    let path = dir.write(name, &bad);
                    let _ = load(&path, &labelled());
                    let _ = load_labels_file(&path);
                }
            }
        }
    }

    #[test]
    fn an_input_read_once_parses_both_ways() {
        let dir = TempDir::new("read-once");
        let path = dir.write("x.csv", "1,2,0\n3,4,1\n");
        let input = read_input(&path, None).unwrap();
        assert_eq!(input.format, Format::Csv);
        std::fs::remove_file(&path).unwrap();
        let with = load_input(&path, &input, &labelled()).unwrap();
        let without = load_input(&path, &input, &LoadOptions::default()).unwrap();
        assert_eq!((with.x.ncols(), without.x.ncols()), (2, 3));
        let err = read_input(Path::new("x.bin"), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot tell the format"), "{err}");
        let options = LoadOptions {
            labels: Some(PathBuf::from("-")),
            ..labelled()
        };
        let err = load(Path::new("-"), &options).unwrap_err().to_string();
        assert!(
            err.starts_with("stdin: the data and its labels cannot both be read"),
            "{err}"
        );
    }
}
