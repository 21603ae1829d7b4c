//! Readers for the training binary's input files: CSV, NPY, IDX and LIBSVM feature files
//! (CSV, IDX and LIBSVM optionally gzipped), separate label files, and the mapping of raw
//! labels to class numbers.
//!
//! Everything wrong with a file's contents comes back as a [`FormatError`]: one sentence
//! naming the file and, where it applies, the row (as an editor numbers lines, from 1)
//! and column (from 1). Nothing here panics on input, and sizes read from headers are
//! checked before anything is allocated from them.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use flate2::read::MultiGzDecoder;
use ndarray::Array2;

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
}

impl Format {
    /// By extension: `.csv`, `.tsv` (optionally `.gz`) → Csv; `.npy` → Npy; names containing `-idx` or
    /// `.idx` followed by `-ubyte` (`train-images-idx3-ubyte`, `t10k-labels-idx1-ubyte.gz`),
    /// or ending `.idx`/`.idx.gz` → Idx; `.svm`, `.libsvm` (optionally `.gz`) → Libsvm.
    /// `None` otherwise. Case is ignored.
    pub fn from_path(path: &Path) -> Option<Format> {
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
        let idx_ubyte = ["-idx", ".idx"].iter().any(|marker| {
            base.find(marker)
                .is_some_and(|at| base[at..].contains("-ubyte"))
        });
        if base.ends_with(".idx") || idx_ubyte {
            return Some(Format::Idx);
        }
        None
    }

