//! The arrays of a sparse matrix as `.npy` arrays hold them (SciPy's `data`, `indices`,
//! `indptr`, `row`, `col`) in an `.npz` archive, checked and turned into CSR rows.

use std::path::Path;

use super::elements::{Num, element_f64, element_i64};
use super::memory::reserve;
use super::npy::{Npy, NpyType, npy_data_check, parse_npy};
use super::{FormatError, SparseRows, beyond_float32, fail};

/// A 1-D numeric array of an archive member (or of a `.npy` file).
pub(super) struct Column<'a> {
    name: &'static str,
    num: Num,
    big_endian: bool,
    npy: Npy<'a>,
}

impl<'a> Column<'a> {
    pub(super) fn parse(
        path: &Path,
        name: &'static str,
        bytes: &'a [u8],
    ) -> Result<Self, FormatError> {
        let npy = parse_npy(path, bytes).map_err(|e| {
            fail(
                path,
                format_args!("{name}.npy: {}", strip(path, &e.message)),
            )
        })?;
        let Some(dtype @ NpyType::Num(num, big_endian)) = npy.dtype else {
            return Err(fail(
                path,
                format_args!("{name}.npy has dtype '{}'; expected numbers", npy.descr),
            ));
        };
        if npy.shape.len() != 1 {
            return Err(fail(path, format_args!("{name}.npy is not a 1-D array")));
        }
        npy_data_check(path, &npy, dtype).map_err(|e| {
            fail(
                path,
                format_args!("{name}.npy: {}", strip(path, &e.message)),
            )
        })?;
        Ok(Column {
            name,
            num,
            big_endian,
            npy,
        })
    }

    pub(super) fn len(&self) -> usize {
        self.npy.shape[0]
    }

    fn chunk(&self, i: usize) -> &[u8] {
        let size = self.num.size();
        &self.npy.data[i * size..(i + 1) * size]
    }

    /// Element i as a non-negative index below `bound`.
    pub(super) fn index(
        &self,
        path: &Path,
        i: usize,
        bound: u64,
        what: &str,
    ) -> Result<u64, FormatError> {
        let value = if self.num.is_float() {
            None
        } else {
            element_i64(self.chunk(i), self.num, self.big_endian)
        };
        match value {
            Some(v) if v >= 0 && (v as u64) < bound => Ok(v as u64),
            _ => Err(fail(
                path,
                format_args!(
                    "{}.npy entry {} is {}, not {what} from 0 to {}",
                    self.name,
                    i + 1,
                    element_f64(self.chunk(i), self.num, self.big_endian),
                    bound.saturating_sub(1)
                ),
            )),
        }
    }

    pub(super) fn value(&self, i: usize) -> f64 {
        element_f64(self.chunk(i), self.num, self.big_endian)
    }
}

/// A member's message without the path, which the caller puts in front again.
pub(super) fn strip<'m>(path: &Path, message: &'m str) -> &'m str {
    let shown = path.display().to_string();
    message
        .strip_prefix(&shown)
        .map_or(message, |rest| rest.trim_start_matches(':').trim_start())
}

