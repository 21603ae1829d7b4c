//! The arrays of a sparse matrix as `.npy` arrays hold them (SciPy's `data`, `indices`,
//! `indptr`, `row`, `col`), in an `.npz` archive or a directory, checked and turned into
//! CSR rows.
//!
//! CSR arrays that are already canonical (offsets from 0 that never decrease, columns
//! increasing within each row, finite values) are taken as they are, each viewed in
//! place in its mapped file when its type is the one the rows hold (float32 values,
//! int32 or uint32 columns, int64 or uint64 offsets, little-endian, aligned) and
//! converted otherwise: [`csr_rows`]. Anything else (another layout, unsorted or repeated
//! columns, a bad value) goes through the entries, which sorts and sums and names what is
//! wrong.

use std::path::Path;
use std::sync::Arc;

use bytemuck::Pod;
use memmap2::Mmap;
use rayon::prelude::*;

use super::elements::{Num, element_f64, element_i64};
use super::mapped::{CsrArray, offset_in};
use super::memory::reserve;
use super::npy::{Npy, NpyType, npy_data_check, parse_npy};
use super::{FormatError, SparseRows, beyond_float32, fail};

/// A 1-D numeric array of an archive member (or of a `.npy` file).
pub(super) struct Column<'a> {
    name: &'static str,
    num: Num,
    big_endian: bool,
    npy: Npy<'a>,
    /// The mapped file that `npy.data` lies in, when it lies in one.
    map: Option<&'a Arc<Mmap>>,
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
            map: None,
        })
    }

    /// The column, its bytes lying in `map`: its values may be viewed there.
    pub(super) fn in_map(self, map: &'a Arc<Mmap>) -> Self {
        Column {
            map: Some(map),
            ..self
        }
    }

    /// Refuses a column of floats: offsets and indices are integers.
    fn integers(&self, path: &Path) -> Result<(), FormatError> {
        if self.num.is_float() {
            return Err(fail(
                path,
                format_args!(
                    "{}.npy has dtype '{}' ({}); its entries must be integers",
                    self.name,
                    self.npy.descr,
                    self.num.name()
                ),
            ));
        }
        Ok(())
    }

    /// The column viewed in its mapped file as `T`, when its type is one of `types`, it is
    /// little-endian (as this machine is) and it lies aligned for `T`.
    fn view<T: Pod>(&self, types: &[Num]) -> Option<CsrArray<T>> {
        let native = cfg!(target_endian = "little") && !self.big_endian;
        if !(native && types.contains(&self.num)) {
            return None;
        }
        let map = self.map?;
        CsrArray::mapped(Arc::clone(map), offset_in(map, self.npy.data)?, self.len())
    }

    /// Every element through `convert`, or `None` when one does not convert or there is
    /// no memory for the copy.
    fn converted<T>(&self, convert: impl Fn(&[u8]) -> Option<T>) -> Option<Vec<T>> {
        let mut out = Vec::new();
        out.try_reserve_exact(self.len()).ok()?;
        for chunk in self.npy.data.chunks_exact(self.num.size()) {
            out.push(convert(chunk)?);
        }
        Some(out)
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

/// (m, n) from a `shape.npy` column: two counts, neither 0, n within u32 indices' reach.
pub(super) fn shape_pair(path: &Path, shape: &Column<'_>) -> Result<(usize, usize), FormatError> {
    if shape.len() != 2 {
        return Err(fail(path, "shape.npy does not hold two numbers (m, n)"));
    }
    let (m, n) = (
        shape.index(path, 0, u64::MAX, "a row count")? as usize,
        shape.index(path, 1, u64::MAX, "a column count")? as usize,
    );
    if m == 0 || n == 0 {
        return Err(fail(path, format_args!("has shape ({m}, {n}): no data")));
    }
    if n > u32::MAX as usize + 1 {
        return Err(fail(
            path,
            format_args!("has {n} columns, more than sparse rows can address (2³²)"),
        ));
    }
    Ok((m, n))
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
    indices.integers(path)?;
    indptr.integers(path)?;
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
    rows.integers(path)?;
    cols.integers(path)?;
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
        indptr: indptr.into(),
        indices: indices.into(),
        values: values.into(),
    })
}

/// Rows from the three arrays of a CSR matrix of `shape`, or, without one, of as many
/// rows as `indptr` has offsets after its first and as many columns as the largest index
/// plus one. Canonical arrays are taken as they are (see the module's notes); any others
/// are sorted and summed by [`rows_of`], which names what is wrong when they are bad.
pub(super) fn csr_rows(
    path: &Path,
    shape: Option<(usize, usize)>,
    data: &Column<'_>,
    indices: &Column<'_>,
    indptr: &Column<'_>,
) -> Result<SparseRows, FormatError> {
    if let Some(rows) = canonical_rows(shape, data, indices, indptr) {
        return Ok(rows);
    }
    indices.integers(path)?;
    indptr.integers(path)?;
    let (m, n) = match shape {
        Some(shape) => shape,
        None => shape_of(path, indices, indptr)?,
    };
    let entries = compressed_entries(path, data, indices, indptr, m, (m, n), true)?;
    rows_of(path, (m, n), entries)
}