    /// The name used on the command line: `"csv"`, `"npy"`, `"idx"` or `"libsvm"`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Npy => "npy",
            Format::Idx => "idx",
            Format::Libsvm => "libsvm",
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
            _ => Err(format!(
                "unknown format {s:?}; valid formats are csv, npy, idx and libsvm"
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
    let Some(format) = format.or_else(|| Format::from_path(path)) else {
        return Err(fail(
            path,
            "cannot tell the format from the file name; pass --format (csv, npy, idx or libsvm)",
        ));
    };
    let bytes = read_file(path, Contents::of(Some(format)))?;
    Ok(Input { format, bytes })
}

/// Reads features (and labels, where the files hold them) from `path`; `-` reads
/// standard input.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Loaded, FormatError> {
    one_stdin(path, options)?;
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
    let labels = match &options.labels {
        Some(labels_path) => {
            let labels = load_labels_file(labels_path)?;
            if labels.len() != x.nrows() {
                return Err(FormatError {
                    path: labels_path.clone(),
                    message: format!(
                        "{} has {} labels but {} has {} rows",
                        shown(labels_path),
                        labels.len(),
                        shown(path),
                        x.nrows()
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
    Ok(Loaded { x, labels, notes })
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
    };
    Ok(Loaded { x, labels, notes })
}

/// Parses the bytes of a labels file as [`LoadOptions::labels`] describes (`.npy`, IDX by
/// `format`, anything else as text); `path` only names the file in errors.
pub fn labels_from_bytes(
    format: Option<Format>,
    path: &Path,
    bytes: &[u8],
) -> Result<RawLabels, FormatError> {
    match format {
        Some(Format::Npy) => npy_labels(path, bytes),
        Some(Format::Idx) => idx_labels(path, bytes),
        _ => {
            let text = as_text(path, bytes)?;
            let (lines, labels): (Vec<usize>, Vec<String>) = numbered_lines(text)
                .map(|(line_no, line)| (line_no, line.trim()))
                .filter(|(_, line)| !line.is_empty())
                .map(|(line_no, line)| (line_no, line.to_string()))
                .unzip();
            infer_labels(path, labels, &lines, "line", None)
        }
    }
}

/// The most classes a model may have. A model, its gradient and every row's
/// probabilities grow with K, so a K beyond this is a mistyped label or flag, refused
/// before anything of that size is made.
pub const MAX_CLASSES: usize = 1 << 20;

/// Maps raw labels to classes `0..K`.
///
/// Integers are their own classes: K is the largest label plus one, or `n_classes` when
/// given, in which case every label must be below it. Negative integers are refused, and
/// so, without `n_classes`, is a K above twice the number of distinct labels plus 100
/// (labels 0, 1, 2 and 1000000 are a typo more often than a million classes). Strings
/// become classes in sorted order and the sorted names are returned; `n_classes`, when
/// given, must be at least the number of distinct names. K is at most [`MAX_CLASSES`].
/// Errors name the sample, the 1-based position of the label among the labels (data
/// rows, not counting a header). Returns `(classes, K, names)`; `path` is the file named
/// in errors.
// The plain tuple is the interface callers destructure; a named type would only hide it.
#[allow(clippy::type_complexity)]
pub fn encode_labels(
    raw: &RawLabels,
    n_classes: Option<usize>,
    path: &Path,
) -> Result<(Vec<u32>, usize, Option<Vec<String>>), FormatError> {
    if let Some(k) = n_classes
        && k > MAX_CLASSES
    {
        return Err(fail(
            path,
            format_args!("{k} classes were asked for, more than the {MAX_CLASSES} supported"),
        ));
    }
    match raw {
        RawLabels::Ints(labels) => {
            let mut classes = Vec::with_capacity(labels.len());
            // The largest class and the sample holding it first.
            let mut max: Option<(u32, usize)> = None;
            for (i, &label) in labels.iter().enumerate() {
                let sample = i + 1;
                if label < 0 {
                    return Err(fail(
                        path,
                        format_args!(
                            "label {label} of sample {sample} is negative; class labels must be 0, 1, 2, ..."
                        ),
                    ));
                }
                let class = match u32::try_from(label) {
                    Ok(class) if class < u32::MAX => class,
                    _ => {
                        return Err(fail(
                            path,
                            format_args!("label {label} of sample {sample} is too large"),
                        ));
                    }
                };
                if let Some(k) = n_classes {
                    if class as usize >= k {
                        let range = match k {
                            0 => "none are allowed".to_string(),
                            _ => format!("labels must be 0 to {}", k - 1),
                        };
                        return Err(fail(
                            path,
                            format_args!(
                                "label {label} of sample {sample} is out of range: with {k} classes {range}"
                            ),
                        ));
                    }
                }
                if max.is_none_or(|(m, _)| class > m) {
                    max = Some((class, sample));
                }
                classes.push(class);
            }
            let k = match (n_classes, max) {
                (Some(k), _) => k,
                (None, None) => 0,
                (None, Some((max, sample))) => {
                    check_inferred_k(path, &classes, max, sample)?;
                    max as usize + 1
                }
            };
            Ok((classes, k, None))
        }
        RawLabels::Strings(labels) => {
            let mut names: Vec<String> = labels.clone();
            names.sort_unstable();
            names.dedup();
            if let Some(k) = n_classes {
                if names.len() > k {
                    return Err(fail(
                        path,
                        format_args!(
                            "has {} distinct labels but only {k} classes were asked for",
                            names.len()
                        ),
                    ));
                }
            }
            if u32::try_from(names.len()).is_err() {
                return Err(fail(path, "has too many distinct labels"));
            }
            let mut classes = Vec::with_capacity(labels.len());
            for label in labels {
                // Every label is among the names, so the search always succeeds.
                let class = names.binary_search(label).unwrap_or_default();
                classes.push(class as u32);
            }
            let k = n_classes.unwrap_or(names.len());
            Ok((classes, k, Some(names)))
        }
    }
}

/// Refuses a K of `max + 1` (the largest integer label, first at `sample`) that is beyond
/// [`MAX_CLASSES`] or far above the number of distinct labels, as [`encode_labels`] says.
fn check_inferred_k(
    path: &Path,
    classes: &[u32],
    max: u32,
    sample: usize,
) -> Result<(), FormatError> {
    let k = max as usize + 1;
    if k > MAX_CLASSES {
        return Err(fail(
            path,
            format_args!(
                "label {max} of sample {sample} would make K = {k} classes, more than the {MAX_CLASSES} supported; number the classes 0, 1, 2, … or write them as names"
            ),
        ));
    }
    // Any K up to 100 passes the rule, so the count is only taken above it.
    if k <= 100 {
        return Ok(());
    }
    let mut seen = vec![false; k];
    for &class in classes {
        if let Some(slot) = seen.get_mut(class as usize) {
            *slot = true;
        }
    }
    let distinct = seen.iter().filter(|&&s| s).count();
    if k > 2 * distinct + 100 {
        return Err(fail(
            path,
            format_args!(
                "label {max} of sample {sample} would make K = {k} classes, though only {distinct} distinct labels occur; pass --classes {k} if that many classes are meant"
            ),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Shared pieces

/// What a file should hold, which decides how much of it is read: NPY and IDX headers
/// declare their data, and nothing past that is read; text declares nothing, so it is
/// read only as far as memory allows, and only once its first block has no NUL byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Contents {
    Text,
    Npy,
    Idx,
}

impl Contents {
    fn of(format: Option<Format>) -> Self {
        match format {
            Some(Format::Npy) => Contents::Npy,
            Some(Format::Idx) => Contents::Idx,
            _ => Contents::Text,
        }
    }
}

/// Bytes at the start of a text file checked for NUL bytes, which text never holds: a
/// binary file, a device like /dev/zero or UTF-16 text is refused before more is read.
const TEXT_PROBE: u64 = 64 << 10;

/// The most a gzipped text file, or a text stream (a pipe, a device), may hold: its size
/// is known only once it is read, so this bounds the read where the available memory is
/// not known, and a file meant as data is never this large.
pub const MAX_TEXT_STREAM: u64 = 64 << 30;

/// The longest NPY header read. NumPy writes a few hundred bytes; its own reader refuses
/// more than 10,000 unless told otherwise.
const MAX_NPY_HEADER: usize = 1 << 20;

/// Bytes of memory this process can still take without swapping: Linux's MemAvailable,
/// lowered to what the cgroup (a container's limit) leaves; `None` where neither is known.
pub fn available_memory() -> Option<u64> {
    let system = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
            line.split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()?
                .checked_mul(1024)
        });
    let cgroup_file = |file: &str| std::fs::read_to_string(Path::new("/sys/fs/cgroup").join(file));
    // "max" (no limit) does not parse, which leaves the system's figure. The page cache
    // counts against the limit but is given back on demand, so only anonymous memory
    // (the processes' own) is taken from it.
    let limit = cgroup_file("memory.max")
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok());
    let cgroup = limit.map(|max| {
        let anon = cgroup_file("memory.stat").ok().and_then(|t| {
            let line = t.lines().find(|l| l.starts_with("anon "))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        });
        max.saturating_sub(anon.unwrap_or(0))
    });
    match (system, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Reads `reader` into `out` until it ends or `out` holds one byte more than `limit`, and
/// says whether it went past the limit (then the byte past it is kept in `out`, so a
/// later call can go on). Memory is taken as bytes arrive, never from a size a file
/// claims, and a failed reservation is an `OutOfMemory` error, not an abort.
pub(crate) fn read_bounded(
    reader: &mut impl Read,
    limit: u64,
    out: &mut Vec<u8>,
) -> io::Result<bool> {
    let cap = limit.saturating_add(1);
    let mut chunk = vec![0u8; 64 << 10];
    while (out.len() as u64) < cap {
        let want = usize::try_from(cap - out.len() as u64)
            .unwrap_or(usize::MAX)
            .min(chunk.len());
        let got = match reader.read(chunk.get_mut(..want).unwrap_or_default()) {
            Ok(0) => return Ok(false),
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.try_reserve(got)
            .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
        out.extend_from_slice(chunk.get(..got).unwrap_or_default());
    }
    Ok(true)
}

/// Reserves room for `count` more elements in `values`, or says that holding `what`
/// needs more memory than there is: sizes read from files are checked against the memory
/// available (a reservation alone succeeds on credit under Linux's overcommit, and the
/// kernel kills the process later) and then reserved fallibly.
fn reserve<T>(
    path: &Path,
    values: &mut Vec<T>,
    count: usize,
    what: impl fmt::Display,
) -> Result<(), FormatError> {
    let bytes = (count as u64).saturating_mul(std::mem::size_of::<T>() as u64);
    let too_much = |there: String| {
        fail(
            path,
            format_args!(
                "holding its {what} needs {} of memory, {there}",
                crate::gpu::human_bytes(bytes)
            ),
        )
    };
    if let Some(available) = available_memory()
        && bytes > available
    {
        return Err(too_much(format!(
            "more than the {} available",
            crate::gpu::human_bytes(available)
        )));
    }
    // Memory that is there can still be refused: a process limit (ulimit -v), or a size
    // no allocation can have.
    values
        .try_reserve_exact(count)
        .map_err(|_| too_much("and the system refused to allocate it".to_string()))
}

/// The file's bytes, decompressed when the name ends `.gz` or the bytes start with gzip's
/// magic (so a compressed file that lost its `.gz` still reads). The read is bounded by
/// what `contents` allows: see [`Contents`].
fn read_file(path: &Path, contents: Contents) -> Result<Vec<u8>, FormatError> {
    let cannot = |e: io::Error| fail(path, format_args!("cannot read the file: {e}"));
    let file = File::open(path).map_err(cannot)?;
    // Only a regular file's length is its size; a device or a pipe reports 0.
    let size = file
        .metadata()
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    let mut raw = BufReader::with_capacity(64 << 10, file);
    let gz_name = path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().to_ascii_lowercase().ends_with(".gz"));
    let gz = gz_name || raw.fill_buf().map_err(cannot)?.starts_with(&[0x1f, 0x8b]);
    let result = if gz {
        read_contents(path, &mut MultiGzDecoder::new(raw), contents, None, true)
    } else {
        read_contents(path, &mut raw, contents, size, false)
    };
    result.map_err(|stop| stop_error(path, gz, stop))
}

/// The sentence for a read that [`read_contents`] stopped.
fn stop_error(path: &Path, gz: bool, stop: Stop) -> FormatError {
    match stop {
        Stop::Refused(e) => e,
        Stop::Io(e) if e.kind() == io::ErrorKind::OutOfMemory => fail(
            path,
            "cannot be held in memory: the system refused the allocation",
        ),
        Stop::Io(e) if gz => fail(path, format_args!("cannot decompress it as gzip: {e}")),
        Stop::Io(e) => fail(path, format_args!("cannot read the file: {e}")),
    }
}

/// Standard input's bytes, read once (a pipe cannot be read twice) with the bounds of a
/// stream, decompressed when they start with gzip's magic; its format is `format`, else
/// NPY when the bytes start with NumPy's magic, else CSV.
fn read_stdin(path: &Path, format: Option<Format>) -> Result<Input, FormatError> {
    // The first bytes decide how to read the rest, then are read again in front of it.
    fn head(reader: &mut impl Read, len: u64) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        reader.take(len).read_to_end(&mut bytes)?;
        Ok(bytes)
    }
    let mut stdin = io::stdin().lock();
    let magic = head(&mut stdin, 2).map_err(|e| stop_error(path, false, Stop::Io(e)))?;
    let gz = magic.starts_with(&[0x1f, 0x8b]);
    let raw = io::Cursor::new(magic).chain(stdin);
    let mut reader: Box<dyn Read> = if gz {
        Box::new(MultiGzDecoder::new(raw))
    } else {
        Box::new(raw)
    };
    let start = head(&mut reader, 6).map_err(|e| stop_error(path, gz, Stop::Io(e)))?;
    let format = format.unwrap_or(if start.starts_with(b"\x93NUMPY") {
        Format::Npy
    } else {
        Format::Csv
    });
    let mut reader = io::Cursor::new(start).chain(reader);
    let bytes = read_contents(path, &mut reader, Contents::of(Some(format)), None, gz)
        .map_err(|stop| stop_error(path, gz, stop))?;
    Ok(Input { format, bytes })
}

/// Why [`read_contents`] stopped early.
enum Stop {
    Refused(FormatError),
    Io(io::Error),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Self {
        Stop::Io(e)
    }
}

impl From<FormatError> for Stop {
    fn from(e: FormatError) -> Self {
        Stop::Refused(e)
    }
}

/// Reads a file's (decompressed) bytes as `contents` bounds them. `size` is the length of
/// a regular, uncompressed file. Anything the format's parser would report (a wrong
/// magic, a short header, a truncated body) is left to it: this returns what it read.
fn read_contents(
    path: &Path,
    reader: &mut impl Read,
    contents: Contents,
    size: Option<u64>,
    gz: bool,
) -> Result<Vec<u8>, Stop> {
    let memory = available_memory();
    let mut out = Vec::new();
    match contents {
        Contents::Text => {
            // A regular file is bounded by its length, checked against memory here; a
            // stream has no length, so it also has a ceiling.
            let ceiling = if size.is_some() {
                u64::MAX
            } else {
                MAX_TEXT_STREAM
            };
            let limit = ceiling.min(memory.unwrap_or(u64::MAX));
            if let (Some(size), Some(memory)) = (size, memory)
                && size > memory
            {
                return Err(fail(
                    path,
                    format_args!(
                        "is {}, more than the {} of memory available to read it into",
                        crate::gpu::human_bytes(size),
                        crate::gpu::human_bytes(memory)
                    ),
                )
                .into());
            }
            let more = read_bounded(reader, TEXT_PROBE.min(limit), &mut out)?;
            if let Some(at) = out.iter().position(|&b| b == 0) {
                return Err(fail(
                    path,
                    format_args!(
                        "is not a text file (byte {} is NUL{}); save it as UTF-8 text",
                        at + 1,
                        if gz { " once decompressed" } else { "" }
                    ),
                )
                .into());
            }
            if more && read_bounded(reader, limit, &mut out)? {
                let why = if limit < ceiling {
                    "the memory available"
                } else {
                    "the most a text stream may hold"
                };
                let limit = crate::gpu::human_bytes(limit);
                return Err(fail(
                    path,
                    if gz {
                        format!("expands beyond {limit} ({why}) when decompressed")
                    } else {
                        format!("holds more than {limit} ({why})")
                    },
                )
                .into());
            }
            Ok(out)
        }
        Contents::Npy => {
            read_bounded(reader, 12, &mut out)?;
            let header_end = match out.strip_prefix(b"\x93NUMPY") {
                Some([1, _, a, b, ..]) => 10 + usize::from(u16::from_le_bytes([*a, *b])),
                Some([2 | 3, _, a, b, c, d, ..]) => {
                    let len = u32::from_le_bytes([*a, *b, *c, *d]);
                    match usize::try_from(len) {
                        Ok(len) if len <= MAX_NPY_HEADER => 12 + len,
                        _ => {
                            return Err(fail(
                                path,
                                format_args!(
                                    "has an NPY header of {len} bytes; NumPy writes a few hundred, and more than {MAX_NPY_HEADER} is not read"
                                ),
                            )
                            .into());
                        }
                    }
                }
                // Not NPY, or a version the parser refuses: it says which.
                _ => return Ok(out),
            };
            read_bounded(reader, header_end as u64, &mut out)?;
            if out.len() < header_end {
                return Ok(out);
            }
            let npy = parse_npy(path, out.get(..header_end).unwrap_or_default())?;
            // An element type the readers refuse needs no data to be refused.
            let Some(dtype) = npy.dtype else {
                return Ok(out);
            };
            let declared = npy_declared_bytes(path, &npy.shape, dtype)?;
            let what = format!("{} {}", shape_text(&npy.shape), dtype.name());
            read_declared(
                path, reader, out, header_end, declared, &what, size, gz, memory,
            )
        }
        Contents::Idx => {
            read_bounded(reader, 4, &mut out)?;
            let ndims = match out.get(..4) {
                Some(magic) if idx_magic(magic).is_some() => usize::from(magic[3]),
                _ => return Ok(out),
            };
            let header_end = 4 + 4 * ndims;
            read_bounded(reader, header_end as u64, &mut out)?;
            let (Some(num), Some(dim_bytes)) = (idx_magic(&out), out.get(4..header_end)) else {
                return Ok(out);
            };
            let dims = idx_dims(dim_bytes);
            let declared = idx_declared_bytes(path, &dims, num)?;
            let what = format!("{} {}", shape_text(&dims), num.name());
            read_declared(
                path, reader, out, header_end, declared, &what, size, gz, memory,
            )
        }
    }
}

/// Reads the data after a header of `header_end` bytes (already in `out`) that declares
/// `declared` bytes of `what` (a shape and element type): no further than the header
/// declares, and no further than memory allows. A short body is returned for the parser
/// to call truncated; a longer one is refused here, with its length when that is known.
#[allow(clippy::too_many_arguments)]
fn read_declared(
    path: &Path,
    reader: &mut impl Read,
    mut out: Vec<u8>,
    header_end: usize,
    declared: usize,
    what: &str,
    size: Option<u64>,
    gz: bool,
    memory: Option<u64>,
) -> Result<Vec<u8>, Stop> {
    let total = (header_end as u64).saturating_add(declared as u64);
    // What there is to read: all the header declares, or less when the file is shorter.
    let expected = size.map_or(total, |s| s.min(total));
    let beyond_memory = || {
        let memory = crate::gpu::human_bytes(memory.unwrap_or(0));
        fail(
            path,
            format_args!(
                "its header declares {what} = {declared} bytes of data, more than the {memory} of memory available"
            ),
        )
    };
    if memory.is_some_and(|m| expected > m) {
        return Err(beyond_memory().into());
    }
    let limit = memory.map_or(total, |m| m.min(total));
    if !read_bounded(reader, limit, &mut out)? {
        return Ok(out);
    }
    if limit < total {
        return Err(beyond_memory().into());
    }
    // A length that does not exceed what was read is not the file's (a file in /proc).
    let actual = size
        .filter(|&s| s > total)
        .and_then(|s| usize::try_from(s).ok());
    Err(match actual {
        Some(actual) => fail(
            path,
            format_args!(
                "has {} bytes of data but its header says {what} = {declared} bytes of data",
                actual.saturating_sub(header_end)
            ),
        ),
        None if gz => fail(
            path,
            format_args!(
                "expands beyond the {declared} bytes of data its header declares for {what}; the file is damaged"
            ),
        ),
        None => fail(
            path,
            format_args!("holds more than the {declared} bytes of data its header declares for {what}"),
        ),
    }
    .into())
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

/// What one label, as text, is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LabelKind {
    /// A whole number: "3", "+1", and "3.0" as pandas writes integer columns that once
    /// held a NaN.
    Integer(i64),
    /// A finite number with a fraction, like 1.5.
    Fraction,
    /// A whole number too large for f64 to hold exactly.
    TooLarge,
    /// NaN or an infinity.
    NotFinite,
    /// Anything that is not a number.
    Name,
}

fn label_kind(label: &str) -> LabelKind {
    if let Ok(v) = label.parse::<i64>() {
        return LabelKind::Integer(v);
    }
    match label.parse::<f64>() {
        Err(_) => LabelKind::Name,
        Ok(v) if !v.is_finite() => LabelKind::NotFinite,
        Ok(v) => match whole_number(v) {
            Some(i) => LabelKind::Integer(i),
            None if v.fract() == 0.0 => LabelKind::TooLarge,
            None => LabelKind::Fraction,
        },
    }
}

/// Labels as integers when every one is a whole number, as names when none is a number,
/// and refused otherwise: a class label of 1.5 is a regression target or a typo, NaN is a
/// missing label, and names among numbers (or numbers among names) are one kind
/// misread as the other. `at[i]` is where label `i` stands in the file, counted in
/// `unit`s ("row", "line"); `first_hint` is added when the first label is one of those
/// named.
fn infer_labels(
    path: &Path,
    labels: Vec<String>,
    at: &[usize],
    unit: &str,
    first_hint: Option<&str>,
) -> Result<RawLabels, FormatError> {
    let place = |i: usize| at.get(i).copied().unwrap_or(i + 1);
    let mut ints: Vec<i64> = Vec::new();
    let (mut first_int, mut first_fraction, mut first_name) = (None, None, None);
    let mut names = 0usize;
    for (i, label) in labels.iter().enumerate() {
        match label_kind(label) {
            LabelKind::Integer(v) => {
                first_int.get_or_insert(i);
                ints.push(v);
            }
            LabelKind::Fraction => {
                first_fraction.get_or_insert(i);
            }
            LabelKind::Name => {
                first_name.get_or_insert(i);
                names += 1;
            }
            LabelKind::TooLarge => {
                return Err(fail(
                    path,
                    format_args!(
                        "{unit} {}: label {label} is too large for a class number",
                        place(i)
                    ),
                ));
            }
            LabelKind::NotFinite => {
                return Err(fail(
                    path,
                    format_args!(
                        "{unit} {}: label {label} is not a class; is the label missing?",
                        place(i)
                    ),
                ));
            }
        }
    }
    let label = |i: usize| labels.get(i).map_or("", String::as_str);
    let shown = |i: usize| match label_kind(label(i)) {
        LabelKind::Name => format!("the name {:?}", label(i)),
        LabelKind::Integer(_) => format!("the integer {}", label(i)),
        _ => format!("the number {}", label(i)),
    };
    let hint = |rows: [usize; 2]| match first_hint {
        Some(hint) if rows.contains(&0) => hint,
        _ => "",
    };
    match (first_name, first_int.or(first_fraction)) {
        (Some(name), Some(number)) => {
            // The kind fewer labels have is named first: it is the odd one out.
            let (odd, usual) = if names <= labels.len() - names {
                (name, number)
            } else {
                (number, name)
            };
            Err(fail(
                path,
                format_args!(
                    "{unit} {} has {} but {unit} {} has {}; the labels must be all integers or all names{}",
                    place(odd),
                    shown(odd),
                    place(usual),
                    shown(usual),
                    hint([odd, usual])
                ),
            ))
        }
        (Some(_), None) => Ok(RawLabels::Strings(labels)),
        (None, _) => match (first_fraction, first_int) {
            (Some(fraction), Some(int)) => Err(fail(
                path,
                format_args!(
                    "{unit} {} has the label {}, not a whole number, but {unit} {} has {}; class labels are integers or names",
                    place(fraction),
                    label(fraction),
                    place(int),
                    shown(int)
                ),
            )),
            (Some(fraction), None) => Err(fail(
                path,
                format_args!(
                    "{unit} {}: label {} is not a whole number; class labels are integers or names (a continuous target calls for regression, not classification)",
                    place(fraction),
                    label(fraction)
                ),
            )),
            (None, _) => Ok(RawLabels::Ints(ints)),
        },
    }
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

/// Element types of NPY and IDX arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Num {
    Bool,
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F32,
    F64,
}

impl Num {
    fn size(self) -> usize {
        match self {
            Num::Bool | Num::I8 | Num::U8 => 1,
            Num::I16 | Num::U16 => 2,
            Num::I32 | Num::U32 | Num::F32 => 4,
            Num::I64 | Num::U64 | Num::F64 => 8,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Num::Bool => "bool",
            Num::I8 => "int8",
            Num::U8 => "uint8",
            Num::I16 => "int16",
            Num::U16 => "uint16",
            Num::I32 => "int32",
            Num::U32 => "uint32",
            Num::I64 => "int64",
            Num::U64 => "uint64",
            Num::F32 => "float32",
            Num::F64 => "float64",
        }
    }

    fn is_float(self) -> bool {
        matches!(self, Num::F32 | Num::F64)
    }
}

/// The first `N` bytes of `chunk` (callers pass chunks of exactly `N`).
fn take<const N: usize>(chunk: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    for (o, b) in out.iter_mut().zip(chunk) {
        *o = *b;
    }
    out
}

/// One element as f64 (exact for every type but 64-bit integers beyond 2^53).
fn element_f64(chunk: &[u8], num: Num, big_endian: bool) -> f64 {
    macro_rules! read {
        ($t:ty, $n:literal) => {{
            let b = take::<$n>(chunk);
            (if big_endian {
                <$t>::from_be_bytes(b)
            } else {
                <$t>::from_le_bytes(b)
            }) as f64
        }};
    }
    match num {
        Num::Bool => f64::from(u8::from(chunk.first().is_some_and(|&b| b != 0))),
        Num::I8 => read!(i8, 1),
        Num::U8 => read!(u8, 1),
        Num::I16 => read!(i16, 2),
        Num::U16 => read!(u16, 2),
        Num::I32 => read!(i32, 4),
        Num::U32 => read!(u32, 4),
        Num::I64 => read!(i64, 8),
        Num::U64 => read!(u64, 8),
        Num::F32 => read!(f32, 4),
        Num::F64 => read!(f64, 8),
    }
}

/// One integer element exactly, or `None` when it does not fit in i64.
fn element_i64(chunk: &[u8], num: Num, big_endian: bool) -> Option<i64> {
    match num {
        Num::I64 => {
            let b = take::<8>(chunk);
            Some(if big_endian {
                i64::from_be_bytes(b)
            } else {
                i64::from_le_bytes(b)
            })
        }
        Num::U64 => {
            let b = take::<8>(chunk);
            let v = if big_endian {
                u64::from_be_bytes(b)
            } else {
                u64::from_le_bytes(b)
            };
            i64::try_from(v).ok()
        }
        // Every other integer type fits f64 exactly.
        _ => Some(element_f64(chunk, num, big_endian) as i64),
    }
}

/// What is wrong with a finite value that float32 cannot hold, `shown` as it was written.
fn beyond_float32(shown: impl fmt::Display) -> String {
    format!("value {shown} exceeds the float32 range (±3.4e38)")
}

/// An m x n matrix from packed elements, refusing NaN, infinities and values beyond
/// float32's range.
fn decode_features(
    path: &Path,
    data: &[u8],
    num: Num,
    big_endian: bool,
    (m, n): (usize, usize),
    scale_u8: bool,
) -> Result<Array2<f32>, FormatError> {
    let mut values = Vec::new();
    reserve(
        path,
        &mut values,
        m.saturating_mul(n),
        format_args!("{m} × {n} values as float32"),
    )?;
    for (i, chunk) in data.chunks_exact(num.size()).enumerate() {
        let wide = element_f64(chunk, num, big_endian);
        let v = if scale_u8 && num == Num::U8 {
            f32::from(chunk.first().copied().unwrap_or(0)) / 255.0
        } else {
            wide as f32
        };
        if !v.is_finite() {
            let (row, column) = (i / n + 1, i % n + 1);
            let detail = if wide.is_finite() {
                beyond_float32(format_args!("{wide:e}"))
            } else {
                format!("value {v} is not finite")
            };
            return Err(fail(
                path,
                format_args!("row {row}, column {column}: {detail}"),
            ));
        }
        values.push(v);
    }
    to_array(path, m, n, values)
}

/// Integer labels from packed elements; floats must be whole numbers.
fn decode_int_labels(
    path: &Path,
    data: &[u8],
    num: Num,
    big_endian: bool,
) -> Result<Vec<i64>, FormatError> {
    let mut labels = Vec::with_capacity(data.len() / num.size());
    for (i, chunk) in data.chunks_exact(num.size()).enumerate() {
        let label = if num.is_float() {
            let v = element_f64(chunk, num, big_endian);
            whole_number(v).ok_or_else(|| {
                fail(
                    path,
                    format_args!("label {v} of sample {} is not a whole number", i + 1),
                )
            })?
        } else {
            element_i64(chunk, num, big_endian)
                .ok_or_else(|| fail(path, format_args!("label of sample {} is too large", i + 1)))?
        };
        labels.push(label);
    }
    Ok(labels)
}

// ---------------------------------------------------------------------------------------
// CSV

fn load_csv(
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
    // Spreadsheets that separate cells with semicolons write decimal commas (5,1).
    let decimal_comma = delimiter == ';';
    let mut decimal_commas_seen = false;
    // pandas' to_csv() writes its row index first, under an empty name: not a feature.
    let mut skip = 0usize;
    let mut cells: Vec<Cow<'_, str>> = Vec::new();
    // (line, width, label column) of the first non-blank row, which every row must match.
    let mut first: Option<(usize, usize, Option<usize>)> = None;
    // The first row was read as data, but a word above numeric labels makes it a header;
    // only the rows below can say, so it is decided at the end.
    let mut header_by_label = false;
    let mut values: Vec<f32> = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    let mut label_rows: Vec<usize> = Vec::new();
    let mut m = 0usize;
    let mut n = 0usize;
    for (line_no, line) in numbered_lines(text) {
        if line.trim().is_empty() {
            continue;
        }
        split_csv_line(line, delimiter, &mut cells);
        if first.is_none()
            && options.header != Header::No
            && cells.len() > 1
            && cells
                .first()
                .is_some_and(|c| c.is_empty() || c == "Unnamed: 0")
        {
            skip = 1;
            notes.push(
                "column 1 (unnamed in the header) is a pandas row index, not a feature".into(),
            );
        }
        if skip > 0 && !cells.is_empty() {
            cells.remove(0);
        }
        let label_col = match first {
            None => {
                let width = cells.len();
                // Rows exactly as wide as the features expected have no label column.
                let label_col = if options.csv_has_labels && options.n_features != Some(width) {
                    Some(resolve_label_column(path, options.label_column, width)?)
                } else {
                    None
                };
                n = width.saturating_sub(usize::from(label_col.is_some()));
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
                first = Some((line_no, width, label_col));
                match options.header {
                    Header::Yes => continue,
                    Header::No => {}
                    Header::Auto => {
                        if skip > 0 || is_header_by_cells(&cells, label_col) {
                            notes.push(format!("row {line_no} read as a header"));
                            continue;
                        }
                        header_by_label = label_col.is_some();
                    }
                }
                label_col
            }
            Some((first_line, width, label_col)) => {
                if cells.len() != width {
                    return Err(fail(
                        path,
                        format_args!(
                            "row {line_no} has {} columns, expected {} (as in row {first_line}){}",
                            cells.len() + skip,
                            width + skip,
                            delimiter_hint(line, delimiter)
                        ),
                    ));
                }
                label_col
            }
        };
        for (j, cell) in cells.iter().enumerate() {
            let column = j + 1 + skip;
            if Some(j) == label_col {
                if cell.is_empty() {
                    return Err(fail(
                        path,
                        format_args!("row {line_no}, column {column}: the label is empty"),
                    ));
                }
                labels.push(cell.to_string());
                label_rows.push(line_no);
            } else {
                let decimal = match cell.as_ref() {
                    c if decimal_comma && is_decimal_comma(c) => {
                        decimal_commas_seen = true;
                        Cow::Owned(c.replacen(',', ".", 1))
                    }
                    _ => Cow::Borrowed(cell.as_ref()),
                };
                let value = parse_feature(path, &decimal, line_no, column).map_err(|mut e| {
                    if options.header == Header::No && m == 0 {
                        e.message
                            .push_str("; --header no reads the first row as data");
                    } else {
                        e.message.push_str(&delimiter_hint(cell, delimiter));
                    }
                    e
                })?;
                values.push(value);
            }
        }
        m += 1;
    }
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
    let labels = match first {
        Some((_, _, Some(_))) if options.labels.is_none() => {
            let hint = (options.header == Header::No)
                .then_some("; --header no reads the first row as data");
            Some(infer_labels(path, labels, &label_rows, "row", hint)?)
        }
        _ => None,
    };
    Ok((x, labels))
}

/// The delimiter of a CSV whose delimiter was not given: a comma, unless the first
/// non-blank line has no comma outside quotes but has tabs or semicolons there (then the
/// more frequent of the two).
fn detect_delimiter(text: &str) -> char {
    let line = numbered_lines(text)
        .map(|(_, line)| line)
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
        .all(|(i, (_, c))| c.as_ref() == i.to_string());
    let among_columns = features().all(|(j, c)| c.as_ref() == j.to_string());
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

fn parse_feature(path: &Path, cell: &str, row: usize, column: usize) -> Result<f32, FormatError> {
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

/// Splits one line at `delimiter` into trimmed cells. A cell in double quotes may hold
/// the delimiter and `""` for a quote, as spreadsheets write names; quotes do not span
/// lines.
fn split_csv_line<'a>(line: &'a str, delimiter: char, cells: &mut Vec<Cow<'a, str>>) {
    cells.clear();
    if !line.contains('"') {
        cells.extend(line.split(delimiter).map(|c| Cow::Borrowed(c.trim())));
        return;
    }
    let mut rest = line;
    loop {
        let start = rest.trim_start();
        let Some(quoted) = start.strip_prefix('"') else {
            match start.split_once(delimiter) {
                Some((cell, after)) => {
                    cells.push(Cow::Borrowed(cell.trim()));
                    rest = after;
                    continue;
                }
                None => {
                    cells.push(Cow::Borrowed(start.trim()));
                    return;
                }
            }
        };
        let mut cell = String::new();
        let mut after = "";
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            if c != '"' {
                cell.push(c);
                continue;
            }
            let tail = quoted.get(i + 1..).unwrap_or_default();
            if tail.starts_with('"') {
                cell.push('"');
                chars.next();
            } else {
                after = tail;
                break;
            }
        }
        // Anything between the closing quote and the delimiter is kept rather than refused.
        match after.split_once(delimiter) {
            Some((junk, next)) => {
                cell.push_str(junk.trim());
                cells.push(Cow::Owned(cell));
                rest = next;
            }
            None => {
                cell.push_str(after.trim());
                cells.push(Cow::Owned(cell));
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// NPY

/// What an NPY header says the elements are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NpyType {
    Num(Num, bool),
    /// `<U{n}`: n UTF-32 code units, NUL padded.
    Unicode(usize, bool),
    /// `|S{n}`: n bytes, NUL padded.
    Bytes(usize),
    Object,
}

impl NpyType {
    fn size(self) -> Option<usize> {
        match self {
            NpyType::Num(num, _) => Some(num.size()),
            NpyType::Unicode(chars, _) => chars.checked_mul(4),
            NpyType::Bytes(n) => Some(n),
            NpyType::Object => None,
        }
    }

    fn name(self) -> String {
        match self {
            NpyType::Num(num, _) => num.name().to_string(),
            NpyType::Unicode(n, _) => format!("str{n}"),
            NpyType::Bytes(n) => format!("bytes{n}"),
            NpyType::Object => "object".to_string(),
        }
    }
}

struct Npy<'a> {
    descr: String,
    dtype: Option<NpyType>,
    fortran_order: bool,
    shape: Vec<usize>,
    data: &'a [u8],
}

fn parse_npy<'a>(path: &Path, bytes: &'a [u8]) -> Result<Npy<'a>, FormatError> {
    let Some(after_magic) = bytes.strip_prefix(b"\x93NUMPY") else {
        return Err(fail(
            path,
            "not an NPY file (it does not start with \\x93NUMPY); save it with numpy.save",
        ));
    };
    let truncated = || fail(path, "is truncated inside its NPY header");
    let (major, minor) = match after_magic {
        [major, minor, ..] => (*major, *minor),
        _ => return Err(truncated()),
    };
    let (header_len, header_start) = match major {
        1 => {
            let b = after_magic.get(2..4).ok_or_else(truncated)?;
            (usize::from(u16::from_le_bytes(take::<2>(b))), 10usize)
        }
        2 | 3 => {
            let b = after_magic.get(2..6).ok_or_else(truncated)?;
            let len = usize::try_from(u32::from_le_bytes(take::<4>(b))).map_err(|_| truncated())?;
            (len, 12usize)
        }
        _ => {
            return Err(fail(
                path,
                format_args!(
                    "NPY version {major}.{minor} is not supported (only 1.0, 2.0 and 3.0)"
                ),
            ));
        }
    };
    let header_end = header_start.checked_add(header_len).ok_or_else(truncated)?;
    let header = bytes.get(header_start..header_end).ok_or_else(truncated)?;
    let data = bytes.get(header_end..).unwrap_or_default();
    let header = std::str::from_utf8(header)
        .map_err(|_| fail(path, "has an NPY header that is not text"))?;
    let bad_header = |why: &str| {
        // Quoted and cut short: the header is the file's bytes, newlines and all.
        let shown: String = header.trim().chars().take(160).collect();
        fail(
            path,
            format_args!("has a bad NPY header ({why}): {shown:?}"),
        )
    };
    let dict = match PyParser::new(header).parse_all() {
        Ok(Py::Dict(entries)) => entries,
        Ok(_) => return Err(bad_header("not a dict")),
        Err(why) => return Err(bad_header(why)),
    };
    let get = |key: &str| {
        dict.iter()
            .find(|(k, _)| matches!(k, Py::Str(s) if s == key))
            .map(|(_, v)| v)
    };
    let (descr, dtype) = match get("descr") {
        // Kept for messages, so control characters are escaped and the length capped.
        Some(Py::Str(descr)) => (descr.escape_debug().take(64).collect(), parse_descr(descr)),
        Some(Py::List(_)) => {
            return Err(fail(
                path,
                "holds a structured array (record dtype); save a plain numeric array",
            ));
        }
        _ => return Err(bad_header("no 'descr' string")),
    };
    let fortran_order = match get("fortran_order") {
        Some(Py::Bool(b)) => *b,
        _ => return Err(bad_header("no 'fortran_order' True or False")),
    };
    let shape = match get("shape") {
        Some(Py::Tuple(dims)) => dims
            .iter()
            .map(|d| match d {
                Py::Int(v) => usize::try_from(*v).ok(),
                _ => None,
            })
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| bad_header("'shape' is not a tuple of sizes"))?,
        _ => return Err(bad_header("no 'shape' tuple")),
    };
    if dtype == Some(NpyType::Object) {
        return Err(fail(
            path,
            "holds Python objects (pickled); save a numeric array",
        ));
    }
    Ok(Npy {
        descr,
        dtype,
        fortran_order,
        shape,
        data,
    })
}

/// The element type of a NumPy type string like `<f4`, `|u1`, `<U7`; `None` for types
/// this module does not read.
fn parse_descr(descr: &str) -> Option<NpyType> {
    let (big_endian, rest) = match descr.as_bytes().first() {
        Some(b'<') | Some(b'=') => (false, descr.get(1..)?),
        Some(b'>') => (true, descr.get(1..)?),
        Some(b'|') => (false, descr.get(1..)?),
        _ => (false, descr),
    };
    let mut chars = rest.chars();
    let kind = chars.next()?;
    let size = chars.as_str();
    let num = match (kind, size) {
        ('O', _) => return Some(NpyType::Object),
        ('U', n) => return n.parse().ok().map(|n| NpyType::Unicode(n, big_endian)),
        ('S', n) => return n.parse().ok().map(NpyType::Bytes),
        ('b', "1") | ('?', "") => Num::Bool,
        ('i', "1") => Num::I8,
        ('u', "1") => Num::U8,
        ('i', "2") => Num::I16,
        ('u', "2") => Num::U16,
        ('i', "4") => Num::I32,
        ('u', "4") => Num::U32,
        ('i', "8") => Num::I64,
        ('u', "8") => Num::U64,
        ('f', "4") => Num::F32,
        ('f', "8") => Num::F64,
        _ => return None,
    };
    Some(NpyType::Num(num, big_endian))
}

/// Fails unless the data length is what the header's shape and dtype promise.
fn npy_data_check(path: &Path, npy: &Npy<'_>, dtype: NpyType) -> Result<(), FormatError> {
    let expected = npy_declared_bytes(path, &npy.shape, dtype)?;
    check_data_len(path, &npy.shape, &dtype.name(), expected, npy.data.len())
}

/// The bytes of data an NPY header declares for `shape` elements of `dtype`.
fn npy_declared_bytes(path: &Path, shape: &[usize], dtype: NpyType) -> Result<usize, FormatError> {
    let too_large = || {
        fail(
            path,
            format_args!("has a header shape {} too large to read", shape_text(shape)),
        )
    };
    let size = dtype.size().ok_or_else(too_large)?;
    checked_product(shape)
        .and_then(|count| count.checked_mul(size))
        .ok_or_else(too_large)
}

/// The preamble of a version-1.0 `.npy` file holding a C-order array of NumPy type
/// `descr` (`<f4`, `<i4`, …) and `shape`, padded to a multiple of 64 bytes; the raw
/// little-endian data follows it.
pub fn npy_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': False, 'shape': {}, }}",
        shape_text(shape)
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes
}

/// The element types a features `.npy` may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpyElement {
    /// float32.
    F32,
    /// float64, converted to float32 as it is read.
    F64,
    /// uint8, read as the values 0 to 255 (8-bit pixels, counts).
    U8,
}

impl NpyElement {
    /// Bytes per value.
    pub fn size(self) -> usize {
        match self {
            NpyElement::F32 => 4,
            NpyElement::F64 => 8,
            NpyElement::U8 => 1,
        }
    }

    /// NumPy's name: `float32`, `float64` or `uint8`.
    pub fn name(self) -> &'static str {
        match self {
            NpyElement::F32 => "float32",
            NpyElement::F64 => "float64",
            NpyElement::U8 => "uint8",
        }
    }
}

/// Where the features of a `.npy` file lie: `m` rows of `n` values starting at byte
/// `offset`, each an `element`, big- or little-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NpyLayout {
    /// Rows.
    pub m: usize,
    /// Features per row.
    pub n: usize,
    /// Byte offset of the first value.
    pub offset: usize,
    /// The type of each value.
    pub element: NpyElement,
    /// Values are big-endian.
    pub big_endian: bool,
}

/// Checks a features `.npy` (the whole file's bytes, or a mapping of them) and says where
/// its values lie, without decoding them.
pub fn npy_layout(path: &Path, bytes: &[u8]) -> Result<NpyLayout, FormatError> {
    let npy = parse_npy(path, bytes)?;
    let (num, big_endian, m, n) = npy_feature_shape(path, &npy)?;
    let element = match num {
        Num::F64 => NpyElement::F64,
        Num::U8 => NpyElement::U8,
        _ => NpyElement::F32,
    };
    Ok(NpyLayout {
        m,
        n,
        offset: bytes.len() - npy.data.len(),
        element,
        big_endian,
    })
}

fn npy_features(path: &Path, bytes: &[u8]) -> Result<Array2<f32>, FormatError> {
    let npy = parse_npy(path, bytes)?;
    let (num, big_endian, m, n) = npy_feature_shape(path, &npy)?;
    decode_features(path, npy.data, num, big_endian, (m, n), false)
}

/// The element type and (m, n) of a features `.npy`, with every check but the values'.
/// The element type is float32, float64 or uint8 (the values 0 to 255, not scaled: 8-bit
/// pixels as `--x-storage u8` stores them exactly).
fn npy_feature_shape(path: &Path, npy: &Npy<'_>) -> Result<(Num, bool, usize, usize), FormatError> {
    let (num, big_endian) = match npy.dtype {
        Some(NpyType::Num(num, big_endian)) if num.is_float() || num == Num::U8 => {
            (num, big_endian)
        }
        Some(dtype @ NpyType::Num(..)) => {
            return Err(fail(
                path,
                format_args!(
                    "has dtype '{}' ({}); features must be float32, float64 or uint8 (x.astype(np.float32))",
                    npy.descr,
                    dtype.name()
                ),
            ));
        }
        _ => {
            return Err(fail(
                path,
                format_args!(
                    "has dtype '{}', which is not supported for features; save float32, float64 or uint8",
                    npy.descr
                ),
            ));
        }
    };
    let (m, n) = match npy.shape.as_slice() {
        [] => {
            return Err(fail(
                path,
                "holds a single number (shape ()); features need a 2-D array (m, n)",
            ));
        }
        [m] => {
            return Err(fail(
                path,
                format_args!(
                    "is 1-D with shape ({m},); features need a 2-D array (m, n) (for one feature, save x.reshape(-1, 1))"
                ),
            ));
        }
        [m, n] => (*m, *n),
        // Flattening (m, h, w) images would guess at what the user meant; say how instead.
        shape => {
            return Err(fail(
                path,
                format_args!(
                    "has shape {} but X must be 2-D (m, n); reshape it with x.reshape(len(x), -1) to make each sample one row",
                    shape_text(shape)
                ),
            ));
        }
    };
    // Fortran order only changes the layout when at least two dimensions exceed 1.
    if npy.fortran_order && npy.shape.iter().filter(|&&d| d > 1).count() > 1 {
        return Err(fail(
            path,
            "is in Fortran order; save it with np.save(path, np.ascontiguousarray(x))",
        ));
    }
    npy_data_check(path, npy, NpyType::Num(num, big_endian))?;
    check_not_empty(path, m, n)?;
    Ok((num, big_endian, m, n))
}

fn npy_labels(path: &Path, bytes: &[u8]) -> Result<RawLabels, FormatError> {
    let npy = parse_npy(path, bytes)?;
    let Some(dtype) = npy.dtype else {
        return Err(fail(
            path,
            format_args!(
                "has dtype '{}', which is not supported for labels; save integers or strings",
                npy.descr
            ),
        ));
    };
    // A column vector (m, 1) is common from code that keeps y 2-D; it reads the same.
    match npy.shape.as_slice() {
        [_] | [_, 1] => {}
        _ => {
            return Err(fail(
                path,
                format_args!(
                    "has shape {}; labels need a 1-D array (m,)",
                    shape_text(&npy.shape)
                ),
            ));
        }
    }
    npy_data_check(path, &npy, dtype)?;
    let labels = npy_label_values(path, &npy, dtype)?;
    if let RawLabels::Strings(names) = &labels
        && let Some(i) = names.iter().position(String::is_empty)
    {
        return Err(fail(
            path,
            format_args!(
                "label of sample {} is empty; every sample needs a label",
                i + 1
            ),
        ));
    }
    Ok(labels)
}

fn npy_label_values(path: &Path, npy: &Npy<'_>, dtype: NpyType) -> Result<RawLabels, FormatError> {
    match dtype {
        NpyType::Num(num, big_endian) => Ok(RawLabels::Ints(decode_int_labels(
            path, npy.data, num, big_endian,
        )?)),
        NpyType::Unicode(chars, big_endian) => {
            let mut labels = Vec::new();
            if chars > 0 {
                for (i, item) in npy.data.chunks_exact(chars * 4).enumerate() {
                    let mut s = String::new();
                    for unit in item.chunks_exact(4) {
                        let b = take::<4>(unit);
                        let code = if big_endian {
                            u32::from_be_bytes(b)
                        } else {
                            u32::from_le_bytes(b)
                        };
                        if code == 0 {
                            break;
                        }
                        let c = char::from_u32(code).ok_or_else(|| {
                            fail(
                                path,
                                format_args!("label of sample {} is not valid text", i + 1),
                            )
                        })?;
                        s.push(c);
                    }
                    labels.push(s);
                }
            } else {
                zero_width_labels(path, &npy.shape)?;
            }
            Ok(RawLabels::Strings(labels))
        }
        NpyType::Bytes(width) => {
            let mut labels = Vec::new();
            if width > 0 {
                for item in npy.data.chunks_exact(width) {
                    let end = item.iter().position(|&b| b == 0).unwrap_or(item.len());
                    labels.push(
                        String::from_utf8_lossy(item.get(..end).unwrap_or_default()).into_owned(),
                    );
                }
            } else {
                zero_width_labels(path, &npy.shape)?;
            }
            Ok(RawLabels::Strings(labels))
        }
        NpyType::Object => Err(fail(
            path,
            "holds Python objects (pickled); save a numeric array",
        )),
    }
}

/// Strings of width 0 (`<U0`, `|S0`) are all empty and take no bytes, so their number is
/// whatever the header says; any at all is refused before one is made.
fn zero_width_labels(path: &Path, shape: &[usize]) -> Result<(), FormatError> {
    if shape.first().is_some_and(|&m| m > 0) {
        return Err(fail(
            path,
            "label of sample 1 is empty; every sample needs a label",
        ));
    }
    Ok(())
}

/// The Python literals an NPY header is written in.
#[derive(Debug, Clone, PartialEq)]
enum Py {
    Str(String),
    Int(u64),
    Bool(bool),
    None,
    Tuple(Vec<Py>),
    List(Vec<Py>),
    Dict(Vec<(Py, Py)>),
}

/// A parser for the few Python literals `numpy.save` writes. Nesting is bounded so a
/// hostile header cannot exhaust the stack.
struct PyParser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> PyParser<'a> {
    const MAX_DEPTH: usize = 32;

    fn new(s: &'a str) -> Self {
        PyParser {
            s: s.as_bytes(),
            pos: 0,
            depth: 0,
        }
    }

    fn parse_all(mut self) -> Result<Py, &'static str> {
        let value = self.value()?;
        self.skip_space();
        if self.pos < self.s.len() {
            return Err("text after the dict");
        }
        Ok(value)
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Result<Py, &'static str> {
        self.skip_space();
        match self.peek() {
            Some(b'{') => self.sequence(b'}', true).map(|items| {
                let mut items = items.into_iter();
                let mut pairs = Vec::new();
                while let (Some(key), Some(value)) = (items.next(), items.next()) {
                    pairs.push((key, value));
                }
                Py::Dict(pairs)
            }),
            Some(b'(') => self.sequence(b')', false).map(Py::Tuple),
            Some(b'[') => self.sequence(b']', false).map(Py::List),
            Some(q @ (b'\'' | b'"')) => self.string(q),
            Some(b'0'..=b'9') => self.int(),
            Some(_) => self.word(),
            None => Err("unexpected end"),
        }
    }

