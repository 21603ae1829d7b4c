//! LIBSVM / SVMlight sparse text (`label index:value ...`): kept as sparse rows, or
//! expanded to dense ones for the dense readers' callers.

use std::path::Path;

use ndarray::Array2;

use super::labels::infer_labels;
use super::{
    FormatError, LoadOptions, RawLabels, SparseRows, as_text, beyond_float32, check_not_empty,
    fail, numbered_lines, to_array,
};

/// Dense values above which a LIBSVM file must store at least 1/256 of them.
const MAX_SPARSE_EXPANSION: usize = 1 << 26;

pub(super) fn load_libsvm(
    path: &Path,
    bytes: &[u8],
    options: &LoadOptions,
) -> Result<(Array2<f32>, Option<RawLabels>), FormatError> {
    let mut sparse = read_checked(path, bytes, options)?;
    let x = densify(path, &sparse, options.n_features)?;
    Ok((x, take_labels(path, &mut sparse)?))
}

/// The file's rows as stored, in CSR arrays, never expanded.
pub(super) fn load_libsvm_sparse(
    path: &Path,
    bytes: &[u8],
    options: &LoadOptions,
) -> Result<(SparseRows, Option<RawLabels>), FormatError> {
    let mut sparse = read_checked(path, bytes, options)?;
    let m = sparse.row_end.len();
    let n = options.n_features.unwrap_or(sparse.width);
    check_not_empty(path, m, n)?;
    if n > u32::MAX as usize + 1 {
        return Err(fail(
            path,
            format_args!(
                "the largest feature index makes {n} features, more than sparse rows can address (2³²)"
            ),
        ));
    }
    let labels = take_labels(path, &mut sparse)?;
    let mut indptr = Vec::with_capacity(m + 1);
    indptr.push(0);
    indptr.extend(sparse.row_end.iter().map(|&e| e as u64));
    let x = SparseRows {
        n_rows: m,
        n_cols: n,
        indptr: indptr.into(),
        indices: sparse
            .cols
            .iter()
            .map(|&c| c as u32)
            .collect::<Vec<_>>()
            .into(),
        values: sparse.vals.into(),
    };
    Ok((x, labels))
}

/// The sparse rows; a file where some lines have a label and some do not is refused.
fn read_checked(path: &Path, bytes: &[u8], options: &LoadOptions) -> Result<Sparse, FormatError> {
    let text = as_text(path, bytes)?;
    let sparse = read_sparse(path, text, options)?;
    if let (Some(with), Some(without)) = (sparse.labelled_line, sparse.unlabelled_line) {
        return Err(fail(
            path,
            format_args!(
                "line {without} has no label but line {with} has one; either every line starts with a label or none does"
            ),
        ));
    }
    Ok(sparse)
}

/// The labels, when the lines have them.
fn take_labels(path: &Path, sparse: &mut Sparse) -> Result<Option<RawLabels>, FormatError> {
    match sparse.labelled_line {
        Some(_) => Ok(Some(infer_labels(
            path,
            std::mem::take(&mut sparse.labels),
            &sparse.label_lines,
            "line",
            None,
        )?)),
        None => Ok(None),
    }
}

/// A LIBSVM file's rows as written, sparse, with the labels of the lines that have one.
#[derive(Debug, Default)]
struct Sparse {
    labels: Vec<String>,
    label_lines: Vec<usize>,
    labelled_line: Option<usize>,
    unlabelled_line: Option<usize>,
    /// Row r's entries are cols/vals[row_end[r-1]..row_end[r]].
    row_end: Vec<usize>,
    cols: Vec<usize>,
    vals: Vec<f32>,
    /// One more than the largest column seen.
    width: usize,
}

