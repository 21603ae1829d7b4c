//! The element types of NPY and IDX arrays, and the decoding of packed elements into
//! features and integer labels.

use std::path::Path;

use ndarray::Array2;

use super::memory::reserve;
use super::{FormatError, beyond_float32, fail, to_array, whole_number};

/// Element types of NPY and IDX arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Num {
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
    pub(super) fn size(self) -> usize {
        match self {
            Num::Bool | Num::I8 | Num::U8 => 1,
            Num::I16 | Num::U16 => 2,
            Num::I32 | Num::U32 | Num::F32 => 4,
            Num::I64 | Num::U64 | Num::F64 => 8,
        }
    }

    pub(super) fn name(self) -> &'static str {
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

    pub(super) fn is_float(self) -> bool {
        matches!(self, Num::F32 | Num::F64)
    }
}

/// The first `N` bytes of `chunk` (callers pass chunks of exactly `N`).
pub(super) fn take<const N: usize>(chunk: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    for (o, b) in out.iter_mut().zip(chunk) {
        *o = *b;
    }
    out
}

/// One element as f64 (exact for every type but 64-bit integers beyond 2^53).
pub(super) fn element_f64(chunk: &[u8], num: Num, big_endian: bool) -> f64 {
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
pub(super) fn element_i64(chunk: &[u8], num: Num, big_endian: bool) -> Option<i64> {
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

/// An m x n matrix from packed elements, refusing NaN, infinities and values beyond
/// float32's range.
pub(super) fn decode_features(
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
pub(super) fn decode_int_labels(
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