    /// Comma-separated items up to `close`, a trailing comma allowed; for a dict, each
    /// item is followed by `:` and a value, and both go into the list.
    fn sequence(&mut self, close: u8, dict: bool) -> Result<Vec<Py>, &'static str> {
        self.depth += 1;
        if self.depth > Self::MAX_DEPTH {
            return Err("nested too deeply");
        }
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_space();
            if self.peek() == Some(close) {
                self.pos += 1;
                break;
            }
            items.push(self.value()?);
            if dict {
                self.skip_space();
                if self.peek() != Some(b':') {
                    return Err("a dict key without ':'");
                }
                self.pos += 1;
                items.push(self.value()?);
            }
            self.skip_space();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(c) if c == close => {}
                _ => return Err("a missing comma or bracket"),
            }
        }
        self.depth -= 1;
        Ok(items)
    }

    fn string(&mut self, quote: u8) -> Result<Py, &'static str> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err("an unterminated string"),
                Some(b'\\') => {
                    self.pos += 1;
                    out.push(self.peek().ok_or("an unterminated string")?);
                }
                Some(c) if c == quote => {
                    self.pos += 1;
                    break;
                }
                Some(c) => out.push(c),
            }
            self.pos += 1;
        }
        String::from_utf8(out)
            .map(Py::Str)
            .map_err(|_| "a string that is not text")
    }

    fn int(&mut self) -> Result<Py, &'static str> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits = std::str::from_utf8(self.s.get(start..self.pos).unwrap_or_default())
            .map_err(|_| "a bad number")?;
        let value = digits.parse().map_err(|_| "a number too large")?;
        // Python 2 wrote shapes like (3L, 4L).
        if self.peek() == Some(b'L') {
            self.pos += 1;
        }
        Ok(Py::Int(value))
    }

    fn word(&mut self) -> Result<Py, &'static str> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            self.pos += 1;
        }
        match self.s.get(start..self.pos) {
            Some(b"True") => Ok(Py::Bool(true)),
            Some(b"False") => Ok(Py::Bool(false)),
            Some(b"None") => Ok(Py::None),
            _ => Err("an unexpected token"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// IDX

struct Idx<'a> {
    num: Num,
    dims: Vec<usize>,
    data: &'a [u8],
}

/// The element type an IDX file's first four bytes (`0 0 type ndims`) name, if they are
/// IDX magic.
fn idx_magic(bytes: &[u8]) -> Option<Num> {
    match bytes.get(..4)? {
        [0, 0, ty, ndims] if *ndims > 0 => match ty {
            0x08 => Some(Num::U8),
            0x09 => Some(Num::I8),
            0x0B => Some(Num::I16),
            0x0C => Some(Num::I32),
            0x0D => Some(Num::F32),
            0x0E => Some(Num::F64),
            _ => None,
        },
        _ => None,
    }
}

/// The sizes of an IDX header's dimensions (big-endian u32 each).
fn idx_dims(dim_bytes: &[u8]) -> Vec<usize> {
    dim_bytes
        .chunks_exact(4)
        .map(|b| usize::try_from(u32::from_be_bytes(take::<4>(b))).unwrap_or(usize::MAX))
        .collect()
}

/// The bytes of data an IDX header declares for `dims` elements of `num`.
fn idx_declared_bytes(path: &Path, dims: &[usize], num: Num) -> Result<usize, FormatError> {
    checked_product(dims)
        .and_then(|count| count.checked_mul(num.size()))
        .ok_or_else(|| {
            fail(
                path,
                format_args!("has a header shape {} too large to read", shape_text(dims)),
            )
        })
}

fn parse_idx<'a>(path: &Path, bytes: &'a [u8]) -> Result<Idx<'a>, FormatError> {
    let magic = bytes.get(..4).unwrap_or(bytes);
    let (Some(num), Some(&ndims)) = (idx_magic(magic), magic.get(3)) else {
        let hex: Vec<String> = magic.iter().map(|b| format!("{b:02x}")).collect();
        return Err(fail(
            path,
            format_args!("not an IDX file (magic bytes {})", hex.join(" ")),
        ));
    };
    let header_len = 4 + 4 * usize::from(ndims);
    let Some(dim_bytes) = bytes.get(4..header_len) else {
        return Err(fail(
            path,
            format_args!(
                "is truncated: its IDX header needs {header_len} bytes, file has {}",
                bytes.len()
            ),
        ));
    };
    let dims = idx_dims(dim_bytes);
    let data = bytes.get(header_len..).unwrap_or_default();
    let expected = idx_declared_bytes(path, &dims, num)?;
    check_data_len(path, &dims, num.name(), expected, data.len())?;
    Ok(Idx { num, dims, data })
}

