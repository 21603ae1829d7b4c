//! NumPy `.npy` arrays: the header, features of float32, float64 or uint8, and labels of
//! integers or strings.

use std::path::Path;

use ndarray::Array2;

use super::elements::{Num, decode_features, decode_int_labels, take};
use super::py_literal::{Py, PyParser};
use super::{
    FormatError, RawLabels, check_data_len, check_not_empty, checked_product, fail, shape_text,
};

/// What an NPY header says the elements are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NpyType {
    Num(Num, bool),
    /// `<U{n}`: n UTF-32 code units, NUL padded.
    Unicode(usize, bool),
    /// `|S{n}`: n bytes, NUL padded.
    Bytes(usize),
    Object,
}

impl NpyType {
    pub(super) fn size(self) -> Option<usize> {
        match self {
            NpyType::Num(num, _) => Some(num.size()),
            NpyType::Unicode(chars, _) => chars.checked_mul(4),
            NpyType::Bytes(n) => Some(n),
            NpyType::Object => None,
        }
    }

    pub(super) fn name(self) -> String {
        match self {
            NpyType::Num(num, _) => num.name().to_string(),
            NpyType::Unicode(n, _) => format!("str{n}"),
            NpyType::Bytes(n) => format!("bytes{n}"),
            NpyType::Object => "object".to_string(),
        }
    }
}

pub(super) struct Npy<'a> {
    pub(super) descr: String,
    pub(super) dtype: Option<NpyType>,
    pub(super) fortran_order: bool,
    pub(super) shape: Vec<usize>,
    pub(super) data: &'a [u8],
}

pub(super) fn parse_npy<'a>(path: &Path, bytes: &'a [u8]) -> Result<Npy<'a>, FormatError> {
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
pub(super) fn npy_data_check(
    path: &Path,
    npy: &Npy<'_>,
    dtype: NpyType,
) -> Result<(), FormatError> {
    let expected = npy_declared_bytes(path, &npy.shape, dtype)?;
    check_data_len(path, &npy.shape, &dtype.name(), expected, npy.data.len())
}

/// The bytes of data an NPY header declares for `shape` elements of `dtype`.
pub(super) fn npy_declared_bytes(
    path: &Path,
    shape: &[usize],
    dtype: NpyType,
) -> Result<usize, FormatError> {
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

pub(super) fn npy_features(path: &Path, bytes: &[u8]) -> Result<Array2<f32>, FormatError> {
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

pub(super) fn npy_labels(path: &Path, bytes: &[u8]) -> Result<RawLabels, FormatError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::test_files::*;
    use crate::formats::*;

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
}