/// (row, column, value) of every stored value of a CSR (`by_row`) or CSC matrix.
pub(super) fn compressed_entries(
    path: &Path,
    data: &Column<'_>,
    indices: &Column<'_>,
    indptr: &Column<'_>,
    major: usize,
    (m, n): (usize, usize),
    by_row: bool,
) -> Result<Vec<(usize, u32, f64)>, FormatError> {
    let nnz = data.len();
    if indices.len() != nnz {
        return Err(fail(
            path,
            format_args!(
                "indices.npy holds {} entries but data.npy holds {nnz}",
                indices.len()
            ),
        ));
    }
    if indptr.len() != major + 1 {
        return Err(fail(
            path,
            format_args!(
                "indptr.npy holds {} offsets; a shape of ({m}, {n}) needs {}",
                indptr.len(),
                major + 1
            ),
        ));
    }
    let minor = if by_row { n } else { m } as u64;
    let what = if by_row { "a column" } else { "a row" };
    let mut entries = Vec::with_capacity(nnz);
    let mut start = indptr.index(path, 0, nnz as u64 + 1, "an offset")?;
    if start != 0 {
        return Err(fail(path, "indptr.npy does not start at 0"));
    }
    for major_i in 0..major {
        let end = indptr.index(path, major_i + 1, nnz as u64 + 1, "an offset")?;
        if end < start {
            return Err(fail(
                path,
                format_args!(
                    "indptr.npy decreases at entry {} ({start} then {end}); offsets must not decrease",
                    major_i + 2
                ),
            ));
        }
        for i in start as usize..end as usize {
            let minor_i = indices.index(path, i, minor, what)? as usize;
            let (r, c) = if by_row {
                (major_i, minor_i)
            } else {
                (minor_i, major_i)
            };
            entries.push((r, c as u32, data.value(i)));
        }
        start = end;
    }
    if start != nnz as u64 {
        return Err(fail(
            path,
            format_args!("indptr.npy ends at {start} but data.npy holds {nnz} values"),
        ));
    }
    Ok(entries)
}

/// (row, column, value) of every stored value of a COO matrix.
pub(super) fn coo_entries(
    path: &Path,
    data: &Column<'_>,
    rows: &Column<'_>,
    cols: &Column<'_>,
    (m, n): (usize, usize),
) -> Result<Vec<(usize, u32, f64)>, FormatError> {
    let nnz = data.len();
    for c in [rows, cols] {
        if c.len() != nnz {
            return Err(fail(
                path,
                format_args!(
                    "{}.npy holds {} entries but data.npy holds {nnz}",
                    c.name,
                    c.len()
                ),
            ));
        }
    }
    (0..nnz)
        .map(|i| {
            let r = rows.index(path, i, m as u64, "a row")? as usize;
            let c = cols.index(path, i, n as u64, "a column")? as u32;
            Ok((r, c, data.value(i)))
        })
        .collect()
}

/// CSR rows from entries in any order: sorted by row and column, repeats summed, every
/// value finite and within float32's range.
pub(super) fn rows_of(
    path: &Path,
    (m, n): (usize, usize),
    mut entries: Vec<(usize, u32, f64)>,
) -> Result<SparseRows, FormatError> {
    entries.sort_by_key(|&(r, c, _)| (r, c));
    // The shape is only a claim: m + 1 offsets are reserved against the memory there is.
    let mut indptr: Vec<u64> = Vec::new();
    reserve(
        path,
        &mut indptr,
        m.saturating_add(1),
        format_args!("{m} row offsets"),
    )?;
    indptr.resize(m + 1, 0);
    let mut indices: Vec<u32> = Vec::with_capacity(entries.len());
    let mut sums: Vec<f64> = Vec::with_capacity(entries.len());
    let mut last = None;
    let mut rows = Vec::with_capacity(entries.len());
    for (r, c, v) in entries {
        match sums.last_mut() {
            Some(sum) if last == Some((r, c)) => *sum += v,
            _ => {
                indices.push(c);
                sums.push(v);
                rows.push(r);
                indptr[r + 1] += 1;
            }
        }
        last = Some((r, c));
    }
    for r in 0..m {
        indptr[r + 1] += indptr[r];
    }
    let mut values = Vec::with_capacity(sums.len());
    for ((&v, &c), &r) in sums.iter().zip(&indices).zip(&rows) {
        let at = format!("row {}, column {}", r + 1, c + 1);
        if !v.is_finite() {
            return Err(fail(path, format_args!("{at}: value {v} is not finite")));
        }
        let stored = v as f32;
        if !stored.is_finite() {
            return Err(fail(path, format_args!("{at}: {}", beyond_float32(v))));
        }
        values.push(stored);
    }
    Ok(SparseRows {
        n_rows: m,
        n_cols: n,
        indptr,
        indices,
        values,
    })
}