fn idx_features(path: &Path, bytes: &[u8]) -> Result<Array2<f32>, FormatError> {
    let idx = parse_idx(path, bytes)?;
    let (m, n) = match idx.dims.as_slice() {
        [m, rest @ ..] if !rest.is_empty() => (*m, checked_product(rest).unwrap_or(usize::MAX)),
        _ => {
            return Err(fail(
                path,
                "is a 1-D IDX file (labels?); features need 2 or more dimensions (pass label files with --labels)",
            ));
        }
    };
    check_not_empty(path, m, n)?;
    decode_features(path, idx.data, idx.num, true, (m, n), true)
}

fn idx_labels(path: &Path, bytes: &[u8]) -> Result<RawLabels, FormatError> {
    let idx = parse_idx(path, bytes)?;
    match idx.dims.as_slice() {
        [_] | [_, 1] => {}
        _ => {
            return Err(fail(
                path,
                format_args!(
                    "has shape {}; a labels file has 1 dimension (idx1)",
                    shape_text(&idx.dims)
                ),
            ));
        }
    }
    Ok(RawLabels::Ints(decode_int_labels(
        path, idx.data, idx.num, true,
    )?))
}

// ---------------------------------------------------------------------------------------
// LIBSVM

/// Dense values above which a LIBSVM file must store at least 1/256 of them.
const MAX_SPARSE_EXPANSION: usize = 1 << 26;