/// (m, n) of CSR arrays without a shape: an offset per row plus one, and the largest
/// column index plus one.
fn shape_of(
    path: &Path,
    indices: &Column<'_>,
    indptr: &Column<'_>,
) -> Result<(usize, usize), FormatError> {
    let Some(m) = indptr.len().checked_sub(1) else {
        return Err(fail(
            path,
            "indptr.npy is empty; it holds one offset per row and one more",
        ));
    };
    let mut largest = None;
    for i in 0..indices.len() {
        let c = indices.index(path, i, u64::from(u32::MAX) + 1, "a column")?;
        largest = largest.max(Some(c));
    }
    let Some(largest) = largest else {
        return Err(fail(
            path,
            "holds no stored values and no shape.npy, so its number of columns is unknown; add shape.npy",
        ));
    };
    if m == 0 {
        return Err(fail(path, "indptr.npy holds one offset: there are no rows"));
    }
    Ok((m, largest as usize + 1))
}

/// Rows per piece when canonical arrays are checked in parallel.
const CHECK_ROWS: usize = 1 << 14;

/// The arrays as rows without a copy where their types allow (see the module's notes),
/// when they are canonical CSR of a shape with rows and columns; `None` otherwise.
fn canonical_rows(
    shape: Option<(usize, usize)>,
    data: &Column<'_>,
    indices: &Column<'_>,
    indptr: &Column<'_>,
) -> Option<SparseRows> {
    let values = values_array(data)?;
    let indices_i32 = indices.num == Num::I32;
    let indices = indices_array(indices)?;
    let indptr = indptr_array(indptr)?;
    let m = indptr.len().checked_sub(1)?;
    // A viewed int32 index that is negative reads as 2³¹ or more: with n ≤ 2³¹ the check
    // of indices against n refuses it, and otherwise the largest index shows it.
    let largest = || indices.par_iter().copied().max();
    let n = match shape {
        Some((rows, n)) => {
            if rows != m || (indices_i32 && n > 1 << 31 && largest()? >= 1 << 31) {
                return None;
            }
            n
        }
        None => {
            let largest = largest()?;
            if indices_i32 && largest >= 1 << 31 {
                return None;
            }
            largest as usize + 1
        }
    };
    let nnz = values.len();
    let offsets_fit = indices.len() == nnz
        && indptr[0] == 0
        && indptr[m] == nnz as u64
        && indptr.windows(2).all(|w| w[0] <= w[1]);
    if m == 0 || n == 0 || n > u32::MAX as usize + 1 || !offsets_fit {
        return None;
    }
    let rows_sorted = (0..m.div_ceil(CHECK_ROWS)).into_par_iter().all(|piece| {
        let rows = piece * CHECK_ROWS..((piece + 1) * CHECK_ROWS).min(m);
        rows.into_iter().all(|r| {
            let cols = &indices[indptr[r] as usize..indptr[r + 1] as usize];
            cols.windows(2).all(|w| w[0] < w[1]) && cols.last().is_none_or(|&c| (c as usize) < n)
        })
    });
    let finite = values.par_iter().all(|v| v.is_finite());
    (rows_sorted && finite).then_some(SparseRows {
        n_rows: m,
        n_cols: n,
        indptr,
        indices,
        values,
    })
}

/// Values as float32: viewed in place, or converted from any number type that holds them
/// exactly enough (`None` for one that is not finite or beyond float32).
fn values_array(data: &Column<'_>) -> Option<CsrArray<f32>> {
    if let Some(view) = data.view::<f32>(&[Num::F32]) {
        return Some(view);
    }
    let big = data.big_endian;
    let values = data.converted(|chunk| {
        let v = element_f64(chunk, data.num, big) as f32;
        v.is_finite().then_some(v)
    })?;
    Some(values.into())
}

/// Column indices as u32: int32 and uint32 viewed in place (a negative int32 is caught by
/// the caller), any other integer type converted when every index is from 0 to 2³² − 1.
fn indices_array(indices: &Column<'_>) -> Option<CsrArray<u32>> {
    if let Some(view) = indices.view::<u32>(&[Num::I32, Num::U32]) {
        return Some(view);
    }
    if indices.num.is_float() {
        return None;
    }
    let (num, big) = (indices.num, indices.big_endian);
    let out = indices.converted(|chunk| u32::try_from(element_i64(chunk, num, big)?).ok())?;
    Some(out.into())
}

/// Row offsets as u64: int64 and uint64 viewed in place (a negative int64 reads as more
/// than the stored values, which the caller refuses), other integer types converted when
/// no offset is negative.
fn indptr_array(indptr: &Column<'_>) -> Option<CsrArray<u64>> {
    if let Some(view) = indptr.view::<u64>(&[Num::I64, Num::U64]) {
        return Some(view);
    }
    if indptr.num.is_float() {
        return None;
    }
    let (num, big) = (indptr.num, indptr.big_endian);
    let out = indptr.converted(|chunk| u64::try_from(element_i64(chunk, num, big)?).ok())?;
    Some(out.into())
}