/// Reads every non-blank line (a `#` starts a comment) into sparse rows, checking each
/// `index:value` pair as it comes.
fn read_sparse(path: &Path, text: &str, options: &LoadOptions) -> Result<Sparse, FormatError> {
    let mut sparse = Sparse::default();
    for (line_no, line) in numbered_lines(text) {
        let content = line.split('#').next().unwrap_or_default().trim();
        if content.is_empty() {
            continue;
        }
        let mut tokens = content.split_ascii_whitespace().peekable();
        // A line that starts with index:value has no label, as in files made for predicting.
        match tokens.peek() {
            Some(first) if !first.contains(':') => {
                sparse.labels.push((*first).to_string());
                sparse.label_lines.push(line_no);
                sparse.labelled_line.get_or_insert(line_no);
                tokens.next();
            }
            _ => {
                sparse.unlabelled_line.get_or_insert(line_no);
            }
        }
        let mut previous: Option<(usize, usize)> = None;
        for token in tokens {
            let Some((index, column, value_text)) =
                entry_index(path, line_no, token, options.zero_based)?
            else {
                continue;
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
            check_in_range(path, line_no, index, column, options)?;
            let value = entry_value(path, line_no, token, value_text)?;
            sparse.width = sparse.width.max(column.saturating_add(1));
            sparse.cols.push(column);
            sparse.vals.push(value);
        }
        sparse.row_end.push(sparse.cols.len());
    }
    Ok(sparse)
}

/// The feature index of an `index:value` token, its 0-based column and the value's text;
/// `None` for a query id (`qid:3`), which SVMlight ranking files tag rows with and which
/// is not a feature.
fn entry_index<'t>(
    path: &Path,
    line_no: usize,
    token: &'t str,
    zero_based: bool,
) -> Result<Option<(usize, usize, &'t str)>, FormatError> {
    let Some((index_text, value_text)) = token.split_once(':') else {
        return Err(fail(
            path,
            format_args!("line {line_no}: {token:?} is not an index:value pair"),
        ));
    };
    if index_text == "qid" {
        return Ok(None);
    }
    let index: usize = index_text.parse().map_err(|_| {
        fail(
            path,
            format_args!("line {line_no}: {token:?} has a bad feature index {index_text:?}"),
        )
    })?;
    let column = if zero_based {
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
    Ok(Some((index, column, value_text)))
}

/// Fails when `column` lies beyond the number of features the caller expects.
fn check_in_range(
    path: &Path,
    line_no: usize,
    index: usize,
    column: usize,
    options: &LoadOptions,
) -> Result<(), FormatError> {
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
    Ok(())
}

/// The value of an `index:value` token: a finite number float32 can hold.
fn entry_value(
    path: &Path,
    line_no: usize,
    token: &str,
    value_text: &str,
) -> Result<f32, FormatError> {
    match value_text.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) if value_text.parse::<f64>().is_ok_and(f64::is_finite) => Err(fail(
            path,
            format_args!(
                "line {line_no}: {}",
                beyond_float32(format_args!("{value_text} in {token:?}"))
            ),
        )),
        Ok(v) => Err(fail(
            path,
            format_args!("line {line_no}: value {v} in {token:?} is not finite"),
        )),
        Err(_) => Err(fail(
            path,
            format_args!("line {line_no}: {token:?} has a bad value {value_text:?}"),
        )),
    }
}

/// The sparse rows as a dense matrix `n_features` wide, or as wide as the largest index
/// seen.
fn densify(
    path: &Path,
    sparse: &Sparse,
    n_features: Option<usize>,
) -> Result<Array2<f32>, FormatError> {
    let Sparse {
        row_end,
        cols,
        vals,
        width,
        ..
    } = sparse;
    let m = row_end.len();
    let n = n_features.unwrap_or(*width);
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
    if n_features.is_none() && total > MAX_SPARSE_EXPANSION.max(256 * cols.len()) {
        return Err(fail(
            path,
            format_args!(
                "the largest feature index, {width}, makes the dense matrix {m} × {n} ({}) although the file stores only {} values; check that index (training needs dense data)",
                crate::util::human_bytes(total as u64 * 4),
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
    to_array(path, m, n, dense)
}

#[cfg(test)]
mod tests {
    use crate::formats::test_files::*;
    use crate::formats::*;

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
}