fn load_libsvm(
    path: &Path,
    bytes: &[u8],
    options: &LoadOptions,
) -> Result<(Array2<f32>, Option<RawLabels>), FormatError> {
    let text = as_text(path, bytes)?;
    let mut labels: Vec<String> = Vec::new();
    let mut label_lines: Vec<usize> = Vec::new();
    let mut labelled_line: Option<usize> = None;
    let mut unlabelled_line: Option<usize> = None;
    // Sparse rows: row r's entries are cols/vals[row_end[r-1]..row_end[r]].
    let mut row_end: Vec<usize> = Vec::new();
    let mut cols: Vec<usize> = Vec::new();
    let mut vals: Vec<f32> = Vec::new();
    let mut width = 0usize;
    for (line_no, line) in numbered_lines(text) {
        let content = line.split('#').next().unwrap_or_default().trim();
        if content.is_empty() {
            continue;
        }
        let mut tokens = content.split_ascii_whitespace().peekable();
        // A line that starts with index:value has no label, as in files made for predicting.
        match tokens.peek() {
            Some(first) if !first.contains(':') => {
                labels.push((*first).to_string());
                label_lines.push(line_no);
                labelled_line.get_or_insert(line_no);
                tokens.next();
            }
            _ => {
                unlabelled_line.get_or_insert(line_no);
            }
        }
        let mut previous: Option<(usize, usize)> = None;
        for token in tokens {
            let Some((index_text, value_text)) = token.split_once(':') else {
                return Err(fail(
                    path,
                    format_args!("line {line_no}: {token:?} is not an index:value pair"),
                ));
            };
            // SVMlight ranking files tag rows with a query id, which is not a feature.
            if index_text == "qid" {
                continue;
            }
            let index: usize = index_text.parse().map_err(|_| {
                fail(
                    path,
                    format_args!(
                        "line {line_no}: {token:?} has a bad feature index {index_text:?}"
                    ),
                )
            })?;
            let column = if options.zero_based {
                index
            } else {
                index.checked_sub(1).ok_or_else(|| {
                    fail(
                        path,
                        format_args!(
                            "feature index 0 on line {line_no}; LIBSVM indices start at 1 (use --zero-based for 0-based files)"
                        ),
                    )
                })?
            };
            if let Some((prev_index, prev_column)) = previous {
                if column <= prev_column {
                    return Err(fail(
                        path,
                        format_args!(
                            "line {line_no}: feature index {index} comes after {prev_index}; indices must increase within a line"
                        ),
                    ));
                }
            }
            previous = Some((index, column));
            if let Some(n) = options.n_features {
                if column >= n {
                    let (low, high) = if options.zero_based {
                        (0, n.saturating_sub(1))
                    } else {
                        (1, n)
                    };
                    return Err(fail(
                        path,
                        format_args!(
                            "line {line_no}: feature index {index} is beyond the {n} features expected (indices {low} to {high})"
                        ),
                    ));
                }
            }
            let value = match value_text.parse::<f32>() {
                Ok(v) if v.is_finite() => v,
                Ok(_) if value_text.parse::<f64>().is_ok_and(f64::is_finite) => {
                    return Err(fail(
                        path,
                        format_args!(
                            "line {line_no}: {}",
                            beyond_float32(format_args!("{value_text} in {token:?}"))
                        ),
                    ));
                }
                Ok(v) => {
                    return Err(fail(
                        path,
                        format_args!("line {line_no}: value {v} in {token:?} is not finite"),
                    ));
                }
                Err(_) => {
                    return Err(fail(
                        path,
                        format_args!("line {line_no}: {token:?} has a bad value {value_text:?}"),
                    ));
                }
            };
            width = width.max(column.saturating_add(1));
            cols.push(column);
            vals.push(value);
        }
        row_end.push(cols.len());
    }
    if let (Some(with), Some(without)) = (labelled_line, unlabelled_line) {
        return Err(fail(
            path,
            format_args!(
                "line {without} has no label but line {with} has one; either every line starts with a label or none does"
            ),
        ));
    }
    let m = row_end.len();
    let n = options.n_features.unwrap_or(width);
    check_not_empty(path, m, n)?;
    let too_large = || {
        fail(
            path,
            format_args!("{m} rows of {n} features are too large to hold in memory"),
        )
    };
    let total = m.checked_mul(n).ok_or_else(too_large)?;
    // Training is dense: a file whose largest index makes the dense matrix huge while it
    // stores few values is almost surely a typo in an index, not data to expand.
    if options.n_features.is_none() && total > MAX_SPARSE_EXPANSION.max(256 * cols.len()) {
        return Err(fail(
            path,
            format_args!(
                "the largest feature index, {width}, makes the dense matrix {m} × {n} ({}) although the file stores only {} values; check that index (training needs dense data)",
                crate::gpu::human_bytes(total as u64 * 4),
                cols.len()
            ),
        ));
    }
    let mut dense: Vec<f32> = Vec::new();
    dense.try_reserve_exact(total).map_err(|_| too_large())?;
    dense.resize(total, 0.0);
    let mut start = 0;
    for (row, &end) in row_end.iter().enumerate() {
        let entries = cols.get(start..end).unwrap_or_default().iter();
        for (&column, &value) in entries.zip(vals.get(start..end).unwrap_or_default()) {
            if let Some(slot) = dense.get_mut(row * n + column) {
                *slot = value;
            }
        }
        start = end;
    }
    let x = to_array(path, m, n, dense)?;
    let labels = match labelled_line {
        Some(_) => Some(infer_labels(path, labels, &label_lines, "line", None)?),
        None => None,
    };
    Ok((x, labels))
}

