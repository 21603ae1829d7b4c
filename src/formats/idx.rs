//! The IDX format of MNIST: a big-endian header of dimensions over packed elements.

use std::path::Path;

use ndarray::Array2;

use super::elements::{Num, decode_features, decode_int_labels, take};
use super::{
    FormatError, RawLabels, check_data_len, check_not_empty, checked_product, fail, shape_text,
};

struct Idx<'a> {
    num: Num,
    dims: Vec<usize>,
    data: &'a [u8],
}

/// The element type an IDX file's first four bytes (`0 0 type ndims`) name, if they are
/// IDX magic.
pub(super) fn idx_magic(bytes: &[u8]) -> Option<Num> {
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
pub(super) fn idx_dims(dim_bytes: &[u8]) -> Vec<usize> {
    dim_bytes
        .chunks_exact(4)
        .map(|b| usize::try_from(u32::from_be_bytes(take::<4>(b))).unwrap_or(usize::MAX))
        .collect()
}

/// The bytes of data an IDX header declares for `dims` elements of `num`.
pub(super) fn idx_declared_bytes(
    path: &Path,
    dims: &[usize],
    num: Num,
) -> Result<usize, FormatError> {
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

pub(super) fn idx_features(path: &Path, bytes: &[u8]) -> Result<Array2<f32>, FormatError> {
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

pub(super) fn idx_labels(path: &Path, bytes: &[u8]) -> Result<RawLabels, FormatError> {
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

#[cfg(test)]
mod tests {
    use crate::formats::test_files::*;
    use crate::formats::*;

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
}
