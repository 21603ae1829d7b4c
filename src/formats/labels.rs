//! Labels: read from a label file or a data file's column, told apart as integers or
//! names, and mapped to classes `0..K`.

use std::path::Path;

use super::idx::idx_labels;
use super::npy::npy_labels;
use super::read::{Contents, read_file, read_stdin};
use super::{
    Format, FormatError, RawLabels, as_text, fail, is_stdin, numbered_lines, whole_number,
};

/// Parses the bytes of a labels file as [`super::LoadOptions::labels`] describes (`.npy`, IDX by
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
        RawLabels::Ints(labels) => encode_ints(labels, n_classes, path),
        RawLabels::Strings(labels) => encode_names(labels, n_classes, path),
    }
}

/// [`encode_labels`] for integer labels, which are their own classes.
#[allow(clippy::type_complexity)]
fn encode_ints(
    labels: &[i64],
    n_classes: Option<usize>,
    path: &Path,
) -> Result<(Vec<u32>, usize, Option<Vec<String>>), FormatError> {
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

/// [`encode_labels`] for names, which become classes in sorted order.
#[allow(clippy::type_complexity)]
fn encode_names(
    labels: &[String],
    n_classes: Option<usize>,
    path: &Path,
) -> Result<(Vec<u32>, usize, Option<Vec<String>>), FormatError> {
    let mut names: Vec<String> = labels.to_vec();
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
pub(super) fn infer_labels(
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

/// Reads a labels file on its own: an integer (or string) `.npy` of shape (m,), an IDX
/// file of one dimension, or text with one label per non-blank line.
pub fn load_labels(path: &Path) -> Result<RawLabels, FormatError> {
    load_labels_file(path)
}

pub(super) fn load_labels_file(path: &Path) -> Result<RawLabels, FormatError> {
    if is_stdin(path) {
        let input = read_stdin(path, None)?;
        let format = (input.format == Format::Npy).then_some(Format::Npy);
        return labels_from_bytes(format, path, &input.bytes);
    }
    let format = Format::from_path(path);
    let bytes = read_file(path, Contents::of(format))?;
    labels_from_bytes(format, path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::test_files::*;
    use crate::formats::*;

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
}