// ---------------------------------------------------------------------------------------
// Separate label files

/// Reads a labels file on its own: an integer (or string) `.npy` of shape (m,), an IDX
/// file of one dimension, or text with one label per non-blank line.
pub fn load_labels(path: &Path) -> Result<RawLabels, FormatError> {
    load_labels_file(path)
}

fn load_labels_file(path: &Path) -> Result<RawLabels, FormatError> {
    if is_stdin(path) {
        let input = read_stdin(path, None)?;
        let format = (input.format == Format::Npy).then_some(Format::Npy);
        return labels_from_bytes(format, path, &input.bytes);
    }
    let format = Format::from_path(path);
    let bytes = read_file(path, Contents::of(format))?;
    labels_from_bytes(format, path, &bytes)
}

/// Per-sample weights from a float `.npy` of shape (m,) or (m, 1), or a text file with
/// one number per line. Each weight must be finite and ≥ 0, and there must be `m` of them
/// (`data` names the data file in that message).
pub fn load_weights(path: &Path, m: usize, data: &Path) -> Result<Vec<f32>, FormatError> {
    let format = Format::from_path(path);
    let bytes = read_file(path, Contents::of(format))?;
    let weights: Vec<f32> = if format == Some(Format::Npy) {
        let npy = parse_npy(path, &bytes)?;
        let rows = match npy.shape.as_slice() {
            [rows] | [rows, 1] => *rows,
            _ => {
                return Err(fail(
                    path,
                    format_args!(
                        "has shape {}; sample weights need shape (m,)",
                        shape_text(&npy.shape)
                    ),
                ));
            }
        };
        let (num, big_endian) = match npy.dtype {
            Some(NpyType::Num(num, big_endian)) if num.is_float() => (num, big_endian),
            _ => {
                return Err(fail(
                    path,
                    format_args!(
                        "has dtype '{}'; sample weights must be float32 or float64",
                        npy.descr
                    ),
                ));
            }
        };
        npy_data_check(path, &npy, NpyType::Num(num, big_endian))?;
        decode_features(path, npy.data, num, big_endian, (rows, 1), false)?
            .into_raw_vec_and_offset()
            .0
    } else {
        let text = as_text(path, &bytes)?;
        let mut weights = Vec::new();
        for (line, cell) in numbered_lines(text)
            .map(|(l, c)| (l, c.trim()))
            .filter(|(_, c)| !c.is_empty())
        {
            weights.push(parse_feature(path, cell, line, 1)?);
        }
        weights
    };
    if let Some((i, w)) = weights
        .iter()
        .enumerate()
        .find(|(_, w)| !(w.is_finite() && **w >= 0.0))
    {
        return Err(fail(
            path,
            format_args!("weight {w} of sample {} is not a finite number ≥ 0", i + 1),
        ));
    }
    if weights.len() != m {
        return Err(FormatError {
            path: path.to_path_buf(),
            message: format!(
                "{} has {} weights but {} has {m} rows",
                path.display(),
                weights.len(),
                data.display()
            ),
        });
    }
    Ok(weights)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh directory under the system temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("softmax-formats-{}-{tag}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn labelled() -> LoadOptions {
        LoadOptions {
            csv_has_labels: true,
            ..LoadOptions::default()
        }
    }

    /// An NPY file as numpy.save writes it (header padded to 64 bytes).
    fn npy(version: u8, descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
        let fortran = if fortran { "True" } else { "False" };
        // A structured descr is a list literal; plain ones are quoted strings.
        let descr = if descr.starts_with('[') {
            descr.to_string()
        } else {
            format!("'{descr}'")
        };
        let mut header =
            format!("{{'descr': {descr}, 'fortran_order': {fortran}, 'shape': {shape}, }}");
        let prefix = if version == 1 { 10 } else { 12 };
        while (prefix + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY".to_vec();
        out.extend([version, 0]);
        if version == 1 {
            out.extend((header.len() as u16).to_le_bytes());
        } else {
            out.extend((header.len() as u32).to_le_bytes());
        }
        out.extend(header.as_bytes());
        out.extend(data);
        out
    }

    fn idx(ty: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, ty, dims.len() as u8];
        for d in dims {
            out.extend(d.to_be_bytes());
        }
        out.extend(data);
        out
    }

    fn f32_le(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn load_err(path: &Path, options: &LoadOptions) -> String {
        match load(path, options) {
            Ok(loaded) => panic!("expected an error, got {:?}", loaded.x.dim()),
            Err(e) => {
                assert_eq!(e.path, path);
                e.to_string()
            }
        }
    }

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
        for format in [Format::Csv, Format::Npy, Format::Idx, Format::Libsvm] {
            assert_eq!(format.name().parse::<Format>(), Ok(format));
            assert_eq!(format.to_string(), format.name());
        }
        assert_eq!("LIBSVM".parse::<Format>(), Ok(Format::Libsvm));
        let err = "parquet".parse::<Format>().unwrap_err();
        assert!(
            err.contains("parquet") && err.contains("csv, npy, idx and libsvm"),
            "{err}"
        );

        assert_eq!("last".parse::<LabelColumn>(), Ok(LabelColumn::Last));
        assert_eq!("First".parse::<LabelColumn>(), Ok(LabelColumn::First));
        assert_eq!("3".parse::<LabelColumn>(), Ok(LabelColumn::Index(3)));
        let err = "-1".parse::<LabelColumn>().unwrap_err();
        assert!(err.contains("\"-1\"") && err.contains("first"), "{err}");
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
    fn npy_f4_and_f8() {
        let dir = TempDir::new("npy");
        let values = [1.0f32, 2.0, 3.0, 4.5, -5.0, 6.0];
        let path = dir.write("x.npy", npy(1, "<f4", false, "(2, 3)", &f32_le(&values)));
        let loaded = load(&path, &LoadOptions::default()).unwrap();
        assert_eq!(loaded.x.dim(), (2, 3));
        assert_eq!(loaded.x.as_slice().unwrap(), &values);
        assert_eq!(loaded.labels, None);

        let f8: Vec<u8> = [0.25f64, -1.5, 1e-3, 8.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let path = dir.write("x8.npy", npy(2, "<f8", false, "(2, 2)", &f8));
        let loaded = load(&path, &LoadOptions::default()).unwrap();
        assert_eq!(loaded.x.as_slice().unwrap(), &[0.25, -1.5, 1e-3, 8.0]);

        // A Fortran-order column is fine.
        let path = dir.write(
            "col.npy",
            npy(1, "<f4", true, "(3, 1)", &f32_le(&[1.0, 2.0, 3.0])),
        );
        assert_eq!(
            load(&path, &LoadOptions::default()).unwrap().x.dim(),
            (3, 1)
        );
    }

    #[test]
    fn npy_int_labels() {
        let dir = TempDir::new("npy-labels");
        let x = dir.write(
            "x.npy",
            npy(1, "<f4", false, "(3, 1)", &f32_le(&[1.0, 2.0, 3.0])),
        );
        let y8: Vec<u8> = [2i64, 0, 1].iter().flat_map(|v| v.to_le_bytes()).collect();
        for (name, bytes) in [
            ("y.npy", npy(1, "<i8", false, "(3,)", &y8)),
            ("y1.npy", npy(1, "|u1", false, "(3,)", &[2, 0, 1])),
            ("ycol.npy", npy(1, "<i8", false, "(3, 1)", &y8)),
        ] {
            let labels = dir.write(name, bytes);
            let options = LoadOptions {
                labels: Some(labels),
                require_labels: true,
                ..LoadOptions::default()
            };
            let loaded = load(&x, &options).unwrap();
            assert_eq!(
                loaded.labels,
                Some(RawLabels::Ints(vec![2, 0, 1])),
                "{name}"
            );
        }

        // String labels as numpy saves them: UTF-32, NUL padded.
        let mut u = Vec::new();
        for s in ["cat", "ox", "dog"] {
            let mut chars: Vec<u32> = s.chars().map(u32::from).collect();
            chars.resize(3, 0);
            u.extend(chars.iter().flat_map(|c| c.to_le_bytes()));
        }
        let labels = dir.write("names.npy", npy(1, "<U3", false, "(3,)", &u));
        let options = LoadOptions {
            labels: Some(labels),
            ..LoadOptions::default()
        };
        let loaded = load(&x, &options).unwrap();
        assert_eq!(
            loaded.labels,
            Some(RawLabels::Strings(vec![
                "cat".into(),
                "ox".into(),
                "dog".into()
            ]))
        );

        let labels = dir.write(
            "half.npy",
            npy(
                1,
                "<f8",
                false,
                "(3,)",
                &[0.5f64, 1.0, 2.0]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect::<Vec<u8>>(),
            ),
        );
        let options = LoadOptions {
            labels: Some(labels),
            ..LoadOptions::default()
        };
        let err = load_err_at(&x, &options);
        assert!(
            err.contains("half.npy: label 0.5 of sample 1 is not a whole number"),
            "{err}"
        );
    }

    /// The message of an error that names a file other than the data file.
    fn load_err_at(path: &Path, options: &LoadOptions) -> String {
        match load(path, options) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn npy_bad_dtypes() {
        let dir = TempDir::new("npy-dtype");
        let path = dir.write("x.npy", npy(1, "<i4", false, "(1, 2)", &[0; 8]));
        let err = load_err(&path, &LoadOptions::default());
        assert!(
            err.contains("x.npy: has dtype '<i4' (int32)") && err.contains("float32"),
            "{err}"
        );

        let path = dir.write("obj.npy", npy(1, "|O", false, "(2, 2)", b"\x80\x02pickle"));
        let err = load_err(&path, &LoadOptions::default());
        assert!(
            err.contains("obj.npy: holds Python objects (pickled); save a numeric array"),
            "{err}"
        );

        let path = dir.write("c.npy", npy(1, "<c8", false, "(1, 1)", &[0; 8]));
        let err = load_err(&path, &LoadOptions::default());
        assert!(err.contains("'<c8'"), "{err}");

        let path = dir.write("rec.npy", npy(1, "[('a', '<f4')]", false, "(1,)", &[0; 4]));
        let err = load_err(&path, &LoadOptions::default());
        assert!(err.contains("structured"), "{err}");
    }

    #[test]
    fn npy_bad_shapes_and_layout() {
        let dir = TempDir::new("npy-shape");
        let path = dir.write(
            "v.npy",
            npy(1, "<f4", false, "(3,)", &f32_le(&[1.0, 2.0, 3.0])),
        );
        let err = load_err(&path, &LoadOptions::default());
        assert!(
            err.contains("v.npy: is 1-D with shape (3,)") && err.contains("reshape(-1, 1)"),
            "{err}"
        );

        let path = dir.write("f.npy", npy(1, "<f4", true, "(2, 2)", &f32_le(&[0.0; 4])));
        let err = load_err(&path, &LoadOptions::default());
        assert!(
            err.contains("f.npy: is in Fortran order") && err.contains("ascontiguousarray"),
            "{err}"
        );

        let path = dir.write(
            "nan.npy",
            npy(
                1,
                "<f4",
                false,
                "(2, 3)",
                &f32_le(&[0.0, 1.0, 2.0, 3.0, f32::NAN, 5.0]),
            ),
        );
        let err = load_err(&path, &LoadOptions::default());
        assert!(
            err.contains("nan.npy: row 2, column 2: value NaN is not finite"),
            "{err}"
        );

        let path = dir.write("empty.npy", npy(1, "<f4", false, "(0, 3)", &[]));
        let err = load_err(&path, &LoadOptions::default());
        assert!(err.contains("empty.npy: no data rows"), "{err}");

        let path = dir.write(
            "huge.npy",
            npy(1, "<f4", false, "(18446744073709551615, 4)", &[]),
        );
        let err = load_err(&path, &LoadOptions::default());
        assert!(err.contains("too large"), "{err}");

        let path = dir.write("junk.npy", b"\x93NUMPY\x01\x00\x05\x00{'a'");
        let err = load_err(&path, &LoadOptions::default());
        assert!(
            err.contains("junk.npy: is truncated inside its NPY header"),
            "{err}"
        );

        let path = dir.write("text.npy", "1,2,3\n");
        let err = load_err(&path, &LoadOptions::default());
        assert!(err.contains("text.npy: not an NPY file"), "{err}");
    }

    #[test]
    fn npy_truncated_and_overlong() {
        let dir = TempDir::new("npy-trunc");
        let path = dir.write("x.npy", npy(1, "<f4", false, "(100, 5)", &[0; 1000]));
        let err = load_err(&path, &LoadOptions::default());
        assert!(
            err.contains("x.npy: is truncated: header says (100, 5) float32 = 2000 bytes of data, file has 1000"),
            "{err}"
        );
        let path = dir.write("long.npy", npy(1, "<f4", false, "(1, 1)", &[0; 8]));
        let err = load_err(&path, &LoadOptions::default());
        assert!(
            err.contains("has 8 bytes of data but its header says (1, 1) float32 = 4 bytes"),
            "{err}"
        );
    }

    #[test]
    fn idx_images_and_labels() {
        let dir = TempDir::new("idx");
        let pixels: Vec<u8> = (0..12).map(|i| [0u8, 255, 51][i % 3]).collect();
        let images = dir.write("train-images-idx3-ubyte", idx(0x08, &[3, 2, 2], &pixels));
        let labels = dir.write(
            "train-labels-idx1-ubyte.gz",
            gzip(&idx(0x08, &[3], &[7, 0, 9])),
        );
        let options = LoadOptions {
            labels: Some(labels.clone()),
            require_labels: true,
            ..LoadOptions::default()
        };
        let loaded = load(&images, &options).unwrap();
        assert_eq!(loaded.x.dim(), (3, 4));
        assert_eq!(loaded.x.row(0).to_vec(), vec![0.0, 1.0, 0.2, 0.0]);
        assert!(loaded.x.iter().all(|&v| (0.0..=1.0).contains(&v)));
        assert_eq!(loaded.labels, Some(RawLabels::Ints(vec![7, 0, 9])));

        // Other element types are converted but not scaled; everything is big-endian.
        let data: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let path = dir.write("f.idx.gz", gzip(&idx(0x0D, &[1, 2], &data)));
        let loaded = load(&path, &LoadOptions::default()).unwrap();
        assert_eq!(loaded.x.row(0).to_vec(), vec![1.5, -2.0]);
        let data: Vec<u8> = [300i16, -7].iter().flat_map(|v| v.to_be_bytes()).collect();
        let path = dir.write("s.idx", idx(0x0B, &[2, 1], &data));
        let loaded = load(&path, &LoadOptions::default()).unwrap();
        assert_eq!(loaded.x.column(0).to_vec(), vec![300.0, -7.0]);

        // A labels file given as the data.
        let err = load_err(&labels, &LoadOptions::default());
        assert!(err.contains("is a 1-D IDX file"), "{err}");
    }

    #[test]
    fn idx_truncated_and_wrong_magic() {
        let dir = TempDir::new("idx-bad");
        let path = dir.write("images.idx", idx(0x08, &[60000, 28, 28], &[0; 1000]));
        let err = load_err(&path, &LoadOptions::default());
        assert!(
            err.contains("images.idx: is truncated: header says (60000, 28, 28) uint8 = 47040000 bytes of data, file has 1000"),
            "{err}"
        );

        let path = dir.write("short.idx", [0u8, 0, 8, 3, 0, 0]);
        let err = load_err(&path, &LoadOptions::default());
        assert!(
            err.contains("short.idx: is truncated: its IDX header needs 16 bytes, file has 6"),
            "{err}"
        );

        let path = dir.write("train.idx", [0x12u8, 0x34, 0x56, 0x78, 0, 0, 0, 1]);
        let err = load_err(&path, &LoadOptions::default());
        assert!(
            err.contains("train.idx: not an IDX file (magic bytes 12 34 56 78)"),
            "{err}"
        );

        let path = dir.write("tiny.idx", [0u8]);
        let err = load_err(&path, &LoadOptions::default());
        assert!(
            err.contains("tiny.idx: not an IDX file (magic bytes 00)"),
            "{err}"
        );

        let path = dir.write("huge.idx", idx(0x0E, &[u32::MAX, u32::MAX, u32::MAX], &[]));
        let err = load_err(&path, &LoadOptions::default());
        assert!(
            err.contains("huge.idx") && (err.contains("too large") || err.contains("truncated")),
            "{err}"
        );
    }

    #[test]
    fn libsvm_one_based() {
        let dir = TempDir::new("svm");
        let path = dir.write(
            "a.svm",
            "# header comment\n+1 1:0.5 3:2\n-1 2:1e-1 # trailing comment\n\n+1\n",
        );
        let loaded = load(&path, &LoadOptions::default()).unwrap();
        assert_eq!(loaded.x.dim(), (3, 3));
        assert_eq!(loaded.x.row(0).to_vec(), vec![0.5, 0.0, 2.0]);
        assert_eq!(loaded.x.row(1).to_vec(), vec![0.0, 0.1, 0.0]);
        assert_eq!(loaded.x.row(2).to_vec(), vec![0.0; 3]);
        let raw = loaded.labels.unwrap();
        assert_eq!(raw, RawLabels::Ints(vec![1, -1, 1]));
        let err = encode_labels(&raw, None, &path).unwrap_err().to_string();
        assert!(
            err.contains("a.svm: label -1 of sample 2 is negative"),
            "{err}"
        );

        // Expanded to a model's width; string labels; a query id is skipped.
        let path = dir.write("b.libsvm", "cat qid:3 2:1\ndog 1:4\n");
        let options = LoadOptions {
            n_features: Some(5),
            ..LoadOptions::default()
        };
        let loaded = load(&path, &options).unwrap();
        assert_eq!(loaded.x.dim(), (2, 5));
        assert_eq!(loaded.x.row(1).to_vec(), vec![4.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(
            loaded.labels,
            Some(RawLabels::Strings(vec!["cat".into(), "dog".into()]))
        );

        // Lines without labels, as in files for predicting.
        let path = dir.write("c.svm", "1:1 2:2\n2:3\n");
        let loaded = load(&path, &LoadOptions::default()).unwrap();
        assert_eq!(loaded.x.dim(), (2, 2));
        assert_eq!(loaded.labels, None);
        let path = dir.write("mixed.svm", "0 1:1\n2:3\n");
        let err = load_err(&path, &LoadOptions::default());
        assert!(
            err.contains("mixed.svm: line 2 has no label but line 1 has one"),
            "{err}"
        );
    }

    #[test]
    fn libsvm_zero_based() {
        let dir = TempDir::new("svm0");
        let path = dir.write("z.svm", "1 0:1.5 2:3\n0 1:-2\n");
        let err = load_err(&path, &LoadOptions::default());
        assert!(
            err.contains("z.svm: feature index 0 on line 1; LIBSVM indices start at 1 (use --zero-based for 0-based files)"),
            "{err}"
        );
        let options = LoadOptions {
            zero_based: true,
            ..LoadOptions::default()
        };
        let loaded = load(&path, &options).unwrap();
        assert_eq!(loaded.x.dim(), (2, 3));
        assert_eq!(loaded.x.row(0).to_vec(), vec![1.5, 0.0, 3.0]);
        assert_eq!(loaded.x.row(1).to_vec(), vec![0.0, -2.0, 0.0]);
        assert_eq!(loaded.labels, Some(RawLabels::Ints(vec![1, 0])));
    }

    #[test]
    fn libsvm_bad_lines() {
        let dir = TempDir::new("svm-bad");
        let cases = [
            (
                "1 1:1\n0 x:2\n",
                None,
                "line 2: \"x:2\" has a bad feature index \"x\"",
            ),
            (
                "1 1:1\n0 2:abc\n",
                None,
                "line 2: \"2:abc\" has a bad value \"abc\"",
            ),
            (
                "1 1:1\n0 2:nan\n",
                None,
                "line 2: value NaN in \"2:nan\" is not finite",
            ),
            (
                "1 1:1 5\n",
                None,
                "line 1: \"5\" is not an index:value pair",
            ),
            ("1 3:1 2:1\n", None, "line 1: feature index 2 comes after 3"),
            ("1 3:1 3:1\n", None, "line 1: feature index 3 comes after 3"),
            (
                "1 1:1\n1 785:1\n",
                Some(784),
                "line 2: feature index 785 is beyond the 784 features expected (indices 1 to 784)",
            ),
            ("", None, "no data rows"),
            ("1\n0\n", None, "no feature columns"),
        ];
        for (text, n_features, expected) in cases {
            let path = dir.write("bad.svm", text);
            let options = LoadOptions {
                n_features,
                ..LoadOptions::default()
            };
            let err = load_err(&path, &options);
            assert!(err.contains("bad.svm: ") && err.contains(expected), "{err}");
        }
    }

    #[test]
    fn text_labels_file_and_length_mismatch() {
        let dir = TempDir::new("labels");
        let data = dir.write("data.csv", "1,2\n3,4\n5,6\n");
        let labels = dir.write("labels.txt", "b\n\na\nb\n");
        let options = LoadOptions {
            labels: Some(labels),
            ..LoadOptions::default()
        };
        let loaded = load(&data, &options).unwrap();
        assert_eq!(
            loaded.labels,
            Some(RawLabels::Strings(vec!["b".into(), "a".into(), "b".into()]))
        );

        // Separate labels override the in-file column, which is still taken out.
        let labelled_data = dir.write("l.csv", "1,2,9\n3,4,9\n5,6,9\n");
        let labels = dir.write("y.txt", "0\n1\n2\n");
        let options = LoadOptions {
            labels: Some(labels),
            ..labelled()
        };
        let loaded = load(&labelled_data, &options).unwrap();
        assert_eq!(loaded.x.dim(), (3, 2));
        assert_eq!(loaded.labels, Some(RawLabels::Ints(vec![0, 1, 2])));

        let y: Vec<u8> = (0..2i32).flat_map(|v| v.to_le_bytes()).collect();
        let labels = dir.write("labels.npy", npy(1, "<i4", false, "(2,)", &y));
        let options = LoadOptions {
            labels: Some(labels.clone()),
            ..LoadOptions::default()
        };
        let err = load(&data, &options).unwrap_err();
        assert_eq!(err.path, labels);
        let message = err.to_string();
        assert!(
            message.contains("labels.npy has 2 labels but "),
            "{message}"
        );
        assert!(message.ends_with("data.csv has 3 rows"), "{message}");

        let options = LoadOptions {
            labels: Some(dir.0.join("missing.txt")),
            ..LoadOptions::default()
        };
        let err = load_err_at(&data, &options);
        assert!(err.contains("missing.txt: cannot read the file"), "{err}");
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
    fn npy_big_endian_and_version_3() {
        let dir = TempDir::new("npy-be");
        let data: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let path = dir.write("be.npy", npy(3, ">f4", false, "(1, 2)", &data));
        let loaded = load(&path, &LoadOptions::default()).unwrap();
        assert_eq!(loaded.x.row(0).to_vec(), vec![1.5, -2.0]);

        let path = dir.write("v9.npy", b"\x93NUMPY\x09\x00\x00\x00");
        let err = load_err(&path, &LoadOptions::default());
        assert!(err.contains("NPY version 9.0 is not supported"), "{err}");
    }

    #[test]
    fn npy_uint8_features_are_their_values() {
        let dir = TempDir::new("npy-u8");
        let pixels = [0u8, 1, 127, 128, 254, 255];
        let path = dir.write("x.npy", npy(1, "|u1", false, "(3, 2)", &pixels));
        let loaded = load(&path, &LoadOptions::default()).unwrap();
        assert_eq!(loaded.x.dim(), (3, 2));
        let want: Vec<f32> = pixels.iter().map(|&p| f32::from(p)).collect();
        assert_eq!(loaded.x.as_slice().unwrap(), want.as_slice());
        let layout = npy_layout(&path, &std::fs::read(&path).unwrap()).unwrap();
        assert_eq!((layout.m, layout.n, layout.element), (3, 2, NpyElement::U8));
    }

    #[test]
    fn npy_of_three_dimensions_is_refused_with_its_shape() {
        let dir = TempDir::new("npy-3d");
        let path = dir.write(
            "img.npy",
            npy(1, "<f4", false, "(2, 3, 4)", &f32_le(&[0.5; 24])),
        );
        let err = load_err(&path, &LoadOptions::default());
        assert!(
            err.contains("img.npy: has shape (2, 3, 4) but X must be 2-D (m, n)")
                && err.contains("x.reshape(len(x), -1)"),
            "{err}"
        );
        let err = npy_layout(&path, &std::fs::read(&path).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("(2, 3, 4)"), "{err}");
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

    #[test]
    fn text_with_nul_bytes_is_refused_as_not_text() {
        let dir = TempDir::new("nul");
        let path = dir.write("x.csv", b"1,2,0\n3,\x004,1\n");
        let err = load_err(&path, &labelled());
        assert!(
            err.contains("x.csv: is not a text file (byte 9 is NUL)"),
            "{err}"
        );
        // UTF-16, as some spreadsheets save "Unicode text".
        let utf16: Vec<u8> = "1,2,0\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let path = dir.write("u.csv", &utf16);
        let err = load_err(&path, &labelled());
        assert!(err.contains("u.csv: is not a text file"), "{err}");
        let path = dir.write("y.txt", b"0\n\x001\n");
        let err = load_labels_file(&path).unwrap_err().to_string();
        assert!(err.contains("y.txt: is not a text file"), "{err}");
    }

    /// A device that never ends is refused after its first block, in every text format
    /// and as a labels or weights file.
    #[test]
    fn dev_zero_is_refused_at_once() {
        let zero = Path::new("/dev/zero");
        let started = std::time::Instant::now();
        for format in [Format::Csv, Format::Libsvm] {
            let options = LoadOptions {
                format: Some(format),
                ..labelled()
            };
            let err = load_err(zero, &options);
            assert!(
                err.contains("/dev/zero: is not a text file (byte 1 is NUL)"),
                "{err}"
            );
        }
        let options = LoadOptions {
            format: Some(Format::Npy),
            ..LoadOptions::default()
        };
        assert!(load_err(zero, &options).contains("not an NPY file"));
        let options = LoadOptions {
            format: Some(Format::Idx),
            ..LoadOptions::default()
        };
        assert!(load_err(zero, &options).contains("not an IDX file"));
        assert!(load_labels_file(zero).is_err());
        assert!(load_weights(zero, 2, Path::new("x.csv")).is_err());
        assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
    }

    /// A gzipped file is decompressed no further than its header declares.
    #[test]
    fn gzip_expanding_beyond_its_idx_header_is_refused() {
        let dir = TempDir::new("gz-bomb");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&idx(0x08, &[10, 10, 10], &[])).unwrap();
        let block = vec![0u8; 1 << 20];
        for _ in 0..50 {
            enc.write_all(&block).unwrap();
        }
        let path = dir.write("bomb-idx3-ubyte.gz", enc.finish().unwrap());
        let err = load_err(&path, &LoadOptions::default());
        assert!(
            err.contains(
                "bomb-idx3-ubyte.gz: expands beyond the 1000 bytes of data its header declares for (10, 10, 10) uint8"
            ),
            "{err}"
        );
        // A header that declares 2.4 GB over a short body reads only the body.
        let path = dir.write(
            "huge-idx3-ubyte.gz",
            gzip(&idx(0x08, &[60000, 200, 200], &[7; 1000])),
        );
        let err = load_err(&path, &LoadOptions::default());
        assert!(
            err.contains("is truncated: header says (60000, 200, 200) uint8 = 2400000000 bytes of data, file has 1000"),
            "{err}"
        );
    }

    #[test]
    fn bounded_reads_stop_one_byte_past_the_limit() {
        let mut out = Vec::new();
        let more = read_bounded(&mut std::io::repeat(7).take(100), 10, &mut out).unwrap();
        assert!(more);
        assert_eq!(out, vec![7; 11]);
        let mut out = Vec::new();
        let more = read_bounded(&mut &[1u8, 2, 3][..], 3, &mut out).unwrap();
        assert!(!more);
        assert_eq!(out, vec![1, 2, 3]);
    }

    /// A size read from a file that memory cannot hold is an error, not an abort.
    #[test]
    fn features_too_large_for_memory_are_an_error() {
        let path = Path::new("x.idx");
        let err = decode_features(path, &[], Num::U8, true, (1 << 30, 1 << 30), true)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("x.idx: holding its 1073741824 × 1073741824 values as float32 needs"),
            "{err}"
        );
    }

    /// Empty strings cost nothing to declare; millions of millions of them are refused
    /// without being made.
    #[test]
    fn npy_labels_of_zero_width_are_refused_without_allocating() {
        let dir = TempDir::new("npy-u0");
        for descr in ["<U0", "|S0"] {
            let path = dir.write("y.npy", npy(1, descr, false, "(1000000000000,)", &[]));
            let err = load_labels_file(&path).unwrap_err().to_string();
            assert!(
                err.contains("y.npy: label of sample 1 is empty"),
                "{descr}: {err}"
            );
        }
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
    fn encode_int_labels() {
        let path = Path::new("y.npy");
        let raw = RawLabels::Ints(vec![2, 0, 2, 1]);
        let (classes, k, names) = encode_labels(&raw, None, path).unwrap();
        assert_eq!((classes, k, names), (vec![2, 0, 2, 1], 3, None));

        let (classes, k, _) = encode_labels(&raw, Some(5), path).unwrap();
        assert_eq!((classes, k), (vec![2, 0, 2, 1], 5));

        let err = encode_labels(&raw, Some(2), path).unwrap_err();
        assert_eq!(err.path, path);
        let message = err.to_string();
        assert!(
            message.contains(
                "y.npy: label 2 of sample 1 is out of range: with 2 classes labels must be 0 to 1"
            ),
            "{message}"
        );

        let err = encode_labels(&RawLabels::Ints(vec![0, -3]), None, path).unwrap_err();
        assert!(
            err.to_string().contains("label -3 of sample 2 is negative"),
            "{err}"
        );
        let err = encode_labels(&RawLabels::Ints(vec![1 << 40]), None, path).unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
        assert_eq!(
            encode_labels(&RawLabels::Ints(vec![]), None, path)
                .unwrap()
                .1,
            0
        );
    }

    #[test]
    fn encode_string_labels() {
        let path = Path::new("data.csv");
        let raw = RawLabels::Strings(vec!["dog".into(), "cat".into(), "emu".into(), "cat".into()]);
        let (classes, k, names) = encode_labels(&raw, None, path).unwrap();
        assert_eq!(classes, vec![1, 0, 2, 0]);
        assert_eq!(k, 3);
        assert_eq!(names.unwrap(), vec!["cat", "dog", "emu"]);

        let (_, k, _) = encode_labels(&raw, Some(4), path).unwrap();
        assert_eq!(k, 4);
        let err = encode_labels(&raw, Some(2), path).unwrap_err().to_string();
        assert!(
            err.contains("data.csv: has 3 distinct labels but only 2 classes"),
            "{err}"
        );
    }

    /// The rows of a CSV as `(x, labels)`, or the error's message.
    fn csv(
        dir: &TempDir,
        text: &str,
        options: &LoadOptions,
    ) -> Result<(Vec<Vec<f32>>, Option<RawLabels>), String> {
        let path = dir.write("data.csv", text);
        load(&path, options)
            .map(|l| (l.x.outer_iter().map(|r| r.to_vec()).collect(), l.labels))
            .map_err(|e| e.to_string())
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

    #[test]
    fn labels_of_mixed_kinds_are_refused_naming_a_row_of_each() {
        let dir = TempDir::new("label-kinds");
        for (text, message) in [
            (
                "1,2,0\n3,4,1.5\n5,6,1\n",
                "data.csv: row 2 has the label 1.5, not a whole number, but row 1 has the integer 0",
            ),
            (
                "1,2,0.5\n3,4,1.5\n",
                "data.csv: row 1: label 0.5 is not a whole number",
            ),
            (
                "1,2,0\n3,4,cat\n5,6,1\n",
                "data.csv: row 2 has the name \"cat\" but row 1 has the integer 0",
            ),
            (
                "1,2,cat\n3,4,dog\n5,6,7\n",
                "data.csv: row 3 has the integer 7 but row 1 has the name \"cat\"",
            ),
            (
                "1,2,0\n3,4,NaN\n",
                "data.csv: row 2: label NaN is not a class; is the label missing?",
            ),
            (
                "1,2,0\n3,4,1e30\n",
                "data.csv: row 2: label 1e30 is too large for a class number",
            ),
        ] {
            let err = csv(&dir, text, &labelled()).unwrap_err();
            assert!(err.contains(message), "{text:?}: {err}");
        }
        // Whole numbers however written are integers.
        let (_, labels) = csv(&dir, "1,2,3.0\n3,4,+1\n5,6,1e1\n", &labelled()).unwrap();
        assert_eq!(labels, Some(RawLabels::Ints(vec![3, 1, 10])));
        // Labels files and LIBSVM count lines.
        let path = dir.write("y.txt", "0\n\n1\ncat\n");
        let err = load_labels(&path).unwrap_err().to_string();
        assert!(
            err.contains("y.txt: line 4 has the name \"cat\" but line 1 has the integer 0"),
            "{err}"
        );
        let path = dir.write("x.svm", "0 1:1\n0.5 1:2\n");
        let err = load_err(&path, &LoadOptions::default());
        assert!(
            err.contains(
                "x.svm: line 2 has the label 0.5, not a whole number, but line 1 has the integer 0"
            ),
            "{err}"
        );
        // A labels file replaces the column's labels, which are then not judged.
        let labels_file = dir.write("z.txt", "0\n1\n");
        let options = LoadOptions {
            labels: Some(labels_file),
            ..labelled()
        };
        let (x, labels) = csv(&dir, "1,2,0.5\n3,4,nan\n", &options).unwrap();
        assert_eq!((x.len(), labels), (2, Some(RawLabels::Ints(vec![0, 1]))));
    }

    #[test]
    fn integer_labels_far_above_the_distinct_count_need_classes() {
        let path = Path::new("y.csv");
        let err = encode_labels(&RawLabels::Ints(vec![0, 1, 2, 1_000_000]), None, path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("y.csv: label 1000000 of sample 4 would make K = 1000001 classes, though only 4 distinct labels occur; pass --classes 1000001"),
            "{err}"
        );
        let (_, k, _) = encode_labels(
            &RawLabels::Ints(vec![0, 1, 2, 1_000_000]),
            Some(1_000_001),
            path,
        )
        .unwrap();
        assert_eq!(k, 1_000_001);
        // K = 2 × distinct + 100 passes; one more does not.
        assert_eq!(
            encode_labels(&RawLabels::Ints(vec![0, 103]), None, path)
                .unwrap()
                .1,
            104
        );
        assert!(encode_labels(&RawLabels::Ints(vec![0, 104]), None, path).is_err());
        let err = encode_labels(&RawLabels::Ints(vec![0, 4_000_000_000]), None, path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("K = 4000000001 classes, more than the 1048576 supported"),
            "{err}"
        );
        let err = encode_labels(&RawLabels::Ints(vec![0, 1]), Some(4_000_000_000), path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("4000000000 classes were asked for, more than the 1048576 supported"),
            "{err}"
        );
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
